/* Functions to put breakpoints on, called in a loop; instructions fixed in assembly so that
 * a test knows what is at each offset.
 *
 *   add_one:  +0 endbr64 | +4 push %rbp | +5 mov %rdi,%rax | +8 add $1,%rax | +12 pop %rbp
 *             +13 ret
 *   depth:    recursion (n, n-1, ... 0), for return probes
 *
 * usage: probed N [threads T] [fork]  -- T threads each call add_one(i) for i < N and
 * depth(3) N times; prints the sum of add_one's results; with "fork" the main thread forks
 * a child that does the same before it exits.  When the first argument is "wait" it prints
 * "ready" and waits for a line on stdin first, and for another line before it exits. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

long add_one(long x);
asm(".text\n.globl add_one\n.type add_one,@function\nadd_one:\n"
    "\tendbr64\n\tpush %rbp\n\tmov %rdi,%rax\n\tadd $1,%rax\n\tpop %rbp\n\tret\n"
    ".size add_one,.-add_one\n");

__attribute__((noinline)) long depth(long n)
{
	if (n <= 0)
		return 0;
	return 1 + depth(n - 1);
}

static long n;

static void *run(void *arg)
{
	long sum = 0;
	for (long i = 0; i < n; i++) {
		sum += add_one(i);
		sum += depth(3) - 3;
	}
	return (void *)sum;
}

int main(int argc, char **argv)
{
	int a = 1;
	if (argc > 1 && strcmp(argv[1], "wait") == 0) {
		char line[16];
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin))
			return 1;
		a = 2;
	}
	n = argc > a ? atol(argv[a]) : 10;
	int threads = 1, forking = 0;
	for (int i = a + 1; i < argc; i++) {
		if (strcmp(argv[i], "threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "fork") == 0)
			forking = 1;
	}
	pid_t child = forking ? fork() : -1;
	pthread_t t[64];
	long total = 0;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, run, NULL);
	for (int i = 0; i < threads; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (long)r;
	}
	if (child == 0) {
		printf("child %ld\n", total);
		return 0;
	}
	if (child > 0)
		waitpid(child, NULL, 0);
	printf("%ld\n", total);
	fflush(stdout);
	if (a == 2) {
		char line[16];
		if (!fgets(line, sizeof line, stdin))
			return 1;
	}
	return 0;
}
