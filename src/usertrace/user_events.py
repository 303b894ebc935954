"""What applications import to define and emit their own trace events.

    from usertrace.user_events import register

    req = register("app_req u32 status; __data_loc char[] path")
    if req.enabled:                     # one byte of shared memory
        req.emit(200, "/index.html")

See docs/user_events.md; the implementation is :mod:`usertrace.sources.user_events`.
"""

from .sources.user_events import (UserEvent, UserEventError, dynamic_events,  # noqa: F401
                                  read_dynamic_events, register, status_text)

__all__ = ["UserEvent", "UserEventError", "dynamic_events", "read_dynamic_events", "register",
           "status_text"]
