"""Launching a command under the engine: what it runs with, what it reports, how it ends."""

import errno
import os
import signal
import subprocess

import pytest

from usertrace.ptrace import ENTER, EXIT, Engine, TraceError

from _ptrace_util import PYTHON, SRC, TABLE, assert_paired, engine_for, nrs, python_env, trace


def test_fixed_sequence_all_syscalls(target):
    rec, status, pid = trace([target("sc_seq"), "5"])
    assert (status.code, status.signal, status.returncode) == (5, None, 5)
    assert rec.events[0].kind == ENTER and rec.events[0].name == "execve"
    assert rec.events[1].kind == EXIT and rec.events[1].name == "execve" and rec.events[1].ret == 0
    assert rec.tids() == [pid]
    assert_paired(rec.events)
    # The program's own calls, in order, with the kernel's values.
    assert rec.exits()[-9:] == [
        ("getppid", os.getpid()), ("close", -errno.EBADF), ("close", -errno.EBADF),
        ("openat", -errno.EFAULT), ("openat", 3), ("read", 0), ("lseek", 0), ("close", 0),
        ("getppid", os.getpid())]
    closes = [e.args[0] for e in rec.of(kind=ENTER, name="close")][-3:]
    assert closes[:2] == [12345, 2 ** 64 - 1]          # every argument: unsigned 64 bits
    opens = [e for e in rec.of(kind=ENTER, name="openat")][-2:]
    assert opens[0].args[:4] == (0xFFFFFF9C, 0, 0x241, 0o644)
    assert rec.events[-1].name == "exit_group" and rec.events[-1].args[0] == 5
    assert {e.comm for e in rec.events[2:]} == {"sc_seq"}
    assert all(e.cpu in os.sched_getaffinity(0) for e in rec.events)
    ts = [e.ts for e in rec.events]
    assert ts == sorted(ts)


def test_seccomp_stops_only_at_enabled_calls(target):
    rec, status, pid = trace([target("sc_seq"), "0"], enter=nrs("close", "lseek"), exit=nrs("close"))
    assert status.code == 0
    # Only close and lseek enters, only close exits: the dynamic loader's closes come first.
    assert {e.name for e in rec.of(kind=ENTER)} == {"close", "lseek"}
    assert {e.name for e in rec.of(kind=EXIT)} == {"close"}
    assert [e.args[0] for e in rec.of(kind=ENTER, name="close")][-3:] == [12345, 2 ** 64 - 1, 3]
    assert [e.ret for e in rec.of(kind=EXIT)][-3:] == [-errno.EBADF, -errno.EBADF, 0]


def test_execve_only_when_enabled(target):
    rec, _, _ = trace([target("sc_seq")], enter=nrs("execve", "getppid"))
    assert [e.name for e in rec.of(kind=ENTER)][:2] == ["execve", "getppid"]
    assert [e.name for e in rec.of(kind=EXIT)] == ["execve", "getppid", "getppid"]


@pytest.mark.parametrize("seccomp", [True, False])
def test_exit_code_and_no_syscalls_enabled(target, seccomp):
    rec, status, _ = trace([target("sc_seq"), "42"], enter=set(), exit=set(), seccomp=seccomp)
    assert (status.code, rec.events) == (42, [])


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1])
def test_killed_by_signal(target, sig):
    rec, status, _ = trace([target("signals"), "kill", str(int(sig))], enter=nrs("kill", "tgkill"))
    assert (status.code, status.signal, status.returncode) == (None, sig, 128 + sig)
    assert "killed by " + sig.name in status.describe()


def test_abort(target):
    _, status, _ = trace([target("signals"), "abort"], enter=set())
    assert status.signal == signal.SIGABRT and status.returncode == 134


@pytest.mark.parametrize("argv,message,code", [
    (["/nonexistent/cmd"], "Cannot stat '/nonexistent/cmd': No such file or directory", errno.ENOENT),
    (["no-such-command-xyz"], "Cannot find executable 'no-such-command-xyz'", errno.ENOENT),
    (["/etc/passwd"], "Cannot execute '/etc/passwd': Permission denied", errno.EACCES),
    (["/tmp"], "Cannot execute '/tmp': Is a directory", errno.EISDIR),
    ([], "no command to run", None),
])
def test_bad_commands(argv, message, code):
    with pytest.raises(TraceError) as info:
        Engine().launch(argv)
    assert str(info.value) == message
    assert info.value.errno == code


