"""Read a trace-cmd ``trace.dat`` (version 6 or 7, uncompressed or compressed).

>>> with TraceDatReader("trace.dat") as r:                          # doctest: +SKIP
...     r.version, r.page_size, r.clock, r.cmdlines
...     for buf in r.buffers:                    # the top buffer "" first, then instances
...         for cpu in buf.cpu_ids:
...             for page in buf.iter_pages(cpu):  # page_size bytes each, opaque here
...                 ...

Everything is checked against the file's size before it is used, so a truncated or foreign
file raises :class:`TraceDatError` with the fault and its byte offset, never another exception
and never a hang (option chains that loop are refused).  Metadata is read at open; pages are
read (and decompressed, chunk by chunk) only while iterating.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import Iterator

from .tracedat_layout import (
    MAGIC,
    MAX_CHUNK_SIZE,
    MAX_PAGE_SIZE,
    MAX_SECTION_SIZE,
    SECTION_FL_COMPRESS,
    SECTION_HEADER_SIZE,
    SUPPORTED_VERSIONS,
    V6_FLYRECORD,
    V6_LATENCY,
    V6_OPTIONS,
    Codec,
    Numbers,
    Option,
    TraceDatError,
    get_codec,
    option_name,
    parse_clock_text,
    parse_cmdlines,
)

_MAX_CLOCK_TEXT = 4096


def _str(raw: bytes) -> str:
    return bytes(raw).decode("utf-8", "surrogateescape")


def _good_page_size(n: int) -> bool:
    return 32 <= n <= MAX_PAGE_SIZE and not n & (n - 1)


class _Cursor:
    """Bounded reads from the file or from a decompressed section.

    Every read checks the bytes are there; a fault raises TraceDatError naming what was
    being read and where (the file offset, or the section and the byte within it).
    """

    def __init__(self, data, num: Numbers, path: str, pos: int = 0, end: int | None = None,
                 label: str | None = None, origin: int | None = None):
        self.data = data
        self.num = num
        self.path = path
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))
        self.label = label
        self.origin = origin

    def error(self, message: str, pos: int | None = None) -> TraceDatError:
        pos = self.pos if pos is None else pos
        if self.label is None:
            return TraceDatError(message, pos, self.path)
        return TraceDatError(f"{message} (byte {pos} of {self.label})", self.origin, self.path)

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left():
            raise self.error(f"truncated: {what} needs {n} bytes, only {max(self.left(), 0)} left")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(b)

    def _int(self, st: struct.Struct, what: str) -> int:
        if st.size > self.left():
            raise self.error(f"truncated: {what} needs {st.size} bytes, only {max(self.left(), 0)} left")
        v = st.unpack_from(self.data, self.pos)[0]
        self.pos += st.size
        return v

    def u16(self, what: str) -> int:
        return self._int(self.num.u16, what)

    def u32(self, what: str) -> int:
        return self._int(self.num.u32, what)

    def u64(self, what: str) -> int:
        return self._int(self.num.u64, what)

    def cstring(self, what: str, limit: int = 1 << 16) -> str:
        stop = min(self.end, self.pos + limit)
        nul = self.data.find(b"\0", self.pos, stop)
        if nul < 0:
            if stop == self.end:
                raise self.error(f"truncated: {what} has no terminating NUL before the end")
            raise self.error(f"{what} is longer than {limit} bytes (no NUL): not a trace.dat?")
        s = _str(self.data[self.pos:nul])
        self.pos = nul + 1
        return s

    def sized_text(self, size_bytes: int, what: str) -> str:
        start = self.pos
        size = self.u64(f"the size of {what}") if size_bytes == 8 else self.u32(f"the size of {what}")
        if size > self.left():
            raise self.error(f"truncated: {what} says {size} bytes, only {self.left()} left", start)
        return _str(self.take(size, what))


@dataclass(frozen=True)
class CpuData:
    """Where one cpu's pages are in the file (``size`` as stored: compressed if compressed)."""

    cpu: int
    offset: int
    size: int


