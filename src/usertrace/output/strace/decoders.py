"""The arguments and results of system calls, printed as strace prints them.

A decoder turns one call (its arguments, the user data recorded with it, its result) into two
lists of argument texts: those strace prints when the call enters and those it prints when
the call returns (``read``'s buffer, ``wait4``'s status).  The split matters when threads
interleave: ``read(3,  <unfinished ...>`` then ``<... read resumed>"abc", 10) = 3``.

Most calls are a :class:`Signature`, one printer per argument::

    "openat": handled by _openat (the mode only with O_CREAT or O_TMPFILE)
    "close":  Signature(FD)
    "read":   Signature(FD, OutBuf(size="ret"), ULONG)

A call with no decoder here is printed from the kernel's own description of its arguments
(:func:`generic`): pointers as pointers, descriptors as descriptors, numbers as numbers.
Strings come from the ``__<arg>_val`` fields of the records
(:mod:`usertrace.sources.syscalls.user_data`); without them a string argument is printed as
its pointer, as is every structure strace would show.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from ...sources.syscalls.classes import FD_RETURNING
from ...sources.syscalls.events import MAX_ERRNO as ERRNO_MAX
from ...sources.syscalls.user_data import (STAT_MODE, STAT_RDEV, STAT_SIZE, STAT_SIZE_FIELD,
                                           RLIMIT64_SIZE, SIGACTION_SIZE, SIGSET_SIZE,
                                           TIMESPEC_SIZE, TERMIOS_SIZE, WINSIZE_SIZE,
                                           written_length,
                                           POLLFD_SIZE, UTSNAME_FIELD, UTSNAME_SIZE,
                                           STATX_ATTRIBUTES, STATX_MASK, STATX_MODE,
                                           STATX_SIZE, STATX_SIZE_FIELD, as_bytes,
                                           split_argv, split_count, split_string)
from .quote import HEX_ALL, HEX_NONE, quote, quote_bytes, quote_cstring
from .xlat import Xlat, hex_text

MASK64 = (1 << 64) - 1
# An exit part that continues the argument before it (strace's `` => {...}``), not a new one;
# the calls whose exit part may (the view leaves the comma after their entry to the exit).
RESULT_GLUE = " => "
GLUED_EXITS = frozenset({"clone3"})


@dataclass
class Call:
    """One system call of one thread: what its records say, as far as they were seen."""

    name: str                                   # the __NR_ name, as strace prints it
    tid: int
    args: list[int] = field(default_factory=list)      # unsigned 64-bit
    arg_names: list[str] = field(default_factory=list)
    arg_types: list[str] = field(default_factory=list)
    vals: dict[str, object] = field(default_factory=dict)   # argument name -> recorded data
    ret: int | None = None                      # signed; None before the exit
    ts_enter: int | None = None
    ts_exit: int | None = None
    entered: bool = False

    def arg(self, i: int) -> int:
        return self.args[i] & MASK64 if i < len(self.args) else 0

    def data(self, i: int):
        """The recorded data of argument ``i``, or None."""
        if i >= len(self.arg_names):
            return None
        v = self.vals.get(self.arg_names[i])
        return None if v is None else v

    @property
    def failed(self) -> bool:
        return self.ret is not None and -ERRNO_MAX <= self.ret < 0


@dataclass
class Options:
    """The strace options that change how arguments print."""

    max_len: int = 32                   # -s
    hex_mode: int = HEX_NONE            # -x (1), -xx (2)
    show_fds: bool = False              # -y


class Context:
    """What a printer needs: the names, the options, the descriptors' paths (``-y``)."""

    def __init__(self, xlat: Xlat, options: Options,
                 fd_path: Callable[[int], str | None] = lambda fd: None,
                 cwd: Callable[[], str | None] = lambda: None):
        self.x = xlat
        self.opt = options
        self.fd_path = fd_path
        self.cwd = cwd
        self.at_fdcwd = xlat.value("at_fdcwd", "AT_FDCWD")

    def fd(self, value: int) -> str:
        fd = _s32(value)
        if self.opt.show_fds and fd >= 0:
            path = self.fd_path(fd)
            if path is not None:
                # /proc says "PATH (deleted)" of a file gone: strace prints <PATH>(deleted)
                if path.endswith(_DELETED):
                    return f"{fd}<{_fd_path_text(path[:-len(_DELETED)])}>(deleted)"
                return f"{fd}<{_fd_path_text(path)}>"
        return str(fd)


_DELETED = " (deleted)"


def _fd_path_text(path: str) -> str:
    """A ``-y`` path: escaped as strace does, ``<`` and ``>`` included, without quotes."""
    text = quote_bytes(path.encode("utf-8", "surrogateescape"))[1:-1]
    return text.replace("<", "\\74").replace(">", "\\76")


def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v & 0x8000_0000 else v


def _s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


# -- printers of one argument -----------------------------------------------------------------
# A printer: (ctx, call, i) -> text.  ENTER printers run at the entry, EXIT at the return.

ENTER, EXIT = 0, 1

Printer = Callable[[Context, Call, int], str]


def INT(ctx, call, i):          # noqa: N802 - printers are named as strace's types
    return str(_s32(call.arg(i)))


def UINT(ctx, call, i):         # noqa: N802
    return str(call.arg(i) & 0xFFFF_FFFF)


def LONG(ctx, call, i):         # noqa: N802
    return str(_s64(call.arg(i)))


def ULONG(ctx, call, i):        # noqa: N802
    return str(call.arg(i))


def HEX(ctx, call, i):          # noqa: N802
    return hex_text(call.arg(i))


def PTR(ctx, call, i):          # noqa: N802
    v = call.arg(i)
    return "NULL" if v == 0 else hex_text(v)


def FD(ctx, call, i):           # noqa: N802
    return ctx.fd(call.arg(i))


def DIRFD(ctx, call, i):        # noqa: N802
    """A directory descriptor: ``AT_FDCWD`` (with -y, ``AT_FDCWD</its/path>``) or a fd."""
    v = _s32(call.arg(i))
    if v != ctx.at_fdcwd:
        return ctx.fd(v)
    cwd = ctx.cwd() if ctx.opt.show_fds else None
    return f"AT_FDCWD<{_fd_path_text(cwd)}>" if cwd else "AT_FDCWD"


def MODE(ctx, call, i):         # noqa: N802
    """A permission mode: ``0644`` (strace's ``%#03o``)."""
    return _octal(call.arg(i) & 0xFFFF_FFFF)


def _octal(v: int) -> str:
    return f"0{v:02o}" if v else "000"


_SPECIAL_BITS = ((0o4000, "S_ISUID"), (0o2000, "S_ISGID"), (0o1000, "S_ISVTX"))


def mode_text(x: Xlat, mode: int) -> str:
    """A mode with its file type, as strace's ``print_symbolic_mode_t``: ``S_IFREG|0644``,
    ``S_IFDIR|S_ISVTX|0777``, ``0600`` without a type; an unknown type in octal."""
    fmt = x.value("file_type_mask", "S_IFMT")
    kind = x.lookup("file_types", mode & fmt) if mode & fmt else ""
    if kind is None:
        return _octal(mode)
    special = "".join(name + "|" for bit, name in _SPECIAL_BITS if mode & bit)
    return (kind + "|" if kind else "") + special + _octal(mode & ~(fmt | 0o7000))


def is_device(x: Xlat, mode: int) -> bool:
    """A character or block device's mode (strace then shows its ``dev_t``)."""
    kind = mode & x.value("file_type_mask", "S_IFMT")
    return kind in (x.value("file_types", "S_IFCHR"), x.value("file_types", "S_IFBLK"))


def dev_text(dev: int) -> str:
    """A ``dev_t`` as strace prints it: ``makedev(0x88, 0x1)``."""
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
    minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
    return f"makedev({hex_text(major)}, {hex_text(minor)})"


def recorded(split: Callable[[object], object]):
    """A printer of what the records hold of a pointer argument, from ``show(ctx, call, i,
    value)`` where ``value = split(the recorded data)``: ``NULL`` for a NULL pointer, and the
    pointer where nothing usable was recorded (``split`` gives None) or ``show`` gives None."""
    def wrap(show):
        def printer(ctx, call, i):
            if call.arg(i) == 0:
                return "NULL"
            value = split(call.data(i))
            text = None if value is None else show(ctx, call, i, value)
            return hex_text(call.arg(i)) if text is None else text
        printer.__name__, printer.__doc__ = show.__name__, show.__doc__
        return printer
    return wrap


def recorded_struct(size: int):
    """:func:`recorded` for a structure the records hold whole, ``size`` bytes."""
    def whole(data):
        raw = as_bytes(data)
        return raw if len(raw) == size else None
    return recorded(whole)


