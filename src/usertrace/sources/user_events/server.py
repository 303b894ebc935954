"""The tracer's side of user events: enable by pattern, drain the writers' rings, check payloads.

>>> with UserEventsServer() as srv:                          # doctest: +SKIP
...     srv.enable("user_events:app_*", CONSUMER_TRACE)
...     while running:
...         srv.drain(lambda ts, cpu, tid, pid, comm, record, fmt: out.append(...))
...         time.sleep(0.001)

One tracer attaches to a session at a time (a write lock on the control file).  Patterns live
in the session, so an application that registers ``app_new`` after ``enable("app_*")`` finds
its status byte set at registration.  Each record a writer publishes is checked the way the
kernel's ``user_event_validate()`` checks a write (payload at least as long as the fixed
fields, every ``__data_loc``/``__rel_loc`` inside the payload, strings NUL-terminated); a bad
one is refused and counted, never delivered in part.  A good one becomes a kernel record: the
common header (``common_type`` = the event's id, ``common_pid`` = the writer's thread id)
followed by the payload as written, which is what the kernel records for a user event.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import Callable

from usertrace.events.format import EventFormat

from . import abi
from .parse import K_DYN_STR, Definition, UserEventError
from .ring import RingError, RingReader
from .session import SessionDir, Slot, close_session, normalize_pattern, open_session

COMMON = struct.Struct("<HBBi")
_pack_type = struct.Struct("<H").pack
_unpack_u32 = abi.U32.unpack_from
_unpack_record_header = struct.Struct("=IIQiIH").unpack_from
_RECORD_HEADER_SIZE = abi.RECORD_HEADER_SIZE
_RECORD_SPAN = abi.RECORD_HEADER_SIZE + abi.COMMON_SIZE
_COMMON_SIZE = abi.COMMON_SIZE
_WRAP_MARK = abi.WRAP_MARK
_MAX_PAYLOAD = abi.MAX_PAYLOAD
LIVENESS_PERIOD = 0.5     # seconds between checks that a ring's writer is still alive

# callback(ts_ns, cpu, tid, pid, comm, record, fmt); cpu is -1 when the writer did not know it.
RecordCallback = Callable[[int, int, int, int, str, bytes, EventFormat], None]
# on_lost(pid, tid, comm, count): count events a writer dropped since the last report.
LostCallback = Callable[[int, int, str, int], None]


@dataclass
class WriterStats:
    """What one ring (one writing thread) delivered, lost and had refused."""

    ring: str
    pid: int
    tid: int
    comm: str
    records: int = 0
    lost: int = 0
    refused: int = 0
    corrupt: int = 0
    retired: bool = False


class EventInfo:
    """A registered event as the tracer knows it: format, id, and its payload checks."""

    __slots__ = ("slot", "definition", "format", "id", "wire_id", "patch", "min_size", "checks",
                 "one_check", "error")

    def __init__(self, slot: Slot, event_id: int):
        self.slot = slot
        self.error = ""
        self.wire_id = abi.ID_BASE + slot.index     # the common_type writers put in records
        self.patch = event_id != self.wire_id
        try:
            self.definition: Definition | None = slot.definition()
        except UserEventError as exc:
            # A writer in another language registered what does not parse: refuse its records.
            self.definition = None
            self.error = str(exc)
        self.id = event_id
        if self.definition is None:
            self.format = None
            self.min_size = abi.MAX_PAYLOAD + 1     # refuses every record
            self.checks = ()
            self.one_check = None
            return
        self.format = self.definition.event_format(event_id, slot.multi_id)
        self.min_size = self.definition.min_size
        # (payload offset of the word, base of a __rel_loc offset or 0, NUL required)
        self.checks = tuple((f.offset - abi.COMMON_SIZE, f.offset + 4 if f.is_rel_loc else 0,
                             f.kind == K_DYN_STR)
                            for f in self.definition.fields if f.is_dynamic)
        self.one_check = self.checks[0] if len(self.checks) == 1 else None

    def valid(self, buf: bytes, p: int, plen: int) -> bool:
        """Does the payload at ``buf[p:p+plen]`` pass the kernel's checks?"""
        if plen < self.min_size or plen > abi.MAX_PAYLOAD or self.format is None:
            return False
        end_rec = abi.COMMON_SIZE + plen           # offsets below count from the record start
        base = p - abi.COMMON_SIZE                 # buf index of record offset 0
        for woff, rel, nul in self.checks:
            word = abi.U32.unpack_from(buf, p + woff)[0]
            size = word >> 16
            start = (word & 0xFFFF) + rel
            if start < abi.COMMON_SIZE or start + size > end_rec:
                return False
            if nul and (size == 0 or buf[base + start + size - 1] != 0):
                return False
        return True


