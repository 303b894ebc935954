/* Target of the compiled-hit tests (tests/e2e/test_probe_compiled.py): functions written in
 * assembly whose first instruction is each one usertrace emulates, called N times.  A wrong
 * emulation shows in the sum printed (or kills the program):
 *
 *   f_endbr   endbr64              f_nop     nop
 *   f_push    push %rbp            f_push+1  mov %rsp,%rbp
 *   f_rbx     push %rbx            f_r12     push %r12 (REX)   (the caller's value must come back)
 *   f_jmp     jmp over a ud2       f_call    call a helper (returning mid-instruction faults)
 *
 * Each takes (long i, struct data *d) and returns i plus a constant of its own.
 * usage: probe_prologues N   -- prints "SUM <sum>" */
#include <stdio.h>
#include <stdlib.h>

struct data {
	unsigned int a;
	unsigned int bits;          /* b3@4/32 is 5 */
	unsigned long *p;
};

unsigned long deep = 0x1122334455667788UL;
struct data data = { 4000000000u, 0x5au, &deep };

long f_endbr(long i, struct data *d);
long f_nop(long i, struct data *d);
long f_push(long i, struct data *d);
long use_rbx(long i, struct data *d);
long use_r12(long i, struct data *d);
long f_jmp(long i, struct data *d);
long f_call(long i, struct data *d);
asm(".text\n"
    ".globl f_endbr\n.type f_endbr,@function\nf_endbr:\n"
    "\tendbr64\n\tpush %rbp\n\tlea 1(%rdi),%rax\n\tpop %rbp\n\tret\n.size f_endbr,.-f_endbr\n"
    ".globl f_nop\n.type f_nop,@function\nf_nop:\n"
    "\tnop\n\tlea 2(%rdi),%rax\n\tret\n.size f_nop,.-f_nop\n"
    ".globl f_push\n.type f_push,@function\nf_push:\n"
    "\tpush %rbp\n\tmov %rsp,%rbp\n\tlea 3(%rdi),%rax\n\tmov %rbp,%rdx\n\tsub %rsp,%rdx\n"
    "\tadd %rdx,%rax\n\tpop %rbp\n\tret\n.size f_push,.-f_push\n"
    ".globl f_rbx\n.type f_rbx,@function\nf_rbx:\n"
    "\tpush %rbx\n\txor %ebx,%ebx\n\tpop %rbx\n\tlea 4(%rbx),%rax\n\tret\n.size f_rbx,.-f_rbx\n"
    ".globl use_rbx\n.type use_rbx,@function\nuse_rbx:\n"
    "\tpush %rbx\n\tmov %rdi,%rbx\n\tcall f_rbx\n\tpop %rbx\n\tret\n.size use_rbx,.-use_rbx\n"
    ".globl f_r12\n.type f_r12,@function\nf_r12:\n"
    "\tpush %r12\n\txor %r12d,%r12d\n\tpop %r12\n\tlea 5(%r12),%rax\n\tret\n.size f_r12,.-f_r12\n"
    ".globl use_r12\n.type use_r12,@function\nuse_r12:\n"
    "\tpush %r12\n\tmov %rdi,%r12\n\tcall f_r12\n\tpop %r12\n\tret\n.size use_r12,.-use_r12\n"
    ".globl f_jmp\n.type f_jmp,@function\nf_jmp:\n"
    "\tjmp 1f\n\tud2\n1:\tlea 6(%rdi),%rax\n\tret\n.size f_jmp,.-f_jmp\n"
    ".globl f_call\n.type f_call,@function\nf_call:\n"
    "\tcall plus7\n\tmov $1,%ecx\n\tadd %rcx,%rax\n\tret\n.size f_call,.-f_call\n"
    ".type plus7,@function\nplus7:\n\tlea 7(%rdi),%rax\n\tret\n.size plus7,.-plus7\n");

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10, sum = 0;
	for (long i = 0; i < n; i++) {
		data.a = (unsigned int)i;
		sum += f_endbr(i, &data) + f_nop(i, &data) + f_push(i, &data) + use_rbx(i, &data)
		       + use_r12(i, &data) + f_jmp(i, &data) + f_call(i, &data);
	}
	printf("SUM %ld\n", sum);
	return 0;
}