def _recorded_bytes(data) -> bytes | None:
    return as_bytes(data) or None


@recorded_struct(STAT_SIZE)
def STAT(ctx, call, i, raw):     # noqa: N802
    """A ``struct stat`` the call filled, as strace abbreviates it: ``{st_mode=S_IFREG|0644,
    st_size=34675, ...}``, ``st_rdev=makedev(...)`` for a device."""
    x = ctx.x
    mode = int.from_bytes(raw[STAT_MODE:STAT_MODE + 4], "little")
    text = "{st_mode=" + mode_text(x, mode) + ", "
    if is_device(x, mode):
        text += "st_rdev=" + dev_text(int.from_bytes(raw[STAT_RDEV:STAT_RDEV + 8], "little"))
    else:
        size = int.from_bytes(raw[STAT_SIZE_FIELD:STAT_SIZE_FIELD + 8], "little", signed=True)
        text += f"st_size={size}"
    return text + ", ...}"


@recorded(_recorded_bytes)
def SOCKADDR(ctx, call, i, raw):    # noqa: N802
    """A socket address given to the call (its length is the next argument), as strace
    prints it: ``{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.0.0.1")}``,
    ``{sa_family=AF_UNIX, sun_path="/run/x"}``; its pointer for a family not decoded here."""
    return sockaddr_text(ctx.x, raw[:call.arg(i + 1) & 0xFFFF_FFFF]) if len(raw) >= 2 else None


def _socklen_in(call) -> int | None:
    """The room a call was given for the socket address it writes (``*addrlen`` at the
    entry), None when unknown: strace then prints both pointers."""
    raw = as_bytes(call.data(2))
    if not call.arg(1) or not call.arg(2) or len(raw) != 4:
        return None
    return int.from_bytes(raw, "little", signed=True)


def SOCKADDR_OUT(ctx, call, i):     # noqa: N802
    """A socket address the call wrote (``accept``, ``getsockname``), as strace decodes it:
    ``min(given, written)`` bytes of it; its pointer after a failure or where nothing was
    recorded."""
    given, raw = _socklen_in(call), as_bytes(call.data(i))
    written = written_length(raw)
    if given is None or call.failed or written is None:
        return PTR(ctx, call, i)
    text = sockaddr_text(ctx.x, raw[4:4 + max(0, min(given, written))])
    return text if text is not None else hex_text(call.arg(i))


def SOCKLEN_OUT(ctx, call, i):      # noqa: N802
    """The length of that address (:func:`_length_text`)."""
    given = _socklen_in(call)
    if given is None:
        return PTR(ctx, call, i)
    return _length_text(given, None if call.failed else written_length(call.data(i - 1)))


def _length_text(given: int, written: int | None) -> str:
    """A length the call was given and wrote back (``socklen_t *``), as strace prints it:
    ``[16]``, ``[128 => 16]`` when the call wrote another one, ``[128]`` when it wrote none
    (a failure)."""
    if written is None or written == given:
        return f"[{given if written is None else written}]"
    return f"[{given} => {written}]"


def _int_text(raw: bytes) -> str:
    """An int read through a pointer (its first 4 bytes), as strace prints it: ``[3]``."""
    return f"[{int.from_bytes(raw[:4], 'little', signed=True)}]"


def sockaddr_text(x: Xlat, raw: bytes) -> str | None:
    """strace's text of a ``struct sockaddr`` of ``len(raw)`` bytes, AF_UNIX, AF_INET or
    AF_INET6: its family alone when that is all there is, its bytes as ``sa_data`` when
    they are fewer than the family's structure needs; None for another family."""
    family = int.from_bytes(raw[:2], "little")
    name = x.lookup("address_families", family)
    if name not in ("AF_UNIX", "AF_INET", "AF_INET6"):
        return None
    head = f"{{sa_family={name}"
    if len(raw) <= 2:
        return head + "}"
    if name == "AF_UNIX":
        path = raw[2:]
        if path[:1] == b"\0":                  # the abstract namespace
            return head + ", sun_path=@" + quote_bytes(path[1:].rstrip(b"\0")) + "}"
        return head + ", sun_path=" + quote_cstring(path, None) + "}"
    if name == "AF_INET" and len(raw) >= 16:
        port = int.from_bytes(raw[2:4], "big")
        addr = ".".join(str(b) for b in raw[4:8])
        return head + f', sin_port=htons({port}), sin_addr=inet_addr("{addr}")}}'
    if name == "AF_INET6" and len(raw) >= 24:
        port = int.from_bytes(raw[2:4], "big")
        flow = int.from_bytes(raw[4:8], "big")
        addr = ipaddress.IPv6Address(raw[8:24]).compressed
        text = (head + f", sin6_port=htons({port}), sin6_flowinfo=htonl({flow}), "
                f'inet_pton(AF_INET6, "{addr}", &sin6_addr)')
        if len(raw) > 24:
            text += f", sin6_scope_id={int.from_bytes(raw[24:28], 'little')}"
        return text + "}"
    return head + ", sa_data=" + quote_bytes(raw[2:]) + "}"      # shorter than its structure


def sigset_text(x: Xlat, mask: int, nbits: int = 64) -> str:
    """A signal set as strace prints it: ``[INT TERM]``, or the signals it lacks after ``~``
    when it holds two thirds of them or more (``~[RTMIN RT_1]``, ``~[]``)."""
    mask &= (1 << nbits) - 1
    inverted = bin(mask).count("1") >= nbits * 2 // 3
    if inverted:
        mask ^= (1 << nbits) - 1
    names = []
    for bit in range(nbits):
        if mask >> bit & 1:
            name = x.signal(bit + 1)
            names.append(name[3:] if name and name.startswith("SIG") else str(bit + 1))
    return ("~[" if inverted else "[") + " ".join(names) + "]"


@recorded_struct(SIGSET_SIZE)
def SIGSET(ctx, call, i, raw):   # noqa: N802
    """A signal set given or filled (``rt_sigprocmask``): ``[CHLD]``; its pointer when the
    call's set size is not 8 (strace prints it only then too)."""
    if call.arg(3) != SIGSET_SIZE:
        return None
    return sigset_text(ctx.x, int.from_bytes(raw, "little"))


@recorded_struct(SIGACTION_SIZE)
def SIGACTION(ctx, call, i, raw):   # noqa: N802
    """A ``struct sigaction`` (``rt_sigaction``): ``{sa_handler=SIG_DFL, sa_mask=[],
    sa_flags=SA_RESTORER, sa_restorer=0x7f...}`` (``sa_restorer`` with SA_RESTORER only)."""
    if call.arg(3) != SIGSET_SIZE:
        return None
    x = ctx.x
    handler, flags, restorer, mask = (int.from_bytes(raw[k:k + 8], "little")
                                      for k in range(0, 32, 8))
    shown = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler) or hex_text(handler)
    text = (f"{{sa_handler={shown}, sa_mask={sigset_text(x, mask)}, "
            f"sa_flags={x.flags('sigaction_flags', flags)}")
    if flags & x.value("sigaction_flags", "SA_RESTORER"):
        text += f", sa_restorer={hex_text(restorer)}"
    return text + "}"


def _rlim64(v: int) -> str:
    if v == MASK64:
        return "RLIM64_INFINITY"
    return f"{v // 1024}*1024" if v > 1024 and v % 1024 == 0 else str(v)


@recorded_struct(RLIMIT64_SIZE)
def RLIMIT64(ctx, call, i, raw):    # noqa: N802
    """A ``struct rlimit64`` (``prlimit64``): ``{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}``,
    as strace prints it."""
    cur, top = int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:16], "little")
    return f"{{rlim_cur={_rlim64(cur)}, rlim_max={_rlim64(top)}}}"


@recorded_struct(TIMESPEC_SIZE)
def TIMESPEC(ctx, call, i, raw):    # noqa: N802
    """A ``struct timespec`` given to the call (``nanosleep``): ``{tv_sec=1, tv_nsec=0}``."""
    sec = int.from_bytes(raw[:8], "little", signed=True)
    nsec = int.from_bytes(raw[8:16], "little", signed=True)
    return f"{{tv_sec={sec}, tv_nsec={nsec}}}"


@recorded_struct(UTSNAME_SIZE)
def UTSNAME(ctx, call, i, raw):  # noqa: N802
    """``struct new_utsname`` (``uname``) as strace abbreviates it: ``{sysname="Linux",
    nodename="host", ...}``."""
    sysname, nodename = raw[:UTSNAME_FIELD], raw[UTSNAME_FIELD:2 * UTSNAME_FIELD]
    return (f"{{sysname={quote_cstring(sysname, None, ctx.opt.hex_mode)}, "
            f"nodename={quote_cstring(nodename, None, ctx.opt.hex_mode)}, ...}}")


