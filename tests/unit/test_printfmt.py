"""print fmt rendering: the conversions, casts and helpers that syscall, uprobe and user events use."""

import pytest

from usertrace.events.format import EventFormat, Field
from usertrace.output.printfmt import PrintFmt
from usertrace.output.text import format_timestamp, lat_flags, line_prefix, trace_header

FIELDS = [
    Field("long", "ret", 8, 8, True),
    Field("unsigned long", "addr", 16, 8, False),
    Field("int", "n", 24, 4, True),
    Field("unsigned int", "u", 28, 4, False),
    Field("char[16]", "comm", 32, 16, False),
    Field("__data_loc char[]", "path", 48, 4, False),
    Field("u8", "ch", 52, 1, False),
]

CASES = [
    # print fmt                                              values                      expected
    ('"0x%lx", REC->ret',                                    {"ret": -2},                "0xfffffffffffffffe"),
    ('"%ld", REC->ret',                                      {"ret": -2},                "-2"),
    ('"0x%08lx", ((unsigned long)(REC->addr))',              {"addr": 0x1234},           "0x00001234"),
    ('"0x%08lx", ((unsigned long)(REC->addr))',              {"addr": 0xffffff9c},       "0xffffff9c"),
    ('"%d %u", REC->n, REC->u',                              {"n": -1, "u": 4294967295}, "-1 4294967295"),
    ('"%d", REC->u',                                         {"u": 4294967295},          "-1"),
    ('"%u", REC->n',                                         {"n": -1},                  "4294967295"),
    ('"%x", REC->n',                                         {"n": -1},                  "ffffffff"),
    ('"%5d|%-5d|%05d", REC->n, REC->n, REC->n',              {"n": -42},                 "  -42|-42  |-0042"),
    ('"%s", REC->comm',                                      {"comm": "bash"},           "bash"),
    ('"%s", __get_str(path)',                                {"path": "/etc/passwd"},    "/etc/passwd"),
    ('"path=%s len=%d", __get_str(path), REC->n',            {"path": "x", "n": 3},      "path=x len=3"),
    ('"%c", REC->ch',                                        {"ch": 65},                 "A"),
    ('"100%% %d", REC->n',                                   {"n": 7},                   "100% 7"),
    ('"(%lx) arg1=%d", REC->addr, REC->n',                   {"addr": 0x401136, "n": 5}, "(401136) arg1=5"),
    ('"%d", (int)(REC->addr)',                               {"addr": 0xFFFFFFFF},       "-1"),
    ('"%u", (unsigned char)REC->n',                          {"n": 0x1FF},               "255"),
    ('"%d", REC->n > 0 ? 1 : 2',                             {"n": -3},                  "2"),
    ('"%d:%d", ((unsigned int) ((REC->u) >> 20)), ((unsigned int) ((REC->u) & ((1U << 20) - 1)))',
                                                             {"u": (8 << 20) | 1},       "8:1"),
    ('"%s", __print_symbolic(REC->n, { 0, "zero" }, { 1, "one" })', {"n": 1},            "one"),
    ('"%s", __print_flags(REC->u, "|", { 1, "A" }, { 4, "C" })',    {"u": 5},            "A|C"),
    ('"%#x %#o", REC->u, REC->u',                            {"u": 8},                   "0x8 010"),
    ('"%.2s", REC->comm',                                    {"comm": "abcdef"},         "ab"),
    ('"a" "b %d", REC->n',                                   {"n": 1},                   "ab 1"),
    ('"tab\\there"',                                         {},                         "tab\there"),
]


@pytest.mark.parametrize("print_fmt,values,expected", CASES)
def test_print_fmt(print_fmt, values, expected):
    fmt = EventFormat("t", "e", 1, FIELDS, print_fmt)
    pf = PrintFmt(fmt)
    assert not pf.failed
    assert pf.render(values) == expected


@pytest.mark.parametrize("print_fmt", [
    '"%d", REC->nosuch',            # no such field
    '"%d %d", REC->n',              # fewer arguments than conversions
    'REC->n',                       # no format string
    '"%d", frobnicate(REC->n)',     # unknown helper
])
def test_unparsable_print_fmt_says_so(print_fmt):
    fmt = EventFormat("t", "e", 1, FIELDS, print_fmt)
    pf = PrintFmt(fmt)
    assert pf.failed
    assert pf.render({"n": 1, "ret": 2}).startswith("[FAILED TO PARSE] ret=2 ")


LAT = [
    # flags  preempt_count  text
    (0x00, 0x00, "....."),
    (0x01, 0x00, "d...."),
    (0x80, 0x00, "b...."),
    (0x04, 0x00, ".n..."),
    (0x24, 0x00, ".N..."),
    (0x08, 0x01, "..h1."),
    (0x18, 0x00, "..H.."),
    (0x10, 0x21, "..s12"),
    (0x48, 0x00, "..Z.."),
    (0x81, 0x00, "D...."),
    (0xFF, 0xFF, "DBZff"),          # every uprobe record on 6.18 (tests/kernel/test_probe_hits_kernel.py)
]


@pytest.mark.parametrize("flags,preempt,text", LAT)
def test_latency_flags(flags, preempt, text):
    assert lat_flags(flags, preempt) == text


def test_line_prefix_and_timestamp_as_the_kernel():
    # copied from this machine's trace file
    assert line_prefix("bash", 2048, 1, 297_300_813_400) == "            bash-2048    [001] .....   297.300813: "
    assert format_timestamp(1_999_999_500) == "    2.000000"   # rounded to the microsecond
    assert format_timestamp(12345_000_000_000) == "12345.000000"
    assert line_prefix("a-very-long-command-name", 1, 12, 0).startswith("a-very-long-command-name-1       [012]")


def test_trace_header():
    h = trace_header(154, 160, 2)
    assert h.splitlines()[:3] == ["# tracer: nop", "#", "# entries-in-buffer/entries-written: 154/160   #P:2"]
    assert h.splitlines()[-2] == "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"
