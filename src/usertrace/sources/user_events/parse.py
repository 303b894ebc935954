"""User event definitions in the kernel's syntax, their error catalog and their formats.

A definition is ``name[:FLAGS] [field[;field...]]`` and a field is ``type name [size]``
(``Documentation/trace/user_events.rst``), parsed the way ``user_event_parse_cmd()`` and
``user_event_parse_field()`` in ``kernel/trace/trace_events_user.c`` parse it::

    app_req u32 status; __data_loc char[] path
    ^^^^^^^ name                                   (up to the first space)
            ^^^^^^^^^^ a field: type and name      (fields split on ';', leading blanks skipped)
                        ^^^^^^^^^^^^^^^^^^^^^^^^^ "__data_loc", "__rel_loc", "unsigned" and
                                                  "struct" types are two words (three with
                                                  "__data_loc unsigned char[]")

Fields are packed one after the other from offset 8, right after the common fields, with no
alignment; a ``__data_loc``/``__rel_loc`` field is a 4-byte word ``size << 16 | offset``.
The kernel answers a bad definition with a bare -EINVAL; here every fault has a code, the
kernel's errno, a message and the position of the fault (``UserEventError.render()`` shows
the definition with a caret under it, as the kernel's ``error_log`` does).

Where this parser is stricter than the kernel it says so in the catalog: event and field names
must be C identifiers, field names unique, a ``__data_loc``/``__rel_loc`` type an array of a
known element type, an array length followed by nothing but ``]``.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass

from usertrace.errors import EXIT_ERROR, EXIT_SYNTAX, UsertraceError, caret
from usertrace.events.format import EventFormat, Field

from . import abi

# -- the error catalog -------------------------------------------------------------------------
# code: (errno, message).  Parse errors are -EINVAL in the kernel; the others are the errno the
# kernel returns for the same condition.
ERRORS: dict[str, tuple[int, str]] = {
    "TOO_LONG": (_errno.EINVAL, f"Definition is longer than {abi.MAX_EVENT_DESC - 1} bytes"),
    "NO_NAME": (_errno.EINVAL, "Event name is missing"),
    "BAD_NAME": (_errno.EINVAL, "Event name must be a C identifier"),            # stricter
    "EMPTY_FLAG": (_errno.EINVAL, "Empty flag"),
    "BAD_FLAG": (_errno.EINVAL, "Unknown flag (known: persist, multi_format)"),
    "EXTRA_SPACE": (_errno.EINVAL, "Extra space: the words of a field are one space apart"),
    "NO_FIELD_NAME": (_errno.EINVAL, "Field name is missing"),
    "BAD_FIELD_NAME": (_errno.EINVAL, "Field name must be a C identifier"),     # stricter
    "DUP_FIELD": (_errno.EINVAL, "Duplicate field name"),                       # stricter
    "BAD_TYPE": (_errno.EINVAL, "Unknown field type"),
    "BAD_DYN_TYPE": (_errno.EINVAL,
                     "A __data_loc/__rel_loc type must be an array TYPE[] of a known type"),
    "BAD_ARRAY_LEN": (_errno.EINVAL,
                      f"Invalid array length (1 to {abi.MAX_FIELD_ARRAY_SIZE})"),
    "SIZE_NOT_STRUCT": (_errno.EINVAL, "Only a struct field takes a size"),
    "NO_STRUCT_SIZE": (_errno.EINVAL, "A struct field needs its size"),
    "BAD_STRUCT_SIZE": (_errno.EINVAL, "Invalid struct size"),
    "TOO_MANY_WORDS": (_errno.EINVAL, "Too many words in field"),
    "TOO_BIG": (_errno.EINVAL, f"Fields exceed the largest payload ({abi.MAX_PAYLOAD} bytes)"),
    "BAD_COMMAND": (_errno.EINVAL, "Unknown command (expected u:DEFINITION or -:NAME)"),
    "BAD_SYSTEM": (_errno.EINVAL, "Unknown system (expected user_events or user_events_multi)"),
    # registry and session faults
    "NAME_IN_USE": (_errno.EADDRINUSE, "Event name is registered with other fields"),
    "NOT_FOUND": (_errno.ENOENT, "No such event"),
    "BUSY": (_errno.EBUSY, "Event is busy (held by a process or enabled by a tracer)"),
    "NO_INDEX": (_errno.EMFILE, f"No free event index (at most {abi.MAX_EVENTS - 1} events)"),
    "BAD_SESSION": (_errno.EPERM, "Unsafe session"),
    "NO_SESSION": (_errno.EACCES, "Cannot use the session directory"),
    "SESSION_BUSY": (_errno.EBUSY, "Another tracer is attached to this session"),
    "BAD_VALUE": (_errno.EINVAL, "Bad field value"),
    "BAD_PATTERN": (_errno.EINVAL, "Bad event pattern"),
    "TOO_MANY_PATTERNS": (_errno.ENOSPC, f"Too many enabled patterns (at most {abi.MAX_PATTERNS})"),
}


# The codes of a definition or pattern that does not parse (the rest are refusals of the
# registry, a session or an emit).
SYNTAX_ERRORS = frozenset(("TOO_LONG", "NO_NAME", "BAD_NAME", "EMPTY_FLAG", "BAD_FLAG",
                           "EXTRA_SPACE", "NO_FIELD_NAME", "BAD_FIELD_NAME", "DUP_FIELD",
                           "BAD_TYPE", "BAD_DYN_TYPE", "BAD_ARRAY_LEN", "SIZE_NOT_STRUCT",
                           "NO_STRUCT_SIZE", "BAD_STRUCT_SIZE", "TOO_MANY_WORDS", "TOO_BIG",
                           "BAD_COMMAND", "BAD_SYSTEM", "BAD_PATTERN"))


class UserEventError(UsertraceError):
    """A refused definition, registration, delete or emit: code, errno, message, position."""

    def __init__(self, code: str, detail: str = "", pos: int | None = None,
                 text: str | None = None):
        self.code = code
        self.errno, self.message = ERRORS[code]
        self.detail = detail
        self.pos = pos
        self.text = text
        where = f" at position {pos}" if pos is not None and text is not None else ""
        extra = f": {detail}" if detail else ""
        super().__init__(f"{self.message}{extra}{where} [{code}]")

    @property
    def exit_status(self) -> int:
        return EXIT_SYNTAX if self.code in SYNTAX_ERRORS else EXIT_ERROR

    def render(self) -> str:
        """The kernel's ``error_log`` form: the message, the command, a caret under the fault."""
        out = f"user_events: error: {self.message}" + (f": {self.detail}" if self.detail else "")
        if self.text is None:
            return out
        return f"{out}\n  Command: {self.text}\n           {caret(self.text, self.pos or 0)}"


