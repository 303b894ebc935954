"""Keeping the tracer on its tracee's CPU (co-location), without touching the tracee.

Every ptrace stop is two wake-ups: the tracee wakes the tracer, the tracer wakes the
tracee.  Waking a task on another CPU costs several times a wake-up on the same one (an
inter-processor interrupt, and on a VM a halted vCPU to rouse): on a getppid loop measured
on 2026-11-29, a minimal C tracer took 8 us a syscall with tracer and tracee on one CPU and
26 us across CPUs, strace 9 us pinned and 26 us not.  The scheduler does not put them
together by itself: when the tracer resumes the tracee, the tracer is running, so the
tracee's CPU looks busy and an idle one is chosen; the two then ping-pong across CPUs.

What works (measured in benchmarks/bench_syscalls.py), all on the tracer's own thread:

* pin the tracer to the CPU where the task it serves last ran (read from /proc at the
  refreshes the engine makes anyway: syscall stops and breakpoint hits), and follow the task
  at the first refresh that sees it elsewhere.  The load balancer moves a tracee every 20 to
  50 ms (its CPU holds two tasks, the other none); every event served across CPUs costs
  several times one served beside it, so waiting to be sure (three refreshes, before
  2026-11-29) cost more than it saved, for probe hits and syscalls alike;
* run the tracer as SCHED_IDLE while pinned (when no other task is runnable on the machine
  at that moment: else a busy neighbour would starve it): a CPU whose only runnable task is SCHED_IDLE
  counts as idle when the scheduler places a waking task, so the tracee is woken right
  there, and it preempts the tracer at once, which is what the tracer wants anyway.

The risk of SCHED_IDLE is starvation: any other busy task on that CPU (another program, or a
compute thread of the tracee) takes nearly all of it.  So at each refresh (every 16 events
while SCHED_IDLE, at most every 20 ms) the tracer compares its own wait for the CPU (``run_delay`` in
/proc/thread-self/schedstat) with the run time of the task it serves (/proc/TID/schedstat):
when it waited for others more than a quarter of the time in two windows in a row (or more
than 60% in one), it gives co-location up for good: normal policy, its original affinity.  The tracee's affinity and policy are never changed; children forked by
the tracee inherit the tracee's, never the tracer's.
"""

from __future__ import annotations

import os
import time

STARVED = 0.25             # the share of wall time spent waiting for others ...
STARVED_BADLY = 0.6        # ... in two windows in a row, or this share in one
REFRESH_WHEN_IDLE = 16     # events between refreshes while SCHED_IDLE (find starvation soon)
MIN_WINDOW_NS = 20_000_000
STARVED_WINDOWS = 2        # in a row


def _others_running() -> bool:
    """Is any task but this one runnable on the machine now (``procs_running`` of
    /proc/stat)?  Then SCHED_IDLE would let it starve the tracer, and the tracee with it."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"procs_running "):
                    return int(line.split()[1]) > 1
    except (OSError, ValueError):
        return True
    return True


def _schedstat(path: str) -> tuple[int, int]:
    """(ns run on a CPU, ns waited on a run queue) of a thread, (0, 0) if unknown."""
    try:
        with open(path, "rb") as f:
            fields = f.read().split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return 0, 0


class Colocation:
    """The tracer thread's CPU and policy while it traces (see the module's doc)."""

    def __init__(self, enabled: bool = True, use_idle: bool = True):
        self.enabled = enabled
        self.use_idle = use_idle
        self.active = False
        self._save()
        self.pinned: int | None = None
        self.idle = False
        self.given_up = ""           # why co-location was abandoned, if it was
        self.idle_refused = False    # a pin kept the normal policy: other tasks were busy
        self.moves = 0
        self._delay0 = 0
        self._ran0 = 0
        self._wall0 = 0
        self._tid = 0
        self._starved_windows = 0

    def _save(self) -> None:
        self.orig_affinity = os.sched_getaffinity(0)
        self.orig_policy = os.sched_getscheduler(0)
        self.orig_param = os.sched_getparam(0)

    def start(self) -> None:
        """From now on (the tracing loop), follow the tasks: this thread's settings are saved."""
        self.release()
        self._save()
        self.active = True

    def stop(self) -> None:
        """Back to the saved settings, and stay there until the next start()."""
        self.active = False
        self.release()

    def seen(self, cpu: int, tid: int) -> None:
        """Task ``tid`` was seen on ``cpu`` at a refresh."""
        if not self.enabled or not self.active:
            return
        starved = self._starved(tid) if self.pinned is not None else 0.0
        if starved > STARVED:
            self._starved_windows += 1
            if self._starved_windows >= STARVED_WINDOWS or starved > STARVED_BADLY:
                self.give_up("the tracer waited too long for its CPU (other busy tasks there)")
                return
        elif self._wall0:
            self._starved_windows = 0
        if cpu != self.pinned:
            self._pin(cpu)

    def due_ns(self) -> int:
        """The monotonic time from which :meth:`seen` wants to hear of a task even on the
        cpu it is pinned to: the end of the window over which it measures the tracer's wait
        for its cpu; 0 (at once) while it is not pinned or has no window yet."""
        if self.pinned is None or not self._wall0:
            return 0
        return self._wall0 + MIN_WINDOW_NS

    def _pin(self, cpu: int) -> None:
        if cpu not in self.orig_affinity:
            return
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as exc:
            self.give_up(f"sched_setaffinity: {exc.strerror}")
            return
        self.pinned = cpu
        self.moves += 1
        if self.use_idle and not self.idle and self.orig_policy in (os.SCHED_OTHER, os.SCHED_BATCH):
            if _others_running():
                self.idle_refused = True      # this time: the next pin looks again
            else:
                try:
                    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                    self.idle = True
                except OSError:
                    self.use_idle = False
        self._wall0 = 0

    def _starved(self, tid: int) -> float:
        """Did other tasks keep the tracer off its CPU?  While it waits, its tracee runs
        there (it preempts the SCHED_IDLE tracer at every resume): only the wait beyond the
        tracee's own run time counts."""
        now = time.monotonic_ns()
        wall = now - self._wall0
        if self._wall0 and wall < MIN_WINDOW_NS:
            return 0.0
        delay = _schedstat("/proc/thread-self/schedstat")[1]
        ran = _schedstat(f"/proc/{tid}/schedstat")[0]
        first = not self._wall0 or tid != self._tid
        share = 0.0 if first else ((delay - self._delay0) - (ran - self._ran0)) / wall
        self._delay0, self._ran0, self._wall0, self._tid = delay, ran, now, tid
        return share

    def give_up(self, why: str) -> None:
        self.given_up = why
        self.enabled = False
        self.release()

    def release(self) -> None:
        """Back to the tracer's own policy and affinity."""
        if self.idle:
            try:
                os.sched_setscheduler(0, self.orig_policy, self.orig_param)
            except OSError:
                pass
            self.idle = False
        if self.pinned is not None:
            try:
                os.sched_setaffinity(0, self.orig_affinity)
            except OSError:
                pass
            self.pinned = None
