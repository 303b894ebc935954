"""A tracing session: the enabled events, their filters, and the consumers that get them.

As in the kernel, one event occurrence goes to every consumer that listens: the trace buffer
(per-cpu ring buffers in the kernel's page format, drained into a trace.dat), a live stream
(the ``trace`` text, printed as it happens) and counters (statistics).  A source (the ptrace
engine, the user-events server) calls :meth:`Session.emit` with the event's format, its field
values and its record bytes; the filter of the event runs first, then each consumer.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, TextIO

from ..buffer.ring import RingBuffer
from ..buffer.safe_file import OutputFileError
from ..buffer.tracedat import TraceDatError, TraceDatWriter
from ..catalog import known_events
from ..events.format import EventFormat
from ..events.records import RecordCodec
from ..events.registry import Consumer, Registry
from ..filter import Filter, compile_filter, compile_system_filter
from ..output.text import TextFormatter, line_prefix


class SessionError(Exception):
    """A request the session cannot carry out: the message says what and why."""


@dataclass
class EventSpec:
    """One ``-e PATTERN [-f FILTER]`` of the command line."""

    pattern: str
    filter: str | None = None


class TraceBuffer:
    """The trace buffer consumer: a ring buffer per cpu whose full pages go to a trace.dat."""

    def __init__(self, path: str, ncpus: int, *, version: int = 7, page_size: int = 4096,
                 nr_pages: int = 256):
        self.path = path
        self.ncpus = ncpus
        try:
            self.writer = TraceDatWriter(path, version=version, page_size=page_size,
                                         cpus=ncpus, clock="mono")
        except (TraceDatError, OutputFileError) as exc:
            raise SessionError(str(exc)) from None
        except OSError as exc:
            raise SessionError(f"cannot write {path}: {exc.strerror}") from None
        self.rings = [RingBuffer(page_size, nr_pages, overwrite=False) for _ in range(ncpus)]
        self.lost = 0

    def write(self, cpu: int, ts_ns: int, record: bytes) -> None:
        ring = self.rings[cpu]
        if not ring.write(ts_ns, record):
            self.lost += 1
        if ring.full_pages:
            self._drain(cpu, ring)

    def packed_writers(self, st) -> list[Callable[[int, tuple], int]]:
        """Per cpu, the ring's writer of ``st`` records (:meth:`RingBuffer.packed_writer`):
        ``write(ts_ns, values)``, the record ``st.pack(*values)`` written in place.  When it
        returns other than 1, call :meth:`settle` with the cpu and what it returned."""
        return [ring.packed_writer(st) for ring in self.rings]

    def settle(self, cpu: int, written: int) -> None:
        """After ``rings[cpu].write_packed()`` returned ``written`` other than 1: count a
        dropped event, drain the pages that became full.  (A return of 1 moved no page:
        there is nothing to drain, as after the write before.)"""
        ring = self.rings[cpu]
        if not written:
            self.lost += 1
        if ring.full_pages:
            self._drain(cpu, ring)

    def _drain(self, cpu: int, ring: RingBuffer) -> None:
        write_page = self.writer.write_page
        while ring.full_pages:
            write_page(cpu, ring.read_page())

    def finish(self, formats: list[EventFormat], cmdlines: dict[int, str]) -> None:
        """Drain every ring, write the formats and task names, and close the file."""
        w = self.writer
        for cpu, ring in enumerate(self.rings):
            for page in ring.iter_pages():
                w.write_page(cpu, page)
        for fmt in formats:
            w.add_event_format(fmt.system, fmt.render())
        for pid, comm in cmdlines.items():
            w.set_cmdline(pid, comm)
        w.close()

    def abort(self) -> None:
        self.writer.abort()

    @property
    def entries(self) -> int:
        return sum(r.entries_written for r in self.rings)


class LiveStream:
    """The live-stream consumer: the kernel's ``trace`` lines, printed as events happen."""

    def __init__(self, out: TextIO, flush_each: bool = True):
        self.out = out
        self.text = TextFormatter()
        self.flush_each = flush_each

    def write(self, fmt: EventFormat, values: dict, ts_ns: int, cpu: int, comm: str,
              body: str | None = None) -> None:
        """One line; ``body`` replaces the event's own text (e.g. with strings shown)."""
        if body is None:
            line = self.text.line(fmt, values, comm, cpu, ts_ns)
        else:
            line = line_prefix(comm, values.get("common_pid", 0), cpu, ts_ns) + body
        self.out.write(line + "\n")
        if self.flush_each:
            self.out.flush()


@dataclass
class EventState:
    """What the session knows of one enabled event."""

    format: EventFormat
    filter: Filter | None = None
    codec: RecordCodec | None = None


