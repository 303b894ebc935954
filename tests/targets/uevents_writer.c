/*
 * uevents_writer: a user events writer in C that follows docs/user_events.md, no library.
 *
 *   uevents_writer [-n COUNT] [-t THREADS] [-e NAME] [-m MODE] [-s SESSION_DIR]
 *
 * Registers "NAME u32 seq; u64 val; __data_loc char[] msg" (NAME defaults to c_evt) in the
 * session (USERTRACE_SESSION, else $XDG_RUNTIME_DIR/usertrace, else /dev/shm/usertrace-UID),
 * then each of THREADS threads emits COUNT records (seq = 0..COUNT-1, val = thread number,
 * msg = "c says <seq>") while the event is enabled.  MODE makes every record one the tracer
 * must refuse: short (payload shorter than the fields), oob (__data_loc outside the
 * payload), nonul (string without its NUL), badtype (wrong common_type), big (longer than a
 * page allows).  MODE loop emits forever and prints "ready" once the first record is
 * published (for kill tests).  Prints "index N" after registering and "lost N" at the end.
 * Exits 0; 2 on a usage or session error, 3 on a registration refusal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The layouts of docs/user_events.md. */
#define MAX_EVENTS 4096
#define MAX_EVENT_DESC 512
#define CONTROL_SIZE (4096 + 96 * 128)
#define CTL_GENERATION 16
#define CTL_RING_SIZE 24
#define CTL_PATTERNS 4096
#define PATTERN_SLOT 128
#define MAX_PATTERNS 96
#define REG_HIGH 20
#define REG_NEXT_SERIAL 24
#define REGISTRY_HEADER 4096
#define SLOT_SIZE 576
#define REGISTRY_SIZE (REGISTRY_HEADER + MAX_EVENTS * SLOT_SIZE)
#define HOLDER_SIZE (32 + MAX_EVENTS / 8)
#define RING_HEADER 4096
#define RH_HEAD 64
#define RH_TAIL 128
#define RH_LOST 192
#define WRAP_MARK 0xFFFFFFFFu
#define ID_BASE 40000
#define MAX_PAYLOAD (4096 - 16 - 8 - 8)

struct slot {                 /* one registry slot, SLOT_SIZE bytes */
	uint32_t state, flags;
	uint64_t serial, multi_id;
	uint32_t def_len, reserved;
	char def[MAX_EVENT_DESC];
};

struct record_header {        /* 24 bytes, then the kernel record */
	uint32_t payload_len, index_word;
	uint64_t ts;
	int32_t cpu;
	uint32_t reserved;
	/* the kernel's common fields */
	uint16_t common_type;
	uint8_t common_flags, common_preempt_count;
	int32_t common_pid;
} __attribute__((packed));

static int dfd, reg_fd;
static unsigned char *status_page, *control, *registry;
static char event_name[64] = "c_evt";
static char canonical[MAX_EVENT_DESC];
static int index_, count = 10, nthreads = 1;
static uint32_t index_word;
static const char *mode = "good";
static uint64_t lost_total;
static pthread_mutex_t lost_lock = PTHREAD_MUTEX_INITIALIZER;

static void die(int code, const char *what)
{
	fprintf(stderr, "uevents_writer: %s: %s\n", what, errno ? strerror(errno) : "refused");
	exit(code);
}

static void lock_registry(int type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	while (fcntl(reg_fd, F_SETLKW, &fl) < 0)
		if (errno != EINTR)
			die(2, "lock");
}

static int open_checked(const char *name, int flags)
{
	struct stat st;
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()
	    || (st.st_mode & 077)) {
		errno = EPERM;
		die(2, name);
	}
	return fd;
}

static void *map_file(const char *name, size_t size)
{
	int fd = open_checked(name, O_RDWR);
	void *p;

	if (fd < 0)
		die(2, name);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die(2, name);
	if (strcmp(name, "registry") == 0)
		reg_fd = fd;
	else
		close(fd);
	return p;
}

static void open_session(const char *path)
{
	char buf[4096];
	struct stat st;

	if (!path) {
		path = getenv("USERTRACE_SESSION");
		if (!path || !*path) {
			const char *xdg = getenv("XDG_RUNTIME_DIR");

			if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode)
			    && st.st_uid == geteuid() && !(st.st_mode & 077))
				snprintf(buf, sizeof(buf), "%s/usertrace", xdg);
			else
				snprintf(buf, sizeof(buf), "/dev/shm/usertrace-%u", geteuid());
			path = buf;
		}
	}
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		die(2, path);
	if (fstat(dfd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		errno = EPERM;
		die(2, path);
	}
	registry = map_file("registry", REGISTRY_SIZE);
	control = map_file("control", CONTROL_SIZE);
	status_page = map_file("status", MAX_EVENTS);
	if (memcmp(registry, "UTUEREG1", 8) || memcmp(control, "UTUECTL1", 8)) {
		errno = EPROTO;
		die(2, "session layout");
	}
}

static void bump_generation(void)
{
	uint64_t *gen = (uint64_t *)(control + CTL_GENERATION);

	__atomic_store_n(gen, *gen + 1, __ATOMIC_RELEASE);
}

