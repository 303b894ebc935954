"""A tracing session: the enabled events, their filters, and the consumers that get them.

As in the kernel, one event occurrence goes to every consumer that listens: the trace buffer
(per-cpu ring buffers in the kernel's page format, drained into a trace.dat), a live stream
(the ``trace`` text, printed as it happens) and counters (statistics).  A source calls
:meth:`Session.emit` with the event's state, its field values and its record bytes; the filter
of the event runs first, then each consumer.  A source whose events need no values (no
filter, only the trace buffer) may pack its records straight into the rings
(:meth:`Session.packed_writers`), or write the records it made (:meth:`Session.record_writer`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, TextIO

from ..buffer.safe_file import OutputFileError
from ..buffer.tracedat import TraceDatError, TraceDatWriter
from ..catalog import known_events
from ..errors import UsertraceError
from ..events.format import EventFormat
from ..events.records import RecordCodec
from ..events.registry import Consumer, Registry
from ..filter import Filter, compile_filter, compile_system_filter
from .cpus import CpuMap
from .sinks import LiveStream, TraceBuffer

MAX_BUFFER_KB = 1 << 20          # -b: at most 1 GiB per cpu


def _write_nothing(*args) -> None:
    """The writer of a session that keeps no trace buffer."""


class SessionError(UsertraceError):
    """A request the session cannot carry out: the message says what and why."""


@dataclass
class EventSpec:
    """One ``-e PATTERN [-f FILTER]`` of the command line."""

    pattern: str
    filter: str | None = None


@dataclass
class EventState:
    """What the session knows of one enabled event."""

    format: EventFormat
    filter: Filter | None = None
    codec: RecordCodec | None = None


class Session:
    """The enabled events and the consumers of one tracing session.

    ``cpus`` maps trace buffers to cpus (sources reserve buffers of their own there before
    a trace buffer is made).  Call :meth:`use_threads` before any source starts when a source
    emits from a thread of its own: the consumers are then serialized by a lock, and no
    source gets the lock-free :meth:`packed_writers`.
    """

    def __init__(self, registry: Registry | None = None, cpus: CpuMap | None = None):
        self.registry = registry if registry is not None else known_events()
        self.cpus = cpus or CpuMap()
        self.states: dict[int, EventState] = {}
        self.trace: TraceBuffer | None = None
        self.stream: LiveStream | None = None
        self.cmdlines: dict[int, str] = {}
        self.filtered_out = 0
        # An error on the path of an event stops the recording (later events are counted,
        # not recorded); the traced processes go on, and what was recorded is kept.
        self.error = ""
        self.lost_after_error = 0
        self.on_error: Callable[[str], None] | None = None
        self._lock: threading.Lock | None = None

    @property
    def ncpus(self) -> int:
        """The machine's cpus (the first buffers); see :attr:`cpus` for all buffers."""
        return self.cpus.ncpus

    # -- what is enabled ----------------------------------------------------------------
    def enable(self, spec: EventSpec, consumers: int = Consumer.TRACE,
               formats: list[EventFormat] | None = None) -> list[EventFormat]:
        """Enable the events ``spec`` names (or ``formats``, when given), with its filter,
        for ``consumers``.

        Raises SessionError when nothing matches, FilterError (with the kernel's message and
        position) when the filter does not parse for a single event, or for none of a group.
        """
        matched = self.registry.match(spec.pattern) if formats is None else list(formats)
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
    def record_to(self, path: str, *, version: int = 7, buffer_kb: int = 1024,
                  page_size: int = 4096, on_error: Callable[[str], None] | None = None
                  ) -> TraceBuffer:
        """Record into the trace.dat ``path``: a ring of ``buffer_kb`` KiB per buffer of
        :attr:`cpus` (reserve extra buffers before calling this)."""
        if not isinstance(buffer_kb, int) or not 0 < buffer_kb <= MAX_BUFFER_KB:
            raise SessionError(f"buffer size {buffer_kb!r} KiB: give 1 to {MAX_BUFFER_KB} "
                               f"(KiB per cpu)")
        nr_pages = max(buffer_kb * 1024 // page_size, 2)
        try:
            writer = TraceDatWriter(path, version=version, page_size=page_size,
                                    cpus=self.cpus.nbuffers, clock="mono")
        except (TraceDatError, OutputFileError) as exc:
            raise SessionError(str(exc)) from None
        except OSError as exc:
            raise SessionError(f"cannot write {path}: {exc.strerror}") from None
        self.trace = TraceBuffer(writer, self.cpus.nbuffers, page_size=page_size,
                                 nr_pages=nr_pages, on_error=on_error)
        self.trace.path = path
        return self.trace

    def stream_to(self, out: TextIO, flush_each: bool = True) -> LiveStream:
        self.stream = LiveStream(out, flush_each)
        return self.stream

    # -- the path of one event ------------------------------------------------------------
    def emit(self, state: EventState, values: dict | None, ts_ns: int, cpu: int, comm: str,
             record: bytes | None = None, body: Callable[[], str] | None = None,
             filter_values: dict | None = None) -> bool:
        """Filter one event and hand it to every consumer; False when the filter drops it.

        ``values`` may be None for an event without a filter when no live stream listens
        (the record is then what the trace buffer gets).  ``filter_values`` (default
        ``values``) is what the filter reads, when it needs more than the record holds
        (strings read from the process for ``.ustring``)."""
        if self.error:
            self.lost_after_error += 1
            return False
        lock = self._lock
        try:
            if lock is None:
                return self._emit(state, values, ts_ns, cpu, comm, record, body, filter_values)
            with lock:
                return self._emit(state, values, ts_ns, cpu, comm, record, body, filter_values)
        except Exception as exc:          # a filter or a consumer failed: stop recording,
            self._fail(state, exc)        # never the traced processes
            return False

    def _fail(self, state: EventState, exc: Exception) -> None:
        render = getattr(exc, "render", None)
        why = render() if isinstance(exc, UsertraceError) and render else \
            f"{type(exc).__name__}: {exc}"
        self.error = f"recording stopped at an event of {state.format.full_name}: {why}"
        self.lost_after_error += 1
        if self.on_error is not None:
            self.on_error(self.error)

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

    def packed_writers(self, st) -> tuple[list[Callable], Callable] | None:
        """For records of an event with no filter, given as a struct and its values:
        ``(writers, settle)``, ``writers[cpu](ts_ns, values)`` packing the record in place into
        the trace buffer's ring, ``settle(cpu, result)`` to call when a result is not 1; None
        when :meth:`emit` must be called instead (a live stream wants the values, or another
        thread emits too and the lock must be taken)."""
        if self.stream is not None or self._lock is not None:
            return None
        if self.trace is None:
            def nothing(ts_ns, values):
                return 1
            return [nothing] * self.cpus.nbuffers, lambda cpu, result: None
        return self.trace.packed_writers(st), self.trace.settle

    def record_writer(self, state: EventState) -> Callable[[int, int, bytes], object] | None:
        """``write(cpu, ts_ns, record)``: a record of ``state`` (bytes made by the source)
        straight into the trace buffer, for an event without a filter; None when
        :meth:`emit` must be called (a filter, a live stream, another thread emitting)."""
        if not self._straight(state):
            return None
        return self.trace.write if self.trace is not None else _write_nothing

    def records_writer(self, state: EventState) -> Callable[[list], object] | None:
        """:meth:`record_writer` for a batch: ``write(items)``, records of ``state`` as a
        flat list of ``(cpu, ts_ns, record)`` triples (the engine's compiled loop makes
        them so), written a page at a time (:meth:`TraceBuffer.write_records`)."""
        if not self._straight(state):
            return None
        return self.trace.write_records if self.trace is not None else _write_nothing

    def _straight(self, state: EventState) -> bool:
        """May records of ``state`` go straight to the trace buffer, not through emit()?"""
        return state.filter is None and self.stream is None and self._lock is None

    def packed_tail_writers(self, st) -> tuple[list[Callable], Callable] | None:
        """:meth:`packed_writers` for records of a fixed part ``st`` and data of varying
        length after it: ``writers[cpu](ts_ns, values, tail)``."""
        if self.stream is not None or self._lock is not None:
            return None
        if self.trace is None:
            def nothing(ts_ns, values, tail):
                return 1
            return [nothing] * self.cpus.nbuffers, lambda cpu, result: None
        return self.trace.packed_tail_writers(st), self.trace.settle

    def _codec(self, state: EventState) -> RecordCodec:
        state.codec = RecordCodec(state.format)
        return state.codec

    def note_comm(self, pid: int, comm: str) -> None:
        self.cmdlines[pid] = comm

    def finish(self) -> None:
        """Complete the trace.dat (SessionError when it cannot be written) and the stream."""
        if self.stream is not None:
            self.stream.finish()
        if self.trace is not None:
            try:
                self.trace.finish(self.enabled_formats(), self.cmdlines)
            except TraceDatError as exc:
                raise SessionError(str(exc) if str(exc).startswith("cannot write")
                                   else f"cannot write {self.trace.path}: {exc}") from None
            except OutputFileError as exc:
                raise SessionError(str(exc)) from None
            except OSError as exc:
                raise SessionError(f"cannot write {self.trace.path}: {exc.strerror}") from None

    def abort(self) -> None:
        if self.trace is not None:
            self.trace.abort()

