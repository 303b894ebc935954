"""The compiled stop loop (usertrace.ptrace._ptrace.stops): syscall records with no data, a
string or a buffer made by the engine's C extension must be the Python path's, byte for
byte, which the same run under USERTRACE_PURE_PYTHON=1 takes at every stop.

The target, tests/targets/syscall_mix.c, makes such calls (strings cut at the string size,
unprintable, NULL and unreadable; buffers larger than it, empty, unreadable; results that
fail) from the main thread, three threads and a fork child."""

import json
import os
from collections import Counter

import pytest
from _paths import needs_compiled, record_both_ways


ROUNDS = 20
SIZE = 16               # -s: strings and buffers recorded

RUN = r"""
import json, sys
from usertrace.events.registry import Consumer
from usertrace.session import Recorder
out, session, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
rec = Recorder(None, consumers=Consumer.TRACE, session_dir=session, string_size=size)
rec.record_to(out)
status = rec.run(sys.argv[4:], handle_signals=False)
print("RESULT " + json.dumps({"code": status.code,
                              "compiled": rec.engine.compiled_records}), flush=True)
"""


# What differs from run to run whoever records: pids and thread ids, descriptors (threads
# race for them), random bytes, and where the launcher kept the first exec's vectors; futex
# calls are left out altogether.
VARYING = {
    "sys_enter_execve": ("argv", "envp", "filename"), "sys_exit_getppid": ("ret",),
    "sys_exit_openat": ("ret",), "sys_exit_clone": ("ret",), "sys_exit_clone3": ("ret",),
    "sys_exit_set_tid_address": ("ret",), "sys_exit_getrandom": ("__ubuf_val",),
    "sys_exit_wait4": ("ret",), "sys_enter_wait4": ("upid",),
}


def record(prog, tmp_path, name, pure, rounds=ROUNDS, threads=3):
    out = tmp_path / f"{name}.dat"
    result, _, events = record_both_ways(
        RUN, [out, tmp_path / "session", SIZE, prog, rounds, threads], out, pure)
    tasks: dict[int, list] = {}
    for e in events:
        if not e["event"].startswith("sys_") or e["event"].endswith("_futex"):
            continue                            # how often threads wait on each other varies
        fields = {k: v for k, v in e["fields"].items() if k not in VARYING.get(e["event"], ())
                  and k not in ("common_pid", "fd")}
        tasks.setdefault(e["pid"], []).append((e["event"], json.dumps(fields, sort_keys=True)))
    return result, tasks


@pytest.fixture
def prog():
    from conftest import build_target
    return build_target("syscall_mix")


def test_compiled_stops_record_as_the_python_path(prog, tmp_path):
    needs_compiled("stops")
    fast, fast_tasks = record(prog, tmp_path, "compiled", pure=False)
    slow, slow_tasks = record(prog, tmp_path, "python", pure=True)
    assert fast["code"] == slow["code"] == 0
    assert slow["compiled"] == 0
    total = sum(len(v) for v in fast_tasks.values())
    assert fast["compiled"] > total * 0.8            # most records made by the C loop
    assert len(fast_tasks) == len(slow_tasks) == 5   # main, three threads, the child
    # task by task, each task's records in order (the tasks sorted by their records: the
    # threads' are alike)
    assert sorted(map(tuple, fast_tasks.values())) == sorted(map(tuple, slow_tasks.values()))
    # what the data hold, from the compiled run
    events = Counter(ev for seq in fast_tasks.values() for ev, _ in seq)
    assert events["sys_enter_openat"] >= 5 * 4 * ROUNDS // 2
    texts = [json.loads(f) for seq in fast_tasks.values() for ev, f in seq
             if ev == "sys_enter_openat"]
    names = Counter(f.get("__filename_val") for f in texts)
    assert names["/nonexistent/a-p..."] > 0         # cut at 16 bytes with "..."
    assert names["bad..\\xe9name"] > 0             # unprintable bytes as dots
    assert names[""] == 2 * names["/dev/null"]      # NULL and unreadable: nothing
    reads = [json.loads(f) for seq in fast_tasks.values() for ev, f in seq
             if ev == "sys_exit_read"]
    lengths = Counter(len(f.get("__buf_val") or []) for f in reads)
    assert lengths[SIZE] >= 4 * ROUNDS and lengths[0] >= 8 * ROUNDS  # cut; the end, EBADF


def test_compiled_stops_of_many_threads_at_once(prog, tmp_path):
    """40 threads calling at once: one call of the C loop serves stops of more tasks than it
    keeps the fields of (32), and writes some back to make room."""
    needs_compiled("stops")
    fast, fast_tasks = record(prog, tmp_path, "compiled", False, rounds=3, threads=40)
    slow, slow_tasks = record(prog, tmp_path, "python", True, rounds=3, threads=40)
    assert fast["code"] == slow["code"] == 0
    # (the stops collected with one the loop does not serve, a new thread's first, go back to
    # the loop after it: 38% of the records came from C before, when Python served them all)
    assert fast["compiled"] > sum(len(v) for v in fast_tasks.values()) * 0.8
    assert len(fast_tasks) == len(slow_tasks) == 42
    assert sorted(map(tuple, fast_tasks.values())) == sorted(map(tuple, slow_tasks.values()))



def test_a_refresh_in_the_compiled_loop_reads_comm_and_cpu(tmp_path):
    """A task that renames itself by writing its comm file (no prctl the engine watches) is
    known by its new name after its next cpu refresh, which the C loop makes itself: the
    name (spaces, parentheses) and the cpu as the Python path reads them."""
    needs_compiled("stops")
    from conftest import build_target
    prog = build_target("renamed")
    got = {}
    for pure in (False, True):
        out = tmp_path / f"renamed-{pure}.dat"
        result, _, events = record_both_ways(
            RUN, [out, tmp_path / f"session-{pure}", SIZE, prog, 500], out, pure)
        assert result["code"] == 0
        assert (result["compiled"] > 900) != pure          # the refreshes were the C loop's
        calls = [e for e in events if e["event"] == "sys_exit_getppid"]
        assert len(calls) == 500
        cpus = set(range(os.cpu_count()))
        assert all(e["cpu"] in cpus for e in calls)
        got[pure] = {e["comm"] for e in calls}
    assert got[False] == got[True] == {"my (odd) name)"}