def test_exec_failure_after_fork(tmp_path):
    """Executable bits but no valid format: the exec itself fails in the child."""
    bad = tmp_path / "garbage"
    bad.write_bytes(b"\x7fELF garbage")
    bad.chmod(0o755)
    tracer = Engine()
    with pytest.raises(TraceError, match=r"cannot run '.*garbage': exec: Exec format error"):
        tracer.launch([str(bad)])
    assert tracer.tasks == {}


def _run_tracer(code: str, env: dict, pass_fds=()):
    """Run a tracer in a fresh Python process (its own environment and descriptors)."""
    return subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                          pass_fds=pass_fds, timeout=60)


TRACE_CMD = (
    "import sys; from usertrace.ptrace import Engine; t = Engine(); "
    "t.launch(sys.argv[1:] or {argv!r}, seccomp=False); sys.exit(t.run().returncode)"
)


def test_environment_is_the_one_given():
    """Python adds LC_CTYPE to its own environment when LANG=C: the command must not get it."""
    env = python_env(LANG="C", FOO="bar baz")
    out = _run_tracer(TRACE_CMD.format(argv=["/usr/bin/env"]), env)
    assert out.returncode == 0, out.stderr
    got = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert got == env
    assert "LC_CTYPE" not in got


def test_open_descriptors_are_the_ones_given(tmp_path):
    """The command sees the descriptors the tracer was given, and none of the tracer's."""
    f = open(tmp_path / "x", "w")
    try:
        fd = f.fileno()
        env = python_env()
        cmd = ["/bin/ls", "/proc/self/fd"]
        direct = subprocess.run(cmd, capture_output=True, text=True, pass_fds=(fd,))
        traced = _run_tracer(TRACE_CMD.format(argv=cmd), env, pass_fds=(fd,))
        assert traced.returncode == 0, traced.stderr
        assert traced.stdout.split() == direct.stdout.split()
        assert str(fd) in traced.stdout.split()
    finally:
        f.close()


def test_python_program_with_threads_and_a_subprocess():
    code = ("import threading, subprocess, os\n"
            "ts = [threading.Thread(target=os.getppid) for _ in range(3)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "raise SystemExit(subprocess.call(['/bin/sh', '-c', 'exit 9']))\n")
    rec, status, pid = trace([PYTHON, "-c", code], enter=nrs("clone3", "clone", "execve", "wait4", "getppid"),
                             env=python_env())
    assert status.code == 9
    threads = {e.tid for e in rec.of(name="clone3", kind=EXIT) if e.ret == 0}
    assert len(threads) >= 3 and all(rec.of(tid=t, name="getppid") for t in threads)
    assert all(e.pid == pid for t in threads for e in rec.of(tid=t))
    execs = [e for e in rec.of(kind=ENTER, name="execve") if e.pid != pid]
    assert execs, "the subprocess's exec was not seen"
    assert_paired(rec.events)


def test_tracer_placement_is_restored_and_tracee_untouched(target):
    before = os.sched_getaffinity(0), os.sched_getscheduler(0)
    seen = []

    def consumer(kind, task, nr, args, ret, ts):
        seen.append((os.sched_getaffinity(0), os.sched_getscheduler(0),
                     os.sched_getaffinity(task.tid), os.sched_getscheduler(task.tid)))

    tracer = engine_for(consumer, nrs("getppid"))
    tracer.launch([str(target("sc_seq"))])
    tracer.run(handle_signals=False)
    assert (os.sched_getaffinity(0), os.sched_getscheduler(0)) == before
    assert seen and all((s[2], s[3]) == before for s in seen)   # the tracee keeps its own
    if len(before[0]) > 1 and not tracer._coloc.given_up:
        # Meanwhile the tracer kept to one CPU, as SCHED_IDLE unless other tasks were busy
        # when it moved there (SCHED_IDLE would let them starve it).
        assert all(len(s[0]) == 1 for s in seen)
        if tracer._coloc.idle_refused:
            assert all(s[1] == before[1] for s in seen)
        else:
            assert all(s[1] == os.SCHED_IDLE for s in seen)


def test_seccomp_filter_and_attach_do_not_mix(target):
    tracer = engine_for(None, nrs("getppid"))
    tracer.launch([str(target("sc_seq"))])
    with pytest.raises(TraceError, match="seccomp filter"):
        tracer.attach([os.getpid()])
    tracer.run(handle_signals=False)
