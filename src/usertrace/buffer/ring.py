"""A ring buffer that writes the kernel's page format: one buffer per writer (one "cpu").

>>> rb = RingBuffer(page_size=4096, nr_pages=4, overwrite=False)
>>> rb.write(1_000, b"hello world!")
True
>>> page = rb.read_page()          # consumes, like a read of per_cpu/cpuN/trace_pipe_raw
>>> [(ts, bytes(p)) for ts, p in decode_page(page).events]
[(1000, b'hello world!')]

Time stamps, as the kernel writes them (``__rb_reserve_next``):

* the first event on a page has time_delta 0 and the page header holds its time;
* every other event has the delta to the event before it in its 27-bit time_delta, or, when
  the delta does not fit, a time-extend event (delta up to 2**59 ns) before it;
* with ``absolute_timestamps=True`` (the kernel's ``timestamp_mode`` "absolute") every event
  is preceded by an absolute time stamp, the first on a page too.

Where the kernel would write a wrong time, this writer keeps the exact one: a time that goes
backwards gets an absolute time stamp (the kernel writes delta 0 and warns), and a jump the
59-bit forms cannot carry starts a new page, whose header holds all 64 bits.

When the writer needs a new page and every page holds unread events, ``overwrite=True``
drops the oldest page (its unread events count as ``overrun`` and the next page read carries
the kernel's missed-events flag and count), ``overwrite=False`` drops the new event
(``dropped_events``).  The kernel flags no page for dropped events; ``mark_dropped=True`` flags
the first page written after them.
"""

from __future__ import annotations

import array
import operator
import struct
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from ..compiled import forced_pure
from .layout import (DEFAULT_LAYOUT, EVENT_HEADER_SIZE, EVENT_MIN_SIZE, LEN_TIME_EXTEND,
                     MAX_SMALL_DATA, TS_LIMIT, TS_MASK, TYPE_PADDING, TYPE_TIME_EXTEND,
                     TYPE_TIME_STAMP, PageLayout, RingBufferError, fix_abs_ts)
from .reader import DecodedPage, PageReader, decode_page, iter_events, merge_events

__all__ = ["RingBuffer", "RingStats", "RingBufferError", "PageLayout", "PageReader",
           "DecodedPage", "decode_page", "iter_events", "merge_events"]

_ABS_MASK = TS_LIMIT - 1


def _compiled_fill():
    """``_ring.fill``, the common case of :meth:`RingBuffer.write_run` in C; None where the
    extension is not built or ``USERTRACE_PURE_PYTHON`` is set (but to 0)."""
    if forced_pure():
        return None
    try:
        from . import _ring
    except ImportError:
        return None
    return _ring.fill


_FILL = _compiled_fill()
_BYTES_TYPES = frozenset((bytes, bytearray))
_U64_LIMIT = 1 << 64


@dataclass(frozen=True)
class RingStats:
    """The counters of ``per_cpu/cpuN/stats``."""

    entries: int            # events written and not yet read nor overwritten
    overrun: int            # events lost to overwrite mode
    commit_overrun: int     # always 0: one writer never wraps onto its own uncommitted data
    bytes: int              # bytes of unread page data (events, time stamps, padding)
    oldest_event_ts: int    # time stamp of the oldest unread page, ns
    dropped_events: int     # events refused in stop-when-full mode
    read_events: int        # events consumed by read_page()

    def render(self, now_ts: int = 0) -> str:
        """The text of ``per_cpu/cpuN/stats`` (times in seconds.microseconds, rounded)."""
        return (f"entries: {self.entries}\n"
                f"overrun: {self.overrun}\n"
                f"commit overrun: {self.commit_overrun}\n"
                f"bytes: {self.bytes}\n"
                f"oldest event ts: {_secs(self.oldest_event_ts)}\n"
                f"now ts: {_secs(now_ts)}\n"
                f"dropped events: {self.dropped_events}\n"
                f"read events: {self.read_events}\n")


def _secs(ns: int) -> str:
    us = (ns + 500) // 1000
    return "%5d.%06d" % divmod(us, 1_000_000)


@lru_cache(maxsize=8)
def _event_shapes(layout: PageLayout) -> tuple[tuple[int, int, int], ...]:
    """Per payload length: (bytes of the event, bytes of its header, the header's first
    word without the time delta, or its length word when it has one)."""
    shapes = []
    for n in range(layout.max_payload + 1):
        size = layout.event_length(n)
        if layout.has_length_word(n):
            shapes.append((size, 8, size - EVENT_HEADER_SIZE))
        else:
            shapes.append((size, 4, (size >> 2) - 1))
    return tuple(shapes)


