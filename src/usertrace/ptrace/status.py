"""How a traced command ended, and how the tracer passes that on (as strace does)."""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ExitStatus:
    """The end of the launched command, or of a tracing session that only attached.

    ``code`` is the exit code when the command exited, ``signal`` the signal that killed it.
    Attaching (no command launched) ends with code 0, as strace does.
    """

    code: int | None = 0
    signal: int | None = None
    core_dumped: bool = False
    detached: bool = False       # the tracer let go (Ctrl-C) before the command ended

    @classmethod
    def from_wait(cls, status: int) -> "ExitStatus":
        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status), os.WCOREDUMP(status))
        return cls(os.WEXITSTATUS(status))

    @property
    def returncode(self) -> int:
        """What a shell shows: the exit code, or 128 + the signal number."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code or 0

    def describe(self) -> str:
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.valid_signals() else str(self.signal)
            return f"killed by {name}" + (" (core dumped)" if self.core_dumped else "")
        return f"exited with {self.code}"

    def exit_like(self) -> None:
        """End this process the way the command ended, as strace does.

        A command killed by a signal: reset that signal to its default action, unblock it and
        send it to ourselves (without a core file of our own); if we survive it (a signal whose
        default is to ignore), exit with 128 + signal.  Otherwise exit with the code.
        Close and flush outputs first: the signal ends the process at once.
        """
        if self.signal is not None:
            sig = self.signal
            try:
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            except (ValueError, OSError):
                pass
            try:
                signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
                os.kill(os.getpid(), sig)
            except (OSError, ValueError):
                pass
            raise SystemExit(128 + sig)
        raise SystemExit(self.code or 0)
