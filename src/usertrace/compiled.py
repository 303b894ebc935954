"""Whether the compiled parts may be used: every one that is built (the emit path of user
events, the engine's ptrace calls, the ring's batch writer), unless ``USERTRACE_PURE_PYTHON``
is set to anything but ``0``; then each takes its pure-Python path, which does the same (the
tests' second pass, and a way around a faulty build).  Light: applications import it too."""

from __future__ import annotations

import os

PURE_ENV = "USERTRACE_PURE_PYTHON"


def forced_pure() -> str:
    """``USERTRACE_PURE_PYTHON``'s value when it forces the pure-Python paths, else ''."""
    value = os.environ.get(PURE_ENV, "")
    return "" if value in ("", "0") else value
