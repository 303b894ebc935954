"""``/proc/PID/stat``, read the one way both the ptrace engine and user events need.

The line is ``pid (comm) state ppid ...``; fields are numbered from 1 as in proc(5).  comm runs
from the first ``(`` to the last ``)`` (a comm may hold spaces and parentheses), then the
fields from 3 on are separated by single spaces::

    1234 (my (odd) app) S 1 1234 ...
                        ^ field 3

Nothing here imports the engine, so an application emitting user events pays for none of it.
"""

from __future__ import annotations

import os

STAT_START_TIME = 22   # starttime: clock ticks after boot when the process started
STAT_PROCESSOR = 39    # processor: the CPU the task last ran on


def split_stat(raw: bytes, last: int) -> tuple[bytes, list[bytes]] | None:
    """``(comm, fields)`` of a stat line, where ``fields[n - 3]`` is field ``n`` for
    ``3 <= n <= last`` (what follows ``last`` stays in the last item); None when the line
    has no ``(comm)``."""
    lp = raw.find(b"(")
    rp = raw.rfind(b")")
    if lp < 0 or rp < lp:
        return None
    return raw[lp + 1: rp], raw[rp + 2:].split(b" ", last - 2)


def read_stat_raw(pid: int, strict: bool = False) -> bytes | None:
    """The stat line of a process or task, None when it is gone.  With ``strict``, an error
    that says nothing of the process (no descriptor free) is raised instead."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        if strict:
            raise
        return None
    try:
        return os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)


def proc_start_time(pid: int, strict: bool = False) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks); None: no such process
    (``strict``: see :func:`read_stat_raw`)."""
    raw = read_stat_raw(pid, strict)
    got = split_stat(raw, STAT_START_TIME) if raw is not None else None
    try:
        return int(got[1][STAT_START_TIME - 3]) if got else None
    except (IndexError, ValueError):
        return None
