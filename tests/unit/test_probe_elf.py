"""Symbols to file offsets (PIE, non-PIE, a shared library) and SDT notes.

The file offsets are checked against objdump: the bytes objdump shows at a function's
address are the file's bytes at our offset."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from usertrace.sources.probes.elf import ElfFile
from usertrace.sources.probes.errors import ProbeError
from usertrace.sources.probes.parse import ParseContext, parse_command
from usertrace.sources.probes.sdt import parse_arg, read_sdt

TARGETS = Path(__file__).resolve().parents[1] / "targets"
PYTHON311 = "/usr/bin/python3.11"


def _cc():
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (apt-get install gcc)")
    return cc


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    cc = _cc()
    out = tmp_path_factory.mktemp("elf")
    src = str(TARGETS / "probes.c")
    made = {}
    for name, flags in (("pie", ["-fPIE", "-pie"]), ("nopie", ["-fno-pie", "-no-pie"]),
                        ("lib.so", ["-fPIC", "-shared"])):
        path = out / name
        subprocess.run([cc, "-O1", *flags, "-o", str(path), src], check=True)
        made[name] = str(path)
    return made


def _objdump_bytes(path: str, vaddr: int, n: int = 8) -> bytes:
    if shutil.which("objdump") is None:
        pytest.skip("no objdump (apt-get install binutils)")
    text = subprocess.run(["objdump", "-d", f"--start-address={vaddr:#x}",
                           f"--stop-address={vaddr + n:#x}", path],
                          capture_output=True, text=True, check=True).stdout
    out = bytearray()
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip().endswith(":"):
            out += bytes.fromhex(parts[1].replace(" ", ""))
    return bytes(out[:n])


@pytest.mark.parametrize("kind", ["pie", "nopie", "lib.so"])
def test_symbol_offsets_are_where_the_code_is(builds, kind):
    path = builds[kind]
    elf = ElfFile(path)
    for name in ("add_point", "fact", "touch"):
        sym = elf.find(name)[0]
        off = elf.symbol_offset(name)
        assert elf.read(off, 8) == _objdump_bytes(path, sym.value)
        if kind == "nopie":
            assert sym.value - off >= 0x400000     # loaded at its link address
        else:
            assert elf.is_pie_or_shared


def test_definition_by_symbol(builds):
    path = builds["nopie"]
    elf = ElfFile(path)
    d = parse_command(f"p:utprb/a {path}:fact+0 n=%di:s32")
    assert d.offset == elf.symbol_offset("fact") and d.symbol == f"{path}:fact+0"
    d = parse_command("r:utprb/b fact", ParseContext(path))
    assert d.is_return and d.offset == elf.symbol_offset("fact") and d.path == path


def test_unknown_symbol_names_the_closest(builds):
    path = builds["lib.so"]
    with pytest.raises(ProbeError) as info:
        parse_command(f"p {path}:add_pont")
    assert info.value.code == "NO_SYMBOL" and "add_point" in info.value.detail


def test_offset_inside_an_instruction_is_refused(builds):
    path = builds["pie"]
    elf = ElfFile(path)
    from usertrace.sources.probes.insn import analyze
    start = elf.symbol_offset("fact")
    at = 0
    while (n := analyze(elf.read(start + at, 16)).length) == 1:   # the first long one
        at += n
    parse_command(f"p {path}:fact+{at}")
    with pytest.raises(ProbeError) as info:
        parse_command(f"p {path}:fact+{at + 1}")
    assert info.value.code == "BAD_INSN_BNDRY" and not info.value.logged


def test_sdt_arguments():
    assert parse_arg("-4@%eax").fetch == "%ax" and parse_arg("-4@%eax").type == "s32"
    assert parse_arg("8@-8(%rbp)").fetch == "-8(%bp)"
    assert parse_arg("8@112(%rsp)").fetch == "+112(%sp)"
    assert parse_arg("1@%r8b").fetch == "%r8" and parse_arg("1@%r8b").type == "u8"
    assert parse_arg("4@$5").fetch == "\\5"
    assert parse_arg("8@foo(%rip)").fetch is None                 # perf leaves these out
    assert parse_arg("8@(%rax,%rbx,8)").fetch is None


@pytest.mark.skipif(not os.path.exists(PYTHON311), reason="no /usr/bin/python3.11 (Debian)")
def test_python311_sdt_notes():
    probes = {p.name: p for p in read_sdt(PYTHON311)}
    assert {"function__entry", "function__return", "line", "gc__start", "gc__done"} <= set(probes)
    fe = probes["function__entry"]
    elf = ElfFile(PYTHON311)
    # the note's pc is in the text, the semaphore in .probes: both as file offsets
    assert elf.offset_to_vaddr(fe.pc_offset) == fe.pc
    sec_addr, sec_off, sec_size = elf.sections[".probes"]
    assert fe.sem_offset == sec_off + (fe.semaphore - sec_addr) and fe.semaphore
    assert [a.type for a in fe.args] == ["u64", "u64", "s32"]
    d = parse_command(f"{PYTHON311}:sdt_python:function__entry")
    assert (d.group, d.event, d.offset, d.ref_ctr_offset) == (
        "sdt_python", "function__entry", fe.pc_offset, fe.sem_offset)
    assert [a.name for a in d.args] == ["arg1", "arg2", "arg3"]
    d = parse_command("sdt_python:line", ParseContext(PYTHON311))
    assert d.event == "line" and len(d.args) == 3


def _sdt_target(tmp_path) -> str:
    if not any(os.path.exists(p) for p in ("/usr/include/sys/sdt.h",
                                           "/usr/include/x86_64-linux-gnu/sys/sdt.h")):
        pytest.skip("no <sys/sdt.h> (apt-get install systemtap-sdt-dev)")
    out = tmp_path / "probes_sdt"
    subprocess.run([_cc(), "-O1", "-o", str(out), str(TARGETS / "probes_sdt.c")], check=True)
    return str(out)


def test_gcc_sdt_notes(tmp_path):
    path = _sdt_target(tmp_path)
    probes = {p.name: p for p in read_sdt(path)}
    req = probes["request"]
    assert req.provider == "utapp" and [a.type for a in req.args] == ["s32", "u64", "s64"]
    elf = ElfFile(path)
    assert elf.read(req.pc_offset, 1) == b"\x90"                    # the probe site is a nop
    sec_addr, sec_off, _ = elf.sections[".probes"]
    assert req.sem_offset == sec_off + req.semaphore - sec_addr
    d = parse_command(f"{path}:sdt_utapp:request")
    assert str(d) == (f"p:sdt_utapp/request {path}:0x{req.pc_offset:016x}(0x{req.sem_offset:x})"
                      " arg1=%di:s32 arg2=%si:u64 arg3=%dx:s64")
    d = parse_command(f"p:utprb/r {path}:sdt_utapp:request p=+0(%si):string")
    assert d.ref_ctr_offset == req.sem_offset and [a.name for a in d.args] == ["p"]
