"""User event definitions: the kernel's syntax, the error catalog with positions, the formats."""

import errno

import pytest
from hypothesis import given, strategies as st

from usertrace.events.format import EventFormat
from usertrace.events.records import RecordCodec
from usertrace.sources.user_events import abi
from usertrace.sources.user_events.parse import (ERRORS, UserEventError, parse_command,
                                                 parse_commands, parse_definition)

# -- good definitions: (definition, canonical form, [(type, name, offset, size, signed)]) -------
GOOD = [
    ("test", "test", []),
    ("test ", "test", []),                                  # an empty argument list
    ("a u32 x", "a u32 x", [("u32", "x", 8, 4, False)]),
    ("a u32 x;u64 y", "a u32 x; u64 y", [("u32", "x", 8, 4, False), ("u64", "y", 12, 8, False)]),
    ("a u32 x;  \ts8 y;", "a u32 x; s8 y", [("u32", "x", 8, 4, False), ("s8", "y", 12, 1, True)]),
    ("a u32 x;;u8 y", "a u32 x; u8 y", [("u32", "x", 8, 4, False), ("u8", "y", 12, 1, False)]),
    ("a int i; unsigned int u; short s; unsigned short us; char c; unsigned char uc",
     "a int i; unsigned int u; short s; unsigned short us; char c; unsigned char uc",
     [("int", "i", 8, 4, True), ("unsigned int", "u", 12, 4, False), ("short", "s", 16, 2, True),
      ("unsigned short", "us", 18, 2, False), ("char", "c", 20, 1, True),
      ("unsigned char", "uc", 21, 1, False)]),
    ("a s16 a; u16 b; s32 c; s64 d", "a s16 a; u16 b; s32 c; s64 d",
     [("s16", "a", 8, 2, True), ("u16", "b", 10, 2, False), ("s32", "c", 12, 4, True),
      ("s64", "d", 16, 8, True)]),
    ("a char[20] msg; unsigned char[3] raw", "a char[20] msg; unsigned char[3] raw",
     [("char[20]", "msg", 8, 20, True), ("unsigned char[3]", "raw", 28, 3, False)]),
    ("a char[0x10] h; char[010] o", "a char[0x10] h; char[010] o",    # kstrtouint base 0
     [("char[0x10]", "h", 8, 16, True), ("char[010]", "o", 24, 8, True)]),
    ("a char[1024] big", "a char[1024] big", [("char[1024]", "big", 8, 1024, True)]),
    ("a __data_loc char[] s; __rel_loc char[] r", "a __data_loc char[] s; __rel_loc char[] r",
     [("__data_loc char[]", "s", 8, 4, True), ("__rel_loc char[]", "r", 12, 4, True)]),
    ("a __data_loc unsigned char[] b; __rel_loc unsigned char[] c; __data_loc u64[] v",
     "a __data_loc unsigned char[] b; __rel_loc unsigned char[] c; __data_loc u64[] v",
     [("__data_loc unsigned char[]", "b", 8, 4, True),
      ("__rel_loc unsigned char[]", "c", 12, 4, True), ("__data_loc u64[]", "v", 16, 4, True)]),
    ("a struct mytype myname 20", "a struct mytype myname 20",
     [("struct mytype", "myname", 8, 20, True)]),
    ("a:persist u8 x", "a u8 x", [("u8", "x", 8, 1, False)]),
]


@pytest.mark.parametrize("text,canonical,fields", GOOD)
def test_good_definitions(text, canonical, fields):
    d = parse_definition(text)
    assert d.canonical == canonical
    assert [(f.type, f.name, f.offset, f.size, f.signed) for f in d.fields] == fields
    assert d.min_size == sum(f[3] for f in fields)
    # The canonical form is a definition of the same event.
    assert parse_definition(d.canonical).canonical == canonical


def test_flags_in_text_and_as_bits():
    assert parse_definition("a:persist").flags == abi.USER_EVENT_REG_PERSIST
    assert parse_definition("a:persist,multi_format u8 x").flags == 3
    assert parse_definition("a u8 x", abi.USER_EVENT_REG_MULTI_FORMAT).multi_format
    with pytest.raises(UserEventError) as exc:
        parse_definition("a", abi.USER_EVENT_REG_MAX)
    assert exc.value.code == "BAD_FLAG"


def test_trailing_newline_of_a_write_is_dropped():
    assert parse_definition("a u32 x\n").canonical == "a u32 x"


