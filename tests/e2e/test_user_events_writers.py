"""User events from real processes: Python and C writers, many at once, killed mid-emit, forked,
and outliving their tracer."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from usertrace.events.records import RecordCodec
from usertrace.sources.user_events import UserEventsServer, register, server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def sdir(tmp_path):
    return str(tmp_path / "session")


def env_for(sdir):
    return dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), USERTRACE_SESSION=sdir)


def py(code, sdir, **kw):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env_for(sdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


class Collector:
    """Drains a server in a thread, decoding every record."""

    def __init__(self, srv):
        self.srv = srv
        self.records = []
        self.lost = []
        self._codecs = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _cb(self, ts, cpu, tid, pid, comm, rec, fmt):
        codec = self._codecs.get(fmt.id) or self._codecs.setdefault(fmt.id, RecordCodec(fmt))
        self.records.append((ts, cpu, tid, pid, comm, fmt.name, codec.decode(rec)))

    def _run(self):
        self.srv.pump(self._cb, self._stop, on_lost=lambda *a: self.lost.append(a))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(60)


WRITER = """
    import os, sys, threading
    from usertrace.sources.user_events import register
    ev = register("load u32 t; u32 i; __data_loc char[] s")
    n, nth = int(sys.argv[1]), int(sys.argv[2])
    def work(t):
        for i in range(n):
            assert ev.emit(t, i, "p%d" % os.getpid())
    ths = [threading.Thread(target=work, args=(t,)) for t in range(nth)]
    [th.start() for th in ths]; [th.join() for th in ths]
"""


def test_many_processes_and_threads_lose_nothing(sdir):
    n, nth, nproc = 3000, 2, 4
    with UserEventsServer(sdir, ring_size=4 << 20) as srv, Collector(srv) as col:
        srv.enable("load")
        procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(n), str(nth)],
                                  env=env_for(sdir), stderr=subprocess.PIPE, text=True)
                 for _ in range(nproc)]
        for p in procs:
            assert p.wait(120) == 0, p.stderr.read()
    pids = {p.pid for p in procs}
    seen = {}
    for ts, cpu, tid, pid, comm, name, d in col.records:
        assert pid in pids and d["s"] == f"p{pid}" and d["common_pid"] == tid
        seen.setdefault((pid, tid, d["t"]), []).append(d["i"])
    assert len(seen) == nproc * nth
    assert all(v == list(range(n)) for v in seen.values())       # each thread's in order
    t = srv.totals()
    assert (t.records, t.lost, t.refused, t.corrupt) == (n * nth * nproc, 0, 0, 0)
    assert col.lost == []


def test_full_rings_count_losses_exactly(sdir):
    with UserEventsServer(sdir, ring_size=64 << 10) as srv:
        srv.enable("burst")
        procs = [py("""
            from usertrace.sources.user_events import register
            ev = register("burst u64 i")
            print(sum(ev.emit(i) for i in range(10000)))
        """, sdir) for _ in range(2)]
        written = {p.pid: int(p.communicate(timeout=120)[0]) for p in procs}
        got, lost = {}, {}
        srv.drain(lambda ts, cpu, tid, pid, comm, rec, fmt: got.setdefault(pid, []).append(rec),
                  on_lost=lambda pid, tid, comm, k: lost.__setitem__(pid, k))
    assert {pid: len(v) for pid, v in got.items()} == written
    assert lost == {pid: 10000 - k for pid, k in written.items()}
    assert all(0 < k < 10000 for k in written.values())


EXACT_WRITER = """
    import sys, threading
    from usertrace.sources.user_events import emit_path, register
    ev = register("exact u32 t; u32 i; __data_loc char[] s")
    n, nth = int(sys.argv[1]), int(sys.argv[2])
    written = [0] * nth
    def work(t):
        ok = 0
        for i in range(n):
            ok += ev.emit(t, i, "x" * (i % 13))
        written[t] = ok
    ths = [threading.Thread(target=work, args=(t,)) for t in range(nth)]
    [th.start() for th in ths]; [th.join() for th in ths]
    print(emit_path.describe()); print(*written)
