"""The tracer's end of the writers' rings: read without trust, checked, every refusal counted.

Everything a writer can put in shared memory is input from another program, which may be
buggy or hostile (another process of the same user can write any byte of the session, or
truncate any of its files).  So:

* **No ring is mapped.**  The tracer reads a ring with ``pread`` and stores its ``tail`` with
  ``pwrite``; a ring truncated by its writer (or by anyone) makes a read come back short,
  which quarantines that ring, and can never raise SIGBUS in the tracer.  (Mapping only what
  ``fstat`` showed and checking again before each access leaves a window between the check
  and the access; a signal handler cannot resume Python code in the middle of a copy.)
* **Every number is checked before it is used**: the header (magic, version, sizes, the pid
  and tid of the name), ``head`` (8-aligned, not behind the tail, at most one ring ahead),
  each record's length (inside the published bytes, not across the end of the data area),
  each payload (the kernel's ``user_event_validate()`` checks).  A read is at most
  :data:`READ_LIMIT` bytes, so a ring that claims a huge size costs no more than an honest
  one, and one busy writer cannot hold up the others.
* **One bad writer is quarantined**, never able to stop the drain of the others: a ring whose
  head or framing no honest writer produces is no longer read; what it still held is counted.
  A record that only fails its payload checks is refused and counted, and the ring goes on.
* **Every refusal and loss is counted by reason** (:data:`REASONS`), for the final report.

``head`` is read twice, and must read the same both times, before it is trusted: a ``pread``
copies with the kernel's ``copy_to_user``, which does not promise one 8-byte load.
"""

from __future__ import annotations

import errno
import os
import struct
from collections import Counter
from contextlib import contextmanager

from . import abi
from .parse import K_DYN_STR, Definition, UserEventError
from .session import Slot, open_file

READ_LIMIT = 1 << 20        # bytes read from one ring per drain

# -- why records, events and rings were refused or lost --------------------------------------
# code: (unit, message).  "records": records a writer published and the tracer refused;
# "events": events a writer dropped before writing them; "rings": rings the tracer stopped
# reading (their unread bytes are counted apart); "files": files it could not read.
REASONS: dict[str, tuple[str, str]] = {
    # the kernel's checks of a payload (user_event_validate) and of its event
    "short": ("records", "payload shorter than the event's fields"),
    "too_big": ("records", f"payload longer than {abi.MAX_PAYLOAD} bytes"),
    "bad_type": ("records", "common_type is not the event's id"),
    "bad_loc": ("records", "a __data_loc/__rel_loc field points outside the payload"),
    "no_nul": ("records", "a string field lacks its NUL"),
    "unknown_event": ("records", "no registered event has the record's index and serial"),
    "bad_event": ("records", "the event's definition does not parse"),
    # what the writers counted themselves
    "ring_full": ("events", "dropped by the writer: its ring was full"),
    # a ring no honest writer leaves like this: quarantined
    "head_misaligned": ("rings", "head not a multiple of 8"),
    "head_backwards": ("rings", "head went back"),
    "head_overrun": ("rings", "head ran more than the ring's size past the tail"),
    "bad_length": ("rings", "a record runs past the published bytes or the end of the ring"),
    "truncated": ("rings", "the ring file was truncated"),
    "removed": ("rings", "the ring file was removed or replaced before it was drained"),
    # files that could not be read
    "not_a_ring": ("files", "a ring-* file that is not a ring of this version, or not safe"),
    "no_descriptor": ("files", "a ring never read: no file descriptor was free"),
    "session_damaged": ("files", "a session file was truncated"),
}
RECORD_REASONS = frozenset(k for k, (unit, _) in REASONS.items() if unit == "records")
RING_FAULTS = frozenset(k for k, (unit, _) in REASONS.items() if unit == "rings")

_NO_FD = (errno.EMFILE, errno.ENFILE)
_WORDS_AT = abi.RH_FLAGS                                # flags .. refused: one read
_WORDS_LEN = abi.RH_REFUSED + 8 - abi.RH_FLAGS
_HEAD_AT = abi.RH_HEAD - _WORDS_AT
_LOST_AT = abi.RH_LOST - _WORDS_AT
_HEADER = struct.Struct("=8sII Q II 16s Q")             # magic .. start time (RH_FLAGS)
_unpack_u32 = abi.U32.unpack_from
_unpack_u64 = abi.U64.unpack_from


def is_fd_exhaustion(exc: OSError) -> bool:
    return exc.errno in _NO_FD


