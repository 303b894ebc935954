"""The events of the running kernel, numbered as the kernel numbers them.

Records read from ``trace_pipe_raw`` carry the kernel's event ids in ``common_type``; the
formats of a recording made by the kernel must carry the same ids, or no reader can tell its
records apart.  The formats themselves are ours (decision 2: for every syscall event of the
kernel, our ``format`` text is the kernel's but for the ``ID:`` line, which a test checks
against the kernel); only the ids are read from ``events/syscalls/<event>/id``.

>>> reg, absent = kernel_registry(find_tracefs())                     # doctest: +SKIP
>>> reg.get("syscalls", "sys_enter_getppid").id                       # doctest: +SKIP
305
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..catalog import known_events
from ..events.registry import Registry
from .tracefs import TracefsError

SYSCALLS = "syscalls"


def event_ids(root: Path, system: str) -> dict[str, int]:
    """``{event: id}`` of one system of the kernel (``events/<system>/*/id``)."""
    base = Path(root) / "events" / system
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise TracefsError(f"{base}: {exc.strerror}") from None
    ids = {}
    for name in names:
        try:
            with open(base / name / "id") as f:
                ids[name] = int(f.read())
        except (OSError, ValueError):
            continue                    # not an event directory (enable, filter)
    return ids


def kernel_registry(root: Path, registry: Registry | None = None) -> tuple[Registry, set[str]]:
    """The catalog (``registry``, default :func:`usertrace.catalog.known_events`) with every
    syscall event the kernel has numbered with the kernel's id, and the full names of the
    syscall events the kernel does not have (they get ids of their own, clear of the
    kernel's, and the kernel backend cannot serve them).  Events of other systems keep their
    ids where no kernel event has it."""
    ours = list(registry if registry is not None else known_events())
    ids = event_ids(root, SYSCALLS)
    out = Registry()
    later: list = []
    for fmt in ours:
        if fmt.system == SYSCALLS and fmt.name in ids:
            out.add(dataclasses.replace(fmt, id=ids[fmt.name]))
        else:
            later.append(fmt)
    missing = set()
    for fmt in later:                   # after the kernel's, so that no id collides
        keep = fmt.system != SYSCALLS and fmt.id and out.by_id(fmt.id) is None
        out.add(dataclasses.replace(fmt, id=fmt.id if keep else 0))
        if fmt.system == SYSCALLS:
            missing.add(fmt.full_name)
    return out, missing
