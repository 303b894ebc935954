/*
 * _emit: the compiled emit path of user events (docs/user_events.md, "Rings: the write path").
 *
 * Optional: where it is not built, or USERTRACE_PURE_PYTHON=1, the pure-Python path of
 * emitters.py does the same and writes the same bytes (tests/unit/test_user_events_emit.py
 * compares the two).  Two types:
 *
 *   WriterState  the writer's end of one ring, the base of ring.RingWriter: head, the tail as
 *                last seen, lost, limit, and the mapped ring file.  make_room() and drop() are
 *                the slow paths of an emit.
 *   Emitter      the emit function of one event, ev.emit(*values, **values).  It takes its
 *                layout from emitters.py as a table (one row per field) and calls back into
 *                Python only to make the thread's ring (first emit) and to name the fault of a
 *                value it refuses (emitters._Layout.explain raises the UserEventError).
 *
 * An emit, as in emitters.py:
 *
 *   status byte 0?                    -> False
 *   bind the values to the fields (by position and by name), convert and check them all
 *   the thread's ring (a per-thread cache, else session.tls.w, else made by new_writer)
 *   head + record size > limit?       -> make_room(): wrap, reload tail, or drop (False)
 *   write the record at head % size, zero its padding, then publish head (release store)
 *
 * Values are converted before the ring is touched, so a refused value writes nothing, and no
 * Python code runs between the first byte written and the publication of head: a signal
 * handler cannot emit into the middle of a record (its emit would find limit -1 only while
 * a pure-Python emit is in progress on the same ring).
 *
 * The thread's ring is cached in two thread-local words (the session's threading.local that
 * owns it, and the ring, both borrowed) and an epoch: every ring mapped, unmapped or freed
 * bumps the epoch, so a cached ring is used only while nothing of the kind has happened.
 * After fork() the child's hook unmaps the parent's rings, which bumps the epoch.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* The layout this file writes; emit_path.py checks LAYOUT against abi.py before using it. */
#define RING_HEADER_SIZE 4096
#define RH_HEAD 64
#define RH_TAIL 128
#define RH_LOST 192
#define RECORD_HEADER_SIZE 24
#define COMMON_SIZE 8
#define RECORD_SPAN (RECORD_HEADER_SIZE + COMMON_SIZE)
#define MAX_PAYLOAD (4096 - 16 - 8 - COMMON_SIZE)
#define WRAP_MARK 0xFFFFFFFFu
#define CPU_UNKNOWN (-1)
#define MAX_DYN_SIZE 0xFFFF
#define MAX_FIELDS 256          /* a definition of 511 bytes has fewer */
#define LAYOUT_VERSION 1

/* Field kinds: the rows of the layout table (emitters.py, _Layout.rows). */
enum { K_INT = 0, K_BYTES = 1, K_DYN_STR = 2, K_DYN_ARRAY = 3 };

static uint64_t epoch = 1;
static _Thread_local PyObject *tl_owner;        /* session.tls the cached ring belongs to */
static _Thread_local struct WriterState *tl_ring;
static _Thread_local uint64_t tl_epoch;

static PyObject *str_w;                          /* "w": the ring's name in session.tls */

/* -- WriterState ------------------------------------------------------------------------ */
typedef struct WriterState {
    PyObject_HEAD
    long long head, tail, lost, limit, size, mask, tid;
    PyObject *mm, *q;
    unsigned char *file;        /* the ring file's first byte; NULL while not mapped */
    Py_buffer view;
} WriterState;

static inline uint64_t *shared_word(WriterState *w, int offset)
{
    return (uint64_t *)(w->file + offset);
}

static void writer_limit(WriterState *w, long long head)
{
    long long by_tail = w->tail + w->size, by_end = (head & ~w->mask) + w->size;
    w->limit = by_tail < by_end ? by_tail : by_end;
}

static void writer_drop(WriterState *w)
{
    w->lost += 1;
    if (w->file)
        __atomic_store_n(shared_word(w, RH_LOST), (uint64_t)w->lost, __ATOMIC_RELAXED);
}

