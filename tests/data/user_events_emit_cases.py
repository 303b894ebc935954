"""Emit calls for both emit paths (compiled and pure Python), and what each one must do.

Used by tests/unit/test_user_events_emit.py: every call goes through each path, in a process
of its own, and the two must answer alike and write the same ring bytes.  A row is
(event, positional values, values by name, the fault): the fault is None for a call that
writes a record, else a piece of the BAD_VALUE message that names it.

    python3 tests/data/user_events_emit_cases.py   # emits every call in $USERTRACE_SESSION
                                                    # and prints what happened as JSON
"""

from __future__ import annotations

EVENTS = {
    "ints": "d_ints u8 a; s8 b; u16 c; s16 d; u32 e; s32 f; u64 g; s64 h; char i; "
            "unsigned char j; short k; unsigned short l; int m; unsigned int n",
    "str": "d_str u32 a; u32 b; __data_loc char[] msg",
    "rel": "d_rel u16 a; __rel_loc char[] r",
    "arrays": "d_arr __data_loc u8[] a; __data_loc s16[] b; __data_loc u32[] c; "
              "__data_loc s64[] d; __rel_loc u16[] e",
    "chars": "d_chars char[4] who; unsigned char[3] tag; struct pt p 6; u8 z",
    "mixed": "d_mix __data_loc char[] a; u64 b; __rel_loc char[] c; __data_loc int[] d; char[2] e",
    "none": "d_none",
    "one": "d_one s64 v",
}

INT_NAMES = "abcdefghijklmn"
LOWEST = (0, -128, 0, -32768, 0, -2**31, 0, -2**63, -128, 0, -32768, 0, -2**31, 0)
HIGHEST = (255, 127, 65535, 32767, 2**32 - 1, 2**31 - 1, 2**64 - 1, 2**63 - 1, 127, 255,
           32767, 65535, 2**31 - 1, 2**32 - 1)


def ints(**change):
    """LOWEST with some fields changed."""
    return tuple(change.get(n, v) for n, v in zip(INT_NAMES, LOWEST))


