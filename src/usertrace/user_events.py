"""What applications import to define and emit their own trace events.

    from usertrace.user_events import register

    req = register("app_req u32 status; __data_loc char[] path")
    if req.enabled:                     # one byte of shared memory
        req.emit(200, "/index.html")

See docs/user_events.md; the implementation is :mod:`usertrace.sources.user_events`.
``python -m usertrace.user_events`` says which emit path this Python takes (compiled or pure
Python) and where the session is.
"""

from .sources.user_events import (UserEvent, UserEventError, dynamic_events,  # noqa: F401
                                  read_dynamic_events, register, status_text)

__all__ = ["UserEvent", "UserEventError", "dynamic_events", "read_dynamic_events", "register",
           "status_text"]


def about() -> str:
    """Which emit path this process takes, and the session directory it would use."""
    import os

    from . import __version__
    from .sources.user_events import default_session_dir, emit_path

    path = default_session_dir()
    state = "" if os.path.isdir(path) else " (not made yet)"
    return (f"usertrace {__version__} user events\n"
            f"emit path: {emit_path.describe()}\n"
            f"session: {path}{state}\n")


if __name__ == "__main__":
    print(about(), end="")