/* The head to write a record of reclen bytes at (after a wrap if needed), or -1: dropped. */
static long long writer_make_room(WriterState *w, long long reclen)
{
    if (w->limit < 0 || !w->file) {
        writer_drop(w);
        return -1;
    }
    long long head = w->head, size = w->size, pos = head & w->mask;
    long long need = pos + reclen <= size ? reclen : size - pos + reclen;
    if (head + need - w->tail > size) {
        w->tail = (long long)__atomic_load_n(shared_word(w, RH_TAIL), __ATOMIC_ACQUIRE);
        if (head + need - w->tail > size) {
            writer_drop(w);
            return -1;
        }
    }
    if (need != reclen) {
        uint32_t mark = WRAP_MARK;
        memcpy(w->file + RING_HEADER_SIZE + pos, &mark, 4);
        head += size - pos;
        w->head = head;          /* published with the record that follows */
    }
    writer_limit(w, head);
    return head;
}

static void writer_unmap(WriterState *w)
{
    if (w->file) {
        w->file = NULL;
        w->limit = -1;
        PyBuffer_Release(&w->view);
    }
    epoch++;
}

static PyObject *WriterState_map(WriterState *w, PyObject *unused)
{
    if (w->mm == NULL) {
        PyErr_SetString(PyExc_ValueError, "no ring file to map (set mm first)");
        return NULL;
    }
    writer_unmap(w);
    if (PyObject_GetBuffer(w->mm, &w->view, PyBUF_WRITABLE) < 0)
        return NULL;
    if (w->size <= 0 || (w->size & (w->size - 1))
            || w->view.len < RING_HEADER_SIZE + w->size || ((uintptr_t)w->view.buf & 7)) {
        PyBuffer_Release(&w->view);
        PyErr_SetString(PyExc_ValueError, "the ring file does not hold a ring of that size");
        return NULL;
    }
    w->file = w->view.buf;
    w->mask = w->size - 1;
    w->head = (long long)__atomic_load_n(shared_word(w, RH_HEAD), __ATOMIC_RELAXED);
    w->tail = (long long)__atomic_load_n(shared_word(w, RH_TAIL), __ATOMIC_ACQUIRE);
    w->lost = (long long)__atomic_load_n(shared_word(w, RH_LOST), __ATOMIC_RELAXED);
    writer_limit(w, w->head);
    Py_RETURN_NONE;
}

static PyObject *WriterState_unmap(WriterState *w, PyObject *unused)
{
    writer_unmap(w);
    Py_RETURN_NONE;
}

static PyObject *WriterState_make_room(WriterState *w, PyObject *arg)
{
    long long reclen = PyLong_AsLongLong(arg);
    if (reclen == -1 && PyErr_Occurred())
        return NULL;
    if (reclen <= 0 || (w->size && reclen > w->size)) {
        PyErr_SetString(PyExc_ValueError, "record size out of range");
        return NULL;
    }
    return PyLong_FromLongLong(writer_make_room(w, reclen));
}

static PyObject *WriterState_drop(WriterState *w, PyObject *unused)
{
    writer_drop(w);
    Py_RETURN_NONE;
}

static int WriterState_traverse(WriterState *w, visitproc visit, void *arg)
{
    Py_VISIT(w->mm);
    Py_VISIT(w->q);
    return 0;
}

static int WriterState_clear(WriterState *w)
{
    writer_unmap(w);
    Py_CLEAR(w->mm);
    Py_CLEAR(w->q);
    return 0;
}

static void WriterState_dealloc(WriterState *w)
{
    PyObject_GC_UnTrack(w);
    WriterState_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *WriterState_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    WriterState *w = (WriterState *)tp->tp_alloc(tp, 0);
    if (w) {
        w->limit = -1;
        epoch++;
    }
    return (PyObject *)w;
}

static PyMemberDef WriterState_members[] = {
    {"head", T_LONGLONG, offsetof(WriterState, head), 0, "bytes published (the writer's copy)"},
    {"tail", T_LONGLONG, offsetof(WriterState, tail), 0, "bytes consumed, as last seen"},
    {"lost", T_LONGLONG, offsetof(WriterState, lost), 0, "events dropped, ring full or busy"},
    {"limit", T_LONGLONG, offsetof(WriterState, limit), 0,
     "highest head a record may end at without a slow path; -1 while an emit is in progress"},
    {"size", T_LONGLONG, offsetof(WriterState, size), 0, "data area size (a power of two)"},
    {"mask", T_LONGLONG, offsetof(WriterState, mask), READONLY, "size - 1"},
    {"tid", T_LONGLONG, offsetof(WriterState, tid), 0, "the writer's thread id"},
    {"mm", T_OBJECT, offsetof(WriterState, mm), 0, "the mapped ring file"},
    {"q", T_OBJECT, offsetof(WriterState, q), 0, "the ring file as 64-bit words"},
    {NULL}
};

