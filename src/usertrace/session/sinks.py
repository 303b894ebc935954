"""The consumers of a session's events: the trace buffer (into a trace.dat) and a live stream.

The trace buffer is the kernel's: a ring buffer per cpu in the kernel's page format, in
stop-when-full mode.  Full pages leave the rings for a writer thread that puts them into the
trace.dat, so that the tracer never waits for the disk; they leave a batch at a time (up to
:data:`BATCH_PAGES`, one write each), because every wake-up of that thread is a hand-over of
Python's lock the tracer then waits for.  ``-b`` sets the size of each ring:
when the file does not keep up (a slow or stalled disk) and a ring is full, new events are
dropped, as the kernel drops them, and counted exactly (:attr:`TraceBuffer.lost`).  When the
file cannot be written at all (a full disk), the writer stops, every later event counts as
lost, and :attr:`TraceBuffer.error` says why; at the end the newest pages are dropped (and
counted) until the trace.dat's own data fits, so what was recorded before is still written.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, TextIO

from ..buffer.ring import RingBuffer
from ..buffer.tracedat import TraceDatError, TraceDatWriter
from ..events.format import EventFormat
from ..output.text import TextFormatter, line_prefix

QUEUED_PAGES = 8          # batches of pages per ring waiting for the writer thread
BATCH_PAGES = 16          # full pages a ring gathers before they go, an eighth of a small ring
ROOM_MARGIN = 1 << 20     # bytes kept free for a trace.dat's own data on a full disk


class TraceBuffer:
    """The trace buffer consumer: a ring buffer per cpu whose full pages go to a trace.dat."""

    def __init__(self, writer: TraceDatWriter, nbuffers: int, *, page_size: int = 4096,
                 nr_pages: int = 256, on_error: Callable[[str], None] | None = None):
        self.writer = writer
        self.path = str(getattr(writer, "path", ""))
        self.rings = [RingBuffer(page_size, nr_pages, overwrite=False) for _ in range(nbuffers)]
        self.error = ""                       # why the file could not be written
        self.page_size = page_size
        self._on_error = on_error
        self._failed_lost = 0                 # events of pages the file never got (this
        self._thread_lost = 0                 # thread's count, and the writer thread's)
        self._foreign_entries = 0             # events of pages made elsewhere (the kernel)
        self._foreign_lost = 0
        self._queue: queue.Queue = queue.Queue(QUEUED_PAGES * nbuffers)
        self._batch = max(1, min(BATCH_PAGES, nr_pages // 8))
        self._thread = threading.Thread(target=self._write_pages, name="usertrace-trace.dat",
                                        daemon=True)
        self._thread.start()

    # -- the tracer's side -----------------------------------------------------------------
    def write(self, cpu: int, ts_ns: int, record: bytes) -> None:
        ring = self.rings[cpu]
        ring.write(ts_ns, record)
        if ring.full_pages:
            self._drain(cpu, ring)

    def write_records(self, items: list) -> None:
        """Records as a flat list of ``(cpu, ts_ns, record)`` triples, in that order (the
        engine's compiled loop makes them so): runs of one cpu go to its ring at once
        (:meth:`RingBuffer.write_run`)."""
        rings = self.rings
        i, n = 0, len(items) - 2
        while i < n:
            cpu = items[i]
            ring = rings[cpu]
            i = ring.write_run(items, i, cpu)
            if ring.full_pages:
                self._drain(cpu, ring)

    def packed_writers(self, st) -> list[Callable[[int, tuple], int]]:
        """Per cpu, the ring's writer of ``st`` records (:meth:`RingBuffer.packed_writer`):
        ``write(ts_ns, values)``, the record ``st.pack(*values)`` written in place.  When it
        returns other than 1, call :meth:`settle` with the cpu."""
        return [ring.packed_writer(st) for ring in self.rings]

    def packed_tail_writers(self, st) -> list[Callable[[int, tuple, bytes], int]]:
        """Per cpu, the ring's writer of ``st`` records followed by data of varying length
        (:meth:`RingBuffer.packed_tail_writer`): ``write(ts_ns, values, tail)``."""
        return [ring.packed_tail_writer(st) for ring in self.rings]

    def settle(self, cpu: int, written: int = 2) -> None:
        """After a packed write that did not return 1: hand the pages that became full to
        the writer thread.  (A drop is counted by the ring itself.)"""
        ring = self.rings[cpu]
        if ring.full_pages:
            self._drain(cpu, ring)

    def _drain(self, cpu: int, ring: RingBuffer) -> None:
        """Full pages to the writer thread in whole batches, as many as it has room for
        (never waits); fewer than a batch stay in the ring until more are full."""
        batch = self._batch
        while ring.full_pages >= batch:
            if not self.error and self._queue.full():
                return                        # the file is behind: the ring keeps the pages
            data, counts = _joined(ring, batch)
            if self.error:
                self._failed_lost += counts[0]
            else:
                self._queue.put_nowait((cpu, data, counts))

    # -- pages made elsewhere --------------------------------------------------------------
    def put_pages(self, cpu: int, data: bytes) -> None:
        """Whole pages of buffer ``cpu`` made elsewhere (the kernel's, from trace_pipe_raw),
        to the file in the order given.  Waits while the writer thread is behind: the
        pages wait in the kernel's buffer meanwhile, which counts what it must drop."""
        while not self.error:
            try:
                self._queue.put((cpu, data, None), timeout=0.2)
                return
            except queue.Full:
                continue
        self._failed_lost += _entries_of(data, None, self.page_size)

    def count_foreign(self, entries: int, lost: int) -> None:
        """Events of the pages given to :meth:`put_pages` (``entries``), and events their
        maker lost (``lost``): both counted in :attr:`entries` and :attr:`lost`."""
        self._foreign_entries += entries
        self._foreign_lost += lost

    # -- the writer thread -----------------------------------------------------------------
    def _write_pages(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            cpu, page, counts = item           # counts: (events, lost) of our own pages
            if self.error:                    # the file failed: the page is lost, counted
                self._thread_lost += _entries_of(page, counts, self.page_size)
                continue
            try:
                self.writer.write_pages(cpu, page, counts=counts)
            except Exception as exc:          # noqa: BLE001 (OSError, TraceDatError; any
                # other fault too: this thread must go on taking pages, or the tracer that
                # waits for room in the queue would hang)
                self._thread_lost += _entries_of(page, counts, self.page_size)
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        why = getattr(exc, "strerror", None) or str(exc)
        self.error = f"cannot write {self.path}: {why}"
        if self._on_error is not None:
            self._on_error(self.error)

    # -- the end -----------------------------------------------------------------------------
    def finish(self, formats: list[EventFormat], cmdlines: dict[int, str]) -> None:
        """Every page to the file, then the formats and task names; close the file.
        Raises TraceDatError or OSError when the file cannot be completed."""
        for cpu, ring in enumerate(self.rings):
            while (got := _joined(ring, self._batch)) is not None:
                if self.error:
                    self._failed_lost += got[1][0]
                else:
                    self._queue.put((cpu, *got))
        self._queue.put(None)
        self._thread.join()
        w = self.writer
        texts = [(fmt.system, fmt.render()) for fmt in formats]
        if self.error:
            # The file system filled up (or failed): make room for the metadata by dropping
            # the newest pages, so that what was recorded before is still a trace.dat.
            room = sum(len(t) for _, t in texts) + 64 * len(cmdlines) + ROOM_MARGIN
            try:
                self._failed_lost += w.make_room(room)
            except OSError:
                pass
        for system, text in texts:
            w.add_event_format(system, text)
        for pid, comm in cmdlines.items():
            w.set_cmdline(pid, comm)
        w.close()

    def abort(self) -> None:
        self.error = self.error or "aborted"
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self.writer.abort()

    @property
    def entries(self) -> int:
        """Events that reached the file (or are on their way to it)."""
        return (sum(r.entries_written for r in self.rings) + self._foreign_entries
                - self._failed_lost - self._thread_lost)

    @property
    def lost(self) -> int:
        """Events dropped because a ring was full, or because the file failed."""
        return (sum(r.dropped_events for r in self.rings) + self._failed_lost
                + self._thread_lost + self._foreign_lost)


def _joined(ring: RingBuffer, most: int) -> tuple[bytes, tuple[int, int]] | None:
    """Up to ``most`` of the ring's oldest pages as one run of pages, with their counts
    (events, lost); None when the ring has no page to give."""
    pages = []
    events = lost = 0
    while len(pages) < most and (got := ring.read_counted()) is not None:
        pages.append(got[0])
        events += got[1]
        lost += got[2]
    return (b"".join(pages), (events, lost)) if pages else None


def _entries_of(data: bytes | None, counts: tuple[int, int] | None = None,
                page_size: int = 4096) -> int:
    """The events of one page, or of the pages of ``data`` (pages made elsewhere come in
    runs of pages): ``counts[0]`` when their maker counted them."""
    from ..buffer.ring import decode_page
    if counts is not None:
        return counts[0]
    if not data:
        return 0
    return sum(len(decode_page(data[i:i + page_size]).events)
               for i in range(0, len(data), page_size))


class LiveStream:
    """The live-stream consumer: the kernel's ``trace`` lines, printed as events happen."""

    def __init__(self, out: TextIO, flush_each: bool = True):
        self.out = out
        self.text = TextFormatter()
        self.flush_each = flush_each

    def write(self, fmt: EventFormat, values: dict, ts_ns: int, cpu: int, comm: str,
              body: str | None = None) -> None:
        """One line; ``body`` replaces the event's own text (e.g. with strings shown)."""
        if body is None:
            line = self.text.line(fmt, values, comm, cpu, ts_ns)
        else:
            line = line_prefix(comm, values.get("common_pid", 0), cpu, ts_ns) + body
        self.out.write(line + "\n")
        if self.flush_each:
            self.out.flush()

    def finish(self) -> None:
        self.out.flush()
