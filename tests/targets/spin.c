/* Runs until killed: getppid() and a 1 ms sleep in a loop; prints "ready" first.
 * With "threads" it runs 3 more threads doing the same; with "fork" it forks a child every
 * 20 passes that calls getppid() and exits, and waits for it.  Each pass increments a counter
 * that it writes to the file argv[1] every 50 passes (to see it keeps running). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int forking;

static void *loop(void *arg)
{
	const char *path = arg;
	struct timespec ts = { 0, 1000 * 1000 };
	for (long n = 1;; n++) {
		syscall(SYS_getppid);
		nanosleep(&ts, NULL);
		if (forking && n % 20 == 0) {
			pid_t c = fork();
			if (c == 0) {
				syscall(SYS_getppid);
				_exit(0);
			}
			waitpid(c, NULL, 0);
		}
		if (path && n % 50 == 0) {
			FILE *f = fopen(path, "w");
			if (f) {
				fprintf(f, "%ld\n", n);
				fclose(f);
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	if (argc > 2 && strcmp(argv[2], "threads") == 0) {
		pthread_t t;
		for (int i = 0; i < 3; i++)
			pthread_create(&t, NULL, loop, NULL);
	}
	forking = argc > 2 && strcmp(argv[2], "fork") == 0;
	printf("ready\n");
	fflush(stdout);
	loop((void *)path);
	return 0;
}
