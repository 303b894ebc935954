"""Differential test against the kernel: one program, ASLR off, traced by the kernel's
syscall events (a private tracefs instance, ``set_event_pid``) and by the engine, gives the
same sequence of events with the same values, as the kernel's ``trace`` text shows them."""

import os
import re
import shutil

import pytest

from usertrace.ptrace import ENTER
from usertrace.sources.syscalls import events as ev

from _ptrace_util import TABLE, trace

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(shutil.which("setarch") is None, reason="needs setarch")]

LINE = re.compile(r"^\s*.*?-(\d+)\s+\[\d+\]\s+\S+\s+[\d.]+: (sys_.*)$")


def kernel_run(inst, argv, env) -> tuple[list[str], int]:
    """Run argv with the kernel's syscall events enabled for its pid only."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(r)
    inst.write("set_event_pid", str(pid))
    inst.enable("syscalls")
    os.write(w, b"x")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    inst.disable("syscalls")
    lines = [m.group(2) for m in map(LINE.match, inst.read("trace").splitlines())
             if m and int(m.group(1)) == pid]
    return lines, pid


def engine_run(argv, env) -> tuple[list[str], int]:
    rec, _, pid = trace(argv, seccomp=False, env=env)
    lines = []
    for e in rec.events:
        sc = TABLE.by_nr[e.nr]
        if e.kind == ENTER:
            lines.append(ev.render_enter(sc.event, [n for _, n in sc.args], e.args))
        else:
            lines.append(ev.render_exit(sc.event, e.ret))
    return lines, pid


def after_last_exec(lines: list[str], pid: int) -> list[str]:
    start = max(i for i, l in enumerate(lines) if l == "sys_execve -> 0x0")
    return [l.replace(f"0x{pid:x}", "PID") for l in lines[start:]]


@pytest.mark.parametrize("prog,args", [("sc_seq", ["4"]), ("signals", ["handler"])])
def test_same_events_as_the_kernel(tracefs_instance, target, prog, args):
    exe = str(target(prog))
    setarch = shutil.which("setarch")
    argv = [setarch, "-R", exe, *args]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    theirs, kpid = kernel_run(tracefs_instance, argv, env)
    ours, opid = engine_run(argv, env)
    theirs = after_last_exec(theirs, kpid)
    ours = after_last_exec(ours, opid)
    assert len(theirs) > 20
    assert ours == theirs
