"""The kernel's ring-buffer page format, described as data and bound to an ABI at run time.

A ring buffer is a list of pages (sub-buffers).  Each page is::

    offset 0   u64      timestamp     time of the first event on the page (ns of the trace clock)
    offset 8   local_t  commit        bytes of event data; the top bits of its low 32 bits are
                                      flags: 1<<31 events were lost before this page,
                                      1<<30 their count is stored after the data (an
                                      ``unsigned long`` at data[commit])
    offset 16  data[]                 events, back to back

(the offsets are those of a 64-bit kernel: ``local_t`` is a ``long``).  On a 64-bit kernel the
flag 1<<31 is added to the ``long`` as the C ``int`` ``1 << 31`` and is sign-extended, so a page
with lost events carries ``0xffffffff8...`` in its commit word.

Every event starts with a 32-bit header, ``type_len:5`` in the low bits and ``time_delta:27``
above, followed by ``array[]``::

    type_len 1..28  data event, ``type_len * 4`` bytes of payload from array[0]
    type_len 0      data event, array[0] = payload bytes + 4, payload from array[1]
    type_len 29     padding: time_delta 0 = the rest of the page is unused; otherwise
                    array[0] bytes follow (the end of a page, or a discarded event)
    type_len 30     time extend: delta = array[0] << 27 | time_delta, for the next event
    type_len 31     absolute time stamp: the low 59 bits of the time in the same split

Worked example, three events on one page (little endian)::

    timestamp = 1000        commit = 32
    04 00 00 00  ...16 B    type_len=4 delta=0   -> ts 1000, 16 bytes of payload
    46 01 00 00  ...24 B    type_len=6 delta=10  -> ts 1010 (0x146 = 10 << 5 | 6)

The sizes come from ``kernel/trace/ring_buffer.c`` (``rb_calculate_event_length``,
``rb_update_event``); ``events/header_page`` and ``events/header_event`` of a tracefs show the
same facts.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from usertrace.errors import UsertraceError
from usertrace.events.records import NATIVE, Abi

# -- event header ------------------------------------------------------------------------------
TYPE_PADDING = 29
TYPE_TIME_EXTEND = 30
TYPE_TIME_STAMP = 31
TYPE_DATA_MAX = 28              # RINGBUF_TYPE_DATA_TYPE_LEN_MAX

TS_SHIFT = 27
TS_MASK = (1 << TS_SHIFT) - 1   # what fits in time_delta
TS_LIMIT = 1 << 59              # what fits in a time extend (27 + 32 bits)
TS_MSB = 0xF8 << 56             # the 5 bits an absolute time stamp cannot hold

EVENT_HEADER_SIZE = 4           # RB_EVNT_HDR_SIZE
RB_ALIGNMENT = 4
MAX_SMALL_DATA = RB_ALIGNMENT * TYPE_DATA_MAX     # 112: longer payloads keep their length
                                                  # in array[0]
EVENT_MIN_SIZE = 8              # RB_EVNT_MIN_SIZE: the smallest padding with a length
LEN_TIME_EXTEND = 8             # RB_LEN_TIME_EXTEND == RB_LEN_TIME_STAMP

# -- page header -------------------------------------------------------------------------------
MISSED_EVENTS = 1 << 31         # RB_MISSED_EVENTS
MISSED_STORED = 1 << 30         # RB_MISSED_STORED
MISSED_MASK = MISSED_EVENTS | MISSED_STORED

PAGE_SIZE_DEFAULT = 4096


class RingBufferError(UsertraceError, ValueError):
    """Bad input to the ring buffer: a corrupt page (the message names the page index and the
    byte offset in the page), or a write the buffer cannot take."""

    def __init__(self, message: str, page: int | None = None, offset: int | None = None):
        self.message = message
        self.page = page
        self.offset = offset
        where = []
        if page is not None:
            where.append(f"page {page}")
        if offset is not None:
            where.append(f"offset {offset} (0x{offset:x})")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True)
class PageLayout:
    """The page format of one kernel build: page size, byte order, ``long`` size, alignment.

    ``force_8byte_alignment`` is the kernel's ``RB_FORCE_8BYTE_ALIGNMENT``, set on
    architectures with ``CONFIG_HAVE_64BIT_ALIGNED_ACCESS`` (not x86_64): every data event then
    keeps its length in array[0] and events are 8-byte aligned.
    """

    page_size: int = PAGE_SIZE_DEFAULT
    abi: Abi = NATIVE
    force_8byte_alignment: bool = False
    commit_size: int = 0        # sizeof(local_t); 0: the abi's long size
    data_offset: int = 0        # offsetof(struct buffer_data_page, data); 0: computed

    # derived, filled in __post_init__
    data_size: int = field(init=False, repr=False, compare=False)
    alignment: int = field(init=False, repr=False, compare=False)
    max_payload: int = field(init=False, repr=False, compare=False)
    page_header: struct.Struct = field(init=False, repr=False, compare=False)
    u32: struct.Struct = field(init=False, repr=False, compare=False)
    u32x2: struct.Struct = field(init=False, repr=False, compare=False)
    u64: struct.Struct = field(init=False, repr=False, compare=False)
    ulong: struct.Struct = field(init=False, repr=False, compare=False)
    small_lengths: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        e = self.abi.endian
        set_ = object.__setattr__
        commit_size = self.commit_size or self.abi.long_size
        if commit_size not in (4, 8) or self.abi.long_size not in (4, 8):
            raise RingBufferError(f"unsupported long size {commit_size}")
        alignment = 8 if self.force_8byte_alignment else RB_ALIGNMENT
        data_offset = self.data_offset or align(8 + commit_size, alignment)
        set_(self, "commit_size", commit_size)
        set_(self, "data_offset", data_offset)
        set_(self, "alignment", alignment)
        data_size = self.page_size - data_offset
        if data_size < 4 * EVENT_MIN_SIZE or data_size >= 1 << 27:
            raise RingBufferError(f"unsupported page size {self.page_size}")
        set_(self, "data_size", data_size)
        # BUF_MAX_DATA_SIZE: a page minus one 8-byte header (event header + array[0])
        set_(self, "max_payload", data_size - 2 * EVENT_HEADER_SIZE)
        commit_code = "q" if commit_size == 8 else "I"
        set_(self, "page_header", struct.Struct(f"{e}Q{commit_code}"))
        set_(self, "u32", struct.Struct(e + "I"))
        set_(self, "u32x2", struct.Struct(e + "II"))
        set_(self, "u64", struct.Struct(e + "Q"))
        set_(self, "ulong", struct.Struct(e + ("Q" if self.abi.long_size == 8 else "I")))
        set_(self, "small_lengths",
             tuple(self._calculate_length(n) for n in range(MAX_SMALL_DATA + 1)))

    # -- sizes ----------------------------------------------------------------------------
    def _calculate_length(self, n: int) -> int:
        """rb_calculate_event_length: bytes of a data event with an ``n``-byte payload."""
        length = n or 1                    # zero length would confuse readers
        if length > MAX_SMALL_DATA or self.force_8byte_alignment:
            length += 4                    # array[0] holds the length
        length = align(length + EVENT_HEADER_SIZE, self.alignment)
        if length == LEN_TIME_EXTEND + RB_ALIGNMENT:
            # 12 bytes could not be turned into a time extend plus padding: round to 16
            length += RB_ALIGNMENT
        return length

    def event_length(self, n: int) -> int:
        """Bytes a data event with an ``n``-byte payload takes on a page (header included)."""
        if n <= MAX_SMALL_DATA:
            return self.small_lengths[n]
        return self._calculate_length(n)

    def has_length_word(self, n: int) -> bool:
        """True when an ``n``-byte payload keeps its length in array[0] (type_len 0)."""
        return n > MAX_SMALL_DATA or self.force_8byte_alignment

    def stored_payload_size(self, n: int) -> int:
        """The payload size a reader sees for an ``n``-byte payload: the kernel keeps lengths
        in 4-byte units, so payloads come back zero-padded."""
        length = self.event_length(n)
        return length - (2 if self.has_length_word(n) else 1) * EVENT_HEADER_SIZE

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_header_page(cls, text: str, abi: Abi = NATIVE,
                         force_8byte_alignment: bool = False) -> "PageLayout":
        """The layout that an ``events/header_page`` text describes.

        The text gives the offset and size of ``commit`` (the ``long`` size) and of ``data``
        (the sub-buffer's data size).  Neither the byte order nor the kernel's 8-byte
        alignment setting is in it: they come from ``abi`` and ``force_8byte_alignment``.
        """
        fields = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            m = _HEADER_FIELD.match(line)
            if m is None:
                raise RingBufferError(f"header_page line {lineno}: cannot parse {line!r}")
            fields[m.group("name")] = (int(m.group("offset")), int(m.group("size")))
        for name in ("timestamp", "commit", "data"):
            if name not in fields:
                raise RingBufferError(f"header_page has no field {name!r}")
        commit_off, commit_size = fields["commit"]
        data_off, data_size = fields["data"]
        if fields["timestamp"] != (0, 8) or commit_off != 8 or commit_size not in (4, 8):
            raise RingBufferError(f"header_page describes an unknown page header: {fields}")
        long_abi = abi if abi.long_size == commit_size else Abi(abi.endian, commit_size)
        return cls(page_size=data_off + data_size, abi=long_abi, commit_size=commit_size,
                   data_offset=data_off, force_8byte_alignment=force_8byte_alignment)

    # -- page header ----------------------------------------------------------------------
    def commit_word(self, commit: int, missed: bool, stored: bool) -> int:
        """The commit field as the kernel leaves it: flags added as C ints (sign-extended)."""
        value = commit
        if stored:
            value += MISSED_STORED
        if missed:
            value += MISSED_EVENTS if self.commit_size == 4 else -MISSED_EVENTS
        return value

    def split_commit(self, word: int) -> tuple[int, int] | None:
        """(length, flags) of a commit word, or None when its high bits are not flags."""
        if self.commit_size == 8:
            if not -(1 << 31) <= word < 1 << 32:
                return None
            word &= 0xFFFFFFFF
        return word & ~MISSED_MASK, word & MISSED_MASK


_HEADER_FIELD = re.compile(
    r"^\s*field:\s*(?P<type>[^;]*?)\s*(?P<name>\w+);\s*offset:(?P<offset>\d+);"
    r"\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d+);\s*$")


def align(n: int, a: int) -> int:
    """``n`` rounded up to a multiple of ``a`` (a power of two), as the kernel's ``ALIGN()``."""
    return (n + a - 1) & ~(a - 1)


def fix_abs_ts(abs_ts: int, prev_ts: int) -> int:
    """rb_fix_abs_ts: put back the 5 top bits an absolute time stamp lost, from ``prev_ts``."""
    if prev_ts & TS_MSB:
        abs_ts |= prev_ts & TS_MSB
        if abs_ts < prev_ts:
            abs_ts += 1 << 59
    return abs_ts


DEFAULT_LAYOUT = PageLayout()
