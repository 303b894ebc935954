"""A user events session: the directory, its mapped files, the registration lock.

Both sides use this module: applications (through :mod:`.client`) to register events, the
tracer (:mod:`.server`) to enable them and to find the writers' rings.  One :class:`SessionDir`
object per directory per process (:func:`open_session`): POSIX record locks belong to a
process, so two objects in one process would not exclude each other and closing either would
drop the other's locks.

Security: the directory must be the user's own, a real directory (not a symlink) with no group
or other permission bits; every file is opened relative to the directory's descriptor with
O_NOFOLLOW and must be a regular file owned by the user, mode 0600.  Anything else is refused
with ``UserEventError("BAD_SESSION")``.
"""

from __future__ import annotations

import fcntl
import fnmatch
import mmap
import os
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from . import abi
from .parse import Definition, UserEventError, parse_definition

_O_BASE = os.O_NOFOLLOW | os.O_CLOEXEC


# -- locating the session ------------------------------------------------------------------------
def default_session_dir() -> str:
    """``$USERTRACE_SESSION``, else ``$XDG_RUNTIME_DIR/usertrace``, else
    ``/dev/shm/usertrace-<uid>``."""
    explicit = os.environ.get(abi.SESSION_ENV)
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        try:
            st = os.stat(xdg)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077:
                return os.path.join(xdg, abi.XDG_SUBDIR)
        except OSError:
            pass
    return abi.SHM_DIR_TEMPLATE.format(uid=os.geteuid())


def _refuse(path: str, why: str) -> UserEventError:
    return UserEventError("BAD_SESSION", f"{path}: {why}")


def check_owned(st: os.stat_result, path: str, kind: str) -> None:
    """Refuse what is not the user's own, or lets the group or others in."""
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"{kind} is owned by uid {st.st_uid}, not {os.geteuid()}")
    if st.st_mode & 0o077:
        raise _refuse(path, f"{kind} has mode {stat.S_IMODE(st.st_mode):04o}; "
                            f"group and others must have no access")


