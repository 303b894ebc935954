"""How fast the tracer drains user events, and whether it keeps up with a writer flat out.

    python benchmarks/bench_user_events_drain.py [--events 200000] [--runs 5]

Drain rate (records per second, median of --runs rounds): a writer process fills a ring with
--events records of "u32 a; u32 b; __data_loc char[] msg" (48 bytes each) while nobody
drains, then this process drains them all, timed:

  null callback     UserEventsServer.drain_all() into a callback that only counts
  record, batch     the record path of ``usertrace record``: UserEventsSource into a Session
                    writing a trace.dat, records handed over one drain at a time
  record, each      the same, one Session.emit per record (the path before batches)

Keeping up (one round each): one writer process emits --events records flat out while the
record path drains in this process; written + lost by the writer must equal --events and
every record written must be recorded (the losses are counted exactly, never silent).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
sys.path.insert(0, SRC)

from usertrace.session import EventSpec, Session  # noqa: E402
from usertrace.session.user_events import UserEventsSource  # noqa: E402
from usertrace.sources.user_events import UserEventsServer  # noqa: E402

WRITER = """
import sys, time
from usertrace.sources.user_events import register
n = int(sys.argv[1])
ev = register("bench_drain u32 a; u32 b; __data_loc char[] msg")
emit = ev.emit
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
t0 = time.perf_counter()
ok = 0
for i in range(n):
    ok += emit(i, 2, "hello")
print(ok, time.perf_counter() - t0, flush=True)
sys.stdin.readline()
"""


class Writer:
    def __init__(self, sdir: str, n: int):
        env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
        self.p = subprocess.Popen([sys.executable, "-c", WRITER, str(n)], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline() == "ready\n"

    def go(self) -> None:
        self.p.stdin.write("\n")
        self.p.stdin.flush()

    def result(self) -> tuple[int, float]:
        ok, secs = self.p.stdout.readline().split()
        return int(ok), float(secs)

    def end(self) -> None:
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        self.p.wait(60)


def ring_size_for(n: int) -> int:
    return 1 << (n * 48 * 2 - 1).bit_length()


def record_source(tmp: str, sdir: str, n: int, batch: bool) -> tuple[Session, UserEventsSource]:
    session = Session(ncpus=2)
    session.record_to(os.path.join(tmp, "t.dat"))
    src = UserEventsSource(session, [EventSpec("user_events:bench_drain")], 1,
                           session_dir=sdir)
    src.server.ring_size = ring_size_for(n)
    src.batch = batch
    return session, src


def drain_rate(tmp: str, n: int, how: str) -> float:
    """Records per second drained from a ring a writer filled beforehand."""
    sdir = os.path.join(tmp, f"s-{how}")
    count = [0]

    def null(*rec):
        count[0] += 1
    if how == "null callback":
        srv = UserEventsServer(sdir, ring_size=ring_size_for(n)).open()
        srv.enable("bench_drain")
    else:
        session, src = record_source(tmp, sdir, n, batch=how == "record, batch")
        src.attach()                    # no thread drains: the writer fills the ring first
        srv = src.server
    w = Writer(sdir, n)
    w.go()
    ok, _ = w.result()
    assert ok == n, f"the writer lost {n - ok} (ring too small?)"
    t0 = time.perf_counter()
    if how == "null callback":
        got = srv.drain_all(null)
    else:
        got = src.drain_all()
    dt = time.perf_counter() - t0
    assert got == n, (got, n)
    w.end()
    if how == "null callback":
        srv.close()
    else:
        src.stop()
        session.finish()
        assert session.trace.entries == n
    shutil.rmtree(sdir, ignore_errors=True)
    return n / dt


def keep_up(tmp: str, n: int) -> dict:
    """One writer flat out, the record path draining as it goes (2 MiB ring, the default)."""
    sdir = os.path.join(tmp, "s-live")
    session, src = record_source(tmp, sdir, n, batch=True)
    src.server.ring_size = None
    src.start()
    w = Writer(sdir, n)
    t0 = time.perf_counter()
    w.go()
    ok, secs = w.result()
    w.end()
    src.stop()
    dt = time.perf_counter() - t0
    session.finish()
    t = src.report()
    shutil.rmtree(sdir, ignore_errors=True)
    return {"written": ok, "lost": t.lost, "recorded": session.trace.entries,
            "write_rate": ok / secs, "drain_rate": t.records / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-drain-")
    try:
        hows = ["null callback", "record, batch", "record, each"]
        rates: dict[str, list[float]] = {h: [] for h in hows}
        for _ in range(args.runs):
            for how in hows:
                rates[how].append(drain_rate(tmp, args.events, how))
        print(f"drain rate, records/s (median of {args.runs} rounds of {args.events:,}; "
              f"min-max)")
        for how, v in rates.items():
            print(f"  {how:16} {statistics.median(v):>10,.0f}  "
                  f"({min(v):,.0f}-{max(v):,.0f})")
        r = keep_up(tmp, args.events)
        exact = r["written"] + r["lost"] == args.events and r["recorded"] == r["written"]
        print(f"one writer flat out: written {r['write_rate']:,.0f}/s, drained "
              f"{r['drain_rate']:,.0f}/s; {r['written']:,} written + {r['lost']:,} lost = "
              f"{r['written'] + r['lost']:,} of {args.events:,}, {r['recorded']:,} recorded"
              f" ({'exact' if exact else 'NOT EXACT'})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
