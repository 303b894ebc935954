"""Probe events in the kernel: uprobe definitions under a group of the session's own.

``uprobe_events`` is global to the machine: every user's uprobes are in it, and a truncating
write deletes them all.  A session only ever appends to it (``O_APPEND``), defines its probes
under a group of its own, ``usertrace_<pid>_<random>`` (the pid of the process that defined
them, the random part of its instance's name), and removes each of them at the end with
``-:group/event``; a group left by a process that was killed is removed by the next run
(:mod:`usertrace.kernel.cleanup`).

In the trace.dat and the text, a probe carries the user's group and event names: the kernel
knows ``usertrace_4242_a1b2c3/myapp__open``, the formats say ``myapp:open``
(:meth:`ProbeGroup.define` keeps the mapping).

The instance's ``set_event_pid`` keeps the hits of the traced tasks only, for ``p`` and
``r`` probes alike (checked on 6.18 by ``tests/kernel/test_kernel_backend.py``: a process
running the probed program beside the recording leaves no record).

>>> group = ProbeGroup(find_tracefs(), "a1b2c3")                      # doctest: +SKIP
>>> d = parse_definition("p:myapp/open /bin/app:open_file fd=%di:s32")  # doctest: +SKIP
>>> fmt = group.define(d)                                             # doctest: +SKIP
>>> fmt.full_name, fmt.id                                             # doctest: +SKIP
('myapp:open', 2301)
>>> group.remove()                                                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ..events.format import EventFormat, FormatError
from ..sources.probes.parse import ProbeDefinition
from .tracefs import TracefsError, write_file

#: the names of our groups: the pid of the process that made it, a random part
GROUP_NAME = re.compile(r"usertrace_(\d+)_([0-9a-f]+)")
#: a line of uprobe_events: ``p:group/event target args``
_DEFINED = re.compile(r"^[pr](?:\d+)?:([^/\s]+)/(\S+)\s")


def _last_error(root: Path) -> str:
    """The last entry of the kernel's ``error_log`` (read only), or ''."""
    try:
        text = (Path(root) / "error_log").read_text()
    except OSError:
        return ""
    entries = text.rstrip("\n").split("\n[")
    return entries[-1].strip() if text.strip() else ""


def group_name(token: str, pid: int | None = None) -> str:
    return f"usertrace_{pid if pid is not None else os.getpid()}_{token}"


def defined_probes(root: Path) -> list[tuple[str, str]]:
    """``(group, event)`` of every uprobe defined on the machine (``uprobe_events``)."""
    try:
        text = (Path(root) / "uprobe_events").read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TracefsError(f"{root}/uprobe_events: {exc.strerror}") from None
    return [(m[1], m[2]) for m in map(_DEFINED.match, text.splitlines()) if m]


def remove_probe(root: Path, group: str, event: str) -> None:
    """``-:group/event`` appended to ``uprobe_events`` (EBUSY while an instance has the
    event enabled)."""
    write_file(Path(root) / "uprobe_events", f"-:{group}/{event}\n", "uprobe_events",
               append=True)


class ProbeGroup:
    """The uprobe events of one session in the kernel.

    :meth:`define` takes one parsed probe definition
    (:class:`~usertrace.sources.probes.parse.ProbeDefinition`) and defines it under the
    session's group; :meth:`remove` removes every probe it defined.
    """

    def __init__(self, root: Path, token: str):
        self.root = Path(root)
        self.name = group_name(token)
        self.defined: dict[str, tuple[str, str]] = {}    # kernel event -> (group, event)

    def kernel_event(self, group: str, event: str) -> str:
        """The kernel's name of the user's ``group:event`` in this session's group."""
        return f"{group}__{event}"

    def define(self, definition: ProbeDefinition) -> EventFormat:
        """Define ``definition`` under the session's group (its kernel command, renamed);
        the event's format, named as the definition names it, with the kernel's id.
        TracefsError with the kernel's answer (and its ``error_log``) when it refuses."""
        group, event = definition.group, definition.event
        kev = self.kernel_event(group, event)
        command = dataclasses.replace(definition, group=self.name, event=kev).kernel_command()
        try:
            write_file(self.root / "uprobe_events", command + "\n", "uprobe_events",
                       append=True)
        except TracefsError as exc:
            log = _last_error(self.root)
            raise TracefsError(f"the kernel refused probe {definition.full_name} "
                               f"({command}): {exc}" + (f"\n{log}" if log else "")) from None
        self.defined[kev] = (group, event)
        path = self.root / "events" / self.name / kev / "format"
        try:
            fmt = EventFormat.parse(path.read_text(), self.name)
        except (OSError, FormatError) as exc:
            raise TracefsError(f"{path}: {exc}") from None
        return dataclasses.replace(fmt, system=group, name=event)

    def remove(self) -> list[str]:
        """Remove every probe defined here; what could not be removed (and why)."""
        failed = []
        for kev in list(self.defined):
            try:
                remove_probe(self.root, self.name, kev)
                del self.defined[kev]
            except TracefsError as exc:
                if exc.errno == 2:           # ENOENT: gone already
                    del self.defined[kev]
                else:
                    failed.append(f"{self.name}/{kev}: {exc}")
        return failed