def _counted(one: str, many: str):
    """The printer of a pointer recorded with a count, as strace abbreviates it:
    ``0x7ffd2c4e1a38 /* 35 vars */``, ``/* 1 var */``."""
    @recorded(split_count)
    def show(ctx, call, i, n):
        return hex_text(call.arg(i)) + f" /* {n} {one if n == 1 else many} */"
    return show


DIRENTS = _counted("entry", "entries")      # getdents64's buffer: the entries it wrote


def _pollfds(ctx, call, raw: bytes, revents: bool) -> str:
    """strace's ``[{fd=3, events=POLLIN}, {fd=-1}]`` (or, of the returned array, the entries
    with ``revents``), at most -s of them, ``...`` after; the array as far as recorded."""
    shown = []
    n = call.arg(1) & 0xFFFF_FFFF
    for k in range(min(n, len(raw) // POLLFD_SIZE)):
        fd = int.from_bytes(raw[8 * k:8 * k + 4], "little", signed=True)
        at = 8 * k + (6 if revents else 4)              # revents or events, a short each
        events = int.from_bytes(raw[at:at + 2], "little")
        if revents and not events:
            continue
        if len(shown) == ctx.opt.max_len:
            shown.append("...")
            break
        if fd < 0 and not revents:
            shown.append(f"{{fd={fd}}}")
        else:
            name = "revents" if revents else "events"
            shown.append(f"{{fd={ctx.fd(fd)}, {name}={ctx.x.flags('poll_events', events)}}}")
    else:
        if n * POLLFD_SIZE > len(raw):
            shown.append("...")
    return "[" + ", ".join(shown) + "]"


def _poll(ctx, call):
    """``poll([{fd=3, events=POLLIN}], 1, 1000)``; its result: ``= 1 ([{fd=3,
    revents=POLLIN}])``, ``= 0 (Timeout)`` (:func:`result_text`)."""
    if call.arg(0) == 0:
        fds = "NULL"
    else:
        raw = as_bytes(call.data(0))
        fds = _pollfds(ctx, call, raw, False) if raw or not call.arg(1) else hex_text(call.arg(0))
    return [fds, UINT(ctx, call, 1), INT(ctx, call, 2)], []


def _poll_result(ctx, call) -> str:
    ret = call.ret
    if ret == 0:
        return "0 (Timeout)"
    raw = as_bytes(call.data(0))        # the exit's copy of the array, with the revents
    return f"{ret} ({_pollfds(ctx, call, raw, True)})" if raw else str(ret)


@recorded_struct(STATX_SIZE)
def STATX(ctx, call, i, raw):    # noqa: N802
    """A ``struct statx`` the call filled, as strace abbreviates it: ``{stx_mask=...,
    stx_attributes=..., stx_mode=S_IFREG|0644, stx_size=34675, ...}``."""
    x = ctx.x

    def u(offset, size):
        return int.from_bytes(raw[offset:offset + size], "little")
    return ("{stx_mask=" + x.flags("statx_mask", u(STATX_MASK, 4))
            + ", stx_attributes=" + x.flags("statx_attrs", u(STATX_ATTRIBUTES, 8))
            + ", stx_mode=" + mode_text(x, u(STATX_MODE, 2))
            + f", stx_size={u(STATX_SIZE_FIELD, 8)}, ...}}")


def SIG(ctx, call, i):          # noqa: N802
    return ctx.x.signal_text(_s32(call.arg(i)))


@recorded(split_string)
def PATH(ctx, call, i, got):    # noqa: N802
    """A path: never cut by -s (strace reads paths up to PATH_MAX)."""
    return quote_cstring(got[0], None, ctx.opt.hex_mode, got[1])


@recorded(split_argv)
def ARGV(ctx, call, i, got):    # noqa: N802
    """An argument vector (``execve``'s ``argv``): ``["ls", "-l"]``, each string cut at -s,
    ``...`` after the strings when more followed."""
    items, more = got
    if len(items) > ctx.opt.max_len:          # strace shows at most -s strings
        items, more = items[:ctx.opt.max_len], True
    shown = [quote_cstring(s, ctx.opt.max_len, ctx.opt.hex_mode, cut) for s, cut in items]
    return "[" + ", ".join(shown + (["..."] if more else [])) + "]"


ENVP = _counted("var", "vars")              # execve's environment: its number of strings


@recorded(split_string)
def STR(ctx, call, i, got):     # noqa: N802
    """A NUL-terminated string, cut at -s."""
    return quote_cstring(got[0], ctx.opt.max_len, ctx.opt.hex_mode, got[1])


def OUT_PATH(ctx, call, i):     # noqa: N802
    """A path the call wrote (``getcwd``): up to its NUL, never cut."""
    if call.arg(i) == 0:
        return "NULL"
    data = call.data(i)
    if data is None or not as_bytes(data):
        return hex_text(call.arg(i))
    return quote_cstring(as_bytes(data), None, ctx.opt.hex_mode)


class Buf:
    """A buffer of ``size`` bytes (an argument index, or ``"ret"``), cut at -s."""

    def __init__(self, size: int | str, hex_mode: int | None = None):
        self.size = size
        self.hex_mode = hex_mode

    def __call__(self, ctx, call, i):
        if call.arg(i) == 0:
            return "NULL"
        if self.size == "ret":
            length = call.ret if call.ret is not None and call.ret > 0 else 0
        else:
            length = call.arg(self.size)
        data = call.data(i)
        if data is None or (length and not as_bytes(data)):
            return hex_text(call.arg(i))
        mode = ctx.opt.hex_mode if self.hex_mode is None else self.hex_mode
        return quote(as_bytes(data), length, ctx.opt.max_len, mode)


def flags(group: str, zero: str | None = "0") -> Printer:
    def printer(ctx, call, i):
        return ctx.x.flags(group, call.arg(i) & 0xFFFF_FFFF, zero=zero)
    return printer


def flags64(group: str) -> Printer:
    def printer(ctx, call, i):
        return ctx.x.flags(group, call.arg(i))
    return printer


def enum(group: str, decimal: bool = False) -> Printer:
    def printer(ctx, call, i):
        v = _s32(call.arg(i)) if decimal else call.arg(i) & 0xFFFF_FFFF
        return ctx.x.enum(group, v, decimal=decimal)
    return printer


def open_flags_text(x: Xlat, v: int) -> str:
    """``O_RDONLY|O_CLOEXEC``: the access mode by name, then the other flags."""
    v &= 0xFFFF_FFFF
    mode = x.lookup("open_access", v & 3)
    rest = v & ~3
    if mode is None:
        return x.flags("open_flags", v)
    if not rest:
        return mode
    return mode + "|" + x.flags("open_flags", rest)


def OPEN_FLAGS(ctx, call, i):   # noqa: N802
    return open_flags_text(ctx.x, call.arg(i))


def out(p: Printer) -> tuple[Printer, int]:
    """A printer whose argument is printed at the call's return."""
    return (p, EXIT)


def _fds_pair(ctx, call, i):
    """``[3, 4]``: two descriptors returned in user memory."""
    raw = as_bytes(call.data(i))
    if call.arg(i) == 0:
        return "NULL"
    if call.ret != 0 or len(raw) < 8:
        return hex_text(call.arg(i))
    a = int.from_bytes(raw[0:4], "little", signed=True)
    b = int.from_bytes(raw[4:8], "little", signed=True)
    return f"[{ctx.fd(a)}, {ctx.fd(b)}]"


def wait_status_text(x: Xlat, s: int) -> str:
    """``[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]``, strace's printstatus."""
    s &= 0xFFFF_FFFF
    if s == 0xFFFF:
        return "[{WIFCONTINUED(s)}]"
    if s & 0xFF == 0x7F:
        text = f"{{WIFSTOPPED(s) && WSTOPSIG(s) == {x.signal_text((s >> 8) & 0xFF)}}}"
        if s >> 16:
            text += f" | {hex_text(s >> 16 << 16)}"
        return f"[{text}]"
    if s & 0x7F:
        text = f"{{WIFSIGNALED(s) && WTERMSIG(s) == {x.signal_text(s & 0x7F)}"
        if s & 0x80:
            text += " && WCOREDUMP(s)"
        return f"[{text}}}]"
    return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(s >> 8) & 0xFF}}}]"


def _wait_status(ctx, call, i):
    if call.arg(i) == 0:
        return "NULL"
    raw = as_bytes(call.data(i))
    if call.ret is None or call.ret <= 0 or len(raw) < 4:
        return hex_text(call.arg(i))
    return wait_status_text(ctx.x, int.from_bytes(raw[:4], "little"))


