"""ptrace(2), prctl(2), seccomp(2) and friends through ctypes, and the constants they take.

Only what the engine needs, from <linux/ptrace.h>, <sys/wait.h> and <linux/seccomp.h>.
Calls return the raw result; :func:`check` turns -1 into an :class:`OSError` with errno.

:func:`fast_ptrace` is the ptrace of the hot paths (every stop, every breakpoint hit): the
compiled ``_ptrace`` extension where it is built (about 0.1 us a call instead of ctypes'
1.5 us), else ctypes; its errno is :func:`fast_errno`.  ``USERTRACE_PURE_PYTHON`` set to
anything but ``0`` forces ctypes, as it forces the pure-Python emit path of user events.
"""

from __future__ import annotations

import ctypes
import os

from ..compiled import forced_pure

# The C library the interpreter runs on (dlopen(NULL)): no search for it, which would run
# ldconfig at every start-up.
_libc = ctypes.CDLL(None, use_errno=True)

# long ptrace(enum __ptrace_request request, pid_t pid, void *addr, void *data)
ptrace = _libc.ptrace
ptrace.restype = ctypes.c_long
ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)

prctl = _libc.prctl
prctl.restype = ctypes.c_int
prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)

syscall = _libc.syscall
syscall.restype = ctypes.c_long

sched_getcpu = _libc.sched_getcpu
sched_getcpu.restype = ctypes.c_int
sched_getcpu.argtypes = ()

get_errno = ctypes.get_errno


def ctypes_ptrace():
    """ptrace through ctypes as the hot paths call it: no argtypes (ints and buffers are
    converted directly, twice as fast as with argtypes), a long result."""
    raw = ctypes.CDLL(None, use_errno=True).ptrace
    raw.restype = ctypes.c_long
    return raw


def _fast():
    """(ptrace of the hot paths, its errno, which one it is)."""
    if not forced_pure():
        try:
            from . import _ptrace
            return _ptrace.ptrace, _ptrace.last_errno, "compiled"
        except ImportError:
            pass
    return ctypes_ptrace(), ctypes.get_errno, "ctypes"


# fast_ptrace(request, pid, addr, data): data an int or a writable buffer (a ctypes array,
# a bytearray); the raw result (the word for PTRACE_PEEK*).
fast_ptrace, fast_errno, FAST_PTRACE = _fast()


def compiled(name: str):
    """A function of the ``_ptrace`` extension beyond ptrace itself: ``"hit"``, the
    breakpoint hit served whole (usertrace.ptrace.breakpoints), ``"stops"``, the syscall
    stop loop (usertrace.ptrace.engine); None where ptrace goes through ctypes or the
    extension has none for this arch."""
    if FAST_PTRACE != "compiled":
        return None
    from . import _ptrace
    return getattr(_ptrace, name, None)


def poke_word(tid: int, addr: int, word: int) -> bool:
    """Write the 8-byte ``word`` at ``addr`` in stopped tracee ``tid`` (PTRACE_POKEDATA: one
    system call, cheaper than a write through /proc/PID/mem); False when it failed."""
    word &= 0xFFFF_FFFF_FFFF_FFFF
    addr &= 0xFFFF_FFFF_FFFF_FFFF
    if FAST_PTRACE == "compiled":
        return fast_ptrace(PTRACE_POKEDATA, tid, addr, word) == 0
    return fast_ptrace(PTRACE_POKEDATA, tid, ctypes.c_ulong(addr), ctypes.c_ulong(word)) == 0

# -- ptrace requests ---------------------------------------------------------------------------
PTRACE_PEEKUSER = 3
PTRACE_POKEDATA = 5
PTRACE_CONT = 7
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GET_SYSCALL_INFO = 0x420E

PTRACE_SYSCALL_INFO_NONE = 0
PTRACE_SYSCALL_INFO_ENTRY = 1
PTRACE_SYSCALL_INFO_EXIT = 2
PTRACE_SYSCALL_INFO_SECCOMP = 3

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

PTRACE_O_TRACESYSGOOD = 1
PTRACE_O_TRACEFORK = 1 << PTRACE_EVENT_FORK
PTRACE_O_TRACEVFORK = 1 << PTRACE_EVENT_VFORK
PTRACE_O_TRACECLONE = 1 << PTRACE_EVENT_CLONE
PTRACE_O_TRACEEXEC = 1 << PTRACE_EVENT_EXEC
PTRACE_O_TRACESECCOMP = 1 << PTRACE_EVENT_SECCOMP
PTRACE_O_EXITKILL = 1 << 20

# -- wait ------------------------------------------------------------------------------------
WALL = 0x40000000          # __WALL: children and clones alike
WNOHANG = os.WNOHANG

# -- prctl / seccomp -------------------------------------------------------------------------
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1
SYS_SECCOMP = 317          # x86_64

# struct user_regs_struct (x86_64): orig_rax is word 15.
USER_REGS_ORIG_RAX = 15 * 8
USER_REGS_SIZE = 27 * 8


def check(result: int, what: str) -> int:
    """Raise OSError (errno from libc) when a call returned -1."""
    if result == -1:
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result
