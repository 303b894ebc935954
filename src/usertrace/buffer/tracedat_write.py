"""Write a trace-cmd ``trace.dat`` (version 6 or 7) from ring-buffer pages, streamed.

A recorder hands over pages per cpu as they fill (:meth:`TraceDatWriter.write_page`); they go
to one unlinked temporary file per (buffer, cpu), next to the output by default so that a long
trace costs disk, not memory.  :meth:`TraceDatWriter.close` writes the file in one pass —
metadata, then each cpu's pages at a page-aligned offset, copied with ``sendfile`` — to an
unnamed file next to ``PATH`` that then replaces it (:mod:`.safe_file`: no name another user
could prepare is ever opened, a FIFO or ``/dev/null`` is written through, never replaced), so
a crash never leaves half a trace.dat.

>>> with TraceDatWriter("trace.dat", version=7, cpus=2) as w:        # doctest: +SKIP
...     w.add_event_format("syscalls", open(".../sys_enter_getppid/format").read())
...     w.set_cmdline(4242, "getppid_loop")
...     w.write_page(0, page_bytes)

Options written (see ``Option``): CPUSTAT per cpu of each buffer (the kernel's per-cpu
``stats`` text after a full read: ``read events`` the events of the cpu's pages in the file,
``overrun`` those lost before them as the pages flag; the writer counts them from the pages'
event headers as they come, and readers take the trace header's counts from them), TRACECLOCK (``[mono]`` by default, so that ``trace-cmd
report`` shows our CLOCK_MONOTONIC nanoseconds as seconds.microseconds and, in v6, reads the
clock saved after the flyrecord table), UNAME and VERSION (shown by ``report --uname`` and
``--version``: the machine and the program that made the file), a BUFFER option per trace
instance (v6: where its flyrecord table is; v7: its section, clock, page size and cpus), and in
v7 the CPUCOUNT option and the offsets of the metadata sections.
"""

from __future__ import annotations

import ctypes
import errno
import io
import os
import tempfile
from dataclasses import dataclass, field

from .. import __version__ as _usertrace_version
from ..events.records import Abi
from .layout import PageLayout, RingBufferError
from .reader import PageReader
from .layout import align
from .safe_file import OutputFile
from .tracedat_layout import (
    HEADER_EVENT_TEXT,
    MAGIC,
    PAGES_IN_CHUNK,
    SECTION_FL_COMPRESS,
    SECTION_HEADER_SIZE,
    V6_FLYRECORD,
    V6_OPTIONS,
    Codec,
    Numbers,
    Option,
    TraceDatError,
    clock_option_text,
    cmdlines_text,
    get_codec,
    header_page_text,
)

_COPY_CHUNK = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 0x01, 0x02


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """Give the blocks of a copied range back to the file system (where it can)."""
    _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE,
                    ctypes.c_long(offset), ctypes.c_long(length))


def _free_bytes(path: str) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _count_events(page: bytes, w, page_size: int) -> int:
    try:
        abi = Abi("<" if w.endian == "little" else ">", w.long_size)
        return PageReader(PageLayout(page_size, abi)).count(page)[0]
    except RingBufferError:
        return 0


@dataclass
class _BufferOut:
    """One trace instance being written: its cpus' pages in temporary files."""

    name: str
    cpus: int
    clock: str
    page_size: int
    files: dict[int, io.BufferedRandom] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)     # data events of each cpu's pages
    lost: list[int] = field(default_factory=list)       # events lost before them
    counted: bool = True                                # False: a page did not decode
    given: set[int] = field(default_factory=set)        # cpus whose counts their maker gave


def _new_buffer(name: str, cpus: int, clock: str, page_size: int) -> _BufferOut:
    return _BufferOut(name, cpus, clock, page_size, sizes=[0] * cpus, events=[0] * cpus,
                      lost=[0] * cpus)


