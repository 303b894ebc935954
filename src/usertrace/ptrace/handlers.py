"""What a source gives the engine: a :class:`StopHandler`, told of the stops it asked for.

The engine knows processes, threads and ptrace; it knows nothing of trace events.  A source
registers a handler (``engine.add(handler)``) before the engine launches or attaches, and
says what it needs:

* ``enter_syscalls`` / ``exit_syscalls``: the syscall numbers whose entry / exit stops it
  wants (``None``: all; empty: none).  The engine stops a launched command only at the union
  of what its handlers ask (a seccomp filter), and calls :meth:`on_syscall` for those.
* :meth:`on_task`: a thread appears (attached, a new child or thread at its first stop, the
  launched command at its exec), execs, or ends; :meth:`on_fork`: a traced thread made one.
* :meth:`on_signal` (``wants_signals``): a signal is about to be delivered to a thread.
* :meth:`on_trap`: a SIGTRAP that is not a syscall stop (a breakpoint); a handler returns
  -1 when it is not its own (the program gets its SIGTRAP), else the signal to deliver as
  the task resumes (0: none).  :meth:`serve_trap`, tried first when one handler wants
  traps, may serve the stop whole, the task's resume included (the compiled hits of
  :mod:`usertrace.ptrace.breakpoints`).
"""

from __future__ import annotations

from .task import Task

ENTER, EXIT = 0, 1
# The kinds of record of StopHandler.compiled_syscalls' specs (_ptrace.c's REC_*): no data,
# a string, a buffer.
REC_PLAIN, REC_STRING, REC_BUFFER = 0, 1, 2


class StopHandler:
    """A source's side of the engine; every method has a do-nothing default."""

    enter_syscalls: frozenset[int] | set[int] | None = frozenset()
    exit_syscalls: frozenset[int] | set[int] | None = frozenset()
    wants_traps = False
    wants_signals = False
    # ``(enter, exit, write_records)``: the records of some syscall stops in the form the
    # engine's compiled stop loop makes them (see usertrace.ptrace.engine, "compiled stops"):
    # ``enter``/``exit`` map a syscall number to its record's spec; ``write_records(out)``
    # takes the ``cpu, ts, record`` triples made.  None: every stop goes to on_syscall.
    compiled_syscalls: tuple | None = None

    def on_syscall(self, kind: int, task: Task, nr: int, args: tuple, ret: int, ts: int) -> None:
        """A syscall stop: ``kind`` ENTER or EXIT, ``args`` the six argument registers as
        unsigned ints (at the exit, those of the entry), ``ret`` the signed return value (0
        at the entry), ``ts`` CLOCK_MONOTONIC ns when the stop was collected."""

    def on_task(self, what: str, task: Task, ts: int) -> None:
        """``what`` is ``"new"``, ``"exec"`` or ``"exit"``.  For a new child or thread,
        ``task.start_nr`` is the syscall it returns from at its first stop (clone, fork...),
        -1 for a task that was attached or launched.  At ``"exit"``, ``task.exit_status`` is
        its wait status (``os.waitstatus_to_exitcode`` reads it)."""

    def on_fork(self, parent: Task, child: Task, ts: int) -> None:
        """``parent`` made ``child`` (its fork, vfork or clone event, while ``parent`` is
        still in the call); ``child`` is reported by :meth:`on_task` ``"new"`` at its first
        stop."""

    def on_signal(self, task: Task, sig: int, siginfo: bytes, ts: int) -> None:
        """A signal-delivery-stop (``wants_signals``): ``sig`` is delivered as the task
        resumes; ``siginfo`` is its ``siginfo_t`` (PTRACE_GETSIGINFO, 128 bytes; empty when
        it could not be read).  Not called for a SIGTRAP a handler claimed."""

    def on_trap(self, task: Task, ts: int) -> int:
        """A SIGTRAP signal-delivery-stop: -1 when it is not this handler's breakpoint, else
        the signal to deliver when the task resumes (0: none)."""
        return -1

    def serve_trap(self, task: Task, ts: int, resume: int) -> bool:
        """A SIGTRAP signal-delivery-stop served whole, ending with ``ptrace(resume, tid, 0,
        0)``: True when done; False (and nothing done) for :meth:`on_trap` to serve."""
        return False

    def take_back_trap(self, task: Task) -> bool:
        """The engine lets go of ``task``, stopped with a SIGTRAP not yet handled: if it is
        this handler's breakpoint, put the task back as if it never ran into it (True)."""
        return False

    def on_detach(self, process) -> None:
        """The engine lets go of ``process`` (a :class:`~usertrace.ptrace.process.Process`)
        while it still runs: undo whatever was put into its memory."""