def _plain_flags(x: Xlat, group: str, v: int) -> str:
    """strace's printflags without a default: nothing for 0, unknown bits in bare hex."""
    if not v:
        return ""
    text = x.flags(group, v)
    return hex_text(v) if text.endswith("*/") else text


@recorded_struct(TERMIOS_SIZE)
def TERMIOS(ctx, call, i, raw):     # noqa: N802
    """The kernel's ``struct termios`` as strace 6.1 prints it: ``{c_iflag=ICRNL|IXON,
    c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|OPOST|ONLCR, c_cflag=B38400|CS8|CREAD,
    c_lflag=ISIG|ICANON|..., ...}``: each delay and field by name, ``|`` after them even
    when no flag follows."""
    x = ctx.x
    iflag, oflag, cflag, lflag = (int.from_bytes(raw[k:k + 4], "little") for k in range(0, 16, 4))
    delays = ""
    for mask_name, mask in x.groups["term_delay_masks"][1]:          # in strace's order
        group = "term_" + mask_name.lower()
        delays += x.enum(group, oflag & mask) + "|"
        oflag &= ~mask
    masks = x.values("term_cflag_masks")
    cbaud, cibaud, csize = masks["CBAUD"], masks["CIBAUD"], masks["CSIZE"]
    speed = x.enum("term_baud", cflag & cbaud) + "|"
    if cflag & cibaud:
        speed += x.enum("term_baud", (cflag & cibaud) >> masks["IBSHIFT"]) + "<<IBSHIFT|"
    size = x.enum("term_csize", cflag & csize) + "|"
    rest = cflag & ~(cbaud | cibaud | csize)
    return (f"{{c_iflag={_plain_flags(x, 'term_iflags', iflag)}, "
            f"c_oflag={delays}{_plain_flags(x, 'term_oflags', oflag)}, "
            f"c_cflag={speed}{size}{_plain_flags(x, 'term_cflags', rest)}, "
            f"c_lflag={_plain_flags(x, 'term_lflags', lflag)}, ...}}")


@recorded_struct(WINSIZE_SIZE)
def WINSIZE(ctx, call, i, raw):     # noqa: N802
    """``{ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}``."""
    row, col, xpixel, ypixel = (int.from_bytes(raw[k:k + 2], "little") for k in range(0, 8, 2))
    return f"{{ws_row={row}, ws_col={col}, ws_xpixel={xpixel}, ws_ypixel={ypixel}}}"


@recorded_struct(4)
def INT_AT(ctx, call, i, raw):      # noqa: N802
    """An int the call is given or fills through a pointer: ``[3]``."""
    return _int_text(raw)


# Printers that show memory the call wrote: only after a success.
_DATA_PRINTERS = frozenset({PTR, PATH, STR, OUT_PATH, STAT, STATX, SIGSET, SIGACTION, TERMIOS,
                            WINSIZE, INT_AT,
                            RLIMIT64, UTSNAME, DIRENTS, _fds_pair, _wait_status})


# -- signatures -------------------------------------------------------------------------------

class Signature:
    """One printer per argument (a printer, or ``(printer, EXIT)``); arguments past the
    printers are not printed (strace shows only the arguments a call has)."""

    def __init__(self, *printers):
        self.printers = [p if isinstance(p, tuple) else (p, ENTER) for p in printers]

        first = [i for i, (_, when) in enumerate(self.printers) if when == EXIT]
        self.first_exit = first[0] if first else len(self.printers)

    def __call__(self, ctx: Context, call: Call) -> tuple[list[str], list[str]]:
        k = self.first_exit
        return ([p(ctx, call, i) for i, (p, _) in enumerate(self.printers[:k])],
                self.exit_part(ctx, call))

    def exit_part(self, ctx: Context, call: Call) -> list[str]:
        k = self.first_exit
        return [_exit_text(ctx, call, k + j, p) for j, (p, _) in enumerate(self.printers[k:])]


def _exit_text(ctx, call, i, p) -> str:
    """An argument printed at the return: what the call wrote there, but its pointer when
    the call failed (it wrote nothing)."""
    if call.failed and (p in _DATA_PRINTERS or isinstance(p, Buf)):
        return PTR(ctx, call, i)
    return p(ctx, call, i)


def generic(ctx: Context, call: Call) -> tuple[list[str], list[str]]:
    """A call without a decoder: each argument by its C type and name."""
    out_ = []
    for i, (t, n) in enumerate(zip(call.arg_types, call.arg_names)):
        if "*" in t:
            out_.append(STR(ctx, call, i) if "char" in t and n in ("name", "uname")
                        else PATH(ctx, call, i) if call.data(i) is not None else PTR(ctx, call, i))
        elif n in ("fd", "oldfd", "newfd", "epfd", "ufd") or n.endswith("_fd"):
            out_.append(FD(ctx, call, i))
        elif n in ("dfd", "olddfd", "newdfd", "from_dfd", "to_dfd"):
            out_.append(DIRFD(ctx, call, i))
        elif t in ("int", "pid_t", "long", "loff_t", "off_t", "key_t", "clockid_t", "timer_t",
                   "const clockid_t", "mqd_t", "s32", "__s32"):
            out_.append(LONG(ctx, call, i) if t in ("long", "loff_t", "off_t")
                        else INT(ctx, call, i))
        elif n in ("flags", "mode") or "flag" in n:
            out_.append(HEX(ctx, call, i))
        else:
            out_.append(ULONG(ctx, call, i) if t in ("unsigned long", "size_t", "u64", "__u64")
                        else UINT(ctx, call, i))
    return out_, []


# -- calls with decoders of their own ---------------------------------------------------------

def _open_like(path_index: int, flags_index: int, mode_index: int):
    def decode(ctx, call):
        args = []
        if path_index == 1:
            args.append(DIRFD(ctx, call, 0))
        args.append(PATH(ctx, call, path_index))
        v = call.arg(flags_index)
        args.append(open_flags_text(ctx.x, v))
        creat = ctx.x.value("open_flags", "O_CREAT") | ctx.x.value("open_flags", "__O_TMPFILE")
        if v & creat:
            args.append(MODE(ctx, call, mode_index))
        return args, []
    return decode


def _mmap(ctx, call):
    x = ctx.x
    fl = call.arg(3) & 0xFFFF_FFFF
    map_type = x.value("mmap_misc", "MAP_TYPE")
    shift = x.value("mmap_misc", "MAP_HUGE_SHIFT")
    huge_mask = x.value("mmap_misc", "MAP_HUGE_MASK") << shift
    parts = [x.enum("mmap_type", fl & map_type)]
    rest = fl & ~map_type & ~huge_mask
    if rest:
        parts.append(x.flags("mmap_flags", rest))
    if fl & huge_mask:
        parts.append(f"{(fl & huge_mask) >> shift}<<MAP_HUGE_SHIFT")
    return [PTR(ctx, call, 0), ULONG(ctx, call, 1), x.flags("mmap_prot", call.arg(2)),
            "|".join(parts), FD(ctx, call, 4), HEX(ctx, call, 5)], []


def _clone(ctx, call):
    x = ctx.x
    fl = call.arg(0)
    csignal = x.value("clone_misc", "CSIGNAL")
    parts = []
    if fl & ~csignal:
        parts.append(x.flags("clone_flags", fl & ~csignal))
    if fl & csignal:
        parts.append(x.signal_text(fl & csignal))
    args = [f"child_stack={PTR(ctx, call, 1)}", "flags=" + ("|".join(parts) or "0")]
    val = lambda n: x.value("clone_flags", n)  # noqa: E731
    if fl & (val("CLONE_PARENT_SETTID") | val("CLONE_PIDFD")):
        name = "parent_tid" if fl & val("CLONE_PARENT_SETTID") else "pidfd"
        args.append(f"{name}={PTR(ctx, call, 2)}")
    if fl & (val("CLONE_CHILD_SETTID") | val("CLONE_CHILD_CLEARTID")):
        args.append(f"child_tidptr={PTR(ctx, call, 3)}")
    if fl & val("CLONE_SETTLS"):
        args.append(f"tls={PTR(ctx, call, 4)}")
    return args, []


CLONE_ARGS_FIELDS = ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
                     "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")


