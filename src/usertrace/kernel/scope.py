"""Which processes a kernel recording sees, and waiting for them, without ptrace.

The kernel filters the events of an instance by task: ``set_event_pid`` lists the tasks
(thread ids) whose events are kept, and with ``options/event-fork`` every task they create
joins the list when it is created, before it runs.  So:

* a launched command is started stopped (:func:`usertrace.ptrace.launch.spawn_stopped`, the
  same start as the ptrace engine's, without a tracer), its pid goes into ``set_event_pid``,
  tracing is switched on, and then it is let go (SIGCONT): its first record is the entry of
  its ``execve``, as under the ptrace engine.  The recording waits for it and for every
  descendant (this process is their subreaper), as the ptrace engine waits for every tracee;
* ``-P PID``: every thread of each process goes into ``set_event_pid``, listed again after
  the write until no new thread shows up; the recording waits until those processes end;
* every process (``-a``): no pid list, but this process's own threads go into
  ``set_event_notrace_pid`` (as trace-cmd leaves itself out): reading the buffer must not
  make events of its own.

SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE end the wait as they end the ptrace engine's
run: the launched command gets the signal too, and the status says ``detached``; but the first
SIGINT while a launched command runs is the command's (as with ``strace -o FILE COMMAND``): it
gets it (from the terminal, or from us when it came from elsewhere), the recording goes on
while it cleans up, and its exit status is passed on.
"""

from __future__ import annotations

import errno as errno_mod
import os
import select
import signal
import threading

from ..ptrace import ExitStatus, TraceError
from ..ptrace import libc
from ..ptrace.launch import FirstInterrupt, read_child_error, resolve_command, spawn_stopped
from ..ptrace.procfs import list_threads, original_environ, traceable_tgid
from .tracefs import Instance

PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)
TICK_MS = 20


