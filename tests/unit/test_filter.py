"""The filter's pieces: numbers, cpulists, globs, the parser's program, errors, the Filter API.

The table of real expressions is tests/unit/test_filter_table.py; here are the parts whose
cases are easier to state directly, and property tests on generated expressions.
"""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings, strategies as st

from usertrace.events.format import EventFormat
from usertrace.filter import (CATALOG, FilterError, FilterMatchError, compile_filter,
                              compile_system_filter)
from usertrace.filter.lexer import CpulistError, kstrtoll, kstrtoull, parse_cpulist
from usertrace.filter.parser import parse
from usertrace.filter.predicate import (END, FRONT, FULL, GLOB, MIDDLE, FieldResolver,
                                        parse_glob)
from usertrace.filter.strings import compile_match, glob_match


def make_format(fields: str, name: str = "test", system: str = "test") -> EventFormat:
    """A format with the common fields and ``fields`` ("type name offset size signed" lines)."""
    lines = [f"name: {name}", "ID: 1", "format:",
             "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;",
             "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;",
             "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;",
             "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;", ""]
    for spec in fields.strip().splitlines():
        decl, off, size, signed = spec.rsplit(None, 3)
        lines.append(f"\tfield:{decl};\toffset:{off};\tsize:{size};\tsigned:{signed};")
    lines += ["", 'print fmt: "x"', ""]
    return EventFormat.parse("\n".join(lines), system)


# The kernel's own self-test event: eight ints a..h.
ABC = make_format("\n".join(f"int {c} {8 + 4 * i} 4 1" for i, c in enumerate("abcdefgh")),
                  "ftrace_test_filter")
MIXED = make_format("""
char comm[16] 8 16 0
unsigned int u32v 24 4 0
short s16v 28 2 1
u8 arr[4] 30 4 0
long val 40 8 1
__data_loc char[] path 48 4 0
__data_loc cpumask_t mask 52 4 0
unsigned int cpu 56 4 0
const char * name 64 8 0
""", "mixed")


# -- numbers and cpulists -------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("0", 0), ("7", 7), ("010", 8), ("0x10", 16), ("0X1f", 31), ("0xFFFFFFFFFFFFFFFF", 2**64 - 1),
    ("18446744073709551615", 2**64 - 1), ("18446744073709551616", None), ("0x", None),
    ("08", None), ("1e3", None), ("", None), ("-1", None), ("12a", None), ("0x1g", None),
    ("00", 0), ("0x0", 0),
])
def test_kstrtoull(text, value):
    assert kstrtoull(text) == value


@pytest.mark.parametrize("text,value", [
    ("-1", -1), ("-0x10", -16), ("-010", -8), ("9223372036854775807", 2**63 - 1),
    ("9223372036854775808", None), ("-9223372036854775808", -2**63),
    ("-9223372036854775809", None), ("-", None), ("--1", None), ("-0", 0),
])
def test_kstrtoll(text, value):
    assert kstrtoll(text) == value


@pytest.mark.parametrize("text,nbits,cpus", [
    ("0", 4, {0}), ("0-3", 4, {0, 1, 2, 3}), ("0,2", 4, {0, 2}), ("1-N", 4, {1, 2, 3}),
    ("all", 3, {0, 1, 2}), ("0-7:2/4", 8, {0, 1, 4, 5}), (" 1 , 2 ", 4, {1, 2}),
    ("N", 4, {3}), ("", 4, set()),
])
def test_cpulist(text, nbits, cpus):
    assert parse_cpulist(text, nbits) == cpus


@pytest.mark.parametrize("text", ["4", "1-0", "x", "0-", "0:1/2", "0-3:3/2", "0-3:1/0", "-1",
                                  "99999999999"])
def test_cpulist_refused(text):
    with pytest.raises(CpulistError):
        parse_cpulist(text, 4)


# -- globs and string matches ---------------------------------------------------------------

@pytest.mark.parametrize("pat,s,result", [
    ("a", "a", True), ("a", "b", False), ("a", "aa", False), ("", "", True), ("", "a", False),
    ("?", "a", True), ("?", "", False), ("*", "", True), ("*", "anything/at all", True),
    ("*a", "ba", True), ("*a", "ab", False), ("a*b", "axxb", True), ("a*b", "axxbx", False),
    ("*ab", "aab", True), ("*abc", "ababc", True), ("a*b*c", "abxbc", True),
    ("[abc]", "b", True), ("[abc]", "d", False), ("[!abc]", "d", True), ("[!abc]", "a", False),
    ("[a-c]x", "bx", True), ("[a-c]x", "dx", False), ("[]]", "]", True), ("[]a]", "a", True),
    ("[a-]", "-", True), ("[!]]", "]", False), ("[", "[", True), ("[a", "[a", True),
    ("[a", "a", False), ("\\*", "*", True), ("\\*", "x", False), ("a\\?", "a?", True),
    ("*/*", "/usr/bin", True), ("[0-9][0-9]", "42", True), ("[z-a]", "m", False),
])
def test_glob_match(pat, s, result):
    assert glob_match(pat.encode(), s.encode()) is result


