/* A deterministic workload for the CLI tests: N getppid(), a failed and a good open,
 * a write of 5 bytes to /dev/null, then exit with the given code (or die of a signal). */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    int code = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < n; i++)
        getppid();
    open("/nonexistent/usertrace", O_RDONLY);
    int fd = open("/dev/null", O_WRONLY);
    write(fd, "hello", 5);
    close(fd);
    if (argc > 3 && strcmp(argv[3], "segv") == 0)
        raise(SIGSEGV);
    return code;
}
