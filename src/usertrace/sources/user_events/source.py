"""The user-events source: records that applications emit, drained into a session.

A :class:`~usertrace.sources.user_events.UserEventsServer` attaches to the user's session
directory, sets the patterns (so events registered later are enabled from their first emit)
and drains the writers' rings from a thread of its own.  Each record goes through the
session like any other event: the filter of its ``-e``, then the consumers.

User events get a trace buffer of their own (:class:`~usertrace.session.cpus.CpuMap`):
records of many processes arrive in batches, each in time order, and a buffer of their own
keeps every per-cpu stream of the trace.dat in time order, so readers merge them with the
syscall events by time (the kernel's ``trace`` does the same merge across its per-cpu
buffers).
"""

from __future__ import annotations

import sys
import threading
from contextlib import nullcontext
from typing import Callable

from ...events.format import EventFormat
from ...events.patterns import EventPattern
from ...events.records import RecordCodec
from ...events.registry import Consumer
from ...filter import FilterError, compile_filter
from ...session.core import EventSpec, EventState, Session, SessionError
from ..base import Source
from . import abi
from .parse import UserEventError
from .server import UserEventsServer

SYSTEMS = (abi.USER_EVENTS_SYSTEM, abi.USER_EVENTS_MULTI_SYSTEM)


