"""A private tracefs instance: the kernel's trace events, without touching the global buffer.

The kernel is shared.  Everything here works in ``instances/<name>`` of a mounted tracefs,
created on entry and removed on exit (after disabling every event that was enabled through
it), and never writes the global ``tracing_on``, ``current_tracer`` or ``set_event``.

An instance is named ``usertrace-<pid>-<random>`` after the process that made it
(:func:`instance_name`), so that one left behind by a process that was killed can be told
apart from one still in use (:func:`usertrace.kernel.cleanup.clean_stale`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import time
from pathlib import Path

from ..errors import UsertraceError

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


#: the names of our instances: the pid of the process that made it, a random part
INSTANCE_NAME = re.compile(r"usertrace-(\d+)-([0-9a-f]+)")


class TracefsError(UsertraceError):
    """A tracefs operation failed; the message names the file and the kernel's answer.
    ``errno`` is the kernel's error number when a write was refused."""

    errno: int | None = None


def instance_name(token: str | None = None) -> str:
    """``usertrace-<pid>-<random>``: this process's and a random part (``token``)."""
    return f"usertrace-{os.getpid()}-{token or secrets.token_hex(3)}"


def find_tracefs() -> Path | None:
    """The mount point of a readable tracefs, or None."""
    for cand in TRACEFS_CANDIDATES:
        p = Path(cand)
        if (p / "events" / "header_page").exists():
            return p
    return None


def why_no_tracefs() -> str | None:
    """None when a private instance can be made here, else the reason why not."""
    if os.geteuid() != 0:
        return "needs root for tracefs"
    root = find_tracefs()
    if root is None:
        return "no tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing)"
    if not (root / "instances").is_dir():
        return f"{root} has no instances directory"
    return None


def why_no_uprobe_events() -> str | None:
    """None when uprobe events can be defined here (root, a tracefs, CONFIG_UPROBE_EVENTS),
    else the reason why not."""
    reason = why_no_tracefs()
    if reason:
        return reason
    if not (find_tracefs() / "uprobe_events").exists():
        return "this kernel has no uprobe_events (CONFIG_UPROBE_EVENTS)"
    return None


def append_uprobe_event(line: str, root: Path | None = None) -> None:
    """Append one line to the machine's ``uprobe_events`` (a definition, or ``-:GRP/EVENT``
    to remove one), never truncating it: the file is global, and a truncating write deletes
    every uprobe of every user.  Raises OSError with the kernel's errno when it refuses."""
    root = root or find_tracefs()
    if root is None:
        raise TracefsError("no tracefs mounted")
    fd = os.open(root / "uprobe_events", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


class Instance:
    """A private tracefs instance, a context manager.

    >>> with Instance() as inst:                      # doctest: +SKIP
    ...     inst.enable("syscalls", "sys_enter_getppid")
    ...     os.getppid()
    ...     print(inst.read("trace"))
    """

    def __init__(self, name: str | None = None, root: Path | None = None):
        self.root = root or find_tracefs()
        if self.root is None:
            raise TracefsError("no tracefs mounted")
        self.name = name or instance_name()
        self.path = self.root / "instances" / self.name
        self._enabled: list[Path] = []
        self._filtered: list[Path] = []
        self._created = False

    # -- lifetime -------------------------------------------------------------------------
    def create(self) -> "Instance":
        try:
            self.path.mkdir()
        except OSError as exc:
            raise TracefsError(f"cannot create instance {self.path}: {exc.strerror}") from None
        self._created = True
        return self

    def remove(self) -> None:
        if not self._created:
            return
        for p in reversed(self._enabled):
            try:
                p.write_text("0")
            except OSError:
                pass
        for p in self._filtered:
            try:
                p.write_text("0")
            except OSError:
                pass
        self._enabled.clear()
        self._filtered.clear()
        try:
            (self.path / "tracing_on").write_text("0")
        except OSError:
            pass
        # rmdir can answer EBUSY for a moment while a reader still holds a file.
        for attempt in range(100):
            try:
                self.path.rmdir()
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 99:
                    raise TracefsError(f"cannot remove {self.path}: {exc.strerror} "
                                       "(a file of the instance is still open?)") from None
                time.sleep(0.02)
        self._created = False

    def __enter__(self) -> "Instance":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.remove()

    # -- files ----------------------------------------------------------------------------
    def file(self, rel: str) -> Path:
        return self.path / rel

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text()

    def read_bytes(self, rel: str) -> bytes:
        return (self.path / rel).read_bytes()

    def write(self, rel: str, text: str) -> None:
        """Write ``text`` to a file of the instance; a refusal raises TracefsError with errno."""
        write_file(self.path / rel, text, rel)

    def append(self, rel: str, text: str) -> None:
        """Append ``text`` to a file of the instance (``>>``: ``set_event_pid`` keeps the pids
        it has)."""
        write_file(self.path / rel, text, rel, append=True)

    def event_dir(self, system: str, event: str | None = None) -> str:
        return f"events/{system}" if event is None else f"events/{system}/{event}"

    def enable(self, system: str, event: str | None = None) -> None:
        rel = self.event_dir(system, event) + "/enable"
        self.write(rel, "1")
        self._enabled.append(self.path / rel)

    def disable(self, system: str, event: str | None = None) -> None:
        self.write(self.event_dir(system, event) + "/enable", "0")

    def set_filter(self, system: str, event: str | None, expr: str) -> None:
        rel = self.event_dir(system, event) + "/filter"
        self._filtered.append(self.path / rel)
        self.write(rel, expr)

    def clear(self) -> None:
        """Empty the instance's buffer (echo > trace)."""
        self.write("trace", "")

    def set_option(self, name: str, on: bool) -> None:
        """``options/<name>``: ``event-fork``, ``overwrite``, ..."""
        self.write(f"options/{name}", "1" if on else "0")

    def num_cpus(self) -> int:
        return len([d for d in (self.path / "per_cpu").iterdir() if d.name.startswith("cpu")])


def write_file(path, text: str, label: str | None = None, append: bool = False) -> None:
    """One write(2) of ``text`` to a tracefs file (truncating, or appending: ``uprobe_events``
    is only ever appended to); TracefsError with the kernel's errno when it refuses."""
    flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
    label = label or str(path)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        err = TracefsError(f"{label}: {exc.strerror}")
        err.errno = exc.errno
        raise err from None
    try:
        os.write(fd, text.encode())
    except OSError as exc:
        err = TracefsError(f"{label}: {exc.strerror}")
        err.errno = exc.errno
        raise err from None
    finally:
        os.close(fd)
