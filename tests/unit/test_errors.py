"""The one error base: every parser's error shows a caret under the fault, and the command line
prints every UsertraceError as ``usertrace: ...`` with its exit status, never a traceback.

Each row is an input with its fault marked by ``^``, as the kernel's selftests mark theirs
(``check_error 'p vfs_read ^$none_var'``).  The filter rows' columns are the kernel's (from
tests/data/filter_cases.txt, where the kernel put the caret).
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import pkgutil
import subprocess
import sys

import pytest

import usertrace
from usertrace.catalog import known_events
from usertrace.cli.context import CliError, Context, ExitStatus
from usertrace.cli.main import main
from usertrace.errors import EXIT_ERROR, EXIT_SYNTAX, UsertraceError, caret
from usertrace.events.format import EventFormat, FormatError
from usertrace.filter import FilterError, compile_filter
from usertrace.sources.user_events import abi
from usertrace.sources.user_events.parse import parse_definition
from usertrace.sources.user_events.session import normalize_pattern

FIELD_LINES = ("\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
               "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n")
PATTERN_ROOM = abi.PATTERN_MAX_LEN       # bytes of a pattern the session keeps

FORMAT_HEAD = "name: x\nID: 1\nformat:\n"
FORMAT_TAIL = '\nprint fmt: ""\n'

CASES = [
    # parser        input, the fault marked with ^                                  code
    ("format",      "name: x\nID: ^one\nformat:\n" + FIELD_LINES + FORMAT_TAIL,    None),
    ("format",      FORMAT_HEAD + FIELD_LINES
                    + "\tfield:int a;\toffset:8;\tsize:4;\tsign^d:1;\n" + FORMAT_TAIL, None),
    ("format",      FORMAT_HEAD
                    + "\tfield:int a;\toffset:8^x;\tsize:4;\tsigned:1;\n" + FORMAT_TAIL, None),
    ("filter",      "^(fd == 3",                                                 "TOO_MANY_OPEN"),
    ("filter",      "fd == 3 && ^((fd == 4)",                                    "TOO_MANY_OPEN"),
    ("filter",      "nosuch ^== 1",                                              "FIELD_NOT_FOUND"),
    ("definition",  "a u32^  x",                                                 "EXTRA_SPACE"),
    ("definition",  "app^-req u32 x",                                            "BAD_NAME"),
    ("definition",  "a u32 x;\tu8 ^9y",                                          "BAD_FIELD_NAME"),
    # patterns the session's pattern slot cannot hold: the caret under the first byte too many
    ("pattern",     "user_events:" + "a" * (PATTERN_ROOM - 12) + "^" + "a" * 88, "BAD_PATTERN"),
    ("pattern",     "app_" + "a" * (PATTERN_ROOM - 2 - 4) + "^aa",               "BAD_PATTERN"),
    ("pattern",     "/" + "a" * (PATTERN_ROOM - 1 - 1) + "^aa",                  "BAD_PATTERN"),
    ("pattern",     "user_events:" + "é" * ((PATTERN_ROOM - 12) // 2) + "^éé",   "BAD_PATTERN"),
]
IDS = [f"{kind}-{k}" for k, (kind, _, _) in enumerate(CASES)]


def unmark(marked: str) -> tuple[str, str, int]:
    """(input, the line holding the fault, the fault's offset in that line)."""
    text = marked.replace("^", "", 1)
    line_start = marked.rfind("\n", 0, marked.index("^")) + 1
    line_end = text.find("\n", line_start)
    line = text[line_start: line_end if line_end >= 0 else len(text)]
    return text, line, marked.index("^") - line_start


def lseek_format() -> EventFormat:
    return known_events().get("syscalls", "sys_enter_lseek")


def parse(kind: str, text: str) -> UsertraceError:
    """The error the library raises for ``text`` in the language ``kind``."""
    with pytest.raises(UsertraceError) as info:
        if kind == "format":
            EventFormat.parse(text)
        elif kind == "filter":
            compile_filter(text, lseek_format(), nr_cpus=2)
        elif kind == "definition":
            parse_definition(text)
        elif kind == "pattern":
            normalize_pattern(text)
    return info.value


def caret_offset(rendered: str, line: str) -> int:
    """The offset in ``line`` that the caret of ``rendered`` points at: ``rendered`` shows
    ``line`` (after some prefix) and, on the next row, white space and a caret."""
    rows = rendered.split("\n")
    for k in range(len(rows) - 1):
        if rows[k].endswith(line) and "^" in rows[k + 1]:
            col = rows[k + 1].index("^")
            assert rows[k + 1][:col].strip(" \t") == "", rendered
            return col - (len(rows[k]) - len(line))
    raise AssertionError(f"no caret under {line!r} in:\n{rendered}")


@pytest.mark.parametrize("kind,marked,code", CASES, ids=IDS)
def test_the_caret_lands_under_the_fault(kind, marked, code):
    text, line, pos = unmark(marked)
    err = parse(kind, text)
    assert err.code == code
    assert err.exit_status == EXIT_SYNTAX
    assert caret_offset(err.render(), line) == pos


def run(*argv, env=None):
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env=env or {}))
    return status, out.getvalue(), err.getvalue()


