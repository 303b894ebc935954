"""Helpers of the ptrace engine's end-to-end tests: record what the engine reports."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from usertrace.ptrace import ENTER, EXIT
from usertrace.sources.syscalls.table import SyscallTable
from usertrace.ptrace import Engine
from usertrace.sources.syscalls.stops import SyscallStops

TABLE = SyscallTable.for_arch("x86_64")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def nrs(*names: str) -> set[int]:
    return {TABLE.by_name[n].nr for n in names}


@dataclass
class Ev:
    kind: int
    tid: int
    pid: int
    nr: int
    args: tuple
    ret: int
    ts: int
    comm: str
    cpu: int

    @property
    def name(self) -> str:
        return TABLE.by_nr[self.nr].name

    def __repr__(self):
        if self.kind == ENTER:
            return f"{self.tid}:{self.name}({', '.join(hex(a) for a in self.args[:3])})"
        return f"{self.tid}:{self.name}->{self.ret}"


class Recorder:
    def __init__(self):
        self.events: list[Ev] = []

    def __call__(self, kind, task, nr, args, ret, ts):
        self.events.append(Ev(kind, task.tid, task.pid, nr, args, ret, ts, task.comm, task.cpu))

    def of(self, tid=None, kind=None, name=None) -> list[Ev]:
        return [e for e in self.events if (tid is None or e.tid == tid)
                and (kind is None or e.kind == kind) and (name is None or e.name == name)]

    def tids(self) -> list[int]:
        seen = []
        for e in self.events:
            if e.tid not in seen:
                seen.append(e.tid)
        return seen

    def exits(self, tid=None) -> list[tuple[str, int]]:
        return [(e.name, e.ret) for e in self.of(tid, EXIT)]


def engine_for(consumer=None, enter=(), exit=None, **options) -> Engine:
    """An engine whose syscall stops (``enter``/``exit`` numbers, None: all) go to
    ``consumer(kind, task, nr, args, ret, ts)`` with the syscall events' rules."""
    engine = Engine(**options)
    if consumer is not None or enter or exit:
        engine.add(SyscallStops(consumer or (lambda *a: None), enter, exit))
    return engine


def trace(argv, enter=None, exit=None, seccomp=True, env=None, **options):
    """Launch ``argv`` under the engine; (recorder, status, pid)."""
    rec = Recorder()
    tracer = engine_for(rec, enter, exit, **options)
    pid = tracer.launch([str(a) for a in argv], env=env, seccomp=seccomp)
    status = tracer.run(handle_signals=False)
    return rec, status, pid


def assert_paired(events: list[Ev]) -> None:
    """Per thread, enters and exits alternate with the same number.

    A thread may start with an exit (a child returning from fork/clone, reported as the
    kernel does) and end with an enter that has no exit (exit, exit_group, or an execve
    that another thread's exec ended).
    """
    by_tid: dict[int, list[Ev]] = {}
    for e in events:
        if e.name != "rt_sigreturn":      # never an exit, as in the kernel
            by_tid.setdefault(e.tid, []).append(e)
    for tid, evs in by_tid.items():
        if evs and evs[0].kind == EXIT:
            assert evs[0].name in ("clone", "clone3", "fork", "vfork") and evs[0].ret == 0, evs[:3]
            evs = evs[1:]
        for i in range(0, len(evs) - 1, 2):
            a, b = evs[i], evs[i + 1]
            assert (a.kind, b.kind) == (ENTER, EXIT) and a.nr == b.nr, (tid, evs[i:i + 2])
        if len(evs) % 2:
            assert evs[-1].kind == ENTER and evs[-1].name in ("exit", "exit_group", "execve"), evs[-1]


def python_env(**extra) -> dict:
    """An environment for a Python child that imports usertrace from src/."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": SRC}
    env.update(extra)
    return env


PYTHON = sys.executable
