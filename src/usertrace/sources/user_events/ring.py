"""Single-producer, single-consumer rings in shared memory: one per writing thread.

A ring is a file ``ring-<pid>-<tid>-<n>`` in the session directory: a header page, then a data
area of a power-of-two size.  ``head`` counts the bytes the writer has published, ``tail`` the
bytes the tracer has consumed; both only grow, a position in the data area is the count modulo
its size.  The commit protocol::

    writer                                         tracer
    ------                                         ------
    room = size - (head - tail)   (loads tail)     h = head              (one 8-byte load)
    write the record at head % size                read records in [tail, h)
    head += record size           (one 8-byte store, last)   tail = h    (one 8-byte store)

The writer stores the new ``head`` only after the whole record is in place, and x86_64 keeps
stores in program order (and loads in program order for the reader), so the tracer never sees
a published head before the bytes it covers: a writer killed in the middle of an emit leaves
bytes past ``head`` that nobody reads.  From Python, ``memoryview.cast("Q")[k] = v`` and a
native ``struct.pack_into("Q", ...)`` both store the 8 bytes with one ``memcpy`` of constant
size 8, which compiles to one 8-byte ``mov``; at an 8-aligned address that store is atomic.
(A ``"<Q"`` format would not do: the standard-size packers store byte by byte.)

When the ring is full the writer drops the event and counts it in ``lost``; the count is exact
because only the writer changes it.

The tracer's end (:mod:`.drain`) does not map the ring: it reads ``head`` and the records with
``pread`` and stores ``tail`` with ``pwrite``, so that a ring truncated under it cannot fault it.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading

from . import abi
from .session import SessionDir, open_file, proc_start_time, thread_comm

_HEAD = abi.RH_HEAD // 8
_TAIL = abi.RH_TAIL // 8
_LOST = abi.RH_LOST // 8
_REFUSED = abi.RH_REFUSED // 8
_WRAP = struct.Struct("I")


class RingWriter:
    """The writer's end of a ring (one per thread; see :mod:`.client`)."""

    __slots__ = ("session", "name", "fd", "mm", "q", "size", "mask", "head", "tail", "lost",
                 "limit", "tid", "pid", "__weakref__")

    def __init__(self, session: SessionDir, name: str, fd: int, mm: mmap.mmap, size: int,
                 pid: int, tid: int):
        self.session = session
        self.name = name
        self.fd = fd
        self.mm = mm
        self.q = memoryview(mm).cast("Q")
        self.size = size
        self.mask = size - 1
        self.head = self.q[_HEAD]
        self.tail = self.q[_TAIL]
        self.lost = self.q[_LOST]
        self.limit = self._limit(self.head)
        self.pid = pid
        self.tid = tid

    @classmethod
    def create(cls, session: SessionDir) -> "RingWriter":
        pid = os.getpid()
        tid = threading.get_native_id()
        size = session.ring_data_size()
        with session.locked():
            seq = session.ring_seq
            session.ring_seq += 1
        name = f"{abi.RING_PREFIX}{pid}-{tid}-{seq}"
        tmp = "." + name
        try:
            os.unlink(tmp, dir_fd=session.dfd)
        except FileNotFoundError:
            pass
        fd = open_file(session.dfd, tmp, session.path, create=True)
        try:
            os.ftruncate(fd, abi.RING_HEADER_SIZE + size)
            mm = mmap.mmap(fd, abi.RING_HEADER_SIZE + size)
        except BaseException:
            os.close(fd)
            raise
        abi.U32.pack_into(mm, abi.RH_VERSION, abi.RING_VERSION)
        abi.U32.pack_into(mm, abi.RH_HEADER_SIZE, abi.RING_HEADER_SIZE)
        abi.U64.pack_into(mm, abi.RH_DATA_SIZE, size)
        abi.U32.pack_into(mm, abi.RH_PID, pid)
        abi.U32.pack_into(mm, abi.RH_TID, tid)
        mm[abi.RH_COMM: abi.RH_COMM + 16] = thread_comm(tid).ljust(16, b"\0")
        abi.U64.pack_into(mm, abi.RH_START, proc_start_time(pid) or 0)
        mm[0:8] = abi.RING_MAGIC
        os.rename(tmp, name, src_dir_fd=session.dfd, dst_dir_fd=session.dfd)
        with session.locked():
            session.bump()
        return cls(session, name, fd, mm, size, pid, tid)

    # -- slow paths of an emit ------------------------------------------------------------
    # The fast path keeps one number, ``limit``: the highest head a record may end at without
    # crossing the end of the data area or overrunning the tracer's tail as last seen.  An
    # emit in progress sets it to -1, so that an emit nested in it (a signal handler, a
    # finalizer) comes here and is dropped instead of writing over the record being written.
    def _limit(self, head: int) -> int:
        return min(self.tail + self.size, (head & ~self.mask) + self.size)

    def make_room(self, reclen: int) -> int:
        """The head to write a record of ``reclen`` bytes at (after a wrap if needed), or -1
        when the event is dropped: the ring is full (tail reloaded first) or busy."""
        if self.limit < 0:
            self.drop()
            return -1
        head = self.head
        size = self.size
        pos = head & self.mask
        need = reclen if pos + reclen <= size else size - pos + reclen
        if head + need - self.tail > size:
            self.tail = self.q[_TAIL]
            if head + need - self.tail > size:
                self.drop()
                return -1
        if need != reclen:
            _WRAP.pack_into(self.mm, abi.RING_HEADER_SIZE + pos, abi.WRAP_MARK)
            head += size - pos
            self.head = head        # published with the record that follows
        self.limit = self._limit(head)
        return head

    def drop(self) -> None:
        self.lost += 1
        self.q[_LOST] = self.lost

    def close(self, mark: bool = True) -> None:
        """Unmap; with ``mark`` (the writer's own close) tell the tracer: no more writes."""
        if self.mm.closed:
            return
        if mark and os.getpid() == self.pid:
            flags = abi.U32.unpack_from(self.mm, abi.RH_FLAGS)[0]
            abi.U32.pack_into(self.mm, abi.RH_FLAGS, flags | abi.RING_CLOSED)
        self.q.release()
        self.mm.close()
        os.close(self.fd)

    def __del__(self):
        try:
            self.close(mark=True)
        except Exception:
            pass
