"""Differential: trace.dat files made by our writer, read by the real ``trace-cmd report``.

The events are the kernel's own formats (copied from this machine's tracefs into
tests/data/tracedat/formats/), records encoded by RecordCodec into pages; ``trace-cmd report
-t -R`` must show the same events with the same field values, comms, cpus, buffers and
nanosecond timestamps as our reader decodes from the same file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from test_tracedat_pages import build_pages, decode_trace, parse_report
from usertrace.buffer.tracedat import TraceDatReader, TraceDatWriter
from usertrace.events.format import EventFormat
from usertrace.events.records import Abi, RecordCodec

DATA = Path(__file__).resolve().parents[1] / "data" / "tracedat"
FORMATS = DATA / "formats"

needs_trace_cmd = pytest.mark.skipif(shutil.which("trace-cmd") is None,
                                     reason="trace-cmd is not installed (apt-get install trace-cmd)")


def load_format(name: str) -> EventFormat:
    """tests/data/tracedat/formats/SYSTEM.EVENT.format, parsed."""
    path = FORMATS / f"{name}.format"
    return EventFormat.parse(path.read_text(), name.split(".")[0])


def sample_trace(abi: Abi):
    """(formats, ftrace formats, {buffer: {cpu: [(ts, record)]}}, cmdlines): syscall-like and
    sched events, a long __data_loc string (a type_len 0 record), gaps that need time extends."""
    enter, exit_ = load_format("syscalls.sys_enter_openat"), load_format("syscalls.sys_exit_openat")
    exec_, switch = load_format("sched.sched_process_exec"), load_format("sched.sched_switch")
    getppid_exit = load_format("syscalls.sys_exit_getppid")
    printf = load_format("ftrace.print")
    c = {f.name: RecordCodec(f, abi) for f in (enter, exit_, exec_, switch, getppid_exit, printf)}
    cpu0, cpu1, inst1 = [], [], []
    ts = 7_000_123_456
    for i in range(40):
        cpu0.append((ts, c["sys_enter_openat"].encode({
            "common_pid": 1234, "__syscall_nr": 257, "dfd": 0xFFFFFF9C,
            "filename": 0x7FFD_0000_1000 + i, "flags": 0o2000000 | i, "mode": 0o644})))
        ts += 1_700 + i
        cpu0.append((ts, c["sys_exit_openat"].encode({
            "common_pid": 1234, "__syscall_nr": 257, "ret": -2 if i % 3 == 0 else 3 + i})))
        ts += 150_000_000 if i % 7 == 0 else 25_000  # 150 ms needs a time extend
        if i % 5 == 0:
            cpu1.append((ts, c["sched_switch"].encode({
                "common_pid": 0, "prev_comm": "swapper/1", "prev_pid": 0, "prev_prio": 120,
                "prev_state": 0, "next_comm": "worker", "next_pid": 77, "next_prio": 100 + i})))
            ts += 3
            cpu1.append((ts, c["sched_process_exec"].encode({
                "common_pid": 77, "filename": "/usr/bin/" + "x" * (i * 4), "pid": 77, "old_pid": 77})))
            ts += 5
            cpu1.append((ts, c["print"].encode({"common_pid": 77, "ip": 0xFFFF_FFFF_8100_0000 + i,
                                                "buf": f"hello {i}"})))
            inst1.append((ts + 1, c["sys_exit_getppid"].encode({
                "common_pid": 77, "__syscall_nr": 110, "ret": 1234})))
    formats = [enter, exit_, exec_, switch, getppid_exit]
    buffers = {"": {0: cpu0, 1: cpu1}, "inst": {1: inst1}}
    return formats, [printf], buffers, {1234: "openat_loop", 77: "worker", 0: "<idle>"}


def write_sample(path: Path, version: int, endian: str = "little", long_size: int = 8,
                 page_size: int = 4096, compression: str | None = None):
    abi = Abi("<" if endian == "little" else ">", long_size)
    formats, ftrace, buffers, cmdlines = sample_trace(abi)
    with TraceDatWriter(path, version=version, page_size=page_size, cpus=2, endian=endian,
                        long_size=long_size, events=formats, ftrace_events=ftrace, cmdlines=cmdlines,
                        compression=compression) as w:
        for name, cpus in buffers.items():
            if name:
                w.add_buffer(name)
            for cpu, records in cpus.items():
                for page in build_pages(records, page_size, abi.endian, long_size):
                    w.write_page(cpu, page, buffer=name)
    return buffers


def trace_cmd_report(path: Path) -> str:
    r = subprocess.run(["trace-cmd", "report", "-t", "-R", "-i", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


CASES = [
    pytest.param(6, "little", 8, 4096, id="v6"),
    pytest.param(7, "little", 8, 4096, id="v7"),
    pytest.param(7, "big", 8, 4096, id="v7-big-endian"),
    pytest.param(6, "big", 8, 4096, id="v6-big-endian"),
    pytest.param(7, "little", 8, 8192, id="v7-8k-pages"),
    pytest.param(7, "little", 4, 4096, id="v7-long4"),
]


@needs_trace_cmd
@pytest.mark.parametrize("version, endian, long_size, page_size", CASES)
def test_trace_cmd_reports_our_file(tmp_path, version, endian, long_size, page_size):
    path = tmp_path / "trace.dat"
    buffers = write_sample(path, version, endian, long_size, page_size)
    with TraceDatReader(path) as r:
        ours = decode_trace(r)
        by_name = {f.name: f for fs in r.event_formats.values() for f in fs}
        cmdlines = r.cmdlines
    theirs, comms = parse_report(trace_cmd_report(path), by_name)
    assert len(ours) == sum(len(recs) for cpus in buffers.values() for recs in cpus.values())
    assert theirs == ours
    assert comms == {pid: cmdlines[pid] for pid in comms}
    assert {e.buffer for e in theirs} == {"", "inst"}


@needs_trace_cmd
@pytest.mark.parametrize("version", [6, 7])
def test_trace_cmd_validates_our_file(tmp_path, version):
    path = tmp_path / "trace.dat"
    write_sample(path, version)
    r = subprocess.run(["trace-cmd", "dump", "-v", "-i", str(path)], capture_output=True, text=True, timeout=60)
    assert "is a valid trace-cmd file" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["trace-cmd", "dump", "--clock", "--summary", "-i", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert "[mono]" in r.stdout or '"mono" clock' in r.stdout, r.stdout
    assert "2 cpus" in r.stdout or "2 [CPUs with tracing data]" in r.stdout, r.stdout


@needs_trace_cmd
@pytest.mark.parametrize("version", [6, 7])
def test_trace_cmd_reads_an_empty_trace(tmp_path, version):
    path = tmp_path / "trace.dat"
    TraceDatWriter(path, version=version, cpus=4).close()
    assert trace_cmd_report(path) == "cpus=4\n"


@needs_trace_cmd
def test_trace_cmd_shows_time_as_seconds_of_the_mono_clock(tmp_path):
    """With TRACECLOCK [mono], report prints sec.usec (our timestamps are CLOCK_MONOTONIC ns)."""
    path = tmp_path / "trace.dat"
    write_sample(path, 7)
    out = subprocess.run(["trace-cmd", "report", "-i", str(path)], capture_output=True, text=True,
                         timeout=60).stdout
    first = next(line for line in out.splitlines() if "sys_enter_openat" in line)
    assert "7.000123:" in first
    assert "openat_loop-1234" in first


# -- with the real ring buffer (usertrace.buffer.ring) ------------------------------------------

def ring_trace(path: Path, version: int, abi: Abi):
    """Events written through RingBuffer per cpu, its pages into a trace.dat."""
    from usertrace.buffer.layout import PageLayout
    from usertrace.buffer.ring import RingBuffer

    formats, ftrace, buffers, cmdlines = sample_trace(abi)
    layout = PageLayout(4096, abi)
    with TraceDatWriter(path, version=version, cpus=2, endian="little" if abi.endian == "<" else "big",
                        long_size=abi.long_size, events=formats, ftrace_events=ftrace,
                        cmdlines=cmdlines) as w:
        for name, cpus in buffers.items():
            if name:
                w.add_buffer(name)
            for cpu, records in cpus.items():
                ring = RingBuffer(layout=layout, nr_pages=64, overwrite=False)
                for ts, rec in records:
                    assert ring.write(ts, rec)
                while (page := ring.read_page()) is not None:
                    w.write_page(cpu, page, buffer=name)
    return buffers


def decode_with_ring(r: TraceDatReader):
    """Our reader's pages decoded by the ring buffer's own page reader (layout from header_page)."""
    from usertrace.buffer.layout import PageLayout
    from usertrace.buffer.reader import PageReader

    from test_tracedat_pages import Ev, _norm

    abi = Abi("<" if r.endian == "little" else ">", r.long_size)
    reader = PageReader(PageLayout.from_header_page(r.header_page, abi))
    fmts = r.formats_by_id()
    codecs = {i: RecordCodec(f, abi) for i, f in fmts.items()}
    out = []
    for buf in r.buffers:
        pages = {cpu: buf.iter_pages(cpu) for cpu in buf.cpu_ids}
        for ts, cpu, payload in reader.merge(pages):
            fmt_id = int.from_bytes(payload[:2], r.endian)
            d = codecs[fmt_id].decode(payload)
            f = fmts[fmt_id]
            out.append(Ev(ts, buf.name, cpu, d["common_pid"], f.name,
                          tuple((x.name, _norm(x, d[x.name])) for x in f.fields)))
    return sorted(out)


@needs_trace_cmd
@pytest.mark.parametrize("version", [6, 7])
def test_trace_cmd_reports_ring_buffer_pages(tmp_path, version):
    path = tmp_path / "trace.dat"
    buffers = ring_trace(path, version, Abi("<", 8))
    with TraceDatReader(path) as r:
        ours = decode_with_ring(r)
        by_name = {f.name: f for fs in r.event_formats.values() for f in fs}
        assert decode_trace(r) == ours
    theirs, _ = parse_report(trace_cmd_report(path), by_name)
    assert len(ours) == sum(len(recs) for cpus in buffers.values() for recs in cpus.values())
    assert theirs == ours
