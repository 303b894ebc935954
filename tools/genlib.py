"""What the generators of data modules (tools/gen_*.py) share: their error, the version of
the kernel headers they read, and ``--check`` (compare with the committed module)."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path


class GenError(Exception):
    """An input a generator cannot use: the message says which and why."""


def libc_dev_version() -> str:
    """The installed linux-libc-dev (the kernel headers) version, or ``""``."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "linux-libc-dev"],
                             capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def check_module(output: Path, text: str) -> int:
    """``--check``: 0 when ``output`` holds ``text``, else print the diff and return 1."""
    try:
        current = output.read_text()
    except OSError as exc:
        raise GenError(f"{output}: {exc.strerror}") from None
    if current == text:
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                               str(output), "generated", n=1))
    print(f"{output}: differs from its generator's output", file=sys.stderr)
    return 1


def add_output_arguments(ap, default_output: Path) -> None:
    """``-o FILE`` (the module to write) and ``--check``."""
    ap.add_argument("-o", "--output", type=Path, default=default_output,
                    help="the module to write (default %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when the output differs from the file")
