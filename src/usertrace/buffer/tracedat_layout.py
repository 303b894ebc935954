"""The layout of trace-cmd's ``trace.dat`` (versions 6 and 7): constants, numbers, small texts.

A ``trace.dat`` starts with ``\\x17\\x08\\x44tracing``, the version as a NUL-terminated string,
one byte of endianness (0 little, 1 big), one byte of ``long`` size and the page size (u32).
From there on every number is in the file's byte order.

Version 6 then carries its metadata in a fixed order (header_page, header_event, ftrace
formats, event formats, kallsyms, printk formats, cmdlines, the cpu count, ``options  \\0``
with its options, ``flyrecord\\0`` with an (offset, size) pair per cpu) and the per-cpu data,
each cpu's pages at a page-aligned offset.

Version 7 adds a compression header (``name\\0version\\0``, ``none`` for none) and the offset
of the first options section; everything else is a *section*: a 16-byte header (u16 id,
u16 flags, u32 description string id, u64 size) and its data.  The options section (id 0)
points at the others; a BUFFER option per trace instance points at its flyrecord section and
gives each cpu's data offset and size.

The facts come from trace-cmd's ``Documentation/trace-cmd/trace-cmd.dat.v6.5.txt``,
``trace-cmd.dat.v7.5.txt`` and what ``lib/trace-cmd/trace-input.c`` (3.1.6) really requires.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

from ..errors import UsertraceError

MAGIC = b"\x17\x08\x44tracing"
SUPPORTED_VERSIONS = (6, 7)

#: version 6: the 10-byte markers after the cpu count
V6_OPTIONS = b"options  \0"
V6_FLYRECORD = b"flyrecord\0"
V6_LATENCY = b"latency  \0"

SECTION_HEADER_SIZE = 16
SECTION_FL_COMPRESS = 1

#: trace-cmd compresses per-cpu data in chunks of this many pages
PAGES_IN_CHUNK = 10

#: Bounds a reader keeps to, whatever a file says: a ring-buffer page (the kernel's largest
#: sub-buffer is far smaller), a decompressed metadata section (kallsyms of a large kernel
#: is some 20 MB) and a decompressed chunk of pages (trace-cmd's hold PAGES_IN_CHUNK pages).
MAX_PAGE_SIZE = 1 << 20
MAX_SECTION_SIZE = 64 << 20
MAX_CHUNK_SIZE = 16 << 20


class Option(IntEnum):
    """Option ids (``enum tracecmd_option_id``); in v7 also the ids of the sections."""

    DONE = 0
    DATE = 1
    CPUSTAT = 2
    BUFFER = 3
    TRACECLOCK = 4
    UNAME = 5
    HOOK = 6
    OFFSET = 7
    CPUCOUNT = 8
    VERSION = 9
    PROCMAPS = 10
    TRACEID = 11
    TIME_SHIFT = 12
    GUEST = 13
    TSC2NSEC = 14
    STRINGS = 15
    HEADER_INFO = 16
    FTRACE_EVENTS = 17
    EVENT_FORMATS = 18
    KALLSYMS = 19
    PRINTK = 20
    CMDLINES = 21
    BUFFER_TEXT = 22
    BTF_FILE = 23
    LAST_BOOT_INFO = 24
    MODULES_FILE = 25


def option_name(option_id: int) -> str:
    try:
        return Option(option_id).name
    except ValueError:
        return f"option {option_id}"


class TraceDatError(UsertraceError):
    """A trace.dat that cannot be written or read; the message names the fault and where."""

    def __init__(self, message: str, offset: int | None = None, path: str | None = None):
        self.message = message
        self.offset = offset
        self.path = path
        where = f" (at byte offset {offset})" if offset is not None else ""
        prefix = f"{path}: " if path else ""
        super().__init__(f"{prefix}{message}{where}")


class Numbers:
    """The file's integers bound to its byte order (``Numbers(little_endian=True)``)."""

    def __init__(self, little_endian: bool = True):
        self.little_endian = little_endian
        e = "<" if little_endian else ">"
        self.u16 = struct.Struct(e + "H")
        self.u32 = struct.Struct(e + "I")
        self.i32 = struct.Struct(e + "i")
        self.u64 = struct.Struct(e + "Q")
        self.section_header = struct.Struct(e + "HHiQ")
        self.offset_size = struct.Struct(e + "QQ")
        self.chunk_header = struct.Struct(e + "II")
        self.buffer_cpu = struct.Struct(e + "IQQ")


# -- the texts of events/header_page and events/header_event ---------------------------------

