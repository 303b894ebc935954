"""Records encoded and decoded from their format: every integer size and signedness, arrays,
strings, dynamic fields, and records that do not fit."""

import struct

import pytest
from hypothesis import given, strategies as st

from usertrace.events.format import EventFormat, Field
from usertrace.events.records import Abi, RecordCodec, RecordError

INTS = [(1, False), (1, True), (2, False), (2, True), (4, False), (4, True), (8, False), (8, True)]
CTYPES = {(1, False): "u8", (1, True): "s8", (2, False): "u16", (2, True): "s16",
          (4, False): "u32", (4, True): "s32", (8, False): "u64", (8, True): "s64"}


def make_format(fields, fid=42):
    return EventFormat("test", "ev", fid, fields, '""')


def int_format():
    fields, off = [], 8
    for size, signed in INTS:
        off = (off + size - 1) // size * size
        fields.append(Field(CTYPES[size, signed], f"f{size}{'s' if signed else 'u'}", off, size, signed))
        off += size
    return make_format(fields)


def test_annotated_bytes_decode():
    fmt = make_format([Field("int", "__syscall_nr", 8, 4, True), Field("long", "ret", 16, 8, True)])
    record = bytes([
        0x2a, 0x00,              # common_type = 42
        0x01,                    # common_flags
        0x02,                    # common_preempt_count
        0x39, 0x30, 0x00, 0x00,  # common_pid = 12345
        0x27, 0x00, 0x00, 0x00,  # __syscall_nr = 39
        0x00, 0x00, 0x00, 0x00,  # padding
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  # ret = -2
    ])
    codec = RecordCodec(fmt)
    assert codec.decode(record) == {"common_type": 42, "common_flags": 1, "common_preempt_count": 2,
                                    "common_pid": 12345, "__syscall_nr": 39, "ret": -2}
    assert codec.encode(codec.decode(record)) == record


@given(st.lists(st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1), min_size=8, max_size=8))
def test_every_integer_size_and_signedness_round_trips(vals):
    fmt = int_format()
    codec = RecordCodec(fmt)
    values = {}
    for f, v in zip(fmt.fields, vals):
        bits = f.size * 8
        v &= (1 << bits) - 1
        if f.signed and v >> (bits - 1):
            v -= 1 << bits
        values[f.name] = v
    rec = codec.encode(values)
    assert len(rec) == fmt.fixed_size
    assert {k: v for k, v in codec.decode(rec).items() if k in values} == values


def test_big_endian_abi():
    fmt = make_format([Field("u32", "x", 8, 4, False)])
    rec = RecordCodec(fmt, Abi(">", 8)).encode({"x": 0x01020304})
    assert rec[8:12] == b"\x01\x02\x03\x04"
    assert RecordCodec(fmt, Abi("<", 8)).decode(rec)["x"] == 0x04030201


def dyn_format(kind):
    return make_format([
        Field("char[16]", "comm", 8, 16, False),
        Field(f"{kind} char[]", "path", 24, 4, False),
        Field("u16[3]", "ports", 28, 6, False),
        Field(f"{kind} u32[]", "vals", 36, 4, False),
        Field("s8", "tail", 40, 1, True),
    ])


@pytest.mark.parametrize("kind", ["__data_loc", "__rel_loc"])
@given(comm=st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=15),
       path=st.text(st.characters(min_codepoint=1, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)), max_size=40),
       ports=st.lists(st.integers(0, 65535), min_size=3, max_size=3),
       vals=st.lists(st.integers(0, 2 ** 32 - 1), max_size=10),
       tail=st.integers(-128, 127))
def test_arrays_strings_and_dynamic_fields_round_trip(kind, comm, path, ports, vals, tail):
    codec = RecordCodec(dyn_format(kind))
    values = {"comm": comm, "path": path, "ports": ports, "vals": vals, "tail": tail}
    rec = codec.encode(values)
    out = codec.decode(rec)
    assert {k: out[k] for k in values} == values
    assert codec.encode(out) == rec


def test_data_loc_and_rel_loc_words():
    for kind, expected_offset in (("__data_loc", 44), ("__rel_loc", 44 - 28)):
        codec = RecordCodec(dyn_format(kind))
        rec = codec.encode({"path": "ab"})
        word = struct.unpack_from("<I", rec, 24)[0]
        assert word >> 16 == 3            # "ab" and its NUL
        assert word & 0xFFFF == expected_offset
        assert rec[44:47] == b"ab\0"


def test_flexible_tail_array():
    fmt = make_format([Field("unsigned long", "ip", 8, 8, False), Field("char[]", "buf", 16, 0, False)])
    codec = RecordCodec(fmt)
    rec = codec.encode({"ip": 7, "buf": "hi\n"})
    assert rec[16:] == b"hi\n\0"
    assert codec.decode(rec)["buf"] == "hi\n"


BAD_RECORDS = [
    # what is wrong                        mutate(record) -> bytes                       message
    ("shorter than the fixed part",        lambda r: r[:20],                              "shorter than its format"),
    ("data_loc past the end",              lambda r: r[:24] + struct.pack("<I", 10 << 16 | 60) + r[28:], "outside the record"),
    ("data_loc length past the end",       lambda r: r[:24] + struct.pack("<I", 200 << 16 | 44) + r[28:], "outside the record"),
]


@pytest.mark.parametrize("what,mutate,message", BAD_RECORDS)
def test_bad_records_are_refused(what, mutate, message):
    codec = RecordCodec(dyn_format("__data_loc"))
    rec = codec.encode({"path": "/etc/passwd", "vals": [1, 2]})
    with pytest.raises(RecordError, match=message):
        codec.decode(mutate(rec))