@pytest.mark.parametrize("raw,kind,pattern,negate", [
    ("x", FULL, "x", False), ("*x", END, "x", False), ("x*", FRONT, "x", False),
    ("*x*", MIDDLE, "x", False), ("*", END, "", False), ("**", MIDDLE, "", False),
    ("!x*", FRONT, "x", True), ("1x*", FULL, "1x*", False), ("!9*", FULL, "9*", True),
    ("a*b", GLOB, "a*b", False), ("*a*b", GLOB, "*a*b", False), ("?x", GLOB, "?x", False),
    ("x[", GLOB, "x[", False), ("a\\b", GLOB, "a\\b", False), ("", FULL, "", False),
    ("!", FULL, "", True),
])
def test_parse_glob(raw, kind, pattern, negate):
    assert parse_glob(raw) == (kind, pattern, negate)


@pytest.mark.parametrize("kind,pattern,buflen,value,result", [
    (FULL, "bash", 16, "bash", True), (FULL, "bash", 16, "bas", False),
    # a pattern longer than the field compares its first N bytes
    (FULL, "abcdefghijklmnopXYZ", 16, "abcdefghijklmnop", True),
    (FRONT, "ba", 16, "bash", True), (FRONT, "abcdefghijklmnopq", 16, "abcdefghijklmnop", False),
    (MIDDLE, "as", 16, "bash", True), (MIDDLE, "", 16, "", True),
    # the end of a fixed array is its last byte but one
    (END, "sh", 16, "bash", False), (END, "sh", 16, "abcdefghijklmsh", True),
    (END, "sh", 16, "abcdefghijklmshX", True), (END, "", 16, "x", True),
    (END, "sh", None, "bash", True), (END, "sh", None, "sh", True), (END, "bash", None, "sh", False),
    (GLOB, "b?sh", 16, "bash", True), (FULL, "\xc3\xa9", None, "é", True),
    (FRONT, "\xc3", None, "é", True),
])
def test_string_match(kind, pattern, buflen, value, result):
    assert compile_match(kind, pattern, buflen)(value) is result


# -- the parser: the tree against the kernel's program -------------------------------------

# The kernel's self-test (trace_events_filter.c): filters over a..h and the expected matches.
SELFTEST = [
    ("a == 1 && b == 1 && c == 1 && d == 1 && e == 1 && f == 1 && g == 1 && h == 1",
     [(1, "11111111"), (0, "01111111"), (0, "11111110")]),
    ("a == 1 || b == 1 || c == 1 || d == 1 || e == 1 || f == 1 || g == 1 || h == 1",
     [(0, "00000000"), (1, "00000001"), (1, "10000000")]),
    ("(a == 1 || b == 1) && (c == 1 || d == 1) && (e == 1 || f == 1) && (g == 1 || h == 1)",
     [(0, "00111111"), (1, "01010101"), (1, "10100101"), (0, "10100100")]),
    ("(a == 1 && b == 1) || (c == 1 && d == 1) || (e == 1 && f == 1) || (g == 1 && h == 1)",
     [(1, "10111111"), (1, "00000011"), (0, "00000001")]),
    ("(a == 1 && b == 1) && (c == 1 && d == 1) && (e == 1 && f == 1) || (g == 1 && h == 1)",
     [(1, "11111100"), (0, "00000001"), (1, "11111011")]),
    ("((a == 1 || b == 1) || (c == 1 || d == 1) || (e == 1 || f == 1)) && (g == 1 || h == 1)",
     [(1, "11111101"), (0, "00000000"), (1, "11111011")]),
    ("((((((((a == 1) && (b == 1)) || (c == 1)) && (d == 1)) || (e == 1)) && (f == 1)) || "
     "(g == 1)) && (h == 1))",
     [(1, "11111111"), (0, "01010101"), (0, "10101010")]),
    ("((((((((a == 1) || (b == 1)) && (c == 1)) || (d == 1)) && (e == 1)) || (f == 1)) && "
     "(g == 1)) || (h == 1))",
     [(1, "11111111"), (1, "01010101"), (1, "10101010")]),
]


def _record(bits: str) -> dict:
    rec = {"common_type": 1, "common_flags": 0, "common_preempt_count": 0, "common_pid": 1}
    rec.update({c: int(b) for c, b in zip("abcdefgh", bits)})
    return rec