class Session:
    """The enabled events and the consumers of one tracing session."""

    def __init__(self, registry: Registry | None = None, ncpus: int | None = None):
        self.registry = registry if registry is not None else known_events()
        self.ncpus = ncpus or os.cpu_count() or 1
        self.states: dict[int, EventState] = {}
        self.trace: TraceBuffer | None = None
        self.stream: LiveStream | None = None
        self.counters: list[Callable] = []
        self.cmdlines: dict[int, str] = {}
        self.filtered_out = 0
        # Sources on other threads (user events) share the consumers: one event at a time.
        # Without such a source there is one thread and no lock to take.
        self._lock: threading.Lock | None = None

    # -- what is enabled ----------------------------------------------------------------
    def enable(self, spec: EventSpec, consumers: int = Consumer.TRACE) -> list[EventFormat]:
        """Enable the events ``spec`` names, with its filter, for ``consumers``.

        Raises SessionError when nothing matches, FilterError (with the kernel's message and
        position) when the filter does not parse for a single event, or for none of a group.
        """
        matched = self.registry.match(spec.pattern)
        if not matched:
            raise SessionError(f"no event matches {spec.pattern!r} (usertrace list shows the "
                               "events there are)")
        filters: dict[int, Filter | None] = {}
        if spec.filter is not None:
            if len(matched) == 1:
                filters[matched[0].id] = compile_filter(spec.filter, matched[0])
            else:
                sf = compile_system_filter(spec.filter, matched)
                if not sf.filters:
                    raise next(iter(sf.refused.values()))
                for fmt in matched:
                    filters[fmt.id] = sf.filter_for(fmt.full_name)
        for fmt in matched:
            for consumer in Consumer:
                if consumers & consumer:
                    self.registry.enable(fmt, consumer)
            f = filters.get(fmt.id)
            if f is not None and f.is_clear:
                f = None
            state = self.states.get(fmt.id)
            if state is None:
                self.states[fmt.id] = EventState(fmt, f)
            elif spec.filter is not None:
                state.filter = f
        return matched

    def use_threads(self) -> None:
        """A source will emit from a thread of its own: serialize the consumers."""
        if self._lock is None:
            self._lock = threading.Lock()

    def add_state(self, state: EventState) -> None:
        """An event that joins while tracing (a user event registered later)."""
        if self._lock is None:
            self.states.setdefault(state.format.id, state)
            return
        with self._lock:
            self.states.setdefault(state.format.id, state)

    def enabled_formats(self) -> list[EventFormat]:
        return [s.format for s in self.states.values()]

    # -- consumers ------------------------------------------------------------------------
    def record_to(self, path: str, **kwargs) -> TraceBuffer:
        self.trace = TraceBuffer(path, self.ncpus, **kwargs)
        return self.trace

    def stream_to(self, out: TextIO, flush_each: bool = True) -> LiveStream:
        self.stream = LiveStream(out, flush_each)
        return self.stream

    # -- the path of one event ------------------------------------------------------------
    def emit(self, state: EventState, values: dict, ts_ns: int, cpu: int, comm: str,
             record: bytes | None = None, body: Callable[[], str] | None = None,
             filter_values: dict | None = None) -> bool:
        """Filter one event and hand it to every consumer; False when the filter drops it.

        ``filter_values`` (default ``values``) is what the filter reads, when it needs more
        than the record holds (strings read from the process for ``.ustring``)."""
        lock = self._lock
        if lock is None:
            return self._emit(state, values, ts_ns, cpu, comm, record, body, filter_values)
        with lock:
            return self._emit(state, values, ts_ns, cpu, comm, record, body, filter_values)

    def _emit(self, state, values, ts_ns, cpu, comm, record, body, filter_values) -> bool:
        f = state.filter
        if f is not None:
            fv = values if filter_values is None else filter_values
            if f.needs_comm and f.comm_key not in fv:
                fv[f.comm_key] = comm
            if f.needs_cpu and f.cpu_key not in fv:
                fv[f.cpu_key] = cpu
            if not f.test(fv):
                self.filtered_out += 1
                return False
        if self.trace is not None:
            if record is None:
                codec = state.codec or self._codec(state)
                record = codec.encode(values)
            self.trace.write(cpu, ts_ns, record)
        if self.stream is not None:
            self.stream.write(state.format, values, ts_ns, cpu, comm, body() if body else None)
        return True

    def direct_writer(self) -> Callable[[int, int, bytes], None] | None:
        """For an event with no filter whose record is built: a ``write(cpu, ts_ns, record)``
        that goes straight to the consumers, or None when :meth:`emit` must be called (a live
        stream wants the values; a second thread wants the lock)."""
        if self.stream is not None or self._lock is not None:
            return None
        if self.trace is None:
            return lambda cpu, ts_ns, record: None
        return self.trace.write

    def direct_packed_writers(self) -> tuple[Callable, Callable] | None:
        """As :meth:`direct_writer`, for records given as a struct and its values, written in
        place into the trace buffer's rings: ``(writers_for, settle)``, where
        ``writers_for(st)`` gives per cpu a ``write(ts_ns, values) -> int`` and
        ``settle(cpu, result)`` is to be called when a result is not 1 (see
        :meth:`TraceBuffer.packed_writers`); None as for direct_writer."""
        if self.stream is not None or self._lock is not None:
            return None
        if self.trace is None:
            def nothing(ts_ns, values):
                return 1
            return lambda st: [nothing] * self.ncpus, lambda cpu, result: None
        return self.trace.packed_writers, self.trace.settle

    def _codec(self, state: EventState) -> RecordCodec:
        state.codec = RecordCodec(state.format)
        return state.codec

    def note_comm(self, pid: int, comm: str) -> None:
        self.cmdlines[pid] = comm

    def finish(self) -> None:
        if self.trace is not None:
            try:
                self.trace.finish(self.enabled_formats(), self.cmdlines)
            except TraceDatError as exc:
                raise SessionError(f"cannot write {self.trace.path}: {exc}") from None
            except OutputFileError as exc:
                raise SessionError(str(exc)) from None
            except OSError as exc:
                raise SessionError(f"cannot write {self.trace.path}: {exc.strerror}") from None

    def abort(self) -> None:
        if self.trace is not None:
            self.trace.abort()
