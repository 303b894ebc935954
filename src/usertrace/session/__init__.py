"""Tracing sessions: enabled events and filters, consumers, and the sources that feed them.

    session = Session()                                   # every known event
    session.enable(EventSpec("syscalls:sys_*_openat", "ret < 0"))
    session.record_to("trace.dat")
    source = SyscallSource(session)
    tracer = source.make_tracer()                         # seccomp: stops only for these
    tracer.launch(["ls"])
    status = tracer.run()
    session.finish()
"""

from .core import EventSpec, LiveStream, Session, SessionError, TraceBuffer
from .syscalls import SyscallSource

__all__ = ["EventSpec", "LiveStream", "Session", "SessionError", "SyscallSource", "TraceBuffer"]
