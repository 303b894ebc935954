"""The formats of the task events, as the kernel defines them (``include/trace/events/signal.h``,
``sched.h`` and ``task.h``; the layout of x86_64, checked against the running kernel's by the tests).

``signal:signal_deliver`` is recorded when a task takes a signal from its queue to act on it
(the kernel's ``get_signal``); a signal the task ignores (SIG_IGN, or the default action of
SIGCHLD, SIGCONT, SIGURG and SIGWINCH) is never queued, so never recorded, though ptrace
(and so strace) sees it.  The record holds the signal, the ``si_errno`` and ``si_code`` of its siginfo,
and the action in force (``sa_handler``: 0 for SIG_DFL, 1 for SIG_IGN, else the handler's
address; ``sa_flags``).  A task that dies because its thread group is exiting (a SIGKILL, an
``exit_group`` or a fatal signal of another thread, an ``execve`` of another thread) takes a
SIGKILL that way too, with ``code`` 0 (SI_USER) and the default action.

``task:task_newtask`` is recorded when a traced task makes a new one (fork, vfork, clone,
clone3), in the maker's name: the new task's ``pid`` (its tid), the maker's ``comm``, the
``clone_flags`` (``CLONE_THREAD``: a thread of the same process) and ``oom_score_adj``.

``sched:sched_process_exit`` is recorded when a task ends: its ``comm``, its tid as ``pid``,
its priority as the kernel counts it (``prio``: 120 for nice 0), and ``group_dead``, true for
the last task of its thread group.
"""

from __future__ import annotations

import signal

from ...events.format import EventFormat

SIGNAL_DELIVER = ("signal", "signal_deliver")
PROCESS_EXIT = ("sched", "sched_process_exit")
NEW_TASK = ("task", "task_newtask")

# The kernel's format texts (id 0), their common fields written once.
_COMMON = """ID: 0
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;
"""

_SIGNAL_DELIVER = """name: signal_deliver
""" + _COMMON + """
\tfield:int sig;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int errno;\toffset:12;\tsize:4;\tsigned:1;
\tfield:int code;\toffset:16;\tsize:4;\tsigned:1;
\tfield:unsigned long sa_handler;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned long sa_flags;\toffset:32;\tsize:8;\tsigned:0;

print fmt: "sig=%d errno=%d code=%d sa_handler=%lx sa_flags=%lx", REC->sig, REC->errno, \
REC->code, REC->sa_handler, REC->sa_flags
"""

_PROCESS_EXIT = """name: sched_process_exit
""" + _COMMON + """
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;

print fmt: "comm=%s pid=%d prio=%d group_dead=%s", REC->comm, REC->pid, REC->prio, \
REC->group_dead ? "true" : "false"
"""


_NEW_TASK = """name: task_newtask
""" + _COMMON + """
\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;
\tfield:u64 clone_flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:short oom_score_adj;\toffset:40;\tsize:2;\tsigned:1;

print fmt: "pid=%d comm=%s clone_flags=%llx oom_score_adj=%hd", REC->pid, REC->comm, \
REC->clone_flags, REC->oom_score_adj
"""


def task_formats() -> list[EventFormat]:
    """Fresh copies of the three formats (id 0: registering them numbers them)."""
    return [EventFormat.parse(_SIGNAL_DELIVER, SIGNAL_DELIVER[0]),
            EventFormat.parse(_PROCESS_EXIT, PROCESS_EXIT[0]),
            EventFormat.parse(_NEW_TASK, NEW_TASK[0])]


_NOT_FATAL = frozenset({signal.SIGCHLD, signal.SIGCONT, signal.SIGSTOP, signal.SIGTSTP,
                        signal.SIGTTIN, signal.SIGTTOU, signal.SIGURG, signal.SIGWINCH})
SIGKILL = int(signal.SIGKILL)
SIG_DFL, SIG_IGN = 0, 1                     # sa_handler of the default action, of "ignore"


_IGNORED = frozenset({signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH})


def ignored_by_default(sig: int) -> bool:
    """Is ``sig`` one the kernel drops under its default action (``sig_kernel_ignore``)?"""
    return sig in _IGNORED


def kills_by_default(sig: int) -> bool:
    """Does signal ``sig`` end the task under its default action (terminate or core)?"""
    return 0 < sig <= signal.SIGRTMAX and sig not in _NOT_FATAL


CLONE_VM, CLONE_VFORK, CLONE_THREAD = 0x100, 0x4000, 0x10000
FORK_FLAGS = int(signal.SIGCHLD)                              # what fork() passes
VFORK_FLAGS = CLONE_VM | CLONE_VFORK | int(signal.SIGCHLD)    # and vfork()