# -- bad definitions: the fault marked with ^ in the input, as the kernel selftests do ----------
BAD = [
    ("^", "NO_NAME"),
    ("^ u32 x", "NO_NAME"),
    ("^:persist u32 x", "NO_NAME"),
    ("^9lives u32 x", "BAD_NAME"),
    ("app^-req u32 x", "BAD_NAME"),
    ("grp^/ev u32 x", "BAD_NAME"),
    ("a:^ u32 x", "EMPTY_FLAG"),
    ("a:persist,^ u32 x", "EMPTY_FLAG"),
    ("a:^BPF_ITER u32 x", "BAD_FLAG"),
    ("a:persist,^nope u32 x", "BAD_FLAG"),
    ("a u32^  x", "EXTRA_SPACE"),
    ("a u32 x^ ", "EXTRA_SPACE"),
    ("a u32 x^ ;u8 y", "EXTRA_SPACE"),
    ("a unsigned^  int x", "EXTRA_SPACE"),
    ("a u32^", "NO_FIELD_NAME"),
    ("a u32 x; u64^", "NO_FIELD_NAME"),
    ("a unsigned int^", "NO_FIELD_NAME"),
    ("a struct foo^", "NO_FIELD_NAME"),
    ("a __data_loc char[]^", "NO_FIELD_NAME"),
    ("a u32 ^1x", "BAD_FIELD_NAME"),
    ("a u32 x^[2]", "BAD_FIELD_NAME"),
    ("a u32 x; u8 ^x", "DUP_FIELD"),
    ("a u32 ^common_pid", "DUP_FIELD"),
    ("a ^u33 x", "BAD_TYPE"),
    ("a ^long x", "BAD_TYPE"),
    ("a ^unsigned long x", "BAD_TYPE"),
    ("a ^u32[4] x", "BAD_TYPE"),
    ("a char[4]^x y", "BAD_TYPE"),
    ("a struct ^9t x 4", "BAD_TYPE"),
    ("a __data_loc ^char s", "BAD_DYN_TYPE"),
    ("a __data_loc ^long[] s", "BAD_DYN_TYPE"),
    ("a __rel_loc ^foo s", "BAD_DYN_TYPE"),
    ("a char[^0] x", "BAD_ARRAY_LEN"),
    ("a char[^] x", "BAD_ARRAY_LEN"),
    ("a char[^1025] x", "BAD_ARRAY_LEN"),
    ("a char[^0x] x", "BAD_ARRAY_LEN"),
    ("a char[^09] x", "BAD_ARRAY_LEN"),                     # 0 means octal, as in the kernel
    ("a char[^00000020] x", "BAD_ARRAY_LEN"),               # the kernel reads 7 characters
    ("a char[^20 x", "BAD_ARRAY_LEN"),
    ("a u32 x ^4", "SIZE_NOT_STRUCT"),
    ("a char[4] x ^4", "SIZE_NOT_STRUCT"),
    ("a struct foo x^", "NO_STRUCT_SIZE"),
    ("a struct foo x ^0", "BAD_STRUCT_SIZE"),
    ("a struct foo x ^0x10", "BAD_STRUCT_SIZE"),
    ("a struct foo x ^99999", "BAD_STRUCT_SIZE"),
    ("a struct foo x 4 ^y", "TOO_MANY_WORDS"),
    ("a char[1024] a; char[1024] b; char[1024] c; char[992] d; ^u8 e", "TOO_BIG"),
]


@pytest.mark.parametrize("marked,code", BAD)
def test_bad_definitions(marked, code):
    pos = marked.index("^")
    text = marked.replace("^", "", 1)
    with pytest.raises(UserEventError) as exc:
        parse_definition(text)
    err = exc.value
    assert (err.code, err.pos) == (code, pos), err.render()
    assert err.errno == errno.EINVAL
    assert err.text == text
    # The kernel's error_log form: message, command, caret under the fault.
    lines = err.render().split("\n")
    assert lines[0].startswith("user_events: error: " + ERRORS[code][1])
    assert lines[1] == "  Command: " + text
    assert lines[2] == " " * (len("  Command: ") + pos) + "^"


def test_definition_too_long():
    # strndup_user(name_args, 512): 511 bytes and the NUL fit, 512 do not.
    text = "a char[8] " + "x" * 502
    assert len(text) == 512
    with pytest.raises(UserEventError) as exc:
        parse_definition(text)
    assert exc.value.code == "TOO_LONG"
    assert parse_definition(text[:-1]).fields[0].name == "x" * 501


def test_caret_keeps_tabs_aligned():
    with pytest.raises(UserEventError) as exc:
        parse_definition("a u32 x;\tu99 y")
    assert exc.value.render().split("\n")[2].endswith("\t^")


