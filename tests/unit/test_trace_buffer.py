"""The trace buffer's -b: rings of that size, pages to the file from a writer thread, and
exact counts of what a full ring drops while the file does not keep up."""

import threading

import pytest

from usertrace.buffer.ring import decode_page
from usertrace.buffer.tracedat import TraceDatReader, TraceDatWriter
from usertrace.events.registry import Consumer
from usertrace.session import CpuMap, EventSpec, Session, SessionError
from usertrace.session.sinks import QUEUED_PAGES, TraceBuffer


class GatedWriter(TraceDatWriter):
    """A trace.dat writer whose pages wait at a gate: a stalled disk."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.pages = 0

    def write_pages(self, cpu, page, buffer="", counts=None):
        self.gate.wait()
        self.pages += 1
        super().write_pages(cpu, page, buffer, counts)


def test_a_stalled_file_fills_the_ring_and_every_drop_is_counted(tmp_path):
    path = tmp_path / "t.dat"
    writer = GatedWriter(str(path), cpus=1)
    trace = TraceBuffer(writer, 1, nr_pages=4)
    record = bytes(64)
    n = 2000
    for i in range(n):
        trace.write(0, 1_000 + i, record)
    # The writer thread holds one page at the gate, the queue some more, the ring 4 pages:
    # far fewer than 2000 records of 68 bytes, so most were dropped, and counted.
    assert trace.lost > 0
    assert trace.entries + trace.lost == n
    writer.gate.set()
    kept = trace.entries
    trace.finish([], {})
    with TraceDatReader(str(path)) as r:
        got = sum(len(decode_page(p).events) for p in r.buffers[0].iter_pages(0))
    assert got == kept
    assert kept <= (4 + QUEUED_PAGES + 1) * (4096 // 68)


def test_a_file_that_keeps_up_loses_nothing(tmp_path):
    path = tmp_path / "t.dat"
    trace = TraceBuffer(TraceDatWriter(str(path), cpus=2), 2, nr_pages=256)
    for i in range(20_000):
        trace.write(i % 2, 1_000 + i, bytes(24))
    trace.finish([], {})
    assert trace.lost == 0 and trace.entries == 20_000
    # the counts of the file's CPUSTAT are the rings' own (no page walked to count them)
    with TraceDatReader(str(path)) as r:
        assert r.cpustats == [f"CPU: {cpu}\nentries: 0\noverrun: 0\nread events: 10000\n"
                              for cpu in (0, 1)]
        got = [sum(len(decode_page(p).events) for p in r.buffers[0].iter_pages(cpu))
               for cpu in (0, 1)]
    assert got == [10_000, 10_000]


class BrokenWriter(TraceDatWriter):
    """A writer with a fault of its own (not an OSError): its third page raises."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pages = 0

    def write_pages(self, cpu, page, buffer="", counts=None):
        self.pages += 1
        if self.pages == 3:
            raise KeyError("a fault of the writer")
        super().write_pages(cpu, page, buffer, counts)


def test_a_fault_of_the_writer_is_an_error_not_a_hang(tmp_path):
    """The writer thread survives any fault: the tracer, which waits for room in its queue at
    the end, never hangs; the pages lost are counted and the error says why."""
    trace = TraceBuffer(BrokenWriter(str(tmp_path / "t.dat"), cpus=1), 1, nr_pages=4)
    done = threading.Event()

    def run():
        for i in range(20_000):
            trace.write(0, 1_000 + i, bytes(64))
        trace.finish([], {})
        done.set()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert done.is_set(), "the trace buffer hung after a fault of its writer"
    assert "a fault of the writer" in trace.error
    assert trace.lost > 0 and trace.entries + trace.lost == 20_000


@pytest.mark.parametrize("kb", [0, -1, 1 << 21, "8"])
def test_buffer_size_out_of_range_is_refused(tmp_path, kb):
    session = Session(cpus=CpuMap(1))
    session.enable(EventSpec("syscalls:sys_enter_getppid"), Consumer.TRACE)
    with pytest.raises(SessionError, match="buffer size"):
        session.record_to(str(tmp_path / "t.dat"), buffer_kb=kb)
    assert not (tmp_path / "t.dat").exists()
