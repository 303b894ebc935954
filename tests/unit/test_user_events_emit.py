"""The two emit paths, compiled (_emit.c) and pure Python (emitters.py), against each other.

Every call of tests/data/user_events_emit_cases.py goes through each path in a process of its
own (USERTRACE_PURE_PYTHON=1 for one, not for the other): the answers must be alike (the
table's, too) and the rings must hold the same bytes but for the time stamps and thread ids.
Then, in this process where the compiled path is loaded: random values through both, the
thread's ring cache after its ring is replaced, two sessions in one thread, time stamps.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from usertrace.sources.user_events import UserEventError, UserEventsServer, abi, emit_path
from usertrace.sources.user_events import register
from usertrace.sources.user_events.client import _writer_for_thread
from usertrace.sources.user_events.emitters import make_emit

DATA = Path(__file__).resolve().parents[1] / "data" / "user_events_emit_cases.py"
_spec = importlib.util.spec_from_file_location("user_events_emit_cases", DATA)
cases = importlib.util.module_from_spec(_spec)
sys.modules["user_events_emit_cases"] = cases
_spec.loader.exec_module(cases)

SRC = Path(__file__).resolve().parents[2] / "src"
needs_compiled = pytest.mark.skipif(
    emit_path.compiled is None,
    reason=f"the compiled emit path is not in use here: {emit_path.why_pure}")


def compiled_available() -> str:
    """'' if a process without USERTRACE_PURE_PYTHON gets the compiled path, else why not."""
    env = dict(os.environ)
    env.pop(emit_path.PURE_ENV, None)
    probe = subprocess.run(
        [sys.executable, "-c", "from usertrace.sources.user_events import emit_path; "
                               "print(emit_path.why_pure)"],
        env=env, capture_output=True, text=True, check=True)
    return probe.stdout.strip()


def records(ring: bytes) -> list[tuple[bytes, int, int]]:
    """(record with time stamp and common_pid zeroed, time stamp, common_pid) per record."""
    out, off = [], 0
    while off < len(ring):
        plen = struct.unpack_from("<I", ring, off)[0]
        assert plen != abi.WRAP_MARK, "these rings never wrap"
        n = abi.record_size(plen)
        rec = bytearray(ring[off: off + n])
        ts = struct.unpack_from("<Q", rec, 8)[0]
        pid = struct.unpack_from("<i", rec, 28)[0]
        rec[8:16] = bytes(8)
        rec[28:32] = bytes(4)
        out.append((bytes(rec), ts, pid))
        off += n
    assert off == len(ring)
    return out


def run_table(tmp_path, pure: bool) -> dict:
    sdir = str(tmp_path / ("pure" if pure else "compiled"))
    with UserEventsServer(sdir, ring_size=1 << 20) as srv:
        srv.enable("d_*")
        env = dict(os.environ, USERTRACE_SESSION=sdir, PYTHONPATH=str(SRC))
        env.pop(emit_path.PURE_ENV, None)
        if pure:
            env[emit_path.PURE_ENV] = "1"
        proc = subprocess.run([sys.executable, str(DATA)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def test_the_table_is_mixed():
    faults = [c for c in cases.CALLS if c[3]]
    assert len(cases.CALLS) >= 80 and len(faults) >= 40
    assert {c[0] for c in cases.CALLS} == set(cases.EVENTS)
    by_name = [c for c in cases.CALLS if c[2] and not c[3]]
    assert len(by_name) >= 6


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    why = compiled_available()
    if why:
        pytest.skip(f"the compiled emit path is not built: {why}")
    tmp = tmp_path_factory.mktemp("emit")
    return run_table(tmp, pure=False), run_table(tmp, pure=True)


def test_each_process_used_its_path(both):
    compiled, pure = both
    assert compiled["path"].startswith("compiled")
    assert pure["path"] == f"pure Python ({emit_path.PURE_ENV}=1)"


@pytest.mark.parametrize("row", range(len(cases.CALLS)))
def test_both_paths_answer_each_call_as_the_table_says(both, row):
    event, args, kwargs, fault = cases.CALLS[row]
    for result in both:
        got = result["outcomes"][row]
        if fault is None:
            assert got is True, (result["path"], got)
        else:
            assert got[0] == "BAD_VALUE" and fault in got[1], (result["path"], got)
            assert got[1].startswith(cases.EVENTS[event].split()[0])
    assert both[0]["outcomes"][row] == both[1]["outcomes"][row]


def test_both_paths_write_the_same_bytes(both):
    compiled, pure = both
    recs_c = records(bytes.fromhex(compiled["ring"]))
    recs_p = records(bytes.fromhex(pure["ring"]))
    assert len(recs_c) == sum(1 for c in cases.CALLS if c[3] is None)
    for (rc, _, _), (rp, _, _) in zip(recs_c, recs_p):
        assert rc == rp
    assert len(recs_c) == len(recs_p)
    assert compiled["lost"] == pure["lost"] == 0


def test_time_stamps_are_monotonic_and_pids_are_the_writer(both):
    for result in both:
        recs = records(bytes.fromhex(result["ring"]))
        stamps = [ts for _, ts, _ in recs]
        assert stamps == sorted(stamps)
        assert result["t0"] <= stamps[0] and stamps[-1] <= result["t1"]
        assert {pid for _, _, pid in recs} == {result["tid"]}


# -- in this process: the compiled path next to the pure one --------------------------------
@pytest.fixture
def pair(tmp_path):
    """(server, compiled emit, pure emit, ring of each) for one event in two sessions."""
    made, cache = [], {}

    def make(text):
        if text in cache:
            return cache[text]
        out = cache[text] = []
        for name, compiled in (("c", emit_path.compiled), ("p", None)):
            srv = UserEventsServer(str(tmp_path / name), ring_size=1 << 20).open()
            made.append(srv)
            ev = register(text, session_dir=srv.session.path)
            srv.enable(ev.name)
            made.append(ev)
            cases.fill_ring(ev.session)
            out.append((ev, make_emit(ev, _writer_for_thread, compiled)))
        return out
    yield make
    for obj in reversed(made):
        obj.close()


def ring_of(ev) -> bytes:
    w = ev.session.tls.w
    return bytes(w.mm[abi.RING_HEADER_SIZE: abi.RING_HEADER_SIZE + w.head])


@needs_compiled
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(-2**40, 2**40), b=st.integers(0, 2**64 - 1),
       s=st.one_of(st.text(max_size=80), st.binary(max_size=80)),
       arr=st.lists(st.integers(-2**15, 2**15 - 1), max_size=20),
       by_name=st.booleans())
def test_random_values_make_the_same_bytes(pair, a, b, s, arr, by_name):
    (ev_c, emit_c), (ev_p, emit_p) = pair("rnd s32 a; u64 b; __data_loc char[] s; "
                                          "__rel_loc s16[] arr")
    vals = (a, b, s, arr)
    outcomes = []
    for emit in (emit_c, emit_p):
        try:
            if by_name:
                outcomes.append(emit(**dict(zip("a b s arr".split(), vals))))
            else:
                outcomes.append(emit(*vals))
        except UserEventError as exc:
            outcomes.append(exc.detail)
    assert outcomes[0] == outcomes[1]
    if outcomes[0] is True:
        assert [r for r, _, _ in records(ring_of(ev_c))] == \
            [r for r, _, _ in records(ring_of(ev_p))]
    assert (outcomes[0] is True) == (-2**31 <= a < 2**31)


@needs_compiled
def test_the_compiled_emitter_is_what_register_hands_out(tmp_path):
    with UserEventsServer(str(tmp_path / "s")) as srv:
        ev = register("kind u32 a", session_dir=srv.session.path)
        assert type(ev.emit) is emit_path.compiled.Emitter
        ev.unregister()
        assert ev.emit(1) is False


@needs_compiled
def test_a_replaced_ring_is_never_written_through_a_stale_cache(tmp_path):
    with UserEventsServer(str(tmp_path / "s"), ring_size=64 << 10) as srv:
        ev = register("swap u32 a", session_dir=srv.session.path)
        srv.enable("swap")
        assert ev.emit(1)
        old = ev.session.tls.__dict__.pop("w")
        old.close(mark=False)                      # what the child does after fork()
        del old
        assert ev.emit(2)                          # a new ring, looked up again
        assert ev.session.tls.w.head == 40
        got = []
        srv.drain(lambda *rec: got.append(rec))
        assert len(got) == 2


@needs_compiled
def test_two_sessions_in_one_thread_keep_their_rings(tmp_path):
    with UserEventsServer(str(tmp_path / "a")) as sa, UserEventsServer(str(tmp_path / "b")) as sb:
        ea = register("ses u32 a", session_dir=sa.session.path)
        eb = register("ses u32 a", session_dir=sb.session.path)
        sa.enable("ses")
        sb.enable("ses")
        for i in range(10):
            assert ea.emit(i) and eb.emit(100 + i)
        for srv, base in ((sa, 0), (sb, 100)):
            got = []
            srv.drain(lambda ts, cpu, tid, pid, comm, rec, fmt: got.append(
                struct.unpack_from("<I", rec, 8)[0]))
            assert got == [base + i for i in range(10)]


@pytest.mark.parametrize("pure", [False, True])
def test_ring_full_and_busy_drop_exactly_on_both_paths(tmp_path, pure):
    if not pure and emit_path.compiled is None:
        pytest.skip(f"the compiled emit path is not in use here: {emit_path.why_pure}")
    with UserEventsServer(str(tmp_path / "s"), ring_size=64 << 10) as srv:
        ev = register("drops u64 seq", session_dir=srv.session.path)
        srv.enable("drops")
        emit = make_emit(ev, _writer_for_thread, None if pure else emit_path.compiled)
        sent = [emit(i) for i in range(3000)]
        assert sent.count(True) == (64 << 10) // 40
        w = ev.session.tls.w
        assert w.lost == 3000 - sent.count(True) == w.q[abi.RH_LOST // 8]
        saved, w.limit = w.limit, -1               # an emit in progress (a signal handler)
        assert emit(1) is False and w.lost == 3001 - sent.count(True)
        w.limit = saved


def test_version_and_module_say_which_path(tmp_path):
    built = not compiled_available()
    env = dict(os.environ, PYTHONPATH=str(SRC), USERTRACE_SESSION=str(tmp_path / "s"))
    for pure in (False, True):
        env.pop(emit_path.PURE_ENV, None)
        if pure:
            env[emit_path.PURE_ENV] = "1"
        version = subprocess.run([sys.executable, "-m", "usertrace", "--version"], env=env,
                                 capture_output=True, text=True, check=True).stdout
        about = subprocess.run([sys.executable, "-m", "usertrace.user_events"], env=env,
                               capture_output=True, text=True, check=True).stdout
        if pure:
            want = f"pure Python ({emit_path.PURE_ENV}=1)"
        else:
            want = "compiled (_emit" if built else "pure Python (the compiled extension"
        assert f"user events emit path: {want}" in version
        assert f"emit path: {want}" in about
        assert f"session: {tmp_path / 's'}" in about


def test_time_stamps_are_clock_monotonic(tmp_path):
    with UserEventsServer(str(tmp_path / "s")) as srv:
        ev = register("clock u32 a", session_dir=srv.session.path)
        srv.enable("clock")
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        assert ev.emit(1)
        t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        got = []
        srv.drain(lambda ts, *rest: got.append(ts))
        assert len(got) == 1 and t0 <= got[0] <= t1
