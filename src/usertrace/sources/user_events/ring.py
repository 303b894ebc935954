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

The writer's state (head, tail as last seen, lost, limit) is :class:`_WriterState` in pure
Python, or the same in C (``_emit.WriterState``) when the compiled emit path is in use
(:mod:`.emit_path`), so that both emit paths share one ring object.

The tracer's end (:mod:`.drain`) does not map the ring: it reads ``head`` and the records with
``pread`` and stores ``tail`` with ``pwrite``, so that a ring truncated under it cannot fault it.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading

from . import abi
from .emit_path import compiled
from .session import SessionDir, open_file, proc_start_time, thread_comm

_HEAD = abi.RH_HEAD // 8
_TAIL = abi.RH_TAIL // 8
_LOST = abi.RH_LOST // 8
_REFUSED = abi.RH_REFUSED // 8
_WRAP = struct.Struct("I")


class _WriterState:
    """The writer's state of one ring, pure Python (the base of :class:`RingWriter` when the
    compiled emit path is not in use; ``_emit.WriterState`` is the same in C).

    The fast path of an emit keeps one number, ``limit``: the highest head a record may end at
    without crossing the end of the data area or overrunning the tracer's tail as last seen.
    An emit in progress sets it to -1, so that an emit nested in it (a signal handler, a
    finalizer) comes to :meth:`make_room` and is dropped instead of writing over the record
    being written.
    """

    __slots__ = ("mm", "q", "head", "tail", "lost", "limit", "size", "mask", "tid")

    def __init__(self):
        self.mm = self.q = None
        self.head = self.tail = self.lost = self.size = self.mask = self.tid = 0
        self.limit = -1

    def _map(self) -> None:
        """Start writing into ``mm`` (a ring of ``size`` data bytes): head, tail, lost, limit."""
        q = self.q
        self.mask = self.size - 1
        self.head = q[_HEAD]
        self.tail = q[_TAIL]
        self.lost = q[_LOST]
        self.limit = self._limit(self.head)

    def _unmap(self) -> None:
        self.limit = -1

    def _limit(self, head: int) -> int:
        return min(self.tail + self.size, (head & ~self.mask) + self.size)

    def make_room(self, reclen: int) -> int:
        """The head to write a record of ``reclen`` bytes at (after a wrap if needed), or -1
        when the event is dropped: the ring is full (tail reloaded first) or busy."""
        if self.limit < 0 or self.q is None:
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
        if self.q is not None:
            self.q[_LOST] = self.lost


WriterState = compiled.WriterState if compiled is not None else _WriterState


class RingWriter(WriterState):
    """The writer's end of a ring (one per thread; see :mod:`.client`)."""

    __slots__ = ("session", "name", "fd", "pid", "__weakref__")

    def __init__(self, session: SessionDir, name: str, fd: int, mm: mmap.mmap, size: int,
                 pid: int, tid: int):
        self.session = session
        self.name = name
        self.fd = fd
        self.mm = mm
        self.q = memoryview(mm).cast("Q")
        self.size = size
        self.pid = pid
        self.tid = tid
        self._map()

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

    def close(self, mark: bool = True) -> None:
        """Unmap; with ``mark`` (the writer's own close) tell the tracer: no more writes."""
        if self.mm is None or self.mm.closed:
            return
        if mark and os.getpid() == self.pid:
            flags = abi.U32.unpack_from(self.mm, abi.RH_FLAGS)[0]
            abi.U32.pack_into(self.mm, abi.RH_FLAGS, flags | abi.RING_CLOSED)
        self._unmap()
        q, self.q = self.q, None
        q.release()
        self.mm.close()
        os.close(self.fd)

    def __del__(self):
        try:
            self.close(mark=True)
        except Exception:
            pass
