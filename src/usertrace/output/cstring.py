"""C string literals as strace prints them."""

from __future__ import annotations

_ESC = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x0B: "\\v", 0x0C: "\\f", 0x22: '\\"', 0x5C: "\\\\"}


def quote(raw: bytes, truncated: bool = False) -> str:
    """A C string literal as strace prints it: escapes, octal for other bytes, ``...`` when cut."""
    parts = []
    for b in raw:
        if b in _ESC:
            parts.append(_ESC[b])
        elif 0x20 <= b < 0x7F:
            parts.append(chr(b))
        else:
            parts.append(f"\\{b:o}")
    return '"' + "".join(parts) + '"' + ("..." if truncated else "")