@pytest.mark.parametrize("text,records", SELFTEST)
def test_kernel_selftest(text, records):
    f = compile_filter(text, ABC)
    for expected, bits in records:
        rec = _record(bits)
        assert f.match(rec) is bool(expected), bits
        truths = [f_.value == rec[f_.ref.key] for f_ in f.preds]
        assert f.program.run(truths) is bool(expected), bits


def _expressions(depth: int):
    atom = st.sampled_from([f"{c} == 1" for c in "abcdefgh"])
    leaf = st.tuples(st.sampled_from(["", "!", "!!"]), atom).map("".join)
    if depth == 0:
        return leaf
    sub = _expressions(depth - 1)
    group = st.tuples(st.sampled_from(["", "!"]), sub).map(lambda t: f"{t[0]}({t[1]})")
    part = st.one_of(leaf, group)
    return st.lists(st.tuples(part, st.sampled_from([" && ", " || ", "&&", "||"])),
                    min_size=1, max_size=4).map(
        lambda items: "".join(p + op for p, op in items)[: -len(items[-1][1])])


@settings(max_examples=300, deadline=None)
@given(text=_expressions(3), bits=st.text("01", min_size=8, max_size=8),
       trailing=st.sampled_from(["", " &&", " ||", " && !"]))
def test_tree_equals_kernel_program(text, bits, trailing):
    """Our expression tree decides as the kernel's branch program does, on any expression."""
    try:
        parsed = parse(text + trailing, FieldResolver(ABC), 2)
    except FilterError as err:
        # only "a || b &&" (which the kernel cannot run) may be refused
        assert err.code == "INVALID_FILTER" and trailing.startswith(" &&")
        return
    rec = _record(bits)
    f = compile_filter(text + trailing, ABC)
    truths = [rec[p.ref.key] == p.value for p in parsed.preds]
    assert f.match(rec) is parsed.program.run(truths)


# -- errors -------------------------------------------------------------------------------

def test_catalog_mirrors_the_kernel():
    codes = [c for c, _ in CATALOG]
    assert codes[0] == "NONE" and codes[-1] == "NO_FILTER" and len(codes) == 22
    assert dict(CATALOG)["TOO_MANY_PREDS"] == "Too many terms in predicate expression"
    assert dict(CATALOG)["INVALID_VALUE"] == "Invalid value (did you forget quotes)?"


def test_error_renders_as_the_filter_file():
    with pytest.raises(FilterError) as info:
        compile_filter("a ~ 3   \n", ABC)
    err = info.value
    assert (err.code, err.pos, err.errno) == ("ILLEGAL_FIELD_OP", 5, errno.EINVAL)
    assert err.render() == "a ~ 3\n     ^\nparse_error: Illegal operation for field type\n\n"
    assert str(err) == "a ~ 3\n     ^\nparse_error: Illegal operation for field type"


def test_error_without_a_kernel_message_still_says_where():
    with pytest.raises(FilterError) as info:
        compile_filter("a == 1 && == 2", ABC)
    err = info.value
    assert err.code == "NONE" and err.errno == errno.EPERM
    assert err.render() == "a == 1 && == 2\nError: (0)\n\n"
    assert str(err).splitlines()[1:] == ["          ^", "parse_error: expected a field name"]


def test_caret_is_clamped_to_the_text():
    with pytest.raises(FilterError) as info:
        compile_filter("a == CPUS{0", ABC)
    assert info.value.pos == 12 and info.value.caret_column() == 11


def test_non_ascii_positions_are_bytes():
    fmt = MIXED
    with pytest.raises(FilterError) as info:
        compile_filter('comm == "é" && nöpe == 1', fmt)
    assert info.value.code == "FIELD_NOT_FOUND"
    # 'nö' is 3 bytes; the kernel's ctype takes 0xc3 as a letter and stops at 0xb6
    assert info.value.pos == len('comm == "é" && nö'.encode()) - 1 + 1
    f = compile_filter('comm == "é"', fmt)
    assert f.match({"comm": "é"}) and not f.match({"comm": "e"})


def test_too_long_text():
    with pytest.raises(FilterError) as info:
        compile_filter("a == 1 || " * 410, ABC)
    assert "4095" in str(info.value)


def test_text_ends_at_nul_and_trailing_space():
    f = compile_filter("a == 1 \t\n\0 garbage", ABC)
    assert f.text == "a == 1" and f.match(_record("10000000"))


# -- the Filter API -------------------------------------------------------------------------