static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')'))) {
		p += 2;
		for (i = 0; i < 19 && p; i++)   /* field 3 onwards: skip to field 22 */
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		if (p)
			start = strtoull(p, NULL, 10);
	}
	fclose(f);
	return start;
}

/* proc-<pid>: the events this process holds (made under the registration lock). */
static void hold(int index)
{
	char name[64];
	unsigned char *h;
	int fd;

	snprintf(name, sizeof(name), "proc-%d", getpid());
	fd = open_checked(name, O_RDWR | O_CREAT);
	if (fd < 0 || ftruncate(fd, 0) < 0 || ftruncate(fd, HOLDER_SIZE) < 0)
		die(2, name);
	h = mmap(NULL, HOLDER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		die(2, name);
	*(uint32_t *)(h + 8) = getpid();
	*(uint64_t *)(h + 16) = start_time(getpid());
	h[32 + index / 8] |= 1 << (index % 8);
	memcpy(h, "UTUEPROC", 8);
	munmap(h, HOLDER_SIZE);
	close(fd);
}

static unsigned char pattern_bits(const char *full_name)
{
	unsigned char bits = 0;
	int k;

	for (k = 0; k < MAX_PATTERNS; k++) {
		unsigned char *p = control + CTL_PATTERNS + k * PATTERN_SLOT;
		uint16_t len = *(uint16_t *)(p + 2);
		char glob[PATTERN_SLOT];

		if (!p[0] || !len || len > PATTERN_SLOT - 4)
			continue;
		memcpy(glob, p + 4, len);
		glob[len] = 0;
		if (fnmatch(glob, full_name, FNM_NOESCAPE) == 0)
			bits |= p[1];
	}
	return bits;
}

static void register_event(void)
{
	uint32_t *high = (uint32_t *)(registry + REG_HIGH);
	uint64_t *next_serial = (uint64_t *)(registry + REG_NEXT_SERIAL);
	size_t nlen = strlen(event_name);
	struct slot *s;
	char full[128];
	int i, free_i = -1;

	snprintf(canonical, sizeof(canonical), "%s u32 seq; u64 val; __data_loc char[] msg",
		 event_name);
	lock_registry(F_WRLCK);
	for (i = 1; i < (int)*high && i < MAX_EVENTS; i++) {
		s = (struct slot *)(registry + REGISTRY_HEADER + i * SLOT_SIZE);
		if (s->state != 1) {
			if (free_i < 0)
				free_i = i;
			continue;
		}
		if (s->flags & 2)           /* multi-format events do not clash */
			continue;
		if (strncmp(s->def, event_name, nlen) || (s->def[nlen] != ' ' && s->def[nlen]))
			continue;
		if (s->def_len == strlen(canonical) && !memcmp(s->def, canonical, s->def_len)) {
			index_ = i;
			break;
		}
		fprintf(stderr, "uevents_writer: %s is registered as '%.*s'\n", event_name,
			(int)s->def_len, s->def);
		exit(3);
	}
	if (!index_) {
		index_ = free_i > 0 ? free_i : (int)*high;
		if (index_ >= MAX_EVENTS) {
			errno = EMFILE;
			die(3, "register");
		}
		s = (struct slot *)(registry + REGISTRY_HEADER + index_ * SLOT_SIZE);
		memset(s, 0, SLOT_SIZE);
		memcpy(s->def, canonical, strlen(canonical));
		s->def_len = strlen(canonical);
		s->serial = (*next_serial) ? *next_serial : 1;
		*next_serial = s->serial + 1;
		__atomic_store_n(&s->state, 1, __ATOMIC_RELEASE);
		if (index_ >= (int)*high)
			*high = index_ + 1;
		snprintf(full, sizeof(full), "user_events:%s", event_name);
		status_page[index_] = pattern_bits(full);
	}
	s = (struct slot *)(registry + REGISTRY_HEADER + index_ * SLOT_SIZE);
	index_word = index_ | (uint32_t)(s->serial & 0xffff) << 16;
	hold(index_);
	bump_generation();
	lock_registry(F_UNLCK);
	printf("index %d\n", index_);
	fflush(stdout);
}

struct ring {
	unsigned char *base, *data;
	uint64_t size, head, tail, lost;
	pid_t tid;
};

static void make_ring(struct ring *r, int seq)
{
	uint64_t size = *(uint64_t *)(control + CTL_RING_SIZE);
	char tmp[104], name[96];
	unsigned char *b;
	int fd;

	if (!size)
		size = 2 << 20;
	r->tid = syscall(SYS_gettid);
	snprintf(name, sizeof(name), "ring-%d-%d-c%d", getpid(), r->tid, seq);
	snprintf(tmp, sizeof(tmp), ".%s", name);
	unlinkat(dfd, tmp, 0);
	fd = open_checked(tmp, O_RDWR | O_CREAT | O_EXCL);
	if (fd < 0 || ftruncate(fd, RING_HEADER + size) < 0)
		die(2, tmp);
	b = mmap(NULL, RING_HEADER + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		die(2, tmp);
	close(fd);
	*(uint32_t *)(b + 8) = 1;                  /* version */
	*(uint32_t *)(b + 12) = RING_HEADER;
	*(uint64_t *)(b + 16) = size;
	*(uint32_t *)(b + 24) = getpid();
	*(uint32_t *)(b + 28) = r->tid;
	snprintf((char *)b + 32, 16, "uevents_writer");
	*(uint64_t *)(b + 48) = start_time(getpid());
	memcpy(b, "UTUERNG1", 8);
	if (renameat(dfd, tmp, dfd, name) < 0)
		die(2, name);
	lock_registry(F_WRLCK);
	bump_generation();
	lock_registry(F_UNLCK);
	r->base = b;
	r->data = b + RING_HEADER;
	r->size = size;
	r->head = r->tail = r->lost = 0;
}

static int room(struct ring *r, uint64_t need)
{
	if (r->head + need - r->tail <= r->size)
		return 1;
	r->tail = __atomic_load_n((uint64_t *)(r->base + RH_TAIL), __ATOMIC_ACQUIRE);
	return r->head + need - r->tail <= r->size;
}

/* One record; returns 0 when the ring is full (the loss is counted). */
static int emit(struct ring *r, uint32_t seq, uint64_t val)
{
	char msg[64];
	uint32_t mlen = snprintf(msg, sizeof(msg), "c says %u", seq) + 1;
	uint32_t fixed = 4 + 8 + 4, plen = fixed + mlen, reclen, pos;
	uint32_t loc = mlen << 16 | (8 + fixed);
	struct record_header h;
	unsigned char *p;

	if (!strcmp(mode, "short"))
		plen = fixed - 1;
	else if (!strcmp(mode, "oob"))
		loc = (mlen + 4) << 16 | (8 + fixed);
	else if (!strcmp(mode, "nonul"))
		msg[mlen - 1] = '!';
	else if (!strcmp(mode, "big"))
		plen = MAX_PAYLOAD + 8;
	reclen = (sizeof(h) + plen + 7) & ~7u;
	pos = r->head & (r->size - 1);
	if (pos + reclen > r->size) {
		if (!room(r, r->size - pos + reclen))
			goto lost;
		*(uint32_t *)(r->data + pos) = WRAP_MARK;
		r->head += r->size - pos;
		pos = 0;
	} else if (!room(r, reclen)) {
		goto lost;
	}
	memset(&h, 0, sizeof(h));
	h.payload_len = plen;
	h.index_word = index_word;
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		h.ts = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	}
	h.cpu = sched_getcpu();
	h.common_type = ID_BASE + index_ + (!strcmp(mode, "badtype") ? 1 : 0);
	h.common_pid = r->tid;
	p = r->data + pos;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	if (plen >= 4)
		memcpy(p, &seq, 4);
	if (plen >= 12)
		memcpy(p + 4, &val, 8);
	if (plen >= 16)
		memcpy(p + 12, &loc, 4);
	if (plen > fixed)
		memcpy(p + fixed, msg, plen - fixed < mlen ? plen - fixed : mlen);
	if (plen > fixed + mlen)
		memset(p + fixed + mlen, 0, plen - fixed - mlen);
	r->head += reclen;
	/* Publish: the record is in place before the new head is visible. */
	__atomic_store_n((uint64_t *)(r->base + RH_HEAD), r->head, __ATOMIC_RELEASE);
	return 1;
lost:
	r->lost++;
	__atomic_store_n((uint64_t *)(r->base + RH_LOST), r->lost, __ATOMIC_RELEASE);
	return 0;
}

static void *writer(void *arg)
{
	long nth = (long)arg;
	struct ring r = { 0 };
	int made = 0, announced = 0;
	uint32_t seq;

	for (seq = 0; !strcmp(mode, "loop") || seq < (uint32_t)count; seq++) {
		if (!__atomic_load_n(&status_page[index_], __ATOMIC_RELAXED))
			continue;                   /* nobody listens: one byte read, nothing else */
		if (!made) {
			make_ring(&r, (int)nth);
			made = 1;
		}
		emit(&r, seq, nth);
		if (!announced && !strcmp(mode, "loop")) {
			printf("ready\n");
			fflush(stdout);
			announced = 1;
		}
	}
	pthread_mutex_lock(&lost_lock);
	lost_total += r.lost;
	pthread_mutex_unlock(&lost_lock);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *session = NULL;
	pthread_t th[64];
	int opt;
	long i;

	while ((opt = getopt(argc, argv, "n:t:e:m:s:")) != -1) {
		switch (opt) {
		case 'n': count = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'e': snprintf(event_name, sizeof(event_name), "%s", optarg); break;
		case 'm': mode = optarg; break;
		case 's': session = optarg; break;
		default:
			fprintf(stderr, "usage: uevents_writer [-n COUNT] [-t THREADS] [-e NAME] "
				"[-m good|short|oob|nonul|badtype|big|loop] [-s DIR]\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > 64)
		nthreads = 1;
	open_session(session);
	register_event();
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, writer, (void *)i);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	printf("lost %llu\n", (unsigned long long)lost_total);
	return 0;
}
