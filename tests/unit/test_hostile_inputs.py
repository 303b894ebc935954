"""Hostile inputs to the readers, one by one (issue 11): each ends in a clean error, or in a
report that goes on past it, in little time and memory.  The fuzz tests
(test_fuzz_readers.py) look for more; these are the ones seen.
"""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
import time

import pytest

from test_tracedat_interop import load_format
from test_tracedat_pages import build_pages
from usertrace.buffer.tracedat import TraceDatError, TraceDatReader, TraceDatWriter
from usertrace.catalog import known_events
from usertrace.cli.context import Context
from usertrace.cli.main import main
from usertrace.events.format import EventFormat, FormatError, parse_field_line
from usertrace.events.records import Abi, RecordCodec
from usertrace.output.printfmt import PrintFmt
from usertrace.trace import Trace


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env={}))
    return status, out.getvalue(), err.getvalue()


def with_print_fmt(text: str) -> EventFormat:
    base = load_format("syscalls.sys_exit_getppid")
    return EventFormat(base.system, base.name, base.id, base.fields, text, base.common_fields)


PRINT_FMTS = [
    # print fmt                                                      the fault named
    ('"%d", ' + "(" * 5000 + "REC->ret" + ")" * 5000,                  "nested more than 64 deep"),
    ('"%d", ' + "-" * 5000 + "REC->ret",                               "nested more than 64 deep"),
    ('"%1500000000llu", REC->ret',                                     "width 1500000000"),
    ('"%.99999999d", REC->ret',                                        "precision 99999999"),
]


@pytest.mark.parametrize("text, fault", PRINT_FMTS)
def test_print_fmts_that_would_exhaust_the_reader(text, fault):
    pf = PrintFmt(with_print_fmt(text))
    assert pf.failed and fault in pf.error
    assert pf.render({"__syscall_nr": 110, "ret": 7}) == "[FAILED TO PARSE] __syscall_nr=110 ret=7"


@pytest.mark.parametrize("count", [64, 10**18, 2**62 + 3, -1])
def test_shift_counts_from_the_record_are_taken_mod_64(count):
    pf = PrintFmt(with_print_fmt('"%llx %llx", REC->ret << REC->__syscall_nr, 1 >> REC->__syscall_nr'))
    assert not pf.failed
    k = count & 63
    assert pf.render({"__syscall_nr": count, "ret": 3}) == f"{(3 << k) & (2**64 - 1):x} {1 >> k:x}"


FIELD_LINES = [
    # field line                                                        the fault named
    ("\tfield:int x;\toffset:12345678901234567890;\tsize:4;\tsigned:1;", "offset 12345678901234567890 is larger than a record"),
    ("\tfield:int x;\toffset:8;\tsize:99999999;\tsigned:1;",             "size 99999999 is larger than a record"),
    ("\tfield:int x;\toffset:1048570;\tsize:8;\tsigned:1;",              "ends at byte 1048578, past the largest record"),
    ("\tfield:" + "a" * 20000 + ";\toffset:8;\tsize:4;\tsigned:1;",      "has no type and name"),
    ("\tfield:int " + "[" * 20000 + "x;\toffset:8;\tsize:4;\tsigned:1;", "has no type and name"),
]


@pytest.mark.parametrize("line, fault", FIELD_LINES)
def test_field_lines_refused_quickly(line, fault):
    t0 = time.process_time()
    with pytest.raises(FormatError, match=fault):
        parse_field_line(line, 9)
    assert time.process_time() - t0 < 2        # was 16 s for 20 KB (a quadratic regex)


def test_a_long_declaration_that_fits_parses_in_linear_time():
    line = "\tfield:unsigned " + "long " * 8000 + "x;\toffset:8;\tsize:8;\tsigned:0;"
    t0 = time.process_time()
    f = parse_field_line(line)
    assert f.name == "x" and f.type.startswith("unsigned long long")
    assert time.process_time() - t0 < 2


