"""Look-ups over a generated syscall table (``table_<arch>.py``).

>>> t = SyscallTable.for_arch("x86_64")
>>> t.by_name["stat"].event, t.by_nr[257].name
('newstat', 'openat')
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ...arch import arch_module


@dataclass(frozen=True)
class Syscall:
    nr: int
    name: str                                   # the __NR_ name
    event: str | None                           # base name of its events, None: no events
    args: tuple[tuple[str, str], ...] | None    # ((C type, name), ...), None without events

    @property
    def has_event(self) -> bool:
        return self.event is not None

    @property
    def nargs(self) -> int:
        return len(self.args or ())


class SyscallTable:
    """The system calls of one architecture, by number, by name and by event name."""

    def __init__(self, arch: str, rows, audit_arch: int, release: str = ""):
        self.arch = arch
        self.audit_arch = audit_arch
        self.release = release
        self.syscalls = [Syscall(nr, name, event, tuple(args) if args is not None else None)
                         for nr, name, event, args in rows]
        self.by_nr = {s.nr: s for s in self.syscalls}
        self.by_name = {s.name: s for s in self.syscalls}
        self.by_event = {s.event: s for s in self.syscalls if s.event}
        self.max_nr = max(self.by_nr)

    def __iter__(self):
        return iter(self.syscalls)

    def __len__(self) -> int:
        return len(self.syscalls)

    @classmethod
    @lru_cache(maxsize=None)
    def for_arch(cls, arch: str = "x86_64") -> "SyscallTable":
        mod = arch_module(__package__, "table", arch, "syscall table")
        return cls(mod.ARCH, mod.SYSCALLS, mod.AUDIT_ARCH, mod.KERNEL_RELEASE)
