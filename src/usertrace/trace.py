"""Read a trace.dat (ours or trace-cmd's, version 6 or 7, compressed or not): its formats,
its buffers and its events, in time order.

>>> with Trace("trace.dat") as t:                                      # doctest: +SKIP
...     for ev in t.events():                  # every buffer and cpu, in time order
...         print(ev.ts_ns, ev.cpu, ev.name, ev.pid, ev.values)
...     sel = t.select(events=[("syscalls:sys_exit_*", "ret < 0")], pids=[1234])
...     for ev in t.events(sel): ...
...     for ev in t.buffer("myinst").events(cpu=1): ...

A trace.dat holds the top buffer and the instances that ``trace-cmd extract -B`` adds, each
with its own page size and cpus.  Every (buffer, cpu) is a *stream* of pages in the kernel's
format.  Each page is decoded once: one walk over its events (the walk of
:class:`~usertrace.buffer.reader.PageReader`, with each record's work done in its loop), each
record turned into an item by a *renderer* (a text line, a JSON line, a :class:`TraceEvent`),
and the items of the streams merged by time (ties: the lower cpu first, then the buffer that
comes first in the file, as the kernel's ``trace`` file orders cpus).

The renderer compiles one function per (stream, common header): the record's first 8 bytes
(type, flags, preempt count, pid) are the key of a small cache, so what depends on them alone
(the format, the task's name, the line prefix, the selection) is worked out once.

Damage does not end the reading: a record that does not fit its format is handed to the
renderer's ``failed`` (shown, and counted in :attr:`Trace.problems`), a page that does not
follow the format keeps the events before the fault, and a cpu whose pages cannot be read
(a damaged compressed chunk) ends there.  Every problem names the file, the buffer, the cpu,
the page (and its place in the file), the offset in the page and the event.
"""

from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Protocol

from .buffer.layout import PageLayout, RingBufferError
from .buffer.reader import PageReader
from .buffer.tracedat import TraceDatBuffer, TraceDatError, TraceDatReader
from .events.format import EventFormat
from .events.records import Abi, EventDecoder, RecordError, TraceEvent
from .errors import UsertraceError

# What decoding a record may raise on hostile input: each ends as a counted problem.
DECODE_ERRORS = (RecordError, struct.error, ValueError, TypeError, IndexError, KeyError,
                 OverflowError, UnicodeError)

MAX_PROBLEMS = 20           # problems kept with their message (all are counted)
_CACHE_LIMIT = 1 << 16      # common headers remembered per stream


class TraceReadError(UsertraceError):
    """A fault in the events of a trace.dat: the message names the file, the buffer, the cpu,
    the page and the offset, and the event when it is known."""


@dataclass(frozen=True)
class FailedFormat:
    """A format stored in the file that does not parse: its events are still named."""

    system: str
    name: str
    id: int | None
    error: Exception

    @property
    def full_name(self) -> str:
        return f"{self.system}:{self.name}"


@dataclass(frozen=True)
class Selection:
    """Which events to read.  None everywhere: all of them.

    ``event_ids`` the formats chosen (None: every event, unknown ones too); ``filters`` a
    compiled filter per format id (:func:`usertrace.filter.compile_filter`); ``start_ns`` and
    ``end_ns`` bound the time stamps (both included).
    """

    event_ids: frozenset[int] | None = None
    filters: dict = field(default_factory=dict)
    pids: frozenset[int] | None = None
    cpus: frozenset[int] | None = None
    buffers: frozenset[str] | None = None
    start_ns: int | None = None
    end_ns: int | None = None


@dataclass(frozen=True)
class Record:
    """What a renderer knows of the records of one (stream, common header)."""

    trace: "Trace"
    buffer: str
    cpu: int
    event_id: int
    flags: int
    preempt_count: int
    pid: int
    comm: str
    format: EventFormat | None       # None: no format parsed for the id
    failed: FailedFormat | None      # the id's format, if it failed to parse


# A compiled record function: (page, start, size, ts_ns) -> item (None: leave the record out)
RecordFn = Callable[[object, int, int, int], object]


class Renderer(Protocol):
    def compile(self, rec: Record) -> RecordFn:
        """The function that renders the records of ``rec``'s stream and common header."""

    def failed(self, rec: Record, page, start: int, size: int, ts_ns: int, reason: str) -> object:
        """The item of a record that could not be decoded (None: leave it out)."""


