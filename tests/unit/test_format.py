"""Event formats: rendering byte for byte as the kernel does, parsing back, errors with positions."""

import glob

import pytest

from usertrace.events.format import COMMON_FIELDS, EventFormat, Field, FormatError
from usertrace.kernel.tracefs import find_tracefs

# The kernel's text for syscalls:sys_enter_openat (ID aside), as 6.18 prints it.
OPENAT_ENTER = (
    "name: sys_enter_openat\n"
    "ID: 782\n"
    "format:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\n"
    "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
    "\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n"
    "\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n"
    "\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n"
    "\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n"
    "\n"
    'print fmt: "dfd: 0x%08lx, filename: 0x%08lx, flags: 0x%08lx, mode: 0x%08lx", '
    "((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename)), "
    "((unsigned long)(REC->flags)), ((unsigned long)(REC->mode))\n"
)


def test_render_equals_kernel_text():
    fmt = EventFormat(
        "syscalls", "sys_enter_openat", 782,
        [Field("int", "__syscall_nr", 8, 4, True),
         Field("int", "dfd", 16, 8, False),
         Field("const char *", "filename", 24, 8, False),
         Field("int", "flags", 32, 8, False),
         Field("umode_t", "mode", 40, 8, False)],
        OPENAT_ENTER.split("print fmt: ")[1].rstrip("\n"),
    )
    assert fmt.render() == OPENAT_ENTER
    assert EventFormat.parse(OPENAT_ENTER, "syscalls") == fmt
    assert fmt.fixed_size == 48


# Field lines as the kernel prints them, and what they mean.
FIELD_LINES = [
    # declaration                      type                  name      len   string dyn
    ("char comm[16]",                  "char[16]",           "comm",   16,   True,  False),
    ("__data_loc char[] name",         "__data_loc char[]",  "name",   0,    True,  True),
    ("__rel_loc char msg[]",           "__rel_loc char[]",   "msg",    0,    True,  True),
    ("__data_loc u64[] phys_addrs",    "__data_loc u64[]",   "phys_addrs", 0, False, True),
    ("char buf[]",                     "char[]",             "buf",    0,    True,  False),
    ("u8 fsid[16]",                    "u8[16]",             "fsid",   16,   False, False),
    ("const char * filename",          "const char *",       "filename", None, False, False),
    ("unsigned long ip",               "unsigned long",      "ip",     None, False, False),
]


@pytest.mark.parametrize("decl,ctype,name,alen,is_string,is_dyn", FIELD_LINES)
def test_field_declarations_round_trip(decl, ctype, name, alen, is_string, is_dyn):
    line = f"\tfield:{decl};\toffset:8;\tsize:4;\tsigned:0;\n"
    fmt_text = f"name: e\nID: 1\nformat:\n{line}\nprint fmt: \"\"\n"
    fmt = EventFormat.parse(fmt_text)
    (f,) = fmt.fields
    assert (f.type, f.name, f.array_len, f.is_string, f.is_dynamic) == (ctype, name, alen, is_string, is_dyn)
    assert f.render() == line
    assert fmt.render() == f"name: e\nID: 1\nformat:\n" + "".join(c.render() for c in COMMON_FIELDS) * 0 + fmt.render().split("format:\n", 1)[1]


def test_print_fmt_with_raw_newline_is_kept():
    text = OPENAT_ENTER.replace('print fmt: "dfd', 'print fmt: "a\nb dfd')
    fmt = EventFormat.parse(text)
    assert "a\nb dfd" in fmt.print_fmt
    assert fmt.render() == text


# Malformed format texts: (text, line, what the message says)
BAD_FORMATS = [
    ("ID: 1\nformat:\n", 1, "expected 'name:'"),
    ("name: x\nformat:\n", 2, "expected 'ID:'"),
    ("name: x\nID: abc\nformat:\n", 2, "is not a number"),
    ("name: x\nID: 1\nfields:\n", 3, "expected 'format:'"),
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:x;\tsize:4;\tsigned:1;\n", 4, "malformed field line"),
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:2;\n", 4, "malformed field line"),
    ("name: x\nID: 1\nformat:\n\tfield:;\toffset:0;\tsize:4;\tsigned:1;\n", 4, "no type and name"),
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;\n", 4, "missing 'print fmt:'"),
    ("name: x\nID: 1\nformat:\ngarbage\nprint fmt: \"\"\n", 4, "expected a field line"),
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;\n"
     "\tfield:int a;\toffset:4;\tsize:4;\tsigned:1;\n\nprint fmt: \"\"\n", 0, "defined twice"),
    ("name: x\nID: 1\nformat:\n\tfield:__data_loc char[] s;\toffset:0;\tsize:8;\tsigned:1;\n"
     "\nprint fmt: \"\"\n", 0, "has size 8, not 4"),
]


@pytest.mark.parametrize("text,line,message", BAD_FORMATS)
def test_bad_format_is_a_clear_error(text, line, message):
    with pytest.raises(FormatError) as exc:
        EventFormat.parse(text)
    assert message in str(exc.value)
    if line:
        assert exc.value.line == line
        assert f"line {line}" in str(exc.value)
        assert exc.value.render().endswith("^")


def test_caret_points_at_the_fault():
    text = "name: x\nID: 1\nformat:\n\tfield:int a;\toffset:0;\tsize:4;\tsignd:1;\n"
    with pytest.raises(FormatError) as exc:
        EventFormat.parse(text)
    rendered = exc.value.render().split("\n")
    caret_col = rendered[-1].index("^")
    # "signd" matches "signed" up to its 'd': the caret is there.
    assert rendered[-2][caret_col - 4:].startswith("signd:1;")


def kernel_format_files():
    root = find_tracefs()
    if root is None:
        return []
    return sorted(glob.glob(str(root / "events" / "*" / "*" / "format")))


@pytest.mark.kernel
def test_every_kernel_format_parses_and_renders_byte_for_byte():
    files = kernel_format_files()
    if not files:
        pytest.skip("no tracefs mounted: nothing to compare with")
    checked = 0
    for path in files:
        try:
            text = open(path).read()
        except OSError:
            continue  # some format files answer EPERM/ENODEV: not ours to judge
        fmt = EventFormat.parse(text, path.split("/")[-3])
        assert fmt.render() == text, path
        assert fmt.name == path.split("/")[-2]
        checked += 1
    assert checked > 100
