"""The call view live: a session's stream consumer that prints one line per call.

:class:`LiveCalls` takes the session's events as the live stream does (``write``), and from
the syscall source the tasks' ends and their signals (``on_task``, ``on_signal``), so that
``+++ exited with 3 +++``, ``+++ killed by SIGKILL +++`` and ``--- SIGCHLD {...} ---`` print
where strace prints them.  ``-y`` asks ``/proc`` while the task is stopped, as strace does.
"""

from __future__ import annotations

import os
import struct
from typing import TextIO

from .view import CallView, ViewOptions

# siginfo_t (64-bit): si_signo, si_errno, si_code, then the union at 16.
_HEAD = struct.Struct("<iii")
_KILL = struct.Struct("<iI")                    # si_pid, si_uid
_CHLD = struct.Struct("<iIi4xqq")               # si_pid, si_uid, si_status, si_utime, si_stime
_ADDR = struct.Struct("<Q")                     # si_addr
SI_USER, SI_QUEUE, SI_MESGQ, SI_TKILL, SI_KERNEL = 0, -1, -3, -6, 0x80
_FAULTS = frozenset({"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP"})


def siginfo_fields(sig_name: str, raw: bytes) -> dict | None:
    """The ``si_*`` fields strace shows of a ``siginfo_t`` (PTRACE_GETSIGINFO's 128 bytes),
    for :func:`~usertrace.output.strace.view.siginfo_text`; None when there are none."""
    if len(raw) < 48:
        return None
    _, errno, code = _HEAD.unpack_from(raw)
    out: dict = {"si_code": code}
    if errno:
        out["si_errno"] = errno
    if code in (SI_USER, SI_TKILL, SI_QUEUE, SI_MESGQ):
        out["si_pid"], out["si_uid"] = _KILL.unpack_from(raw, 16)
    elif sig_name == "SIGCHLD" and code > 0:
        (out["si_pid"], out["si_uid"], out["si_status"], out["si_utime"],
         out["si_stime"]) = _CHLD.unpack_from(raw, 16)
    elif sig_name in _FAULTS and (code > 0 or code == SI_KERNEL):
        out["si_addr"] = _ADDR.unpack_from(raw, 16)[0]
    return out


class _Event:
    __slots__ = ("format", "values", "ts_ns")

    def __init__(self, fmt, values, ts_ns):
        self.format, self.values, self.ts_ns = fmt, values, ts_ns


class LiveCalls:
    """A session's live consumer printing strace lines to ``out``.

    ``options`` are the view's (:class:`ViewOptions`); it reports the tasks' ends itself
    (``task_events``), and with ``-y`` asks ``/proc`` (``live_fds``)."""

    def __init__(self, out: TextIO, options: ViewOptions | None = None):
        self.out = out
        opt = options or ViewOptions()
        opt.task_events = True
        opt.live_fds = opt.show_fds
        self.flush_each = bool(getattr(out, "isatty", lambda: False)())
        self.view = CallView(self._line, opt)

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        if self.flush_each:
            self.out.flush()

    # -- the session's side ------------------------------------------------------------------
    def write(self, fmt, values: dict, ts_ns: int, cpu: int, comm: str, body=None) -> None:
        self.view.feed(_Event(fmt, values, ts_ns))

    def finish(self) -> None:
        self.view.finish()
        self.out.flush()

    # -- the syscall source's side -------------------------------------------------------------
    def on_task(self, what: str, task, ts: int) -> None:
        if what == "new":
            self.view.task_new(task.tid, task.pid)
            return
        if what != "exit" or task.exit_status is None:
            return
        status = task.exit_status
        if os.WIFSIGNALED(status):
            self.view.task_exit(task.tid, ts, signal=os.WTERMSIG(status),
                                core=os.WCOREDUMP(status))
        elif os.WIFEXITED(status):
            self.view.task_exit(task.tid, ts, code=os.WEXITSTATUS(status))

    def on_signal(self, task, sig: int, siginfo: bytes, ts: int) -> None:
        name = self.view.x.signal(sig)
        self.view.signal(task.tid, ts, sig, siginfo_fields(name or "", siginfo))


__all__ = ["LiveCalls", "siginfo_fields"]