@dataclass
class Problem:
    """One damaged record or page."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class Problems:
    """Every damaged record and page met while reading, counted; the first ones kept."""

    def __init__(self):
        self.records = 0
        self.pages = 0
        self.streams = 0
        self.first: list[Problem] = []

    @property
    def total(self) -> int:
        return self.records + self.pages + self.streams

    def add(self, kind: str, where: str, message: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.first) < MAX_PROBLEMS:
            self.first.append(Problem(where, message))

    def summary(self) -> str:
        parts = []
        for n, what in ((self.records, "record"), (self.pages, "damaged page"),
                        (self.streams, "unreadable cpu")):
            if n:
                parts.append(f"{n} {what}{'s' if n != 1 else ''}")
        return ", ".join(parts)


class Buffer:
    """One ring buffer of a trace.dat: the top one (``name`` "") or an instance, with its own
    page size, page layout and cpus."""

    def __init__(self, trace: "Trace", dat: TraceDatBuffer, layout: PageLayout):
        self.trace = trace
        self.name = dat.name
        self.clock = dat.clock
        self.page_size = dat.page_size
        self.layout = layout
        self.cpus: list[int] = dat.cpu_ids
        self._dat = dat

    def __repr__(self) -> str:
        return f"Buffer({self.name!r}, page_size={self.page_size}, cpus={self.cpus})"

    def pages(self, cpu: int) -> Iterator[bytes]:
        """The pages of one cpu in file order (decompressed), ``page_size`` bytes each."""
        return self._dat.iter_pages(cpu)

    def num_pages(self, cpu: int) -> int:
        return self._dat.num_pages(cpu)

    def has_data(self) -> bool:
        return any(c.size for c in self._dat.cpus)

    def events(self, cpu: int | None = None, selection: Selection | None = None) -> Iterator[TraceEvent]:
        """The events of this buffer (of one cpu, or of all in time order)."""
        sel = selection or Selection()
        cpus = sel.cpus
        if cpu is not None:
            cpus = frozenset([cpu]) if cpus is None else cpus & {cpu}
        sel = Selection(sel.event_ids, sel.filters, sel.pids, cpus, frozenset([self.name]),
                        sel.start_ns, sel.end_ns)
        return self.trace.events(sel)

    def page_place(self, cpu: int, index: int) -> str:
        """Where page ``index`` of a cpu is in the file, in words."""
        cd = self._dat.cpu(cpu)
        if not self._dat.compressed:
            return f"file offset {cd.offset + index * self.page_size}"
        return f"page {index} of the compressed data at file offset {cd.offset}"


class Trace:
    """A trace.dat opened for reading (a context manager; or call :meth:`close`).

    ``formats`` the parsed formats by id; ``failed_formats`` those that did not parse, by id
    (their events print as ``name: [FAILED TO PARSE]``; ``format_failures`` lists them all, with
    or without an id); ``buffers`` those that hold pages
    (the top buffer first; the top one alone when none has any); ``cmdlines`` pid -> comm.
    """

    def __init__(self, path):
        self.file = TraceDatReader(path)
        try:
            self._open()
        except BaseException:
            self.file.close()
            raise

    def _open(self) -> None:
        f = self.file
        self.path = f.path
        self.abi = Abi("<" if f.endian == "little" else ">", f.long_size)
        self.formats: dict[int, EventFormat] = f.formats_by_id()
        self.format_failures: list[FailedFormat] = []
        self.failed_formats: dict[int, FailedFormat] = {}
        for system, text, exc in f.format_errors:
            name, event_id = _name_and_id(text)
            failed = FailedFormat(system, name or "?", event_id, exc)
            self.format_failures.append(failed)
            if event_id is not None and event_id not in self.formats:
                self.failed_formats[event_id] = failed
        self.cmdlines = f.cmdlines
        self.decoder = EventDecoder(self.formats.values(), self.abi)
        base = _base_layout(f, self.abi)
        flyrecord = [b for b in f.buffers if not b.is_latency]
        self.all_buffers = [Buffer(self, b, _layout_for(base, b.page_size, f.path, b.name))
                            for b in flyrecord]
        with_data = [b for b in self.all_buffers if b.has_data()]
        self.buffers: list[Buffer] = with_data or self.all_buffers[:1]
        self.ncpus = max([f.cpu_count, 1] + [len(b.cpus) for b in self.buffers])
        self.problems = Problems()

    # -- the file -----------------------------------------------------------------------------
    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def buffer(self, name: str = "") -> Buffer:
        for b in self.all_buffers:
            if b.name == name:
                return b
        raise TraceReadError(f"{self.path}: no buffer {name!r} (buffers: "
                             f"{[b.name for b in self.all_buffers]})")

    def comm(self, pid: int) -> str:
        """The task name the kernel's trace file shows for ``pid``."""
        if pid == 0:
            return "<idle>"
        return self.cmdlines.get(pid, "<...>")

    def format_problems(self) -> list[str]:
        """One line per stored format that did not parse: the event and the fault."""
        return [f"{self.path}: event {ff.full_name}{f' (ID {ff.id})' if ff.id is not None else ''}: "
                f"its format does not parse: {ff.error}" for ff in self.format_failures]

    # -- counts -------------------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        """(events in the buffers, events lost before them), what the kernel's trace header
        shows as entries-in-buffer and entries-written minus entries.

        From the per-cpu statistics usertrace's writer stores with exact counts (no page is
        read), else by a walk of the event headers of every page (no record is decoded).
        """
        stored = self._stored_counts()
        if stored is not None:
            return stored
        entries = lost = 0
        for b in self.buffers:
            reader = PageReader(b.layout)
            for cpu in b.cpus:
                try:
                    for i, page in enumerate(b.pages(cpu)):
                        events, missed = reader.count(page, i, partial=True)
                        entries += events
                        lost += missed
                except TraceDatError:
                    continue        # counted as a problem when its events are read
        return entries, lost

    def _stored_counts(self) -> tuple[int, int] | None:
        if not (self.file.tracer_version or "").startswith("usertrace "):
            return None
        stats = _parse_cpustats(self.file.cpustats)
        entries = lost = 0
        for b in self.buffers:
            for cpu in b.cpus:
                s = stats.get((b.name, cpu))
                if s is None or "read events" not in s:
                    return None
                entries += s["read events"] + s.get("entries", 0)
                lost += s.get("overrun", 0)
        return entries, lost

    def num_pages(self) -> int:
        """Pages of every (buffer, cpu) read (for progress)."""
        total = 0
        for b in self.buffers:
            for cpu in b.cpus:
                try:
                    total += b.num_pages(cpu)
                except TraceDatError:
                    pass
        return total

    # -- selection ----------------------------------------------------------------------------
    def select(self, events: Iterable[tuple[str, str | None]] | None = None,
               pids: Iterable[int] | None = None, cpus: Iterable[int] | None = None,
               start_ns: int | None = None, end_ns: int | None = None,
               buffers: Iterable[str] | None = None) -> Selection:
        """A :class:`Selection` from ``-e``-style patterns (each with a filter or None),
        matched against the file's formats by trace-cmd's rules.  Raises
        :class:`TraceReadError` for a pattern that names no event of the file, and the
        filter's :class:`~usertrace.filter.FilterError` for a bad filter."""
        ids = filters = None
        if events is not None:
            from .events.registry import Registry
            from .filter import compile_group_filter
            from .sources.syscalls.classes import strace_selection_formats
            reg = Registry()
            for fmt in self.formats.values():
                if reg.get(fmt.system, fmt.name) is None:
                    reg.add(fmt)
            ids, filters = set(), {}
            for pattern, text in events:
                # (or as strace writes it: ``openat``, both its events; ``%file``)
                matched = reg.match(pattern) or strace_selection_formats(reg, pattern)
                if not matched:
                    raise TraceReadError(f"{self.path}: no event of the file matches {pattern!r}")
                ids.update(fmt.id for fmt in matched)
                if text is None:
                    continue
                group = compile_group_filter(text, matched, self.ncpus)
                for fmt in matched:
                    filt = group[fmt.full_name]
                    if filt is not None and filt.ustring_fields:
                        raise TraceReadError(
                            f"filter {text!r}: .ustring reads the traced process's memory, "
                            "which a recorded trace does not have")
                    if filt is not None and not filt.is_clear:
                        filters[fmt.id] = filt
                    else:
                        filters.pop(fmt.id, None)
        return Selection(frozenset(ids) if ids is not None else None, filters or {},
                         frozenset(pids) if pids is not None else None,
                         frozenset(cpus) if cpus is not None else None,
                         frozenset(buffers) if buffers is not None else None,
                         start_ns, end_ns)

    # -- events -------------------------------------------------------------------------------
    def events(self, selection: Selection | None = None) -> Iterator[TraceEvent]:
        """Every selected event, decoded, in time order across buffers and cpus."""
        for batch in self.batches(EventRenderer(), selection):
            yield from batch

    def batches(self, renderer: Renderer, selection: Selection | None = None,
                on_page: Callable[[], None] | None = None) -> Iterator[list]:
        """The items ``renderer`` makes of the selected records, in time order, a list at a
        time (a page's worth or so).  ``on_page`` is called after each page is read."""
        sel = selection or Selection()
        self.problems = Problems()          # what this reading meets
        streams = [_Stream(self, b, cpu, renderer, sel, on_page)
                   for cpu in sorted({c for b in self.buffers for c in b.cpus})
                   for b in self.buffers
                   if cpu in b.cpus and (sel.cpus is None or cpu in sel.cpus)
                   and (sel.buffers is None or b.name in sel.buffers)]
        if len(streams) == 1:
            st = streams[0]
            while st.load():
                yield st.items
            return
        yield from _merge([st for st in streams if st.load()])