static PyMethodDef WriterState_methods[] = {
    {"_map", (PyCFunction)WriterState_map, METH_NOARGS,
     "Map mm (a ring of `size` data bytes): read head, tail and lost, set limit."},
    {"_unmap", (PyCFunction)WriterState_unmap, METH_NOARGS, "Let go of mm (before closing it)."},
    {"make_room", (PyCFunction)WriterState_make_room, METH_O,
     "make_room(reclen) -> the head to write at (after a wrap if needed), or -1: dropped."},
    {"drop", (PyCFunction)WriterState_drop, METH_NOARGS, "Count one event lost."},
    {NULL}
};

static PyTypeObject WriterStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "usertrace.sources.user_events._emit.WriterState",
    .tp_doc = "The writer's end of one ring (the base of ring.RingWriter).",
    .tp_basicsize = sizeof(WriterState),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = WriterState_new,
    .tp_dealloc = (destructor)WriterState_dealloc,
    .tp_traverse = (traverseproc)WriterState_traverse,
    .tp_clear = (inquiry)WriterState_clear,
    .tp_members = WriterState_members,
    .tp_methods = WriterState_methods,
};

/* -- Emitter ------------------------------------------------------------------------------ */
typedef struct {
    uint8_t kind;           /* K_* */
    uint8_t size;           /* K_INT: 1, 2, 4 or 8 */
    uint8_t is_signed;      /* K_INT, and the elements of K_DYN_ARRAY */
    uint8_t elem_size;      /* K_DYN_ARRAY: bytes of one element */
    uint16_t offset;        /* of the field's fixed part in the payload */
    uint16_t nbytes;        /* K_BYTES: N (cut or NUL-padded to it) */
    uint16_t rel;           /* __rel_loc: subtract this from the data offset (0: __data_loc) */
} FieldSpec;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    const volatile uint8_t *status;
    Py_buffer status_view;
    uint32_t index_word;
    uint16_t common_type;
    Py_ssize_t nfields;
    Py_ssize_t fixed_size;       /* payload bytes of the fixed parts (Definition.min_size) */
    FieldSpec *fields;
    PyObject *names;             /* tuple of interned field names */
    PyObject *tls, *new_writer, *session, *explain;
} Emitter;

/* One converted value. */
typedef struct {
    uint64_t u;                  /* K_INT */
    const char *p;               /* K_BYTES and dynamic fields: the bytes (no NUL added) */
    Py_ssize_t n;
    Py_ssize_t size;             /* dynamic fields: bytes in the record (a string's NUL too) */
    PyObject *own;               /* a reference to drop afterwards */
} Value;

/* An integer of `size` bytes in the machine's byte order, as struct's "=" codes store it. */
static inline void store_int(unsigned char *dst, uint64_t u, int size)
{
    uint8_t u8 = (uint8_t)u;
    uint16_t u16 = (uint16_t)u;
    uint32_t u32 = (uint32_t)u;
    switch (size) {
    case 1: memcpy(dst, &u8, 1); break;
    case 2: memcpy(dst, &u16, 2); break;
    case 4: memcpy(dst, &u32, 4); break;
    default: memcpy(dst, &u, 8);
    }
}

