"""A minimal ring-buffer page builder and walker for the trace.dat tests (and their own tests).

The page format (``events/header_page``, ``events/header_event``): a u64 timestamp, a u64
commit (bytes of event data), then events, each behind a 32-bit header ``type_len:5`` (low
bits) ``time_delta:27``: type_len 1..28 is a record of type_len*4 bytes, 0 a longer record whose
length+4 is in the next word, 29 padding, 30 a time extend (delta bits 27.. in the next word),
31 an absolute time stamp.  On a big-endian machine the bitfield puts type_len in the top five
bits of the word instead (libtraceevent's kbuffer: ``type_len4host``).  The real codec is usertrace.buffer.ring; these few lines only let
the trace.dat tests make and check pages on their own.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import pytest

from usertrace.events.records import Abi, RecordCodec

TS_BITS = 27
MAX_DELTA = (1 << TS_BITS) - 1


def build_pages(records, page_size: int = 4096, endian: str = "<", long_size: int = 8) -> list[bytes]:
    """Pages holding ``records``, a list of (timestamp_ns, record bytes), in time order."""
    u32, u64 = struct.Struct(endian + "I"), struct.Struct(endian + "Q")
    commit = u64 if long_size == 8 else u32
    header = 8 + long_size

    def word(type_len: int, delta: int) -> bytes:
        if endian == ">":
            return u32.pack(type_len << TS_BITS | delta)
        return u32.pack(type_len | delta << 5)

    def event(data: bytes, delta: int) -> bytes:
        ext = b""
        if delta > MAX_DELTA:
            ext = word(30, delta & MAX_DELTA) + u32.pack(delta >> TS_BITS)
            delta = 0
        if len(data) <= 28 * 4:
            return ext + word(len(data) // 4, delta) + data
        return ext + word(0, delta) + u32.pack(len(data) + 4) + data

    pages: list[bytes] = []
    body = bytearray()
    page_ts = last = None
    for ts, rec in records:
        data = bytes(rec) + bytes(-len(rec) % 4)
        ev = event(data, 0 if page_ts is None else ts - last)
        if page_ts is not None and header + len(body) + len(ev) > page_size:
            pages.append(_page(u64, commit, page_ts, body, page_size))
            body, page_ts = bytearray(), None
            ev = event(data, 0)
        if page_ts is None:
            page_ts = ts
            if header + len(ev) > page_size:
                raise ValueError(f"a record of {len(rec)} bytes does not fit a page of {page_size}")
        body += ev
        last = ts
    if page_ts is not None:
        pages.append(_page(u64, commit, page_ts, body, page_size))
    return pages


def _page(u64, commit, ts: int, body: bytes, page_size: int) -> bytes:
    page = u64.pack(ts) + commit.pack(len(body)) + bytes(body)
    return page + bytes(page_size - len(page))


def iter_page_records(page: bytes, endian: str = "<", long_size: int = 8):
    """(timestamp_ns, record bytes) of the records of one page."""
    u32, u64 = struct.Struct(endian + "I"), struct.Struct(endian + "Q")
    ts = u64.unpack_from(page, 0)[0]
    commit = u64.unpack_from(page, 8)[0] if long_size == 8 else u32.unpack_from(page, 8)[0]
    size = commit & ((1 << 27) - 1)  # flags (missed events) live in the high bits
    pos = 8 + long_size
    end = pos + size
    while pos < end:
        word = u32.unpack_from(page, pos)[0]
        if endian == ">":
            type_len, delta = word >> TS_BITS, word & MAX_DELTA
        else:
            type_len, delta = word & 31, word >> 5
        pos += 4
        if type_len == 29:  # padding
            length = u32.unpack_from(page, pos)[0] if delta else 0
            pos += length - 4 if length else end - pos
            continue
        if type_len == 30:
            ts += delta + (u32.unpack_from(page, pos)[0] << TS_BITS)
            pos += 4
            continue
        if type_len == 31:
            ts = delta + (u32.unpack_from(page, pos)[0] << TS_BITS)
            pos += 4
            continue
        if type_len == 0:
            length = u32.unpack_from(page, pos)[0] - 4
            pos += 4
        else:
            length = type_len * 4
        ts += delta
        yield ts, page[pos:pos + length]
        pos += length


# -- decoding a whole trace.dat and reading `trace-cmd report -t -R` --------------------------

@dataclass(frozen=True, order=True)
class Ev:
    """One event as both sides can say it: comparable between our reader and trace-cmd."""

    ts: int
    buffer: str
    cpu: int
    pid: int
    event: str
    fields: tuple  # ((name, value), ...) of the event's own fields, ints masked to their size


def _norm(field, value):
    if isinstance(value, int):
        return value & ((1 << (8 * field.size)) - 1) if field.size in (1, 2, 4, 8) else value
    if isinstance(value, (bytes, list)):
        return value
    return value


def decode_trace(reader) -> list[Ev]:
    """Every record of every buffer of an open TraceDatReader, decoded with its format."""
    abi = Abi("<" if reader.endian == "little" else ">", reader.long_size)
    fmts = reader.formats_by_id()
    codecs = {i: RecordCodec(f, abi) for i, f in fmts.items()}
    type_of = struct.Struct(abi.endian + "H")
    out = []
    for buf in reader.buffers:
        for cpu in buf.cpu_ids:
            for page in buf.iter_pages(cpu):
                for ts, rec in iter_page_records(page, abi.endian, reader.long_size):
                    fmt_id = type_of.unpack_from(rec)[0]
                    d = codecs[fmt_id].decode(rec)
                    fmt = fmts[fmt_id]
                    fields = tuple((f.name, _norm(f, d[f.name])) for f in fmt.fields)
                    out.append(Ev(ts, buf.name, cpu, d["common_pid"], fmt.name, fields))
    return sorted(out)


_REPORT_LINE = re.compile(
    r"^(?:(?P<buf>\S+):)?\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<sec>\d+)\.(?P<frac>\d+):\s+(?P<event>[\w]+):\s?(?P<fields>.*)$"
)
_RAW_FIELD = re.compile(r"(\w+)=(.*?)(?= \w+=|\s*$)")


def parse_report(text: str, formats: dict) -> tuple[list[Ev], dict[int, str]]:
    """Events and {pid: comm} from ``trace-cmd report -t -R`` output; ``formats`` by event name."""
    events, comms = [], {}
    for line in text.splitlines():
        m = _REPORT_LINE.match(line)
        if not m:
            continue
        fmt = formats[m["event"]]
        raw = dict(_RAW_FIELD.findall(m["fields"]))
        fields = []
        for f in fmt.fields:
            v = raw[f.name]
            if not f.is_string:
                v = _norm(f, int(v, 0))
            fields.append((f.name, v))
        ts = int(m["sec"]) * 1_000_000_000 + int(m["frac"].ljust(9, "0"))
        events.append(Ev(ts, m["buf"] or "", int(m["cpu"]), int(m["pid"]), m["event"], tuple(fields)))
        comms[int(m["pid"])] = m["comm"].strip()
    return sorted(events), comms


# -- tests of the helpers themselves ----------------------------------------------------------

@pytest.mark.parametrize("sizes", [[8], [12, 16, 200, 8], [112, 113, 4000 - 8]])
@pytest.mark.parametrize("gap", [0, 1000, 1 << 30, (1 << 35) + 7])
@pytest.mark.parametrize("endian, long_size", [("<", 8), (">", 8), ("<", 4)])
def test_pages_round_trip(sizes, gap, endian, long_size):
    records = [(1_000_000 + i * gap, bytes(range(i, i + n)) if n < 200 else bytes(n)) for i, n in enumerate(sizes)]
    pages = build_pages(records, endian=endian, long_size=long_size)
    assert all(len(p) == 4096 for p in pages)
    got = [r for p in pages for r in iter_page_records(p, endian, long_size)]
    assert [t for t, _ in got] == [t for t, _ in records]
    assert [r[:len(o)] for (_, r), (_, o) in zip(got, records)] == [o for _, o in records]


def test_pages_split_when_full():
    records = [(i, bytes(100)) for i in range(100)]
    pages = build_pages(records, page_size=1024)
    assert len(pages) > 1
    assert [t for p in pages for t, _ in iter_page_records(p)] == list(range(100))