def _merge(active: list["_Stream"]) -> Iterator[list]:
    """Merge the pages of several streams (in rank order) by time.

    Each round takes H = the least (last time stamp, rank) of the streams' loaded pages: no
    page still to come has an event before it, so every loaded event up to H can go.  They
    are sorted by time (a stable sort of the streams' runs in rank order: ties keep the lower
    rank first), and the stream that set H, now empty, loads its next page.
    """
    key0 = itemgetter(0)
    while active:
        h_ts = None
        h_rank = 0
        for rank, st in enumerate(active):
            last = st.tss[-1]
            if h_ts is None or last < h_ts:
                h_ts, h_rank = last, rank
        parts = []
        for rank, st in enumerate(active):
            p = st.pos
            if rank == h_rank:
                j = len(st.tss)
            elif rank < h_rank:
                j = bisect.bisect_right(st.tss, h_ts, p)
            else:
                j = bisect.bisect_left(st.tss, h_ts, p)
            if j > p:
                parts.append((st, p, j))
                st.pos = j
        if len(parts) == 1:
            st, p, j = parts[0]
            yield st.items[p:j] if p or j < len(st.items) else st.items
        elif parts:
            pairs = []
            for st, p, j in parts:
                pairs += zip(st.tss[p:j], st.items[p:j])
            pairs.sort(key=key0)
            yield [item for _, item in pairs]
        active = [st for st in active if st.pos < len(st.tss) or st.load()]


