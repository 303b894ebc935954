"""The emit functions: one made per event, with everything it needs as closure constants.

The cost of an emit from Python is mostly interpreter overhead, so the common shapes get a
function of their own with fixed parameters (a ``*args`` signature and a ``*args`` call each
cost about as much as the whole store of the record):

* up to 4 integer fields: ``emit(v0, v1, v2, v3)`` packs header and fields in one call;
* up to 3 integer fields and a ``__data_loc``/``__rel_loc`` string last: the string goes in
  the same call, through a ``Struct`` cached per string length (``"...%ds"`` pads the NUL);
* anything else: a general function (char arrays, structs, several dynamic fields, arrays).

Every variant follows the same steps (see :mod:`.ring` for why the order matters)::

    status byte 0?                  -> return False
    the thread's ring (made on first use)
    head + record size > limit?     -> RingWriter.make_room(): wrap, reload tail, or drop
    limit = -1 while writing        (a nested emit from a signal handler is dropped, not
                                     interleaved)
    pack the record at head, then publish head (one 8-byte store), restore limit

Keyword arguments and missing values go to the general function, which binds them by name.
"""

from __future__ import annotations

import struct
import time

from . import abi
from .parse import K_DYN_STR, K_INT, UserEventError

_M = object()              # "no value given"
_now = time.monotonic_ns
_HDR = abi.RING_HEADER_SIZE
_HEAD = abi.RH_HEAD // 8
_CPU = abi.CPU_UNKNOWN
MAX_CACHED_LENGTHS = 256   # string lengths with a Struct of their own, per event


def make_emit(ev, writer_for_thread):
    """The emit function of ``ev`` (a registered UserEvent); ``writer_for_thread(session)``
    makes the calling thread's ring on its first enabled emit."""
    defn = ev.definition
    fields = defn.fields
    n = len(fields)
    if all(f.kind == K_INT for f in fields) and n <= 4:
        return _FIXED[n](ev, writer_for_thread, _general(ev, writer_for_thread))
    if (1 <= n <= 4 and fields[-1].kind == K_DYN_STR
            and all(f.kind == K_INT for f in fields[:-1])):
        return _STR_LAST[n - 1](ev, writer_for_thread, _general(ev, writer_for_thread))
    return _general(ev, writer_for_thread)


def _bad(defn, exc) -> UserEventError:
    return UserEventError("BAD_VALUE", f"{defn.name}: {exc}")


# -- integer fields only -----------------------------------------------------------------------
def _consts(ev):
    sess = ev.session
    return (ev.session.status, ev.index, ev.slot.index_word, sess.tls, sess,
            abi.record_size(ev.definition.min_size), ev.definition.min_size,
            abi.ID_BASE + ev.index)


def _fixed_pack(ev):
    codes = "".join(f.code for f in ev.definition.fields)
    return struct.Struct(abi.RECORD_PACK_PREFIX + codes).pack_into


def _fixed0(ev, new_writer, general):
    status, index, iw, tls, sess, reclen, plen, ctype = _consts(ev)
    pack = _fixed_pack(ev)
    defn = ev.definition

    def emit(*more, **kw):
        if not status[index]:
            return False
        if kw or more:
            return general(*more, **kw)
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
            pack(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU, ctype, w.tid)
            w.q[_HEAD] = w.head = head + reclen
        except struct.error as exc:
            raise _bad(defn, exc) from None
        finally:
            w.limit = lim
        return True
    return emit


