"""ELF symbols to file offsets: what the kernel's uprobe OFFSET is, computed for the user.

A uprobe is placed by a file offset.  A symbol's value is a virtual address (for a PIE or a
shared library, relative to where the file is loaded); the ``PT_LOAD`` segment that holds it
maps file bytes ``p_offset..`` at ``p_vaddr..``, so the file offset is
``value - p_vaddr + p_offset``.  Worked example (a non-PIE program)::

    LOAD  offset 0x001000  vaddr 0x401000  filesz 0x1a5   (R E)
    main  value 0x401136                 ->  offset 0x1136

The same computation holds for PIE programs and shared libraries (their ``p_vaddr`` starts
near 0).  Symbols come from ``.symtab`` and, for stripped files, ``.dynsym``.  An unknown
symbol is refused with the closest names (difflib).
"""

from __future__ import annotations

import difflib
import errno
import re
from dataclasses import dataclass

from ...errors import UsertraceError
from .errors import ProbeError

PT_LOAD = "PT_LOAD"
FUNC_TYPES = ("STT_FUNC", "STT_GNU_IFUNC")
DATA_TYPES = ("STT_OBJECT", "STT_TLS", "STT_COMMON", "STT_NOTYPE")


@dataclass(frozen=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    type: str          # STT_FUNC, STT_OBJECT, ...
    bind: str          # STB_GLOBAL, STB_LOCAL, STB_WEAK
    table: str         # ".symtab" or ".dynsym"

    @property
    def is_function(self) -> bool:
        return self.type in FUNC_TYPES


class ElfError(UsertraceError):
    """A file that is not an ELF object usertrace can place a probe in (the message says why)."""


class ElfFile:
    """An ELF file's load segments, symbols and sections, read once with pyelftools."""

    def __init__(self, path: str):
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        self.path = path
        try:
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    raise ElfError(f"{path} is not an ELF file")
                f.seek(0)
                elf = ELFFile(f)
                self.elf_type = elf["e_type"]
                self.machine = elf["e_machine"]
                self.segments = tuple(
                    Segment(s["p_vaddr"], s["p_memsz"], s["p_offset"], s["p_filesz"],
                            s["p_flags"])
                    for s in elf.iter_segments() if s["p_type"] == PT_LOAD)
                self.sections = {s.name: (s["sh_addr"], s["sh_offset"], s["sh_size"])
                                 for s in elf.iter_sections()}
                self.symbols: dict[str, list[Symbol]] = {}
                for table in (".symtab", ".dynsym"):
                    sec = elf.get_section_by_name(table)
                    if sec is None:
                        continue
                    for s in sec.iter_symbols():
                        if not s.name or s["st_shndx"] == "SHN_UNDEF":
                            continue
                        sym = Symbol(s.name, s["st_value"], s["st_size"], s["st_info"]["type"],
                                     s["st_info"]["bind"], table)
                        same = self.symbols.setdefault(s.name, [])
                        if not any(o.value == sym.value for o in same):
                            same.append(sym)
                self._notes = [(n["n_name"], n["n_type"], n["n_descdata"])
                               for sec in elf.iter_sections()
                               if sec["sh_type"] == "SHT_NOTE" and sec.name == ".note.stapsdt"
                               for n in sec.iter_notes()]
        except (ELFError, ValueError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, ElfError):
                raise
            raise ElfError(f"{path}: not a readable ELF file ({exc})") from None

    @property
    def is_pie_or_shared(self) -> bool:
        return self.elf_type == "ET_DYN"

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        """The file offset of the byte at ``vaddr``; None outside the file's bytes."""
        for s in self.segments:
            if s.vaddr <= vaddr < s.vaddr + s.filesz:
                return vaddr - s.vaddr + s.offset
        return None

    def offset_to_vaddr(self, offset: int) -> int | None:
        for s in self.segments:
            if s.offset <= offset < s.offset + s.filesz:
                return offset - s.offset + s.vaddr
        return None

    def find(self, name: str, functions: bool = True) -> list[Symbol]:
        """The symbols called ``name`` (functions, or data symbols)."""
        kinds = FUNC_TYPES if functions else DATA_TYPES
        return [s for s in self.symbols.get(name, ()) if s.type in kinds]

    def closest(self, name: str, functions: bool = True, n: int = 5) -> list[str]:
        kinds = FUNC_TYPES if functions else DATA_TYPES
        names = [k for k, v in self.symbols.items() if any(s.type in kinds for s in v)]
        return difflib.get_close_matches(name, names, n=n, cutoff=0.6)

    def symbol_offset(self, name: str) -> int:
        """The file offset of function ``name`` (raise KeyError/LookupError)."""
        syms = self.find(name)
        if not syms:
            raise KeyError(name)
        if len(syms) > 1:
            glob = [s for s in syms if s.bind != "STB_LOCAL"]
            if len(glob) != 1:
                raise LookupError(name)
            syms = glob
        off = self.vaddr_to_offset(syms[0].value)
        if off is None:
            raise KeyError(name)
        return off

    def read(self, offset: int, size: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def stapsdt_notes(self) -> list[tuple[str, int, bytes]]:
        return list(self._notes)


_PLACE_RE = re.compile(r"^(?P<body>[^%(]*)(?P<suffix>[%(].*)?$")


def _open(path: str, ctx, log, at: int) -> ElfFile:
    from .parse import check_file
    check_file(path, log)
    try:
        return ctx.elf(path)
    except ElfError as exc:
        raise ProbeError("NOT_ELF", log.command(), _pos(log, at), errno.EINVAL, str(exc)) from None


def _pos(log, offset: int, index: int = 1) -> int:
    return sum(len(w) + 1 for w in log.argv[:index]) + offset


def resolve_place(place: str, ctx, log) -> str:
    """``[PATH:]SYMBOL[+OFFS][%return][(REF)]`` or ``[PATH:]sdt_PROV:NAME`` as the kernel's
    ``PATH:0xOFFSET[%return][(REF)]``; raise ProbeError naming the fault."""
    from .parse import kstrtoul
    m = _PLACE_RE.match(place)
    body, suffix = m["body"], m["suffix"] or ""
    if body.startswith("sdt_") or ":sdt_" in body:
        from .sdt import resolve_sdt_place
        path, offset, sem = resolve_sdt_place(body, ctx, log)
        return f"{path}:0x{offset:x}{suffix}" + (f"(0x{sem:x})" if sem and "(" not in suffix
                                                 else "")
    colon = body.rfind(":")
    if colon >= 0 and "/" in body[:colon]:
        path, sym, at = body[:colon], body[colon + 1:], colon + 1
    else:
        if "/" in body:
            raise ProbeError("NOT_A_PROBE", log.command(), _pos(log, 0), errno.EINVAL,
                             "a place is PATH:OFFSET, PATH:SYMBOL[+OFFS] or SYMBOL[+OFFS]",
                             False)
        path, sym, at = ctx.main_program, body, 0
        if path is None:
            raise ProbeError("NO_PROGRAM", log.command(), _pos(log, 0), errno.EINVAL,
                             f"'{body}' alone needs a traced command; write PATH:{body}")
    plus = sym.find("+")
    add = 0
    if plus >= 0:
        v = kstrtoul(sym[plus + 1:])
        if v is None:
            raise ProbeError("BAD_SYMBOL_OFFS", log.command(), _pos(log, at + plus + 1))
        add, sym = v, sym[:plus]
    if not sym:
        raise ProbeError("NO_SYMBOL", log.command(), _pos(log, at), errno.EINVAL,
                         "no symbol name")
    elf = _open(path, ctx, log, at)
    if sym[0].isdigit() and plus < 0:
        v = kstrtoul(sym)
        if v is None:
            raise ProbeError("BAD_UPROBE_OFFS", log.command(), _pos(log, at), logged=False)
        return f"{path}:0x{v:x}{suffix}"
    try:
        start = elf.symbol_offset(sym)
    except LookupError as exc:
        if isinstance(exc, KeyError):
            near = elf.closest(sym)
            detail = (f"no function '{sym}' in {path}"
                      + (f"; closest: {', '.join(near)}" if near else ""))
            raise ProbeError("NO_SYMBOL", log.command(), _pos(log, at), errno.EINVAL,
                             detail) from None
        raise ProbeError("NON_UNIQ_SYMBOL", log.command(), _pos(log, at), errno.EADDRNOTAVAIL,
                         f"{len(elf.find(sym))} functions '{sym}' in {path}",
                         logged=False) from None
    size = next((s.size for s in elf.find(sym) if elf.vaddr_to_offset(s.value) == start), 0)
    if add and size and add >= size:
        raise ProbeError("BAD_SYMBOL_OFFS", log.command(), _pos(log, at + plus + 1),
                         errno.EINVAL, f"'{sym}' is {size} bytes long")
    if add:
        from .insn import is_boundary
        if not is_boundary(elf.read(start, min(size or add + 16, add + 16)), add):
            raise ProbeError("BAD_INSN_BNDRY", log.command(), _pos(log, at + plus + 1),
                             errno.EILSEQ, logged=False)
    return f"{path}:0x{start + add:x}{suffix}"


def data_symbol_foffs(name: str, place: str, ctx, log, index: int) -> str:
    """The ``@+OFFSET`` that reads data symbol ``name[+|-OFFS]`` of the probed file.

    The kernel turns ``@+OFFSET`` into an address as ``probe address - probe offset +
    OFFSET``: the file offset is taken as if the whole file were mapped like the probed
    instruction's segment.  A data symbol lives in another segment (``.data``, ``.bss``), so
    the number written is the symbol's address less the probed segment's
    ``p_vaddr - p_offset`` (which can differ from any real file offset; ``.bss`` has none).
    """
    from .parse import kstrtoul
    colon = place.rfind(":")
    path = place[:colon]
    offs_text = place[colon + 1:].split("%")[0].split("(")[0]
    probe_off = kstrtoul(offs_text)
    sym, sign, extra = name, 1, 0
    for i, c in enumerate(name):
        if c in "+-":
            sym, sign = name[:i], (1 if c == "+" else -1)
            v = kstrtoul(name[i + 1:])
            if v is None:
                raise ProbeError("BAD_SYMBOL_OFFS", log.command(), _pos(log, i + 2, index))
            extra = v
            break
    elf = _open(path, ctx, log, 0)
    syms = elf.find(sym, functions=False) or elf.find(sym)
    if not syms:
        near = elf.closest(sym, functions=False)
        raise ProbeError("NO_DATA_SYMBOL", log.command(), _pos(log, 1, index), errno.ENOENT,
                         f"no symbol '{sym}' in {path}"
                         + (f"; closest: {', '.join(near)}" if near else ""))
    probe_vaddr = elf.offset_to_vaddr(probe_off or 0)
    delta = (probe_vaddr - probe_off) if probe_vaddr is not None else 0
    return f"0x{syms[0].value + sign * extra - delta:x}"
