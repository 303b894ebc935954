"""SDT (USDT) probes: the ``.note.stapsdt`` notes that ``<sys/sdt.h>`` leaves in a program.

Each ``DTRACE_PROBE``/``STAP_PROBE`` site leaves one note (owner ``stapsdt``, type 3) whose
description is three addresses and three strings::

    pc         8 bytes   the probed instruction (a nop)
    base       8 bytes   the address of .stapsdt.base when the note was written
    semaphore  8 bytes   a 2-byte counter the program tests before preparing the arguments
    provider\\0 name\\0 arguments\\0     e.g. "python", "function__entry", "8@%rbp 8@%r12 -4@%eax"

If the file was prelinked, the addresses move with ``.stapsdt.base``: each is corrected by
``sh_addr(.stapsdt.base) - base``.  The kernel wants file offsets: the pc's and the
semaphore's (the reference counter, raised while the probe is enabled so that the program
prepares the arguments).

Each argument is ``[-]SIZE@OPERAND`` in the assembler's syntax: a register (``%eax``), a
memory operand (``-8(%rbp)``), an immediate (``$5``).  ``perf probe`` turns them into fetch
arguments ``arg1..argN`` typed by SIZE (``-4`` is ``s32``, ``8`` is ``u64``) and names the
event ``sdt_PROVIDER:NAME``; so do we.  Operands with an index register or a symbol
(``sym(%rip)``) cannot be written as fetch arguments; like perf, we leave them out.
"""

from __future__ import annotations

import errno
import os
import re
import struct
from dataclasses import dataclass

from .errors import ProbeError

NT_STAPSDT = 3

# Register names of the x86_64 assembler, by the kernel's names (regs_query_register_offset).
_REG_ALIASES: dict[str, str] = {}
for _k, _names in {
    "ax": "rax eax ax al", "bx": "rbx ebx bx bl", "cx": "rcx ecx cx cl", "dx": "rdx edx dx dl",
    "si": "rsi esi si sil", "di": "rdi edi di dil", "bp": "rbp ebp bp bpl",
    "sp": "rsp esp sp spl", "ip": "rip eip ip",
}.items():
    for _n in _names.split():
        _REG_ALIASES[_n] = _k
for _i in range(8, 16):
    for _suffix in ("", "d", "w", "b"):
        _REG_ALIASES[f"r{_i}{_suffix}"] = f"r{_i}"


@dataclass(frozen=True)
class SdtArg:
    size: int            # bytes (1, 2, 4, 8)
    signed: bool
    operand: str         # as in the note
    fetch: str | None    # the fetch argument, None where it has none

    @property
    def type(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.size * 8}"


@dataclass(frozen=True)
class SdtProbe:
    path: str
    provider: str
    name: str
    pc: int              # virtual address of the probe site (corrected)
    semaphore: int       # virtual address of the semaphore, 0 for none
    pc_offset: int       # file offsets: what the kernel's uprobe wants
    sem_offset: int
    args: tuple[SdtArg, ...]
    arg_spec: str

    @property
    def event_name(self) -> str:
        """``perf probe``'s name: ``sdt_PROVIDER:NAME``."""
        return f"sdt_{self.provider}:{self.name}"

    def fetch_args(self) -> list[str]:
        """``argN=FETCH:TYPE`` for each argument that has a fetch form (N counts all)."""
        return [f"arg{i}={a.fetch}:{a.type}" for i, a in enumerate(self.args, 1) if a.fetch]

    def definition(self, group: str | None = None, event: str | None = None) -> str:
        """The kernel's definition of this probe (semaphore as the reference counter)."""
        ref = f"(0x{self.sem_offset:x})" if self.sem_offset else ""
        head = f"p:{group or 'sdt_' + self.provider}/{event or self.name}"
        return " ".join([head, f"{self.path}:0x{self.pc_offset:x}{ref}", *self.fetch_args()])


_MEM_RE = re.compile(r"^(?P<disp>[-+]?(?:0x[0-9a-fA-F]+|\d+))?\((?P<base>%\w+)\)$")


def parse_arg(text: str) -> SdtArg:
    """One ``[-]SIZE@OPERAND`` of a note's argument string."""
    size_text, at, operand = text.partition("@")
    if not at:
        size_text, operand = "8", text               # old notes: no size (a long)
    signed = size_text.startswith("-")
    try:
        size = abs(int(size_text))
    except ValueError:
        size = 8
    if size not in (1, 2, 4, 8):
        size = 8
    return SdtArg(size, signed, operand, _fetch(operand))


def _fetch(op: str) -> str | None:
    if op.startswith("%"):
        reg = _REG_ALIASES.get(op[1:])
        return f"%{reg}" if reg and reg != "ip" else None
    if op.startswith("$"):
        value = op[1:]
        try:
            int(value, 0)
        except ValueError:
            return None
        return f"\\{value}"
    m = _MEM_RE.match(op)
    if m:
        reg = _REG_ALIASES.get(m["base"][1:])
        if reg is None or reg == "ip":
            return None
        disp = int(m["disp"] or "0", 0)
        return f"{'-' if disp < 0 else '+'}{abs(disp)}(%{reg})"
    return None


