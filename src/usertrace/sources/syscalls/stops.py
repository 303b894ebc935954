"""The syscall events' view of the engine's stops: what the kernel's tracepoints would see.

:class:`SyscallStops` is the stop handler of the syscall source.  It asks the engine for the
entries and exits of the enabled calls and passes them on as ``consumer(kind, task, nr, args,
ret, ts)``, with the kernel's rules for which records exist:

* there is never a ``sys_exit_rt_sigreturn`` (the kernel's exit tracepoint sees
  ``orig_ax == -1`` after a sigreturn);
* a new child or thread first appears with the exit of the call that made it
  (``sys_exit_clone``/``clone3``/``fork``/``vfork`` with ret 0): the kernel's exit tracepoint
  fires in the child before ptrace sees it, so that is its first record.

When every call that has events is enabled, the handler asks for every stop (``None``), so
that a launched command runs without a seccomp filter that would stop it everywhere anyway.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ...arch import X86_64, Arch
from ...ptrace import ENTER, EXIT, StopHandler, Task
from .table import SyscallTable

OnSyscall = Callable[[int, Task, int, tuple, int, int], None]


class SyscallStops(StopHandler):
    """Report the enabled system calls to ``consumer``.

    ``enter`` and ``exit`` are the numbers whose sys_enter / sys_exit events are enabled
    (None: all; ``exit`` defaults to ``enter``).  ``on_task(what, task, ts)`` also hears of
    new, exec'ing and ending tasks, ``on_signal(task, sig, siginfo, ts)`` of the signals
    delivered to them.
    """

    def __init__(self, consumer: OnSyscall, enter: Iterable[int] | None = None,
                 exit: Iterable[int] | None = None, *,
                 on_task: Callable[[str, Task, int], None] | None = None,
                 on_signal: Callable[[Task, int, bytes, int], None] | None = None,
                 arch: Arch = X86_64):
        enter = None if enter is None else set(enter)
        exit = enter if exit is None else set(exit)
        with_events = {s.nr for s in SyscallTable.for_arch(arch.name) if s.has_event}
        if enter is not None and exit is not None and with_events <= (enter | exit):
            enter_all, exit_all = with_events <= enter, with_events <= exit
            enter = None if enter_all else enter
            exit = None if exit_all else exit
        self.enter_syscalls = enter
        self.exit_syscalls = self._without_sigreturn(exit, arch)
        self.on_syscall = consumer
        self._exits = exit
        self._task_hook = on_task
        if on_signal is not None:
            self.wants_signals = True
            self.on_signal = on_signal

    @staticmethod
    def _without_sigreturn(exit: set[int] | None, arch: Arch) -> set[int] | None:
        nr = arch.nr["rt_sigreturn"]
        if exit is None:
            return set(range(arch.max_nr + 1)) - {nr}
        return exit - {nr}

    def on_task(self, what: str, task: Task, ts: int) -> None:
        if self._task_hook is not None:
            self._task_hook(what, task, ts)
        if what == "new" and task.start_nr >= 0:
            exits = self.exit_syscalls
            if task.start_nr in exits:
                self.on_syscall(EXIT, task, task.start_nr, (), 0, ts)


__all__ = ["ENTER", "EXIT", "SyscallStops"]