def _clone3(ctx, call):
    """``clone3({flags=..., child_tid=..., parent_tid=..., exit_signal=0, stack=...,
    stack_size=..., tls=...} => {parent_tid=[N]}, 88)`` as strace prints it; the struct as
    its pointer where it was not recorded or holds what is not decoded here (a pidfd, a
    set_tid array, a cgroup)."""
    x = ctx.x
    raw = as_bytes(call.data(0))
    if call.arg(0) == 0 or len(raw) < 64:
        return [PTR(ctx, call, 0)], [ULONG(ctx, call, 1)]
    a = dict(zip(CLONE_ARGS_FIELDS, (int.from_bytes(raw[k:k + 8], "little")
                                     for k in range(0, len(raw) - 7, 8))))
    flag = lambda n: x.value("clone_flags", n)  # noqa: E731
    fl = a["flags"]
    if fl & flag("CLONE_PIDFD") or a.get("set_tid") or a.get("set_tid_size") or \
            fl & ~0xFFFF_FFFF:
        return [PTR(ctx, call, 0)], [ULONG(ctx, call, 1)]

    def addr(v):
        return hex_text(v) if v else "NULL"
    fields = ["flags=" + (x.flags("clone_flags", fl) if fl else "0")]
    if fl & (flag("CLONE_CHILD_SETTID") | flag("CLONE_CHILD_CLEARTID")):
        fields.append("child_tid=" + addr(a["child_tid"]))
    if fl & flag("CLONE_PARENT_SETTID"):
        fields.append("parent_tid=" + addr(a["parent_tid"]))
    fields += ["exit_signal=" + x.signal_text(a["exit_signal"]), "stack=" + addr(a["stack"]),
               "stack_size=" + hex_text(a["stack_size"])]
    if fl & flag("CLONE_SETTLS"):
        fields.append("tls=" + addr(a["tls"]))
    exit_ = [ULONG(ctx, call, 1)]
    if fl & flag("CLONE_PARENT_SETTID") and call.ret is not None and call.ret > 0:
        # the child's tid, written at parent_tid: what the call returns, in this namespace
        exit_.insert(0, f"{RESULT_GLUE}{{parent_tid=[{call.ret}]}}")
    return ["{" + ", ".join(fields) + "}"], exit_


def _futex(ctx, call):
    x = ctx.x
    op = call.arg(1) & 0xFFFF_FFFF
    clock_rt = x.value("futex_misc", "FUTEX_CLOCK_REALTIME")
    name = x.lookup("futex_ops", op & ~clock_rt)
    if name is None:
        op_text = x.enum("futex_ops", op)
    else:
        op_text = name + ("|FUTEX_CLOCK_REALTIME" if op & clock_rt else "")
    cmd = op & 127
    val = str(call.arg(2) & 0xFFFF_FFFF)
    val2 = str(call.arg(3) & 0xFFFF_FFFF)
    val3 = call.arg(5) & 0xFFFF_FFFF
    bitset = x.lookup("futex_bitset", val3) or hex_text(val3)
    ops = x.values("futex_ops")
    args = [PTR(ctx, call, 0), op_text]
    timeout = PTR(ctx, call, 3)
    if cmd == ops["FUTEX_WAIT"]:
        args += [val, timeout]
    elif cmd in (ops["FUTEX_LOCK_PI"], ops["FUTEX_LOCK_PI2"]):
        args += [timeout]
    elif cmd == ops["FUTEX_WAIT_BITSET"]:
        args += [val, timeout, bitset]
    elif cmd == ops["FUTEX_WAKE_BITSET"]:
        args += [val, bitset]
    elif cmd == ops["FUTEX_REQUEUE"]:
        args += [val, val2, PTR(ctx, call, 4)]
    elif cmd in (ops["FUTEX_CMP_REQUEUE"], ops["FUTEX_CMP_REQUEUE_PI"]):
        args += [val, val2, PTR(ctx, call, 4), str(val3)]
    elif cmd == ops["FUTEX_WAKE_OP"]:
        args += [val, val2, PTR(ctx, call, 4), hex_text(val3)]
    elif cmd == ops["FUTEX_WAIT_REQUEUE_PI"]:
        args += [val, timeout, PTR(ctx, call, 4)]
    elif cmd in (ops["FUTEX_WAKE"], ops["FUTEX_FD"]):
        args += [val]
    elif cmd in (ops["FUTEX_UNLOCK_PI"], ops["FUTEX_TRYLOCK_PI"]):
        pass
    else:
        args += [val, timeout, PTR(ctx, call, 4), hex_text(val3)]
    return args, []


def _fcntl(ctx, call):
    x = ctx.x
    cmds = x.values("fcntl_cmds")
    cmd = call.arg(1) & 0xFFFF_FFFF
    args = [FD(ctx, call, 0), x.enum("fcntl_cmds", cmd)]
    if cmd == cmds["F_SETFD"]:
        args.append(x.flags("fd_flags", call.arg(2) & 0xFFFF_FFFF))
    elif cmd == cmds["F_SETFL"]:
        args.append(open_flags_text(x, call.arg(2)))
    elif cmd in (cmds["F_DUPFD"], cmds["F_DUPFD_CLOEXEC"], cmds["F_SETOWN"],
                 cmds["F_SETPIPE_SZ"], cmds["F_SETLEASE"], cmds["F_NOTIFY"], cmds["F_SETSIG"],
                 cmds["F_ADD_SEALS"]):
        args.append(INT(ctx, call, 2))
    elif cmd in (cmds["F_GETLK"], cmds["F_OFD_GETLK"], cmds["F_GETOWN_EX"]):
        return args, [_exit_text(ctx, call, 2, PTR)]
    elif cmd in (cmds["F_SETLK"], cmds["F_SETLKW"], cmds["F_OFD_SETLK"], cmds["F_OFD_SETLKW"],
                 cmds["F_SETOWN_EX"]):
        args.append(PTR(ctx, call, 2))
    elif cmd not in (cmds["F_GETFD"], cmds["F_GETFL"], cmds["F_GETOWN"], cmds["F_GETSIG"],
                     cmds["F_GETLEASE"], cmds["F_GETPIPE_SZ"], cmds["F_GET_SEALS"]):
        args.append(HEX(ctx, call, 2))
    return args, []


def _wait4(ctx, call):
    return [INT(ctx, call, 0)], [_wait_status(ctx, call, 1),
                                 ctx.x.flags("wait_options", call.arg(2) & 0xFFFF_FFFF),
                                 _exit_text(ctx, call, 3, PTR)]


def _socket(ctx, call):
    x = ctx.x
    family = _s32(call.arg(0))
    t = call.arg(1) & 0xFFFF_FFFF
    type_text = x.enum("socket_types", t & 0xF)
    if t & ~0xF:
        type_text += "|" + x.flags("socket_type_flags", t & ~0xF)
    proto = _s32(call.arg(2))
    inet = {x.value("address_families", "AF_INET"), x.value("address_families", "AF_INET6")}
    if family in inet:
        proto_text = x.enum("ip_protocols", proto, decimal=True)
    elif family == x.value("address_families", "AF_NETLINK"):
        proto_text = x.enum("netlink_protocols", proto, decimal=True)
    else:
        proto_text = str(proto)
    return [x.enum("address_families", family, decimal=True), type_text, proto_text], []


def _socketpair(ctx, call):
    enter, _ = _socket(ctx, call)
    return enter, [_exit_text(ctx, call, 3, _fds_pair)]


def _setsockopt(getting: bool):
    def decode(ctx, call):
        x = ctx.x
        level = _s32(call.arg(1))
        name = _s32(call.arg(2))
        group = _OPTION_GROUPS.get(x.lookup("socket_levels", level))
        name_text = x.enum(group, name) if group else str(name)
        enter = [FD(ctx, call, 0), x.enum("socket_levels", level, decimal=True), name_text]
        if getting:
            return enter, _got_option(ctx, call, level, name)
        return enter + [_option_value(ctx, call, level, name), INT(ctx, call, 4)], []
    return decode


def _got_option(ctx, call, level: int, name: int) -> list[str]:
    """getsockopt's value and length, as strace 6.1 prints them: the value as setsockopt's
    (an int-like option shorter than an int in hex, ``SO_PEERCRED`` as ``{pid=1, uid=0,
    gid=0}``), the length as ``[4]`` or ``[64 => 16]``; the pointers when the room given is
    unknown, the value's pointer and ``[room]`` after a failure."""
    raw = as_bytes(call.data(4))
    if not call.arg(4) or len(raw) != 4:
        return [PTR(ctx, call, 3), PTR(ctx, call, 4)]
    given = int.from_bytes(raw, "little", signed=True)
    out = as_bytes(call.data(3))
    written = None if call.failed else written_length(out)
    length = _length_text(given, written)
    if written is None:
        return [PTR(ctx, call, 3), length]
    value = out[4:4 + max(0, written)]
    x = ctx.x
    option = (x.lookup("socket_options", name)
              if x.lookup("socket_levels", level) == "SOL_SOCKET" else None)
    if given <= 0 or written <= 0 or not call.arg(3):
        text = PTR(ctx, call, 3)
    elif option == "SO_PEERCRED" and len(value) >= 12:
        pid, uid, gid = (int.from_bytes(value[k:k + 4], "little") for k in (0, 4, 8))
        text = f"{{pid={pid}, uid={uid}, gid={gid}}}"
    elif option in _INT_SOCKET_OPTIONS or option in _GOT_INT_OPTIONS:
        text = (_int_text(value) if len(value) >= 4
                else quote(value, written, ctx.opt.max_len, HEX_ALL))
    else:
        text = _option_text(ctx, call, 3, level, name, written, value)
    return [text, length]


