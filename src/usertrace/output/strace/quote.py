"""Strings and buffers as strace prints them.

strace quotes bytes as a C string literal: printable ASCII as itself, ``\\"`` and ``\\\\``,
the named escapes ``\\f \\n \\r \\t \\v``, any other byte in octal with as few digits as it
needs, except before an octal digit, where it takes three (``"\\0\\0008"`` is NUL, NUL, "8")::

    >>> quote(b'\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00', 10)
    '"\\\\177ELF\\\\2\\\\1\\\\1\\\\0\\\\0\\\\0"'

``-x`` prints the whole string in hex when any byte is not printable ASCII or white space,
``-xx`` always (:data:`HEX_NON_ASCII`, :data:`HEX_ALL`).  A buffer longer than ``-s``
(``max_len``) is cut there and followed by ``...``; a path is never cut (strace reads paths up
to ``PATH_MAX``), a NUL-terminated string is cut at its NUL.
"""

from __future__ import annotations

import re

HEX_NONE, HEX_NON_ASCII, HEX_ALL = 0, 1, 2

_NAMED = {0x22: '\\"', 0x5C: "\\\\", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t",
          0x0B: "\\v"}
# Each byte's escape (as a str.translate table over the bytes read as latin-1), octal with
# as few digits as it needs ...
_ESCAPES = {c: _NAMED.get(c) or (chr(c) if 0x20 <= c < 0x7F else f"\\{c:o}") for c in range(256)}
# ... but with three before an octal digit: those bytes are split out and written apart
_OCTAL_BEFORE_DIGIT = re.compile(r"([\x00-\x08\x0e-\x1f\x7f-\xff])(?=[0-7])")


def _needs_hex(data: bytes) -> bool:
    """-x: hex when a byte is above 0x7e or a control character other than white space."""
    return any(c > 0x7E or (c < 0x20 and not 9 <= c <= 13) for c in data)


def quote_bytes(data: bytes, hex_mode: int = HEX_NONE) -> str:
    """``data`` between double quotes, escaped as strace escapes it (no limit, no ``...``)."""
    if hex_mode == HEX_ALL or (hex_mode == HEX_NON_ASCII and _needs_hex(data)):
        return '"' + "".join(f"\\x{c:02x}" for c in data) + '"'
    parts = _OCTAL_BEFORE_DIGIT.split(bytes(data).decode("latin-1"))
    if len(parts) == 1:
        return '"' + parts[0].translate(_ESCAPES) + '"'
    return '"' + "".join(part.translate(_ESCAPES) if k % 2 == 0 else f"\\{ord(part):03o}"
                         for k, part in enumerate(parts)) + '"'


def quote(data: bytes, length: int, max_len: int | None = 32, hex_mode: int = HEX_NONE) -> str:
    """A buffer of ``length`` bytes of which ``data`` are known, as strace prints a buffer.

    At most ``max_len`` bytes are shown (None: all); ``...`` follows when the buffer is longer
    than that, or when fewer bytes are known than would be shown.
    """
    shown = length if max_len is None else min(length, max_len)
    text = quote_bytes(bytes(data[:shown]), hex_mode)
    if shown < length or len(data) < shown:
        text += "..."
    return text


def quote_cstring(data: bytes, max_len: int | None = 32, hex_mode: int = HEX_NONE,
                  cut: bool = False) -> str:
    """A NUL-terminated string (``data`` without its NUL), at most ``max_len`` bytes shown;
    ``...`` when it is longer, or when it was ``cut`` before its end."""
    nul = data.find(b"\0")
    if nul >= 0:
        data, cut = data[:nul], False
    if max_len is not None and len(data) > max_len:
        data, cut = data[:max_len], True
    return quote_bytes(data, hex_mode) + ("..." if cut else "")