@lru_cache(maxsize=8)
def _shapes_table(layout: PageLayout) -> bytes:
    """:func:`_event_shapes` as ``_ring.fill`` reads it: three native u32 per length."""
    return array.array("I", [x for shape in _event_shapes(layout) for x in shape]).tobytes()


class RingBuffer:
    """Writer and consuming reader of ``nr_pages`` pages in the kernel's format.

    ``write(ts_ns, payload)`` appends one event and returns False when it was dropped
    (stop-when-full mode).  ``read_page()`` returns the oldest unread page as the kernel's
    ``trace_pipe_raw`` would (``page_size`` bytes), or None; the page the writer is on is
    returned as a copy of its unread events, and the writer goes on after them.
    """

    # Slots: with more attributes than a shared-key dict holds (30 in CPython 3.11), every
    # attribute access of the write path would be a dict lookup.
    __slots__ = ("layout", "page_size", "nr_pages", "overwrite", "absolute_timestamps",
                 "mark_dropped", "_pages", "_blank", "_entries", "_commit", "_real_end",
                 "_lost_before", "_tail", "_page", "_write", "_cur_entries", "_last_ts",
                 "_ever_written", "_head", "_read_off", "_read_entries", "_read_stamp",
                 "_written", "_overrun", "_dropped", "_read", "_pending_lost",
                 "_pending_dropped", "_data_offset", "_data_size", "_small", "_pack_u32",
                 "_pack_u32x2", "_fast", "_writers", "_fill", "_shapes")

    def __init__(self, page_size: int = 4096, nr_pages: int = 16, overwrite: bool = True, *,
                 layout: PageLayout | None = None, absolute_timestamps: bool = False,
                 mark_dropped: bool = False):
        if layout is None:
            layout = DEFAULT_LAYOUT if page_size == DEFAULT_LAYOUT.page_size else \
                PageLayout(page_size)
        if not isinstance(nr_pages, int) or nr_pages < 2:
            raise RingBufferError(f"a ring buffer needs at least 2 pages, not {nr_pages!r}")
        self.layout = layout
        self.page_size = layout.page_size
        self.nr_pages = nr_pages
        self.overwrite = bool(overwrite)
        self.absolute_timestamps = bool(absolute_timestamps)
        self.mark_dropped = bool(mark_dropped)
        self._pages = [bytearray(layout.page_size) for _ in range(nr_pages)]
        self._blank = bytes(layout.page_size)
        # per page: events written, bytes used (padding included), real end, lost before it
        self._entries = [0] * nr_pages
        self._commit = [0] * nr_pages
        self._real_end = [0] * nr_pages
        self._lost_before = [0] * nr_pages
        # the writer
        self._tail = 0
        self._page = self._pages[0]
        self._write = 0              # data bytes used on the tail page
        self._cur_entries = 0        # events on the tail page
        self._last_ts = 0
        self._ever_written = False
        # the reader
        self._head = 0
        self._read_off = 0           # data bytes of the head page already read
        self._read_entries = 0       # events of the head page already read
        self._read_stamp = 0         # time at _read_off
        # counters
        self._written = 0            # events written on pages that are no longer the tail
        self._overrun = 0
        self._dropped = 0
        self._read = 0
        self._pending_lost = 0       # overwritten since the last read_page()
        self._pending_dropped = 0    # dropped since the writer last moved (mark_dropped)
        # the fast path's constants
        self._data_offset = layout.data_offset
        self._data_size = layout.data_size
        self._small = layout.small_lengths
        self._pack_u32 = layout.u32.pack_into
        self._pack_u32x2 = layout.u32x2.pack_into
        self._fast = not (absolute_timestamps or layout.force_8byte_alignment)
        self._writers: dict = {}     # packed_writer(): record struct -> its writer
        # write_run()'s common case in C: records in the page's byte order, native here
        native = layout.abi.endian == ("<" if sys.byteorder == "little" else ">")
        self._fill = _FILL if self._fast and native else None
        self._shapes = _shapes_table(layout) if self._fill is not None else b""

    # -- writing --------------------------------------------------------------------------
    def write(self, ts_ns: int, payload) -> bool:
        """Append one event with time ``ts_ns`` (ns) and ``payload`` (bytes-like).

        Returns True when written, False when dropped because the buffer is full in
        stop-when-full mode.  Payloads come back from a reader zero-padded to 4-byte units.
        """
        try:
            n = len(payload)
            w = self._write
            if n <= MAX_SMALL_DATA and w and self._fast and type(payload) in _BYTES_TYPES:
                delta = ts_ns - self._last_ts
                if 0 <= delta <= TS_MASK:
                    size = self._small[n]
                    if w + size <= self._data_size:
                        pos = self._data_offset + w
                        page = self._page
                        self._pack_u32(page, pos, delta << 5 | ((size >> 2) - 1))
                        page[pos + 4:pos + 4 + n] = payload
                        self._write = w + size
                        self._last_ts = ts_ns
                        self._cur_entries += 1
                        return True
            return self._write_slow(ts_ns, payload)
        except TypeError as exc:
            raise RingBufferError(f"write() needs an int time stamp and a bytes-like payload: "
                                  f"{exc}") from None

    def write_run(self, items: list, i: int, key) -> int:
        """Write the records of ``items``, a flat list of ``(key, ts_ns, payload)`` triples,
        from index ``i`` on while their key is ``key``, each as :meth:`write` would.
        Returns the index of the first triple not written: one of another key, the end, or
        the one after a record that moved the writer to a new page (or was dropped), so that
        the caller can hand the full pages on (:attr:`full_pages`) before it goes on.

        The common case (a record on the page being filled) is written in C by ``_ring.fill``
        where it is built, a page at a time."""
        fill = self._fill
        n = len(items) - 2
        while i < n and items[i] == key:
            if fill is not None and self._write:
                i, self._write, self._last_ts, done = fill(
                    self._page, items, i, key, self._write, self._last_ts,
                    self._data_offset, self._data_size, self._shapes)
                self._cur_entries += done
                if i >= n or items[i] != key:
                    break
            tail = self._tail
            kept = self.write(items[i + 1], items[i + 2])
            i += 3
            if self._tail != tail or not kept:
                break
        return i

    def write_packed(self, ts_ns: int, st: struct.Struct, values: tuple) -> int:
        """Append the event ``st.pack(*values)`` without building its bytes.

        (``values`` is one tuple, not spread: a call with ``*`` costs more than the packing.)
        The same event as ``write(ts_ns, st.pack(*values))``, packed with its header straight
        into the page when it is the common case (a small record on the page being filled, a
        time delta that fits).  Returns 0 when dropped (stop-when-full), 1 when written on
        the page the writer was on, 2 when written by the general path (which may have moved
        the writer to a new page: :attr:`full_pages` may have grown).
        """
        try:
            writer = self._writers[st]
        except (KeyError, TypeError):
            writer = self.packed_writer(st)
        return writer(ts_ns, values)

    def packed_writer(self, st: struct.Struct) -> Callable[[int, tuple], int]:
        """``write(ts_ns, values)``: :meth:`write_packed` bound to ``st`` ahead of time, for a
        hot path that writes many records of one struct (one call per event, no look-up)."""
        writer = self._writers.get(st) if isinstance(st, struct.Struct) else None
        if writer is not None:
            return writer
        fmt = getattr(st, "format", None)
        if not isinstance(fmt, str) or not isinstance(st, struct.Struct):
            raise RingBufferError(f"write_packed() needs a struct.Struct, not {st!r}")
        general = self._write_packed_general
        n = st.size
        endian = self.layout.abi.endian
        if not (self._fast and 0 < n <= MAX_SMALL_DATA and fmt[:1] in ("<", ">", "!", "=")
                and struct.pack(fmt[0] + "I", 1) == struct.pack(endian + "I", 1)):
            def writer(ts_ns: int, values: tuple) -> int:
                return general(ts_ns, st, values)
        else:
            # the event header and the record in one struct, in the page's byte order
            pack_into = struct.Struct(fmt[0] + "I" + fmt[1:]).pack_into
            size = self._small[n]
            word = (size >> 2) - 1               # type_len of the header
            rb = self

            def writer(ts_ns: int, values: tuple) -> int:
                w = rb._write
                if w:
                    delta = ts_ns - rb._last_ts
                    if 0 <= delta <= TS_MASK and w + size <= rb._data_size:
                        pos = rb._data_offset + w
                        try:
                            pack_into(rb._page, pos, delta << 5 | word, *values)
                        except (struct.error, TypeError) as exc:
                            rb._page[pos:pos + size] = bytes(size)  # past the writer: zeros
                            raise RingBufferError(f"write_packed() cannot pack {values!r} "
                                                  f"with {fmt!r}: {exc}") from None
                        rb._write = w + size
                        rb._last_ts = ts_ns
                        rb._cur_entries += 1
                        return 1
                return general(ts_ns, st, values)
        self._writers[st] = writer
        return writer

    def packed_tail_writer(self, st: struct.Struct) -> Callable[[int, tuple, bytes], int]:
        """``write(ts_ns, values, tail)``: the event ``st.pack(*values) + tail`` written in
        place, for records of a fixed part and data of varying length after it (a syscall's
        strings).  The event header (with its length word when the payload is longer than
        112 bytes), the fixed part and the tail go straight into the page.  Returns what
        :meth:`write_packed` returns."""
        fmt = getattr(st, "format", None)
        if not isinstance(fmt, str) or not isinstance(st, struct.Struct):
            raise RingBufferError(f"packed_tail_writer() needs a struct.Struct, not {st!r}")
        layout = self.layout
        fixed = st.size
        if not (self._fast and fmt[:1] in ("<", ">", "!", "=")
                and struct.pack(fmt[0] + "I", 1) == struct.pack(layout.abi.endian + "I", 1)):
            def general(ts_ns: int, values: tuple, tail: bytes) -> int:
                return 2 if self.write(ts_ns, st.pack(*values) + tail) else 0
            return general
        key = (st, "tail")
        writer = self._writers.get(key)
        if writer is not None:
            return writer
        pack_into = st.pack_into
        pack_u32, pack_u32x2 = self._pack_u32, self._pack_u32x2
        shapes = _event_shapes(layout)
        limit = len(shapes)
        rb = self

        def writer(ts_ns: int, values: tuple, tail: bytes) -> int:
            w = rb._write
            n = fixed + len(tail)
            if w and n < limit:
                delta = ts_ns - rb._last_ts
                size, head, word = shapes[n]
                if 0 <= delta <= TS_MASK and w + size <= rb._data_size:
                    page = rb._page
                    pos = rb._data_offset + w
                    if head == 4:
                        pack_u32(page, pos, delta << 5 | word)
                    else:
                        pack_u32x2(page, pos, delta << 5, word)
                    pos += head
                    try:
                        pack_into(page, pos, *values)
                    except (struct.error, TypeError) as exc:
                        page[pos - head:pos + size - head] = bytes(size)
                        raise RingBufferError(f"packed_tail_writer() cannot pack {values!r} "
                                              f"with {fmt!r}: {exc}") from None
                    page[pos + fixed:pos + n] = tail
                    rb._write = w + size
                    rb._last_ts = ts_ns
                    rb._cur_entries += 1
                    return 1
            try:
                payload = st.pack(*values) + tail
            except (struct.error, TypeError) as exc:
                raise RingBufferError(f"packed_tail_writer() cannot pack {values!r} with "
                                      f"{fmt!r}: {exc}") from None
            return 2 if rb.write(ts_ns, payload) else 0
        self._writers[key] = writer
        return writer

    def _write_packed_general(self, ts_ns: int, st: struct.Struct, values: tuple) -> int:
        try:
            payload = st.pack(*values)
        except (struct.error, TypeError) as exc:
            raise RingBufferError(f"write_packed() cannot pack {values!r} with "
                                  f"{st.format!r}: {exc}") from None
        return 2 if self.write(ts_ns, payload) else 0

    def _write_slow(self, ts: int, payload) -> bool:
        ts = operator.index(ts)
        if type(payload) not in _BYTES_TYPES:
            view = memoryview(payload)          # (a str is refused here)
            payload = view.cast("B") if view.c_contiguous else view.tobytes()
        n = len(payload)
        if not 0 <= ts < _U64_LIMIT:
            raise RingBufferError(f"time stamp {ts} is not a u64")
        layout = self.layout
        if n > layout.max_payload:
            raise RingBufferError(f"payload of {n} bytes does not fit a page of "
                                  f"{layout.page_size} bytes (at most {layout.max_payload})")
        size = layout.event_length(n)
        absolute = self.absolute_timestamps
        if absolute and size + LEN_TIME_EXTEND > layout.data_size:
            raise RingBufferError(f"payload of {n} bytes and its time stamp do not fit a page "
                                  f"of {layout.page_size} bytes")
        data_size = self._data_size
        while True:
            w = self._write
            stamp = 0                    # 0: none, else TYPE_TIME_EXTEND / TYPE_TIME_STAMP
            delta = 0
            if w == 0:
                if absolute:
                    stamp = TYPE_TIME_STAMP
            else:
                delta = ts - self._last_ts
                if absolute or delta < 0:
                    if fix_abs_ts(ts & _ABS_MASK, self._last_ts) != ts:
                        if not self._next_page():
                            return self._drop()
                        continue
                    stamp = TYPE_TIME_STAMP
                elif delta > TS_MASK:
                    if delta >= TS_LIMIT:
                        if not self._next_page():
                            return self._drop()
                        continue
                    stamp = TYPE_TIME_EXTEND
            extra = LEN_TIME_EXTEND if stamp else 0
            if w + extra + size > data_size:
                if not self._next_page():
                    return self._drop()
                continue
            break
        page = self._page
        pos = self._data_offset + w
        if stamp == TYPE_TIME_EXTEND:
            self._pack_u32x2(page, pos, (delta & TS_MASK) << 5 | TYPE_TIME_EXTEND,
                             delta >> 27)
            pos += LEN_TIME_EXTEND
        elif stamp == TYPE_TIME_STAMP:
            a = ts & _ABS_MASK
            self._pack_u32x2(page, pos, (a & TS_MASK) << 5 | TYPE_TIME_STAMP, a >> 27)
            pos += LEN_TIME_EXTEND
        delta = 0 if stamp else delta
        if layout.has_length_word(n):
            self._pack_u32x2(page, pos, delta << 5, size - EVENT_HEADER_SIZE)
            page[pos + 8:pos + 8 + n] = payload
        else:
            self._pack_u32(page, pos, delta << 5 | ((size >> 2) - 1))
            page[pos + 4:pos + 4 + n] = payload
        if w == 0:
            layout.u64.pack_into(page, 0, ts)
        self._write = w + extra + size
        self._last_ts = ts
        self._cur_entries += 1
        self._ever_written = True
        return True

    def _drop(self) -> bool:
        self._dropped += 1
        self._pending_dropped += 1
        return False

    def _pad_tail(self) -> None:
        """Close the tail page the way rb_reset_tail does: padding after the last event."""
        w = self._write
        left = self._data_size - w
        t = self._tail
        if left <= 0:
            self._real_end[t] = 0
            return
        pos = self._data_offset + w
        self._real_end[t] = w
        if left < EVENT_MIN_SIZE:
            # no room for a padding with a length: a null padding, outside the commit
            self._pack_u32(self._page, pos, TYPE_PADDING)
        else:
            # a padding event over the rest of the page (time_delta 1, length in array[0])
            self._pack_u32x2(self._page, pos, 1 << 5 | TYPE_PADDING, left - EVENT_HEADER_SIZE)
            self._write = self._data_size

    def _next_page(self) -> bool:
        """Move the writer to the next page; False when full in stop-when-full mode."""
        old = self._tail
        nxt = old + 1
        if nxt == self.nr_pages:
            nxt = 0
        reader_done = False
        if self._head == old:
            reader_done = self._read_entries >= self._cur_entries
        elif nxt == self._head:
            if not self.overwrite:
                self._pad_tail()
                return False
            # overwrite: the oldest page goes, with its unread events
            h = nxt
            lost = self._entries[h] - self._read_entries
            self._overrun += lost
            self._written += self._entries[h]
            self._pending_lost += lost + self._lost_before[h]
            self._lost_before[h] = 0
            self._head = h + 1 if h + 1 < self.nr_pages else 0
            self._read_off = self._read_entries = 0
        self._pad_tail()
        self._entries[old] = self._cur_entries
        self._commit[old] = self._write
        if reader_done:
            # the reader has consumed the page the writer leaves: it is free
            self._written += self._cur_entries
            self._head = nxt
            self._read_off = self._read_entries = 0
        page = self._pages[nxt]
        page[:] = self._blank
        self._tail = nxt
        self._page = page
        self._write = 0
        self._cur_entries = 0
        self._entries[nxt] = self._commit[nxt] = self._real_end[nxt] = 0
        self._lost_before[nxt] = 0
        if self._pending_dropped and self.mark_dropped:
            self._lost_before[nxt] = self._pending_dropped
        self._pending_dropped = 0
        return True

    @property
    def full_pages(self) -> int:
        """Complete pages waiting for a reader (the page the writer is on not counted)."""
        return (self._tail - self._head) % self.nr_pages

    # -- reading --------------------------------------------------------------------------
    def read_page(self) -> bytes | None:
        """:meth:`read_counted`'s page alone."""
        got = self.read_counted()
        return got[0] if got is not None else None

    def read_counted(self) -> tuple[bytes, int, int] | None:
        """Consume the oldest unread page: ``page_size`` bytes as trace_pipe_raw gives them.

        A whole page keeps its time stamp and its commit ends before the padding; a page read
        in part (the writer's page, or the rest of one) is a copy of the unread events with
        the time stamp of the event before them.  The first page read after events were
        overwritten carries the missed-events flag and, when there is room after its data,
        their count.  Returns ``(page, events, lost)``: the events on the page and the count
        of lost events it carries (0 when it has no room for one), as a walk of the page
        would count them; None when there is nothing to read.
        """
        n = self.nr_pages
        while True:
            h = self._head
            start = self._read_off
            if h == self._tail:
                entries = self._cur_entries
                end = self._write
                if self._read_entries >= entries:
                    return None
                ts = self._read_stamp if start else self._page_ts(h)
                self._read_off = end
                unread = entries - self._read_entries
                self._read += unread
                self._read_entries = entries
                self._read_stamp = self._last_ts
                break
            entries = self._entries[h]
            self._head = h + 1 if h + 1 < n else 0
            self._written += entries
            self._read_off = 0
            unread = entries - self._read_entries
            self._read_entries = 0
            if unread <= 0:
                continue
            self._read += unread
            if start:
                end = self._commit[h]
                ts = self._read_stamp
            else:
                end = self._real_end[h] or self._commit[h]
                ts = self._page_ts(h)
            break
        missed = self._pending_lost
        self._pending_lost = 0
        if not start:
            missed += self._lost_before[h]
            self._lost_before[h] = 0
        return self._emit(self._pages[h], start, end, ts, missed, unread)

    def iter_pages(self):
        """Consume every unread page, oldest first."""
        while True:
            page = self.read_page()
            if page is None:
                return
            yield page

    def _page_ts(self, i: int) -> int:
        return self.layout.u64.unpack_from(self._pages[i], 0)[0]

    def _emit(self, src: bytearray, start: int, end: int, ts: int, missed: int,
              events: int) -> tuple[bytes, int, int]:
        layout = self.layout
        d = self._data_offset
        out = bytearray(layout.page_size)
        commit = end - start
        out[d:d + commit] = src[d + start:d + end]
        stored = False
        if missed and self._data_size - commit >= layout.abi.long_size:
            layout.ulong.pack_into(out, d + commit, missed)
            stored = True
        layout.page_header.pack_into(out, 0, ts, layout.commit_word(commit, missed > 0, stored))
        return bytes(out), events, missed if stored else 0

    # -- counters -------------------------------------------------------------------------
    @property
    def entries_written(self) -> int:
        """Every event ever written (read, unread or overwritten)."""
        return self._written + self._cur_entries + self._unread_pages_entries()

    def _unread_pages_entries(self) -> int:
        total, i = 0, self._head
        while i != self._tail:
            total += self._entries[i]
            i = i + 1 if i + 1 < self.nr_pages else 0
        return total

    @property
    def overrun(self) -> int:
        return self._overrun

    @property
    def dropped_events(self) -> int:
        return self._dropped

    @property
    def read_events(self) -> int:
        return self._read

    @property
    def entries(self) -> int:
        """Events in the buffer, not yet read nor overwritten."""
        return self.entries_written - self._overrun - self._read

    def stats(self) -> RingStats:
        """The counters of the kernel's ``per_cpu/cpuN/stats`` for this buffer."""
        nbytes, i = -self._read_off, self._head
        while True:
            nbytes += self._write if i == self._tail else self._commit[i]
            if i == self._tail:
                break
            i = i + 1 if i + 1 < self.nr_pages else 0
        oldest = self._page_ts(self._head) if self._ever_written else 0
        return RingStats(self.entries, self._overrun, 0, max(nbytes, 0), oldest, self._dropped,
                         self._read)
