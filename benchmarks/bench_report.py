#!/usr/bin/env python3
"""``usertrace report`` side by side with ``trace-cmd report`` on the same trace.dat.

The file: 3,000,000 syscall events (enter and exit of openat, read, write, close, newfstat,
mmap, getppid, lseek) of 8 tasks on 2 cpus, each task running on a cpu for a random number
of calls before another takes over, arguments and results drawn from a seeded generator
(file descriptors, buffer addresses, sizes: no two records alike), time stamps 0.3-3 µs
apart.  It is written by usertrace's trace.dat writer from usertrace's ring buffer, as
``record`` writes it, and kept between runs (--keep).

Timed, in interleaved rounds (the machine is shared: compare within one run), each writing
to /dev/null:

    usertrace report         the kernel's trace text
    usertrace report --json  JSON lines
    trace-cmd report         trace-cmd's text (its own format, not the kernel's)

and, for each usertrace variant, the time from start to its first line (through a pipe).
The medians of the rounds (wall time and the process's CPU time), events per second and the
ratios to trace-cmd are printed.

    python benchmarks/bench_report.py [--events 3000000] [--rounds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from usertrace.buffer.ring import RingBuffer  # noqa: E402
from usertrace.buffer.tracedat import TraceDatWriter  # noqa: E402
from usertrace.catalog import known_events  # noqa: E402
from usertrace.sources.syscalls.events import EXIT_STRUCT, enter_struct  # noqa: E402

# (event, nr, argument generator)
CALLS = [
    ("openat", 257, lambda r: (0xFFFFFF9C, 0x7FFD00000000 + r.randrange(1 << 20) * 8,
                               r.choice((0, 0x80000, 0x241, 0x90800)), r.choice((0, 0o644)))),
    ("read", 0, lambda r: (r.randrange(3, 20), 0x55D000000000 + r.randrange(1 << 24) * 16,
                           r.choice((1, 64, 4096, 8192, 65536)))),
    ("write", 1, lambda r: (r.choice((1, 2, r.randrange(3, 20))),
                            0x55D000000000 + r.randrange(1 << 24) * 16, r.randrange(1, 4096))),
    ("close", 3, lambda r: (r.randrange(3, 20),)),
    ("newfstat", 5, lambda r: (r.randrange(3, 20), 0x7FFD00000000 + r.randrange(1 << 20) * 8)),
    ("mmap", 9, lambda r: (0, r.choice((4096, 8192, 1 << 20)), 3, 0x22, 0xFFFFFFFFFFFFFFFF, 0)),
    ("getppid", 110, lambda r: ()),
    ("lseek", 8, lambda r: (r.randrange(3, 20), r.randrange(1 << 16), r.randrange(3))),
]


def make_file(path: Path, n: int, seed: int = 1) -> None:
    reg = known_events()
    rng = random.Random(seed)
    calls = []
    for name, nr, gen in CALLS:
        e, x = reg.get("syscalls", "sys_enter_" + name), reg.get("syscalls", "sys_exit_" + name)
        calls.append((e, x, nr, gen))
    cpus = 2
    rings = [RingBuffer(nr_pages=64, overwrite=False) for _ in range(cpus)]
    pids = [2000 + 17 * i for i in range(8)]
    ts = 1_000_000_000_000
    with TraceDatWriter(path, cpus=cpus, events=[f for c in calls for f in c[:2]],
                        cmdlines={p: f"worker{i}" for i, p in enumerate(pids)}) as w:
        i = 0
        cpu, pid, run = 0, pids[0], 0
        while i < n:
            if run == 0:
                cpu, pid, run = rng.randrange(cpus), rng.choice(pids), rng.randrange(1, 64)
            e, x, nr, gen = calls[rng.randrange(len(calls))]
            args = gen(rng)
            rb = rings[cpu]
            rb.write_packed(ts, enter_struct(len(args)), (e.id, 0, 0, pid, nr) + args)
            ts += rng.randrange(300, 3000)
            ret = rng.choice((0, 3, 4096, rng.randrange(1 << 16), -2, -11))
            rb.write_packed(ts, EXIT_STRUCT, (x.id, 0, 0, pid, nr, ret))
            ts += rng.randrange(300, 3000)
            i += 2
            run -= 1
            while rb.full_pages:
                w.write_page(cpu, rb.read_page())
        for c, rb in enumerate(rings):
            for page in rb.iter_pages():
                w.write_page(c, page)


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, env=env, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def first_line(argv: list[str], env: dict) -> float:
    """Seconds from the start of ``argv`` to its first line of output (then it is killed)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    p.stdout.readline()
    dt = time.perf_counter() - t0
    p.kill()
    p.wait()
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="keep (and reuse) the trace.dat in DIR")
    args = ap.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    workdir.mkdir(parents=True, exist_ok=True)
    dat = workdir / f"syscalls-{args.events}.dat"
    if not dat.exists():
        t0 = time.perf_counter()
        make_file(dat, args.events)
        print(f"made {dat} ({dat.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    ours = [sys.executable, "-m", "usertrace", "report", "-i", str(dat)]
    variants = {"usertrace report": ours, "usertrace report --json": ours + ["--json"]}
    if shutil.which("trace-cmd"):
        variants["trace-cmd report"] = ["trace-cmd", "report", "-i", str(dat)]
    else:
        print("trace-cmd is not installed: usertrace alone")
    times = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    firsts = {k: [] for k in variants if k.startswith("usertrace")}
    for r in range(args.rounds):
        for k, argv in variants.items():
            wall, used = timed(argv, env)
            times[k].append(wall)
            cpu[k].append(used)
            if k in firsts:
                firsts[k].append(first_line(argv, env))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    tc, tc_cpu = med.get("trace-cmd report"), med_cpu.get("trace-cmd report")
    print(f"\n{args.events} events, median of {args.rounds} rounds (wall time; CPU time of the "
          f"process, less disturbed by other load)")
    print(f"  {'variant':26s} {'time s':>8s} {'events/s':>10s} {'x trace-cmd':>11s} "
          f"{'CPU s':>7s} {'x trace-cmd':>11s} {'first line s':>12s}")
    for k, t in med.items():
        ratio = f"{t / tc:11.2f}" if tc else f"{'':11s}"
        c = med_cpu[k]
        cratio = f"{c / tc_cpu:11.2f}" if tc_cpu else f"{'':11s}"
        fl = f"{statistics.median(firsts[k]):12.3f}" if k in firsts else ""
        print(f"  {k:26s} {t:8.2f} {args.events / t:10,.0f} {ratio} {c:7.2f} {cratio} {fl}")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
