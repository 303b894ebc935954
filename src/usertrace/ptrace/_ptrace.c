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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/user.h>
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

/* n (<= 8) bytes at addr through the process's /proc/PID/mem, little-endian; 0 on a fault */
static int
read_word(int fd, uint64_t addr, Py_ssize_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (fd < 0 || addr > (uint64_t)INT64_MAX || pread(fd, &v, n, (off_t)addr) != n)
        return -1;
    *out = v;
    return 0;
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
    uint16_t id = (uint16_t)item_u64(spec, 0);
    memcpy(p, &id, 2);
    p[2] = (unsigned char)item_u64(spec, 1);
    p[3] = (unsigned char)item_u64(spec, 2);
    memcpy(p + 4, &pid, 4);
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
    long resume = PyLong_AsLong(args[4]);
    if (resume > 0 && syscall(SYS_ptrace, resume, tid, 0, 0) != 0)
        last_errno = errno;
    result = PyTuple_Pack(2, PyTuple_GET_ITEM(site, 2), records);
out:
    Py_XDECREF(records);
    PyBuffer_Release(&view);
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
    return PyModule_Create(&module);
}
