#!/usr/bin/env python3
"""Probe events: the cost of one hit, side by side with the kernel's uprobes, gdb and a
minimal C ptrace tracer.

The workload (C, compiled here, non-PIE) calls a function N times in a loop; the function is
written in assembly so that the probed instruction is known: ``f_push`` starts with
``push %rbp`` (the kernel emulates it), ``f_endbr`` with ``endbr64`` (the kernel steps it out
of line; usertrace emulates it).  For each probed instruction:

    usertrace      Recorder(probes=["p:utbench/hit PROG:f_push"]) recording a trace.dat, in
                   this process (launch to the end of run(); no Python start-up)
    kernel uprobe  the same definition in uprobe_events (group utbench, removed after),
                   enabled in a private tracefs instance (root only)
    gdb            gdb -batch: break *ADDR, commands: silent, continue
    C tracer       a minimal ptrace tracer in C (compiled here): int3 at the address, each hit
                   emulated (GETREGS, POKEDATA for push, SETREGS, CONT), nothing recorded

Each runs with N calls and with 0 (the difference removes start-up costs), in interleaved
rounds; the cost per hit is the median of ((t_N - t_0) - (untraced_N - untraced_0)) / N.
Then "not hit": usertrace with its probe on a function the loop never calls, against the
program untraced, with M calls (the process must run at native speed).

    python benchmarks/bench_probes.py [--rounds 5] [--calls 20000] [--pin] [--busy]

--pin runs everything (tracers and programs) on cpu 0; --busy keeps every cpu busy with a
spinner at nice 19 meanwhile (benchmarks/_busy.py: idle cpus make wake-ups slow). The
machine is shared: compare the columns of one run, not runs of different days.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from _busy import busy_cpus  # noqa: E402
from usertrace.events.registry import Consumer  # noqa: E402
from usertrace.kernel.tracefs import (Instance, append_uprobe_event,  # noqa: E402
                                      why_no_uprobe_events)
from usertrace.session import Recorder  # noqa: E402
from usertrace.sources.probes.elf import ElfFile  # noqa: E402

WORK = r"""
#include <stdlib.h>
long f_push(long x);
long f_endbr(long x);
long f_cold(long x);
asm(".text\n"
    ".globl f_push\n.type f_push,@function\nf_push:\n"
    "\tpush %rbp\n\tmov %rsp,%rbp\n\tmov %rdi,%rax\n\tadd $1,%rax\n\tpop %rbp\n\tret\n"
    ".size f_push,.-f_push\n"
    ".globl f_endbr\n.type f_endbr,@function\nf_endbr:\n"
    "\tendbr64\n\tpush %rbp\n\tmov %rdi,%rax\n\tadd $1,%rax\n\tpop %rbp\n\tret\n"
    ".size f_endbr,.-f_endbr\n"
    ".globl f_cold\n.type f_cold,@function\nf_cold:\n"
    "\tpush %rbp\n\tmov %rdi,%rax\n\tpop %rbp\n\tret\n.size f_cold,.-f_cold\n");
