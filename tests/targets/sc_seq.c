/* A fixed sequence of system calls with known arguments, then exit(argv[1]).
 * Used to compare the engine with the kernel's syscall events and with strace. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int code = argc > 1 ? atoi(argv[1]) : 0;
	char buf[16];

	syscall(SYS_getppid);
	syscall(SYS_close, 12345);                         /* EBADF */
	syscall(SYS_close, -1L);                           /* all 64 bits set */
	syscall(SYS_openat, AT_FDCWD, 0L, 0x241, 0644);    /* EFAULT */
	int fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0);
	syscall(SYS_read, fd, buf, sizeof buf);            /* 0: end of file */
	syscall(SYS_lseek, fd, 7, SEEK_SET);
	syscall(SYS_close, fd);
	syscall(SYS_getppid);
	syscall(SYS_exit_group, code);
	return 99;
}
