/* A library that tests/targets/probe_hits.c loads with dlopen (built as libprobelib.so). */
#include <string.h>

static long calls;

__attribute__((noinline)) long lib_hello(long x, const char *who)
{
	calls++;
	return x + (long)strlen(who) + calls;
}
