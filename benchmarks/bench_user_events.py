"""User events from Python, side by side with the kernel's trace_marker_raw and with logging.

    python benchmarks/bench_user_events.py [--events 200000] [--runs 7] [--stream 1000000]

Per event (ns, median of interleaved rounds, loop overhead included and net of an empty loop):

  anchor         struct.pack_into of 32 bytes into an mmap (MEASURED.md: 73 ns), to compare
                 machines: "scaled" figures are net * 73 / anchor
  disabled       `if ev.enabled:` on an event nobody listens to            (goal <= 60 ns)
  emit           ev.emit(1, 2, "hello") of "u32 a; u32 b; __data_loc char[] msg", enabled,
                 the tracer draining between rounds                        (goal <= 1 us)
  emit char[16]  the same string in a char[16] field (the general path)
  emit ints      ev.emit(1, 2) of "u32 a; u32 b"
  marker_raw     os.write() of the same payload to trace_marker_raw of a private tracefs
                 instance (needs root and tracefs; skipped otherwise)
  logging        logging.info() of the same fields to a file

Throughput (events per second, the tracer in this process draining into a counting callback,
each writer a separate process emitting as fast as it can):

  1 writer       --stream events from one process, ring 2 MiB (the default)  (goal 500,000/s
                 with no loss)
  1 writer paced the same, paced at 500,000 events/s
  4 writers      4 processes at once, --stream / 4 events each, flat out and paced at
                 125,000 events/s each
"""

from __future__ import annotations

import argparse
import json
import logging
import mmap
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
sys.path.insert(0, SRC)

from usertrace.sources.user_events import UserEventsServer, register  # noqa: E402

DEFINITION = "bench_emit u32 a; u32 b; __data_loc char[] msg"
ANCHOR_NS = 73.0


def per_event(fn, n: int) -> float:
    """ns per call of fn(n) (which loops n times)."""
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def loop_empty(n):
    for _ in range(n):
        pass


def make_anchor():
    mm = mmap.mmap(-1, 1 << 16)
    pack = struct.Struct("=IIQQI4x").pack_into

    def run(n):
        for _ in range(n):
            pack(mm, 64, 1, 2, 3, 4, 5)
    return run


def make_disabled(ev):
    def run(n):
        for _ in range(n):
            if ev.enabled:
                pass
    return run


def make_emit(emit, args):
    def run(n):
        for _ in range(n):
            emit(*args)
    return run


def make_emit3(emit):
    def run(n):
        for _ in range(n):
            emit(1, 2, "hello")
    return run


def make_emit2(emit):
    def run(n):
        for _ in range(n):
            emit(1, 2)
    return run


def make_marker():
    """os.write of the same payload to trace_marker_raw of a private instance, or None."""
    try:
        from usertrace.kernel.tracefs import Instance, why_no_tracefs
    except ImportError:
        return None, "no tracefs helper"
    reason = why_no_tracefs()
    if reason:
        return None, reason
    inst = Instance().create()
    fd = os.open(inst.file("trace_marker_raw"), os.O_WRONLY)
    pack = struct.Struct("<IIIIs5s").pack       # id, a, b, loc word, "hello\0" as the emit has

    def run(n):
        write = os.write
        for _ in range(n):
            write(fd, pack(1, 1, 2, 6 << 16 | 20, b"", b"hello"))

    def close():
        os.close(fd)
        inst.remove()
    run.close = close
    return run, None


def make_logging(path):
    log = logging.getLogger("bench_user_events")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)

    def run(n):
        info = log.info
        for _ in range(n):
            info("bench_emit a=%u b=%u msg=%s", 1, 2, "hello")
    run.close = lambda: (log.removeHandler(handler), handler.close())
    return run


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


