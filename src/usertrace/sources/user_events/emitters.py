"""The emit path: one layout per event, and one emit function, compiled or pure Python.

:func:`make_emit` describes the event's record as a table (:class:`_Layout`, one row per
field) and returns the compiled emitter (``_emit.Emitter``, see ``_emit.c``) when this
process uses the compiled path (:mod:`.emit_path`), else the pure-Python function below.
Both take the values by position or by name and do the same steps (:mod:`.ring` says why the
order matters)::

    status byte 0?                  -> return False
    bind the values to the fields, encode strings and arrays (their bytes, and the dynamic
    field's word size << 16 | offset)
    the thread's ring (made on first use)
    head + record size > limit?     -> make_room(): wrap, reload tail, or drop (False)
    write the record at head with its padding zeroed, then publish head (one 8-byte store)

A value the record cannot take raises ``UserEventError("BAD_VALUE")`` naming the field and
the fault.  :meth:`_Layout.explain` is the one place that names it, for both paths: the
compiled path calls it when it refuses a value, the pure path when ``struct`` does.

Worked example, ``app_req u32 status; __data_loc char[] path`` emitting ``(200, "/a")``::

    ring record  0  u32 payload length 11         8  u64 time stamp (CLOCK_MONOTONIC)
                 4  u32 index word                16 s32 cpu -1, then u32 0
                 24 u16 common_type, u8 0, u8 0   28 s32 common_pid (the thread id)
    payload      32 u32 status = 200              (offset 8 of the kernel's record)
                 36 u32 path = 3 << 16 | 16       ("/a" and its NUL, at kernel offset 16)
                 40 "/a\\0", then 5 zero bytes     (to 48, a multiple of 8)
"""

from __future__ import annotations

import struct
import time

from . import abi
from .emit_path import ROW_BYTES, ROW_DYN_ARRAY, ROW_DYN_STR, ROW_INT, compiled as _compiled
from .parse import K_CHARS, K_DYN_ARRAY, K_DYN_STR, K_INT, K_STRUCT, Definition, UserEventError

_M = object()              # "no value given"
_now = time.monotonic_ns
_HDR = abi.RING_HEADER_SIZE
_HEAD = abi.RH_HEAD // 8
_CPU = abi.CPU_UNKNOWN
_SPAN = abi.RECORD_HEADER_SIZE + abi.COMMON_SIZE     # ring header and common fields
_MAX_DYN = 0xFFFF                                    # the size half of a dynamic field's word
_ZEROS = tuple(bytes(n) for n in range(8))
_ROWS = {K_INT: ROW_INT, K_CHARS: ROW_BYTES, K_STRUCT: ROW_BYTES, K_DYN_STR: ROW_DYN_STR,
         K_DYN_ARRAY: ROW_DYN_ARRAY}
_BYTES_LIKE = (bytes, bytearray, memoryview)
MAX_CACHED_LENGTHS = 256   # string lengths with a Struct of their own, per event (pure path)


def make_emit(ev, writer_for_thread, compiled=_compiled):
    """The emit function of ``ev`` (a registered UserEvent); ``writer_for_thread(session)``
    makes the calling thread's ring on its first enabled emit.  ``compiled``: the ``_emit``
    module to use, None for pure Python (default: the path of this process)."""
    layout = _Layout(ev.definition)
    sess = ev.session
    if compiled is not None:
        return compiled.Emitter(sess.status, ev.index, ev.slot.index_word,
                                abi.ID_BASE + ev.index, layout.rows(), layout.names,
                                layout.min_size, sess.tls, writer_for_thread, sess,
                                layout.explain)
    return _pure_emit(ev, layout, writer_for_thread)


