"""Architecture facts, bound at run time: ``host()`` gives the running machine's :class:`Arch`.

Nothing else in usertrace names a register, an audit arch or a syscall number of its own:
the engine, the seccomp filter and the sources read them from the ``Arch`` they are given.
"""

from __future__ import annotations

import importlib
import platform
from types import ModuleType

from .x86_64 import X86_64, Arch

ARCHES = {X86_64.name: X86_64}


def host() -> Arch:
    """The architecture of this machine; LookupError where usertrace has none for it."""
    machine = platform.machine()
    try:
        return ARCHES[machine]
    except KeyError:
        raise LookupError(f"usertrace does not support the {machine} architecture "
                          f"(supported: {', '.join(ARCHES)})") from None


def arch_module(package: str, kind: str, arch: str, what: str) -> ModuleType:
    """The generated per-architecture module ``<package>.<kind>_<arch>`` (a syscall table,
    named constants); LookupError naming ``what`` where there is none for ``arch``."""
    try:
        return importlib.import_module(f"{package}.{kind}_{arch}")
    except ImportError:
        raise LookupError(f"no {what} for architecture {arch!r}") from None


__all__ = ["ARCHES", "Arch", "X86_64", "arch_module", "host"]
