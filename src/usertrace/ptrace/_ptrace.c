/*
 * _ptrace: ptrace(2) called straight from Python, without ctypes' cost per call.
 *
 * The engine makes two ptrace calls at every syscall stop (PTRACE_GET_SYSCALL_INFO and the
 * resume) and three at every breakpoint hit (GETREGS, SETREGS, the resume).  Through ctypes
 * each call costs about 1.5 us on top of the system call (argument conversion, libffi);
 * through this module about 0.1 us.  Optional: where it is not built, or
 * USERTRACE_PURE_PYTHON=1, usertrace.ptrace.libc falls back to ctypes, which makes the
 * same calls with the same arguments and results.
 *
 *   ptrace(request, pid, addr, data) -> int
 *       The raw result of ptrace(2) (-1 on failure, the word for PTRACE_PEEK*).  ``addr``
 *       is an int (or None for 0); ``data`` an int, None, or a writable buffer (a bytearray,
 *       a ctypes array), whose address is passed.
 *   last_errno() -> int
 *       errno of the last call of this module that returned -1.
 *   hit(tid, regs, mem_fd, sites, resume) -> (calls, records) or None    (x86_64 only)
 *       A breakpoint hit served whole: the registers read into ``regs`` (a writable buffer
 *       of struct user_regs_struct), the records of the probes made (memory read through
 *       ``mem_fd``, the process's /proc/PID/mem), the displaced instruction emulated
 *       (registers written back, a pushed word poked), then the task resumed with
 *       ``ptrace(resume, tid, 0, 0)``.  ``sites`` maps a breakpoint's address to
 *       ``(emulation, specs, calls)`` as usertrace.ptrace.breakpoints compiles it (the
 *       shapes are told there and in usertrace.sources.probes.fetch); ``calls`` is handed
 *       back untouched with one record (bytes) per spec.  None, with nothing in the task
 *       changed, when the address is not in ``sites`` or a request failed: the caller then
 *       serves the hit itself (its Python path does the same, step by step).
 *   stops(tasks, plan, out, held[, given]) -> list or None
 *       Serve syscall stops until one needs Python (see usertrace.ptrace.engine, "compiled
 *       stops", for the plan and what it does): first the stops ``given`` (at most 64,
 *       ``(tid, status, ts)`` collected before the call), then waits for stops (the GIL
 *       released), and for
 *       each syscall stop of a task of ``tasks`` whose event has a compiled record (or
 *       none), makes the record, appends ``cpu, ts, record`` to ``out`` and resumes the
 *       task as the engine's loop would.  Returns the stops it did not serve, as
 *       ``[(tid, status, ts), ...]`` in the order they came, the first to be served next;
 *       None when ``out`` holds ``plan``'s limit of records, after as many stops, or when
 *       a signal interrupted the wait.  Raises ChildProcessError when no child is left; on an error of Python's,
 *       the stops collected and not resumed are appended to ``held`` as ``(tid, status)``.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int last_errno;

static int
as_word(PyObject *o, unsigned long *out)
{
    if (o == Py_None) {
        *out = 0;
        return 0;
    }
    *out = PyLong_AsUnsignedLongMask(o);
    return (*out == (unsigned long)-1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *
py_ptrace(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "ptrace(request, pid, addr, data) takes 4 arguments");
        return NULL;
    }
    long request = PyLong_AsLong(args[0]);
    if (request == -1 && PyErr_Occurred())
        return NULL;
    long pid = PyLong_AsLong(args[1]);
    if (pid == -1 && PyErr_Occurred())
        return NULL;
    unsigned long addr, data = 0;
    if (as_word(args[2], &addr) < 0)
        return NULL;
    Py_buffer view = {0};
    int have_view = 0;
    PyObject *d = args[3];
    if (PyLong_Check(d) || d == Py_None) {
        if (as_word(d, &data) < 0)
            return NULL;
    } else {
        if (PyObject_GetBuffer(d, &view, PyBUF_WRITABLE) < 0)
            return NULL;
        have_view = 1;
        data = (unsigned long)view.buf;
    }
    /* The raw system call: glibc's wrapper would turn PEEK requests into a store through
     * data; here a PEEK's word is the result, as ctypes' call of glibc's wrapper gives it. */
    long r;
    errno = 0;
    if (request >= PTRACE_PEEKTEXT && request <= PTRACE_PEEKUSER) {
        long word = 0;
        r = syscall(SYS_ptrace, request, pid, addr, &word);
        if (r == 0)
            r = word;
    } else {
        r = syscall(SYS_ptrace, request, pid, addr, data);
    }
    if (r == -1)
        last_errno = errno;
    if (have_view)
        PyBuffer_Release(&view);
    return PyLong_FromLong(r);
}

