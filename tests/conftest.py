"""Shared fixtures: the kernel as oracle (a private tracefs instance), target programs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from usertrace.kernel.tracefs import Instance, why_no_tracefs

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

# Commands the tests start (python -m usertrace, applications importing usertrace) run the
# code of this checkout, whatever else is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SRC)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
TARGETS_SRC = TESTS / "targets"
TARGETS_BIN = TARGETS_SRC / "bin"


@pytest.fixture
def tracefs_instance():
    """A private tracefs instance, removed afterwards; skips with the reason where none can be made."""
    reason = why_no_tracefs()
    if reason:
        pytest.skip(reason)
    with Instance() as inst:
        yield inst


def build_target(name: str) -> Path:
    """Compile tests/targets/NAME.c into tests/targets/bin/NAME (once), skip if no C compiler."""
    return _build(name, name, ["-pthread"])


def build_library(name: str, output: str) -> Path:
    """Compile tests/targets/NAME.c into the shared library tests/targets/bin/OUTPUT (once)."""
    return _build(name, output, ["-shared", "-fPIC"])


def _build(name: str, output: str, flags: list[str]) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (apt-get install gcc)")
    src = TARGETS_SRC / f"{name}.c"
    out = TARGETS_BIN / output
    TARGETS_BIN.mkdir(exist_ok=True)
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([cc, "-O1", "-g", *flags, "-o", str(tmp), str(src)], check=True)
        os.replace(tmp, out)
    return out


@pytest.fixture
def target():
    """target('name') -> path of the compiled tests/targets/name.c."""
    return build_target