def test_a_syscall_format_with_an_array_ret_prints_from_its_print_fmt(tmp_path):
    x = known_events().get("syscalls", "sys_exit_getppid")
    text = x.render().replace("\tfield:long ret;\toffset:16;\tsize:8;", "\tfield:long ret[1];\toffset:16;\tsize:8;")
    rec = struct.pack("<HBBii4xq", x.id, 0, 0, 5, 110, 7)
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, cpus=1, events=[("syscalls", text)], cmdlines={5: "five"}) as w:
        for p in build_pages([(1000, rec)]):
            w.write_page(0, p)
    status, out, err = run("report", "-i", str(path))
    assert status == 0, err
    assert out.splitlines()[-1].endswith("0.000001: sys_exit_getppid: 0x[7]")   # not sys_getppid -> ...


def zstd_bomb(size: int) -> bytes:
    """A zstd frame of RLE blocks: 4 bytes per 128 KiB of zeros (32 KB for 1 GiB)."""
    n = size // 131072
    blocks = b"".join(((1 if i == n - 1 else 0) | 1 << 1 | 131072 << 3).to_bytes(3, "little") + b"\0"
                      for i in range(n))
    return struct.pack("<I", 0xFD2FB528) + bytes([0x00, 0x38]) + blocks


def test_a_zstd_bomb_in_the_pages_ends_its_cpu_only(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    bomb = zstd_bomb(1 << 30)
    assert len(bomb) < 40_000
    fmt = load_format("syscalls.sys_exit_getppid")
    c = RecordCodec(fmt, Abi())
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, cpus=2, events=[fmt], compression="zstd", cmdlines={5: "five"}) as w:
        real = w.codec.compress
        w.codec.compress = lambda data: bomb if data[:8] == struct.pack("<Q", 1000) else real(data)
        for cpu, ts in ((0, 1000), (1, 2000)):
            for p in build_pages([(ts, c.encode({"common_pid": 5, "ret": cpu}))]):
                w.write_page(cpu, p)
    # in a child process with 400 MB of address space: the 1 GiB is never made
    code = ("import sys; from usertrace.cli.main import main; sys.exit(main(['report', '-i', "
            f"{str(path)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20)),
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith("0.000002: sys_getppid -> 0x1")
    assert "1 unreadable cpu" in r.stderr
    assert "chunk 0 of buffer '' cpu 0" in r.stderr and "zstd data gives more than 4096 bytes" in r.stderr


def test_a_buffer_claiming_1_gib_pages_is_refused(tmp_path):
    path = tmp_path / "t.dat"
    with TraceDatWriter(path, version=7, cpus=1) as w:
        w.add_buffer("inst")
    raw = bytearray(path.read_bytes())
    with TraceDatReader(path) as r:
        opt = next(d for oid, d in r.options if oid == 3 and b"inst\0" in d)
    at = raw.index(opt) + 8 + len(b"inst\0") + len(b"mono\0")
    assert struct.unpack_from("<I", raw, at)[0] == 4096
    struct.pack_into("<I", raw, at, 1 << 30)
    path.write_bytes(bytes(raw))
    with pytest.raises(TraceDatError, match=r"buffer 'inst': bad page size 1073741824 \(a power of two, at most 1048576\)"):
        Trace(path)
    status, out, err = run("report", "-i", str(path))
    assert status == 1 and "bad page size 1073741824" in err and str(path) in err


def test_format_of_dev_zero_and_of_a_fifo(tmp_path):
    status, out, err = run("format", "/dev/zero")
    assert status == 1 and "/dev/zero: larger than 1048576 bytes: not a format file" in err
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    status, out, err = run("format", str(fifo))
    assert status == 1 and "empty (a FIFO with no writer?)" in err
    status, out, err = run("format", str(tmp_path))
    assert status == 1 and "is a directory" in err
