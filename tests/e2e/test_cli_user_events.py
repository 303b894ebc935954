"""User events through the command line: record, stream, report and trace-cmd, with syscalls.

The CLI runs as a subprocess with ``USERTRACE_SESSION`` pointing at a private session
directory, so the traced application (which inherits the environment) meets this tracer and
no other.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

APP = r"""
import os, sys
from usertrace.user_events import register
req = register("app_req u32 status; u64 bytes; __data_loc char[] path")
for i in range(5):
    req.emit(200 + i, i * 10, f"/path/{i}")
    os.getppid()
late = register("app_late s32 code")      # registered after the tracer enabled app_*
late.emit(-7)
other = register("other_ev u32 x")         # not enabled: never recorded
other.emit(1)
print(req.enabled, late.enabled, other.enabled)
"""


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["PYTHONPATH"] = SRC + os.pathsep + e.get("PYTHONPATH", "")
    e["USERTRACE_SESSION"] = str(tmp_path / "session")
    return e


def usertrace(env, *argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "usertrace", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)


def report_json(env, path):
    r = usertrace(env, "report", "-i", str(path), "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.parametrize("backend", ["ptrace", "auto"])   # auto: the kernel's syscalls, as root
def test_record_user_events_with_syscalls(env, tmp_path, backend):
    app = tmp_path / "app.py"
    app.write_text(APP)
    dat = tmp_path / "t.dat"
    r = usertrace(env, "record", "--backend", backend, "-e", "user_events:app_*", "-f", "status != 202",
                  "-e", "sys_enter_getppid", "-o", str(dat), "--", sys.executable, str(app))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "False"]
    evs = report_json(env, dat)
    users = [e for e in evs if e["system"] == "user_events"]
    assert [(e["event"], e["fields"]) for e in users] == [
        ("app_req", {"status": 200, "bytes": 0, "path": "/path/0"}),
        ("app_req", {"status": 201, "bytes": 10, "path": "/path/1"}),
        ("app_req", {"status": 203, "bytes": 30, "path": "/path/3"}),
        ("app_req", {"status": 204, "bytes": 40, "path": "/path/4"}),
        ("app_late", {"code": -7}),
    ]
    assert [e["event"] for e in evs].count("sys_enter_getppid") == 5
    ts = [e["ts_ns"] for e in evs]
    assert ts == sorted(ts)                       # one time order across both sources
    pid = users[0]["pid"]
    assert all(e["pid"] == pid for e in evs)
    # each emit comes before the getppid that follows it in the program
    order = [e["event"] for e in evs]
    assert order[:2] == ["app_req", "sys_enter_getppid"]
    assert "does not apply to user_events:app_late" in r.stderr   # no field 'status' there


def test_trace_cmd_and_text_report_show_user_events(env, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    dat = tmp_path / "t.dat"
    r = usertrace(env, "record", "-e", "user_events", "-o", str(dat), "--", sys.executable, str(app))
    assert r.returncode == 0, r.stderr
    text = usertrace(env, "report", "-i", str(dat)).stdout
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "app_req: status=200 bytes=0 path=/path/0", "app_req: status=201 bytes=10 path=/path/1",
        "app_req: status=202 bytes=20 path=/path/2", "app_req: status=203 bytes=30 path=/path/3",
        "app_req: status=204 bytes=40 path=/path/4", "app_late: code=-7", "other_ev: x=1"]
    if not shutil.which("trace-cmd"):
        pytest.skip("trace-cmd is not installed (tests/setup.sh installs it)")
    tc = subprocess.run(["trace-cmd", "report", "-i", str(dat)], capture_output=True, text=True)
    assert tc.returncode == 0, tc.stderr
    theirs = [line for line in tc.stdout.splitlines() if "app_" in line or "other_ev" in line]
    assert len(theirs) == 7
    assert "status=203 bytes=30 path=/path/3" in theirs[3] and "code=-7" in theirs[5]


def test_stream_shows_user_events_live(env, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    r = usertrace(env, "stream", "-e", "user_events:app_req", "--", sys.executable, str(app))
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "app_req" in line]
    assert len(lines) == 5 and lines[2].endswith("app_req: status=202 bytes=20 path=/path/2")


LOOP = r"""
import sys, time
from usertrace.user_events import register
ev = register("tick u32 n")
print("ready", flush=True)
n = 0
deadline = time.time() + 30
while time.time() < deadline:
    if ev.emit(n):
        n += 1
    time.sleep(0.002)
    if sys.stdin in __import__("select").select([sys.stdin], [], [], 0)[0]:
        break
