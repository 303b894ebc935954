"""The ring-buffer writer: the bytes it writes (annotated), round trips of every length class
and time form, overwrite and stop-when-full with exact counts, partial reads, the counters."""

import struct

import pytest

from usertrace.buffer.layout import DEFAULT_LAYOUT, PageLayout, RingBufferError
from usertrace.buffer.ring import RingBuffer, RingStats, decode_page, iter_events
from usertrace.events.records import Abi


def u32(v):
    return struct.pack("<I", v)


def hdr(type_len, delta):
    return u32(delta << 5 | type_len)


def events_of(pages, layout=DEFAULT_LAYOUT):
    return [(ts, bytes(p)) for ts, p in iter_events(pages, layout)]


def padded(payload, layout=DEFAULT_LAYOUT):
    """What a reader gets back for ``payload``: zero-padded to the kernel's 4-byte units."""
    return bytes(payload) + bytes(layout.stored_payload_size(len(payload)) - len(payload))


def test_page_bytes_golden():
    rb = RingBuffer(nr_pages=2)
    assert rb.write(1000, b"ABCD")
    assert rb.write(1005, b"EFGHIJ")
    assert rb.write(1005 + 2**27, b"")
    assert rb.write(1005 + 2**27 + 1, b"x" * 113)
    raw = rb.read_page()
    assert len(raw) == 4096
    expected = b"".join([
        struct.pack("<Qq", 1000, 164),          # page timestamp, commit
        hdr(1, 0), b"ABCD",                     # first event: delta 0, the page has the time
        hdr(3, 5), b"EFGHIJ\0\0\0\0\0\0",       # 6 bytes: 4+6=10 -> 12 -> 16 (never 12)
        hdr(30, 0), u32(1),                     # time extend: 2**27 = 1 << 27 | 0
        hdr(1, 0), bytes(4),                    # empty payload: stored as 4 bytes
        hdr(0, 1), u32(120), b"x" * 113, bytes(3),   # 113 > 112: length in array[0]
    ])
    assert raw[:len(expected)] == expected
    assert raw[len(expected):] == bytes(4096 - len(expected))


@pytest.mark.parametrize("n, type_len, array0, total", [
    (0, 1, None, 8), (1, 1, None, 8), (4, 1, None, 8), (5, 3, None, 16), (8, 3, None, 16),
    (9, 3, None, 16), (12, 3, None, 16), (13, 4, None, 20), (108, 27, None, 112),
    (112, 28, None, 116), (113, 0, 120, 124), (116, 0, 120, 124), (117, 0, 124, 128),
    (4072, 0, 4076, 4080),
])
def test_length_classes(n, type_len, array0, total):
    rb = RingBuffer(nr_pages=2)
    rb.write(7, bytes(range(256)) * 16 and (bytes(range(256)) * 16)[:n])
    raw = rb.read_page()
    commit = struct.unpack_from("<q", raw, 8)[0]
    word, a0 = struct.unpack_from("<II", raw, 16)
    assert (commit, word & 31) == (total, type_len)
    if array0 is not None:
        assert a0 == array0
    assert DEFAULT_LAYOUT.event_length(n) == total
    [(ts, payload)] = events_of([raw])
    assert (ts, payload) == (7, padded((bytes(range(256)) * 16)[:n]))


def test_round_trip_every_length_and_time_form():
    rb = RingBuffer(nr_pages=64, overwrite=False)
    written, ts = [], 10**12
    deltas = [0, 1, 2**27 - 1, 2**27, 2**40, 5]
    for n in range(0, 300):
        ts += deltas[n % len(deltas)]
        payload = bytes((n + i) & 255 for i in range(n))
        assert rb.write(ts, payload)
        written.append((ts, padded(payload)))
    for n in (1000, 4000, 4072):
        ts += 3
        assert rb.write(ts, b"z" * n)
        written.append((ts, padded(b"z" * n)))
    assert events_of(rb.iter_pages()) == written
    assert rb.stats().entries == 0 and rb.read_events == len(written)