static PyObject *
py_last_errno(PyObject *module, PyObject *unused)
{
    return PyLong_FromLong(last_errno);
}


#ifdef __x86_64__
/* The shapes of usertrace.ptrace.breakpoints' compiled sites (keep the two in step). */
enum { EMU_NEXT = 1, EMU_JMP = 2, EMU_CALL = 3, EMU_PUSH = 4, EMU_MOV_SP_BP = 5 };
enum { BASE_REG = 0, BASE_IMM = 1, BASE_PC = 2, BASE_STACK = 3 };
#define NREGS (sizeof(struct user_regs_struct) / 8)
#define REG_IP (offsetof(struct user_regs_struct, rip) / 8)
#define REG_SP (offsetof(struct user_regs_struct, rsp) / 8)
#define REG_BP (offsetof(struct user_regs_struct, rbp) / 8)
#define HEADER 16                 /* u16 id, u8 flags, u8 preempt count, s32 pid, u64 ip */

/* Up to n bytes at addr through the process's /proc/PID/mem (fd), as
 * usertrace.sources.syscalls.source._read_bytes reads them: fewer where the memory ends. */
static Py_ssize_t
read_bytes(int fd, uint64_t addr, char *buf, Py_ssize_t n)
{
    Py_ssize_t got = 0;
    if (addr == 0 || n <= 0)
        return 0;
    while (got < n) {
        uint64_t at = addr + (uint64_t)got;
        if (at > (uint64_t)INT64_MAX)
            break;
        ssize_t r = pread(fd, buf + got, n - got, (off_t)at);
        if (r <= 0)
            break;
        got += r;
    }
    return got;
}

/* n (<= 8) bytes at addr, little-endian, as Process.peek reads them: -1 unless all of them */
static int
read_word(int fd, uint64_t addr, Py_ssize_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (read_bytes(fd, addr, (char *)&v, n) != n)
        return -1;
    *out = v;
    return 0;
}

/* The common fields of a trace event's record: u16 type, u8 flags, u8 preempt count, s32
 * pid. */
static void
common_fields(unsigned char *p, uint16_t id, uint8_t flags, uint8_t preempt_count, int32_t pid)
{
    memcpy(p, &id, 2);
    p[2] = flags;
    p[3] = preempt_count;
    memcpy(p + 4, &pid, 4);
}

static uint64_t
item_u64(PyObject *tuple, Py_ssize_t i)
{
    return PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(tuple, i));
}

/* One argument: (size, base, param, derefs, mem_size, mem_offset, lshift, rshift, basesize),
 * the value FetchProgram's compiled function computes for the same shape. */
static uint64_t
arg_value(PyObject *a, const uint64_t *r, uint64_t pc, int fd)
{
    long base = (long)item_u64(a, 1);
    uint64_t param = item_u64(a, 2), v = 0;
    switch (base) {
    case BASE_REG:
        v = param < NREGS ? r[param] : 0;
        break;
    case BASE_IMM:
        v = param;
        break;
    case BASE_PC:
        v = pc + param;
        break;
    case BASE_STACK:
        if (read_word(fd, r[REG_SP] + 8 * param, 8, &v) < 0)
            v = 0;
        break;
    }
    PyObject *derefs = PyTuple_GET_ITEM(a, 3);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(derefs); i++)
        if (read_word(fd, v + item_u64(derefs, i), 8, &v) < 0)
            return 0;
    Py_ssize_t mem = (Py_ssize_t)item_u64(a, 4);
    if (mem > 0 && read_word(fd, v + item_u64(a, 5), mem, &v) < 0)
        return 0;
    uint64_t size = item_u64(a, 0);
    if (size < 8)
        v &= ((uint64_t)1 << (8 * size)) - 1;
    uint64_t basesize = item_u64(a, 8);
    if (basesize) {
        v <<= item_u64(a, 6);
        if (basesize < 8)
            v &= ((uint64_t)1 << (8 * basesize)) - 1;
        v >>= item_u64(a, 7);
    }
    return v;
}

/* One record: spec (event_id, flags, preempt_count, args). */
static PyObject *
make_record(PyObject *spec, const uint64_t *r, uint64_t pc, int32_t pid, int fd)
{
    PyObject *args = PyTuple_GET_ITEM(spec, 3);
    Py_ssize_t n = PyTuple_GET_SIZE(args), len = HEADER;
    for (Py_ssize_t i = 0; i < n; i++)
        len += (Py_ssize_t)item_u64(PyTuple_GET_ITEM(args, i), 0);
    PyObject *rec = PyBytes_FromStringAndSize(NULL, len);
    if (rec == NULL)
        return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(rec);
    common_fields(p, (uint16_t)item_u64(spec, 0), (uint8_t)item_u64(spec, 1),
                  (uint8_t)item_u64(spec, 2), pid);
    memcpy(p + 8, &pc, 8);
    p += HEADER;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        Py_ssize_t size = (Py_ssize_t)item_u64(a, 0);
        uint64_t v = arg_value(a, r, pc, fd);
        memcpy(p, &v, size);          /* little-endian: the low bytes */
        p += size;
    }
    return rec;
}

