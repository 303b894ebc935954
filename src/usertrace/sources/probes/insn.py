"""Instruction facts at a probe address, for the engine: decoded with iced-x86.

A probe replaces the first byte of an instruction with ``int3``.  After a hit the original
instruction must still run, without putting its byte back (other threads would run past the
probe): it is emulated, or executed out of line (XOL) in a slot of a page mapped into the
tracee.  ``arch/x86/kernel/uprobes.c`` decides which, and so does :func:`analyze`:

- the kernel refuses some instructions outright (``uprobe_init_insn``: its good-opcode
  tables, the ES/CS/DS/SS and LOCK prefixes, ``mov ss``/``pop ss``);
- it emulates nops (every ``x86_nops`` form and prefixed ``0x90``), ``jmp``/``jcc``
  relative, ``call`` relative (``branch_setup_xol_ops``) and ``push reg``
  (``push_setup_xol_ops``);
- everything else runs out of line, with fixups: the ip moved back next to the original
  (``FIX_IP``), a ``call``'s return address corrected (``FIX_CALL``), and a RIP-relative
  operand rewritten to go through a scratch register (``riprel_analyze``): modrm
  ``00 reg 101`` + disp32 becomes ``10 reg rrr`` + the same disp32, with ``rrr`` = si, else di,
  else bx, which holds the original next-ip while the copy runs.

On top of the kernel's list we emulate, because a ptrace single-step costs ten times an
emulation, the usual first instructions of a function: ``endbr64`` (a nop for a user process:
Linux does not enable user-mode IBT), ``mov %rsp,%rbp`` and ``sub``/``add $imm,%rsp``
(with their flags).  :attr:`InsnInfo.kernel_emulates` says what the kernel emulates,
:attr:`InsnInfo.emulation` what usertrace does.

Everything here is a pure function of bytes and registers: :func:`emulate` returns the new
registers and the memory writes, :func:`pre_xol`/:func:`post_xol` the register changes around
a step out of line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import iced_x86 as ix

from ...ptrace.breakpoints import Analyzer

MASK64 = (1 << 64) - 1
MAX_INSN_SIZE = 15
# Flags (EFLAGS bits).
CF, PF, AF, ZF, SF, TF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x100, 0x800

_LEGACY_PREFIXES = frozenset((0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3))
_BAD_PREFIXES = frozenset((0x26, 0x2E, 0x3E, 0x36, 0xF0))   # ES CS DS SS LOCK


def _table(rows: list[str]) -> frozenset[int]:
    """A good-opcode table written as the kernel's W() rows: 16 bits per row."""
    out = set()
    for r, row in enumerate(rows):
        for c, bit in enumerate(row.split()):
            if bit == "1":
                out.add(r * 16 + c)
    return frozenset(out)


GOOD_INSNS_64 = _table([
    "1 1 1 1 1 1 0 0 1 1 1 1 1 1 0 1",  # 00
    "1 1 1 1 1 1 0 0 1 1 1 1 1 1 0 0",  # 10
    "1 1 1 1 1 1 1 0 1 1 1 1 1 1 1 0",  # 20
    "1 1 1 1 1 1 1 0 1 1 1 1 1 1 1 0",  # 30
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 40
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 50
    "0 0 0 1 1 1 1 1 1 1 1 1 0 0 0 0",  # 60
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 70
    "1 1 0 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 80
    "1 1 1 1 1 1 1 1 1 1 0 1 1 1 1 1",  # 90
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # a0
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # b0
    "1 1 1 1 1 1 1 1 1 1 1 1 0 0 0 0",  # c0
    "1 1 1 1 0 0 0 1 1 1 1 1 1 1 1 1",  # d0
    "1 1 1 1 0 0 0 0 1 1 0 1 0 0 0 0",  # e0
    "1 0 1 1 0 1 1 1 1 1 0 0 1 1 1 1",  # f0
])
GOOD_2BYTE_INSNS = _table([
    "0 0 1 1 1 0 0 0 0 0 1 0 1 1 1 1",  # 00
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 10
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 20
    "0 1 1 1 0 0 1 0 1 1 1 1 1 1 1 1",  # 30
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 40
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 50
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 60
    "1 1 1 1 1 1 1 1 0 0 1 1 1 1 1 1",  # 70
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 80
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # 90
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 0 1",  # a0
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # b0
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # c0
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # d0
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # e0
    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # f0
])