static int to_int(PyObject *v, int size, int is_signed, uint64_t *out)
{
    PyObject *num;
    if (PyLong_Check(v)) {
        Py_INCREF(v);
        num = v;
    } else if (PyIndex_Check(v)) {
        num = PyNumber_Index(v);
        if (num == NULL) {
            PyErr_Clear();
            return -1;
        }
    } else {
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(num, &overflow);
    int bad = x == -1 && PyErr_Occurred();
    if (!bad && is_signed) {
        long long hi = size == 8 ? LLONG_MAX : (1LL << (size * 8 - 1)) - 1;
        bad = overflow || x > hi || x < -hi - 1;
        *out = (uint64_t)x;
    } else if (!bad) {
        unsigned long long ux = (unsigned long long)x;
        if (overflow > 0 && size == 8) {
            ux = PyLong_AsUnsignedLongLong(num);
            bad = ux == (unsigned long long)-1 && PyErr_Occurred();
        } else {
            bad = overflow || x < 0 || (size < 8 && ux >> (size * 8));
        }
        *out = ux;
    }
    Py_DECREF(num);
    if (bad) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

/* str as UTF-8 (strict), bytes as they are, a bytearray (and, for dynamic fields, a
 * memoryview) as a copy, as bytes(v) makes it: 0, or -1 when v is none of these. */
static int take_bytes(PyObject *v, Value *val, int memoryview_too)
{
    if (PyUnicode_Check(v)) {
        val->p = PyUnicode_AsUTF8AndSize(v, &val->n);
        if (val->p == NULL) {
            PyErr_Clear();
            return -1;
        }
        return 0;
    }
    if (PyBytes_Check(v)) {
        val->p = PyBytes_AS_STRING(v);
        val->n = PyBytes_GET_SIZE(v);
        return 0;
    }
    if (PyByteArray_Check(v) || (memoryview_too && PyMemoryView_Check(v))) {
        val->own = PyBytes_FromObject(v);
        if (val->own == NULL) {
            PyErr_Clear();
            return -1;
        }
        val->p = PyBytes_AS_STRING(val->own);
        val->n = PyBytes_GET_SIZE(val->own);
        return 0;
    }
    return -1;
}

/* A dynamic array of integers packed like struct.pack("=<n><code>", *v). */
static int take_array(PyObject *v, const FieldSpec *f, Value *val)
{
    if (PyUnicode_Check(v) || PyLong_Check(v))
        return -1;
    if (PyBytes_Check(v) || PyByteArray_Check(v) || PyMemoryView_Check(v))
        return take_bytes(v, val, 1);
    Py_ssize_t len = PyObject_Length(v);
    if (len < 0) {
        PyErr_Clear();
        return -1;
    }
    PyObject *seq = PySequence_Fast(v, "");
    if (seq == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != len || n * f->elem_size > MAX_DYN_SIZE) {
        Py_DECREF(seq);
        return -1;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * f->elem_size);
    if (out == NULL) {
        Py_DECREF(seq);
        PyErr_Clear();
        return -1;
    }
    char *dst = PyBytes_AS_STRING(out);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t u;
        if (to_int(items[i], f->elem_size, f->is_signed, &u) < 0) {
            Py_DECREF(seq);
            Py_DECREF(out);
            return -1;
        }
        store_int((unsigned char *)dst + i * f->elem_size, u, f->elem_size);
    }
    Py_DECREF(seq);
    val->own = out;
    val->p = dst;
    val->n = n * f->elem_size;
    return 0;
}

static void release_values(Value *vals, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(vals[i].own);
}

/* Convert one value; -1 when the field cannot take it (the Python side names the fault). */
static int convert(const FieldSpec *f, PyObject *v, Value *val)
{
    switch (f->kind) {
    case K_INT:
        return to_int(v, f->size, f->is_signed, &val->u);
    case K_BYTES:
        return take_bytes(v, val, 0);
    case K_DYN_STR:
        if (take_bytes(v, val, 1) < 0)
            return -1;
        if (!PyUnicode_Check(v) && val->n && val->p[val->n - 1] == 0)
            val->n--;                       /* bytes may bring their own NUL */
        val->size = val->n + 1;
        return val->size > MAX_DYN_SIZE ? -1 : 0;
    case K_DYN_ARRAY:
        if (take_array(v, f, val) < 0)
            return -1;
        val->size = val->n;
        return val->size > MAX_DYN_SIZE ? -1 : 0;
    }
    return -1;
}

static PyObject *refuse(Emitter *e, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *r = PyObject_Vectorcall(e->explain, args, nargsf, kwnames);
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_SystemError, "user events: a value was refused without a reason");
    }
    return NULL;
}

/* The calling thread's ring: cached, else session.tls.w, else made.  *ref gets a strong
 * reference when the ring was looked up (drop it after the emit). */