def stream(sdir: str, writers: int, n: int, rate: float) -> dict:
    """Writers in separate processes, the tracer draining here; rates and losses."""
    env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
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
            "write_rate": ok / slowest, "lost": totals.lost, "refused": totals.refused,
            "delivered": counted[0], "drain_rate": counted[0] / t_drained,
            "seconds": round(t_writers, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--stream", type=int, default=1_000_000)
    ap.add_argument("--json", help="write the figures to this file too")
    ap.add_argument("--only", choices=["per-event", "throughput"], help="run one half")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-uev-")
    med, anchor, streams = {}, 0.0, {}
    try:
        if args.only != "throughput":
            med, anchor = per_event_figures(args, tmp)
        if args.only != "per-event":
            streams = throughput_figures(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"per_event_ns": med, "anchor_net": anchor,
                                               "streams": streams}, indent=2))


def per_event_figures(args, tmp: str) -> tuple[dict, float]:
    n = args.events
    sdir = os.path.join(tmp, "session")
    srv = UserEventsServer(sdir, ring_size=64 << 20).open()
    ev = register(DEFINITION, session_dir=sdir)
    ev_chars = register("bench_chars u32 a; u32 b; char[16] msg", session_dir=sdir)
    ev_ints = register("bench_ints u32 a; u32 b", session_dir=sdir)
    off = register("bench_off u32 a; u32 b; __data_loc char[] msg", session_dir=sdir)
    srv.enable("bench_emit")
    srv.enable("bench_chars")
    srv.enable("bench_ints")
    marker, why_not = make_marker()
    log_run = make_logging(os.path.join(tmp, "log.txt"))

    cases = {
        "empty loop": loop_empty,
        "anchor pack_into 32 B": make_anchor(),
        "disabled check": make_disabled(off),
        "emit 2 ints + string": make_emit3(ev.emit),
        "emit 2 ints + char[16]": make_emit(ev_chars.emit, (1, 2, "hello")),
        "emit 2 ints": make_emit2(ev_ints.emit),
        "logging to a file": log_run,
    }
    if marker:
        cases["trace_marker_raw write"] = marker
    sink = lambda *rec: None  # noqa: E731
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, fn in cases.items():
            m = n if name != "logging to a file" else max(n // 20, 1000)
            times[name].append(per_event(fn, m))
            srv.drain(sink, ordered=False)
    assert srv.totals().lost == 0
    med = {k: statistics.median(v) for k, v in times.items()}
    empty = med["empty loop"]
    anchor = med["anchor pack_into 32 B"] - empty
    goals = {"disabled check": 60, "emit 2 ints + string": 1000}
    print(f"per event, ns (median of {args.runs} interleaved rounds of {n}; "
          f"net = less the empty loop; scaled = net * {ANCHOR_NS:.0f} / anchor net)")
    print(f"{'':26} {'gross':>9} {'net':>9} {'scaled':>9}  goal")
    for name, v in med.items():
        net = v - empty
        goal = goals.get(name)
        verdict = "" if goal is None else f"<= {goal}: {'yes' if net <= goal else 'no'} (net)"
        print(f"{name:26} {v:9.0f} {net:9.0f} {net * ANCHOR_NS / anchor:9.0f}  {verdict}")
    if not marker:
        print(f"trace_marker_raw write: skipped ({why_not})")
    srv.close()
    ev.unregister()
    for e in (ev_chars, ev_ints, off):
        e.unregister()
    log_run.close()
    if marker:
        marker.close()
    return med, anchor


def throughput_figures(args, tmp: str) -> dict:
    print("\nthroughput, events/s (writers are processes; the tracer drains in this one)")
    runs = [("1 writer", 1, args.stream, 0.0), ("1 writer paced 500k/s", 1, args.stream, 500_000.0),
            ("4 writers", 4, args.stream // 4, 0.0),
            ("4 writers paced 125k/s", 4, args.stream // 4, 125_000.0)]
    streams = {}
    for name, w, k, rate in runs:
        r = stream(os.path.join(tmp, name.replace(" ", "_").replace("/", "")), w, k, rate)
        streams[name] = r
        print(f"{name:22} written {r['write_rate']:>10,.0f}/s  drained {r['drain_rate']:>10,.0f}/s"
              f"  delivered {r['delivered']:>9,} of {r['events']:,}  lost {r['lost']:,}"
              f"  refused {r['refused']}")
    return streams


if __name__ == "__main__":
    main()
