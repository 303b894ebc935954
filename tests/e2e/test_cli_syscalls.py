"""usertrace record / report / stream / stat from the command line, on a small C program.

main() runs in-process with injected streams, so the traced program's parent is this test
process: getppid() must return our pid, and every value below is known in advance.

Every test runs twice: with ``--backend ptrace`` (the process engine) and ``--backend auto``
(the running kernel where root and a tracefs are there, else ptrace again).
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from usertrace.cli.context import Context
from usertrace.cli.main import main


BACKEND = "auto"


@pytest.fixture(autouse=True, params=["ptrace", "auto"])
def backend(request):
    """The backend that record, stream and stat run with (see the module's docstring)."""
    global BACKEND
    BACKEND = request.param
    yield request.param
    BACKEND = "auto"


def run(*argv, cwd=None):
    if argv and argv[0] in ("record", "stream", "stat"):
        argv = (argv[0], "--backend", BACKEND, *argv[1:])
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdout=out, stderr=err, env={})
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        status = main(list(argv), ctx)
    finally:
        os.chdir(old)
    return status, out.getvalue(), err.getvalue(), ctx


@pytest.fixture
def basic(target):
    return str(target("cli_basic"))


def events_of(path):
    status, out, err, _ = run("report", "-i", str(path), "--json")
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_record_then_report_json(basic, tmp_path):
    dat = tmp_path / "t.dat"
    status, out, err, _ = run("record", "-o", str(dat), "--", basic, "4", "0")
    assert status == 0, err
    assert f"events recorded in {dat}" in err
    evs = events_of(dat)
    names = [e["event"] for e in evs]
    assert names[0] == "sys_enter_execve" and names[1] == "sys_exit_execve"
    getppid = [e for e in evs if e["event"] == "sys_exit_getppid"]
    assert len(getppid) == 4
    assert {e["fields"]["ret"] for e in getppid} == {os.getpid()}
    opens = [e for e in evs if e["event"] == "sys_exit_openat"]
    assert [o["fields"]["ret"] for o in opens][-2:][0] == -2          # ENOENT
    write = [e for e in evs if e["event"] == "sys_enter_write"][-1]
    assert write["fields"]["count"] == 5
    pid = evs[0]["pid"]
    assert all(e["pid"] == pid for e in evs) and evs[-1]["comm"] == "cli_basic"
    ts = [e["ts_ns"] for e in evs]
    assert ts == sorted(ts)
    # the process's end is the last event (the default recording has the task events)
    assert names[-1] == "sched_process_exit" and evs[-1]["fields"]["pid"] == pid
    # enter and exit alternate, each exit naming the syscall of its enter
    pending = None
    for e in [e for e in evs if e["event"].startswith("sys_")]:
        kind, base = e["event"].split("_", 2)[1], e["event"].split("_", 2)[2]
        if kind == "enter":
            assert pending is None or pending == "exit_group"
            pending = base
        else:
            assert pending == base
            pending = None


def test_report_text_is_the_kernel_trace_format(basic, tmp_path):
    dat = tmp_path / "t.dat"
    assert run("record", "-e", "sys_enter_getppid", "-e", "sys_exit_getppid", "-o", str(dat),
               "--", basic, "2")[0] == 0
    status, out, err, _ = run("report", "-i", str(dat))
    lines = out.splitlines()
    assert lines[0] == "# tracer: nop"
    assert lines[2].startswith("# entries-in-buffer/entries-written: 4/4   #P:")
    body = [line for line in lines if not line.startswith("#")]
    assert len(body) == 4
    assert body[0].split(": ", 1)[1] == "sys_getppid()"
    assert body[1].split(": ", 1)[1] == f"sys_getppid -> 0x{os.getpid():x}"
    assert body[0].lstrip().startswith("cli_basic-")


