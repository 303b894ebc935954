"""Event formats: the fields of an event and the ``format`` text the kernel shows for it.

A format describes one event's records: the common header every record starts with, then the
event's own fields at fixed offsets, then (for ``__data_loc``/``__rel_loc`` fields) a dynamic
area whose place each such field gives as a 32-bit word (length << 16 | offset).

The text is the one of ``/sys/kernel/tracing/events/<system>/<event>/format``::

    name: sys_exit_openat
    ID: 781
    format:
    \\tfield:unsigned short common_type;\\toffset:0;\\tsize:2;\\tsigned:0;
    ...
    \\tfield:int common_pid;\\toffset:4;\\tsize:4;\\tsigned:1;
    <blank line>
    \\tfield:int __syscall_nr;\\toffset:8;\\tsize:4;\\tsigned:1;
    \\tfield:long ret;\\toffset:16;\\tsize:8;\\tsigned:1;
    <blank line>
    print fmt: "0x%lx", REC->ret

:meth:`EventFormat.render` writes it byte for byte as the kernel does; :meth:`EventFormat.parse`
reads it back, the kernel's own files included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from functools import cached_property

from ..errors import EXIT_SYNTAX, UsertraceError


class FormatError(UsertraceError, ValueError):
    """A format text that cannot be parsed: the message names the line and column.

    ``text`` is the line the fault is in and ``pos`` the fault's offset in it (``col - 1``);
    ``render()`` shows the line with a caret under the fault.  ``path``, when a caller sets
    it, names the file the text came from.
    """

    exit_status = EXIT_SYNTAX

    def __init__(self, message: str, line: int = 0, col: int = 0, text: str = "",
                 path: str | None = None):
        self.message = message
        self.line = line
        self.col = col
        self.text = text or None
        self.pos = max(col - 1, 0) if text else None
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.col}: " if self.line else ""
        return f"{self.path}: {where}{self.message}" if self.path else f"{where}{self.message}"


_DYN_PREFIXES = ("__data_loc ", "__rel_loc ")


@dataclass(frozen=True)
class Field:
    """One field of an event record.

    ``type`` is the C type as the kernel keeps it: a fixed array keeps its ``[N]`` in the type
    (``char[16]``), a dynamic field its prefix (``__data_loc char[]``); ``name`` is never
    decorated.  What is read from the type is worked out once per field (cached_property:
    decoders ask it at every record).
    """

    type: str
    name: str
    offset: int
    size: int
    signed: bool

    @cached_property
    def is_data_loc(self) -> bool:
        return self.type.startswith("__data_loc")

    @cached_property
    def is_rel_loc(self) -> bool:
        return self.type.startswith("__rel_loc")

    @cached_property
    def is_dynamic(self) -> bool:
        return self.is_data_loc or self.is_rel_loc

    @cached_property
    def base_type(self) -> str:
        """The type without a ``__data_loc``/``__rel_loc`` prefix: ``char[]``, ``u64[]``, ``int``."""
        for prefix in _DYN_PREFIXES:
            if self.type.startswith(prefix):
                return self.type[len(prefix):].strip()
        return self.type

    @cached_property
    def array_len(self) -> int | None:
        """None for a scalar, N for ``type[N]``, 0 for ``type[]`` (dynamic fields included)."""
        t = self.base_type
        i = t.find("[")
        if i < 0:
            return None
        inner = t[i + 1: t.rfind("]")].strip()
        try:
            return int(inner, 0) if inner else 0
        except ValueError:
            return 0  # a length given by a macro name: treat as open

    @cached_property
    def elem_type(self) -> str:
        """The element type of an array (``char`` for ``char[16]``), else the type itself."""
        t = self.base_type
        i = t.find("[")
        return t[:i].rstrip() if i >= 0 else t

    @cached_property
    def elem_size(self) -> int:
        """Bytes of one element: for fixed arrays size/len, for dynamic ones from the type name."""
        n = self.array_len
        if n:
            return max(self.size // n, 1) if not self.is_dynamic else c_type_size(self.elem_type)
        if n == 0:
            return c_type_size(self.elem_type)
        return self.size

    @property
    def is_pointer(self) -> bool:
        return "*" in self.type

    @cached_property
    def is_string(self) -> bool:
        """A char array, fixed or dynamic (not a pointer to char: that is a number)."""
        return self.array_len is not None and self.elem_type in _CHAR_TYPES

    def declaration(self) -> str:
        """The ``type name`` part of a ``field:`` line, as the kernel prints it.

        The kernel's f_show() splits an array type around the name (``char comm[16]``) except
        for ``__data_loc`` types; a ``__rel_loc char[]`` field prints as ``__rel_loc char x[]``.
        """
        if self.is_data_loc:
            return f"{self.type} {self.name}"
        i = self.type.find("[")
        if i < 0:
            return f"{self.type} {self.name}"
        return f"{self.type[:i]} {self.name}{self.type[i:]}"

    def render(self) -> str:
        return (f"\tfield:{self.declaration()};\toffset:{self.offset};"
                f"\tsize:{self.size};\tsigned:{int(self.signed)};\n")


_CHAR_TYPES = frozenset({"char", "unsigned char", "signed char", "const char"})

# Sizes of the C types that user events and probes name (x86_64, LP64).
_C_SIZES = {
    "char": 1, "signed char": 1, "unsigned char": 1, "u8": 1, "s8": 1, "__u8": 1, "__s8": 1,
    "bool": 1, "_Bool": 1,
    "short": 2, "unsigned short": 2, "u16": 2, "s16": 2, "__u16": 2, "__s16": 2,
    "int": 4, "unsigned int": 4, "unsigned": 4, "u32": 4, "s32": 4, "__u32": 4, "__s32": 4,
    "pid_t": 4,
    "long": 8, "unsigned long": 8, "long long": 8, "unsigned long long": 8,
    "u64": 8, "s64": 8, "__u64": 8, "__s64": 8, "size_t": 8, "ssize_t": 8,
}


def c_type_size(ctype: str) -> int:
    """Size in bytes of a C scalar type name on x86_64; pointers are 8; unknown types 1."""
    t = ctype.replace("const ", "").replace("volatile ", "").strip()
    if t.endswith("*"):
        return 8
    return _C_SIZES.get(t, 1)


def c_int(value: int, size: int, signed: bool) -> int:
    """``value`` as a C integer of ``size`` bytes holds it (a store or a cast): the low
    ``size`` bytes, read as two's complement when ``signed``.  ``c_int(-1, 2, False) == 0xffff``,
    ``c_int(0xfff0, 1, True) == -16``."""
    bits = size * 8
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


COMMON_FIELDS: tuple[Field, ...] = (
    Field("unsigned short", "common_type", 0, 2, False),
    Field("unsigned char", "common_flags", 2, 1, False),
    Field("unsigned char", "common_preempt_count", 3, 1, False),
    Field("int", "common_pid", 4, 4, True),
)
COMMON_SIZE = 8


@dataclass
class EventFormat:
    """The format of one event: its identity, fields and print fmt."""

    system: str
    name: str
    id: int
    fields: list[Field]
    print_fmt: str
    common_fields: tuple[Field, ...] = dc_field(default=COMMON_FIELDS)

    @property
    def full_name(self) -> str:
        return f"{self.system}:{self.name}"

    def all_fields(self) -> list[Field]:
        return [*self.common_fields, *self.fields]

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.all_fields()}

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @property
    def fixed_size(self) -> int:
        """Bytes of the fixed part of a record: the end of the last field."""
        return max((f.offset + f.size for f in self.all_fields()), default=0)

    def render(self) -> str:
        """The ``format`` file text, byte for byte as the kernel prints it."""
        out = [f"name: {self.name}\n", f"ID: {self.id}\n", "format:\n"]
        out += [f.render() for f in self.common_fields]
        out.append("\n")
        out += [f.render() for f in self.fields]
        out.append(f"\nprint fmt: {self.print_fmt}\n")
        return "".join(out)

    @classmethod
    def parse(cls, text: str, system: str = "") -> "EventFormat":
        """Parse a ``format`` text (ours or the kernel's); raise FormatError on a fault."""
        return _parse(text, system)


MAX_FORMAT_TEXT = 1 << 20       # a kernel's format files are a few KB
READ_TIMEOUT = 5.0              # seconds a pipe may take to deliver a format


def read_format_text(path, limit: int = MAX_FORMAT_TEXT, timeout: float = READ_TIMEOUT) -> str:
    """The text of a format file, read within bounds: at most ``limit`` bytes (``/dev/zero``
    is refused, not read to exhaustion), and from a pipe or FIFO only what comes within
    ``timeout`` seconds (a FIFO with no writer reads as empty, never hangs).  Raises
    FormatError naming the file."""
    import os
    import select
    import stat
    import time

    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise FormatError(f"{name}: cannot read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FormatError(f"{name}: is a directory, not a format file")
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + timeout
        while size <= limit:
            try:
                chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise FormatError(f"{name}: nothing to read within {timeout:g} s") from None
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FormatError(f"{name}: larger than {limit} bytes: not a format file")
        if not size:
            raise FormatError(f"{name}: empty{' (a FIFO with no writer?)' if stat.S_ISFIFO(mode) else ''}, "
                              f"not a format file")
    except OSError as exc:
        raise FormatError(f"{name}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{name}: not a format file (not text: byte {exc.start} is not "
                          f"UTF-8)") from None


# -- parsing ----------------------------------------------------------------------------------

_FIELD_RE = re.compile(
    r"\tfield:(?P<decl>[^;]*);\toffset:(?P<offset>\d+);\tsize:(?P<size>\d+);"
    r"\tsigned:(?P<signed>[01]);$"
)
_IDENT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"

# A type: brackets only at its end, one pair (``__data_loc char[]``) or two (a probe's
# string array, ``__data_loc char[][3]``); linear to match.
_TYPE_RE = re.compile(r"[^\[\]]*(?:\[[^\[\]]*\]){0,2}\Z")

# A record lives on one ring-buffer page: no field of a sane format reaches past this.
MAX_RECORD_SIZE = 1 << 20


def _split_decl(decl: str) -> tuple[str, str] | None:
    """(type, name) of a field declaration ``TYPE NAME`` or ``TYPE NAME[N]`` (the array
    suffix kept on the type), or None.  In linear time: the name is the identifier that
    ends the declaration, found with one ``rstrip`` (a backtracking regex is quadratic on a
    long declaration that does not fit)."""
    d = decl.strip()
    arr = ""
    if d.endswith("]"):
        i = d.rfind("[")
        if i < 0 or "]" in d[i:-1]:
            return None
        arr, d = d[i:], d[:i].rstrip()
    head = d.rstrip(_IDENT_CHARS)
    name = d[len(head):].lstrip("0123456789")
    ctype = d[:len(d) - len(name)].strip()
    if not name or not ctype or not _TYPE_RE.match(ctype):
        return None
    return ctype + arr, name


def parse_field_line(line: str, lineno: int = 0) -> Field:
    """Parse one ``\\tfield:TYPE NAME;\\toffset:N;\\tsize:N;\\tsigned:B;`` line."""
    m = _FIELD_RE.match(line)
    if not m:
        col = _first_mismatch(line)
        raise FormatError("malformed field line (expected "
                          "'\\tfield:TYPE NAME;\\toffset:N;\\tsize:N;\\tsigned:0|1;')",
                          lineno, col, line)
    decl = m["decl"].strip()
    split = _split_decl(decl)
    if split is None:
        shown = decl if len(decl) <= 60 else decl[:60] + "..."
        raise FormatError(f"field declaration {shown!r} has no type and name", lineno,
                          line.find(":") + 2, line)
    ctype, name = split
    for key in ("offset", "size"):
        digits = m[key]
        if len(digits) > 7 or int(digits) > MAX_RECORD_SIZE:
            raise FormatError(f"{key} {digits[:24]}{'...' if len(digits) > 24 else ''} is "
                              f"larger than a record can be ({MAX_RECORD_SIZE} bytes)",
                              lineno, m.start(key) + 1, line)
    offset, size = int(m["offset"]), int(m["size"])
    if offset + size > MAX_RECORD_SIZE:
        raise FormatError(f"the field ends at byte {offset + size}, past the largest record "
                          f"({MAX_RECORD_SIZE} bytes)", lineno, m.start("offset") + 1, line)
    return Field(ctype, name, offset, size, m["signed"] == "1")


def _first_mismatch(line: str) -> int:
    """1-based column where a field line stops looking like one (for the caret)."""
    expected = ("\tfield:", ";\toffset:", ";\tsize:", ";\tsigned:")
    pos = 0
    for k, token in enumerate(expected):
        start = pos if k == 0 else line.find(";", pos)
        if start < 0:
            return len(line) + 1
        for j, ch in enumerate(token):
            if start + j >= len(line) or line[start + j] != ch:
                return start + j + 1
        pos = start + len(token)
        while pos < len(line) and line[pos] != ";":
            if k > 0 and not line[pos].isdigit():
                return pos + 1
            pos += 1
    return pos + 1


def _parse(text: str, system: str) -> EventFormat:
    lines = text.split("\n")
    n = len(lines)
    i = 0

    def expect(prefix: str) -> str:
        nonlocal i
        if i >= n or not lines[i].startswith(prefix):
            got = lines[i] if i < n else ""
            raise FormatError(f"expected '{prefix.strip()}'", i + 1, 1, got)
        value = lines[i][len(prefix):]
        i += 1
        return value

    name = expect("name: ").strip()
    if not name:
        raise FormatError("empty event name", 1, 7, lines[0])
    id_text = expect("ID: ").strip()
    try:
        event_id = int(id_text)
    except ValueError:
        raise FormatError(f"ID {id_text!r} is not a number", i, 5, lines[i - 1]) from None
    expect("format:")

    groups: list[list[Field]] = [[]]
    print_fmt = None
    while i < n:
        line = lines[i]
        if line.startswith("\tfield:"):
            groups[-1].append(parse_field_line(line, i + 1))
        elif line == "":
            if groups[-1]:
                groups.append([])
        elif line.startswith("print fmt: "):
            # The print fmt runs to the end: a kernel string may hold raw newlines.
            rest = "\n".join(lines[i:])[len("print fmt: "):]
            print_fmt = rest[:-1] if rest.endswith("\n") else rest
            i = n
            break
        else:
            raise FormatError("expected a field line, a blank line or 'print fmt:'", i + 1, 1, line)
        i += 1
    if print_fmt is None:
        last = text.rstrip("\n").split("\n")
        raise FormatError("missing 'print fmt:' line", len(last), 1, last[-1])
    groups = [g for g in groups if g]
    if not groups:
        common, own = (), []
    elif groups[0] and groups[0][0].name.startswith("common_"):
        common, own = tuple(groups[0]), [f for g in groups[1:] for f in g]
    else:
        common, own = (), [f for g in groups for f in g]
    _check_layout(common, own, name)
    return EventFormat(system, name, event_id, own, print_fmt, common)


def _loc_words(f: Field) -> int:
    """The 4-byte words of a dynamic field: one, or N for an array of them (a probe's
    string array, ``__data_loc char[][N]``)."""
    t = f.base_type
    if t.endswith("]") and "[][" in t:
        try:
            return int(t[t.rindex("[") + 1:-1])
        except ValueError:
            return 1
    return 1


def _check_layout(common: tuple[Field, ...], own: list[Field], name: str) -> None:
    seen: set[str] = set()
    for f in (*common, *own):
        if f.name in seen:
            raise FormatError(f"event {name}: field {f.name!r} defined twice")
        seen.add(f.name)
        if f.is_dynamic and f.size != 4 * _loc_words(f):
            raise FormatError(f"event {name}: dynamic field {f.name!r} has size {f.size}, "
                              f"not {4 * _loc_words(f)}")