static PyObject *
py_hit(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "hit(tid, regs, mem_fd, sites: dict, resume)");
        return NULL;
    }
    long tid = PyLong_AsLong(args[0]);
    if (tid == -1 && PyErr_Occurred())
        return NULL;
    long fd = PyLong_AsLong(args[2]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    long resume = PyLong_AsLong(args[4]);
    if (resume == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_WRITABLE) < 0)
        return NULL;
    PyObject *result = NULL, *records = NULL;
    if (view.len < (Py_ssize_t)sizeof(struct user_regs_struct)) {
        PyErr_SetString(PyExc_ValueError, "hit(): regs is smaller than user_regs_struct");
        goto out;
    }
    uint64_t *r = view.buf;
    if (syscall(SYS_ptrace, PTRACE_GETREGS, tid, 0, r) != 0) {
        last_errno = errno;
        result = Py_NewRef(Py_None);
        goto out;
    }
    uint64_t pc = r[REG_IP] - 1;
    PyObject *key = PyLong_FromUnsignedLongLong(pc);
    if (key == NULL)
        goto out;
    PyObject *site = PyDict_GetItemWithError(args[3], key);      /* borrowed */
    Py_DECREF(key);
    if (site == NULL) {
        if (!PyErr_Occurred())
            result = Py_NewRef(Py_None);
        goto out;
    }
    r[REG_IP] = pc;                   /* the probes see the probed instruction's address */
    PyObject *emu = PyTuple_GET_ITEM(site, 0), *specs = PyTuple_GET_ITEM(site, 1);
    Py_ssize_t nspecs = PyTuple_GET_SIZE(specs);
    records = PyTuple_New(nspecs);
    if (records == NULL)
        goto out;
    for (Py_ssize_t i = 0; i < nspecs; i++) {
        PyObject *rec = make_record(PyTuple_GET_ITEM(specs, i), r, pc, (int32_t)tid, (int)fd);
        if (rec == NULL)
            goto out;
        PyTuple_SET_ITEM(records, i, rec);
    }
    /* the displaced instruction, as usertrace.sources.probes.insn.emulate runs it */
    long kind = (long)item_u64(emu, 0);
    uint64_t next = pc + item_u64(emu, 1), param = item_u64(emu, 2);
    uint64_t word = 0;
    int push = 0;
    switch (kind) {
    case EMU_NEXT:
        r[REG_IP] = next;
        break;
    case EMU_JMP:
        r[REG_IP] = next + param;
        break;
    case EMU_CALL:
        word = next;
        push = 1;
        r[REG_IP] = next + param;
        break;
    case EMU_PUSH:
        word = param < NREGS ? r[param] : 0;
        push = 1;
        r[REG_IP] = next;
        break;
    case EMU_MOV_SP_BP:
        r[REG_BP] = r[REG_SP];
        r[REG_IP] = next;
        break;
    default:
        result = Py_NewRef(Py_None);
        goto out;
    }
    if (push) {
        uint64_t sp = r[REG_SP] - 8;
        if (syscall(SYS_ptrace, PTRACE_POKEDATA, tid, sp, word) != 0) {
            last_errno = errno;
            result = Py_NewRef(Py_None);
            goto out;
        }
        r[REG_SP] = sp;
    }
    if (syscall(SYS_ptrace, PTRACE_SETREGS, tid, 0, r) != 0) {
        last_errno = errno;
        result = Py_NewRef(Py_None);
        goto out;
    }
    if (resume > 0 && syscall(SYS_ptrace, resume, tid, 0, 0) != 0)
        last_errno = errno;
    result = PyTuple_Pack(2, PyTuple_GET_ITEM(site, 2), records);
out:
    Py_XDECREF(records);
    PyBuffer_Release(&view);
    return result;
}

/* -- compiled syscall stops ----------------------------------------------------------------- */

/* struct ptrace_syscall_info (<linux/ptrace.h>) */
struct syscall_info {
    uint8_t op;
    uint8_t pad[3];
    uint32_t arch;
    uint64_t ip, sp;
    union {
        struct { uint64_t nr, args[6]; } entry;
        struct { int64_t rval; uint8_t is_error; } exit;
    };
};
#define OP_ENTRY 1
#define OP_EXIT 2
#define OP_SECCOMP 3
#define GET_SYSCALL_INFO 0x420e
#define SYSCALL_STOP (SIGTRAP | 0x80)
#define SECCOMP_STOP (SIGTRAP | (7 << 8))          /* PTRACE_EVENT_SECCOMP */
#define QUEUE 64
/* record kinds of a plan's specs */
enum { REC_PLAIN = 0, REC_STRING = 1, REC_BUFFER = 2 };

