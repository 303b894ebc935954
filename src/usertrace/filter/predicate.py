"""One predicate of a filter (``field op value``), parsed and type-checked as ``parse_pred``.

The kernel checks a predicate while it reads it, so the order of its checks decides which
error a bad predicate gets: the field name first (``Field not found``), then the operator,
then the value, whose first character says what it is (a quote: a string; a digit or '-': a
number; ``CPUS{``: a cpulist; anything else: ``Invalid value (did you forget quotes)?``), and
only then whether that kind of value suits the field and the operator.

Fields are found as the kernel finds them: the event's own fields, then the generic fields
(``CPU``/``cpu``/``common_cpu``: the CPU the event happened on; ``COMM``/``comm``: the task's
name; ``stacktrace``), then the common fields.  What kind of value a field takes follows from
its C type (``filter_assign_type``): ``__data_loc``/``__rel_loc`` char arrays and fixed char
arrays are strings, so are ``char *`` and ``const char *`` (pointers the kernel dereferences),
everything else is a number.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from ..events.format import EventFormat, Field
from .errors import FilterError
from .lexer import (MAX_FILTER_STR_VAL, NUM_BUF_SIZE, CpulistError, isdigit, isspace,
                    kstrtoll, kstrtoull, match_op, parse_cpulist, scan_alnum, scan_name, skip_space)

# Filter types (the kernel's FILTER_*), decided from the field's C type.
OTHER = "other"                  # a number
STATIC_STRING = "static_string"  # char name[N]
DYN_STRING = "dyn_string"        # __data_loc char[] name
RDYN_STRING = "rdyn_string"      # __rel_loc char[] name
PTR_STRING = "ptr_string"        # char * / const char *
COMM = "comm"                    # generic: the current task's name
CPU = "cpu"                      # generic: the current CPU
STACKTRACE = "stacktrace"        # generic: never matches a number
CPUMASK = "cpumask"              # __data_loc cpumask_t

STRING_KINDS = frozenset({STATIC_STRING, DYN_STRING, RDYN_STRING, PTR_STRING, COMM})

TASK_COMM_LEN = 16


def filter_type(ctype: str) -> str:
    """The kernel's ``filter_assign_type`` on a field's C type."""
    if "__data_loc" in ctype:
        if "char" in ctype:
            return DYN_STRING
        if "cpumask_t" in ctype:
            return CPUMASK
    if "__rel_loc" in ctype and "char" in ctype:
        return RDYN_STRING
    if "[" in ctype and "char" in ctype:
        return STATIC_STRING
    if ctype in ("char *", "const char *"):
        return PTR_STRING
    return OTHER


@dataclass(frozen=True)
class FieldRef:
    """A field as the filter sees it: its name, filter type, size, signedness, and the key of
    the decoded record that holds its value."""

    name: str
    kind: str
    size: int
    signed: bool
    key: str
    field: Field | None = None    # None for the generic fields

    @property
    def is_generic(self) -> bool:
        return self.field is None


_GENERIC = {
    "CPU": (CPU, True), "cpu": (CPU, True), "common_cpu": (CPU, True),
    "COMM": (COMM, False), "comm": (COMM, False),
    "stacktrace": (STACKTRACE, False), "STACKTRACE": (STACKTRACE, False),
}

# The record keys under which the caller supplies the generic values (core API convention),
# and the fallbacks used when the event has a field of that name itself.
COMM_KEYS = ("comm", "COMM")
CPU_KEYS = ("cpu", "CPU")


class FieldResolver:
    """Finds filter fields of one event format, in the kernel's order."""

    def __init__(self, fmt: EventFormat):
        self.format = fmt
        own = {f.name: f for f in fmt.fields}
        common = {f.name: f for f in fmt.common_fields}
        self._own = own
        self._common = common
        taken = set(own) | set(common)
        self.comm_key = next((k for k in COMM_KEYS if k not in taken), "COMM")
        self.cpu_key = next((k for k in CPU_KEYS if k not in taken), "CPU")

    def find(self, name: str) -> FieldRef | None:
        f = self._own.get(name)
        if f is None and name in _GENERIC:
            kind, signed = _GENERIC[name]
            key = {COMM: self.comm_key, CPU: self.cpu_key}.get(kind, name)
            return FieldRef(name, kind, 0, signed, key)
        if f is None:
            f = self._common.get(name)
        if f is None:
            return None
        return FieldRef(name, filter_type(f.type), f.size, bool(f.signed), name, f)


# How a string predicate compares (the kernel's regex types).
FULL, FRONT, MIDDLE, END, GLOB = "full", "front", "middle", "end", "glob"


@dataclass(frozen=True)
class Predicate:
    """``field op value`` as parsed.

    ``value`` is an int (the kernel's u64 bits of the number as written), a str (a string
    pattern, in kernel bytes: one char per byte) or a frozenset of CPUs (``CPUS{...}``).
    For strings, ``match`` is the comparison (full, front, middle, end, glob) and ``pattern``
    what it compares with (after the glob's '*' and '!' are taken off); ``negate`` is the
    kernel's ``pred->not``.
    """

    ref: FieldRef
    op: str
    value: int | str | frozenset
    start: int
    end: int
    match: str = ""
    pattern: str = ""
    negate: bool = False
    ustring: bool = False

    @property
    def is_cpulist(self) -> bool:
        return isinstance(self.value, frozenset)


class NoFieldName(Exception):
    """parse_pred found no field name: the kernel fails the write with -1 and no message."""