# -- types -------------------------------------------------------------------------------------
# type: (size, struct code, print format) -- user_field_size() and user_field_format().
SCALAR_TYPES: dict[str, tuple[int, str, str]] = {
    "s64": (8, "q", "%lld"), "u64": (8, "Q", "%llu"),
    "s32": (4, "i", "%d"), "u32": (4, "I", "%u"),
    "int": (4, "i", "%d"), "unsigned int": (4, "I", "%u"),
    "s16": (2, "h", "%d"), "u16": (2, "H", "%u"),
    "short": (2, "h", "%d"), "unsigned short": (2, "H", "%u"),
    "s8": (1, "b", "%d"), "u8": (1, "B", "%u"),
    "char": (1, "b", "%d"), "unsigned char": (1, "B", "%u"),
}
CHAR_TYPES = ("char", "unsigned char")

# Field kinds, for the writers and the validator.
K_INT, K_CHARS, K_STRUCT, K_DYN_STR, K_DYN_ARRAY = "int", "chars", "struct", "dyn_str", "dyn_array"

_SPACE = " \t\n\v\f\r"
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class FieldDef:
    """One field of a user event, with its place in the kernel record and in the definition."""

    type: str          # as the kernel keeps it: "u32", "char[20]", "__data_loc char[]", "struct x"
    name: str
    offset: int        # in the kernel record (the payload starts at offset 8)
    size: int
    kind: str          # K_INT, K_CHARS, K_STRUCT, K_DYN_STR, K_DYN_ARRAY
    code: str          # struct code of the fixed part: "I", "20s", ...
    elem_code: str = ""  # K_DYN_ARRAY: struct code of one element
    pos: int = 0       # where the field starts in the definition

    @property
    def signed(self) -> bool:
        return not self.type.startswith("u")      # the kernel's rule: type[0] != 'u'

    @property
    def is_rel_loc(self) -> bool:
        return self.type.startswith("__rel_loc ")

    @property
    def is_dynamic(self) -> bool:
        return self.kind in (K_DYN_STR, K_DYN_ARRAY)

    def declaration(self) -> str:
        """``type name [size]`` as the kernel's dynamic_events shows it."""
        if self.kind == K_STRUCT:
            return f"{self.type} {self.name} {self.size}"
        return f"{self.type} {self.name}"

    def print_arg(self) -> tuple[str, str]:
        """(conversion, argument) of this field in the print fmt (user_event_set_print_fmt)."""
        if self.type in SCALAR_TYPES:
            conv = SCALAR_TYPES[self.type][2]
        elif "char[" in self.type:
            conv = "%s"
        else:
            conv = "%llu"      # structs and non-char dynamic arrays: "treat as 64-bit"
        if self.kind == K_DYN_STR:
            func = "__get_rel_str" if self.is_rel_loc else "__get_str"
            return conv, f"{func}({self.name})"
        return conv, f"REC->{self.name}"

    def to_field(self) -> Field:
        return Field(self.type, self.name, self.offset, self.size, self.signed)