def test_page_filled_exactly():
    rb = RingBuffer(nr_pages=4, overwrite=False)
    for i in range(255 + 1):                    # 255 events of 16 bytes fill 4080 exactly
        assert rb.write(100 + i, struct.pack("<Q4x", i))
    first, second = rb.read_page(), rb.read_page()
    assert struct.unpack_from("<q", first, 8)[0] == 4080
    d1, d2 = decode_page(first), decode_page(second)
    assert (len(d1.events), len(d2.events), d2.timestamp) == (255, 1, 355)
    assert rb.read_page() is None


def test_end_of_page_padding_is_outside_the_commit():
    rb = RingBuffer(nr_pages=4, overwrite=False)
    for i in range(60):                         # 68-byte events: 60 fit in 4080 with 0 left
        rb.write(i, b"p" * 64)
    rb.write(100, b"q" * 64)                    # 61 * 68 = 4148: starts the next page
    raw = rb.read_page()
    assert struct.unpack_from("<q", raw, 8)[0] == 60 * 68
    rb2 = RingBuffer(nr_pages=4, overwrite=False)
    for i in range(40):                         # 40 * 100 = 4000: 80 bytes left, padded
        rb2.write(i, b"p" * 96)
    rb2.write(100, b"q" * 96)
    raw = rb2.read_page()
    assert struct.unpack_from("<q", raw, 8)[0] == 4000
    assert raw[16 + 4000:] == bytes(80)         # the kernel zeroes what follows the commit


def test_time_going_backwards_gets_an_absolute_time_stamp():
    rb = RingBuffer(nr_pages=2)
    rb.write(5000, b"abcd")
    rb.write(4000, b"efgh")
    raw = rb.read_page()
    assert raw[24:24 + 12] == hdr(31, 4000) + u32(0) + hdr(1, 0)
    assert events_of([raw]) == [(5000, b"abcd"), (4000, b"efgh")]


def test_absolute_timestamp_mode():
    rb = RingBuffer(nr_pages=2, absolute_timestamps=True)
    rb.write(2**27 + 9, b"abcd")
    rb.write(2**27 + 20, b"efgh")
    raw = rb.read_page()
    assert raw[16:48] == (hdr(31, 9) + u32(1) + hdr(1, 0) + b"abcd"
                          + hdr(31, 20) + u32(1) + hdr(1, 0) + b"efgh")
    assert events_of([raw]) == [(2**27 + 9, b"abcd"), (2**27 + 20, b"efgh")]


@pytest.mark.parametrize("second", [2**59 + 10, 2**63, 2**64 - 1, (0x1F << 59) - 5])
def test_jumps_beyond_59_bits_start_a_new_page(second):
    rb = RingBuffer(nr_pages=4)
    rb.write(10, b"abcd")
    rb.write(second, b"efgh")
    rb.write(second - 1, b"ijkl")               # and back: exact again
    pages = list(rb.iter_pages())
    assert events_of(pages) == [(10, b"abcd"), (second, b"efgh"), (second - 1, b"ijkl")]
    assert decode_page(pages[1]).timestamp == second


def test_top_bits_with_absolute_stamps():
    base = (0x1F << 59) + 7
    rb = RingBuffer(nr_pages=4, absolute_timestamps=True)
    for k in range(5):
        rb.write(base + k * 1000, b"abcd")
    assert [ts for ts, _ in events_of(rb.iter_pages())] == [base + k * 1000 for k in range(5)]


def fill(rb, count, size=48, t0=1000):
    """Write ``count`` events whose payload starts with their number; results of write()."""
    return [rb.write(t0 + 10 * i, struct.pack("<I", i) + bytes(size - 4)) for i in range(count)]


def numbers(pages):
    return [struct.unpack_from("<I", p)[0] for _, p in iter_events(pages)]