class _Stream:
    """The pages of one (buffer, cpu), turned into items a page at a time."""

    def __init__(self, trace: Trace, buf: Buffer, cpu: int, renderer: Renderer,
                 sel: Selection, on_page):
        self.trace = trace
        self.buf = buf
        self.cpu = cpu
        self.renderer = renderer
        if sel.start_ns is not None or sel.end_ns is not None:
            sel = Selection(sel.event_ids, sel.filters, sel.pids, sel.cpus, sel.buffers,
                            -1 if sel.start_ns is None else sel.start_ns,
                            1 << 80 if sel.end_ns is None else sel.end_ns)
        self.sel = sel
        self.on_page = on_page
        self.reader = PageReader(buf.layout)
        self.header = struct.Struct(trace.abi.endian + "HBBi").unpack_from
        self.cache: dict[int, RecordFn | bool] = {}
        self.tss: list[int] = []
        self.items: list = []
        self.pos = 0
        self.index = -1
        self.done = False
        self._pages = None

    def where(self, index: int | None = None, offset: int | None = None) -> str:
        index = self.index if index is None else index
        text = f"{self.trace.path}: buffer {self.buf.name!r} cpu {self.cpu}, page {index}"
        try:
            text += f" ({self.buf.page_place(self.cpu, index)})"
        except TraceDatError:
            pass
        if offset is not None:
            text += f", offset {offset} (0x{offset:x})"
        return text

    def load(self) -> bool:
        """Read pages until one gives items; False at the end of the stream."""
        while not self.done:
            if self._pages is None:
                self._pages = self.buf.pages(self.cpu)
            try:
                page = next(self._pages, None)
            except TraceDatError as exc:
                self.trace.problems.add("streams", self.where(self.index + 1),
                                        f"the rest of the cpu's pages cannot be read: {exc.message}")
                page = None
            if page is None:
                self.done = True
                break
            self.index += 1
            self._read(page)
            if self.on_page is not None:
                self.on_page()
            if self.tss:
                return True
        return False

    def _read(self, page) -> None:
        """Decode one page into ``tss`` and ``items``: the one pass over its records.

        The walk of :meth:`PageReader._walk` with the work of each record in its loop: the
        hot path is a small data event, whose common header (two words) is the key of the
        cache of compiled record functions."""
        index = self.index
        self.tss, self.items, self.pos = [], [], 0
        try:
            pw = self.reader.words(page, index)
        except RingBufferError as exc:
            self._page_problem(exc)
            return
        tss, items = self.tss, self.items
        add_ts, add_item = tss.append, items.append
        get = self.cache.get
        failed = self._failed
        words, off, ts = pw.words, pw.offset, pw.timestamp
        start_ns, end_ns = self.sel.start_ns, self.sel.end_ns
        bounded = start_ns is not None
        n = len(words)
        i = 0
        try:
            while i < n:
                word = words[i]
                type_len = word & 31
                if 1 < type_len <= 28:          # small, with room for a common header
                    key = words[i + 1] | words[i + 2] << 32
                    start = off + 4 * i + 4
                    size = type_len << 2
                    i += 1 + type_len
                    if i > n:
                        raise pw.past_end(i - 1 - type_len)
                    ts += word >> 5
                else:
                    i, ts, start, size, key = self._other(pw, i, ts)
                    if start < 0:
                        continue
                if bounded and (ts < start_ns or ts > end_ns):
                    if ts > end_ns:
                        self.done = True
                        break
                    continue
                if key is None:
                    item = failed(None, page, start, size, ts,
                                  f"record of {size} bytes has no common header")
                else:
                    fn = get(key)
                    if fn is None:
                        fn = self._compile(key, page, start)
                    if not fn:
                        continue
                    try:
                        item = fn(page, start, size, ts)
                    except DECODE_ERRORS as exc:
                        item = failed(key, page, start, size, ts, _reason(exc))
                if item is not None:
                    add_ts(ts)
                    add_item(item)
        except RingBufferError as exc:
            self._page_problem(exc)

    def _other(self, pw, i: int, ts: int):
        """The rest of :meth:`_read`'s walk: ``(next word, time, start, size, key)`` of the
        event at word ``i``, ``start`` -1 for an event with no data, ``key`` None for a
        record too short for a common header."""
        words = pw.words
        if words[i] & 31 == 1:                  # a data event of 4 bytes
            if i + 2 > len(words):
                raise pw.past_end(i)
            return i + 2, ts + (words[i] >> 5), pw.offset + 4 * i + 4, 4, None
        i, ts, first = self.reader.other(pw, i, ts)
        if first < 0:
            return i, ts, -1, 0, None
        size = 4 * (i - first)
        key = words[first] | words[first + 1] << 32 if size >= 8 else None
        return i, ts, pw.offset + 4 * first, size, key

    def _page_problem(self, exc: RingBufferError) -> None:
        self.trace.problems.add("pages", self.where(self.index, exc.offset),
                                f"{exc.message} (the rest of the page is skipped)")

    def _record(self, page, start: int) -> Record:
        etype, flags, preempt, pid = self.header(page, start)
        t = self.trace
        return Record(t, self.buf.name, self.cpu, etype, flags, preempt, pid, t.comm(pid),
                      t.formats.get(etype), t.failed_formats.get(etype))

    def _compile(self, key: int, page, start: int):
        rec = self._record(page, start)
        sel = self.sel
        if ((sel.event_ids is not None and rec.event_id not in sel.event_ids)
                or (sel.pids is not None and rec.pid not in sel.pids)):
            fn = False
        else:
            try:
                fn = self.renderer.compile(rec)
                filt = sel.filters.get(rec.event_id)
                if filt is not None:
                    fn = _filtered(fn, filt, self.trace.decoder.codec(rec.event_id), rec)
            except DECODE_ERRORS as exc:
                fn = _refuse(f"its format cannot be used: {_reason(exc)}")
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[key] = fn
        return fn

    def _failed(self, key, page, start: int, size: int, ts: int, reason: str):
        sel = self.sel
        if key is None:
            rec = Record(self.trace, self.buf.name, self.cpu, -1, 0, 0, 0, "<...>", None, None)
            if sel.event_ids is not None or sel.pids is not None:
                rec = None          # it cannot be one of the events or tasks asked for
        else:
            rec = self._record(page, start)
            if self.cache.get(key) is False:
                return None         # not selected: not shown, not counted
        fmt = rec and (rec.format or rec.failed)
        name = f"event {fmt.full_name}" if fmt else "a record"
        if fmt and reason.startswith(f"{fmt.full_name}: "):
            reason = reason[len(fmt.full_name) + 2:]
        self.trace.problems.add("records", self.where(self.index, start),
                                f"{name} cannot be decoded: {reason}")
        return self.renderer.failed(rec, page, start, size, ts, reason) if rec else None