class _Layout:
    """Where each field of an event goes in a record, and what each one takes.

    ``pack`` packs the ring header, the common fields and the fixed part of the fields in one
    call (for a record with no dynamic field, its zero padding too).  :meth:`encode` turns
    strings of char arrays into bytes and each dynamic field into its word (in the fixed part)
    and its bytes (after it).
    """

    def __init__(self, defn: Definition):
        self.name = defn.name
        self.fields = defn.fields
        self.names = tuple(f.name for f in defn.fields)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.min_size = defn.min_size
        self.dynamic = tuple(i for i, f in enumerate(defn.fields) if f.is_dynamic)
        self.as_bytes = tuple(i for i, f in enumerate(defn.fields)
                              if f.kind in (K_CHARS, K_STRUCT))
        self.codes = abi.RECORD_PACK_PREFIX + "".join(f.code for f in defn.fields)
        pad = "" if self.dynamic else f"{abi.record_size(self.min_size) - _SPAN - self.min_size}x"
        self.pack = struct.Struct(self.codes + pad).pack_into
        self.fixed_end = _SPAN + self.min_size          # ring record offset of dynamic data
        # What the offset in a dynamic field's word counts from, as a kernel record offset:
        # 0 for __data_loc (the record's start), the end of the word for __rel_loc.
        self.rel = tuple(f.offset + 4 if f.is_rel_loc else 0 for f in defn.fields)

    def rows(self) -> tuple:
        """The table the compiled path takes, a row per field: (kind, size, signed, element
        size, offset in the payload, bytes of a char array or struct, __rel_loc base)."""
        out = []
        for i, f in enumerate(self.fields):
            code = f.elem_code if f.kind == K_DYN_ARRAY else f.code
            elem = struct.calcsize("=" + f.elem_code) if f.kind == K_DYN_ARRAY else 0
            out.append((_ROWS[f.kind], f.size, int(code[-1:].islower()), elem,
                        f.offset - abi.COMMON_SIZE, f.size, self.rel[i]))
        return tuple(out)

    # -- binding and encoding --------------------------------------------------------------
    def bind(self, args: tuple, kwargs: dict) -> list:
        """The values in field order, from positions and names."""
        n = len(self.names)
        if len(args) > n:
            raise self._error(f"takes {n} values, {len(args)} given")
        vals = list(args) + [_M] * (n - len(args))
        for key, v in kwargs.items():
            i = self.index.get(key)
            if i is None:
                raise self._error(f"has no field {key!r}")
            if vals[i] is not _M:
                raise self._error(f"field {key!r} given twice")
            vals[i] = v
        missing = [self.names[i] for i, v in enumerate(vals) if v is _M]
        if missing:
            raise self._error(f"no value for {', '.join(missing)}")
        return vals

    def by_name(self, args: tuple, kwargs: dict):
        """bind(), with a short way for the values all given by name."""
        if not args and len(kwargs) == len(self.names):
            try:
                return [kwargs[name] for name in self.names]
            except KeyError:
                pass
        return self.bind(args, kwargs)

    def encode(self, vals) -> tuple[list, bytes, int]:
        """(values for ``pack``, the bytes after the fixed part with the padding (none when
        there is no dynamic field: ``pack`` pads), payload length)."""
        vals = list(vals)
        for i in self.as_bytes:
            if isinstance(vals[i], str):
                vals[i] = self._utf8(i, vals[i])
        at = abi.COMMON_SIZE + self.min_size                # kernel record offset
        parts = []
        for i in self.dynamic:
            b = self._dynamic_bytes(i, vals[i])
            vals[i] = len(b) << 16 | (at - self.rel[i])
            at += len(b)
            parts.append(b)
        plen = at - abi.COMMON_SIZE
        if plen > abi.MAX_PAYLOAD:
            raise self._error(f"payload of {plen} bytes exceeds {abi.MAX_PAYLOAD}")
        if not parts:
            return vals, b"", plen
        parts.append(_ZEROS[abi.record_size(plen) - _SPAN - plen])
        return vals, b"".join(parts), plen

    def string_last(self):
        """For the common shape, fixed fields and a ``__data_loc``/``__rel_loc`` string last:
        (packers by string length with its NUL, make_packer(length), the offset half of the
        string's word).  A packer packs the whole record, string and padding included, in one
        call; make_packer() makes and caches one, or returns None when the length is refused or
        MAX_CACHED_LENGTHS are cached (encode() takes the values then).  None for other shapes."""
        last = len(self.fields) - 1
        if self.dynamic != (last,) or self.fields[last].kind != K_DYN_STR or self.as_bytes:
            return None
        packers: dict = {}

        def make_packer(n: int):
            plen = self.min_size + n
            if len(packers) >= MAX_CACHED_LENGTHS or n > _MAX_DYN or plen > abi.MAX_PAYLOAD:
                return None
            reclen = abi.record_size(plen)
            pack = struct.Struct(f"{self.codes}{n}s{reclen - _SPAN - plen}x").pack_into
            packers[n] = pack, plen, reclen
            return packers[n]
        return packers, make_packer, abi.COMMON_SIZE + self.min_size - self.rel[last]

    def _dynamic_bytes(self, i: int, v) -> bytes:
        """The bytes of dynamic field ``i`` in the record (a string with its NUL)."""
        f = self.fields[i]
        if f.kind == K_DYN_STR:
            if isinstance(v, str):
                b = self._utf8(i, v) + b"\0"
            elif isinstance(v, _BYTES_LIKE):
                b = bytes(v)
                b = b if b.endswith(b"\0") else b + b"\0"     # bytes may bring their NUL
            else:
                raise self._fault(i, f"takes str or bytes, not {type(v).__name__}")
        elif isinstance(v, _BYTES_LIKE):
            b = bytes(v)
        elif isinstance(v, (str, int)):
            raise self._fault(i, f"takes bytes or a sequence of integers, not {type(v).__name__}")
        else:
            try:
                b = struct.pack(f"={len(v)}{f.elem_code}", *v)
            except (struct.error, TypeError) as exc:
                raise self._fault(i, self._element_fault(f, v, exc)) from None
        if len(b) > _MAX_DYN:
            raise self._fault(i, f"has {len(b)} bytes, more than {_MAX_DYN}")
        return b

    def _utf8(self, i: int, s: str) -> bytes:
        try:
            return str.encode(s)
        except UnicodeEncodeError as exc:
            raise self._fault(i, f"takes text UTF-8 can encode ({exc.reason} at "
                                 f"{exc.start})") from None

    # -- faults ----------------------------------------------------------------------------
    def explain(self, *args, **kwargs):
        """Raise the UserEventError that names why these values do not make a record."""
        vals = self.bind(args, kwargs)
        for i, f in enumerate(self.fields):
            v = vals[i]
            if f.kind == K_INT:
                fault = _int_fault(f.code, v)
                if fault:
                    raise self._fault(i, fault)
            elif f.kind in (K_CHARS, K_STRUCT):
                if isinstance(v, str):
                    self._utf8(i, v)
                elif not isinstance(v, (bytes, bytearray)):
                    raise self._fault(i, f"takes str or bytes, not {type(v).__name__}")
        self.encode(vals)
        raise self._error("values do not fit the record")

    @staticmethod
    def _element_fault(f, v, exc) -> str:
        try:
            items = list(v)
        except TypeError:
            return f"takes bytes or a sequence of integers, not {type(v).__name__}"
        for k, item in enumerate(items):
            fault = _int_fault(f.elem_code, item)
            if fault:
                return f"element {k} {fault}"
        return str(exc)

    def _fault(self, i: int, what: str) -> UserEventError:
        f = self.fields[i]
        return self._error(f"field {f.name} ({f.type}) {what}")

    def _error(self, what: str) -> UserEventError:
        return UserEventError("BAD_VALUE", f"{self.name} {what}")


