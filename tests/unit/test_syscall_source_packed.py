"""The syscall source's in-place path (records packed straight into the trace buffer's rings)
writes the trace.dat the general path (:meth:`SyscallSource.on_syscall`, one record's bytes
at a time through the session) writes, byte for byte: the same stops fed to both."""

import random

import pytest

from usertrace.catalog import known_events
from usertrace.ptrace import ENTER, EXIT
from usertrace.session import CpuMap, EventSpec, Session
from usertrace.sources.syscalls.events import EXIT_STRUCT
from usertrace.sources.syscalls.source import SyscallSource


class Memory:
    """A tracee's memory made up from the address: unreadable, strings of every length
    (longer than the string size, unprintable bytes, none), buffers cut at a page end."""

    def read(self, addr, size):
        if addr % 11 == 0:
            return None
        page_left = 4096 - addr % 4096
        return bytes((addr + i) % 256 for i in range(min(size, page_left)))

    def read_string(self, addr, max_len=256):
        if addr % 13 == 0:
            return None
        n = addr % 300
        raw = bytes(32 + (addr + i) % 200 for i in range(min(n, max_len)))
        return raw, n > max_len


class Task:
    def __init__(self, tid, cpu):
        self.tid, self.cpu, self.comm, self.args = tid, cpu, "t", ()
        self.process = Memory()


def stops(seed: int, n: int):
    """Engine reports: enters and exits of a few calls, on two cpus, with every kind of time
    step (0, small, a time extend, a jump to a new page, backwards)."""
    rnd = random.Random(seed)
    ts = 10**12
    for _ in range(n):
        task = Task(rnd.choice([100, 101]), rnd.randrange(2))
        # 400: no such call; with data: read, write, pipe, rename, readlink, mount
        nr = rnd.choice([0, 1, 2, 9, 39, 60, 110, 257, 400, 22, 82, 89, 165])
        args = tuple(rnd.choice([rnd.randrange(2**64), rnd.randrange(300), 0])
                     for _ in range(6))
        ts += rnd.choice([0, 1, 700, 2**27 + 3, 2**44])
        if rnd.random() < 0.01:
            ts -= 50
        yield ENTER, task, nr, args, 0, ts
        ts += rnd.choice([0, 9, 2**28])
        yield EXIT, task, nr, args, rnd.randrange(-2**63, 2**63), ts


def record(path, specs, packed: bool, seed=1, n=4000, data=False):
    session = Session(known_events(syscall_data=data), cpus=CpuMap(2))
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
@pytest.mark.parametrize("data", [False, True], ids=["kernel", "user-data"])
def test_in_place_trace_dat_equals_the_general_path(tmp_path, specs, seed, data):
    fast = record(tmp_path / "fast.dat", specs, True, seed, data=data)
    general = record(tmp_path / "general.dat", specs, False, seed, data=data)
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


def test_user_data_records_hold_what_the_tracee_memory_holds(tmp_path):
    """Records packed in place with user data: each __<arg>_val is what the kernel would
    record of the memory (strings cut at the string size with "...", buffers up to their
    count, nothing when unreadable), and long records keep their length word."""
    from usertrace.sources.syscalls import user_data as ud
    from usertrace.trace import Trace

    path = tmp_path / "d.dat"
    record(path, [EventSpec("syscalls")], True, seed=5, n=3000, data=True)
    mem = Memory()
    seen = {"openat": 0, "write": 0, "cut": 0, "empty": 0, "long": 0}
    with Trace(str(path)) as trace:
        for ev in trace.events():
            v = ev.values
            if ev.format.name == "sys_enter_openat":
                raw = mem.read_string(v["filename"], 129) if v["filename"] else None
                want = ud.string_value(None if raw is None else raw[0], 128)
                got = ud.as_bytes(v["__filename_val"])
                assert got + (b"\0" if want else b"") == want
                seen["openat"] += 1
                seen["cut"] += want.endswith(b"...\0")
                seen["empty"] += not want
                seen["long"] += 48 + 4 + len(want) > 112
            elif ev.format.name == "sys_enter_write":
                count = v["count"]
                want = b""
                if v["buf"] and count:
                    want = bytes((v["buf"] + i) % 256 for i in range(min(count, 128)))
                    if v["buf"] % 11 == 0:
                        want = b""
                assert v["__buf_val"] == want
                seen["write"] += 1
    assert all(seen.values()), seen