class UserEventsServer:
    """Attach to a session as its tracer, enable events for consumers, drain their records.

    An event's id (``common_type``) is ``abi.ID_BASE + index`` (40001 and up: clear of the
    kernel's ids), the id writers put in their records.  Should an index be reused during
    the server's life (an event deleted, another registered), the newcomer gets an id above
    ``ID_BASE + MAX_EVENTS`` and its records are renumbered as they are drained, so an id
    never names two formats.  ``ring_size`` is the data size of the rings writers make from
    now on (bytes, rounded up to a power of two; default 2 MiB).
    """

    def __init__(self, session_dir: str | None = None, *, ring_size: int | None = None):
        self.session_dir = session_dir
        self.ring_size = ring_size
        self._ids: set[int] = set()
        self._next_id = abi.ID_BASE + abi.MAX_EVENTS
        self.session: SessionDir | None = None
        self._events: dict[int, EventInfo] = {}       # index word -> info
        self._fast: dict[int, tuple] = {}             # index word -> what _parse needs
        self._rings: dict[str, RingReader] = {}
        self._stats: dict[str, WriterStats] = {}
        self._retired: list[WriterStats] = []
        self._gen = -1
        self._next_check = 0.0
        self.errors: list[str] = []
        self._looked = False
        self._lock = threading.Lock()

    # -- lifetime --------------------------------------------------------------------------
    def open(self) -> "UserEventsServer":
        sess = open_session(self.session_dir, create=True)
        if getattr(sess, "tracer", None) is not None:      # our own process is the tracer
            close_session(sess)
            raise UserEventError("SESSION_BUSY", f"{sess.path}: tracer pid {os.getpid()}")
        try:
            fcntl.lockf(sess.ctl_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, abi.TRACER_LOCK_OFFSET)
        except OSError:
            pid = abi.U32.unpack_from(sess.control, abi.CTL_TRACER_PID)[0]
            close_session(sess)
            raise UserEventError("SESSION_BUSY", f"{sess.path}: tracer pid {pid}") from None
        self.session = sess
        sess.tracer = self
        with sess.locked():
            sess.set_patterns([])             # whatever a dead tracer left enabled
            sess.collect()                    # events of processes gone since
            abi.U32.pack_into(sess.control, abi.CTL_TRACER_PID, os.getpid())
            size = 0
            if self.ring_size:
                size = min(max(self.ring_size, abi.MIN_RING_SIZE), abi.MAX_RING_SIZE)
                size = 1 << (size - 1).bit_length()
            sess.ctl_q[abi.CTL_RING_SIZE // 8] = size
            sess.bump()
        self.refresh(force=True)
        return self

    def close(self, drain_into: RecordCallback | None = None,
              on_lost: LostCallback | None = None) -> None:
        """Disable everything (applications read their events as disabled), drain what is left
        into ``drain_into`` if given, and detach.  The session directory stays."""
        sess = self.session
        if sess is None:
            return
        try:
            with sess.locked():
                sess.set_patterns([])
                abi.U32.pack_into(sess.control, abi.CTL_TRACER_PID, 0)
                sess.ctl_q[abi.CTL_RING_SIZE // 8] = 0
            if drain_into is not None:
                self.drain(drain_into, on_lost=on_lost)
        finally:
            for r in self._rings.values():
                self._retired.append(self._account(r))    # the figures stay for stats()
                r.close()
            self._rings.clear()
            self._stats.clear()
            try:
                fcntl.lockf(sess.ctl_fd, fcntl.LOCK_UN, 1, abi.TRACER_LOCK_OFFSET)
            except OSError:
                pass
            self.session = None
            sess.tracer = None
            close_session(sess)

    def __enter__(self) -> "UserEventsServer":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _sess(self) -> SessionDir:
        if self.session is None:
            raise UserEventError("BAD_SESSION", "the server is not open")
        return self.session

    # -- enabling --------------------------------------------------------------------------
    def enable(self, pattern: str, consumer: int = abi.CONSUMER_TRACE) -> list[EventFormat]:
        """Enable the events matching ``pattern`` (``[SYSTEM:]EVENT`` globs) for ``consumer``
        (a status bit), now and for events registered later.  Returns the formats matching now."""
        self._check_consumer(consumer)
        glob = normalize_pattern(pattern)
        sess = self._sess()
        with sess.locked():
            pats = sess.patterns()
            for k, (g, bits) in enumerate(pats):
                if g == glob:
                    pats[k] = (g, bits | consumer)
                    break
            else:
                pats.append((glob, consumer))
            sess.set_patterns(pats)
        with self._lock:
            self.refresh(force=True)
        return self.formats(pattern)

    def disable(self, pattern: str | None = None, consumer: int = abi.CONSUMER_TRACE) -> None:
        """Take ``consumer`` off ``pattern`` (every pattern if None)."""
        self._check_consumer(consumer)
        glob = None if pattern is None else normalize_pattern(pattern)
        sess = self._sess()
        with sess.locked():
            pats = []
            for g, bits in sess.patterns():
                if glob is None or g == glob:
                    bits &= ~consumer
                if bits:
                    pats.append((g, bits))
            sess.set_patterns(pats)

    def patterns(self) -> list[tuple[str, int]]:
        return self._sess().patterns()

    @staticmethod
    def _check_consumer(consumer: int) -> None:
        if not consumer or consumer & ~abi.CONSUMER_BITS:
            raise UserEventError("BAD_PATTERN", f"consumer bits 0x{consumer:x}")

    # -- events ----------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> list[EventFormat]:
        """Pick up events and rings made since the last look; returns the new formats."""
        sess = self._sess()
        gen = sess.generation()
        if gen == self._gen and not force:
            return []
        self._gen = gen
        new = []
        for s in sess.slots():
            if s.index_word in self._events:
                continue
            event_id = abi.ID_BASE + s.index
            if event_id in self._ids:
                event_id = self._next_id
                self._next_id += 1
            self._ids.add(event_id)
            info = EventInfo(s, event_id)
            if info.format is not None:
                new.append(info.format)
            else:
                self.errors.append(f"event {s.index} {s.text!r}: {info.error}")
            self._events[s.index_word] = info
            self._fast[s.index_word] = (
                info.min_size, info.wire_id, info.one_check,
                info if len(info.checks) > 1 else None,
                _pack_type(info.id) if info.patch else b"", info.format)
        self._scan_rings()
        return new

    def formats(self, pattern: str | None = None) -> list[EventFormat]:
        """Formats of the events seen (registered now or earlier in this session), by pattern."""
        import fnmatch
        glob = None if pattern is None else normalize_pattern(pattern)
        return [i.format for i in self._events.values() if i.format is not None
                and (glob is None or fnmatch.fnmatchcase(i.format.full_name, glob))]

    def format_by_id(self, event_id: int) -> EventFormat | None:
        for i in self._events.values():
            if i.id == event_id:
                return i.format
        return None

    # -- rings -----------------------------------------------------------------------------
    def _scan_rings(self) -> None:
        sess = self._sess()
        for entry in os.scandir(sess.dfd):
            name = entry.name
            if not name.startswith(abi.RING_PREFIX):
                continue
            known = self._rings.get(name)
            if known is not None:
                try:
                    if entry.inode() == known.ino:
                        continue
                except OSError:
                    continue
                self._retire(known, unlink=False)       # replaced by a new ring of that name
            try:
                r = RingReader(sess, name)
            except (OSError, RingError, UserEventError) as exc:
                self.errors.append(f"{name}: {exc}")
                continue
            self._rings[name] = r
            self._stats[name] = WriterStats(name, r.pid, r.tid, r.comm)

    def _account(self, r: RingReader) -> WriterStats:
        st = self._stats[r.name]
        st.lost = r.lost()
        st.refused = r.refused
        st.corrupt = r.corrupt
        return st

    def _retire(self, r: RingReader, unlink: bool = True) -> None:
        st = self._account(r)
        st.retired = True
        self._retired.append(st)
        del self._stats[r.name]
        del self._rings[r.name]
        if unlink:
            try:
                os.unlink(r.name, dir_fd=self._sess().dfd)
            except OSError:
                pass
        r.close()

    # -- draining --------------------------------------------------------------------------
    def drain(self, callback: RecordCallback, *, on_lost: LostCallback | None = None,
              ordered: bool = True) -> int:
        """Deliver every record published so far; returns how many were delivered.

        With ``ordered`` the records of this call reach ``callback`` in timestamp order across
        all writers (each ring is in order by itself).  A record published later by a writer
        that was preempted between taking its timestamp and publishing can be older than the
        last one of the previous call, by at most that preemption.
        """
        with self._lock:
            sess = self._sess()
            if sess.generation() != self._gen:
                self.refresh()
            self._looked = False
            now = time.monotonic()
            check = now >= self._next_check
            if check:
                self._next_check = now + LIVENESS_PERIOD
            rings = list(self._rings.values())
            pending = []
            for r in rings:
                chunks, head = r.take()
                if chunks:
                    pending.append((r, chunks, head))
                elif head != r.tail:
                    r.consume(head)                 # a head no honest writer published
            # One ring (the usual case), or no ordering asked: straight to the callback.
            direct = not ordered or len(pending) <= 1
            out: list = []
            total = 0
            for r, chunks, head in pending:
                for chunk in chunks:
                    total += self._parse(r, chunk, callback if direct else out)
                r.consume(head)
            if out:
                out.sort(key=itemgetter(0))
                for ts, cpu, tid, pid, comm, rec, fmt in out:
                    callback(ts, cpu, tid, pid, comm, rec, fmt)
            for r in rings:
                lost = r.lost()
                if lost != r.lost_seen:
                    if on_lost is not None:
                        on_lost(r.pid, r.tid, r.comm, lost - r.lost_seen)
                    r.lost_seen = lost
                if check and r.q[abi.RH_HEAD // 8] == r.tail and (
                        r.closed_by_writer() or not r.writer_alive()):
                    self._retire(r)
            return total

    def _parse(self, r: RingReader, chunk: bytes, sink) -> int:
        """Check and deliver the records of one chunk; ``sink`` is a list or a callback."""
        n = len(chunk)
        off = 0
        last = n - _RECORD_SPAN             # a record has its header and common fields
        unpack = _unpack_record_header
        fast = self._fast
        pid, tid, comm = r.pid, r.tid, r.comm
        is_list = sink.__class__ is list
        put = sink.append if is_list else sink
        delivered = refused = 0
        while off <= last:
            plen, iw, ts, cpu, _, ctype = unpack(chunk, off)
            if plen == _WRAP_MARK:
                off = n
                break
            end = off + ((plen + _RECORD_SPAN + 7) & -8)
            if end > n:
                break                           # a length no honest writer wrote
            k = off + _RECORD_HEADER_SIZE       # the kernel record: common fields, payload
            p = k + _COMMON_SIZE
            off = end
            ent = fast.get(iw)
            if ent is None:
                if self._looked:
                    refused += 1
                    continue
                self._looked = True             # registered after our last look?
                self.refresh(force=True)
                ent = fast.get(iw)
                if ent is None:
                    refused += 1
                    continue
            min_size, wire_id, one, info, patch, fmt = ent
            if plen < min_size or plen > _MAX_PAYLOAD or ctype != wire_id:
                refused += 1
                continue
            if one is not None:                 # one dynamic field: checked inline
                woff, rel, nul = one
                word = _unpack_u32(chunk, p + woff)[0]
                size = word >> 16
                start = (word & 0xFFFF) + rel
                if start < _COMMON_SIZE or start + size > plen + _COMMON_SIZE or (
                        nul and (not size or chunk[k + start + size - 1])):
                    refused += 1
                    continue
            elif info is not None and not info.valid(chunk, p, plen):
                refused += 1
                continue
            rec = chunk[k: p + plen]
            if patch:
                rec = patch + rec[2:]
            if is_list:
                put((ts, cpu, tid, pid, comm, rec, fmt))
            else:
                put(ts, cpu, tid, pid, comm, rec, fmt)
            delivered += 1
        if off < n and abi.U32.unpack_from(chunk, off)[0] != _WRAP_MARK:
            r.corrupt += 1                      # the rest of the chunk cannot be framed
        if refused:
            r.count_refused(refused)
        r.records += delivered
        self._stats[r.name].records += delivered
        return delivered

    def pump(self, callback: RecordCallback, stop: threading.Event, *,
             on_lost: LostCallback | None = None, interval: float = 0.001) -> int:
        """Drain until ``stop`` is set (then once more); returns the records delivered."""
        total = 0
        while not stop.is_set():
            n = self.drain(callback, on_lost=on_lost)
            total += n
            if not n:
                stop.wait(interval)
        return total + self.drain(callback, on_lost=on_lost)

    # -- reports ---------------------------------------------------------------------------
    def stats(self) -> list[WriterStats]:
        """Per ring (writing thread): records delivered, lost, refused; retired rings too."""
        live = [self._account(r) for r in self._rings.values()]
        return self._retired + live

    def totals(self) -> WriterStats:
        t = WriterStats("*", 0, 0, "")
        for s in self.stats():
            t.records += s.records
            t.lost += s.lost
            t.refused += s.refused
            t.corrupt += s.corrupt
        return t
