/* Target of the probe tests: functions with arguments of every kind, global data, a loop.
 * Built as a PIE (the default) and, by the tests, as a non-PIE copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct point { int x, y; unsigned char flags; const char *label; };

long counter = 0x1122334455667788;
struct point origin = { 3, -4, 0x5a, "origin" };
const char *names[3] = { "alpha", "beta", "gamma" };

__attribute__((noinline)) long add_point(struct point *p, long scale, const char *tag)
{
	counter += p->x * scale + p->y + (long)strlen(tag);
	return counter;
}

__attribute__((noinline)) int fact(int n)
{
	return n <= 1 ? 1 : n * fact(n - 1);
}

__attribute__((noinline)) void touch(const char **list, int n)
{
	for (int i = 0; i < n; i++)
		counter += list[i][0];
}

int main(int argc, char **argv)
{
	int loops = argc > 1 ? atoi(argv[1]) : 1;
	struct point p = { 10, 20, 0xa5, "here" };
	for (int i = 0; i < loops; i++) {
		add_point(&p, i, "tagged");
		touch(names, 3);
	}
	printf("%ld %d\n", counter, fact(5));
	return 0;
}