# The levels whose options are shown by name, and the names' group
_OPTION_GROUPS = {"SOL_SOCKET": "socket_options", "SOL_TCP": "tcp_options",
                  "SOL_IP": "ip_options", "SOL_IPV6": "ipv6_options"}
# The SOL_SOCKET options whose value strace prints as an int (net.c, print_setsockopt).
_INT_SOCKET_OPTIONS = frozenset(
    "SO_DEBUG SO_REUSEADDR SO_DONTROUTE SO_BROADCAST SO_SNDBUF SO_RCVBUF SO_KEEPALIVE "
    "SO_OOBINLINE SO_NO_CHECK SO_PRIORITY SO_BSDCOMPAT SO_REUSEPORT SO_PASSCRED SO_RCVLOWAT "
    "SO_SNDLOWAT SO_DETACH_FILTER SO_TIMESTAMP_OLD SO_ACCEPTCONN SO_SNDBUFFORCE "
    "SO_RCVBUFFORCE SO_PASSSEC SO_TIMESTAMPNS_OLD SO_MARK SO_TIMESTAMPING_OLD SO_RXQ_OVFL "
    "SO_WIFI_STATUS SO_PEEK_OFF SO_NOFCS SO_LOCK_FILTER SO_SELECT_ERR_QUEUE SO_BUSY_POLL "
    "SO_INCOMING_CPU SO_CNX_ADVICE SO_INCOMING_NAPI_ID SO_ZEROCOPY SO_TIMESTAMP_NEW "
    "SO_TIMESTAMPNS_NEW SO_TIMESTAMPING_NEW SO_DETACH_REUSEPORT_BPF SO_PREFER_BUSY_POLL "
    "SO_BUSY_POLL_BUDGET SO_RESERVE_MEM SO_RCVMARK SO_PASSPIDFD SO_RCVPRIORITY "
    "SO_PASSRIGHTS SO_INQ".split())
# ... those it shows as structures this view does not decode: their pointer
_STRUCT_SOCKET_OPTIONS = frozenset({"SO_ATTACH_FILTER", "SO_ATTACH_REUSEPORT_CBPF",
                                    "SO_TXREHASH"})
# the levels where strace decodes some options as structures (multicast groups, rings,
# filters): an int-sized value is still an int there, another one its pointer
_STRUCT_LEVELS = ("SOL_IP", "SOL_IPV6", "SOL_PACKET", "SOL_RAW", "SOL_TIPC")
# the SOL_SOCKET options getsockopt also shows as an int, beyond _INT_SOCKET_OPTIONS
_GOT_INT_OPTIONS = frozenset({"SO_ERROR", "SO_TYPE", "SO_DOMAIN", "SO_PROTOCOL"})


def _option_value(ctx, call, level: int, name: int) -> str:
    """setsockopt's value, as strace prints it (:func:`_option_text`); its pointer where
    nothing was recorded."""
    addr = call.arg(3)
    raw = as_bytes(call.data(3)) if call.data(3) is not None else None
    if addr == 0:
        return "NULL"
    if raw is None:
        return hex_text(addr)
    return _option_text(ctx, call, 3, level, name, _s32(call.arg(4)), raw)


def _option_text(ctx, call, i: int, level: int, name: int, length: int, raw: bytes) -> str:
    """A socket option's value of ``length`` bytes (``raw`` what was recorded of them), as
    strace prints it: an int option as ``[1]``, ``SO_LINGER`` as ``{l_onoff=1,
    l_linger=5}``, another value of an int's size as an int and a longer one as a string of
    ``length`` bytes; its pointer where strace decodes a structure this view does not."""
    addr = call.arg(i)
    x = ctx.x
    level_name = x.lookup("socket_levels", level)
    as_int = length == 4
    if level_name == "SOL_SOCKET":
        option = x.lookup("socket_options", name)
        if option == "SO_LINGER":
            if length < 8 or len(raw) < 8:
                return hex_text(addr)
            onoff, linger = (int.from_bytes(raw[k:k + 4], "little", signed=True) for k in (0, 4))
            return f"{{l_onoff={onoff}, l_linger={linger}}}"
        if option in _STRUCT_SOCKET_OPTIONS:
            return hex_text(addr)
        if option in _INT_SOCKET_OPTIONS:
            if length < 4:
                return hex_text(addr)
            as_int = True
    elif level_name == "SOL_NETLINK":
        if length < 4:
            return hex_text(addr)
        as_int = True
    elif level_name in _STRUCT_LEVELS and not as_int:
        return hex_text(addr)
    if as_int:
        return _int_text(raw) if len(raw) >= 4 else hex_text(addr)
    return quote(raw, max(length, 0), ctx.opt.max_len, ctx.opt.hex_mode)


def _statx(ctx, call):
    x = ctx.x
    fl = call.arg(2) & 0xFFFF_FFFF
    sync_mask = x.value("statx_sync", "AT_STATX_SYNC_TYPE")
    text = x.enum("statx_sync", fl & sync_mask)
    if fl & ~sync_mask:
        text += "|" + x.flags("at_flags", fl & ~sync_mask)
    return ([DIRFD(ctx, call, 0), PATH(ctx, call, 1), text,
             x.flags("statx_mask", call.arg(3) & 0xFFFF_FFFF)],
            [_exit_text(ctx, call, 4, STATX)])


def _mremap(ctx, call):
    args = [PTR(ctx, call, 0), ULONG(ctx, call, 1), ULONG(ctx, call, 2),
            ctx.x.flags("mremap_flags", call.arg(3) & 0xFFFF_FFFF)]
    if call.arg(3) & ctx.x.value("mremap_flags", "MREMAP_FIXED"):
        args.append(PTR(ctx, call, 4))
    return args, []


def _mknod(path_index: int):
    def decode(ctx, call):
        x = ctx.x
        mode = call.arg(path_index + 1) & 0xFFFF_FFFF
        args = [DIRFD(ctx, call, 0)] if path_index else []
        args += [PATH(ctx, call, path_index), mode_text(x, mode)]
        if is_device(x, mode):
            args.append(dev_text(call.arg(path_index + 2)))
        return args, []
    return decode


def _prctl(ctx, call):
    x = ctx.x
    option = call.arg(0) & 0xFFFF_FFFF
    name = x.lookup("prctl_options", option)
    args = [x.enum("prctl_options", option)]
    if name is None:
        return args + [HEX(ctx, call, i) for i in range(1, 5)], []
    if name == "PR_SET_PDEATHSIG":
        args.append(SIG(ctx, call, 1))
    elif name in ("PR_SET_NAME",):
        args.append(STR(ctx, call, 1) if call.data(1) is not None else PTR(ctx, call, 1))
    elif name == "PR_GET_NAME":
        return args, [_exit_text(ctx, call, 1, PTR)]
    elif name.startswith("PR_GET_") and name not in ("PR_GET_SPECULATION_CTRL",):
        pass
    elif name in ("PR_SET_NO_NEW_PRIVS", "PR_SET_THP_DISABLE", "PR_SET_CHILD_SUBREAPER",
                  "PR_SET_DUMPABLE", "PR_SET_KEEPCAPS", "PR_SET_TIMERSLACK",
                  "PR_CAPBSET_READ", "PR_CAPBSET_DROP"):
        args.append(ULONG(ctx, call, 1))
    else:
        args += [HEX(ctx, call, i) for i in range(1, 5)]
    return args, []


# The requests whose argument is decoded: the printer, and whether it shows what the
# request is given (at the entry) or what it fills (at the exit, after a success).
_IOCTL_ARGS = {
    "TCGETS": (TERMIOS, EXIT), "TCSETS": (TERMIOS, ENTER), "TCSETSW": (TERMIOS, ENTER),
    "TCSETSF": (TERMIOS, ENTER), "TIOCGWINSZ": (WINSIZE, EXIT), "TIOCSWINSZ": (WINSIZE, ENTER),
    "FIONREAD": (INT_AT, EXIT), "TIOCOUTQ": (INT_AT, EXIT), "TIOCGPGRP": (INT_AT, EXIT),
    "FIONBIO": (INT_AT, ENTER), "TIOCSPGRP": (INT_AT, ENTER), "TIOCGPTN": (INT_AT, EXIT),
    "TIOCSPTLCK": (INT_AT, ENTER),
}
# strace names these requests with the sound ones whose numbers they share
_IOCTL_SHARED = {"TCSETS": "SNDCTL_TMR_START or TCSETS", "TCSETSW": "SNDCTL_TMR_STOP or TCSETSW",
                 "TCSETSF": "SNDCTL_TMR_CONTINUE or TCSETSF"}


