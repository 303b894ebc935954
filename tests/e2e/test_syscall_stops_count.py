"""How many times a launched command stops: once per call when only entries are wanted
(the seccomp stop, then PTRACE_CONT), twice when exits are wanted too, whatever the number
of calls enabled (a filter that traces every call when every entry is wanted)."""

import os

import pytest

from usertrace.ptrace import ENTER, Engine
from usertrace.sources.syscalls.stops import SyscallStops

from _ptrace_util import nrs

CALLS = 300        # cli_basic's getppid() loop


def stops_of(argv, enter, exit_, monkeypatch) -> tuple[int, int, bool]:
    """(waits served, entries reported, under a seccomp filter) of one launch."""
    waits = [0]
    real = os.waitpid

    def counting(pid, options):
        got = real(pid, options)
        waits[0] += 1
        return got
    monkeypatch.setattr(os, "waitpid", counting)
    entries = []
    engine = Engine()
    engine.add(SyscallStops(lambda kind, *a: entries.append(kind), enter, exit_))
    engine.launch(argv)
    status = engine.run(handle_signals=False)
    monkeypatch.setattr(os, "waitpid", real)
    assert status.returncode == 0
    return waits[0], entries.count(ENTER), engine.seccomp_filter is not None


@pytest.mark.parametrize("enter,exit_,per_call", [
    (None, set(), 1),                                  # every entry, no exit
    (None, None, 2),                                   # every entry and exit
    (nrs("getppid"), set(), 1),                        # one call's entry
    (nrs("getppid"), nrs("getppid"), 2),
], ids=["all-enters", "all", "one-enter", "one-call"])
def test_stops_per_call(target, monkeypatch, enter, exit_, per_call):
    argv = [str(target("cli_basic")), str(CALLS)]
    waits, entries, filtered = stops_of(argv, enter, exit_, monkeypatch)
    assert filtered == (per_call == 1 or enter is not None)
    assert entries >= CALLS
    # the loop's calls dominate; the rest (start-up, ld.so) is under a hundred calls
    assert per_call * CALLS <= waits <= per_call * (entries + 100), (waits, entries)