class ProcessScope:
    """The processes whose events ``instance`` keeps.  Call one of :meth:`launch`,
    :meth:`attach`, :meth:`everything` (with tracing off), then :meth:`go` once tracing is
    on, then :meth:`wait`."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self.launched: int | None = None
        self.pids: list[int] = []            # -P processes
        self.system_wide = False
        self._errfd = -1
        self._path = ""
        self._stop_sig = 0
        self._interrupt = FirstInterrupt()     # the first SIGINT is the command's
        self._ended = False                    # the launched command was reaped
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._subreaper = False

    # -- choosing the processes ---------------------------------------------------------------
    def launch(self, argv: list[str], env=None, cwd: str | None = None) -> int:
        """Start ``argv`` stopped before its exec and put it in the pid list; TraceError when
        it cannot run.  It runs from :meth:`go` on."""
        if not argv:
            raise TraceError("no command to run")
        if env is None:
            env = original_environ()
        path = resolve_command(argv[0], env)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            self._subreaper = True
        pid, errfd = spawn_stopped(path, list(argv), env, cwd, None, os.sched_getaffinity(0),
                                   (os.sched_getscheduler(0), os.sched_getparam(0)))
        self.launched, self._errfd, self._path = pid, errfd, path
        if not self.system_wide:
            try:
                self._follow([pid])
            except BaseException:
                self._kill_launched()
                raise
        return pid

    def attach(self, pids: list[int]) -> list[int]:
        """Put every thread of each process in the pid list; the thread ids.  TraceError
        (the ptrace engine's words) for a pid that does not exist or is this process."""
        tids: list[int] = []
        for pid in pids:
            self.pids.append(traceable_tgid(pid))
        seen: set[int] = set()
        while True:                          # threads made while we wrote join in turn
            fresh = [t for pid in self.pids for t in list_threads(pid) if t not in seen]
            if not fresh:
                break
            self._follow(fresh)
            seen.update(fresh)
            tids += fresh
        if not tids:
            raise TraceError(f"process {pids[0]}: no such process", errno_mod.ESRCH)
        return tids

    def everything(self, own_tids: list[int]) -> None:
        """Every process of the machine but this one (``own_tids``: its threads, all made
        before this).  Without ``event-fork``: with it, a command launched after this would
        join the list of its parent, this process, and be left out."""
        self.system_wide = True
        self.instance.append("set_event_notrace_pid", " ".join(map(str, own_tids)) + "\n")

    def _follow(self, tids: list[int]) -> None:
        self.instance.set_option("event-fork", True)
        self.instance.append("set_event_pid", " ".join(map(str, tids)) + "\n")

    # -- running -----------------------------------------------------------------------------
    def go(self) -> None:
        """Let the launched command run (tracing is on): TraceError when its exec fails."""
        pid = self.launched
        if pid is None:
            return
        os.kill(pid, signal.SIGCONT)
        message = read_child_error(self._errfd)      # blocks until its exec (or failure)
        os.close(self._errfd)
        self._errfd = -1
        if message:
            _reap(pid)
            self.launched = None
            raise TraceError(f"cannot run '{self._path}': {message}")

    def request_stop(self, sig: int = signal.SIGTERM) -> None:
        """End :meth:`wait` as a signal would (from any thread)."""
        if not self._stop_sig:
            self._stop_sig = sig
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    def wait(self, handle_signals: bool = True, tick=None) -> ExitStatus:
        """Until the launched command and its descendants, or the ``-P`` processes, are
        gone, or a stop signal comes (with neither: until a signal).  ``tick()`` is called
        every TICK_MS meanwhile."""
        main = threading.current_thread() is threading.main_thread()
        saved: dict = {}
        old_wakeup = None
        if handle_signals and main:
            for sig in STOP_SIGNALS:
                saved[sig] = signal.signal(sig, self._on_signal)
            saved[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _ignore)
            old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        pidfds = []
        try:
            for pid in self.pids:
                try:
                    pidfds.append(os.pidfd_open(pid))
                except ProcessLookupError:
                    pass
            return self._wait(pidfds, TICK_MS if tick or not saved else None, tick)
        finally:
            for fd in pidfds:
                os.close(fd)
            if saved:
                signal.set_wakeup_fd(old_wakeup if old_wakeup is not None else -1)
                for sig, handler in saved.items():
                    signal.signal(sig, handler)

    def _wait(self, pidfds: list[int], timeout, tick) -> ExitStatus:
        status: ExitStatus | None = None
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        live = set(pidfds)
        while True:
            if tick is not None:
                tick()
            if self.launched is not None:
                got, gone = self._reap_children()
                status = got or status
                if gone:
                    return status or ExitStatus(0)
            if self._stop_sig:
                self._pass_on(self._stop_sig)
                return ExitStatus(None, self._stop_sig, False, detached=True)
            if pidfds and not live:
                return ExitStatus(0)
            for fd, _ in poller.poll(timeout):
                if fd == self._wake_r:
                    _drain(fd)
                elif fd in live:
                    live.discard(fd)
                    poller.unregister(fd)

    def _reap_children(self) -> tuple[ExitStatus | None, bool]:
        """(the launched command's status if it ended now, True when no child is left)."""
        status = None
        while True:
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status, True
            if pid == 0:
                return status, False
            if pid == self.launched:
                status = ExitStatus.from_wait(raw)
                self._ended = True

    def _on_signal(self, sig, frame) -> None:
        if not self._interrupt.take(sig, self.launched, not self._ended):
            self.request_stop(sig)

    def _pass_on(self, sig: int) -> None:
        """The launched command gets the signal that ended the recording (as strace does)."""
        if self.launched is None:
            return
        for s in (signal.SIGCONT, sig):
            try:
                os.kill(self.launched, s)
            except OSError:
                pass

    # -- the end -------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill a command that was started and never let go; forget the subreaper role."""
        if self._errfd >= 0:
            self._kill_launched()
        if self._subreaper:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
            self._subreaper = False
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _kill_launched(self) -> None:
        if self.launched is not None:
            try:
                os.kill(self.launched, signal.SIGKILL)
            except OSError:
                pass
            _reap(self.launched)
            self.launched = None
        if self._errfd >= 0:
            os.close(self._errfd)
            self._errfd = -1


def _ignore(sig, frame) -> None:
    """SIGCHLD: only to wake the wait (the wakeup fd)."""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except (ChildProcessError, InterruptedError):
        pass
