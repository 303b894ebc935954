"""Signals reach the tracee as without the tracer: handlers, restarts, group-stops, death."""

import errno
import signal

import pytest

from usertrace.ptrace import ENTER, EXIT

from _ptrace_util import assert_paired, nrs, trace

MODES = [pytest.param(True, id="seccomp"), pytest.param(False, id="all-stops")]
ERESTARTSYS, ERESTART_RESTARTBLOCK = 512, 516


@pytest.mark.parametrize("seccomp", MODES)
def test_handler_runs(target, seccomp):
    rec, status, _ = trace([target("signals"), "handler"], enter=nrs("tgkill", "write", "rt_sigreturn"),
                           seccomp=seccomp)
    assert status.code == 0                 # the handler saw SIGUSR1
    names = [(e.kind, e.name) for e in rec.events]
    # raise() -> tgkill; the handler writes; rt_sigreturn has an enter and, as in the kernel,
    # no exit.
    assert names == [(ENTER, "tgkill"), (EXIT, "tgkill"), (ENTER, "write"), (EXIT, "write"),
                     (ENTER, "rt_sigreturn")]
    assert rec.events[2].args[0] == 1 and rec.events[3].ret == 5


@pytest.mark.parametrize("seccomp", MODES)
def test_interrupted_read_restarts(target, seccomp):
    rec, status, pid = trace([target("signals"), "restart"], enter=nrs("read"), seccomp=seccomp)
    assert status.code == 0                 # the restarted read got the byte
    # The kernel's view: the read exits with its restart code, then runs again.
    assert [e.ret for e in rec.of(tid=pid, kind=EXIT)][-2:] == [-ERESTARTSYS, 1]
    assert_paired(rec.events)


@pytest.mark.parametrize("seccomp", MODES)
def test_interrupted_read_fails_with_eintr(target, seccomp):
    rec, status, pid = trace([target("signals"), "eintr"], enter=nrs("read"), seccomp=seccomp)
    assert status.code == 0                 # the program saw EINTR
    assert [e.ret for e in rec.of(tid=pid, kind=EXIT)][-1] == -ERESTARTSYS


@pytest.mark.parametrize("seccomp", MODES)
def test_interrupted_sleep(target, seccomp):
    rec, status, pid = trace([target("signals"), "sleep"], enter=nrs("clock_nanosleep", "nanosleep"),
                             seccomp=seccomp)
    assert status.code == 0                 # exactly one EINTR, then the rest of the sleep
    assert [e.ret for e in rec.of(tid=pid, kind=EXIT)] == [-ERESTART_RESTARTBLOCK, 0]


@pytest.mark.parametrize("seccomp", MODES)
def test_group_stop_stays_until_sigcont(target, seccomp):
    """raise(SIGSTOP): the child sees its parent stopped (and still stopped 50 ms later) before
    it sends SIGCONT; the parent then catches SIGCHLD."""
    rec, status, pid = trace([target("signals"), "stop"], enter=nrs("tgkill", "kill", "wait4"),
                             seccomp=seccomp)
    assert status.code == 0, "the tracee did not stay stopped, or lost SIGCHLD"
    assert [e.args[2] for e in rec.of(tid=pid, kind=ENTER, name="tgkill")] == [signal.SIGSTOP]
    child_kills = [e for e in rec.of(kind=ENTER, name="kill") if e.tid != pid]
    assert [(e.args[0], e.args[1]) for e in child_kills] == [(pid, signal.SIGCONT)]
    waits = [e.ret for e in rec.of(tid=pid, kind=EXIT, name="wait4")]
    assert waits[-1] > 0 and all(r in (-ERESTARTSYS, waits[-1]) for r in waits)


@pytest.mark.parametrize("seccomp", MODES)
def test_core_signal_and_exit_code(target, seccomp):
    rec, status, _ = trace([target("signals"), "kill", "11"], enter=nrs("tgkill"), seccomp=seccomp)
    assert status.signal == signal.SIGSEGV and status.returncode == 139
    assert [e.name for e in rec.events] == ["tgkill", "tgkill"]
    assert rec.events[-1].ret == 0
