"""What the engine reads from /proc about a task: comm, cpu, thread group, threads."""

from __future__ import annotations

import errno
import os

from .errors import TraceError


def read_stat(tid: int) -> tuple[str, int] | None:
    """``(comm, cpu)`` of a task from /proc/TID/stat, None when it is gone.

    ``cpu`` is field 39 (``processor``): the CPU the task last ran on.  comm is between the
    first ``(`` and the last ``)`` (a comm may hold parentheses and spaces).
    """
    try:
        fd = os.open(f"/proc/{tid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_stat(raw)


def parse_stat(raw: bytes) -> tuple[str, int] | None:
    lp = raw.find(b"(")
    rp = raw.rfind(b")")
    if lp < 0 or rp < lp:
        return None
    comm = raw[lp + 1: rp].decode("utf-8", "replace")
    fields = raw[rp + 2:].split(b" ", 37)
    try:
        cpu = int(fields[36])
    except (IndexError, ValueError):
        cpu = 0
    return comm, cpu


def _status_field(tid: int, key: bytes) -> int | None:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def read_tgid(tid: int) -> int | None:
    """The thread group (process) id of a task, None when it is gone."""
    return _status_field(tid, b"Tgid:")


def read_ppid(tid: int) -> int | None:
    """The parent process id of a task, None when it is gone."""
    return _status_field(tid, b"PPid:")


def list_threads(pid: int) -> list[int]:
    """The thread ids of a process (empty when it is gone)."""
    try:
        return sorted(int(n) for n in os.listdir(f"/proc/{pid}/task") if n.isdigit())
    except OSError:
        return []


def original_environ() -> dict[bytes, bytes]:
    """The environment this process was started with, from /proc/self/environ.

    It differs from ``os.environ`` where Python changed its own environment at startup
    (PEP 538 adds ``LC_CTYPE`` when the locale is C or unset).  A command that a tracer
    launches must get what the tracer was given.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environb)
    env: dict[bytes, bytes] = {}
    for item in raw.split(b"\0"):
        if not item:
            continue
        key, sep, value = item.partition(b"=")
        if sep and key:
            env.setdefault(key, value)
    return env


def traceable_tgid(pid: int) -> int:
    """The thread group of ``pid``, one a tracer may take; TraceError when it is no process id,
    no process, or the tracer itself."""
    if pid <= 0:
        raise TraceError(f"invalid process id {pid}")
    if pid == os.getpid():
        raise TraceError(f"process {pid} is the tracer itself", errno.EPERM)
    tgid = read_tgid(pid)
    if tgid is None:
        raise TraceError(f"process {pid}: no such process", errno.ESRCH)
    return tgid
