#!/usr/bin/env python3
"""Generate src/usertrace/sources/syscalls/consts_x86_64.py: the named constants strace prints.

The strace view (usertrace.output.strace) prints ``O_RDONLY|O_CLOEXEC``, ``PROT_READ``,
``AF_UNIX``, ``-1 ENOENT (No such file or directory)``.  The values of those names come from
what is installed here, never typed by hand:

* the kernel's UAPI headers (``/usr/include/linux``, ``/usr/include/asm-generic`` and the
  x86_64 ``asm`` directory), read as a C preprocessor would for ``#define NAME VALUE`` and
  ``enum { NAME = VALUE }`` (the first definition of a name wins, as with the headers'
  ``#ifndef`` guards; values may be expressions over other names);
* the C library's headers for what the kernel's UAPI does not export (socket families, types
  and message flags, ``R_OK``), the same way;
* Python's standard library: ``os.strerror`` for the error messages (the C library's, which is
  what strace prints).

What this file holds is the *vocabulary*: which names form each group (``open_flags``,
``mmap_prot``, ...) and in which order strace prints them (strace prints ``O_RDONLY|O_CLOEXEC``
by walking its table in order, and its order is not always the values' order).  Names that
the installed headers do not define are left out and listed in the module's docstring.

The kernel's internal error codes (``ERESTARTSYS`` and the others above 511, which no UAPI
header defines) come from ``tools/data/kernel_errno_internal.txt``.

A unit test re-runs the generator with ``--check`` and compares the output with the committed
module, so the module never drifts from its inputs.

Examples::

    tools/gen_strace_tables.py
    tools/gen_strace_tables.py --check
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from genlib import GenError, add_output_arguments, check_module, libc_dev_version  # noqa: E402

DEFAULT_INCLUDE = Path("/usr/include")
ARCH_INCLUDE = "x86_64-linux-gnu"
DEFAULT_INTERNAL = ROOT / "tools" / "data" / "kernel_errno_internal.txt"
DEFAULT_OUTPUT = ROOT / "src" / "usertrace" / "sources" / "syscalls" / "consts_x86_64.py"
GENERATOR = "tools/gen_strace_tables.py"

# The headers read, in this order (each with what it includes).  The x86_64 asm headers come
# before the generic ones they include, so an architecture's own value wins.
KERNEL_HEADERS = (
    "asm/errno.h", "asm/signal.h", "asm-generic/signal.h", "asm/fcntl.h", "linux/fcntl.h", "asm/mman.h", "linux/mman.h",
    "linux/sched.h", "linux/fs.h", "linux/wait.h", "linux/futex.h", "asm/resource.h",
    "linux/resource.h", "asm/prctl.h", "linux/prctl.h", "linux/time.h", "linux/stat.h",
    "linux/random.h", "linux/eventpoll.h", "linux/close_range.h", "linux/memfd.h",
    "asm/ioctls.h", "asm/socket.h", "linux/in.h", "linux/fadvise.h", "linux/falloc.h",
    "linux/personality.h", "linux/membarrier.h", "linux/ptrace.h", "linux/net.h",
    "asm/siginfo.h", "linux/netlink.h", "asm/poll.h", "asm-generic/poll.h", "linux/in6.h",
    "asm/termbits.h", "asm-generic/termbits.h", "asm-generic/termbits-common.h",
)
LIBC_HEADERS = ("bits/socket.h", "bits/socket_type.h", "sys/socket.h", "netinet/in.h",
                "netinet/tcp.h", "netinet/udp.h", "unistd.h",
                "bits/eventfd.h", "bits/timerfd.h", "bits/signalfd.h", "bits/inotify.h")



# -- reading C headers ------------------------------------------------------------------------

_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DIRECTIVE_RE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$")
# asm-generic/ioctl.h's _IOR/_IOW/_IOWR(type, nr, argument type): _IOC(direction, type, nr,
# sizeof(argument type)), for the argument types of the requests named here
_IOC_RE = re.compile(r"\b_IO(R|W|WR)\(([^,()]+),([^,()]+),([^,()]+)\)")
_IOC_DIRECTIONS = {"R": 2, "W": 1, "WR": 3}         # _IOC_READ, _IOC_WRITE
_IOC_SIZES = {"int": 4, "unsigned int": 4, "__u32": 4, "__s32": 4, "long": 8,
              "unsigned long": 8}


def _ioc_call(m: re.Match) -> str:
    size = _IOC_SIZES.get(" ".join(m.group(4).split()))
    if size is None:
        return m.group(0)                 # left for _eval to refuse
    return f"_IOC({_IOC_DIRECTIONS[m.group(1)]}, {m.group(2)}, {m.group(3)}, {size})"


_DEFINE_RE = re.compile(r"([A-Za-z_]\w*)(\()?[ \t]*(.*)$")
_ENUM_ITEM_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:=\s*(.+?))?\s*$", re.S)

# What the preprocessor knows before reading a header: an x86_64 Linux user-space compile
# with _GNU_SOURCE (the C library's feature macros it implies), not the kernel.
PREDEFINED = {
    "__x86_64__": "1", "__linux__": "1", "__LP64__": "1", "__WORDSIZE": "64",
    "__BYTE_ORDER": "1234", "__LITTLE_ENDIAN": "1234", "__BIG_ENDIAN": "4321",
    "_GNU_SOURCE": "1", "__USE_GNU": "1", "__USE_MISC": "1", "__USE_POSIX": "1",
    "__USE_POSIX2": "1", "__USE_POSIX199309": "1", "__USE_POSIX199506": "1",
    "__USE_XOPEN": "1", "__USE_XOPEN_EXTENDED": "1", "__USE_UNIX98": "1",
    "__USE_XOPEN2K": "1", "__USE_XOPEN2K8": "1", "__USE_XOPEN2K8XSI": "1",
    "__USE_ATFILE": "1", "__USE_LARGEFILE64": "1",
}
# Headers of the C library's own machinery: not read (their macros are above).
_SKIP_INCLUDES = ("features.h", "sys/cdefs.h", "stddef.h", "stdint.h", "bits/wordsize.h",
                  "gnu/stubs.h", "bits/libc-header-start.h", "bits/types.h")


class Headers:
    """The object-like macros and enum constants of a set of C headers, evaluated on demand.

    A small preprocessor: ``#include`` reads the named header where it stands (once),
    ``#if``/``#ifdef``/``#ifndef``/``#elif``/``#else``/``#endif`` select the lines of an x86_64
    user-space compile (:data:`PREDEFINED`; an expression it cannot evaluate counts as false),
    ``#define NAME VALUE`` and ``#undef`` keep the macros, ``enum { NAME = VALUE, ... }`` the
    constants; values are evaluated when asked for.
    """

    def __init__(self, include: Path):
        self.include = include
        self.raw: dict[str, tuple[str, str]] = {n: (v, "(predefined)") for n, v in PREDEFINED.items()}
        self.files: list[str] = []
        self._seen: set[Path] = set()
        self._cache: dict[str, int | None] = {}

    def _resolve(self, name: str) -> Path | None:
        for base in (self.include / ARCH_INCLUDE, self.include):
            p = base / name
            if p.is_file():
                return p
        return None

    def read(self, name: str, required: bool = True) -> None:
        path = self._resolve(name)
        if path is None:
            if required:
                raise GenError(f"{self.include}/{name}: not found (apt-get install linux-libc-dev "
                               "libc6-dev)")
            return
        self._read_path(path)

    def _define(self, name: str, expr: str, where: str) -> None:
        if expr.strip() == name:       # ``#define X X``: names the enum constant X
            return
        if name not in self.raw:
            self.raw[name] = (expr, where)
            self._cache.pop(name, None)

    def _read_path(self, path: Path) -> None:
        if path in self._seen:
            return
        self._seen.add(path)
        self.files.append(str(path))
        where = str(path)
        text = path.read_text(errors="replace").replace("\\\n", " ")
        text = _COMMENT_RE.sub(" ", text)
        stack: list[list[bool]] = []       # per open #if: [active now, a branch was taken]
        enum: list[str] | None = None      # the text of an enum body being read
        enum_head = False                  # "enum NAME" seen, its "{" not yet
        for line in text.split("\n"):
            live = all(frame[0] for frame in stack)
            d = _DIRECTIVE_RE.match(line)
            if d:
                self._directive(d.group(1), d.group(2).strip(), stack, live, where)
                continue
            if not live:
                continue
            if enum is None:
                if re.search(r"\benum\b", line):
                    enum_head = True
                    line = line[re.search(r"\benum\b", line).end():]
                if not enum_head:
                    continue
                i = line.find("{")
                if i < 0:
                    if ";" in line:           # "enum x y;": a declaration, no body
                        enum_head = False
                    continue
                enum_head = False
                enum = []
                line = line[i + 1:]
            j = line.find("}")
            enum.append(line if j < 0 else line[:j])
            if j >= 0:
                self._read_enum(" ".join(enum), where)
                enum = None

    def _directive(self, kind: str, rest: str, stack: list[list[bool]], live: bool,
                   where: str) -> None:
        if kind in ("if", "ifdef", "ifndef"):
            if not live:
                stack.append([False, True])     # the whole block is dead
                return
            if kind == "if":
                cond = self._condition(rest)
            else:
                name = rest.split()[0] if rest.split() else ""
                cond = (name in self.raw) == (kind == "ifdef")
            stack.append([cond, cond])
        elif kind == "elif":
            if stack:
                frame = stack[-1]
                outer = all(f[0] for f in stack[:-1])
                if frame[1] or not outer:
                    frame[0] = False
                else:
                    frame[0] = frame[1] = self._condition(rest)
        elif kind == "else":
            if stack:
                frame = stack[-1]
                frame[0] = not frame[1]
                frame[1] = True
        elif kind == "endif":
            if stack:
                stack.pop()
        elif not live:
            return
        elif kind == "include":
            m = re.match(r'[<"]([^>"]+)[>"]', rest)
            if m and m.group(1) not in _SKIP_INCLUDES:
                sub = self._resolve(m.group(1))
                if sub is not None:
                    self._read_path(sub)
        elif kind == "define":
            m = _DEFINE_RE.match(rest)
            if m and m.group(2) is None:        # not a function-like macro
                self._define(m.group(1), m.group(3).strip(), where)
        elif kind == "undef":
            name = rest.split()[0] if rest.split() else ""
            self.raw.pop(name, None)
            self._cache.clear()

    def _condition(self, expr: str) -> bool:
        """A ``#if`` expression: ``defined``, numbers, macros; unknown names are 0."""
        expr = re.sub(r"\bdefined\s*\(\s*(\w+)\s*\)|\bdefined\s+(\w+)",
                      lambda m: "1" if (m.group(1) or m.group(2)) in self.raw else "0", expr)
        expr = expr.replace("&&", " and ").replace("||", " or ")
        expr = re.sub(r"!(?!=)", " not ", expr)
        v = self._eval(expr, unknown_zero=True)
        return bool(v)

    def _read_enum(self, body: str, where: str) -> None:
        prev = None
        for item in body.split(","):
            m = _ENUM_ITEM_RE.match(item)
            if not m:
                continue
            name, expr = m.group(1), m.group(2)
            if expr is None:
                expr = "0" if prev is None else f"({prev}) + 1"
            self._define(name, expr, where)
            prev = name

    def value(self, name: str) -> int | None:
        if name in self._cache:
            return self._cache[name]
        self._cache[name] = None        # a self-reference (``#define X X``) stays None
        got = self.raw.get(name)
        v = None
        if got is not None:
            v = self._eval(got[0])
        self._cache[name] = v
        return v

    def where(self, name: str) -> str | None:
        got = self.raw.get(name)
        return got[1] if got else None

    def _eval(self, expr: str, unknown_zero: bool = False) -> int | None:
        expr = expr.strip()
        if not expr:
            return None
        expr = _IOC_RE.sub(_ioc_call, expr)
        py = re.sub(r"'(\\?.)'", lambda m: str(ord(m.group(1)[-1])), expr)
        py = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b", _c_number, py)
        py = py.replace("/", "//")
        try:
            tree = ast.parse(py, mode="eval")
        except SyntaxError:
            return None
        try:
            return self._node(tree.body, unknown_zero)
        except (_NoValue, RecursionError, ZeroDivisionError, ValueError):
            return None

    _BIN = {ast.BitOr: lambda a, b: a | b, ast.BitAnd: lambda a, b: a & b,
            ast.BitXor: lambda a, b: a ^ b, ast.LShift: lambda a, b: a << b,
            ast.RShift: lambda a, b: a >> b, ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
            ast.FloorDiv: lambda a, b: a // b}

    _CMP = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
            ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}

    def _node(self, n, unknown_zero: bool = False) -> int:
        node = lambda x: self._node(x, unknown_zero)  # noqa: E731
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name):
            v = self.value(n.id)
            if v is None:
                if unknown_zero and n.id not in self.raw:
                    return 0
                raise _NoValue
            return v
        if isinstance(n, ast.BinOp) and type(n.op) in self._BIN:
            return self._BIN[type(n.op)](node(n.left), node(n.right))
        if isinstance(n, ast.UnaryOp):
            v = node(n.operand)
            if isinstance(n.op, ast.Invert):
                return ~v
            if isinstance(n.op, ast.USub):
                return -v
            if isinstance(n.op, ast.UAdd):
                return v
            if isinstance(n.op, ast.Not):
                return int(not v)
        if isinstance(n, ast.BoolOp):
            vals = [node(x) for x in n.values]
            return int(all(vals) if isinstance(n.op, ast.And) else any(vals))
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in self._CMP:
            return int(self._CMP[type(n.ops[0])](node(n.left), node(n.comparators[0])))
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_IO"
                and len(n.args) == 2):
            return node(n.args[0]) << 8 | node(n.args[1])
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_IOC"
                and len(n.args) == 4):
            direction, kind, nr, size = (node(a) for a in n.args)
            return direction << 30 | size << 16 | kind << 8 | nr
        raise _NoValue


