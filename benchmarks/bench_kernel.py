#!/usr/bin/env python3
"""The kernel backend's cost: per syscall beside the kernel by hand and the ptrace backend,
and a flat-out writer's losses.

Overhead per syscall, a getppid loop timed inside the program (no start-up in the figure):
its wall time, and its own CPU time (``CLOCK_PROCESS_CPUTIME_ID``: without the time other
processes of this shared machine had the cpu, the steadier figure for the kernel's cost,
which the program pays in its own calls; not for ptrace, whose cost is the waiting for the
tracer), every syscall event enabled (``-e syscalls``, the default), each run writing its
trace to a file:

    untraced            the loop alone
    kernel, no reader   by hand: a private instance, ``events/syscalls/enable``,
                        ``set_event_pid`` with the loop's pid, the mono clock; nobody reads
                        while it runs (``trace-cmd extract`` would read after): the events'
                        own cost
    kernel, cat         the same with one ``cat per_cpu/cpuN/trace_pipe_raw > file`` per cpu
                        while it runs
    usertrace kernel    ``usertrace record --backend kernel -o FILE -- loop N``
    usertrace ptrace    ``usertrace record --backend ptrace -o FILE -- loop N``

in interleaved rounds (the machine is shared: compare within one run); the medians, the
overhead per syscall (ns/call - untraced ns/call) and the ratios usertrace kernel / each
kernel by hand (goal: at most 1.5; wall and CPU) and usertrace kernel / usertrace ptrace
(goal: at most 0.05; wall).

Flat-out: a writer that makes getppid calls at a set rate (default 500,000 a second: a
million sys_enter/sys_exit_getppid events) for 10 s under ``usertrace record --backend
kernel`` with the default buffer sizes; it prints how many calls it made, and the check is
that the events in the file plus those the kernel reported lost are exactly twice that.

    python benchmarks/bench_kernel.py [--rounds 5] [--calls 2000000] [--ptrace-calls 100000]
                                      [--rate 500000] [--seconds 10] [--skip-flat]

Needs root and a tracefs (the kernel backend).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from usertrace.kernel.tracefs import Instance, why_no_tracefs  # noqa: E402

LOOP = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static long clock_ns(clockid_t clock) {
    struct timespec ts; clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
static long now(void) { return clock_ns(CLOCK_MONOTONIC); }
/* loop N: N getppid calls, prints the wall time and the CPU time (user and system) per call
 * in ns: the CPU time is what the calls and the kernel's tracing in them took, not the time
 * others had the cpu (nor the time a ptrace stop waited for the tracer).
 * loop 0 RATE SECONDS: getppid at RATE calls a second for SECONDS, prints the calls made. */
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    if (n > 0) {
        long t0 = now(), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        long c1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), t1 = now();
        printf("%.1f %.1f\n", (double)(t1 - t0) / n, (double)(c1 - c0) / n);
        return 0;
    }
    long rate = atol(argv[2]), secs = atol(argv[3]), calls = 0, t0 = now();
    long end = t0 + secs * 1000000000L;
    for (;;) {
        long t = now();
        if (t >= end) break;
        long due = (long)((double)(t - t0) * rate / 1e9);
        while (calls < due) { syscall(SYS_getppid); calls++; }
    }
    printf("%ld\n", calls);
    return 0;
}
"""


def build(workdir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("needs a C compiler")
    src = workdir / "loop.c"
    src.write_text(LOOP)
    exe = workdir / "loop"
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def usertrace(*argv) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "usertrace", *argv], capture_output=True,
                          text=True, env=env)


def times(text: str) -> tuple[float, float]:
    """(wall, cpu) ns per call, as the loop prints them."""
    wall, cpu = text.split()
    return float(wall), float(cpu)


def untraced(loop: Path, calls: int) -> tuple[float, float]:
    r = subprocess.run([str(loop), str(calls)], capture_output=True, text=True, check=True)
    return times(r.stdout)


def kernel_by_hand(loop: Path, calls: int, work: Path, cat: bool = True) -> tuple[float, float]:
    """The kernel's syscall events for the loop's pid, read by cat into files meanwhile
    (``cat``), or read by nobody while it runs (as ``trace-cmd extract`` reads them after)."""
    with Instance() as inst:
        inst.write("trace_clock", "mono")
        r, w = os.pipe()
        child = subprocess.Popen(["sh", "-c", 'read x; exec "$0" "$1"', str(loop), str(calls)],
                                 stdin=r, stdout=subprocess.PIPE, text=True)
        os.close(r)
        inst.write("set_event_pid", str(child.pid))
        inst.set_option("event-fork", True)
        inst.enable("syscalls")
        cats = [subprocess.Popen(["cat", str(inst.path / f"per_cpu/cpu{c}/trace_pipe_raw")],
                                 stdout=open(work / f"cpu{c}.raw", "wb"))
                for c in range(inst.num_cpus())] if cat else []
        os.write(w, b"go\n")
        os.close(w)
        out = child.communicate()[0]
        inst.write("tracing_on", "0")
        time.sleep(0.2)                       # cat takes what is left
        for cat in cats:
            cat.terminate()
            cat.wait()
        inst.disable("syscalls")
    return times(out)