def _ioctl(ctx, call):
    cmd = call.arg(1) & 0xFFFF_FFFF
    name = ctx.x.lookup("ioctl_cmds", cmd)
    head = [FD(ctx, call, 0), _IOCTL_SHARED.get(name, name) if name else hex_text(cmd)]
    printer, when = _IOCTL_ARGS.get(name, (HEX, EXIT))
    if when == ENTER:
        return head + [printer(ctx, call, 2)], []
    return head, [_exit_text(ctx, call, 2, printer)]


def _arch_prctl(ctx, call):
    code = call.arg(0) & 0xFFFF_FFFF
    name = ctx.x.lookup("arch_prctl_codes", code)
    text = ctx.x.enum("arch_prctl_codes", code)
    if name in ("ARCH_GET_FS", "ARCH_GET_GS", "ARCH_GET_CPUID"):
        return [text], [_exit_text(ctx, call, 1, PTR)]
    return [text, HEX(ctx, call, 1)], []


def _umask(ctx, call):
    return [_octal(call.arg(0) & 0o7777)], []


def _chown_like(path_printer: Printer, dirfd: bool = False, at_flags: bool = False):
    def decode(ctx, call):
        args = []
        k = 0
        if dirfd:
            args.append(DIRFD(ctx, call, 0))
            k = 1
        args += [path_printer(ctx, call, k), INT(ctx, call, k + 1), INT(ctx, call, k + 2)]
        if at_flags:
            args.append(ctx.x.flags("at_flags", call.arg(k + 3) & 0xFFFF_FFFF))
        return args, []
    return decode


def _rt_sigprocmask(ctx, call):
    return ([ctx.x.enum("sigprocmask_how", call.arg(0) & 0xFFFF_FFFF), SIGSET(ctx, call, 1)],
            [_exit_text(ctx, call, 2, SIGSET), ULONG(ctx, call, 3)])


def _kill_like(n_ids: int):
    def decode(ctx, call):
        return [INT(ctx, call, k) for k in range(n_ids)] + [SIG(ctx, call, n_ids)], []
    return decode


def _getrandom(ctx, call):
    return [], [_exit_text(ctx, call, 0, Buf("ret", HEX_ALL)), ULONG(ctx, call, 1),
                ctx.x.flags("getrandom_flags", call.arg(2) & 0xFFFF_FFFF)]


def personality_text(x: Xlat, pers: int) -> str:
    """``PER_LINUX|ADDR_NO_RANDOMIZE``: the persona's type and flags."""
    mask = x.value("personality_types", "PER_MASK")
    text = x.enum("personality_types", pers & mask)
    if pers & ~mask:
        text += "|" + x.flags("personality_flags", pers & ~mask)
    return text


def _personality(ctx, call):
    pers = call.arg(0) & 0xFFFF_FFFF
    return [hex_text(pers) if pers == 0xFFFF_FFFF else personality_text(ctx.x, pers)], []


def _exit(ctx, call):
    return [INT(ctx, call, 0)], []


