"""What a killed recording leaves in the kernel, and removing it.

A recording that ends normally, on Ctrl-C, SIGTERM or an error removes its instance and its
probes itself.  One killed with SIGKILL (or a crash of the machine's python) cannot: its
instance ``instances/usertrace-<pid>-<random>`` and its uprobe group
``usertrace_<pid>_<random>`` stay.  Both names carry the pid of the process that made them;
when no process has that pid any more, they are left over.  Every kernel recording removes
the left-overs before it starts, and ``usertrace clean`` does on demand::

    >>> for line in clean_stale(find_tracefs()):                  # doctest: +SKIP
    ...     print(line)
    removed instance usertrace-4242-a1b2c3
    removed probe usertrace_4242_a1b2c3/app__open
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .probes import GROUP_NAME, defined_probes, remove_probe
from .tracefs import INSTANCE_NAME, TracefsError


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Leftovers:
    """Instances and probes of processes that are gone."""

    instances: list[str] = field(default_factory=list)
    probes: list[tuple[str, str]] = field(default_factory=list)     # (group, event)

    def __bool__(self) -> bool:
        return bool(self.instances or self.probes)


def find_stale(root: Path) -> Leftovers:
    """The instances and uprobes named after a pid that no process has now."""
    root = Path(root)
    out = Leftovers()
    try:
        names = sorted(os.listdir(root / "instances"))
    except OSError:
        names = []
    for name in names:
        m = INSTANCE_NAME.fullmatch(name)
        if m and not pid_alive(int(m[1])):
            out.instances.append(name)
    for group, event in defined_probes(root):
        m = GROUP_NAME.fullmatch(group)
        if m and not pid_alive(int(m[1])):
            out.probes.append((group, event))
    return out


def clean_stale(root: Path, dry_run: bool = False) -> list[str]:
    """Remove what :func:`find_stale` finds (instances first: they may hold a probe
    enabled); a line per thing removed, or that could not be (and why)."""
    root = Path(root)
    found = find_stale(root)
    lines = []
    verb = "would remove" if dry_run else "removed"
    for name in found.instances:
        if not dry_run:
            try:
                os.rmdir(root / "instances" / name)
            except FileNotFoundError:
                continue                       # another run removed it meanwhile
            except OSError as exc:
                lines.append(f"cannot remove instance {name}: {exc.strerror}")
                continue
        lines.append(f"{verb} instance {name}")
    for group, event in found.probes:
        if not dry_run:
            try:
                remove_probe(root, group, event)
            except TracefsError as exc:
                if exc.errno == 2:
                    continue
                lines.append(f"cannot remove probe {group}/{event}: {exc}")
                continue
        lines.append(f"{verb} probe {group}/{event}")
    return lines
