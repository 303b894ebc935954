"""The generated constants module (tools/gen_strace_tables.py): no drift from its inputs, and
its values agree with what Python's standard library says of the same names."""

import errno
import fcntl
import mmap
import os
import resource
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from usertrace.sources.syscalls import consts_x86_64 as consts

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "tools" / "gen_strace_tables.py"

# Names whose value the C library gives differently from the kernel, on purpose.
LIBC_DIFFERS = {
    "O_LARGEFILE": "glibc defines it 0 on 64-bit machines; the kernel's flag is 0x8000",
}


@pytest.mark.skipif(not Path("/usr/include/linux/fcntl.h").exists(),
                    reason="needs the kernel headers (apt-get install linux-libc-dev)")
def test_module_does_not_drift_from_its_generator():
    out = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_generator_check_fails_on_a_changed_module(tmp_path):
    changed = tmp_path / "consts.py"
    changed.write_text((ROOT / "src/usertrace/sources/syscalls/consts_x86_64.py").read_text()
                       .replace("('O_CREAT', 0x40)", "('O_CREAT', 0x41)"))
    out = subprocess.run([sys.executable, str(GEN), "--check", "-o", str(changed)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "('O_CREAT', 0x40)" in out.stdout


MODULES = (os, socket, errno, signal, mmap, fcntl, select, resource)


def _stdlib_value(name):
    for mod in MODULES:
        v = getattr(mod, name, None)
        if isinstance(v, int):
            return v
    return None


def test_values_agree_with_the_standard_library():
    compared = 0
    differ = {}
    for group, (_kind, items) in consts.GROUPS.items():
        for name, value in items:
            v = _stdlib_value(name)
            if v is None:
                continue
            compared += 1
            if int(v) != value:
                differ[name] = (value, int(v))
    assert set(differ) == set(LIBC_DIFFERS), differ
    assert compared > 200


def test_errno_names_and_messages_are_the_c_librarys():
    for nr, (name, message) in consts.ERRNO.items():
        if nr < 512:
            assert getattr(errno, name, nr) == nr, name   # Python may lack the newest
            assert message == os.strerror(nr)
    # aliases: the first name of the headers, as strace prints them
    assert consts.ERRNO[errno.EAGAIN][0] == "EAGAIN"
    assert consts.ERRNO[errno.EDEADLK][0] == "EDEADLK"
    assert consts.ERRNO[errno.EOPNOTSUPP][0] == "EOPNOTSUPP"
    assert consts.ERRNO[512] == ("ERESTARTSYS", "To be restarted if SA_RESTART is set")
    assert consts.ERESTART == {512, 513, 514, 516}


def test_signals_are_the_kernels():
    for nr, name in consts.SIGNALS.items():
        assert getattr(signal, name) == nr
    assert consts.SIGNALS[6] == "SIGABRT" and consts.SIGNALS[31] == "SIGSYS"
    assert (consts.SIGRTMIN, consts.SIGRTMAX) == (32, 64)
