"""usertrace report's options, in-process through main(): selection (-e/-f, -P, --cpu,
--start/--end), their errors, the output in chunks as it is made, progress on a terminal."""

from __future__ import annotations

import io
import json

import pytest

from test_tracedat_interop import load_format, write_sample
from test_tracedat_pages import build_pages
from usertrace.buffer.tracedat import TraceDatWriter
from usertrace.cli import report as report_cli
from usertrace.cli.context import Context
from usertrace.cli.main import main
from usertrace.events.records import Abi, RecordCodec
from usertrace.trace import Trace


def run(*argv, stderr=None, stdout=None):
    out, err = stdout or io.StringIO(), stderr or io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env={}))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "t.dat"
    write_sample(path, 7)
    return str(path)


def events(path, *args):
    status, out, err = run("report", "-i", path, "--json", *args)
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def body(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


SELECT = [
    # options                                                  what every event must be
    (["-e", "sys_exit_openat", "-f", "ret < 0"],               lambda e: e["event"] == "sys_exit_openat" and e["fields"]["ret"] < 0),
    (["-e", "sched", "-e", "sys_enter_openat"],                lambda e: e["system"] == "sched" or e["event"] == "sys_enter_openat"),
    (["-e", "sched:*", "-f", "next_prio > 110"],               lambda e: e["system"] == "sched" and e["fields"].get("next_prio", 999) > 110),
    (["-P", "77"],                                             lambda e: e["pid"] == 77),
    (["-P", "0,77", "--cpu", "1"],                             lambda e: e["pid"] in (0, 77) and e["cpu"] == 1),
    (["--cpu", "0-1"],                                         lambda e: True),
    (["--start", "7.5", "--end", "8.100001"],                  lambda e: 7_499_999_500 <= e["ts_ns"] <= 8_100_001_499),
    (["--start", "7.500000001"],                               lambda e: e["ts_ns"] >= 7_500_000_001),
    # -e as strace writes it, as record reads it: a call's two events, classes, lists
    (["-e", "openat"],                                         lambda e: e["event"] in ("sys_enter_openat", "sys_exit_openat")),
    (["-e", "trace=%file"],                                    lambda e: e["event"] in ("sys_enter_openat", "sys_exit_openat")),
    (["-e", "openat,close", "-e", "sched"],                    lambda e: e["event"] in ("sys_enter_openat", "sys_exit_openat") or e["system"] == "sched"),
]


@pytest.mark.parametrize("args, ok", SELECT)
def test_selection(sample, args, ok):
    every = events(sample)
    chosen = events(sample, *args)
    assert chosen and chosen == [e for e in every if ok(e)]


def test_selection_in_text_keeps_the_header_of_the_whole_file(sample):
    status, out, err = run("report", "-i", sample, "-P", "77")
    whole = run("report", "-i", sample)[1]
    assert out.splitlines()[:12] == whole.splitlines()[:12]
    assert body(out) == [line for line in body(whole) if "-77 " in line]


def test_start_and_end_as_the_text_prints_them(sample):
    lines = body(run("report", "-i", sample)[1])
    stamps = [line.split("]", 1)[1].split()[1].rstrip(":") for line in lines]
    first, last = stamps[10], stamps[20]
    chosen = body(run("report", "-i", sample, "--start", first, "--end", last)[1])
    assert chosen == [line for line, s in zip(lines, stamps) if first <= s.rjust(len(first)) <= last] \
        or chosen == lines[10:21]
    assert chosen[0] == lines[10] and chosen[-1] == lines[20]


BAD = [
    # argv                                            status  message
    (["--cpu", "x"],                                  2,      "--cpu x: 'x' is not a number or a range"),
    (["--cpu", "3-1"],                                2,      "bad range '3-1'"),
    (["-P", "-5"],                                    2,      "-P -5: '-5' is not a number"),
    (["--start", "1.2.3"],                            2,      "--start '1.2.3': not a time in seconds"),
    (["--end", "soon"],                               2,      "--end 'soon': not a time in seconds"),
    (["-f", "ret < 0"],                               2,      "a filter applies to the -e before it"),
    (["-e", "nosuch"],                                1,      "no event of the file matches 'nosuch'"),
    (["-e", "close"],                                 1,      "no event of the file matches 'close'"),
    (["-e", "%bogus"],                                1,      "invalid class '%bogus'"),
    (["-e", "sys_exit_openat", "-f", "ret <"],        2,      "^"),
    (["-e", "sys_enter_openat", "-f", 'filename.ustring ~ "x"'], 1, ".ustring reads the traced process's memory"),
]


@pytest.mark.parametrize("args, status, message", BAD)
def test_bad_options(sample, args, status, message, capsys):
    got, out, err = run("report", "-i", sample, *args)
    err += capsys.readouterr().err          # argparse writes its usage errors itself
    assert got == status and message in err and "Traceback" not in err
    assert out == ""


class Recorder(io.StringIO):
    def __init__(self, tty=False):
        super().__init__()
        self.writes = []
        self.tty = tty

    def write(self, s):
        self.writes.append(s)
        return super().write(s)

    def isatty(self):
        return self.tty


@pytest.fixture
def many_pages(tmp_path):
    fmt = load_format("syscalls.sys_exit_getppid")
    c = RecordCodec(fmt, Abi())
    recs = [(10**9 + 1000 * i, c.encode({"common_pid": 4, "ret": i})) for i in range(6000)]
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, cpus=1, page_size=1024, events=[fmt], cmdlines={4: "four"}) as w:
        for p in build_pages(recs, 1024):
            w.write_page(0, p)
    return str(path)


def test_lines_go_out_in_chunks_as_they_are_made(many_pages, monkeypatch):
    monkeypatch.setattr(report_cli, "CHUNK", 10_000)
    out = Recorder()
    status, text, err = run("report", "-i", many_pages, stdout=out)
    assert status == 0 and len(body(text)) == 6000
    assert out.writes[0].startswith("# tracer: nop") and len(out.writes[0].splitlines()) == 12
    assert body(out.writes[1])[0].endswith(" sys_getppid -> 0x0")   # the first page, at once
    assert 10 < len(out.writes) < 100


def test_progress_on_a_terminal_only(many_pages, monkeypatch):
    monkeypatch.setattr(report_cli, "PROGRESS_AFTER", 0)
    monkeypatch.setattr(report_cli, "PROGRESS_EVERY", 0)
    tty = Recorder(tty=True)
    status, text, err = run("report", "-i", many_pages, stderr=tty)
    assert status == 0
    shown = [w for w in tty.writes if w.startswith("\rusertrace report:")]
    with Trace(many_pages) as t:
        pages = t.num_pages()
    assert pages > 128 and shown and all(w.endswith(f"% of {pages} pages") for w in shown)
    assert tty.writes[-1] == "\r\033[K"
    status, text, err = run("report", "-i", many_pages)      # not a terminal: nothing
    assert err == ""
