"""Strings in recorded syscall records: the newest kernels' ``__<arg>_val`` layout, byte by
byte, and its ``trace`` text, on programs whose calls are known in advance.

cli_basic: ``open("/nonexistent/usertrace", O_RDONLY)`` (ENOENT), ``open("/dev/null",
O_WRONLY)``, ``write(fd, "hello", 5)``; sc_seq: ``openat(AT_FDCWD, NULL, ...)`` (EFAULT) and
``read(fd, buf, 16)`` of /dev/null (0: nothing read).
"""

from __future__ import annotations

import io
import struct

import pytest

from usertrace.buffer.layout import PageLayout
from usertrace.buffer.reader import decode_page
from usertrace.buffer.tracedat import TraceDatReader
from usertrace.cli.context import Context
from usertrace.cli.main import main
from usertrace.events.records import Abi


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env={}))
    assert status == 0, err.getvalue()
    return out.getvalue()


def raw_records(dat) -> list[tuple[str, bytes]]:
    """(event name, record bytes) of every event, in time order."""
    reader = TraceDatReader(str(dat))
    layout = PageLayout(reader.page_size, Abi("<", 8))
    names = {f.id: f.name for f in reader.formats_by_id().values()}
    out = []
    for b in reader.buffers:
        for cpu in b.cpu_ids:
            for page in b.iter_pages(cpu):
                for ts, payload in decode_page(page, layout).events:
                    payload = bytes(payload)
                    out.append((ts, names[struct.unpack_from("<H", payload)[0]], payload))
    reader.close()
    return [(n, p) for _, n, p in sorted(out, key=lambda x: x[0])]


def fields_of(dat, name: str) -> list[str]:
    reader = TraceDatReader(str(dat))
    fmt = next(f for f in reader.formats_by_id().values() if f.name == name)
    reader.close()
    return [f"{f.type} {f.name} @{f.offset}/{f.size}" for f in fmt.fields]


@pytest.fixture
def basic_dat(target, tmp_path):
    dat = tmp_path / "b.dat"
    run("record", "-e", "openat,write", "-o", str(dat), "--", str(target("cli_basic")), "0")
    return dat


def test_the_layout_of_a_path_and_of_a_buffer(basic_dat):
    assert fields_of(basic_dat, "sys_enter_openat")[-1] == "__data_loc char[] __filename_val @48/4"
    assert fields_of(basic_dat, "sys_enter_write")[-1] == "__data_loc char[] __buf_val @40/4"
    records = raw_records(basic_dat)
    opens = [p for n, p in records if n == "sys_enter_openat"]
    path = b"/nonexistent/usertrace\0"
    rec = next(p for p in opens if path in p)
    # int __syscall_nr, the four arguments, then the data_loc word: len 23 << 16 | offset 52
    assert struct.unpack_from("<i4x4QI", rec, 8)[0] == 257
    assert struct.unpack_from("<I", rec, 48)[0] == len(path) << 16 | 52
    assert rec[52:52 + len(path)] == path
    write = [p for n, p in records if n == "sys_enter_write"][-1]
    fd, buf, count, loc = struct.unpack_from("<3QI", write, 16)
    assert count == 5 and loc == 5 << 16 | 44                      # the bytes, no NUL
    assert write[44:49] == b"hello"


def test_the_text_is_the_newest_kernels(basic_dat):
    text = run("report", "-i", str(basic_dat))
    assert ' "/nonexistent/usertrace", flags: O_RDONLY)' in text
    assert ' "/dev/null", flags: O_WRONLY)' in text
    assert "(68:65:6c:6c:6f) \"hello\", count: 5)" in text


def test_a_cut_string_and_a_null_pointer_and_exit_data(target, tmp_path):
    dat = tmp_path / "s.dat"
    run("record", "-s", "8", "-e", "openat,read", "-o", str(dat), "--",
        str(target("sc_seq")), "0")
    records = raw_records(dat)
    opens = [p for n, p in records if n == "sys_enter_openat"]
    null = next(p for p in opens if struct.unpack_from("<Q", p, 24)[0] == 0)
    assert struct.unpack_from("<I", null, 48)[0] == 0 << 16 | 52       # nothing read
    devnull = next(p for p in opens if b"/dev/nul" in p)
    assert devnull[52:64] == b"/dev/nul...\0"                          # 8 bytes, then ...
    reads = [p for n, p in records if n == "sys_exit_read"]
    last = reads[-1]                                                   # read of /dev/null: 0
    assert struct.unpack_from("<qI", last, 16) == (0, 0 << 16 | 28)
    elf = next(p for p in reads if b"\x7fELF" in p)                    # ld.so reads libc
    assert struct.unpack_from("<qI", elf, 16) == (832, 8 << 16 | 28)   # at most -s bytes
    text = run("report", "-i", str(dat))
    assert 'filename: 0 "", flags: O_WRONLY|O_CREAT|O_TRUNC, mode: 0644)' in text
    assert '"/dev/nul...", flags: O_RDONLY)' in text
    assert "sys_read -> 0x340 (7f:45:4c:46:02:01:01:" in text


def test_a_filter_on_the_recorded_string(target, tmp_path):
    dat = tmp_path / "f.dat"
    run("record", "-e", "sys_enter_openat", "-f", '__filename_val ~ "/dev/*"', "-o", str(dat),
        "--", str(target("cli_basic")), "0")
    opens = [p for n, p in raw_records(dat)]
    assert len(opens) == 1 and b"/dev/null\0" in opens[0]
