/* Calls hit(i) for i in 0..N-1 (argv[1], default 5), a getppid() after each call; hit() is
 * not inlined, so a uprobe on it fires N times.  Exit status: 0. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) int hit(int x)
{
	__asm__ volatile("" : : : "memory");
	return x * 2;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5;
	int sum = 0;
	for (int i = 0; i < n; i++) {
		sum += hit(i);
		syscall(SYS_getppid);
	}
	return sum < 0;
}