def header_page_text(page_size: int = 4096, long_size: int = 8) -> str:
    """``events/header_page`` as the kernel prints it for this page size and ``long`` size.

    The page header is a u64 timestamp and a ``local_t`` commit (a kernel long), then the
    data; ``overwrite`` shares the commit's first byte.
    """
    data_offset = 8 + long_size
    return (
        "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
        f"\tfield: local_t commit;\toffset:8;\tsize:{long_size};\tsigned:1;\n"
        "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
        f"\tfield: char data;\toffset:{data_offset};\tsize:{page_size - data_offset};\tsigned:0;\n"
    )


HEADER_EVENT_TEXT = (
    "# compressed entry header\n"
    "\ttype_len    :    5 bits\n"
    "\ttime_delta  :   27 bits\n"
    "\tarray       :   32 bits\n"
    "\n"
    "\tpadding     : type == 29\n"
    "\ttime_extend : type == 30\n"
    "\ttime_stamp : type == 31\n"
    "\tdata max type_len  == 28\n"
)


# -- trace_clock and saved_cmdlines texts -------------------------------------------------------

def clock_option_text(clock: str) -> str:
    """The ``trace_clock`` file's way of naming the clock in use: ``[mono]``."""
    return f"[{clock}]"


def parse_clock_text(text: str) -> str | None:
    """The selected clock of a ``trace_clock`` text (``local [mono] boot`` -> ``mono``)."""
    for word in text.replace("\0", " ").split():
        if word.startswith("["):
            name = word.strip("[]")
            return name or None
    return None


def cmdlines_text(cmdlines: dict[int, str]) -> str:
    """``saved_cmdlines``: one ``pid comm`` line per task, by pid."""
    return "".join(f"{pid} {comm}\n" for pid, comm in sorted(cmdlines.items()))


def parse_cmdlines(text: str) -> dict[int, str]:
    """{pid: comm} from a ``saved_cmdlines`` text; lines that do not start with a pid are skipped."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        pid, _, comm = line.partition(" ")
        try:
            out[int(pid)] = comm
        except ValueError:
            continue
    return out


# -- compression ------------------------------------------------------------------------------

class Codec:
    """One compression algorithm of trace-cmd's: its name and version as the file names them."""

    name = "none"
    version = ""

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes, size: int) -> bytes:
        raise NotImplementedError


class ZlibCodec(Codec):
    """trace-cmd's ``zlib``: ``compress2()`` at the best level, ``uncompress()`` back."""

    name = "zlib"
    version = zlib.ZLIB_RUNTIME_VERSION

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 9)

    def decompress(self, data: bytes, size: int) -> bytes:
        d = zlib.decompressobj()
        out = d.decompress(data, size)
        if d.unconsumed_tail or not d.eof:
            raise ValueError("zlib data does not end where its size says")
        return out


class ZstdCodec(Codec):
    """trace-cmd's ``zstd`` (frames without a content size), through the ``zstandard`` module."""

    name = "zstd"

    def __init__(self, zstandard_module):
        self._z = zstandard_module
        self.version = zstandard_module.ZSTD_VERSION and ".".join(
            str(x) for x in zstandard_module.ZSTD_VERSION
        )

    def compress(self, data: bytes) -> bytes:
        params = self._z.ZstdCompressionParameters.from_level(3, write_content_size=False)
        return self._z.ZstdCompressor(compression_params=params).compress(data)

    def decompress(self, data: bytes, size: int) -> bytes:
        # a stream read of at most size + 1 bytes: it neither reserves ``size`` bytes that a
        # damaged header may overstate nor follows a bomb past what the header says
        out = self._z.ZstdDecompressor().stream_reader(data).read(size + 1)
        if len(out) != size:
            raise ValueError(f"zstd data gives {'more than ' if len(out) > size else ''}"
                             f"{min(len(out), size)} bytes, {size} expected")
        return out


def get_codec(name: str, version: str = "") -> Codec | None:
    """The codec for a compression header's name; None for ``none``.

    Raises TraceDatError for an algorithm this Python cannot do (zstd needs ``zstandard``).
    """
    if name == "none":
        return None
    if name == "zlib":
        return ZlibCodec()
    if name == "zstd":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise TraceDatError(
                f"the file is compressed with zstd {version}; reading it needs the Python "
                "module 'zstandard', which is not installed (or convert the file with "
                "'trace-cmd convert --compression none')"
            ) from None
        return ZstdCodec(zstandard)
    raise TraceDatError(f"unknown compression algorithm {name!r} (version {version!r})")
