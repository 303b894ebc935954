"""What a subcommand runs in: its streams and environment, injected so tests run main() in-process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TextIO

from ..errors import EXIT_ERROR, EXIT_SYNTAX, UsertraceError


class ExitStatus(IntEnum):
    OK = 0
    ERROR = EXIT_ERROR    # a failed operation, a bad file, a process that is not there
    USAGE = EXIT_SYNTAX   # a bad command line, or a filter, format, definition or event
    #                       pattern that does not parse (argparse's own status)
    INTERRUPTED = 130     # Ctrl-C before anything was traced


@dataclass
class Context:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    # The environment the command looks things up in (the user events session directory).
    env: dict = field(default_factory=lambda: dict(os.environ))
    # A traced command killed by a signal: the console entry point ends the same way (strace).
    kill_with: object = None

    def error(self, message: str) -> None:
        self.stderr.write(f"usertrace: {message}\n")


class CliError(UsertraceError):
    """An error of the command line itself: printed as ``usertrace: message``, exit 1
    (``status`` says otherwise, ExitStatus.USAGE for a bad command line)."""

    def __init__(self, message: str, status: int = ExitStatus.ERROR):
        super().__init__(message)
        self.status = status

    @property
    def exit_status(self) -> int:
        return self.status
