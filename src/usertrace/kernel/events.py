"""The events of the running kernel, numbered as the kernel numbers them.

Records read from ``trace_pipe_raw`` carry the kernel's event ids in ``common_type``; the
formats of a recording made by the kernel must carry the same ids, or no reader can tell its
records apart.  The formats themselves are ours (decision 2: for every syscall event of the
kernel, our ``format`` text is the kernel's but for the ``ID:`` line, which a test checks
against the kernel); only the ids are read from ``events/syscalls/<event>/id``.  For the
task events (``signal:signal_deliver``, ``sched:sched_process_exit``, ``task:task_newtask``)
the kernel's own ``format`` is read with its id: their layout may change between kernels.

>>> reg, absent = kernel_registry(find_tracefs())                     # doctest: +SKIP
>>> reg.get("syscalls", "sys_enter_getppid").id                       # doctest: +SKIP
305
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..catalog import known_events
from ..events.format import EventFormat, FormatError, read_format_text
from ..events.registry import Registry
from .tracefs import TracefsError

SYSCALLS = "syscalls"
# the systems whose events the kernel records in place of ours: the syscall events and the
# task events (:mod:`usertrace.sources.tasks`)
KERNEL_SYSTEMS = (SYSCALLS, "signal", "sched", "task")


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


def _kernel_format(root: Path, system: str, name: str) -> EventFormat | None:
    try:
        return EventFormat.parse(read_format_text(Path(root) / "events" / system / name /
                                                  "format"), system)
    except (OSError, FormatError):
        return None


def kernel_registry(root: Path, registry: Registry | None = None) -> tuple[Registry, set[str]]:
    """The catalog (``registry``, default :func:`usertrace.catalog.known_events`) with every
    event of the :data:`KERNEL_SYSTEMS` the kernel has numbered with the kernel's id, and the
    full names of those the kernel does not have (they get ids of their own, clear of the
    kernel's, and the kernel backend cannot serve them).  Events of other systems keep their
    ids where no kernel event has it."""
    ours = list(registry if registry is not None else known_events())
    ids = {system: event_ids(root, system) for system in KERNEL_SYSTEMS}
    out = Registry()
    later: list = []
    for fmt in ours:
        kernel_id = ids.get(fmt.system, {}).get(fmt.name)
        if kernel_id is not None and fmt.system != SYSCALLS:
            # the kernel's own layout, which may differ between kernels (none where the
            # kernel's format cannot be read: then the kernel cannot serve the event)
            kernel_fmt = _kernel_format(root, fmt.system, fmt.name)
            if kernel_fmt is None:
                later.append(fmt)
                continue
            fmt = kernel_fmt
        if kernel_id is not None:
            out.add(dataclasses.replace(fmt, id=kernel_id))
        else:
            later.append(fmt)
    missing = set()
    for fmt in later:                   # after the kernel's, so that no id collides
        ours_only = fmt.system not in KERNEL_SYSTEMS
        keep = ours_only and fmt.id and out.by_id(fmt.id) is None
        out.add(dataclasses.replace(fmt, id=fmt.id if keep else 0))
        if not ours_only:
            missing.add(fmt.full_name)
    return out, missing