@dataclass(frozen=True)
class Definition:
    """A parsed user event definition."""

    name: str
    flags: int
    fields: tuple[FieldDef, ...]
    text: str = ""

    @property
    def canonical(self) -> str:
        """The definition as the registry keeps it and dynamic_events shows it (no flags)."""
        if not self.fields:
            return self.name
        return self.name + " " + "; ".join(f.declaration() for f in self.fields)

    @property
    def min_size(self) -> int:
        """Bytes of payload every write must have: the fixed part of the record past offset 8."""
        return sum(f.size for f in self.fields)

    @property
    def persist(self) -> bool:
        return bool(self.flags & abi.USER_EVENT_REG_PERSIST)

    @property
    def multi_format(self) -> bool:
        return bool(self.flags & abi.USER_EVENT_REG_MULTI_FORMAT)

    def tracepoint_name(self, multi_id: int = 0) -> str:
        """The event's name under its system: ``name``, or ``name.<hex id>`` if multi-format."""
        return f"{self.name}.{multi_id:x}" if self.multi_format else self.name

    @property
    def system(self) -> str:
        return abi.USER_EVENTS_MULTI_SYSTEM if self.multi_format else abi.USER_EVENTS_SYSTEM

    def print_fmt(self) -> str:
        """The print fmt the kernel generates: ``"a=%u msg=%s", REC->a, __get_str(msg)``."""
        convs, args = zip(*(f.print_arg() for f in self.fields)) if self.fields else ((), ())
        text = '"' + " ".join(f"{f.name}={c}" for f, c in zip(self.fields, convs)) + '"'
        return text + "".join(f", {a}" for a in args)

    def event_format(self, event_id: int, multi_id: int = 0) -> EventFormat:
        return EventFormat(self.system, self.tracepoint_name(multi_id), event_id,
                           [f.to_field() for f in self.fields], self.print_fmt())

    def same_fields(self, other: "Definition") -> bool:
        return self.canonical == other.canonical


# -- parsing -----------------------------------------------------------------------------------
def _is_ident(s: str) -> bool:
    return bool(s) and (s[0].isascii() and (s[0].isalpha() or s[0] == "_")) and all(
        c.isascii() and (c.isalnum() or c == "_") for c in s)


def _bad_ident_pos(s: str) -> int:
    for i, c in enumerate(s):
        if not (c.isascii() and (c.isalnum() or c == "_")) or (i == 0 and c.isdigit()):
            return i
    return 0


def _kstrtouint(s: str) -> int | None:
    """kstrtouint(s, 0): 0x for hex, a leading 0 for octal, else decimal; None if invalid."""
    if s.startswith("+"):
        s = s[1:]
    try:
        if s[:2].lower() == "0x":
            digits = s[2:]
            return int(digits, 16) if digits and all(c in _HEX for c in digits) else None
        if s.startswith("0") and len(s) > 1:
            return int(s[1:], 8) if all(c in "01234567" for c in s[1:]) else None
        return int(s) if s.isdigit() and s.isascii() else None
    except ValueError:
        return None


