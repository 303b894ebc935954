/* Calls every x86_64 system call number once, with arguments that make it fail at once
 * (-1 everywhere: a bad descriptor, a bad pointer, a bad flag), so that a tracer names each
 * call.  The calls that would end, stop, fork or hang the program even so are skipped; their
 * numbers are given on the command line.  Used to list strace's syscall classes:
 *     strace -f -qq -e trace=%file -o out every_syscall 60 231 57 58 ...
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
    static char skip[1024];
    for (int i = 1; i < argc; i++) {
        int nr = atoi(argv[i]);
        if (nr >= 0 && nr < 1024)
            skip[nr] = 1;
    }
    for (long nr = 0; nr < 1024; nr++) {
        if (skip[nr])
            continue;
        syscall(nr, -1L, -1L, -1L, -1L, -1L, -1L);
    }
    return 0;
}
