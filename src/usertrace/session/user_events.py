"""The user-events source of a session: records that applications emit, drained into it.

A :class:`~usertrace.sources.user_events.UserEventsServer` attaches to the user's session
directory, sets the patterns (so events registered later are enabled from their first emit)
and drains the writers' rings from a thread of its own.  Each record goes through the
session like any other event: the filter of its ``-e``, then the consumers.

User events get a per-cpu buffer of their own, one past the machine's cpus: records of many
processes arrive in batches, each in time order, and a buffer of their own keeps every
per-cpu stream of the trace.dat in time order, so readers merge them with the syscall events
by time (the kernel's ``trace`` does the same merge across its per-cpu buffers).
"""

from __future__ import annotations

import fnmatch
import sys
import threading
from contextlib import nullcontext

from ..events.format import EventFormat
from ..events.records import RecordCodec
from ..events.registry import Consumer
from ..filter import FilterError, compile_filter
from ..sources.user_events import UserEventError, UserEventsServer
from .core import EventSpec, EventState, Session, SessionError

SYSTEM = "user_events"


def is_user_events_spec(spec: EventSpec) -> bool:
    """Does ``-e`` name user events: ``user_events``, ``user_events:GLOB``, ``*:GLOB``?"""
    if ":" in spec.pattern:
        return fnmatch.fnmatchcase(SYSTEM, spec.pattern.split(":", 1)[0])
    return spec.pattern == SYSTEM


def _matches(spec: EventSpec, fmt: EventFormat) -> bool:
    if ":" not in spec.pattern:
        return True                                      # "user_events": all of them
    sys_pat, ev_pat = spec.pattern.split(":", 1)
    return (fnmatch.fnmatchcase(fmt.system, sys_pat)
            and fnmatch.fnmatchcase(fmt.name, ev_pat or "*"))


class UserEventsSource:
    """Feeds a session with the user events that ``specs`` enable, for ``consumers``."""

    def __init__(self, session: Session, specs: list[EventSpec], consumers: int,
                 session_dir: str | None = None, warn=None):
        self.session = session
        self.specs = specs
        self.consumers = consumers
        self.server = UserEventsServer(session_dir)
        self.cpu = session.ncpus - 1          # the buffer of user events (see above)
        self.lost = 0
        self._warn = warn or (lambda msg: sys.stderr.write(f"usertrace: {msg}\n"))
        self._states: dict[int, EventState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._comms: dict[int, str] = {}
        self.totals = None
        self.batch = True         # records handed over a drain at a time (False: one by one)

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
        self.session.use_threads()

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
        spec = next((s for s in self.specs if _matches(s, fmt)), None)
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
        for i in order:
            r = rings[i]
            if r is not last:
                last = r
                if comms.get(r.tid) != r.comm:
                    comms[r.tid] = r.comm
                    session.note_comm(r.tid, r.comm)
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
        state = self._states.get(fmt.id) or self._state(fmt)
        values = state.codec.decode(record) if (state.filter is not None
                                                or self.session.stream is not None) else None
        self.session.note_comm(tid, comm)
        self.session.emit(state, values, ts, self.cpu, comm, record)

    def _on_lost(self, pid: int, tid: int, comm: str, count: int) -> None:
        self.lost += count

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