def parse_definition(text: str, flags: int = 0) -> Definition:
    """Parse ``name[:FLAGS] [field[;field...]]``; raise UserEventError naming the fault.

    ``flags`` are USER_EVENT_REG_* bits given beside the text (the kernel's ``user_reg.flags``);
    the text may name the same flags as ``:persist`` and ``:multi_format``.
    """
    if text.endswith("\n"):
        text = text[:-1]
    if len(text.encode("utf-8", "surrogatepass")) >= abi.MAX_EVENT_DESC:
        raise UserEventError("TOO_LONG", f"{len(text.encode())} bytes", abi.MAX_EVENT_DESC - 1,
                             text)
    if flags & ~(abi.USER_EVENT_REG_MAX - 1):
        raise UserEventError("BAD_FLAG", f"flags 0x{flags:x}")
    sp = text.find(" ")
    head, args = (text, None) if sp < 0 else (text[:sp], text[sp + 1:])
    colon = head.find(":")
    name = head if colon < 0 else head[:colon]
    if not name:
        raise UserEventError("NO_NAME", "", 0, text)
    if not _is_ident(name):
        raise UserEventError("BAD_NAME", repr(name), _bad_ident_pos(name), text)
    if colon >= 0:
        flags |= _parse_flags(text, colon + 1, head[colon + 1:])
    fields: list[FieldDef] = []
    if args is not None:
        start = sp + 1
        offset = abi.COMMON_SIZE
        seen = {"common_type", "common_flags", "common_preempt_count", "common_pid"}
        for part in args.split(";"):
            fd = _parse_field(text, start, part, offset)
            if fd is not None:
                if fd.name in seen:
                    raise UserEventError("DUP_FIELD", fd.name, _name_pos(text, fd), text)
                seen.add(fd.name)
                if fd.offset + fd.size - abi.COMMON_SIZE > abi.MAX_PAYLOAD:
                    size = fd.offset + fd.size - abi.COMMON_SIZE
                    raise UserEventError("TOO_BIG", f"{size} bytes", fd.pos, text)
                fields.append(fd)
                offset += fd.size
            start += len(part) + 1
    return Definition(name, flags, tuple(fields), text)


def _name_pos(text: str, fd: FieldDef) -> int:
    i = text.find(" " + fd.name, fd.pos + len(fd.type))
    return i + 1 if i >= 0 else fd.pos


def _parse_flags(text: str, base: int, flagtext: str) -> int:
    flags = 0
    pos = base
    for word in flagtext.split(","):
        if not word:
            raise UserEventError("EMPTY_FLAG", "", pos, text)
        bit = abi.FLAG_NAMES.get(word)
        if bit is None:
            raise UserEventError("BAD_FLAG", repr(word), pos, text)
        flags |= bit
        pos += len(word) + 1
    return flags


def _parse_field(text: str, base: int, part: str, offset: int) -> FieldDef | None:
    """One ``type name [size]``; None for an empty field (the kernel skips those)."""
    i = 0
    while i < len(part) and part[i] in _SPACE:
        i += 1
    if i == len(part):
        return None
    body = part[i:]
    start = base + i
    words: list[tuple[str, int]] = []      # (word, position in text)
    p = start
    for w in body.split(" "):
        words.append((w, p))
        p += len(w) + 1
    for w, wp in words:
        if w == "":
            raise UserEventError("EXTRA_SPACE", "", max(wp - 1, start), text)
    first = words[0][0]
    ntype = 1
    if first in ("unsigned", "struct"):
        ntype = 2
    elif first in ("__data_loc", "__rel_loc"):
        ntype = 3 if len(words) > 1 and words[1][0] == "unsigned" else 2
    if len(words) <= ntype:
        raise UserEventError("NO_FIELD_NAME", "", start + len(body), text)
    ftype = " ".join(w for w, _ in words[:ntype])
    name, name_pos = words[ntype]
    rest = words[ntype + 1:]
    is_struct = first == "struct"
    if rest and not is_struct:
        raise UserEventError("SIZE_NOT_STRUCT", repr(rest[0][0]), rest[0][1], text)
    if len(rest) > 1:
        raise UserEventError("TOO_MANY_WORDS", repr(rest[1][0]), rest[1][1], text)
    if not _is_ident(name):
        raise UserEventError("BAD_FIELD_NAME", repr(name), name_pos + _bad_ident_pos(name), text)
    if is_struct:
        sname = words[1][0]
        if not _is_ident(sname):
            raise UserEventError("BAD_TYPE", repr(ftype), words[1][1], text)
        if not rest:
            raise UserEventError("NO_STRUCT_SIZE", "", start + len(body), text)
        size_text, size_pos = rest[0]
        size = int(size_text) if size_text.isascii() and size_text.isdigit() else None
        if not size or size > abi.MAX_PAYLOAD:
            raise UserEventError("BAD_STRUCT_SIZE", repr(size_text), size_pos, text)
        return FieldDef(ftype, name, offset, size, K_STRUCT, f"{size}s", pos=start)
    if ftype in SCALAR_TYPES:
        size, code, _ = SCALAR_TYPES[ftype]
        return FieldDef(ftype, name, offset, size, K_INT, code, pos=start)
    if first in ("__data_loc", "__rel_loc"):
        base_type = ftype.split(" ", 1)[1]
        elem = base_type[:-2] if base_type.endswith("[]") else None
        if elem not in SCALAR_TYPES:
            raise UserEventError("BAD_DYN_TYPE", repr(base_type), words[1][1], text)
        kind = K_DYN_STR if "char" in base_type else K_DYN_ARRAY
        return FieldDef(ftype, name, offset, 4, kind, "I", SCALAR_TYPES[elem][1], pos=start)
    for prefix in ("char[", "unsigned char["):
        if ftype.startswith(prefix):
            return _char_array(text, start, ftype, name, offset, prefix)
    raise UserEventError("BAD_TYPE", repr(ftype), start, text)


