"""The events usertrace knows before anything is traced: one registry built from every source.

Syscall events come from the generated syscall table; user events and probe events join a
session's registry as they are registered or defined.
"""

from __future__ import annotations

from .events.registry import Registry


def known_events() -> Registry:
    """A fresh registry holding every event the sources define up front."""
    reg = Registry()
    try:
        from .sources.syscalls.events import build_events
    except ImportError:  # the syscall source is not built on this platform
        return reg
    for sc in build_events():
        reg.add(sc.enter)
        reg.add(sc.exit)
    return reg