def cli(kind: str, text: str, tmp_path) -> tuple[int, str, str]:
    """Run the command that reads ``text`` as ``kind``: (status, stdout, stderr)."""
    if kind == "format":
        path = tmp_path / "format"
        path.write_text(text)
        return run("format", str(path))
    if kind == "filter":
        return run("stream", "-e", "syscalls:sys_enter_lseek", "-f", text, "--", "true")
    if kind == "pattern":
        if not text.startswith("user_events:"):
            pytest.skip("the command line takes a bare -e word for syscall events only")
        # A process of its own: the user events session it attaches stays out of this one.
        env = dict(os.environ, USERTRACE_SESSION=str(tmp_path / "session"))
        r = subprocess.run([sys.executable, "-m", "usertrace", "stream", "-e", text, "--", "true"],
                           capture_output=True, text=True, env=env, timeout=60)
        return r.returncode, r.stdout, r.stderr
    pytest.skip(f"no command reads a {kind} yet")


CLI_CASES = [c for c in CASES if c[0] != "definition"]
CLI_IDS = [i for i, c in zip(IDS, CASES) if c[0] != "definition"]


@pytest.mark.parametrize("kind,marked,code", CLI_CASES, ids=CLI_IDS)
def test_the_command_line_prints_it_with_the_caret(kind, marked, code, tmp_path):
    text, line, pos = unmark(marked)
    status, out, err = cli(kind, text, tmp_path)
    assert status != 0 and out == ""
    assert err.startswith("usertrace: ") and err.endswith("\n"), err
    assert "Traceback" not in err
    assert caret_offset(err, line) == pos
    assert parse(kind, text).render().rstrip("\n") in err


@pytest.mark.parametrize("kind,marked,code", CLI_CASES, ids=CLI_IDS)
def test_input_that_does_not_parse_exits_2(kind, marked, code, tmp_path):
    text, _, _ = unmark(marked)
    status, _, _ = cli(kind, text, tmp_path)
    assert status == ExitStatus.USAGE == EXIT_SYNTAX


def test_a_long_user_events_pattern_is_an_error_not_a_traceback(tmp_path):
    # `stream -e user_events:aaa...` once ended in a traceback from deep in the session.
    pattern = "user_events:" + "a" * 200
    status, out, err = cli("pattern", pattern, tmp_path)
    assert (status, out) == (2, "")
    assert err.startswith(f"usertrace: user_events: error: Bad event pattern: longer than "
                          f"{abi.PATTERN_MAX_LEN} bytes\n  Command: {pattern}\n")
    assert err.count("\n") == 3 and "Traceback" not in err


def test_a_pattern_that_fits_is_kept():
    fits = "user_events:" + "a" * (PATTERN_ROOM - 12)
    assert normalize_pattern(fits) == fits
    with pytest.raises(UsertraceError) as info:      # a NUL: refused before the session
        normalize_pattern("app\0x")
    assert info.value.exit_status == EXIT_SYNTAX


# -- argparse writes to the injected streams -----------------------------------------------------

