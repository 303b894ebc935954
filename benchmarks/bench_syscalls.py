#!/usr/bin/env python3
"""Syscall tracing overhead: usertrace's ptrace engine side by side with strace.

Workloads (C, compiled here): ``getppid`` makes 200,000 getppid() calls; ``openrc`` makes
50,000 open/read/close rounds.  Each workload runs

    untraced                         the program alone
    usertrace all                    the engine, every syscall, records encoded (no filter)
    usertrace all, not co-located    the same with follow_cpu=False (placement left to the
                                     scheduler), to show what co-location buys
    usertrace openat (seccomp)       a seccomp filter, only openat stops
    usertrace record (CLI)           the whole command: start-up, session, trace.dat, with
                                     strings (the user data of the arguments, 128 bytes)
    usertrace record --no-strings    the same, records in the kernel's formats, no reading
                                     (--backend ptrace: auto would pick the kernel)
    usertrace record enters (CLI)    -e 'syscalls:sys_enter_*': one stop per call
    usertrace record openat (CLI)    the same with -e syscalls:sys_*_openat
    usertrace stream --calls         the strace view, live, into a file (-o): the Python
                                     stop loop and a line per call, as strace -o FILE
    strace -f -s 128 -o FILE         strace with strings of 128 bytes, into a file
    strace -f                        strace -f -o /dev/null
    strace --seccomp-bpf openat      strace -f --seccomp-bpf -e trace=openat -o /dev/null
    C tracer, one cpu                a minimal C tracer (two stops a call, nothing recorded)
                                     with the program, both on one cpu: the floor

in interleaved rounds (the machine is shared: compare within one run), and prints medians,
the overhead per traced syscall ((t - untraced) / calls) and the ratios to strace.  The
usertrace runs are timed from launch() to the end of run() inside this process (no Python
start-up); the others from spawn to exit.

    python benchmarks/bench_syscalls.py [--rounds 5] [--scale 1.0] [--pin] [--busy]
                                        [--only REGEX]

It also prints the load average before and after: the machine may be shared.

--pin runs everything under taskset -c 0 (tracers and programs on one CPU), for reference.
--only keeps the variants whose name matches REGEX (and "untraced", the base), e.g.
--only 'record \\(CLI\\)|s 128|C tracer' for the figures of the README's table.
--busy keeps every cpu busy with a spinner at nice 19 meanwhile (benchmarks/_busy.py): waking
a task on an idle cpu of these machines can cost 100 µs, on a busy one a few, and strace pays
one wake-up per stop; run both ways to see both states of the machine.
"""

from __future__ import annotations

import argparse
import os
import re
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

from _busy import busy_cpus  # noqa: E402
from usertrace.ptrace import ENTER, Engine  # noqa: E402
from usertrace.sources.syscalls.events import build_events, encode_enter, encode_exit  # noqa: E402
from usertrace.sources.syscalls.stops import SyscallStops  # noqa: E402
from usertrace.sources.syscalls.table import SyscallTable  # noqa: E402

WORKLOADS = {
    "getppid": ("""
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    return 0;
}""", 200_000, 1),
    "openrc": ("""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char buf[64];
    for (long i = 0; i < n; i++) {
        int fd = open("/etc/passwd", O_RDONLY);
        read(fd, buf, sizeof buf);
        close(fd);
    }
    return 0;
}""", 50_000, 3),
}


