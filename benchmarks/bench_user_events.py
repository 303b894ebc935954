"""User events from Python, both emit paths, side by side with trace_marker_raw and logging.

    python3 benchmarks/bench_user_events.py [--events 200000] [--runs 7] [--stream 1000000]
                                            [--before SRC] [--only per-event|throughput]

Per event (ns, thread CPU time, median of interleaved rounds, net of an empty loop).  Each
column is a process of its own, all on one cpu (--cpu) and attached to one tracer (this
process) that drains between rounds, so every column runs under the same conditions:

  compiled       this checkout, the compiled emit path (_emit.c; skipped if it is not built)
  pure           this checkout, USERTRACE_PURE_PYTHON=1
  before         with --before SRC: the usertrace of another tree (e.g. a checkout of an
                 older commit: --before /tmp/old/src), as it comes
  kernel, logging  os.write() of the same payload to trace_marker_raw of a private tracefs
                 instance (needs root and tracefs), and logging.info() of the same fields to a
                 file, in a process of their own

Rows (event "u32 a; u32 b; __data_loc char[] msg" unless said):

  disabled check         `if ev.enabled:` on an event nobody listens to   (goal <= 30 ns)
  emit, positional       ev.emit(1, 2, "hello")                           (goal <= 200 ns)
  emit, by name          ev.emit(a=1, b=2, msg="hello")                   (goal <= 200 ns)
  emit 2 ints            ev.emit(1, 2) of "u32 a; u32 b"
  emit char[16]          ev.emit(1, 2, "hello") of "u32 a; u32 b; char[16] msg"
  anchor                 struct.pack_into of 32 bytes into an mmap, to compare machines

Throughput (events per second; each writer a process emitting as fast as it can, or paced, the
tracer in this process draining into a counting callback), for each emit path:

  1 writer, 1 writer paced 500,000/s, 4 writers, 4 writers paced 125,000/s each

"emitted" is the writers' rate of emit calls, "drained" the tracer's; what the tracer could not
take in time is dropped by the writer and counted: recorded + lost must be the events emitted,
exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
sys.path.insert(0, SRC)

from usertrace.sources.user_events import UserEventsServer  # noqa: E402

ROWS = ["disabled check", "emit, positional", "emit, by name", "emit 2 ints", "emit char[16]",
        "anchor pack_into 32 B", "trace_marker_raw write", "logging to a file"]
GOALS = {"disabled check": 30, "emit, positional": 200, "emit, by name": 200}

# A column: one process that answers "round N" with {row: gross ns per call} for N calls.
COLUMN = r'''
import json, mmap, os, struct, sys, time
if sys.argv[1:]:
    os.sched_setaffinity(0, {int(sys.argv[1])})
from usertrace.sources.user_events import register
try:
    from usertrace.sources.user_events.emit_path import describe
except ImportError:
    describe = lambda: "before the compiled path"
now = time.thread_time_ns
ev = register("bench_emit u32 a; u32 b; __data_loc char[] msg")
ev_ints = register("bench_ints u32 a; u32 b")
ev_chars = register("bench_chars u32 a; u32 b; char[16] msg")
off = register("bench_off u32 a; u32 b; __data_loc char[] msg")
mm = mmap.mmap(-1, 1 << 16)
anchor = struct.Struct("=IIQQI4x").pack_into

def empty(n):
    for _ in range(n):
        pass
def disabled(n):
    for _ in range(n):
        if off.enabled:
            pass
def positional(n, emit=ev.emit):
    for _ in range(n):
        emit(1, 2, "hello")
def by_name(n, emit=ev.emit):
    for _ in range(n):
        emit(a=1, b=2, msg="hello")
def ints(n, emit=ev_ints.emit):
    for _ in range(n):
        emit(1, 2)
def chars(n, emit=ev_chars.emit):
    for _ in range(n):
        emit(1, 2, "hello")
def pack(n):
    for _ in range(n):
        anchor(mm, 64, 1, 2, 3, 4, 5)
cases = {"empty loop": empty, "disabled check": disabled, "emit, positional": positional,
         "emit, by name": by_name, "emit 2 ints": ints, "emit char[16]": chars,
         "anchor pack_into 32 B": pack}
print(json.dumps({"path": describe()}), flush=True)
for line in sys.stdin:
    n = int(line)
    out = {}
    for name, fn in cases.items():
        t0 = now()
        fn(n)
        out[name] = (now() - t0) / n
    print(json.dumps(out), flush=True)
'''

PEERS = r'''
import json, logging, os, struct, sys, time
if sys.argv[2:]:
    os.sched_setaffinity(0, {int(sys.argv[2])})
now = time.thread_time_ns
log = logging.getLogger("bench_user_events")
log.propagate = False
log.setLevel(logging.INFO)
handler = logging.FileHandler(sys.argv[1])
handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
log.addHandler(handler)
marker = None
try:
    from usertrace.kernel.tracefs import Instance, why_no_tracefs
    why = why_no_tracefs()
    if not why:
        inst = Instance().create()
        fd = os.open(inst.file("trace_marker_raw"), os.O_WRONLY)
        marker = struct.Struct("<IIIIs5s").pack    # id, a, b, loc word, "hello\0"
except Exception as exc:
    why = str(exc)

def empty(n):
    for _ in range(n):
        pass
def write(n):
    w = os.write
    for _ in range(n):
        w(fd, marker(1, 1, 2, 6 << 16 | 20, b"", b"hello"))
def logging_(n):
    info = log.info
    for _ in range(n):
        info("bench_emit a=%u b=%u msg=%s", 1, 2, "hello")
cases = {"empty loop": empty, "logging to a file": logging_}
if marker:
    cases["trace_marker_raw write"] = write
print(json.dumps({"path": "kernel" if marker else f"kernel: skipped ({why})"}), flush=True)
for line in sys.stdin:
    n = int(line)
    out = {}
    for name, fn in cases.items():
        m = n if name != "logging to a file" else max(n // 20, 1000)
        t0 = now()
        fn(m)
        out[name] = (now() - t0) / m
    print(json.dumps(out), flush=True)
if marker:
    os.close(fd)
    inst.remove()
'''


class Column:
    """A process that measures one column, one round per request."""

    def __init__(self, name: str, code: str, src: str, env: dict, *argv: str):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-c", code, *argv],
                                     env=dict(env, PYTHONPATH=src), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"{name}: the column's process failed")
        self.path = json.loads(first)["path"]
        self.times: dict[str, list[float]] = {}

    def round(self, n: int) -> None:
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        for row, ns in json.loads(self.proc.stdout.readline()).items():
            self.times.setdefault(row, []).append(ns)

    def net(self) -> dict[str, float]:
        empty = statistics.median(self.times["empty loop"])
        return {row: statistics.median(v) - empty for row, v in self.times.items()
                if row != "empty loop"}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def per_event_figures(args, tmp: str) -> dict:
    sdir = os.path.join(tmp, "session")
    env = dict(os.environ, USERTRACE_SESSION=sdir)
    env.pop("USERTRACE_PURE_PYTHON", None)
    srv = UserEventsServer(sdir, ring_size=128 << 20).open()
    for name in ("bench_emit", "bench_ints", "bench_chars"):
        srv.enable(name)
    cpu = [] if args.cpu < 0 else [str(args.cpu)]
    columns = []
    if args.before:
        columns.append(Column("before", COLUMN, args.before, env, *cpu))
    columns.append(Column("pure", COLUMN, SRC, dict(env, USERTRACE_PURE_PYTHON="1"), *cpu))
    compiled = Column("compiled", COLUMN, SRC, env, *cpu)
    if compiled.path.startswith("compiled"):
        columns.append(compiled)
    else:
        print(f"compiled: skipped ({compiled.path})")
        compiled.close()
    columns.append(Column("kernel, logging", PEERS, SRC, env, os.path.join(tmp, "log.txt"), *cpu))
    sink = lambda *rec: None  # noqa: E731
    for _ in range(args.runs):
        for col in columns:
            col.round(args.events)
            srv.drain(sink, ordered=False)
    for col in columns:
        col.close()
    totals = srv.totals()
    srv.close()
    assert totals.lost == 0 and totals.refused == 0, totals

    nets = {col.name: col.net() for col in columns}
    print(f"per event, ns: thread CPU time, median of {args.runs} interleaved rounds of "
          f"{args.events}, net of an empty loop" + (f", every column on cpu {args.cpu}"
                                                    if cpu else ""))
    for col in columns:
        print(f"  {col.name:16} {col.path}")
    names = [c.name for c in columns]
    print(f"{'':24}" + "".join(f"{n:>17}" for n in names) + "  goal")
    for row in ROWS:
        cells = [nets[n].get(row) for n in names]
        if all(c is None for c in cells):
            continue
        goal = GOALS.get(row)
        best = nets.get("compiled", {}).get(row)
        verdict = "" if goal is None or best is None else \
            f"<= {goal}: {'yes' if best <= goal else 'no'}"
        print(f"{row:24}" + "".join(f"{'':>17}" if c is None else f"{c:17,.0f}" for c in cells)
              + f"  {verdict}")
    return {"paths": {c.name: c.path for c in columns}, "net_ns": nets}


WRITER = """
import sys, time
from usertrace.sources.user_events import register
n, rate = int(sys.argv[1]), float(sys.argv[2])
ev = register("bench_stream u32 a; u32 b; __data_loc char[] msg")
emit = ev.emit
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
ok = 0
t0 = time.perf_counter()
if rate:
    batch = 1000
    for start in range(0, n, batch):
        wait = t0 + start / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)                 # sleep, not spin: the tracer needs the cpu
        for i in range(start, min(n, start + batch)):
            ok += emit(i, 2, "hello")