static PyObject *s_countdown, *s_nr, *s_args, *s_cpu, *s_comm, *s_process, *s_mem_fd;

static int64_t
now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static long
attr_long(PyObject *o, PyObject *name, int *err)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL) {
        *err = 1;
        return 0;
    }
    long r = PyLong_AsLong(v);
    Py_DECREF(v);
    if (r == -1 && PyErr_Occurred())
        *err = 1;
    return r;
}

static int
set_long(PyObject *o, PyObject *name, long value)
{
    PyObject *v = PyLong_FromLong(value);
    if (v == NULL)
        return -1;
    int r = PyObject_SetAttr(o, name, v);
    Py_DECREF(v);
    return r;
}

/*
 * The tasks a call of stops() has served, with the fields of their Task objects the loop
 * keeps (nr, args, countdown) and those it reads (cpu, the descriptor of the process's
 * memory): read from the Task at a task's first stop in the call, kept here meanwhile, and
 * written back (flush) before any Python code may look at them: before the engine is told
 * where a task runs, and before stops() returns, whatever it returns with.  A stop then
 * costs no attribute access.
 */
#define CACHED 32
struct ctask {
    long tid;
    PyObject *t;                    /* a strong reference */
    long nr, countdown, cpu;
    int mem_fd;                     /* -2: not read yet */
    uint64_t args[6];
    int args_known, dirty;          /* dirty: nr, args and countdown to write back */
};
struct cache {
    int n;
    struct ctask task[CACHED];
};

/* Write the fields back to the Task; 0, or -1 with an exception. */
static int
flush_task(struct ctask *c)
{
    if (!c->dirty)
        return 0;
    c->dirty = 0;
    if (set_long(c->t, s_nr, c->nr) < 0 || set_long(c->t, s_countdown, c->countdown) < 0)
        return -1;
    if (!c->args_known)
        return 0;
    PyObject *args = PyTuple_New(6);
    if (args == NULL)
        return -1;
    for (int k = 0; k < 6; k++) {
        PyObject *v = PyLong_FromUnsignedLongLong(c->args[k]);
        if (v == NULL) {
            Py_DECREF(args);
            return -1;
        }
        PyTuple_SET_ITEM(args, k, v);
    }
    int r = PyObject_SetAttr(c->t, s_args, args);
    Py_DECREF(args);
    return r;
}

/* Every task back to its Task, the cache emptied; 0, or -1 with the first exception (the
 * others are still written). */
static int
flush_cache(struct cache *cache)
{
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    for (int k = 0; k < cache->n; k++) {
        if (flush_task(&cache->task[k]) < 0) {
            if (type == NULL)
                PyErr_Fetch(&type, &value, &tb);
            else
                PyErr_Clear();
        }
        Py_DECREF(cache->task[k].t);
    }
    cache->n = 0;
    if (type == NULL)
        return 0;
    PyErr_Restore(type, value, tb);
    return -1;
}

/* Read cpu and countdown from the Task (at its first stop in a call of stops()) */
static int
load_task(struct ctask *c)
{
    int err = 0;
    c->countdown = attr_long(c->t, s_countdown, &err);
    c->cpu = err ? 0 : attr_long(c->t, s_cpu, &err);
    return err ? -1 : 0;
}

/* The cached task of tid, read from tasks at its first stop; NULL with no exception when
 * tid is no task of the engine's (for Python), NULL with one on a failure. */
static struct ctask *
cached_task(struct cache *cache, PyObject *tasks, long tid)
{
    for (int k = 0; k < cache->n; k++)
        if (cache->task[k].tid == tid)
            return &cache->task[k];
    if (cache->n == CACHED && flush_cache(cache) < 0)
        return NULL;
    PyObject *key = PyLong_FromLong(tid);
    if (key == NULL)
        return NULL;
    PyObject *t = PyDict_GetItemWithError(tasks, key);          /* borrowed */
    Py_DECREF(key);
    if (t == NULL)
        return NULL;
    struct ctask *c = &cache->task[cache->n];
    *c = (struct ctask){.tid = tid, .t = Py_NewRef(t), .mem_fd = -2};
    int err = 0;
    c->nr = attr_long(t, s_nr, &err);
    if (err || load_task(c) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    cache->n++;
    return c;
}

/* A string as the kernel records it (user_data.string_value of Process.read_string with
 * size + 1 bytes): unprintable bytes as '.', cut at size with "...", then a NUL; 0 bytes
 * when it cannot be read.  buf holds size + 5 bytes. */
static Py_ssize_t
read_string(int fd, uint64_t addr, char *buf, Py_ssize_t size)
{
    if (addr == 0 || addr > (uint64_t)INT64_MAX)
        return 0;
    ssize_t n = pread(fd, buf, size + 1, (off_t)addr);
    if (n <= 0)
        return 0;
    char *nul = memchr(buf, 0, n);
    if (nul != NULL)
        n = nul - buf;
    for (ssize_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)buf[k];
        if (!((c >= 0x20 && c <= 0x7e) || c >= 0xa0))
            buf[k] = '.';
    }
    if (n > size) {
        memcpy(buf + size, "...", 3);
        n = size + 3;
    }
    buf[n] = 0;
    return n + 1;
}

