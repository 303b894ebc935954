"""A recording: events enabled from ``-e``/``-f`` specs, the sources that make them, the
consumers that take them, and the processes traced.  What ``record``, ``stream`` and
``stat`` run, as a library::

    rec = Recorder([EventSpec("syscalls:sys_exit_openat", "ret < 0")])
    rec.record_to("fails.dat")
    status = rec.run(["ls", "/nonexistent"])     # or rec.run(pids=[1234]), or rec.run()
    print(rec.summary())

``backend``: ``"kernel"`` (the running kernel's events in a private tracefs instance:
:mod:`usertrace.kernel.backend`), ``"ptrace"`` (the process engine), or ``"auto"``: the
kernel where it can serve every enabled event, else ptrace; :attr:`Recorder.backend` and
:attr:`Recorder.backend_reason` say which and why.  ``system_wide``: every process of the
machine (the kernel only).

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
from ..kernel import backend as kernel_backend      # (a module: either may be imported first)
from ..output.stats import SyscallStats
from ..ptrace import Engine, ExitStatus
from ..sources.base import Source
from ..sources.probes.source import ProbeSource
from ..sources.syscalls.classes import strace_selection_formats
from ..sources.syscalls.source import STRING_SIZE, SyscallSource
from ..sources.tasks.events import NEW_TASK, PROCESS_EXIT, SIGNAL_DELIVER
from ..sources.tasks.source import TaskEventsSource
from ..sources.user_events.source import UserEventsSource
from .core import EventSpec, Session, SessionError
from .cpus import CpuMap


class Recorder:
    """One recording.  ``consumers``: Consumer bits of the events enabled (TRACE for
    ``record``, STREAM for ``stream``, OTHER for ``stat``).  ``strings``: syscall records
    carry the user-space data of their arguments (``__<arg>_val`` fields, up to
    ``string_size`` bytes each), as the newest kernels record them; without, exactly the
    running kernel's formats; None (default): with them, but for ``backend="kernel"``, which
    records the running kernel's formats (``auto`` then picks the kernel only with
    ``strings=False``).  ``stats``: count syscalls as ``strace -c``.  ``status``:
    ``"failed"`` or ``"successful"`` keeps only those calls, whole (strace's ``-Z``, ``-z``).
    An ``-e`` in strace's terms (``openat``, ``trace=%file,%net``) enables the events of the
    calls it names (:func:`~usertrace.sources.syscalls.classes.expand_strace_selection`).
    With a command or pids, only the traced processes' user events are recorded, unless
    ``all_user_events`` (every process of the user, as without a command).
    ``warn(message)`` hears what the user should know while recording.
    ``probes``: probe definitions of this run (defined and enabled for it, beside the
    session's, which ``-e`` enables); with probes and no ``specs``, only they are enabled.
    ``program``: the traced command's main program (for a probe placed by ``SYMBOL``)."""

    def __init__(self, specs: list[EventSpec] | None = None, *,
                 consumers: int = Consumer.TRACE, strings: bool | None = None,
                 string_size: int = STRING_SIZE, status: str | None = None,
                 stats: SyscallStats | None = None, session_dir: str | None = None,
                 registry: Registry | None = None, ncpus: int | None = None,
                 all_user_events: bool = False,
                 warn: Callable[[str], None] | None = None, backend: str = "auto",
                 system_wide: bool = False, seccomp: bool = True,
                 probes: list[str] | None = None, program: str | None = None):
        self.all_user_events = all_user_events
        self.consumers = consumers
        self.stats = stats
        self.warn = warn or (lambda message: None)
        self.system_wide = system_wide
        self.seccomp = seccomp
        self.syscalls = SyscallSource(stats=stats, string_size=string_size, status=status)
        self.user_events = UserEventsSource(session_dir, warn=self.warn)
        self.probes = ProbeSource(probes or [], session_dir=session_dir, program=program,
                                  warn=self.warn)
        self.tasks = TaskEventsSource()
        self.specs = self.probes.run_specs() + (list(specs) if specs else
                                                [] if probes else default_specs())
        self.engine: Engine | None = None
        self._claims: dict[int, list[EventSpec]] = {}
        self.kernel: kernel_backend.KernelSource | None = None
        if backend not in kernel_backend.BACKENDS:
            raise SessionError(f"backend {backend!r}: give one of "
                               f"{', '.join(kernel_backend.BACKENDS)}")
        # Strings are on unless turned off; the kernel records none, so auto leaves it to
        # the ptrace engine unless they are off, and --backend kernel turns them off.
        why = "asked for" if backend == "ptrace" else kernel_backend.kernel_unfit(
            strings=bool(strings) or (strings is None and backend == "auto"
                                      and not system_wide),
            seccomp=seccomp)
        if why is None and status is not None:
            why = "-Z/-z (whole calls by their result) run on the ptrace engine"
        if why is None and probes:
            why = "probe events run on the ptrace engine"
        if why is None:
            self.kernel = kernel_backend.KernelSource(stats=stats, warn=self.warn)
            self.session = Session(self.kernel.registry(registry),
                                   CpuMap(ncpus or kernel_backend.kernel_cpus(self.kernel.root)))
            self.probes.register(self.session.registry)
            self._enable()
            why = self.kernel.check(self.session, consumers)
            if why is not None:
                self.kernel = None
                self._claims = {}
        if self.kernel is None:
            self.session = Session(registry if registry is not None else
                                   known_events(syscall_data=strings is not False),
                                   CpuMap(ncpus))
            self.probes.register(self.session.registry)
            self._enable()
        self.session.on_error = self.warn
        self._choose(backend, why)

    def _choose(self, asked: str, why: str | None) -> None:
        """:attr:`backend` and :attr:`backend_reason`; SessionError when the kernel was
        required (``--backend kernel``, every process) and cannot serve."""
        if self.kernel is not None:
            self.backend = "kernel"
            self.backend_reason = ("asked for" if asked == "kernel" else
                                   "root and a tracefs: the kernel has every enabled event")
            return
        if self.system_wide:
            raise SessionError(f"-a (every process) needs the kernel backend: {why}")
        if asked == "kernel":
            raise SessionError(f"the kernel backend cannot run: {why}")
        self.backend, self.backend_reason = "ptrace", why or ""

    @property
    def sources(self) -> list[Source]:
        if self.kernel is not None:         # (it records the task events itself)
            return [self.kernel, self.user_events, self.probes]
        return [self.syscalls, self.user_events, self.probes, self.tasks]

    def _enable(self) -> None:
        """Each spec to the sources that claim it; SessionError when none does."""
        registered = None
        for spec in self.specs:
            pattern = EventPattern.parse(spec.pattern)
            matched = self.session.registry.match(spec.pattern)
            if matched:
                self.session.enable(spec, self.consumers)
                if any(self.probes.owns(f) for f in matched):
                    self._claims.setdefault(id(self.probes), []).append(spec)
                if any(f.system in self.tasks.systems for f in matched):
                    self._claims.setdefault(id(self.tasks), []).append(spec)
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
        if text in self.user_events.systems or any(f.name == text for f in registered):
            return False
        formats = strace_selection_formats(self.session.registry, text)
        if formats is None:
            return False
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
                if s is self.syscalls or s is self.kernel or self._claimed(s)]

    def record_to(self, path: str, **options) -> None:
        """Record into a trace.dat (options: ``version``, ``buffer_kb``, ``page_size``; None
        for the default).  With the kernel backend, ``buffer_kb`` is the kernel's buffer."""
        options = {k: v for k, v in options.items() if v is not None}
        if self.kernel is not None:
            self.kernel.buffer_kb = options.get("buffer_kb")
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
            seccomp: bool | None = None, handle_signals: bool = True) -> ExitStatus:
        """Trace ``command`` (launched) or ``pids`` (attached), or, with neither, every
        process (``system_wide``) or the user events until SIGINT, SIGTERM or SIGHUP.
        Returns how the command ended."""
        seccomp = self.seccomp if seccomp is None else seccomp
        sources = self._active()
        if any(s.threaded for s in sources):
            self.session.use_threads()
        for source in sources:
            source.reserve(self.session.cpus)
            source.prepare(self.session, self._claimed(source), self.consumers)
        if command or pids:
            if self.kernel is None:
                self.engine = self.probes.engine = Engine()
            if not self.all_user_events and not self.system_wide:  # before any is drained
                self.user_events.scope = (self.kernel.in_scope if self.kernel is not None
                                          else self.engine.seen_pids.__contains__)
        started: list[Source] = []
        try:
            for source in sources:
                source.start()
                started.append(source)
            if self.kernel is not None and (command or pids or self.system_wide):
                status = self.kernel.run(command, pids, system_wide=self.system_wide,
                                         handle_signals=handle_signals)
            elif command or pids:
                status = self._trace(sources, command, pids, seccomp, handle_signals)
            else:
                status = _wait_for_signal()
        except BaseException:
            # Whatever ended the recording, what was recorded until then is kept.
            for source in reversed(started):
                source.stop()
            try:
                self.session.finish()
            except Exception:
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
        t = self.session.trace
        if t is not None and t.error:
            out.append(f"{t.error}; {t.lost} events lost (what came before is in the file)")
        if self.session.error:
            out.append(f"{self.session.error}; {self.session.lost_after_error} events not "
                       "recorded from then on")
        for source in self.sources:
            out += source.problems()
        return out

    @property
    def failed(self) -> bool:
        """Did the recording itself fail (the processes may have done well)?"""
        t = self.session.trace
        return bool(self.session.error or (t is not None and t.error))

    def summary(self) -> str:
        """``N events recorded in FILE[, M lost (buffer full)]`` for a recording."""
        t = self.session.trace
        if t is None:
            return ""
        why = t.error or "buffer full"
        return (f"{t.entries} events recorded in {t.path}"
                + (f", {t.lost} lost ({why})" if t.lost else ""))


def default_specs() -> list[EventSpec]:
    """What a recording enables when not told: every syscall event, and the tasks made,
    their signals and ends (what ``strace -f`` shows)."""
    return [EventSpec("syscalls")] + [EventSpec(":".join(e))
                                      for e in (NEW_TASK, SIGNAL_DELIVER, PROCESS_EXIT)]


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
