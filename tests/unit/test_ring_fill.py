"""RingBuffer.write_run (a batch of ``(key, ts, payload)`` triples, its common case in C by
``_ring.fill``) and TraceBuffer.write_records: the same pages, counters and results as one
``write()`` per record (a twin buffer written that way is the oracle), whatever the records,
the time deltas, the page boundaries, the mode and the layout."""

import pytest
from hypothesis import given, settings, strategies as st

from usertrace.buffer import ring as ring_module
from usertrace.buffer.layout import PageLayout
from usertrace.buffer.ring import RingBuffer, decode_page
from usertrace.events.records import Abi

COMPILED = ring_module._FILL is not None

payloads = st.binary(min_size=0, max_size=300)
# deltas: mostly small, some needing a time extend, some going backwards
deltas = st.one_of(st.integers(0, 5_000), st.integers(1 << 27, 1 << 40),
                   st.integers(-10_000, -1))
records = st.lists(st.tuples(st.integers(0, 2), deltas, payloads), min_size=0, max_size=200)


def _items(recs, t0=1_000_000_000_000):
    items, ts = [], t0
    for key, delta, payload in recs:
        ts = max(ts + delta, 0)
        items += [key, ts, payload]
    return items


def _drain(rb):
    return list(rb.iter_pages())


def _full(rb):
    """The full pages, as TraceBuffer hands them on (not the page being written)."""
    pages = []
    while rb.full_pages:
        pages.append(rb.read_page())
    return pages


def _state(rb):
    return (rb.entries_written, rb.dropped_events, rb.read_events, rb.full_pages, rb.stats())


def _run(rb, items, key):
    """write_run over the whole list, as TraceBuffer does for one ring: the pages read
    whenever the writer moved to a new one."""
    i, pages = 0, []
    n = len(items)
    while i < n:
        if items[i] != key:
            i += 3
            continue
        j = rb.write_run(items, i, key)
        assert j > i, "write_run made no progress"
        i = j
        pages += _full(rb)
    return pages


def _oracle(rb, items, key):
    pages = []
    for i in range(0, len(items), 3):
        if items[i] == key:
            rb.write(items[i + 1], items[i + 2])
            pages += _full(rb)
    return pages


@settings(max_examples=150, deadline=None)
@given(records, st.sampled_from([(4096, 4, False), (4096, 2, False), (256, 3, False),
                                 (256, 2, True)]))
def test_write_run_writes_what_write_writes(recs, shape):
    page_size, nr_pages, overwrite = shape
    items = _items(recs)
    for key in (0, 1):
        a = RingBuffer(page_size, nr_pages, overwrite=overwrite)
        b = RingBuffer(page_size, nr_pages, overwrite=overwrite)
        got = _run(a, items, key) + _drain(a)
        want = _oracle(b, items, key) + _drain(b)
        assert got == want
        assert _state(a) == _state(b)


@settings(max_examples=50, deadline=None)
@given(records)
def test_stop_when_full_drops_the_same_records(recs):
    """A ring nobody reads: the records that do not fit are dropped and counted alike."""
    items = _items(recs)
    a, b = RingBuffer(256, 2, overwrite=False), RingBuffer(256, 2, overwrite=False)
    i = 0
    while i < len(items):
        i = a.write_run(items, i, items[i]) if items[i] == 0 else i + 3
    for k in range(0, len(items), 3):
        if items[k] == 0:
            b.write(items[k + 1], items[k + 2])
    assert _state(a) == _state(b)
    assert _drain(a) == _drain(b)


@pytest.mark.parametrize("layout", [PageLayout(4096, abi=Abi(">", 4)),
                                    PageLayout(4096, force_8byte_alignment=True)])
def test_other_layouts_take_write(layout):
    """A page in another byte order or with 8-byte alignment is written by write() alone."""
    items = _items([(0, d, bytes([d % 251]) * (d % 40)) for d in range(1, 400)])
    a, b = RingBuffer(layout=layout, nr_pages=8), RingBuffer(layout=layout, nr_pages=8)
    assert a._fill is None
    assert _run(a, items, 0) + _drain(a) == _oracle(b, items, 0) + _drain(b)


def test_the_common_case_is_compiled_where_built():
    rb = RingBuffer(4096, 4)
    if not COMPILED:
        pytest.skip("usertrace.buffer._ring is not built (or USERTRACE_PURE_PYTHON is set)")
    assert rb._fill is ring_module._FILL
    items = _items([(0, 10, b"x" * 20)] * 50)
    rb.write(1, b"first")                     # the writer is on its page
    assert rb.write_run(items, 0, 0) == len(items)
    assert rb.entries_written == 51


def test_fill_refuses_bad_arguments():
    if not COMPILED:
        pytest.skip("usertrace.buffer._ring is not built (or USERTRACE_PURE_PYTHON is set)")
    fill = ring_module._FILL
    rb = RingBuffer(4096, 4)
    shapes = rb._shapes
    with pytest.raises(TypeError):
        fill(bytes(4096), [], 0, 0, 8, 0, 16, 4080, shapes)
    with pytest.raises(ValueError):
        fill(bytearray(4096), [], 0, 0, 8, 0, 16, 8000, shapes)      # past the page
    with pytest.raises(ValueError):
        fill(bytearray(4096), [], 0, 0, 0, 0, 16, 4080, shapes)      # the page's first event
    # records of another kind than (int, int, bytes) are left to write()
    page = bytearray(4096)
    assert fill(page, [0, 5, "text"], 0, 0, 8, 0, 16, 4080, shapes) == (0, 8, 0, 0)
    assert fill(page, [0, -5, b"x"], 0, 0, 8, 0, 16, 4080, shapes) == (0, 8, 0, 0)
    assert fill(page, [1 << 80, 5, b"x"], 0, 0, 8, 0, 16, 4080, shapes) == (0, 8, 0, 0)
    assert fill(page, [0, 1 << 80, b"x"], 0, 0, 8, 0, 16, 4080, shapes) == (0, 8, 0, 0)
    assert page == bytes(4096)


class _Pages:
    """A trace.dat writer that keeps the pages it is given."""

    path = "pages"

    def __init__(self):
        self.pages = {0: [], 1: []}

    def write_pages(self, cpu, data, buffer="", counts=None):
        """A run of whole pages, with the count of their events."""
        pages = [data[i:i + 4096] for i in range(0, len(data), 4096)]
        assert counts is not None and counts[0] == sum(len(decode_page(p).events) for p in pages)
        self.pages[cpu] += pages

    def add_event_format(self, system, text):
        pass

    def set_cmdline(self, pid, comm):
        pass

    def close(self):
        pass


def test_trace_buffer_write_records_keeps_each_cpus_records_in_order():
    """TraceBuffer.write_records: each record to its cpu's ring, in order, the same pages as
    one write() per record."""
    from usertrace.session.sinks import TraceBuffer
    out = _Pages()
    tb = TraceBuffer(out, 2, nr_pages=64)
    items = _items([(k % 2 if k % 7 else 1 - k % 2, 100, bytes([k % 256]) * (k % 50))
                    for k in range(3000)])
    tb.write_records(items[:3000])
    tb.write_records(items[3000:])
    tb.finish([], {})
    assert tb.lost == 0 and tb.entries == 3000
    for cpu in (0, 1):
        want = RingBuffer(4096, 64, overwrite=False)
        assert out.pages[cpu] == _oracle(want, items, cpu) + _drain(want)
        assert len(out.pages[cpu]) > 5
