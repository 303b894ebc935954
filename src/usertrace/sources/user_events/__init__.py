"""User events: applications define their own trace events and emit them through shared memory.

Applications use :func:`register` (see :mod:`.client`); the tracer uses
:class:`UserEventsServer` (see :mod:`.server`).  The ABI is in :mod:`.abi` and
docs/user_events.md.
"""

from .abi import CONSUMER_OTHER, CONSUMER_STREAM, CONSUMER_TRACE
from .client import UserEvent, dynamic_events, read_dynamic_events, register, status_text
from .parse import Definition, UserEventError, parse_definition
from .server import UserEventsServer, WriterStats
from .session import default_session_dir

__all__ = [
    "CONSUMER_OTHER", "CONSUMER_STREAM", "CONSUMER_TRACE", "Definition", "UserEvent",
    "UserEventError", "UserEventsServer", "WriterStats", "default_session_dir",
    "dynamic_events", "parse_definition", "read_dynamic_events", "register", "status_text",
]
