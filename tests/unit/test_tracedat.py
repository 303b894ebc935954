"""trace.dat written by us and read back by us: round trips, the bytes themselves, bad input."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usertrace.buffer.safe_file import OutputFileError
from usertrace.buffer.tracedat import (
    HEADER_EVENT_TEXT,
    Option,
    TraceDatError,
    TraceDatReader,
    TraceDatWriter,
    header_page_text,
)
from usertrace.events.format import EventFormat

FORMATS = Path(__file__).resolve().parents[1] / "data" / "tracedat" / "formats"


def fmt(name: str) -> EventFormat:
    return EventFormat.parse((FORMATS / f"{name}.format").read_text(), name.split(".")[0])


def page(cpu: int, n: int, page_size: int = 4096) -> bytes:
    """A page whose bytes say which cpu and which page it is."""
    head = struct.pack("<QQ", 1_000_000 * (n + 1) + cpu, 8) + struct.pack("<II", cpu, n)
    return head + bytes((cpu * 31 + n * 7 + i) & 0xFF for i in range(page_size - len(head)))


def write_file(path, version=7, *, cpus=2, pages=None, buffers=None, page_size=4096, **kw):
    """A file with ``pages`` {cpu: count} in the top buffer and ``buffers`` {name: (cpus, clock, {cpu: count})}."""
    pages = {0: 2, 1: 1} if pages is None else pages
    kw.setdefault("uname", "Linux testhost 6.18.0 x86_64")
    w = TraceDatWriter(path, version=version, cpus=cpus, page_size=page_size, **kw)
    expect = {"": {cpu: [] for cpu in range(cpus)}}
    for name, (bcpus, clock, _) in (buffers or {}).items():
        w.add_buffer(name, bcpus, clock)
        expect[name] = {cpu: [] for cpu in range(bcpus)}
    plan = [("", cpu, n) for cpu, n in pages.items()]
    plan += [(name, cpu, n) for name, (_, _, bp) in (buffers or {}).items() for cpu, n in bp.items()]
    most = max((n for _, _, n in plan), default=0)
    for i in range(most):  # interleaved over time, as a recorder hands them over
        for name, cpu, n in plan:
            if i < n:
                p = page(cpu + 16 * len(name), i, page_size)
                w.write_page(cpu, p, buffer=name)
                expect[name][cpu].append(p)
    w.close()
    return expect


def read_pages(r: TraceDatReader) -> dict:
    return {b.name: {cpu: list(b.iter_pages(cpu)) for cpu in b.cpu_ids} for b in r.buffers}


# -- round trips ---------------------------------------------------------------------------------

ROUND_TRIP = [
    pytest.param(dict(version=6), id="v6"),
    pytest.param(dict(version=7), id="v7"),
    pytest.param(dict(version=7, compression="zlib"), id="v7-zlib"),
    pytest.param(dict(version=6, endian="big", long_size=4), id="v6-big-long4"),
    pytest.param(dict(version=7, endian="big"), id="v7-big"),
    pytest.param(dict(version=7, page_size=16384), id="v7-16k"),
    pytest.param(dict(version=6, page_size=65536, cpus=1, pages={0: 3}), id="v6-64k-1cpu"),
    pytest.param(dict(version=7, pages={}), id="v7-no-pages"),
    pytest.param(dict(version=6, pages={1: 1}), id="v6-cpu0-empty"),
]


@pytest.mark.parametrize("kw", ROUND_TRIP)
def test_round_trip(tmp_path, kw):
    kw = dict(kw)
    path = tmp_path / "t.dat"
    events = [fmt("syscalls.sys_enter_openat"), ("syscalls", (FORMATS / "syscalls.sys_exit_openat.format").read_text()),
              fmt("sched.sched_switch")]
    expect = write_file(path, events=events, ftrace_events=[fmt("ftrace.print")],
                        cmdlines={1: "init", 4242: "a comm with spaces", 77: "x"},
                        kallsyms="ffffffff81000000 T _stext\n", printk_formats='0xffffffff8 : "hi"\n',
                        clock="mono", **kw)
    with TraceDatReader(path) as r:
        assert r.version == kw.get("version")
        assert r.endian == kw.get("endian", "little")
        assert r.long_size == kw.get("long_size", 8)
        assert r.page_size == kw.get("page_size", 4096)
        assert r.compression == (("zlib", r.compression[1]) if kw.get("compression") else None)
        assert r.header_page == header_page_text(r.page_size, r.long_size)
        assert r.header_event == HEADER_EVENT_TEXT
        assert r.ftrace_formats == [fmt("ftrace.print").render()]
        assert list(r.event_texts) == ["syscalls", "sched"]
        assert r.event_formats["syscalls"] == [fmt("syscalls.sys_enter_openat"), fmt("syscalls.sys_exit_openat")]
        assert r.event_formats["sched"] == [fmt("sched.sched_switch")]
        assert r.event_formats["ftrace"] == [fmt("ftrace.print")]
        assert r.kallsyms == "ffffffff81000000 T _stext\n"
        assert r.printk_formats == '0xffffffff8 : "hi"\n'
        assert r.cmdlines == {1: "init", 4242: "a comm with spaces", 77: "x"}
        assert r.clock == "mono"
        assert r.uname == "Linux testhost 6.18.0 x86_64"
        assert r.tracer_version.startswith("usertrace ")
        assert r.cpu_count == kw.get("cpus", 2)
        assert read_pages(r) == expect
        assert all(b.clock == "mono" for b in r.buffers)


@pytest.mark.parametrize("version", [6, 7])
def test_round_trip_instances(tmp_path, version):
    path = tmp_path / "t.dat"
    cpus = 2 if version == 6 else 3
    buffers = {"first": (cpus, "global", {0: 1, 1: 3}), "second": (2, None, {})}
    expect = write_file(path, version, buffers=buffers, clock="mono")
    with TraceDatReader(path) as r:
        assert [b.name for b in r.buffers] == ["", "first", "second"]
        assert [b.clock for b in r.buffers] == ["mono", "global", "mono"]
        assert [b.cpu_ids for b in r.buffers] == [[0, 1], list(range(cpus)), [0, 1]]
        assert read_pages(r) == expect
        assert r.buffer("first").num_pages(1) == 3
        assert list(r.iter_pages(1, buffer="first")) == expect["first"][1]
        with pytest.raises(TraceDatError, match="no buffer 'third'"):
            r.buffer("third")
        with pytest.raises(TraceDatError, match="no data for cpu 7"):
            r.buffer("first").iter_pages(7)


def test_extra_options_round_trip(tmp_path):
    path = tmp_path / "t.dat"
    w = TraceDatWriter(path, cpus=1)
    w.add_option(Option.CPUSTAT, b"CPU: 0\nentries: 5\n\0")
    w.add_option(Option.DATE, b"0x1234\0")
    w.add_option(40, b"\x01\x02")  # an option trace-cmd does not know is skipped by it
    w.close()
    with TraceDatReader(path) as r:
        assert r.cpustats == ["CPU: 0\nentries: 5\n"]
        assert r.option(Option.DATE) == b"0x1234\0"
        assert r.option(40) == b"\x01\x02"
        assert r.option(Option.TRACECLOCK) == b"[mono]\n\0"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.sampled_from([6, 7]), compression=st.sampled_from([None, "zlib"]),
       writes=st.lists(st.tuples(st.integers(0, 2), st.binary(min_size=1, max_size=64)), max_size=30))
def test_pages_come_back_identical(tmp_path_factory, version, compression, writes):
    if version == 6:
        compression = None
    path = tmp_path_factory.mktemp("rt") / "t.dat"
    expect = {cpu: [] for cpu in range(3)}
    with TraceDatWriter(path, version=version, page_size=256, cpus=3, compression=compression, uname="") as w:
        for cpu, data in writes:
            p = (data * (256 // len(data) + 1))[:256]
            w.write_page(cpu, p)
            expect[cpu].append(p)
    with TraceDatReader(path) as r:
        assert r.uname is None
        assert {cpu: list(r.iter_pages(cpu)) for cpu in range(3)} == expect


def test_writing_is_deterministic(tmp_path):
    write_file(tmp_path / "a.dat", events=[fmt("sched.sched_switch")], cmdlines={5: "five"})
    write_file(tmp_path / "b.dat", events=[fmt("sched.sched_switch")], cmdlines={5: "five"})
    assert (tmp_path / "a.dat").read_bytes() == (tmp_path / "b.dat").read_bytes()


# -- the bytes ------------------------------------------------------------------------------------

def test_v6_bytes(tmp_path):
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, version=6, cpus=1, uname="") as w:
        w.write_page(0, page(0, 0))
    b = path.read_bytes()
    hp = header_page_text(4096, 8).encode()
    head = (b"\x17\x08\x44" b"tracing" b"6\0"     # magic, version
            b"\x00" b"\x08" b"\x00\x10\x00\x00"    # little endian, long 8, page size 4096
            b"header_page\0" + struct.pack("<Q", len(hp)) + hp)
    assert b.startswith(head)
    he = HEADER_EVENT_TEXT.encode()
    at = len(head)
    assert b[at:at + 13 + 8 + len(he)] == b"header_event\0" + struct.pack("<Q", len(he)) + he
    at += 13 + 8 + len(he)
    cmdlines = b""
    rest = (struct.pack("<I", 0)                            # ftrace formats
            + struct.pack("<I", 0)                          # event systems
            + struct.pack("<I", 0)                          # kallsyms
            + struct.pack("<I", 0)                          # printk formats
            + struct.pack("<Q", 0) + cmdlines               # saved cmdlines
            + struct.pack("<I", 1)                          # cpus
            + b"options  \0"
            + struct.pack("<HI", Option.TRACECLOCK, 8) + b"[mono]\n\0"
            + struct.pack("<HI", Option.VERSION, 16) + b"usertrace 0.1.0\0"
            + struct.pack("<H", 0)                          # end of options
            + b"flyrecord\0"
            + struct.pack("<QQ", 4096, 4096)                # cpu 0: offset, size
            + struct.pack("<Q", 6) + b"[mono]")             # the clock
    assert b[at:at + len(rest)] == rest
    assert b[at + len(rest):4096] == bytes(4096 - at - len(rest))   # padding to the page
    assert b[4096:] == page(0, 0)


def test_v7_bytes(tmp_path):
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, version=7, cpus=1, uname="") as w:
        w.write_page(0, page(0, 0))
    b = path.read_bytes()
    assert b[:24] == b"\x17\x08\x44tracing7\0\x00\x08\x00\x10\x00\x00" b"none\0" b"\0"
    options_at = struct.unpack_from("<Q", b, 24)[0]
    sec_id, flags, desc, size = struct.unpack_from("<HHiQ", b, 32)      # the first section
    assert (sec_id, flags, desc) == (Option.HEADER_INFO, 0, 0)          # "headers" is string 0
    assert b[48:60] == b"header_page\0"
    sec_id, flags, desc, size = struct.unpack_from("<HHiQ", b, options_at)
    assert (sec_id, flags) == (Option.DONE, 0)
    body = b[options_at + 16:options_at + 16 + size]
    opts, pos = [], 0
    while True:
        oid, osize = struct.unpack_from("<HI", body, pos)
        opts.append((oid, body[pos + 6:pos + 6 + osize]))
        pos += 6 + osize
        if oid == Option.DONE:
            break
    assert pos == size
    assert [o for o, _ in opts] == [16, 17, 18, 19, 20, 21, Option.CPUCOUNT, Option.TRACECLOCK,
                                    Option.VERSION, Option.BUFFER, Option.DONE]
    assert opts[-1][1] == struct.pack("<Q", 0)
    buf = opts[-2][1]
    sec_at = struct.unpack_from("<Q", buf)[0]
    assert buf[8:] == b"\0" b"mono\0" + struct.pack("<IIIQQ", 4096, 1, 0, 4096, 4096)
    assert struct.unpack_from("<HH", b, sec_at) == (Option.BUFFER, 0)
    assert struct.unpack_from("<Q", b, sec_at + 8)[0] == 8192 - sec_at - 16   # padding + the page
    assert b[4096:8192] == page(0, 0)


# -- the writer's checks ---------------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    (dict(version=5), "version must be 6 or 7"),
    (dict(page_size=1000), "power of two"),
    (dict(page_size=32), "power of two of at least 64"),
    (dict(cpus=0), "at least 1"),
    (dict(endian="middle"), "endian must be"),
    (dict(long_size=2), "long size must be 4 or 8"),
    (dict(clock="my clock"), "bad trace clock"),
    (dict(clock=""), "bad trace clock"),
    (dict(version=6, compression="zlib"), "compression needs trace.dat version 7"),
    (dict(compression="lz4"), "unknown compression algorithm 'lz4'"),
    (dict(events=[("", "name: x\n")]), "bad event system name"),
    (dict(events=[("syscalls", 42)]), "must be text or an EventFormat"),
])
def test_writer_refuses(tmp_path, kw, message):
    with pytest.raises(TraceDatError, match=message):
        TraceDatWriter(tmp_path / "t.dat", **kw)


def test_writer_refuses_bad_pages(tmp_path):
    w = TraceDatWriter(tmp_path / "t.dat", cpus=2)
    with pytest.raises(TraceDatError, match="4095 bytes are not whole pages of 4096"):
        w.write_page(0, bytes(4095))
    with pytest.raises(TraceDatError, match="0 bytes are not whole pages"):
        w.write_pages(0, b"")
    with pytest.raises(TraceDatError, match="cpu 2 out of range"):
        w.write_page(2, bytes(4096))
    with pytest.raises(TraceDatError, match="no buffer 'x'"):
        w.write_page(0, bytes(4096), buffer="x")
    w.add_buffer("x", cpus=1)
    with pytest.raises(TraceDatError, match="exists already"):
        w.add_buffer("x")
    with pytest.raises(TraceDatError, match="bad buffer name"):
        w.add_buffer("")
    with pytest.raises(TraceDatError, match="cannot be added by hand"):
        w.add_option(Option.BUFFER, b"")
    w.write_pages(0, bytes(3 * 4096), buffer="x")
    assert w.num_bytes(0, "x") == 3 * 4096
    w.close()
    w.close()  # a second close does nothing
    with pytest.raises(TraceDatError, match="closed"):
        w.write_page(0, bytes(4096))


def test_v6_buffers_have_the_top_buffers_cpus(tmp_path):
    w = TraceDatWriter(tmp_path / "t.dat", version=6, cpus=2)
    with pytest.raises(TraceDatError, match="every buffer has the top buffer's number of cpus"):
        w.add_buffer("x", cpus=3)
    w.abort()


def test_nothing_is_left_behind(tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    with pytest.raises(RuntimeError):
        with TraceDatWriter(out / "t.dat", cpus=1, tmpdir=tmp) as w:
            w.write_page(0, bytes(4096))
            assert list(out.iterdir()) == []  # pages wait in unlinked temporary files
            raise RuntimeError("the recorder died")
    assert list(out.iterdir()) == [] and list(tmp.iterdir()) == []
    with TraceDatWriter(out / "t.dat", cpus=1, tmpdir=tmp) as w:
        w.write_page(0, bytes(4096))
    assert [p.name for p in out.iterdir()] == ["t.dat"] and list(tmp.iterdir()) == []


def test_unwritable_output_is_a_clear_error(tmp_path):
    with pytest.raises(OutputFileError, match="cannot write .*t.dat: no directory .*/dir$"):
        TraceDatWriter(tmp_path / "no" / "such" / "dir" / "t.dat", cpus=1, tmpdir=tmp_path)


# -- bad input to the reader -------------------------------------------------------------------

@pytest.fixture
def v6(tmp_path) -> bytes:
    write_file(tmp_path / "v6.dat", 6, events=[fmt("sched.sched_switch")], cmdlines={5: "five"})
    return (tmp_path / "v6.dat").read_bytes()


@pytest.fixture
def v7(tmp_path) -> bytes:
    write_file(tmp_path / "v7.dat", 7, events=[fmt("sched.sched_switch")], cmdlines={5: "five"})
    return (tmp_path / "v7.dat").read_bytes()


def patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


def read_error(tmp_path, data: bytes) -> TraceDatError:
    path = tmp_path / "bad.dat"
    path.write_bytes(data)
    with pytest.raises(TraceDatError) as exc:
        with TraceDatReader(path) as r:
            for b in r.buffers:
                for cpu in b.cpu_ids:
                    list(b.iter_pages(cpu))
    assert str(path) in str(exc.value)
    return exc.value


V7_OPTIONS_AT = 24  # the u64 offset of the first options section in a v7 file


@pytest.mark.parametrize("make, message, offset", [
    (lambda v6, v7: b"", "empty file", 0),
    (lambda v6, v7: b"hello, world\n" * 10, "not a trace.dat file", 0),
    (lambda v6, v7: b"\x7fELF\x02\x01\x01" + bytes(100), "not a trace.dat file", 0),
    (lambda v6, v7: b"\x17\x08\x44tracing", "the version string has no terminating NUL", 10),
    (lambda v6, v7: b"\x17\x08\x44tracing9\0" + bytes(20), "unsupported trace.dat version '9'", 10),
    (lambda v6, v7: b"\x17\x08\x44tracing" + b"6" * 40, "longer than 16 bytes", 10),
    (lambda v6, v7: patched(v6, 12, b"\x02"), "bad endianness byte 2", 12),
    (lambda v6, v7: patched(v6, 13, b"\x03"), "bad long size 3", 13),
    (lambda v6, v7: patched(v6, 14, b"\xe8\x03\0\0"), "bad page size 1000", 14),
    (lambda v6, v7: v6[:17], "truncated: the page size needs 4 bytes, only 3 left", 14),
    (lambda v6, v7: patched(v6, 18, b"header_pagX"), "expected 'header_page'", 18),
    (lambda v6, v7: patched(v6, 30, struct.pack("<Q", 1 << 62)), "header_page says 4611686018427387904 bytes", 30),
    (lambda v6, v7: v6[:500], "truncated", None),
    (lambda v6, v7: v6[:-100], "cpu 1: data at 12288 of 4096 bytes runs past the end", None),
    (lambda v6, v7: patched(v7, 18, b"lz77\0\0"), "unknown compression algorithm 'lz77'", 18),
    (lambda v6, v7: patched(v7, V7_OPTIONS_AT, struct.pack("<Q", 1 << 40)), "first options section's offset", V7_OPTIONS_AT),
    (lambda v6, v7: patched(v7, V7_OPTIONS_AT, struct.pack("<Q", 32)), "expected the options section \\(id 0\\), found section id 16", 32),
    (lambda v6, v7: v7[:-200], r"the options section says \d+ bytes, only \d+ left in the file: truncated\?", 16384),
    (lambda v6, v7: v7[:16000], "the first options section's offset 16384 is outside the file", V7_OPTIONS_AT),
])
def test_reader_refuses(tmp_path, v6, v7, make, message, offset):
    err = read_error(tmp_path, make(v6, v7))
    assert re.search(message, str(err)), str(err)
    if offset is not None:
        assert err.offset == offset


def test_options_that_loop_are_refused(tmp_path, v7):
    at = struct.unpack_from("<Q", v7, V7_OPTIONS_AT)[0]
    size = struct.unpack_from("<Q", v7, at + 8)[0]
    done = at + 16 + size - 8  # the DONE option's "next options section" offset
    assert struct.unpack_from("<Q", v7, done)[0] == 0
    err = read_error(tmp_path, patched(v7, done, struct.pack("<Q", at)))
    assert "loop" in err.message and err.offset == at


def test_corrupt_compressed_pages_are_a_clear_error(tmp_path):
    path = tmp_path / "z.dat"
    write_file(path, 7, compression="zlib", pages={0: 1, 1: 0})
    with TraceDatReader(path) as r:
        cd = r.buffer("").cpu(0)
    data = path.read_bytes()
    err = read_error(tmp_path, patched(data, cd.offset + 4 + 8 + 10, b"\xff" * 8))
    assert "cannot decompress chunk 0 of buffer '' cpu 0 (zlib)" in err.message
    err = read_error(tmp_path, patched(data, cd.offset + 4 + 4, struct.pack("<I", 8192)))
    assert "decompressed to 4096 bytes, 8192 expected" in err.message


def test_latency_file(tmp_path, v6):
    at = v6.rindex(b"flyrecord\0")
    path = tmp_path / "lat.dat"
    path.write_bytes(v6[:at] + b"latency  \0# tracer: irqsoff\n")
    with TraceDatReader(path) as r:
        assert r.buffers[0].is_latency and r.buffers[0].latency_text == "# tracer: irqsoff\n"
        assert r.buffers[0].cpu_ids == []


def test_missing_file(tmp_path):
    with pytest.raises(TraceDatError, match="cannot open: No such file"):
        TraceDatReader(tmp_path / "nope.dat")


def test_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening a FIFO for reading must not wait for a writer
    for path in (tmp_path, tmp_path / "fifo", "/dev/zero"):
        with pytest.raises(TraceDatError, match="not a regular file"):
            TraceDatReader(path)


def test_unwritable_temporary_directory_is_a_clear_error(tmp_path):
    w = TraceDatWriter(tmp_path / "t.dat", cpus=1, tmpdir=tmp_path / "missing")
    with pytest.raises(TraceDatError, match="cannot keep pages in a temporary file in .*missing"):
        w.write_page(0, bytes(4096))
    w.abort()


@pytest.mark.parametrize("version", [6, 7])
def test_every_truncation_is_an_error_or_a_shorter_file(tmp_path, version, v6, v7):
    data = v6 if version == 6 else v7
    path = tmp_path / "cut.dat"
    cuts = list(range(0, 2048)) + list(range(2048, len(data), 61))
    errors = 0
    for n in cuts:
        path.write_bytes(data[:n])
        try:
            with TraceDatReader(path) as r:
                for b in r.buffers:
                    for cpu in b.cpu_ids:
                        for p in b.iter_pages(cpu):
                            assert len(p) == b.page_size
        except TraceDatError as exc:
            assert str(path) in str(exc)
            errors += 1
    assert errors >= len(cuts) - 40  # only a cut in v7's trailing strings section reads fine


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupt_bytes_never_crash(tmp_path_factory, data):
    version = data.draw(st.sampled_from([6, 7]))
    base = data.draw(st.sampled_from(["plain", "zlib"])) if version == 7 else "plain"
    d = tmp_path_factory.mktemp("fuzz")
    write_file(d / "t.dat", version, compression="zlib" if base == "zlib" else None,
               events=[fmt("sched.sched_switch")], cmdlines={5: "five"}, buffers={"b": (2, None, {1: 1})},
               page_size=256, pages={0: 1})
    raw = bytearray((d / "t.dat").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    (d / "t.dat").write_bytes(bytes(raw))
    try:
        with TraceDatReader(d / "t.dat") as r:
            r.event_formats, r.cmdlines, r.clock, r.uname, r.cpustats
            for b in r.buffers:
                for cpu in b.cpu_ids:
                    b.num_pages(cpu)
                    list(b.iter_pages(cpu))
    except TraceDatError:
        pass
