/* Signals under a tracer:
 *   handler  SIGUSR1 to itself, caught by a handler that writes "usr1"; exit 0
 *   restart  a read() on a pipe interrupted by SIGALRM with SA_RESTART: the read restarts
 *            and gets the byte a child writes later; exit 0 if it did
 *   eintr    the same without SA_RESTART: read fails with EINTR; exit 0 if it did
 *   sleep    nanosleep interrupted by a handled SIGALRM, restarted by hand; exit 0
 *   stop     raise(SIGSTOP); a child sees us stopped (and staying stopped), sends SIGCONT;
 *            exit 0 if it did and SIGCHLD was caught
 *   kill SIG raise(SIG) with the default action (dies), e.g. "kill 11"
 *   abort    abort(): SIGABRT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_signal(int sig)
{
	got = sig;
	if (sig == SIGUSR1)
		write(1, "usr1\n", 5);
}

static void handle(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

static int pipe_read(int flags)
{
	int p[2];
	char c = 0;
	pipe(p);
	handle(SIGALRM, flags);
	pid_t child = fork();
	if (child == 0) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		write(p[1], "x", 1);
		_exit(0);
	}
	ualarm(100 * 1000, 0);
	ssize_t n = read(p[0], &c, 1);
	int err = errno;
	waitpid(child, NULL, 0);
	if (flags & SA_RESTART)
		return !(n == 1 && c == 'x' && got == SIGALRM);
	return !(n == -1 && err == EINTR && got == SIGALRM);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "handler";
	if (strcmp(what, "handler") == 0) {
		handle(SIGUSR1, 0);
		raise(SIGUSR1);
		return got == SIGUSR1 ? 0 : 1;
	}
	if (strcmp(what, "restart") == 0)
		return pipe_read(SA_RESTART);
	if (strcmp(what, "eintr") == 0)
		return pipe_read(0);
	if (strcmp(what, "sleep") == 0) {
		handle(SIGALRM, 0);
		ualarm(50 * 1000, 0);
		struct timespec req = { 0, 200 * 1000 * 1000 }, rem;
		int interrupted = 0;
		while (nanosleep(&req, &rem) == -1 && errno == EINTR) {
			interrupted++;
			req = rem;
		}
		return interrupted == 1 ? 0 : 1;
	}
	if (strcmp(what, "stop") == 0) {
		/* The child checks that we really are stopped before it continues us. */
		handle(SIGCHLD, 0);
		pid_t me = getpid();
		pid_t child = fork();
		if (child == 0) {
			char path[64], buf[512], state = '?';
			snprintf(path, sizeof path, "/proc/%d/stat", (int)me);
			for (int i = 0; i < 200 && state != 'T' && state != 't'; i++) {
				struct timespec ts = { 0, 10 * 1000 * 1000 };
				nanosleep(&ts, NULL);
				FILE *f = fopen(path, "r");
				if (f && fgets(buf, sizeof buf, f))
					state = strrchr(buf, ')')[2];
				if (f)
					fclose(f);
			}
			/* Stopped it must stay until we continue it. */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			FILE *f = fopen(path, "r");
			if (f && fgets(buf, sizeof buf, f))
				state = strrchr(buf, ')')[2];
			kill(me, SIGCONT);
			_exit(state == 'T' || state == 't' ? 0 : 1);
		}
		raise(SIGSTOP);
		int st;
		while (waitpid(child, &st, 0) == -1 && errno == EINTR)
			;
		return got == SIGCHLD && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
	}
	if (strcmp(what, "kill") == 0) {
		raise(argc > 2 ? atoi(argv[2]) : SIGTERM);
		return 3;
	}
	if (strcmp(what, "abort") == 0)
		abort();
	return 4;
}
