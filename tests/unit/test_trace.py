"""The trace reader (usertrace.trace.Trace): every buffer and cpu in time order, each buffer
with its own page layout, selection, damage skipped and counted; its text and JSON lines
against the generic (dict) paths, and against trace-cmd where it is installed.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from test_tracedat_interop import load_format, trace_cmd_report, write_sample
from test_tracedat_pages import Ev, _norm, build_pages, decode_trace, parse_report
from usertrace.buffer.tracedat import TraceDatReader, TraceDatWriter
from usertrace.catalog import known_events
from usertrace.cli.context import Context
from usertrace.cli.main import main
from usertrace.events.records import Abi, RecordCodec
from usertrace.output.jsonl import JsonRenderer, event_line
from usertrace.output.text import TextFormatter, TextRenderer
from usertrace.trace import Trace, TraceReadError

needs_trace_cmd = pytest.mark.skipif(shutil.which("trace-cmd") is None,
                                     reason="trace-cmd is not installed (apt-get install trace-cmd)")

SAMPLES = [
    pytest.param(dict(version=6), id="v6"),
    pytest.param(dict(version=7), id="v7"),
    pytest.param(dict(version=7, compression="zlib"), id="v7-zlib"),
    pytest.param(dict(version=7, page_size=8192), id="v7-8k-pages"),
    pytest.param(dict(version=7, long_size=4), id="v7-long4"),
]


def as_ev(e) -> Ev:
    fmt = e.format
    return Ev(e.ts_ns, e.buffer, e.cpu, e.pid, fmt.name,
              tuple((f.name, _norm(f, e.values[f.name])) for f in fmt.fields))


def rank_key(t: Trace):
    order = {b.name: i for i, b in enumerate(t.buffers)}
    return lambda e: (e.ts_ns, e.cpu, order[e.buffer])


@pytest.mark.parametrize("kw", SAMPLES)
def test_every_record_once_in_time_order(tmp_path, kw):
    path = tmp_path / "t.dat"
    buffers = write_sample(path, **kw)
    with Trace(path) as t:
        evs = list(t.events())
        ref = decode_trace(t.file)          # the test's own page walker and RecordCodec
        assert t.problems.total == 0
    assert len(evs) == sum(len(r) for cpus in buffers.values() for r in cpus.values())
    assert sorted(as_ev(e) for e in evs) == ref
    # time order; equal times: the lower cpu first, then the buffer that comes first
    keys = [rank_key(t)(e) for e in evs]
    assert keys == sorted(keys)
    assert {e.buffer for e in evs} == {"", "inst"}


def test_each_buffer_has_its_own_page_size(tmp_path):
    """A v7 file whose instance has 16 KB pages and the top buffer 4 KB ones (trace-cmd
    extract -B of an instance with another buffer_subbuf_size_kb writes such files)."""
    abi = Abi("<", 8)
    enter, exit_ = load_format("syscalls.sys_enter_openat"), load_format("syscalls.sys_exit_openat")
    ce, cx = RecordCodec(enter, abi), RecordCodec(exit_, abi)
    top = [(1000 + 10 * i, ce.encode({"common_pid": 5, "dfd": i, "flags": i})) for i in range(300)]
    inst = [(1005 + 10 * i, cx.encode({"common_pid": 6, "ret": -i})) for i in range(900)]
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, version=7, cpus=1, events=[enter, exit_],
                        cmdlines={5: "five", 6: "six"}) as w:
        w.add_buffer("big", page_size=16384)
        for p in build_pages(top, 4096):
            w.write_page(0, p)
        for p in build_pages(inst, 16384):
            w.write_page(0, p, buffer="big")
    with Trace(path) as t:
        assert [(b.name, b.page_size, b.layout.page_size) for b in t.buffers] == \
            [("", 4096, 4096), ("big", 16384, 16384)]
        assert t.buffer("big").num_pages(0) == len(build_pages(inst, 16384)) == 2
        evs = list(t.events())
        assert t.counts() == (1200, 0)
        assert [e.ts_ns for e in evs] == sorted(e.ts_ns for e in evs)
        assert [e.values["ret"] for e in evs if e.buffer == "big"] == [-i for i in range(900)]
        assert len(list(t.buffer("big").events())) == 900
        assert len(list(t.buffer("").events(cpu=0))) == 300
        if shutil.which("trace-cmd"):
            by_name = {f.name: f for f in t.formats.values()}
            theirs, _ = parse_report(trace_cmd_report(path), by_name)
            assert theirs == sorted(as_ev(e) for e in evs)


def test_counts_from_the_writer_equal_a_count_of_the_pages(tmp_path):
    path = tmp_path / "t.dat"
    write_sample(path, 7)
    with Trace(path) as t:
        stored = t.counts()
        assert len(t.file.cpustats) == 2 + 1 + 2     # 2 cpus, the instance's title, 2 cpus
        t.file.options = [o for o in t.file.options if o[0] != 2]   # no CPUSTAT: count
        assert t.counts() == stored == (len(list(t.events())), 0)


GOLDEN = Path(__file__).resolve().parents[1] / "data" / "tracedat"


@pytest.mark.parametrize("name", ["getppid_v6.dat", "getppid_v7.dat"])
def test_trace_cmd_files_are_counted_from_their_pages(name):
    with Trace(GOLDEN / name) as t:
        # trace-cmd's CPUSTATs say what was read, not what the file holds: not used
        assert t.counts() == (14, 0)
        assert [b.name for b in t.buffers] == ["usertrace-golden"]   # the empty top one left out
        assert t.ncpus == 2


# -- selection ---------------------------------------------------------------------------------

@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "t.dat"
    write_sample(path, 7)
    with Trace(path) as t:
        yield t


def names(evs):
    return {e.format.name for e in evs}


SELECTIONS = [
    # select() keywords                                          what every event must be
    (dict(events=[("sys_exit_openat", "ret < 0")]),              lambda e: e.format.name == "sys_exit_openat" and e.values["ret"] < 0),
    (dict(events=[("syscalls", None)]),                          lambda e: e.format.system == "syscalls"),
    (dict(events=[("sched:*", "next_prio > 120")]),              lambda e: e.format.system == "sched" and (e.format.name == "sched_process_exec" or e.values["next_prio"] > 120)),
    (dict(events=[("sched_switch", "COMM == \"<idle>\"")]),      lambda e: e.format.name == "sched_switch" and e.pid == 0),
    (dict(pids=[77]),                                            lambda e: e.pid == 77),
    (dict(cpus=[1]),                                             lambda e: e.cpu == 1),
    (dict(buffers=["inst"]),                                     lambda e: e.buffer == "inst"),
    (dict(start_ns=7_500_000_000, end_ns=7_900_000_000),         lambda e: 7_500_000_000 <= e.ts_ns <= 7_900_000_000),
    (dict(events=[("sys_enter_openat", "CPU == 0")], pids=[1234]), lambda e: e.format.name == "sys_enter_openat"),
]


@pytest.mark.parametrize("kw, ok", SELECTIONS)
def test_selection(sample, kw, ok):
    every = list(sample.events())
    chosen = list(sample.events(sample.select(**kw)))
    assert chosen and all(ok(e) for e in chosen)
    assert chosen == [e for e in every if ok(e)]        # none left out


def test_a_pattern_that_names_nothing_or_a_ustring_filter_is_refused(sample):
    with pytest.raises(TraceReadError, match="no event of the file matches 'nosuch'"):
        sample.select(events=[("nosuch", None)])
    with pytest.raises(TraceReadError, match=r"\.ustring reads the traced process's memory"):
        sample.select(events=[("sys_enter_openat", 'filename.ustring ~ "/etc/*"')])


# -- the renderers against the generic paths ---------------------------------------------------

@pytest.mark.parametrize("kw", SAMPLES)
def test_text_and_json_lines_equal_the_generic_ones(tmp_path, kw):
    path = tmp_path / "t.dat"
    write_sample(path, **kw)
    with Trace(path) as t:
        evs = list(t.events())
        text = [line for batch in t.batches(TextRenderer(t)) for line in batch]
        lines = [line for batch in t.batches(JsonRenderer(t)) for line in batch]
    generic = TextFormatter()
    assert text == [generic.line(e.format, e.values, e.comm, e.cpu, e.ts_ns) + "\n" for e in evs]
    assert lines == [event_line(e) + "\n" for e in evs]
    assert all(json.loads(line)["event"] for line in lines)


def test_syscall_lines_equal_the_syscall_sources_printer():
    """The compiled syscall text (output/syscall_text.py) against the syscall source's own
    printer, for every syscall event and argument values around the decimal/hex edge."""
    from usertrace.output.syscall_text import syscall_row_printer
    from usertrace.sources.syscalls.events import syscall_printer

    values = [0, 1, 9, 10, 11, 0xFFFFFF9C, 2**63, 2**64 - 1]
    for fmt in known_events():
        if fmt.system != "syscalls":
            continue
        old, new = syscall_printer(fmt), syscall_row_printer(fmt)
        assert new is not None
        for k, v in enumerate(values):
            record = {f.name: values[(k + i) % len(values)] for i, f in enumerate(fmt.fields)}
            if "ret" in record:
                record["ret"] = v - 2**64 if v >= 2**63 else v
            assert new.render(tuple(record[n] for n in new.fields)) == old(fmt, record)


# -- damage ------------------------------------------------------------------------------------

def one_buffer(path, records, events, cmdlines=None, **kw):
    with TraceDatWriter(path, version=7, cpus=1, events=events, cmdlines=cmdlines or {}, **kw) as w:
        for p in build_pages(records):
            w.write_page(0, p)


def report(path, *args):
    out, err = io.StringIO(), io.StringIO()
    status = main(["report", "-i", str(path), *args], Context(stdout=out, stderr=err, env={}))
    return status, out.getvalue(), err.getvalue()


def body(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_a_data_loc_outside_its_record_is_one_bad_line(tmp_path):
    exec_ = load_format("sched.sched_process_exec")
    c = RecordCodec(exec_, Abi())
    good = c.encode({"common_pid": 7, "filename": "/bin/true", "pid": 7, "old_pid": 7})
    bad = bytearray(good)
    struct.pack_into("<I", bad, exec_.field("filename").offset, 200 << 16 | 20)
    path = tmp_path / "t.dat"
    one_buffer(path, [(1000, good), (2000, bytes(bad)), (3000, good)], [exec_], {7: "seven"})
    status, out, err = report(path)
    lines = body(out)
    assert status == 0 and len(lines) == 3
    assert lines[1].endswith(": sched_process_exec: [FAILED TO PARSE]")
    assert "seven-7" in lines[1]
    assert lines[0].endswith("filename=/bin/true pid=7 old_pid=7") and lines[2] == lines[0].replace(".000001", ".000003")
    assert "1 record" in err and "event sched:sched_process_exec cannot be decoded: field filename" in err
    assert "points at bytes 20..220 outside the record" in err and "offset 56 (0x38)" in err
    status, out, err = report(path, "--json")
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o.get("error", "")[:14] for o in objs] == ["", "field filename", ""]
    assert objs[1]["comm"] == "seven" and objs[1]["event"] == "sched_process_exec"


def test_a_damaged_page_keeps_the_events_before_the_fault(tmp_path):
    fmt = load_format("syscalls.sys_exit_getppid")
    c = RecordCodec(fmt, Abi())
    recs = [(1000 + i, c.encode({"common_pid": 3, "ret": i})) for i in range(10)]
    path = tmp_path / "t.dat"
    one_buffer(path, recs, [fmt], {3: "three"})
    raw = bytearray(path.read_bytes())
    with TraceDatReader(path) as r:
        page_at = r.buffer("").cpus[0].offset
    struct.pack_into("<I", raw, page_at + 16 + 9 * 7 * 4, 0x3F << 5 | 28)   # the last event: past the commit
    path.write_bytes(bytes(raw))
    status, out, err = report(path)
    assert status == 0
    assert [line.rsplit(" ", 1)[1] for line in body(out)] == [f"0x{i}" for i in range(9)]
    assert "1 damaged page" in err and "runs past the commit" in err
    assert "(the rest of the page is skipped)" in err and f"file offset {page_at}" in err


def test_an_unreadable_compressed_chunk_ends_its_cpu_only(tmp_path):
    path = tmp_path / "t.dat"
    write_sample(path, 7, compression="zlib")
    with Trace(path) as t:
        every = list(t.events())
        cd = t.buffer("").cpus
        at = t.file.buffer("").cpu(0).offset
    raw = bytearray(path.read_bytes())
    raw[at + 12:at + 20] = b"garbage!"          # inside the first chunk's zlib stream
    path.write_bytes(bytes(raw))
    with Trace(path) as t:
        left = list(t.events())
        assert t.problems.streams == 1
        assert "the rest of the cpu's pages cannot be read" in str(t.problems.first[0])
    assert cd == [0, 1]
    assert left == [e for e in every if not (e.buffer == "" and e.cpu == 0)]


def test_failed_formats_and_unknown_ids_keep_the_task(tmp_path):
    """trace-cmd names an event whose format does not parse and prints [FAILED TO PARSE];
    an id that no format has prints as unknown.  Both with their own comm-pid."""
    reg = known_events()
    x = reg.get("syscalls", "sys_exit_getppid")
    broken = (x.render().replace("name: sys_exit_getppid", "name: broken")
              .replace(f"ID: {x.id}", "ID: 4242")
              .replace("\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;", "\tfield:long ret"))
    recs = [(2000, struct.pack("<HBBii4xq", x.id, 0, 0, 42, 110, 7)),
            (5000, struct.pack("<HBBii4xq", 4242, 0, 0, 42, 110, 7)),
            (6000, struct.pack("<HBBii4xq", 999, 1, 0, 42, 110, 7))]
    path = tmp_path / "t.dat"
    one_buffer(path, recs, [("syscalls", x.render()), ("syscalls", broken)], {42: "abc"})
    status, out, err = report(path)
    lines = body(out)
    assert lines[1] == "             abc-42      [000] .....     0.000005: broken: [FAILED TO PARSE]"
    assert lines[2] == "             abc-42      [000] d....     0.000006: [UNKNOWN EVENT TYPE 999]"
    assert "event syscalls:broken (ID 4242): its format does not parse: line 10" in err
    if shutil.which("trace-cmd"):
        theirs = trace_cmd_report(path).splitlines()
        assert "abc-42 " in theirs[2] and " broken: " in theirs[2]


def test_a_comm_that_is_not_utf8_goes_out_as_its_bytes(tmp_path):
    fmt = load_format("syscalls.sys_exit_getppid")
    c = RecordCodec(fmt, Abi())
    path = tmp_path / "t.dat"
    comm = b"\xff\xfeab\xc3".decode("utf-8", "surrogateescape")
    one_buffer(path, [(1000, c.encode({"common_pid": 9, "ret": 1}))], [fmt], {9: comm})
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": sys.path[0]}
    import os
    env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for args in ([], ["--json"]):
        r = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(path), *args],
                           capture_output=True, env=env, timeout=60)
        assert r.returncode == 0 and r.stderr == b"", r.stderr
        assert b"\xff\xfeab\xc3" in r.stdout
    if shutil.which("trace-cmd"):
        theirs = subprocess.run(["trace-cmd", "report", "-i", str(path)], capture_output=True,
                                timeout=60).stdout
        assert b"\xff\xfeab\xc3-9" in theirs
        ours = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(path)],
                              capture_output=True, env=env, timeout=60).stdout
        assert b"\xff\xfeab\xc3-9 " in ours


def test_count_walk_equals_the_decoding_walk(tmp_path):
    """PageReader.count() walks as scan() does, counting only: the same numbers, also up to
    a fault (partial) on pages damaged at every word."""
    from usertrace.buffer.layout import RingBufferError
    from usertrace.buffer.reader import PageReader

    path = tmp_path / "t.dat"
    write_sample(path, 7, page_size=1024)
    with Trace(path) as t:
        pages = [(b.layout, p) for b in t.buffers for cpu in b.cpus for p in b.pages(cpu)]
    assert len(pages) > 5
    for layout, page in pages:
        r = PageReader(layout)
        d = r.scan(page)
        assert r.count(page) == (len(d.events), max(d.missed_events, 0))
        for at in range(16, 16 + d.commit, 4):
            bad = bytearray(page)
            bad[at:at + 4] = struct.pack("<I", 0x1F << 5 | (at // 4) % 32)
            d = r.scan(bytes(bad), partial=True)
            assert r.count(bytes(bad), partial=True) == (len(d.events), max(d.missed_events, 0))
            if d.error is not None:
                with pytest.raises(RingBufferError):
                    r.count(bytes(bad))


def test_a_record_too_short_for_a_common_header(tmp_path):
    fmt = load_format("syscalls.sys_exit_getppid")
    c = RecordCodec(fmt, Abi())
    path = tmp_path / "t.dat"
    one_buffer(path, [(1000, c.encode({"common_pid": 3, "ret": 1})), (2000, b"abcd"),
                      (3000, c.encode({"common_pid": 3, "ret": 2}))], [fmt], {3: "three"})
    status, out, err = report(path)
    assert body(out) == [
        "           three-3       [000] .....     0.000001: sys_getppid -> 0x1",
        "           <...>-0       [000] .....     0.000002: [FAILED TO PARSE]",
        "           three-3       [000] .....     0.000003: sys_getppid -> 0x2"]
    assert "a record cannot be decoded: record of 4 bytes has no common header" in err
    status, out, err = report(path, "-P", "3")          # selected away, still counted
    assert len(body(out)) == 2 and "1 record" in err
