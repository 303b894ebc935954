"""The tracer's side of user events: enable by pattern, drain the writers' rings, check payloads.

>>> with UserEventsServer() as srv:                          # doctest: +SKIP
...     srv.enable("user_events:app_*", CONSUMER_TRACE)
...     while running:
...         srv.drain(lambda ts, cpu, tid, pid, comm, record, fmt: out.append(...))
...         time.sleep(0.001)
...     print("\n".join(srv.totals().render_losses()))

One tracer attaches to a session at a time (a write lock on the control file).  Patterns live
in the session, so an application that registers ``app_new`` after ``enable("app_*")`` finds
its status byte set at registration.  Each record a writer publishes is checked the way the
kernel's ``user_event_validate()`` checks a write (payload at least as long as the fixed
fields, every ``__data_loc``/``__rel_loc`` inside the payload, strings NUL-terminated); a bad
one is refused and counted, never delivered in part.  A good one becomes a kernel record: the
common header (``common_type`` = the event's id, ``common_pid`` = the writer's thread id)
followed by the payload as written, which is what the kernel records for a user event.

The writers are not trusted (:mod:`.drain`): no shared file is mapped, a ring whose writer
misbehaves is quarantined while the others go on, and every record refused or lost is counted
by reason (:meth:`UserEventsServer.totals`, :meth:`WriterStats.render_losses`).  The tracer
keeps at most half of its open-file limit for rings; past that it opens a ring for each read,
so that many writers cannot exhaust its descriptors, and a ring it could not open yet is read
later, or counted.
"""

from __future__ import annotations

import fcntl
import fnmatch
import os
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from usertrace.events.format import EventFormat

from . import abi
from .drain import (READ_LIMIT, Batch, EventInfo, RingFault, RingReader, is_fd_exhaustion,
                    parse_piece, render_reasons)
from .parse import UserEventError
from .session import (SessionDir, close_session, normalize_pattern, open_session,
                      proc_start_time)

LIVENESS_PERIOD = 0.5     # seconds between checks that a ring's writer is still alive
FD_RESERVE = 32           # descriptors always left to the rest of the tracer

# callback(ts_ns, cpu, tid, pid, comm, record, fmt); cpu is -1 when the writer did not know it.
RecordCallback = Callable[[int, int, int, int, str, bytes, EventFormat], None]
# on_lost(pid, tid, comm, count): count events a writer dropped since the last report.
LostCallback = Callable[[int, int, str, int], None]


@dataclass
class WriterStats:
    """What one ring (one writing thread) delivered, lost and had refused; or the totals.

    ``refused`` counts records refused, ``corrupt`` rings quarantined (0 or 1 for one ring),
    ``discarded`` the bytes a quarantined ring still held; ``reasons`` has every count by
    reason (the codes of :data:`.drain.REASONS`), ``lost`` included as ``ring_full``."""

    ring: str
    pid: int
    tid: int
    comm: str
    records: int = 0
    lost: int = 0
    refused: int = 0
    corrupt: int = 0
    retired: bool = False
    discarded: int = 0
    reasons: Counter = field(default_factory=Counter)

    def render_losses(self) -> list[str]:
        """One line per reason something was refused or lost (none: nothing was)."""
        return render_reasons(self.reasons, self.discarded)


