"""JSON lines: one object per event.

``{"ts_ns": 297300813123, "cpu": 1, "pid": 2048, "comm": "bash", "system": "syscalls",
"event": "sys_enter_openat", "fields": {"__syscall_nr": 257, "dfd": 4294967196, ...}}``

``fields`` holds the event's own fields (not the common header, whose pid is ``pid``);
byte strings that are not text are written as lists of ints.  An event with no format has
``"system": null, "event": null`` and its id in ``unknown_type``; a record that could not be
decoded (or whose format does not parse) has empty ``fields`` and the reason in ``error``.

:class:`JsonRenderer` makes the lines of a :class:`usertrace.trace.Trace` with the same bytes
as :func:`event_line`, compiled per task and format: an event whose own fields are all plain
integers is one struct unpack into a ``%d`` template.
"""

from __future__ import annotations

import json
from typing import Callable

from ..events.records import TraceEvent
from .text import row_struct, short_record, unpacked_text

_SEPARATORS = (", ", ": ")


def _plain(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return list(bytes(v))
    return v


def _dumps(obj) -> str:
    return json.dumps(obj, separators=_SEPARATORS, ensure_ascii=False)


def event_object(ev: TraceEvent) -> dict:
    fmt = ev.format
    if fmt is None and ev.error is None:
        return {"ts_ns": ev.ts_ns, "cpu": ev.cpu, "pid": ev.pid, "comm": ev.comm,
                "system": None, "event": None, "fields": {},
                "unknown_type": ev.values.get("common_type")}
    if ev.error is not None:
        return {"ts_ns": ev.ts_ns, "cpu": ev.cpu, "pid": ev.pid, "comm": ev.comm,
                "system": fmt.system if fmt else None, "event": fmt.name if fmt else None,
                "fields": {}, "error": ev.error}
    fields = {f.name: _plain(ev.values.get(f.name)) for f in fmt.fields}
    return {"ts_ns": ev.ts_ns, "cpu": ev.cpu, "pid": ev.pid, "comm": ev.comm,
            "system": fmt.system, "event": fmt.name, "fields": fields}


def event_line(ev: TraceEvent) -> str:
    return _dumps(event_object(ev))


class JsonRenderer:
    """Renders a trace's records as JSON lines (a :class:`usertrace.trace.Renderer`)."""

    def __init__(self, trace):
        self.trace = trace
        self._fields: dict[int, Callable] = {}
        self._plain: dict[int, tuple | None] = {}

    def _head(self, rec, system, event) -> str:
        """What follows the time stamp, up to the fields."""
        return (f', "cpu": {rec.cpu}, "pid": {rec.pid}, "comm": {_dumps(rec.comm)}, '
                f'"system": {_dumps(system)}, "event": {_dumps(event)}, "fields": ')

    def plain(self, fmt) -> tuple[str, Callable, int] | None:
        """``(template, unpack, size)`` when the own fields of ``fmt`` are plain integers:
        the ``fields`` object is ``template % unpack(page, start)`` for a record of at least
        ``size`` bytes."""
        key = fmt.id
        if key not in self._plain:
            names = tuple(f.name for f in fmt.fields)
            st = row_struct(fmt, names, self.trace.abi) if names else None
            self._plain[key] = None if st is None else (
                "{" + ", ".join(f"{_dumps(n).replace('%', '%%')}: %d" for n in names) + "}",
                st.unpack_from, st.size)
        return self._plain[key]

    def fields(self, fmt) -> Callable:
        """``fields(page, start, size) -> text`` of the ``fields`` object of a record."""
        f = self._fields.get(fmt.id)
        if f is None:
            f = self._fields[fmt.id] = self._compile_fields(fmt)
        return f

    def _compile_fields(self, fmt) -> Callable:
        plain = self.plain(fmt)
        if plain is not None:
            tmpl, unpack, need = plain
            return unpacked_text(fmt.full_name, unpack, need, tmpl.__mod__)
        decode = self.trace.decoder.codec(fmt.id).decode
        own = [f.name for f in fmt.fields]

        def general(page, start: int, size: int) -> str:
            values = decode(page, start, size)
            return _dumps({n: _plain(values.get(n)) for n in own})
        return general

    def compile(self, rec) -> Callable:
        fmt = rec.format
        if fmt is None:
            ev = TraceEvent(0, rec.cpu, None, {"common_type": rec.event_id, "common_pid": rec.pid},
                            rec.comm, rec.buffer,
                            None if rec.failed is None else
                            f"the format of {rec.failed.full_name} does not parse")
            obj = event_object(ev)
            if rec.failed is not None:
                obj["system"], obj["event"] = rec.failed.system, rec.failed.name
            rest = _dumps(obj)[len('{"ts_ns": 0'):]
            return lambda page, start, size, ts: f'{{"ts_ns": {ts}{rest}\n'
        head = self._head(rec, fmt.system, fmt.name)
        plain = self.plain(fmt)
        if plain is not None:
            # the hot path: the fields are one struct unpack into one %d template
            tmpl, unpack, need = plain
            tmpl = head.replace("%", "%%") + tmpl + "}\n"
            full_name = fmt.full_name

            def plain_line(page, start: int, size: int, ts: int) -> str:
                if size < need:
                    raise short_record(full_name, size, need)
                return f'{{"ts_ns": {ts}' + tmpl % unpack(page, start)
            return plain_line
        fields = self.fields(fmt)

        def line(page, start: int, size: int, ts: int) -> str:
            return f'{{"ts_ns": {ts}{head}{fields(page, start, size)}}}\n'
        return line

    def failed(self, rec, page, start: int, size: int, ts: int, reason: str) -> str:
        fmt = rec.format or rec.failed
        ev = TraceEvent(ts, rec.cpu, None, {"common_pid": rec.pid}, rec.comm, rec.buffer, reason)
        obj = event_object(ev)
        if fmt is not None:
            obj["system"], obj["event"] = fmt.system, fmt.name
        return _dumps(obj) + "\n"
