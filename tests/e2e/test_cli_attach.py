"""usertrace record -P: attach to a running process (every thread), Ctrl-C detaches and the
process runs on, never stopped; the trace.dat holds the events of every thread."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def state_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def counter(path):
    try:
        return int(Path(path).read_text() or 0)
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_attach_then_signal_detaches_and_the_process_runs_on(target, tmp_path, sig):
    spin = target("spin")
    count = tmp_path / "count"
    proc = subprocess.Popen([str(spin), str(count), "threads"], stdout=subprocess.PIPE, text=True)
    env = {**os.environ, "PYTHONPATH": SRC}
    try:
        assert proc.stdout.readline().strip() == "ready"
        threads = sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
        assert len(threads) == 4
        dat = tmp_path / "t.dat"
        tracer = subprocess.Popen([sys.executable, "-m", "usertrace", "record", "-e", "sys_exit_getppid",
                                   "-o", str(dat), "-P", str(proc.pid)], env=env,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        tracer.send_signal(sig)
        err = tracer.communicate(timeout=30)[1]
        assert tracer.returncode == 0, err
        assert "Traceback" not in err
        # the process was let go: running, not traced, not stopped, and it goes on
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert "TracerPid:\t0" in status
        before = counter(count)
        time.sleep(0.5)
        assert counter(count) > before
        for tid in threads:
            assert state_of(tid) not in ("t", "T")
        # every thread's getppid is in the recording, returning the test's pid
        r = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(dat), "--json"],
                           env=env, capture_output=True, text=True)
        evs = [json.loads(line) for line in r.stdout.splitlines()]
        assert {e["pid"] for e in evs} == set(threads)
        assert {e["fields"]["ret"] for e in evs} == {os.getpid()}
    finally:
        proc.kill()
        proc.wait()
