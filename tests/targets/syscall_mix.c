/* Target of the compiled-stops tests (tests/e2e/test_syscall_compiled.py): calls whose
 * records carry nothing, a string (cut, unprintable, NULL, unreadable) or a buffer (sized by
 * an argument at the entry, by the result at the exit; empty, unreadable, failed), from the
 * main thread, THREADS threads (3 unless given, at most 64) and a fork child.
 *
 * usage: syscall_mix ROUNDS [THREADS] */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void round_of_calls(void)
{
	char buf[512];
	getppid();
	int fd = open("/etc/passwd", O_RDONLY);
	read(fd, buf, sizeof buf);                 /* ret bytes recorded, at most -s */
	lseek(fd, 0, SEEK_END);
	read(fd, buf, sizeof buf);                 /* 0: the end */
	close(fd);
	open("/nonexistent/a-path-longer-than-the-string-size-given", O_RDONLY);
	open("bad\001\177\351name", O_RDONLY);      /* unprintable bytes */
	syscall(SYS_openat, AT_FDCWD, NULL, O_RDONLY);          /* NULL */
	syscall(SYS_openat, AT_FDCWD, (char *)8, O_RDONLY);     /* unreadable */
	int null = open("/dev/null", O_WRONLY);
	for (int i = 0; i < (int)sizeof buf; i++)
		buf[i] = (char)i;
	write(null, buf, 100);                     /* more than -s */
	write(null, buf, 0);
	syscall(SYS_write, null, (char *)8, 10);   /* unreadable: EFAULT */
	close(null);
	read(-1, buf, 10);                         /* EBADF: nothing read */
}

static long rounds;

static void *worker(void *arg)
{
	for (long i = 0; i < rounds; i++)
		round_of_calls();
	return arg;
}

int main(int argc, char **argv)
{
	rounds = argc > 1 ? atol(argv[1]) : 5;
	int threads = argc > 2 ? atoi(argv[2]) : 3;
	if (threads < 0 || threads > 64)
		threads = 64;
	pthread_t t[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (long i = 0; i < rounds; i++)
		round_of_calls();
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	pid_t child = fork();
	if (child == 0) {
		round_of_calls();
		_exit(0);
	}
	waitpid(child, NULL, 0);
	return 0;
}
