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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
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

static PyMethodDef methods[] = {
    {"ptrace", (PyCFunction)(void (*)(void))py_ptrace, METH_FASTCALL,
     "ptrace(request, pid, addr, data) -> the raw result of ptrace(2)"},
    {"last_errno", py_last_errno, METH_NOARGS,
     "errno of the last call that returned -1"},
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
