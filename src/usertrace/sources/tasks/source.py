"""The task events from the process engine's stops: tasks made, signals delivered, tasks
ended.

:class:`TaskEventsSource` records ``task:task_newtask``, ``signal:signal_deliver`` and
``sched:sched_process_exit`` (:mod:`.events`) for the traced processes, as the kernel would
have:

* a new child or thread is a ``task_newtask`` of the task that made it, at its fork event
  (inside the call, where the kernel records it); its ``clone_flags`` are those of the call
  without the exit signal (``clone``'s first argument, ``clone3``'s ``clone_args.flags``
  read at the entry, fork's and vfork's own);

* a signal-delivery-stop whose signal is delivered is a ``signal_deliver`` (the kernel traces
  it in ``get_signal``, after the tracer let the signal through), with ``errno`` and ``code``
  from its siginfo; but for a signal the process ignores, which only a tracer sees (one
  that was blocked when sent would be recorded by the kernel too: ptrace cannot tell);
* the action (``sa_handler``, ``sa_flags``) is the one the process set: the handler asks for
  the ``rt_sigaction`` calls (entry and exit) and keeps each thread group's actions, copied
  at fork, reset at exec as the kernel resets them (handlers become SIG_DFL, SIG_IGN stays).
  For a process attached to, the actions set before are read from /proc (SigIgn, SigCgt):
  an ignored signal is SIG_IGN (1), a caught one has a handler whose address ptrace cannot
  read, recorded as ``0xffffffffffffffff``;
* a task that ends without calling ``exit``/``exit_group`` itself and without a fatal signal
  of its own took a SIGKILL on its way out (killed, or its thread group exiting): the kernel
  traces that SIGKILL, so it is recorded too (``code`` 0, the default action);
* every end is a ``sched_process_exit``, at the moment the tracer collects it; ``prio`` is
  the task's as read from /proc when it appeared or exec'ed; ``group_dead`` is true for the
  last traced task of its thread group to be collected.  (The kernel's order of a leader and
  its threads may differ: ptrace reports a leader after its threads.)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ...arch import Arch, host
from ...procstat import read_stat_raw, split_stat
from ...ptrace import ENTER, StopHandler
from ..base import Source
from .events import (FORK_FLAGS, NEW_TASK, PROCESS_EXIT, SIG_DFL, SIG_IGN, SIGKILL,
                     SIGNAL_DELIVER, VFORK_FLAGS, ignored_by_default, kills_by_default,
                     task_formats)

if TYPE_CHECKING:
    from ...session.core import EventState, Session

UNKNOWN_HANDLER = 0xFFFF_FFFF_FFFF_FFFF     # a handler set before the tracer came
STAT_PRIORITY = 18                          # /proc/PID/stat: prio - 100 (MAX_RT_PRIO)
_SIGINFO = struct.Struct("<iii")            # si_signo, si_errno, si_code
_SIGACTION = struct.Struct("<QQ")           # struct kernel_sigaction: handler, flags
_U64 = struct.Struct("<Q")                  # struct clone_args: flags first
CSIGNAL = 0xFF                              # the exit signal in clone's flags


def _read_oom_score_adj(tid: int) -> int:
    try:
        with open(f"/proc/{tid}/oom_score_adj", "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_prio(tid: int) -> int:
    raw = read_stat_raw(tid)
    got = split_stat(raw, STAT_PRIORITY) if raw is not None else None
    try:
        return 100 + int(got[1][STAT_PRIORITY - 3]) if got else 120
    except (IndexError, ValueError):
        return 120


def _proc_actions(pid: int) -> dict[int, tuple[int, int]]:
    """The actions of a process set before it was attached to, as far as /proc tells."""
    masks = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith((b"SigIgn:", b"SigCgt:")):
                    masks[line[:6]] = int(line.split()[1], 16)
    except (OSError, ValueError):
        return {}
    out = {}
    for key, handler in ((b"SigIgn", SIG_IGN), (b"SigCgt", UNKNOWN_HANDLER)):
        bits = masks.get(key, 0)
        for sig in range(1, 65):
            if bits >> (sig - 1) & 1:
                out[sig] = (handler, 0)
    return out


class TaskStops(StopHandler):
    """The stops the task events need (see the module's docstring)."""

    wants_signals = True

    def __init__(self, source: "TaskEventsSource", arch: Arch):
        self.source = source
        nr = arch.nr
        self._sigaction = nr["rt_sigaction"]
        self._exits = frozenset({nr["exit"], nr["exit_group"]})
        self._clone, self._clone3 = nr["clone"], nr["clone3"]
        self._made_by = {nr["fork"]: FORK_FLAGS, nr["vfork"]: VFORK_FLAGS}
        self.enter_syscalls = ({self._sigaction, self._clone, self._clone3} | set(self._made_by)
                               | set(self._exits))
        self.exit_syscalls = {self._sigaction}
        self._clone_flags: dict[int, int] = {}    # tid -> the flags of the clone it is in
        self.actions: dict[int, dict[int, tuple[int, int]]] = {}   # thread group -> actions
        self._setting: dict[int, tuple[int, int, int]] = {}       # tid -> (sig, handler, flags)
        self._own_end: set[int] = set()      # tids in exit/exit_group, or killed by a signal
        self._alive: dict[int, set[int]] = {}                     # thread group -> tids
        self._prio: dict[int, int] = {}

    # -- tasks ---------------------------------------------------------------------------------
    def on_task(self, what: str, task, ts: int) -> None:
        tid, pid = task.tid, task.pid
        if what == "new":
            self._alive.setdefault(pid, set()).add(tid)
            self._prio[tid] = _read_prio(tid)
            if pid not in self.actions:         # attached, or launched: /proc knows
                self.actions[pid] = _proc_actions(pid)
            if task.comm:
                self.source.session.note_comm(tid, task.comm)
        elif what == "exec":
            self._prio[tid] = _read_prio(tid)
            self._alive.setdefault(pid, set()).add(tid)
            acts = self.actions.get(pid)
            if acts is not None:      # handlers are reset; ignored signals stay ignored
                self.actions[pid] = {s: a for s, a in acts.items() if a[0] == SIG_IGN}
        elif what == "exit":
            self._ended(task, ts)

    def on_fork(self, parent, child, ts: int) -> None:
        if child.pid not in self.actions and parent.pid in self.actions:
            self.actions[child.pid] = dict(self.actions[parent.pid])   # a fork copies them
        flags = self._clone_flags.get(parent.tid, 0) & ~CSIGNAL
        self.source.task_made(parent, child, ts, flags, _read_oom_score_adj(child.tid))

    def _ended(self, task, ts: int) -> None:
        tid, pid = task.tid, task.pid
        if tid not in self._own_end:
            self.source.signal_delivered(task, ts, SIGKILL, 0, 0, SIG_DFL, 0)
        self._own_end.discard(tid)
        self._setting.pop(tid, None)
        self._clone_flags.pop(tid, None)
        tids = self._alive.get(pid, set())
        tids.discard(tid)
        last = not tids
        if last:
            self._alive.pop(pid, None)
            self.actions.pop(pid, None)
        self.source.task_ended(task, ts, self._prio.pop(tid, 120), last)

    # -- signals and their actions ---------------------------------------------------------------
    def on_signal(self, task, sig: int, siginfo: bytes, ts: int) -> None:
        errno = code = 0
        if len(siginfo) >= _SIGINFO.size:
            _, errno, code = _SIGINFO.unpack_from(siginfo)
        handler, flags = self.actions.get(task.pid, {}).get(sig, (SIG_DFL, 0))
        if handler == SIG_IGN or (handler == SIG_DFL and ignored_by_default(sig)):
            return                # never queued without a tracer: the kernel records none
        if sig == SIGKILL or (handler == SIG_DFL and kills_by_default(sig)):
            self._own_end.add(task.tid)
        self.source.signal_delivered(task, ts, sig, errno, code, handler, flags)

    def on_syscall(self, kind: int, task, nr: int, args: tuple, ret: int, ts: int) -> None:
        if nr in self._exits:
            if kind == ENTER:
                self._own_end.add(task.tid)
            return
        if nr in self._made_by:
            self._clone_flags[task.tid] = self._made_by[nr]
            return
        if nr == self._clone:
            self._clone_flags[task.tid] = args[0]
            return
        if nr == self._clone3:
            raw = task.process.read(args[0], _U64.size) if args[0] else None
            self._clone_flags[task.tid] = (_U64.unpack(raw)[0] if raw is not None
                                           and len(raw) == _U64.size else 0)
            return
        if kind == ENTER:
            sig, act = args[0], args[1]
            raw = task.process.read(act, _SIGACTION.size) if act else None
            if raw is not None and len(raw) == _SIGACTION.size:
                self._setting[task.tid] = (sig, *_SIGACTION.unpack(raw))
            else:
                self._setting.pop(task.tid, None)
        else:
            got = self._setting.pop(task.tid, None)
            if got is not None and ret == 0:
                self.actions.setdefault(task.pid, {})[got[0]] = (got[1], got[2])


class TaskEventsSource(Source):
    """``signal:signal_deliver`` and ``sched:sched_process_exit`` of the traced processes."""

    systems = (SIGNAL_DELIVER[0], PROCESS_EXIT[0], NEW_TASK[0])

    def __init__(self, arch: Arch | None = None):
        self.arch = arch or host()
        self.session: Session | None = None
        self._deliver: EventState | None = None
        self._exit: EventState | None = None
        self._new: EventState | None = None

    def formats(self):
        return task_formats()

    def claims(self, pattern) -> bool:
        return bool(pattern.select(task_formats(), list(self.systems)))

    def prepare(self, session: "Session", specs=(), consumers: int = 0) -> None:
        self.session = session
        for state in session.states.values():
            key = (state.format.system, state.format.name)
            if key == SIGNAL_DELIVER:
                self._deliver = state
            elif key == PROCESS_EXIT:
                self._exit = state
            elif key == NEW_TASK:
                self._new = state

    def stop_handler(self) -> TaskStops | None:
        if self._deliver is None and self._exit is None and self._new is None:
            return None
        return TaskStops(self, self.arch)

    # -- records ------------------------------------------------------------------------------
    def signal_delivered(self, task, ts: int, sig: int, errno: int, code: int, handler: int,
                         flags: int) -> None:
        state = self._deliver
        if state is None:
            return
        values = {"common_type": state.format.id, "common_flags": 0,
                  "common_preempt_count": 0, "common_pid": task.tid, "sig": sig,
                  "errno": errno, "code": code, "sa_handler": handler, "sa_flags": flags}
        self.session.emit(state, values, ts, task.cpu, task.comm)

    def task_made(self, parent, child, ts: int, flags: int, oom_score_adj: int) -> None:
        state = self._new
        if state is None:
            return
        values = {"common_type": state.format.id, "common_flags": 0,
                  "common_preempt_count": 0, "common_pid": parent.tid, "pid": child.tid,
                  "comm": parent.comm.encode()[:15], "clone_flags": flags,
                  "oom_score_adj": oom_score_adj}
        self.session.emit(state, values, ts, parent.cpu, parent.comm)

    def task_ended(self, task, ts: int, prio: int, group_dead: bool) -> None:
        state = self._exit
        if state is None:
            return
        values = {"common_type": state.format.id, "common_flags": 0,
                  "common_preempt_count": 0, "common_pid": task.tid,
                  "comm": task.comm.encode()[:15], "pid": task.tid, "prio": prio,
                  "group_dead": int(group_dead)}
        self.session.emit(state, values, ts, task.cpu, task.comm)