static WriterState *thread_ring(Emitter *e, PyObject **ref)
{
    if (tl_owner == e->tls && tl_epoch == epoch)
        return tl_ring;
    PyObject *w = PyObject_GetAttr(e->tls, str_w);
    if (w == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        w = PyObject_CallOneArg(e->new_writer, e->session);
        if (w == NULL)
            return NULL;
    }
    if (!PyObject_TypeCheck(w, &WriterStateType)) {
        PyErr_Format(PyExc_TypeError, "user events: the thread's ring is a %.100s",
                     Py_TYPE(w)->tp_name);
        Py_DECREF(w);
        return NULL;
    }
    *ref = w;
    tl_owner = e->tls;
    tl_ring = (WriterState *)w;
    tl_epoch = epoch;
    return (WriterState *)w;
}

static inline long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void write_record(Emitter *e, WriterState *w, unsigned char *rec, uint32_t plen,
                         long long reclen, const Value *vals)
{
    uint32_t u32;
    int32_t s32;
    uint64_t ts = (uint64_t)now_ns();
    memcpy(rec + 0, &plen, 4);
    memcpy(rec + 4, &e->index_word, 4);
    memcpy(rec + 8, &ts, 8);
    s32 = CPU_UNKNOWN;
    memcpy(rec + 16, &s32, 4);
    u32 = 0;
    memcpy(rec + 20, &u32, 4);
    memcpy(rec + 24, &e->common_type, 2);
    rec[26] = 0;                                        /* common_flags */
    rec[27] = 0;                                        /* common_preempt_count */
    s32 = (int32_t)w->tid;
    memcpy(rec + 28, &s32, 4);
    unsigned char *payload = rec + RECORD_SPAN;
    Py_ssize_t at = e->fixed_size;                      /* next byte of dynamic data */
    for (Py_ssize_t i = 0; i < e->nfields; i++) {
        const FieldSpec *f = &e->fields[i];
        const Value *v = &vals[i];
        unsigned char *dst = payload + f->offset;
        switch (f->kind) {
        case K_INT:
            store_int(dst, v->u, f->size);
            break;
        case K_BYTES: {
            Py_ssize_t n = v->n < f->nbytes ? v->n : f->nbytes;
            memcpy(dst, v->p, n);
            memset(dst + n, 0, f->nbytes - n);
            break;
        }
        default: {
            uint32_t loc = (uint32_t)v->size << 16 | (uint32_t)(COMMON_SIZE + at - f->rel);
            memcpy(dst, &loc, 4);
            memcpy(payload + at, v->p, v->n);
            if (f->kind == K_DYN_STR)
                payload[at + v->n] = 0;
            at += v->size;
        }
        }
    }
    memset(rec + RECORD_SPAN + plen, 0, reclen - RECORD_SPAN - plen);
}

#define STACK_FIELDS 32

static PyObject *emit(Emitter *e, PyObject *const *args, size_t nargsf, PyObject *kwnames,
                      PyObject **bound, Value *vals)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nf = e->nfields;
    PyObject *const *slots = args;
    if (kwnames != NULL) {                              /* bind by name */
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        if (nargs + nkw != nf)
            return refuse(e, args, nargsf, kwnames);
        for (Py_ssize_t i = 0; i < nf; i++)
            bound[i] = i < nargs ? args[i] : NULL;
        PyObject **names = &PyTuple_GET_ITEM(e->names, 0);
        for (Py_ssize_t k = 0; k < nkw; k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            Py_ssize_t i = nargs;
            while (i < nf && names[i] != key)
                i++;
            if (i == nf) {                              /* not interned: compare the text */
                for (i = nargs; i < nf; i++) {
                    int eq = PyUnicode_Compare(names[i], key);
                    if (eq == 0)
                        break;
                    if (eq == -1 && PyErr_Occurred())
                        PyErr_Clear();
                }
            }
            if (i == nf || bound[i] != NULL)
                return refuse(e, args, nargsf, kwnames);
            bound[i] = args[nargs + k];
        }
        slots = bound;
    } else if (nargs != nf) {
        return refuse(e, args, nargsf, kwnames);
    }

    Py_ssize_t plen = e->fixed_size;
    memset(vals, 0, sizeof(Value) * nf);
    for (Py_ssize_t i = 0; i < nf; i++) {
        if (convert(&e->fields[i], slots[i], &vals[i]) < 0) {
            release_values(vals, nf);
            return refuse(e, args, nargsf, kwnames);
        }
        plen += vals[i].size;
    }
    if (plen > MAX_PAYLOAD) {
        release_values(vals, nf);
        return refuse(e, args, nargsf, kwnames);
    }

    PyObject *ref = NULL;
    WriterState *w = thread_ring(e, &ref);
    if (w == NULL) {
        release_values(vals, nf);
        return NULL;
    }
    long long reclen = (RECORD_SPAN + plen + 7) & ~7LL;
    long long head = w->head;
    if (w->file == NULL || head + reclen > w->limit)
        head = writer_make_room(w, reclen);
    if (head >= 0) {
        write_record(e, w, w->file + RING_HEADER_SIZE + (head & w->mask), (uint32_t)plen,
                     reclen, vals);
        w->head = head + reclen;
        __atomic_store_n(shared_word(w, RH_HEAD), (uint64_t)w->head, __ATOMIC_RELEASE);
    }
    release_values(vals, nf);
    Py_XDECREF(ref);
    return PyBool_FromLong(head >= 0);
}

