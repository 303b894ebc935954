"""The kernel backend against the ptrace backend and the kernel's own tools.

* One program (ASLR off: ``setarch -R``) recorded with ``--backend kernel`` and with
  ``--backend ptrace`` gives, task by task, the same events with the same values (pids
  renamed by order of appearance): the syscall events and the task events (tasks made,
  signals delivered with their actions, tasks ended; ``task_events`` makes every kind).  The kernel's ways that differ are left out and named:
  ``common_flags``/``common_preempt_count`` (the ptrace engine writes 0), the cpu and time of
  each record, what the launched task did before its last exec (the tracer's own fork
  and ``setarch``, whose addresses are random), and calls interrupted and restarted (under
  ptrace an ignored SIGCHLD still interrupts a blocking call, as timing has it).  The first record of a child is the exit of
  the call that made it (``sys_exit_clone`` with ret 0) on both: the engine makes it the
  kernel's way, and the comparison checks it.
* ``-a`` sees a process that the test starts after the recording began, and none of the
  recorder's own threads.
* Ctrl-C, SIGTERM and SIGKILL of usertrace: no instance and no uprobe group left after the
  next run, and the trace.dat is written where the signal lets it be (not after SIGKILL:
  the file is only written at the end).
* ``trace-cmd report`` reads the kernel backend's trace.dat.
* The kernel's losses are reported exactly: with the readers held back, the events in the
  file plus those reported lost are all the program made.
* A probe given to the backend (the hook of the probe source) records under the user's
  group and event names and is removed at the end.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from usertrace.kernel.probes import GROUP_NAME, defined_probes
from usertrace.kernel.tracefs import INSTANCE_NAME, find_tracefs, why_no_tracefs

pytestmark = pytest.mark.kernel

COMMON = {"common_type", "common_flags", "common_preempt_count", "common_pid"}
# group_dead: the kernel's last task of a process to run its exit; the ptrace engine's last
# to be collected (ptrace reports a leader after its threads).  Checked apart.
LEFT_OUT = COMMON | {"group_dead"}


@pytest.fixture(autouse=True)
def _need_kernel():
    reason = why_no_tracefs()
    if reason:
        pytest.skip(reason)


def usertrace(*argv, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "usertrace", *argv], capture_output=True,
                          text=True, timeout=timeout, **kw)


def start_usertrace(*argv):
    return subprocess.Popen([sys.executable, "-m", "usertrace", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def report(path) -> list[dict]:
    r = usertrace("report", "-i", str(path), "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def instances_of(pid: int) -> list[str]:
    root = find_tracefs()
    return [n for n in os.listdir(root / "instances")
            if (m := INSTANCE_NAME.fullmatch(n)) and int(m[1]) == pid]


def groups_of(pid: int) -> set[str]:
    return {g for g, _ in defined_probes(find_tracefs())
            if (m := GROUP_NAME.fullmatch(g)) and int(m[1]) == pid}


def wait_tracing(pid: int, timeout: float = 60) -> str:
    """The instance of usertrace ``pid``, once its tracing is on."""
    root = find_tracefs()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in instances_of(pid):
            try:
                if (root / "instances" / name / "tracing_on").read_text().strip() == "1":
                    return name
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"usertrace {pid} never switched its tracing on")


# -- the same events as the ptrace backend ------------------------------------------------------

RESTARTS = {-512, -513, -514, -516}       # ERESTARTSYS, ...NOINTR, ...NOHAND, _RESTARTBLOCK


def without_restarts(events: list[dict]) -> list[dict]:
    """A call interrupted by a signal and restarted shows as an enter, an exit with a restart
    code, and the enter again.  Under ptrace a signal that the program ignores (SIGCHLD)
    still stops it, so its blocking calls are interrupted where the kernel's alone are
    not, depending on timing: such a pair is left out on both sides."""
    out: list[dict] = []
    for e in events:
        if (e["event"].startswith("sys_exit_") and e["fields"].get("ret") in RESTARTS
                and out and out[-1]["event"] == "sys_enter_" + e["event"][9:]):
            out.pop()
            continue
        # a task killed inside a call: the kernel records the call's exit with a restart
        # code (left out above), ptrace never sees that exit; the entry goes too
        if (e["event"] == "signal_deliver" and e["fields"]["sig"] == signal.SIGKILL
                and out and out[-1]["event"].startswith("sys_enter_")):
            out.pop()
        out.append(e)
    return out


def per_task(events: list[dict], tracer_pid: int) -> list[list[tuple]]:
    """Each task's events in order, the tasks in order of first appearance; every value that
    is a pid (of a task, or of the tracer: getppid) renamed; the launched task's events
    before its last exec left out."""
    tasks: dict[int, list[dict]] = {}
    for e in events:
        tasks.setdefault(e["pid"], []).append(e)
    first = events[0]["pid"]
    execs = [i for i, e in enumerate(tasks[first])
             if e["event"] == "sys_exit_execve" and e["fields"]["ret"] == 0]
    tasks[first] = tasks[first][execs[-1] + 1:]
    # the tasks in the order the first one names them (the children in the order it made
    # them: which one runs first is the scheduler's choice), then any other
    order = [first]
    for e in tasks[first] + events:
        for v in (e["pid"], *e["fields"].values()):
            if v in tasks and v not in order:
                order.append(v)
    names = {tracer_pid: "TRACER"} | {pid: f"T{i}" for i, pid in enumerate(order)}

    def rename(v):
        return names.get(v, v) if isinstance(v, int) else v

    for pid in order:
        tasks[pid] = without_restarts(tasks[pid])
    return [[(e["event"], tuple((k, rename(v)) for k, v in sorted(e["fields"].items())
                                if k not in LEFT_OUT)) for e in tasks[pid]] for pid in order]


def record_both(tmp_path, argv, status):
    out = {}
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "PYTHONPATH": os.environ["PYTHONPATH"]}
    for backend in ("kernel", "ptrace"):
        dat = tmp_path / f"{backend}.dat"
        p = subprocess.Popen([sys.executable, "-m", "usertrace", "record", "--no-strings", "--backend", backend,
                              "-o", str(dat), "--", shutil.which("setarch"), "-R", *argv],
                             env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=120)
        assert p.returncode == status, err
        events = report(dat)
        RAW[backend] = events
        out[backend] = per_task(events, p.pid)
    return out["kernel"], out["ptrace"]


RAW: dict[str, list[dict]] = {}     # the last record_both's events, by backend


@pytest.mark.skipif(shutil.which("setarch") is None, reason="needs setarch")
@pytest.mark.parametrize("prog,args,status", [("sc_seq", ["0"], 0), ("forkexec", ["1"], 7),
                                              ("signals", ["handler"], 0),
                                              ("task_events", ["4"], 4)])
def test_kernel_and_ptrace_record_the_same_events(target, tmp_path, prog, args, status):
    kernel, ptrace = record_both(tmp_path, [str(target(prog)), *args], status)
    assert len(kernel[0]) > 20
    assert [len(t) for t in kernel] == [len(t) for t in ptrace]
    assert kernel == ptrace
    # one task of each process ends it (group_dead), on both
    ends = {b: sorted(e["fields"]["group_dead"] for e in RAW[b]
                      if e["event"] == "sched_process_exit") for b in RAW}
    assert ends["kernel"] == ends["ptrace"] and ends["kernel"].count(1) >= 1
    for child in kernel[1:]:                      # a child starts in the call that made it
        name, fields = child[0]
        assert name in ("sys_exit_clone", "sys_exit_clone3", "sys_exit_vfork")
        assert dict(fields)["ret"] == 0


def test_stream_lines_equal_the_ptrace_backends(target):
    exe = str(target("sc_seq"))
    texts = {}
    for backend in ("kernel", "ptrace"):
        r = usertrace("stream", "--no-strings", "--backend", backend, "-e", "sys_*_close", "-e",
                      "sys_*_lseek", "--", exe, "3")
        assert r.returncode == 3, r.stderr
        # "comm-pid [cpu] flags time: text": the text, and the task's name
        texts[backend] = [(line.split()[0].rsplit("-", 1)[0], line.split(": ", 1)[1])
                          for line in r.stdout.splitlines()]
    assert texts["kernel"] == texts["ptrace"]
    assert ("sc_seq", "sys_close(fd: 0xffffffffffffffff)") in texts["kernel"]
    assert ("sc_seq", "sys_lseek(fd: 3, offset: 7, whence: 0)") in texts["kernel"]


def test_stat_table_counts_equal_the_ptrace_backends(target):
    exe = str(target("forkexec"))
    tables = {}
    for backend in ("kernel", "ptrace"):
        r = usertrace("stat", "--backend", backend, "--", exe, "1")
        assert r.returncode == 7, r.stderr
        tables[backend] = {parts[-1]: (parts[3], parts[4] if len(parts) == 6 else "0")
                           for parts in map(str.split, r.stderr.splitlines())
                           if len(parts) >= 5 and parts[0][0].isdigit()}
    # wait4: under ptrace the parent's wait is interrupted by SIGCHLD (restarted: one more
    # call, one more error) when the child ends at the wrong time (see without_restarts)
    for table in tables.values():
        del table["wait4"], table["total"]
    assert tables["kernel"] == tables["ptrace"]
    assert tables["kernel"]["execve"][0] == "3"   # the program twice, /bin/true once


# -- every process -------------------------------------------------------------------------

def test_all_sees_a_process_started_later_and_not_itself(target, tmp_path):
    dat = tmp_path / "all.dat"
    p = start_usertrace("record", "-a", "-e", "sys_enter_getppid", "-e", "sys_exit_getppid",
                        "-o", str(dat))
    try:
        wait_tracing(p.pid)
        own = {int(t) for t in os.listdir(f"/proc/{p.pid}/task")}
        later = subprocess.Popen([str(target("sc_seq")), "0"])   # started by the test
        assert later.wait(timeout=60) == 0
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    evs = report(dat)
    mine = [e for e in evs if e["pid"] == later.pid]
    assert [e["event"] for e in mine] == ["sys_enter_getppid", "sys_exit_getppid"] * 2
    assert all(e["fields"]["ret"] == os.getpid() for e in mine[1::2])
    assert mine[0]["comm"] == "sc_seq"
    assert not [e for e in evs if e["pid"] in own]
    assert not instances_of(p.pid)


def test_all_with_a_command_records_the_command_too(tmp_path):
    dat = tmp_path / "a.dat"
    r = usertrace("record", "-a", "-e", "sys_enter_execve", "-o", str(dat), "--",
                  "sh", "-c", "echo $$; /bin/true & echo $!; wait; exit 3")
    assert r.returncode == 3, r.stderr
    sh, child = map(int, r.stdout.split())
    execs = {e["pid"] for e in report(dat) if e["event"] == "sys_enter_execve"}
    assert {sh, child} <= execs                 # the command's exec, and its child's


def passes(path) -> int:
    """The spin target's pass counter (0 while it is being rewritten)."""
    try:
        return int(Path(path).read_text() or 0)
    except (OSError, ValueError):
        return 0


