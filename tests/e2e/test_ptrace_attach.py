"""Attaching to running processes and letting go of them: every thread, detach on request or
on SIGINT/SIGTERM, processes left running and never stopped; errors for bad pids."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from usertrace.ptrace import EXIT, Engine, TraceError

from _ptrace_util import PYTHON, Recorder, engine_for, nrs, python_env


def _state(pid: int) -> tuple[str, int]:
    """(state letter, TracerPid) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    with open(f"/proc/{pid}/status") as f:
        tracer = [int(l.split()[1]) for l in f if l.startswith("TracerPid:")][0]
    return state, tracer


def _counter(path) -> int:
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        return 0


def _wait_until(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def spin(target, tmp_path):
    """spin(*extra) -> (Popen, counter file) of a running target that loops forever."""
    procs = []

    def start(*extra):
        counter = tmp_path / f"count{len(procs)}"
        p = subprocess.Popen([str(target("spin")), str(counter), *extra], stdout=subprocess.PIPE)
        assert p.stdout.readline() == b"ready\n"
        procs.append(p)
        return p, counter

    yield start
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
        except OSError:
            pass
        p.wait()


def _still_running(pid, counter):
    state, tracer = _state(pid)
    assert tracer == 0, "still traced"
    assert state in "RSD", f"left in state {state}"
    before = _counter(counter)
    assert _wait_until(lambda: _counter(counter) > before), "it does not run any more"


def test_attach_every_thread_then_detach(spin):
    proc, counter = spin("threads")
    rec = Recorder()
    stop_after = 200
    tracer = None

    def consumer(kind, task, nr, args, ret, ts):
        rec(kind, task, nr, args, ret, ts)
        if len(rec.events) >= stop_after and len({e.tid for e in rec.events}) >= 4:
            tracer.request_stop(signal.SIGINT)

    result = {}

    def work():   # one thread makes every ptrace request
        nonlocal tracer
        tracer = engine_for(consumer, nrs("getppid", "nanosleep", "clock_nanosleep"))
        result["tids"] = tracer.attach([proc.pid])
        result["status"] = tracer.run(handle_signals=False)

    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert not th.is_alive()
    assert sorted(result["tids"]) == sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
    assert len(result["tids"]) == 4
    assert {e.tid for e in rec.events} == set(result["tids"])
    assert {e.pid for e in rec.events} == {proc.pid}
    assert result["status"].detached and result["status"].signal == signal.SIGINT
    getppid = [e.ret for e in rec.events if e.kind == EXIT and e.name == "getppid"]
    assert getppid and set(getppid) == {os.getpid()}
    _still_running(proc.pid, counter)


TRACER_SCRIPT = """
import sys
from usertrace.ptrace import Engine, StopHandler
t = Engine()
if sys.argv[1] == "attach":
    t.attach([int(sys.argv[2])])
    print("TRACER ready", flush=True)
else:
    seccomp = sys.argv[1] == "launch-seccomp"
    if seccomp:
        h = StopHandler()
        h.enter_syscalls = {39}
        t.add(h)
    pid = t.launch(sys.argv[2:], seccomp=seccomp)
    print("TRACER", pid, flush=True)
st = t.run()
print("TRACER", st.detached, st.signal, st.code, flush=True)
st.exit_like()
"""


def _tracer_process(*args):
    p = subprocess.Popen([PYTHON, "-c", TRACER_SCRIPT, *map(str, args)], env=python_env(),
                         stdout=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("TRACER "):      # the traced command shares our stdout
        line = p.stdout.readline()
        assert line, "the tracer ended early"
    return p, line.split()[1]


def _last_word_line(out: str) -> list[str]:
    return [l for l in out.splitlines() if l.startswith("TRACER ")][-1].split()[1:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_tracer_detaches_attached_process(spin, sig):
    proc, counter = spin("threads")
    tracer, first = _tracer_process("attach", proc.pid)
    assert first == "ready"
    assert _wait_until(lambda: _state(proc.pid)[1] == tracer.pid)
    time.sleep(0.1)                               # let it trace a while
    tracer.send_signal(sig)
    out, _ = tracer.communicate(timeout=30)
    assert _last_word_line(out) == ["True", str(int(sig)), "None"]
    assert tracer.returncode == -sig              # it re-raised the signal on itself
    _still_running(proc.pid, counter)


def test_detach_leaves_a_stopped_process_stopped(spin):
    proc, counter = spin()
    os.kill(proc.pid, signal.SIGSTOP)
    assert _wait_until(lambda: _state(proc.pid)[0] == "T")
    tracer, first = _tracer_process("attach", proc.pid)
    assert first == "ready"
    time.sleep(0.1)
    tracer.send_signal(signal.SIGTERM)
    tracer.communicate(timeout=30)
    assert _state(proc.pid) == ("T", 0)           # as it was: stopped by its SIGSTOP
    os.kill(proc.pid, signal.SIGCONT)
    _still_running(proc.pid, counter)


def test_sigint_while_launching_passes_the_signal_on(target, tmp_path):
    """strace -o FILE COMMAND: the first SIGINT is the command's; the tracer traces on and
    ends as the command ends (here: killed by that SIGINT)."""
    counter = tmp_path / "count"
    tracer, first = _tracer_process("launch", target("spin"), counter)
    child = int(first)
    assert _wait_until(lambda: _counter(counter) > 0)
    tracer.send_signal(signal.SIGINT)
    out, _ = tracer.communicate(timeout=30)
    assert _last_word_line(out) == ["False", str(int(signal.SIGINT)), "None"]
    assert tracer.returncode == -signal.SIGINT    # it ended as the command did
    assert _wait_until(lambda: not os.path.exists(f"/proc/{child}"))   # died of SIGINT


def test_a_second_sigint_lets_go_of_a_command_that_ignores_the_first(target, tmp_path):
    counter = tmp_path / "count"
    tracer, first = _tracer_process("launch", PYTHON, "-c",
                                    "import signal, time; signal.signal(signal.SIGINT, "
                                    "signal.SIG_IGN); print('go', flush=True); "
                                    "[time.sleep(0.01) for _ in iter(int, 1)]")
    child = int(first)
    assert tracer.stdout.readline().strip() == "go"     # it runs: the tracer is in run()
    tracer.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert tracer.poll() is None                  # still tracing: the command ignored it
    assert _state(child)[1] == tracer.pid
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=30)                       # (the command keeps our stdout open)
    assert _wait_until(lambda: _state(child)[1] == 0)    # let go, never left stopped
    assert _state(child)[0] != "t"
    os.kill(child, signal.SIGKILL)
    assert _last_word_line(tracer.stdout.read()) == ["True", str(int(signal.SIGINT)), "None"]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_seccomp_launched_command_does_not_outlive_the_tracer(target, tmp_path, how):
    counter = tmp_path / "count"
    tracer, first = _tracer_process("launch-seccomp", target("spin"), counter)
    child = int(first)
    assert _wait_until(lambda: _counter(counter) > 0)
    tracer.send_signal(how)
    tracer.communicate(timeout=30)
    assert _wait_until(lambda: not os.path.exists(f"/proc/{child}")), "the command outlived its tracer"


def test_attach_errors(spin):
    with pytest.raises(TraceError, match=r"process 999999999: no such process") as info:
        Engine().attach([999999999])
    assert info.value.errno == 3
    with pytest.raises(TraceError, match="is the tracer itself"):
        Engine().attach([os.getpid()])
    with pytest.raises(TraceError, match="invalid process id -4"):
        Engine().attach([-4])


def test_attach_to_a_traced_process_is_refused_and_nothing_is_kept(spin, target, tmp_path):
    counter = tmp_path / "count"
    tracer, first = _tracer_process("launch", target("spin"), counter)
    child = int(first)
    proc, counter2 = spin()
    t = Engine()
    try:
        with pytest.raises(TraceError, match=rf"cannot attach to process {child}: Operation not permitted"):
            t.attach([proc.pid, child])      # the first one succeeds, then is let go
        assert t.tasks == {}
        _still_running(proc.pid, counter2)
    finally:
        tracer.send_signal(signal.SIGTERM)
        tracer.communicate(timeout=30)


class Boom(Exception):
    pass


def test_consumer_error_detaches_and_propagates(spin):
    """An exception from the consumer reaches run()'s caller; the process runs on."""
    proc, counter = spin("threads")
    outcome = {}

    def consumer(kind, task, nr, args, ret, ts):
        raise Boom("consumer failed")

    def work():
        tracer = engine_for(consumer, nrs("getppid"))
        tracer.attach([proc.pid])
        try:
            tracer.run(handle_signals=False)
        except Boom as exc:
            outcome["error"] = exc
        outcome["tasks"] = dict(tracer.tasks)

    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert str(outcome["error"]) == "consumer failed" and outcome["tasks"] == {}
    _still_running(proc.pid, counter)


def test_attach_by_thread_id_takes_the_whole_process(spin):
    proc, counter = spin("threads")
    tids = sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
    rec = Recorder()
    result = {}
    tracer = None

    def consumer(kind, task, nr, args, ret, ts):
        rec(kind, task, nr, args, ret, ts)
        if len(rec.events) >= 50:
            tracer.request_stop(signal.SIGTERM)

    def work():
        nonlocal tracer
        tracer = engine_for(consumer, nrs("getppid"))
        result["tids"] = tracer.attach([tids[-1]])          # a thread, not the leader
        result["status"] = tracer.run(handle_signals=False)

    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert not th.is_alive()
    assert sorted(result["tids"]) == tids
    assert {e.pid for e in rec.events} == {proc.pid}
    assert result["status"].detached
    _still_running(proc.pid, counter)


def test_attached_process_forks_children_are_followed_then_let_go(spin):
    proc, counter = spin("fork")
    rec = Recorder()
    tracer = None

    def consumer(kind, task, nr, args, ret, ts):
        rec(kind, task, nr, args, ret, ts)
        if len({e.pid for e in rec.events}) >= 3:           # the process and two children
            tracer.request_stop(signal.SIGINT)

    def work():
        nonlocal tracer
        tracer = engine_for(consumer, nrs("getppid", "clone"))
        tracer.attach([proc.pid])
        tracer.run(handle_signals=False)

    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert not th.is_alive()
    children = {e.pid for e in rec.events} - {proc.pid}
    assert len(children) >= 2
    for c in children:
        first = [e for e in rec.events if e.tid == c][0]
        assert (first.kind, first.name, first.ret) == (EXIT, "clone", 0)
        assert [e.ret for e in rec.events if e.tid == c and e.kind == EXIT and e.name == "getppid"] \
            in ([proc.pid], [])
    _still_running(proc.pid, counter)


def test_failed_attach_leaves_the_tracer_thread_as_it_was(spin, target, tmp_path):
    before = os.sched_getaffinity(0), os.sched_getscheduler(0)
    proc, _ = spin()
    with pytest.raises(TraceError):
        Engine().attach([proc.pid, 999999999])
    assert (os.sched_getaffinity(0), os.sched_getscheduler(0)) == before
