"""The syscall event source: the ptrace engine plus the ``syscalls`` events.

::

    events = build_events()                 # SyscallEvents for every call with events
    registry.add_all(...)                   # ids get assigned (usertrace.events.registry)
    records = SyscallRecords(events)        # nr -> event ids, nargs: bytes of a record
    enter, exit_ = numbers_for(registry.enabled())
    tracer = SyscallTracer(consumer, enter, exit_)
    tracer.launch(["make", "-j2"])          # or tracer.attach([pid, ...])
    status = tracer.run()                   # the command's exit status (see ExitStatus)

    def consumer(kind, task, nr, args, ret, ts_ns):
        data = records.encode(kind, task.tid, nr, args, ret)    # the kernel's record bytes

A launched command runs under a seccomp filter that stops it only at the enabled calls
(``seccomp=False``: at every call, like ``strace`` without ``--seccomp-bpf``); attached
processes stop at every call and the engine drops the calls not enabled.  The set of calls
that stop a launched command is fixed at launch.
"""

from __future__ import annotations

from typing import Iterable

from ...events.format import EventFormat
from ...ptrace import ENTER, EXIT, ExitStatus, Task, TraceError, Tracer
from ...ptrace.engine import OnSyscall
from . import events as ev
from .seccomp import build_filter
from .table import SyscallTable

__all__ = ["ENTER", "EXIT", "SyscallRecords", "SyscallTracer", "numbers_for", "TraceError",
           "ExitStatus", "Task"]


def numbers_for(formats: Iterable[EventFormat], table: SyscallTable | None = None
                ) -> tuple[set[int], set[int]]:
    """The syscall numbers of the enter and of the exit events among ``formats``."""
    table = table or SyscallTable.for_arch("x86_64")
    enter: set[int] = set()
    exit_: set[int] = set()
    for fmt in formats:
        if fmt.system != ev.SYSTEM:
            continue
        base = ev.event_base(fmt.name)
        if base is None:
            continue
        sc = table.by_event.get(base[0])
        if sc is not None:
            (enter if base[1] else exit_).add(sc.nr)
    return enter, exit_


class SyscallRecords:
    """Record bytes for the engine's reports, with the event ids a registry gave the formats."""

    def __init__(self, events: Iterable[ev.SyscallEvents], max_nr: int = 511):
        self.enter_id = [0] * (max_nr + 1)
        self.exit_id = [0] * (max_nr + 1)
        self.nargs = [0] * (max_nr + 1)
        for e in events:
            self.enter_id[e.nr] = e.enter.id
            self.exit_id[e.nr] = e.exit.id
            self.nargs[e.nr] = e.nargs

    def encode(self, kind: int, tid: int, nr: int, args, ret: int) -> bytes:
        if kind == ENTER:
            return ev.encode_enter(self.enter_id[nr], tid, nr, args, self.nargs[nr])
        return ev.encode_exit(self.exit_id[nr], tid, nr, ret)


class SyscallTracer:
    """Launch or attach, and report the enabled system calls to ``on_syscall``.

    ``enter`` and ``exit`` are the numbers whose sys_enter / sys_exit events are enabled
    (None: all).  Other keywords go to :class:`usertrace.ptrace.Tracer`
    (``follow_forks``, ``cpu``, ``cpu_refresh``, ``follow_cpu``, ``on_task``).
    """

    def __init__(self, on_syscall: OnSyscall | None, enter: Iterable[int] | None = None,
                 exit: Iterable[int] | None = None, *, seccomp: bool = True, **options):
        enter = None if enter is None else set(enter)
        exit = enter if exit is None else set(exit)
        self.engine = Tracer(on_syscall, enter, exit_syscalls=exit, **options)
        self.seccomp_filter: bytes | None = None
        if seccomp and enter is not None and exit is not None:
            stopping = enter | exit
            with_events = {s.nr for s in SyscallTable.for_arch("x86_64") if s.has_event}
            if not with_events <= stopping:    # a filter that stops at everything saves nothing
                self.seccomp_filter = build_filter(stopping)

    def launch(self, argv: list[str], env=None, cwd: str | None = None) -> int:
        return self.engine.launch(argv, env, cwd, seccomp_filter=self.seccomp_filter)

    def attach(self, pids: Iterable[int]) -> list[int]:
        return self.engine.attach(pids)

    def run(self, handle_signals: bool = True) -> ExitStatus:
        return self.engine.run(handle_signals)

    def request_stop(self, sig: int = 15) -> None:
        self.engine.request_stop(sig)

    @property
    def tasks(self) -> dict[int, Task]:
        return self.engine.tasks
