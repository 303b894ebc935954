"""One traced thread (a *task*, as the kernel says) and what the engine knows about it."""

from __future__ import annotations


class Task:
    """A traced thread.  Handlers read ``tid``, ``pid``, ``comm``, ``cpu``, ``nr``, ``args``,
    ``process``.

    ``pid`` is the thread group id (the process), ``tid`` the thread's own id (the kernel's
    ``common_pid``).  ``nr`` is the system call the task is in (between its enter and exit),
    -1 outside one; ``args`` the arguments it entered with.
    """

    __slots__ = ("tid", "pid", "comm", "cpu", "nr", "args", "countdown", "hidden",
                 "listening", "stat_fd", "new_child", "start_nr", "process", "parent_tid",
                 "exit_status")

    def __init__(self, tid: int, pid: int, comm: str = "", cpu: int = 0):
        self.tid = tid
        self.pid = pid
        self.comm = comm
        self.cpu = cpu
        self.nr = -1
        self.args: tuple[int, ...] = ()
        self.countdown = 0        # stops until comm and cpu are read again
        self.hidden = False       # a launched child before its exec: not reported
        self.listening = False    # in group-stop, resumed with PTRACE_LISTEN
        self.stat_fd = -1         # /proc/TID/stat kept open (cpu="exact")
        self.new_child = False    # auto-attached by a fork/clone, first stop not seen yet
        self.start_nr = -1        # a new child's syscall at its first stop (clone, fork...)
        self.process = None       # the Process (address space) of its thread group
        self.parent_tid = 0       # the task whose fork or clone made it (0: not known)
        self.exit_status: int | None = None   # its wait status, once it ended

    def __repr__(self) -> str:
        return f"Task(tid={self.tid}, pid={self.pid}, comm={self.comm!r}, cpu={self.cpu}, nr={self.nr})"
