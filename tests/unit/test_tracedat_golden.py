"""Golden: trace.dat files that trace-cmd made from the kernel (tests/data/tracedat/README.md).

These run everywhere: the kernel's events, as trace-cmd stored them, against the report
trace-cmd printed for them at the time (and, where trace-cmd is installed, prints now).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from test_tracedat_pages import decode_trace, parse_report
from usertrace.buffer.tracedat import HEADER_EVENT_TEXT, TraceDatError, TraceDatReader, header_page_text

DATA = Path(__file__).resolve().parents[1] / "data" / "tracedat"
FACTS = json.loads((DATA / "getppid.json").read_text())
REPORT = (DATA / "getppid.report").read_text()
INSTANCE = FACTS["instance"]

try:
    import zstandard  # noqa: F401
    HAVE_ZSTD = True
except ImportError:
    HAVE_ZSTD = False

FILES = ["getppid_v7.dat", "getppid_v6.dat"] + (["getppid_v7_zstd.dat"] if HAVE_ZSTD else [])


@pytest.fixture(params=FILES)
def golden(request):
    with TraceDatReader(DATA / request.param) as r:
        yield r


def test_header_facts(golden):
    assert golden.version == (6 if "v6" in golden.path else 7)
    assert (golden.endian, golden.long_size, golden.page_size) == ("little", 8, 4096)
    assert golden.compression == (("zstd", "1.5.4") if "zstd" in golden.path else None)
    assert golden.clock == "local"
    assert golden.cpu_count == 2
    assert golden.tracer_version == "3.1.6 not-a-git-repo"
    assert golden.uname.startswith("Linux ") and FACTS["kernel"] in golden.uname


def test_metadata(golden):
    # the kernel's texts, as trace-cmd stored them, are the ones our writer generates
    assert golden.header_page == header_page_text(4096, 8)
    assert golden.header_event == HEADER_EVENT_TEXT
    assert [t.split("\n")[0] for t in golden.ftrace_formats] == ["name: print"]
    for text in golden.event_texts["syscalls"]:
        name = text.split("\n")[0].removeprefix("name: ")
        assert text == (DATA / "formats" / f"syscalls.{name}.format").read_text()
    assert sorted(golden.event_texts) == ["syscalls"]
    assert golden.kallsyms == "" and golden.printk_formats == ""
    assert golden.format_errors == []
    assert {f.name for f in golden.event_formats["syscalls"]} == {"sys_enter_getppid", "sys_exit_getppid"}
    assert golden.cmdlines[FACTS["child_pid"]] == "python3"


def test_buffers(golden):
    names = [b.name for b in golden.buffers]
    # extract keeps the empty top buffer; trace-cmd convert (the zstd file) leaves it out
    assert names == ([INSTANCE] if "zstd" in golden.path else ["", INSTANCE])
    inst = golden.buffers[-1]
    if len(golden.buffers) == 2:
        assert all(c.size == 0 for c in golden.buffers[0].cpus)
    assert inst.clock == "local" and inst.page_size == 4096
    assert [inst.num_pages(cpu) for cpu in inst.cpu_ids] == [1, 1]
    for cpu in inst.cpu_ids:
        (page,) = inst.iter_pages(cpu)
        assert len(page) == 4096


def test_events_equal_trace_cmds_report(golden):
    ours = decode_trace(golden)
    by_name = {f.name: f for f in golden.event_formats["syscalls"]}
    theirs, comms = parse_report(REPORT, by_name)
    assert ours == theirs
    assert all(golden.cmdlines[pid] == comm for pid, comm in comms.items())


def test_events_are_what_the_workload_did(golden):
    events = decode_trace(golden)
    child = [e for e in events if e.pid == FACTS["child_pid"]]
    parent = [e for e in events if e.pid == FACTS["parent_pid"]]
    assert [e.event for e in child] == ["sys_enter_getppid", "sys_exit_getppid"] * FACTS["child_calls"]
    assert [e.event for e in parent] == ["sys_enter_getppid", "sys_exit_getppid"] * FACTS["parent_calls"]
    assert {e.cpu for e in parent} == {0} and {e.cpu for e in child} == {1}
    assert {dict(e.fields)["ret"] for e in child if e.event == "sys_exit_getppid"} == {FACTS["parent_pid"]}
    assert {dict(e.fields)["ret"] for e in parent if e.event == "sys_exit_getppid"} == {FACTS["parent_ppid"]}
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_v7_sections_and_options():
    with TraceDatReader(DATA / "getppid_v7.dat") as r:
        descriptions = [s.description for s in r.sections]
        assert descriptions[:6] == ["headers", "ftrace events", "events format", "kallsyms", "printk",
                                    "command lines"]
        assert descriptions.count("options") == 3  # trace-cmd chains three options sections
        assert f"buffer flyrecord {INSTANCE}" in descriptions and descriptions[-1] == "strings"
        assert len(r.cpustats) == 5  # 2 cpus of the top buffer, the instance's title, 2 cpus
        assert r.trace_id is not None


@pytest.mark.skipif(HAVE_ZSTD, reason="the zstandard module is installed: the zstd file is read")
def test_zstd_without_zstandard_is_a_clear_error():
    with pytest.raises(TraceDatError, match=r"compressed with zstd 1\.5\.4.*'zstandard'") as exc:
        TraceDatReader(DATA / "getppid_v7_zstd.dat")
    assert exc.value.offset == 18  # where the compression header starts


@pytest.mark.skipif(shutil.which("trace-cmd") is None, reason="trace-cmd is not installed")
@pytest.mark.parametrize("name", ["getppid_v7.dat", "getppid_v6.dat", "getppid_v7_zstd.dat"])
def test_stored_report_is_what_trace_cmd_says(name):
    out = subprocess.run(["trace-cmd", "report", "-t", "-R", "-i", str(DATA / name)],
                         capture_output=True, text=True, timeout=60).stdout
    assert out == REPORT