static PyObject *Emitter_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                    PyObject *kwnames)
{
    Emitter *e = (Emitter *)self;
    if (!*e->status)
        Py_RETURN_FALSE;
    if (e->nfields <= STACK_FIELDS) {
        PyObject *bound[STACK_FIELDS];
        Value vals[STACK_FIELDS];
        return emit(e, args, nargsf, kwnames, bound, vals);
    }
    PyObject **bound = PyMem_Malloc(e->nfields * sizeof(PyObject *));
    Value *vals = PyMem_Malloc(e->nfields * sizeof(Value));
    PyObject *r = bound && vals ? emit(e, args, nargsf, kwnames, bound, vals)
                                : PyErr_NoMemory();
    PyMem_Free(bound);
    PyMem_Free(vals);
    return r;
}

static int field_from_row(PyObject *row, FieldSpec *f)
{
    int kind, size, is_signed, elem_size, offset, nbytes, rel;
    if (!PyArg_ParseTuple(row, "iiiiiii;a layout row is (kind, size, signed, elem_size, "
                          "offset, nbytes, rel)", &kind, &size, &is_signed, &elem_size,
                          &offset, &nbytes, &rel))
        return -1;
    int size_ok = kind != K_INT || size == 1 || size == 2 || size == 4 || size == 8;
    int elem_ok = kind != K_DYN_ARRAY || elem_size == 1 || elem_size == 2 || elem_size == 4
                  || elem_size == 8;
    if (kind < K_INT || kind > K_DYN_ARRAY || !size_ok || !elem_ok || offset < 0
            || offset > MAX_PAYLOAD || nbytes < 0 || nbytes > MAX_PAYLOAD || rel < 0
            || rel > MAX_PAYLOAD + COMMON_SIZE) {
        PyErr_SetString(PyExc_ValueError, "bad layout row");
        return -1;
    }
    f->kind = kind;
    f->size = size;
    f->is_signed = is_signed != 0;
    f->elem_size = elem_size;
    f->offset = offset;
    f->nbytes = nbytes;
    f->rel = rel;
    return 0;
}