class Index:
    """An integer by __index__ only (as numpy's integers are)."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class Text(str):
    pass


CALLS = [
    # -- every integer type at both ends, by position and by name -----------------------------
    ("ints", LOWEST, {}, None),
    ("ints", HIGHEST, {}, None),
    ("ints", (), dict(zip(INT_NAMES, HIGHEST)), None),
    ("ints", HIGHEST[:7], dict(zip(INT_NAMES[7:], HIGHEST[7:])), None),
    ("ints", ints(a=True, b=Index(-3), g=Index(2**64 - 1)), {}, None),
    ("ints", ints(a=256), {}, "field a (u8) takes 0 to 255, not 256"),
    ("ints", ints(a=-1), {}, "field a (u8) takes 0 to 255, not -1"),
    ("ints", ints(b=128), {}, "field b (s8) takes -128 to 127, not 128"),
    ("ints", ints(c=65536), {}, "field c (u16) takes 0 to 65535, not 65536"),
    ("ints", ints(d=-32769), {}, "field d (s16) takes -32768 to 32767"),
    ("ints", ints(e=2**32), {}, "field e (u32) takes 0 to 4294967295"),
    ("ints", ints(f=2**31), {}, "field f (s32) takes"),
    ("ints", ints(g=2**64), {}, "field g (u64) takes 0 to 18446744073709551615"),
    ("ints", ints(g=-1), {}, "field g (u64) takes 0 to"),
    ("ints", ints(h=-2**63 - 1), {}, "field h (s64) takes"),
    ("ints", ints(i=128), {}, "field i (char) takes -128 to 127"),
    ("ints", ints(j=-1), {}, "field j (unsigned char) takes 0 to 255"),
    ("ints", ints(k=2**15), {}, "field k (short) takes"),
    ("ints", ints(l=2**16), {}, "field l (unsigned short) takes"),
    ("ints", ints(m=2**31), {}, "field m (int) takes"),
    ("ints", ints(n=-1), {}, "field n (unsigned int) takes"),
    ("ints", ints(e=1.0), {}, "field e (u32) takes an integer, not float"),
    ("ints", ints(e="1"), {}, "field e (u32) takes an integer, not str"),
    ("ints", ints(e=None), {}, "field e (u32) takes an integer, not NoneType"),
    ("ints", LOWEST[:13], {}, "no value for n"),
    ("ints", LOWEST + (0,), {}, "takes 14 values, 15 given"),
    ("one", (-2**63,), {}, None),
    ("one", (), {"v": 2**63 - 1}, None),
    ("one", (), {"v": 1, "w": 2}, "has no field 'w'"),
    ("one", (1,), {"v": 2}, "field 'v' given twice"),
    ("one", (), {}, "no value for v"),
    # -- strings -------------------------------------------------------------------------------
    ("str", (1, 2, "hello"), {}, None),
    ("str", (), {"a": 1, "b": 2, "msg": "by name"}, None),
    ("str", (), {"msg": "any order", "b": 2, "a": 1}, None),
    ("str", (1,), {"msg": "mixed", "b": 2}, None),
    ("str", (1, 2, ""), {}, None),
    ("str", (1, 2, "héllo wörld €"), {}, None),
    ("str", (1, 2, "a\0b"), {}, None),                           # a str keeps its NULs
    ("str", (1, 2, b"raw"), {}, None),
    ("str", (1, 2, b"has its NUL\0"), {}, None),                 # bytes may bring their NUL
    ("str", (1, 2, b"two NULs\0\0"), {}, None),
    ("str", (1, 2, bytearray(b"bytearray")), {}, None),
    ("str", (1, 2, memoryview(b"memoryview")), {}, None),
    ("str", (1, 2, Text("a str subclass")), {}, None),
    ("str", (1, 2, "x" * 4051), {}, None),                       # the largest payload
    ("str", (1, 2, "x" * 4052), {}, "payload of 4065 bytes exceeds 4064"),
    ("str", (1, 2, "\ud800"), {}, "field msg (__data_loc char[]) takes text UTF-8 can encode"),
    ("str", (1, 2, 5), {}, "field msg (__data_loc char[]) takes str or bytes, not int"),
    ("str", (1, 2, None), {}, "takes str or bytes, not NoneType"),
    ("str", (1, 2, ["x"]), {}, "takes str or bytes, not list"),
    ("str", (-1, 2, "x"), {}, "field a (u32) takes 0 to 4294967295, not -1"),
    ("str", (1, 2), {}, "no value for msg"),
    ("str", (1, 2, "x", "y"), {}, "takes 3 values, 4 given"),
    ("str", (1,), {"a": 2, "b": 3, "msg": "x"}, "field 'a' given twice"),
    ("str", (), {"a": 1, "b": 2, "zz": "x"}, "has no field 'zz'"),
    ("rel", (7, "rel"), {}, None),
    ("rel", (7, ""), {}, None),
    ("rel", (), {"r": b"by name", "a": 65535}, None),
    ("rel", (65536, "x"), {}, "field a (u16) takes 0 to 65535"),
    # -- arrays --------------------------------------------------------------------------------
    ("arrays", ([1, 255], (-1, 2), b"\x01\x02\x03\x04", [2**63 - 1, -2**63], bytearray(b"e")),
     {}, None),
    ("arrays", ([], (), b"", [], b""), {}, None),
    ("arrays", (bytearray(3), memoryview(b"\x01\x00"), [0, 2**32 - 1], (5,), [1, 2, 3]), {},
     None),
    ("arrays", ([256], (), [], [], b""), {}, "field a (__data_loc u8[]) element 0 takes 0 to 255"),
    ("arrays", ([], (1, 32768), [], [], b""), {}, "element 1 takes -32768 to 32767"),
    ("arrays", ([], (), [-1], [], b""), {}, "element 0 takes 0 to 4294967295, not -1"),
    ("arrays", ([], (), [], [1.5], b""), {}, "element 0 takes an integer, not float"),
    ("arrays", ("text", (), [], [], b""), {}, "takes bytes or a sequence of integers, not str"),
    ("arrays", (7, (), [], [], b""), {}, "takes bytes or a sequence of integers, not int"),
    ("arrays", ([], (), [], [], bytes(4050)), {}, "payload of"),
    ("arrays", (bytes(70000), (), [], [], b""), {}, "has 70000 bytes, more than 65535"),
    # -- char arrays and structs: cut or NUL-padded to their size ---------------------------------
    ("chars", ("ab", b"xyz", b"123456", 1), {}, None),
    ("chars", ("abcdef", "toolong", b"12", 2), {}, None),
    ("chars", ("é", bytearray(b"t"), b"", 3), {}, None),
    ("chars", (), {"z": 4, "p": b"\xff" * 6, "tag": b"", "who": ""}, None),
    ("chars", (5, b"", b"", 1), {}, "field who (char[4]) takes str or bytes, not int"),
    ("chars", ("", memoryview(b"x"), b"", 1), {},
     "field tag (unsigned char[3]) takes str or bytes, not memoryview"),
    ("chars", ("\udfff", b"", b"", 1), {}, "field who (char[4]) takes text UTF-8 can encode"),
    ("chars", ("", b"", b"", 256), {}, "field z (u8) takes 0 to 255"),
    # -- several dynamic fields, mixed with fixed ones ---------------------------------------------
    ("mixed", ("first", 2**64 - 1, "rel", [-1, 2, 2**31 - 1], "e"), {}, None),
    ("mixed", (), {"a": b"", "b": 0, "c": "", "d": (), "e": b""}, None),
    ("mixed", ("a" * 2000, 0, "c" * 2000, [], ""), {}, None),
    ("mixed", ("a" * 2000, 0, "c" * 2100, [], ""), {}, "payload of"),
    ("mixed", ("a", 0, "c", [2**31], ""), {}, "field d (__data_loc int[]) element 0 takes"),
    ("none", (), {}, None),
    ("none", (1,), {}, "takes 0 values, 1 given"),
    ("none", (), {"x": 1}, "has no field 'x'"),
]


def run_calls(emitters: dict) -> list:
    """Emit every call through ``emitters`` (event -> emit function): True/False, or
    [code, detail] for a refused call."""
    from usertrace.sources.user_events import UserEventError

    out = []
    for event, args, kwargs, _fault in CALLS:
        try:
            out.append(emitters[event](*args, **kwargs))
        except UserEventError as exc:
            out.append([exc.code, exc.detail])
    return out


def fill_ring(session, byte: int = 0xA5):
    """Make the calling thread's ring now and fill its data area with ``byte``: a byte of a
    record that an emit leaves unwritten then shows in the comparison."""
    from usertrace.sources.user_events.abi import RING_HEADER_SIZE
    from usertrace.sources.user_events.client import _writer_for_thread

    w = _writer_for_thread(session)
    w.mm[RING_HEADER_SIZE:] = bytes([byte]) * (len(w.mm) - RING_HEADER_SIZE)
    return w


def main() -> None:
    """Register EVENTS in $USERTRACE_SESSION, emit every call, print what happened."""
    import json
    import time

    from usertrace.sources import user_events
    from usertrace.sources.user_events import abi, emit_path

    events = {k: user_events.register(v) for k, v in EVENTS.items()}
    w = fill_ring(events["none"].session)
    t0 = time.monotonic_ns()
    outcomes = run_calls({k: ev.emit for k, ev in events.items()})
    t1 = time.monotonic_ns()
    ring = w.mm[abi.RING_HEADER_SIZE: abi.RING_HEADER_SIZE + w.head]
    print(json.dumps({"path": emit_path.describe(), "outcomes": outcomes, "t0": t0, "t1": t1,
                      "tid": w.tid, "ring": ring.hex(), "lost": w.lost}))


if __name__ == "__main__":
    main()
