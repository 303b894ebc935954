"""Encode and decode event records, driven by their format the way libtraceevent is.

A :class:`RecordCodec` is built once per :class:`~usertrace.events.format.EventFormat`: it
compiles the fixed part of the record into one :class:`struct.Struct` (pad bytes over the gaps),
so decoding a record is one ``unpack_from`` plus the few fields that need more work (arrays,
strings, dynamic fields).  Any format is enough: ours or one read from the kernel's tracefs.

Dynamic fields hold a 32-bit word ``len << 16 | offset``: for ``__data_loc`` the offset counts
from the start of the record, for ``__rel_loc`` from the end of the word itself.  A dynamic
``char[]`` is text, up to its NUL, unless the print fmt prints it as an array
(``__print_dynamic_array(field, 1)``, as the kernel does for ``write``'s buffer): then it is
its bytes, all of them.

An :class:`EventDecoder` picks the codec of each record by its ``common_type``; a
:class:`TraceEvent` is one decoded record with where and when it happened, as a trace reader
(:class:`usertrace.trace.Trace`) hands it out.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Iterable

from ..errors import UsertraceError
from .format import COMMON_FIELDS, EventFormat, Field, c_int


class RecordError(UsertraceError, ValueError):
    """A record that does not fit its format: too short, or a dynamic field out of bounds."""


@dataclass(frozen=True)
class Abi:
    """Byte order and word size of the machine whose records these are."""

    endian: str = "<"      # "<" little, ">" big
    long_size: int = 8

    @classmethod
    def native(cls) -> "Abi":
        import sys
        return cls("<" if sys.byteorder == "little" else ">", struct.calcsize("l"))


NATIVE = Abi.native()

_INT_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}

# Per-field decoding kinds beyond a plain integer.
_K_INT, _K_STR, _K_ARRAY, _K_BYTES, _K_DYN, _K_TAIL = range(6)


def int_code(size: int, signed: bool) -> str | None:
    """The struct code of an integer field of ``size`` bytes (None for other sizes)."""
    c = _INT_CODES.get(size)
    if c is None:
        return None
    return c if signed else c.upper()


def _decode_str(raw: bytes) -> str:
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("utf-8", "backslashreplace")


_ARRAY_PRINT_RE = re.compile(r"__print_dynamic_array\(\s*(\w+)|"
                             r"__print_(?:array|hex|hex_str)\(\s*__get_dynamic_array\(\s*(\w+)")


def byte_array_fields(fmt: EventFormat) -> frozenset[str]:
    """The dynamic ``char[]`` fields that ``fmt``'s print fmt prints as arrays of bytes."""
    return frozenset(a or b for a, b in _ARRAY_PRINT_RE.findall(fmt.print_fmt))


