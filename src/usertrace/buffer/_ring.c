/*
 * _ring: the common case of ring.RingBuffer's writer, for a batch of records.
 *
 * fill() writes records onto the page the writer is on, one after the other, while each is
 * the common case of RingBuffer.write(): not the first event of the page, a time delta that
 * fits the 27 bits of the event header, room left on the page.  It stops at the first record
 * that is not, and Python writes that one (RingBuffer._write_slow: a new page, a time
 * extend).  The sizes of events come from the page layout as a table (one row per payload
 * length, made by ring._event_shapes), so the kernel's rule for them (rb_calculate_event_length)
 * stays written once, in layout.py.
 *
 * Optional: where it is not built, or USERTRACE_PURE_PYTHON=1, RingBuffer.write_run() calls
 * write() for each record, which writes the same bytes (tests/unit/test_ring_fill.py compares
 * the two).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define TS_MASK ((1ULL << 27) - 1)

/* One row of the shapes table: bytes of the event, bytes of its header, and the header's
 * word without the time delta (type_len), or its length word when the header has two. */
struct shape {
    uint32_t size;
    uint32_t head;
    uint32_t word;
};

/*
 * fill(page, items, i, key, w, last_ts, data_offset, data_size, shapes)
 *     -> (i, w, last_ts, written)
 *
 * items is a flat list of (key, ts_ns, payload) triples; the records of the triples from
 * index i on whose key equals key are written onto page (a bytearray) at data offset w,
 * after an event at time last_ts.  Returns the index of the first triple not written, the
 * new write offset and time, and how many were written.  The page's bytes past w must be
 * zero (a fresh page is): padding is not written.
 */
static PyObject *
py_fill(PyObject *self, PyObject *const *a, Py_ssize_t na)
{
    if (na != 9) {
        PyErr_SetString(PyExc_TypeError, "fill() takes 9 arguments");
        return NULL;
    }
    if (!PyByteArray_Check(a[0]) || !PyList_Check(a[1])) {
        PyErr_SetString(PyExc_TypeError, "fill() needs a bytearray page and a list of items");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(a[2]);
    long key = PyLong_AsLong(a[3]);
    Py_ssize_t w = PyLong_AsSsize_t(a[4]);
    unsigned long long last = PyLong_AsUnsignedLongLong(a[5]);
    Py_ssize_t off = PyLong_AsSsize_t(a[6]);
    Py_ssize_t data_size = PyLong_AsSsize_t(a[7]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer sh;
    if (PyObject_GetBuffer(a[8], &sh, PyBUF_SIMPLE) < 0)
        return NULL;
    const struct shape *shapes = sh.buf;
    Py_ssize_t limit = sh.len / (Py_ssize_t)sizeof(struct shape);
    char *page = PyByteArray_AS_STRING(a[0]);
    Py_ssize_t page_len = PyByteArray_GET_SIZE(a[0]);
    if (i < 0 || w <= 0 || off < 0 || data_size < 0 || off + data_size > page_len) {
        PyBuffer_Release(&sh);
        PyErr_SetString(PyExc_ValueError, "fill(): offsets outside the page");
        return NULL;
    }
    PyObject *items = a[1];
    Py_ssize_t n = PyList_GET_SIZE(items), written = 0;
    for (; i + 2 < n; i += 3) {
        PyObject *k = PyList_GET_ITEM(items, i);
        PyObject *t = PyList_GET_ITEM(items, i + 1);
        PyObject *p = PyList_GET_ITEM(items, i + 2);
        if (!PyLong_CheckExact(k) || !PyLong_CheckExact(t) || !PyBytes_CheckExact(p))
            break;
        long kv = PyLong_AsLong(k);
        if (kv == -1 && PyErr_Occurred()) {
            PyErr_Clear();              /* not a key of ours: Python's loop decides */
            break;
        }
        if (kv != key)
            break;
        unsigned long long ts = PyLong_AsUnsignedLongLong(t);
        if (ts == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();              /* Python's write() names the fault */
            break;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(p);
        if (ts < last || ts - last > TS_MASK || len >= limit)
            break;
        const struct shape *s = &shapes[len];
        if (w + (Py_ssize_t)s->size > data_size)
            break;
        uint32_t delta = (uint32_t)(ts - last);
        char *at = page + off + w;
        if (s->head == 4) {
            uint32_t word = delta << 5 | s->word;
            memcpy(at, &word, 4);
        } else {
            uint32_t words[2] = {delta << 5, s->word};
            memcpy(at, words, 8);
        }
        memcpy(at + s->head, PyBytes_AS_STRING(p), (size_t)len);
        w += s->size;
        last = ts;
        written++;
    }
    PyBuffer_Release(&sh);
    return Py_BuildValue("nnKn", i, w, last, written);
}

static PyMethodDef methods[] = {
    {"fill", (PyCFunction)(void (*)(void))py_fill, METH_FASTCALL,
     "fill(page, items, i, key, w, last_ts, data_offset, data_size, shapes): records of "
     "(key, ts, payload) triples written onto the page while they are the common case."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ring",
    "The common case of RingBuffer's writer for a batch of records, in C.",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__ring(void)
{
    return PyModule_Create(&module);
}
