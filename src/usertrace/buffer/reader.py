"""Read pages in the kernel's ring-buffer format: from our writer, trace_pipe_raw or trace.dat.

:func:`decode_page` turns one page into its events, each ``(ts_ns, payload)`` with the payload
a memoryview into the page.  Time stamps follow the kernel's rules: the page header holds the
time of the first event, each event adds its time_delta, a time extend adds its 59-bit delta,
an absolute time stamp replaces the time (its 5 lost top bits taken from the time before, as
``rb_fix_abs_ts`` does), a discarded event keeps its delta unless it is 1 (the kernel's own
``check_buffer`` rule) and the end-of-page padding adds nothing.

Input that does not follow the format raises :class:`RingBufferError` naming the page index
and the byte offset in the page: a commit past the page end, an event running past the
commit, a type_len 0 event whose array[0] is too small or unaligned, a time stamp with no
event after it, a truncated page.  Every step moves forward by at least 4 bytes, so a page
is read in bounded time.

A walk reads the page's data as an array of 32-bit words (:meth:`PageReader.words`): a data
event of type_len 1..28 is its header word and type_len words of payload, the common case
handled in the walker's own loop; every other event is :meth:`PageReader.other`'s.
:meth:`PageReader.scan` keeps offsets (``(ts, start, stop)``) and may stop at a fault keeping
what came before; :meth:`PageReader.count` counts; :class:`usertrace.trace.Trace` does each
record's work inside the loop.
"""

from __future__ import annotations

import heapq
import sys
from array import array
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from .layout import (DEFAULT_LAYOUT, EVENT_MIN_SIZE, MISSED_EVENTS, MISSED_STORED,
                     TYPE_PADDING, TYPE_TIME_EXTEND, PageLayout,
                     RingBufferError, fix_abs_ts)


@dataclass
class DecodedPage:
    """One page: its header and its data events in order."""

    index: int
    timestamp: int          # the page header's time stamp, ns
    commit: int             # bytes of event data (flags removed)
    missed_events: int      # events lost before this page: 0, the stored count, or -1
                            # (flagged, but no room on the page for the count)
    events: list = field(default_factory=list)   # [(ts_ns, memoryview payload)], or
                                                 # [(ts_ns, start, stop)] from scan()
    error: RingBufferError | None = None         # scan(partial=True): the fault that ended
                                                 # the page


@dataclass
class PageWords:
    """A page's header and its committed data as native 32-bit words (:meth:`PageReader.words`)."""

    index: int
    timestamp: int
    commit: int
    missed_events: int
    words: array
    offset: int             # the page offset of words[0]

    def past_end(self, i: int) -> RingBufferError:
        """The fault of a small data event at word ``i`` that runs past the commit."""
        type_len = self.words[i] & 31
        return RingBufferError(f"data event of {type_len << 2} bytes (type_len {type_len}) "
                               f"runs past the commit at {self.offset + 4 * len(self.words)}",
                               self.index, self.offset + 4 * i)


