"""usertrace report against the kernel's own trace text.

In a private instance the kernel records syscall events (printed its own way: ``sys_openat(...)``)
and sched events (printed from their print fmt: ``__get_str``, ``%d``, ``%s``) of a workload; the
test keeps the instance's ``trace`` text, has ``trace-cmd extract`` write the same buffer into a
trace.dat, and checks that ``usertrace report`` on that file prints the same lines.
"""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from usertrace.cli.context import Context
from usertrace.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tracedat_tracecmd import trace_cmd_extract  # noqa: E402

pytestmark = pytest.mark.kernel

EVENTS = [("syscalls", "sys_enter_openat"), ("syscalls", "sys_exit_openat"),
          ("syscalls", "sys_enter_getppid"), ("syscalls", "sys_exit_getppid"),
          ("syscalls", "sys_enter_lseek"), ("syscalls", "sys_exit_lseek"),
          ("sched", "sched_process_exec"), ("sched", "sched_process_fork"),
          ("sched", "sched_process_exit")]

WORKLOAD = r"""
import os, sys
sys.stdin.readline()            # wait until the tracer has our pid
for _ in range(3):
    os.getppid()
fd = os.open("/etc/hostname", os.O_RDONLY)
os.lseek(fd, 5, 0)
os.lseek(fd, -1, 0) if False else None
os.close(fd)
try:
    os.open("/nonexistent/x", os.O_RDONLY)
except OSError:
    pass
pid = os.fork()
if pid == 0:
    os.execv("/bin/true", ["true"])
os.waitpid(pid, 0)
"""


def test_report_prints_what_the_kernel_prints(tracefs_instance, tmp_path):
    if not shutil.which("trace-cmd"):
        pytest.skip("trace-cmd is not installed (tests/setup.sh installs it)")
    inst = tracefs_instance
    child = subprocess.Popen([sys.executable, "-c", WORKLOAD], stdin=subprocess.PIPE, text=True)
    try:
        inst.write("set_event_pid", str(child.pid))
        inst.write("options/event-fork", "1")      # follow the fork and the exec
        for system, event in EVENTS:
            inst.enable(system, event)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    for system, event in EVENTS:
        inst.disable(system, event)
    kernel_text = inst.read("trace")
    dat = tmp_path / "k.dat"
    trace_cmd_extract(inst, dat, tmp_path, events=EVENTS)

    out, err = io.StringIO(), io.StringIO()
    status = main(["report", "-i", str(dat)], Context(stdout=out, stderr=err, env={}))
    assert status == 0, err.getvalue()
    ours = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    theirs = [line for line in kernel_text.splitlines() if not line.startswith("#")]
    assert len(theirs) >= 12, kernel_text
    assert ours == theirs
    # the header's count line too
    count = [line for line in kernel_text.splitlines() if "entries-in-buffer" in line][0]
    assert count.split("#P:")[0] in out.getvalue()