def _text(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _format_text(text) -> str:
    """A format's text: given as text, or rendered from an EventFormat."""
    if not isinstance(text, str):
        render = getattr(text, "render", None)
        if render is None:
            raise TraceDatError(f"an event format must be text or an EventFormat, not {type(text).__name__}")
        text = render()
    return text


class TraceDatWriter:
    """A trace.dat being written.  Give pages with :meth:`write_page`, finish with :meth:`close`.

    ``version`` 6 or 7; ``page_size`` the ring buffer's page size (a power of two); ``cpus`` the
    number of cpus of the top buffer; ``endian`` ``"little"`` or ``"big"`` (the numbers of the
    file; pages are stored as given); ``long_size`` 4 or 8.  ``events`` is a list of
    ``(system, format_text)`` (or of EventFormat objects); ``cmdlines`` a ``{pid: comm}``;
    ``clock`` the trace clock of the timestamps in the pages.  ``compression`` ``"zlib"``
    (version 7 only) compresses metadata and data the way trace-cmd does; the default writes
    the file uncompressed.  ``uname=""`` leaves out the UNAME option.

    ``path`` is checked when the writer is made (:class:`~.safe_file.OutputFile`): an empty
    name, a directory, a device other than ``/dev/null`` or a symlink of another user raises
    :class:`~.safe_file.OutputFileError` before any page is written.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        version: int = 7,
        page_size: int = 4096,
        cpus: int = 1,
        endian: str = "little",
        long_size: int = 8,
        *,
        clock: str = "mono",
        events=(),
        ftrace_events=(),
        cmdlines: dict[int, str] | None = None,
        kallsyms: str = "",
        printk_formats: str = "",
        header_page: str | None = None,
        header_event: str | None = None,
        uname: str | None = None,
        compression: str | None = None,
        tmpdir: str | os.PathLike | None = None,
    ):
        self.path = os.fspath(path)
        if version not in (6, 7):
            raise TraceDatError(f"trace.dat version must be 6 or 7, not {version!r}")
        if not isinstance(page_size, int) or page_size < 64 or page_size & (page_size - 1):
            raise TraceDatError(f"page size must be a power of two of at least 64, not {page_size!r}")
        if not isinstance(cpus, int) or cpus < 1:
            raise TraceDatError(f"the number of cpus must be at least 1, not {cpus!r}")
        if endian not in ("little", "big"):
            raise TraceDatError(f"endian must be 'little' or 'big', not {endian!r}")
        if long_size not in (4, 8):
            raise TraceDatError(f"long size must be 4 or 8, not {long_size!r}")
        if not clock or any(c in clock for c in " []\0\n"):
            raise TraceDatError(f"bad trace clock name {clock!r}")
        self.version = version
        self.page_size = page_size
        self.cpus = cpus
        self.endian = endian
        self.long_size = long_size
        self.clock = clock
        self.num = Numbers(endian == "little")
        self.codec: Codec | None = None
        if compression not in (None, "none"):
            if version < 7:
                raise TraceDatError("compression needs trace.dat version 7")
            self.codec = get_codec(compression)
        self.header_page = header_page if header_page is not None else header_page_text(page_size, long_size)
        self.header_event = header_event if header_event is not None else HEADER_EVENT_TEXT
        self.ftrace_events: list[str] = []
        self.event_systems: dict[str, list[str]] = {}
        self.cmdlines: dict[int, str] = dict(cmdlines or {})
        self.kallsyms = kallsyms
        self.printk_formats = printk_formats
        if uname is None:
            u = os.uname()
            uname = f"{u.sysname} {u.nodename} {u.release} {u.machine}"
        self.uname = uname
        self.extra_options: list[tuple[int, bytes]] = []
        self._output = OutputFile(self.path)
        self.tmpdir = os.fspath(tmpdir) if tmpdir is not None else self._output.scratch_dir
        self._buffers: dict[str, _BufferOut] = {"": _new_buffer("", cpus, clock, page_size)}
        self._page_readers: dict[int, PageReader] = {}
        self._closed = False
        for item in events:
            if isinstance(item, tuple):
                self.add_event_format(*item)
            else:
                self.add_event_format(item)
        for text in ftrace_events:
            self.add_ftrace_format(text)

    # -- metadata ------------------------------------------------------------------------
    def add_event_format(self, system_or_format, text: str | None = None) -> None:
        """Add an event's format: ``(system, format_text)`` or an EventFormat."""
        self._check_open()
        if text is None:
            system = getattr(system_or_format, "system", None)
            text = system_or_format
        else:
            system = system_or_format
        if not isinstance(system, str) or not system or "\0" in system:
            raise TraceDatError(f"bad event system name {system!r}")
        self.event_systems.setdefault(system, []).append(_format_text(text))

    def add_ftrace_format(self, text) -> None:
        """Add the format (text or EventFormat) of an ``ftrace`` event (``events/ftrace/*/format``)."""
        self._check_open()
        self.ftrace_events.append(_format_text(text))

    def set_cmdline(self, pid: int, comm: str) -> None:
        """Name a task: ``trace-cmd report`` shows ``comm-pid`` for its events."""
        self.cmdlines[int(pid)] = comm

    def add_option(self, option_id: int, data: bytes) -> None:
        """Add a raw option (e.g. CPUSTAT or DATE) to the options the writer makes itself."""
        self._check_open()
        if option_id in (Option.DONE, Option.BUFFER, Option.BUFFER_TEXT) or option_id >= 1 << 16:
            raise TraceDatError(f"option id {option_id} cannot be added by hand")
        self.extra_options.append((int(option_id), bytes(data)))

    def add_buffer(self, name: str, cpus: int | None = None, clock: str | None = None,
                   page_size: int | None = None) -> None:
        """Add a trace instance: its pages go to ``write_page(..., buffer=name)``.  In a
        version 7 file it may have a page size of its own (a kernel instance's
        ``buffer_subbuf_size_kb``)."""
        self._check_open()
        if not name or "\0" in name:
            raise TraceDatError(f"bad buffer name {name!r} (the top buffer is '')")
        if name in self._buffers:
            raise TraceDatError(f"buffer {name!r} exists already")
        cpus = self.cpus if cpus is None else cpus
        if not isinstance(cpus, int) or cpus < 1:
            raise TraceDatError(f"the number of cpus must be at least 1, not {cpus!r}")
        if self.version == 6 and cpus != self.cpus:
            raise TraceDatError("in a version 6 file every buffer has the top buffer's number of cpus")
        page_size = self.page_size if page_size is None else page_size
        if not isinstance(page_size, int) or page_size < 64 or page_size & (page_size - 1):
            raise TraceDatError(f"page size must be a power of two of at least 64, not {page_size!r}")
        if self.version == 6 and page_size != self.page_size:
            raise TraceDatError("in a version 6 file every buffer has the file's page size")
        clock = clock or self.clock
        self._buffers[name] = _new_buffer(name, cpus, clock, page_size)

    @property
    def buffer_names(self) -> list[str]:
        return list(self._buffers)

    # -- pages ---------------------------------------------------------------------------
    def write_page(self, cpu: int, page, buffer: str = "",
                   counts: tuple[int, int] | None = None) -> None:
        """Append one ring-buffer page (``page_size`` bytes) to a cpu's data."""
        self.write_pages(cpu, page, buffer, counts)

    def write_pages(self, cpu: int, data, buffer: str = "",
                    counts: tuple[int, int] | None = None) -> None:
        """Append whole pages (a multiple of ``page_size`` bytes) to a cpu's data.

        ``counts``: ``(events, lost)`` of the pages as their maker knows them (a ring's
        :meth:`~usertrace.buffer.ring.RingBuffer.read_counted`), for the CPUSTAT options;
        without them the pages are walked to count them."""
        self._check_open()
        buf = self._buffers.get(buffer)
        if buf is None:
            raise TraceDatError(f"no buffer {buffer!r} (add it with add_buffer)")
        if not isinstance(cpu, int) or not 0 <= cpu < buf.cpus:
            raise TraceDatError(f"cpu {cpu!r} out of range for buffer {buffer!r} with {buf.cpus} cpus")
        n = len(data)
        if n == 0 or n % buf.page_size:
            raise TraceDatError(f"{n} bytes are not whole pages of {buf.page_size} bytes")
        at = buf.sizes[cpu]
        f = None
        try:
            f = buf.files.get(cpu)
            if f is None:
                # Unbuffered: a page is on disk or refused, never half kept in a buffer.
                f = buf.files[cpu] = tempfile.TemporaryFile(dir=self.tmpdir, buffering=0,
                                                            prefix=".usertrace-cpu")
            written = os.pwrite(f.fileno(), data, at)
            if written != n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            if f is not None:
                try:
                    os.ftruncate(f.fileno(), at)      # no torn page is ever kept
                except OSError:
                    pass
            raise TraceDatError(f"cannot keep pages in a temporary file in {self.tmpdir}: {exc.strerror}") from None
        buf.sizes[cpu] += n
        if buf.counted and cpu not in buf.given:
            if counts is None:
                self._count(buf, cpu, data)
            else:
                buf.events[cpu] += counts[0]
                buf.lost[cpu] += counts[1]

    def set_counts(self, cpu: int, events: int, lost: int, buffer: str = "") -> None:
        """The counts of a cpu's pages given by their maker (the kernel's per-cpu ``stats``
        for pages read from ``trace_pipe_raw``): from now on its pages are not walked to
        count them, and these counts are the CPUSTAT's.  Give them (0, 0) before the first
        page, the final ones at the end."""
        self._check_open()
        buf = self._buffers[buffer]
        buf.given.add(cpu)
        buf.events[cpu] = events
        buf.lost[cpu] = lost

    def _count(self, buf: _BufferOut, cpu: int, data) -> None:
        """Count the events of the pages (for the CPUSTAT options); a page that does not
        decode leaves the buffer without counts."""
        ps = buf.page_size
        reader = self._page_readers.get(ps)
        try:
            if reader is None:
                abi = Abi("<" if self.endian == "little" else ">", self.long_size)
                try:
                    layout = PageLayout.from_header_page(self.header_page, abi)
                except RingBufferError:
                    layout = PageLayout(ps, abi)
                if layout.page_size != ps:
                    layout = PageLayout(ps, abi, commit_size=layout.commit_size,
                                        data_offset=layout.data_offset)
                reader = self._page_readers[ps] = PageReader(layout)
            mv = memoryview(data).cast("B")
            for off in range(0, len(mv), ps):
                events, lost = reader.count(mv[off:off + ps])
                buf.events[cpu] += events
                buf.lost[cpu] += lost
        except RingBufferError:
            buf.counted = False

    def num_bytes(self, cpu: int, buffer: str = "") -> int:
        """Bytes of pages written so far for a cpu."""
        return self._buffers[buffer].sizes[cpu]

    def make_room(self, nbytes: int) -> int:
        """Free ``nbytes`` on the file system of the temporary page files by dropping the
        newest pages of the cpu that has most (a full disk: what fits is kept, so that the
        trace.dat can still be written).  Returns the number of events dropped."""
        dropped = 0
        while _free_bytes(self.tmpdir) < nbytes:
            buf, cpu = max(((b, c) for b in self._buffers.values() for c in b.files),
                           key=lambda bc: bc[0].sizes[bc[1]], default=(None, 0))
            if buf is None or not buf.sizes[cpu]:
                break
            ps = buf.page_size
            keep = buf.sizes[cpu] - ps
            f = buf.files[cpu]
            page = os.pread(f.fileno(), ps, keep)
            events = _count_events(page, self, ps)
            dropped += events
            os.ftruncate(f.fileno(), keep)
            buf.sizes[cpu] = keep
            if buf.counted:
                buf.events[cpu] -= events
        return dropped

    # -- finishing -----------------------------------------------------------------------
    def __enter__(self) -> "TraceDatWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Drop everything written so far; no file is made."""
        self._release()
        self._output.discard()
        self._closed = True

    def close(self) -> None:
        """Write the trace.dat and put it in place of PATH (or through, for a FIFO)."""
        if self._closed:
            return
        try:
            out = self._output.open()
            if self.version == 6:
                _V6Layout(self, out).write()
            else:
                _V7Layout(self, out).write()
            self._output.commit()
        except OSError as exc:
            self._output.discard()
            raise TraceDatError(f"cannot write {self.path}: {exc.strerror}") from None
        except BaseException:
            self._output.discard()
            raise
        finally:
            self._release()
            self._closed = True

    def _release(self) -> None:
        for buf in self._buffers.values():
            for f in buf.files.values():
                f.close()
            buf.files.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise TraceDatError(f"{self.path}: the writer is closed")

    # -- pieces shared by both versions --------------------------------------------------
    def _header_info(self) -> bytes:
        n = self.num
        hp, he = _text(self.header_page), _text(self.header_event)
        return b"header_page\0" + n.u64.pack(len(hp)) + hp + b"header_event\0" + n.u64.pack(len(he)) + he

    def _ftrace_formats(self) -> bytes:
        n = self.num
        parts = [n.u32.pack(len(self.ftrace_events))]
        for text in self.ftrace_events:
            t = _text(text)
            parts += [n.u64.pack(len(t)), t]
        return b"".join(parts)

    def _event_formats(self) -> bytes:
        n = self.num
        parts = [n.u32.pack(len(self.event_systems))]
        for system, texts in self.event_systems.items():
            parts += [_text(system) + b"\0", n.u32.pack(len(texts))]
            for text in texts:
                t = _text(text)
                parts += [n.u64.pack(len(t)), t]
        return b"".join(parts)

    def _sized4(self, text: str) -> bytes:
        t = _text(text)
        return self.num.u32.pack(len(t)) + t

    def _cmdlines(self) -> bytes:
        t = _text(cmdlines_text(self.cmdlines))
        return self.num.u64.pack(len(t)) + t

    def _cpustats(self) -> list[tuple[int, bytes]]:
        """CPUSTAT options with the counts of every cpu of every buffer (none when the caller
        added its own, or when a page could not be counted)."""
        if any(oid == Option.CPUSTAT for oid, _ in self.extra_options):
            return []
        if not all(b.counted for b in self._buffers.values()):
            return []
        opts = []
        for name, buf in self._buffers.items():
            if name:
                opts.append((Option.CPUSTAT, _text(f"\nBuffer: {name}\n\n") + b"\0"))
            for cpu in range(buf.cpus):
                text = (f"CPU: {cpu}\nentries: 0\noverrun: {buf.lost[cpu]}\n"
                        f"read events: {buf.events[cpu]}\n")
                opts.append((Option.CPUSTAT, _text(text) + b"\0"))
        return opts

    def _common_options(self) -> list[tuple[int, bytes]]:
        opts = self._cpustats()
        opts.append((Option.TRACECLOCK, _text(clock_option_text(self.clock) + "\n") + b"\0"))
        if self.uname:
            opts.append((Option.UNAME, _text(self.uname) + b"\0"))
        opts.append((Option.VERSION, _text(f"usertrace {_usertrace_version}") + b"\0"))
        return opts + self.extra_options


class _Layout:
    """Writes one file sequentially; knows where it is without asking the file."""

    def __init__(self, w: TraceDatWriter, out):
        self.w = w
        self.out = out
        self.num = w.num
        self.pos = 0

    def put(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def pad_to(self, offset: int) -> None:
        if offset > self.pos:
            self.put(bytes(offset - self.pos))

    def patch(self, offset: int, data: bytes) -> None:
        self.out.seek(offset)
        self.out.write(data)
        self.out.seek(self.pos)

    def copy_pages(self, f) -> None:
        """Copy a cpu's temporary file here (sendfile; a read/write loop where it is refused)."""
        f.flush()
        size = f.seek(0, os.SEEK_END)
        self.out.flush()
        done = 0
        try:
            while done < size:
                sent = os.sendfile(self.out.fileno(), f.fileno(), done,
                                   min(_COPY_CHUNK, size - done))
                if sent == 0:
                    break
                _punch_hole(f.fileno(), done, sent)   # copied: its blocks are free again,
                done += sent                          # so a nearly full disk holds the copy
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
        if done < size:
            f.seek(done)
            self.out.seek(self.pos + done)
            while done < size:
                chunk = f.read(min(_COPY_CHUNK, size - done))
                if not chunk:
                    raise TraceDatError("a temporary page file shrank while being copied")
                self.out.write(chunk)
                done += len(chunk)
        self.pos += size
        self.out.seek(self.pos)

    def copy_pages_compressed(self, f, codec: Codec, page_size: int) -> int:
        """Write a cpu's pages as trace-cmd's chunks; return the size trace-cmd records.

        The data is a u32 count of chunks, then per chunk u32 compressed size, u32 size and
        the compressed bytes; the size in the BUFFER option leaves out the count.
        """
        f.flush()
        f.seek(0)
        count_at = self.pos
        self.put(bytes(4))
        chunks = 0
        written = 0
        while True:
            raw = f.read(PAGES_IN_CHUNK * page_size)
            if not raw:
                break
            z = codec.compress(raw)
            self.put(self.num.chunk_header.pack(len(z), len(raw)) + z)
            written += len(z) + 8
            chunks += 1
        self.patch(count_at, self.num.u32.pack(chunks))
        return written

    def file_header(self) -> None:
        w = self.w
        self.put(MAGIC + str(w.version).encode() + b"\0")
        self.put(bytes([0 if w.endian == "little" else 1, w.long_size]))
        self.put(self.num.u32.pack(w.page_size))


class _V6Layout(_Layout):
    def write(self) -> None:
        w, n = self.w, self.num
        self.file_header()
        self.put(w._header_info())
        self.put(w._ftrace_formats())
        self.put(w._event_formats())
        self.put(w._sized4(w.kallsyms))
        self.put(w._sized4(w.printk_formats))
        self.put(w._cmdlines())
        self.put(n.u32.pack(w.cpus))
        self.put(V6_OPTIONS)
        buffer_slots: dict[str, int] = {}
        for oid, data in w._common_options():
            self.put(n.u16.pack(oid) + n.u32.pack(len(data)) + data)
        for name in w._buffers:
            if not name:
                continue
            data = bytes(8) + _text(name) + b"\0"
            self.put(n.u16.pack(Option.BUFFER) + n.u32.pack(len(data)))
            buffer_slots[name] = self.pos
            self.put(data)
        self.put(n.u16.pack(Option.DONE))
        for name, buf in w._buffers.items():
            if name:
                self.patch(buffer_slots[name], n.u64.pack(self.pos))
            self.flyrecord(buf)

    def flyrecord(self, buf: _BufferOut) -> None:
        """``flyrecord\\0``, (offset, size) per cpu, the clock, then each cpu's pages."""
        w, n = self.w, self.num
        self.put(V6_FLYRECORD)
        clock = _text(clock_option_text(buf.clock))
        pos = self.pos + 16 * buf.cpus + 8 + len(clock)
        table = []
        for cpu in range(buf.cpus):
            pos = align(pos, w.page_size)
            table.append(n.offset_size.pack(pos, buf.sizes[cpu]))
            pos += buf.sizes[cpu]
        self.put(b"".join(table))
        self.put(n.u64.pack(len(clock)) + clock)
        for cpu in range(buf.cpus):
            self.pad_to(align(self.pos, w.page_size))
            if buf.sizes[cpu]:
                self.copy_pages(buf.files[cpu])


class _V7Layout(_Layout):
    def __init__(self, w: TraceDatWriter, out):
        super().__init__(w, out)
        self.strings = bytearray()
        self.string_ids: dict[str, int] = {}

    def string_id(self, s: str) -> int:
        sid = self.string_ids.get(s)
        if sid is None:
            sid = self.string_ids[s] = len(self.strings)
            self.strings += _text(s) + b"\0"
        return sid

    def section(self, sec_id: int, description: str, data: bytes, compress: bool = True) -> int:
        """Write a whole section; return the offset of its header."""
        at = self.pos
        flags = 0
        if compress and self.w.codec is not None:
            z = self.w.codec.compress(data)
            data = self.num.chunk_header.pack(len(z), len(data)) + z
            flags = SECTION_FL_COMPRESS
        self.put(self.num.section_header.pack(sec_id, flags, self.string_id(description), len(data)))
        self.put(data)
        return at

    def write(self) -> None:
        w, n = self.w, self.num
        self.file_header()
        codec = w.codec
        self.put((codec.name if codec else "none").encode() + b"\0" + (codec.version if codec else "").encode() + b"\0")
        options_start_at = self.pos
        self.put(bytes(8))
        meta = [
            (Option.HEADER_INFO, "headers", w._header_info()),
            (Option.FTRACE_EVENTS, "ftrace events", w._ftrace_formats()),
            (Option.EVENT_FORMATS, "events format", w._event_formats()),
            (Option.KALLSYMS, "kallsyms", w._sized4(w.kallsyms)),
            (Option.PRINTK, "printk", w._sized4(w.printk_formats)),
            (Option.CMDLINES, "command lines", w._cmdlines()),
        ]
        options: list[tuple[int, bytes]] = []
        for sec_id, desc, data in meta:
            options.append((sec_id, n.u64.pack(self.section(sec_id, desc, data))))
        options.append((Option.CPUCOUNT, n.u32.pack(w.cpus)))
        options += w._common_options()
        for buf in w._buffers.values():
            options.append((Option.BUFFER, self.flyrecord(buf)))
        options_at = self.pos
        body = b"".join(n.u16.pack(oid) + n.u32.pack(len(d)) + d for oid, d in options)
        body += n.u16.pack(Option.DONE) + n.u32.pack(8) + n.u64.pack(0)
        self.section(Option.DONE, "options", body, compress=False)
        self.string_id("strings")
        self.section(Option.STRINGS, "strings", bytes(self.strings))
        self.patch(options_start_at, n.u64.pack(options_at))

    def flyrecord(self, buf: _BufferOut) -> bytes:
        """Write a buffer's flyrecord section; return its BUFFER option's data."""
        w, n = self.w, self.num
        at = self.pos
        flags = SECTION_FL_COMPRESS if w.codec is not None else 0
        self.put(n.section_header.pack(Option.BUFFER, flags, self.string_id(f"buffer flyrecord {buf.name}"), 0))
        cpus = []
        for cpu in range(buf.cpus):
            self.pad_to(align(self.pos, buf.page_size))
            offset, size = self.pos, buf.sizes[cpu]
            if size and w.codec is not None:
                size = self.copy_pages_compressed(buf.files[cpu], w.codec, buf.page_size)
            elif size:
                self.copy_pages(buf.files[cpu])
            cpus.append(n.buffer_cpu.pack(cpu, offset, size))
        self.patch(at + 8, n.u64.pack(self.pos - at - SECTION_HEADER_SIZE))
        return b"".join([
            n.u64.pack(at),
            _text(buf.name) + b"\0",
            _text(buf.clock) + b"\0",
            n.u32.pack(buf.page_size),
            n.u32.pack(buf.cpus),
            *cpus,
        ])