USAGE_CASES = [
    # argv                        status  stream    text
    (["frobnicate"],              2,      "stderr", "invalid choice: 'frobnicate'"),
    (["record", "--no-such"],     2,      "stderr", "unrecognized arguments: --no-such"),
    (["report", "-i"],            2,      "stderr", "argument -i/--input: expected one argument"),
    (["--help"],                  0,      "stdout", "usertrace record -- ls /tmp"),
    (["stat", "--help"],          0,      "stdout", "usage: usertrace stat"),
    (["--version"],               0,      "stdout", f"usertrace {usertrace.__version__}\n"),
]


@pytest.mark.parametrize("argv,status,stream,text", USAGE_CASES)
def test_argparse_output_goes_to_the_injected_streams(argv, status, stream, text, capsys):
    got, out, err = run(*argv)
    assert got == status
    assert text in {"stdout": out, "stderr": err}[stream]
    assert (out if stream == "stderr" else err) == ""
    assert capsys.readouterr() == ("", "")        # nothing reached the real streams


# -- the base and the renderer -------------------------------------------------------------------

def test_caret():
    assert caret("abc", 1) == " ^"
    assert caret("a\tbc", 3) == " \t ^"          # a tab under a tab: aligned on any terminal
    assert caret("abc", 99) == "   ^"            # clamped: just past the end
    assert caret("abc", -5) == "^"
    # the kernel's: bytes, spaces only
    assert caret("é\tx".encode(), 4, tabs=False) == "    ^"
    assert caret(b"a\tb", 2) == " \t^"


def test_render_of_the_base():
    class Oops(UsertraceError):
        pass
    plain = Oops("no such thing")
    assert (plain.render(), plain.exit_status, plain.code) == ("no such thing", EXIT_ERROR, None)
    err = FormatError("bad", 3, 4, "ab\tcd")
    assert err.render() == "line 3, column 4: bad\nab\tcd\n  \t^"
    err.path = "f.txt"
    assert err.render().startswith("f.txt: line 3, column 4: bad\n")


FILTER_RENDERS = [
    # filter                      the filter file's text after the refused write
    ('fd ==\t"3"',                'fd ==\t"3"\n       ^\nparse_error: Expecting numeric field\n\n'),
    ('comm == "é" && fd ~ 3',     # the caret column counts bytes
     'comm == "é" && fd ~ 3\n' + " " * 22
     + "^\nparse_error: Illegal operation for field type\n\n"),
]


@pytest.mark.parametrize("text,shown", FILTER_RENDERS)
def test_filter_error_render_is_still_the_kernels_text(text, shown):
    # spaces only, columns in bytes: what trace_events_filter.c writes to the filter file
    with pytest.raises(FilterError) as info:
        compile_filter(text, lseek_format(), nr_cpus=2)
    assert info.value.render() == shown


def test_cli_error_keeps_its_status():
    assert CliError("x").exit_status == ExitStatus.ERROR
    assert CliError("x", ExitStatus.USAGE).exit_status == ExitStatus.USAGE
    status, _, err = run("stream", "-P", "abc")
    assert (status, err) == (2, "usertrace: -P abc: 'abc' is not a process id\n")


# Exceptions that never leave the module that raises them (and any named _Private).
INTERNAL = {"usertrace.filter.predicate.NoFieldName",
            "usertrace.ptrace.inject.TaskGone",     # caught by the breakpoints around it
            "usertrace.sources.user_events.drain.RingFault"}   # a ring quarantined, counted


def test_every_error_class_is_a_usertrace_error():
    found = []
    for mod in pkgutil.walk_packages(usertrace.__path__, "usertrace."):
        if mod.name.endswith(".__main__"):
            continue
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) \
                    and obj.__module__ == module.__name__:
                found.append(f"{obj.__module__}.{name}")
                if found[-1] not in INTERNAL and not name.startswith("_"):
                    assert issubclass(obj, UsertraceError), found[-1]
    # the ones the issue names, at least
    for name in ("FormatError", "FilterError", "FilterMatchError", "CpulistError", "RecordError",
                 "RingBufferError", "TraceDatError", "TracefsError", "TraceReadError",
                 "PrintFmtError", "UserEventError", "TraceError", "SessionError",
                 "RegistryError", "CliError"):
        assert any(f.endswith("." + name) for f in found), name
