"""What the engine reads from /proc about a task: comm, cpu, thread group, threads."""

from __future__ import annotations

import errno
import os

from ..procstat import STAT_PROCESSOR, read_stat_raw, split_stat
from .errors import TraceError


def read_stat(tid: int) -> tuple[str, int] | None:
    """``(comm, cpu)`` of a task from /proc/TID/stat, None when it is gone."""
    raw = read_stat_raw(tid)
    return parse_stat(raw) if raw is not None else None


def parse_stat(raw: bytes) -> tuple[str, int] | None:
    """``(comm, cpu)`` from a stat line: ``cpu`` is field 39 (``processor``), the CPU the task
    last ran on (0 when the line is cut short)."""
    got = split_stat(raw, STAT_PROCESSOR)
    if got is None:
        return None
    comm, fields = got
    try:
        cpu = int(fields[STAT_PROCESSOR - 3])
    except (IndexError, ValueError):
        cpu = 0
    return comm.decode("utf-8", "replace"), cpu


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
