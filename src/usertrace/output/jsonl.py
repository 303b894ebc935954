"""JSON lines: one object per event.

``{"ts_ns": 297300813123, "cpu": 1, "pid": 2048, "comm": "bash", "system": "syscalls",
"event": "sys_enter_openat", "fields": {"__syscall_nr": 257, "dfd": 4294967196, ...}}``

``fields`` holds the event's own fields (not the common header, whose pid is ``pid``);
byte strings that are not text are written as lists of ints.
"""

from __future__ import annotations

import json

from .events import TraceEvent


def _plain(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return list(bytes(v))
    return v


def event_object(ev: TraceEvent) -> dict:
    fmt = ev.format
    if fmt is None:
        return {"ts_ns": ev.ts_ns, "cpu": ev.cpu, "pid": ev.pid, "comm": ev.comm,
                "system": None, "event": None, "fields": {},
                "unknown_type": ev.values.get("common_type")}
    fields = {f.name: _plain(ev.values.get(f.name)) for f in fmt.fields}
    return {"ts_ns": ev.ts_ns, "cpu": ev.cpu, "pid": ev.pid, "comm": ev.comm,
            "system": fmt.system, "event": fmt.name, "fields": fields}


def event_line(ev: TraceEvent) -> str:
    return json.dumps(event_object(ev), separators=(", ", ": "), ensure_ascii=False)