def _fixed1(ev, new_writer, general):
    status, index, iw, tls, sess, reclen, plen, ctype = _consts(ev)
    pack = _fixed_pack(ev)
    defn = ev.definition

    def emit(v0=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or v0 is _M:
            return general(*(v for v in (v0,) if v is not _M), *more, **kw)
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
            pack(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU, ctype, w.tid, v0)
            w.q[_HEAD] = w.head = head + reclen
        except struct.error as exc:
            raise _bad(defn, exc) from None
        finally:
            w.limit = lim
        return True
    return emit


def _fixed2(ev, new_writer, general):
    status, index, iw, tls, sess, reclen, plen, ctype = _consts(ev)
    pack = _fixed_pack(ev)
    defn = ev.definition

    def emit(v0=_M, v1=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or v1 is _M:
            return general(*(v for v in (v0, v1) if v is not _M), *more, **kw)
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
            pack(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU, ctype, w.tid, v0, v1)
            w.q[_HEAD] = w.head = head + reclen
        except struct.error as exc:
            raise _bad(defn, exc) from None
        finally:
            w.limit = lim
        return True
    return emit


def _fixed3(ev, new_writer, general):
    status, index, iw, tls, sess, reclen, plen, ctype = _consts(ev)
    pack = _fixed_pack(ev)
    defn = ev.definition

    def emit(v0=_M, v1=_M, v2=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or v2 is _M:
            return general(*(v for v in (v0, v1, v2) if v is not _M), *more, **kw)
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
            pack(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU, ctype, w.tid, v0, v1, v2)
            w.q[_HEAD] = w.head = head + reclen
        except struct.error as exc:
            raise _bad(defn, exc) from None
        finally:
            w.limit = lim
        return True
    return emit


def _fixed4(ev, new_writer, general):
    status, index, iw, tls, sess, reclen, plen, ctype = _consts(ev)
    pack = _fixed_pack(ev)
    defn = ev.definition

    def emit(v0=_M, v1=_M, v2=_M, v3=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or v3 is _M:
            return general(*(v for v in (v0, v1, v2, v3) if v is not _M), *more, **kw)
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
            pack(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU, ctype, w.tid, v0, v1, v2, v3)
            w.q[_HEAD] = w.head = head + reclen
        except struct.error as exc:
            raise _bad(defn, exc) from None
        finally:
            w.limit = lim
        return True
    return emit


_FIXED = (_fixed0, _fixed1, _fixed2, _fixed3, _fixed4)


# -- integer fields and a string last ----------------------------------------------------------
class _StringPackers:
    """Per event: length of the string with its NUL -> pack_into of the whole record."""

    def __init__(self, ev):
        defn = ev.definition
        self.prefix = abi.RECORD_PACK_PREFIX + "".join(f.code for f in defn.fields)
        self.fixed = struct.Struct(self.prefix).pack_into
        self.at_string = abi.RECORD_HEADER_SIZE + abi.COMMON_SIZE + defn.min_size
        self.cache: dict = {}

    def make(self, nbytes: int):
        """The packer for strings of ``nbytes`` (NUL included); cached up to a bound."""
        if len(self.cache) < MAX_CACHED_LENGTHS:
            pack = struct.Struct(f"{self.prefix}{nbytes}s").pack_into
            self.cache[nbytes] = pack
            return pack
        fixed, at_string = self.fixed, self.at_string

        def pack_in_two(mm, at, *values):       # rare lengths: fields, then the string
            *head, raw = values
            fixed(mm, at, *head)
            p = at + at_string
            mm[p: p + len(raw)] = raw
            mm[p + len(raw)] = 0
        return pack_in_two


def _str_consts(ev):
    status, index, iw, tls, sess, _, min_size, ctype = _consts(ev)
    last = ev.definition.fields[-1]
    data_start = abi.COMMON_SIZE + min_size
    # The word's offset: from the record start (__data_loc) or from the end of the word
    # (__rel_loc, which is 0 here: the string follows the last field directly).
    base = data_start - (last.offset + 4) if last.is_rel_loc else data_start
    return status, index, iw, tls, sess, min_size, base, _StringPackers(ev), ctype


def _encoded(v):
    """The bytes of a string value, without a NUL at the end (the writer adds one)."""
    if v.__class__ is str:
        return v.encode()
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise TypeError(f"a string field takes str or bytes, not {type(v).__name__}")
    raw = bytes(v)
    return raw[:-1] if raw.endswith(b"\0") else raw


def _str1(ev, new_writer, general):
    status, index, iw, tls, sess, min_size, base, packers, ctype = _str_consts(ev)
    cache, make = packers.cache, packers.make
    defn = ev.definition

    def emit(s=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or s is _M:
            return general(*(v for v in (s,) if v is not _M), *more, **kw)
        try:
            w = tls.w
        except AttributeError:
            w = new_writer(sess)
        try:
            b = s.encode() if s.__class__ is str else _encoded(s)
            n = len(b) + 1
            plen = min_size + n
            reclen = (plen + 39) & -8
            if plen > abi.MAX_PAYLOAD:
                raise UserEventError("BAD_VALUE", f"{defn.name}: payload of {plen} bytes "
                                                  f"exceeds {abi.MAX_PAYLOAD}")
            head = w.head
            lim = w.limit
            if head + reclen > lim:
                head = w.make_room(reclen)
                if head < 0:
                    return False
                lim = w.limit
            w.limit = -1
            try:
                (cache.get(n) or make(n))(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU,
                                          ctype, w.tid,
                           n << 16 | base, b)
                w.q[_HEAD] = w.head = head + reclen
            finally:
                w.limit = lim
        except (struct.error, AttributeError, TypeError) as exc:
            raise _bad(defn, exc) from None
        return True
    return emit


def _str2(ev, new_writer, general):
    status, index, iw, tls, sess, min_size, base, packers, ctype = _str_consts(ev)
    cache, make = packers.cache, packers.make
    defn = ev.definition

    def emit(v0=_M, s=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or s is _M:
            return general(*(v for v in (v0, s) if v is not _M), *more, **kw)
        try:
            w = tls.w
        except AttributeError:
            w = new_writer(sess)
        try:
            b = s.encode() if s.__class__ is str else _encoded(s)
            n = len(b) + 1
            plen = min_size + n
            reclen = (plen + 39) & -8
            if plen > abi.MAX_PAYLOAD:
                raise UserEventError("BAD_VALUE", f"{defn.name}: payload of {plen} bytes "
                                                  f"exceeds {abi.MAX_PAYLOAD}")
            head = w.head
            lim = w.limit
            if head + reclen > lim:
                head = w.make_room(reclen)
                if head < 0:
                    return False
                lim = w.limit
            w.limit = -1
            try:
                (cache.get(n) or make(n))(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU,
                                          ctype, w.tid,
                           v0, n << 16 | base, b)
                w.q[_HEAD] = w.head = head + reclen
            finally:
                w.limit = lim
        except (struct.error, AttributeError, TypeError) as exc:
            raise _bad(defn, exc) from None
        return True
    return emit


def _str3(ev, new_writer, general):
    status, index, iw, tls, sess, min_size, base, packers, ctype = _str_consts(ev)
    cache, make = packers.cache, packers.make
    defn = ev.definition

    def emit(v0=_M, v1=_M, s=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or s is _M:
            return general(*(v for v in (v0, v1, s) if v is not _M), *more, **kw)
        try:
            w = tls.w
        except AttributeError:
            w = new_writer(sess)
        try:
            b = s.encode() if s.__class__ is str else _encoded(s)
            n = len(b) + 1
            plen = min_size + n
            reclen = (plen + 39) & -8
            if plen > abi.MAX_PAYLOAD:
                raise UserEventError("BAD_VALUE", f"{defn.name}: payload of {plen} bytes "
                                                  f"exceeds {abi.MAX_PAYLOAD}")
            head = w.head
            lim = w.limit
            if head + reclen > lim:
                head = w.make_room(reclen)
                if head < 0:
                    return False
                lim = w.limit
            w.limit = -1
            try:
                (cache.get(n) or make(n))(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU,
                                          ctype, w.tid,
                           v0, v1, n << 16 | base, b)
                w.q[_HEAD] = w.head = head + reclen
            finally:
                w.limit = lim
        except (struct.error, AttributeError, TypeError) as exc:
            raise _bad(defn, exc) from None
        return True
    return emit


def _str4(ev, new_writer, general):
    status, index, iw, tls, sess, min_size, base, packers, ctype = _str_consts(ev)
    cache, make = packers.cache, packers.make
    defn = ev.definition

    def emit(v0=_M, v1=_M, v2=_M, s=_M, /, *more, **kw):
        if not status[index]:
            return False
        if kw or more or s is _M:
            return general(*(v for v in (v0, v1, v2, s) if v is not _M), *more, **kw)
        try:
            w = tls.w
        except AttributeError:
            w = new_writer(sess)
        try:
            b = s.encode() if s.__class__ is str else _encoded(s)
            n = len(b) + 1
            plen = min_size + n
            reclen = (plen + 39) & -8
            if plen > abi.MAX_PAYLOAD:
                raise UserEventError("BAD_VALUE", f"{defn.name}: payload of {plen} bytes "
                                                  f"exceeds {abi.MAX_PAYLOAD}")
            head = w.head
            lim = w.limit
            if head + reclen > lim:
                head = w.make_room(reclen)
                if head < 0:
                    return False
                lim = w.limit
            w.limit = -1
            try:
                (cache.get(n) or make(n))(w.mm, _HDR + (head & w.mask), plen, iw, _now(), _CPU,
                                          ctype, w.tid,
                           v0, v1, v2, n << 16 | base, b)
                w.q[_HEAD] = w.head = head + reclen
            finally:
                w.limit = lim
        except (struct.error, AttributeError, TypeError) as exc:
            raise _bad(defn, exc) from None
        return True
    return emit


_STR_LAST = (_str1, _str2, _str3, _str4)


# -- everything else ---------------------------------------------------------------------------
def _general(ev, new_writer):
    """Any event: values by position or name, char arrays, structs, any dynamic fields."""
    from .parse import K_CHARS, K_DYN_ARRAY, K_STRUCT

    defn = ev.definition
    sess = ev.session
    fields = defn.fields
    nfields = len(fields)
    names = [f.name for f in fields]
    status, index, iw, tls = sess.status, ev.index, ev.slot.index_word, sess.tls
    ctype = abi.ID_BASE + ev.index
    pack = struct.Struct(abi.RECORD_PACK_PREFIX + "".join(f.code for f in fields)).pack_into
    min_size = defn.min_size
    to_bytes = tuple(i for i, f in enumerate(fields) if f.kind in (K_CHARS, K_STRUCT))
    dyn = tuple((i, f.kind == K_DYN_STR, f.offset + 4 if f.is_rel_loc else 0,
                 "=%d" + f.elem_code if f.kind == K_DYN_ARRAY else "")
                for i, f in enumerate(fields) if f.is_dynamic)
    data_start = abi.COMMON_SIZE + min_size

    def bind(args, kwargs):
        if len(args) > nfields:
            raise UserEventError("BAD_VALUE", f"{defn.name} takes {nfields} values, "
                                              f"{len(args)} given")
        vals = list(args) + [_M] * (nfields - len(args))
        for k, v in kwargs.items():
            try:
                i = names.index(k)
            except ValueError:
                raise UserEventError("BAD_VALUE", f"{defn.name} has no field {k!r}") from None
            if vals[i] is not _M:
                raise UserEventError("BAD_VALUE", f"{defn.name}: field {k!r} given twice")
            vals[i] = v
        missing = [names[i] for i, v in enumerate(vals) if v is _M]
        if missing:
            raise UserEventError("BAD_VALUE", f"{defn.name}: no value for {', '.join(missing)}")
        return vals

    def emit(*args, **kwargs):
        if not status[index]:
            return False
        vals = bind(args, kwargs) if kwargs or len(args) != nfields else list(args)
        try:
            w = tls.w
        except AttributeError:
            w = new_writer(sess)
        try:
            for i in to_bytes:
                if isinstance(vals[i], str):
                    vals[i] = vals[i].encode()
            blobs = []
            at = data_start
            for i, is_str, rel, arr in dyn:
                v = vals[i]
                if is_str:
                    b = _encoded(v) + b"\0"
                elif isinstance(v, (bytes, bytearray, memoryview)):
                    b = bytes(v)
                elif isinstance(v, (str, int)):
                    raise TypeError(f"{names[i]} takes bytes or a sequence of integers")
                else:
                    b = struct.pack(arr % len(v), *v)
                if len(b) > 0xFFFF:
                    raise UserEventError("BAD_VALUE", f"{defn.name}: {names[i]} has "
                                                      f"{len(b)} bytes")
                vals[i] = len(b) << 16 | (at - rel if rel else at)
                at += len(b)
                blobs.append(b)
            plen = at - abi.COMMON_SIZE
            if plen > abi.MAX_PAYLOAD:
                raise UserEventError("BAD_VALUE", f"{defn.name}: payload of {plen} bytes "
                                                  f"exceeds {abi.MAX_PAYLOAD}")
            reclen = abi.record_size(plen)
            head = w.head
            lim = w.limit
            if head + reclen > lim:
                head = w.make_room(reclen)
                if head < 0:
                    return False
                lim = w.limit
            w.limit = -1
            try:
                p = _HDR + (head & w.mask)
                mm = w.mm
                pack(mm, p, plen, iw, _now(), _CPU, ctype, w.tid, *vals)
                p += abi.RECORD_HEADER_SIZE + abi.COMMON_SIZE + min_size
                for b in blobs:
                    mm[p: p + len(b)] = b
                    p += len(b)
                w.q[_HEAD] = w.head = head + reclen
            finally:
                w.limit = lim
        except (struct.error, AttributeError, TypeError) as exc:
            raise _bad(defn, exc) from None
        return True
    return emit
