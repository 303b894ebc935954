/* SDT probes (<sys/sdt.h>, Debian's systemtap-sdt-dev), with semaphores; one tested first.
 * usage: probes_sdt [wait] */
#include <stdio.h>
#include <string.h>
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short utapp_request_semaphore __attribute__((unused, section(".probes")));
unsigned short utapp_served_semaphore __attribute__((unused, section(".probes")));
#define UTAPP_REQUEST_ENABLED() __builtin_expect(utapp_request_semaphore, 0)

static int served;

__attribute__((noinline)) void serve(int id, const char *path, long size)
{
	if (UTAPP_REQUEST_ENABLED())
		STAP_PROBE3(utapp, request, id, path, size);
	DTRACE_PROBE2(utapp, served, id, size);
	served++;
}

/* "wait": print the semaphore's address, then serve once per line read, until EOF. */
int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "wait") == 0) {
		char line[16];
		printf("%p\n", (void *)&utapp_request_semaphore);
		fflush(stdout);
		while (fgets(line, sizeof line, stdin)) {
			serve(3, "/wait", 7);
			printf("%d\n", served);
			fflush(stdout);
		}
		return 0;
	}
	serve(1, "/index.html", 1234);
	serve(2, "/about", -5);
	printf("%d\n", served);
	return 0;
}