@pytest.mark.parametrize("strings", [False, True], ids=["no-strings", "strings"])
def test_trace_cmd_reads_our_file(basic, tmp_path, strings):
    if not shutil.which("trace-cmd"):
        pytest.skip("trace-cmd is not installed (tests/setup.sh installs it)")
    for version in ("6", "7"):
        dat = tmp_path / f"v{version}.dat"
        assert run("record", "-e", "syscalls:sys_*_getppid", "-e", "syscalls:sys_*_write",
                   *([] if strings else ["--no-strings"]),
                   "--file-version", version, "-o", str(dat), "--", basic, "3")[0] == 0
        r = subprocess.run(["trace-cmd", "report", "-i", str(dat)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        lines = [line for line in r.stdout.splitlines() if "sys_" in line]
        ours = events_of(dat)
        assert len(lines) == len(ours) == 3 * 2 + 2
        for line, ev in zip(lines, ours):
            assert f"-{ev['pid']} " in line and f"{ev['event']}:" in line
            if ev["event"] == "sys_exit_getppid":
                assert line.rstrip().endswith(f"0x{os.getpid():x}")
            if ev["event"] == "sys_enter_write" and not strings:
                assert "count: 0x00000005" in line
            elif ev["event"] == "sys_enter_write":
                # the newest kernel's print fmt (__print_dynamic_array): trace-cmd 3.1's
                # libtraceevent does not know it and shows the fields as they are
                assert ("count: 0x00000005" in line and "hello" in line) or \
                    ("count=5" in line and "__buf_val=hello" in line), line


def test_filter_applies_to_the_event_before_it(basic, tmp_path):
    dat = tmp_path / "t.dat"
    status, out, err, _ = run("record", "-e", "sys_exit_openat", "-f", "ret < 0",
                              "-e", "sys_enter_getppid", "-o", str(dat), "--", basic, "2")
    assert status == 0, err
    evs = events_of(dat)
    assert [e["event"] for e in evs].count("sys_enter_getppid") == 2
    fails = [e for e in evs if e["event"] == "sys_exit_openat"]
    assert fails and all(e["fields"]["ret"] < 0 for e in fails)
    assert -2 in [e["fields"]["ret"] for e in fails]


def test_system_filter_on_a_glob(basic, tmp_path):
    dat = tmp_path / "t.dat"
    status, out, err, _ = run("record", "-e", "syscalls:sys_enter_*", "-f", "fd == 0xffffff9c || count == 5",
                              "-o", str(dat), "--", basic, "1")
    assert status == 0, err
    evs = events_of(dat)
    # As the kernel: only events with every field named (fd and count) get the filter.
    assert any(e["event"] == "sys_enter_getppid" for e in evs)     # neither field: unfiltered
    assert any(e["event"] == "sys_enter_close" for e in evs)       # fd only: unfiltered
    assert any(e["event"] == "sys_enter_write" and e["fields"]["count"] == 5 for e in evs)
    assert not any(e["event"] == "sys_enter_read" for e in evs)    # ld.so reads libc: fd 3, count 832


def test_stream_with_strings(basic):
    status, out, err, _ = run("stream", "-s", "-e", "sys_enter_openat", "-e", "sys_exit_openat", "--", basic, "0")
    assert status == 0, err
    lines = out.splitlines()
    # the newest kernel's text of sys_enter_openat with its string (its own printer)
    assert any('filename: ' in line and '"/nonexistent/usertrace", flags: O_RDONLY)' in line
               for line in lines)
    assert any(line.endswith("sys_openat -> 0xfffffffffffffffe") for line in lines)


def test_exit_code_and_signal_are_passed_on(basic):
    status, out, err, _ = run("stream", "-e", "sys_enter_getppid", "--", basic, "1", "7")
    assert status == 7
    status, out, err, ctx = run("stream", "-e", "sys_enter_getppid", "--", basic, "1", "0", "segv")
    assert status == 128 + signal.SIGSEGV
    assert ctx.kill_with is not None and ctx.kill_with.signal == signal.SIGSEGV


def test_console_script_dies_of_the_same_signal(basic):
    r = subprocess.run([sys.executable, "-m", "usertrace", "stream", "-e", "sys_enter_getppid", "--",
                        basic, "1", "0", "segv"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == -signal.SIGSEGV
    assert "Traceback" not in r.stderr


def strace_counts(cmd):
    r = subprocess.run(["strace", "-f", "-c", "-w", "-o", "/dev/stdout", *cmd], capture_output=True, text=True)
    return _table_counts(r.stdout)


def _table_counts(text):
    counts = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            counts[parts[-1]] = (int(parts[3]), int(parts[4]) if len(parts) == 6 else 0)
    return counts


def test_stat_counts_like_strace(basic):
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    status, out, err, _ = run("stat", "--", basic, "5")
    assert status == 0
    ours = _table_counts(err)
    theirs = strace_counts([basic, "5"])
    assert ours["getppid"] == (5, 0) == theirs["getppid"]
    assert ours["openat"][1] >= 1
    # the same syscalls with the same calls and errors, but exit_group (no exit: not timed)
    theirs.pop("exit_group", None)
    assert ours == theirs


def test_stat_counts_rt_sigreturn_like_strace(target):
    """rt_sigreturn has no exit (in the kernel, so in our events), yet strace -c counts it."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    prog = str(target("signals"))
    status, out, err, _ = run("stat", "--", prog, "handler")
    ours = _table_counts(err)
    theirs = strace_counts([prog, "handler"])
    assert ours["rt_sigreturn"] == theirs["rt_sigreturn"]
    assert ours["rt_sigreturn"][0] >= 1


def test_stream_shows_a_buffer_up_to_its_count():
    code = "import os; b = b'0123456789abcdef'; os.write(1, memoryview(b)[:3])"
    status, out, err, _ = run("stream", "-s", "-e", "sys_enter_write", "--", sys.executable,
                              "-c", code)
    assert status == 0, err
    line = next(l for l in out.splitlines() if "sys_write(fd: 1" in l)
    assert line.endswith('"012", count: 3)'), line


BAD = [
    # argv                                                      status  message
    (["record", "-e", "nosuch", "--", "true"],                 1, "no event matches 'nosuch'"),
    (["stream", "-e", "sys_exit_openat", "-f", "ret <", "--", "true"], 2, "Invalid value (did you forget quotes)?"),
    (["stream", "-e", "sys_exit_openat", "-f", "ret ~ \"x\"", "--", "true"], 2, "^"),
    (["record", "-o", "/nonexistent-dir/x.dat", "--", "true"], 1, "no directory /nonexistent-dir"),
    (["stream", "--", "/nonexistent/cmd"],                     1, "/nonexistent/cmd"),
    (["stream", "-P", "0"],                                    2, "not a process id"),
    (["stream", "-P", "abc"],                                  2, "not a process id"),
    (["stream", "-P", "2147483646"],                           1, "no such process"),
    (["stream"],                                               2, "nothing to trace"),
    (["stream", "-P", "1", "--", "true"],                      2, "not both"),
    (["report", "-i", "/nonexistent.dat"],                     1, "cannot open"),
]


@pytest.mark.parametrize("argv,status,message", BAD)
def test_bad_input_is_a_clear_error(argv, status, message):
    got, out, err, _ = run(*argv)
    assert got == status
    assert message in err
    assert "Traceback" not in err


def test_report_of_a_truncated_or_foreign_file(basic, tmp_path):
    dat = tmp_path / "t.dat"
    assert run("record", "-e", "sys_*_getppid", "-o", str(dat), "--", basic, "1")[0] == 0
    data = dat.read_bytes()
    # Every cut short of the last bytes (the strings that only name v7 sections, which
    # trace-cmd does without too) loses metadata or pages: an error, never a partial report.
    for cut in range(10, len(data) - 200, len(data) // 20):
        bad = tmp_path / f"cut{cut}.dat"
        bad.write_bytes(data[:cut])
        status, out, err, _ = run("report", "-i", str(bad))
        assert status == 1 and err.startswith("usertrace: ") and "Traceback" not in err
    foreign = tmp_path / "foreign.dat"
    foreign.write_bytes(b"\x7fELF" + bytes(100))
    status, out, err, _ = run("report", "-i", str(foreign))
    assert status == 1 and "trace.dat" in err


def test_ustring_filter_reads_the_string_from_the_process(basic, tmp_path):
    dat = tmp_path / "t.dat"
    status, out, err, _ = run("record", "-e", "sys_enter_openat", "-f", 'filename.ustring ~ "/nonexistent/*"',
                              "-o", str(dat), "--", basic, "0")
    assert status == 0, err
    evs = events_of(dat)
    assert len(evs) == 1          # of every openat (ld.so's, libc's, /dev/null) only this one
    assert evs[0]["fields"]["flags"] == 0 and evs[0]["fields"]["filename"] > 0xFFFF


def test_an_empty_filter_is_a_usage_error():
    status, out, err, _ = run("stream", "-e", "sys_enter_getppid", "-f", " ", "--", "true")
    assert status == 2 and "an empty filter" in err and out == ""
