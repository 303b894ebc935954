"""The user events ABI: where a session lives, and the byte layout of its files.

Everything a writer in any language needs is here as data; docs/user_events.md is the same
specification in prose.  All integers are in the machine's byte order (little-endian on
x86_64) at naturally aligned offsets; the 64-bit counters that two processes share (``head``,
``tail``, ``lost``, ``generation``) are read and written as whole aligned 8-byte words.

A session directory holds::

    control      header, generation counter, enabled patterns          (CONTROL_SIZE bytes)
    status       one status byte per event index                       (STATUS_SIZE bytes)
    registry     one slot per event index: flags, serial, definition   (REGISTRY_SIZE bytes)
    proc-<pid>   the events one process holds (a bitmap), for "busy"   (HOLDER_SIZE bytes)
    ring-<pid>-<tid>-<n>   one single-producer ring per writing thread (RING_HEADER_SIZE + data)
"""

from __future__ import annotations

import struct

# -- finding the session ------------------------------------------------------------------
SESSION_ENV = "USERTRACE_SESSION"        # an explicit session directory (tests, unusual setups)
RING_SIZE_ENV = "USERTRACE_RING_KB"      # a writer's ring size when the tracer asks for none
XDG_SUBDIR = "usertrace"                 # $XDG_RUNTIME_DIR/usertrace
SHM_DIR_TEMPLATE = "/dev/shm/usertrace-{uid}"

CONTROL_FILE = "control"
STATUS_FILE = "status"
REGISTRY_FILE = "registry"
HOLDER_PREFIX = "proc-"
RING_PREFIX = "ring-"

DIR_MODE = 0o700
FILE_MODE = 0o600

# -- the kernel's constants that carry over --------------------------------------------------
USER_EVENTS_SYSTEM = "user_events"
USER_EVENTS_MULTI_SYSTEM = "user_events_multi"
USER_EVENTS_PREFIX = "u:"

MAX_EVENT_DESC = 512          # a definition is at most 511 bytes (the kernel's strndup_user limit)
MAX_FIELD_ARRAY_SIZE = 1024   # char[N]: 1 <= N <= 1024

# Registration flags (include/uapi/linux/user_events.h, enum user_reg_flag).
USER_EVENT_REG_PERSIST = 1 << 0
USER_EVENT_REG_MULTI_FORMAT = 1 << 1
USER_EVENT_REG_MAX = 1 << 2
FLAG_NAMES = {"persist": USER_EVENT_REG_PERSIST, "multi_format": USER_EVENT_REG_MULTI_FORMAT}

# Status bits: who listens to an event (as in the seed's patch).
EVENT_STATUS_FTRACE = 1 << 0   # the trace buffer (usertrace record)
EVENT_STATUS_PERF = 1 << 1     # a live stream (usertrace stream)
EVENT_STATUS_OTHER = 1 << 7    # any other consumer
CONSUMER_TRACE = EVENT_STATUS_FTRACE
CONSUMER_STREAM = EVENT_STATUS_PERF
CONSUMER_OTHER = EVENT_STATUS_OTHER
CONSUMER_BITS = CONSUMER_TRACE | CONSUMER_STREAM | CONSUMER_OTHER

# -- records -------------------------------------------------------------------------------
# common_type u16, common_flags u8, common_preempt_count u8, common_pid s32
COMMON_SIZE = 8
# A record must fit one ring-buffer page of a trace.dat: 4096 bytes less the page header (16),
# the event header with its length word (8) and the common fields (8).
MAX_PAYLOAD = 4096 - 16 - 8 - COMMON_SIZE

# -- the status file -------------------------------------------------------------------------
MAX_EVENTS = 4096             # event indexes 1..4095; index 0 is never handed out
STATUS_SIZE = MAX_EVENTS

# -- the control file ------------------------------------------------------------------------
CONTROL_MAGIC = b"UTUECTL1"
CONTROL_VERSION = 1
CTL_MAGIC = 0                 # char[8]
CTL_VERSION = 8               # u32
CTL_SIZE = 12                 # u32: CONTROL_SIZE
CTL_GENERATION = 16           # u64: bumped (under the lock) by every change of the session
CTL_RING_SIZE = 24            # u64: data bytes the tracer asks each new ring to have (0: default)
CTL_TRACER_PID = 32           # u32: pid of the tracer attached, 0 if none
CTL_PATTERNS = 4096           # the enabled patterns
PATTERN_SLOT_SIZE = 128       # u8 used, u8 bits, u16 length, char glob[124] (NUL-padded)
PATTERN_MAX_LEN = PATTERN_SLOT_SIZE - 4
MAX_PATTERNS = 96
CONTROL_SIZE = CTL_PATTERNS + MAX_PATTERNS * PATTERN_SLOT_SIZE
PATTERN_HEAD = struct.Struct("=BBH")
# The tracer holds a write lock on this byte of the control file while it is attached.
TRACER_LOCK_OFFSET = 0

DEFAULT_RING_SIZE = 2 << 20
MIN_RING_SIZE = 64 << 10
MAX_RING_SIZE = 1 << 30