def _int_fault(code: str, v) -> str:
    """What is wrong with ``v`` for a field of struct code ``code`` ("" if nothing): what
    struct and _emit.c take, an int (or an object with __index__) in the type's range."""
    bits = struct.calcsize("=" + code) * 8
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if code.islower() else (0, (1 << bits) - 1)
    if not isinstance(v, int):
        try:
            v = v.__index__()
        except Exception:
            return f"takes an integer, not {type(v).__name__}"
    return "" if lo <= v <= hi else f"takes {lo} to {hi}, not {v}"


def _pure_emit(ev, layout: _Layout, new_writer):
    """The pure-Python emit function of one event (see the module docstring).

    The values reach ``pack`` as one ``*vals``, in one of three shapes: integers alone as they
    come, a string last encoded here (its record packed in one call by a Struct made for the
    string's length), anything else through :meth:`_Layout.encode`.
    """
    sess = ev.session
    status, index, tls = sess.status, ev.index, sess.tls
    iw, ctype = ev.slot.index_word, abi.ID_BASE + ev.index
    nfields, explain, by_name = len(layout.names), layout.explain, layout.by_name
    fixed = layout.pack, layout.min_size, abi.record_size(layout.min_size)
    fixed_end, encode = layout.fixed_end, layout.encode
    as_is = not layout.dynamic and not layout.as_bytes
    string_last = layout.string_last()
    if string_last is not None:
        packers, make_packer, base = string_last
    last = nfields - 1

    def emit(*args, **kwargs):
        if not status[index]:
            return False
        vals = args if not kwargs and len(args) == nfields else by_name(args, kwargs)
        data = None
        if as_is:
            got = fixed
        else:
            got = None
            if string_last is not None and vals[last].__class__ is str:
                try:
                    b = vals[last].encode()
                    n = len(b) + 1
                    got = packers.get(n) or make_packer(n)
                    if got is not None:
                        vals = (*vals[:last], n << 16 | base, b)
                except UnicodeEncodeError:
                    pass                                # encode() names the fault
            if got is None:
                vals, data, plen = encode(vals)
                got = fixed if not data else (fixed[0], plen, abi.record_size(plen))
        pack, plen, reclen = got
        try:
            w = tls.w
        except AttributeError:
            w = new_writer(sess)
        head = w.head
        lim = w.limit
        if head + reclen > lim:
            head = w.make_room(reclen)
            if head < 0:
                return False
            lim = w.limit
        w.limit = -1
        try:
            at = _HDR + (head & w.mask)
            pack(w.mm, at, plen, iw, _now(), _CPU, ctype, w.tid, *vals)
            if data:
                w.mm[at + fixed_end: at + reclen] = data
            w.q[_HEAD] = w.head = head + reclen
        except struct.error:
            explain(*args, **kwargs)
        finally:
            w.limit = lim
        return True
    return emit