class _NoValue(Exception):
    pass


def _c_number(m: re.Match) -> str:
    text = m.group(1)
    if len(text) > 1 and text[0] == "0" and text[1] not in "xX":
        return str(int(text, 8))
    return str(int(text, 0))


# -- the vocabulary ---------------------------------------------------------------------------
#
# Each group: the names in strace's printing order.  "flags" groups print as NAME|NAME|0x..,
# "enums" look a value up (the first name listed for a value wins).

@dataclass(frozen=True)
class Group:
    name: str
    kind: str               # "flags" or "enum"
    names: tuple[str, ...]
    what: str


def _g(name: str, kind: str, names: str, what: str) -> Group:
    return Group(name, kind, tuple(names.split()), what)


GROUPS = (
    _g("open_access", "enum", "O_RDONLY O_WRONLY O_RDWR O_ACCMODE",
       "open(2) access modes (flags & O_ACCMODE)"),
    _g("open_flags", "flags",
       "O_CREAT O_EXCL O_NOCTTY O_TRUNC O_APPEND O_NONBLOCK O_SYNC __O_SYNC O_DSYNC O_DIRECT "
       "O_LARGEFILE O_NOFOLLOW O_NOATIME O_CLOEXEC O_PATH O_TMPFILE __O_TMPFILE O_DIRECTORY "
       "FASYNC", "open(2) flags beyond the access mode"),
    _g("at_flags", "flags",
       "AT_SYMLINK_NOFOLLOW AT_REMOVEDIR AT_SYMLINK_FOLLOW AT_NO_AUTOMOUNT AT_EMPTY_PATH "
       "AT_RECURSIVE", "the *at(2) calls' AT_ flags"),
    _g("faccessat_flags", "flags", "AT_SYMLINK_NOFOLLOW AT_EACCESS AT_EMPTY_PATH",
       "faccessat2(2) flags"),
    _g("statx_flags", "flags",
       "AT_STATX_SYNC_AS_STAT AT_SYMLINK_NOFOLLOW AT_REMOVEDIR AT_SYMLINK_FOLLOW "
       "AT_NO_AUTOMOUNT AT_EMPTY_PATH AT_STATX_FORCE_SYNC AT_STATX_DONT_SYNC AT_RECURSIVE",
       "statx(2) flags"),
    _g("statx_mask", "flags",
       "STATX_ALL STATX_BASIC_STATS STATX_TYPE STATX_MODE STATX_NLINK STATX_UID STATX_GID "
       "STATX_ATIME STATX_MTIME STATX_CTIME STATX_INO STATX_SIZE STATX_BLOCKS STATX_BTIME "
       "STATX_MNT_ID STATX_DIOALIGN", "statx(2) mask"),
    _g("statx_attrs", "flags",
       "STATX_ATTR_COMPRESSED STATX_ATTR_IMMUTABLE STATX_ATTR_APPEND STATX_ATTR_NODUMP "
       "STATX_ATTR_ENCRYPTED STATX_ATTR_AUTOMOUNT STATX_ATTR_MOUNT_ROOT STATX_ATTR_VERITY "
       "STATX_ATTR_DAX", "struct statx's stx_attributes"),
    _g("unlinkat_flags", "flags", "AT_REMOVEDIR", "unlinkat(2) flags"),
    _g("at_fdcwd", "enum", "AT_FDCWD", "the *at(2) calls' current directory"),
    _g("statx_sync", "enum", "AT_STATX_SYNC_AS_STAT AT_STATX_FORCE_SYNC AT_STATX_DONT_SYNC "
       "AT_STATX_SYNC_TYPE", "statx(2) sync types (flags & AT_STATX_SYNC_TYPE)"),
    _g("renameat2_flags", "flags", "RENAME_NOREPLACE RENAME_EXCHANGE RENAME_WHITEOUT",
       "renameat2(2) flags"),
    _g("access_modes", "flags", "F_OK R_OK W_OK X_OK", "access(2) modes"),
    _g("mmap_prot", "flags",
       "PROT_NONE PROT_READ PROT_WRITE PROT_EXEC PROT_SEM PROT_GROWSDOWN PROT_GROWSUP",
       "mmap(2) and mprotect(2) protections"),
    _g("mmap_type", "enum", "MAP_SHARED MAP_PRIVATE MAP_SHARED_VALIDATE",
       "mmap(2) mapping type (flags & MAP_TYPE)"),
    _g("mmap_flags", "flags",
       "MAP_FIXED MAP_ANONYMOUS MAP_32BIT MAP_NORESERVE MAP_POPULATE MAP_NONBLOCK "
       "MAP_GROWSDOWN MAP_DENYWRITE MAP_EXECUTABLE MAP_LOCKED MAP_STACK MAP_HUGETLB MAP_SYNC "
       "MAP_UNINITIALIZED MAP_FIXED_NOREPLACE", "mmap(2) flags beyond the type"),
    _g("mmap_misc", "enum", "MAP_TYPE MAP_HUGE_SHIFT MAP_HUGE_MASK",
       "masks of mmap(2) flags"),
    _g("mremap_flags", "flags", "MREMAP_MAYMOVE MREMAP_FIXED MREMAP_DONTUNMAP",
       "mremap(2) flags"),
    _g("madvise_advice", "enum",
       "MADV_NORMAL MADV_RANDOM MADV_SEQUENTIAL MADV_WILLNEED MADV_DONTNEED MADV_FREE "
       "MADV_REMOVE MADV_DONTFORK MADV_DOFORK MADV_MERGEABLE MADV_UNMERGEABLE MADV_HUGEPAGE "
       "MADV_NOHUGEPAGE MADV_DONTDUMP MADV_DODUMP MADV_WIPEONFORK MADV_KEEPONFORK MADV_COLD "
       "MADV_PAGEOUT MADV_POPULATE_READ MADV_POPULATE_WRITE MADV_DONTNEED_LOCKED "
       "MADV_COLLAPSE MADV_HWPOISON MADV_SOFT_OFFLINE", "madvise(2) advice"),
    _g("msync_flags", "flags", "MS_ASYNC MS_INVALIDATE MS_SYNC", "msync(2) flags"),
    _g("mlockall_flags", "flags", "MCL_CURRENT MCL_FUTURE MCL_ONFAULT", "mlockall(2) flags"),
    _g("fcntl_cmds", "enum",
       "F_DUPFD F_GETFD F_SETFD F_GETFL F_SETFL F_GETLK F_SETLK F_SETLKW F_SETOWN F_GETOWN "
       "F_SETSIG F_GETSIG F_SETOWN_EX F_GETOWN_EX F_GETOWNER_UIDS F_OFD_GETLK F_OFD_SETLK "
       "F_OFD_SETLKW F_SETLEASE F_GETLEASE F_NOTIFY F_CANCELLK F_DUPFD_CLOEXEC F_SETPIPE_SZ "
       "F_GETPIPE_SZ F_ADD_SEALS F_GET_SEALS F_GET_RW_HINT F_SET_RW_HINT F_GET_FILE_RW_HINT "
       "F_SET_FILE_RW_HINT", "fcntl(2) commands"),
    _g("fd_flags", "flags", "FD_CLOEXEC", "fcntl(2) F_GETFD/F_SETFD flags"),
    _g("flock_ops", "flags", "LOCK_SH LOCK_EX LOCK_NB LOCK_UN LOCK_MAND LOCK_READ LOCK_WRITE",
       "flock(2) operations"),
    _g("seek_whence", "enum", "SEEK_SET SEEK_CUR SEEK_END SEEK_DATA SEEK_HOLE",
       "lseek(2) whence"),
    _g("clone_flags", "flags",
       "CLONE_VM CLONE_FS CLONE_FILES CLONE_SIGHAND CLONE_PIDFD CLONE_PTRACE CLONE_VFORK "
       "CLONE_PARENT CLONE_THREAD CLONE_NEWNS CLONE_SYSVSEM CLONE_SETTLS CLONE_PARENT_SETTID "
       "CLONE_CHILD_CLEARTID CLONE_UNTRACED CLONE_CHILD_SETTID CLONE_NEWCGROUP CLONE_NEWUTS "
       "CLONE_NEWIPC CLONE_NEWUSER CLONE_NEWPID CLONE_NEWNET CLONE_IO", "clone(2) flags"),
    _g("clone_misc", "enum", "CSIGNAL", "clone(2): the exit signal's bits"),
    _g("unshare_flags", "flags",
       "CLONE_FILES CLONE_FS CLONE_NEWCGROUP CLONE_NEWIPC CLONE_NEWNET CLONE_NEWNS "
       "CLONE_NEWPID CLONE_NEWUSER CLONE_NEWUTS CLONE_SYSVSEM CLONE_THREAD CLONE_SIGHAND "
       "CLONE_VM", "unshare(2) flags"),
    _g("wait_options", "flags",
       "WNOHANG WUNTRACED WEXITED WSTOPPED WCONTINUED WNOWAIT __WCLONE __WALL __WNOTHREAD",
       "wait4(2) and waitid(2) options"),
    _g("waitid_types", "enum", "P_ALL P_PID P_PGID P_PIDFD", "waitid(2) id types"),
    _g("sigprocmask_how", "enum", "SIG_BLOCK SIG_UNBLOCK SIG_SETMASK",
       "rt_sigprocmask(2) how"),
    _g("poll_events", "flags",
       "POLLIN POLLPRI POLLOUT POLLERR POLLHUP POLLNVAL POLLRDNORM POLLRDBAND POLLWRNORM "
       "POLLWRBAND POLLMSG POLLREMOVE POLLRDHUP", "poll(2) events"),
    _g("sigaction_flags", "flags",
       "SA_RESTORER SA_ONSTACK SA_RESTART SA_NODEFER SA_RESETHAND SA_SIGINFO SA_NOCLDSTOP "
       "SA_NOCLDWAIT SA_UNSUPPORTED SA_EXPOSE_TAGBITS", "struct sigaction's sa_flags"),
    _g("futex_ops", "enum",
       "FUTEX_WAIT FUTEX_WAKE FUTEX_FD FUTEX_REQUEUE FUTEX_CMP_REQUEUE FUTEX_WAKE_OP "
       "FUTEX_LOCK_PI FUTEX_UNLOCK_PI FUTEX_TRYLOCK_PI FUTEX_WAIT_BITSET FUTEX_WAKE_BITSET "
       "FUTEX_WAIT_REQUEUE_PI FUTEX_CMP_REQUEUE_PI FUTEX_LOCK_PI2 FUTEX_WAIT_PRIVATE "
       "FUTEX_WAKE_PRIVATE FUTEX_REQUEUE_PRIVATE FUTEX_CMP_REQUEUE_PRIVATE "
       "FUTEX_WAKE_OP_PRIVATE FUTEX_LOCK_PI_PRIVATE FUTEX_UNLOCK_PI_PRIVATE "
       "FUTEX_TRYLOCK_PI_PRIVATE FUTEX_WAIT_BITSET_PRIVATE FUTEX_WAKE_BITSET_PRIVATE "
       "FUTEX_WAIT_REQUEUE_PI_PRIVATE FUTEX_CMP_REQUEUE_PI_PRIVATE FUTEX_LOCK_PI2_PRIVATE",
       "futex(2) operations (without FUTEX_CLOCK_REALTIME)"),
    _g("futex_misc", "enum", "FUTEX_PRIVATE_FLAG FUTEX_CLOCK_REALTIME FUTEX_CMD_MASK",
       "futex(2) operation bits"),
    _g("futex_bitset", "enum", "FUTEX_BITSET_MATCH_ANY", "futex(2) bitsets"),
    _g("rlimit_resources", "enum",
       "RLIMIT_CPU RLIMIT_FSIZE RLIMIT_DATA RLIMIT_STACK RLIMIT_CORE RLIMIT_RSS RLIMIT_NPROC "
       "RLIMIT_NOFILE RLIMIT_MEMLOCK RLIMIT_AS RLIMIT_LOCKS RLIMIT_SIGPENDING "
       "RLIMIT_MSGQUEUE RLIMIT_NICE RLIMIT_RTPRIO RLIMIT_RTTIME", "getrlimit(2) resources"),
    _g("rusage_who", "enum", "RUSAGE_SELF RUSAGE_CHILDREN RUSAGE_THREAD",
       "getrusage(2) who"),
    _g("priority_which", "enum", "PRIO_PROCESS PRIO_PGRP PRIO_USER",
       "getpriority(2) which"),
    _g("arch_prctl_codes", "enum",
       "ARCH_SET_GS ARCH_SET_FS ARCH_GET_FS ARCH_GET_GS ARCH_GET_CPUID ARCH_SET_CPUID "
       "ARCH_GET_XCOMP_SUPP ARCH_GET_XCOMP_PERM ARCH_REQ_XCOMP_PERM ARCH_GET_XCOMP_GUEST_PERM "
       "ARCH_REQ_XCOMP_GUEST_PERM ARCH_MAP_VDSO_X32 ARCH_MAP_VDSO_32 ARCH_MAP_VDSO_64 "
       "ARCH_GET_UNTAG_MASK ARCH_ENABLE_TAGGED_ADDR ARCH_GET_MAX_TAG_BITS "
       "ARCH_FORCE_TAGGED_SVA ARCH_SHSTK_ENABLE ARCH_SHSTK_DISABLE ARCH_SHSTK_LOCK "
       "ARCH_SHSTK_UNLOCK ARCH_SHSTK_STATUS", "arch_prctl(2) codes"),
    _g("prctl_options", "enum",
       "PR_SET_PDEATHSIG PR_GET_PDEATHSIG PR_GET_DUMPABLE PR_SET_DUMPABLE PR_GET_UNALIGN "
       "PR_SET_UNALIGN PR_GET_KEEPCAPS PR_SET_KEEPCAPS PR_GET_FPEMU PR_SET_FPEMU PR_GET_FPEXC "
       "PR_SET_FPEXC PR_GET_TIMING PR_SET_TIMING PR_SET_NAME PR_GET_NAME PR_GET_ENDIAN "
       "PR_SET_ENDIAN PR_GET_SECCOMP PR_SET_SECCOMP PR_CAPBSET_READ PR_CAPBSET_DROP "
       "PR_GET_TSC PR_SET_TSC PR_GET_SECUREBITS PR_SET_SECUREBITS PR_SET_TIMERSLACK "
       "PR_GET_TIMERSLACK PR_TASK_PERF_EVENTS_DISABLE PR_TASK_PERF_EVENTS_ENABLE PR_MCE_KILL "
       "PR_MCE_KILL_GET PR_SET_MM PR_SET_CHILD_SUBREAPER PR_GET_CHILD_SUBREAPER "
       "PR_SET_NO_NEW_PRIVS PR_GET_NO_NEW_PRIVS PR_GET_TID_ADDRESS PR_SET_THP_DISABLE "
       "PR_GET_THP_DISABLE PR_MPX_ENABLE_MANAGEMENT PR_MPX_DISABLE_MANAGEMENT "
       "PR_SET_FP_MODE PR_GET_FP_MODE PR_CAP_AMBIENT PR_SVE_SET_VL PR_SVE_GET_VL "
       "PR_GET_SPECULATION_CTRL PR_SET_SPECULATION_CTRL PR_PAC_RESET_KEYS "
       "PR_SET_TAGGED_ADDR_CTRL PR_GET_TAGGED_ADDR_CTRL PR_SET_IO_FLUSHER PR_GET_IO_FLUSHER "
       "PR_SET_SYSCALL_USER_DISPATCH PR_SCHED_CORE PR_SET_MDWE PR_GET_MDWE PR_SET_VMA",
       "prctl(2) options"),
    _g("clocks", "enum",
       "CLOCK_REALTIME CLOCK_MONOTONIC CLOCK_PROCESS_CPUTIME_ID CLOCK_THREAD_CPUTIME_ID "
       "CLOCK_MONOTONIC_RAW CLOCK_REALTIME_COARSE CLOCK_MONOTONIC_COARSE CLOCK_BOOTTIME "
       "CLOCK_REALTIME_ALARM CLOCK_BOOTTIME_ALARM CLOCK_SGI_CYCLE CLOCK_TAI", "clock ids"),
    _g("timer_flags", "flags", "TIMER_ABSTIME", "clock_nanosleep(2) flags"),
    _g("itimer_which", "enum", "ITIMER_REAL ITIMER_VIRTUAL ITIMER_PROF",
       "getitimer(2) which"),
    _g("getrandom_flags", "flags", "GRND_NONBLOCK GRND_RANDOM GRND_INSECURE",
       "getrandom(2) flags"),
    _g("epoll_ctl_ops", "enum", "EPOLL_CTL_ADD EPOLL_CTL_DEL EPOLL_CTL_MOD",
       "epoll_ctl(2) operations"),
    _g("epoll_flags", "flags", "EPOLL_CLOEXEC", "epoll_create1(2) flags"),
    _g("eventfd_flags", "flags", "EFD_SEMAPHORE EFD_CLOEXEC EFD_NONBLOCK",
       "eventfd2(2) flags"),
    _g("timerfd_flags", "flags", "TFD_CLOEXEC TFD_NONBLOCK", "timerfd_create(2) flags"),
    _g("signalfd_flags", "flags", "SFD_CLOEXEC SFD_NONBLOCK", "signalfd4(2) flags"),
    _g("inotify_flags", "flags", "IN_NONBLOCK IN_CLOEXEC", "inotify_init1(2) flags"),
    _g("close_range_flags", "flags", "CLOSE_RANGE_UNSHARE CLOSE_RANGE_CLOEXEC",
       "close_range(2) flags"),
    _g("memfd_flags", "flags",
       "MFD_CLOEXEC MFD_ALLOW_SEALING MFD_HUGETLB MFD_NOEXEC_SEAL MFD_EXEC",
       "memfd_create(2) flags"),
    _g("fadvise_advice", "enum",
       "POSIX_FADV_NORMAL POSIX_FADV_RANDOM POSIX_FADV_SEQUENTIAL POSIX_FADV_WILLNEED "
       "POSIX_FADV_DONTNEED POSIX_FADV_NOREUSE", "fadvise64(2) advice"),
    _g("falloc_flags", "flags",
       "FALLOC_FL_KEEP_SIZE FALLOC_FL_PUNCH_HOLE FALLOC_FL_NO_HIDE_STALE "
       "FALLOC_FL_COLLAPSE_RANGE FALLOC_FL_ZERO_RANGE FALLOC_FL_INSERT_RANGE "
       "FALLOC_FL_UNSHARE_RANGE", "fallocate(2) modes"),
    _g("file_types", "enum", "S_IFREG S_IFSOCK S_IFIFO S_IFLNK S_IFDIR S_IFBLK S_IFCHR",
       "file types of a mode (mode & S_IFMT)"),
    _g("file_type_mask", "enum", "S_IFMT", "the file type bits of a mode"),
    _g("si_codes", "enum",
       "SI_USER SI_KERNEL SI_QUEUE SI_TIMER SI_MESGQ SI_ASYNCIO SI_SIGIO SI_TKILL SI_DETHREAD "
       "SI_ASYNCNL", "siginfo si_code of any signal"),
    _g("cld_codes", "enum",
       "CLD_EXITED CLD_KILLED CLD_DUMPED CLD_TRAPPED CLD_STOPPED CLD_CONTINUED",
       "siginfo si_code of SIGCHLD"),
    _g("segv_codes", "enum",
       "SEGV_MAPERR SEGV_ACCERR SEGV_BNDERR SEGV_PKUERR SEGV_ACCADI SEGV_ADIDERR "
       "SEGV_ADIPERR SEGV_MTEAERR SEGV_MTESERR SEGV_CPERR", "siginfo si_code of SIGSEGV"),
    _g("bus_codes", "enum", "BUS_ADRALN BUS_ADRERR BUS_OBJERR BUS_MCEERR_AR BUS_MCEERR_AO",
       "siginfo si_code of SIGBUS"),
    _g("ill_codes", "enum",
       "ILL_ILLOPC ILL_ILLOPN ILL_ILLADR ILL_ILLTRP ILL_PRVOPC ILL_PRVREG ILL_COPROC "
       "ILL_BADSTK ILL_BADIADDR", "siginfo si_code of SIGILL"),
    _g("fpe_codes", "enum",
       "FPE_INTDIV FPE_INTOVF FPE_FLTDIV FPE_FLTOVF FPE_FLTUND FPE_FLTRES FPE_FLTINV "
       "FPE_FLTSUB FPE_FLTUNK FPE_CONDTRAP", "siginfo si_code of SIGFPE"),
    _g("trap_codes", "enum", "TRAP_BRKPT TRAP_TRACE TRAP_BRANCH TRAP_HWBKPT TRAP_UNK "
       "TRAP_PERF", "siginfo si_code of SIGTRAP"),
    _g("sys_codes", "enum", "SYS_SECCOMP SYS_USER_DISPATCH", "siginfo si_code of SIGSYS"),
    _g("address_families", "enum",
       "AF_UNSPEC AF_UNIX AF_INET AF_AX25 AF_IPX AF_APPLETALK AF_NETROM AF_BRIDGE AF_ATMPVC "
       "AF_X25 AF_INET6 AF_ROSE AF_DECnet AF_NETBEUI AF_SECURITY AF_KEY AF_NETLINK AF_PACKET "
       "AF_ASH AF_ECONET AF_ATMSVC AF_RDS AF_SNA AF_IRDA AF_PPPOX AF_WANPIPE AF_LLC AF_IB "
       "AF_MPLS AF_CAN AF_TIPC AF_BLUETOOTH AF_IUCV AF_RXRPC AF_ISDN AF_PHONET AF_IEEE802154 "
       "AF_CAIF AF_ALG AF_NFC AF_VSOCK AF_KCM AF_QIPCRTR AF_SMC AF_XDP AF_MCTP",
       "socket address families"),
    _g("socket_types", "enum",
       "SOCK_STREAM SOCK_DGRAM SOCK_RAW SOCK_RDM SOCK_SEQPACKET SOCK_DCCP SOCK_PACKET",
       "socket types (type & 0xf)"),
    _g("socket_type_flags", "flags", "SOCK_CLOEXEC SOCK_NONBLOCK", "socket type flags"),
    _g("ip_protocols", "enum",
       "IPPROTO_IP IPPROTO_ICMP IPPROTO_IGMP IPPROTO_IPIP IPPROTO_TCP IPPROTO_EGP IPPROTO_PUP "
       "IPPROTO_UDP IPPROTO_IDP IPPROTO_TP IPPROTO_DCCP IPPROTO_IPV6 IPPROTO_RSVP IPPROTO_GRE "
       "IPPROTO_ESP IPPROTO_AH IPPROTO_MTP IPPROTO_BEETPH IPPROTO_ENCAP IPPROTO_PIM "
       "IPPROTO_COMP IPPROTO_L2TP IPPROTO_SCTP IPPROTO_UDPLITE IPPROTO_MPLS IPPROTO_ETHERNET "
       "IPPROTO_RAW IPPROTO_MPTCP", "IP protocols"),
    _g("netlink_protocols", "enum",
       "NETLINK_ROUTE NETLINK_UNUSED NETLINK_USERSOCK NETLINK_FIREWALL NETLINK_SOCK_DIAG "
       "NETLINK_NFLOG NETLINK_XFRM NETLINK_SELINUX NETLINK_ISCSI NETLINK_AUDIT "
       "NETLINK_FIB_LOOKUP NETLINK_CONNECTOR NETLINK_NETFILTER NETLINK_IP6_FW "
       "NETLINK_DNRTMSG NETLINK_KOBJECT_UEVENT NETLINK_GENERIC NETLINK_SCSITRANSPORT "
       "NETLINK_ECRYPTFS NETLINK_RDMA NETLINK_CRYPTO NETLINK_SMC", "AF_NETLINK protocols"),
    _g("msg_flags", "flags",
       "MSG_OOB MSG_PEEK MSG_DONTROUTE MSG_CTRUNC MSG_PROXY MSG_TRUNC MSG_DONTWAIT MSG_EOR "
       "MSG_WAITALL MSG_FIN MSG_SYN MSG_CONFIRM MSG_RST MSG_ERRQUEUE MSG_NOSIGNAL MSG_MORE "
       "MSG_WAITFORONE MSG_BATCH MSG_ZEROCOPY MSG_FASTOPEN MSG_CMSG_CLOEXEC",
       "send(2)/recv(2) flags"),
    _g("shutdown_how", "enum", "SHUT_RD SHUT_WR SHUT_RDWR", "shutdown(2) how"),
    _g("socket_levels", "enum",
       "SOL_IP SOL_SOCKET SOL_TCP SOL_UDP SOL_IPV6 SOL_RAW SOL_PACKET SOL_NETLINK SOL_TIPC",
       "setsockopt(2) levels"),
    _g("socket_options", "enum",
       "SO_DEBUG SO_REUSEADDR SO_TYPE SO_ERROR SO_DONTROUTE SO_BROADCAST SO_SNDBUF SO_RCVBUF "
       "SO_KEEPALIVE SO_OOBINLINE SO_NO_CHECK SO_PRIORITY SO_LINGER SO_BSDCOMPAT "
       "SO_REUSEPORT SO_PASSCRED SO_PEERCRED SO_RCVLOWAT SO_SNDLOWAT SO_RCVTIMEO_OLD "
       "SO_SNDTIMEO_OLD SO_BINDTODEVICE SO_ATTACH_FILTER SO_DETACH_FILTER SO_PEERNAME "
       "SO_TIMESTAMP_OLD SO_ACCEPTCONN SO_PEERSEC SO_SNDBUFFORCE SO_RCVBUFFORCE "
       "SO_PASSSEC SO_MARK SO_PROTOCOL SO_DOMAIN SO_RXQ_OVFL SO_PEEK_OFF SO_BUSY_POLL "
       "SO_INCOMING_CPU SO_COOKIE SO_PEERGROUPS SO_ZEROCOPY SO_TXTIME SO_BINDTOIFINDEX "
       "SO_TIMESTAMPNS_OLD SO_TIMESTAMPING_OLD SO_WIFI_STATUS SO_NOFCS SO_LOCK_FILTER "
       "SO_SELECT_ERR_QUEUE SO_CNX_ADVICE SO_INCOMING_NAPI_ID SO_ATTACH_REUSEPORT_CBPF "
       "SO_TIMESTAMP_NEW SO_TIMESTAMPNS_NEW SO_TIMESTAMPING_NEW SO_RCVTIMEO_NEW "
       "SO_SNDTIMEO_NEW SO_DETACH_REUSEPORT_BPF SO_PREFER_BUSY_POLL SO_BUSY_POLL_BUDGET "
       "SO_RESERVE_MEM SO_TXREHASH SO_RCVMARK SO_PASSPIDFD SO_RCVPRIORITY SO_PASSRIGHTS "
       "SO_INQ",
       "SOL_SOCKET options"),
    _g("tcp_options", "enum",
       "TCP_NODELAY TCP_MAXSEG TCP_CORK TCP_KEEPIDLE TCP_KEEPINTVL TCP_KEEPCNT TCP_SYNCNT "
       "TCP_LINGER2 TCP_DEFER_ACCEPT TCP_WINDOW_CLAMP TCP_INFO TCP_QUICKACK TCP_CONGESTION "
       "TCP_MD5SIG TCP_THIN_LINEAR_TIMEOUTS TCP_THIN_DUPACK TCP_USER_TIMEOUT TCP_REPAIR "
       "TCP_REPAIR_QUEUE TCP_QUEUE_SEQ TCP_REPAIR_OPTIONS TCP_FASTOPEN TCP_TIMESTAMP "
       "TCP_NOTSENT_LOWAT TCP_CC_INFO TCP_SAVE_SYN TCP_SAVED_SYN TCP_REPAIR_WINDOW "
       "TCP_FASTOPEN_CONNECT TCP_ULP TCP_MD5SIG_EXT TCP_FASTOPEN_KEY TCP_FASTOPEN_NO_COOKIE "
       "TCP_ZEROCOPY_RECEIVE TCP_INQ TCP_TX_DELAY",
       "SOL_TCP options"),
    _g("ip_options", "enum",
       "IP_TOS IP_TTL IP_HDRINCL IP_OPTIONS IP_RECVOPTS IP_RETOPTS IP_PKTINFO IP_PKTOPTIONS "
       "IP_MTU_DISCOVER IP_RECVERR IP_RECVTTL IP_RECVTOS IP_MTU IP_FREEBIND IP_IPSEC_POLICY "
       "IP_XFRM_POLICY IP_PASSSEC IP_TRANSPARENT IP_ORIGDSTADDR IP_MINTTL IP_NODEFRAG "
       "IP_CHECKSUM IP_BIND_ADDRESS_NO_PORT IP_RECVFRAGSIZE IP_RECVERR_RFC4884 "
       "IP_MULTICAST_IF IP_MULTICAST_TTL IP_MULTICAST_LOOP IP_ADD_MEMBERSHIP "
       "IP_DROP_MEMBERSHIP IP_UNBLOCK_SOURCE IP_BLOCK_SOURCE IP_ADD_SOURCE_MEMBERSHIP "
       "IP_DROP_SOURCE_MEMBERSHIP IP_MSFILTER MCAST_JOIN_GROUP MCAST_BLOCK_SOURCE "
       "MCAST_UNBLOCK_SOURCE MCAST_LEAVE_GROUP MCAST_JOIN_SOURCE_GROUP "
       "MCAST_LEAVE_SOURCE_GROUP MCAST_MSFILTER IP_MULTICAST_ALL IP_UNICAST_IF "
       "IP_LOCAL_PORT_RANGE IP_PROTOCOL",
       "SOL_IP options"),
    _g("ipv6_options", "enum",
       "IPV6_ADDRFORM IPV6_2292PKTINFO IPV6_2292HOPOPTS IPV6_2292DSTOPTS IPV6_2292RTHDR "
       "IPV6_2292PKTOPTIONS IPV6_CHECKSUM IPV6_2292HOPLIMIT IPV6_NEXTHOP IPV6_AUTHHDR "
       "IPV6_FLOWINFO IPV6_UNICAST_HOPS IPV6_MULTICAST_IF IPV6_MULTICAST_HOPS "
       "IPV6_MULTICAST_LOOP IPV6_ADD_MEMBERSHIP IPV6_DROP_MEMBERSHIP IPV6_ROUTER_ALERT "
       "IPV6_MTU_DISCOVER IPV6_MTU IPV6_RECVERR IPV6_V6ONLY IPV6_JOIN_ANYCAST "
       "IPV6_LEAVE_ANYCAST IPV6_MULTICAST_ALL IPV6_ROUTER_ALERT_ISOLATE IPV6_RECVERR_RFC4884 "
       "IPV6_FLOWLABEL_MGR IPV6_FLOWINFO_SEND IPV6_IPSEC_POLICY IPV6_XFRM_POLICY "
       "IPV6_HDRINCL MCAST_JOIN_GROUP MCAST_BLOCK_SOURCE MCAST_UNBLOCK_SOURCE "
       "MCAST_LEAVE_GROUP MCAST_JOIN_SOURCE_GROUP MCAST_LEAVE_SOURCE_GROUP MCAST_MSFILTER "
       "IPV6_RECVPKTINFO IPV6_PKTINFO IPV6_RECVHOPLIMIT IPV6_HOPLIMIT IPV6_RECVHOPOPTS "
       "IPV6_HOPOPTS IPV6_RTHDRDSTOPTS IPV6_RECVRTHDR IPV6_RTHDR IPV6_RECVDSTOPTS "
       "IPV6_DSTOPTS IPV6_RECVPATHMTU IPV6_PATHMTU IPV6_DONTFRAG IPV6_RECVTCLASS "
       "IPV6_TCLASS IPV6_AUTOFLOWLABEL IPV6_ADDR_PREFERENCES IPV6_MINHOPCOUNT "
       "IPV6_ORIGDSTADDR IPV6_TRANSPARENT IPV6_UNICAST_IF IPV6_RECVFRAGSIZE IPV6_FREEBIND",
       "SOL_IPV6 options"),
    _g("term_iflags", "flags",
       "IGNBRK BRKINT IGNPAR PARMRK INPCK ISTRIP INLCR IGNCR ICRNL IUCLC IXON IXANY IXOFF "
       "IMAXBEL IUTF8", "termios c_iflag"),
    _g("term_oflags", "flags", "OPOST OLCUC ONLCR OCRNL ONOCR ONLRET OFILL OFDEL",
       "termios c_oflag beyond its delays"),
    _g("term_nldly", "enum", "NL0 NL1", "termios c_oflag & NLDLY"),
    _g("term_crdly", "enum", "CR0 CR1 CR2 CR3", "termios c_oflag & CRDLY"),
    _g("term_tabdly", "enum", "XTABS TAB0 TAB1 TAB2 TAB3",
       "termios c_oflag & TABDLY (strace names TAB3 XTABS, its first)"),
    _g("term_bsdly", "enum", "BS0 BS1", "termios c_oflag & BSDLY"),
    _g("term_vtdly", "enum", "VT0 VT1", "termios c_oflag & VTDLY"),
    _g("term_ffdly", "enum", "FF0 FF1", "termios c_oflag & FFDLY"),
    _g("term_delay_masks", "enum", "NLDLY CRDLY TABDLY BSDLY VTDLY FFDLY",
       "the masks of those delays, in the order strace prints them"),
    _g("term_baud", "enum",
       "B0 B50 B75 B110 B134 B150 B200 B300 B600 B1200 B1800 B2400 B4800 B9600 B19200 "
       "B38400 B57600 B115200 B230400 B460800 B500000 B576000 B921600 B1000000 B1152000 "
       "B1500000 B2000000 B2500000 B3000000 B3500000 B4000000 BOTHER",
       "termios c_cflag & CBAUD"),
    _g("term_csize", "enum", "CS5 CS6 CS7 CS8", "termios c_cflag & CSIZE"),
    _g("term_cflag_masks", "enum", "CBAUD CIBAUD CSIZE IBSHIFT",
       "the fields of c_cflag that are not flags"),
    _g("term_cflags", "flags", "CSTOPB CREAD PARENB PARODD HUPCL CLOCAL CMSPAR CRTSCTS",
       "termios c_cflag beyond its speed and size"),
    _g("term_lflags", "flags",
       "ISIG ICANON XCASE ECHO ECHOE ECHOK ECHONL NOFLSH IEXTEN ECHOCTL ECHOPRT ECHOKE "
       "FLUSHO PENDIN TOSTOP EXTPROC", "termios c_lflag, in strace's order"),
    _g("ioctl_cmds", "enum",
       "TCGETS TCSETS TCSETSW TCSETSF TCGETA TCSETA TCSETAW TCSETAF TCSBRK TCXONC TCFLSH "
       "TIOCEXCL TIOCNXCL TIOCSCTTY TIOCGPGRP TIOCSPGRP TIOCOUTQ TIOCSTI TIOCGWINSZ "
       "TIOCSWINSZ TIOCMGET TIOCMBIS TIOCMBIC TIOCMSET TIOCGSOFTCAR TIOCSSOFTCAR FIONREAD "
       "TIOCLINUX TIOCCONS TIOCGSERIAL TIOCSSERIAL TIOCPKT FIONBIO TIOCNOTTY TIOCSETD "
       "TIOCGETD TCSBRKP TIOCSBRK TIOCCBRK TIOCGSID TIOCGRS485 TIOCSRS485 TCGETX TCSETX "
       "TCSETXF TCSETXW TIOCVHANGUP FIONCLEX FIOCLEX FIOASYNC TIOCSERCONFIG TIOCSERGWILD "
       "TIOCSERSWILD TIOCGLCKTRMIOS TIOCSLCKTRMIOS TIOCSERGSTRUCT TIOCSERGETLSR "
       "TIOCSERGETMULTI TIOCSERSETMULTI TIOCMIWAIT TIOCGICOUNT FIOQSIZE TIOCGPTN TIOCSPTLCK",
       "ioctl(2) requests of terminals and files"),
    _g("personality_types", "enum",
       "PER_LINUX PER_BSD PER_LINUX32 PER_RISCOS PER_OSF4 PER_HPUX PER_MASK",
       "personality(2) types (persona & PER_MASK)"),
    _g("personality_flags", "flags",
       "UNAME26 ADDR_NO_RANDOMIZE FDPIC_FUNCPTRS MMAP_PAGE_ZERO ADDR_COMPAT_LAYOUT "
       "READ_IMPLIES_EXEC ADDR_LIMIT_32BIT SHORT_INODE WHOLE_SECONDS STICKY_TIMEOUTS "
       "ADDR_LIMIT_3GB", "personality(2) flags"),
    _g("membarrier_cmds", "enum",
       "MEMBARRIER_CMD_QUERY MEMBARRIER_CMD_GLOBAL MEMBARRIER_CMD_GLOBAL_EXPEDITED "
       "MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED MEMBARRIER_CMD_PRIVATE_EXPEDITED "
       "MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE "
       "MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE "
       "MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ",
       "membarrier(2) commands"),
    _g("ptrace_requests", "enum",
       "PTRACE_TRACEME PTRACE_PEEKTEXT PTRACE_PEEKDATA PTRACE_PEEKUSR PTRACE_POKETEXT "
       "PTRACE_POKEDATA PTRACE_POKEUSR PTRACE_CONT PTRACE_KILL PTRACE_SINGLESTEP "
       "PTRACE_GETREGS PTRACE_SETREGS PTRACE_GETFPREGS PTRACE_SETFPREGS PTRACE_ATTACH "
       "PTRACE_DETACH PTRACE_SYSCALL PTRACE_SETOPTIONS PTRACE_GETEVENTMSG PTRACE_GETSIGINFO "
       "PTRACE_SETSIGINFO PTRACE_GETREGSET PTRACE_SETREGSET PTRACE_SEIZE PTRACE_INTERRUPT "
       "PTRACE_LISTEN PTRACE_PEEKSIGINFO PTRACE_GET_SYSCALL_INFO", "ptrace(2) requests"),
)


