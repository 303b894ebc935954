"""strace's flags on record, stream and stat: ``-e`` selections (names, comma lists,
classes), ``-Z``/``-z`` (whole calls by result), ``-o`` for stream and stat; compared with
strace on the same program where strace has the flag, and with the kernel's rules of
trace-cmd's ``-e SYSTEM:EVENT`` where it has not.
"""

from __future__ import annotations

import collections
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from usertrace.cli.context import Context
from usertrace.cli.main import main
from usertrace.sources.syscalls.classes import expand_strace_selection
from usertrace.sources.syscalls.table import SyscallTable

from _strace_lines import Calls

needs_strace = pytest.mark.skipif(shutil.which("strace") is None,
                                  reason="needs strace (apt-get install strace)")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env={}))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def basic(target):
    return str(target("cli_basic"))


def recorded(dat) -> list[dict]:
    status, out, err = run("report", "-i", str(dat), "--json")
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def report_calls(dat) -> str:
    status, out, err = run("report", "-i", str(dat), "--calls", "-s", "128")
    assert status == 0, err
    return out


def strace_text(tmp_path, *argv) -> str:
    out = tmp_path / "strace.out"
    subprocess.run(["strace", "-f", "-s", "128", "-o", str(out), *argv],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return out.read_text()


def names(text: str) -> collections.Counter:
    return collections.Counter(c[0] for th in Calls(text).threads.values() for c in th)


# -- -e ---------------------------------------------------------------------------------------

def test_a_call_name_enables_both_its_events(basic, tmp_path):
    dat = tmp_path / "o.dat"
    assert run("record", "-e", "openat", "-o", str(dat), "--", basic, "0")[0] == 0
    evs = recorded(dat)
    assert {e["event"] for e in evs} == {"sys_enter_openat", "sys_exit_openat"}
    assert [e["event"] for e in evs].count("sys_enter_openat") == \
        [e["event"] for e in evs].count("sys_exit_openat") >= 2


@needs_strace
@pytest.mark.parametrize("selection", ["openat,close,write", "trace=%file", "!%desc,%memory",
                                       "trace=/^get", "%memory,%process"])
def test_selections_trace_the_calls_strace_traces(basic, tmp_path, selection):
    """The calls recorded with ``-e SELECTION`` are those strace prints with ``-e
    trace=SELECTION`` (the program's, the same number of each)."""
    dat = tmp_path / "s.dat"
    assert run("record", "-e", selection, "-o", str(dat), "--", basic, "2")[0] == 0
    ours = names(report_calls(dat))
    body = selection.split("=", 1)[-1]
    theirs = names(strace_text(tmp_path, "-e", f"trace={body}", basic, "2"))
    assert ours == theirs and sum(ours.values()) >= 2
    by_event = SyscallTable.for_arch("x86_64").by_event
    wanted = {by_event[e.split("sys_enter_")[1]].name for e in expand_strace_selection(selection)
              if "sys_enter_" in e}
    assert set(ours) <= wanted


def test_a_filter_on_a_selection_applies_where_its_fields_are(basic, tmp_path):
    dat = tmp_path / "f.dat"
    assert run("record", "-e", "openat", "-f", "ret < 0", "-o", str(dat), "--",
               basic, "0")[0] == 0
    evs = recorded(dat)
    enters = [e for e in evs if e["event"] == "sys_enter_openat"]
    exits = [e for e in evs if e["event"] == "sys_exit_openat"]
    assert len(enters) >= 3                          # no ret: not filtered, as the kernel
    assert [e["fields"]["ret"] for e in exits] == [-2]


def test_trace_cmd_event_names_stay_trace_cmds(basic, tmp_path):
    dat = tmp_path / "t.dat"
    assert run("record", "-e", "syscalls:sys_enter_openat", "-e", "sys_exit_close",
               "-o", str(dat), "--", basic, "0")[0] == 0
    assert {e["event"] for e in recorded(dat)} == {"sys_enter_openat", "sys_exit_close"}


BAD = [
    # argv                                    status  message (the fault marked by a caret)
    (["-e", "openat,nosuch"],                  1, "invalid system call 'nosuch'\nopenat,nosuch\n       ^"),
    (["-e", "trace=%nope"],                    1, "invalid class '%nope'"),
    (["-e", "openat,,close"],                  1, "empty system call name\nopenat,,close\n       ^"),
    (["-e", "/[x"],                            1, "invalid regular expression"),
    (["-e", "nosuch"],                         1, "no event matches 'nosuch'"),
]


@pytest.mark.parametrize("args,status,message", BAD)
def test_bad_selections_are_clear_errors(args, status, message):
    got, out, err = run("record", *args, "--", "true")
    assert got == status and message in err and "Traceback" not in err, err


# -- -Z, -z ---------------------------------------------------------------------------------

@needs_strace
@pytest.mark.parametrize("flag", ["-Z", "-z"])
def test_whole_calls_by_result_as_strace(basic, tmp_path, flag):
    """``record -Z`` keeps the failed calls, enter and exit; ``-z`` the others; the calls
    are those strace prints with the same flag."""
    dat = tmp_path / "z.dat"
    assert run("record", flag, "-o", str(dat), "--", basic, "2")[0] == 0
    evs = recorded(dat)
    assert any(e["event"] == "sched_process_exit" for e in evs)     # the ends stay
    by_tid: dict[int, list] = {}
    for e in evs:
        if not e["event"].startswith("sys_"):
            continue
        by_tid.setdefault(e["pid"], []).append(e)
    for seq in by_tid.values():              # whole calls: an enter, then its exit
        kinds = [e["event"].split("_", 2)[1] for e in seq]
        assert kinds == ["enter", "exit"] * (len(kinds) // 2)
        for a, b in zip(seq[::2], seq[1::2]):
            assert a["event"].split("_", 2)[2] == b["event"].split("_", 2)[2]
            failed = -4095 <= b["fields"]["ret"] < 0
            assert failed == (flag == "-Z")
    ours = report_calls(dat)
    theirs = strace_text(tmp_path, flag, basic, "2")
    theirs_names = names(theirs)
    theirs_names.pop("exit_group", None)     # strace -z shows exit_group; it never returns
    assert names(ours) == theirs_names and sum(theirs_names.values()) >= 2


def test_stream_failed_calls_in_one_line_each(basic):
    status, out, err = run("stream", "--calls", "-Z", "--", basic, "1")
    assert status == 0, err
    lines = out.splitlines()
    calls = [line for line in lines if "(" in line and not line.startswith(("+++", "---"))]
    assert calls and all(" = -1 E" in line for line in calls), lines
    assert 'openat(AT_FDCWD, "/nonexistent/usertrace", O_RDONLY) = -1 ENOENT ' \
        '(No such file or directory)' in lines


def test_stat_counts_only_the_failed_calls_with_Z(basic):
    status, out, err = run("stat", "-Z", "--", basic, "3")
    assert status == 0
    rows = {line.split()[-1]: line.split() for line in err.splitlines()
            if line.strip() and line.split()[0][0].isdigit() and "total" not in line}
    assert set(rows) == {"openat", "access"}
    assert all(r[3] == r[4] for r in rows.values())          # calls == errors


# -- -o -------------------------------------------------------------------------------------

def test_stream_o_writes_the_events_to_the_file_not_among_the_programs_output(tmp_path):
    out_file = tmp_path / "s.txt"
    r = subprocess.run([sys.executable, "-m", "usertrace", "stream", "-e", "write", "-o",
                        str(out_file), "--", "sh", "-c", "echo program-output"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "program-output\n"
    text = out_file.read_text()
    assert 'sys_write(fd: 1, buf: 0x' in text and '"program-output."' in text
    assert "sys_write -> 0xf" in text


def test_stream_calls_o_writes_strace_lines_with_pids(basic, tmp_path):
    out_file = tmp_path / "c.txt"
    status, out, err = run("stream", "--calls", "-e", "openat", "-o", str(out_file), "--",
                           basic, "0")
    assert status == 0 and out == ""
    lines = out_file.read_text().splitlines()
    pid = lines[0].split()[0]
    assert pid.isdigit() and all(line.startswith(pid + " ") for line in lines)
    assert f'{pid:<5} openat(AT_FDCWD, "/dev/null", O_WRONLY) = 3' in lines
    assert lines[-1] == f"{pid:<5} +++ exited with 0 +++"


def test_stat_o_writes_the_table_to_the_file(basic, tmp_path):
    out_file = tmp_path / "t.txt"
    status, out, err = run("stat", "-o", str(out_file), "--", basic, "4")
    assert status == 0
    text = out_file.read_text()
    assert "getppid" in text and "% time" in text
    assert "getppid" not in err and out == ""


@pytest.mark.parametrize("argv,message", [
    (["stream", "-o", "/nonexistent-dir/x", "--", "true"], "cannot write /nonexistent-dir/x"),
    (["stat", "-o", "/", "--", "true"], "cannot write /"),
    (["stream", "-T", "--", "true"], "-T applies to --calls"),
    (["report", "-y", "-i", "x.dat"], "-y applies to --calls"),
    (["stream", "--calls", "-tttt", "--", "true"], "at most -ttt"),
    (["record", "-s", "0", "--", "true"], "-s 0: give 1 to 1024"),
])
def test_bad_output_options_are_clear_errors(argv, message):
    got, out, err = run(*argv)
    assert got != 0 and message in err and "Traceback" not in err, err


def test_report_calls_Z_and_z_split_the_calls(basic, tmp_path):
    dat = tmp_path / "a.dat"
    assert run("record", "-o", str(dat), "--", basic, "2")[0] == 0
    every = report_calls(dat).splitlines()
    failed = run("report", "-i", str(dat), "--calls", "-Z")[1].splitlines()
    good = run("report", "-i", str(dat), "--calls", "-z")[1].splitlines()
    calls = lambda lines: [l for l in lines if "(" in l and "+++" not in l]  # noqa: E731
    assert calls(failed) and all(" = -1 E" in line for line in calls(failed))
    assert calls(good) and not any(" = -1 E" in line for line in calls(good))
    # every call that returned is in one of them (exit_group never returns: in neither)
    assert len(calls(failed)) + len(calls(good)) == len(calls(every)) - 1


TIME = r"\d\d:\d\d:\d\d"


@pytest.mark.parametrize("flags,pattern", [
    (["-t"], rf"^\d+ +{TIME} \w+\("),
    (["-tt"], rf"^\d+ +{TIME}\.\d{{6}} \w+\("),
    (["-ttt"], r"^\d+ +\d{10}\.\d{6} \w+\("),
    (["-r"], r"^\d+ +\s*\d+\.\d{6} \w+\("),
    (["-T"], r"^\d+ +\w+\(.*\) += .* <\d+\.\d{6}>$"),
], ids=["t", "tt", "ttt", "r", "T"])
def test_time_options_of_calls(basic, tmp_path, flags, pattern):
    import re
    import time
    dat = tmp_path / "t.dat"
    assert run("record", "-e", "getppid", "-o", str(dat), "--", basic, "3")[0] == 0
    status, out, err = run("report", "-i", str(dat), "--calls", *flags)
    lines = [l for l in out.splitlines() if "getppid" in l]
    assert len(lines) == 3 and all(re.match(pattern, l) for l in lines), lines
    if flags == ["-ttt"]:             # the wall clock of now, within the minute
        assert abs(float(lines[0].split()[1]) - time.time()) < 60


@needs_strace
@pytest.mark.parametrize("size", ["2", "4"])
def test_a_small_s_cuts_strings_and_vectors_not_paths_as_strace(tmp_path, size):
    """With --calls, -s is the length shown: strings and argv's strings are cut there, argv
    after -s strings, paths never (the recording keeps at least 128 bytes of each)."""
    argv = ["/bin/echo", "hello", "b", "c", "d", "e"]
    out = tmp_path / "calls"
    status, _, err = run("stream", "--calls", "-s", size, "-o", str(out), "-e", "execve,write",
                         "--", *argv)
    assert status == 0, err
    theirs = tmp_path / "strace.out"
    subprocess.run(["strace", "-s", size, "-e", "trace=execve,write", "-o", str(theirs), *argv],
                   stdout=subprocess.DEVNULL, check=True, timeout=60)
    mine = [line.split(None, 1)[1] for line in out.read_text().splitlines()
            if "execve(" in line or "write(" in line]
    strace = [line for line in theirs.read_text().splitlines()
              if line.startswith(("execve(", "write("))]
    assert len(mine) == len(strace) == 2
    exec_mine, exec_theirs = mine[0].split(", 0x")[0], strace[0].split(", 0x")[0]
    assert exec_mine == exec_theirs                  # path whole, argv cut as strace cuts it
    assert exec_mine.startswith('execve("/bin/echo", [')
    assert mine[1].split() == strace[1].split()      # write's buffer cut at -s
