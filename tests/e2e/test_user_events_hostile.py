"""Hostile neighbours of the same user against the tracer: rings with a head or lengths no
honest writer publishes, garbage, files truncated under the tracer, files named like rings
that are not, a tracer short of descriptors.  The tracer keeps going, honest writers lose
nothing, and every refusal is counted by reason (drain.REASONS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from usertrace.events.records import RecordCodec
from usertrace.sources.user_events import UserEventError, UserEventsServer
from usertrace.sources.user_events.drain import READ_LIMIT, REASONS

HERE = Path(__file__).resolve().parent
SRC = str(HERE.parents[1] / "src")
TOOL = str(HERE / "_uevents_hostile.py")


@pytest.fixture
def sdir(tmp_path):
    return str(tmp_path / "session")


class Proc:
    """A writer (see _uevents_hostile.py), driven line by line."""

    def __init__(self, sdir, *argv):
        env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
        self.p = subprocess.Popen([sys.executable, TOOL, *map(str, argv)], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

    def expect(self, what):
        line = self.p.stdout.readline().strip()
        assert line == str(what), (line, self.p.stderr.read() if not line else "")

    def say(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def end(self):
        self.say("exit")
        assert self.p.wait(60) == 0, self.p.stderr.read()


class Sink:
    """Records by event name, decoded."""

    def __init__(self):
        self.got: dict[str, list[dict]] = {}
        self._codecs = {}

    def __call__(self, ts, cpu, tid, pid, comm, rec, fmt):
        codec = self._codecs.get(fmt.id) or self._codecs.setdefault(fmt.id, RecordCodec(fmt))
        self.got.setdefault(fmt.name, []).append(codec.decode(rec))

    def values(self, name, key):
        return [d[key] for d in self.got.get(name, [])]


HOSTILE = [
    # action            reason counted          bytes it still held, counted as unread
    ("misalign",        "head_misaligned",      0),
    ("backwards",       "head_backwards",       0),
    ("overrun",         "head_overrun",         0),
    ("lie",             "bad_length",           40),
    ("truncate:0",      "truncated",            0),
    ("truncate:100",    "truncated",            0),
    ("truncate:4104",   "truncated",            0),     # the header stays, the record goes
]


@pytest.mark.parametrize("action,reason,unread", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_ring_is_quarantined_and_honest_writers_lose_nothing(sdir, action, reason,
                                                                       unread):
    sink = Sink()
    with UserEventsServer(sdir, ring_size=64 << 10) as srv:
        srv.enable("honest")
        srv.enable("hostile")
        bad = Proc(sdir, "hostile", action)
        bad.expect("ring")
        good = Proc(sdir, "honest", 300)
        good.expect(300)
        srv.drain_all(sink)                       # the tracer knows both rings now
        bad.say("go")
        bad.expect("done")
        good.say("more 300")
        good.expect(300)
        srv.drain_all(sink)
        t = srv.totals()
        assert (t.reasons[reason], t.corrupt, t.discarded) == (1, 1, unread)
        assert sum(t.reasons.values()) == 1       # nothing else refused, nothing lost
        good.say("more 300")                      # the tracer goes on
        good.expect(300)
        srv.drain_all(sink)
        bad.end()
        good.end()
    assert sink.values("honest", "i") == list(range(900))
    assert sink.values("hostile", "i") == [0]     # what came before the fault is kept
    assert any(reason in e or REASONS[reason][1] in e for e in srv.errors)


@pytest.mark.parametrize("seed", range(6))
def test_garbage_is_refused_or_quarantined_never_delivered(sdir, seed):
    sink = Sink()
    with UserEventsServer(sdir, ring_size=64 << 10) as srv:
        srv.enable("honest")
        srv.enable("hostile")
        bad = Proc(sdir, "hostile", f"garbage:{seed}")
        bad.expect("ring")
        good = Proc(sdir, "honest", 200)
        good.expect(200)
        srv.drain_all(sink)
        bad.say("go")
        bad.expect("done")
        good.say("more 200")
        good.expect(200)
        srv.drain_all(sink)
        t = srv.totals()
        bad.end()
        good.end()
    assert sink.values("honest", "i") == list(range(400))
    assert sink.values("hostile", "i") == [0]
    assert sum(t.reasons.values()) >= 1 and set(t.reasons) <= set(REASONS)
    assert t.reasons["ring_full"] == 0


@pytest.mark.parametrize("name", ["registry", "control", "status"])
def test_session_files_truncated_while_the_tracer_drains(sdir, name):
    """A neighbour cuts a session file to nothing while the tracer drains in its thread: the
    tracer never faults, delivers what was written, counts the damage, and closes cleanly;
    the next tracer is refused with a clear error or works."""
    sink = Sink()
    srv = UserEventsServer(sdir, ring_size=64 << 10).open()
    srv.enable("honest")
    srv.enable("hostile")
    stop = threading.Event()
    pump = threading.Thread(target=srv.pump, args=(sink, stop))
    pump.start()
    good = Proc(sdir, "honest", 500)
    good.expect(500)
    bad = Proc(sdir, "hostile", f"truncate-session:{name}")
    bad.expect("ring")
    srv.drain_all(sink)                           # the tracer knows the hostile's event
    bad.say("go")
    bad.expect("done")
    stop.set()
    pump.join(60)
    srv.close(drain_into=sink)
    t = srv.totals()
    bad.end()
    good.end()
    assert sink.values("honest", "i") == list(range(500))
    assert sink.values("hostile", "i") == [0]
    assert t.reasons["session_damaged"] == 1 and sum(t.reasons.values()) == 1
    try:
        UserEventsServer(sdir).open().close()
    except UserEventError as exc:
        assert exc.code == "BAD_SESSION" and name in str(exc)


def test_files_named_like_rings_are_counted_once_and_cost_nothing(sdir):
    sink = Sink()
    with UserEventsServer(sdir, ring_size=64 << 10) as srv:
        srv.enable("honest")
        srv.enable("hostile")
        bad = Proc(sdir, "hostile", "fake-rings:50")
        bad.expect("ring")
        bad.say("go")
        bad.expect("done")
        good = Proc(sdir, "honest", 100)
        good.expect(100)
        for _ in range(3):
            srv.refresh(force=True)               # looked at again: counted once each
            srv.drain_all(sink)
        t = srv.totals()
        bad.end()
        good.end()
    assert sink.values("honest", "i") == list(range(100))
    assert sink.values("hostile", "i") == [0]
    assert dict(t.reasons) == {"not_a_ring": 50}


# -- descriptors --------------------------------------------------------------------------------
TRACER = """
import json, os, resource, sys, threading
from usertrace.sources.user_events import UserEventsServer
limit = int(sys.argv[1])
got = [0]
def sink(*rec):
    got[0] += 1