def test_overwrite_exact_counts():
    # 48-byte payloads take 52 bytes: 78 to a page (4056 bytes, 24 left)
    rb = RingBuffer(nr_pages=3, overwrite=True)
    assert all(fill(rb, 1000))
    # the writer is on logical page 12 (events 936..999); pages 10, 11, 12 survive
    assert (rb.overrun, rb.entries, rb.dropped_events) == (780, 220, 0)
    pages = list(rb.iter_pages())
    first = decode_page(pages[0])
    assert first.missed_events == 780 and first.commit == 4056
    assert struct.unpack_from("<q", pages[0], 8)[0] == 4056 + (1 << 30) - (1 << 31)
    assert [decode_page(p).missed_events for p in pages[1:]] == [0, 0]
    assert numbers(pages) == list(range(780, 1000))
    assert rb.stats() == RingStats(0, 780, 0, 0, 1000 + 10 * 936, 0, 220)


def test_overwrite_without_room_for_the_count():
    rb = RingBuffer(nr_pages=2, overwrite=True)
    assert all(fill(rb, 255 * 3, size=12))      # 16-byte events: 255 fill a page exactly
    pages = list(rb.iter_pages())
    assert decode_page(pages[0]).missed_events == -1
    assert rb.overrun == 255 and numbers(pages) == list(range(255, 255 * 3))


def test_stop_when_full_exact_counts():
    rb = RingBuffer(nr_pages=3, overwrite=False)
    results = fill(rb, 1000)
    assert results == [True] * 234 + [False] * 766
    assert (rb.overrun, rb.entries, rb.dropped_events) == (0, 234, 766)
    pages = list(rb.iter_pages())
    assert [decode_page(p).missed_events for p in pages] == [0, 0, 0]   # as the kernel does
    assert numbers(pages) == list(range(234))


def test_stop_when_full_resumes_after_a_read():
    rb = RingBuffer(nr_pages=3, overwrite=False, mark_dropped=True)
    fill(rb, 300)                               # 234 written, 66 dropped
    first = rb.read_page()
    assert numbers([first]) == list(range(78))
    assert fill(rb, 10, t0=10**6) == [True] * 10
    pages = list(rb.iter_pages())
    assert [decode_page(p).missed_events for p in pages] == [0, 0, 66]
    assert numbers(pages) == list(range(78, 234)) + list(range(10))
    assert rb.dropped_events == 66 and rb.entries == 0


def test_partial_reads_of_the_writers_page():
    rb = RingBuffer(nr_pages=4)
    rb.write(1000, b"a" * 8)
    rb.write(1010, b"b" * 8)
    part1 = rb.read_page()
    assert rb.read_page() is None
    rb.write(1030, b"c" * 8)
    rb.write(1031 + 2**30, b"d" * 8)            # a time extend on the same page
    part2 = rb.read_page()
    d1, d2 = decode_page(part1), decode_page(part2)
    assert (d1.timestamp, d1.commit) == (1000, 32)   # 8-byte payloads take 16 bytes
    assert (d2.timestamp, d2.commit) == (1010, 40)   # the time of the last event read
    assert events_of([part1, part2]) == [(1000, padded(b"a" * 8)), (1010, padded(b"b" * 8)),
                                         (1030, padded(b"c" * 8)),
                                         (1031 + 2**30, padded(b"d" * 8))]
    assert rb.read_events == 4 and rb.entries == 0


def test_partial_read_then_the_writer_moves_on():
    rb = RingBuffer(nr_pages=2, overwrite=True)
    fill(rb, 10)
    assert numbers([rb.read_page()]) == list(range(10))
    fill(rb, 200, t0=5000)                      # fills the page, moves on, wraps
    got = numbers(rb.iter_pages())
    assert got == list(range(68, 200))          # 78 - 10 on the first page were lost...
    assert rb.overrun == 68                     # ...and counted