@dataclass(frozen=True)
class Section:
    """A version 7 section header."""

    offset: int
    id: int
    flags: int
    size: int
    description: str | None = None

    @property
    def compressed(self) -> bool:
        return bool(self.flags & SECTION_FL_COMPRESS)


@dataclass
class TraceDatBuffer:
    """One trace instance of the file (``name`` "" is the top buffer).

    ``cpus`` are the cpus the file lists: our writer lists every cpu, trace-cmd's version 7
    files only those with data (so ``cpu_ids`` may skip some).
    """

    name: str
    clock: str | None
    page_size: int
    cpus: list[CpuData] = field(default_factory=list)
    compressed: bool = False
    latency_text: str | None = None
    _reader: "TraceDatReader | None" = field(default=None, repr=False, compare=False)

    @property
    def cpu_ids(self) -> list[int]:
        return [c.cpu for c in self.cpus]

    @property
    def is_latency(self) -> bool:
        return self.latency_text is not None

    def cpu(self, cpu: int) -> CpuData:
        for c in self.cpus:
            if c.cpu == cpu:
                return c
        raise TraceDatError(f"buffer {self.name!r} has no data for cpu {cpu}")

    def num_pages(self, cpu: int) -> int:
        """Pages of a cpu (for a compressed buffer this reads the chunk headers)."""
        return self._reader._num_pages(self, self.cpu(cpu))

    def iter_pages(self, cpu: int) -> Iterator[bytes]:
        """The pages of one cpu in file order, ``page_size`` bytes each."""
        return self._reader._iter_pages(self, self.cpu(cpu))


