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
"""

from __future__ import annotations

import heapq
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
    events: list = field(default_factory=list)   # [(ts_ns, memoryview payload)]


class PageReader:
    """Decoder of the pages of one layout (page size, byte order, long size)."""

    def __init__(self, layout: PageLayout = DEFAULT_LAYOUT):
        self.layout = layout

    def decode(self, page, index: int = 0) -> DecodedPage:
        """The events of one page (bytes-like, ``layout.page_size`` bytes or at least its
        header and committed data)."""
        layout = self.layout
        mv = memoryview(page)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
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
        return DecodedPage(index, ts, commit, missed, self._events(mv, doff, end, ts, index))

    def _events(self, mv: memoryview, off: int, end: int, ts: int, index: int) -> list:
        events = []
        append = events.append
        u32 = self.layout.u32.unpack_from
        u32x2 = self.layout.u32x2.unpack_from
        # off and end are multiples of 4 and every step is one: a header never straddles end
        while off < end:
            word = u32(mv, off)[0]
            type_len = word & 31
            if 0 < type_len <= 28:              # 1..TYPE_DATA_MAX (a literal: faster)
                nxt = off + 4 + (type_len << 2)
                if nxt > end:
                    raise RingBufferError(f"data event of {type_len << 2} bytes (type_len "
                                          f"{type_len}) runs past the commit at {end}",
                                          index, off)
                ts += word >> 5
                append((ts, mv[off + 4:nxt]))
                off = nxt
                continue
            if off + 8 > end:
                if type_len == TYPE_PADDING and not word >> 5:
                    break            # a null padding: the rest is unused
                raise RingBufferError(f"{_TYPE_NAMES[type_len]} needs 8 bytes, only "
                                      f"{end - off} left before the commit", index, off)
            word, array0 = u32x2(mv, off)
            delta = word >> 5
            if type_len == 0:
                if array0 < 8 or array0 & 3:
                    raise RingBufferError(f"data event with type_len 0 has array[0]={array0} "
                                          f"(a length is at least 8 and a multiple of 4)",
                                          index, off)
                nxt = off + 4 + array0
                if nxt > end:
                    raise RingBufferError(f"data event of {array0 - 4} bytes runs past the "
                                          f"commit at {end}", index, off)
                ts += delta
                append((ts, mv[off + 8:nxt]))
                off = nxt
            elif type_len == TYPE_PADDING:
                if not delta:
                    if end - off >= EVENT_MIN_SIZE:
                        raise RingBufferError(f"null padding with {end - off} bytes of data "
                                              f"after it", index, off)
                    break
                if array0 < 4 or array0 & 3:
                    raise RingBufferError(f"padding with array[0]={array0} (at least 4 and a "
                                          f"multiple of 4)", index, off)
                nxt = off + 4 + array0
                if nxt > end:
                    raise RingBufferError(f"padding of {array0} bytes runs past the commit at "
                                          f"{end}", index, off)
                if delta != 1:
                    ts += delta      # a discarded event keeps its time
                off = nxt
            else:
                if off + 8 >= end:
                    raise RingBufferError(f"{_TYPE_NAMES[type_len]} with no event after it",
                                          index, off)
                stamp = array0 << 27 | delta
                if type_len == TYPE_TIME_EXTEND:
                    ts += stamp
                else:
                    ts = fix_abs_ts(stamp, ts)
                off += 8
        return events

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