def _char_array(text: str, start: int, ftype: str, name: str, offset: int, prefix: str) -> FieldDef:
    after = ftype[len(prefix):]
    close = after.find("]")
    len_pos = start + len(prefix)
    # user_field_array_size(): at most 7 characters after '[' are looked at.
    if close < 0 or len(after) >= 8:
        raise UserEventError("BAD_ARRAY_LEN", repr(ftype), len_pos, text)
    if close != len(after) - 1:
        raise UserEventError("BAD_TYPE", repr(ftype), len_pos + close + 1, text)
    n = _kstrtouint(after[:close])
    if not n or n > abi.MAX_FIELD_ARRAY_SIZE:
        raise UserEventError("BAD_ARRAY_LEN", repr(after[:close]), len_pos, text)
    return FieldDef(ftype, name, offset, n, K_CHARS, f"{n}s", pos=start)


# -- dynamic_events commands -------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """A line written to dynamic_events: ``u:DEFINITION`` (add) or ``-:[SYSTEM/]NAME`` (delete)."""

    op: str                      # "add" or "delete"
    definition: Definition | None = None
    name: str = ""               # delete: the event name (a multi-format name may carry .<hex>)
    system: str | None = None    # delete: the system given, if any
    fields: str | None = None    # delete: fields to match, if given


def parse_commands(text: str) -> list[Command]:
    """Parse the lines of a dynamic_events write; '#' starts a comment, blank lines are skipped."""
    out = []
    for raw in text.split("\n"):
        line = raw.split("#", 1)[0].strip(_SPACE)
        if line:
            out.append(parse_command(line))
    return out


def parse_command(line: str) -> Command:
    if line.startswith(abi.USER_EVENTS_PREFIX):
        body = line[len(abi.USER_EVENTS_PREFIX):].lstrip(_SPACE)
        skipped = len(line) - len(body)
        try:
            # Dynamic events persist, as in the kernel's user_event_create().
            return Command("add", parse_definition(body, abi.USER_EVENT_REG_PERSIST))
        except UserEventError as exc:
            pos = None if exc.pos is None else exc.pos + skipped
            raise UserEventError(exc.code, exc.detail, pos, line) from None
    if line.startswith("-:"):
        body = line[2:]
        sp = body.find(" ")
        if sp < 0:
            target, fields = body, None
        else:
            target, fields = body[:sp], body[sp + 1:].strip(_SPACE) or None
        system = None
        if "/" in target:
            system, target = target.split("/", 1)
            if system not in (abi.USER_EVENTS_SYSTEM, abi.USER_EVENTS_MULTI_SYSTEM):
                raise UserEventError("BAD_SYSTEM", repr(system), 2, line)
        if not target:
            raise UserEventError("NO_NAME", "", len(line), line)
        base = target.split(".", 1)[0] if system != abi.USER_EVENTS_SYSTEM else target
        if not _is_ident(base):
            raise UserEventError("BAD_NAME", repr(target), line.find(target), line)
        return Command("delete", name=target, system=system, fields=fields)
    raise UserEventError("BAD_COMMAND", "", 0, line)


def normalize_fields(fields: str) -> str:
    """Fields text in canonical spacing (``a; b``), for matching a delete against an event."""
    return "; ".join(p.strip(_SPACE) for p in fields.split(";") if p.strip(_SPACE))
