"""Probe records over every accepted definition of the probe table (tests/data/probe_cases.txt):

- the compiled fetch path (registers, the stack, memory, bitfields) writes the same bytes as
  the interpreter (``process_fetch_insn``'s port), on registers and memory with faults, and
  so does the record-only function of the recording's hot path;
- a record read back with only the event's format (a trace.dat: ``definition_of_format``,
  ``ProbeCodec``, the ``trace`` printer registered with output/text.py) decodes and prints as
  with the definition itself.
"""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
from pathlib import Path

import pytest

from usertrace.events.format import EventFormat
from usertrace.events.records import EventDecoder
from usertrace.events.records import NATIVE
from usertrace.output.text import TextFormatter
from usertrace.sources.probes.events import (decode, definition_of_format, hit_text,
                                             probe_format)
from usertrace.sources.probes.fetch import FetchProgram
from usertrace.sources.probes.parse import ParseContext, ProbeDefinition, parse_command

_DATA = Path(__file__).resolve().parents[1] / "data" / "probe_cases.py"
_spec = importlib.util.spec_from_file_location("probe_cases", _DATA)
probe_cases = importlib.util.module_from_spec(_spec)
sys.modules["probe_cases"] = probe_cases
_spec.loader.exec_module(probe_cases)

OK = [c for c in probe_cases.load() if c.ok]
PAGE = 4096


@pytest.fixture(scope="module")
def definitions() -> list[ProbeDefinition]:
    from conftest import build_target
    target = str(build_target("probes"))
    out = []
    for case in OK:
        d = parse_command(case.definition(target)[0], ParseContext(target))
        if isinstance(d, ProbeDefinition):
            out.append(d)
    assert len(out) >= 30
    return out


class Memory:
    """Random bytes in a few pages; the rest faults.  Pointers into the pages are planted so
    that dereferences go somewhere, and strings end somewhere."""

    def __init__(self, rng: random.Random):
        self.pages = {}
        for base in (0x10000, 0x11000, 0x7000, 0x400000):
            data = bytearray(rng.randbytes(PAGE))
            for i in range(0, PAGE, 64):
                data[i:i + 8] = struct.pack("<Q", rng.choice((0x10000, 0x11000, 0x7000, 0))
                                            + rng.randrange(0, 256, 8))
                data[i + 20] = 0
            self.pages[base // PAGE] = bytes(data)

    def read(self, addr: int, n: int):
        out = bytearray()
        while n:
            page = self.pages.get(addr // PAGE)
            if page is None:
                return None
            k = min(n, PAGE - addr % PAGE)
            out += page[addr % PAGE: addr % PAGE + k]
            addr, n = addr + k, n - k
        return bytes(out)


def _regs(rng: random.Random) -> dict:
    names = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx",
             "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss", "fs_base",
             "gs_base", "ds", "es", "fs", "gs")
    regs = {n: rng.choice((0x10000, 0x11008, 0x7000, 0xdead0000, (1 << 64) - 5,
                           rng.getrandbits(64))) for n in names}
    regs["sp"] = 0x7000 + rng.randrange(0, 256, 8)
    regs["ip"] = 0x401136
    return regs


@pytest.mark.parametrize("seed", range(6))
def test_compiled_fetch_writes_the_interpreters_bytes(definitions, seed):
    rng = random.Random(seed)
    compiled = 0
    for d in definitions:
        mem, regs = Memory(rng), _regs(rng)
        prog = FetchProgram(d, event_id=9)
        if prog._fast is None:
            continue
        compiled += 1
        kw = dict(comm="probes", bp_addr=0x401136, func=0x401100, pid=7, flags=0xFF,
                  preempt_count=0xFF)
        fast = prog.run(regs, mem.read, **kw)
        prog._fast, saved = None, prog._fast
        try:
            slow = prog.run(regs, mem.read, **kw)
        finally:
            prog._fast = saved
        assert fast.record == slow.record, str(d)
        record = prog.record_function(0xFF, 0xFF)
        assert record(regs, mem.read, "probes", 0x401136, 0x401100, 7) == fast.record
    assert compiled >= 15


@pytest.mark.parametrize("seed", range(3))
def test_a_record_read_back_by_its_format_prints_as_the_kernel(definitions, seed):
    rng = random.Random(100 + seed)
    for i, d in enumerate(definitions):
        text = TextFormatter()
        fmt = probe_format(d, 1000 + i)
        back = EventFormat.parse(fmt.render(), d.group)       # as a trace.dat holds it
        assert definition_of_format(back) is not None, str(d)
        hit = FetchProgram(d, fmt.id).run(_regs(rng), Memory(rng).read, comm="probes",
                                          bp_addr=0x401136, func=0x401100, pid=7)
        f, values = EventDecoder([back], NATIVE).decode(hit.record)
        assert values == decode(d, hit.record)
        assert text.event_text(back, values) == hit_text(d, values), str(d)


def test_not_a_probe_format_is_left_to_its_print_fmt():
    fmt = EventFormat.parse(
        "name: x\nID: 5\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;"
        "\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
        "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
        "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
        "\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n"
        "\tfield:u32 x;\toffset:16;\tsize:4;\tsigned:0;\n\n"
        'print fmt: "ip=%lx x=%u", REC->__probe_ip, REC->x\n', "g")
    assert definition_of_format(fmt) is None          # not the kernel's print fmt of a probe
    assert TextFormatter().event_text(fmt, {"__probe_ip": 0x10, "x": 3}) == "x: ip=10 x=3"