# x86_nops[len] (arch/x86/kernel/nops.c, x86_64): the kernel emulates these as "jmp +0".
X86_NOPS = {
    1: bytes.fromhex("90"), 2: bytes.fromhex("6690"), 3: bytes.fromhex("0f1f00"),
    4: bytes.fromhex("0f1f4000"), 5: bytes.fromhex("0f1f440000"),
    6: bytes.fromhex("660f1f440000"), 7: bytes.fromhex("0f1f8000000000"),
    8: bytes.fromhex("0f1f840000000000"),
}
_ENDBR = (bytes.fromhex("f30f1efa"), bytes.fromhex("f30f1efb"))

# push r (50+r, 41 50+r): the register pushed, by the kernel's names.
_PUSH_REGS = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di")
_PUSH_REGS_REX = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_SCRATCH = {6: "si", 7: "di", 3: "bx"}


@dataclass(frozen=True)
class XolPlan:
    """How to run an instruction out of line: the bytes to copy into the slot, and the
    fixups (``IP``, ``CALL``, ``SETF``) and scratch register of ``default_post_xol_op``."""

    code: bytes
    length: int
    fixups: frozenset = frozenset()
    scratch: str | None = None          # "si", "di" or "bx" for a RIP-relative operand


@dataclass(frozen=True)
class InsnInfo:
    address: int
    length: int
    raw: bytes
    text: str                           # the instruction in AT&T syntax
    supported: bool                     # the kernel would place a uprobe here
    refusal: str = ""                   # why not
    kernel_emulates: str | None = None  # "nop", "jmp", "jcc", "call", "push"
    emulation: str | None = None        # what usertrace emulates (the kernel's, and more)
    branch_offset: int = 0              # jmp/jcc/call: the relative displacement
    branch_opcode: int = 0              # the (short-form) opcode deciding a jcc
    push_reg: str = ""
    imm: int = 0                        # sub/add $imm,%rsp
    xol: XolPlan | None = None
    notes: tuple[str, ...] = field(default=())


_FORMATTER = ix.Formatter(ix.FormatterSyntax.GAS)


def decode(code: bytes, address: int = 0):
    """The first instruction of ``code`` (an iced-x86 Instruction), or None if invalid."""
    dec = ix.Decoder(64, bytes(code[:MAX_INSN_SIZE]), ip=address)
    if not dec.can_decode:
        return None
    ins = dec.decode()
    if ins.is_invalid or ins.len > len(code):
        return None
    return ins, dec.get_constant_offsets(ins)


def is_boundary(code: bytes, offset: int) -> bool:
    """Whether ``offset`` into ``code`` (a function's bytes from its start) begins an
    instruction (decoding from the start)."""
    dec = ix.Decoder(64, bytes(code), ip=0)
    for ins in dec:
        if ins.ip == offset:
            return True
        if ins.ip > offset or ins.is_invalid:
            return False
    return False


def _prefix_end(raw: bytes) -> int:
    i = 0
    while i < len(raw) and raw[i] in _LEGACY_PREFIXES:
        i += 1
    return i


def _opcode(raw: bytes, ins) -> tuple[int, int, int, int]:
    """(first opcode byte, second or -1, index of REX or -1, number of opcode bytes) of a
    legacy-encoded instruction."""
    i = _prefix_end(raw)
    rex = -1
    if i < len(raw) and 0x40 <= raw[i] <= 0x4F:
        rex = i
        i += 1
    op1 = raw[i] if i < len(raw) else -1
    if op1 == 0x0F and i + 1 < len(raw):
        op2 = raw[i + 1]
        n = 3 if op2 in (0x38, 0x3A) else 2
        return op1, op2, rex, n
    return op1, -1, rex, 1