def test_stats_render():
    rb = RingBuffer(nr_pages=3, overwrite=False)
    fill(rb, 300)
    text = rb.stats().render(now_ts=2_500_000_000)
    # bytes: three pages of 78 events (4056 bytes) and 24 bytes of padding each
    assert text == ("entries: 234\noverrun: 0\ncommit overrun: 0\nbytes: 12240\n"
                    "oldest event ts:     0.000001\nnow ts:     2.500000\n"
                    "dropped events: 66\nread events: 0\n")


def test_sub_buffer_size():
    rb = RingBuffer(page_size=8192, nr_pages=2, overwrite=False)
    assert fill(rb, 400) == [True] * 314 + [False] * 86     # 8176 // 52 = 157 a page
    pages = list(rb.iter_pages())
    assert [len(p) for p in pages] == [8192, 8192]
    # the second page is the writer's, closed by the refused write: read as a copy, its
    # padding (12 bytes) comes along, as the kernel's copy of its writer's page does
    assert [decode_page(p, layout=rb.layout).commit for p in pages] == [8164, 8176]
    assert [struct.unpack_from("<I", p)[0] for _, p in iter_events(pages, rb.layout)] == \
        list(range(314))


def test_big_endian_32bit_writer():
    layout = PageLayout(page_size=4096, abi=Abi(">", 4))
    rb = RingBuffer(layout=layout, nr_pages=2)
    rb.write(99, b"abcd")
    rb.write(99 + 2**28, b"efgh")
    raw = rb.read_page()
    assert raw[:12] == struct.pack(">QI", 99, 24)
    assert raw[12:36] == (struct.pack(">I", 1) + b"abcd" + struct.pack(">II", 30, 2)
                          + struct.pack(">I", 1) + b"efgh")
    assert events_of([raw], layout) == [(99, b"abcd"), (99 + 2**28, b"efgh")]


def test_force_8byte_alignment():
    layout = PageLayout(force_8byte_alignment=True)
    rb = RingBuffer(layout=layout, nr_pages=2)
    rb.write(1, b"abc")
    rb.write(2, b"defghijkl")
    raw = rb.read_page()
    assert raw[16:56] == (hdr(0, 0) + u32(12) + b"abc" + bytes(5)
                          + hdr(0, 1) + u32(20) + b"defghijkl" + bytes(7))
    assert events_of([raw], layout) == [(1, b"abc" + bytes(5)), (2, b"defghijkl" + bytes(7))]


def test_payload_of_any_buffer_type():
    import array
    rb = RingBuffer(nr_pages=2)
    rb.write(1, b"abcd")
    rb.write(2, bytearray(b"efgh"))
    rb.write(3, memoryview(b"xxijklxx")[2:6])
    rb.write(4, array.array("I", [1, 2]))       # 8 bytes, not 2
    rb.write(5, memoryview(b"m-n-o-p-")[::2])   # not contiguous
    assert events_of(rb.iter_pages()) == [(1, b"abcd"), (2, b"efgh"), (3, b"ijkl"),
                                          (4, struct.pack("=II", 1, 2) + bytes(4)),
                                          (5, b"mnop")]


@pytest.mark.parametrize("args, message", [
    ((-1, b"x"), "not a u64"),
    ((2**64, b"x"), "not a u64"),
    ((1.5, b"x"), "int time stamp"),
    ((1, "text"), "bytes-like"),
    ((1, None), "bytes-like"),
    ((1, bytes(4073)), "does not fit a page"),
])
def test_bad_writes(args, message):
    rb = RingBuffer(nr_pages=2)
    rb.write(0, b"ok")
    with pytest.raises(RingBufferError, match=message):
        rb.write(*args)
    assert events_of(rb.iter_pages()) == [(0, b"ok\0\0")]


@pytest.mark.parametrize("kwargs, message", [
    ({"nr_pages": 1}, "at least 2 pages"),
    ({"page_size": 20}, "unsupported page size"),
])
def test_bad_buffers(kwargs, message):
    with pytest.raises(RingBufferError, match=message):
        RingBuffer(**kwargs)