class UserEventsSource(Source):
    """Feeds a session with the user events its ``-e`` specs enable.

    A pattern is this source's when it names a user-events system (``user_events``,
    ``user_events:app_*``: events registered later count too), or, a bare event name, when it
    names a user event registered now (as ``usertrace list`` shows it).
    """

    systems = SYSTEMS
    threaded = True

    def __init__(self, session_dir: str | None = None, warn=None):
        self.server = UserEventsServer(session_dir)
        self.session: Session | None = None
        self.specs: list[EventSpec] = []
        self.consumers = 0
        self.cpu = -1                         # the buffer of user events (see above)
        self.lost = 0
        # Which processes' records are kept (None: every process of the user); the
        # records of the others are dropped and counted in out_of_scope.
        self.scope: Callable[[int], bool] | None = None
        self.out_of_scope = 0
        self._warn = warn or (lambda msg: sys.stderr.write(f"usertrace: {msg}\n"))
        self._states: dict[int, EventState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._comms: dict[int, str] = {}
        self.totals = None
        self.batch = True         # records handed over a drain at a time (False: one by one)

    def claims(self, pattern: EventPattern, registered: list[EventFormat] = ()) -> bool:
        if any(pattern.names_system(s) for s in SYSTEMS):
            return True
        return any(f.system in SYSTEMS for f in pattern.select(registered))

    def reserve(self, cpus) -> None:
        self.cpu = cpus.reserve(abi.USER_EVENTS_SYSTEM)

    def prepare(self, session: Session, specs: list, consumers: int) -> None:
        self.session = session
        self.server.allocate_id = session.registry.allocate_id
        self.specs = list(specs)
        self.consumers = consumers
        if self.cpu < 0:
            self.reserve(session.cpus)

    # -- lifetime -------------------------------------------------------------------------
    def attach(self) -> None:
        """Attach to the session directory and enable the patterns (no draining yet)."""
        if self.server.session is not None:
            return
        try:
            self.server.open()
        except UserEventError as exc:
            raise SessionError(f"user events: {exc}") from None
        for spec in self.specs:
            for consumer in Consumer:
                if self.consumers & consumer:
                    for fmt in self.server.enable(spec.pattern, int(consumer)):
                        self._state(fmt, strict=True)

    def start(self) -> None:
        """Attach (:meth:`attach`), start draining in a thread of its own."""
        self.attach()
        self._thread = threading.Thread(target=self._pump, name="usertrace-user-events",
                                        daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        self.server.pump(self._on_batch, self._stop, on_lost=self._on_lost, batch=True)

    def drain_all(self) -> int:
        """Deliver what the writers published so far (when no thread drains)."""
        return self.server.drain_all(self._on_batch, on_lost=self._on_lost, batch=True)

    def stop(self) -> None:
        """Stop draining, deliver what is left, and let the applications go (their events
        read as disabled from now on)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.server.session is not None:
            self.server.close(drain_into=self._on_batch, on_lost=self._on_lost, batch=True)
            self.totals = self.server.totals()

    # -- records ----------------------------------------------------------------------------
    def _state(self, fmt: EventFormat, strict: bool = False) -> EventState:
        state = self._states.get(fmt.id)
        if state is not None:
            return state
        spec = next((s for s in self.specs
                     if EventPattern.parse(s.pattern).select([fmt], SYSTEMS)), None)
        f = None
        if spec is not None and spec.filter is not None:
            try:
                f = compile_filter(spec.filter, fmt)
            except FilterError as exc:
                if strict and ":" in spec.pattern and "*" not in spec.pattern:
                    raise
                self._warn(f"the filter of -e {spec.pattern} does not apply to "
                           f"{fmt.full_name}: {exc.message}; its events are not filtered")
            if f is not None and f.is_clear:
                f = None
        state = EventState(fmt, f, RecordCodec(fmt))
        self._states[fmt.id] = state
        self.session.add_state(state)
        return state

    def _on_batch(self, batch) -> None:
        """The records of one drain (a :class:`~usertrace.sources.user_events.drain.Batch`),
        in time order.  Those of events with no filter go straight into the trace buffer, a
        run at a time under one hold of the session's lock (when nothing else wants them: no
        live stream); the others through Session.emit."""
        if not self.batch:
            for rec in batch:
                self._on_record(*rec)
            return
        session = self.session
        trace = session.trace if session.stream is None else None
        states = self._states
        comms = self._comms
        tss, recs, fmts, rings = batch.ts, batch.record, batch.format, batch.ring
        order = batch.order if batch.order is not None else range(len(tss))
        run: list = []
        last = None
        scope = self.scope
        kept = True
        for i in order:
            r = rings[i]
            if r is not last:
                last = r
                kept = scope is None or scope(r.pid)
                if kept and comms.get(r.tid) != r.comm:
                    comms[r.tid] = r.comm
                    session.note_comm(r.tid, r.comm)
            if not kept:                      # a process that is not traced
                self.out_of_scope += 1
                continue
            fmt = fmts[i]
            state = states.get(fmt.id) or self._state(fmt)
            if trace is not None and state.filter is None:
                run.append(i)
                continue
            if run:
                self._write_run(trace, tss, recs, run)
                run = []
            record = recs[i]
            session.emit(state, state.codec.decode(record), tss[i], self.cpu, r.comm, record)
        if run:
            self._write_run(trace, tss, recs, run)

    def _write_run(self, trace, tss: list, recs: list, run: list) -> None:
        """The records ``run`` (indexes) into the user events' buffer (what TraceBuffer.write
        does for one, without a call per record in between)."""
        cpu = self.cpu
        ring = trace.rings[cpu]
        write = ring.write
        settle = trace.settle
        with self.session._lock or nullcontext():
            for i in run:
                if not write(tss[i], recs[i]):
                    settle(cpu, 0)          # dropped: counted
                elif ring.full_pages:
                    settle(cpu, 2)          # a page to hand to the trace.dat

    def _on_record(self, ts: int, cpu: int, tid: int, pid: int, comm: str, record: bytes,
                   fmt: EventFormat) -> None:
        scope = self.scope
        if scope is not None and not scope(pid):
            self.out_of_scope += 1
            return
        state = self._states.get(fmt.id) or self._state(fmt)
        values = state.codec.decode(record) if (state.filter is not None
                                                or self.session.stream is not None) else None
        self.session.note_comm(tid, comm)
        self.session.emit(state, values, ts, self.cpu, comm, record)

    def _on_lost(self, pid: int, tid: int, comm: str, count: int) -> None:
        self.lost += count

    def problems(self) -> list[str]:
        return [f"user events: {line}" for line in self.loss_lines()]

    @property
    def refused(self) -> int:
        """Payloads the server refused (malformed), counted per writer."""
        return self.report().refused

    def report(self):
        """Every figure of the drain (a :class:`~usertrace.sources.user_events.WriterStats`):
        records delivered, and everything refused or lost, by reason (open or closed)."""
        return self.server.totals()

    def loss_lines(self) -> list[str]:
        """What the final report says of user events refused or lost: one line per reason,
        none when nothing was (``WriterStats.render_losses``)."""
        return self.report().render_losses()