# -- errno and signals ------------------------------------------------------------------------

def read_internal_errno(path: Path) -> list[tuple[int, str, str | None, bool]]:
    """``[(number, name, message or None, restart)]`` from the data file."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise GenError(f"{path}: {exc.strerror}") from None
    for lineno, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        parts = line.split(None, 3)
        if len(parts) < 3 or not parts[0].isdigit() or parts[2] not in ("restart", "error"):
            raise GenError(f"{path}:{lineno}: expected 'NUMBER NAME restart|error [MESSAGE]', "
                           f"got {line!r}")
        msg = parts[3].strip() if len(parts) > 3 else None
        out.append((int(parts[0]), parts[1], msg, parts[2] == "restart"))
    return out


def errno_table(h: Headers, internal) -> tuple[dict[int, tuple[str, str]], list[int]]:
    """``{number: (name, message)}``: the first name the headers give each number, the C
    library's message; then the kernel's internal codes."""
    table: dict[int, tuple[str, str]] = {}
    for name, (_expr, where) in h.raw.items():
        if not re.fullmatch(r"E[A-Z0-9]+", name) or "errno" not in Path(where).name:
            continue
        v = h.value(name)
        if v is None or v <= 0 or v in table:
            continue
        table[v] = (name, os.strerror(v))
    restart = []
    for nr, name, msg, is_restart in internal:
        if nr in table:
            raise GenError(f"internal errno {nr} ({name}) is also {table[nr][0]} in the headers")
        table[nr] = (name, msg if msg is not None else os.strerror(nr))
        if is_restart:
            restart.append(nr)
    return dict(sorted(table.items())), sorted(restart)


def signal_table(h: Headers) -> tuple[dict[int, str], int, int]:
    table: dict[int, str] = {}
    for name, (_expr, where) in h.raw.items():
        if not re.fullmatch(r"SIG[A-Z0-9]+", name) or name in ("SIGRTMIN", "SIGRTMAX"):
            continue
        if "signal" not in Path(where).name:
            continue
        v = h.value(name)
        if v is None or not 0 < v < 32 or v in table:
            continue
        table[v] = name
    rtmin, rtmax = h.value("SIGRTMIN"), h.value("SIGRTMAX")
    if rtmin is None or rtmax is None:
        raise GenError("asm/signal.h: no SIGRTMIN/SIGRTMAX")
    return dict(sorted(table.items())), rtmin, rtmax


# -- the module -------------------------------------------------------------------------------

def build(include: Path, internal: Path) -> str:
    h = Headers(include)
    for name in KERNEL_HEADERS:
        h.read(name)
    for name in LIBC_HEADERS:
        h.read(name, required=False)
    errnos, restart = errno_table(h, read_internal_errno(internal))
    signals, rtmin, rtmax = signal_table(h)
    groups = []
    missing: list[str] = []
    used_files = {h.where(name) for name, _ in errnos.values()}
    used_files |= {h.where(name) for name in signals.values()}
    for g in GROUPS:
        items = []
        for name in g.names:
            v = h.value(name)
            if v is None:
                missing.append(name)
                continue
            items.append((name, v))
            used_files.add(h.where(name) or "")
        if not items:
            raise GenError(f"group {g.name}: none of its names has a value in {include}")
        groups.append((g, items))
    libc = libc_dev_version()
    glibc = " ".join(platform.libc_ver())
    return render(groups, errnos, restart, signals, rtmin, rtmax, missing,
                  sorted(f for f in used_files if f), include, libc, glibc, internal)


def _rel(path: Path) -> str:
    return os.path.relpath(path, ROOT) if path.is_relative_to(ROOT) else str(path)


def render(groups, errnos, restart, signals, rtmin, rtmax, missing, files, include: Path,
           libc: str, glibc: str, internal: Path) -> str:
    out = [
        '"""Named constants of the Linux x86_64 ABI, as strace names and orders them.\n',
        "\n",
        f"Generated by {GENERATOR}: do not edit; re-run the generator instead.\n",
        "Sources:\n",
        f"    values: the C headers under {include}"
        + (f" (linux-libc-dev {libc}" if libc else " (")
        + (f", {glibc})\n" if glibc else ")\n"),
    ]
    out += [f"        {os.path.relpath(f, include)}\n" for f in files]
    out += [
        f"    error messages: os.strerror ({glibc or 'the C library'})\n",
        f"    kernel-internal error codes: {_rel(internal)}\n",
        f"    names and their order: {GENERATOR} (GROUPS)\n",
    ]
    if missing:
        out.append("Names these headers do not define (left out):\n")
        line = "   "
        for name in missing:
            if len(line) + len(name) + 1 > 95:
                out.append(line + "\n")
                line = "   "
            line += " " + name
        out.append(line + "\n")
    out += [
        '"""\n',
        "\n",
        f"GENERATOR = {GENERATOR!r}\n",
        "ARCH = 'x86_64'\n",
        "\n",
        "# errno number -> (name, message): what strace prints after '= -1 '.\n",
        "ERRNO = {\n",
    ]
    out += [f"    {nr}: ({name!r}, {msg!r}),\n" for nr, (name, msg) in errnos.items()]
    out += [
        "}\n",
        "\n",
        "# The kernel's restart codes: a call interrupted by a signal, printed '= ? NAME (...)'.\n",
        f"ERESTART = frozenset({{{', '.join(str(n) for n in restart)}}})\n",
        "\n",
        "# signal number -> name; from SIGRTMIN to SIGRTMAX strace prints SIGRTMIN, SIGRT_<n>.\n",
        "SIGNALS = {\n",
    ]
    out += [f"    {nr}: {name!r},\n" for nr, name in signals.items()]
    out += [
        "}\n",
        f"SIGRTMIN = {rtmin}\n",
        f"SIGRTMAX = {rtmax}\n",
        "\n",
        "# group -> (kind, ((name, value), ...)): 'flags' print as NAME|NAME, in this order;\n",
        "# an 'enum' names one value (the first name listed for a value wins).\n",
        "GROUPS = {\n",
    ]
    for g, items in groups:
        out.append(f"    # {g.what}\n")
        out.append(f"    {g.name!r}: ({g.kind!r}, (\n")
        for name, v in items:
            out.append(f"        ({name!r}, {_lit(v)}),\n")
        out.append("    )),\n")
    out.append("}\n")
    return "".join(out)


def _lit(v: int) -> str:
    if v < 0:
        return str(v)
    return hex(v) if v >= 10 else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("Examples::")[1])
    ap.add_argument("--include", type=Path, default=DEFAULT_INCLUDE,
                    help="the C headers' root (default %(default)s)")
    ap.add_argument("--internal", type=Path, default=DEFAULT_INTERNAL,
                    help="the kernel's internal error codes (default "
                         "tools/data/kernel_errno_internal.txt)")
    add_output_arguments(ap, DEFAULT_OUTPUT)
    args = ap.parse_args(argv)
    try:
        text = build(args.include, args.internal)
        if args.check:
            return check_module(args.output, text)
        args.output.write_text(text)
    except GenError as exc:
        print(f"gen_strace_tables: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