class UserEventsServer:
    """Attach to a session as its tracer, enable events for consumers, drain their records.

    An event's id (``common_type``) is ``abi.ID_BASE + index`` (40001 and up: clear of the
    kernel's ids), the id writers put in their records.  Should an index be reused during
    the server's life (an event deleted, another registered), the newcomer gets an id above
    ``ID_BASE + MAX_EVENTS`` and its records are renumbered as they are drained, so an id
    never names two formats.  ``ring_size`` is the data size of the rings writers make from
    now on (bytes, rounded up to a power of two; default 2 MiB).
    """

    def __init__(self, session_dir: str | None = None, *, ring_size: int | None = None,
                 allocate_id=None):
        self.session_dir = session_dir
        self.ring_size = ring_size
        # The ids: a tracing session's registry hands them out (one allocator for every
        # source); a server on its own keeps its own.
        self.allocate_id = allocate_id or self._allocate_id
        self._ids: set[int] = set()
        self._next_id = abi.ID_BASE + abi.MAX_EVENTS
        self.session: SessionDir | None = None
        self._events: dict[int, EventInfo] = {}       # index word -> info
        self._fast: dict[int, tuple] = {}             # index word -> EventInfo.fast
        self._rings: dict[str, RingReader] = {}
        self._retired: list[WriterStats] = []
        self._reasons: Counter = Counter()            # what belongs to no ring
        self._bad_files: set[tuple[str, int]] = set()  # (name, inode) counted as not_a_ring
        self._unopened: set[str] = set()              # rings not opened yet: no descriptor
        self._unlisted = False                        # the directory could not be listed
        self._damaged: set[str] = set()
        self._gen = -1
        self._next_check = 0.0
        self.errors: list[str] = []
        self._looked = False
        self._lock = threading.Lock()
        self._fd_budget = 0
        self._reserve = -1                            # a descriptor kept for when none is free

    def _allocate_id(self, preferred: int) -> int:
        if preferred in self._ids:
            preferred = self._next_id
            self._next_id += 1
        self._ids.add(preferred)
        return preferred

    # -- lifetime --------------------------------------------------------------------------
    def open(self) -> "UserEventsServer":
        """Attach (UserEventError: BAD_SESSION, NO_SESSION with what to do; SESSION_BUSY)."""
        try:
            sess = open_session(self.session_dir, create=True)
        except OSError as exc:
            where = exc.filename or self.session_dir or "the session"
            raise UserEventError("NO_SESSION", f"{where}: {exc.strerror}") from None
        if getattr(sess, "tracer", None) is not None:      # our own process is the tracer
            close_session(sess)
            raise UserEventError("SESSION_BUSY", f"{sess.path}: tracer pid {os.getpid()}")
        try:
            fcntl.lockf(sess.ctl_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, abi.TRACER_LOCK_OFFSET)
        except OSError:
            pid = sess.tracer_pid()
            close_session(sess)
            raise UserEventError("SESSION_BUSY", f"{sess.path}: tracer pid {pid}") from None
        self.session = sess
        sess.tracer = self
        self._take_reserve()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._fd_budget = max(0, (soft if soft != resource.RLIM_INFINITY else 1 << 20) // 2
                              - FD_RESERVE)
        try:
            with sess.locked():
                sess.set_patterns([])             # whatever a dead tracer left enabled
                sess.sweep(rings=True)            # what processes gone since left behind
                size = 0
                if self.ring_size:
                    size = min(max(self.ring_size, abi.MIN_RING_SIZE), abi.MAX_RING_SIZE)
                    size = 1 << (size - 1).bit_length()
                sess.set_tracer(os.getpid(), size)
                sess.bump()
            self.refresh(force=True)
        except OSError as exc:
            self._detach(sess)
            raise UserEventError("NO_SESSION", f"{sess.path}: {exc.strerror}") from None
        except BaseException:
            self._detach(sess)
            raise
        return self

    def close(self, drain_into=None, on_lost: LostCallback | None = None,
              batch: bool = False) -> None:
        """Disable everything (applications read their events as disabled), drain what is left
        into ``drain_into`` if given (``batch`` as for :meth:`drain`), and detach.  The
        session directory stays; the rings of writers that are gone are removed."""
        sess = self.session
        if sess is None:
            return
        try:
            with self._lock:
                self._check_session(sess)
            try:
                with sess.locked():
                    sess.set_patterns([])
                    sess.set_tracer(0, 0)
            except OSError as exc:              # the session is damaged: drain all the same
                self.errors.append(f"{sess.path}: cannot disable the events: {exc.strerror}")
            if drain_into is not None:
                with self._lock:
                    for r in self._rings.values():
                        r.close()           # descriptors back: rings not opened yet need some
                    self._fd_budget = 0
                    self._scan_rings()
                self.drain_all(drain_into, on_lost=on_lost, batch=batch)
        finally:
            with self._lock:
                self._retire_all()
            self._detach(sess)

    def _detach(self, sess: SessionDir) -> None:
        if self._reserve >= 0:
            os.close(self._reserve)
            self._reserve = -1
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
            event_id = self.allocate_id(abi.ID_BASE + s.index)
            info = EventInfo(s, event_id)
            if info.format is not None:
                new.append(info.format)
            else:
                self.errors.append(f"event {s.index} {s.text!r}: {info.error}")
            self._events[s.index_word] = info
            self._fast[s.index_word] = info.fast
        self._scan_rings()
        return new

    def _lookup(self, index_word: int) -> tuple | None:
        """An index word the drain does not know: look at the registry once per drain."""
        if self._looked:
            return None
        self._looked = True             # registered after our last look?
        self.refresh(force=True)
        return self._fast.get(index_word)

    def formats(self, pattern: str | None = None) -> list[EventFormat]:
        """Formats of the events seen (registered now or earlier in this session), by pattern."""
        glob = None if pattern is None else normalize_pattern(pattern)
        return [i.format for i in self._events.values() if i.format is not None
                and (glob is None or fnmatch.fnmatchcase(i.format.full_name, glob))]

    def format_by_id(self, event_id: int) -> EventFormat | None:
        for i in self._events.values():
            if i.id == event_id:
                return i.format
        return None

    # -- descriptors -----------------------------------------------------------------------
    # The tracer keeps one descriptor in reserve (the accept()-EMFILE trick): when an open
    # fails because none is free, the reserve is closed, the open (and the read, and the close
    # that follow) tried once more, and the reserve taken again.  So a tracer whose other
    # parts used every descriptor still reads its rings, one at a time.
    def _take_reserve(self) -> None:
        if self._reserve < 0:
            try:
                self._reserve = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass

    def _spare(self, fn, *args):
        """``fn(*args)``; on running out of descriptors, once more with the reserve's."""
        try:
            return fn(*args)
        except OSError as exc:
            if not is_fd_exhaustion(exc) or self._reserve < 0:
                raise
        os.close(self._reserve)
        self._reserve = -1
        self._fd_budget = 0                 # from now on no ring keeps a descriptor
        try:
            return fn(*args)
        finally:
            self._take_reserve()

    # -- rings -----------------------------------------------------------------------------
    def _scan_rings(self) -> None:
        sess = self._sess()
        try:
            entries = self._spare(lambda: list(os.scandir(sess.dfd)))
        except OSError as exc:
            if not is_fd_exhaustion(exc):
                raise
            self._gen = -1                  # look again at the next drain
            self._unlisted = True
            return
        self._unlisted = False
        kept = sum(1 for r in self._rings.values() if r.fd >= 0)
        for entry in entries:
            name = entry.name
            if not name.startswith(abi.RING_PREFIX):
                continue
            try:
                ino = entry.inode()
            except OSError:
                continue
            known = self._rings.get(name)
            if known is not None:
                if ino == known.ino[1]:
                    continue
                self._retire(known, unlink=False)       # replaced by a new ring of that name
            if (name, ino) in self._bad_files:
                continue
            keep = kept < self._fd_budget
            try:
                r = self._spare(RingReader, sess.dfd, sess.path, name, keep)
                kept += r.fd >= 0
            except FileNotFoundError:
                continue                    # gone meanwhile
            except OSError as exc:
                if is_fd_exhaustion(exc):
                    self._unopened.add(name)
                    self._gen = -1          # try again at the next drain
                    continue
                exc = RingFault("not_a_ring", f"{name}: {exc.strerror}")
                self._bad_files.add((name, ino))
                self._reasons["not_a_ring"] += 1
                self.errors.append(str(exc))
                continue
            except (RingFault, UserEventError) as exc:
                self._bad_files.add((name, ino))
                self._reasons["not_a_ring"] += 1
                self.errors.append(f"{name}: {exc}")
                continue
            self._unopened.discard(name)
            self._rings[name] = r

    def _stats_of(self, r: RingReader) -> WriterStats:
        reasons = Counter(r.reasons)
        if r.lost:
            reasons["ring_full"] = r.lost
        return WriterStats(r.name, r.pid, r.tid, r.comm, r.records, r.lost, r.refused,
                           1 if r.fault else 0, False, r.discarded, reasons)

    def _retire(self, r: RingReader, unlink: bool = True) -> None:
        st = self._stats_of(r)
        st.retired = True
        self._retired.append(st)
        del self._rings[r.name]
        if unlink:
            try:
                os.unlink(r.name, dir_fd=self._sess().dfd)
            except OSError:
                pass
        r.close()

    def _retire_all(self) -> None:
        """At the end: keep the figures of every ring; remove the rings of writers that are
        gone or closed and that were drained (or quarantined); count rings never read."""
        for r in list(self._rings.values()):
            r.close()                       # descriptors back first: the last reads need some
        for r in list(self._rings.values()):
            try:
                flags, head, _ = self._spare(self._words, r)
                gone = (head == r.tail or r.fault) and (
                    flags & abi.RING_CLOSED or not self._writer_alive(r))
            except (OSError, RingFault):
                gone = False
            self._retire(r, unlink=gone)
        if self._unopened or self._unlisted:
            self._reasons["no_descriptor"] += len(self._unopened) + self._unlisted
        self._unopened.clear()
        self._unlisted = False

    @staticmethod
    def _words(r: RingReader) -> tuple[int, int, int]:
        with r.opened() as fd:
            return r.words(fd)

    def _writer_alive(self, r: RingReader) -> bool:
        """Is the ring's writer process still there?  (True when that cannot be told now.)"""
        try:
            return r.start != 0 and self._spare(proc_start_time, r.pid, True) == r.start
        except OSError:
            return True

    def _quarantine(self, r: RingReader, fault: RingFault, pending: int) -> None:
        """Stop reading a ring no honest writer leaves like this; count what it still held."""
        r.fault = fault.reason
        r.discarded = max(pending, 0)
        r.reasons[fault.reason] += 1
        self.errors.append(f"{r.name} (pid {r.pid} tid {r.tid} {r.comm}): quarantined: {fault}")
        r.close()

    # -- draining --------------------------------------------------------------------------
    def drain(self, callback, *, on_lost: LostCallback | None = None, ordered: bool = True,
              batch: bool = False) -> int:
        """Deliver every record published so far; returns how many were delivered.

        ``callback(ts, cpu, tid, pid, comm, record, fmt)`` gets each record; with ``batch``
        it is called once instead, with a :class:`~.drain.Batch` of them (not at all when
        there is none), which saves a call per record.  With ``ordered`` the records of this call come
        in timestamp order across all writers (each ring is in order by itself).  A record
        published later by a writer that was preempted between taking its timestamp and
        publishing can be older than the last one of the previous call, by at most that
        preemption.  A ring holding more than :data:`.drain.READ_LIMIT` bytes gives that much
        per call: call again while records come (:meth:`drain_all`).
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
                self._check_session(sess)
            pending = []
            idle = []
            for r in list(self._rings.values()):
                if r.fault:
                    continue
                got = self._take(r, on_lost)
                if got is None:
                    continue
                flags, head, pieces = got
                if pieces:
                    pending.append((r, head, pieces))
                elif check and (flags & abi.RING_CLOSED or not self._writer_alive(r)):
                    idle.append(r)
            direct = not batch and (not ordered or len(pending) <= 1)
            out = Batch()
            sink = callback if direct else out
            total = 0
            for r, head, pieces in pending:
                total += self._consume(r, head, pieces, sink)
            if len(out):
                if ordered and len(pending) > 1:
                    out.sort()
                if batch:
                    callback(out)
                else:
                    for rec in out:
                        callback(*rec)
            for r in idle:
                self._retire(r)
            return total

    def _take(self, r: RingReader, on_lost: LostCallback | None):
        """(flags, head, pieces) of a ring, None if it cannot be read now (quarantined, or no
        descriptor free: then it is read at a later drain)."""
        try:
            return self._spare(self._read_ring, r, on_lost)
        except RingFault as fault:
            self._quarantine(r, fault, -1)
        except OSError as exc:
            if not is_fd_exhaustion(exc):
                self._quarantine(r, RingFault("removed", exc.strerror), -1)
        return None

    @staticmethod
    def _read_ring(r: RingReader, on_lost: LostCallback | None):
        with r.opened() as fd:
            flags, head, lost = r.head(fd)
            if lost > r.lost_seen:
                if on_lost is not None:
                    on_lost(r.pid, r.tid, r.comm, lost - r.lost_seen)
                r.lost_seen = r.lost = lost
            return flags, head, r.read(fd, head) if head != r.tail else []

    def _consume(self, r: RingReader, head: int, pieces, sink) -> int:
        """Parse the pieces taken from ``r``, move its tail past what was used."""
        before = r.records
        refused = r.refused
        used = 0
        broken = False
        for piece, at_end, cut in pieces:
            n, broken = parse_piece(r, piece, at_end, cut, self._fast, self._lookup, sink)
            used += n
            if n < len(piece):
                break
        r.tail += used                      # ours: the file's copy is for the writer
        try:
            self._spare(self._settle, r, head, broken, refused)
        except RingFault as fault:
            self._quarantine(r, fault, head - r.tail)
        except OSError as exc:
            if not is_fd_exhaustion(exc):
                self._quarantine(r, RingFault("removed", exc.strerror), head - r.tail)
            # else: the writer learns the new tail at the next drain
        return r.records - before

    @staticmethod
    def _settle(r: RingReader, head: int, broken: bool, refused: int) -> None:
        """Tell the writer the new tail; a framing that broke where the head did not move
        meanwhile is a lie: RingFault."""
        with r.opened() as fd:
            r.store_tail(fd)
            if r.refused != refused:
                r.store_refused(fd)
            if broken and r.words(fd)[1] == head:
                raise RingFault("bad_length", f"at {r.tail}")

    def _check_session(self, sess: SessionDir) -> None:
        for path in sess.damaged():
            if path not in self._damaged:
                self._damaged.add(path)
                self._reasons["session_damaged"] += 1
                self.errors.append(f"{path}: truncated by another process")
        if self._unopened:
            self._gen = -1                  # descriptors may be free again

    def pump(self, callback, stop: threading.Event, *, on_lost: LostCallback | None = None,
             interval: float = 0.001, batch: bool = False) -> int:
        """Drain until ``stop`` is set (then what is left); returns the records delivered.
        ``batch`` as for :meth:`drain`."""
        total = 0
        while not stop.is_set():
            n = self.drain(callback, on_lost=on_lost, batch=batch)
            total += n
            if not n:
                stop.wait(interval)
        return total + self.drain_all(callback, on_lost=on_lost, batch=batch)

    def drain_all(self, callback, *, on_lost: LostCallback | None = None,
                  batch: bool = False) -> int:
        """Drain until nothing is left of what the rings held when called: as many drains as
        the largest ring takes at READ_LIMIT bytes each, fewer when one finds nothing (a
        writer still writing does not keep this going)."""
        with self._lock:
            self.refresh()                  # rings made since the last look count too
            rounds = max((r.size for r in self._rings.values()), default=0) // READ_LIMIT + 1
        total = 0
        for _ in range(rounds + 1):
            n = self.drain(callback, on_lost=on_lost, batch=batch)
            total += n
            if not n:
                break
        return total

    # -- reports ---------------------------------------------------------------------------
    def stats(self) -> list[WriterStats]:
        """Per ring (writing thread): records delivered, lost, refused; retired rings too."""
        return self._retired + [self._stats_of(r) for r in self._rings.values()]

    def totals(self) -> WriterStats:
        """Every ring's figures added up, with the counts that belong to no ring: what the
        final report prints (:meth:`WriterStats.render_losses`)."""
        t = WriterStats("*", 0, 0, "")
        for s in self.stats():
            t.records += s.records
            t.lost += s.lost
            t.refused += s.refused
            t.corrupt += s.corrupt
            t.discarded += s.discarded
            t.reasons.update(s.reasons)
        t.reasons.update(self._reasons)
        if self._unopened:
            t.reasons["no_descriptor"] += len(self._unopened)
        return t