def analyze(code: bytes, address: int = 0) -> InsnInfo:
    """The facts about the instruction at the start of ``code`` (the probed address)."""
    got = decode(code, address)
    if got is None:
        return InsnInfo(address, 0, bytes(code[:1]), "(bad)", False, "not a valid instruction")
    ins, offsets = got
    raw = bytes(code[:ins.len])
    text = _FORMATTER.format(ins)
    base = dict(address=address, length=ins.len, raw=raw, text=text)
    legacy = ins.encoding == ix.EncodingKind.LEGACY
    op1, op2, rex, nop = _opcode(raw, ins) if legacy else (-1, -1, -1, 0)
    # uprobe_init_insn: prefixes, exception masking, the good-opcode tables
    if any(b in _BAD_PREFIXES for b in raw[:_prefix_end(raw)]):
        return InsnInfo(**base, supported=False, refusal="ES/CS/DS/SS or LOCK prefix")
    if ins.mnemonic == ix.Mnemonic.POP and ins.op0_register == ix.Register.SS or (
            ins.mnemonic == ix.Mnemonic.MOV and ins.op0_kind == ix.OpKind.REGISTER
            and ins.op0_register == ix.Register.SS):
        return InsnInfo(**base, supported=False, refusal="masks exceptions (ss)")
    if legacy:
        ok = op1 in GOOD_INSNS_64 or (nop == 2 and op2 in GOOD_2BYTE_INSNS)
    else:
        first = {ix.EncodingKind.VEX: 0xC4, ix.EncodingKind.EVEX: 0x62,
                 ix.EncodingKind.XOP: 0x8F}.get(ins.encoding, -1)
        ok = first in GOOD_INSNS_64
    if not ok:
        return InsnInfo(**base, supported=False,
                        refusal=f"opcode {raw[_prefix_end(raw):][:2].hex()} is not probed")
    info = dict(base, supported=True)
    # branch_setup_xol_ops
    kernel = None
    if ins.len in X86_NOPS and raw == X86_NOPS[ins.len] or op1 == 0x90:
        kernel = "nop"
    elif op1 in (0xEB, 0xE9):
        kernel = "jmp"
    elif op1 == 0xE8:
        kernel = "call"
    elif legacy and (0x70 <= op1 <= 0x7F or (op1 == 0x0F and nop == 2 and 0x80 <= op2 <= 0x8F)):
        kernel = "jcc"
    if kernel in ("jmp", "call", "jcc") and 0x66 in raw[:_prefix_end(raw)]:
        return InsnInfo(**base, supported=False, refusal="16-bit branch override (0x66)")
    if kernel:
        cond = op1 if op1 != 0x0F else op2 - 0x10
        offs = (ins.near_branch_target - ins.next_ip) if kernel != "nop" else 0
        return InsnInfo(**info, kernel_emulates=kernel, emulation=kernel,
                        branch_offset=_signed(offs), branch_opcode=cond)
    # push_setup_xol_ops
    if legacy and 0x50 <= op1 <= 0x57 and ins.len <= 2:
        if ins.len == 1:
            return InsnInfo(**info, kernel_emulates="push", emulation="push",
                            push_reg=_PUSH_REGS[op1 - 0x50])
        if rex >= 0 and raw[rex] == 0x41:
            return InsnInfo(**info, kernel_emulates="push", emulation="push",
                            push_reg=_PUSH_REGS_REX[op1 - 0x50])
    # what we emulate beyond the kernel
    ours = None
    imm = 0
    if raw in _ENDBR:
        ours = "endbr"
    elif raw in (bytes.fromhex("4889e5"), bytes.fromhex("488bec")):
        ours = "mov_rsp_rbp"
    elif (ins.mnemonic in (ix.Mnemonic.SUB, ix.Mnemonic.ADD) and ins.op_count == 2
          and ins.op0_kind == ix.OpKind.REGISTER and ins.op0_register == ix.Register.RSP
          and ins.op1_kind in (ix.OpKind.IMMEDIATE8TO64, ix.OpKind.IMMEDIATE32TO64)):
        ours = "sub_rsp" if ins.mnemonic == ix.Mnemonic.SUB else "add_rsp"
        imm = ins.immediate(1) & MASK64
    info["xol"] = _xol_plan(raw, ins, offsets, legacy, op1, rex)
    return InsnInfo(**info, emulation=ours, imm=imm)