# -- formats: what the kernel generates for user events (trace_events_user.c) -------------------
APP_REQ = (
    "name: app_req\n"
    "ID: 40001\n"
    "format:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\n"
    "\tfield:u32 status;\toffset:8;\tsize:4;\tsigned:0;\n"
    "\tfield:u64 bytes;\toffset:12;\tsize:8;\tsigned:0;\n"
    "\tfield:__data_loc char[] path;\toffset:20;\tsize:4;\tsigned:1;\n"
    "\tfield:char who[16];\toffset:24;\tsize:16;\tsigned:1;\n"
    "\tfield:struct foo raw;\toffset:40;\tsize:3;\tsigned:1;\n"
    "\n"
    'print fmt: "status=%u bytes=%llu path=%s who=%s raw=%llu", REC->status, REC->bytes, '
    "__get_str(path), REC->who, REC->raw\n"
)


def test_format_text_golden():
    d = parse_definition("app_req u32 status; u64 bytes; __data_loc char[] path; "
                         "char[16] who; struct foo raw 3")
    fmt = d.event_format(40001)
    assert fmt.render() == APP_REQ
    assert EventFormat.parse(APP_REQ, "user_events") == fmt


# definition -> print fmt, by user_field_format() and user_field_is_dyn_string()
PRINT_FMTS = [
    ("e", '""'),
    ("e s64 a; u64 b", '"a=%lld b=%llu", REC->a, REC->b'),
    ("e s32 a; u32 b; int c; unsigned int d",
     '"a=%d b=%u c=%d d=%u", REC->a, REC->b, REC->c, REC->d'),
    ("e s16 a; u16 b; short c; unsigned short d",
     '"a=%d b=%u c=%d d=%u", REC->a, REC->b, REC->c, REC->d'),
    ("e s8 a; u8 b; char c; unsigned char d",
     '"a=%d b=%u c=%d d=%u", REC->a, REC->b, REC->c, REC->d'),
    ("e char[4] a; unsigned char[4] b", '"a=%s b=%s", REC->a, REC->b'),
    ("e __data_loc char[] a; __rel_loc char[] b", '"a=%s b=%s", __get_str(a), __get_rel_str(b)'),
    ("e __data_loc unsigned char[] a", '"a=%s", __get_str(a)'),
    ("e __data_loc u8[] a; __rel_loc s32[] b", '"a=%llu b=%llu", REC->a, REC->b'),
    ("e struct x a 8", '"a=%llu", REC->a'),
]


@pytest.mark.parametrize("text,print_fmt", PRINT_FMTS)
def test_print_fmt_as_the_kernel_makes_it(text, print_fmt):
    assert parse_definition(text).print_fmt() == print_fmt


def test_multi_format_event_name_and_system():
    d = parse_definition("test u32 x", abi.USER_EVENT_REG_MULTI_FORMAT)
    fmt = d.event_format(40002, multi_id=0x1f)
    assert (fmt.system, fmt.name) == ("user_events_multi", "test.1f")


@given(st.lists(st.sampled_from(["u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64", "char[5]",
                                 "__data_loc char[]", "__rel_loc char[]", "__data_loc u16[]"]),
                min_size=0, max_size=8))
def test_formats_pack_fields_and_parse_back(types):
    text = "ev " + "; ".join(f"{t} f{i}" for i, t in enumerate(types))
    d = parse_definition(text.strip())
    fmt = d.event_format(40003)
    again = EventFormat.parse(fmt.render(), "user_events")
    assert again == fmt
    offset = 8
    for f in fmt.fields:
        assert f.offset == offset
        offset += f.size
    RecordCodec(fmt)        # every format we make is one the decoder takes


# -- dynamic_events commands --------------------------------------------------------------------
def test_commands():
    cmds = parse_commands("u:a u32 x\n# a comment\n\n  -:user_events/a\n-:b.1f u8 y # trailing\n")
    assert [(c.op, c.name or c.definition.canonical, c.system, c.fields) for c in cmds] == [
        ("add", "a u32 x", None, None), ("delete", "a", "user_events", None),
        ("delete", "b.1f", None, "u8 y")]
    assert cmds[0].definition.persist        # dynamic events persist, as in the kernel


BAD_COMMANDS = [
    ("^p:a u32 x", "BAD_COMMAND"),
    ("^a u32 x", "BAD_COMMAND"),
    ("u:a ^u99 x", "BAD_TYPE"),
    ("u:  a ^u99 x", "BAD_TYPE"),
    ("-:^", "NO_NAME"),
    ("-:^9x", "BAD_NAME"),
    ("-:^kprobes/a", "BAD_SYSTEM"),
]


@pytest.mark.parametrize("marked,code", BAD_COMMANDS)
def test_bad_commands(marked, code):
    pos = marked.index("^")
    text = marked.replace("^", "", 1)
    with pytest.raises(UserEventError) as exc:
        parse_command(text)
    assert (exc.value.code, exc.value.pos) == (code, pos)
