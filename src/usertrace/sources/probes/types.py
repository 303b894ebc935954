"""The fetch types of probe arguments and the fetch instructions, as ``trace_probe.c`` has them.

A fetch argument is compiled into a short program of :class:`FetchInsn`, in the kernel's five
stages: one load (a register, a stack slot, the return value, an immediate, ``$comm``, a
file offset), dereferences, one store into the record (raw, from memory, a string), an
optional bitfield shift, an optional array loop.  ``+8(+0(%di)):u32[2]`` becomes::

    REG di; DEREF +0; ST_MEM +8 size 4; LP_ARRAY 2; END

:mod:`.fetch` runs these programs as ``process_fetch_insn`` does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FetchType:
    """One entry of the kernel's ``probe_fetch_types[]``."""

    name: str          # as written after ':' ("x32", "string")
    size: int          # bytes in the record (a string: its 4-byte __data_loc word)
    signed: bool       # the format's signed: (1 for the string types, as the kernel says)
    is_string: bool
    fmt: str           # printf conversion for the print fmt and the trace text
    fmttype: str       # the type in the format file


def _t(name, size, signed, fmt, fmttype=None, is_string=False):
    return FetchType(name, size, signed, is_string, fmt, fmttype or name)


_STRING_FMT = '\\"%s\\"'

# In the kernel's order (find_fetch_type scans it in order; the names are unique).
FETCH_TYPES: tuple[FetchType, ...] = (
    _t("string", 4, True, _STRING_FMT, "__data_loc char[]", True),
    _t("ustring", 4, True, _STRING_FMT, "__data_loc char[]", True),
    _t("symstr", 4, True, _STRING_FMT, "__data_loc char[]", True),
    _t("u8", 1, False, "%u"), _t("u16", 2, False, "%u"),
    _t("u32", 4, False, "%u"), _t("u64", 8, False, "%Lu"),
    _t("s8", 1, True, "%d"), _t("s16", 2, True, "%d"),
    _t("s32", 4, True, "%d"), _t("s64", 8, True, "%Ld"),
    _t("x8", 1, False, "0x%x", "u8"), _t("x16", 2, False, "0x%x", "u16"),
    _t("x32", 4, False, "0x%x", "u32"), _t("x64", 8, False, "0x%Lx", "u64"),
    _t("char", 1, False, "'%c'", "u8"),
    _t("symbol", 8, False, "%pS", "u64"),
)
TYPES_BY_NAME = {t.name: t for t in FETCH_TYPES}
DEFAULT_TYPE = "x64"          # DEFAULT_FETCH_TYPE: x##BITS_PER_LONG
ADDR_TYPE = "u64"
# Types the kernel refuses for uprobes (find_fetch_type with TPARG_FL_USER).
KERNEL_ONLY_TYPES = frozenset({"symbol", "symstr"})


# -- fetch instructions ------------------------------------------------------------------------
# Stage 1 (load)
REG, STACK, STACKP, RETVAL, IMM, COMM, ARG, FOFFS, DATA, EDATA = (
    "REG", "STACK", "STACKP", "RETVAL", "IMM", "COMM", "ARG", "FOFFS", "DATA", "EDATA")
# Stage 2 (dereference)
DEREF, UDEREF = "DEREF", "UDEREF"
# Stage 3 (store)
ST_RAW, ST_MEM, ST_UMEM, ST_STRING, ST_USTRING, ST_SYMSTR = (
    "ST_RAW", "ST_MEM", "ST_UMEM", "ST_STRING", "ST_USTRING", "ST_SYMSTR")
# Stage 4 (modify), 5 (loop)
MOD_BF, LP_ARRAY = "MOD_BF", "LP_ARRAY"
NOP, END = "NOP", "END"

LOADS = frozenset({REG, STACK, STACKP, RETVAL, IMM, COMM, ARG, FOFFS, DATA})
STRING_STORES = frozenset({ST_STRING, ST_USTRING})

FETCH_INSN_MAX = 16


@dataclass(frozen=True)
class FetchInsn:
    """One ``struct fetch_insn``: ``op`` and the union's members that op uses."""

    op: str
    param: int | str = 0       # REG: register name; STACK: index; LP_ARRAY: count
    offset: int = 0            # DEREF/UDEREF/ST_*: offset added to the address
    size: int = 0              # ST_*: bytes stored
    immediate: int = 0         # IMM, FOFFS
    data: str = ""             # DATA: the immediate string
    basesize: int = 0          # MOD_BF
    lshift: int = 0
    rshift: int = 0

    def __str__(self) -> str:
        if self.op == REG:
            return f"REG %{self.param}"
        if self.op in (STACK, LP_ARRAY):
            return f"{self.op} {self.param}"
        if self.op in (IMM, FOFFS):
            return f"{self.op} {self.immediate:#x}"
        if self.op == DATA:
            return f"DATA {self.data!r}"
        if self.op in (DEREF, UDEREF):
            return f"{self.op} {self.offset:+d}"
        if self.op.startswith("ST_"):
            return f"{self.op} {self.offset:+d} size {self.size}"
        if self.op == MOD_BF:
            return f"MOD_BF base {self.basesize} <<{self.lshift} >>{self.rshift}"
        return self.op


# x86_64 registers by the names regs_query_register_offset() knows (arch/x86/kernel/ptrace.c
# regoffset_table), with their struct user_regs_struct names.
X86_64_REGS: dict[str, str] = {
    "r15": "r15", "r14": "r14", "r13": "r13", "r12": "r12", "r11": "r11", "r10": "r10",
    "r9": "r9", "r8": "r8", "bx": "rbx", "cx": "rcx", "dx": "rdx", "si": "rsi", "di": "rdi",
    "bp": "rbp", "ax": "rax", "orig_ax": "orig_rax", "ip": "rip", "cs": "cs",
    "flags": "eflags", "sp": "rsp", "ss": "ss",
}
