"""User-space data in syscall records, as the newest kernels record it.

Since the 6.19 merge window (``kernel/trace/trace_syscalls.c``, Steven Rostedt's series "Have
syscall trace events read user space string" through "Add parsing of flags to the
sys_enter_openat trace event"), the kernel copies what some syscall arguments point to into
the ``sys_enter_*`` record.  Which arguments is a per-call list (``check_faultable_syscall``,
the *user mask*): paths and names, and for ``write``, ``pwrite64`` and ``mq_timedsend`` the
buffer with its ``count``.  This module has that list, the formats that follow from it and
the encoder of such records.

The layout, for ``openat(AT_FDCWD, "/etc/hostname", O_RDONLY)``::

    offset  field                                   bytes
     0      common header                           8
     8      int __syscall_nr                        4 (+4 padding)
    16      int dfd             (unsigned long)     8   0xffffff9c
    24      const char * filename                   8   0x7ffd...
    32      int flags                               8   0
    40      umode_t mode                            8   0
    48      __data_loc char[] __filename_val        4   len 14 << 16 | offset 52
    52      "/etc/hostname\\0"                       14

One ``__data_loc char[] __<arg>_val`` field per argument read (at most three, in argument
order) follows the arguments; the data follow those fields, in the same order.  A string is
read up to its NUL, its unprintable bytes become ``.``, and one longer than the *buffer size*
(``syscall_user_buf_size``, at most 165, 63 by default) is cut there and ends in ``...``
(``"/very/long/pa..."``); its NUL is recorded.  A buffer (``write``'s ``buf``) is recorded as
it is, ``min(count, buffer size)`` bytes, no NUL.  A NULL or unreadable pointer records
length 0.

The print fmt shows the pointer and then the data: ``filename: 0x%08lx \\"%s\\"`` with
``__get_str(__filename_val)``, ``buf: 0x%08lx (%s)`` with ``__print_dynamic_array(__buf_val,
1)``; ``sys_enter_openat`` has a print fmt of its own that names the open flags.

**Beyond the kernel** (usertrace's own, :data:`OWN_ENTER_DATA`): the socket address given to
``connect`` and ``bind``, the buffer of ``sendto`` and the option value of ``setsockopt``,
recorded as the buffer of ``write`` is, ``min(length, buffer size)`` bytes; the ``struct
timespec`` of ``nanosleep`` and ``clock_nanosleep`` (16 bytes); the signal set of
``rt_sigprocmask``, the ``struct sigaction`` of ``rt_sigaction`` and the ``struct rlimit64`` of ``prlimit64``, whole (8, 32 and 16 bytes);
the ``struct clone_args`` of ``clone3``, ``min(size, buffer size)`` bytes; ``poll``'s
array, up to *buffer size* elements (:func:`sized`).

And (:data:`ARGV_DATA`) the argument vector of ``execve`` and ``execveat`` (``argv``, an
array of string pointers ending with NULL, which the kernel does not read) is recorded at
the entry as one more ``__argv_val`` field, and the number of strings of ``envp`` as
``__envp_val`` (4 bytes, :data:`ENVP_DATA`).  ``argv``: its strings, each as a string
above (cut at the buffer size, NUL-terminated), at most *buffer size* of them (as strace's
``-s`` also counts the strings it shows) and at most 1024 bytes, then one byte: ``\x04``
when they are all there, ``\x01`` when more followed.  Its print fmt shows it as a buffer
(``argv: 0x%08lx (%s)``, ``__print_dynamic_array``), which trace-cmd reads.

And (:data:`EXIT_DATA`): what a call *returns* in user
memory (``read``'s buffer, ``readlink``'s path, ``pipe``'s two descriptors) is read at the
call's exit and recorded in its ``sys_exit_*`` record the same way: a ``__<arg>_val`` field
after ``ret``, ``min(ret, buffer size)`` bytes (or the fixed size of the object: a ``struct
stat`` of ``fstat`` and the other stat calls, ``statx``'s ``struct statx``), only when the
call succeeded.

Without user data (``--no-strings``) the formats are exactly the running kernel's
(:mod:`.events`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

from ...events.format import EventFormat, Field
from . import events as ev

EXTRA = b"..."                  # appended to a string cut at the buffer size
MAX_USER_ARGS = 3               # SYSCALL_FAULT_MAX_CNT
KERNEL_MAX_BUF_SIZE = 165       # SYSCALL_FAULT_USER_MAX: the largest syscall_user_buf_size
DEFAULT_BUF_SIZE = 63           # CONFIG_TRACE_SYSCALL_BUF_SIZE_DEFAULT
MAX_BUF_SIZE = 4000             # ours: what fits a ring-buffer page with three arguments
VAL_FIELD_TYPE = "__data_loc char[]"


def val_field_name(arg: str) -> str:
    """``__filename_val`` for ``filename``."""
    return f"__{arg}_val"


# -- which arguments: the kernel's check_faultable_syscall() ---------------------------------

@dataclass(frozen=True)
class UserData:
    """What the kernel reads for one system call at its entry.

    ``args``: the indexes of the arguments whose memory is recorded (the user mask's bits);
    ``size_arg``: for a buffer, the index of the argument that holds its size (then only one
    argument is read), None for NUL-terminated strings; ``sized_string``: a buffer with a
    size that is still shown as a string (``sethostname``).
    """

    args: tuple[int, ...]
    size_arg: int | None = None
    sized_string: bool = False
    arrays: tuple[int, ...] = ()        # usertrace's: argument vectors (ARGV_DATA)
    fixed: int = 0                      # usertrace's: a structure of this many bytes
    counts: tuple[int, ...] = ()        # usertrace's: vectors whose length is recorded
    unit: int = 1                       # bytes per unit of the size argument (poll's 8)
    # usertrace's: a structure whose size the argument size_arg decides, as (value, bytes)
    # pairs (ioctl's request): read whole or not at all, nothing for another value
    per_request: tuple[tuple[int, int], ...] = ()

    @property
    def recorded(self) -> tuple[int, ...]:
        """Every argument with a ``__<arg>_val`` field, in argument order."""
        return tuple(sorted(self.args + self.arrays + self.counts))

    @property
    def is_array(self) -> bool:
        """Recorded as raw bytes (``(%s)`` of a dynamic array), not as a string."""
        return (self.size_arg is not None or self.fixed > 0) and not self.sized_string


def _table(*groups: tuple[UserData, str]) -> dict[str, UserData]:
    out: dict[str, UserData] = {}
    for data, names in groups:
        for name in names.split():
            out[name] = data
    return out


# Keyed by the __NR_ name, as the kernel's switch is; the order of the kernel's cases.
ENTER_DATA: dict[str, UserData] = _table(
    (UserData((1,), 2), "write mq_timedsend pwrite64"),
    (UserData((0,), 1, True), "setdomainname sethostname"),
    (UserData((4,), 3, True), "kexec_file_load"),
    (UserData((0,)),
     "access acct chdir chown chmod chroot creat delete_module execve fsopen lchown open "
     "memfd_create mkdir mknod mq_open mq_unlink readlink rmdir shmdt statfs swapon swapoff "
     "truncate unlink umount2 utime utimes"),
    (UserData((1,)),
     "execveat faccessat faccessat2 finit_module fchmodat fchmodat2 fchownat fgetxattr "
     "flistxattr fsetxattr fspick fremovexattr futimesat inotify_add_watch mkdirat mknodat "
     "mount_setattr name_to_handle_at newfstatat openat openat2 open_tree open_tree_attr "
     "readlinkat quotactl syslog statx unlinkat utimensat"),
    (UserData((2,)), "init_module fsconfig"),
    (UserData((4,)), "fanotify_mark"),
    (UserData((0, 1)),
     "add_key getxattr lgetxattr lremovexattr link listxattr llistxattr lsetxattr pivot_root "
     "removexattr rename request_key setxattr symlink"),
    (UserData((0, 2)), "symlinkat"),
    (UserData((1, 3)),
     "getxattrat linkat listxattrat move_mount renameat renameat2 removexattrat setxattrat"),
    (UserData((0, 1, 2)), "mount"),
)


@dataclass(frozen=True)
class ExitData:
    """What usertrace reads at a call's exit (not the kernel): argument ``arg`` (an index),
    ``size`` bytes of it: ``"ret"`` (the return value) or a fixed number, when the call
    returned at least ``min_ret``; ``"arg"``: ``args[size_arg]`` units of ``unit`` bytes
    (:func:`sized`: ``poll``'s array again, for its ``revents``); ``"dirents"``: the ``ret``
    bytes of ``linux_dirent64`` records that ``getdents64`` wrote, of which only their
    number is recorded; ``"request"``: a structure whose size ``args[size_arg]`` decides
    (``per_request``, ioctl's request), whole or nothing; ``"written"``: what the call
    wrote, with the length it wrote at ``args[size_arg]`` (a ``socklen_t``): recorded as
    that length (4 bytes) and then ``min(length, buffer size)`` bytes of it
    (:func:`written_value`): a socket address (``accept``), a socket option's value
    (``getsockopt``)."""

    arg: int
    size: str | int = "ret"
    min_ret: int = 0
    size_arg: int | None = None         # size "arg": args[size_arg] * unit bytes
    unit: int = 1
    per_request: tuple[tuple[int, int], ...] = ()   # size "request": as UserData's


# struct stat of x86_64 (<asm/stat.h>): 144 bytes; st_mode is the u32 at 24, st_rdev the u64
# at 40, st_size the s64 at 48.
STAT_SIZE = 144
STAT_MODE, STAT_RDEV, STAT_SIZE_FIELD = 24, 40, 48
# The kernel's sigset_t of x86_64 (8 bytes) and struct sigaction (32: handler, flags,
# restorer, mask).
SIGSET_SIZE = 8
SIGACTION_SIZE = 32
RLIMIT64_SIZE = 16              # struct rlimit64: rlim_cur, rlim_max (u64 each)
TIMESPEC_SIZE = 16              # struct __kernel_timespec: tv_sec, tv_nsec (s64 each)
UTSNAME_SIZE = 390              # struct new_utsname: six char[65]
UTSNAME_FIELD = 65
POLLFD_SIZE = 8                 # struct pollfd: fd (s32), events (s16), revents (s16)
MAX_UNITS = 256                 # elements of an array of structures recorded at most
DIRENTS_MAX = 1 << 16           # bytes of getdents64's buffer read to count its entries
# struct statx (<linux/stat.h>, the same on every arch): 256 bytes; stx_mask u32 at 0,
# stx_attributes u64 at 8, stx_mode u16 at 28, stx_size u64 at 40.
STATX_SIZE = 256
STATX_MASK, STATX_ATTRIBUTES, STATX_MODE, STATX_SIZE_FIELD = 0, 8, 28, 40


def sized(count: int, unit: int, buf_size: int) -> int:
    """Bytes recorded of ``count`` units of ``unit`` bytes: bytes up to the buffer size, or,
    for an array of structures, up to *buffer size* elements (strace shows up to ``-s``
    elements), at most :data:`MAX_UNITS`."""
    count = max(0, count & 0xFFFF_FFFF_FFFF_FFFF)
    if unit == 1:
        return min(count, buf_size)
    return min(count, buf_size, MAX_UNITS) * unit


# usertrace's own: the argument of the ioctl requests the strace view decodes, by request:
# what a request is given (read at the entry) and what it fills (read at the exit).
TERMIOS_SIZE = 36               # the kernel's struct termios: 4 u32 flags, c_line, c_cc[19]
WINSIZE_SIZE = 8                # struct winsize: 4 u16
_IOCTL_IN = {"TCSETS": TERMIOS_SIZE, "TCSETSW": TERMIOS_SIZE, "TCSETSF": TERMIOS_SIZE,
             "TIOCSWINSZ": WINSIZE_SIZE, "FIONBIO": 4, "TIOCSPGRP": 4, "TIOCSPTLCK": 4}
_IOCTL_OUT = {"TCGETS": TERMIOS_SIZE, "TIOCGWINSZ": WINSIZE_SIZE, "FIONREAD": 4,
              "TIOCGPGRP": 4, "TIOCOUTQ": 4, "TIOCGPTN": 4}


def _named_values(groups: tuple[str, ...], arch: str = "x86_64") -> dict[str, int]:
    """``{name: value}`` of the named constants of ``groups`` (the generated module of
    ``arch``), a name's first value where several groups hold it."""
    from importlib import import_module
    mod = import_module(f"{__package__}.consts_{arch}")
    out: dict[str, int] = {}
    for group in groups:
        for name, value in mod.GROUPS[group][1]:
            out.setdefault(name, value)
    return out


def _ioctl_sizes(sizes: dict[str, int], arch: str = "x86_64") -> tuple[tuple[int, int], ...]:
    values = _named_values(("ioctl_cmds",), arch)
    return tuple((values[name], n) for name, n in sizes.items())


EXIT_DATA: dict[str, ExitData] = {
    "read": ExitData(1), "pread64": ExitData(1), "recvfrom": ExitData(1),
    "readlink": ExitData(1), "readlinkat": ExitData(2), "getcwd": ExitData(0),
    "getrandom": ExitData(0), "pipe": ExitData(0, 8), "pipe2": ExitData(0, 8),
    "socketpair": ExitData(3, 8), "wait4": ExitData(1, 4, 1),
    "stat": ExitData(1, STAT_SIZE), "lstat": ExitData(1, STAT_SIZE),
    "fstat": ExitData(1, STAT_SIZE), "newfstatat": ExitData(2, STAT_SIZE),
    "statx": ExitData(4, STATX_SIZE),
    "rt_sigprocmask": ExitData(2, SIGSET_SIZE), "rt_sigaction": ExitData(2, SIGACTION_SIZE),
    "prlimit64": ExitData(3, RLIMIT64_SIZE),
    "uname": ExitData(0, UTSNAME_SIZE), "getdents64": ExitData(1, "dirents"),
    "poll": ExitData(0, "arg", 1, size_arg=1, unit=POLLFD_SIZE),
    "accept": ExitData(1, "written", size_arg=2), "accept4": ExitData(1, "written", size_arg=2),
    "getsockname": ExitData(1, "written", size_arg=2),
    "getpeername": ExitData(1, "written", size_arg=2),
    "getsockopt": ExitData(3, "written", size_arg=4),
    "ioctl": ExitData(2, "request", size_arg=1, per_request=_ioctl_sizes(_IOCTL_OUT)),
}


# usertrace's own: the argument vector of a call, by the index of its argument.
ARGV_DATA: dict[str, int] = {"execve": 1, "execveat": 2}
# ... and of the environment, only its number of strings (strace shows ``/* 35 vars */``):
# 4 bytes, little-endian; nothing when the vector could not be read to its end.
ENVP_DATA: dict[str, int] = {"execve": 2, "execveat": 3}
MAX_VECTOR = 1 << 16            # a longer vector is not counted
ARGV_END = b"\x04"              # the last byte of a recorded vector: every string is there
ARGV_MORE = b"\x01"             # ... or: more strings followed
ARGV_MAX_BYTES = 1024


# usertrace's own: what some calls are given in memory, recorded as buffers: socket
# addresses (their length is the next argument), data sent and option values, a signal
# set, a struct sigaction, a time to sleep.
OWN_ENTER_DATA: dict[str, UserData] = {
    "connect": UserData((1,), 2), "bind": UserData((1,), 2),
    "sendto": UserData((1,), 2), "setsockopt": UserData((3,), 4),
    "nanosleep": UserData((0,), fixed=TIMESPEC_SIZE),
    "clock_nanosleep": UserData((2,), fixed=TIMESPEC_SIZE),
    # the room given for a socket address the call writes (socklen_t *addrlen)
    "accept": UserData((2,), fixed=4), "accept4": UserData((2,), fixed=4),
    "getsockname": UserData((2,), fixed=4), "getpeername": UserData((2,), fixed=4),
    "getsockopt": UserData((4,), fixed=4),      # the room given for the option's value
    "ioctl": UserData((2,), 1, per_request=_ioctl_sizes(_IOCTL_IN)),
    "rt_sigprocmask": UserData((1,), fixed=SIGSET_SIZE),
    "rt_sigaction": UserData((1,), fixed=SIGACTION_SIZE),
    "prlimit64": UserData((2,), fixed=RLIMIT64_SIZE),
    "clone3": UserData((0,), 1),                # struct clone_args, `size` bytes
    "poll": UserData((0,), 1, unit=POLLFD_SIZE),  # nfds struct pollfd
}


def enter_data(name: str, nargs: int | None = None) -> UserData | None:
    """The arguments recorded at the entry of ``name`` (an ``__NR_`` name), or None."""
    data = ENTER_DATA.get(name) or OWN_ENTER_DATA.get(name)
    argv = ARGV_DATA.get(name)
    if data is not None and argv is not None:
        data = UserData(data.args, data.size_arg, data.sized_string, (argv,),
                        counts=(ENVP_DATA[name],))
    if data is None or (nargs is not None and max(data.recorded) >= nargs):
        return None
    return data


def exit_data(name: str, nargs: int | None = None) -> ExitData | None:
    data = EXIT_DATA.get(name)
    if data is None or (nargs is not None and data.arg >= nargs):
        return None
    return data


# -- formats ----------------------------------------------------------------------------------

def enter_fields(args: Sequence[tuple[str, str]], data: UserData | None) -> list[Field]:
    """The own fields of a sys_enter event with its ``__<arg>_val`` fields."""
    fields = ev.enter_fields(args)
    if data is None:
        return fields
    offset = ev.ARGS_OFFSET + 8 * len(args)
    for k, i in enumerate(data.recorded):
        fields.append(Field(VAL_FIELD_TYPE, val_field_name(args[i][1]), offset + 4 * k, 4, False))
    return fields


def enter_print_fmt(args: Sequence[tuple[str, str]], data: UserData | None) -> str:
    """The print fmt, as the kernel's ``__set_enter_print_fmt`` builds it."""
    if data is None:
        return ev.enter_print_fmt([n for _, n in args])
    text, recs = [], []
    for i, (_, name) in enumerate(args):
        piece = f"{name}: 0x%08lx"
        recs.append(f", ((unsigned long)(REC->{name}))")
        if i in data.recorded:
            if data.is_array or i in data.arrays or i in data.counts:
                piece += " (%s)"
                recs.append(f", __print_dynamic_array({val_field_name(name)}, 1)")
            else:
                piece += ' \\"%s\\"'
                recs.append(f", __get_str({val_field_name(name)})")
        text.append(piece)
    return '"' + ", ".join(text) + '"' + "".join(recs)


# sys_enter_openat's own print fmt names the flags, in the kernel's order of this table.
_OPENAT_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND",
                 "O_NONBLOCK", "O_DSYNC", "O_DIRECT", "O_LARGEFILE", "O_DIRECTORY",
                 "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC")


def _open_flag_values(arch: str = "x86_64") -> dict[str, int]:
    return _named_values(("open_access", "open_flags"), arch)


def openat_print_fmt(arch: str = "x86_64") -> str:
    """The kernel's ``sys_enter_openat_print_fmt``."""
    values = _open_flag_values(arch)
    table = "".join(f'{{ 0x{values[n]:x}, "{n}" }}, ' for n in _OPENAT_FLAGS)
    table = table[:-2]
    return ('"dfd: 0x%08lx, filename: 0x%08lx \\"%s\\", flags: %s%s, mode: 0%03o",'
            " ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename)),"
            " __get_str(__filename_val),"
            ' (REC->flags & ~3) && !(REC->flags & 3) ? "O_RDONLY|" : "", '
            ' REC->flags ? __print_flags(REC->flags, "|", ' + table + ') : "O_RDONLY", '
            " ((unsigned long)(REC->mode))")


def enter_format(name: str, event: str, args: Sequence[tuple[str, str]],
                 event_id: int = 0) -> EventFormat:
    """The format of ``syscalls:sys_enter_<event>`` with user data (``name``: the __NR_ name)."""
    data = enter_data(name, len(args))
    if data is None:
        return ev.enter_format(event, args, event_id)
    print_fmt = openat_print_fmt() if name == "openat" else enter_print_fmt(args, data)
    return EventFormat(ev.SYSTEM, ev.ENTER_PREFIX + event, event_id, enter_fields(args, data),
                       print_fmt)


EXIT_DATA_OFFSET = ev.RET_FIELD.offset + ev.RET_FIELD.size


def exit_format(name: str, event: str, args: Sequence[tuple[str, str]],
                event_id: int = 0) -> EventFormat:
    """The format of ``syscalls:sys_exit_<event>``, with usertrace's ``__<arg>_val`` field
    when the call returns data in user memory (:data:`EXIT_DATA`)."""
    data = exit_data(name, len(args))
    if data is None:
        return ev.exit_format(event, event_id)
    arg = args[data.arg][1]
    field = Field(VAL_FIELD_TYPE, val_field_name(arg), EXIT_DATA_OFFSET, 4, False)
    print_fmt = f'"0x%lx {arg}: (%s)", REC->ret, __print_dynamic_array({field.name}, 1)'
    return EventFormat(ev.SYSTEM, ev.EXIT_PREFIX + event, event_id,
                       [ev.NR_FIELD, ev.RET_FIELD, field], print_fmt)


def build_events(table=None) -> list[ev.SyscallEvents]:
    """:func:`.events.build_events` with user data in the formats that have some."""
    if table is None:
        from .table_x86_64 import SYSCALLS as table
    out = []
    for nr, name, event, args in table:
        if event is None:
            continue
        args = tuple(args)
        out.append(ev.SyscallEvents(nr, name, event, args, enter_format(name, event, args),
                                    exit_format(name, event, args)))
    return out


# -- records ----------------------------------------------------------------------------------

# The kernel's isprint() (lib/ctype.c): ASCII 0x20..0x7e and Latin-1 0xa0..0xff.
_UNPRINTABLE = bytes(c for c in range(256) if not (0x20 <= c <= 0x7E or c >= 0xA0))
_DOTS = bytes.maketrans(_UNPRINTABLE, b"." * len(_UNPRINTABLE))


def string_value(raw: bytes | None, buf_size: int = DEFAULT_BUF_SIZE) -> bytes:
    """What the kernel records of a string that reads ``raw`` (its bytes before the NUL, as
    many as were read: more than ``buf_size`` means it is longer): unprintable bytes as
    ``.``, cut at ``buf_size`` with ``...``, then a NUL.  None (unreadable): nothing."""
    if raw is None or buf_size <= 0:
        return b""
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    raw = raw.translate(_DOTS)
    if len(raw) > buf_size:
        return raw[:buf_size] + EXTRA + b"\0"
    return raw + b"\0"


def array_value(raw: bytes | None, count: int, buf_size: int = DEFAULT_BUF_SIZE) -> bytes:
    """What the kernel records of a buffer of ``count`` bytes of which ``raw`` were read."""
    if raw is None or buf_size <= 0:
        return b""
    return bytes(raw[: max(0, min(count, buf_size))])


def argv_value(items: Sequence[bytes | None], more: bool = False,
               buf_size: int = DEFAULT_BUF_SIZE) -> bytes:
    """What usertrace records of an argument vector whose strings read ``items`` (as
    :func:`string_value` takes them; None: unreadable, the vector ends there), ``more``: it
    had more strings than were read."""
    out = bytearray()
    for raw in items:
        if raw is None:
            more = True
            break
        value = string_value(raw, buf_size)
        if len(out) + len(value) > ARGV_MAX_BYTES:
            more = True
            break
        out += value
    return bytes(out + (ARGV_MORE if more else ARGV_END))


def struct_value(raw: bytes | None, size: int) -> bytes:
    """What usertrace records of a structure of ``size`` bytes that read ``raw``: all of it,
    or nothing."""
    return bytes(raw) if raw is not None and len(raw) == size else b""


def count_value(n: int) -> bytes:
    """What usertrace records of a counted vector (``envp``) of ``n`` strings."""
    return int(n).to_bytes(4, "little")


def split_count(value) -> int | None:
    """The number of strings of a recorded counted vector; None when nothing was recorded."""
    raw = as_bytes(value)
    return int.from_bytes(raw, "little") if len(raw) == 4 else None


def split_argv(value) -> tuple[list[tuple[bytes, bool]], bool] | None:
    """A recorded argument vector as ``([(string, cut)...], more followed)``; None when
    nothing was recorded (a NULL or unreadable vector)."""
    raw = as_bytes(value)
    if not raw or raw[-1:] not in (ARGV_END, ARGV_MORE):
        return None
    body, items, pos = raw[:-1], [], 0
    while pos < len(body):
        nul = body.find(b"\0", pos)
        if nul < 0:
            nul = len(body)
        s = body[pos:nul]
        cut = s.endswith(EXTRA) and len(s) > len(EXTRA)
        items.append((s[:-len(EXTRA)] if cut else s, cut))
        pos = nul + 1
    return items, raw[-1:] == ARGV_MORE


def read_size(data: UserData, args: Sequence[int], buf_size: int = DEFAULT_BUF_SIZE) -> int:
    """How many bytes to read at the entry for each of ``data``'s arguments: for a buffer,
    ``min(count, buf_size)``; for a string ``buf_size + 1`` (up to its NUL), which tells a
    string that fits from one that must be cut."""
    if data.fixed:
        return data.fixed
    if data.per_request:
        return request_size(data, args)
    if data.size_arg is not None:
        return sized(args[data.size_arg], data.unit, buf_size)
    return buf_size + 1


def exit_read_size(data: ExitData, ret: int, buf_size: int = DEFAULT_BUF_SIZE,
                   args: Sequence[int] = ()) -> int:
    """How many bytes to read at the exit: 0 after a failure."""
    if ret < data.min_ret:
        return 0
    if data.size == "ret":
        return max(0, min(ret, buf_size))
    if data.size == "arg":
        n = args[data.size_arg] & 0xFFFF_FFFF if data.size_arg < len(args) else 0
        return sized(n, data.unit, buf_size)
    if data.size == "dirents":
        return ret if ret <= DIRENTS_MAX else 0
    if data.size == "written":
        return 4 + buf_size
    if data.size == "request":
        return request_size(data, args)
    return int(data.size)


def request_size(data, args: Sequence[int]) -> int:
    """The bytes of a ``per_request`` structure for these arguments, 0 for none."""
    j = data.size_arg
    request = args[j] & 0xFFFF_FFFF if j is not None and j < len(args) else -1
    return dict(data.per_request).get(request, 0)


def written_value(length: bytes | None, value: bytes | None) -> bytes:
    """A ``"written"`` exit value: the length the call wrote (4 bytes, as read) and what was
    read of the value; nothing when the length could not be read."""
    if length is None or len(length) != 4:
        return b""
    return bytes(length) + bytes(value or b"")


def written_length(data) -> int | None:
    """The length a ``"written"`` exit value holds (a signed ``socklen_t``), None when it
    holds none."""
    raw = as_bytes(data)
    return int.from_bytes(raw[:4], "little", signed=True) if len(raw) >= 4 else None


def exit_value(data: ExitData, read: bytes | None, ret: int,
               buf_size: int = DEFAULT_BUF_SIZE, args: Sequence[int] = ()) -> bytes:
    """What usertrace records of what was read at a call's exit (:func:`exit_read_size`
    bytes, None when unreadable): the bytes, a fixed-size object whole or nothing, or the
    number of directory entries (:func:`count_value`)."""
    size = exit_read_size(data, ret, buf_size, args)
    if data.size == "dirents" and ret == 0:
        return count_value(0)               # the end of the directory
    if read is None or not size:
        return b""
    if data.size in ("ret", "arg", "written"):
        return bytes(read[:size])
    if data.size != "dirents":
        return struct_value(read[:size], size)
    if len(read) < size:
        return b""
    n = pos = 0                             # linux_dirent64 records: d_reclen at 16
    while pos + 19 <= size:
        reclen = int.from_bytes(read[pos + 16:pos + 18], "little")
        if reclen < 19:
            return b""                      # not what getdents64 writes
        pos += reclen
        n += 1
    return count_value(n) if pos == size else b""


def encode_enter(event_id: int, pid: int, nr: int, args: Sequence[int], nargs: int,
                 data: UserData, reads: Sequence[bytes | None],
                 buf_size: int = DEFAULT_BUF_SIZE, flags: int = 0,
                 preempt_count: int = 0) -> bytes:
    """The record of a sys_enter event with user data, as ``syscall_put_data`` writes it.

    ``reads[k]`` is what was read for argument ``data.recorded[k]`` (:func:`read_size`
    bytes, or None when the pointer was NULL or unreadable; for an argument vector,
    ``(strings, more)`` as :func:`argv_value` takes them, or None; for a counted vector,
    its number of strings, or None)."""
    if len(reads) != len(data.recorded):
        raise ValueError(f"{len(data.recorded)} user arguments, {len(reads)} reads")
    values = []
    for i, r in zip(data.recorded, reads):
        if i in data.arrays:
            values.append(b"" if r is None else argv_value(r[0], r[1], buf_size))
        elif i in data.counts:
            values.append(b"" if r is None else count_value(r))
        elif data.fixed:
            values.append(struct_value(r, data.fixed))
        elif data.per_request:
            n = request_size(data, args)
            values.append(struct_value(r, n) if n else b"")
        elif data.size_arg is not None:  # a buffer, or a sized string (printed as a string)
            n = sized(args[data.size_arg], data.unit, buf_size)
            values.append(array_value(r, n, n))
        else:
            values.append(string_value(r, buf_size))
    head = ev.enter_struct(nargs).pack(event_id, flags, preempt_count, pid, nr, *args[:nargs])
    return head + _data_locs(len(head), values)


def encode_exit(event_id: int, pid: int, nr: int, ret: int, read: bytes | None,
                data: ExitData, buf_size: int = DEFAULT_BUF_SIZE, flags: int = 0,
                preempt_count: int = 0, args: Sequence[int] = ()) -> bytes:
    """The record of a sys_exit event with usertrace's exit data."""
    value = exit_value(data, read, ret, buf_size, args)
    head = ev.EXIT_STRUCT.pack(event_id, flags, preempt_count, pid, nr, ret)
    return head + _data_locs(len(head), [value])


def _data_locs(start: int, values: Sequence[bytes]) -> bytes:
    """The ``len << 16 | offset`` words (the data start after all of them), then the data."""
    offset = start + 4 * len(values)
    words = []
    for v in values:
        words.append(len(v) << 16 | offset)
        offset += len(v)
    return struct.pack(f"<{len(values)}I", *words) + b"".join(values)


# -- reading the data back --------------------------------------------------------------------

def val_fields(fmt: EventFormat) -> dict[str, str]:
    """``{argument: its __<arg>_val field}`` of a format (ours or a kernel's)."""
    out = {}
    for f in fmt.fields:
        if f.is_data_loc and f.name.startswith("__") and f.name.endswith("_val"):
            out[f.name[2:-4]] = f.name
    return out


def as_bytes(value) -> bytes:
    """A decoded ``__<arg>_val`` value as bytes, whether the decoder gave bytes, a list of
    byte values, or text (a string decoded as UTF-8, its other bytes as ``\\xNN``)."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, list):
        try:
            return bytes(value)
        except ValueError:                    # values beyond a byte: their low bytes
            return bytes(v & 0xFF for v in value)
    text = str(value)
    if "\\" not in text:
        return text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1: i + 2] == "x" and _is_hex2(text[i + 2: i + 4]):
            out.append(int(text[i + 2: i + 4], 16))
            i += 4
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return bytes(out)


def _is_hex2(s: str) -> bool:
    return len(s) == 2 and all(c in "0123456789abcdefABCDEF" for c in s)


def split_string(value) -> tuple[bytes, bool] | None:
    """A recorded string as ``(bytes, cut)``; None when nothing was recorded (a NULL or
    unreadable pointer: length 0).  ``cut``: the kernel ended it with ``...`` at the buffer
    size.

    A decoder that gives text (:class:`~usertrace.events.records.RecordCodec` gives ``""``
    for both an empty string and no data) is taken as a string: ``""`` is the empty string.
    """
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview, list)):
        raw = as_bytes(value)
        if not raw:
            return None
    else:
        raw = as_bytes(value)
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    if raw.endswith(EXTRA) and len(raw) > len(EXTRA):
        return raw[: -len(EXTRA)], True
    return raw, False


# -- the trace file's text --------------------------------------------------------------------

def _printable(c: int) -> bool:
    return 0x20 <= c <= 0x7E


def render_enter(fmt: EventFormat, values: dict, name: str | None = None) -> str:
    """``sys_openat(dfd: 0xffffff9c, filename: 0x7ffd... "/etc/hostname", ...)`` as the
    kernel's ``print_syscall_enter`` prints a record with user data (``name``: the __NR_
    name, for the size of a buffer; the event name otherwise)."""
    base = ev.event_base(fmt.name)
    event = base[0] if base else fmt.name
    vals = val_fields(fmt)
    args = [f for f in fmt.fields if f.name != ev.NR_FIELD.name and not f.is_dynamic]
    data = enter_data(name or event)
    if event == "openat" and vals:
        return _render_openat(args, values, vals)
    parts = []
    for i, f in enumerate(args):
        v = values.get(f.name, 0) & 0xFFFF_FFFF_FFFF_FFFF
        piece = f"{f.name}: {v}" if v < 10 else f"{f.name}: 0x{v:x}"
        if f.name in vals:
            raw = as_bytes(values.get(vals[f.name]))
            if data is not None and (i in data.arrays or i in data.counts):
                piece += _render_array(raw, len(raw))
            elif data is not None and data.fixed:
                piece += _render_array(raw, data.fixed)
            elif data is not None and data.is_array:
                count = (values.get(args[data.size_arg].name, 0) * data.unit
                         if data.size_arg < len(args) else 0)
                piece += _render_array(raw, count)
            else:
                nul = raw.find(b"\0")
                text = raw[:nul] if nul >= 0 else raw
                piece += ' "' + text.decode("latin-1") + '"'
        parts.append(piece)
    return f"sys_{event}({', '.join(parts)})"


def _render_array(raw: bytes, count: int) -> str:
    out = " (" + ":".join(f"{c:02x}" for c in raw)
    if len(raw) < count:
        out += ", ..."
    out += ")"
    if any(_printable(c) for c in raw):
        out += ' "' + "".join(chr(c) if _printable(c) else "." for c in raw)
        out += '"...' if len(raw) < count else '"'
    return out


def _render_openat(args: list[Field], values: dict, vals: dict[str, str]) -> str:
    flags_table = _open_flag_values()
    parts = []
    for i, f in enumerate(args):
        v = values.get(f.name, 0) & 0xFFFF_FFFF_FFFF_FFFF
        if i == 2:
            bits = v & 0xFFFF_FFFF
            text = "flags: "
            if not bits & 3:
                if not bits:
                    parts.append(text + "O_RDONLY")
                    if not bits & (flags_table["O_CREAT"] | flags_table["O_TMPFILE"]):
                        break
                    continue
                text += "O_RDONLY|"
            names = []
            for n in ("O_TMPFILE",) + _OPENAT_FLAGS:
                m = flags_table[n]
                if bits & m == m:
                    names.append(n)
                    bits &= ~m
            if bits:
                names.append(f"0x{bits:x}")
            parts.append(text + "|".join(names))
            if not v & (flags_table["O_CREAT"] | flags_table["O_TMPFILE"]):
                break
            continue
        if i == 3:
            parts.append(f"{f.name}: 0{v & 0xFFFF_FFFF:03o}")
            continue
        piece = f"{f.name}: {v}"
        if f.name in vals:
            raw = as_bytes(values.get(vals[f.name]))
            nul = raw.find(b"\0")
            piece += ' "' + (raw[:nul] if nul >= 0 else raw).decode("latin-1") + '"'
        parts.append(piece)
    return f"sys_openat({', '.join(parts)})"


def render_exit(fmt: EventFormat, values: dict) -> str:
    """``sys_read -> 0x5 (68:65:6c:6c:6f) "hello"``: the exit line with usertrace's data."""
    base = ev.event_base(fmt.name)
    event = base[0] if base else fmt.name
    ret = values.get("ret", 0)
    text = ev.render_exit(event, ret)
    vals = val_fields(fmt)
    for _arg, field in vals.items():
        raw = as_bytes(values.get(field))
        if raw:
            text += _render_array(raw, len(raw))
    return text


def syscall_printer(fmt: EventFormat):
    """A ``trace``-line printer for syscall formats that carry user data, else None (then
    :func:`.events.syscall_printer` prints them)."""
    if fmt.system != ev.SYSTEM or not val_fields(fmt):
        return None
    base = ev.event_base(fmt.name)
    if base is None:
        return None
    if base[1]:
        return lambda _fmt, values: render_enter(fmt, values)
    return lambda _fmt, values: render_exit(fmt, values)


def trace_printer(fmt: EventFormat):
    """The ``trace``-line printer of any syscall format: with user data as above, else the
    kernel's (:func:`.events.syscall_printer`); None for other events."""
    return syscall_printer(fmt) or ev.syscall_printer(fmt)
