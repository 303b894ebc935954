/* Target of the probe-event tests (end to end, and against the kernel's uprobes): a record
 * with a field of every integer type, bitfields, nested pointers, strings and arrays; a
 * recursive function; a function in assembly whose instructions are known by offset (a probe
 * on endbr64, one mid-function on an instruction run out of line); a library loaded by
 * dlopen (tests/targets/probe_lib.c, built beside this program as libprobelib.so); bump, a
 * locked instruction, which no probe may be placed on.
 *
 *   visit:  +0 endbr64 | +4 push %rbp | +5 mov %rsp,%rbp | +8 mov (%rdi),%rax
 *           +11 add %rsi,%rax | +14 pop %rbp | +15 ret          (returns r->s8 word + depth)
 *
 * usage: probe_hits [N]  -- N rounds (default 2) of walk(), fact(5), visit(); then dlopen the
 * library (from the program's directory) and call lib_hello twice.  Prints a checksum. */
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct inner {
	const char *name;
	unsigned short codes[3];
	struct inner *next;
};

struct rec {
	signed char s8;
	unsigned char u8;
	short s16;
	unsigned short u16;
	int s32;
	unsigned int u32;
	long s64;
	unsigned long u64;
	char letter;
	unsigned int bits;          /* read as bitfields: b4@0/32, b3@4/32, b9@7/32 */
	struct inner *inner;
	const char *tags[3];
	const char *nothing;        /* NULL: a string that faults */
};

struct inner deep = { "deep", { 7, 8, 9 }, NULL };
struct inner shallow = { "shallow", { 1, 2, 65535 }, &deep };
struct rec record = {
	-5, 250, -1234, 54321, -100000, 4000000000u, -9000000000L, 18000000000000000000UL,
	'Q', 0x5a5u | (3u << 4) | (300u << 7), &shallow, { "alpha", "beta", "" }, NULL,
};
long counter = 0x1122334455667788;

long visit(struct rec *r, long depth);
asm(".text\n.globl visit\n.type visit,@function\nvisit:\n"
    "\tendbr64\n\tpush %rbp\n\tmov %rsp,%rbp\n\tmov (%rdi),%rax\n\tadd %rsi,%rax\n"
    "\tpop %rbp\n\tret\n.size visit,.-visit\n");

void bump(void);              /* a LOCK prefix: an instruction no uprobe may be placed on */
asm(".text\n.globl bump\n.type bump,@function\nbump:\n"
    "\tlock incq counter(%rip)\n\tret\n.size bump,.-bump\n");

__attribute__((noinline)) long walk(struct rec *r, const char *label, int round)
{
	counter += r->s32 + (long)strlen(label) + round;
	return counter;
}

__attribute__((noinline)) long fact(long n)
{
	return n <= 1 ? 1 : n * fact(n - 1);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 2;
	long sum = 0;
	for (int i = 0; i < rounds; i++) {
		sum += walk(&record, i ? "again" : "first", i);
		sum += fact(5);
		sum += visit(&record, i);
	}
	bump();
	char lib[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return 2;
	self[n] = 0;
	snprintf(lib, sizeof lib, "%s/libprobelib.so", dirname(self));
	void *h = dlopen(lib, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 3;
	}
	long (*hello)(long, const char *) = (long (*)(long, const char *))dlsym(h, "lib_hello");
	sum += hello(41, "from main");
	sum += hello(42, "again");
	printf("%ld\n", sum);
	return 0;
}