def open_dir(path: str, create: bool) -> int:
    """A descriptor of the session directory, checked (made 0700 first if ``create``)."""
    made = False
    if create:
        try:
            os.mkdir(path, abi.DIR_MODE)
            made = True
        except FileExistsError:
            pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_BASE)
    except OSError as exc:
        if exc.errno in (40, 20):   # ELOOP (a symlink), ENOTDIR
            raise _refuse(path, "not a directory (symlinks are refused)") from None
        raise
    try:
        if made:
            os.fchmod(fd, abi.DIR_MODE)
        check_owned(os.fstat(fd), path, "directory")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(dfd: int, name: str, dirpath: str, create: bool = False,
              write: bool = True) -> int:
    """Open ``name`` in the session directory: no symlinks, a regular file, owner only."""
    flags = (os.O_RDWR if write else os.O_RDONLY) | _O_BASE
    try:
        fd = os.open(name, flags, dir_fd=dfd)
    except FileNotFoundError:
        if not create:
            raise
        try:
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, abi.FILE_MODE, dir_fd=dfd)
        except FileExistsError:
            fd = os.open(name, flags, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == 40:
            raise _refuse(os.path.join(dirpath, name), "is a symlink") from None
        raise
    try:
        st = os.fstat(fd)
        where = os.path.join(dirpath, name)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(where, "not a regular file")
        check_owned(st, where, "file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); None: no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def thread_comm(tid: int) -> bytes:
    try:
        with open(f"/proc/self/task/{tid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")[:15]
    except OSError:
        return b""


# -- registry slots ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One live event of the registry."""

    index: int
    flags: int
    serial: int
    multi_id: int
    text: str            # canonical definition

    @property
    def tag(self) -> int:
        """The upper half of the index word a writer puts in its records (serial & 0xffff)."""
        return self.serial & 0xFFFF

    @property
    def index_word(self) -> int:
        return self.index | self.tag << 16

    def definition(self) -> Definition:
        return parse_definition(self.text, self.flags)

    @property
    def name(self) -> str:
        return self.text.split(" ", 1)[0]

    def full_name(self) -> str:
        """``system:tracepoint`` as patterns match it."""
        if self.flags & abi.USER_EVENT_REG_MULTI_FORMAT:
            return f"{abi.USER_EVENTS_MULTI_SYSTEM}:{self.name}.{self.multi_id:x}"
        return f"{abi.USER_EVENTS_SYSTEM}:{self.name}"


def normalize_pattern(pattern: str) -> str:
    """A pattern as the session keeps it: a glob over ``system:event``.

    ``sys:ev`` and ``sys/ev`` keep their system; a bare word names a system when it matches one
    of ours (``user_events``), else events of that name in any system (``app_*``).
    """
    for sep in (":", "/"):
        if sep in pattern:
            sys_pat, ev_pat = pattern.split(sep, 1)
            return f"{sys_pat or '*'}:{ev_pat or '*'}"
    if any(fnmatch.fnmatchcase(s, pattern)
           for s in (abi.USER_EVENTS_SYSTEM, abi.USER_EVENTS_MULTI_SYSTEM)):
        return f"{pattern}:*"
    return f"*:{pattern}"


# -- the session ---------------------------------------------------------------------------------
class SessionDir:
    """An open session directory with its control, status and registry files mapped."""

    def __init__(self, path: str, create: bool = True):
        self.path = path
        self.refs = 0
        self.tlock = threading.RLock()
        self._depth = 0
        self._fds: list[int] = []
        self.dfd = open_dir(path, create)
        self._fds.append(self.dfd)
        try:
            self.reg_fd = self._open(abi.REGISTRY_FILE, create)
            with self.locked():
                self._init_files(create)
            self.ctl_fd = self._open(abi.CONTROL_FILE, False)
            self.status_fd = self._open(abi.STATUS_FILE, False)
            self.registry = self._map(self.reg_fd, abi.REGISTRY_SIZE, abi.REGISTRY_MAGIC)
            self.control = self._map(self.ctl_fd, abi.CONTROL_SIZE, abi.CONTROL_MAGIC)
            self.status = self._map(self.status_fd, abi.STATUS_SIZE, None)
        except BaseException:
            self._close_fds()
            raise
        self.ctl_q = memoryview(self.control).cast("Q")
        self.tls = threading.local()       # the calling thread's ring writer (client side)
        self.holder = None                 # this process's holder file (client side)
        self.tracer = None                 # the UserEventsServer of this process, if any
        self.ring_seq = 0

    # -- files -----------------------------------------------------------------------------
    def _open(self, name: str, create: bool) -> int:
        fd = open_file(self.dfd, name, self.path, create)
        self._fds.append(fd)
        return fd

    def _map(self, fd: int, size: int, magic: bytes | None) -> mmap.mmap:
        if os.fstat(fd).st_size < size:
            raise _refuse(os.path.join(self.path, ""), "a session file is too short")
        mm = mmap.mmap(fd, size)
        if magic is not None and mm[:8] != magic:
            mm.close()
            raise _refuse(self.path, "a session file has a foreign layout")
        return mm

    def _init_files(self, create: bool) -> None:
        """Make the session's files if the registry is new (under the registration lock)."""
        head = os.pread(self.reg_fd, 16, 0)
        if head[:8] == abi.REGISTRY_MAGIC:
            if abi.U32.unpack_from(head, abi.REG_VERSION)[0] != abi.REGISTRY_VERSION:
                raise _refuse(self.path, "the session was made by an incompatible version")
            return
        if head.strip(b"\0"):
            raise _refuse(self.path, "the registry file has a foreign layout")
        if not create:
            raise FileNotFoundError(os.path.join(self.path, abi.REGISTRY_FILE))
        for name, size in ((abi.CONTROL_FILE, abi.CONTROL_SIZE),
                           (abi.STATUS_FILE, abi.STATUS_SIZE)):
            fd = open_file(self.dfd, name, self.path, create=True)
            try:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
                if name == abi.CONTROL_FILE:
                    hdr = bytearray(64)
                    hdr[0:8] = abi.CONTROL_MAGIC
                    abi.U32.pack_into(hdr, abi.CTL_VERSION, abi.CONTROL_VERSION)
                    abi.U32.pack_into(hdr, abi.CTL_SIZE, abi.CONTROL_SIZE)
                    os.pwrite(fd, bytes(hdr), 0)
            finally:
                os.close(fd)
        os.ftruncate(self.reg_fd, abi.REGISTRY_SIZE)
        hdr = bytearray(64)
        abi.U32.pack_into(hdr, abi.REG_VERSION, abi.REGISTRY_VERSION)
        abi.U32.pack_into(hdr, abi.REG_SLOT_SIZE, abi.SLOT_SIZE)
        abi.U32.pack_into(hdr, abi.REG_NSLOTS, abi.MAX_EVENTS)
        abi.U32.pack_into(hdr, abi.REG_HIGH, 1)
        abi.U64.pack_into(hdr, abi.REG_NEXT_SERIAL, 1)
        os.pwrite(self.reg_fd, bytes(hdr[8:]), 8)
        os.pwrite(self.reg_fd, abi.REGISTRY_MAGIC, 0)     # the magic last: the files are ready

    def _close_fds(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def close(self) -> None:
        for name in ("ctl_q",):
            mv = getattr(self, name, None)
            if mv is not None:
                mv.release()
        for mm in (getattr(self, "registry", None), getattr(self, "control", None),
                   getattr(self, "status", None)):
            if mm is not None:
                try:
                    mm.close()
                except BufferError:
                    pass       # a UserEvent still maps the status page; the GC unmaps it
        if self.holder is not None:
            self.holder.close()
        self._close_fds()

    # -- the registration lock -------------------------------------------------------------
    @contextmanager
    def locked(self):
        """The registration lock: a thread lock, then the fcntl write lock on the registry."""
        with self.tlock:
            if self._depth == 0:
                fcntl.lockf(self.reg_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.lockf(self.reg_fd, fcntl.LOCK_UN)

    def generation(self) -> int:
        return self.ctl_q[abi.CTL_GENERATION // 8]

    def bump(self) -> None:
        """Tell the tracer that something changed (call under the lock)."""
        self.ctl_q[abi.CTL_GENERATION // 8] = self.ctl_q[abi.CTL_GENERATION // 8] + 1

    def ring_data_size(self) -> int:
        size = self.ctl_q[abi.CTL_RING_SIZE // 8]
        if not size:
            try:
                size = int(os.environ.get(abi.RING_SIZE_ENV, "0")) * 1024
            except ValueError:
                size = 0
        size = size or abi.DEFAULT_RING_SIZE
        size = min(max(size, abi.MIN_RING_SIZE), abi.MAX_RING_SIZE)
        return 1 << (size - 1).bit_length()

    # -- registry slots --------------------------------------------------------------------
    def _high(self) -> int:
        return abi.U32.unpack_from(self.registry, abi.REG_HIGH)[0]

    def slot(self, index: int) -> Slot | None:
        base = abi.REGISTRY_HEADER + index * abi.SLOT_SIZE
        state, flags, serial, multi_id, n = abi.SLOT_HEAD.unpack_from(self.registry, base)
        if state != abi.SLOT_LIVE or not 0 < n < abi.MAX_EVENT_DESC:
            return None
        raw = self.registry[base + abi.SLOT_DEF: base + abi.SLOT_DEF + n]
        return Slot(index, flags, serial, multi_id, raw.decode("utf-8", "replace"))

    def slots(self) -> list[Slot]:
        high = min(self._high(), abi.MAX_EVENTS)
        return [s for s in map(self.slot, range(1, high)) if s is not None]

    def _write_slot(self, index: int, flags: int, serial: int, multi_id: int, text: str) -> None:
        base = abi.REGISTRY_HEADER + index * abi.SLOT_SIZE
        raw = text.encode()
        self.registry[base + abi.SLOT_DEF: base + abi.SLOT_DEF + abi.MAX_EVENT_DESC] = \
            raw.ljust(abi.MAX_EVENT_DESC, b"\0")
        abi.SLOT_HEAD.pack_into(self.registry, base, abi.SLOT_FREE, flags, serial, multi_id,
                                len(raw))
        abi.U32.pack_into(self.registry, base + abi.SLOT_STATE, abi.SLOT_LIVE)

    def _free_slot(self, index: int) -> None:
        base = abi.REGISTRY_HEADER + index * abi.SLOT_SIZE
        abi.U32.pack_into(self.registry, base + abi.SLOT_STATE, abi.SLOT_FREE)
        self.status[index] = 0

    def register(self, defn: Definition, hold: bool = True) -> Slot:
        """Find or create the event of ``defn``; hold it for this process if ``hold``.

        The same name with the same fields is the same event; another definition under a
        taken name is NAME_IN_USE (unless the old event is garbage: no holder, not persistent,
        not enabled).  A new event's status byte starts with the bits of the enabled patterns
        that match it, so a tracer that enabled ``app_*`` sees ``app_new`` from its first emit.
        """
        with self.locked():
            found = self._find(defn)
            if found is None:
                found = self._create(defn)
            if hold:
                self.holder_file().set(found.index, True)
            self.bump()
            return found

    def _find(self, defn: Definition) -> Slot | None:
        canonical = defn.canonical
        for s in self.slots():
            if s.name != defn.name:
                continue
            if bool(s.flags & abi.USER_EVENT_REG_MULTI_FORMAT) != defn.multi_format:
                continue
            if s.text == canonical:
                return s
            if defn.multi_format:
                continue
            if self._is_garbage(s):
                self._free_slot(s.index)
                continue
            raise UserEventError("NAME_IN_USE", f"{defn.name!r} is registered as {s.text!r}")
        return None

    def _create(self, defn: Definition) -> Slot:
        high = self._high()
        index = next((i for i in range(1, high) if self.slot(i) is None), high)
        if index >= abi.MAX_EVENTS:
            self.collect()
            index = next((i for i in range(1, high) if self.slot(i) is None), None)
            if index is None:
                raise UserEventError("NO_INDEX")
        serial = abi.U64.unpack_from(self.registry, abi.REG_NEXT_SERIAL)[0] or 1
        abi.U64.pack_into(self.registry, abi.REG_NEXT_SERIAL, serial + 1)
        multi_id = 0
        if defn.multi_format:
            multi_id = abi.U64.unpack_from(self.registry, abi.REG_NEXT_MULTI)[0]
            abi.U64.pack_into(self.registry, abi.REG_NEXT_MULTI, multi_id + 1)
        self._write_slot(index, defn.flags, serial, multi_id, defn.canonical)
        if index >= high:
            abi.U32.pack_into(self.registry, abi.REG_HIGH, index + 1)
        slot = Slot(index, defn.flags, serial, multi_id, defn.canonical)
        self.status[index] = self.pattern_bits(slot.full_name())
        return slot

    def release(self, index: int) -> None:
        """This process no longer holds event ``index``; a garbage event is deleted."""
        with self.locked():
            if self.holder is not None:
                self.holder.set(index, False)
            s = self.slot(index)
            if s is not None and self._is_garbage(s):
                self._free_slot(index)
            self.bump()

    def delete(self, name: str, system: str | None = None, fields: str | None = None) -> int:
        """Delete the events named ``name`` (dynamic_events ``-:``): NOT_FOUND, BUSY."""
        from .parse import normalize_fields
        with self.locked():
            victims = []
            for s in self.slots():
                multi = bool(s.flags & abi.USER_EVENT_REG_MULTI_FORMAT)
                tp = f"{s.name}.{s.multi_id:x}" if multi else s.name
                if system is None:
                    hit = name in (s.name, tp)
                elif system == abi.USER_EVENTS_SYSTEM:
                    hit = not multi and name == s.name
                else:
                    hit = multi and name in (s.name, tp)
                if not hit:
                    continue
                if fields is not None and s.text.partition(" ")[2] != normalize_fields(fields):
                    continue
                victims.append(s)
            if not victims:
                raise UserEventError("NOT_FOUND", repr(name))
            held = self.held_indexes()
            for s in victims:
                if self.status[s.index] or s.index in held:
                    raise UserEventError("BUSY", repr(name))
            for s in victims:
                self._free_slot(s.index)
            self.bump()
            return len(victims)

    # -- holders and garbage ---------------------------------------------------------------
    def holder_file(self) -> "HolderFile":
        if self.holder is None or self.holder.pid != os.getpid():
            self.holder = HolderFile.create(self)
        return self.holder

    def held_indexes(self) -> set[int]:
        """Indexes held by live processes; holder files of dead processes are removed."""
        held: set[int] = set()
        for entry in os.scandir(self.dfd):
            if not entry.name.startswith(abi.HOLDER_PREFIX):
                continue
            bits = HolderFile.read_live(self, entry.name)
            if bits is None:
                try:
                    os.unlink(entry.name, dir_fd=self.dfd)
                except OSError:
                    pass
                continue
            for byte_i, byte in enumerate(bits):
                while byte:
                    low = byte & -byte
                    held.add(byte_i * 8 + low.bit_length() - 1)
                    byte ^= low
        return held

    def _is_garbage(self, s: Slot) -> bool:
        if s.flags & abi.USER_EVENT_REG_PERSIST or self.status[s.index]:
            return False
        return s.index not in self.held_indexes()

    def collect(self) -> int:
        """Delete the events no live process holds that are neither persistent nor enabled."""
        with self.locked():
            held = self.held_indexes()
            n = 0
            for s in self.slots():
                if not s.flags & abi.USER_EVENT_REG_PERSIST and not self.status[s.index] \
                        and s.index not in held:
                    self._free_slot(s.index)
                    n += 1
            if n:
                self.bump()
            return n

    # -- patterns and status ---------------------------------------------------------------
    def patterns(self) -> list[tuple[str, int]]:
        out = []
        for k in range(abi.MAX_PATTERNS):
            base = abi.CTL_PATTERNS + k * abi.PATTERN_SLOT_SIZE
            used, bits, n = abi.PATTERN_HEAD.unpack_from(self.control, base)
            if used and 0 < n <= abi.PATTERN_MAX_LEN:
                glob = self.control[base + 4: base + 4 + n].decode("utf-8", "replace")
                out.append((glob, bits))
        return out

    def pattern_bits(self, full_name: str) -> int:
        bits = 0
        for glob, b in self.patterns():
            if fnmatch.fnmatchcase(full_name, glob):
                bits |= b
        return bits

    def set_patterns(self, patterns: list[tuple[str, int]]) -> None:
        """Replace the pattern table and recompute every status byte (under the lock)."""
        if len(patterns) > abi.MAX_PATTERNS:
            raise UserEventError("TOO_MANY_PATTERNS")
        table = bytearray(abi.MAX_PATTERNS * abi.PATTERN_SLOT_SIZE)
        for k, (glob, bits) in enumerate(patterns):
            raw = glob.encode()
            if not raw or len(raw) > abi.PATTERN_MAX_LEN or b"\0" in raw:
                raise UserEventError("BAD_PATTERN", repr(glob))
            base = k * abi.PATTERN_SLOT_SIZE
            abi.PATTERN_HEAD.pack_into(table, base, 1, bits, len(raw))
            table[base + 4: base + 4 + len(raw)] = raw
        with self.locked():
            self.control[abi.CTL_PATTERNS: abi.CTL_PATTERNS + len(table)] = table
            live = {s.index: s for s in self.slots()}
            for i in range(1, abi.MAX_EVENTS):
                s = live.get(i)
                want = 0
                if s is not None:
                    name = s.full_name()
                    for glob, bits in patterns:
                        if fnmatch.fnmatchcase(name, glob):
                            want |= bits
                if self.status[i] != want:
                    self.status[i] = want
            self.bump()


class HolderFile:
    """``proc-<pid>``: which events one process holds (a bitmap), with its start time."""

    def __init__(self, session: SessionDir, fd: int, mm: mmap.mmap, pid: int):
        self.session = session
        self.fd = fd
        self.mm = mm
        self.pid = pid

    @classmethod
    def create(cls, session: SessionDir, bitmap: bytes | None = None) -> "HolderFile":
        pid = os.getpid()
        name = f"{abi.HOLDER_PREFIX}{pid}"
        fd = open_file(session.dfd, name, session.path, create=True)
        os.ftruncate(fd, 0)
        os.ftruncate(fd, abi.HOLDER_SIZE)
        mm = mmap.mmap(fd, abi.HOLDER_SIZE)
        abi.U32.pack_into(mm, abi.HOLDER_PID, pid)
        abi.U64.pack_into(mm, abi.HOLDER_START, proc_start_time(pid) or 0)
        if bitmap:
            mm[abi.HOLDER_BITMAP: abi.HOLDER_BITMAP + len(bitmap)] = bitmap
        mm[0:8] = abi.HOLDER_MAGIC
        return cls(session, fd, mm, pid)

    def bitmap(self) -> bytes:
        return self.mm[abi.HOLDER_BITMAP: abi.HOLDER_SIZE]

    def set(self, index: int, on: bool) -> None:
        at = abi.HOLDER_BITMAP + index // 8
        bit = 1 << (index % 8)
        self.mm[at] = (self.mm[at] | bit) if on else (self.mm[at] & ~bit)

    def close(self) -> None:
        try:
            self.mm.close()
            os.close(self.fd)
        except (OSError, BufferError, ValueError):
            pass

    @staticmethod
    def read_live(session: SessionDir, name: str) -> bytes | None:
        """The bitmap of a holder file whose process is alive, None if it is dead or bad."""
        try:
            fd = open_file(session.dfd, name, session.path, write=False)
        except (OSError, UserEventError):
            return None
        try:
            data = os.pread(fd, abi.HOLDER_SIZE, 0)
        finally:
            os.close(fd)
        if len(data) < abi.HOLDER_SIZE or data[:8] != abi.HOLDER_MAGIC:
            # A file being made right now has no magic yet; its maker holds the lock.
            return None
        pid = abi.U32.unpack_from(data, abi.HOLDER_PID)[0]
        start = abi.U64.unpack_from(data, abi.HOLDER_START)[0]
        if name != f"{abi.HOLDER_PREFIX}{pid}" or proc_start_time(pid) != start:
            return None
        return data[abi.HOLDER_BITMAP:]


# -- one SessionDir per directory per process --------------------------------------------------
_sessions: dict[tuple[int, int], SessionDir] = {}
_sessions_lock = threading.Lock()


def open_session(path: str | None = None, create: bool = True) -> SessionDir:
    """The process's SessionDir for ``path`` (default: :func:`default_session_dir`), counted."""
    path = os.path.abspath(path or default_session_dir())
    with _sessions_lock:
        try:
            st = os.stat(path, follow_symlinks=False)
            key = (st.st_dev, st.st_ino)
            sess = _sessions.get(key)
        except FileNotFoundError:
            sess = None
        if sess is None or sess.status.closed:
            sess = SessionDir(path, create)
            st = os.fstat(sess.dfd)
            key = (st.st_dev, st.st_ino)
            _sessions[key] = sess
        sess.refs += 1
        return sess


def close_session(sess: SessionDir) -> None:
    with _sessions_lock:
        sess.refs -= 1
        if sess.refs > 0:
            return
        for key, s in list(_sessions.items()):
            if s is sess:
                del _sessions[key]
        sess.close()


def all_sessions() -> list[SessionDir]:
    with _sessions_lock:
        return list(_sessions.values())
