"""Property tests of the ring buffer: whatever the payload sizes, time deltas and the order of
writes and reads, a reader gets back exactly what was written, less what the counters say
was lost, and the missed-events counts on the pages say where."""

import struct

from hypothesis import given, settings, strategies as st

from usertrace.buffer.layout import DEFAULT_LAYOUT, PageLayout
from usertrace.buffer.ring import RingBuffer, decode_page

SIZES = st.one_of(st.integers(0, 130), st.sampled_from([300, 1000, 4072]))
DELTAS = st.one_of(st.integers(0, 200), st.sampled_from([2**27 - 1, 2**27, 2**27 + 1]),
                   st.integers(0, 2**45), st.integers(-5000, -1), st.just(2**59))


def payload_for(seq: int, size: int) -> bytes:
    """A payload of ``size`` bytes whose content says which write it was."""
    body = struct.pack("<I", seq) * (size // 4 + 1)
    return body[:size]


def expected(payload: bytes, layout=DEFAULT_LAYOUT) -> bytes:
    return payload + bytes(layout.stored_payload_size(len(payload)) - len(payload))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(SIZES, DELTAS), min_size=1, max_size=150),
       st.booleans(), st.sampled_from([4096, 8192]))
def test_round_trip(items, absolute, page_size):
    layout = PageLayout(page_size)
    rb = RingBuffer(nr_pages=200, overwrite=False, layout=layout, absolute_timestamps=absolute)
    ts, written = 10**12, []
    for seq, (size, delta) in enumerate(items):
        ts = min(max(ts + delta, 0), 2**64 - 1)
        if absolute:                                # the time stamp takes 8 bytes of the page
            size = min(size, layout.max_payload - 8)
        payload = payload_for(seq, size)
        assert rb.write(ts, payload)
        written.append((ts, expected(payload, layout)))
    pages = list(rb.iter_pages())
    got = [(t, bytes(p)) for page in pages for t, p in decode_page(page, layout=layout).events]
    assert got == written
    assert all(len(p) == page_size for p in pages)


OPS = st.lists(st.one_of(st.tuples(st.just("w"), SIZES, DELTAS, st.integers(1, 40)),
                         st.tuples(st.just("r"))), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPS, st.booleans(), st.integers(2, 5), st.booleans())
def test_interleaved_writes_and_reads(ops, overwrite, nr_pages, mark_dropped):
    rb = RingBuffer(nr_pages=nr_pages, overwrite=overwrite, mark_dropped=mark_dropped)
    ts, seq = 10**12, 0
    accepted, pages, refused = [], [], 0
    for op in ops:
        if op[0] == "r":
            page = rb.read_page()
            if page is not None:
                pages.append(page)
            continue
        _, size, delta, repeat = op
        for _ in range(repeat):
            ts = min(max(ts + delta, 0), 2**64 - 1)
            payload = payload_for(seq, size)
            if rb.write(ts, payload):
                accepted.append((ts, expected(payload)))
            else:
                refused += 1
            seq += 1
    pages.extend(rb.iter_pages())

    # walk the pages: each one's events follow the last one read, after the gap it reports
    pos, lost, read = 0, 0, 0
    for page in pages:
        d = decode_page(page)
        events = [(t, bytes(p)) for t, p in d.events]
        assert events, "a page read has at least one event"
        assert d.missed_events == 0 or overwrite or mark_dropped
        if not overwrite:
            gap = 0                                 # dropped events were never accepted
        elif d.missed_events == -1:                 # flagged, no room for the count
            first = events[0]
            gap = next(i for i in range(pos, len(accepted)) if accepted[i] == first) - pos
            assert gap > 0
        else:
            gap = d.missed_events
        pos += gap
        lost += gap
        assert events == accepted[pos:pos + len(events)]
        pos += len(events)
        read += len(events)
    assert pos == len(accepted)
    assert (rb.overrun, rb.read_events, rb.dropped_events, rb.entries) == (lost, read, refused, 0)
    assert rb.entries_written == len(accepted)
    assert refused == 0 or not overwrite
