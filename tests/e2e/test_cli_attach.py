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
    """The target's pass counter (read again when caught while the target rewrites it)."""
    for _ in range(50):
        try:
            text = Path(path).read_text()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    return 0


def traced_by(pid, tracer_pid, timeout=30.0):
    """Wait until ``pid`` is traced by ``tracer_pid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        if f"TracerPid:\t{tracer_pid}\n" in status:
            return True
        time.sleep(0.02)
    return False


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
        # (the ptrace backend: TracerPid says when it has attached; the kernel backend's -P
        # is tests/kernel/test_kernel_backend.py's)
        tracer = subprocess.Popen([sys.executable, "-m", "usertrace", "record", "--backend",
                                   "ptrace", "-e", "sys_exit_getppid",
                                   "-o", str(dat), "-P", str(proc.pid)], env=env,
                                  stderr=subprocess.PIPE, text=True)
        assert traced_by(proc.pid, tracer.pid)      # attached (a loaded machine starts slowly)
        time.sleep(0.5)
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


CLEANUP = r"""
import os, signal, sys, time
def on_int(sig, frame):
    os.write(1, b"cleaning up\n")          # the cleanup the trace must hold
    sys.exit(3)
signal.signal(signal.SIGINT, on_int)
os.write(1, b"ready\n")
while True:
    time.sleep(0.01)
"""


def test_ctrl_c_of_a_launched_command_is_the_commands_as_with_strace(tmp_path):
    """strace -o FILE COMMAND: Ctrl-C goes to the command; tracing goes on through its
    cleanup, and usertrace exits with the command's status."""
    dat = tmp_path / "t.dat"
    env = {**os.environ, "PYTHONPATH": SRC}
    tracer = subprocess.Popen([sys.executable, "-m", "usertrace", "record", "-e",
                               "sys_enter_write", "-o", str(dat), "--", sys.executable, "-c",
                               CLEANUP], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    assert tracer.stdout.readline() == "ready\n"
    tracer.send_signal(signal.SIGINT)
    out, err = tracer.communicate(timeout=30)
    assert out == "cleaning up\n"
    assert tracer.returncode == 3, err
    r = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(dat), "--json"],
                       env=env, capture_output=True, text=True)
    writes = [json.loads(line)["fields"]["count"] for line in r.stdout.splitlines()]
    assert writes == [6, 12]                   # "ready\n", then the cleanup's write


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_record_keeps_the_trace_dat_of_a_launched_command(tmp_path, sig):
    """SIGTERM or SIGHUP of `record`: the recording so far is written and readable (SIGKILL
    cannot be caught: it leaves no trace.dat, and the command dies with the tracer)."""
    dat = tmp_path / "t.dat"
    env = {**os.environ, "PYTHONPATH": SRC}
    loop = "import os, time\nprint('go', flush=True)\nwhile True:\n    os.getppid(); time.sleep(0.001)"
    tracer = subprocess.Popen([sys.executable, "-m", "usertrace", "record", "-e",
                               "sys_enter_getppid", "-o", str(dat), "--", sys.executable, "-c",
                               loop], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    assert tracer.stdout.readline() == "go\n"
    time.sleep(0.3)
    tracer.send_signal(sig)
    _, err = tracer.communicate(timeout=30)
    assert "Traceback" not in err
    assert tracer.returncode == 128 + sig         # the status of the command it let go
    r = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(dat), "--json"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(events) > 10 and {e["event"] for e in events} == {"sys_enter_getppid"}
