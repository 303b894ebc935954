"""The user's probe definitions, kept in the session directory as ``uprobe_events`` is kept
in the kernel: added all or nothing, listed as ``cat uprobe_events`` lists them, removed by
``-:[GRP/]EVENT``, cleared.

The file ``probe_events`` of the session directory (the one user events use: see
:func:`usertrace.sources.user_events.session.default_session_dir`) holds one definition per
line in the kernel's syntax, offsets resolved (a symbol or SDT name given by the user is
stored as the file offset it named).  A write replaces the file whole (written beside it,
then renamed) under a lock on the directory.

Adding follows ``register_trace_uprobe``: a new group/event registers a new event; an
existing one of the other kind (entry/return) is refused (``DIFF_PROBE_TYPE``); one of the
same kind takes the new probe as one more place of the same event if the arguments have the
same names and types (else ``DIFF_ARG_TYPE``) and it is not the same place with the same
arguments (``SAME_PROBE``).  A place already probed with another reference counter is
refused (``EINVAL``, no log, as the kernel).
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager

from ..user_events import abi
from ..user_events.session import default_session_dir, open_dir, open_file
from .errors import ProbeError
from .parse import (ParseContext, ProbeDefinition, ProbeRemoval, _Log, parse_command,
                    parse_definition, split_words, strip_comment)

FILE_NAME = "probe_events"


def session_dir(env: dict | None = None) -> str:
    """The session directory: ``$USERTRACE_SESSION`` of ``env``, else the default."""
    if env is not None and env.get(abi.SESSION_ENV):
        return env[abi.SESSION_ENV]
    return default_session_dir()


def _inode(path: str) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except OSError:
        return path


def _same_args(a: ProbeDefinition, b: ProbeDefinition) -> int:
    """``trace_probe_compare_arg_type``: 0, or the 1-based index of the first difference."""
    if len(a.args) != len(b.args):
        return min(len(a.args), len(b.args)) + 1
    for i, (x, y) in enumerate(zip(a.args, b.args)):
        if x.type != y.type or x.count != y.count or x.name != y.name:
            return i + 1
    return 0


def register(defs: list[ProbeDefinition], new: ProbeDefinition) -> list[ProbeDefinition]:
    """``register_trace_uprobe``: ``defs`` with ``new`` added, or ProbeError."""
    command = new.source or str(new)
    log = _Log(split_words(strip_comment(command)))
    for d in defs:
        if (_inode(d.path) == _inode(new.path) and d.offset == new.offset
                and d.ref_ctr_offset != new.ref_ctr_offset):
            raise ProbeError("BAD_REFCNT", log.command(), 0, errno.EINVAL,
                             "this place is already probed with another reference counter",
                             logged=False)
    same = [d for d in defs if d.group == new.group and d.event == new.event]
    if same:
        old = same[0]
        if old.is_return != new.is_return:
            raise log.error("DIFF_PROBE_TYPE", 0, errno.EEXIST, index=0)
        diff = _same_args(new, old)
        if diff:
            raise log.error("DIFF_ARG_TYPE", 0, errno.EEXIST, index=diff + 1)
        for d in same:
            if (_inode(d.path) == _inode(new.path) and d.offset == new.offset
                    and [a.comm for a in d.args] == [a.comm for a in new.args]):
                raise log.error("SAME_PROBE", 0, errno.EEXIST, index=0)
    return defs + [new]


def release(defs: list[ProbeDefinition], removal: ProbeRemoval) -> list[ProbeDefinition]:
    """``dyn_event_release``: ``defs`` without what ``removal`` matches (ENOENT if nothing)."""
    keep = [d for d in defs if not removal.matches(d)]
    if len(keep) == len(defs):
        raise ProbeError("NO_SUCH_EVENT", str(removal), 0, errno.ENOENT,
                         f"no probe event matches {removal}", logged=False)
    return keep


def apply_commands(defs: list[ProbeDefinition], commands: list[str], ctx: ParseContext,
                   removals: bool = True
                   ) -> tuple[list[ProbeDefinition], list[ProbeDefinition | ProbeRemoval]]:
    """``defs`` after the commands, in order, as writes to ``uprobe_events``: (the definitions,
    what each command added or removed); the first refused command raises ProbeError.
    Without ``removals``, a removal is refused as not a definition."""
    done: list[ProbeDefinition | ProbeRemoval] = []
    for text in commands:
        item = parse_command(text, ctx)
        if item is None:
            continue
        if isinstance(item, ProbeRemoval):
            if not removals:
                item = parse_definition(text, ctx)      # raises: not a definition
            defs = release(defs, item)
        else:
            defs = register(defs, item)
        done.append(item)
    return defs, done


class ProbeStore:
    """The probe definitions of one session directory."""

    def __init__(self, path: str | None = None, ctx: ParseContext | None = None):
        self.path = path or default_session_dir()
        self.ctx = ctx or ParseContext()

    @contextmanager
    def _locked(self, create: bool):
        dfd = open_dir(self.path, create)
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX)
            yield dfd
        finally:
            os.close(dfd)

    def _read_lines(self, dfd: int) -> list[str]:
        try:
            fd = open_file(dfd, FILE_NAME, self.path, create=False, write=False)
        except FileNotFoundError:
            return []
        with os.fdopen(fd, "r") as f:
            return [ln.rstrip("\n") for ln in f if ln.strip()]

    def _write_lines(self, dfd: int, lines: list[str]) -> None:
        tmp = f".{FILE_NAME}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     abi.FILE_MODE, dir_fd=dfd)
        with os.fdopen(fd, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.rename(tmp, FILE_NAME, src_dir_fd=dfd, dst_dir_fd=dfd)

    def lines(self) -> list[str]:
        """The definitions as ``cat uprobe_events`` shows them."""
        if not os.path.isdir(self.path):
            return []
        with self._locked(False) as dfd:
            return self._read_lines(dfd)

    def listing(self) -> str:
        return "".join(line + "\n" for line in self.lines())

    def definitions(self) -> list[ProbeDefinition]:
        """The stored definitions, parsed (a file that moved or vanished raises ProbeError)."""
        return [parse_command(line, self.ctx) for line in self.lines()]

    def apply(self, commands: list[str]) -> list[ProbeDefinition | ProbeRemoval]:
        """Add and remove, in order, all or nothing: one refused command changes nothing."""
        with self._locked(True) as dfd:
            defs = [parse_command(line, self.ctx) for line in self._read_lines(dfd)]
            defs, done = apply_commands(defs, commands, self.ctx)
            self._write_lines(dfd, [str(d) for d in defs])
        return done

    def add(self, texts: list[str]) -> list[ProbeDefinition]:
        return [d for d in self.apply(texts) if isinstance(d, ProbeDefinition)]

    def remove(self, text: str) -> None:
        self.apply([text if text.startswith("-") else f"-:{text}"])

    def clear(self) -> int:
        """Remove every definition; how many there were."""
        with self._locked(True) as dfd:
            n = len(self._read_lines(dfd))
            self._write_lines(dfd, [])
        return n