"""


def test_writers_flat_out_recorded_plus_lost_is_emitted_exactly(sdir):
    """2 processes x 4 threads emit as fast as they can into small rings while the tracer
    drains: whatever the timing, each thread's records arrive in order and recorded + lost is
    what was emitted (run once per emit path: CI runs the user-events tests twice)."""
    n, nth = 20000, 4
    with UserEventsServer(sdir, ring_size=64 << 10) as srv, Collector(srv) as col:
        srv.enable("exact")
        procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(EXACT_WRITER), str(n),
                                   str(nth)], env=env_for(sdir), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = {p.pid: p.communicate(timeout=300) for p in procs}
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs.values()]
    written = {(pid, t): int(k) for pid, (out, _) in outs.items()
               for t, k in enumerate(out.splitlines()[1].split())}
    seen = {}
    for ts, cpu, tid, pid, comm, name, d in col.records:
        seen.setdefault((pid, d["t"]), []).append(d["i"])
        assert d["s"] == "x" * (d["i"] % 13)
    assert {k: len(v) for k, v in seen.items() if v} == {k: v for k, v in written.items() if v}
    assert all(v == sorted(set(v)) for v in seen.values())
    t = srv.totals()
    assert t.records + t.lost == 2 * nth * n and t.records == sum(written.values())
    assert (t.refused, t.corrupt) == (0, 0)
    assert sum(k for *_, k in col.lost) == t.lost


def test_c_writer_round_trip(sdir, target):
    writer = str(target("uevents_writer"))
    py_ev = register("c_evt u32 seq; u64 val; __data_loc char[] msg", session_dir=sdir)
    with UserEventsServer(sdir) as srv:
        srv.enable("c_evt")
        p = subprocess.Popen([writer, "-n", "500", "-t", "3"], env=env_for(sdir),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        assert stdout.split() == ["index", str(py_ev.index), "lost", "0"]    # the same event
        out = []
        srv.drain(lambda *rec: out.append(rec))
    fmt = out[0][6]
    codec = RecordCodec(fmt)
    by_thread = {}
    for ts, cpu, tid, pid, comm, rec, f in out:
        d = codec.decode(rec)
        assert (pid, comm, f.full_name) == (p.pid, "uevents_writer", "user_events:c_evt")
        assert cpu >= 0 and d["common_pid"] == tid and d["msg"] == f"c says {d['seq']}"
        by_thread.setdefault(tid, []).append((d["val"], d["seq"]))
    assert len(by_thread) == 3
    assert sorted(v[0][0] for v in by_thread.values()) == [0, 1, 2]
    assert all([s for _, s in v] == list(range(500)) for v in by_thread.values())
    py_ev.unregister()


def test_c_writer_clashing_definition_is_refused(sdir, target):
    ev = register("c_evt u8 other", session_dir=sdir)
    r = subprocess.run([str(target("uevents_writer")), "-n", "1"], env=env_for(sdir),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "registered as 'c_evt u8 other'" in r.stderr
    ev.unregister()


@pytest.mark.parametrize("mode", ["short", "oob", "nonul", "badtype", "big"])
def test_c_writer_bad_payloads_are_refused_and_counted(sdir, target, mode):
    with UserEventsServer(sdir) as srv:
        srv.enable("c_evt")
        r = subprocess.run([str(target("uevents_writer")), "-n", "50", "-m", mode],
                           env=env_for(sdir), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert srv.drain(lambda *a: None) == 0
        assert (srv.totals().refused, srv.totals().corrupt) == (50, 0)


def test_writers_killed_mid_emit_leave_no_corrupt_record(sdir, target):
    writer = str(target("uevents_writer"))
    rnd = random.Random(4)
    with UserEventsServer(sdir, ring_size=256 << 10) as srv, Collector(srv) as col:
        srv.enable("c_evt")
        srv.enable("kill_py")
        for k in range(24):
            if k % 3 == 2:
                p = py("""
                    from usertrace.sources.user_events import register
                    ev = register("kill_py u32 i; __data_loc char[] s")
                    ev.emit(0, "s0"); print("ready", flush=True)
                    i = 1
                    while True:
                        ev.emit(i, "s%d" % i); i += 1
                """, sdir)
            else:
                p = subprocess.Popen([writer, "-m", "loop"], env=env_for(sdir),
                                     stdout=subprocess.PIPE, text=True)
            while p.stdout.readline().strip() != "ready":
                assert p.poll() is None
            time.sleep(rnd.uniform(0, 0.03))
            p.send_signal(signal.SIGKILL)
            p.wait(30)
    t = srv.totals()
    assert (t.refused, t.corrupt) == (0, 0)
    assert len(col.records) > 24
    for ts, cpu, tid, pid, comm, name, d in col.records:
        if name == "c_evt":
            assert d["msg"] == f"c says {d['seq']}"
        else:
            assert d["s"] == f"s{d['i']}"
    # Each ring goes once it is drained and its writer is dead.
    time.sleep(server.LIVENESS_PERIOD + 0.1)
    with UserEventsServer(sdir) as srv2:
        srv2.drain(lambda *a: None)
        time.sleep(server.LIVENESS_PERIOD + 0.1)
        srv2.drain(lambda *a: None)
    assert not [f for f in os.listdir(sdir) if f.startswith("ring-")]


def test_fork_child_writes_its_own_ring_and_holds_the_events(sdir):
    with UserEventsServer(sdir) as srv:
        srv.enable("forked")
        p = py("""
            import os
            from usertrace.sources.user_events import register
            ev = register("forked u32 who")
            ev.emit(1)
            pid = os.fork()
            if pid == 0:
                ev.emit(2)
                print("child", os.getpid(), ev.session.holder.pid == os.getpid(),
                      os.path.exists(os.path.join(ev.session.path, "proc-%d" % os.getpid())),
                      flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
            ev.emit(3)
            print("parent", os.getpid(), flush=True)
        """, sdir)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        lines = dict(line.split(" ", 1) for line in out.splitlines())
        child_pid = int(lines["child"].split()[0])
        assert lines["child"].split()[1:] == ["True", "True"]
        got = []
        srv.drain(lambda ts, cpu, tid, pid, comm, rec, fmt:
                  got.append((pid, RecordCodec(fmt).decode(rec)["who"])))
        rings = {st.ring for st in srv.stats()}
    assert sorted(got) == sorted([(p.pid, 1), (child_pid, 2), (p.pid, 3)])
    assert len(rings) == 2


def test_applications_outlive_their_tracer(sdir):
    app = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from usertrace.sources.user_events import register
        ev = register("app_life u32 i")
        print("registered", flush=True)
        for line in sys.stdin:
            print(ev.enabled, ev.emit(int(line)), flush=True)
    """)], env=env_for(sdir), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert app.stdout.readline() == "registered\n"

    def ask(i):
        app.stdin.write(f"{i}\n")
        app.stdin.flush()
        return app.stdout.readline().split()

    assert ask(1) == ["False", "False"]
    srv = UserEventsServer(sdir).open()
    srv.enable("app_*")
    assert ask(2) == ["True", "True"]
    got = []
    srv.close(drain_into=lambda *rec: got.append(rec))
    assert len(got) == 1
    assert ask(3) == ["False", "False"]            # the tracer is gone; the app goes on
    srv = UserEventsServer(sdir).open()            # and a new tracer finds it again
    srv.enable("app_life")
    assert ask(4) == ["True", "True"]
    srv.close()
    app.stdin.close()
    assert app.wait(30) == 0