/* The record of one stop: enter spec (id, nargs, kind, arg, count_arg, size), exit spec
 * (id, kind, arg, min_ret, size).  NULL with an exception on a failure of Python's. */
static PyObject *
make_syscall_record(PyObject *spec, int enter, int32_t pid, int32_t nr, const uint64_t *args,
                    int64_t ret, int fd, char *scratch)
{
    long id = (long)item_u64(spec, 0);
    long nargs = enter ? (long)item_u64(spec, 1) : 0;
    long kind = (long)item_u64(spec, enter ? 2 : 1);
    Py_ssize_t head = enter ? 16 + 8 * nargs : 24, data = 0;
    if (kind != REC_PLAIN) {
        long i = (long)item_u64(spec, enter ? 3 : 2);
        Py_ssize_t size = (Py_ssize_t)item_u64(spec, enter ? 5 : 4);
        head += 4;
        if (kind == REC_STRING)
            data = read_string(fd, args[i], scratch, size);
        else if (enter) {
            uint64_t count = args[item_u64(spec, 4)];
            data = read_bytes(fd, args[i], scratch, count < (uint64_t)size ? (Py_ssize_t)count : size);
        } else {
            int64_t min_ret = (int64_t)item_u64(spec, 3);
            Py_ssize_t n = ret < min_ret || ret <= 0 ? 0 : (ret < size ? (Py_ssize_t)ret : size);
            data = read_bytes(fd, args[i], scratch, n);
        }
    }
    PyObject *rec = PyBytes_FromStringAndSize(NULL, head + data);
    if (rec == NULL)
        return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(rec);
    memset(p, 0, 16);
    common_fields(p, (uint16_t)id, 0, 0, pid);
    memcpy(p + 8, &nr, 4);
    if (enter)
        memcpy(p + 16, args, 8 * nargs);
    else
        memcpy(p + 16, &ret, 8);
    if (kind != REC_PLAIN) {
        uint32_t loc = (uint32_t)(data << 16 | (head & 0xffff));
        memcpy(p + head - 4, &loc, 4);
        memcpy(p + head, scratch, data);
    }
    return rec;
}

struct stop { long tid; int status; int64_t ts; };

/* stops()'s plan, read once per call (see usertrace.ptrace.engine._stops_plan) */
struct plan {
    PyObject *enter, *exit;         /* per syscall number: a spec, None (no event), False */
    const char *after;              /* per number: stop at its exit */
    long idle, nr_prctl;
    uint32_t native;                /* AUDIT_ARCH of the tracer's arch */
    Py_ssize_t maxnr, limit, size;
    PyObject *seen;                 /* the engine's _seen(cpu, tid) -> terms */
    /* the terms on which the engine wants to hear where a task runs (_refresh_terms) */
    long follow, pinned, every;
    int64_t due;
};

/* The terms (follow, pinned, due_ns, every) into the plan; -1 with an exception. */
static int
read_terms(struct plan *pl, PyObject *terms)
{
    if (!PyTuple_Check(terms) || PyTuple_GET_SIZE(terms) != 4) {
        PyErr_SetString(PyExc_TypeError, "stops(): the refresh terms are 4 ints");
        return -1;
    }
    pl->follow = (long)item_u64(terms, 0);
    pl->pinned = (long)item_u64(terms, 1);
    pl->due = (int64_t)item_u64(terms, 2);
    pl->every = (long)item_u64(terms, 3);
    return PyErr_Occurred() ? -1 : 0;
}

/* comm and cpu of a task from /proc/TID/stat (usertrace.procstat says how the line reads):
 * the length of comm, put in comm (cut at size), or -1 when the line cannot be read.  cpu
 * is field 39, 0 when the line is cut short. */
