"""A user events session: the directory, its shared files, the registration lock.

Both sides use this module: applications (through :mod:`.client`) to register events, the
tracer (:mod:`.server`) to enable them and to find the writers' rings.  One
:class:`SessionDir` object per directory per process (:func:`open_session`): POSIX record
locks belong to a process, so two objects in one process would not exclude each other and
closing either would drop the other's locks.

Security: the directory must be the user's own, a real directory (not a symlink) with no
group or other permission bits; every file is opened relative to the directory's descriptor
with O_NOFOLLOW and must be a regular file owned by the user, mode 0600.  Anything else is
refused with ``UserEventError("BAD_SESSION")``, whose message says what to do; a directory
that cannot be made or opened at all is ``NO_SESSION``.  Modes are set explicitly, so a
umask (even 0777) changes nothing.

Nothing here maps the registry, the control file or the holder files: they are read and
written with ``pread``/``pwrite``, so that another process of the user truncating one of them
can make a read come back short, never raise SIGBUS.  Only the status page is mapped, and
only for applications, which read their event's status byte from it
(:attr:`SessionDir.status`); the tracer never maps it.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import mmap
import os
import pwd
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Mapping

from usertrace.procstat import proc_start_time  # noqa: F401 (ring.py takes it from here)

from ...events.patterns import EventPattern
from . import abi
from .parse import Definition, UserEventError, parse_definition

_O_BASE = os.O_NOFOLLOW | os.O_CLOEXEC


# -- locating the session ------------------------------------------------------------------------
def default_session_dir(env: Mapping[str, str] | None = None) -> str:
    """``$USERTRACE_SESSION``, else ``$XDG_RUNTIME_DIR/usertrace``, else
    ``/dev/shm/usertrace-<uid>``, looked up in ``env`` (default: this process's)."""
    env = os.environ if env is None else env
    explicit = env.get(abi.SESSION_ENV)
    if explicit:
        return explicit
    xdg = env.get("XDG_RUNTIME_DIR")
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


def _cannot(path: str, exc: OSError, doing: str) -> UserEventError:
    return UserEventError("NO_SESSION", f"{path}: cannot {doing}: {exc.strerror}")


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def check_owned(st: os.stat_result, path: str, kind: str) -> None:
    """Refuse what is not the user's own, or lets the group or others in."""
    euid = os.geteuid()
    if st.st_uid != euid:
        if kind == "directory":
            raise _refuse(path, f"the directory belongs to {_user(st.st_uid)}, not to you "
                                f"({_user(euid)}): another user made it first, and a session "
                                f"must be your own. Remove it (as root: rm -r {path}) or choose "
                                f"another directory with {abi.SESSION_ENV}=DIR")
        raise _refuse(path, f"{kind} belongs to {_user(st.st_uid)}, not {_user(euid)}")
    if st.st_mode & 0o077:
        mode = 0o700 if kind == "directory" else 0o600
        raise _refuse(path, f"{kind} has mode {stat.S_IMODE(st.st_mode):04o}; group and others "
                            f"must have no access (chmod {mode:o} {path})")


def open_dir(path: str, create: bool) -> int:
    """A descriptor of the session directory, checked (made 0700 first if ``create``).

    The directory is opened with O_PATH before anything else, so that a directory of another
    user (a squatter's, mode 0700) is reported for what it is rather than as EACCES; a
    directory this call made gets mode 0700 whatever the umask."""
    made = False
    if create:
        try:
            os.mkdir(path, abi.DIR_MODE)
            made = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise _cannot(path, exc, "make the directory") from None
    try:
        pfd = os.open(path, os.O_PATH | os.O_DIRECTORY | _O_BASE)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refuse(path, "not a directory (symlinks are refused)") from None
        raise _cannot(path, exc, "open the directory") from None
    try:
        st = os.fstat(pfd)
        check_owned(st, path, "directory")
        if made or st.st_mode & 0o700 != 0o700:
            if not made:
                raise _refuse(path, f"the directory has mode {stat.S_IMODE(st.st_mode):04o}; "
                                    f"the owner needs full access (chmod 700 {path})")
            os.chmod(f"/proc/self/fd/{pfd}" if os.path.isdir("/proc/self/fd") else path,
                     abi.DIR_MODE)
        try:
            return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
        except OSError as exc:
            raise _cannot(path, exc, "open the directory") from None
    finally:
        os.close(pfd)


def open_file(dfd: int, name: str, dirpath: str, create: bool = False,
              write: bool = True) -> int:
    """Open ``name`` in the session directory: no symlinks, a regular file, owner only.

    A file this call creates gets mode 0600 whatever the umask.  A file that exists but may
    not be opened is refused (``BAD_SESSION``) with its owner and mode; other errors (no such
    file, no descriptor left) are raised as they are."""
    flags = (os.O_RDWR if write else os.O_RDONLY) | _O_BASE
    where = os.path.join(dirpath, name)
    try:
        try:
            fd = os.open(name, flags, dir_fd=dfd)
        except FileNotFoundError:
            if not create:
                raise
            try:
                fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, abi.FILE_MODE, dir_fd=dfd)
                os.fchmod(fd, abi.FILE_MODE)
            except FileExistsError:
                fd = os.open(name, flags, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(where, "is a symlink") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                raise _cannot(where, exc, "open") from None
            check_owned(st, where, "file")
            raise _refuse(where, f"file has mode {stat.S_IMODE(st.st_mode):04o}; the owner "
                                 f"needs read and write access (chmod 600 {where})") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(where, "not a regular file")
        check_owned(st, where, "file")
    except BaseException:
        os.close(fd)
        raise
    return fd


class SharedFile:
    """A file of the session read and written with pread/pwrite, never mapped.

    Another process of the user can truncate it at any time; a read then comes back short
    (a number read from where nothing is left reads as 0) and :meth:`short` says so.  Nothing
    can fault."""

    __slots__ = ("fd", "size", "path")

    def __init__(self, fd: int, size: int, path: str):
        self.fd = fd
        self.size = size
        self.path = path

    def read(self, off: int, n: int) -> bytes:
        return os.pread(self.fd, n, off)

    def write(self, off: int, data: bytes) -> None:
        os.pwrite(self.fd, data, off)

    def u32(self, off: int) -> int:
        b = os.pread(self.fd, 4, off)
        return abi.U32.unpack(b)[0] if len(b) == 4 else 0

    def u64(self, off: int) -> int:
        b = os.pread(self.fd, 8, off)
        return abi.U64.unpack(b)[0] if len(b) == 8 else 0

    def put_u32(self, off: int, v: int) -> None:
        os.pwrite(self.fd, abi.U32.pack(v), off)

    def put_u64(self, off: int, v: int) -> None:
        os.pwrite(self.fd, abi.U64.pack(v), off)

    def short(self) -> bool:
        """Is the file shorter than its layout (truncated by someone)?"""
        try:
            return os.fstat(self.fd).st_size < self.size
        except OSError:
            return True


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
    """A pattern as the session keeps it: a glob over ``system:event``, a bare word resolved
    against the user-events systems (:mod:`usertrace.events.patterns`)."""
    sys_glob, ev_glob = EventPattern.parse(pattern).glob(
        (abi.USER_EVENTS_SYSTEM, abi.USER_EVENTS_MULTI_SYSTEM))
    return _kept(pattern, f"{sys_glob}:{ev_glob}")


def _kept(pattern: str, glob: str) -> str:
    """``glob``, the normalized ``pattern``, when a pattern slot of the session can keep it;
    else a ``BAD_PATTERN`` error with a caret under the fault in ``pattern`` (a NUL, or the
    first byte past :data:`abi.PATTERN_MAX_LEN`)."""
    if "\0" in pattern:
        raise UserEventError("BAD_PATTERN", "a NUL in the pattern", pattern.index("\0"), pattern)
    if len(glob.encode()) > abi.PATTERN_MAX_LEN:
        # Normalizing puts "*:" before a bare event name, "*" before ":EVENT": the pattern's
        # own text starts that far into the glob.
        lead = glob.find(pattern if ":" in pattern else pattern.replace("/", ":", 1))
        room = abi.PATTERN_MAX_LEN - max(lead, 0)
        pos = len(pattern.encode()[:room].decode("utf-8", "ignore"))
        raise UserEventError("BAD_PATTERN", f"longer than {abi.PATTERN_MAX_LEN} bytes",
                             pos, pattern)
    return glob


# -- the session ---------------------------------------------------------------------------------
class SessionDir:
    """An open session directory: its control, status and registry files, and the lock."""

    def __init__(self, path: str, create: bool = True):
        self.path = path
        self.refs = 0
        self.closed = False
        self.tlock = threading.RLock()
        self._depth = 0
        self._fds: list[int] = []
        self._status_map: mmap.mmap | None = None
        self.dfd = open_dir(path, create)
        self._fds.append(self.dfd)
        try:
            self.reg_fd = self._open(abi.REGISTRY_FILE, create)
            with self.locked():
                self._init_files(create)
            self.ctl_fd = self._open(abi.CONTROL_FILE, False)
            self.status_fd = self._open(abi.STATUS_FILE, False)
            self.registry = self._shared(self.reg_fd, abi.REGISTRY_FILE, abi.REGISTRY_SIZE,
                                         abi.REGISTRY_MAGIC)
            self.control = self._shared(self.ctl_fd, abi.CONTROL_FILE, abi.CONTROL_SIZE,
                                        abi.CONTROL_MAGIC)
            self.status_file = self._shared(self.status_fd, abi.STATUS_FILE, abi.STATUS_SIZE,
                                            None)
        except BaseException:
            self._close_fds()
            raise
        self.tls = threading.local()       # the calling thread's ring writer (client side)
        self.holder = None                 # this process's holder file (client side)
        self.tracer = None                 # the UserEventsServer of this process, if any
        self.ring_seq = 0
        self._swept = False

    # -- files -----------------------------------------------------------------------------
    def _open(self, name: str, create: bool) -> int:
        fd = open_file(self.dfd, name, self.path, create)
        self._fds.append(fd)
        return fd

    def _shared(self, fd: int, name: str, size: int, magic: bytes | None) -> SharedFile:
        where = os.path.join(self.path, name)
        if os.fstat(fd).st_size < size:
            raise _refuse(where, "the file is too short (truncated?)")
        if magic is not None and os.pread(fd, 8, 0) != magic:
            raise _refuse(where, "the file has a foreign layout")
        return SharedFile(fd, size, where)

    @property
    def status(self) -> mmap.mmap:
        """The status page, mapped (for applications: an event reads its status byte here).

        The tracer never uses this: it reads and writes the page through
        :attr:`status_file`."""
        if self._status_map is None:
            self._status_map = mmap.mmap(self.status_fd, abi.STATUS_SIZE)
        return self._status_map

    def damaged(self) -> list[str]:
        """The shared files that are shorter than their layout (truncated by someone)."""
        return [f.path for f in (self.registry, self.control, self.status_file) if f.short()]

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
            raise UserEventError("NO_SESSION", f"{self.path}: no session there yet")
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
        self.closed = True
        if self._status_map is not None:
            try:
                self._status_map.close()
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
        return self.control.u64(abi.CTL_GENERATION)

    def bump(self) -> None:
        """Tell the tracer that something changed (call under the lock)."""
        self.control.put_u64(abi.CTL_GENERATION, self.generation() + 1)

    def ring_data_size(self) -> int:
        size = self.control.u64(abi.CTL_RING_SIZE)
        if not size:
            try:
                size = int(os.environ.get(abi.RING_SIZE_ENV, "0")) * 1024
            except ValueError:
                size = 0
        size = size or abi.DEFAULT_RING_SIZE
        size = min(max(size, abi.MIN_RING_SIZE), abi.MAX_RING_SIZE)
        return 1 << (size - 1).bit_length()

    def set_tracer(self, pid: int, ring_size: int) -> None:
        """Say which tracer is attached (0: none) and the ring size it asks for (0: default)."""
        self.control.put_u32(abi.CTL_TRACER_PID, pid)
        self.control.put_u64(abi.CTL_RING_SIZE, ring_size)

    def tracer_pid(self) -> int:
        return self.control.u32(abi.CTL_TRACER_PID)

    def tracer_attached(self) -> bool:
        """Does a tracer hold the tracer lock (this process's own tracer included)?"""
        if self.tracer is not None:
            return True
        try:
            fcntl.lockf(self.ctl_fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, abi.TRACER_LOCK_OFFSET)
        except OSError:
            return True
        fcntl.lockf(self.ctl_fd, fcntl.LOCK_UN, 1, abi.TRACER_LOCK_OFFSET)
        return False

    def status_byte(self, index: int) -> int:
        b = self.status_file.read(index, 1)
        return b[0] if b else 0

    def _set_status(self, index: int, value: int) -> None:
        self.status_file.write(index, bytes((value,)))

    # -- registry slots --------------------------------------------------------------------
    def _high(self) -> int:
        return min(self.registry.u32(abi.REG_HIGH), abi.MAX_EVENTS)

    @staticmethod
    def _parse_slot(index: int, raw: bytes) -> Slot | None:
        if len(raw) < abi.SLOT_DEF:
            return None
        state, flags, serial, multi_id, n = abi.SLOT_HEAD.unpack_from(raw, 0)
        if state != abi.SLOT_LIVE or not 0 < n < abi.MAX_EVENT_DESC:
            return None
        text = raw[abi.SLOT_DEF: abi.SLOT_DEF + n]
        if len(text) < n:
            return None
        return Slot(index, flags, serial, multi_id, text.decode("utf-8", "replace"))

    def slot(self, index: int) -> Slot | None:
        raw = self.registry.read(abi.REGISTRY_HEADER + index * abi.SLOT_SIZE, abi.SLOT_SIZE)
        return self._parse_slot(index, raw)

    def slots(self) -> list[Slot]:
        """The live slots, read in one go (a slot cut short by a truncation is not live)."""
        high = self._high()
        if high <= 1:
            return []
        base = abi.REGISTRY_HEADER + abi.SLOT_SIZE
        raw = self.registry.read(base, (high - 1) * abi.SLOT_SIZE)
        out = []
        for k in range(len(raw) // abi.SLOT_SIZE):
            s = self._parse_slot(k + 1, raw[k * abi.SLOT_SIZE: (k + 1) * abi.SLOT_SIZE])
            if s is not None:
                out.append(s)
        return out

    def _write_slot(self, index: int, flags: int, serial: int, multi_id: int, text: str) -> None:
        base = abi.REGISTRY_HEADER + index * abi.SLOT_SIZE
        raw = text.encode()
        self.registry.write(base + abi.SLOT_DEF, raw.ljust(abi.MAX_EVENT_DESC, b"\0"))
        self.registry.write(base, abi.SLOT_HEAD.pack(abi.SLOT_FREE, flags, serial, multi_id,
                                                     len(raw)))
        self.registry.put_u32(base + abi.SLOT_STATE, abi.SLOT_LIVE)     # the state last

    def _free_slot(self, index: int) -> None:
        base = abi.REGISTRY_HEADER + index * abi.SLOT_SIZE
        self.registry.put_u32(base + abi.SLOT_STATE, abi.SLOT_FREE)
        self._set_status(index, 0)

    def register(self, defn: Definition, hold: bool = True) -> Slot:
        """Find or create the event of ``defn``; hold it for this process if ``hold``.

        The same name with the same fields is the same event; another definition under a
        taken name is NAME_IN_USE (unless the old event is garbage: no holder, not persistent,
        not enabled).  A new event's status byte starts with the bits of the enabled patterns
        that match it, so a tracer that enabled ``app_*`` sees ``app_new`` from its first emit.
        The first registration of a process sweeps what processes that are gone left behind
        (:meth:`sweep`), and the patterns a tracer that was killed left enabled.
        """
        with self.locked():
            if not self._swept:
                self._swept = True
                alone = not self.tracer_attached()
                if alone and self.patterns():
                    self.set_patterns([])   # what a tracer that was killed left enabled
                self.sweep(rings=alone)
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
        taken = {s.index for s in self.slots()}
        index = next((i for i in range(1, high) if i not in taken), max(high, 1))
        if index >= abi.MAX_EVENTS:
            self.collect()
            taken = {s.index for s in self.slots()}
            index = next((i for i in range(1, high) if i not in taken), None)
            if index is None:
                raise UserEventError("NO_INDEX")
        serial = self.registry.u64(abi.REG_NEXT_SERIAL) or 1
        self.registry.put_u64(abi.REG_NEXT_SERIAL, serial + 1)
        multi_id = 0
        if defn.multi_format:
            multi_id = self.registry.u64(abi.REG_NEXT_MULTI)
            self.registry.put_u64(abi.REG_NEXT_MULTI, multi_id + 1)
        self._write_slot(index, defn.flags, serial, multi_id, defn.canonical)
        if index >= high:
            self.registry.put_u32(abi.REG_HIGH, index + 1)
        slot = Slot(index, defn.flags, serial, multi_id, defn.canonical)
        self._set_status(index, self.pattern_bits(slot.full_name()))
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
                if self.status_byte(s.index) or s.index in held:
                    raise UserEventError("BUSY", repr(name))
            for s in victims:
                self._free_slot(s.index)
            self.bump()
            return len(victims)

    # -- holders, garbage, and what processes that are gone left behind ---------------------
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
        if s.flags & abi.USER_EVENT_REG_PERSIST or self.status_byte(s.index):
            return False
        return s.index not in self.held_indexes()

    def collect(self) -> int:
        """Delete the events no live process holds that are neither persistent nor enabled
        (holder files of processes that are gone are removed on the way)."""
        with self.locked():
            held = self.held_indexes()
            status = self.status_file.read(0, abi.STATUS_SIZE).ljust(abi.STATUS_SIZE, b"\0")
            n = 0
            for s in self.slots():
                if not s.flags & abi.USER_EVENT_REG_PERSIST and not status[s.index] \
                        and s.index not in held:
                    self._free_slot(s.index)
                    n += 1
            if n:
                self.bump()
            return n

    def sweep(self, rings: bool) -> int:
        """Remove what processes that are gone left behind; returns the files removed.

        Always: their holder files, and the events that only they held (unless persistent or
        enabled: :meth:`collect`).  With ``rings`` (no tracer is draining, or the tracer
        itself asks), also the rings whose writer is gone or has closed them, and the rings
        a writer that is gone was still making (``.ring-*``).  Rings of live writers stay:
        their writers still write into them."""
        with self.locked():
            before = sum(1 for e in os.scandir(self.dfd) if e.name.startswith(abi.HOLDER_PREFIX))
            self.collect()
            after = sum(1 for e in os.scandir(self.dfd) if e.name.startswith(abi.HOLDER_PREFIX))
            removed = before - after
            if rings:
                for entry in os.scandir(self.dfd):
                    if ring_is_dead(self.dfd, entry.name):
                        try:
                            os.unlink(entry.name, dir_fd=self.dfd)
                            removed += 1
                        except OSError:
                            pass
            return removed

    # -- patterns and status ---------------------------------------------------------------
    def patterns(self) -> list[tuple[str, int]]:
        table = self.control.read(abi.CTL_PATTERNS, abi.MAX_PATTERNS * abi.PATTERN_SLOT_SIZE)
        out = []
        for base in range(0, len(table) - abi.PATTERN_SLOT_SIZE + 1, abi.PATTERN_SLOT_SIZE):
            used, bits, n = abi.PATTERN_HEAD.unpack_from(table, base)
            if used and 0 < n <= abi.PATTERN_MAX_LEN:
                glob = table[base + 4: base + 4 + n].decode("utf-8", "replace")
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
            self.control.write(abi.CTL_PATTERNS, bytes(table))
            status = bytearray(abi.STATUS_SIZE)
            for s in self.slots():
                name = s.full_name()
                for glob, bits in patterns:
                    if fnmatch.fnmatchcase(name, glob):
                        status[s.index] |= bits
            old = self.status_file.read(0, abi.STATUS_SIZE)
            if old != status:
                self.status_file.write(0, bytes(status))
            self.bump()


def ring_is_dead(dfd: int, name: str) -> bool:
    """Is ``name`` a ring (or a half-made one) whose writer is gone or closed it?"""
    if name.startswith("." + abi.RING_PREFIX):               # made but not yet renamed
        try:
            pid = int(name[len(abi.RING_PREFIX) + 1:].split("-", 1)[0])
        except ValueError:
            return False
        return proc_start_time(pid) is None
    if not name.startswith(abi.RING_PREFIX):
        return False
    try:
        fd = os.open(name, os.O_RDONLY | _O_BASE, dir_fd=dfd)
    except OSError:
        return False
    try:
        head = os.pread(fd, abi.RH_FLAGS + 4, 0)
    finally:
        os.close(fd)
    if len(head) < abi.RH_FLAGS + 4 or head[:8] != abi.RING_MAGIC:
        return False
    pid = abi.U32.unpack_from(head, abi.RH_PID)[0]
    start = abi.U64.unpack_from(head, abi.RH_START)[0]
    closed = abi.U32.unpack_from(head, abi.RH_FLAGS)[0] & abi.RING_CLOSED
    return bool(closed) or proc_start_time(pid) != start


class HolderFile:
    """``proc-<pid>``: which events one process holds (a bitmap), with its start time.

    Read and written with pread/pwrite (see :class:`SharedFile`)."""

    def __init__(self, session: SessionDir, fd: int, pid: int):
        self.session = session
        self.fd = fd
        self.pid = pid

    @classmethod
    def create(cls, session: SessionDir, bitmap: bytes | None = None) -> "HolderFile":
        pid = os.getpid()
        name = f"{abi.HOLDER_PREFIX}{pid}"
        fd = open_file(session.dfd, name, session.path, create=True)
        try:
            os.ftruncate(fd, 0)
            os.ftruncate(fd, abi.HOLDER_SIZE)
            head = bytearray(abi.HOLDER_BITMAP)
            abi.U32.pack_into(head, abi.HOLDER_PID, pid)
            abi.U64.pack_into(head, abi.HOLDER_START, proc_start_time(pid) or 0)
            os.pwrite(fd, bytes(head[8:]) + (bitmap or b"")[:abi.HOLDER_SIZE - abi.HOLDER_BITMAP],
                      8)
            os.pwrite(fd, abi.HOLDER_MAGIC, 0)                  # the magic last
        except BaseException:
            os.close(fd)
            raise
        return cls(session, fd, pid)

    def bitmap(self) -> bytes:
        return os.pread(self.fd, abi.HOLDER_SIZE - abi.HOLDER_BITMAP, abi.HOLDER_BITMAP)

    def set(self, index: int, on: bool) -> None:
        at = abi.HOLDER_BITMAP + index // 8
        bit = 1 << (index % 8)
        old = os.pread(self.fd, 1, at)
        old = old[0] if old else 0
        os.pwrite(self.fd, bytes(((old | bit) if on else (old & ~bit),)), at)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

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
    """The process's SessionDir for ``path`` (default: :func:`default_session_dir`), counted.

    Raises UserEventError: ``BAD_SESSION`` for a directory or file that is not safely the
    user's own (with what to do), ``NO_SESSION`` for one that cannot be made or opened."""
    path = os.path.abspath(path or default_session_dir())
    with _sessions_lock:
        try:
            st = os.stat(path, follow_symlinks=False)
            key = (st.st_dev, st.st_ino)
            sess = _sessions.get(key)
        except OSError:
            sess = None
        if sess is None or sess.closed:
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
