"""What applications import: register user events, check whether anyone listens, emit.

>>> from usertrace.sources.user_events import register
>>> req = register("app_req u32 status; u64 bytes; __data_loc char[] path")
>>> if req.enabled:                       # one byte of shared memory
...     req.emit(200, 5120, "/index.html")
>>> req.emit(status=404, bytes=0, path="/nope")   # by name; False when nobody listens
False

Without a session directory (or with one that is not safely the user's) every event reads as
disabled and ``emit`` does nothing: tracing never breaks an application.  A definition that
does not parse, or that clashes with another registered under the same name, raises
:class:`UserEventError`.

Each thread writes into its own ring (made at its first enabled emit), so threads never lock
on the emit path; after ``fork()`` the child gets new rings and holds the parent's events.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

from . import abi
from .emitters import make_emit
from .parse import Definition, UserEventError, parse_commands, parse_definition
from .ring import RingWriter, WriterState
from .session import (HolderFile, SessionDir, all_sessions, close_session, open_session)

_warned: set[str] = set()


class _BrokenWriter(WriterState):
    """Stands in for a ring that could not be made: every emit of the thread is lost (a
    writer state with no ring: limit -1, so every emit comes to make_room(), which drops it)."""

    __slots__ = ()


def _writer_for_thread(session: SessionDir):
    try:
        w = RingWriter.create(session)
    except (OSError, UserEventError) as exc:
        _warn_once(f"usertrace: cannot make a ring in {session.path}: {exc}")
        w = _BrokenWriter()
    session.tls.w = w
    return w


def _warn_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


class UserEvent(ctypes.Union):
    """A registered user event.  ``enabled`` and ``emit`` are the hot paths.

    The object is a view of its own status byte in the session's shared status page (a
    ctypes union made with ``from_buffer``), so ``enabled`` is read by a C descriptor, one
    byte load, with no Python call.  Other attributes live in the instance dict.

    ``emit(*values, **values) -> bool`` writes the event if anyone listens.  Values follow the
    fields in order, or go by name.  Integers must fit their field; char arrays and strings
    take ``str`` (UTF-8) or bytes; ``__data_loc``/``__rel_loc`` strings get their NUL appended;
    other dynamic arrays take bytes or a sequence of integers.  It returns False when nobody
    listens or the thread's ring is full (the loss is counted for the tracer).
    """

    _fields_ = [("enabled", ctypes.c_bool), ("status", ctypes.c_uint8)]

    @classmethod
    def _make(cls, definition: Definition, session: SessionDir | None, slot=None) -> "UserEvent":
        if session is None:
            ev = cls.from_buffer(bytearray(1))
        else:
            ev = cls.from_buffer(session.status, slot.index)
        ev.definition = definition
        ev.session = session
        ev.slot = slot
        ev.index = slot.index if slot is not None else 0
        ev._holds = session is not None
        ev.emit = make_emit(ev, _writer_for_thread) if session is not None else _disabled_emit
        return ev

    @property
    def name(self) -> str:
        return self.definition.name

    def unregister(self) -> None:
        """Stop holding the event; ``emit`` does nothing from now on.  Idempotent.

        ``enabled`` keeps reading the status byte of the index the event had, which another
        event may get once this one is deleted: do not rely on it after unregistering.
        """
        sess = self.session
        self.emit = _disabled_emit
        if sess is not None and self._holds:
            self._holds = False
            _release(sess, self.index)
            close_session(sess)

    close = unregister

    def __enter__(self) -> "UserEvent":
        return self

    def __exit__(self, *exc) -> None:
        self.unregister()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<UserEvent {self.definition.canonical!r} index={self.index} {state}>"


def _disabled_emit(*args, **kwargs) -> bool:
    return False


# -- registration ------------------------------------------------------------------------------
_hold_counts: dict[tuple[int, int], int] = {}    # (id(session), index) -> registrations


def register(definition: str, *, persist: bool = False, multi_format: bool = False,
             session_dir: str | None = None) -> UserEvent:
    """Register (or find) the event of ``definition`` in the user's session.

    ``name[:FLAGS] [field[;field...]]`` in the kernel's user_events syntax; ``persist`` keeps
    the event after the last process that holds it is gone, ``multi_format`` lets other
    processes register other fields under the same name (the event is then
    ``user_events_multi:name.<hex id>``).
    """
    flags = (abi.USER_EVENT_REG_PERSIST if persist else 0) | \
        (abi.USER_EVENT_REG_MULTI_FORMAT if multi_format else 0)
    defn = parse_definition(definition, flags)
    try:
        sess = open_session(session_dir, create=True)
    except (OSError, UserEventError) as exc:
        _warn_once(f"usertrace: user events are disabled: {exc}")
        return UserEvent._make(defn, None)
    try:
        with sess.locked():
            slot = sess.register(defn, hold=True)
            key = (id(sess), slot.index)
            _hold_counts[key] = _hold_counts.get(key, 0) + 1
    except BaseException:
        close_session(sess)
        raise
    return UserEvent._make(defn, sess, slot)


def _release(sess: SessionDir, index: int) -> None:
    with sess.locked():
        key = (id(sess), index)
        n = _hold_counts.get(key, 0) - 1
        if n > 0:
            _hold_counts[key] = n
            return
        _hold_counts.pop(key, None)
        sess.release(index)


def dynamic_events(text: str, session_dir: str | None = None) -> None:
    """Write ``u:DEFINITION`` / ``-:[SYSTEM/]NAME`` lines, as to the kernel's dynamic_events.

    ``u:`` events persist (as in the kernel); ``-:`` deletes an event that no process holds
    and no tracer has enabled (else BUSY).  Raises UserEventError on the first bad line.
    """
    commands = parse_commands(text)
    sess = open_session(session_dir, create=True)
    try:
        for cmd in commands:
            if cmd.op == "add":
                sess.register(cmd.definition, hold=False)
            else:
                sess.delete(cmd.name, cmd.system, cmd.fields)
    finally:
        close_session(sess)


def read_dynamic_events(session_dir: str | None = None) -> str:
    """The registered events, a ``u:name type name; type name`` line each, as the kernel shows."""
    sess = open_session(session_dir, create=True)
    try:
        sess.collect()
        return "".join(f"{abi.USER_EVENTS_PREFIX}{s.text}\n" for s in sess.slots())
    finally:
        close_session(sess)


def status_text(session_dir: str | None = None) -> str:
    """The kernel's ``user_events_status`` text: each event with who uses it, then counts."""
    sess = open_session(session_dir, create=True)
    try:
        sess.collect()
        lines, busy = [], 0
        for s in sess.slots():
            st = sess.status[s.index]
            name = s.full_name().split(":", 1)[1]
            if st:
                users = [n for bit, n in ((abi.EVENT_STATUS_FTRACE, "ftrace"),
                                          (abi.EVENT_STATUS_PERF, "perf"),
                                          (abi.EVENT_STATUS_OTHER, "other")) if st & bit]
                lines.append(f"{name} # Used by {' '.join(users)}\n")
                busy += 1
            else:
                lines.append(f"{name}\n")
        return "".join(lines) + f"\nActive: {len(lines)}\nBusy: {busy}\n"
    finally:
        close_session(sess)


# -- fork --------------------------------------------------------------------------------------
def _after_fork_in_child() -> None:
    """The child of fork(): fresh locks, no inherited rings, and it holds what its parent held."""
    import usertrace.sources.user_events.session as session_mod

    session_mod._sessions_lock = threading.Lock()
    for sess in all_sessions():
        sess.tlock = threading.RLock()
        sess._depth = 0
        sess.ring_seq = 0
        sess.tracer = None           # the tracer is the parent, not this child
        w = sess.tls.__dict__.pop("w", None)
        if isinstance(w, RingWriter):
            w.pid = -1               # the parent's ring: unmap it here, never mark it closed
            w.close(mark=False)
        parent = sess.holder
        if parent is not None:
            bitmap = parent.bitmap()
            parent.close()
            sess.holder = None
            try:
                with sess.locked():
                    sess.holder = HolderFile.create(sess, bitmap)
            except (OSError, UserEventError):
                pass


os.register_at_fork(after_in_child=_after_fork_in_child)
