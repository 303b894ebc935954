"""The syscall source's in-place path (records packed straight into the trace buffer's rings)
writes the trace.dat the general path (:meth:`SyscallSource.on_syscall`, one record's bytes
at a time through the session) writes, byte for byte: the same stops fed to both."""

import random

import pytest

from usertrace.ptrace import ENTER, EXIT
from usertrace.session import CpuMap, EventSpec, Session
from usertrace.sources.syscalls.events import EXIT_STRUCT
from usertrace.sources.syscalls.source import SyscallSource


class Task:
    def __init__(self, tid, cpu):
        self.tid, self.cpu, self.comm, self.args = tid, cpu, "t", ()


def stops(seed: int, n: int):
    """Engine reports: enters and exits of a few calls, on two cpus, with every kind of time
    step (0, small, a time extend, a jump to a new page, backwards)."""
    rnd = random.Random(seed)
    ts = 10**12
    for _ in range(n):
        task = Task(rnd.choice([100, 101]), rnd.randrange(2))
        nr = rnd.choice([0, 1, 2, 9, 39, 60, 110, 257, 400])   # 400: no such call
        args = tuple(rnd.randrange(2**64) for _ in range(6))
        ts += rnd.choice([0, 1, 700, 2**27 + 3, 2**44])
        if rnd.random() < 0.01:
            ts -= 50
        yield ENTER, task, nr, args, 0, ts
        ts += rnd.choice([0, 9, 2**28])
        yield EXIT, task, nr, args, rnd.randrange(-2**63, 2**63), ts


def record(path, specs, packed: bool, seed=1, n=4000):
    session = Session(cpus=CpuMap(2))
    for spec in specs:
        session.enable(spec)
    trace = session.record_to(str(path))    # rings big enough to drop nothing meanwhile
    source = SyscallSource()
    source.prepare(session)
    callback = source.stop_handler().on_syscall
    assert callback != source.on_syscall          # the in-place path is in use
    for stop in stops(seed, n):
        (callback if packed else source.on_syscall)(*stop)
    session.finish()
    return path.read_bytes(), trace.entries, trace.lost, session.filtered_out


@pytest.mark.parametrize("specs", [
    [EventSpec("syscalls")],
    [EventSpec("syscalls:sys_enter_getppid"), EventSpec("syscalls:sys_exit_read")],
    # a filter on some events: those take the general path, the others the fast one
    [EventSpec("syscalls"), EventSpec("syscalls:sys_exit_read", "ret > 0"),
     EventSpec("syscalls:sys_enter_openat", "flags & 1")],
], ids=["all", "some", "some-filtered"])
@pytest.mark.parametrize("seed", [1, 2])
def test_in_place_trace_dat_equals_the_general_path(tmp_path, specs, seed):
    fast = record(tmp_path / "fast.dat", specs, True, seed)
    general = record(tmp_path / "general.dat", specs, False, seed)
    assert fast == general
    assert fast[1] > 0


def test_the_engine_gets_the_in_place_callback_only_when_records_go_straight_to_the_file(tmp_path):
    session = Session(cpus=CpuMap(1))
    session.enable(EventSpec("syscalls"))
    session.record_to(str(tmp_path / "a.dat"))
    source = SyscallSource()
    source.prepare(session)
    assert source.stop_handler().on_syscall != source.on_syscall
    session.use_threads()                       # a second source: the lock, the general path
    assert session.packed_writers(EXIT_STRUCT) is None
    assert source.stop_handler().on_syscall == source.on_syscall
    session.abort()


def test_without_a_trace_buffer_nothing_is_written_and_nothing_fails():
    session = Session(cpus=CpuMap(2))
    session.enable(EventSpec("syscalls"))
    writers, settle = session.packed_writers(EXIT_STRUCT)
    assert len(writers) == 2 and writers[1](5, (1, 0, 0, 1, 1, 1)) == 1
    source = SyscallSource()
    source.prepare(session)
    callback = source.stop_handler().on_syscall
    for stop in stops(3, 50):
        callback(*stop)
    assert session.trace is None
