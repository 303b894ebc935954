"""Instruction facts on byte strings: what the kernel emulates, steps out of line, refuses,
and the RIP-relative rewrite of riprel_analyze (arch/x86/kernel/uprobes.c)."""

from __future__ import annotations

import pytest

from usertrace.sources.probes.insn import (CF, OF, SF, ZF, analyze, emulate, post_xol,
                                           pre_xol)

# bytes, text, supported, kernel emulates, we emulate, xol bytes (None: no xol), scratch
CASES = [
    ("55", "push %rbp", True, "push", "push", None, None),
    ("4155", "push %r13", True, "push", "push", None, None),
    ("4055", "rex push %rbp", True, None, None, "4055", None),     # only REX.B=1 (0x41)
    ("f30f1efa", "endbr64", True, None, "endbr", "f30f1efa", None),
    ("4889e5", "mov %rsp,%rbp", True, None, "mov_rsp_rbp", "4889e5", None),
    ("4883ec18", "sub $0x18,%rsp", True, None, "sub_rsp", "4883ec18", None),
    ("4883c408", "add $8,%rsp", True, None, "add_rsp", "4883c408", None),
    ("90", "nop", True, "nop", "nop", None, None),
    ("0f1f440000", "nopl 0(%rax,%rax,1)", True, "nop", "nop", None, None),
    ("f390", "pause", True, "nop", "nop", None, None),
    ("eb05", "jmp", True, "jmp", "jmp", None, None),
    ("e810000000", "call", True, "call", "call", None, None),
    ("7405", "je", True, "jcc", "jcc", None, None),
    ("0f8f10000000", "jg", True, "jcc", "jcc", None, None),
    ("66e810000000", "call with 66", False, None, None, None, None),
    ("488b0510000000", "mov 0x10(%rip),%rax", True, None, None, "488b8610000000", "si"),
    ("4c8b3510000000", "mov 0x10(%rip),%r14", True, None, None, "4c8bb710000000", "di"),
    ("8b3510000000", "mov 0x10(%rip),%esi", True, None, None, "8bb710000000", "di"),
    ("ff1510000000", "call *0x10(%rip)", True, None, None, "ff9610000000", "si"),
    ("c3", "ret", True, None, None, "c3", None),
    ("cc", "int3", False, None, None, None, None),
    ("f0ff00", "lock incl (%rax)", False, None, None, None, None),
    ("f4", "hlt", False, None, None, None, None),
    ("8ed0", "mov %eax,%ss", False, None, None, None, None),
]


@pytest.mark.parametrize("hexbytes,text,supported,kernel,ours,xol,scratch", CASES,
                         ids=[c[1] for c in CASES])
def test_analyze(hexbytes, text, supported, kernel, ours, xol, scratch):
    info = analyze(bytes.fromhex(hexbytes) + b"\xcc" * 8, 0x1000)
    assert info.length == len(hexbytes) // 2
    assert info.supported == supported, info.refusal
    if not supported:
        return
    assert (info.kernel_emulates, info.emulation) == (kernel, ours)
    if xol is None:
        assert info.xol is None
    else:
        assert info.xol.code.hex() == xol and info.xol.scratch == scratch


def test_emulate_prologue():
    regs = {"ip": 0x1000, "sp": 0x7000, "bp": 0x1234, "flags": 0x202}
    changes, writes = emulate(analyze(bytes.fromhex("55")), regs)
    assert changes == {"ip": 0x1001, "sp": 0x6FF8} and writes == [(0x6FF8, (0x1234).to_bytes(8, "little"))]
    changes, writes = emulate(analyze(bytes.fromhex("4889e5"), 0x1001), {**regs, "ip": 0x1001})
    assert changes == {"ip": 0x1004, "bp": 0x7000} and writes == []
    changes, _ = emulate(analyze(bytes.fromhex("4883ec18")), regs)
    assert changes["sp"] == 0x7000 - 0x18 and changes["flags"] & (CF | ZF | SF | OF) == 0
    changes, _ = emulate(analyze(bytes.fromhex("4883ec18")), {**regs, "sp": 0x10})
    assert changes["flags"] & CF and changes["flags"] & SF           # borrow, negative
    changes, _ = emulate(analyze(bytes.fromhex("f30f1efa")), regs)
    assert changes == {"ip": 0x1004}


def test_emulate_branches():
    regs = {"ip": 0x1000, "sp": 0x7000, "flags": 0x202}
    assert emulate(analyze(bytes.fromhex("eb05")), regs)[0] == {"ip": 0x1007}
    assert emulate(analyze(bytes.fromhex("ebfe")), regs)[0] == {"ip": 0x1000}
    assert emulate(analyze(bytes.fromhex("7405")), regs)[0] == {"ip": 0x1002}       # ZF clear
    assert emulate(analyze(bytes.fromhex("7405")), {**regs, "flags": ZF})[0] == {"ip": 0x1007}
    changes, writes = emulate(analyze(bytes.fromhex("e8f0ffffff")), regs)
    assert changes == {"ip": 0x1005 - 0x10, "sp": 0x6FF8}
    assert writes == [(0x6FF8, (0x1005).to_bytes(8, "little"))]
    assert emulate(analyze(bytes.fromhex("488b0510000000")), regs) is None


def test_xol_round_trip_for_a_rip_relative_load():
    info = analyze(bytes.fromhex("488b0510000000"), 0x401000)
    regs = {"ip": 0x401000, "si": 0xAAAA, "sp": 0x7000}
    set_regs, saved = pre_xol(info.xol, regs, 0x401000, 0x7FFF0000)
    # the copy reads 0x10(%rsi) with rsi = the original next ip: 0x401007 + 0x10, as the
    # original read 0x10(%rip)
    assert set_regs == {"ip": 0x7FFF0000, "si": 0x401007} and saved == 0xAAAA
    after = {"ip": 0x7FFF0007, "si": 0x401007, "sp": 0x7000}
    changes, writes = post_xol(info.xol, after, 0x401000, 0x7FFF0000, saved)
    assert changes == {"si": 0xAAAA, "ip": 0x401007} and writes == []


def test_xol_indirect_call_fixes_the_return_address():
    info = analyze(bytes.fromhex("ff1510000000"), 0x401000)
    after = {"ip": 0x405000, "sp": 0x6FF8, "si": 0x401006}
    changes, writes = post_xol(info.xol, after, 0x401000, 0x7FFF0000, 0x1)
    assert "ip" not in changes and writes == [(0x6FF8, (0x401006).to_bytes(8, "little"))]
