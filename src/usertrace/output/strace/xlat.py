"""Numbers as strace names them: flags, enumerations, signals and error codes.

The names and their order come from the generated module of the architecture
(:mod:`usertrace.sources.syscalls.consts_x86_64`); this module only prints::

    >>> x = Xlat.for_arch("x86_64")
    >>> x.flags("mmap_prot", 3), x.flags("mmap_prot", 0), x.flags("mmap_prot", 0x10000001)
    ('PROT_READ|PROT_WRITE', 'PROT_NONE', 'PROT_READ|0x10000000')
    >>> x.enum("seek_whence", 1), x.enum("seek_whence", 9)
    ('SEEK_CUR', '0x9 /* SEEK_??? */')
    >>> x.signal(17), x.signal(34), x.errno(2)
    ('SIGCHLD', 'SIGRT_2', ('ENOENT', 'No such file or directory'))
"""

from __future__ import annotations

from functools import lru_cache

from ...arch import arch_module

MASK64 = (1 << 64) - 1


def hex_text(value: int) -> str:
    """``%#lx``: ``0`` for zero, ``0x1f`` otherwise (an unsigned 64-bit view)."""
    value &= MASK64
    return f"{value:#x}" if value else "0"


def _unknown(prefix: str) -> str:
    return f"{prefix}???"


class Xlat:
    """The named constants of one architecture, with strace's ways of printing them."""

    def __init__(self, module):
        self.module = module
        self.groups = {}
        self._enums: dict[str, dict[int, str]] = {}
        self._values: dict[str, dict[str, int]] = {}
        self._prefix: dict[str, str] = {}
        for name, (kind, items) in module.GROUPS.items():
            self.groups[name] = (kind, items)
            table: dict[int, str] = {}
            for n, v in items:
                table.setdefault(v, n)
            self._enums[name] = table
            self._values[name] = {n: v for n, v in reversed(items)}
            first = items[0][0].lstrip("_")
            self._prefix[name] = first[: first.find("_") + 1] if "_" in first else ""
        self.errnos = module.ERRNO
        self.restart_codes = module.ERESTART
        self.signals = module.SIGNALS
        self.sigrtmin = module.SIGRTMIN
        self.sigrtmax = module.SIGRTMAX

    @classmethod
    @lru_cache(maxsize=None)
    def for_arch(cls, arch: str = "x86_64") -> "Xlat":
        return cls(arch_module("usertrace.sources.syscalls", "consts", arch, "named constants"))

    def value(self, group: str, name: str) -> int:
        """The value of ``name`` in ``group`` (KeyError when it has none here)."""
        try:
            return self._values[group][name]
        except KeyError:
            raise KeyError(f"{name} is not in {group}") from None

    def values(self, group: str) -> dict[str, int]:
        """``{name: value}`` of a group."""
        return self._values[group]

    def lookup(self, group: str, value: int) -> str | None:
        return self._enums[group].get(value)

    def enum(self, group: str, value: int, decimal: bool = False) -> str:
        """``SEEK_CUR``; an unknown value as ``0x9 /* SEEK_??? */`` (decimal when asked)."""
        name = self._enums[group].get(value)
        if name is not None:
            return name
        shown = str(value) if decimal else hex_text(value)
        return f"{shown} /* {_unknown(self._prefix[group])} */"

    def flags(self, group: str, value: int, *, zero: str | None = "0") -> str:
        """``A|B|0x100`` as strace's printflags: each name whose bits are all set, in the
        group's order; a zero-valued name only for zero; left-over bits in hex; nothing
        known: ``0x100 /* X_??? */``; zero without a name: ``zero``."""
        value &= MASK64
        names = []
        rest = value
        for name, v in self.groups[group][1]:
            if v == 0:
                if value == 0:
                    return name
                continue
            if rest & v == v:
                names.append(name)
                rest &= ~v
                if not rest:
                    break
        if names:
            if rest:
                names.append(hex_text(rest))
            return "|".join(names)
        if value:
            return f"{hex_text(value)} /* {_unknown(self._prefix[group])} */"
        return zero if zero is not None else "0"

    def signal(self, sig: int) -> str | None:
        """``SIGCHLD``, ``SIGRTMIN``, ``SIGRT_2``; None for a number that is no signal."""
        name = self.signals.get(sig)
        if name is not None:
            return name
        if sig == self.sigrtmin:
            return "SIGRTMIN"
        if self.sigrtmin < sig <= self.sigrtmax:
            return f"SIGRT_{sig - self.sigrtmin}"
        return None

    def signal_text(self, sig: int) -> str:
        """A signal argument: its name, or the number in decimal."""
        name = self.signal(sig)
        return name if name is not None else str(sig)

    def errno(self, err: int) -> tuple[str, str] | None:
        """``(name, message)`` of a positive error number, None when it has no name."""
        return self.errnos.get(err)

    def is_restart(self, err: int) -> bool:
        return err in self.restart_codes