def render_reasons(counts: Counter, discarded: int = 0) -> list[str]:
    """One line per reason with a count, in the catalog's order: what the final report says."""
    lines = []
    for code, (unit, message) in REASONS.items():
        n = counts.get(code, 0)
        if n:
            lines.append(f"{n} {unit if n != 1 else unit[:-1]}: {message}")
    if discarded:
        lines.append(f"{discarded} bytes the rings quarantined still held, unread")
    return lines


class RingFault(Exception):
    """A ring that can no longer be read: the reason (a code of :data:`REASONS`)."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{REASONS[reason][1]}{': ' + detail if detail else ''}")


def parse_ring_name(name: str) -> tuple[int, int] | None:
    """``ring-<pid>-<tid>-<n>`` -> (pid, tid), None for another name (``<n>`` is any word
    the writer chose: a count, ``c0``...)."""
    if not name.startswith(abi.RING_PREFIX):
        return None
    parts = name[len(abi.RING_PREFIX):].split("-", 2)
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit() and parts[2]):
        return None
    return int(parts[0]), int(parts[1])


class RingReader:
    """The tracer's end of one ring: checked when opened, then read with pread only.

    With ``keep_open`` False (the tracer is short of descriptors) the ring is opened for each
    read and closed after it, and must still be the same file (inode) each time.
    """

    def __init__(self, dfd: int, dirpath: str, name: str, keep_open: bool = True):
        ids = parse_ring_name(name)
        if ids is None:
            raise RingFault("not_a_ring", name)
        self.name = name
        self.dfd = dfd
        self.dirpath = dirpath
        fd = open_file(dfd, name, dirpath)         # OSError, or UserEventError if not safe
        try:
            st = os.fstat(fd)
            raw = os.pread(fd, _HEADER.size, 0)
        except BaseException:
            os.close(fd)
            raise
        if len(raw) < _HEADER.size:
            os.close(fd)
            raise RingFault("not_a_ring", f"{name}: too short")
        magic, version, hsize, size, pid, tid, comm, start = _HEADER.unpack(raw)
        if (magic != abi.RING_MAGIC or version != abi.RING_VERSION
                or hsize != abi.RING_HEADER_SIZE or size & (size - 1)
                or not abi.MIN_RING_SIZE <= size <= abi.MAX_RING_SIZE
                or st.st_size != abi.RING_HEADER_SIZE + size or (pid, tid) != ids):
            os.close(fd)
            raise RingFault("not_a_ring", f"{name}: not a ring of this version")
        self.ino = (st.st_dev, st.st_ino)
        self.size = size
        self.mask = size - 1
        self.pid = pid
        self.tid = tid
        self.comm = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.start = start
        words = os.pread(fd, _WORDS_LEN, _WORDS_AT)
        self.tail = _unpack_u64(words, abi.RH_TAIL - _WORDS_AT)[0] if len(words) == _WORDS_LEN else 0
        self.stored_tail = self.tail  # what the file says: the tail the writer sees
        self.fd = fd if keep_open else -1
        if not keep_open:
            os.close(fd)
        self.lost_seen = 0
        self.lost = 0
        self.refused = 0
        self.records = 0
        self.reasons: Counter = Counter()
        self.fault = ""               # the reason it was quarantined
        self.discarded = 0            # bytes it still held then
        self.flags = 0

    # -- descriptors ------------------------------------------------------------------------
    @contextmanager
    def opened(self):
        """The ring's descriptor: the one kept, or one opened for this use (OSError when none
        is free; RingFault "removed" when the name now is another file or none)."""
        if self.fd >= 0:
            yield self.fd
            return
        try:
            fd = os.open(self.name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.dfd)
        except FileNotFoundError:
            raise RingFault("removed") from None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.ino:
                raise RingFault("removed")
            yield fd
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- reading ----------------------------------------------------------------------------
    def words(self, fd: int) -> tuple[int, int, int]:
        """(flags, head, lost) as the writer left them; RingFault if the header is gone."""
        raw = os.pread(fd, _WORDS_LEN, _WORDS_AT)
        if len(raw) < _WORDS_LEN:
            raise RingFault("truncated")
        return _unpack_u32(raw, 0)[0], _unpack_u64(raw, _HEAD_AT)[0], _unpack_u64(raw, _LOST_AT)[0]

    def head(self, fd: int) -> tuple[int, int, int]:
        """:meth:`words`, with ``head`` read until two reads agree, then checked against the
        tail: RingFault for a head no honest writer publishes."""
        flags, head, lost = self.words(fd)
        for _ in range(8):
            again = self.words(fd)
            if again[1] == head:
                break
            flags, head, lost = again
        tail = self.tail
        if head & 7:
            raise RingFault("head_misaligned", f"head {head}")
        if head < tail:
            raise RingFault("head_backwards", f"head {head}, tail {tail}")
        if head - tail > self.size:
            raise RingFault("head_overrun", f"head {head}, tail {tail}, size {self.size}")
        return flags, head, lost

    def read(self, fd: int, head: int) -> list[tuple[bytes, bool, bool]]:
        """The published bytes from the tail, at most READ_LIMIT: up to two pieces (before
        and after the end of the data area), each with (ends at the end of the data area,
        ends where READ_LIMIT cut it)."""
        avail = head - self.tail
        n = min(avail, READ_LIMIT)
        cut = n < avail
        pos = self.tail & self.mask
        first = min(n, self.size - pos)
        pieces = [(self._pread(fd, first, pos), pos + first == self.size, cut and first == n)]
        if n > first:
            pieces.append((self._pread(fd, n - first, 0), n - first == self.size, cut))
        return pieces

    def _pread(self, fd: int, n: int, pos: int) -> bytes:
        data = os.pread(fd, n, abi.RING_HEADER_SIZE + pos)
        if len(data) < n:
            raise RingFault("truncated")
        return data

    def store_tail(self, fd: int) -> None:
        """Write :attr:`tail` (what the tracer consumed) where the writer reads it."""
        if self.tail != self.stored_tail:
            os.pwrite(fd, abi.U64.pack(self.tail), abi.RH_TAIL)
            self.stored_tail = self.tail

    def store_refused(self, fd: int) -> None:
        os.pwrite(fd, abi.U64.pack(self.refused), abi.RH_REFUSED)

    def refuse(self, reason: str, n: int = 1) -> None:
        self.reasons[reason] += n
        self.refused += n


# -- the events, as the tracer checks their records ---------------------------------------------
class EventInfo:
    """A registered event as the tracer knows it: format, id, and its payload checks."""

    __slots__ = ("slot", "definition", "format", "id", "wire_id", "patch", "min_size", "checks",
                 "one_check", "error", "fast")

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
        else:
            self.format = self.definition.event_format(event_id, slot.multi_id)
            self.min_size = self.definition.min_size
            # (payload offset of the word, base of a __rel_loc offset or 0, NUL required)
            self.checks = tuple((f.offset - abi.COMMON_SIZE, f.offset + 4 if f.is_rel_loc else 0,
                                 f.kind == K_DYN_STR)
                                for f in self.definition.fields if f.is_dynamic)
            self.one_check = self.checks[0] if len(self.checks) == 1 else None
        # what the drain loop needs, in one tuple
        self.fast = (self.min_size, self.wire_id, self.one_check,
                     self if len(self.checks) > 1 else None,
                     struct.pack("<H", event_id) if self.patch else b"", self.format)

    def why_refused(self, buf: bytes, p: int, plen: int) -> str | None:
        """The reason the payload at ``buf[p:p+plen]`` fails the kernel's checks, or None."""
        if self.format is None:
            return "bad_event"
        if plen < self.min_size:
            return "short"
        if plen > abi.MAX_PAYLOAD:
            return "too_big"
        end_rec = abi.COMMON_SIZE + plen           # offsets below count from the record start
        base = p - abi.COMMON_SIZE                 # buf index of record offset 0
        for woff, rel, nul in self.checks:
            word = _unpack_u32(buf, p + woff)[0]
            size = word >> 16
            start = (word & 0xFFFF) + rel
            if start < abi.COMMON_SIZE or start + size > end_rec:
                return "bad_loc"
            if nul and (size == 0 or buf[base + start + size - 1] != 0):
                return "no_nul"
        return None


