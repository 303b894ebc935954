/* Renames its thread by writing /proc/thread-self/comm (not prctl: only a refresh of the
 * tracer's sees it), with spaces and parentheses, then makes argv[1] getppid() calls. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *name = "my (odd) name)";
	int fd = open("/proc/thread-self/comm", O_WRONLY);
	if (fd < 0 || write(fd, name, strlen(name)) != (ssize_t)strlen(name))
		return 2;
	close(fd);
	long n = argc > 1 ? atol(argv[1]) : 300;
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return 0;
}
