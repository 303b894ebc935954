/* System calls with arguments strace decodes in its own ways: flags, enums, descriptors,
 * strings with every escape, errors, children's wait statuses.  The strace view's
 * differential test runs it under strace and under usertrace and compares the lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	char buf[256];
	int p[2], sv[2], one = 1, st;
	uint32_t word = 0, word2 = 0;
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	struct timespec ts = { 0, 1000 };
	struct rlimit rl;

	umask(022);
	umask(0);
	open("/nonexistent/x", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY | O_CLOEXEC);
	fcntl(fd, F_GETFD);
	fcntl(fd, F_SETFD, 0);
	fcntl(fd, F_GETFD);
	fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	fcntl(fd, F_DUPFD_CLOEXEC, 10);
	fcntl(fd, F_GETLK, &fl);
	dup(fd);
	dup2(fd, 20);
	dup3(fd, 21, O_CLOEXEC);
	lseek(fd, 0, SEEK_END);
	lseek(fd, -1, SEEK_SET);
	pread(fd, buf, 4, 1);
	flock(fd, LOCK_SH | LOCK_NB);
	close(21);
	close(-1);
	pipe2(p, O_CLOEXEC | O_NONBLOCK);
	write(p[1], "tab\there \"quoted\" back\\slash\n\001\0377\2008\x7f\xff end", 40);
	read(p[0], buf, sizeof buf);
	read(p[0], buf, sizeof buf);
	ioctl(p[0], FIONREAD, &one);
	struct pollfd pf[3] = { { p[0], POLLIN | POLLPRI, 0 }, { p[1], POLLOUT, 0 }, { -1, POLLIN, 0 } };
	poll(pf, 3, 0);
	ioctl(p[0], TCGETS, buf);
	int pm = posix_openpt(O_RDWR | O_NOCTTY);                      /* a terminal: termios */
	grantpt(pm);
	unlockpt(pm);
	int pt = open(ptsname(pm) ? ptsname(pm) : "/nonexistent", O_RDWR | O_NOCTTY);
	struct termios tio;
	struct winsize ws = { 24, 80, 0, 0 };
	ioctl(pt, TCGETS, &tio);
	ioctl(pt, TIOCSWINSZ, &ws);
	ioctl(pt, TIOCGWINSZ, &ws);
	int nb = 1;                      /* (no FIONREAD here: a pty's input arrives later) */
	ioctl(pt, FIONBIO, &nb);
	tio.c_lflag &= ~(ICANON | ECHO);
	tio.c_cflag |= B9600 << 16;                                   /* CIBAUD: an input speed */
	ioctl(pt, TCSETSW, &tio);
	ioctl(pt, TCGETS, &tio);

	socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP);
	socket(AF_NETLINK, SOCK_RAW, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons(9),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind(s, (struct sockaddr *)&in4, sizeof in4);
	connect(s, (struct sockaddr *)&in4, sizeof in4);
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443),
				    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	connect(s6, (struct sockaddr *)&in6, sizeof in6);
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/nonexistent/usertrace.sock" };
	int su = socket(AF_UNIX, SOCK_STREAM, 0);
	connect(su, (struct sockaddr *)&un, sizeof un);
	connect(su, (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 5);
	int t = socket(AF_INET6, SOCK_STREAM, 0), on = 1;
	setsockopt(t, SOL_TCP, TCP_NODELAY, &on, sizeof on);
	setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
	setsockopt(t, SOL_TCP, TCP_CONGESTION, "reno", 4);
	setsockopt(t, SOL_TCP, 99, &on, sizeof on);
	setsockopt(t, SOL_SOCKET, 99, &on, sizeof on);
	struct linger lg = { 1, 5 };
	setsockopt(t, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	setsockopt(t, SOL_SOCKET, SO_SNDBUF, &on, 2);
	struct timeval tv = { 3, 0 };
	setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int got;
	char cc[64];
	socklen_t glen = sizeof got;
	getsockopt(t, SOL_SOCKET, SO_ERROR, &got, &glen);
	glen = sizeof got;
	getsockopt(t, SOL_SOCKET, SO_TYPE, &got, &glen);
	glen = sizeof cc;
	getsockopt(t, SOL_TCP, TCP_CONGESTION, cc, &glen);
	glen = 2;
	getsockopt(t, SOL_SOCKET, SO_RCVBUF, &got, &glen);
	glen = sizeof got;
	getsockopt(t, SOL_SOCKET, 99, &got, &glen);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer, alen = sizeof any;
	bind(l, (struct sockaddr *)&any, sizeof any);
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&any, &alen);
	int idle = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);    /* nobody comes: EAGAIN */
	listen(idle, 1);
	accept4(idle, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK);
	accept(idle, NULL, NULL);
	int cl = socket(AF_INET, SOCK_STREAM, 0);
	connect(cl, (struct sockaddr *)&any, sizeof any);
	plen = sizeof peer;                        /* (blocking: whenever the connection is in) */
	int a = accept4(l, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	plen = 2;                                                       /* too small: cut */
	getpeername(a, (struct sockaddr *)&peer, &plen);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	sendto(sv[1], "abc", 3, MSG_NOSIGNAL | MSG_DONTWAIT, NULL, 0);
	struct timespec nap = { 0, 2000 };
	nanosleep(&nap, NULL);
	recvfrom(sv[0], buf, sizeof buf, 0, NULL, NULL);
	shutdown(sv[0], SHUT_WR);

	void *m = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(m, 4096, PROT_READ | PROT_EXEC);
	madvise(m, 4096, MADV_DONTNEED);
	m = mremap(m, 4096, 8192, MREMAP_MAYMOVE);
	munmap(m, 8192);
	mmap(NULL, 4096, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT),
	     -1, 0);
	mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	syscall(SYS_futex, &word, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 1, NULL, NULL,
		FUTEX_BITSET_MATCH_ANY);
	syscall(SYS_futex, &word, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2, &word2, 0);
	syscall(SYS_futex, &word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0x10);

	kill(getpid(), 0);
	syscall(SYS_tgkill, getpid(), gettid(), 0);
	sigset_t old;
	sigprocmask(SIG_BLOCK, NULL, &old);
	prctl(PR_SET_NAME, "calls");
	prctl(PR_GET_DUMPABLE);
	personality(0xffffffff);
	access("/etc/passwd", R_OK | W_OK);
	access("/nonexistent", F_OK);
	mkdir("/nonexistent/d", 0755);
	mknod("/nonexistent/n", S_IFCHR | 0600, makedev(1, 3));
	mknod("/nonexistent/f", S_IFIFO | 0644, 0);
	unlinkat(AT_FDCWD, "/nonexistent", AT_REMOVEDIR);
	syscall(SYS_renameat2, AT_FDCWD, "/nonexistent/a", AT_FDCWD, "/nonexistent/b",
		RENAME_NOREPLACE);
	chmod("/nonexistent", 0644);
	chown("/nonexistent", -1, -1);
	getrandom(buf, 4, GRND_NONBLOCK);
	syscall(SYS_clock_gettime, CLOCK_BOOTTIME, &ts);
	ts.tv_sec = 0;
	ts.tv_nsec = 1000;
	nanosleep(&ts, NULL);
	prlimit(0, RLIMIT_NOFILE, NULL, &rl);
	sched_yield();
	epoll_create1(EPOLL_CLOEXEC);
	eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	inotify_init1(IN_NONBLOCK);
	syscall(SYS_memfd_create, "calls", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	syscall(SYS_close_range, 100, ~0U, 0);
	setpgid(0, 0);
	getpgrp();
	getsid(0);

	pid_t c = fork();
	if (c == 0)
		_exit(3);
	wait4(-1, &st, 0, NULL);
	c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	kill(c, SIGKILL);
	wait4(c, &st, 0, NULL);
	wait4(-1, &st, WNOHANG, NULL);
	return 0;
}