class Batch:
    """The records of one drain as columns: time stamps, cpus, records, formats, and the ring
    each came from (its ``pid``, ``tid`` and ``comm``).  Columns rather than a tuple per
    record: tens of thousands of tuples kept at once make the garbage collector run again and
    again over them, which costs more than the drain.  ``order`` lists the indexes in time
    order (None: they are in order already)."""

    __slots__ = ("ts", "cpu", "record", "format", "ring", "order")

    def __init__(self):
        self.ts: list[int] = []
        self.cpu: list[int] = []
        self.record: list[bytes] = []
        self.format: list = []
        self.ring: list[RingReader] = []
        self.order: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def sort(self) -> None:
        """Put the records in time order (stable: each ring's own order is kept)."""
        self.order = sorted(range(len(self.ts)), key=self.ts.__getitem__)

    def __iter__(self):
        """``(ts, cpu, tid, pid, comm, record, format)`` of each record, in order."""
        ts, cpu, rec, fmt, ring = self.ts, self.cpu, self.record, self.format, self.ring
        for i in self.order if self.order is not None else range(len(ts)):
            r = ring[i]
            yield ts[i], cpu[i], r.tid, r.pid, r.comm, rec[i], fmt[i]


_unpack_record_header = struct.Struct("=IIQiIH").unpack_from
_RECORD_HEADER_SIZE = abi.RECORD_HEADER_SIZE
_RECORD_SPAN = abi.RECORD_HEADER_SIZE + abi.COMMON_SIZE
_COMMON_SIZE = abi.COMMON_SIZE
_WRAP_MARK = abi.WRAP_MARK
_MAX_PAYLOAD = abi.MAX_PAYLOAD