# A minimal tracer: two stops per call (PTRACE_SYSCALL), PTRACE_GET_SYSCALL_INFO at each,
# nothing recorded; the floor of any ptrace tracer that stops at entry and exit.
CTRACER = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int st;
    char info[88];
    waitpid(p, &st, 0);
    ptrace(PTRACE_SETOPTIONS, p, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    ptrace(PTRACE_SYSCALL, p, 0, 0);
    while (waitpid(p, &st, __WALL) > 0) {
        if (WIFEXITED(st) || WIFSIGNALED(st))
            return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
        int sig = 0;
        if (WSTOPSIG(st) == (SIGTRAP | 0x80))
            ptrace(0x420e, p, sizeof info, info);          /* PTRACE_GET_SYSCALL_INFO */
        else if (WSTOPSIG(st) != SIGTRAP)                   /* the exec's SIGTRAP: not sent on */
            sig = WSTOPSIG(st);
        ptrace(PTRACE_SYSCALL, p, 0, sig);
    }
    return 1;
}"""


def build(workdir: Path) -> dict[str, Path]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("needs a C compiler")
    out = {}
    for name, (src, _, _) in WORKLOADS.items():
        c = workdir / f"{name}.c"
        c.write_text(src)
        exe = workdir / name
        subprocess.run([cc, "-O2", "-o", str(exe), str(c)], check=True)
        out[name] = exe
    c = workdir / "ctracer.c"
    c.write_text(CTRACER)
    subprocess.run([cc, "-O2", "-o", str(workdir / "ctracer"), str(c)], check=True)
    out["ctracer"] = workdir / "ctracer"
    return out


# The CLI variants start Python: let it keep its bytecode as an installed package does.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
_ENV["PYTHONPATH"] = str(ROOT / "src")


def _cpu() -> float:
    """CPU time (user + system) of this process and its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_spawn(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the tracer and the program) of one run."""
    c0, t0 = _cpu(), time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{argv}: exit {proc.returncode}")
    return dt, _cpu() - c0


def timed_usertrace(argv: list[str], only: set[int] | None, follow_cpu: bool = True
                    ) -> tuple[float, float]:
    """The engine and the syscall events' records, without a session or a file."""
    enter_id = {e.nr: (e.enter.id, e.nargs) for e in _EVENTS}
    exit_id = {e.nr: e.exit.id for e in _EVENTS}
    sink = []

    def consumer(kind, task, nr, args, ret, ts):
        if kind == ENTER:
            event_id, nargs = enter_id[nr]
            sink.append(encode_enter(event_id, task.tid, nr, args, nargs))
        else:
            sink.append(encode_exit(exit_id[nr], task.tid, nr, ret))
        if len(sink) > 4096:
            sink.clear()

    engine = Engine(follow_cpu=follow_cpu)
    engine.add(SyscallStops(consumer, only, only))
    c0, t0 = _cpu(), time.perf_counter()
    engine.launch(argv)
    status = engine.run(handle_signals=False)
    dt = time.perf_counter() - t0
    if status.returncode != 0:
        sys.exit(f"{argv}: {status.describe()}")
    return dt, _cpu() - c0


def _numbered_events():
    events = build_events()
    next_id = 1000
    for e in events:               # ids as a registry would hand them out
        e.enter.id, e.exit.id = next_id, next_id + 1
        next_id += 2
    return events


_EVENTS = _numbered_events()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the iteration counts")
    ap.add_argument("--pin", action="store_true", help="run everything on CPU 0")
    ap.add_argument("--busy", action="store_true",
                    help="keep every cpu busy with a spinner at nice 19 (benchmarks/_busy.py)")
    ap.add_argument("--only", type=re.compile, metavar="REGEX",
                    help="run only the variants whose name matches (and the untraced base)")
    args = ap.parse_args()
    with busy_cpus(args.busy):
        return run(args)