def _signed(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def _xol_plan(raw: bytes, ins, offsets, legacy: bool, op1: int, rex: int) -> XolPlan:
    """``arch_uprobe_analyze_insn``'s fixups and ``riprel_analyze``'s rewrite."""
    fixups = {"IP"}
    code = bytearray(raw)
    if op1 == 0x9D:
        fixups.add("SETF")
    elif op1 in (0xC3, 0xCB, 0xC2, 0xCA, 0xEA):
        fixups.discard("IP")
    elif op1 == 0x9A:
        fixups = {"CALL"}
    elif op1 == 0xFF:
        i = _prefix_end(raw) + (1 if rex >= 0 else 0) + 1
        modrm_reg = (raw[i] >> 3) & 7 if i < len(raw) else 0
        if modrm_reg in (2, 3):
            fixups = {"CALL"}
        elif modrm_reg in (4, 5):
            fixups = set()
    scratch = None
    if op1 not in (0x9D, 0xC3, 0xCB, 0xC2, 0xCA, 0xEA, 0x9A) and ins.is_ip_rel_memory_operand:
        modrm_at = offsets.displacement_offset - 1
        if rex >= 0:
            code[rex] &= 0xFE                              # clear REX.B
        reg2 = 0xFF
        if not legacy:
            vex_at = _prefix_end(raw)
            if raw[vex_at] in (0xC4, 0x8F, 0x62):
                code[vex_at + 1] |= 0x60                   # set VEX3.B (and EVEX.X)
            reg2 = raw[vex_at + 2] if raw[vex_at] != 0xC5 else 0
        reg2 = ((reg2 >> 3) & 7) ^ 7
        reg = (raw[modrm_at] >> 3) & 7
        if reg != 6 and reg2 != 6:
            reg2 = 6
        elif reg != 7 and reg2 != 7:
            reg2 = 7
        else:
            reg2 = 3
        scratch = _SCRATCH[reg2]
        code[modrm_at] = 0x80 | (reg << 3) | reg2
    return XolPlan(bytes(code), ins.len, frozenset(fixups), scratch)


# -- running it -----------------------------------------------------------------------------

def _jcc_taken(opcode: int, flags: int) -> bool:
    """``check_jmp_cond``: the condition of the short-form jcc ``opcode``."""
    f = lambda bit: bool(flags & bit)  # noqa: E731
    conds = {0x70: f(OF), 0x72: f(CF), 0x74: f(ZF), 0x78: f(SF), 0x7A: f(PF),
             0x76: f(CF) or f(ZF), 0x7C: f(SF) != f(OF), 0x7E: f(ZF) or f(SF) != f(OF)}
    yes = opcode & ~1
    taken = conds[yes]
    return taken if opcode == yes else not taken


def _arith_flags(a: int, b: int, result: int, sub: bool, flags: int) -> int:
    """EFLAGS after a 64-bit ``add``/``sub`` of ``b`` to/from ``a``."""
    r = result & MASK64
    out = flags & ~(CF | PF | AF | ZF | SF | OF)
    if sub:
        if b > a:
            out |= CF
        if ((a ^ b) & (a ^ r)) >> 63:
            out |= OF
    else:
        if a + b > MASK64:
            out |= CF
        if (~(a ^ b) & (a ^ r)) >> 63 & 1:
            out |= OF
    if (a ^ b ^ r) & 0x10:
        out |= AF
    if r == 0:
        out |= ZF
    if r >> 63:
        out |= SF
    if bin(r & 0xFF).count("1") % 2 == 0:
        out |= PF
    return out


def emulate(info: InsnInfo, regs: dict) -> tuple[dict, list[tuple[int, bytes]]] | None:
    """Run the instruction on ``regs`` (the kernel's register names: ``ip``, ``sp``,
    ``flags``, ``ax``...; ``ip`` is the probed address): the registers that change and the
    memory writes ``[(address, bytes)]``; None where usertrace does not emulate it."""
    kind = info.emulation
    ip = regs["ip"]
    nxt = (ip + info.length) & MASK64
    if kind in ("nop", "endbr"):
        return {"ip": nxt}, []
    if kind == "jmp":
        return {"ip": (nxt + info.branch_offset) & MASK64}, []
    if kind == "jcc":
        taken = _jcc_taken(info.branch_opcode, regs["flags"])
        return {"ip": (nxt + (info.branch_offset if taken else 0)) & MASK64}, []
    if kind == "call":
        sp = (regs["sp"] - 8) & MASK64
        return {"ip": (nxt + info.branch_offset) & MASK64, "sp": sp}, [
            (sp, nxt.to_bytes(8, "little"))]
    if kind == "push":
        sp = (regs["sp"] - 8) & MASK64
        return {"ip": nxt, "sp": sp}, [(sp, (regs[info.push_reg] & MASK64).to_bytes(8, "little"))]
    if kind == "mov_rsp_rbp":
        return {"ip": nxt, "bp": regs["sp"]}, []
    if kind in ("sub_rsp", "add_rsp"):
        a, b = regs["sp"] & MASK64, info.imm
        sub = kind == "sub_rsp"
        r = (a - b if sub else a + b) & MASK64
        return {"ip": nxt, "sp": r, "flags": _arith_flags(a, b, r, sub, regs["flags"])}, []
    return None


# The kinds of the compiled breakpoint hit (usertrace.ptrace._ptrace.hit), which runs these
# as emulate() does; jcc and the stack arithmetic (flags to compute) stay with emulate().
_COMPILED = {"nop": 1, "endbr": 1, "jmp": 2, "call": 3, "push": 4, "mov_rsp_rbp": 5}


def compiled_emulation(info: InsnInfo, reg_index) -> tuple[int, int, int] | None:
    """``(kind, length, param)`` for the compiled breakpoint hit: ``param`` the branch
    offset of a jump or call, the pushed register's index in ``reg_index`` for a push; None
    where only :func:`emulate` runs the instruction (or nothing does)."""
    kind = _COMPILED.get(info.emulation)
    if kind is None:
        return None
    if kind in (2, 3):
        param = info.branch_offset
    elif kind == 4:
        param = reg_index[info.push_reg]
    else:
        param = 0
    return kind, info.length, param & MASK64


def pre_xol(plan: XolPlan, regs: dict, address: int, xol_address: int
            ) -> tuple[dict, int | None]:
    """Before the step: the registers to set (ip in the slot, the scratch register holding
    the original next-ip) and the scratch register's value to restore afterwards."""
    changes = {"ip": xol_address}
    saved = None
    if plan.scratch:
        saved = regs[plan.scratch]
        changes[plan.scratch] = (address + plan.length) & MASK64
    return changes, saved


def post_xol(plan: XolPlan, regs: dict, address: int, xol_address: int, saved: int | None
             ) -> tuple[dict, list[tuple[int, bytes]]]:
    """After the step (``default_post_xol_op``): the register changes and memory writes that
    make it look as if the instruction ran in place."""
    changes: dict = {}
    writes: list[tuple[int, bytes]] = []
    if plan.scratch:
        changes[plan.scratch] = saved
    if "IP" in plan.fixups:
        changes["ip"] = (regs["ip"] + address - xol_address) & MASK64
    elif "CALL" in plan.fixups:
        writes.append((regs["sp"] & MASK64, ((address + plan.length) & MASK64).to_bytes(8, "little")))
    return changes, writes


class InsnAnalyzer(Analyzer):
    """These facts for the engine's breakpoints (:class:`~usertrace.ptrace.breakpoints.
    Breakpoints`): the pure functions above, called as they are (one call less at each hit)."""

    analyze = staticmethod(analyze)
    emulate = staticmethod(emulate)
    compiled_emulation = staticmethod(compiled_emulation)
    pre_xol = staticmethod(pre_xol)
    post_xol = staticmethod(post_xol)