class PageReader:
    """Decoder of the pages of one layout (page size, byte order, long size)."""

    def __init__(self, layout: PageLayout = DEFAULT_LAYOUT):
        self.layout = layout

    def decode(self, page, index: int = 0) -> DecodedPage:
        """The events of one page (bytes-like, ``layout.page_size`` bytes or at least its
        header and committed data), each ``(ts_ns, memoryview payload)``."""
        mv = _bytes_view(page)
        d = self.scan(mv, index)
        d.events = [(ts, mv[start:stop]) for ts, start, stop in d.events]
        return d

    def scan(self, page, index: int = 0, partial: bool = False) -> DecodedPage:
        """The events of one page as ``(ts_ns, start, stop)``: the payload is
        ``page[start:stop]``.  :meth:`decode` and :meth:`count` are built on it.

        ``partial=True`` keeps the events before a fault instead of raising: the fault is in
        the page's ``error`` (a fault in the page header leaves no events).
        """
        try:
            pw = self.words(page, index)
        except RingBufferError as exc:
            if not partial:
                raise
            return DecodedPage(index, 0, 0, 0, [], exc)
        d = DecodedPage(index, pw.timestamp, pw.commit, pw.missed_events)
        try:
            self._walk(pw, d.events)
        except RingBufferError as exc:
            if not partial:
                raise
            d.error = exc
        return d

    def count(self, page, index: int = 0, partial: bool = False) -> tuple[int, int]:
        """(data events, events lost before the page) of one page, the lost count 0 when
        the page flags a loss without room for its count.  The walk of :meth:`_walk`,
        counting only (a third of its time); ``partial`` counts up to a fault."""
        try:
            pw = self.words(page, index)
        except RingBufferError:
            if partial:
                return 0, 0
            raise
        words = pw.words
        other = self.other
        n = len(words)
        i = events = 0
        try:
            while i < n:
                type_len = words[i] & 31
                if 0 < type_len <= 28:
                    i += 1 + type_len
                    if i > n:
                        raise pw.past_end(i - 1 - type_len)
                    events += 1
                    continue
                i, _, first = other(pw, i, 0)
                events += first >= 0
        except RingBufferError:
            if not partial:
                raise
        return events, max(pw.missed_events, 0)

    def words(self, page, index: int = 0) -> "PageWords":
        """The page's header and its data as 32-bit words, for a walk (:meth:`_walk` is the
        model): word ``i`` is at byte ``offset + 4 * i`` of the page; a data event of
        ``type_len`` 1..28 is its header word and ``type_len`` words of payload; any other
        event goes to :meth:`other`."""
        mv = _bytes_view(page)
        ts, commit, missed, end = self._header(mv, index)
        off = self.layout.data_offset
        words = array("I")
        words.frombytes(mv[off:end])
        if self.layout.abi.endian != _NATIVE_ENDIAN:
            words.byteswap()
        return PageWords(index, ts, commit, missed, words, off)

    def _header(self, mv: memoryview, index: int) -> tuple[int, int, int, int]:
        """(time stamp, commit, missed events, end of the data) of a page's header."""
        layout = self.layout
        size = len(mv)
        doff = layout.data_offset
        if size < doff:
            raise RingBufferError(f"truncated page: {size} bytes, its header needs {doff}",
                                  index, size)
        ts, word = layout.page_header.unpack_from(mv, 0)
        split = layout.split_commit(word)
        if split is None:
            raise RingBufferError(f"commit word 0x{word & (1 << 64) - 1:x} has bits set "
                                  f"beyond the length and the missed-events flags", index, 8)
        commit, flags = split
        if commit > layout.data_size:
            raise RingBufferError(f"commit {commit} runs past the page end (the page holds "
                                  f"{layout.data_size} bytes of data)", index, 8)
        if commit & 3:
            raise RingBufferError(f"commit {commit} is not a multiple of 4 (events are "
                                  f"4-byte aligned)", index, 8)
        end = doff + commit
        if size < end:
            raise RingBufferError(f"truncated page: {size} bytes, commit {commit} needs "
                                  f"{end}", index, size)
        missed = 0
        if flags & MISSED_EVENTS:
            if flags & MISSED_STORED:
                need = end + layout.ulong.size
                if commit + layout.ulong.size > layout.data_size or size < need:
                    raise RingBufferError("the missed-events count lies past the page end",
                                          index, end)
                missed = layout.ulong.unpack_from(mv, end)[0]
            else:
                missed = -1
        elif flags & MISSED_STORED:
            raise RingBufferError("missed-events count flagged without the missed-events "
                                  "flag", index, 8)
        return ts, commit, missed, end

    def _walk(self, pw: "PageWords", events: list) -> None:
        """Append ``(ts, start, stop)`` of every data event of the page."""
        append = events.append
        words, off, ts = pw.words, pw.offset, pw.timestamp
        n = len(words)
        i = 0
        while i < n:
            word = words[i]
            type_len = word & 31
            if 0 < type_len <= 28:              # 1..TYPE_DATA_MAX (a literal: faster)
                j = i + 1 + type_len
                if j > n:
                    raise pw.past_end(i)
                ts += word >> 5
                append((ts, off + 4 * i + 4, off + 4 * j))
                i = j
                continue
            i, ts, first = self.other(pw, i, ts)
            if first >= 0:
                append((ts, off + 4 * first, off + 4 * i))

    @staticmethod
    def other(pw: "PageWords", i: int, ts: int) -> tuple[int, int, int]:
        """The event at word ``i`` when it is not a data event of type_len 1..28:
        ``(next word, time, first payload word)``, the payload word -1 when the event holds
        no data (padding, a time stamp) and the next word past the end when the page's data
        ends there (a null padding)."""
        words, index = pw.words, pw.index
        n = len(words)
        word = words[i]
        type_len = word & 31
        at = pw.offset + 4 * i
        end = pw.offset + 4 * n
        if 0 < type_len <= 28:
            raise ValueError("other() called on a small data event")
        if i + 2 > n:
            if type_len == TYPE_PADDING and not word >> 5:
                return n, ts, -1     # a null padding: the rest is unused
            raise RingBufferError(f"{_TYPE_NAMES[type_len]} needs 8 bytes, only "
                                  f"{end - at} left before the commit", index, at)
        array0 = words[i + 1]
        delta = word >> 5
        if type_len == 0:
            if array0 < 8 or array0 & 3:
                raise RingBufferError(f"data event with type_len 0 has array[0]={array0} "
                                      f"(a length is at least 8 and a multiple of 4)",
                                      index, at)
            j = i + 1 + (array0 >> 2)
            if j > n:
                raise RingBufferError(f"data event of {array0 - 4} bytes runs past the "
                                      f"commit at {end}", index, at)
            return j, ts + delta, i + 2
        if type_len == TYPE_PADDING:
            if not delta:
                if end - at >= EVENT_MIN_SIZE:
                    raise RingBufferError(f"null padding with {end - at} bytes of data "
                                          f"after it", index, at)
                return n, ts, -1
            if array0 < 4 or array0 & 3:
                raise RingBufferError(f"padding with array[0]={array0} (at least 4 and a "
                                      f"multiple of 4)", index, at)
            j = i + 1 + (array0 >> 2)
            if j > n:
                raise RingBufferError(f"padding of {array0} bytes runs past the commit at "
                                      f"{end}", index, at)
            return j, (ts + delta if delta != 1 else ts), -1   # a discarded event keeps its time
        if i + 2 >= n:
            raise RingBufferError(f"{_TYPE_NAMES[type_len]} with no event after it",
                                  index, at)
        stamp = array0 << 27 | delta
        if type_len == TYPE_TIME_EXTEND:
            return i + 2, ts + stamp, -1
        return i + 2, fix_abs_ts(stamp, ts), -1

    def iter_events(self, pages: Iterable,
                    first_index: int = 0) -> Iterator[tuple[int, memoryview]]:
        """``(ts_ns, payload)`` of every data event of ``pages`` (one cpu), in order."""
        for i, page in enumerate(pages, first_index):
            yield from self.decode(page, i).events

    def merge(self, per_cpu: Mapping[int, Iterable]) -> Iterator[tuple[int, int, memoryview]]:
        """``(ts_ns, cpu, payload)`` of the pages of several cpus, merged in time order (ties
        go to the lower cpu, as the kernel's ``trace`` file orders them)."""
        streams = [self._tagged(cpu, pages) for cpu, pages in sorted(per_cpu.items())]
        return heapq.merge(*streams)

    def _tagged(self, cpu: int, pages: Iterable) -> Iterator[tuple[int, int, memoryview]]:
        for i, page in enumerate(pages):
            for ts, payload in self.decode(page, i).events:
                yield ts, cpu, payload


def _bytes_view(page) -> memoryview:
    mv = memoryview(page)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    return mv


_NATIVE_ENDIAN = "<" if sys.byteorder == "little" else ">"
assert array("I").itemsize == 4

_TYPE_NAMES = {0: "data event with type_len 0", TYPE_PADDING: "padding",
               TYPE_TIME_EXTEND: "time extend", 31: "absolute time stamp"}

_DEFAULT_READER = PageReader()


def _reader(layout: PageLayout | None) -> PageReader:
    return _DEFAULT_READER if layout is None or layout == DEFAULT_LAYOUT else PageReader(layout)


def decode_page(page, index: int = 0, layout: PageLayout | None = None) -> DecodedPage:
    """The header and events of one page (see :class:`PageReader`)."""
    return _reader(layout).decode(page, index)


def iter_events(pages: Iterable, layout: PageLayout | None = None) -> Iterator:
    """``(ts_ns, payload)`` of every data event of one cpu's pages, in order."""
    return _reader(layout).iter_events(pages)


def merge_events(per_cpu: Mapping[int, Iterable], layout: PageLayout | None = None) -> Iterator:
    """``(ts_ns, cpu, payload)`` of several cpus' pages, merged in time order."""
    return _reader(layout).merge(per_cpu)

