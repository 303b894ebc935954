#!/usr/bin/env python3
"""Fairness under load: 8 threads making syscalls flat out, traced; how evenly each is served.

Each thread of a C program counts its own getppid() calls for a fixed time and prints the
count.  A tracer that serves every pending stop in turn gives every thread about the same
share; one that resumes each stop as it collects it lets a few threads starve (seen before:
100 calls for one thread against 779,500 for another in 10 s).  usertrace and strace run the
same program side by side; the table shows per-thread counts and the spread (min/max).

    python3 benchmarks/bench_fairness.py [--seconds 5] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SOURCE = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double seconds;
static long counts[64];
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return t.tv_sec + t.tv_nsec / 1e9; }
static void *run(void *arg) {
    long i = (long)arg, n = 0;
    double end = now() + seconds;
    while (1) { for (int k = 0; k < 100; k++) syscall(SYS_getppid); n += 100;
                if (now() > end) break; }
    counts[i] = n;
    return 0;
}
int main(int argc, char **argv) {
    int threads = atoi(argv[1]); seconds = atof(argv[2]);
    pthread_t t[64];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], 0, run, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
    for (int i = 0; i < threads; i++) printf("%ld\n", counts[i]);
    return 0;
}
"""


def run(argv: list[str]) -> list[int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    return [int(x) for x in out.split()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("needs a C compiler")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "busy.c", Path(tmp) / "busy"
        src.write_text(SOURCE)
        subprocess.run([cc, "-O2", "-pthread", "-o", str(exe), str(src)], check=True)
        prog = [str(exe), str(args.threads), str(args.seconds)]
        variants = {
            "untraced": prog,
            "usertrace record": [sys.executable, "-m", "usertrace", "record", "-e",
                                 "sys_enter_getppid", "-o", str(Path(tmp) / "t.dat"), "--",
                                 *prog],
            "usertrace --no-seccomp": [sys.executable, "-m", "usertrace", "record", "-e",
                                       "sys_enter_getppid", "--no-seccomp", "-o",
                                       str(Path(tmp) / "t2.dat"), "--", *prog],
            "strace -f": ["strace", "-f", "-e", "trace=getppid", "-o", "/dev/null", *prog],
        }
        print(f"{args.threads} threads, {args.seconds:g} s each; getppid calls per thread")
        print(f"  {'variant':24} {'min':>9} {'median':>9} {'max':>9} {'min/max':>8}")
        for name, argv in variants.items():
            if argv[0] == "strace" and shutil.which("strace") is None:
                continue
            counts = sorted(run(argv))
            mid = counts[len(counts) // 2]
            ratio = counts[0] / counts[-1] if counts[-1] else 0.0
            print(f"  {name:24} {counts[0]:9d} {mid:9d} {counts[-1]:9d} {ratio:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
