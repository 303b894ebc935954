"""What each file descriptor of each traced process names, for strace's ``-y``.

The tables follow the calls seen: ``openat`` and the other calls that return a descriptor
(with the path they opened, made absolute against the directory descriptor or the working
directory when those are known), ``dup``, ``fcntl(F_DUPFD)``, ``pipe2``, ``close``,
``close_range``, ``execve`` (which closes the close-on-exec ones), ``chdir``.  A child made
by ``clone``/``fork`` starts with a copy of its parent's table, or shares it
(``CLONE_FILES``, threads).  Descriptors opened before tracing began come from
``/proc/PID/fd`` (:meth:`FdTables.load_proc`); in a live trace every look-up may ask
``/proc`` first (``live=True``), which is what strace does.  Offline, ``resolve=True`` resolves symbolic
links on this machine, as ``/proc`` shows paths (``/lib/x.so`` opened, ``/usr/lib/x.so``
shown).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...sources.syscalls.classes import FD_RETURNING
from ...sources.syscalls.user_data import split_string


@dataclass
class _Table:
    fds: dict[int, tuple[str | None, bool]] = field(default_factory=dict)  # fd -> (path, cloexec)
    cwd: str | None = None


class FdTables:
    """The descriptor tables of the traced tasks (threads share their process's)."""

    def __init__(self, xlat, live: bool = False, proc: str = "/proc", resolve: bool = False):
        self.x = xlat
        self.live = live
        self.resolve = resolve
        self.proc = proc
        self._of: dict[int, _Table] = {}
        self._cloexec = xlat.value("open_flags", "O_CLOEXEC")
        self._at_fdcwd = xlat.value("at_fdcwd", "AT_FDCWD")

    def table(self, tid: int) -> _Table:
        t = self._of.get(tid)
        if t is None:
            t = self._of[tid] = _Table()
        return t

    def path(self, tid: int, fd: int) -> str | None:
        """What ``fd`` of task ``tid`` names, or None when unknown."""
        if self.live:
            try:
                return os.readlink(f"{self.proc}/{tid}/fd/{fd}")
            except OSError:
                pass
        got = self.table(tid).fds.get(fd)
        return got[0] if got else None

    def cwd(self, tid: int) -> str | None:
        """The working directory of task ``tid``, when known."""
        if self.live:
            try:
                return os.readlink(f"{self.proc}/{tid}/cwd")
            except OSError:
                pass
        return self.table(tid).cwd

    def load_proc(self, pid: int, tids=()) -> None:
        """Read the descriptors and working directory of ``pid`` from ``/proc`` (at attach);
        ``tids``: its other threads, which share the table."""
        t = self.table(pid)
        base = f"{self.proc}/{pid}"
        try:
            names = os.listdir(f"{base}/fd")
        except OSError:
            names = []
        for name in names:
            if not name.isdigit():
                continue
            try:
                target = os.readlink(f"{base}/fd/{name}")
            except OSError:
                continue
            t.fds[int(name)] = (target, False)
        try:
            t.cwd = os.readlink(f"{base}/cwd")
        except OSError:
            pass
        for tid in tids:
            self._of[tid] = t

    def new_task(self, parent: int, child: int, share: bool) -> None:
        """``child`` was created by ``parent``: it shares or copies the table."""
        src = self.table(parent)
        if share:
            self._of[child] = src
        else:
            self._of[child] = _Table(dict(src.fds), src.cwd)

    def _absolute(self, t: _Table, dirfd: int | None, path: str) -> str:
        """``path`` made absolute (when its directory is known) and normalized; with
        ``resolve``, its symbolic links resolved on this machine (as /proc would show it)."""
        path = self._joined(t, dirfd, path)
        return os.path.realpath(path) if self.resolve and path.startswith("/") else path

    def _joined(self, t: _Table, dirfd: int | None, path: str) -> str:
        if path.startswith("/"):
            return os.path.normpath(path)
        if dirfd is None or dirfd == self._at_fdcwd:
            base = t.cwd
        else:
            got = t.fds.get(dirfd)
            base = got[0] if got else None
        if base is None or not base.startswith("/"):
            return path
        return os.path.normpath(os.path.join(base, path))

    def after(self, call) -> None:
        """Update the tables after a call returned (``call``: a decoders.Call)."""
        if call.ret is None or call.failed:
            return
        t = self.table(call.tid)
        name = call.name
        ret = call.ret
        if name in ("close",):
            t.fds.pop(call.arg(0) & 0xFFFF_FFFF, None)
        elif name == "close_range":
            lo, hi = call.arg(0) & 0xFFFF_FFFF, call.arg(1) & 0xFFFF_FFFF
            for fd in [f for f in t.fds if lo <= f <= hi]:
                t.fds.pop(fd)
        elif name in ("dup", "dup2", "dup3") or (name == "fcntl" and self._is_dupfd(call)):
            src = t.fds.get(call.arg(0) & 0xFFFF_FFFF)
            cloexec = (name == "dup3" and bool(call.arg(2) & self._cloexec)) or (
                name == "fcntl" and self._is_dupfd_cloexec(call))
            t.fds[ret] = ((src[0] if src else None), cloexec)
        elif name in ("execve", "execveat"):
            for fd in [f for f, (_, ce) in t.fds.items() if ce]:
                t.fds.pop(fd)
        elif name in ("chdir",):
            got = split_string(call.data(0))
            if got is not None and not got[1]:
                t.cwd = self._absolute(t, None, got[0].decode("utf-8", "surrogateescape"))
        elif name == "fchdir":
            got = t.fds.get(call.arg(0) & 0xFFFF_FFFF)
            if got and got[0]:
                t.cwd = got[0]
        elif name in ("pipe", "pipe2", "socketpair"):
            from ...sources.syscalls.user_data import as_bytes
            i = 3 if name == "socketpair" else 0
            raw = as_bytes(call.data(i))
            cloexec = name == "pipe2" and bool(call.arg(1) & self._cloexec)
            if len(raw) >= 8:
                for k in (0, 4):
                    t.fds[int.from_bytes(raw[k:k + 4], "little", signed=True)] = (None, cloexec)
        elif name in ("fcntl",) and self._is_setfd(call):
            fd = call.arg(0) & 0xFFFF_FFFF
            if fd in t.fds:
                t.fds[fd] = (t.fds[fd][0], bool(call.arg(2) & 1))
        elif name in FD_RETURNING:
            self._opened(t, call)

    def _opened(self, t: _Table, call) -> None:
        name = call.name
        path = None
        cloexec = False
        if name in ("open", "creat"):
            got = split_string(call.data(0))
            if got is not None and not got[1]:
                path = self._absolute(t, None, got[0].decode("utf-8", "surrogateescape"))
            cloexec = name == "open" and bool(call.arg(1) & self._cloexec)
        elif name in ("openat", "openat2"):
            got = split_string(call.data(1))
            dirfd = call.arg(0) & 0xFFFF_FFFF
            dirfd = dirfd - (1 << 32) if dirfd & 0x8000_0000 else dirfd
            if got is not None and not got[1]:
                path = self._absolute(t, dirfd, got[0].decode("utf-8", "surrogateescape"))
            cloexec = name == "openat" and bool(call.arg(2) & self._cloexec)
        t.fds[call.ret] = (path, cloexec)

    def _cmd(self, call, name: str) -> bool:
        return call.arg(1) & 0xFFFF_FFFF == self.x.values("fcntl_cmds").get(name)

    def _is_dupfd(self, call) -> bool:
        return self._cmd(call, "F_DUPFD") or self._cmd(call, "F_DUPFD_CLOEXEC")

    def _is_dupfd_cloexec(self, call) -> bool:
        return self._cmd(call, "F_DUPFD_CLOEXEC")

    def _is_setfd(self, call) -> bool:
        return self._cmd(call, "F_SETFD")