def test_attach_records_every_thread_and_lets_go(target, tmp_path):
    """-P: every thread of a running process; Ctrl-C ends the recording and the process runs
    on (nothing stopped it: the kernel's pid filter)."""
    proc = subprocess.Popen([str(target("spin")), str(tmp_path / "count"), "threads"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        threads = {int(t) for t in os.listdir(f"/proc/{proc.pid}/task")}
        dat = tmp_path / "p.dat"
        p = start_usertrace("record", "--backend", "kernel", "-e", "sys_exit_getppid",
                            "-o", str(dat), "-P", str(proc.pid))
        wait_tracing(p.pid)
        start = passes(tmp_path / "count")
        while passes(tmp_path / "count") < start + 100:     # its loops go on meanwhile
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert proc.poll() is None                  # it runs on
        evs = report(dat)
        assert {e["pid"] for e in evs} == threads
        assert {e["fields"]["ret"] for e in evs} == {os.getpid()}
    finally:
        proc.kill()
        proc.wait()


def test_all_is_refused_with_ptrace():
    r = usertrace("stat", "-a", "--backend", "ptrace")
    assert r.returncode == 1
    assert "-a (every process) needs the kernel backend" in r.stderr


# -- signals and what is left -------------------------------------------------------------------

# SIGINT (Ctrl-C) is the command's first: it dies of it, and usertrace ends as it ended;
# SIGTERM lets go of it (it gets the signal too) and usertrace exits with 128 + 15.
@pytest.mark.parametrize("sig,status", [(signal.SIGINT, -signal.SIGINT),
                                        (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_signal_ends_the_recording_cleanly(target, tmp_path, sig, status):
    dat = tmp_path / "t.dat"
    p = start_usertrace("record", "--backend", "kernel", "-e", "sys_enter_getppid",
                        "-o", str(dat), "--", str(target("spin")))
    name = wait_tracing(p.pid)
    assert p.stdout.readline() == "ready\n"
    time.sleep(0.2)                        # some loops of the program (not timed: any number)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == status, err
    assert not (find_tracefs() / "instances" / name).exists()
    evs = report(dat)
    assert evs and {e["event"] for e in evs} == {"sys_enter_getppid"}
    assert f"{len(evs)} events recorded in {dat}" in err


def test_a_second_ctrl_c_lets_go_of_a_command_that_ignores_the_first(target, tmp_path):
    dat = tmp_path / "t.dat"
    p = start_usertrace("record", "--backend", "kernel", "-e", "sys_enter_getppid",
                        "-o", str(dat), "--", "sh", "-c", f'trap "" INT; exec "{target("spin")}"')
    name = wait_tracing(p.pid)
    assert p.stdout.readline() == "ready\n"
    with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
        (command,) = [int(c) for c in f.read().split()]
    try:
        p.send_signal(signal.SIGINT)            # the command's: it ignores it, tracing goes on
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(timeout=1)
        assert (find_tracefs() / "instances" / name / "tracing_on").read_text() == "1\n"
        p.send_signal(signal.SIGINT)            # ours: let go
        p.wait(timeout=120)
        assert os.path.exists(f"/proc/{command}")          # it runs on
    finally:
        os.kill(command, signal.SIGKILL)                    # (it holds our pipes)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGINT, err
    assert not (find_tracefs() / "instances" / name).exists()
    assert report(dat)


def probe_target(exe: Path) -> str:
    """A probe on the function ``hit`` of ``exe``, by symbol (the probes' parser resolves
    it), recorded as ``app:hit``."""
    return f"p:app/hit {exe}:hit"


RECORD_WITH_PROBE = """
import sys
from usertrace.session import EventSpec, Recorder
rec = Recorder([EventSpec("syscalls:sys_enter_getppid")], backend="kernel")
rec.kernel.add_probe(sys.argv[2])
rec.record_to(sys.argv[1])
status = rec.run(sys.argv[3:])
print(rec.summary(), file=sys.stderr)
sys.exit(status.returncode)
"""


def kill_with_sigkill(p) -> None:
    """SIGKILL a recorder; its command (which runs on, untraced) too."""
    with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
        children = [int(c) for c in f.read().split()]
    p.kill()
    p.wait(timeout=60)
    for pid in children:
        os.kill(pid, signal.SIGKILL)


def test_sigkill_leaves_what_the_next_run_removes(target, tmp_path):
    probe = probe_target(target("uprobe_hits"))
    p = subprocess.Popen([sys.executable, "-c", RECORD_WITH_PROBE, str(tmp_path / "k.dat"),
                          probe, str(target("spin"))], stdout=subprocess.PIPE, text=True)
    name = wait_tracing(p.pid)
    assert p.stdout.readline() == "ready\n"
    assert groups_of(p.pid)
    kill_with_sigkill(p)
    assert name in instances_of(p.pid) and groups_of(p.pid)       # left behind
    assert not (tmp_path / "k.dat").exists()        # the file is written at the end only
    r = usertrace("clean", "-n")
    assert f"would remove instance {name}" in r.stdout
    r = usertrace("record", "-v", "--backend", "kernel", "-e", "sys_enter_getppid",
                  "-o", str(tmp_path / "next.dat"), "--", "true")
    assert r.returncode == 0, r.stderr
    assert f"removed instance {name} (left by a run that was killed)" in r.stderr
    assert not instances_of(p.pid) and not groups_of(p.pid)


def test_clean_removes_leftovers(target, tmp_path):
    p = subprocess.Popen([sys.executable, "-c", RECORD_WITH_PROBE, str(tmp_path / "k.dat"),
                          probe_target(target("uprobe_hits")), str(target("spin"))],
                         stdout=subprocess.PIPE, text=True)
    name = wait_tracing(p.pid)
    p.stdout.readline()
    (group,) = groups_of(p.pid)
    kill_with_sigkill(p)
    r = usertrace("clean")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"removed instance {name}" in r.stdout
    assert f"removed probe {group}/app__hit" in r.stdout
    assert not instances_of(p.pid) and not groups_of(p.pid)


def test_probe_events_carry_the_users_names(target, tmp_path):
    """Hits of the traced command, named as the user named the probe; not those of another
    process running the same program meanwhile (set_event_pid filters probe events too)."""
    exe = target("uprobe_hits")
    dat = tmp_path / "p.dat"
    p = subprocess.Popen([sys.executable, "-c", RECORD_WITH_PROBE, str(dat), probe_target(exe),
                          "sh", "-c", f'read x; exec "{exe}" 4'], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    wait_tracing(p.pid)
    other = subprocess.run([str(exe), "5"])             # not traced
    _, err = p.communicate("go\n", timeout=120)
    assert other.returncode == 0 and p.returncode == 0, err
    evs = report(dat)
    hits = [e for e in evs if e["event"] == "hit"]
    assert len(hits) == 4 and {e["system"] for e in hits} == {"app"}
    assert {e["pid"] for e in hits} == {e["pid"] for e in evs if e["comm"] == "uprobe_hits"}
    order = [e["event"] for e in evs]
    assert order[-8:] == ["hit", "sys_enter_getppid"] * 4       # each call before its getppid
    assert not groups_of(p.pid)


# -- the kernel's tools and counts -------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("trace-cmd") is None, reason="needs trace-cmd")
def test_trace_cmd_reads_the_kernel_backends_file(target, tmp_path):
    dat = tmp_path / "k.dat"
    r = usertrace("record", "--backend", "kernel", "-o", str(dat), "--", str(target("forkexec")), "1")
    assert r.returncode == 7, r.stderr
    tc = subprocess.run(["trace-cmd", "report", "-i", str(dat)], capture_output=True, text=True)
    assert tc.returncode == 0, tc.stderr
    kinds = (": sys_", ": task_newtask:", ": signal_deliver:", ": sched_process_exit:")
    lines = [line for line in tc.stdout.splitlines() if any(k in line for k in kinds)]
    ours = report(dat)
    assert len(lines) == len(ours) > 100
    assert {e["event"] for e in ours} >= {"task_newtask", "sched_process_exit"}
    for line, e in zip(lines, ours):
        assert f"-{e['pid']} " in line and f" {e['event']}:" in line
        assert f"[{e['cpu']:03d}]" in line


def test_losses_are_reported_exactly(target, tmp_path, monkeypatch):
    """The readers held back until the end (as a reader that cannot keep up): every event the
    program made is in the file or counted lost by the kernel."""
    from usertrace.kernel.backend import KernelSource
    from usertrace.session import EventSpec, Recorder

    monkeypatch.setattr(KernelSource, "_wait_for_pages",
                        lambda self, poller: self._stop.wait() or True)
    rec = Recorder([EventSpec("sys_enter_getppid"), EventSpec("sys_exit_getppid")],
                   backend="kernel")
    dat = tmp_path / "l.dat"
    rec.record_to(str(dat), buffer_kb=16)
    status = rec.run([str(target("threads")), "1", "20000"], handle_signals=False)
    assert status.returncode == 0
    t = rec.session.trace
    assert t.lost > 0
    assert t.entries + t.lost == 2 * 20000
    assert len(report(dat)) == t.entries
    # the trace.dat's CPUSTAT is the kernel's count: the report's header shows it
    r = usertrace("report", "-i", str(dat))
    assert r.stdout.splitlines()[2].startswith(
        f"# entries-in-buffer/entries-written: {t.entries}/{t.entries + t.lost}   #P:")
    lines = rec.problems()
    assert lines and all(line.startswith("kernel: cpu ") and "dropped (buffer full)" in line
                         for line in lines)
    assert sum(int(line.split(": ", 2)[2].split()[0]) for line in lines) == t.lost


def test_without_root_auto_picks_ptrace_and_kernel_says_why(target):
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv")
    exe = str(target("sc_seq"))
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = subprocess.run([*nobody, sys.executable, "-m", "usertrace", "stream", "-v", "-e",
                        "sys_enter_getppid", "--", exe], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "backend: ptrace (needs root for tracefs)" in r.stderr
    assert r.stdout.count("sys_getppid()") == 2
    r = subprocess.run([*nobody, sys.executable, "-m", "usertrace", "stream", "--backend",
                        "kernel", "--", exe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr == "usertrace: the kernel backend cannot run: needs root for tracefs\n"
