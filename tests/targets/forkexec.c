/* A chain of processes: fork a child that execs this program with depth-1 (or, at depth 0,
 * exits with 7); vfork a child that execs /bin/true; wait for both.  Exit status: the sum of
 * the children's exit codes (7 at the first level).  "thread-exec" makes a thread exec. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *self;

static void *exec_from_thread(void *arg)
{
	(void)arg;
	char *argv[] = { self, "0", NULL };
	execv(self, argv);
	_exit(126);
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc > 1 && strcmp(argv[1], "thread-exec") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, exec_from_thread, NULL);
		pthread_join(t, NULL);
		return 125;
	}
	int depth = argc > 1 ? atoi(argv[1]) : 2;
	if (depth == 0) {
		syscall(SYS_getppid);
		return 7;
	}
	char arg[16];
	snprintf(arg, sizeof arg, "%d", depth - 1);
	pid_t a = fork();
	if (a == 0) {
		char *cargv[] = { self, arg, NULL };
		execv(self, cargv);
		_exit(127);
	}
	pid_t b = vfork();
	if (b == 0) {
		char *cargv[] = { "true", NULL };
		execv("/bin/true", cargv);
		_exit(127);
	}
	int sa, sb;
	waitpid(a, &sa, 0);
	waitpid(b, &sb, 0);
	return WEXITSTATUS(sa) + WEXITSTATUS(sb);
}
