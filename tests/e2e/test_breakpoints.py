"""Breakpoints in traced processes (usertrace.ptrace.breakpoints), on tests/targets/probed.c
whose add_one is written in assembly: endbr64 and push %rbp emulated, two instructions run
out of line in a slot that jumps back, return probes on a recursive function, fork children
served, and everything put back on detach.

The instruction facts come from a small analyzer made for these instructions (the probe
source gives the real one); what is tested here is the engine's side."""

import os
import signal
from dataclasses import dataclass

import pytest

from usertrace.ptrace import Engine, StopHandler
from usertrace.ptrace.breakpoints import Analyzer, Breakpoints

from _waiting import Waiting, load_base, symbol, text

ADD_ONE = bytes.fromhex("f30f1efa554889f84883c0015dc3")
OFFSETS = {0: "endbr64", 4: "push %rbp", 5: "mov %rdi,%rax", 8: "add $1,%rax"}


@dataclass
class Plan:
    code: bytes
    length: int
    fixups: frozenset = frozenset({"IP"})
    scratch: str | None = None


@dataclass
class Info:
    length: int
    emulation: str | None = None
    xol: Plan | None = None
    supported: bool = True


class SmallAnalyzer(Analyzer):
    def analyze(self, code, address):
        if code.startswith(b"\xf3\x0f\x1e\xfa"):
            return Info(4, "nop")
        if code[0] == 0x55:
            return Info(1, "push")
        for raw in (b"\x48\x89\xf8", b"\x48\x83\xc0\x01"):
            if code.startswith(raw):
                return Info(len(raw), None, Plan(raw, len(raw)))
        if code[0] == 0xB8:                       # mov $imm32,%eax (depth's first, at -O1)
            return Info(5, None, Plan(code[:5], 5))
        raise AssertionError(f"no facts for {code[:8].hex()} at {address:#x}")

    def emulate(self, info, regs):
        ip = regs["ip"]
        if info.emulation == "nop":
            return {"ip": ip + info.length}, []
        if info.emulation == "push":
            sp = regs["sp"] - 8
            return {"ip": ip + 1, "sp": sp}, [(sp, regs["bp"].to_bytes(8, "little"))]
        return None


def process_base(process, exe) -> int:
    real = os.path.realpath(exe)
    return min(m.start - m.offset for m in process.maps() if m.path == real)


class Probes(StopHandler):
    """Puts breakpoints into each process as it appears (exec, attach) and counts hits."""

    def __init__(self, engine, exe, offsets, returns=False, stop_after=0):
        self.bps = Breakpoints(engine.arch, SmallAnalyzer(), engine.requeue)
        self.engine = engine
        self.exe = exe
        self.offsets = offsets
        self.returns = returns
        self.stop_after = stop_after
        self.hits: dict[int, int] = {}
        self.pids: set[int] = set()
        self.returned = 0
        self.depth = symbol(exe, "depth")

    def on_task(self, what, task, ts):
        if what in ("exec", "new") and task.pid not in self.pids and self.bps not in task.process.state \
                and (what == "exec" or task.start_nr < 0):
            self.pids.add(task.pid)
            base = process_base(task.process, self.exe)
            for off in self.offsets:
                self.bps.insert(task.process, base + off, self.hit)
            if self.returns:
                self.bps.insert(task.process, base + self.depth, self.entry)

    def hit(self, task, regs, ts):
        off = regs["ip"] - process_base(task.process, self.exe)
        self.hits[off] = self.hits.get(off, 0) + 1
        if self.stop_after and sum(self.hits.values()) == self.stop_after:
            self.engine.request_stop(signal.SIGTERM)

    def entry(self, task, regs, ts):
        self.bps.hijack_return(task, regs, regs["ip"], self.ret)

    def ret(self, task, regs, ts):
        self.returned += 1


def launch(target, argv, offsets, returns=False):
    exe = target("probed")
    engine = Engine()
    probes = Probes(engine, exe, offsets, returns)
    engine.add(probes)
    engine.add(probes.bps)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                       # a child of ours that runs the traced command
        os.close(r)
        os.dup2(w, 1)
        try:
            engine.launch([str(exe), *map(str, argv)])
            status = engine.run(handle_signals=False)
            os.write(2, b"")
            code = status.code if status.code is not None else 100 + (status.signal or 0)
            counts = ",".join(f"{k}:{v}" for k, v in sorted(probes.hits.items()))
            os.write(1, f"HITS {counts or '-'} RET {probes.returned}\n".encode())
            os._exit(code)
        except BaseException as exc:
            os.write(1, f"ERROR {exc!r}\n".encode())
            os._exit(99)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return out, os.waitstatus_to_exitcode(status)


def parse(out):
    line = [l for l in out.splitlines() if l.startswith(("HITS", "ERROR"))][-1]
    assert line.startswith("HITS"), out
    _, counts, _, ret = line.split()
    hits = {int(k): int(v) for k, v in (c.split(":") for c in counts.split(",") if c != "-")}
    return hits, int(ret)


def expected_sum(n, threads):
    return threads * sum(i + 1 for i in range(n))


@pytest.mark.parametrize("threads", [1, 4])
def test_every_hit_counted_and_the_program_unharmed(target, threads):
    exe = target("probed")
    base_off = symbol(exe, "add_one")
    n = 2000
    out, code = launch(target, [n, "threads", threads], [base_off + o for o in OFFSETS])
    assert code == 0, out
    hits, _ = parse(out)
    assert hits == {base_off + o: n * threads for o in OFFSETS}
    assert str(expected_sum(n, threads)) in out.splitlines()


def test_return_probes_on_recursion(target):
    n = 300
    out, code = launch(target, [n, "threads", 2], [], returns=True)
    assert code == 0, out
    _, returned = parse(out)
    assert returned == n * 2 * 4          # depth(3): depth 3, 2, 1 and 0 return
    assert str(expected_sum(n, 2)) in out.splitlines()


def test_a_fork_child_keeps_being_served(target):
    exe = target("probed")
    off = symbol(exe, "add_one") + 4
    n = 500
    out, code = launch(target, [n, "fork"], [off], returns=True)
    assert code == 0, out
    hits, returned = parse(out)
    assert hits == {off: 2 * n}           # the parent's and the child's calls
    assert returned == 2 * n * 4
    assert f"child {expected_sum(n, 1)}" in out


def test_detach_puts_every_byte_and_return_address_back(target):
    exe = target("probed")
    add_one = symbol(exe, "add_one")
    with Waiting([exe, "wait", "200000", "threads", "2"]) as prog:
        assert prog.first == "ready\n"
        engine = Engine()
        probes = Probes(engine, exe, [add_one + o for o in OFFSETS], returns=True,
                        stop_after=5000)
        engine.add(probes)
        engine.add(probes.bps)
        engine.attach([prog.pid])
        base = load_base(prog.pid, exe)
        assert text(prog.pid, base + add_one, len(ADD_ONE)) == \
            bytes([0xCC]) + ADD_ONE[1:4] + b"\xcc\xcc\x89\xf8\xcc" + ADD_ONE[9:]
        prog.say("go")
        status = engine.run(handle_signals=False)
        assert status.detached and sum(probes.hits.values()) >= 5000
        assert text(prog.pid, base + add_one, len(ADD_ONE)) == ADD_ONE    # the text as it was
        assert prog.line() == f"{expected_sum(200000, 2)}\n"              # ran on, unharmed
        assert prog.end() == 0
