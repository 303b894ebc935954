"""Fuzz the readers: trace.dat files (ours and trace-cmd's, v6 and v7, compressed), format
files and print fmts, mutated by a seeded generator (tests/unit/fuzz_harness.py) in a child
process with a memory limit.  Every input must end in a result or a clean error within the
harness's time limit per input; a failure names the seed and index that remake it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_tracedat_interop import write_sample

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "data" / "tracedat"
COUNT = 400          # inputs per run at most
BUDGET = 4.0         # seconds of fuzzing per run: a loaded machine runs fewer inputs


def fuzz(kind: str, seed: int, *bases) -> dict:
    r = subprocess.run([sys.executable, str(HERE / "fuzz_harness.py"), kind, str(seed),
                        str(COUNT), str(BUDGET), *map(str, bases)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["done"] > 0
    return result


def check(result: dict) -> None:
    failures = result["failures"]
    assert not failures, "\n\n".join(f"seed {f['seed']} input {f['index']}: {f['error']}\n"
                                     f"{f['input']!r}\n{f['trace']}" for f in failures)


@pytest.mark.parametrize("name", ["getppid_v6.dat", "getppid_v7.dat", "getppid_v7_zstd.dat"])
def test_trace_cmd_files(name):
    pytest.importorskip("zstandard") if "zstd" in name else None
    check(fuzz("tracedat", 11, GOLDEN / name))


@pytest.mark.parametrize("kw", [dict(version=6), dict(version=7), dict(version=7, compression="zlib"),
                                dict(version=7, compression="zstd")],
                         ids=["v6", "v7", "v7-zlib", "v7-zstd"])
def test_our_files(tmp_path, kw):
    if kw.get("compression") == "zstd":
        pytest.importorskip("zstandard")
    path = tmp_path / "t.dat"
    write_sample(path, page_size=1024, **kw)
    check(fuzz("tracedat", 23, path))


def test_format_files():
    check(fuzz("format", 5, *sorted((GOLDEN / "formats").glob("*.format"))))


def test_syscall_formats():
    check(fuzz("format", 7))


def test_print_fmts():
    check(fuzz("printfmt", 3))