class RecordCodec:
    """Decoder and encoder of the records of one event format."""

    def __init__(self, fmt: EventFormat, abi: Abi = NATIVE):
        self.format = fmt
        self.abi = abi
        self._bytes_fields = byte_array_fields(fmt) if "__print_" in fmt.print_fmt else frozenset()
        fields = sorted(fmt.all_fields(), key=lambda f: f.offset)
        codes: list[str] = []
        self._names: list[str] = []       # one per struct item, in order
        self._post: list[tuple[int, str, Field]] = []   # (kind, name, field) needing work
        pos = 0
        for f in fields:
            if f.offset < pos:
                # Overlapping fields (the kernel's header_page has some): decoded separately.
                self._post.append((_K_BYTES if not f.is_dynamic else _K_DYN, f.name, f))
                continue
            if f.offset > pos:
                codes.append(f"{f.offset - pos}x")
            pos = f.offset + f.size
            kind, code = self._classify(f)
            if code:
                codes.append(code)
                self._names.append(f.name)
            if kind != _K_INT:
                self._post.append((kind, f.name, f))
        self.fixed_size = pos
        # The dynamic area starts after the C struct's tail padding: the struct is aligned to
        # its largest member (at least 4, for common_pid).
        align = max([4] + [min(f.elem_size, 8) for f in fields
                           if not f.is_dynamic and f.elem_size in (1, 2, 4, 8)])
        self.dynamic_start = -(-pos // align) * align
        self._struct = struct.Struct(abi.endian + "".join(codes))
        self._plain = not self._post
        self._names_t = tuple(self._names)

    def _classify(self, f: Field) -> tuple[int, str]:
        if f.is_dynamic:
            if f.size != 4:           # several words (a probe's string array): as bytes
                return _K_BYTES, f"{f.size}s"
            return _K_DYN, "I"
        n = f.array_len
        if n == 0 and f.size == 0:
            # A flexible array at the end (``char buf[]``): the rest of the record.
            return _K_TAIL, ""
        if n is None:
            code = int_code(f.size, f.signed)
            if code is not None:
                return _K_INT, code
            return _K_BYTES, f"{f.size}s"
        if f.is_string:
            return _K_STR, f"{f.size}s"
        return _K_ARRAY, f"{f.size}s"

    # -- decoding -------------------------------------------------------------------------
    def decode(self, data, offset: int = 0, length: int | None = None) -> dict:
        """The record at ``data[offset:offset+length]`` as ``{field name: value}``."""
        if length is None:
            length = len(data) - offset
        if length < self.fixed_size:
            raise RecordError(f"{self.format.full_name}: record of {length} bytes is shorter "
                              f"than its format's {self.fixed_size}")
        values = dict(zip(self._names_t, self._struct.unpack_from(data, offset)))
        if self._plain:
            return values
        for kind, name, f in self._post:
            if kind == _K_STR:
                values[name] = _decode_str(values[name])
            elif kind == _K_ARRAY:
                values[name] = self._array(values[name], f)
            elif kind == _K_TAIL:
                raw = bytes(data[offset + f.offset: offset + length])
                values[name] = _decode_str(raw) if f.is_string else self._array(raw, f)
            elif kind == _K_DYN:
                word = values.get(name)
                if word is None:  # an overlapping dynamic field
                    word = struct.unpack_from(self.abi.endian + "I", data, offset + f.offset)[0]
                values[name] = self._dynamic(data, offset, length, f, word)
            elif name not in values:  # overlapping plain field
                raw = bytes(data[offset + f.offset: offset + f.offset + f.size])
                code = int_code(f.size, f.signed)
                values[name] = (struct.unpack(self.abi.endian + code, raw)[0]
                                if code else raw)
        return values

    def _array(self, raw: bytes, f: Field) -> list[int] | bytes:
        es = f.elem_size
        code = int_code(es, f.signed)
        if code is None or len(raw) % es:
            return bytes(raw)
        return list(struct.unpack(f"{self.abi.endian}{len(raw) // es}{code}", raw))

    def _dynamic(self, data, offset: int, length: int, f: Field, word: int):
        start = word & 0xFFFF
        size = word >> 16
        if f.is_rel_loc:
            start += f.offset + f.size
        if start + size > length:
            raise RecordError(f"{self.format.full_name}: field {f.name} points at bytes "
                              f"{start}..{start + size} outside the record of {length} bytes")
        raw = bytes(data[offset + start: offset + start + size])
        if f.is_string:
            return raw if f.name in self._bytes_fields else _decode_str(raw)
        return self._array(raw, f)

    # -- encoding -------------------------------------------------------------------------
    def encode(self, values: dict, common_type: int | None = None) -> bytes:
        """The record bytes for ``values`` (missing fields are 0 or empty)."""
        fmt = self.format
        out = bytearray(self.fixed_size)
        pad = self.dynamic_start - self.fixed_size
        endian = self.abi.endian
        dyn: list[tuple[Field, bytes]] = []
        tail = b""
        for f in fmt.all_fields():
            if f.name == "common_type":
                v = fmt.id if common_type is None else common_type
            else:
                v = values.get(f.name)
            if f.is_dynamic:
                dyn.append((f, self._dyn_bytes(f, v)))
                continue
            if v is None:
                continue
            n = f.array_len
            if n == 0 and f.size == 0:
                tail = self._array_bytes(f, v)
                if f.is_string and not tail.endswith(b"\0"):
                    tail += b"\0"
                continue
            if n is None:
                code = int_code(f.size, f.signed)
                if code is None:
                    raw = bytes(v)[: f.size]
                    out[f.offset: f.offset + len(raw)] = raw
                else:
                    struct.pack_into(endian + code, out, f.offset, _wrap(v, f.size, f.signed))
            else:
                raw = self._array_bytes(f, v)[: f.size]
                out[f.offset: f.offset + len(raw)] = raw
        if dyn and any(raw for _, raw in dyn):
            out += bytes(pad)
        for f, raw in dyn:
            start = len(out)
            if len(raw) > 0xFFFF or start > 0xFFFF:
                raise RecordError(f"{fmt.full_name}: dynamic field {f.name} does not fit a record")
            rel = start - (f.offset + f.size) if f.is_rel_loc else start
            struct.pack_into(endian + "I", out, f.offset, len(raw) << 16 | rel)
            out += raw
        return bytes(out + tail)

    def _dyn_bytes(self, f: Field, v) -> bytes:
        if v is None:
            return b"\0" if f.is_string else b""
        if f.is_string:
            raw = v.encode() if isinstance(v, str) else bytes(v)
            if f.name in self._bytes_fields:
                return raw
            return raw if raw.endswith(b"\0") else raw + b"\0"
        return self._array_bytes(f, v)

    def _array_bytes(self, f: Field, v) -> bytes:
        if isinstance(v, str):
            return v.encode()
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        es = f.elem_size
        code = int_code(es, f.signed)
        if code is None:
            raise RecordError(f"{self.format.full_name}: cannot encode field {f.name}")
        return struct.pack(f"{self.abi.endian}{len(v)}{code}", *(_wrap(x, es, f.signed) for x in v))


def _wrap(v: int, size: int, signed: bool) -> int:
    """Fold a value into the range of a field, as a C store would."""
    return c_int(int(v), size, signed)


# -- records of many formats ------------------------------------------------------------------

@dataclass(slots=True)
class TraceEvent:
    """One event of a trace: its time, cpu, buffer, format and decoded values.

    ``format`` is None for a record whose ``common_type`` no format describes (its values are
    then the common header only); ``error`` says why a record could not be decoded (its
    values are then the common header only, and ``format`` the format it claims).
    """

    ts_ns: int
    cpu: int
    format: EventFormat | None
    values: dict
    comm: str
    buffer: str = ""
    error: str | None = None

    @property
    def pid(self) -> int:
        return self.values.get("common_pid", 0)

    @property
    def name(self) -> str | None:
        """``system:event``, or None for an unknown event."""
        return self.format.full_name if self.format is not None else None


def _codec_of(fmt: EventFormat, abi: Abi) -> "RecordCodec":
    """The codec of ``fmt``: a probe event's own (told by its fields: a string it could not
    read decodes as None, not ""), else the one that reads any format."""
    if fmt.fields and fmt.fields[0].name.startswith("__probe_"):
        from ..sources.probes.events import probe_codec
        codec = probe_codec(fmt, abi)
        if codec is not None:
            return codec
    return RecordCodec(fmt, abi)


class EventDecoder:
    """Decodes records of many formats by their ``common_type``, one codec per format
    (built when its first record comes)."""

    def __init__(self, formats: Iterable[EventFormat], abi: Abi = NATIVE):
        self.abi = abi
        self.formats = {f.id: f for f in formats}
        self._codecs: dict[int, RecordCodec] = {}
        self._common = struct.Struct(abi.endian + "HBBi")
        self._common_names = tuple(f.name for f in COMMON_FIELDS)

    def common(self, data, offset: int = 0) -> dict:
        """The common header of a record (type, flags, preempt count, pid), which every
        event of a kernel starts with, whatever its format says."""
        if len(data) - offset < self._common.size:
            raise RecordError(f"record of {len(data) - offset} bytes has no common header")
        return dict(zip(self._common_names, self._common.unpack_from(data, offset)))

    def codec(self, event_id: int) -> RecordCodec | None:
        codec = self._codecs.get(event_id)
        if codec is None:
            fmt = self.formats.get(event_id)
            if fmt is None:
                return None
            codec = self._codecs[event_id] = _codec_of(fmt, self.abi)
        return codec

    def decode(self, payload) -> tuple[EventFormat | None, dict]:
        """(format, values) of one record; (None, its common header) when no format has its
        type.  Raises :class:`RecordError` for a record that does not fit its format."""
        values = self.common(payload)
        codec = self.codec(values["common_type"])
        if codec is None:
            return None, values
        return codec.format, codec.decode(payload)
