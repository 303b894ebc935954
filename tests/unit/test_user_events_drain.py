"""The tracer's reading of rings (drain.py): ring headers it refuses, heads it refuses, names,
and the report of losses by reason."""

from __future__ import annotations

import os
import struct
from collections import Counter

import pytest

from usertrace.sources.user_events import abi
from usertrace.sources.user_events.drain import (REASONS, RingFault, RingReader, parse_ring_name,
                                                 render_reasons)

HEADER = struct.Struct("=8sIIQII16sQ")
SIZE = abi.MIN_RING_SIZE


def ring_file(d, name, *, magic=abi.RING_MAGIC, version=abi.RING_VERSION,
              hsize=abi.RING_HEADER_SIZE, size=SIZE, pid=10, tid=11, length=None,
              head=0, tail=0):
    """A ring file as a writer in any language would make it (docs/user_events.md)."""
    data = bytearray(abi.RING_HEADER_SIZE)
    HEADER.pack_into(data, 0, magic, version, hsize, size, pid, tid, b"w", 1)
    struct.pack_into("=Q", data, abi.RH_HEAD, head)
    struct.pack_into("=Q", data, abi.RH_TAIL, tail)
    path = os.path.join(d, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes(data))
    os.ftruncate(fd, abi.RING_HEADER_SIZE + size if length is None else length)
    os.close(fd)
    return path


@pytest.fixture
def d(tmp_path):
    os.chmod(tmp_path, 0o700)
    return str(tmp_path)


def open_ring(d, name):
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return RingReader(dfd, d, name)
    finally:
        os.close(dfd)


BAD_HEADERS = [
    # what is wrong                         the header's fields
    ("magic",                              dict(magic=b"UTUERNG2")),
    ("version",                            dict(version=2)),
    ("header size",                        dict(hsize=8192)),
    ("data size not a power of two",       dict(size=SIZE + 8)),
    ("data size below the least",          dict(size=SIZE // 2)),
    ("data size above the most",           dict(size=abi.MAX_RING_SIZE * 2, length=8192)),
    ("file shorter than the header says",  dict(length=abi.RING_HEADER_SIZE + SIZE // 2)),
    ("file shorter than a header",         dict(length=40)),
    ("pid other than the name's",          dict(pid=99)),
    ("tid other than the name's",          dict(tid=99)),
]


@pytest.mark.parametrize("what,fields", BAD_HEADERS, ids=[b[0] for b in BAD_HEADERS])
def test_ring_headers_no_writer_makes_are_refused(d, what, fields):
    ring_file(d, "ring-10-11-0", **fields)
    with pytest.raises(RingFault) as exc:
        open_ring(d, "ring-10-11-0")
    assert exc.value.reason == "not_a_ring"


def test_a_good_header_opens(d):
    ring_file(d, "ring-10-11-0", head=64, tail=64)
    r = open_ring(d, "ring-10-11-0")
    assert (r.pid, r.tid, r.size, r.tail, r.comm) == (10, 11, SIZE, 64, "w")
    r.close()


HEADS = [
    # head            tail   reason
    (64 + 3,          64,    "head_misaligned"),
    (56,              64,    "head_backwards"),
    (64 + SIZE + 8,   64,    "head_overrun"),
    (64 + SIZE,       64,    None),                 # a full ring is honest
]


@pytest.mark.parametrize("head,tail,reason", HEADS)
def test_heads_no_writer_publishes_are_refused(d, head, tail, reason):
    ring_file(d, "ring-10-11-0", head=head, tail=tail)
    r = open_ring(d, "ring-10-11-0")
    if reason is None:
        assert r.head(r.fd)[1] == head
    else:
        with pytest.raises(RingFault) as exc:
            r.head(r.fd)
        assert exc.value.reason == reason
    r.close()


def test_a_ring_truncated_after_it_was_opened_is_a_fault_not_a_signal(d):
    path = ring_file(d, "ring-10-11-0", head=64, tail=0)
    r = open_ring(d, "ring-10-11-0")
    os.truncate(path, abi.RING_HEADER_SIZE + 32)        # the 64 published bytes cut short
    with pytest.raises(RingFault) as exc:
        r.read(r.fd, r.head(r.fd)[1])
    assert exc.value.reason == "truncated"
    os.truncate(path, 0)
    with pytest.raises(RingFault) as exc:
        r.head(r.fd)
    assert exc.value.reason == "truncated"
    r.close()


NAMES = [
    ("ring-1-2-0", (1, 2)),
    ("ring-1-2-c0", (1, 2)),             # the C writer's names
    ("ring-1-2", None),
    ("ring-x-2-0", None),
    ("ring-1--0", None),
    ("ring-1-2-", None),
    (".ring-1-2-0", None),
    ("proc-1", None),
]


@pytest.mark.parametrize("name,ids", NAMES)
def test_ring_names(name, ids):
    assert parse_ring_name(name) == ids


def test_losses_are_reported_by_reason_in_the_catalog_order():
    counts = Counter({"not_a_ring": 3, "short": 2, "ring_full": 1200, "bad_length": 1,
                      "unknown_event": 1})
    assert render_reasons(counts, discarded=4096) == [
        "2 records: payload shorter than the event's fields",
        "1 record: no registered event has the record's index and serial",
        "1200 events: dropped by the writer: its ring was full",
        "1 ring: a record runs past the published bytes or the end of the ring",
        "3 files: a ring-* file that is not a ring of this version, or not safe",
        "4096 bytes the rings quarantined still held, unread",
    ]
    assert render_reasons(Counter()) == []
    assert all(unit in ("records", "events", "rings", "files") for unit, _ in REASONS.values())