int main(int argc, char **argv)
{
    long n = atol(argv[1]);
    long (*f)(long) = argc > 2 && argv[2][0] == 'e' ? f_endbr : f_push;
    long s = 0;
    for (long i = 0; i < n; i++)
        s += f(i);
    return s == 42;
}
"""

CTRACER = r"""
/* int3 at ADDR; each hit emulated: 'p' push %rbp, 'e' a 4-byte no-op (endbr64). */
#include <signal.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    unsigned long addr = strtoul(argv[1], NULL, 0);
    int kind = argv[2][0];
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[3], argv + 3);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    long word = ptrace(PTRACE_PEEKTEXT, pid, addr, 0);
    ptrace(PTRACE_POKETEXT, pid, addr, (word & ~0xffL) | 0xcc);
    ptrace(PTRACE_CONT, pid, 0, 0);
    for (;;) {
        if (waitpid(pid, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status))
            return 0;
        int sig = WSTOPSIG(status);
        if (sig == SIGTRAP) {
            struct user_regs_struct r;
            ptrace(PTRACE_GETREGS, pid, 0, &r);
            if (r.rip - 1 == addr) {
                if (kind == 'p') {
                    r.rsp -= 8;
                    ptrace(PTRACE_POKEDATA, pid, r.rsp, r.rbp);
                    r.rip = addr + 1;
                } else {
                    r.rip = addr + 4;
                }
                ptrace(PTRACE_SETREGS, pid, 0, &r);
                sig = 0;
            }
        }
        ptrace(PTRACE_CONT, pid, 0, sig);
    }
}
"""

GROUP = "utbench"
KINDS = {"push": ("f_push", "p"), "endbr64": ("f_endbr", "e")}


def build(workdir: Path) -> tuple[Path, Path]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("needs a C compiler")
    (workdir / "work.c").write_text(WORK)
    (workdir / "ctracer.c").write_text(CTRACER)
    subprocess.run([cc, "-O2", "-no-pie", "-o", str(workdir / "work"), str(workdir / "work.c")],
                   check=True)
    subprocess.run([cc, "-O2", "-o", str(workdir / "ctracer"), str(workdir / "ctracer.c")],
                   check=True)
    return workdir / "work", workdir / "ctracer"


def timed(argv: list[str], pin: bool, **kw) -> float:
    if pin:
        argv = ["taskset", "-c", "0", *argv]
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def run_untraced(work: Path, n: int, kind: str, pin: bool) -> float:
    return timed([str(work), str(n), KINDS[kind][1]], pin)


def run_usertrace(work: Path, n: int, kind: str, pin: bool, tmp: Path,
                  symbol: str | None = None) -> float:
    if pin:
        os.sched_setaffinity(0, {0})
    try:
        rec = Recorder(None, probes=[f"p:{GROUP}/hit {work}:{symbol or KINDS[kind][0]}"],
                       session_dir=str(tmp / "session"), consumers=Consumer.TRACE)
        rec.record_to(str(tmp / "bench.dat"))
        t = time.perf_counter()
        status = rec.run([str(work), str(n), KINDS[kind][1]], handle_signals=False)
        dt = time.perf_counter() - t
    finally:
        if pin:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
    if status.returncode not in (0, 1):
        raise RuntimeError(f"usertrace run: {status}")
    return dt


def run_kernel(work: Path, n: int, kind: str, pin: bool, offsets: dict) -> float:
    append_uprobe_event(f"p:{GROUP}/{kind} {work}:{offsets[kind]:#x}")
    try:
        with Instance() as inst:
            inst.enable(GROUP, kind)
            try:
                return run_untraced(work, n, kind, pin)
            finally:
                inst.disable(GROUP, kind)
    finally:
        append_uprobe_event(f"-:{GROUP}/{kind}")


def run_gdb(work: Path, n: int, kind: str, pin: bool, addrs: dict, tmp: Path) -> float:
    cmds = tmp / f"gdb-{kind}"
    cmds.write_text(f"set pagination off\nbreak *{addrs[kind]:#x}\ncommands\nsilent\ncontinue\n"
                    "end\nrun\nquit\n")
    return timed(["gdb", "-batch", "-nx", "-x", str(cmds), "--args", str(work), str(n),
                  KINDS[kind][1]], pin)


def run_ctracer(ctracer: Path, work: Path, n: int, kind: str, pin: bool, addrs: dict) -> float:
    return timed([str(ctracer), f"{addrs[kind]:#x}", KINDS[kind][1], str(work), str(n),
                  KINDS[kind][1]], pin)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=20_000, help="hits per timed run")
    ap.add_argument("--cold-calls", type=int, default=20_000_000,
                    help="calls of the not-hit run")
    ap.add_argument("--pin", action="store_true", help="everything on cpu 0")
    ap.add_argument("--busy", action="store_true",
                    help="keep every cpu busy with a spinner at nice 19 (benchmarks/_busy.py)")
    args = ap.parse_args()
    with busy_cpus(args.busy):
        run(args)


def run(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    (tmp / "session").mkdir(mode=0o700)
    work, ctracer = build(tmp)
    elf = ElfFile(str(work))
    offsets = {k: elf.symbol_offset(sym) for k, (sym, _) in KINDS.items()}
    addrs = {k: elf.find(sym)[0].value for k, (sym, _) in KINDS.items()}
    kernel = why_no_uprobe_events() is None
    gdb = shutil.which("gdb") is not None
    n = args.calls
    tools = {
        "usertrace": lambda k, c: run_usertrace(work, c, k, args.pin, tmp),
        "C tracer (emulates)": lambda k, c: run_ctracer(ctracer, work, c, k, args.pin, addrs),
    }
    if kernel:
        tools["kernel uprobe"] = lambda k, c: run_kernel(work, c, k, args.pin, offsets)
    if gdb:
        tools["gdb break+continue"] = lambda k, c: run_gdb(work, c, k, args.pin, addrs, tmp)
    per_hit: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for kind in KINDS:
            base = {c: run_untraced(work, c, kind, args.pin) for c in (n, 0)}
            for name, run in tools.items():
                t_n, t_0 = run(kind, n), run(kind, 0)
                cost = ((t_n - t_0) - (base[n] - base[0])) / n
                per_hit.setdefault((name, kind), []).append(cost * 1e6)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    cold = {"untraced": [], "usertrace, probe not hit": []}
    for r in range(args.rounds):
        cold["untraced"].append(run_untraced(work, args.cold_calls, "push", args.pin))
        cold["usertrace, probe not hit"].append(
            run_usertrace(work, args.cold_calls, "push", args.pin, tmp, symbol="f_cold"))
    shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nCost per hit, µs (median of {args.rounds} rounds; {n} hits per run"
          f"{'; pinned to cpu 0' if args.pin else ''}{'; cpus kept busy' if args.busy else ''}; "
          f"{time.strftime('%Y-%m-%d')})\n")
    med = {k: statistics.median(v) for k, v in per_hit.items()}
    names = list(tools)
    print(f"{'':22s}" + "".join(f"{k:>12s}" for k in KINDS))
    for name in names:
        print(f"{name:22s}" + "".join(f"{med[(name, k)]:12.1f}" for k in KINDS))
    for ref in ("gdb break+continue", "C tracer (emulates)"):
        if ref in names:
            print(f"{'usertrace / ' + ref.split()[0]:22s}"
                  + "".join(f"{med[('usertrace', k)] / med[(ref, k)]:11.2f}x" for k in KINDS))
    u, c = statistics.median(cold["untraced"]), statistics.median(cold["usertrace, probe not hit"])
    print(f"\nNot hit: {args.cold_calls} calls in {u:.3f} s untraced, {c:.3f} s under usertrace "
          f"with a probe elsewhere ({c / u:.2f}x, start-up included)")
    if not kernel:
        print("(no kernel uprobe column: needs root and tracefs with uprobe_events)")
    if not gdb:
        print("(no gdb column: gdb is not installed)")


if __name__ == "__main__":
    main()
