"""Decoded events from pages in the kernel's format: the one reading path for every output.

Pages come from our ring buffers, a trace.dat (ours or trace-cmd's) or the kernel's
``trace_pipe_raw``; each event's ``common_type`` picks its format, and the format's codec
decodes the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from ..buffer.layout import PageLayout, RingBufferError
from ..buffer.reader import PageReader
from ..events.format import EventFormat
from ..events.records import Abi, RecordCodec, RecordError


class TraceReadError(ValueError):
    """An event that cannot be decoded: the message says which cpu, page and why."""


@dataclass(slots=True)
class TraceEvent:
    ts_ns: int
    cpu: int
    format: EventFormat | None     # None: an event id that no format describes
    values: dict
    comm: str

    @property
    def pid(self) -> int:
        return self.values.get("common_pid", 0)


def comm_of(cmdlines: Mapping[int, str], pid: int) -> str:
    """The task name the kernel's trace file shows for ``pid``."""
    if pid == 0:
        return "<idle>"
    return cmdlines.get(pid, "<...>")


def _codec(fmt: EventFormat, abi: Abi):
    """The codec of ``fmt``: a probe event's own (told by its fields: a string it could not
    read is None, not ""), else the one that reads any format."""
    if fmt.fields and fmt.fields[0].name.startswith("__probe_"):
        from ..sources.probes.events import probe_codec
        codec = probe_codec(fmt, abi)
        if codec is not None:
            return codec
    return RecordCodec(fmt, abi)


class EventDecoder:
    """Decodes record bytes by their common_type, with one codec per format, built lazily."""

    def __init__(self, formats: Iterable[EventFormat], abi: Abi):
        self.abi = abi
        self.formats = {f.id: f for f in formats}
        self._codecs: dict[int, RecordCodec] = {}
        self._type = __import__("struct").Struct(abi.endian + "H")

    def decode(self, payload) -> tuple[EventFormat | None, dict]:
        if len(payload) < 8:
            raise RecordError(f"record of {len(payload)} bytes has no common header")
        etype = self._type.unpack_from(payload, 0)[0]
        codec = self._codecs.get(etype)
        if codec is None:
            fmt = self.formats.get(etype)
            if fmt is None:
                return None, {"common_type": etype}
            codec = self._codecs[etype] = _codec(fmt, self.abi)
        return codec.format, codec.decode(payload)


def iter_events(per_cpu_pages: Mapping[int, Iterable[bytes]], formats: Iterable[EventFormat],
                layout: PageLayout, cmdlines: Mapping[int, str]) -> Iterator[TraceEvent]:
    """Every event of the pages of every cpu, in time order, decoded."""
    decoder = EventDecoder(formats, layout.abi)
    reader = PageReader(layout)
    try:
        for ts, cpu, payload in reader.merge(per_cpu_pages):
            try:
                fmt, values = decoder.decode(payload)
            except RecordError as exc:
                raise TraceReadError(f"cpu {cpu}, event at {ts} ns: {exc}") from None
            yield TraceEvent(ts, cpu, fmt, values, comm_of(cmdlines, values.get("common_pid", 0)))
    except RingBufferError as exc:
        raise TraceReadError(f"corrupt ring-buffer page: {exc}") from None


def count_events(per_cpu_pages: Mapping[int, Iterable[bytes]], layout: PageLayout) -> tuple[int, int]:
    """(events, events lost before them) of the pages, without decoding records."""
    reader = PageReader(layout)
    events = lost = 0
    try:
        for pages in per_cpu_pages.values():
            for i, page in enumerate(pages):
                d = reader.decode(page, i)
                events += len(d.events)
                lost += max(d.missed_events, 0)
    except RingBufferError as exc:
        raise TraceReadError(f"corrupt ring-buffer page: {exc}") from None
    return events, lost
