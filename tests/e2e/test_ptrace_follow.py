"""Following threads and children: clone3 threads, fork/exec chains, vfork, an exec by a thread."""

import pytest

from usertrace.ptrace import ENTER, EXIT

from _ptrace_util import assert_paired, nrs, trace

MODES = [pytest.param(True, id="seccomp"), pytest.param(False, id="all-stops")]


@pytest.mark.parametrize("seccomp", MODES)
def test_threads(target, seccomp):
    rec, status, pid = trace([target("threads"), "4", "25"],
                             enter=nrs("getppid", "gettid", "clone3", "exit"), seccomp=seccomp)
    assert status.code == 0
    created = [e.ret for e in rec.of(tid=pid, kind=EXIT, name="clone3")]
    assert len(created) == 4 and all(r > 0 for r in created)
    for tid in created:
        mine = rec.of(tid=tid)
        # The kernel's first record of a new thread: its clone3 exit with 0.
        assert (mine[0].kind, mine[0].name, mine[0].ret) == (EXIT, "clone3", 0)
        assert {e.pid for e in mine} == {pid}
        assert len(rec.of(tid=tid, kind=EXIT, name="getppid")) == 25
        assert rec.of(tid=tid, kind=EXIT, name="gettid")[0].ret == tid
        assert mine[-1].kind == ENTER and mine[-1].name == "exit"
    assert_paired(rec.events)


@pytest.mark.parametrize("seccomp", MODES)
def test_fork_exec_chain_and_vfork(target, seccomp):
    exe = target("forkexec")
    rec, status, pid = trace([exe, "2"], enter=nrs("clone", "vfork", "execve", "wait4", "getppid",
                                                  "exit_group"), seccomp=seccomp)
    # Level 2 forks level 1, which forks level 0 (exits 7): 7 + 0 from /bin/true at each level.
    assert status.code == 7
    pids = {e.pid for e in rec.events}
    assert len(pids) == 5          # 2 forked levels + 2 vforked /bin/true + the command
    for p in pids:
        assert all(e.tid == p for e in rec.of(tid=p))      # single-threaded processes
    forks = [e.ret for e in rec.of(kind=EXIT, name="clone") if e.ret > 0]
    vforks = [e.ret for e in rec.of(kind=EXIT, name="vfork") if e.ret > 0]
    assert len(forks) == 2 and len(vforks) == 2
    for child in forks:
        first = rec.of(tid=child)[0]
        assert (first.kind, first.name, first.ret) == (EXIT, "clone", 0)
        assert [e.ret for e in rec.of(tid=child, kind=EXIT, name="execve")] == [0]
    for child in vforks:
        assert rec.of(tid=child)[0].name == "vfork"
        assert rec.of(tid=child, kind=EXIT, name="execve")[0].comm == "true"
    leaf = [p for p in forks if rec.of(tid=p, kind=EXIT, name="getppid")]
    assert len(leaf) == 1
    parent_of_leaf = [e.tid for e in rec.of(kind=EXIT, name="clone") if e.ret == leaf[0]]
    assert rec.of(tid=leaf[0], kind=EXIT, name="getppid")[0].ret == parent_of_leaf[0]
    assert_paired(rec.events)


@pytest.mark.parametrize("seccomp", MODES)
def test_exec_by_a_thread_takes_the_leaders_tid(target, seccomp):
    rec, status, pid = trace([target("forkexec"), "thread-exec"],
                             enter=nrs("execve", "clone3", "getppid", "exit_group"), seccomp=seccomp)
    assert status.code == 7                  # the exec'd image (depth 0) exits 7
    # The new thread's first record (its clone3 exit with 0).  The leader's own clone3 exit
    # may never come: the thread's exec can kill the leader before it leaves clone3.
    thread = [e.tid for e in rec.of(kind=EXIT, name="clone3") if e.ret == 0 and e.tid != pid][0]
    execs = rec.of(kind=ENTER, name="execve")
    assert [e.tid for e in execs] == [pid, thread]
    # Its exec ends under the leader's tid; everything after runs as the leader.
    exits = rec.of(kind=EXIT, name="execve")
    assert [(e.tid, e.ret) for e in exits] == [(pid, 0), (pid, 0)]
    after = rec.events[rec.events.index(exits[-1]):]
    assert {e.tid for e in after} == {pid}
    assert [e.name for e in after] == ["execve", "getppid", "getppid", "exit_group"]


def test_no_follow(target):
    rec, status, pid = trace([target("forkexec"), "1"], enter=nrs("clone", "vfork", "exit_group"),
                             follow_forks=False)
    assert status.code == 7
    assert {e.tid for e in rec.events} == {pid}