# -- the registry file -----------------------------------------------------------------------
# The registration lock is a POSIX (fcntl) write lock on the whole registry file: every change
# of the registry, the status bytes, the patterns and the holder files happens under it.
REGISTRY_MAGIC = b"UTUEREG1"
REGISTRY_VERSION = 1
REG_MAGIC = 0                 # char[8]
REG_VERSION = 8               # u32
REG_SLOT_SIZE = 12            # u32: SLOT_SIZE
REG_NSLOTS = 16               # u32: MAX_EVENTS
REG_HIGH = 20                 # u32: 1 + the highest index ever used (scans stop there)
REG_NEXT_SERIAL = 24          # u64: the serial of the next event created (never reused)
REG_NEXT_MULTI = 32           # u64: the id of the next multi-format event (name.<hex id>)
REGISTRY_HEADER = 4096
SLOT_SIZE = 576
SLOT_STATE = 0                # u32: 0 free, 1 live
SLOT_FLAGS = 4                # u32: USER_EVENT_REG_* flags
SLOT_SERIAL = 8               # u64: unique for the life of the session (never reused)
SLOT_MULTI_ID = 16            # u64: multi-format id (the hex suffix of the tracepoint name)
SLOT_DEF_LEN = 24             # u32: bytes of the definition
SLOT_DEF = 32                 # char[MAX_EVENT_DESC]: the canonical definition, NUL-padded
SLOT_FREE, SLOT_LIVE = 0, 1
REGISTRY_SIZE = REGISTRY_HEADER + MAX_EVENTS * SLOT_SIZE
SLOT_HEAD = struct.Struct("=IIQQI")

# -- holder files ------------------------------------------------------------------------------
HOLDER_MAGIC = b"UTUEPROC"
HOLDER_PID = 8                # u32
HOLDER_START = 16             # u64: the process's start time (field 22 of /proc/<pid>/stat)
HOLDER_BITMAP = 32            # MAX_EVENTS bits: bit i set while the process holds event i
HOLDER_SIZE = HOLDER_BITMAP + MAX_EVENTS // 8

# -- rings ---------------------------------------------------------------------------------
RING_MAGIC = b"UTUERNG1"
RING_VERSION = 1
RING_HEADER_SIZE = 4096
RH_MAGIC = 0                  # char[8]   (written last when the ring is made)
RH_VERSION = 8                # u32
RH_HEADER_SIZE = 12           # u32: RING_HEADER_SIZE
RH_DATA_SIZE = 16             # u64: a power of two
RH_PID = 24                   # u32: the writer's process id (tgid)
RH_TID = 28                   # u32: the writer's thread id
RH_COMM = 32                  # char[16]: the writer thread's comm
RH_START = 48                 # u64: the writer process's start time (liveness checks)
RH_FLAGS = 56                 # u32: RING_CLOSED once the writer will write no more
RH_HEAD = 64                  # u64: bytes ever published by the writer   (writer stores)
RH_TAIL = 128                 # u64: bytes ever consumed by the tracer    (tracer stores)
RH_LOST = 192                 # u64: events dropped because the ring was full (writer stores)
RH_REFUSED = 256              # u64: records the tracer refused (tracer stores, for reports)
RING_CLOSED = 1

# A record starts at an 8-aligned position of the data area and never wraps around its end:
#   u32 payload_len, u32 index_word, u64 timestamp (CLOCK_MONOTONIC ns), s32 cpu (-1: unknown),
#   u32 reserved (0), then the kernel's record: u16 common_type (ID_BASE + index),
#   u8 common_flags (0), u8 common_preempt_count (0), s32 common_pid (the writer's tid),
#   payload[payload_len], zero padding up to the next multiple of 8.
# index_word = index | (serial & 0xffff) << 16: the serial tells a record of a deleted event
# from one of a new event that got the same index.
# When a record does not fit before the end of the data area the writer stores WRAP_MARK in
# the first word there and goes on at offset 0.
RECORD_HEADER = struct.Struct("=IIQiI")
RECORD_HEADER_SIZE = RECORD_HEADER.size      # 24
RECORD_PACK_PREFIX = "=IIQi4xHxxi"           # ring header + common fields, as a writer packs them
KERNEL_RECORD_OFFSET = RECORD_HEADER_SIZE    # where the kernel's record starts in a ring record
WRAP_MARK = 0xFFFFFFFF
CPU_UNKNOWN = -1
ID_BASE = 40000               # an event's id (common_type) is ID_BASE + its index


def record_size(payload_len: int) -> int:
    """Bytes a record with ``payload_len`` bytes of payload takes in a ring."""
    return (RECORD_HEADER_SIZE + COMMON_SIZE + payload_len + 7) & ~7


# The layouts above, as native-order structs for the 8-byte words shared between processes.
# A native "Q" (no byte-order prefix) packs with one memcpy of 8 bytes, which the compiler
# turns into one 8-byte store; at an aligned address that store is atomic on x86_64.
U64 = struct.Struct("Q")
U32 = struct.Struct("I")