class TraceDatReader:
    """A trace.dat opened for reading.  Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._mm = None
        self.version = 0
        self.endian = "little"
        self.long_size = 0
        self.page_size = 0
        self.compression: tuple[str, str] | None = None
        self.header_page = ""
        self.header_event = ""
        self.ftrace_formats: list[str] = []
        self.event_texts: dict[str, list[str]] = {}
        self.kallsyms = ""
        self.printk_formats = ""
        self.cmdlines: dict[int, str] = {}
        self.cpu_count = 0
        self.options: list[tuple[int, bytes]] = []
        self.sections: list[Section] = []
        self.buffers: list[TraceDatBuffer] = []
        self._codec: Codec | None = None
        self._parsed_formats = None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block us
        except OSError as exc:
            raise TraceDatError(f"cannot open: {exc.strerror}", None, self.path) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise TraceDatError("not a regular file", None, self.path)
            size = st.st_size
            if size == 0:
                raise TraceDatError("empty file, not a trace.dat", 0, self.path)
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise TraceDatError(f"cannot read: {exc.strerror}", None, self.path) from None
        finally:
            os.close(fd)
        self.file_size = len(self._mm)
        try:
            self._parse()
        except TraceDatError:
            self.close()
            raise
        except (struct.error, IndexError, ValueError, zlib.error) as exc:  # a safety net
            self.close()
            raise TraceDatError(f"malformed trace.dat: {exc}", None, self.path) from None

    # -- public --------------------------------------------------------------------------
    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def __enter__(self) -> "TraceDatReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def option(self, option_id: int) -> bytes | None:
        """The data of the first option with this id, or None."""
        for oid, data in self.options:
            if oid == option_id:
                return data
        return None

    def _option_text(self, option_id: int) -> str | None:
        data = self.option(option_id)
        return None if data is None else _str(data.split(b"\0", 1)[0])

    @property
    def clock(self) -> str | None:
        """The trace clock of the top buffer (TRACECLOCK option or the buffer's own)."""
        top = self.buffer("") if self.has_buffer("") else None
        if top is not None and top.clock:
            return top.clock
        text = self._option_text(Option.TRACECLOCK)
        return parse_clock_text(text) if text else None

    @property
    def uname(self) -> str | None:
        return self._option_text(Option.UNAME)

    @property
    def tracer_version(self) -> str | None:
        """The VERSION option: the program (and version) that wrote the file."""
        return self._option_text(Option.VERSION)

    @property
    def trace_id(self) -> int | None:
        data = self.option(Option.TRACEID)
        return self._num.u64.unpack(data[:8])[0] if data and len(data) >= 8 else None

    @property
    def cpustats(self) -> list[str]:
        return [_str(d.rstrip(b"\0")) for oid, d in self.options if oid == Option.CPUSTAT]

    def has_buffer(self, name: str) -> bool:
        return any(b.name == name for b in self.buffers)

    def buffer(self, name: str = "") -> TraceDatBuffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise TraceDatError(f"no buffer {name!r} (buffers: {[b.name for b in self.buffers]})", None, self.path)

    def iter_pages(self, cpu: int, buffer: str = "") -> Iterator[bytes]:
        return self.buffer(buffer).iter_pages(cpu)

    @property
    def event_formats(self) -> dict[str, list]:
        """{system: [EventFormat]} parsed from the stored format texts (unparsable ones left out,
        see :attr:`format_errors`)."""
        self._parse_formats()
        return self._parsed_formats[0]

    @property
    def format_errors(self) -> list[tuple[str, str, Exception]]:
        """(system, format text, FormatError) of the stored formats that did not parse."""
        self._parse_formats()
        return self._parsed_formats[1]

    def formats_by_id(self) -> dict[int, object]:
        return {f.id: f for fmts in self.event_formats.values() for f in fmts}

    def _parse_formats(self) -> None:
        if self._parsed_formats is not None:
            return
        from ..events.format import EventFormat, FormatError

        good: dict[str, list] = {}
        bad: list[tuple[str, str, Exception]] = []
        for system, texts in [("ftrace", self.ftrace_formats), *self.event_texts.items()]:
            for text in texts:
                try:
                    good.setdefault(system, []).append(EventFormat.parse(text, system))
                except FormatError as exc:
                    bad.append((system, text, exc))
                except Exception as exc:  # a parser fault must not make the file unreadable
                    bad.append((system, text, FormatError(f"{type(exc).__name__}: {exc}")))
        self._parsed_formats = (good, bad)

    # -- parsing -------------------------------------------------------------------------
    def _cursor(self, pos: int = 0) -> _Cursor:
        return _Cursor(self._mm, self._num, self.path, pos)

    def _parse(self) -> None:
        mm = self._mm
        if len(mm) < len(MAGIC) or mm[:len(MAGIC)] != MAGIC:
            raise TraceDatError("not a trace.dat file: no trace-cmd magic \\x17\\x08\\x44tracing", 0, self.path)
        self._num = Numbers(True)
        c = self._cursor(len(MAGIC))
        vtext = c.cstring("the version string", limit=16)
        if not vtext.isdigit() or int(vtext) not in SUPPORTED_VERSIONS:
            raise TraceDatError(f"unsupported trace.dat version {vtext!r} (this reader knows 6 and 7)",
                                len(MAGIC), self.path)
        self.version = int(vtext)
        at = c.pos
        endian, long_size = c.take(2, "the endianness and long size")
        if endian not in (0, 1):
            raise TraceDatError(f"bad endianness byte {endian} (0 little, 1 big)", at, self.path)
        if long_size not in (4, 8):
            raise TraceDatError(f"bad long size {long_size} (4 or 8)", at + 1, self.path)
        self.endian = "big" if endian else "little"
        self._num = Numbers(not endian)
        c.num = self._num
        self.long_size = long_size
        at = c.pos
        self.page_size = c.u32("the page size")
        if not _good_page_size(self.page_size):
            raise TraceDatError(f"bad page size {self.page_size} (a power of two, at most "
                                f"{MAX_PAGE_SIZE})", at, self.path)
        if self.version >= 7:
            self._parse_v7(c)
        else:
            self._parse_v6(c)

    # .. the metadata both versions share ..
    def _read_header_info(self, c: _Cursor) -> None:
        at = c.pos
        if c.take(12, "'header_page'") != b"header_page\0":
            raise c.error("expected 'header_page'", at)
        self.header_page = c.sized_text(8, "header_page")
        at = c.pos
        if c.take(13, "'header_event'") != b"header_event\0":
            raise c.error("expected 'header_event'", at)
        self.header_event = c.sized_text(8, "header_event")

    def _read_ftrace_formats(self, c: _Cursor) -> None:
        count = c.u32("the number of ftrace formats")
        self.ftrace_formats = [c.sized_text(8, f"ftrace format {i}") for i in range(count)]

    def _read_event_formats(self, c: _Cursor) -> None:
        systems = c.u32("the number of event systems")
        out: dict[str, list[str]] = {}
        for _ in range(systems):
            name = c.cstring("an event system name", limit=4096)
            count = c.u32(f"the number of events of system {name!r}")
            texts = out.setdefault(name, [])
            for i in range(count):
                texts.append(c.sized_text(8, f"format {i} of system {name!r}"))
        self.event_texts = out

    def _read_kallsyms(self, c: _Cursor) -> None:
        self.kallsyms = c.sized_text(4, "kallsyms")

    def _read_printk(self, c: _Cursor) -> None:
        self.printk_formats = c.sized_text(4, "printk formats")

    def _read_cmdlines(self, c: _Cursor) -> None:
        self.cmdlines = parse_cmdlines(c.sized_text(8, "saved cmdlines"))

    # .. version 6 ..
    def _parse_v6(self, c: _Cursor) -> None:
        self._read_header_info(c)
        self._read_ftrace_formats(c)
        self._read_event_formats(c)
        self._read_kallsyms(c)
        self._read_printk(c)
        self._read_cmdlines(c)
        self.cpu_count = c.u32("the number of cpus")
        at = c.pos
        kind = c.take(10, "'options'/'flyrecord'/'latency'")
        if kind == V6_OPTIONS:
            self._read_options_v6(c)
            at = c.pos
            kind = c.take(10, "'flyrecord'/'latency'")
        top = self._read_v6_buffer(c, at, kind, "", self.cpu_count)
        self.buffers = [top]
        for oid, data in self.options:
            if oid != Option.BUFFER:
                continue
            oc = _Cursor(data, self._num, self.path, label="a BUFFER option")
            offset = oc.u64("the buffer's offset")
            name = oc.cstring("the buffer's name")
            bc = self._cursor(offset)
            kind = bc.take(10, f"'flyrecord' of buffer {name!r}")
            self.buffers.append(self._read_v6_buffer(bc, offset, kind, name, self.cpu_count))

    def _read_options_v6(self, c: _Cursor) -> None:
        while True:
            oid = c.u16("an option id")
            if oid == Option.DONE:
                return
            size = c.u32(f"the size of {option_name(oid)}")
            self.options.append((oid, c.take(size, option_name(oid))))

    def _read_v6_buffer(self, c: _Cursor, at: int, kind: bytes, name: str, cpus: int) -> TraceDatBuffer:
        if kind == V6_LATENCY:
            text = _str(self._mm[c.pos:])
            return TraceDatBuffer(name, None, self.page_size, latency_text=text, _reader=self)
        if kind != V6_FLYRECORD:
            raise c.error(f"expected 'flyrecord' or 'latency', found {kind!r}", at)
        table = []
        for cpu in range(cpus):
            off = c.u64(f"cpu {cpu}'s data offset")
            size = c.u64(f"cpu {cpu}'s data size")
            table.append(self._check_cpu(CpuData(cpu, off, size), c.pos - 16, name))
        clock = self._v6_clock(c)
        if clock is None and not name:
            text = self._option_text(Option.TRACECLOCK)
            clock = parse_clock_text(text) if text else None
        return TraceDatBuffer(name, clock, self.page_size, table, _reader=self)

    def _v6_clock(self, c: _Cursor) -> str | None:
        """The ``[clock]`` text trace-cmd saves after a flyrecord table, if it is there."""
        if c.left() < 8:
            return None
        size = self._num.u64.unpack_from(self._mm, c.pos)[0]
        if not 0 < size <= min(_MAX_CLOCK_TEXT, c.left() - 8):
            return None
        text = _str(self._mm[c.pos + 8:c.pos + 8 + size])
        if not text.startswith("["):
            return None
        c.pos += 8 + size
        return parse_clock_text(text)

    def _check_cpu(self, cd: CpuData, at: int, buffer: str, compressed: bool = False) -> CpuData:
        need = cd.offset + cd.size + (4 if compressed and cd.size else 0)
        if cd.size and need > self.file_size:
            raise TraceDatError(
                f"buffer {buffer!r} cpu {cd.cpu}: data at {cd.offset} of {cd.size} bytes runs past "
                f"the end of the file ({self.file_size} bytes): truncated?", at, self.path)
        return cd

    # .. version 7 ..
    def _parse_v7(self, c: _Cursor) -> None:
        at = c.pos
        name = c.cstring("the compression name", limit=64)
        version = c.cstring("the compression version", limit=64)
        if name != "none":
            self.compression = (name, version)
        try:
            self._codec = get_codec(name, version)
        except TraceDatError as exc:
            raise TraceDatError(exc.message, at, self.path) from None
        at = c.pos
        options_start = c.u64("the offset of the first options section")
        if not 0 < options_start < self.file_size:
            raise TraceDatError(f"the first options section's offset {options_start} is outside the file "
                                f"({self.file_size} bytes): truncated?", at, self.path)
        self._walk_sections(c.pos)
        meta_sections: dict[int, int] = {}
        buffer_options: list[tuple[int, bytes]] = []
        seen: set[int] = set()
        offset = options_start
        while offset:
            if offset in seen:
                raise TraceDatError("the options sections form a loop", offset, self.path)
            seen.add(offset)
            oc = self._open_section(offset, Option.DONE, "options")
            offset = 0
            while True:
                oid = oc.u16("an option id")
                size = oc.u32(f"the size of {option_name(oid)}")
                data = oc.take(size, option_name(oid))
                if oid == Option.DONE:
                    if len(data) < 8:
                        raise oc.error("the DONE option has fewer than 8 bytes")
                    offset = self._num.u64.unpack_from(data)[0]
                    break
                self.options.append((oid, data))
                if Option.HEADER_INFO <= oid <= Option.CMDLINES and len(data) >= 8:
                    meta_sections[oid] = self._num.u64.unpack_from(data)[0]
                elif oid in (Option.BUFFER, Option.BUFFER_TEXT):
                    buffer_options.append((oid, data))
                elif oid == Option.CPUCOUNT and len(data) >= 4:
                    self.cpu_count = self._num.u32.unpack_from(data)[0]
        readers = {
            Option.HEADER_INFO: ("headers", self._read_header_info),
            Option.FTRACE_EVENTS: ("ftrace events", self._read_ftrace_formats),
            Option.EVENT_FORMATS: ("events format", self._read_event_formats),
            Option.KALLSYMS: ("kallsyms", self._read_kallsyms),
            Option.PRINTK: ("printk", self._read_printk),
            Option.CMDLINES: ("command lines", self._read_cmdlines),
        }
        for sec_id, sec_offset in meta_sections.items():
            what, read = readers[sec_id]
            read(self._open_section(sec_offset, sec_id, what))
        for oid, data in buffer_options:
            self.buffers.append(self._read_v7_buffer(oid, data))
        self.buffers.sort(key=lambda b: b.name != "")
        if not self.cpu_count and self.buffers:
            self.cpu_count = max((c.cpu + 1 for b in self.buffers for c in b.cpus), default=0)

    def _section_header(self, offset: int, what: str) -> Section:
        c = self._cursor(offset)
        sec_id = c.u16(f"the id of the {what} section")
        flags = c.u16(f"the flags of the {what} section")
        c.take(4, f"the description of the {what} section")
        size = c.u64(f"the size of the {what} section")
        return Section(offset, sec_id, flags, size)

    def _open_section(self, offset: int, expect_id: int, what: str) -> _Cursor:
        """A cursor over a section's data (decompressed if it is compressed)."""
        if not 0 < offset < self.file_size:
            raise TraceDatError(f"the {what} section's offset {offset} is outside the file "
                                f"({self.file_size} bytes): truncated?", offset, self.path)
        sec = self._section_header(offset, what)
        if sec.id != expect_id:
            raise TraceDatError(f"expected the {what} section (id {expect_id}), found section id {sec.id}",
                                offset, self.path)
        start = offset + SECTION_HEADER_SIZE
        if sec.size > self.file_size - start:
            raise TraceDatError(f"the {what} section says {sec.size} bytes, only {self.file_size - start} "
                                "left in the file: truncated?", offset, self.path)
        if not sec.compressed:
            return _Cursor(self._mm, self._num, self.path, start, start + sec.size)
        data = self._decompress_block(self._cursor(start), what, offset)
        return _Cursor(data, self._num, self.path, label=f"the decompressed {what} section", origin=offset)

    def _decompress_block(self, c: _Cursor, what: str, origin: int) -> bytes:
        if self._codec is None:
            raise c.error(f"the {what} section is marked compressed but the file names no compression")
        csize = c.u32(f"the compressed size of {what}")
        size = c.u32(f"the uncompressed size of {what}")
        z = c.take(csize, f"the compressed {what}")
        return self._decompress(z, size, what, origin, MAX_SECTION_SIZE)

    def _decompress(self, z: bytes, size: int, what: str, origin: int, limit: int) -> bytes:
        if size > limit:
            raise TraceDatError(f"{what} claims {size} bytes uncompressed, more than this reader "
                                f"takes ({limit})", origin, self.path)
        try:
            data = self._codec.decompress(z, size)
        except Exception as exc:  # each codec has its own error class
            raise TraceDatError(f"cannot decompress {what} ({self._codec.name}): {exc}", origin, self.path) from None
        if len(data) != size:
            raise TraceDatError(f"{what} decompressed to {len(data)} bytes, {size} expected", origin, self.path)
        return data

    def _walk_sections(self, pos: int) -> None:
        """List the sections that follow each other from ``pos`` and collect the strings.

        The walk is how trace-cmd finds its string sections; it stops quietly at the first
        thing that is not a section header (strings only name the sections).
        """
        strings = bytearray()
        sections = []
        while pos + SECTION_HEADER_SIZE <= self.file_size:
            sec_id, flags, desc, size = self._num.section_header.unpack_from(self._mm, pos)
            if sec_id > 64 or size > self.file_size - pos - SECTION_HEADER_SIZE:
                break
            sections.append((pos, sec_id, flags, desc, size))
            if sec_id == Option.STRINGS:
                try:
                    sc = self._open_section(pos, Option.STRINGS, "strings")
                    strings += sc.take(sc.left(), "strings")
                except TraceDatError:
                    break
            pos += SECTION_HEADER_SIZE + size
        def describe(i: int) -> str | None:
            if not 0 <= i < len(strings):
                return None
            end = strings.find(b"\0", i)
            return _str(strings[i:end if end >= 0 else len(strings)])
        self.sections = [Section(p, s, f, z, describe(d)) for p, s, f, d, z in sections]

    def _read_v7_buffer(self, oid: int, data: bytes) -> TraceDatBuffer:
        c = _Cursor(data, self._num, self.path, label=f"a {option_name(oid)} option")
        sec_offset = c.u64("the buffer's section offset")
        name = c.cstring("the buffer's name")
        clock = c.cstring("the buffer's clock") or None
        what = f"buffer {name!r}"
        if not 0 < sec_offset < self.file_size:
            raise TraceDatError(f"{what}: its section's offset {sec_offset} is outside the file "
                                f"({self.file_size} bytes): truncated?", sec_offset, self.path)
        sec = self._section_header(sec_offset, f"{what}")
        if oid == Option.BUFFER_TEXT:
            tc = self._open_section(sec_offset, Option.BUFFER_TEXT, f"{what} latency")
            return TraceDatBuffer(name, clock, self.page_size, latency_text=_str(tc.take(tc.left(), "text")),
                                  _reader=self)
        if sec.id != Option.BUFFER:
            raise TraceDatError(f"{what}: expected a flyrecord section (id 3), found id {sec.id}",
                                sec_offset, self.path)
        page_size = c.u32("the buffer's page size")
        if not _good_page_size(page_size):
            raise c.error(f"{what}: bad page size {page_size} (a power of two, at most "
                          f"{MAX_PAGE_SIZE})")
        count = c.u32("the buffer's number of cpus")
        cpus = []
        for _ in range(count):
            cpu = c.u32("a cpu id")
            off = c.u64(f"cpu {cpu}'s data offset")
            size = c.u64(f"cpu {cpu}'s data size")
            cpus.append(self._check_cpu(CpuData(cpu, off, size), sec_offset, name, sec.compressed))
        if len({cd.cpu for cd in cpus}) != len(cpus):
            raise TraceDatError(f"{what} lists a cpu twice", sec_offset, self.path)
        cpus.sort(key=lambda cd: cd.cpu)
        return TraceDatBuffer(name, clock, page_size, cpus, compressed=sec.compressed, _reader=self)

    # -- pages ---------------------------------------------------------------------------
    def _chunks(self, buf: TraceDatBuffer, cd: CpuData) -> Iterator[tuple[int, int, int, int]]:
        """(index, header offset, compressed size, size) of a compressed cpu's chunks."""
        what = f"buffer {buf.name!r} cpu {cd.cpu}"
        c = self._cursor(cd.offset)
        count = c.u32(f"the number of compressed chunks of {what}")
        for i in range(count):
            at = c.pos
            csize = c.u32(f"chunk {i} of {what}")
            size = c.u32(f"chunk {i} of {what}")
            if csize > c.left():
                raise c.error(f"truncated: chunk {i} of {what} needs {csize} bytes, only {c.left()} left", at)
            yield i, at, csize, size
            c.pos += csize

    def _num_pages(self, buf: TraceDatBuffer, cd: CpuData) -> int:
        ps = buf.page_size
        if not buf.compressed:
            return -(-cd.size // ps)
        return sum(-(-size // ps) for _, _, _, size in self._chunks(buf, cd)) if cd.size else 0

    def _iter_pages(self, buf: TraceDatBuffer, cd: CpuData) -> Iterator[bytes]:
        if self._mm is None:
            raise TraceDatError("the reader is closed", None, self.path)
        ps = buf.page_size
        if not cd.size:
            return
        if not buf.compressed:
            mm = self._mm
            for off in range(cd.offset, cd.offset + cd.size, ps):
                page = mm[off:min(off + ps, cd.offset + cd.size)]
                yield page if len(page) == ps else page + bytes(ps - len(page))
            return
        for i, at, csize, size in self._chunks(buf, cd):
            z = self._mm[at + 8:at + 8 + csize]
            data = self._decompress(z, size, f"chunk {i} of buffer {buf.name!r} cpu {cd.cpu}", at,
                                    MAX_CHUNK_SIZE)
            for off in range(0, size, ps):
                page = data[off:off + ps]
                yield page if len(page) == ps else page + bytes(ps - len(page))