static int
task_stat(long tid, char *comm, int size, long *cpu)
{
    char path[48], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n <= 0)
        return -1;
    line[n] = 0;
    char *lp = memchr(line, '(', n), *rp = memrchr(line, ')', n);
    if (lp == NULL || rp == NULL || rp < lp)
        return -1;
    int len = (int)(rp - lp - 1) < size ? (int)(rp - lp - 1) : size;
    memcpy(comm, lp + 1, len);
    const char *f = rp + 2 <= line + n ? rp + 2 : NULL;     /* field 3 */
    for (int k = 3; k < 39 && f != NULL; k++) {
        f = strchr(f, ' ');
        if (f != NULL)
            f++;
    }
    *cpu = f != NULL ? strtol(f, NULL, 10) : 0;
    return len;
}

/* cpu, ts, record onto out (the record's reference is taken); -1 on a failure */
static int
put_record(PyObject *out, long cpu, int64_t ts, PyObject *rec)
{
    PyObject *c = PyLong_FromLong(cpu), *t = PyLong_FromLongLong(ts);
    int r = (c == NULL || t == NULL || PyList_Append(out, c) < 0 ||
             PyList_Append(out, t) < 0 || PyList_Append(out, rec) < 0) ? -1 : 0;
    Py_XDECREF(c);
    Py_XDECREF(t);
    Py_DECREF(rec);
    return r;
}

/* Stops collected and not resumed, appended to held as (tid, status): the engine lets them
 * go with the error that stopped the loop. */
static void
hold(PyObject *held, const struct stop *q, int from, int to)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    for (int k = from; k < to; k++) {
        PyObject *h = Py_BuildValue("(ii)", (int)q[k].tid, q[k].status);
        if (h != NULL)
            PyList_Append(held, h);
        Py_XDECREF(h);
    }
    PyErr_Restore(type, value, tb);
}

