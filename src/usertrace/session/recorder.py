"""A recording: events enabled from ``-e``/``-f`` specs, the sources that make them, the
consumers that take them, and the processes traced.  What ``record``, ``stream`` and
``stat`` run, as a library::

    rec = Recorder([EventSpec("syscalls:sys_exit_openat", "ret < 0")])
    rec.record_to("fails.dat")
    status = rec.run(["ls", "/nonexistent"])     # or rec.run(pids=[1234]), or rec.run()
    print(rec.summary())

The order of things (:mod:`usertrace.sources.base`): each spec goes to the sources that claim
it, the events are enabled in the session, buffers are reserved, the consumers are made, the
sources prepare and start, the process engine (when a source needs stops) launches or
attaches and runs until the processes are gone or a signal ends it, the sources stop, the
trace.dat is completed.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable, TextIO

from ..catalog import known_events, registered_user_events
from ..events.patterns import EventPattern
from ..events.registry import Consumer, Registry
from ..output.stats import SyscallStats
from ..ptrace import Engine, ExitStatus
from ..sources.base import Source
from ..sources.syscalls.classes import (StraceSelectionError, expand_strace_selection,
                                        is_strace_selection)
from ..sources.syscalls.source import STRING_SIZE, SyscallSource
from ..sources.user_events.source import UserEventsSource
from .core import EventSpec, Session, SessionError
from .cpus import CpuMap


class Recorder:
    """One recording.  ``consumers``: Consumer bits of the events enabled (TRACE for
    ``record``, STREAM for ``stream``, OTHER for ``stat``).  ``strings``: syscall records
    carry the user-space data of their arguments (``__<arg>_val`` fields, up to
    ``string_size`` bytes each), as the newest kernels record them; without, exactly the
    running kernel's formats.  ``stats``: count syscalls as ``strace -c``.  ``status``:
    ``"failed"`` or ``"successful"`` keeps only those calls, whole (strace's ``-Z``, ``-z``).
    An ``-e`` in strace's terms (``openat``, ``trace=%file,%net``) enables the events of the
    calls it names (:func:`~usertrace.sources.syscalls.classes.expand_strace_selection`).
    With a command or pids, only the traced processes' user events are recorded, unless
    ``all_user_events`` (every process of the user, as without a command).
    ``warn(message)`` hears what the user should know while recording."""

    def __init__(self, specs: list[EventSpec] | None = None, *,
                 consumers: int = Consumer.TRACE, strings: bool = True,
                 string_size: int = STRING_SIZE, status: str | None = None,
                 stats: SyscallStats | None = None, session_dir: str | None = None,
                 registry: Registry | None = None, ncpus: int | None = None,
                 all_user_events: bool = False,
                 warn: Callable[[str], None] | None = None):
        self.all_user_events = all_user_events
        self.specs = list(specs) if specs else [EventSpec("syscalls")]
        self.consumers = consumers
        self.stats = stats
        self.warn = warn or (lambda message: None)
        self.syscalls = SyscallSource(stats=stats, string_size=string_size, status=status)
        self.user_events = UserEventsSource(session_dir, warn=self.warn)
        if registry is None:
            registry = known_events(syscall_data=strings)
        self.session = Session(registry, CpuMap(ncpus))
        self.engine: Engine | None = None
        self._claims: dict[int, list[EventSpec]] = {}
        self._enable()

    @property
    def sources(self) -> list[Source]:
        return [self.syscalls, self.user_events]

    def _enable(self) -> None:
        """Each spec to the sources that claim it; SessionError when none does."""
        registered = None
        for spec in self.specs:
            pattern = EventPattern.parse(spec.pattern)
            matched = self.session.registry.match(spec.pattern)
            if matched:
                self.session.enable(spec, self.consumers)
            if registered is None:
                registered = registered_user_events(self.user_events.server.session_dir)
            if not matched and self._strace_selection(spec, registered):
                continue
            if self.user_events.claims(pattern, registered):
                self._claims.setdefault(id(self.user_events), []).append(spec)
            elif not matched:
                raise SessionError(f"no event matches {spec.pattern!r} (usertrace list shows "
                                   "the events there are)")

    def _strace_selection(self, spec: EventSpec, registered: list) -> bool:
        """An ``-e`` written as strace writes it (``openat``, ``%net``, ``trace=file,!close``):
        the events of its calls enabled, the filter applied to those that have its fields.
        False for what names user events (a system, or an event registered now)."""
        text = spec.pattern
        if not is_strace_selection(text) or text in self.user_events.systems \
                or any(f.name == text for f in registered):
            return False
        registry = self.session.registry
        try:
            names = expand_strace_selection(text)
        except StraceSelectionError:
            if _plain_word(text):     # neither an event nor a system call: say "no event"
                return False
            raise
        formats = [registry.get(*name.split(":", 1)) for name in names]
        formats = [f for f in formats if f is not None]
        if formats:
            self.session.enable(spec, self.consumers, formats=formats)
        return True

    def _claimed(self, source: Source) -> list[EventSpec]:
        return self._claims.get(id(source), [])

    @property
    def wants_user_events(self) -> bool:
        return bool(self._claimed(self.user_events))

    # -- consumers ------------------------------------------------------------------------
    def _active(self) -> list[Source]:
        return [s for s in self.sources
                if s is self.syscalls or self._claimed(s)]

    def record_to(self, path: str, **options) -> None:
        """Record into a trace.dat (options: ``version``, ``buffer_kb``, ``page_size``)."""
        for source in self._active():
            source.reserve(self.session.cpus)
        self.session.record_to(path, on_error=self.warn, **options)

    def stream_to(self, out: TextIO) -> None:
        self.session.stream_to(out, flush_each=True)

    def stream_calls_to(self, out: TextIO, options=None) -> None:
        """Print one line per call as strace does (:class:`~usertrace.output.strace.CallView`
        with ``options``, a ViewOptions), live, with the tasks' ends and their signals."""
        from ..output.strace.live import LiveCalls
        calls = LiveCalls(out, options)
        self.session.stream = calls
        self.syscalls.watchers.append(calls)

    # -- running ----------------------------------------------------------------------------
    def run(self, command: list[str] | None = None, pids: list[int] | None = None, *,
            seccomp: bool = True, handle_signals: bool = True) -> ExitStatus:
        """Trace ``command`` (launched) or ``pids`` (attached), or, with neither, take the
        user events until SIGINT, SIGTERM or SIGHUP.  Returns how the command ended."""
        sources = self._active()
        if any(s.threaded for s in sources):
            self.session.use_threads()
        for source in sources:
            source.reserve(self.session.cpus)
            source.prepare(self.session, self._claimed(source), self.consumers)
        if command or pids:
            self.engine = Engine()
            if not self.all_user_events:      # before any record is drained
                self.user_events.scope = self.engine.seen_pids.__contains__
        started: list[Source] = []
        try:
            for source in sources:
                source.start()
                started.append(source)
            if command or pids:
                status = self._trace(sources, command, pids, seccomp, handle_signals)
            else:
                status = _wait_for_signal()
        except BaseException:
            for source in reversed(started):
                source.stop()
            self.session.abort()
            raise
        for source in reversed(started):
            source.stop()
        self.session.finish()
        return status

    def _trace(self, sources, command, pids, seccomp, handle_signals) -> ExitStatus:
        engine = self.engine
        for source in sources:
            handler = source.stop_handler()
            if handler is not None:
                engine.add(handler)
        if command:
            engine.launch(command, seccomp=seccomp)
        else:
            engine.attach(pids)
        return engine.run(handle_signals)

    # -- the end ---------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """What the user must hear: records lost or refused, by source and reason."""
        out = []
        for source in self.sources:
            out += source.problems()
        return out

    def summary(self) -> str:
        """``N events recorded in FILE[, M lost (buffer full)]`` for a recording."""
        t = self.session.trace
        if t is None:
            return ""
        return (f"{t.entries} events recorded in {t.path}"
                + (f", {t.lost} lost (buffer full)" if t.lost else ""))


def _plain_word(text: str) -> bool:
    """One name, without strace's list, class, negation or regex syntax."""
    return not any(c in text for c in ",%!?/=")


def _wait_for_signal() -> ExitStatus:
    """Trace user events alone until SIGINT, SIGTERM or SIGHUP."""
    stop = threading.Event()
    caught = []

    def handler(sig, frame):
        caught.append(sig)
        stop.set()
    saved = {sig: signal.signal(sig, handler)
             for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
    return ExitStatus(0, None, detached=True) if caught else ExitStatus(0)
