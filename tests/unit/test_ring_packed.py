"""RingBuffer.write_packed: the same pages, counters and results as ``write(ts, st.pack(...))``
(a twin buffer written the general way is the oracle), whatever the record, the time deltas,
the page boundaries, the mode and the layout; its return codes; its errors."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from usertrace.buffer.layout import PageLayout, RingBufferError
from usertrace.buffer.ring import RingBuffer, decode_page
from usertrace.events.records import Abi

ENTER0 = struct.Struct("<HBBii4x")           # a sys_enter record without arguments: 16 bytes
ENTER6 = struct.Struct("<HBBii4x6Q")         # with six: 64 bytes
EXIT = struct.Struct("<HBBii4xq")            # a sys_exit record: 24 bytes
ODD = struct.Struct("<HB")                   # 3 bytes: the event is padded to 4-byte units
BIG = struct.Struct("<30Q")                  # 240 bytes: a length word, the general path
NATIVE = struct.Struct("HBBi")               # '@': alignment of its own, the general path
BIG_ENDIAN = struct.Struct(">HBBii4x")       # not the page's byte order: the general path
EMPTY = struct.Struct("<")                   # 0 bytes: the kernel stores one unit

STRUCTS = [ENTER0, ENTER6, EXIT, ODD, BIG, NATIVE, BIG_ENDIAN, EMPTY]


def values_for(s: struct.Struct, seq: int) -> tuple:
    """Values for ``s`` that say which write they were."""
    out = []
    for i, code in enumerate(_codes(s.format)):
        limit = {"B": 0xFF, "H": 0xFFFF, "i": 2**31 - 1, "I": 2**32 - 1, "Q": 2**64 - 1,
                 "q": 2**63 - 1}[code]
        out.append((seq * 7919 + i * 104729) % limit)
    return tuple(out)


def _codes(fmt: str) -> list[str]:
    codes, count = [], ""
    for c in fmt.lstrip("<>!=@"):
        if c.isdigit():
            count += c
        elif c == "x":
            count = ""
        else:
            codes.extend(c * int(count or 1))
            count = ""
    return codes


def twins(**kwargs):
    return RingBuffer(**kwargs), RingBuffer(**kwargs)


def same_state(a: RingBuffer, b: RingBuffer) -> None:
    assert (a.entries_written, a.entries, a.overrun, a.dropped_events, a.read_events,
            a.full_pages) == (b.entries_written, b.entries, b.overrun, b.dropped_events,
                              b.read_events, b.full_pages)
    assert a.stats() == b.stats()


def test_codes_of_the_values():
    assert _codes(ENTER6.format) == ["H", "B", "B", "i", "i"] + ["Q"] * 6
    assert len(values_for(EXIT, 3)) == 6


def test_bytes_in_place_equal_the_general_write():
    a, b = twins(nr_pages=4, overwrite=False)
    ts = 1000
    for seq in range(40):
        s = STRUCTS[seq % len(STRUCTS)]
        v = values_for(s, seq)
        ts += seq * 3
        assert a.write_packed(ts, s, v) and b.write(ts, s.pack(*v))
    same_state(a, b)
    pa, pb = list(a.iter_pages()), list(b.iter_pages())
    assert pa == pb and len(pa) >= 1
    events = [bytes(p) for page in pa for _, p in decode_page(page).events]
    assert events[1] == ENTER6.pack(*values_for(ENTER6, 1))
    assert events[3] == ODD.pack(*values_for(ODD, 3)) + b"\0"       # zero-padded to 4 bytes


def test_golden_event_in_place():
    rb = RingBuffer(nr_pages=2)
    assert rb.write_packed(1000, EXIT, (7, 0, 0, 42, 110, -1)) == 2      # first on the page
    assert rb.write_packed(1010, EXIT, (8, 0, 0, 42, 110, 5)) == 1       # in place
    page = rb.read_page()
    data = page[16:16 + 56]
    assert data[:4] == struct.pack("<I", 6)                 # delta 0, type_len 6 (24 bytes)
    assert data[4:28] == struct.pack("<HBBii4xq", 7, 0, 0, 42, 110, -1)
    assert data[28:32] == struct.pack("<I", 10 << 5 | 6)                # delta 10
    assert data[32:56] == struct.pack("<HBBii4xq", 8, 0, 0, 42, 110, 5)
    assert struct.unpack_from("<Qq", page) == (1000, 56)


def test_return_codes_across_a_page_boundary_and_time_forms():
    rb = RingBuffer(nr_pages=3, overwrite=False)
    per_page = (4096 - 16) // 28                                       # 145 exit events
    codes = [rb.write_packed(10 + i, EXIT, (1, 0, 0, 1, 1, i)) for i in range(per_page + 1)]
    assert codes == [2] + [1] * (per_page - 1) + [2]
    assert rb.full_pages == 1
    assert rb.write_packed(10 + per_page + 2**27, EXIT, (1, 0, 0, 1, 1, 0)) == 2  # time extend
    assert rb.write_packed(5, EXIT, (1, 0, 0, 1, 1, 0)) == 2                       # backwards
    assert rb.write_packed(2**62, EXIT, (1, 0, 0, 1, 1, 0)) == 2                   # new page
    assert rb.write_packed(2**62 + 1, BIG, tuple(range(30))) == 2                 # large
    assert rb.write_packed(2**62 + 2, EXIT, (1, 0, 0, 1, 1, 0)) == 1


def test_stop_when_full_drops_and_counts_as_write():
    a, b = twins(nr_pages=2, overwrite=False)
    got_a, got_b = [], []
    for i in range(400):
        got_a.append(a.write_packed(100 + i, ENTER6, values_for(ENTER6, i)))
        got_b.append(b.write(100 + i, ENTER6.pack(*values_for(ENTER6, i))))
    assert [bool(x) for x in got_a] == got_b
    assert 0 in got_a and a.dropped_events == got_b.count(False) > 0
    same_state(a, b)
    assert list(a.iter_pages()) == list(b.iter_pages())
    # room again after the read: the writes resume, as the general ones do
    assert a.write_packed(10_000, EXIT, (1, 0, 0, 1, 1, 1))
    assert b.write(10_000, EXIT.pack(1, 0, 0, 1, 1, 1))
    assert list(a.iter_pages()) == list(b.iter_pages())


@pytest.mark.parametrize("kwargs", [
    dict(absolute_timestamps=True),
    dict(layout=PageLayout(4096, force_8byte_alignment=True)),
    dict(layout=PageLayout(4096, abi=Abi(endian=">"))),
    dict(layout=PageLayout(4096, abi=Abi(long_size=4))),
    dict(layout=PageLayout(8192)),
], ids=["absolute", "8byte-aligned", "big-endian", "32-bit", "8k-pages"])
def test_other_layouts_and_modes_equal_the_general_write(kwargs):
    a, b = twins(nr_pages=3, overwrite=True, **kwargs)
    ts = 5000
    for seq in range(700):
        s = STRUCTS[seq % 3]
        v = values_for(s, seq)
        ts += (seq * 37) % 500
        assert bool(a.write_packed(ts, s, v)) == b.write(ts, s.pack(*v))
        if seq % 250 == 0:
            assert a.read_page() == b.read_page()
    same_state(a, b)
    assert list(a.iter_pages()) == list(b.iter_pages())


def test_bad_values_are_refused_and_leave_the_buffer_as_it_was():
    a, b = twins(nr_pages=2)
    for rb in (a, b):
        rb.write(1, EXIT.pack(1, 0, 0, 1, 1, 1))
    with pytest.raises(RingBufferError, match="cannot pack"):
        a.write_packed(2, ODD, (1, 2**20))          # in place: B out of range
    with pytest.raises(RingBufferError, match="cannot pack"):
        a.write_packed(2, ENTER6, (1, 0, 0, 1, 1))  # in place: too few values
    with pytest.raises(RingBufferError, match="cannot pack"):
        a.write_packed(2, BIG, tuple(range(29)))    # general path
    with pytest.raises(RingBufferError, match="cannot pack"):
        a.write_packed(2, ODD, 7)                     # not a sequence of values
    with pytest.raises(RingBufferError, match="struct.Struct"):
        a.write_packed(2, "<HB", (1, 2))
    with pytest.raises(RingBufferError, match="time stamp"):
        a.write_packed(-5, EXIT, (1, 0, 0, 1, 1, 1))
    assert a.write_packed(3, ODD, (1, 2)) == 1 and b.write(3, ODD.pack(1, 2))
    same_state(a, b)
    assert a.read_page() == b.read_page()


WRITES = st.lists(st.tuples(st.sampled_from(range(len(STRUCTS))),
                            st.one_of(st.integers(0, 300),
                                      st.sampled_from([2**27 - 1, 2**27, 2**59]),
                                      st.integers(-100, -1)),
                            st.booleans()),
                  min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(WRITES, st.booleans(), st.integers(2, 4))
def test_any_sequence_equals_the_general_write(writes, overwrite, nr_pages):
    a, b = twins(nr_pages=nr_pages, overwrite=overwrite)
    ts = 10**12
    for seq, (i, delta, read) in enumerate(writes):
        s = STRUCTS[i]
        v = values_for(s, seq)
        ts = max(ts + delta, 0)
        r = a.write_packed(ts, s, v)
        assert r in (0, 1, 2)
        assert bool(r) == b.write(ts, s.pack(*v))
        if read:
            assert a.read_page() == b.read_page()
    same_state(a, b)
    assert list(a.iter_pages()) == list(b.iter_pages())


def test_packed_writer_is_write_packed_bound_to_one_struct():
    a, b = twins(nr_pages=3, overwrite=False)
    write = a.packed_writer(EXIT)
    assert a.packed_writer(EXIT) is write                 # made once per struct
    assert a.packed_writer(BIG) is not write
    codes = [write(100 + 3 * i, values_for(EXIT, i)) for i in range(300)]
    for i in range(300):
        b.write(100 + 3 * i, EXIT.pack(*values_for(EXIT, i)))
    assert set(codes) == {1, 2} and codes.count(2) == 3   # one per page started
    same_state(a, b)
    assert list(a.iter_pages()) == list(b.iter_pages())
    with pytest.raises(RingBufferError, match="struct.Struct"):
        a.packed_writer(b"<HB")


TAILS = st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 4]),        # the struct (below)
                           st.integers(0, 900),                     # the tail's length
                           st.one_of(st.integers(0, 300), st.sampled_from([2**27, 2**59]),
                                     st.integers(-100, -1)),
                           st.booleans()),
                 min_size=1, max_size=200)
TAIL_STRUCTS = [struct.Struct("<HBBii4x4QI"), struct.Struct("<HBBii4xqI"), ENTER0, ODD,
                struct.Struct(">HBBii4xI")]                 # not the page's order: general


@settings(max_examples=150, deadline=None)
@given(TAILS, st.booleans(), st.integers(2, 4))
def test_tail_writer_equals_the_general_write(writes, overwrite, nr_pages):
    """packed_tail_writer (a struct and data of any length after it, a strings record):
    the pages of ``write(ts, st.pack(*v) + tail)``, small events and those with a length
    word (over 112 bytes), across pages, time extends, time going back, a full buffer."""
    a, b = twins(nr_pages=nr_pages, overwrite=overwrite)
    ts = 10**12
    for seq, (i, n, delta, read) in enumerate(writes):
        s = TAIL_STRUCTS[i]
        v = values_for(s, seq)
        tail = bytes((seq + k) % 251 for k in range(n))
        ts = max(ts + delta, 0)
        r = a.packed_tail_writer(s)(ts, v, tail)
        assert r in (0, 1, 2)
        assert bool(r) == b.write(ts, s.pack(*v) + tail)
        if read:
            assert a.read_page() == b.read_page()
    same_state(a, b)
    assert list(a.iter_pages()) == list(b.iter_pages())


def test_tail_writer_is_made_once_and_writes_in_place():
    rb = RingBuffer(nr_pages=2)
    head = struct.Struct("<HBBii4xqI")
    write = rb.packed_tail_writer(head)
    assert rb.packed_tail_writer(head) is write
    assert write(1000, (7, 0, 0, 42, 0, 5, 5 << 16 | 28), b"hello") == 2     # first on page
    assert write(1010, (7, 0, 0, 42, 0, 200, 200 << 16 | 28), bytes(200)) == 1
    page = rb.read_page()
    data = page[16:]
    assert data[:4] == struct.pack("<I", 9)             # delta 0, type_len 9: 40 bytes
    assert data[4:37] == head.pack(7, 0, 0, 42, 0, 5, 5 << 16 | 28) + b"hello"
    assert data[37:40] == bytes(3)                      # padded to 4-byte units
    # 228 bytes: over 112, so type_len 0 and the length in array[0] (236 - 4)
    assert data[40:48] == struct.pack("<II", 10 << 5, 232)
    assert data[48:76] == head.pack(7, 0, 0, 42, 0, 200, 200 << 16 | 28)
    assert data[76:276] == bytes(200)
    assert struct.unpack_from("<Qq", page) == (1000, 276)
