"""A recording made twice, on the compiled path and on the Python path, for the tests that
compare the two (test_probe_compiled.py, test_syscall_compiled.py).

The recording runs in a Python of its own (``script``, given its arguments), without
address-space randomization (setarch -R) and with the same environment both ways
(``USERTRACE_PURE_PYTHON`` 0 or 1, the same length), so that the program's addresses are the
same.  The script prints one line ``RESULT {json}``; the trace.dat it wrote is read back with
``usertrace report --json``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from usertrace.ptrace.libc import compiled

SRC = str(Path(__file__).resolve().parents[2] / "src")
NO_ASLR = "import ctypes\nctypes.CDLL(None).personality(0x0040000)    # ADDR_NO_RANDOMIZE\n"


def needs_compiled(name: str) -> None:
    """Skip unless the ``_ptrace`` extension has ``name`` (``"hit"``, ``"stops"``) here."""
    if compiled(name) is None:
        pytest.skip("the _ptrace extension is not built (no C compiler at install), or "
                    "USERTRACE_PURE_PYTHON is set")


def record_both_ways(script: str, args: list, out: Path, pure: bool):
    """(the script's RESULT, its other output lines, the events of ``out`` as
    ``report --json`` gives them)."""
    env = {**os.environ, "PYTHONPATH": SRC, "USERTRACE_PURE_PYTHON": "1" if pure else "0"}
    r = subprocess.run([sys.executable, "-c", NO_ASLR + script, *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    result = json.loads([l for l in lines if l.startswith("RESULT ")][0][7:])
    report = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(out),
                             "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    events = [json.loads(line) for line in report.stdout.splitlines()]
    return result, [l for l in lines if not l.startswith("RESULT ")], events
