"""What a subcommand runs in: its streams and environment, injected so tests run main() in-process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TextIO


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1          # bad input, a failed operation
    USAGE = 2          # bad command line (argparse's own status)
    INTERRUPTED = 130  # Ctrl-C before anything was traced


@dataclass
class Context:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    env: dict = field(default_factory=lambda: dict(os.environ))
    cwd: str = field(default_factory=os.getcwd)
    # A traced command killed by a signal: the console entry point ends the same way (strace).
    kill_with: object = None

    @property
    def color(self) -> bool:
        """Colour only on a terminal, and never with NO_COLOR."""
        return "NO_COLOR" not in self.env and getattr(self.stdout, "isatty", lambda: False)()

    def error(self, message: str) -> None:
        self.stderr.write(f"usertrace: {message}\n")


class CliError(Exception):
    """An error a subcommand reports to the user: printed as ``usertrace: message``, exit 1."""

    def __init__(self, message: str, status: int = ExitStatus.ERROR):
        super().__init__(message)
        self.status = status