static PyObject *
unserved(struct stop *q, int from, int to)
{
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    for (int k = from; k < to; k++) {
        PyObject *t = Py_BuildValue("(liL)", q[k].tid, q[k].status, (long long)q[k].ts);
        if (t == NULL || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

/* Where task c runs and its name, read again (its countdown ran out): the Task's cpu and
 * comm set when they changed, and the engine told (pl->seen) when its terms ask for it: the
 * task is off the cpu the tracer is pinned to, or the tracer's time to look at its own
 * share of the cpu has come.  0, or -1 with an exception. */
static int
refresh_task(struct ctask *c, struct plan *pl, int64_t ts)
{
    char comm[256];
    long cpu;
    c->countdown = pl->every;
    c->dirty = 1;
    int len = task_stat(c->tid, comm, sizeof comm, &cpu);
    if (len < 0)
        return 0;                       /* gone: its end is on its way */
    PyObject *old = PyObject_GetAttr(c->t, s_comm);
    if (old == NULL)
        return -1;
    Py_ssize_t olen = -1;
    const char *o = PyUnicode_Check(old) ? PyUnicode_AsUTF8AndSize(old, &olen) : NULL;
    if (o == NULL)
        PyErr_Clear();
    int same = o != NULL && olen == len && memcmp(o, comm, len) == 0;
    Py_DECREF(old);
    if (!same) {
        PyObject *name = PyUnicode_DecodeUTF8(comm, len, "replace");
        int r = name == NULL ? -1 : PyObject_SetAttr(c->t, s_comm, name);
        Py_XDECREF(name);
        if (r < 0)
            return -1;
    }
    if (cpu != c->cpu) {
        if (set_long(c->t, s_cpu, cpu) < 0)
            return -1;
        c->cpu = cpu;
    }
    if (!pl->follow || (cpu == pl->pinned && ts < pl->due))
        return 0;
    if (flush_task(c) < 0)
        return -1;
    PyObject *terms = PyObject_CallFunction(pl->seen, "ll", cpu, c->tid);
    if (terms == NULL)
        return -1;
    int r = read_terms(pl, terms);
    Py_DECREF(terms);
    c->countdown = pl->every;
    return r;
}

/* The record of a stop of task c (spec as make_syscall_record takes it): the descriptor of
 * its process's memory fetched when the record reads memory, its countdown taken down by
 * one or, at 0, where it runs read again (refresh_task), the record put on out.  1 done, 0
 * for Python (no descriptor yet), -1 an error. */
static int
record_stop(struct ctask *c, PyObject *spec, int enter, const struct stop *st, int32_t nr,
            const uint64_t *args, int64_t ret, struct plan *pl, PyObject *out,
            char *scratch)
{
    if (item_u64(spec, enter ? 2 : 1) != REC_PLAIN) {
        if (c->mem_fd == -2) {
            int err = 0;
            PyObject *proc = PyObject_GetAttr(c->t, s_process);
            if (proc == NULL)
                return -1;
            long fd = proc == Py_None ? -1 : attr_long(proc, s_mem_fd, &err);
            Py_DECREF(proc);
            if (err)
                return -1;
            c->mem_fd = (int)fd;
        }
        if (c->mem_fd < 0) {
            c->mem_fd = -2;             /* Python opens it: read it again next time */
            return 0;
        }
    }
    if (c->countdown > 0) {
        c->countdown--;
        c->dirty = 1;
    } else if (refresh_task(c, pl, st->ts) < 0) {
        return -1;
    }
    PyObject *rec = make_syscall_record(spec, enter, (int32_t)st->tid, nr, args, ret,
                                        c->mem_fd, scratch);
    if (rec == NULL || put_record(out, c->cpu, st->ts, rec) < 0)
        return -1;
    return 1;
}

/* One stop: 1 served, 0 for Python, -1 a Python error. */
static int
serve_stop(struct stop *st, PyObject *tasks, struct cache *cache, struct plan *pl,
           PyObject *out, char *scratch)
{
    if ((st->status & 0xff) != 0x7f)
        return 0;
    int hi = st->status >> 8;
    if (hi != SYSCALL_STOP && hi != SECCOMP_STOP)
        return 0;
    struct ctask *c = cached_task(cache, tasks, st->tid);
    if (c == NULL)
        return PyErr_Occurred() ? -1 : 0;
    long idle = pl->idle;
    struct syscall_info info;
    if (syscall(SYS_ptrace, GET_SYSCALL_INFO, st->tid, sizeof info, &info) <= 0)
        return 0;
    PyObject *spec;
    if (info.op == OP_ENTRY || info.op == OP_SECCOMP) {
        uint64_t nr = info.entry.nr;
        if (info.arch != pl->native || nr >= (uint64_t)pl->maxnr)
            return 0;
        spec = PyTuple_GET_ITEM(pl->enter, nr);
        if (spec == Py_False)
            return 0;
        memcpy(c->args, info.entry.args, sizeof c->args);
        c->args_known = 1;
        c->dirty = 1;
        if (spec != Py_None) {
            int done = record_stop(c, spec, 1, st, (int32_t)nr, info.entry.args, 0,
                                   pl, out, scratch);
            if (done != 1)
                return done;
        }
        long req = idle, tnr = -1;
        if (idle == PTRACE_SYSCALL || pl->after[nr]) {
            req = PTRACE_SYSCALL;
            tnr = (long)nr;
        }
        c->nr = tnr;
        syscall(SYS_ptrace, req, st->tid, 0, 0);
    } else if (info.op == OP_EXIT) {
        long nr = c->nr;
        if (nr < 0 || nr >= pl->maxnr || nr == pl->nr_prctl)
            return 0;
        spec = PyTuple_GET_ITEM(pl->exit, nr);
        if (spec == Py_False)
            return 0;
        if (spec != Py_None) {
            if (item_u64(spec, 1) != REC_PLAIN && !c->args_known) {
                /* those of the entry, for a buffer: the Task's when it entered before */
                PyObject *targs = PyObject_GetAttr(c->t, s_args);
                if (targs == NULL)
                    return -1;
                int whole = PyTuple_Check(targs) && PyTuple_GET_SIZE(targs) >= 6;
                for (int k = 0; whole && k < 6; k++)
                    c->args[k] = item_u64(targs, k);
                Py_DECREF(targs);
                if (!whole)
                    return 0;
                c->args_known = 1;
            }
            int done = record_stop(c, spec, 0, st, (int32_t)nr, c->args, info.exit.rval,
                                   pl, out, scratch);
            if (done != 1)
                return done;
        }
        c->nr = -1;
        c->dirty = 1;
        syscall(SYS_ptrace, idle, st->tid, 0, 0);
    } else {
        return 0;
    }
    return 1;
}

static PyObject *
py_stops(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs != 4 && nargs != 5) || !PyDict_Check(args[0]) || !PyTuple_Check(args[1]) ||
        !PyList_Check(args[2]) || !PyList_Check(args[3]) ||
        (nargs == 5 && !PyList_Check(args[4]))) {
        PyErr_SetString(PyExc_TypeError, "stops(tasks: dict, plan: tuple, out: list, "
                        "held: list[, given: list])");
        return NULL;
    }
    PyObject *tasks = args[0], *plan = args[1], *out = args[2], *held = args[3];
    /* the stops to serve: first those collected before the call (tid, status, ts), in
     * their order */
    struct stop q[QUEUE];
    int n = 0;
    if (nargs == 5) {
        PyObject *list = args[4];
        if (PyList_GET_SIZE(list) > QUEUE) {
            PyErr_SetString(PyExc_ValueError, "stops(): at most 64 stops given at once");
            return NULL;
        }
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(list); k++) {
            long tid;
            int status;
            long long ts;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(list, k), "liL", &tid, &status, &ts))
                return NULL;
            q[n++] = (struct stop){tid, status, ts};
        }
    }
    if (PyTuple_GET_SIZE(plan) != 10) {
        PyErr_SetString(PyExc_TypeError, "stops(): a plan has 10 items");
        return NULL;
    }
    struct plan pl = {
        .enter = PyTuple_GET_ITEM(plan, 0), .exit = PyTuple_GET_ITEM(plan, 1),
        .after = PyBytes_AsString(PyTuple_GET_ITEM(plan, 2)),
        .idle = (long)item_u64(plan, 3), .native = (uint32_t)item_u64(plan, 4),
        .nr_prctl = (long)item_u64(plan, 5), .limit = (Py_ssize_t)item_u64(plan, 6),
        .size = (Py_ssize_t)item_u64(plan, 7), .seen = PyTuple_GET_ITEM(plan, 8),
    };
    if (pl.after == NULL || PyErr_Occurred() || read_terms(&pl, PyTuple_GET_ITEM(plan, 9)) < 0)
        return NULL;
    pl.maxnr = PyTuple_GET_SIZE(pl.enter);
    Py_ssize_t limit = pl.limit;
    char *scratch = PyMem_Malloc(pl.size + 8);
    if (scratch == NULL) {
        PyErr_NoMemory();
        hold(held, q, 0, n);
        return NULL;
    }
    struct cache cache = {0};
    PyObject *result = NULL;
    Py_ssize_t served = 0;
    for (;; n = 0) {
        if (n == 0) {
            /* back to Python now and then even when the stops make no records: its signal
             * handlers (Ctrl-C) run there */
            if (PyList_GET_SIZE(out) >= 3 * limit || served >= limit) {
                result = Py_NewRef(Py_None);
                break;
            }
            int status = 0;
            pid_t tid;
            Py_BEGIN_ALLOW_THREADS
            tid = waitpid(-1, &status, __WALL);
            Py_END_ALLOW_THREADS
            if (tid < 0) {
                if (errno == EINTR)
                    result = Py_NewRef(Py_None);
                else if (errno == ECHILD)
                    PyErr_SetNone(PyExc_ChildProcessError);
                else
                    PyErr_SetFromErrno(PyExc_OSError);
                break;
            }
            q[n++] = (struct stop){tid, status, now_ns()};
            if (PyDict_GET_SIZE(tasks) > 1)      /* every stop already there gets its turn */
                while (n < QUEUE && (tid = waitpid(-1, &status, __WALL | WNOHANG)) > 0)
                    q[n++] = (struct stop){tid, status, now_ns()};
        }
        int k = 0, r = 1;
        for (; k < n; k++) {
            r = serve_stop(&q[k], tasks, &cache, &pl, out, scratch);
            if (r != 1)
                break;
            served++;
        }
        if (r == 0) {
            result = unserved(q, k, n);
            break;
        }
        if (r < 0) {
            hold(held, q, k, n);        /* a Python error: the stops not served, not resumed */
            break;
        }
    }
    /* the tasks' fields back to their Task objects, whatever the loop ends with */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int flushed = flush_cache(&cache);
    if (type != NULL) {
        if (flushed < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
    } else if (flushed < 0) {
        Py_CLEAR(result);
    }
    PyMem_Free(scratch);
    return result;
}
#endif

