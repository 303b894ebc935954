"""Decoding pages of the kernel's ring-buffer format: annotated fixtures (one copied from the
kernel of a development machine), every event type, and a table of corrupt pages."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from usertrace.buffer.layout import PageLayout, RingBufferError
from usertrace.buffer.reader import decode_page, iter_events, merge_events
from usertrace.events.records import Abi


def u32(v):
    return struct.pack("<I", v)


def hdr(type_len, delta):
    """An event header word: type_len in the low 5 bits, time_delta above."""
    return u32(delta << 5 | type_len)


def page(timestamp, data, commit=None, size=4096, tail=b""):
    """A page: u64 timestamp, 8-byte commit, data, the rest zero."""
    commit = len(data) if commit is None else commit
    body = struct.pack("<Qq", timestamp, commit) + data + tail
    return body + bytes(size - len(body))


# A page read from per_cpu/cpu0/trace_pipe_raw of a private instance (kernel 6.18, x86_64)
# with syscalls:sys_{enter,exit}_getppid enabled while python3 (pid 7541) called getppid();
# its `trace` text showed 587.562070 sys_getppid() and 587.562073 sys_getppid -> 0x1d4c.
KERNEL_TS = 587562070317
KERNEL_DATA = bytes.fromhex(
    "04000000"                   # type_len=4 delta=0: 16 bytes
    "31010000 751d0000"          #   common_type=305 (sys_enter_getppid), flags, pc, pid=7541
    "6e000000 00000000"          #   __syscall_nr=110, padding
    "06250100"                   # type_len=6 delta=2344 (0x12506 >> 5): 24 bytes
    "30010000 751d0000"          #   common_type=304 (sys_exit_getppid), pid=7541
    "6e000000 00000000"          #   __syscall_nr=110, padding
    "4c1d0000 00000000"          #   ret=0x1d4c
    "047c0000"                   # type_len=4 delta=992
    "31010000 751d0000 6e000000 00000000"
    "a6340000"                   # type_len=6 delta=421
    "30010000 751d0000 6e000000 00000000 4c1d0000 00000000"
    .replace(" ", ""))


def test_kernel_page_golden():
    d = decode_page(page(KERNEL_TS, KERNEL_DATA), index=0)
    assert (d.timestamp, d.commit, d.missed_events) == (KERNEL_TS, 96, 0)
    got = [(ts, struct.unpack_from("<HBBi", p)[0], len(p)) for ts, p in d.events]
    t0 = KERNEL_TS
    assert got == [(t0, 305, 16), (t0 + 2344, 304, 24), (t0 + 3336, 305, 16),
                   (t0 + 3757, 304, 24)]
    # the trace text rounds to microseconds: 587.562070, 587.562073
    assert [(ts + 500) // 1000 for ts, _ in d.events[:2]] == [587562070, 587562073]
    assert struct.unpack_from("<q", d.events[1][1], 16)[0] == 0x1D4C


def test_every_event_type():
    data = b"".join([
        hdr(2, 0), b"ABCDEFGH",                  # type_len=2 delta=0       ts=1000
        hdr(1, 5), b"ijkl",                      # type_len=1 delta=5       ts=1005
        hdr(30, 0x123), u32(2),                  # time extend 2<<27 | 0x123
        hdr(1, 0), b"mnop",                      # type_len=1 delta=0       ts=1005+0x10000123
        hdr(0, 7), u32(4 + 116), b"q" * 116,     # type_len=0 delta=7 array[0]=120
        hdr(29, 3), u32(12), b"discard!",        # discarded event (array[0] counts itself)
        hdr(1, 1), b"rstu",                      # type_len=1 delta=1
        hdr(31, 77), u32(1),                     # absolute time stamp 1<<27 | 77
        hdr(1, 0), b"vwxy",                      # type_len=1 delta=0       ts=(1<<27)+77
        hdr(29, 1), u32(16), bytes(12),          # padding to the end, delta 1: no time
    ])
    d = decode_page(page(1000, data))
    ext = 1005 + (2 << 27 | 0x123)
    assert [(ts, bytes(p)) for ts, p in d.events] == [
        (1000, b"ABCDEFGH"), (1005, b"ijkl"), (ext, b"mnop"), (ext + 7, b"q" * 116),
        (ext + 11, b"rstu"), ((1 << 27) + 77, b"vwxy")]


def test_null_padding_at_the_end_stops_the_page():
    # fewer than 8 bytes left: the kernel writes a padding header with delta 0 and no length
    data = hdr(1, 0) + b"abcd" + hdr(29, 0)
    assert [bytes(p) for _, p in decode_page(page(1, data)).events] == [b"abcd"]


def test_absolute_time_stamp_takes_back_the_top_bits():
    ts0 = (0x1F << 59) + 1000                   # the 5 top bits set (some clocks)
    low = (ts0 + 50) & ((1 << 59) - 1)
    data = hdr(1, 0) + b"abcd" + hdr(31, low & (2**27 - 1)) + u32(low >> 27) + hdr(1, 0) + b"efgh"
    assert [ts for ts, _ in decode_page(page(ts0, data)).events] == [ts0, ts0 + 50]


MISSED_64 = -(1 << 31)                          # 1<<31 added as a C int: sign-extended


@pytest.mark.parametrize("commit_word, tail, missed", [
    (8, b"", 0),                                # no flag
    (8 + MISSED_64, b"", -1),                   # flagged, count not stored
    (8 + (1 << 30) + MISSED_64, struct.pack("<Q", 1949), 1949),   # flagged and stored
    (8 + (1 << 31), b"", -1),                   # the flag without sign extension
])
def test_missed_events(commit_word, tail, missed):
    data = hdr(1, 0) + b"abcd"
    d = decode_page(page(5, data, commit=commit_word, tail=tail))
    assert (d.commit, d.missed_events, len(d.events)) == (8, missed, 1)


GOOD = hdr(1, 0) + b"abcd"
CORRUPT = [
    # (fault, page, message fragment, offset in the page)
    ("commit past the page end", page(1, GOOD, commit=4081), "runs past the page end", 8),
    ("commit with stray high bits", page(1, GOOD, commit=8 | 1 << 40), "bits set beyond", 8),
    ("commit with bit 29 set", page(1, GOOD, commit=8 | 1 << 29), "runs past the page end", 8),
    ("stored flag alone", page(1, GOOD, commit=8 | 1 << 30), "without the missed", 8),
    ("stored count past the end", page(1, bytes(4076) + GOOD[:4], commit=4080 + (1 << 30)
                                       + MISSED_64), "past the page end", 4096),
    ("truncated header", page(1, GOOD)[:12], "its header needs 16", 12),
    ("truncated data", page(1, GOOD, commit=200)[:100], "commit 200 needs 216", 100),
    ("length past the commit", page(1, hdr(4, 0) + bytes(16), commit=12),
     "runs past the commit at 28", 16),
    ("commit in the middle of a header", page(1, GOOD, commit=10), "not a multiple of 4", 8),
    ("type_len 0, array[0]==0", page(1, hdr(0, 0) + u32(0) + GOOD), "array[0]=0", 16),
    ("zeroed data", page(1, bytes(64)), "array[0]=0", 16),
    ("type_len 0, array[0] too large", page(1, hdr(0, 0) + u32(400) + bytes(8)),
     "runs past the commit", 16),
    ("type_len 0, array[0] unaligned", page(1, hdr(0, 0) + u32(9) + bytes(8)),
     "array[0]=9", 16),
    ("type_len 0 cut by the commit", page(1, GOOD + hdr(0, 0)), "needs 8 bytes", 24),
    ("time extend at the very end", page(1, GOOD + hdr(30, 5) + u32(1)), "no event after", 24),
    ("time extend cut in half", page(1, GOOD + hdr(30, 5)), "needs 8 bytes", 24),
    ("time stamp at the very end", page(1, GOOD + hdr(31, 5) + u32(1)), "no event after", 24),
    ("null padding before data", page(1, hdr(29, 0) + bytes(4) + GOOD), "null padding", 16),
    ("padding past the commit", page(1, GOOD + hdr(29, 1) + u32(100)), "runs past", 24),
    ("padding of length 0", page(1, GOOD + hdr(29, 1) + u32(0)), "array[0]=0", 24),
]


@pytest.mark.parametrize("fault, data, fragment, offset", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_page(fault, data, fragment, offset):
    with pytest.raises(RingBufferError) as info:
        decode_page(data, index=3)
    assert fragment in str(info.value)
    assert (info.value.page, info.value.offset) == (3, offset)
    assert str(info.value).startswith(f"page 3, offset {offset} ")


def test_corrupt_page_index_counts_pages():
    pages = [page(1, GOOD), page(2, GOOD), page(3, GOOD, commit=5000)]
    with pytest.raises(RingBufferError, match=r"^page 2, offset 8 "):
        list(iter_events(pages))


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, 400), st.integers(0, 2**64 - 1))
def test_random_bytes_never_hang_nor_escape(data, commit, ts):
    # any input: events or a RingBufferError, never another exception, never a hang
    raw = struct.pack("<QQ", ts, commit) + data
    try:
        d = decode_page(raw)
    except RingBufferError:
        return
    end = 16 + d.commit
    for _, p in d.events:
        assert len(p) % 4 == 0 and len(p) <= end


def test_merge_orders_by_time_then_cpu():
    cpu0 = [page(100, hdr(1, 0) + b"a000" + hdr(1, 50) + b"a050")]
    cpu1 = [page(120, hdr(1, 0) + b"b120" + hdr(1, 30) + b"b150"),
            page(400, hdr(1, 0) + b"b400")]
    got = [(ts, cpu, bytes(p)) for ts, cpu, p in merge_events({1: cpu1, 0: cpu0})]
    assert got == [(100, 0, b"a000"), (120, 1, b"b120"), (150, 0, b"a050"),
                   (150, 1, b"b150"), (400, 1, b"b400")]


def test_big_endian_32bit_layout():
    layout = PageLayout(page_size=4096, abi=Abi(">", 4))
    assert (layout.data_offset, layout.data_size) == (12, 4084)
    word = struct.pack(">I", 7 << 5 | 1)
    raw = struct.pack(">QI", 99, 16) + struct.pack(">I", 0 << 5 | 1) + b"abcd" + word + b"efgh"
    d = decode_page(raw + bytes(4096 - len(raw)), layout=layout)
    assert [(ts, bytes(p)) for ts, p in d.events] == [(99, b"abcd"), (106, b"efgh")]


def test_header_page_text():
    text = ("\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
            "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
            "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
            "\tfield: char data;\toffset:16;\tsize:8176;\tsigned:0;\n")
    layout = PageLayout.from_header_page(text)
    assert (layout.page_size, layout.data_offset, layout.commit_size) == (8192, 16, 8)
    with pytest.raises(RingBufferError, match="no field 'data'"):
        PageLayout.from_header_page(text.replace("char data", "char other"))
    with pytest.raises(RingBufferError, match="line 2: cannot parse"):
        PageLayout.from_header_page(text.replace("offset:8;", "offset:x;", 1))
