"""``--busy`` for the benchmarks: every cpu kept busy by a spinner at the lowest priority.

Waking a task on an idle cpu of these virtual machines can cost about 100 µs (the cpu must
be woken first); on a cpu that runs something it costs a few.  Tracers pay one wake-up per
stop, so the state of the other cpus decides much of their cost: strace and gdb, which leave
their placement to the scheduler, are 3-10 times slower with idle cpus than with busy ones,
while usertrace, which moves itself onto the tracee's cpu, changes little.  A benchmark run
with ``--busy`` measures the second state whatever else the machine does: one process per
cpu spins at nice 19 (it takes about 1.5% of a cpu from a task of nice 0), and they are
killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

SPIN = "import os; os.nice(19)\nwhile True: pass"


@contextlib.contextmanager
def busy_cpus(enabled: bool = True):
    """Keep every cpu this process may use busy (spinners at nice 19) while in the block."""
    if not enabled:
        yield
        return
    spinners = []
    try:
        for cpu in sorted(os.sched_getaffinity(0)):
            p = subprocess.Popen([sys.executable, "-c", SPIN])
            os.sched_setaffinity(p.pid, {cpu})
            spinners.append(p)
        yield
    finally:
        for p in spinners:
            p.send_signal(signal.SIGKILL)
            p.wait()