def _filtered(fn: RecordFn, filt, codec, rec: Record) -> RecordFn:
    """``fn`` for the records that the filter lets through."""
    comm_key, cpu_key = filt.comm_key, filt.cpu_key
    match = filt.match

    def filtered(page, start: int, size: int, ts: int):
        values = codec.decode(page, start, size)
        if comm_key:
            values[comm_key] = rec.comm
        if cpu_key:
            values[cpu_key] = rec.cpu
        return fn(page, start, size, ts) if match(values) else None
    return filtered


def _refuse(reason: str) -> RecordFn:
    """A record function for records that cannot be decoded at all: each is a problem."""
    def refuse(page, start: int, size: int, ts: int):
        raise RecordError(reason)
    return refuse


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecordError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class EventRenderer:
    """Renders records as :class:`TraceEvent` objects (what :meth:`Trace.events` yields)."""

    def compile(self, rec: Record) -> RecordFn:
        t = rec.trace
        codec = t.decoder.codec(rec.event_id)
        buffer, cpu, comm = rec.buffer, rec.cpu, rec.comm
        if codec is None:
            fmt = None
            decoder = t.decoder

            def unknown(page, start: int, size: int, ts: int) -> TraceEvent:
                return TraceEvent(ts, cpu, fmt, decoder.common(page, start), comm, buffer,
                                  _unknown_reason(rec))
            return unknown
        fmt = codec.format
        decode = codec.decode

        def event(page, start: int, size: int, ts: int) -> TraceEvent:
            return TraceEvent(ts, cpu, fmt, decode(page, start, size), comm, buffer)
        return event

    def failed(self, rec: Record, page, start: int, size: int, ts: int, reason: str) -> TraceEvent:
        values = rec.trace.decoder.common(page, start) if size >= 8 else {}
        return TraceEvent(ts, rec.cpu, rec.format, values, rec.comm, rec.buffer, reason)


