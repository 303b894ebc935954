"""String comparisons as the kernel's filter makes them (``regex_match_*``, ``glob_match``).

The kernel compares a predicate's pattern with the bytes of a record: a fixed ``char[N]``
field (or the task's ``comm``, 16 bytes) as the N bytes of the field, a ``__data_loc`` string
or a string a pointer points to as the string and its NUL.  For all but one comparison that
makes no difference; for the end match (``~ "*suffix"``) on a fixed array it does: the kernel
compares the pattern with the bytes just before the field's last byte, not with the end of
the string, so ``comm ~ "*sh"`` matches a task named ``abcdefghijklmsh`` (15 characters) but
not ``bash``.  We do as the kernel does.

Each ``compile_*`` function returns a function of the record's (decoded) string.
"""

from __future__ import annotations

from typing import Callable

from .predicate import END, FRONT, FULL, GLOB, MIDDLE

StrTest = Callable[[str], bool]


def as_bytes(v) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    return bytes(v)


def glob_match(pat: bytes, s: bytes) -> bool:
    """The kernel's ``lib/glob.c``: ``*``, ``?``, ``[...]`` (``[!...]``, ranges; a first ``]``
    is literal; an unclosed ``[`` is a literal '['), and ``\\`` escaping the next character.
    ``*`` matches '/' too; no backtracking beyond the last ``*`` is needed."""
    pat = pat + b"\0"
    s = s + b"\0"
    p = 0
    i = 0
    back_p = -1
    back_i = 0
    while True:
        c = s[i]
        i += 1
        d = pat[p]
        p += 1
        if d == 0x3F:                                    # '?'
            if c == 0:
                return False
            continue
        if d == 0x2A:                                    # '*'
            if pat[p] == 0:
                return True
            back_p = p
            i -= 1
            back_i = i
            continue
        literal = True
        if d == 0x5B:                                    # '['
            inverted = pat[p] == 0x21
            k = p + inverted
            a = pat[k]
            k += 1
            matched = False
            malformed = False
            while True:
                b = a
                if a == 0:
                    malformed = True
                    break
                if pat[k] == 0x2D and pat[k + 1] != 0x5D:   # a range a-b
                    b = pat[k + 1]
                    if b == 0:
                        malformed = True
                        break
                    k += 2
                matched |= a <= c <= b
                a = pat[k]
                k += 1
                if a == 0x5D:
                    break
            if not malformed:
                literal = False
                if matched != inverted:
                    p = k
                    continue
        elif d == 0x5C:                                  # '\\'
            d = pat[p]
            p += 1
        if literal and c == d:
            if d == 0:
                return True
            continue
        # backtrack
        if c == 0 or back_p < 0:
            return False
        p = back_p
        back_i += 1
        i = back_i


def compile_match(kind: str, pattern: str, buflen: int | None) -> StrTest:
    """The test of one predicate's string comparison.

    ``pattern`` is in kernel bytes (one char per byte); ``buflen`` is N for a fixed char[N]
    field or the comm, None for strings whose end the kernel knows (dynamic, pointers).
    """
    pat_b = pattern.encode("latin-1")
    plen = len(pat_b)
    ascii_ = pat_b.isascii()
    pat_s = pat_b.decode("utf-8", "surrogateescape")

    if kind == GLOB:
        return lambda v: glob_match(pat_b, as_bytes(v))
    if kind == FULL:
        if buflen is None or plen <= buflen:
            if ascii_:
                return lambda v: v == pat_s
            return lambda v: as_bytes(v) == pat_b
        cut = pat_b[:buflen]
        return lambda v: as_bytes(v) == cut
    if kind == FRONT:
        if buflen is not None and buflen < plen:
            return lambda v: False
        if ascii_:
            return lambda v: v.startswith(pat_s)
        return lambda v: as_bytes(v).startswith(pat_b)
    if kind == MIDDLE:
        if ascii_:
            return lambda v: pat_s in v
        return lambda v: pat_b in as_bytes(v)
    if kind == END:
        if buflen is None:
            if ascii_:
                return lambda v: v.endswith(pat_s)
            return lambda v: as_bytes(v).endswith(pat_b)
        last = buflen - 1
        if plen > last:
            return lambda v: False

        def end_of_buffer(v) -> bool:
            raw = as_bytes(v)[:buflen]
            raw += bytes(buflen - len(raw))
            return raw[last - plen:last] == pat_b
        return end_of_buffer
    raise ValueError(f"unknown string match {kind!r}")
