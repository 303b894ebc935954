"""Differential test against strace: the same program, traced by strace and by the engine,
makes the same system calls (names) with the same return values, thread by thread.

ASLR is off for both (``setarch -R``) so that addresses returned by mmap and brk agree.
Values that name a process or thread (clone, gettid, set_tid_address, getpid, getppid) are
replaced by their role; calls whose outcome depends on timing (waits interrupted by a
SIGCHLD) are compared by name only, and futex waits, whose number depends on timing, not at all.
"""

import errno
import re
import shutil
import subprocess

import pytest

from usertrace.ptrace import EXIT

from _ptrace_util import nrs, trace

pytestmark = pytest.mark.skipif(shutil.which("strace") is None or shutil.which("setarch") is None,
                                reason="needs strace and setarch (apt-get install strace util-linux)")

LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>.*?|(\w+)\(.*?)(?: <unfinished \.\.\.>)?"
                  r"(?:\s+=\s+(\S+).*)?$")
TIMING = {"wait4", "clock_nanosleep", "nanosleep", "read"}
UNCOUNTED = {"futex", "sched_yield"}      # how often a thread waits depends on timing


def strace_run(argv, tmp_path):
    out = tmp_path / "strace.txt"
    subprocess.run(["strace", "-f", "-qq", "-o", str(out), "setarch", "-R", *map(str, argv)],
                   check=False, stdout=subprocess.DEVNULL)
    threads: dict[int, list] = {}
    pending: dict[int, str] = {}
    for line in out.read_text().splitlines():
        if "+++" in line or "---" in line:
            continue
        m = LINE.match(line)
        assert m, line
        tid = int(m.group(1))
        name = m.group(2) or m.group(3)
        if "<unfinished" in line:
            pending[tid] = name
            continue
        pending.pop(tid, None)
        ret = m.group(4)
        if ret is None or ret == "?":
            continue                               # exit_group, exit: no return
        if ret == "-1":
            code = line.rsplit("= -1 ", 1)[1].split()[0]
            value = -getattr(errno, code) if hasattr(errno, code) else -int(code.split("(")[0]
                                                                              .lstrip("E") or 0)
        else:
            value = int(ret, 0)
        threads.setdefault(tid, []).append((name, value))
    return threads


RESTART_CODES = {"ERESTARTSYS": 512, "ERESTARTNOINTR": 513, "ERESTARTNOHAND": 514,
                 "ERESTART_RESTARTBLOCK": 516}
for _n, _v in RESTART_CODES.items():
    setattr(errno, _n, _v)


def ours_run(argv):
    rec, status, pid = trace(["setarch", "-R", *map(str, argv)], seccomp=False)
    threads: dict[int, list] = {}
    for e in rec.events:
        if e.kind != EXIT:
            continue
        seq = threads.setdefault(e.tid, [])
        if not seq and e.name in ("clone", "clone3", "fork", "vfork") and e.ret == 0:
            continue                               # the kernel's first record of a child
        seq.append((e.name, e.ret))
    return threads


def normalize(threads: dict[int, list]) -> list[tuple]:
    ids = set(threads)
    out = []
    for seq in threads.values():
        execs = [i for i, call in enumerate(seq) if call == ("execve", 0)]
        if execs and execs[0] == 0 and len(execs) > 1:
            seq = seq[execs[1]:]                   # setarch itself runs with ASLR on
        norm = []
        for name, value in seq:
            if name == "rt_sigreturn" or name in UNCOUNTED:
                continue                           # the kernel (and we) have no exit for it
            if name == "getppid":
                value = "PPID"
            elif value in ids or name in ("clone", "clone3", "fork", "vfork", "gettid",
                                          "set_tid_address", "getpid") and value > 0:
                value = "ID"
            if name in TIMING:
                if value in (-512, -516, -errno.EINTR, -errno.EAGAIN, -errno.ETIMEDOUT):
                    continue
                value = "T"
            norm.append((name, value))
        out.append(tuple(norm))
    return sorted(out)


@pytest.mark.parametrize("prog,args", [
    ("sc_seq", ["3"]),
    ("threads", ["3", "20"]),
    ("forkexec", ["1"]),
])
def test_same_calls_and_returns_as_strace(target, tmp_path, prog, args):
    exe = target(prog)
    theirs = normalize(strace_run([exe, *args], tmp_path))
    ours = normalize(ours_run([exe, *args]))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a == b