def _split_desc(desc: bytes) -> tuple[int, int, int, list[str]] | None:
    if len(desc) < 24:
        return None
    pc, base, sem = struct.unpack_from("<QQQ", desc, 0)
    strings = desc[24:].split(b"\0")
    if len(strings) < 3:
        return None
    return pc, base, sem, [s.decode("utf-8", "replace") for s in strings[:3]]


def read_sdt(path: str, elf=None) -> list[SdtProbe]:
    """Every SDT probe of an ELF file, in note order."""
    from .elf import ElfFile
    elf = elf or ElfFile(path)
    stapbase = elf.sections.get(".stapsdt.base")
    out = []
    for owner, ntype, desc in elf.stapsdt_notes():
        # pyelftools names type 3 after the GNU note that shares its number
        if owner != "stapsdt" or ntype not in (NT_STAPSDT, "NT_STAPSDT", "NT_GNU_BUILD_ID"):
            continue
        if isinstance(desc, str):
            desc = desc.encode("latin-1")
        parts = _split_desc(bytes(desc))
        if parts is None:
            continue
        pc, base, sem, (provider, name, spec) = parts
        if stapbase is not None and base:
            adjust = stapbase[0] - base
            pc += adjust
            if sem:
                sem += adjust
        pc_off = elf.vaddr_to_offset(pc)
        sem_off = elf.vaddr_to_offset(sem) if sem else 0
        if pc_off is None:
            continue
        args = tuple(parse_arg(a) for a in spec.split()) if spec else ()
        out.append(SdtProbe(path, provider, name, pc, sem, pc_off, sem_off or 0, args, spec))
    return out


def find_sdt(path: str, provider: str, name: str, ctx) -> list[SdtProbe]:
    return [p for p in read_sdt(path, ctx.elf(path)) if p.provider == provider and p.name == name]


def _split_sdt_name(body: str, ctx, log) -> tuple[str, str, str, int]:
    """``[PATH:]sdt_PROVIDER:NAME`` -> (path, provider, name, where 'sdt_' starts)."""
    i = body.find("sdt_") if body.startswith("sdt_") else body.find(":sdt_") + 1
    path = body[:i - 1] if i > 0 else ctx.main_program
    rest = body[i + 4:]
    provider, _, name = rest.partition(":")
    if path is None:
        raise ProbeError("NO_PROGRAM", log.command(), 0, errno.EINVAL,
                         f"'{body}' alone needs a traced command; write PATH:{body}")
    return path, provider, name, i


def resolve_sdt_place(body: str, ctx, log) -> tuple[str, int, int]:
    """(path, pc offset, semaphore offset) of ``[PATH:]sdt_PROVIDER:NAME``."""
    from .elf import _open, _pos
    path, provider, name, at = _split_sdt_name(body, ctx, log)
    _open(path, ctx, log, 0)
    probes = find_sdt(path, provider, name, ctx)
    if not probes:
        known = sorted({f"sdt_{p.provider}:{p.name}" for p in read_sdt(path, ctx.elf(path))})
        import difflib
        near = difflib.get_close_matches(f"sdt_{provider}:{name}", known, n=5, cutoff=0.5)
        raise ProbeError("NO_SDT_NOTE", log.command(), _pos(log, at), errno.ENOENT,
                         f"no SDT probe {provider}:{name} in {path}"
                         + (f"; closest: {', '.join(near)}" if near else
                            f"; it has {len(known)}" if known else "; it has none"))
    p = probes[0]
    return path, p.pc_offset, p.sem_offset


def expand_sdt_definition(argv: list[str], ctx, log) -> list[str]:
    """A whole definition that is an SDT name (``[PATH:]sdt_PROV:NAME [ARGS]``) as the
    kernel's: ``p:sdt_PROV/NAME PATH:0xPC(0xSEM) arg1=... [ARGS]``.  Where one name has
    several sites (a probe inlined in several places) the first is taken; the others get
    events NAME_1, NAME_2... when the definition is added (see :func:`expand_all`)."""
    path, provider, name, _ = _split_sdt_name(argv[0], ctx, log)
    resolve_sdt_place(argv[0], ctx, log)
    p = find_sdt(path, provider, name, ctx)[0]
    words = p.definition().split()
    return words[:2] + argv[1:] if len(argv) > 1 else words


def expand_all(text: str, ctx) -> list[str]:
    """Every site of an SDT name, each as a kernel definition (events NAME, NAME_1, ...)."""
    from .parse import _Log, split_words
    argv = split_words(text)
    log = _Log(argv)
    path, provider, name, _ = _split_sdt_name(argv[0], ctx, log)
    resolve_sdt_place(argv[0], ctx, log)
    out = []
    for i, p in enumerate(find_sdt(path, provider, name, ctx)):
        words = p.definition(event=name if i == 0 else f"{name}_{i}").split()
        out.append(" ".join(words[:2] + argv[1:] if len(argv) > 1 else words))
    return out


def is_sdt_name(word: str) -> bool:
    return word.startswith("sdt_") or (":sdt_" in word and os.sep in word)