srv = UserEventsServer(ring_size=64 << 10).open()
srv.enable("honest"); srv.enable("crowd")
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
held = []
def hog_all():
    try:
        while True:
            held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
stop = threading.Event()
pump = threading.Thread(target=srv.pump, args=(sink, stop))
pump.start()
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "hog":
        hog_all()
    elif cmd == "free":
        while held:
            os.close(held.pop())
    elif cmd == "stop":
        break
    print("ok", flush=True)
stop.set(); pump.join()
srv.close(drain_into=sink)
t = srv.totals()
while held:
    os.close(held.pop())
print(json.dumps({"delivered": got[0], "records": t.records, "reasons": dict(t.reasons)}),
      flush=True)
"""


class Tracer(Proc):
    def __init__(self, sdir, limit):
        env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
        self.p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(TRACER), str(limit)],
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

    def finish(self) -> dict:
        self.say("stop")
        out = self.p.stdout.readline()
        assert self.p.wait(120) == 0, self.p.stderr.read()
        return json.loads(out)


@pytest.mark.parametrize("limit", [48, 256])
def test_a_tracer_at_a_low_open_file_limit_reads_every_ring(sdir, limit):
    """400 writer threads (400 rings) and a tracer allowed 48 descriptors: it reads rings it
    cannot keep open by opening them for each read; nothing vanishes."""
    tracer = Tracer(sdir, limit)
    tracer.expect("ready")
    few = Proc(sdir, "honest", 5)
    few.expect(5)
    crowd = Proc(sdir, "crowd", 400, 100)
    crowd.expect(40_000)
    result = tracer.finish()
    few.end()
    crowd.end()
    assert result == {"delivered": 40_005, "records": 40_005, "reasons": {}}


@pytest.mark.parametrize("free", [True, False], ids=["freed later", "never freed"])
def test_a_tracer_with_no_descriptor_free_still_drains(sdir, free):
    """Every descriptor of the tracer's process taken (by another part of the tracer) while
    400 threads make their rings: the tracer reads them with the one it keeps in reserve,
    one at a time, to the end."""
    tracer = Tracer(sdir, 256)
    tracer.expect("ready")
    tracer.say("hog")
    tracer.expect("ok")
    few = Proc(sdir, "honest", 5)
    few.expect(5)
    crowd = Proc(sdir, "crowd", 400, 100)
    crowd.expect(40_000)
    if free:
        tracer.say("free")
        tracer.expect("ok")
    result = tracer.finish()
    few.end()
    crowd.end()
    assert result == {"delivered": 40_005, "records": 40_005, "reasons": {}}


def test_read_limit_keeps_one_ring_from_holding_up_the_others(sdir):
    """A ring holding more than READ_LIMIT bytes gives that much per drain: the others are
    read in the same drain, and drain_all gets everything."""
    sink = Sink()
    n = READ_LIMIT // 48 + 5000                    # more than one read's worth of records
    with UserEventsServer(sdir, ring_size=8 << 20) as srv:
        srv.enable("honest")
        srv.enable("crowd")
        big = Proc(sdir, "honest", n)
        big.expect(n)
        small = Proc(sdir, "crowd", 1, 10)
        small.expect(10)
        first = srv.drain(sink)
        assert len(sink.got["crowd"]) == 10 and first < n + 10
        srv.drain_all(sink)
        big.end()
        small.end()
    assert sink.values("honest", "i") == list(range(n))


# -- through the command line ---------------------------------------------------------------------
NEIGHBOURHOOD = """
import os, subprocess, sys
tool, sdir = sys.argv[1], os.environ["USERTRACE_SESSION"]
def start(*argv):
    return subprocess.Popen([sys.executable, tool, *argv], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
honest = start("honest", "200")
assert honest.stdout.readline().strip() == "200"
hostile = start("hostile", "truncate:0")
assert hostile.stdout.readline().strip() == "ring"
hostile.stdin.write("go\\n"); hostile.stdin.flush()
assert hostile.stdout.readline().strip() == "done"
for name in ("registry", "control", "status"):
    os.truncate(os.path.join(sdir, name), 0)
for p in (honest, hostile):
    p.stdin.write("exit\\n"); p.stdin.flush(); p.wait()
sys.exit(3)
"""


def test_record_survives_every_shared_file_truncated(tmp_path):
    """`usertrace record` while a neighbour truncates its ring and the session's registry,
    control and status files: no SIGBUS, the traced command is unharmed (its exit status
    comes back), the trace.dat is written and holds every honest record."""
    from usertrace.sources.user_events import dynamic_events
    sdir = str(tmp_path / "session")
    dynamic_events("u:honest u32 i; __data_loc char[] s", session_dir=sdir)   # known at start
    script = tmp_path / "neighbourhood.py"
    script.write_text(NEIGHBOURHOOD)
    dat = tmp_path / "t.dat"
    env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
    r = subprocess.run([sys.executable, "-m", "usertrace", "record", "-e", "user_events:honest",
                        "-e", "user_events:hostile", "-o", str(dat), "--", sys.executable,
                        str(script), TOOL], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    rep = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(dat), "--json"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    events = [json.loads(line) for line in rep.stdout.splitlines()]
    assert [e["fields"]["i"] for e in events if e["event"] == "honest"] == list(range(200))