def _unknown_reason(rec: Record) -> str:
    if rec.failed is not None:
        return f"the format of {rec.failed.full_name} does not parse"
    return f"no format has the event id {rec.event_id}"


# -- helpers of the file ----------------------------------------------------------------------

_NAME_RE = re.compile(r"^name: *(\S+) *$", re.M)
_ID_RE = re.compile(r"^ID: *(\d{1,9}) *$", re.M)


def _name_and_id(text: str) -> tuple[str | None, int | None]:
    """The name and id a format text gives, even when the rest does not parse."""
    head = text[:4096]
    name = _NAME_RE.search(head)
    ident = _ID_RE.search(head)
    return (name.group(1) if name else None), (int(ident.group(1)) if ident else None)


def _base_layout(f: TraceDatReader, abi: Abi) -> PageLayout:
    """The page layout the file's ``header_page`` describes (its commit size and data
    offset); the default one of the file's long size when it does not parse."""
    try:
        return PageLayout.from_header_page(f.header_page, abi)
    except RingBufferError:
        return _layout_for(None, f.page_size, f.path, "", abi)


def _layout_for(base: PageLayout | None, page_size: int, path: str, name: str,
                abi: Abi | None = None) -> PageLayout:
    try:
        if base is None:
            return PageLayout(page_size, abi)
        if base.page_size == page_size:
            return base
        return PageLayout(page_size, base.abi, base.force_8byte_alignment, base.commit_size,
                          base.data_offset)
    except RingBufferError as exc:
        raise TraceReadError(f"{path}: buffer {name!r}: {exc}") from None


def _parse_cpustats(texts: list[str]) -> dict[tuple[str, int], dict[str, int]]:
    """{(buffer, cpu): {counter: value}} of the CPUSTAT options (the kernel's per-cpu
    ``stats`` text; an instance's start with a ``Buffer: NAME`` text, as trace-cmd writes)."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    buffer = ""
    for text in texts:
        stripped = text.strip()
        if stripped.startswith("Buffer: "):
            buffer = stripped[len("Buffer: "):]
            continue
        values: dict[str, int] = {}
        cpu = None
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                continue
            value = value.strip()
            if not value.isdigit() or len(value) > 20:
                continue
            if key == "CPU":
                cpu = int(value)
            else:
                values[key.strip()] = int(value)
        if cpu is not None:
            out[(buffer, cpu)] = values
    return out