def parse_piece(r: RingReader, piece: bytes, at_end: bool, cut: bool, fast: dict, lookup,
                sink) -> tuple[int, bool]:
    """Check and deliver the records of one piece of a ring.

    ``fast`` maps an index word to :attr:`EventInfo.fast`; ``lookup(index_word)`` is called
    for a word ``fast`` lacks and returns the tuple or None.  ``sink`` is a :class:`Batch` or
    a callback taking ``(ts, cpu, tid, pid, comm, record, fmt)``.  Returns the bytes
    consumed and whether the framing broke where no honest writer breaks it (a record running
    past the piece that was not cut by READ_LIMIT, a wrap mark that does not end the data
    area, bytes after the last record that cannot be one).
    """
    n = len(piece)
    off = 0
    last = n - _RECORD_SPAN             # a record has its header and common fields
    unpack = _unpack_record_header
    pid, tid, comm = r.pid, r.tid, r.comm
    batch = sink.__class__ is Batch
    if batch:
        add_ts, add_cpu, add_rec = sink.ts.append, sink.cpu.append, sink.record.append
        add_fmt, add_ring = sink.format.append, sink.ring.append
    else:
        put = sink
    delivered = 0
    broken = False
    last_iw = -1                        # the event of the record before: most often the same
    while off <= last:
        plen, iw, ts, cpu, _, ctype = unpack(piece, off)
        if plen == _WRAP_MARK:
            break
        end = off + ((plen + _RECORD_SPAN + 7) & -8)
        if end > n:
            break
        k = off + _RECORD_HEADER_SIZE       # the kernel record: common fields, payload
        p = k + _COMMON_SIZE
        off = end
        if iw != last_iw:
            ent = fast.get(iw)
            if ent is None:
                ent = lookup(iw)
                if ent is None:
                    last_iw = -1
                    r.refuse("unknown_event")
                    continue
            last_iw = iw
            min_size, wire_id, one, info, patch, fmt = ent
        if plen < min_size or plen > _MAX_PAYLOAD or ctype != wire_id:
            r.refuse("bad_event" if fmt is None else "short" if plen < min_size
                     else "too_big" if plen > _MAX_PAYLOAD else "bad_type")
            continue
        if one is not None:                 # one dynamic field: checked inline
            woff, rel, nul = one
            word = _unpack_u32(piece, p + woff)[0]
            size = word >> 16
            start = (word & 0xFFFF) + rel
            if start < _COMMON_SIZE or start + size > plen + _COMMON_SIZE:
                r.refuse("bad_loc")
                continue
            if nul and (not size or piece[k + start + size - 1]):
                r.refuse("no_nul")
                continue
        elif info is not None:
            why = info.why_refused(piece, p, plen)
            if why is not None:
                r.refuse(why)
                continue
        rec = piece[k: p + plen]
        if patch:
            rec = patch + rec[2:]
        if batch:
            add_ts(ts)
            add_cpu(cpu)
            add_rec(rec)
            add_fmt(fmt)
            add_ring(r)
        else:
            put(ts, cpu, tid, pid, comm, rec, fmt)
        delivered += 1
    r.records += delivered
    if off < n:
        if off + 4 <= n and _unpack_u32(piece, off)[0] == _WRAP_MARK:
            if at_end:
                return n, False             # the rest of the data area is skipped
            broken = not cut
        else:
            broken = not cut
    return off, broken
