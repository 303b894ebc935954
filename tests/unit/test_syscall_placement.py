"""The tracer's co-location with its tracee: pin and SCHED_IDLE on the tracer thread only,
following the tracee at once, and a clean give-up that restores everything."""

import os

import pytest

from usertrace.ptrace import placement
from usertrace.ptrace.placement import Colocation

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


@pytest.fixture
def coloc():
    c = Colocation()
    c.start()
    yield c
    c.stop()
    assert os.sched_getaffinity(0) == c.orig_affinity
    assert os.sched_getscheduler(0) == c.orig_policy


def test_pins_and_idles_then_follows_at_once(coloc, monkeypatch):
    monkeypatch.setattr(placement, "_schedstat", lambda path: (0, 0))
    monkeypatch.setattr(placement, "_others_running", lambda: False)
    a, b = sorted(coloc.orig_affinity)[:2]
    coloc.seen(a, os.getpid())
    assert os.sched_getaffinity(0) == {a} and os.sched_getscheduler(0) == os.SCHED_IDLE
    coloc.seen(a, os.getpid())
    assert coloc.moves == 1                     # seen where it is pinned: stays
    coloc.seen(b, os.getpid())
    assert coloc.pinned == b and os.sched_getaffinity(0) == {b}
    assert os.sched_getscheduler(0) == os.SCHED_IDLE
    assert coloc.moves == 2


def test_pins_without_sched_idle_while_others_are_runnable(coloc, monkeypatch):
    monkeypatch.setattr(placement, "_schedstat", lambda path: (0, 0))
    monkeypatch.setattr(placement, "_others_running", lambda: True)
    a = sorted(coloc.orig_affinity)[0]
    coloc.seen(a, os.getpid())
    assert os.sched_getaffinity(0) == {a}
    assert os.sched_getscheduler(0) == coloc.orig_policy and coloc.idle_refused
    coloc.stop()
    assert os.sched_getaffinity(0) == coloc.orig_affinity


def test_gives_up_when_starved(coloc, monkeypatch):
    clock = [10 ** 12]
    stats = {"/proc/thread-self/schedstat": [0, 0]}
    monkeypatch.setattr(placement.time, "monotonic_ns", lambda: clock[0])
    monkeypatch.setattr(placement, "_schedstat",
                        lambda path: tuple(stats.get(path, (0, 0))))
    cpu = sorted(coloc.orig_affinity)[0]
    coloc.seen(cpu, 1)                            # pins; the first window starts here
    coloc.seen(cpu, 1)
    for waited in (0.5, 0.5):                     # half of each 50 ms window waiting for others
        clock[0] += 50_000_000
        stats["/proc/thread-self/schedstat"][1] += int(waited * 50_000_000)
        coloc.seen(cpu, 1)
    assert not coloc.enabled and "waited too long" in coloc.given_up
    assert os.sched_getaffinity(0) == coloc.orig_affinity
    assert os.sched_getscheduler(0) == coloc.orig_policy
    coloc.seen(cpu, 1)                            # for good
    assert coloc.pinned is None


def test_disabled_or_inactive_does_nothing(monkeypatch):
    c = Colocation(enabled=False)
    c.start()
    c.seen(sorted(c.orig_affinity)[0], os.getpid())
    assert c.pinned is None and os.sched_getscheduler(0) == c.orig_policy
    c = Colocation()                              # outside start()/stop(): launch, attach
    c.seen(sorted(c.orig_affinity)[0], os.getpid())
    assert c.pinned is None and os.sched_getaffinity(0) == c.orig_affinity


def test_due_says_when_seen_must_hear_of_a_task_on_the_pinned_cpu(coloc, monkeypatch):
    """due_ns(): at once while not pinned or with no window yet, else the window's end, and
    a call of seen() before it changes nothing (the compiled stops skip it till then)."""
    clock = [10 ** 12]
    monkeypatch.setattr(placement.time, "monotonic_ns", lambda: clock[0])
    monkeypatch.setattr(placement, "_schedstat", lambda path: (0, 0))
    monkeypatch.setattr(placement, "_others_running", lambda: True)
    cpu = sorted(coloc.orig_affinity)[0]
    assert coloc.due_ns() == 0                    # not pinned
    coloc.seen(cpu, 1)                            # pins: no window yet
    assert coloc.due_ns() == 0
    coloc.seen(cpu, 1)                            # the window starts now
    assert coloc.due_ns() == clock[0] + placement.MIN_WINDOW_NS
    clock[0] += placement.MIN_WINDOW_NS // 2
    coloc.seen(cpu, 1)                            # too early: the same end
    assert coloc.due_ns() == clock[0] - placement.MIN_WINDOW_NS // 2 + placement.MIN_WINDOW_NS
    clock[0] += placement.MIN_WINDOW_NS
    coloc.seen(cpu, 1)                            # a window measured: the next one
    assert coloc.due_ns() == clock[0] + placement.MIN_WINDOW_NS
