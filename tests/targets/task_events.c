/* Task events: a handler and an ignored signal, threads, a child killed by its own signal,
 * a threaded child that faults, a child that execs, and exit_group with threads running. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/wait.h>
static void on_usr1(int s) { (void)s; }
static void *spin(void *a) { for (;;) pause(); return 0; }
int main(int argc, char **argv) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1; sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR1);
    sigset_t chld; sigemptyset(&chld); sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, 0);   /* (under ptrace, a SIGCHLD would cut its sleeps) */
    pthread_t t; pthread_create(&t, 0, spin, 0); pthread_create(&t, 0, spin, 0);
    usleep(10000);
    if (fork() == 0) { raise(SIGSEGV); }
    if (fork() == 0) { pthread_create(&t, 0, spin, 0); usleep(5000); *(volatile int *)0 = 1; }
    if (fork() == 0) { execl("/bin/true", "true", (char *)0); }
    usleep(50000);
    while (wait(NULL) > 0) ;
    exit(atoi(argv[1]));
}
