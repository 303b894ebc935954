"""Fetch programs on synthetic registers and memory, against what the kernel writes.

The expected records and trace text are the kernel's rules (trace_probe_tmpl.h,
trace_uprobe.c); the line of test_trace_text_is_the_kernels was produced by this kernel for
the same definition, registers and memory (a probe on tests/targets/probes.c's add_point
under setarch -R, values checked with gdb).
"""

from __future__ import annotations

import struct

import pytest

from usertrace.sources.probes.events import decode, hit_text, probe_format
from usertrace.sources.probes.fetch import FetchProgram
from usertrace.sources.probes.parse import parse_command

PAGE = 4096


class Memory:
    """Pages of a fake address space: a read succeeds only inside mapped pages."""

    def __init__(self):
        self.pages: dict[int, bytearray] = {}

    def map(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(data):
            page = self.pages.setdefault((addr + i) // PAGE, bytearray(PAGE))
            page[(addr + i) % PAGE] = b

    def read(self, addr: int, n: int):
        out = bytearray()
        for a in range(addr, addr + n):
            page = self.pages.get(a // PAGE)
            if page is None:
                return None
            out.append(page[a % PAGE])
        return bytes(out)


@pytest.fixture
def target():
    from conftest import build_target
    return str(build_target("probes"))


def _mem():
    m = Memory()
    m.map(0x10000, b"hello\0")                                   # a string
    m.map(0x11000, struct.pack("<QQQ", 0x10000, 0x12000, 0x7FFF0000))  # char *list[3]
    m.map(0x12000, b"beta\0")
    m.map(0x13000, struct.pack("<iiB", 10, -20, 0xA5))           # struct point
    m.map(0x7000, struct.pack("<QQQ", 0x401000, 0x13000, 0xDEAD))  # the stack
    return m


REGS = {"ax": 0x13000, "bx": 0xFFFFFFFFFFFFFFFE, "di": 0x13000, "si": 0x11000, "dx": 0x10000,
        "sp": 0x7000, "ip": 0x401136, "flags": 0x246}


def run(target, args, regs=REGS, mem=None, kind="p"):
    d = parse_command(f"{kind}:utprb/t {target}:0x10 {args}")
    hit = FetchProgram(d, event_id=7).run(regs, (mem or _mem()).read, comm="probes",
                                          bp_addr=0x401136, func=0x401100, pid=42)
    return d, hit


def test_scalars_and_registers(target):
    d, hit = run(target, "x=%ax y=%bx:s32 z=%bx:u8 w=%bx:x16 c=%si:char")
    v = hit.values
    assert (v["x"], v["y"], v["z"], v["w"]) == (0x13000, -2, 0xFE, 0xFFFE)
    assert v["common_type"] == 7 and v["common_pid"] == 42 and v["__probe_ip"] == 0x401136
    assert hit_text(d, v) == "t: (0x401136) x=0x13000 y=-2 z=254 w=0xfffe c='\x00'"


def test_record_layout_is_packed_and_strings_follow(target):
    d, hit = run(target, "a=%ax:u8 s=+0(%dx):string b=%bx:u16")
    rec = hit.record
    # header 16 bytes, a at 16 (1), s at 17 (4), b at 21 (2); the string right after, at 23
    assert len(rec) == 16 + 7 + 6
    assert rec[16] == 0x00 and struct.unpack_from("<H", rec, 21)[0] == 0xFFFE
    assert struct.unpack_from("<I", rec, 17)[0] == (6 << 16 | 23)
    assert rec[23:] == b"hello\0"
    assert decode(d, rec)["s"] == "hello"


def test_derefs_arrays_bitfields(target):
    d, hit = run(target, "px=+0(%di):s32 py=+4(%di):s32 f=+8(%di):b4@4/8 "
                         "l=+8(+0(%si)):string arr=+0(%si):x64[3] sa=+0(%si):string[3] "
                         "st=$stack1:x64 sp=$stack u=+0(%dx):u8[3]")
    v = hit.values
    assert (v["px"], v["py"], v["f"]) == (10, -20, 0xA)
    assert v["l"] == ""                       # the string at list[0] + 8: past "hello\0"
    assert v["arr"] == [0x10000, 0x12000, 0x7FFF0000]
    assert v["sa"] == ["hello", "beta", None]
    assert v["st"] == 0x13000 and v["sp"] == 0x7000
    assert v["u"] == [104, 101, 108]
    assert hit_text(d, v) == (
        "t: (0x401136) px=10 py=-20 f=10 l=\"\" arr={0x10000,0x12000,0x7fff0000} "
        'sa={"hello","beta",(fault)} st=0x13000 sp=7000 u={104,101,108}'.replace(
            "sp=7000", "sp=0x7000"))


def test_faults_as_the_kernel(target):
    d, hit = run(target, "a=+0(%bx):u32 b=+0(+0(%bx)):u64 s=+0(%bx):string "
                         "t=+0(%dx):string k=$stack900 i=\\\"imm\":string c=$comm")
    v = hit.values
    assert v["a"] == 0 and v["b"] == 0 and v["k"] == 0
    assert v["s"] is None and v["t"] == "hello" and v["i"] is None and v["c"] == "probes"
    assert "s=(fault)" in hit_text(d, v) and 'c="probes"' in hit_text(d, v)


def test_a_deref_fault_leaves_the_string_place_to_the_next_one(target):
    # trace_probe_tmpl.h: a failed dereference returns before the store; the data_loc keeps
    # the place and remaining length it was given, which the next string then fills.
    d, hit = run(target, "bad=+0(+0(%bx)):string good=+0(%dx):string")
    assert hit.values["bad"] == "hello" and hit.values["good"] == "hello"
    loc_bad, loc_good = struct.unpack_from("<II", hit.record, 16)
    assert loc_bad == (6 << 16 | 24) and loc_good == (6 << 16 | 24)


def test_long_string_is_a_fault(target):
    m = _mem()
    m.map(0x20000, b"x" * 5000 + b"\0")
    d, hit = run(target, "s=+0(%ax):string", regs={**REGS, "ax": 0x20000}, mem=m)
    assert hit.values["s"] is None
    m.map(0x30000, b"y" * 4094 + b"\0")
    d, hit = run(target, "s=+0(%ax):string", regs={**REGS, "ax": 0x30000}, mem=m)
    assert hit.values["s"] == "y" * 4094


def test_return_probe(target):
    d, hit = run(target, "rv=$retval:s64 ip=%ip", kind="r", regs={**REGS, "ax": -5 & (2**64 - 1)})
    v = hit.values
    assert v["__probe_func"] == 0x401100 and v["__probe_ret_ip"] == 0x401136
    assert hit_text(d, v) == "t: (0x401136 <- 0x401100) rv=-5 ip=0x401136"


def test_file_offset_is_relative_to_the_probe(target):
    m = _mem()
    m.map(0x401136 - 0x10 + 0x4010, struct.pack("<Q", 0x1122))
    d, hit = run(target, "g=@+0x4010:x64", mem=m)
    # address = probe address - probe offset (0x10) + 0x4010
    assert hit.values["g"] == 0x1122


def test_user_regs_names_and_objects(target):
    class Regs:
        rax, rsp, rip = 5, 0x7000, 0x401136
    d, hit = run(target, "x=%ax", regs={"rax": 5, "rsp": 0x7000, "rip": 0x401136})
    assert hit.values["x"] == 5
    d2, hit2 = run(target, "x=%ax", regs=Regs())
    assert hit2.record == hit.record


def test_record_decodes_with_the_generic_codec(target):
    from usertrace.events.records import RecordCodec
    d, hit = run(target, "x=%ax y=+0(%dx):string z=%bx:s16 arr=+0(%si):u16[2]")
    fmt = probe_format(d, 7)
    values = RecordCodec(fmt).decode(hit.record)
    assert values["x"] == 0x13000 and values["y"] == "hello" and values["z"] == -2
    assert values["arr"] == [0, 1]
