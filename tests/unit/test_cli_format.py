"""usertrace format and list, run in-process through main() with injected streams."""

import io

import pytest

from usertrace.cli.context import Context
from usertrace.cli.main import main


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env={}))
    return status, out.getvalue(), err.getvalue()


FORMAT_TEXT = (
    "name: app_req\nID: 1001\nformat:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
    "\tfield:u32 status;\toffset:8;\tsize:4;\tsigned:0;\n"
    "\tfield:__data_loc char[] path;\toffset:12;\tsize:4;\tsigned:0;\n\n"
    'print fmt: "status=%u path=%s", REC->status, __get_str(path)\n'
)


def test_format_file_is_rendered_again(tmp_path):
    p = tmp_path / "format"
    p.write_text(FORMAT_TEXT)
    status, out, err = run("format", str(p))
    assert (status, out, err) == (0, FORMAT_TEXT, "")


BAD = [
    # content                                          message
    ("nonsense\n",                                     "line 1, column 1: expected 'name:'"),
    (FORMAT_TEXT.replace("offset:8;", "offset:8x;"),   "line 9, column"),
    (FORMAT_TEXT.replace("print fmt", "prnt fmt"),     "expected a field line"),
]


@pytest.mark.parametrize("content,message", BAD)
def test_bad_format_file_is_a_clear_error(tmp_path, content, message):
    p = tmp_path / "format"
    p.write_text(content)
    status, out, err = run("format", str(p))
    assert status == 2 and out == ""          # a format that does not parse: exit 2
    assert err.startswith(f"usertrace: {p}: ") and message in err
    assert "Traceback" not in err and err.rstrip().endswith("^")


def test_format_of_missing_file(tmp_path):
    status, out, err = run("format", str(tmp_path / "nope"))
    assert status == 1 and "No such file or directory" in err


def test_unknown_command_is_a_usage_error():
    status, out, err = run("frobnicate")
    assert status == 2