def test_fields_and_generic_keys():
    f = compile_filter('a == 1 && comm ~ "x*" || CPU == 1 || common_pid > 5 || a < 3', ABC)
    assert f.fields == ("a", "common_pid")
    assert (f.needs_comm, f.comm_key, f.needs_cpu, f.cpu_key) == (True, "comm", True, "cpu")
    g = compile_filter("a == 1", ABC)
    assert not g.needs_comm and not g.needs_cpu


def test_event_with_its_own_comm_and_cpu_fields():
    f = compile_filter('comm == "own" && COMM == "task" && cpu == 7 && CPU == 1', MIXED)
    assert f.fields == ("comm", "cpu")
    assert (f.comm_key, f.cpu_key) == ("COMM", "CPU")
    assert f.match({"comm": "own", "COMM": "task", "cpu": 7, "CPU": 1})
    assert not f.match({"comm": "task", "COMM": "own", "cpu": 7, "CPU": 1})


def test_ustring_fields():
    f = compile_filter('name.ustring ~ "/etc/*" || name == "x"', MIXED)
    assert f.ustring_fields == ("name",)
    assert f.match({"name": "/etc/passwd"})
    assert not f.match({"name": 0x7ffc0000})       # not read: no match, as the kernel's fault
    g = compile_filter('name == "x" || name != "x"', MIXED)
    assert g.ustring_fields == () and not g.match({"name": "x"})


@pytest.mark.parametrize("text", ["0", " 0 \n", "\t0"])
def test_zero_clears(text):
    f = compile_filter(text, ABC)
    assert f.is_clear and f.match({})


def test_missing_value_is_a_clear_error():
    f = compile_filter("a == 1 && b == 2", ABC)
    with pytest.raises(FilterMatchError, match="'b'"):
        f.match({"a": 1})


@pytest.mark.parametrize("text,rec,result", [
    # fixed non-char arrays compare their first bytes as one integer, little-endian
    ("arr == 0x04030201", {"arr": [1, 2, 3, 4]}, True),
    ("arr & 0x100", {"arr": [0, 1, 0, 0]}, True),
    ("arr == 1", {"arr": [2, 0, 0, 0]}, False),
    # a u32 compared with a bigger constant: cut to 32 bits
    ("u32v == 0x100000005", {"u32v": 5}, True),
    ("u32v > 4294967296", {"u32v": 1}, True),
    ("s16v == 0xffff", {"s16v": -1}, True),
    ("s16v < 32768", {"s16v": 0}, False),
    ("val & -1", {"val": -2}, True),
    # __data_loc strings have their real length
    ('path ~ "*sh"', {"path": "/bin/bash"}, True),
    ('path == "/bin"', {"path": "/bin/"}, False),
    # cpumasks (here 32-bit words)
    ("mask & CPUS{1}", {"mask": [0b10]}, True),
    ("mask == CPUS{1}", {"mask": [0b11]}, False),
    ("mask == CPUS{0-1}", {"mask": [0b11]}, True),
    ("mask & CPUS{0-1}", {"mask": [0b100]}, False),
    ("mask != CPUS{0}", {"mask": [0b01]}, False),
    # a numeric field against a cpulist: one CPU is "==", several test membership
    ("u32v & CPUS{1}", {"u32v": 1}, True),
    ("u32v & CPUS{0-1}", {"u32v": 5}, False),
    ("u32v != CPUS{0-1}", {"u32v": 1}, True),
    ("u32v == CPUS{0-1}", {"u32v": 1}, False),
])
def test_semantics(text, rec, result):
    assert compile_filter(text, MIXED, nr_cpus=2).match(rec) is result


def test_dynamic_non_string_arrays_never_match():
    fmt = make_format("__data_loc u8[] buf 8 4 0")
    assert not compile_filter("buf == 0", fmt).match({"buf": [0]})
    assert not compile_filter("buf != 0", fmt).match({"buf": [0]})


# -- a filter on a whole system -------------------------------------------------------------

def test_system_filter_applies_where_it_parses():
    other = make_format("unsigned long ret 8 8 0", "other")
    sf = compile_system_filter("a == 1", [ABC, other])
    assert set(sf.filters) == {ABC.full_name}
    err = sf.refused[other.full_name]
    assert err.code == "BAD_SUBSYS_FILTER" and err.__cause__.code == "FIELD_NOT_FOUND"
    assert err.render() == ("a == 1\n^\nparse_error: Couldn't find or set field in one of a "
                            "subsystem's events\n\n")
    assert sf.match(ABC.full_name, _record("10000000"))
    assert not sf.match(ABC.full_name, _record("00000000"))
    assert sf.match(other.full_name, {"ret": 5})     # unfiltered


def test_system_filter_needs_an_event():
    with pytest.raises(FilterError) as info:
        compile_system_filter("a == 1", [])
    assert info.value.code == "BAD_SUBSYS_FILTER"
