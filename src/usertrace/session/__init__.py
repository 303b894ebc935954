"""Tracing sessions: enabled events and filters, consumers, and recordings that run sources.

    from usertrace.session import EventSpec, Recorder

    rec = Recorder([EventSpec("syscalls:sys_*_openat", "ret < 0")])
    rec.record_to("trace.dat")
    status = rec.run(["ls"])          # a seccomp filter: ls stops only at openat
    print(rec.summary())
"""

from .core import EventSpec, Session, SessionError
from .cpus import CpuMap
from .recorder import Recorder
from .sinks import LiveStream, TraceBuffer

__all__ = ["CpuMap", "EventSpec", "LiveStream", "Recorder", "Session", "SessionError",
           "TraceBuffer"]
