"""The engine's one exception."""

from ..errors import UsertraceError


class TraceError(UsertraceError):
    """Tracing could not start or go on: the message names the command or pid and the cause.

    ``errno`` is the system's error number where one caused it, else None.
    """

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno
