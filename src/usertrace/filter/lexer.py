"""Scanning the filter text the way the kernel does, byte by byte.

The kernel has no separate lexer: ``trace_events_filter.c`` walks the C string, first once to
count predicates and parentheses and find unbalanced quotes and parentheses (``calc_stack``),
then again while parsing (``predicate_parse`` and ``parse_pred``).  This module holds the
pieces of that walk that do not depend on the event: the kernel's character classes, the
pre-scan, the operators, and the number and cpulist readers (``kstrtoull``/``kstrtoll`` with
base 0, ``cpulist_parse``).

Text is handled as the bytes the kernel would see (UTF-8), held in a ``str`` decoded as
Latin-1 so that one character is one byte and positions are the kernel's byte offsets.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from ..errors import EXIT_SYNTAX, UsertraceError
from .errors import FilterError

PAGE_SIZE = 4096
MAX_FILTER_STR_VAL = 256     # longest quoted string, in bytes, plus one
NUM_BUF_SIZE = 24            # longest number, in characters, plus one

# The operators in the kernel's matching order: '<=' before '<', '>=' before '>'.
OPS: tuple[str, ...] = ("~", "!=", "==", "<=", "<", ">=", ">", "&")

# The kernel's <linux/ctype.h> is Latin-1: 0xa0 is a space, 0xc0-0xff (but 0xd7, 0xf7) letters.
_SPACE = frozenset(" \t\n\v\f\r\xa0")
_DIGIT = frozenset("0123456789")
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   + "".join(chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)))
_ALNUM = _ALPHA | _DIGIT


def isspace(c: str) -> bool:
    return c in _SPACE


def isdigit(c: str) -> bool:
    return c in _DIGIT


def isalnum(c: str) -> bool:
    return c in _ALNUM


def to_kernel_bytes(text: str) -> str:
    """The filter as the kernel stores it, one char per byte.

    Like ``event_filter_write``: the string ends at a NUL byte, and trailing white space is
    stripped (``strstrip``) while leading white space stays.
    """
    raw = text.encode("utf-8", "surrogateescape").decode("latin-1")
    nul = raw.find("\0")
    if nul >= 0:
        raw = raw[:nul]
    end = len(raw)
    while end and raw[end - 1] in _SPACE:
        end -= 1
    return raw[:end]


def from_kernel_bytes(raw: str) -> str:
    return raw.encode("latin-1").decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Prescan:
    nr_parens: int    # deepest nesting, counting the whole expression as one level
    nr_preds: int     # runs of predicate text between '(', ')', '&&', '||'


def prescan(s: str, text: str) -> Prescan:
    """The kernel's ``calc_stack``: count predicates and parentheses, check quotes and parens.

    ``s`` is the kernel-byte string; ``text`` the user's text for the error.
    """
    is_pred = False
    nr_preds = 0
    depth = 1
    max_depth = 1
    last_quote = 0
    quote = ""
    n = len(s)
    i = 0
    while i < n:
        c = s[i]
        if c in _SPACE:
            i += 1
            continue
        if quote:
            if c == quote:
                quote = ""
            i += 1
            continue
        if c in "'\"":
            quote = c
            last_quote = i
        elif c in "|&":
            if i + 1 < n and s[i + 1] == c:
                is_pred = False
                i += 1
                continue
        elif c == "(":
            is_pred = False
            depth += 1
            max_depth = max(max_depth, depth)
            i += 1
            continue
        elif c == ")":
            is_pred = False
            if depth == 1:
                raise FilterError("TOO_MANY_CLOSE", i, text, errno.EPERM)
            depth -= 1
            i += 1
            continue
        if not is_pred:
            nr_preds += 1
            is_pred = True
        i += 1
    if quote:
        raise FilterError("MISSING_QUOTE", last_quote, text, errno.ESRCH)
    if depth != 1:
        raise FilterError("TOO_MANY_OPEN", _find_bad_open(s, depth), text, errno.ENOENT)
    return Prescan(max_depth, nr_preds)


def _find_bad_open(s: str, depth: int) -> int:
    """Walk back from the end to the '(' that has no ')' (as the kernel does; 0 if none)."""
    level = depth
    quote = ""
    i = len(s) - 1
    while i > 0:
        c = s[i]
        if quote:
            if c == quote:
                quote = ""
        elif c == "(":
            if level == depth:
                return i
            level -= 1
        elif c == ")":
            level += 1
        elif c in "'\"":
            quote = c
        i -= 1
    return 0


def is_not(s: str, i: int) -> bool:
    """A '!' at ``i`` is a "not" unless it begins "!=" or "!~"."""
    return not (i + 1 < len(s) and s[i + 1] in "=~")


def skip_space(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _SPACE:
        i += 1
    return i


def scan_name(s: str, i: int) -> int:
    """End of the run of ``[A-Za-z0-9_]`` (kernel ctype) starting at ``i``."""
    n = len(s)
    while i < n and (s[i] in _ALNUM or s[i] == "_"):
        i += 1
    return i


def scan_alnum(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _ALNUM:
        i += 1
    return i


def match_op(s: str, i: int) -> str | None:
    for op in OPS:
        if s.startswith(op, i):
            return op
    return None


# -- numbers: lib/kstrtox.c ---------------------------------------------------------------

_U64_MAX = (1 << 64) - 1
_S64_MAX = (1 << 63) - 1


def _parse_integer(s: str, base: int) -> tuple[int, int, bool]:
    """(value, characters used, overflowed) like ``_parse_integer``."""
    value = 0
    used = 0
    overflow = False
    for c in s:
        lc = c.lower()
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "a" <= lc <= "f":
            d = ord(lc) - 87
        else:
            break
        if d >= base:
            break
        value = value * base + d
        if value > _U64_MAX:
            overflow = True
        used += 1
    return value & _U64_MAX, used, overflow


def kstrtoull(s: str) -> int | None:
    """``kstrtoull(s, 0, &v)``: decimal, ``0x`` hex or ``0`` octal; None where it fails."""
    base = 10
    if s[:1] == "0":
        if s[1:2].lower() == "x" and s[2:3] and s[2] in "0123456789abcdefABCDEF":
            base = 16
            s = s[2:]
        else:
            base = 8
    value, used, overflow = _parse_integer(s, base)
    if overflow or used == 0:
        return None
    rest = s[used:]
    if rest[:1] == "\n":
        rest = rest[1:]
    return None if rest else value


def kstrtoll(s: str) -> int | None:
    """``kstrtoll(s, 0, &v)``: as kstrtoull, with a leading '-', within the s64 range."""
    if s[:1] == "-":
        v = kstrtoull(s[1:])
        if v is None or v > _S64_MAX + 1:
            return None
        return -v
    v = kstrtoull(s[1:] if s[:1] == "+" else s)
    if v is None or v > _S64_MAX:
        return None
    return v


# -- cpulists: lib/bitmap-str.c bitmap_parselist -------------------------------------------

class CpulistError(UsertraceError, ValueError):
    """A cpulist that ``bitmap_parselist()`` would refuse."""

    exit_status = EXIT_SYNTAX


def parse_cpulist(s: str, nbits: int) -> frozenset[int]:
    """The CPUs named by a cpulist such as ``0-3,8,10-15:2/4`` or ``all`` or ``0-N``."""
    cpus: set[int] = set()
    lastbit = nbits - 1
    i = 0
    n = len(s)

    def end_of_str(j: int) -> bool:
        return j >= n or s[j] == "\n"

    def end_of_region(j: int) -> bool:
        return end_of_str(j) or s[j] in _SPACE or s[j] == ","

    def getnum(j: int) -> tuple[int, int]:
        if j < n and s[j] == "N":
            return lastbit, j + 1
        value, used, overflow = _parse_integer(s[j:], 10)
        if not used or overflow or value > 0xFFFFFFFF:
            raise CpulistError(s)
        return value, j + used

    while True:
        while i < n and (s[i] in _SPACE or s[i] == ","):
            i += 1
        if end_of_str(i):
            break
        if s[i:i + 3].lower() == "all":
            start, end, i = 0, lastbit, i + 3
            pattern = not end_of_region(i)
        else:
            start, i = getnum(i)
            if end_of_region(i):
                end = start
                pattern = False
            else:
                if s[i] != "-":
                    raise CpulistError(s)
                end, i = getnum(i + 1)
                pattern = not end_of_region(i)
        if pattern:
            if s[i] != ":":
                raise CpulistError(s)
            off, i = getnum(i + 1)
            if i >= n or s[i] != "/":
                raise CpulistError(s)
            group, i = getnum(i + 1)
        else:
            off = group = end + 1
        if start > end or group == 0 or off > group or end >= nbits:
            raise CpulistError(s)
        g = start
        while g <= end:
            cpus.update(range(g, min(g + off, end + 1)))
            g += group
    return frozenset(cpus)