static PyMethodDef methods[] = {
    {"ptrace", (PyCFunction)(void (*)(void))py_ptrace, METH_FASTCALL,
     "ptrace(request, pid, addr, data) -> the raw result of ptrace(2)"},
    {"last_errno", py_last_errno, METH_NOARGS,
     "errno of the last call that returned -1"},
#ifdef __x86_64__
    {"hit", (PyCFunction)(void (*)(void))py_hit, METH_FASTCALL,
     "hit(tid, regs, mem_fd, sites, resume) -> (calls, records) or None: a breakpoint hit served whole"},
    {"stops", (PyCFunction)(void (*)(void))py_stops, METH_FASTCALL,
     "stops(tasks, plan, out, held[, given]) -> stops not served, or None: syscall stops "
     "served in a loop"},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ptrace",
    "ptrace(2) straight from Python (usertrace.ptrace.libc uses it when it is built)",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__ptrace(void)
{
#ifdef __x86_64__
    if (!(s_countdown = PyUnicode_InternFromString("countdown")) ||
        !(s_nr = PyUnicode_InternFromString("nr")) ||
        !(s_args = PyUnicode_InternFromString("args")) ||
        !(s_cpu = PyUnicode_InternFromString("cpu")) ||
        !(s_comm = PyUnicode_InternFromString("comm")) ||
        !(s_process = PyUnicode_InternFromString("process")) ||
        !(s_mem_fd = PyUnicode_InternFromString("_mem_fd")))
        return NULL;
#endif
    return PyModule_Create(&module);
}
