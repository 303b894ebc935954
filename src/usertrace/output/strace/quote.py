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

HEX_NONE, HEX_NON_ASCII, HEX_ALL = 0, 1, 2

_NAMED = {0x22: '\\"', 0x5C: "\\\\", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t",
          0x0B: "\\v"}
_OCTAL_DIGITS = frozenset(b"01234567")


def _needs_hex(data: bytes) -> bool:
    """-x: hex when a byte is above 0x7e or a control character other than white space."""
    return any(c > 0x7E or (c < 0x20 and not 9 <= c <= 13) for c in data)


def quote_bytes(data: bytes, hex_mode: int = HEX_NONE) -> str:
    """``data`` between double quotes, escaped as strace escapes it (no limit, no ``...``)."""
    if hex_mode == HEX_ALL or (hex_mode == HEX_NON_ASCII and _needs_hex(data)):
        return '"' + "".join(f"\\x{c:02x}" for c in data) + '"'
    out = ['"']
    n = len(data)
    for i, c in enumerate(data):
        named = _NAMED.get(c)
        if named is not None:
            out.append(named)
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif i + 1 < n and data[i + 1] in _OCTAL_DIGITS:
            out.append(f"\\{c:03o}")
        else:
            out.append(f"\\{c:o}")
    out.append('"')
    return "".join(out)


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