def run(args) -> int:
    if args.pin:
        os.sched_setaffinity(0, {0})
    strace = shutil.which("strace")
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    openat = SyscallTable.for_arch("x86_64").by_name["openat"].nr
    with tempfile.TemporaryDirectory() as tmp:
        exes = build(Path(tmp))
        for name, (_, count, per_round) in WORKLOADS.items():
            n = max(int(count * args.scale), 1)
            calls = n * per_round
            argv = [str(exes[name]), str(n)]
            variants = {
                "untraced": lambda: timed_spawn(argv),
                "usertrace all": lambda: timed_usertrace(argv, None),
                "usertrace all, not co-located": lambda: timed_usertrace(argv, None, False),
                "usertrace openat (seccomp)": lambda: timed_usertrace(argv, {openat}),
            }
            # the whole command: Python's start-up, the session, records into a trace.dat
            cli = [sys.executable, "-m", "usertrace", "record", "-o", str(Path(tmp) / "b.dat")]
            variants["usertrace record (CLI)"] = lambda: timed_spawn([*cli, "--", *argv])
            variants["usertrace record --no-strings"] = lambda: timed_spawn(
                [*cli, "--backend", "ptrace", "--no-strings", "--", *argv])
            variants["usertrace record enters (CLI)"] = lambda: timed_spawn(
                [*cli, "-e", "syscalls:sys_enter_*", "--", *argv])
            variants["usertrace record openat (CLI)"] = lambda: timed_spawn(
                [*cli, "-e", "syscalls:sys_*_openat", "--", *argv])
            variants["usertrace stream --calls"] = lambda: timed_spawn(
                [sys.executable, "-m", "usertrace", "stream", "--calls", "-s", "128",
                 "-o", str(Path(tmp) / "u.out"), "--", *argv])
            # the floor: a C tracer, two stops a call, on the program's cpu (taskset)
            cpu0 = str(min(os.sched_getaffinity(0)))
            variants["C tracer, one cpu"] = lambda: timed_spawn(
                ["taskset", "-c", cpu0, str(exes["ctracer"]), *argv])
            if strace:
                variants["strace -f -s 128 -o FILE"] = lambda: timed_spawn(
                    [strace, "-f", "-s", "128", "-o", str(Path(tmp) / "s.out"), *argv])
                variants["strace -f"] = lambda: timed_spawn(
                    [strace, "-f", "-o", "/dev/null", *argv])
                variants["strace --seccomp-bpf openat"] = lambda: timed_spawn(
                    [strace, "-f", "--seccomp-bpf", "-e", "trace=openat", "-o", "/dev/null", *argv])
            if args.only is not None:
                variants = {k: v for k, v in variants.items()
                            if k == "untraced" or args.only.search(k)}
            times: dict[str, list[float]] = {k: [] for k in variants}
            cpu: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(args.rounds):
                for k, run in variants.items():
                    wall, used = run()
                    times[k].append(wall)
                    cpu[k].append(used)
            med = {k: statistics.median(v) for k, v in times.items()}
            med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
            base = med["untraced"]
            print(f"\n{name}: {n} iterations, {calls} syscalls, median of {args.rounds} rounds"
                  + (" (pinned to CPU 0)" if args.pin else "")
                  + (" (cpus kept busy)" if args.busy else ""))
            print(f"  {'variant':30s} {'time s':>9s} {'x untraced':>10s} {'us/syscall':>11s}"
                  f" {'cpu us/syscall':>15s}")
            for k, t in med.items():
                per = (t - base) / calls * 1e6
                per_cpu = (med_cpu[k] - med_cpu["untraced"]) / calls * 1e6
                print(f"  {k:30s} {t:9.3f} {t / base:10.2f} {per:11.2f} {per_cpu:15.2f}")
            def ratio(a, b):
                return (med[a] - base) / (med[b] - base)

            def cpu_ratio(a, b):
                return (med_cpu[a] - med_cpu["untraced"]) / (med_cpu[b] - med_cpu["untraced"])
            pairs = [(a, b) for a, b in [
                ("usertrace record (CLI)", "strace -f -s 128 -o FILE"),
                ("usertrace stream --calls", "strace -f -s 128 -o FILE"),
                ("usertrace record --no-strings", "strace -f"),
                ("usertrace all", "strace -f"),
                ("usertrace record enters (CLI)", "usertrace record (CLI)"),
                ("usertrace record (CLI)", "C tracer, one cpu"),
                ("usertrace openat (seccomp)", "strace --seccomp-bpf openat")]
                if a in med and b in med]
            if pairs:
                print("  overhead per syscall, ratios of medians (wall clock; CPU time):")
            for a, b in pairs:
                print(f"    {a} / {b}: {ratio(a, b):.2f}; {cpu_ratio(a, b):.2f}")
            a, b = "usertrace record (CLI)", "strace -f -s 128 -o FILE"
            if a in times and b in times:
                # the same ratio round by round: how much the load moved it
                per_round = sorted((times[a][r] - times["untraced"][r])
                                   / (times[b][r] - times["untraced"][r])
                                   for r in range(args.rounds))
                print(f"    {a} / strace -s 128, each round: "
                      + " ".join(f"{x:.2f}" for x in per_round))
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