DECODERS: dict[str, Callable[[Context, Call], tuple[list[str], list[str]]]] = {
    "read": Signature(FD, out(Buf("ret")), ULONG),
    "write": Signature(FD, Buf(2), ULONG),
    "pread64": Signature(FD, out(Buf("ret")), ULONG, LONG),
    "pwrite64": Signature(FD, Buf(2), ULONG, LONG),
    "readv": Signature(FD, out(PTR), INT),
    "writev": Signature(FD, PTR, INT),
    "preadv": Signature(FD, out(PTR), INT, LONG),
    "pwritev": Signature(FD, PTR, INT, LONG),
    "open": _open_like(0, 1, 2),
    "openat": _open_like(1, 2, 3),
    "creat": Signature(PATH, MODE),
    "close": Signature(FD),
    "close_range": Signature(UINT, UINT, flags("close_range_flags")),
    "stat": Signature(PATH, out(STAT)),
    "lstat": Signature(PATH, out(STAT)),
    "fstat": Signature(FD, out(STAT)),
    "newfstatat": Signature(DIRFD, PATH, out(STAT), flags("at_flags")),
    "statx": _statx,
    "statfs": Signature(PATH, out(PTR)),
    "fstatfs": Signature(FD, out(PTR)),
    "poll": _poll,
    "ppoll": Signature(PTR, UINT, PTR, PTR, ULONG),
    "select": Signature(INT, PTR, PTR, PTR, PTR),
    "pselect6": Signature(INT, PTR, PTR, PTR, PTR, PTR),
    "lseek": Signature(FD, LONG, enum("seek_whence")),
    "mmap": _mmap,
    "mprotect": Signature(PTR, ULONG, flags64("mmap_prot")),
    "pkey_mprotect": Signature(PTR, ULONG, flags64("mmap_prot"), INT),
    "munmap": Signature(PTR, ULONG),
    "mremap": _mremap,
    "madvise": Signature(PTR, ULONG, enum("madvise_advice", decimal=True)),
    "msync": Signature(PTR, ULONG, flags("msync_flags")),
    "mlock": Signature(PTR, ULONG),
    "munlock": Signature(PTR, ULONG),
    "mlockall": Signature(flags("mlockall_flags")),
    "mincore": Signature(PTR, ULONG, out(PTR)),
    "brk": Signature(PTR),
    "rt_sigaction": Signature(SIG, SIGACTION, out(SIGACTION), ULONG),
    "rt_sigprocmask": _rt_sigprocmask,
    "rt_sigreturn": Signature(),
    "rt_sigsuspend": Signature(PTR, ULONG),
    "rt_sigpending": Signature(out(PTR), ULONG),
    "sigaltstack": Signature(PTR, out(PTR)),
    "ioctl": _ioctl,
    "access": Signature(PATH, flags("access_modes")),
    "faccessat": Signature(DIRFD, PATH, flags("access_modes")),
    "faccessat2": Signature(DIRFD, PATH, flags("access_modes"), flags("faccessat_flags")),
    "pipe": Signature(out(_fds_pair)),
    "pipe2": Signature(out(_fds_pair), flags("open_flags")),
    "dup": Signature(FD),
    "dup2": Signature(FD, FD),
    "dup3": Signature(FD, FD, flags("open_flags")),
    "sched_yield": Signature(),
    "pause": Signature(),
    "nanosleep": Signature(TIMESPEC, out(PTR)),
    "clock_nanosleep": Signature(enum("clocks"), flags("timer_flags"), TIMESPEC, out(PTR)),
    "clock_gettime": Signature(enum("clocks"), out(PTR)),
    "clock_getres": Signature(enum("clocks"), out(PTR)),
    "gettimeofday": Signature(out(PTR), out(PTR)),
    "time": Signature(PTR),
    "getitimer": Signature(enum("itimer_which"), out(PTR)),
    "setitimer": Signature(enum("itimer_which"), PTR, out(PTR)),
    "alarm": Signature(UINT),
    "getpid": Signature(), "getppid": Signature(), "gettid": Signature(),
    "getuid": Signature(), "geteuid": Signature(), "getgid": Signature(),
    "getegid": Signature(), "getpgrp": Signature(), "setsid": Signature(),
    "getpgid": Signature(INT), "getsid": Signature(INT), "setpgid": Signature(INT, INT),
    "setuid": Signature(INT), "setgid": Signature(INT),
    "setreuid": Signature(INT, INT), "setregid": Signature(INT, INT),
    "setresuid": Signature(INT, INT, INT), "setresgid": Signature(INT, INT, INT),
    "getresuid": Signature(out(PTR), out(PTR), out(PTR)),
    "getresgid": Signature(out(PTR), out(PTR), out(PTR)),
    "getgroups": Signature(INT, out(PTR)),
    "setgroups": Signature(INT, PTR),
    "sendfile": Signature(FD, FD, PTR, ULONG),
    "socket": _socket,
    "socketpair": _socketpair,
    "connect": Signature(FD, SOCKADDR, INT),
    "bind": Signature(FD, SOCKADDR, INT),
    "listen": Signature(FD, INT),
    "accept": Signature(FD, out(SOCKADDR_OUT), out(SOCKLEN_OUT)),
    "accept4": Signature(FD, out(SOCKADDR_OUT), out(SOCKLEN_OUT), flags("socket_type_flags")),
    "getsockname": Signature(FD, out(SOCKADDR_OUT), out(SOCKLEN_OUT)),
    "getpeername": Signature(FD, out(SOCKADDR_OUT), out(SOCKLEN_OUT)),
    "sendto": Signature(FD, Buf(2), ULONG, flags("msg_flags"), PTR, INT),
    "recvfrom": Signature(FD, out(Buf("ret")), ULONG, flags("msg_flags"), PTR, PTR),
    "sendmsg": Signature(FD, PTR, flags("msg_flags")),
    "recvmsg": Signature(FD, out(PTR), flags("msg_flags")),
    "sendmmsg": Signature(FD, PTR, UINT, flags("msg_flags")),
    "recvmmsg": Signature(FD, out(PTR), UINT, flags("msg_flags"), PTR),
    "shutdown": Signature(FD, enum("shutdown_how", decimal=True)),
    "setsockopt": _setsockopt(False),
    "getsockopt": _setsockopt(True),
    "clone": _clone,
    "clone3": _clone3,
    "fork": Signature(),
    "vfork": Signature(),
    "execve": Signature(PATH, ARGV, ENVP),
    "execveat": Signature(DIRFD, PATH, ARGV, ENVP, flags("at_flags")),
    "exit": _exit,
    "exit_group": _exit,
    "wait4": _wait4,
    "waitid": Signature(enum("waitid_types"), INT, out(PTR), flags("wait_options"), out(PTR)),
    "kill": _kill_like(1),
    "tkill": _kill_like(1),
    "tgkill": _kill_like(2),
    "uname": Signature(out(UTSNAME)),
    "sysinfo": Signature(out(PTR)),
    "times": Signature(out(PTR)),
    "fcntl": _fcntl,
    "flock": Signature(FD, flags("flock_ops")),
    "fsync": Signature(FD),
    "fdatasync": Signature(FD),
    "syncfs": Signature(FD),
    "truncate": Signature(PATH, LONG),
    "ftruncate": Signature(FD, LONG),
    "getdents": Signature(FD, out(PTR), UINT),
    "getdents64": Signature(FD, out(DIRENTS), UINT),
    "getcwd": Signature(out(OUT_PATH), ULONG),
    "chdir": Signature(PATH),
    "fchdir": Signature(FD),
    "chroot": Signature(PATH),
    "rename": Signature(PATH, PATH),
    "renameat": Signature(DIRFD, PATH, DIRFD, PATH),
    "renameat2": Signature(DIRFD, PATH, DIRFD, PATH, flags("renameat2_flags")),
    "mkdir": Signature(PATH, MODE),
    "mkdirat": Signature(DIRFD, PATH, MODE),
    "rmdir": Signature(PATH),
    "link": Signature(PATH, PATH),
    "linkat": Signature(DIRFD, PATH, DIRFD, PATH, flags("at_flags")),
    "unlink": Signature(PATH),
    "unlinkat": Signature(DIRFD, PATH, flags("at_flags")),
    "symlink": Signature(PATH, PATH),
    "symlinkat": Signature(PATH, DIRFD, PATH),
    "readlink": Signature(PATH, out(Buf("ret")), INT),
    "readlinkat": Signature(DIRFD, PATH, out(Buf("ret")), INT),
    "chmod": Signature(PATH, MODE),
    "fchmod": Signature(FD, MODE),
    "fchmodat": Signature(DIRFD, PATH, MODE),
    "fchmodat2": Signature(DIRFD, PATH, MODE, flags("at_flags")),
    "chown": _chown_like(PATH),
    "lchown": _chown_like(PATH),
    "fchown": _chown_like(FD),
    "fchownat": _chown_like(PATH, dirfd=True, at_flags=True),
    "umask": _umask,
    "mknod": _mknod(0),
    "mknodat": _mknod(1),
    "utimensat": Signature(DIRFD, PATH, PTR, flags("at_flags")),
    "getrlimit": Signature(enum("rlimit_resources"), out(PTR)),
    "setrlimit": Signature(enum("rlimit_resources"), PTR),
    "prlimit64": Signature(INT, enum("rlimit_resources"), RLIMIT64, out(RLIMIT64)),
    "getrusage": Signature(enum("rusage_who", decimal=True), out(PTR)),
    "getpriority": Signature(enum("priority_which"), INT),
    "setpriority": Signature(enum("priority_which"), INT, INT),
    "arch_prctl": _arch_prctl,
    "prctl": _prctl,
    "set_tid_address": Signature(PTR),
    "set_robust_list": Signature(PTR, ULONG),
    "get_robust_list": Signature(INT, out(PTR), out(PTR)),
    "rseq": Signature(PTR, HEX, HEX, HEX),
    "futex": _futex,
    "getrandom": _getrandom,
    "sched_getaffinity": Signature(INT, UINT, out(PTR)),
    "sched_setaffinity": Signature(INT, UINT, PTR),
    "epoll_create": Signature(INT),
    "epoll_create1": Signature(flags("epoll_flags")),
    "epoll_ctl": Signature(FD, enum("epoll_ctl_ops"), FD, PTR),
    "epoll_wait": Signature(FD, out(PTR), INT, INT),
    "epoll_pwait": Signature(FD, out(PTR), INT, INT, PTR, ULONG),
    "eventfd": Signature(UINT),
    "eventfd2": Signature(UINT, flags("eventfd_flags")),
    "timerfd_create": Signature(enum("clocks"), flags("timerfd_flags")),
    "signalfd4": Signature(FD, PTR, ULONG, flags("signalfd_flags")),
    "inotify_init1": Signature(flags("inotify_flags")),
    "inotify_add_watch": Signature(FD, PATH, HEX),
    "inotify_rm_watch": Signature(FD, INT),
    "memfd_create": Signature(STR, flags("memfd_flags")),
    "fadvise64": Signature(FD, LONG, LONG, enum("fadvise_advice", decimal=True)),
    "fallocate": Signature(FD, flags("falloc_flags"), LONG, LONG),
    "pidfd_open": Signature(INT, HEX),
    "membarrier": Signature(enum("membarrier_cmds"), HEX, INT),
    "personality": _personality,
    "ptrace": Signature(enum("ptrace_requests", decimal=True), INT, PTR, PTR),
}

# Results strace prints in hex (addresses), octal, or not at all.
HEX_RESULTS = frozenset({"mmap", "brk", "mremap", "shmat"})
NO_RESULT = frozenset({"exit", "exit_group"})


def decode_args(ctx: Context, call: Call) -> tuple[list[str], list[str]]:
    """``(printed at the entry, printed at the return)`` for ``call``."""
    decoder = DECODERS.get(call.name, generic)
    return decoder(ctx, call)


def decode_exit(ctx: Context, call: Call) -> list[str]:
    """Only what ``call`` prints at its return (the entry part is printed already)."""
    decoder = DECODERS.get(call.name, generic)
    if isinstance(decoder, Signature):
        return decoder.exit_part(ctx, call)
    return decoder(ctx, call)[1]


def result_text(ctx: Context, call: Call) -> str:
    """What follows ``= ``: ``3``, ``0x7f...``, ``-1 ENOENT (No such file or directory)``,
    ``? ERESTARTSYS (To be restarted if SA_RESTART is set)``, ``?``."""
    ret = call.ret
    if ret is None or call.name in NO_RESULT:
        return "?"
    if -ERRNO_MAX <= ret < 0:
        err = -ret
        named = ctx.x.errno(err)
        if ctx.x.is_restart(err):
            return f"? {named[0]} ({named[1]})"
        if named is None:
            return f"-1 (errno {err})"
        return f"-1 {named[0]} ({named[1]})"
    if call.name in HEX_RESULTS:
        return hex_text(ret)
    if call.name == "umask":
        return _octal(ret)
    if call.name == "fcntl":
        return _fcntl_result(ctx, call)
    if call.name == "poll":
        return _poll_result(ctx, call)
    if call.name == "personality":
        return f"{hex_text(ret)} ({personality_text(ctx.x, ret & 0xFFFF_FFFF)})"
    if call.name in FD_RETURNING or call.name in ("pidfd_open",):
        return ctx.fd(ret) if ret <= 0x7FFF_FFFF else str(ret)
    return str(ret)


def _fcntl_result(ctx: Context, call: Call) -> str:
    x = ctx.x
    cmds = x.values("fcntl_cmds")
    cmd = call.arg(1) & 0xFFFF_FFFF
    ret = call.ret or 0
    if cmd == cmds["F_GETFD"]:
        return f"{hex_text(ret)} (flags {x.flags('fd_flags', ret)})" if ret else "0"
    if cmd == cmds["F_GETFL"]:
        return f"{hex_text(ret)} (flags {open_flags_text(x, ret)})"
    if cmd in (cmds["F_DUPFD"], cmds["F_DUPFD_CLOEXEC"]):
        return ctx.fd(ret)
    if cmd == cmds["F_GETSIG"] and ret:
        return f"{ret} ({x.signal_text(ret)})"
    return str(ret)