else:
    for i in range(n):
        ok += emit(i, 2, "hello")
dt = time.perf_counter() - t0
print(ok, dt)
"""


def stream(sdir: str, writers: int, n: int, rate: float, env: dict) -> dict:
    """Writers in separate processes, the tracer draining here; rates and losses."""
    env = dict(env, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
    counted = [0]

    def count(*rec):
        counted[0] += 1

    with UserEventsServer(sdir) as srv:
        srv.enable("bench_stream")
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(rate)], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(writers)]
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        stop = threading.Event()
        drainer = threading.Thread(target=srv.pump, args=(count, stop), kwargs={"interval": 0.0005})
        drainer.start()
        t0 = time.perf_counter()
        for p in procs:
            p.stdin.write("\n")
            p.stdin.flush()
        results = [p.communicate()[0].split() for p in procs]
        t_writers = time.perf_counter() - t0
        stop.set()
        drainer.join()
        t_drained = time.perf_counter() - t0
        totals = srv.totals()
    ok = sum(int(r[0]) for r in results)
    slowest = max(float(r[1]) for r in results)
    return {"writers": writers, "events": writers * n, "written": ok,
            "emit_rate": writers * n / slowest, "lost": totals.lost, "refused": totals.refused,
            "delivered": counted[0], "drain_rate": counted[0] / t_drained,
            "exact": ok == counted[0] and ok + totals.lost == writers * n,
            "seconds": round(t_writers, 3)}


def throughput_figures(args, tmp: str) -> dict:
    print("\nthroughput, events/s (writers are processes; the tracer drains in this one)")
    runs = [("1 writer", 1, args.stream, 0.0), ("1 writer paced 500k/s", 1, args.stream, 500_000.0),
            ("4 writers", 4, args.stream // 4, 0.0),
            ("4 writers paced 125k/s", 4, args.stream // 4, 125_000.0)]
    env = dict(os.environ)
    env.pop("USERTRACE_PURE_PYTHON", None)
    streams = {}
    for path, penv in (("compiled", env), ("pure", dict(env, USERTRACE_PURE_PYTHON="1"))):
        for name, w, k, rate in runs:
            key = f"{path}, {name}"
            sdir = os.path.join(tmp, key.replace(" ", "_").replace("/", "").replace(",", ""))
            r = stream(sdir, w, k, rate, penv)
            streams[key] = r
            print(f"{key:32} emitted {r['emit_rate']:>10,.0f}/s  drained "
                  f"{r['drain_rate']:>9,.0f}/s  recorded {r['delivered']:>9,} + lost "
                  f"{r['lost']:>9,} of {r['events']:,}{'' if r['exact'] else ' (NOT EXACT)'}")
    return streams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--stream", type=int, default=1_000_000)
    ap.add_argument("--before", metavar="SRC", help="a column for the usertrace in SRC")
    ap.add_argument("--cpu", type=int, default=0,
                    help="run every column on this cpu (default 0; -1: anywhere)")
    ap.add_argument("--json", help="write the figures to this file too")
    ap.add_argument("--only", choices=["per-event", "throughput"], help="run one half")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-uev-")
    per_event, streams = {}, {}
    try:
        if args.only != "throughput":
            per_event = per_event_figures(args, tmp)
        if args.only != "per-event":
            streams = throughput_figures(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"per_event": per_event, "streams": streams},
                                              indent=2))


if __name__ == "__main__":
    main()
