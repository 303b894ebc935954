"""What a source gives the engine: a :class:`StopHandler`, told of the stops it asked for.

The engine knows processes, threads and ptrace; it knows nothing of trace events.  A source
registers a handler (``engine.add(handler)``) before the engine launches or attaches, and
says what it needs:

* ``enter_syscalls`` / ``exit_syscalls``: the syscall numbers whose entry / exit stops it
  wants (``None``: all; empty: none).  The engine stops a launched command only at the union
  of what its handlers ask (a seccomp filter), and calls :meth:`on_syscall` for those.
* :meth:`on_task`: a thread appears (attached, a new child or thread at its first stop, the
  launched command at its exec), execs, or ends.
* :meth:`on_trap`: a SIGTRAP that is not a syscall stop (a breakpoint); a handler that
  returns True has dealt with it and the signal is not delivered.
"""

from __future__ import annotations

from .task import Task

ENTER, EXIT = 0, 1


class StopHandler:
    """A source's side of the engine; every method has a do-nothing default."""

    enter_syscalls: frozenset[int] | set[int] | None = frozenset()
    exit_syscalls: frozenset[int] | set[int] | None = frozenset()
    wants_traps = False

    def on_syscall(self, kind: int, task: Task, nr: int, args: tuple, ret: int, ts: int) -> None:
        """A syscall stop: ``kind`` ENTER or EXIT, ``args`` the six argument registers as
        unsigned ints (at the exit, those of the entry), ``ret`` the signed return value (0
        at the entry), ``ts`` CLOCK_MONOTONIC ns when the stop was collected."""

    def on_task(self, what: str, task: Task, ts: int) -> None:
        """``what`` is ``"new"``, ``"exec"`` or ``"exit"``.  For a new child or thread,
        ``task.start_nr`` is the syscall it returns from at its first stop (clone, fork...),
        -1 for a task that was attached or launched."""

    def on_trap(self, task: Task, ts: int) -> bool:
        """A SIGTRAP signal-delivery-stop; True when it was this handler's breakpoint."""
        return False

    def on_detach(self, process) -> None:
        """The engine lets go of ``process`` (a :class:`~usertrace.ptrace.process.Process`)
        while it still runs: undo whatever was put into its memory."""