static PyObject *Emitter_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"status", "index", "index_word", "common_type", "rows", "names",
                             "fixed_size", "tls", "new_writer", "session", "explain", NULL};
    PyObject *status, *rows, *names, *tls, *new_writer, *session, *explain;
    Py_ssize_t index, fixed_size;
    unsigned int index_word, common_type;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OnIIO!O!nOOOO:Emitter", kwlist, &status,
                                     &index, &index_word, &common_type, &PyTuple_Type, &rows,
                                     &PyTuple_Type, &names, &fixed_size, &tls, &new_writer,
                                     &session, &explain))
        return NULL;
    Py_ssize_t nf = PyTuple_GET_SIZE(rows);
    if (nf > MAX_FIELDS || PyTuple_GET_SIZE(names) != nf || common_type > 0xFFFF
            || fixed_size < 0 || fixed_size > MAX_PAYLOAD) {
        PyErr_SetString(PyExc_ValueError, "Emitter: a layout this path does not take");
        return NULL;
    }
    Emitter *e = (Emitter *)tp->tp_alloc(tp, 0);
    if (e == NULL)
        return NULL;
    e->vectorcall = Emitter_vectorcall;
    e->fields = PyMem_Calloc(nf ? nf : 1, sizeof(FieldSpec));
    if (e->fields == NULL) {
        Py_DECREF(e);
        return PyErr_NoMemory();
    }
    e->nfields = nf;
    for (Py_ssize_t i = 0; i < nf; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "Emitter: field names must be str");
            Py_DECREF(e);
            return NULL;
        }
        if (field_from_row(PyTuple_GET_ITEM(rows, i), &e->fields[i]) < 0) {
            Py_DECREF(e);
            return NULL;
        }
    }
    e->names = PyTuple_New(nf);
    if (e->names == NULL) {
        Py_DECREF(e);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nf; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        PyTuple_SET_ITEM(e->names, i, name);
    }
    if (PyObject_GetBuffer(status, &e->status_view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(e);
        return NULL;
    }
    if (index < 0 || index >= e->status_view.len) {
        PyBuffer_Release(&e->status_view);
        e->status_view.obj = NULL;
        PyErr_SetString(PyExc_ValueError, "Emitter: index outside the status page");
        Py_DECREF(e);
        return NULL;
    }
    e->status = (const volatile uint8_t *)e->status_view.buf + index;
    e->index_word = index_word;
    e->common_type = (uint16_t)common_type;
    e->fixed_size = fixed_size;
    Py_INCREF(tls);
    e->tls = tls;
    Py_INCREF(new_writer);
    e->new_writer = new_writer;
    Py_INCREF(session);
    e->session = session;
    Py_INCREF(explain);
    e->explain = explain;
    return (PyObject *)e;
}

static int Emitter_traverse(Emitter *e, visitproc visit, void *arg)
{
    Py_VISIT(e->names);
    Py_VISIT(e->tls);
    Py_VISIT(e->new_writer);
    Py_VISIT(e->session);
    Py_VISIT(e->explain);
    return 0;
}

static int Emitter_clear(Emitter *e)
{
    Py_CLEAR(e->names);
    Py_CLEAR(e->tls);
    Py_CLEAR(e->new_writer);
    Py_CLEAR(e->session);
    Py_CLEAR(e->explain);
    return 0;
}

static void Emitter_dealloc(Emitter *e)
{
    PyObject_GC_UnTrack(e);
    Emitter_clear(e);
    if (e->status_view.obj != NULL)
        PyBuffer_Release(&e->status_view);
    PyMem_Free(e->fields);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyTypeObject EmitterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "usertrace.sources.user_events._emit.Emitter",
    .tp_doc = "emit(*values, **values) -> bool: the compiled emit function of one event.",
    .tp_basicsize = sizeof(Emitter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Emitter, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = Emitter_new,
    .tp_dealloc = (destructor)Emitter_dealloc,
    .tp_traverse = (traverseproc)Emitter_traverse,
    .tp_clear = (inquiry)Emitter_clear,
};

/* -- the module --------------------------------------------------------------------------- */
static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_emit",
    "The compiled emit path of user events (see emitters.py for the pure-Python one).",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__emit(void)
{
    if (PyType_Ready(&WriterStateType) < 0 || PyType_Ready(&EmitterType) < 0)
        return NULL;
    str_w = PyUnicode_InternFromString("w");
    if (str_w == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    PyObject *layout = Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:i,s:i,s:i,s:i}",
        "version", LAYOUT_VERSION, "RING_HEADER_SIZE", RING_HEADER_SIZE, "RH_HEAD", RH_HEAD,
        "RH_TAIL", RH_TAIL, "RH_LOST", RH_LOST, "RECORD_HEADER_SIZE", RECORD_HEADER_SIZE,
        "COMMON_SIZE", COMMON_SIZE, "MAX_PAYLOAD", MAX_PAYLOAD, "WRAP_MARK", WRAP_MARK,
        "CPU_UNKNOWN", CPU_UNKNOWN, "K_INT", K_INT, "K_BYTES", K_BYTES, "K_DYN_STR", K_DYN_STR,
        "K_DYN_ARRAY", K_DYN_ARRAY);
    Py_INCREF(&WriterStateType);
    Py_INCREF(&EmitterType);
    if (layout == NULL || PyModule_AddObject(m, "LAYOUT", layout) < 0
            || PyModule_AddObject(m, "WriterState", (PyObject *)&WriterStateType) < 0
            || PyModule_AddObject(m, "Emitter", (PyObject *)&EmitterType) < 0) {
        Py_XDECREF(layout);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
