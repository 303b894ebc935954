"""The process engine: launch or attach, follow every thread and child, dispatch each stop.

One :class:`Engine` owns its tracees; every ptrace request comes from the thread that calls
:meth:`Engine.launch`, :meth:`Engine.attach` and :meth:`Engine.run` (ptrace demands it).  It
knows nothing of trace events: sources register :class:`~usertrace.ptrace.handlers.StopHandler`
objects, and the engine waits for stops and hands each to the handlers that asked for it
(syscall stops by number, breakpoint traps, new tasks, exec, exit).

What it does, as strace does it:

* tracees are seized (``PTRACE_SEIZE``) with TRACESYSGOOD, TRACEFORK, TRACEVFORK, TRACECLONE
  and TRACEEXEC; TRACESECCOMP and EXITKILL as well for a command launched under a seccomp
  filter (a filter left behind without its tracer would fail the traced calls with ENOSYS);
  the filter returns TRACE for the union of the syscalls the handlers asked for;
* enter and exit come from ``PTRACE_GET_SYSCALL_INFO``, which tells an entry, an exit and a
  seccomp stop apart; the number is kept per task between enter and exit (an exit stop does
  not carry it) and read from the arch's ``nr_reg`` when the entry was not seen;
* group-stops (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) are left in force with ``PTRACE_LISTEN``;
  every other signal is delivered as it came (a SIGTRAP only when no handler claims it);
* an exec by a thread that is not the leader takes the leader's tid: its state moves along;
* the launched command is hidden until the entry of its exec: what runs before is ours;
* every pending stop is served in turn: after a blocking wait, the stops of the other tasks
  that are already there are collected too, so a busy thread cannot starve the others.

Threads are :class:`~usertrace.ptrace.task.Task` objects (``tid``, ``pid`` = thread group,
``comm``, ``cpu``); each belongs to a :class:`~usertrace.ptrace.process.Process`, the address
space its thread group shares.

The cpu and comm of a task come from /proc/TID/stat (field 39, ``processor``, and field 2).
Reading it costs about 5 µs here, as much as the rest of a stop, so by default
(``cpu="cached"``) it is read when a task appears, at exec, after ``prctl(PR_SET_NAME)`` (when
seen) and every ``cpu_refresh``-th reported event; ``cpu="exact"`` reads it at every reported
event through a descriptor kept open (one pread).  A stopped task does not run, so the value
read at a stop is where the task last ran.

Speed: with ``follow_cpu`` (default) the tracer keeps itself on the CPU of the task it serves,
as :mod:`usertrace.ptrace.placement` explains; never the tracee's affinity.

**Compiled stops.**  Where the ``_ptrace`` extension is built, a handler may give the records
of its syscall events in a form the extension makes (:attr:`StopHandler.compiled_syscalls`:
a spec per syscall number), and the loop then hands the waiting to ``_ptrace.stops``: it
waits, reads each syscall stop (``PTRACE_GET_SYSCALL_INFO``), makes the record, keeps
``nr``/``args``/``countdown`` of the task as this loop does, resumes the task with the same
request, and comes back with the records (written by the handler's ``write_records``) when it
holds 256 of them or has served 256 stops (so that signal handlers run), or with the first
stop it does not serve: any stop but a syscall stop of a known task, a syscall whose event
has no spec (or whose handler is not the compiling one), ``prctl``'s exit, a call of another
arch, an exit whose entry was not seen.  A task due for its cpu refresh has its stat line
read in C as :meth:`_refresh` reads it; the co-location is told (:meth:`_seen`) only when
the terms it last gave say so (:meth:`_refresh_terms`: the task is off the tracer's cpu, or
the tracer's time to look at its own wait has come), so that a refresh costs no Python.
The stops it does not serve take this loop as before, so the rules above stay written here
once; the stops collected with one (several tasks stopped at once) go back to
``_ptrace.stops`` after it, first in its queue.  Meanwhile the fields of the tasks it serves
are kept in C and written back to their :class:`Task` before any Python code runs (the
engine told where a task runs, the loop's return).
The specs (``(event id, nargs, kind, arg, count arg, size)`` at the entry, ``(event id,
kind, arg, min ret, size)`` at the exit; kinds ``handlers.REC_*``) are made by
:mod:`usertrace.sources.syscalls.source`.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import signal
import threading
import time
from typing import Iterable

from collections import deque

from ..arch import Arch, host
from . import libc as L
from .errors import TraceError
from .handlers import ENTER, EXIT, StopHandler
from .launch import FirstInterrupt, read_child_error, resolve_command, spawn_stopped
from .placement import REFRESH_WHEN_IDLE, Colocation
from .process import Process
from .procfs import (list_threads, original_environ, parse_stat, read_ppid, read_stat,
                     read_tgid, traceable_tgid)
from .seccomp import build_filter
from .status import ExitStatus
from .task import Task

PR_SET_NAME = 15
STOPS_BATCH = 256          # records (or stops) the compiled stop loop serves before it comes back
STOPS_GIVEN = 64           # stops collected before, given to it at once (its queue, _ptrace.c)
STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

_SYSCALL_STOP = signal.SIGTRAP | 0x80                                  # status >> 8
_SECCOMP_STOP = signal.SIGTRAP | (L.PTRACE_EVENT_SECCOMP << 8)
_BASE_OPTIONS = (L.PTRACE_O_TRACESYSGOOD | L.PTRACE_O_TRACEEXEC)
_FORK_OPTIONS = (L.PTRACE_O_TRACEFORK | L.PTRACE_O_TRACEVFORK | L.PTRACE_O_TRACECLONE)

# The ptrace of every stop: compiled where it is built (libc.fast_ptrace).
_fast_ptrace = L.fast_ptrace

def _mask_of(numbers: Iterable[int] | None, max_nr: int) -> bytearray:
    mask = bytearray(max_nr + 1)
    if numbers is None:
        mask[:] = b"\1" * (max_nr + 1)
    else:
        for nr in numbers:
            if 0 <= nr <= max_nr:
                mask[nr] = 1
    return mask


def _wait_while(waiting: set[int]):
    """``(tid, status)`` of every stop or end collected while ``waiting`` (which the caller
    shrinks) is not empty, or until no child is left."""
    while waiting:
        try:
            yield os.waitpid(-1, L.WALL)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _union(sets: list) -> set[int] | None:
    """The union of syscall sets, None (all) when any of them is None."""
    out: set[int] = set()
    for s in sets:
        if s is None:
            return None
        out |= set(s)
    return out


def _calls(handlers: list[StopHandler], which: str, max_nr: int) -> list:
    """Per syscall number, what to call at its ``which`` (``enter_syscalls`` or
    ``exit_syscalls``) stops: the on_syscall of the one handler that asked, a call of each
    when several did, None when none did."""
    asked = [(h.on_syscall, _mask_of(getattr(h, which), max_nr)) for h in handlers]
    shared: dict[tuple, object] = {}
    out: list = [None] * (max_nr + 1)
    for nr in range(max_nr + 1):
        wanted = tuple(call for call, mask in asked if mask[nr])
        if len(wanted) == 1:
            out[nr] = wanted[0]
        elif wanted:
            out[nr] = shared.get(wanted) or shared.setdefault(wanted, _each(wanted))
    return out


def _each(calls: tuple):
    def on_syscall(kind, task, nr, args, ret, ts):
        for call in calls:
            call(kind, task, nr, args, ret, ts)
    return on_syscall


class Engine:
    """Launch commands or attach to processes, and dispatch their stops to handlers.

    ``follow_forks`` False traces only the threads launched or attached, not children or
    new threads.  ``cpu``, ``cpu_refresh`` and ``follow_cpu``: see the module's docstring.
    """

    def __init__(self, *, arch: Arch | None = None, follow_forks: bool = True,
                 cpu: str = "cached", cpu_refresh: int = 64, follow_cpu: bool = True):
        if cpu not in ("cached", "exact"):
            raise ValueError(f"cpu must be 'cached' or 'exact', not {cpu!r}")
        self.arch = arch or host()
        self.handlers: list[StopHandler] = []
        self._ready = False
        self._mask = self._xmask = bytearray(self.arch.max_nr + 1)
        self._enter_calls = self._exit_calls = [None] * (self.arch.max_nr + 1)
        self._task_handlers: list[StopHandler] = []
        self._fork_handlers: list[StopHandler] = []
        self._trap_handlers: list[StopHandler] = []
        self._signal_handlers: list[StopHandler] = []
        self._siginfo = ctypes.create_string_buffer(128)
        self._options = _BASE_OPTIONS | (_FORK_OPTIONS if follow_forks else 0)
        self._exact_cpu = cpu == "exact"
        self._cpu_refresh = max(int(cpu_refresh), 1)
        self._coloc = Colocation(bool(follow_cpu))
        self.tasks: dict[int, Task] = {}
        self.processes: dict[int, Process] = {}
        self.seen_pids: set[int] = set()               # every process traced, gone ones too
        self._hidden: dict[int, Task] = {}
        self._idle_req = L.PTRACE_SYSCALL      # PTRACE_CONT under a seccomp filter
        self._exitkill = False
        self._launched: int | None = None
        self._launch_path = ""
        self._errfd = -1
        self._exec_seen = False
        self._status: ExitStatus | None = None
        self._stop_sig = 0
        self._interrupt = FirstInterrupt()             # the first SIGINT is the command's
        self._held: list[tuple[int, int]] = []       # stops collected, not resumed (an error)
        self.compiled_records = 0                      # records made by the compiled stops
        self._stops = None                             # _ptrace.stops, where it serves
        self._compiling: list[StopHandler] = []        # the handler that gives its specs
        self._pending: deque = deque()                 # stops collected, not served yet
        self._early: dict[int, tuple[int, int]] = {}   # first stops of children, parent unseen
        self._attached = False
        self._info_size = self.arch.syscall_info_size
        self._buf = bytearray(self._info_size)
        self._cbuf = (ctypes.c_char * self._info_size).from_buffer(self._buf)
        self._msg = ctypes.c_ulong(0)
        self._nr_offset = self.arch.reg_offset(self.arch.nr_reg)
        nr = self.arch.nr
        self._nr_prctl = nr["prctl"]
        self._nr_exec = (nr["execve"], nr["execveat"])

    def requeue(self, tid: int, status: int) -> None:
        """A stop or end of ``tid`` that a handler collected while it worked on the task
        (a single-step): the loop serves it next."""
        self._pending.appendleft((tid, status, time.monotonic_ns()))

    # -- handlers ---------------------------------------------------------------------------
    def add(self, handler: StopHandler) -> StopHandler:
        """Register a source's handler; before the engine launches or attaches."""
        if self._ready:
            raise TraceError("handlers are added before the engine launches or attaches")
        self.handlers.append(handler)
        return handler

    def stopping_syscalls(self) -> set[int] | None:
        """The syscall numbers some handler wants a stop at (None: all)."""
        return _union([h.enter_syscalls for h in self.handlers]
                      + [h.exit_syscalls for h in self.handlers])

    def _prepare(self) -> None:
        """Fold the handlers' needs into the masks and callbacks of the loop (once)."""
        if self._ready:
            return
        self._ready = True
        max_nr = self.arch.max_nr
        hs = self.handlers
        self._mask = _mask_of(_union([h.enter_syscalls for h in hs]), max_nr)
        self._xmask = _mask_of(_union([h.exit_syscalls for h in hs]), max_nr)
        self._task_handlers = [h for h in hs if type(h).on_task is not StopHandler.on_task]
        self._fork_handlers = [h for h in hs if type(h).on_fork is not StopHandler.on_fork]
        self._trap_handlers = [h for h in hs if h.wants_traps]
        self._signal_handlers = [h for h in hs if h.wants_signals]
        self._enter_calls = _calls(hs, "enter_syscalls", max_nr)
        self._exit_calls = _calls(hs, "exit_syscalls", max_nr)
        self._stops = L.compiled("stops") if not self._exact_cpu else None
        self._compiling = [h for h in hs if h.compiled_syscalls is not None]

    def _stops_plan(self) -> tuple | None:
        """The plan of ``_ptrace.stops`` (see "compiled stops") but its last item, the
        refresh terms as they stand at each call; None when nothing can be served that
        way."""
        if self._stops is None or len(self._compiling) != 1:
            return None
        h = self._compiling[0]
        enter, exit_, _ = h.compiled_syscalls
        mine = h.on_syscall

        def column(calls, specs):
            return tuple(None if c is None else specs.get(nr, False) if c is mine else False
                         for nr, c in enumerate(calls))
        after = bytearray(self._xmask)
        after[self._nr_prctl] = 1
        sizes = [spec[-1] for spec in list(enter.values()) + list(exit_.values())]
        return (column(self._enter_calls, enter), column(self._exit_calls, exit_), bytes(after),
                self._idle_req, self.arch.audit_arch, self._nr_prctl, STOPS_BATCH,
                max(sizes, default=0), self._seen)

    # -- starting ---------------------------------------------------------------------------
    def launch(self, argv: list[str], env=None, cwd: str | None = None,
               seccomp: bool = True) -> int:
        """Start ``argv`` under the tracer and return its pid once it has exec'd.

        ``env`` None hands the command the environment this process was started with.
        With ``seccomp`` (and handlers that do not want every syscall), the command runs
        under a seccomp filter that stops it only at the syscalls the handlers asked for
        (:mod:`usertrace.ptrace.seccomp`); without, it stops at every syscall as an attached
        process does.  Raises TraceError when the command cannot run.
        """
        if not argv:
            raise TraceError("no command to run")
        if self._launched is not None:
            raise TraceError("a tracer launches one command")
        self._prepare()
        stopping = self.stopping_syscalls()
        if stopping is None and sum(self._xmask) < len(self._xmask) // 2:
            # every entry, few exits: a filter that traces every call makes the entry a
            # seccomp stop, after which a call whose exit nobody wants runs on (PTRACE_CONT):
            # one stop per call instead of two
            stopping = set(range(len(self._mask)))
        seccomp_filter = None
        if seccomp and stopping is not None:
            if self.tasks:
                raise TraceError("a seccomp filter needs a tracer of its own: "
                                 "launch before attaching, or without a filter")
            seccomp_filter = build_filter(stopping, self.arch)
        self.seccomp_filter = seccomp_filter
        if env is None:
            env = original_environ()
        path = resolve_command(argv[0], env)
        pid, errfd = spawn_stopped(path, list(argv), env, cwd, seccomp_filter,
                                   os.sched_getaffinity(0),
                                   (os.sched_getscheduler(0), os.sched_getparam(0)))
        options = self._options
        if seccomp_filter is not None:
            options |= L.PTRACE_O_TRACESECCOMP | L.PTRACE_O_EXITKILL
        if L.ptrace(L.PTRACE_SEIZE, pid, None, options) != 0:
            err = L.get_errno()
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(errfd)
            raise TraceError(f"cannot trace '{path}': ptrace(PTRACE_SEIZE): {os.strerror(err)}",
                             err)
        if seccomp_filter is not None:
            self._idle_req = L.PTRACE_CONT
            self._exitkill = True
        task = Task(pid, pid)
        task.hidden = True
        self._hidden[pid] = task
        self._launched = pid
        self._launch_path = path
        self._errfd = errfd
        os.kill(pid, signal.SIGCONT)
        try:
            self._loop(launching=True)
        except BaseException:
            self._kill_all()
            raise
        finally:
            os.set_blocking(errfd, False)
            message = read_child_error(errfd)
            os.close(errfd)
            self._errfd = -1
        if not self._exec_seen:
            self._kill_all()
            raise TraceError(f"cannot run '{path}': {message or 'it ended before its exec'}")
        return pid

    def attach(self, pids: Iterable[int]) -> list[int]:
        """Seize every thread of each process; return the thread ids now traced.

        Raises TraceError (and lets go of what it took) for a pid that does not exist or
        may not be traced.
        """
        if self._exitkill:
            raise TraceError("cannot attach in a session whose command runs under a seccomp filter")
        self._prepare()
        taken: list[int] = []
        try:
            for pid in pids:
                taken += self._attach_process(int(pid))
        except BaseException:
            self._release(taken)
            raise
        self._attached = True
        return taken

    def _attach_process(self, pid: int) -> list[int]:
        tgid = traceable_tgid(pid)
        taken: list[int] = []
        seen: set[int] = set()
        options = self._options
        while True:
            fresh = [t for t in list_threads(tgid) if t not in seen]
            if not fresh:
                break
            for tid in fresh:
                seen.add(tid)
                if tid in self.tasks:
                    continue
                if L.ptrace(L.PTRACE_SEIZE, tid, None, options) != 0:
                    err = L.get_errno()
                    if err == errno_mod.ESRCH:
                        continue          # the thread ended meanwhile
                    self._release(taken)
                    why = os.strerror(err)
                    if err == errno_mod.EPERM:
                        why += (" (another tracer, a different user, or "
                                "/proc/sys/kernel/yama/ptrace_scope)")
                    raise TraceError(f"cannot attach to process {pid}: {why}", err)
                L.ptrace(L.PTRACE_INTERRUPT, tid, None, None)
                task = Task(tid, tgid)
                self._refresh(task)
                self.tasks[tid] = task
                taken.append(tid)
                self._joined(task, time.monotonic_ns())
        if not taken and not seen:
            raise TraceError(f"process {pid}: no such process", errno_mod.ESRCH)
        return taken

    # -- running ----------------------------------------------------------------------------
    def run(self, handle_signals: bool = True) -> ExitStatus:
        """Trace until every tracee is gone (or a stop is requested); how it ended.

        With ``handle_signals`` (main thread only), SIGINT, SIGTERM, SIGHUP, SIGQUIT and
        SIGPIPE to the tracer let go of the tracees as strace does: attached processes are
        detached and keep running; a launched command gets the signal (after SIGCONT) and is
        detached, or, under a seccomp filter, is killed with its children.  The status then
        says ``detached`` and carries that signal (strace then re-raises it on itself:
        :meth:`ExitStatus.exit_like`).

        The first SIGINT while a launched command runs is the command's, as with ``strace -o
        FILE COMMAND``: the command gets it (from the terminal, which sends it to the whole
        foreground process group, or from the tracer when it came from elsewhere) and the
        tracing goes on, so a command that cleans up is traced while it does and its exit
        status is passed on.  A second SIGINT, or any of the others, lets go as above.
        """
        saved = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                        signal.SIGPIPE):
                saved[sig] = signal.signal(sig, self._on_signal)
        self._coloc.start()
        for task in self.tasks.values():      # join the first task's CPU right away
            self._coloc.seen(task.cpu, task.tid)
            break
        try:
            self._loop()
            if self._stop_sig:
                self._let_go()
        except BaseException:
            self._let_go()
            raise
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            self._coloc.stop()
        if self._stop_sig:
            return ExitStatus(None, self._stop_sig, False, detached=True)
        if self._status is not None:
            return self._status
        return ExitStatus(0)

    def request_stop(self, sig: int = signal.SIGTERM) -> None:
        """Let go of every tracee as soon as possible (from the tracer's thread, e.g. a
        signal handler): run() returns with a status that carries ``sig``."""
        if self._stop_sig:
            return
        self._stop_sig = sig
        for tid in list(self.tasks) + list(self._hidden):
            _fast_ptrace(L.PTRACE_INTERRUPT, tid, 0, 0)

    def _on_signal(self, sig, frame):
        launched = self._launched
        if not self._interrupt.take(sig, launched, launched in self.tasks):
            self.request_stop(sig)

    # -- the loop ---------------------------------------------------------------------------
    def _loop(self, launching: bool = False) -> None:
        tasks = self.tasks
        hidden = self._hidden
        waitpid = os.waitpid
        now = time.monotonic_ns
        ptrace = _fast_ptrace
        cbuf = self._cbuf
        buf = self._buf
        info_size = self._info_size
        unpack_entry = self.arch.syscall_entry.unpack_from
        unpack_exit = self.arch.syscall_exit.unpack_from
        xmask = self._xmask
        maxnr = len(xmask)
        enter_calls = self._enter_calls
        exit_calls = self._exit_calls
        refresh = self._refresh
        idle = self._idle_req
        nr_prctl = self._nr_prctl
        SYSCALL = L.PTRACE_SYSCALL
        SIGTRAP = signal.SIGTRAP
        traps = bool(self._trap_handlers)
        trap = self._trap
        serve_trap = self._trap_handlers[0].serve_trap if len(self._trap_handlers) == 1 \
            else None
        resume_req = self._resume_req
        GSI = L.PTRACE_GET_SYSCALL_INFO
        WALL = L.WALL
        WALL_NOHANG = L.WALL | os.WNOHANG
        native = self.arch.audit_arch
        # Stops collected and not yet resumed: served in the order they came, so that every
        # task that is stopped gets its turn before a busy one is served again.
        pending = self._pending
        plan = None if launching else self._stops_plan()
        stops = self._stops
        made: list = []                       # what the compiled stops made: cpu, ts, record
        write_records = self._compiling[0].compiled_syscalls[2] if plan else None
        cur = 0           # the tid of a stop collected and not resumed yet
        status = 0
        try:
            while tasks or hidden or self._early:
                if self._stop_sig:
                    return
                if pending and plan is None:
                    tid, status, ts = pending.popleft()
                elif plan is not None:
                    # the stops already collected go to the loop first (it hands back those
                    # it does not serve, in their order)
                    given = [pending.popleft() for _ in range(min(len(pending), STOPS_GIVEN))]
                    try:
                        got = stops(tasks, plan + (self._refresh_terms(),), made,
                                    self._held, given)
                    except ChildProcessError:
                        tasks.clear()
                        hidden.clear()
                        return
                    finally:
                        if made:
                            self.compiled_records += len(made) // 3
                            write_records(made)
                            made.clear()
                    if not got:
                        continue
                    tid, status, ts = got[0]
                    pending.extendleft(reversed(got[1:]))     # before any not given
                else:
                    try:
                        tid, status = waitpid(-1, WALL)
                    except ChildProcessError:
                        tasks.clear()
                        hidden.clear()
                        return
                    ts = now()
                    if len(tasks) > 1:
                        while True:
                            try:
                                more, mstatus = waitpid(-1, WALL_NOHANG)
                            except ChildProcessError:
                                break
                            if not more:
                                break
                            pending.append((more, mstatus, now()))
                cur = tid
                t = tasks.get(tid)
                if t is not None and status & 0xFF == 0x7F:
                    hi = status >> 8
                    if (hi == _SYSCALL_STOP or hi == _SECCOMP_STOP) and ptrace(GSI, tid, info_size, cbuf) > 0:
                        op = buf[0]
                        if op == 2:                                  # syscall exit
                            arch, ret = unpack_exit(buf)
                            nr = t.nr
                            t.nr = -1
                            if nr == -1:
                                nr = self._orig_nr(tid) if arch == native else -2
                            if nr == nr_prctl and t.args and t.args[0] == PR_SET_NAME:
                                refresh(t)
                            call = exit_calls[nr] if 0 <= nr < maxnr else None
                            if call is not None:
                                if t.countdown:
                                    t.countdown -= 1
                                else:
                                    refresh(t)
                                call(EXIT, t, nr, t.args, ret, ts)
                            ptrace(idle, tid, 0, 0)
                            cur = 0
                            continue
                        if op == 1 or op == 3:                       # entry, seccomp
                            v = unpack_entry(buf)
                            nr = v[1]
                            args = v[2:]
                            t.args = args
                            if v[0] == native:
                                call = enter_calls[nr] if nr < maxnr else None
                                if call is not None:
                                    if t.countdown:
                                        t.countdown -= 1
                                    else:
                                        refresh(t)
                                    call(ENTER, t, nr, args, 0, ts)
                                if idle == SYSCALL or (nr < maxnr and xmask[nr]) or nr == nr_prctl:
                                    t.nr = nr
                                    ptrace(SYSCALL, tid, 0, 0)
                                else:                 # under seccomp, no exit wanted: one stop
                                    t.nr = -1
                                    ptrace(idle, tid, 0, 0)
                            else:
                                t.nr = -2
                                ptrace(SYSCALL, tid, 0, 0)
                            cur = 0
                            continue
                    if hi == SIGTRAP and traps and not t.new_child:      # a breakpoint
                        if t.countdown:
                            t.countdown -= 1
                        else:
                            refresh(t)            # where it runs: co-location follows it
                        req = resume_req(t)
                        if serve_trap is None or not serve_trap(t, ts, req):
                            ptrace(req, tid, 0, trap(t, ts))
                        cur = 0
                        continue
                stop = self._slow_stop(tid, status, ts, t, launching)
                cur = 0
                if stop:
                    return
        except BaseException:
            if cur:
                self._held.append((cur, status))
            raise

    def _slow_stop(self, tid: int, status: int, ts: int, t: Task | None, launching: bool) -> bool:
        """Everything but a plain syscall stop of a known task; True ends the loop."""
        if t is None:
            t = self._hidden.get(tid)
            if t is not None:
                return self._hidden_stop(t, status, ts, launching)
            if status & 0xFF != 0x7F:
                return False                  # an end we had no task for (already gone)
            # A new child or thread whose first stop came before its parent's fork or clone
            # event: held until that event says whose it is (its process inherits what the
            # parent's has), or until the parent is gone.
            self._early[tid] = (status, ts)
            return False
        if status & 0xFF != 0x7F:
            self._task_gone(t, status)
            return launching and self._launched not in self.tasks
        sig = (status >> 8) & 0xFF
        event = status >> 16
        if t.new_child:
            self._first_stop_of_child(t, ts)
        if event == 0:
            if sig == _SYSCALL_STOP:          # no syscall info (the task went away meanwhile)
                self._resume(t, 0)
            elif sig == signal.SIGTRAP and self._trap_handlers:
                self._resume(t, self._trap(t, ts))
            else:                             # signal-delivery-stop: deliver it
                if self._signal_handlers:
                    self._tell_signal(t, sig, ts)
                self._resume(t, sig)
            return False
        if event == L.PTRACE_EVENT_STOP:
            if sig in STOP_SIGNALS:           # group-stop: stay stopped until SIGCONT
                t.listening = True
                _fast_ptrace(L.PTRACE_LISTEN, tid, 0, 0)
            else:                             # interrupt, first stop, end of a group-stop
                t.listening = False
                self._resume(t, 0)
            return False
        if event in (L.PTRACE_EVENT_FORK, L.PTRACE_EVENT_VFORK, L.PTRACE_EVENT_CLONE):
            child = self._event_msg(tid)
            if child and child not in self.tasks:
                ct = self._adopt(child, t)
                if ct is not None:
                    for h in self._fork_handlers:
                        h.on_fork(t, ct, ts)
                early = self._early.pop(child, None)
                if early is not None and ct is not None:
                    self._slow_stop(child, early[0], early[1], ct, False)
            self._resume(t, 0)
            return False
        if event == L.PTRACE_EVENT_EXEC:
            t = self._exec(t, tid, ts)
            self._resume(t, 0)
            return launching and tid == self._launched
        # PTRACE_EVENT_SECCOMP without syscall info, or an event we did not ask for.
        _fast_ptrace(L.PTRACE_SYSCALL if event == L.PTRACE_EVENT_SECCOMP else self._resume_req(t),
                     tid, 0, 0)
        return False

    def _trap(self, t: Task, ts: int) -> int:
        """A SIGTRAP signal-delivery-stop: a breakpoint of a handler, or the program's own
        trap; the signal to deliver as the task resumes."""
        for h in self._trap_handlers:
            deliver = h.on_trap(t, ts)
            if deliver >= 0:
                return deliver
        return signal.SIGTRAP

    def _tell_signal(self, t: Task, sig: int, ts: int) -> None:
        """A signal-delivery-stop, to the handlers that asked (with its siginfo)."""
        buf = self._siginfo
        got = _fast_ptrace(L.PTRACE_GETSIGINFO, t.tid, 0, buf) == 0
        info = buf.raw if got else b""
        for h in self._signal_handlers:
            h.on_signal(t, sig, info, ts)

    def _resume_req(self, t: Task) -> int:
        # Under a seccomp filter a task runs with PTRACE_CONT, except inside a traced call
        # (between its seccomp stop and its exit stop).
        return L.PTRACE_SYSCALL if self._idle_req == L.PTRACE_SYSCALL or t.nr != -1 else L.PTRACE_CONT

    def _resume(self, t: Task, sig: int) -> None:
        _fast_ptrace(self._resume_req(t), t.tid, 0, sig)

    def _hidden_stop(self, t: Task, status: int, ts: int, launching: bool) -> bool:
        """The launched child between its fork and its exec: nothing is reported, but its
        execve enter (the first record the kernel would have for it under the tracer)."""
        tid = t.tid
        if status & 0xFF != 0x7F:
            del self._hidden[tid]
            self._status = ExitStatus.from_wait(status)
            return True
        sig = (status >> 8) & 0xFF
        event = status >> 16
        hi = status >> 8
        if hi in (_SYSCALL_STOP, _SECCOMP_STOP) and \
                _fast_ptrace(L.PTRACE_GET_SYSCALL_INFO, tid, self._info_size, self._cbuf) > 0:
            op = self._buf[0]
            if op in (1, 3):
                v = self.arch.syscall_entry.unpack_from(self._buf)
                t.nr, t.args = v[1], v[2:]
                if v[0] == self.arch.audit_arch and v[1] in self._nr_exec:
                    self._unhide(t, ts)
                    call = self._enter_calls[v[1]]
                    if call is not None:
                        self._refresh(t)
                        call(ENTER, t, v[1], t.args, 0, ts)
                _fast_ptrace(L.PTRACE_SYSCALL, tid, 0, 0)
            else:
                t.nr = -1
                _fast_ptrace(self._idle_req, tid, 0, 0)
            return False
        if event == L.PTRACE_EVENT_EXEC:
            self._unhide(t, ts)               # its process is born with the new image
            t = self._exec(t, tid, ts, fresh=True)
            self._resume(t, 0)
            return launching
        if event == L.PTRACE_EVENT_STOP and sig in STOP_SIGNALS:
            t.listening = True
            _fast_ptrace(L.PTRACE_LISTEN, tid, 0, 0)
            return False
        self._resume(t, sig if event == 0 else 0)
        return False

    def _unhide(self, t: Task, ts: int) -> None:
        if self._hidden.pop(t.tid, None) is not None:
            t.hidden = False
            self.tasks[t.tid] = t
            self._joined(t, ts)

    # -- tasks and processes ----------------------------------------------------------------
    def _process_of(self, t: Task) -> Process:
        proc = self.processes.get(t.pid)
        if proc is None:
            proc = self.processes[t.pid] = Process(t.pid)
            self.seen_pids.add(t.pid)
        proc.tids.add(t.tid)
        t.process = proc
        return proc

    def _joined(self, t: Task, ts: int) -> None:
        """A task is traced from now on: tell the handlers."""
        if t.process is None:
            self._process_of(t)
        for h in self._task_handlers:
            h.on_task("new", t, ts)

    def _adopt(self, tid: int, parent: Task | None) -> Task | None:
        """A task the kernel attached for us (a fork, vfork or clone of a tracee); the
        handlers hear of it at its first stop (:meth:`_first_stop_of_child`)."""
        tgid = read_tgid(tid)
        if tgid is None:
            return None
        t = Task(tid, tgid)
        fresh = tgid not in self.processes
        if parent is not None:
            t.comm, t.cpu = parent.comm, parent.cpu
            t.parent_tid = parent.tid
        t.new_child = True
        self.tasks[tid] = t
        proc = self._process_of(t)
        if fresh and parent is not None and parent.process is not proc:
            proc.parent = parent.process
        return t

    def _first_stop_of_child(self, t: Task, ts: int) -> None:
        """The first stop of a new child or thread: where it runs, what it returns from."""
        t.new_child = False
        self._refresh(t)
        t.start_nr = self._orig_nr(t.tid)
        self._joined(t, ts)

    def _exec(self, t: Task, tid: int, ts: int, fresh: bool = False) -> Task:
        """PTRACE_EVENT_EXEC: the execing thread may have taken the leader's tid."""
        former = self._event_msg(tid)
        if former and former != tid:
            execer = self.tasks.pop(former, None)
            if execer is not None:
                if execer.process is not None:
                    execer.process.tids.discard(former)
                    execer.process.tids.add(tid)
                execer.tid = tid
                self.tasks[tid] = execer
                t = execer
        if t.tid == self._launched:
            self._exec_seen = True
        self._refresh(t)
        proc = t.process or self._process_of(t)
        if not fresh:
            proc.exec_done()
        for h in self._task_handlers:
            h.on_task("exec", t, ts)
        return t

    def _flush_early(self) -> None:
        """Serve held first stops whose parent will not report (gone, or not traced)."""
        for tid in list(self._early):
            ppid = read_ppid(tid)
            if ppid is None or ppid not in self.processes or not self.processes[ppid].tids:
                status, ts = self._early.pop(tid)
                t = self._adopt(tid, None)
                if t is not None:
                    self._slow_stop(tid, status, ts, t, False)

    def _task_gone(self, t: Task, status: int) -> None:
        if self._early:
            self._flush_early()
        self.tasks.pop(t.tid, None)
        if t.stat_fd >= 0:
            os.close(t.stat_fd)
            t.stat_fd = -1
        if t.tid == self._launched:
            self._status = ExitStatus.from_wait(status)
        t.exit_status = status
        if not t.new_child:                   # the handlers heard of it
            for h in self._task_handlers:
                h.on_task("exit", t, time.monotonic_ns())
        proc = t.process
        if proc is not None:
            proc.tids.discard(t.tid)
            if not proc.tids and self.processes.get(proc.pid) is proc:
                del self.processes[proc.pid]
                proc.close()

    def _refresh(self, t: Task) -> None:
        """Read comm and cpu of a task; move the tracer to that cpu (follow_cpu)."""
        if self._exact_cpu:
            if t.stat_fd < 0:
                try:
                    t.stat_fd = os.open(f"/proc/{t.tid}/stat", os.O_RDONLY)
                except OSError:
                    return
            try:
                got = parse_stat(os.pread(t.stat_fd, 1024, 0))
            except OSError:
                got = None
        else:
            t.countdown = self._refresh_every()
            got = read_stat(t.tid)
        if got is None:
            return
        t.comm, t.cpu = got
        self._coloc.seen(t.cpu, t.tid)

    def _refresh_every(self) -> int:
        """Reported events of a task between two reads of its cpu."""
        return REFRESH_WHEN_IDLE if self._coloc.idle else self._cpu_refresh

    def _refresh_terms(self) -> tuple[int, int, int, int]:
        """What the compiled stops need to refresh a task without Python: ``(follow, pinned,
        due_ns, every)``; it calls :meth:`_seen` when ``follow`` and the task is off cpu
        ``pinned`` (-1: none) or the monotonic clock has reached ``due_ns``."""
        c = self._coloc
        follow = c.enabled and c.active
        return (int(follow), -1 if c.pinned is None else c.pinned, c.due_ns(),
                self._refresh_every())

    def _seen(self, cpu: int, tid: int) -> tuple[int, int, int, int]:
        """The compiled stops read that task ``tid`` runs on ``cpu`` (its Task already
        says so): co-location follows it; the new terms (:meth:`_refresh_terms`)."""
        self._coloc.seen(cpu, tid)
        return self._refresh_terms()

    def _orig_nr(self, tid: int) -> int:
        nr = _fast_ptrace(L.PTRACE_PEEKUSER, tid, self._nr_offset, 0)
        return nr if 0 <= nr < (1 << 31) else -2

    def _event_msg(self, tid: int) -> int:
        self._msg.value = 0
        if L.ptrace(L.PTRACE_GETEVENTMSG, tid, None, ctypes.byref(self._msg)) != 0:
            return 0
        return self._msg.value

    # -- letting go -------------------------------------------------------------------------
    def _let_go(self) -> None:
        """Leave no tracee stopped: detach them all, or kill them under EXITKILL."""
        if self._exitkill:
            self._kill_all()
            return
        if self._launched is not None and self._stop_sig:
            # strace: the command it started gets the signal that stopped the tracer.
            for sig in (signal.SIGCONT, self._stop_sig):
                try:
                    os.kill(self._launched, sig)
                except OSError:
                    pass
        self._detach_all(list(self.tasks) + list(self._hidden))
        self.tasks.clear()
        self._hidden.clear()

    def _detach_all(self, tids: list[int]) -> None:
        """Interrupt each task, wait for its stop, detach it passing on a pending signal.

        Every task is interrupted and its stop collected before it is detached, never
        detached blind: a signal-delivery-stop not yet collected would lose its signal.
        A group-stopped task stays stopped after the detach (the kernel re-enters the
        group-stop), as it would without us.
        """
        pending: set[int] = set()
        gone: list[int] = []
        # Stops collected and not served (an exception came, or a stop was requested with
        # stops pending): they report nothing more, so they are detached as they are.
        held = self._held + [(p[0], p[1]) for p in self._pending] + \
            [(tid, st) for tid, (st, _) in self._early.items()]
        self._held = []
        self._pending.clear()
        self._early.clear()
        done: set[int] = set()
        stopped: list[tuple[int, int]] = []       # (tid, the signal to pass on)
        for tid, status in held:
            done.add(tid)
            if status & 0xFF != 0x7F:
                continue                      # it ended: there is nothing to detach
            sig, event = (status >> 8) & 0xFF, status >> 16
            if event in (L.PTRACE_EVENT_FORK, L.PTRACE_EVENT_VFORK, L.PTRACE_EVENT_CLONE):
                child = self._event_msg(tid)
                if child and child not in tids:
                    tids = tids + [child]
            stopped.append((tid, sig if event == 0 and sig != _SYSCALL_STOP else 0))
        for tid in tids:
            if tid in done:
                continue
            if _fast_ptrace(L.PTRACE_INTERRUPT, tid, 0, 0) == 0:
                pending.add(tid)
            else:
                gone.append(tid)
        for tid, status in _wait_while(pending):
            pending.discard(tid)
            if status & 0xFF != 0x7F:
                continue
            sig = (status >> 8) & 0xFF
            event = status >> 16
            if event in (L.PTRACE_EVENT_FORK, L.PTRACE_EVENT_VFORK, L.PTRACE_EVENT_CLONE):
                child = self._event_msg(tid)
                if child:
                    pending.add(child)        # its first stop is on its way: detach it too
            stopped.append((tid, sig if event == 0 and sig != _SYSCALL_STOP else 0))
        # Every thread is stopped.  A SIGTRAP about to be delivered may be a breakpoint of
        # ours that a thread ran into before it stopped: the handlers take it back (the
        # thread is put back on the instruction), then they undo what they put into the
        # processes while no thread can run into it, and all are let go.
        if self._trap_handlers:
            for i, (tid, inject) in enumerate(stopped):
                t = self.tasks.get(tid)
                if inject == signal.SIGTRAP and t is not None and \
                        any(h.take_back_trap(t) for h in self._trap_handlers):
                    stopped[i] = (tid, 0)
        for proc in list(self.processes.values()):
            for h in self.handlers:
                h.on_detach(proc)
        for tid, inject in stopped:
            _fast_ptrace(L.PTRACE_DETACH, tid, 0, inject)
        for tid in gone:                      # dead tasks still ours to reap
            try:
                os.waitpid(tid, L.WALL | os.WNOHANG)
            except OSError:
                pass

    def _kill_all(self) -> None:
        """SIGKILL every tracee and reap them (what EXITKILL does when a tracer exits)."""
        live = set(self.tasks) | set(self._hidden) | set(self._early)
        for tid in self._early:
            try:
                os.kill(tid, signal.SIGKILL)
            except OSError:
                pass
        self._early.clear()
        for tid, status in self._held + [(p[0], p[1]) for p in self._pending]:
            if status & 0xFF != 0x7F:         # its end was collected already
                live.discard(tid)
                if tid == self._launched and self._status is None:
                    self._status = ExitStatus.from_wait(status)
        for pid in {t.pid for t in self.tasks.values()} | {t.pid for t in self._hidden.values()}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for tid, status in _wait_while(live):
            if status & 0xFF == 0x7F:
                # A stop on the way to death, or a child born meanwhile: kill it too.
                victims = [tid]
                if status >> 16 in (L.PTRACE_EVENT_FORK, L.PTRACE_EVENT_VFORK, L.PTRACE_EVENT_CLONE):
                    victims.append(self._event_msg(tid))
                for v in victims:
                    if v and v not in live:
                        live.add(v)
                        try:
                            os.kill(v, signal.SIGKILL)
                        except OSError:
                            pass
                _fast_ptrace(L.PTRACE_CONT, tid, 0, 0)
                continue
            live.discard(tid)
            if tid == self._launched and self._status is None:
                self._status = ExitStatus.from_wait(status)
        self.tasks.clear()
        self._hidden.clear()
        self._pending.clear()
        self._held = []
        for proc in self.processes.values():
            proc.close()
        self.processes.clear()

    def _release(self, tids: list[int]) -> None:
        """Detach threads just seized (attach failed half-way)."""
        for tid in tids:
            self.tasks.pop(tid, None)
        self._detach_all(tids)