def parse_pred(s: str, start: int, resolver: FieldResolver, text: str,
               nr_cpus: int) -> Predicate:
    """Parse the predicate that begins at ``s[start]``; the result's ``end`` is where the
    kernel's walk goes on.  Errors carry the kernel's positions: inside a predicate, one past
    the byte at fault (``parse_pred`` gets its position one byte late)."""

    def fail(code: str, at: int, err: int = errno.EINVAL) -> FilterError:
        return FilterError(code, at + 1, text, err)

    i = skip_space(s, start)
    name_start = i
    i = scan_name(s, i)
    if i == name_start:
        raise NoFieldName(name_start)
    name = s[name_start:i]
    ref = resolver.find(name)
    if ref is None:
        raise fail("FIELD_NOT_FOUND", i)
    ustring = s.startswith(".ustring", i)
    if ustring:
        i += len(".ustring")
    function = s.startswith(".function", i)
    if function:
        i += len(".function")
    i = skip_space(s, i)
    op = match_op(s, i)
    if op is None:
        raise fail("INVALID_OP", i)
    i = skip_space(s, i + len(op))
    vstart = i

    if function:
        _check_function(s, i, ref, op, fail)
    if s.startswith("CPUS", i):
        return _parse_cpus(s, start, i, ref, op, fail, nr_cpus)
    c = s[i] if i < len(s) else ""
    if c in ("'", '"'):
        negate = op == "!="
        if op not in ("!=", "~", "=="):
            raise fail("ILLEGAL_FIELD_OP", i)
        if ref.kind not in STRING_KINDS:
            raise fail("EXPECT_DIGIT", i)
        close = s.find(c, i + 1)
        if close < 0:
            raise fail("MISSING_QUOTE", len(s), errno.EINVAL)
        raw = s[vstart + 1:close]
        if len(raw) >= MAX_FILTER_STR_VAL:
            raise fail("OPERAND_TOO_LONG", close)
        match, pattern, glob_not = FULL, raw, False
        if op == "~":
            match, pattern, glob_not = parse_glob(raw)
            negate = glob_not
        return Predicate(ref, op, raw, start, close + 1, match, pattern, negate, ustring)
    if c and (isdigit(c) or c == "-"):
        if ref.kind in STRING_KINDS:
            raise fail("EXPECT_STRING", i)
        if op == "~":
            raise fail("ILLEGAL_FIELD_OP", i)
        if c == "-":
            i += 1
        i = scan_alnum(s, i)
        if i - vstart >= NUM_BUF_SIZE:
            raise fail("OPERAND_TOO_LONG", i)
        digits = s[vstart:i]
        value = kstrtoll(digits) if ref.signed else kstrtoull(digits)
        if value is None:
            raise fail("ILLEGAL_INTVAL", vstart)
        return Predicate(ref, op, value & 0xFFFFFFFFFFFFFFFF, start, i,
                         negate=(op == "!=" and ref.kind != CPU))
    raise fail("INVALID_VALUE", i)


def _check_function(s, i, ref, op, fail) -> None:
    """``field.function == sym``: the kernel resolves kernel symbols, which a user-space
    filter cannot; after the kernel's own checks this always refuses with NO_FUNCTION."""
    if ref.size != 8:
        raise fail("ILLEGAL_FIELD_OP", i)
    if op not in ("==", "!="):
        raise fail("INVALID_OP", i)
    vstart = i
    if i < len(s) and isdigit(s[i]):
        i = scan_alnum(s, i)
        if i - vstart >= NUM_BUF_SIZE:
            raise fail("OPERAND_TOO_LONG", i)
        if kstrtoull(s[vstart:i]) is None:
            raise fail("INVALID_VALUE", i)
    else:
        while i < len(s) and not isspace(s[i]):
            i += 1
    raise fail("NO_FUNCTION", i)


def _parse_cpus(s, start, i, ref, op, fail, nr_cpus) -> Predicate:
    if ref.kind not in (CPUMASK, CPU, OTHER):
        raise fail("ILLEGAL_FIELD_OP", i)
    if op not in ("==", "!=", "&"):
        raise fail("ILLEGAL_FIELD_OP", i)
    i += 4
    if i >= len(s) or s[i] != "{":
        raise fail("MISSING_BRACE_OPEN", i + 1)
    i += 1
    mask_start = i
    close = s.find("}", i)
    if close < 0:
        raise fail("MISSING_BRACE_CLOSE", len(s))
    if close == mask_start:
        raise fail("INVALID_CPULIST", close)
    try:
        cpus = parse_cpulist(s[mask_start:close], nr_cpus)
    except CpulistError:
        raise fail("INVALID_CPULIST", close) from None
    return Predicate(ref, op, cpus, start, close + 1, negate=(op == "!="))


def parse_glob(raw: str) -> tuple[str, str, bool]:
    """The kernel's ``filter_parse_regex`` for ``~``: (match type, pattern, negated).

    ``!x`` negates; a pattern starting with a digit compares in full; ``*x`` matches the end,
    ``x*`` the front, ``*x*`` the middle; any other ``*``, ``?``, ``[`` or ``\\`` makes it a
    full glob (the kernel's ``glob_match``).
    """
    negate = raw.startswith("!")
    buf = raw[1:] if negate else raw
    if buf[:1] and isdigit(buf[0]):
        return FULL, buf, negate
    kind = FULL
    n = len(buf)
    for i, c in enumerate(buf):
        if c == "*":
            if i == 0:
                kind = END
            elif i == n - 1:
                kind = MIDDLE if kind == END else FRONT
                buf = buf[:i]
                break
            else:
                return GLOB, buf, negate
        elif c in "[?\\":
            return GLOB, buf, negate
    if buf.startswith("*"):
        buf = buf[1:]
    return kind, buf, negate
