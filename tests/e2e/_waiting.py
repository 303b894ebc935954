"""A probed target that waits to be told (``probed wait N ...``, ``probes_sdt wait``), and
what the probe tests read of it: symbols, its load base, its text."""

from __future__ import annotations

import os
import subprocess


def symbol(exe, name) -> int:
    """The address of ``name`` in ``exe``'s symbol table (nm)."""
    out = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    return next(int(ln.split()[0], 16) for ln in out.splitlines() if ln.endswith(f" {name}"))


def text(pid: int, addr: int, n: int) -> bytes:
    """``n`` bytes of process ``pid``'s memory at ``addr`` (its text as it is now)."""
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(addr)
        return f.read(n)


def load_base(pid: int, exe=None) -> int:
    """Where ``exe`` (or, with None, the file mapped as deleted: a replaced binary) is loaded
    in process ``pid``: the lowest start minus file offset of its mappings."""
    end = "(deleted)" if exe is None else os.path.realpath(exe)
    with open(f"/proc/{pid}/maps") as f:
        return min(int(ln.split("-")[0], 16) - int(ln.split()[2], 16)
                   for ln in f if ln.rstrip().endswith(end))


class Waiting:
    """``argv`` started with pipes; its first line is read (``ready``, or what it says
    first); then :meth:`say` ``go``, ``serve``, ``end`` and read its answers.  A context
    manager that kills it on the way out."""

    def __init__(self, argv: list):
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.first = self.proc.stdout.readline()

    def say(self, word: str) -> None:
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def line(self) -> str:
        return self.proc.stdout.readline()

    def end(self, timeout: float = 60) -> int:
        """Tell it to end; its exit status."""
        self.say("end")
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> "Waiting":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()
