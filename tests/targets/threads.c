/* N threads (pthread_create: clone3), each calls getppid() ITER times and gettid() once. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int iters;

static void *work(void *arg)
{
	(void)arg;
	for (int i = 0; i < iters; i++)
		syscall(SYS_getppid);
	syscall(SYS_gettid);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	iters = argc > 2 ? atoi(argv[2]) : 10;
	pthread_t th[64];
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, work, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 0;
}