def usertrace_record(loop: Path, calls: int, backend: str, work: Path) -> tuple[float, float]:
    r = usertrace("record", "--backend", backend, "-o", str(work / f"{backend}.dat"), "--",
                  str(loop), str(calls))
    if r.returncode != 0:
        sys.exit(f"usertrace record --backend {backend}: {r.stderr}")
    return times(r.stdout)


def flat_out(loop: Path, rate: int, seconds: int, work: Path) -> dict:
    dat = work / "flat.dat"
    t0 = time.monotonic()
    r = usertrace("record", "--backend", "kernel", "-e", "sys_enter_getppid", "-e",
                  "sys_exit_getppid", "-o", str(dat), "--", str(loop), "0", str(rate),
                  str(seconds))
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"flat-out: {r.stderr}")
    calls = int(r.stdout)
    m = re.search(r"(\d+) events recorded in \S+?(?:, (\d+) lost|$)", r.stderr, re.M)
    if m is None:
        sys.exit(f"flat-out: no summary in {r.stderr!r}")
    recorded, lost = int(m[1]), int(m[2] or 0)
    return {"calls": calls, "events": 2 * calls, "recorded": recorded, "lost": lost,
            "rate": 2 * calls / seconds, "wall": wall, "size": dat.stat().st_size,
            "messages": [line for line in r.stderr.splitlines() if "kernel:" in line]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2_000_000)
    ap.add_argument("--ptrace-calls", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=500_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--skip-flat", action="store_true")
    ap.add_argument("--skip-loop", action="store_true", help="only the flat-out writer")
    args = ap.parse_args()
    reason = why_no_tracefs()
    if reason:
        sys.exit(f"the kernel backend cannot run here: {reason}")
    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as tmp:
        work = Path(tmp)
        loop = build(work)
        if not args.skip_loop:
            per_syscall(loop, args, work)
        if not args.skip_flat:
            f = flat_out(loop, args.rate, args.seconds, work)
            print(f"\nflat-out writer, {args.seconds} s, default buffers: {f['events']} events "
                  f"({f['rate']:,.0f}/s), {f['recorded']} recorded, {f['lost']} reported lost"
                  f"; recorded + lost == events: {f['recorded'] + f['lost'] == f['events']}; "
                  f"{f['size'] / 1e6:.0f} MB; wall {f['wall']:.1f} s")
            for line in f["messages"]:
                print("  " + line)


def per_syscall(loop: Path, args, work: Path) -> None:
    """The four runs in interleaved rounds; the table and the ratios."""
    runs = {"untraced": [], "kernel, no reader": [], "kernel, cat": [],
            "usertrace kernel": [], "usertrace ptrace": []}
    for i in range(args.rounds):
        runs["untraced"].append(untraced(loop, args.calls))
        runs["kernel, no reader"].append(kernel_by_hand(loop, args.calls, work, cat=False))
        runs["kernel, cat"].append(kernel_by_hand(loop, args.calls, work))
        runs["usertrace kernel"].append(usertrace_record(loop, args.calls, "kernel", work))
        runs["usertrace ptrace"].append(usertrace_record(loop, args.ptrace_calls, "ptrace",
                                                         work))
        print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1][0]:.0f}/{v[-1][1]:.0f}"
                                            for k, v in runs.items()), file=sys.stderr)
    print(f"getppid loop, every syscall event, ns per call, median of {args.rounds} "
          f"({args.calls} calls, ptrace {args.ptrace_calls})")
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in runs.items()}
    base = med["untraced"]
    over = {k: (w - base[0], c - base[1]) for k, (w, c) in med.items()}
    print(f"{'':20s} {'wall':>8s} {'overhead':>9s} {'cpu':>8s} {'overhead':>9s}")
    for k in runs:
        print(f"{k:20s} {med[k][0]:8.0f} {over[k][0]:9.0f} {med[k][1]:8.0f} {over[k][1]:9.0f}")
    for by_hand in ("kernel, no reader", "kernel, cat"):
        print(f"usertrace kernel / {by_hand}: "
              f"{over['usertrace kernel'][0] / over[by_hand][0]:.2f} wall, "
              f"{over['usertrace kernel'][1] / over[by_hand][1]:.2f} cpu  (goal <= 1.5)")
    print(f"usertrace kernel / usertrace ptrace: "
          f"{over['usertrace kernel'][0] / over['usertrace ptrace'][0]:.3f} wall  "
          "(goal <= 0.05)")


if __name__ == "__main__":
    main()
