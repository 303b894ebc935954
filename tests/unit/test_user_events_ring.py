"""The write path: records through a thread's ring into the tracer, checked as the kernel checks
a write; rings that wrap, fill up (losses counted exactly), and bytes nobody published."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from usertrace.events.records import RecordCodec
from usertrace.sources.user_events import UserEventError, UserEventsServer, abi, register
from usertrace.sources.user_events.ring import RingWriter


@pytest.fixture
def srv(tmp_path):
    with UserEventsServer(str(tmp_path / "s"), ring_size=64 << 10) as s:
        yield s


def drain(srv):
    out = []
    srv.drain(lambda *rec: out.append(rec))
    return [(RecordCodec(fmt).decode(rec), fmt, ts, cpu, tid, pid, comm)
            for ts, cpu, tid, pid, comm, rec, fmt in out]


def values(srv):
    return [{k: v for k, v in d.items() if not k.startswith("common_")} for d, *_ in drain(srv)]


def reg(srv, text, **kw):
    ev = register(text, session_dir=srv.session.path, **kw)
    srv.enable(ev.name)
    return ev


# (definition, values by position, values as decoded) -- every emit variant
ROUND_TRIPS = [
    ("f0", (), {}),
    ("f1 s8 a", (-128,), {"a": -128}),
    ("f2 u16 a; s64 b", (65535, -2**63), {"a": 65535, "b": -2**63}),
    ("f3 u8 a; int b; u64 c", (255, -1, 2**64 - 1), {"a": 255, "b": -1, "c": 2**64 - 1}),
    ("f4 short a; unsigned short b; char c; unsigned char d", (-1, 1, -5, 250),
     {"a": -1, "b": 1, "c": -5, "d": 250}),
    ("s1 __data_loc char[] m", ("héllo",), {"m": "héllo"}),
    ("s2 u32 a; __data_loc char[] m", (7, b"raw"), {"a": 7, "m": "raw"}),
    ("s3 u32 a; u32 b; __rel_loc char[] m", (1, 2, ""), {"a": 1, "b": 2, "m": ""}),
    ("s4 u8 a; u16 b; u32 c; __data_loc unsigned char[] m", (1, 2, 3, b"x\0"),
     {"a": 1, "b": 2, "c": 3, "m": "x"}),
    ("g1 u32 a; u32 b; u32 c; u32 d; u32 e", (1, 2, 3, 4, 5),
     {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}),
    ("g2 char[8] who; struct pt p 4; __data_loc u16[] arr; __rel_loc char[] r; __data_loc char[] s",
     ("ab", b"\x01\x02\x03\x04", [1, 65535], "rel", "last"),
     # the kernel marks every __data_loc field signed (type[0] != 'u'): u16 65535 reads -1
     {"who": "ab", "p": 0x04030201, "arr": [1, -1], "r": "rel", "s": "last"}),
    ("g3 __data_loc char[] a; u8 b", ("first", 9), {"a": "first", "b": 9}),
    ("g4 __data_loc s32[] a", ((-1, 2, -3),), {"a": [-1, 2, -3]}),
]


@pytest.mark.parametrize("text,args,decoded", ROUND_TRIPS,
                         ids=[r[0].split()[0] for r in ROUND_TRIPS])
def test_round_trip(srv, text, args, decoded):
    ev = reg(srv, text)
    assert ev.emit(*args) is True
    names = [f.name for f in ev.definition.fields]
    assert ev.emit(**dict(zip(names, args))) is True                 # by name
    if args:
        assert ev.emit(*args[:1], **dict(zip(names[1:], args[1:]))) is True
    got = drain(srv)
    assert [{k: v for k, v in d.items() if not k.startswith("common_")} for d, *_ in got] == \
        [decoded] * (3 if args else 2)
    d, fmt, ts, cpu, tid, pid, comm = got[0]
    assert fmt.full_name == f"user_events:{ev.name}" and fmt.id == abi.ID_BASE + ev.index
    assert (d["common_type"], d["common_pid"], d["common_flags"]) == (fmt.id, tid, 0)
    assert cpu == -1 and pid > 0 and comm
    assert srv.totals().refused == 0
    ev.unregister()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(0, 2**32 - 1), b=st.integers(-2**63, 2**63 - 1),
       s=st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                 max_size=300))
def test_round_trip_property(srv, a, b, s):
    ev = reg(srv, "prop u32 a; s64 b; __data_loc char[] s")
    assert ev.emit(a, b, s)
    assert values(srv) == [{"a": a, "b": b, "s": s}]


BAD_VALUES = [
    ("bv u8 a", (256,), "BAD_VALUE"),
    ("bv u8 a", ("x",), "BAD_VALUE"),
    ("bv u8 a", (), "BAD_VALUE"),
    ("bv u8 a; u8 b", (1, 2, 3), "BAD_VALUE"),
    ("bv u32 a; __data_loc char[] s", (1, 5), "BAD_VALUE"),
    ("bv u32 a; __data_loc char[] s", (1, "x" * 5000), "BAD_VALUE"),
    ("bv u32 a; u32 b; char[4] c", (1, -1, "x"), "BAD_VALUE"),
]


@pytest.mark.parametrize("text,args,code", BAD_VALUES)
def test_bad_values_raise_and_write_nothing(srv, text, args, code):
    ev = reg(srv, text)
    with pytest.raises(UserEventError) as exc:
        ev.emit(*args)
    assert exc.value.code == code and ev.name in str(exc.value)
    with pytest.raises(UserEventError, match="no field 'zz'"):
        ev.emit(zz=1)
    assert drain(srv) == [] and srv.totals().lost == 0
    # The ring is still usable.
    good = [1] * len(ev.definition.fields)
    if "__data_loc" in text:
        good[-1] = "ok"
    if "char[4]" in text:
        good[-1] = "ok"
    assert ev.emit(*good)
    assert len(drain(srv)) == 1
    ev.unregister()


def test_disabled_events_write_nothing(srv):
    ev = register("quiet u32 a", session_dir=srv.session.path)
    assert ev.emit(1) is False and ev.emit(a=1) is False
    srv.enable("quiet")
    srv.disable("quiet")
    assert ev.emit(2) is False
    assert drain(srv) == [] and srv.stats() == []           # no ring was even made
    ev.unregister()


def test_ring_wraps_many_times_in_order(srv):
    ev = reg(srv, "wrap u32 seq; __data_loc char[] pad")
    n = 0
    for burst in range(40):
        for _ in range(300):
            assert ev.emit(n, "x" * (n % 97))
            n += 1
        got = values(srv)
        assert [g["seq"] for g in got] == list(range(n - 300, n))
        assert all(g["pad"] == "x" * (g["seq"] % 97) for g in got)
    assert srv.totals().lost == 0 and srv.totals().records == n


def test_full_ring_counts_losses_exactly(srv):
    ev = reg(srv, "full u64 seq")
    sent = [ev.emit(i) for i in range(5000)]                 # 40 bytes each, 64 KiB ring
    delivered = [v["seq"] for v in values(srv)]
    assert delivered == [i for i, ok in enumerate(sent) if ok]
    assert len(delivered) == (64 << 10) // 40
    lost = []
    srv.drain(lambda *a: None, on_lost=lambda pid, tid, comm, n: lost.append(n))
    assert srv.totals().lost == 5000 - len(delivered) and sum(lost) == 0   # reported once:
    assert ev.emit(5000)                                     # room again after the drain
    srv.drain(lambda *a: None, on_lost=lambda pid, tid, comm, n: lost.append(n))
    assert lost == []


def test_losses_are_reported_as_they_happen(srv):
    ev = reg(srv, "lossy u64 seq")
    reports = []
    for _ in range(2):
        for i in range(2000):
            ev.emit(i)
        srv.drain(lambda *a: None, on_lost=lambda pid, tid, comm, n: reports.append(n))
    per_burst = 2000 - (64 << 10) // 40
    assert reports == [per_burst, per_burst]


def test_nested_emit_is_dropped_not_interleaved(srv):
    ev = reg(srv, "nest u32 a")
    assert ev.emit(1)
    w = ev.session.tls.w
    saved, w.limit = w.limit, -1                             # as if an emit were in progress
    assert ev.emit(2) is False and w.lost == 1
    w.limit = saved
    assert ev.emit(3)
    assert [v["a"] for v in values(srv)] == [1, 3]


def test_unpublished_bytes_are_never_read(srv):
    ev = reg(srv, "half u32 a; __data_loc char[] s")
    assert ev.emit(1, "one")
    w = ev.session.tls.w
    # A writer killed after writing a record but before publishing head.
    at = abi.RING_HEADER_SIZE + (w.head & w.mask)
    w.mm[at: at + 64] = b"\xff" * 64
    assert values(srv) == [{"a": 1, "s": "one"}]
    assert values(srv) == []
    assert ev.emit(2, "two")                                  # the next emit overwrites it
    assert values(srv) == [{"a": 2, "s": "two"}]
    assert srv.totals().refused == 0 and srv.totals().corrupt == 0


# -- payloads the tracer refuses (the kernel's user_event_validate) -------------------------------
def raw_record(ev, payload: bytes, *, common_type=None, index_word=None, plen=None) -> None:
    """Publish one record with an arbitrary payload in the calling thread's ring."""
    sess = ev.session
    w = getattr(sess.tls, "w", None) or RingWriter.create(sess)
    sess.tls.w = w
    plen = len(payload) if plen is None else plen
    reclen = abi.record_size(len(payload))
    head = w.make_room(reclen)
    at = abi.RING_HEADER_SIZE + (head & w.mask)
    struct.pack_into(abi.RECORD_PACK_PREFIX, w.mm, at, plen,
                     ev.slot.index_word if index_word is None else index_word, 5, -1,
                     abi.ID_BASE + ev.index if common_type is None else common_type, w.tid)
    w.mm[at + 32: at + 32 + len(payload)] = payload
    w.head = head + reclen
    w.q[abi.RH_HEAD // 8] = w.head


def loc(size, offset):
    return struct.pack("<I", size << 16 | offset)


# payload of "v u32 a; __data_loc char[] s; __rel_loc char[] r": a @8, s @12, r @16, data from 20
REFUSED = [
    ("good", struct.pack("<I", 1) + loc(2, 20) + loc(2, 2) + b"x\0y\0", True),
    ("shorter than the fields", struct.pack("<I", 1) + loc(0, 20), False),
    ("__data_loc past the end", struct.pack("<I", 1) + loc(3, 20) + loc(2, 2) + b"x\0y\0", True),
    ("__data_loc into the common fields", struct.pack("<I", 1) + loc(2, 4) + loc(2, 2) + b"x\0y\0",
     False),
    ("__rel_loc past the end", struct.pack("<I", 1) + loc(2, 20) + loc(2, 3) + b"x\0y\0", False),
    ("string without its NUL", struct.pack("<I", 1) + loc(2, 20) + loc(2, 2) + b"xxy\0", False),
    ("empty string, no NUL at all", struct.pack("<I", 1) + loc(0, 20) + loc(2, 0) + b"y\0", False),
    ("longer than a page allows", struct.pack("<I", 1) + loc(2, 20) + loc(2, 2) + b"x\0y\0"
     + bytes(abi.MAX_PAYLOAD), False),
]


@pytest.mark.parametrize("what,payload,ok", REFUSED, ids=[r[0] for r in REFUSED])
def test_payload_checks(srv, what, payload, ok):
    ev = reg(srv, "v u32 a; __data_loc char[] s; __rel_loc char[] r")
    if what == "__data_loc past the end":
        ok = False
    raw_record(ev, payload)
    raw_record(ev, struct.pack("<I", 2) + loc(2, 20) + loc(2, 2) + b"o\0k\0")
    got = values(srv)
    assert got[-1] == {"a": 2, "s": "o", "r": "k"}
    assert len(got) == (2 if ok else 1)
    assert srv.totals().refused == (0 if ok else 1)
    if ok:
        assert got[0] == {"a": 1, "s": "x", "r": "y"}


def test_records_longer_than_their_fields_are_kept(srv):
    ev = reg(srv, "extra u32 a")
    raw_record(ev, struct.pack("<I", 7) + b"tail")          # the kernel accepts these too
    (d, fmt, *_), = drain(srv)
    assert d["a"] == 7


def test_unknown_events_and_wrong_ids_are_refused(srv):
    ev = reg(srv, "who u32 a")
    raw_record(ev, struct.pack("<I", 1), index_word=ev.index + 7)            # no such index
    raw_record(ev, struct.pack("<I", 2), index_word=ev.index | 0x7777 << 16)  # a stale serial
    raw_record(ev, struct.pack("<I", 3), common_type=abi.ID_BASE)             # another id
    raw_record(ev, struct.pack("<I", 4))
    assert values(srv) == [{"a": 4}]
    (st_,) = srv.stats()
    assert (st_.refused, st_.records, st_.corrupt) == (3, 1, 0)


def test_a_length_no_writer_wrote_quarantines_that_ring_only(srv):
    import threading
    ev = reg(srv, "frame u32 a")
    assert ev.emit(0)
    raw_record(ev, struct.pack("<I", 1), plen=1 << 20)
    raw_record(ev, struct.pack("<I", 2))
    assert values(srv) == [{"a": 0}]                         # what came before is kept
    t = srv.totals()
    assert (t.corrupt, t.reasons["bad_length"], t.discarded) == (1, 1, 2 * 40)
    assert ev.emit(3) and values(srv) == []                   # the ring is read no more
    other = threading.Thread(target=ev.emit, args=(4,))      # another thread's ring goes on
    other.start()
    other.join()
    assert values(srv) == [{"a": 4}]


def test_an_index_reused_while_tracing_gets_a_new_id(srv):
    old = reg(srv, "reuse_a u32 a")
    assert old.emit(1)
    old_fmt = srv.formats("reuse_a")[0]
    assert values(srv) == [{"a": 1}]
    srv.disable("reuse_a")
    old.unregister()                                          # deleted: index free again
    new = reg(srv, "reuse_b u64 b; u64 c")
    assert new.index == old.index
    assert new.emit(5, 6)
    (d, fmt, *_), = drain(srv)
    assert fmt.name == "reuse_b" and fmt.id != old_fmt.id and fmt.id >= abi.ID_BASE + abi.MAX_EVENTS
    assert (d["common_type"], d["b"], d["c"]) == (fmt.id, 5, 6)
    assert srv.format_by_id(old_fmt.id) is old_fmt           # still known for the recording


def test_drain_orders_records_of_all_threads(srv):
    import threading
    ev = reg(srv, "order u32 t; u32 i")

    def work(t):
        for i in range(500):
            ev.emit(t, i)
    ths = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    got = drain(srv)
    assert len(got) == 2000 and len({tid for *_, tid, pid, comm in got}) == 4
    stamps = [ts for _, _, ts, *rest in got]
    assert stamps == sorted(stamps)
    for t in range(4):
        assert [d["i"] for d, *_ in got if d["t"] == t] == list(range(500))