print("emitted", n, "enabled", ev.enabled, flush=True)
"""


def test_record_without_a_command_until_ctrl_c(env, tmp_path):
    """Without --, record takes the user events of every process until SIGINT; the
    application goes on running, its events now disabled."""
    app = tmp_path / "loop.py"
    app.write_text(LOOP)
    dat = tmp_path / "t.dat"
    writer = subprocess.Popen([sys.executable, str(app)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        tracer = subprocess.Popen([sys.executable, "-m", "usertrace", "record", "-e", "user_events:tick",
                                   "-o", str(dat)], env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)                                 # let it catch some ticks
        tracer.send_signal(signal.SIGINT)
        err = tracer.communicate(timeout=30)[1]
        assert tracer.returncode == 0, err
        assert writer.poll() is None                    # the application keeps running
        writer.stdin.write("stop\n")
        writer.stdin.flush()
        out = writer.communicate(timeout=30)[0].split()
        assert out[0] == "emitted" and out[3] == "False"  # disabled once the tracer left
        evs = report_json(env, dat)
        assert evs and all(e["event"] == "tick" for e in evs)
        ns = [e["fields"]["n"] for e in evs]
        assert ns == list(range(len(ns)))                  # every emit that succeeded, in order
        assert int(out[1]) == len(ns)
    finally:
        if writer.poll() is None:
            writer.kill()


def test_list_and_format_show_registered_user_events(env, tmp_path):
    reg = ("from usertrace.user_events import register\n"
           "register('app_req u32 status; __data_loc char[] path', persist=True)\n")
    subprocess.run([sys.executable, "-c", reg], env=env, check=True)
    r = usertrace(env, "list", "-e", "user_events:*")
    assert r.returncode == 0 and r.stdout == "user_events:app_req\n"
    r = usertrace(env, "format", "user_events:app_req")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("name: app_req\nID: ")
    assert "\tfield:u32 status;\toffset:8;\tsize:4;\tsigned:0;\n" in r.stdout
    assert r.stdout.endswith('print fmt: "status=%u path=%s", REC->status, __get_str(path)\n')
    other = dict(env, USERTRACE_SESSION=str(tmp_path / "none"))
    r = usertrace(other, "list", "-e", "user_events:*")
    assert r.returncode == 1 and "no event matches" in r.stderr


HOLDER = r"""
import sys, time
from usertrace.user_events import register
req = register("app_req u32 status")
print("ready", flush=True)
sys.stdin.read()
"""


def test_list_format_and_stream_agree_on_a_bare_event_name(env, tmp_path):
    """A user event that `list` shows is one `format` prints and `-e` enables, by the same
    name (the three used to disagree: `stream -e app_req` found nothing)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "ready"
        listed = usertrace(env, "list", "-e", "app_req")
        assert listed.returncode == 0 and listed.stdout.split() == ["user_events:app_req"]
        fmt = usertrace(env, "format", "app_req")
        assert fmt.returncode == 0 and fmt.stdout.startswith("name: app_req\n")
        assert "field:u32 status;" in fmt.stdout
        app = tmp_path / "app.py"
        app.write_text("from usertrace.user_events import register\n"
                       "e = register('app_req u32 status')\n"
                       "print(e.enabled)\ne.emit(7)\n")
        r = usertrace(env, "stream", "-e", "app_req", "--", sys.executable, str(app))
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert "True" in lines                          # enabled for the traced command
        assert any("app_req:" in line and "status=7" in line for line in lines), r.stdout
        # a bare name that no event has is refused, as before
        bad = usertrace(env, "stream", "-e", "no_such_event_anywhere", "--", "true")
        assert bad.returncode != 0 and "no event matches" in bad.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


NEIGHBOUR = r"""
import sys, time
from usertrace.user_events import register
tick = register("app_tick u32 n")
print("ready", flush=True)
n = 0
while not sys.stdin.closed:
    if tick.enabled:
        tick.emit(n)
        n += 1
    time.sleep(0.001)
    if n > 100000:
        break
"""


def test_a_recording_of_a_command_keeps_only_its_user_events(env, tmp_path):
    """Another process of the same user emitting the same events is not recorded."""
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert neighbour.stdout.readline().strip() == "ready"
        app = tmp_path / "app.py"
        app.write_text("import time\nfrom usertrace.user_events import register\n"
                       "t = register('app_tick u32 n')\ntime.sleep(0.3)\n"
                       "for i in range(5):\n    t.emit(1000 + i)\n")
        dat = tmp_path / "t.dat"
        r = usertrace(env, "record", "-e", "user_events", "-o", str(dat), "--",
                      sys.executable, str(app))
        assert r.returncode == 0, r.stderr
        events = report_json(env, dat)
        ticks = [e["fields"]["n"] for e in events if e["event"] == "app_tick"]
        assert ticks == [1000, 1001, 1002, 1003, 1004]
        assert {e["pid"] for e in events if e["event"] == "app_tick"} != {neighbour.pid}
    finally:
        neighbour.stdin.close()
        neighbour.kill()
        neighbour.wait(timeout=30)
