"""strace's syscall classes (``%file``, ``%net``, ...) and its ``-e trace=`` selections.

strace keeps a hand-made class set per system call.  Here the classes follow from the
kernel's own description of each call, the argument names and C types of its trace events
(:mod:`.table`), by the rules below; ``tests/unit/test_syscall_classes.py`` runs the real
strace and lists where the two differ.

====================  ====================================================================
class                 rule
====================  ====================================================================
``%file``             an argument that names a path: ``filename``, ``pathname``, ``path``,
                      ``oldname``, ``newname``, ``from_pathname``, ``to_pathname``,
                      ``new_root``, ``put_old``, ``special``, ``specialfile``, ``dev_name``,
                      ``dir_name``
``%desc``             not a socket call, and a file-descriptor argument (its name is or
                      ends in ``fd``, ``dfd``, ``fildes``, begins with ``fd``, or is
                      ``mqdes``; or a type ``fd_set *``, ``struct pollfd *``), or a call
                      that returns a new descriptor (:data:`FD_RETURNING`)
``%network``          a ``struct sockaddr *`` or message header (``msghdr``, ``mmsghdr``)
                      argument, or one named ``family``, ``backlog`` or ``optname``
``%process``          a ``clone_flags`` or ``struct clone_args *`` argument, ``argv`` (the
                      execs), ``error_code`` (the exits), ``upid`` (the waits), or a
                      signal (``int sig``) sent to a pid, tid or pidfd
``%signal``           an ``int sig`` argument; a ``struct sigaction *`` or ``stack_t``; a
                      ``sigset_t *`` that the call is about (not a ``sigmask`` held while
                      waiting for something else)
``%ipc``              a ``key_t``, ``msqid``, ``semid``, ``shmid`` or ``shmaddr`` argument
``%memory``           a first argument ``addr``/``start`` with a length or size, ``brk``,
                      ``shmaddr``, or a NUMA node mask (``maxnode``)
``%stat`` ...         a ``struct stat *``/``struct statx *`` argument: ``%fstat`` with a
                      descriptor, else ``%lstat`` for the ``l`` calls and ``%stat``;
                      ``%%stat`` all of them.  Likewise ``struct statfs *``: ``%statfs``,
                      ``%fstatfs``, ``%%statfs``
``%creds``            only user and group ids (``uid_t``, ``gid_t``, their pointers, a
                      ``gidsetsize``), or capabilities (``cap_user_*``)
``%clock``            a ``clockid_t``, a ``timex``, a ``timezone`` or a ``time_t *``
``%pure``             no arguments and a name beginning with ``get`` (``getpid``)
====================  ====================================================================

Calls without arguments say nothing of themselves; :data:`BY_NAME` gives their classes.

:func:`expand_strace_selection` turns what a strace user writes after ``-e trace=`` into the
events to enable::

    >>> expand_strace_selection("close,%ipc")[:4]
    ['syscalls:sys_enter_close', 'syscalls:sys_exit_close', 'syscalls:sys_enter_shmget', 'syscalls:sys_exit_shmget']
"""

from __future__ import annotations

import re
from functools import lru_cache

from ...errors import UsertraceError, caret
from .table import Syscall, SyscallTable

CLASSES = ("file", "desc", "network", "process", "signal", "ipc", "memory", "stat", "lstat",
           "fstat", "%stat", "statfs", "fstatfs", "%statfs", "creds", "clock", "pure")

# What strace also accepts for a class (with or without the leading %).
ALIASES = {"net": "network"}
LEGACY = ("file", "process", "network", "signal", "ipc", "desc", "memory")  # valid without %

PATH_ARGS = frozenset({"filename", "pathname", "path", "oldname", "newname", "from_pathname",
                       "to_pathname", "new_root", "put_old", "special", "specialfile",
                       "dev_name", "dir_name"})

# Calls that return a new file descriptor (and have no descriptor argument to tell it).
# The strace view prints their result as a descriptor (``-y``).
FD_RETURNING = frozenset({
    "open", "openat", "openat2", "creat", "open_by_handle_at", "open_tree", "open_tree_attr",
    "dup", "dup2", "dup3", "eventfd", "eventfd2", "epoll_create", "epoll_create1",
    "inotify_init", "inotify_init1", "memfd_create", "memfd_secret", "userfaultfd",
    "pidfd_open", "pidfd_getfd", "fsopen", "fsmount", "fspick", "timerfd_create",
    "signalfd", "signalfd4", "fanotify_init", "io_uring_setup", "landlock_create_ruleset",
    "mq_open", "bpf", "perf_event_open", "socket", "accept", "accept4",
})

# Calls without arguments: their classes by name.
BY_NAME = {
    "fork": ("process",), "vfork": ("process",), "pause": ("signal",),
    "rt_sigreturn": ("signal",), "munlockall": ("memory",), "inotify_init": ("desc",),
}


def _is_fd_name(name: str) -> bool:
    return (name in ("fd", "dfd", "fildes", "mqdes") or name.endswith("fd")
            or name.startswith("fd"))


def classes_of(sc: Syscall) -> frozenset[str]:
    """The strace classes of one system call (by the rules of this module)."""
    if sc.args is None:
        return frozenset()
    if not sc.args:
        out = set(BY_NAME.get(sc.name, ()))
        if sc.name.startswith("get"):
            out.add("pure")
            if sc.name.endswith(("uid", "gid")):
                out.add("creds")
        return frozenset(out)
    types = [t for t, _ in sc.args]
    names = [n for _, n in sc.args]
    out: set[str] = set()

    if any(n in PATH_ARGS for n in names):
        out.add("file")

    network = (any("sockaddr" in t or "msghdr" in t for t in types)
               or any(n in ("family", "backlog", "optname") for n in names))
    if network:
        out.add("network")
    fd_arg = (any(_is_fd_name(n) for n in names)
              or any(t in ("fd_set *", "struct pollfd *") for t in types))
    if not network and (fd_arg or sc.name in FD_RETURNING):
        out.add("desc")

    sig = ("int", "sig") in sc.args
    pid_arg = any(n in ("pid", "tgid", "tid", "upid", "pidfd") for n in names)
    if ("clone_flags" in names or any("clone_args" in t for t in types) or "argv" in names
            or "error_code" in names or "upid" in names or (sig and pid_arg)):
        out.add("process")

    if (sig or any("sigaction" in t or "stack_t" in t for t in types)
            or any("sigset_t" in t and n != "sigmask" for t, n in sc.args)):
        out.add("signal")

    if any(t == "key_t" for t in types) or any(n in ("msqid", "semid", "shmid", "shmaddr")
                                               for n in names):
        out.add("ipc")

    first = names[0]
    if ((first in ("addr", "start") and any("len" in n or "size" in n for n in names[1:]))
            or first == "brk" or "shmaddr" in names or "maxnode" in names):
        out.add("memory")

    statlike = [t for t in types if t in ("struct stat *", "struct statx *")]
    if statlike:
        out.add("%stat")
        if fd_arg:
            out.add("fstat")
        elif sc.name.startswith("l"):
            out.add("lstat")
        else:
            out.add("stat")
    if "struct statfs *" in types:
        out.add("%statfs")
        out.add("fstatfs" if fd_arg else "statfs")

    ids = ("uid_t", "gid_t", "old_uid_t", "old_gid_t", "uid_t *", "gid_t *")
    if (all(t in ids or n == "gidsetsize" for t, n in sc.args)
            or any(t.startswith("cap_user") for t in types)):
        out.add("creds")

    if any(t.replace("const ", "") == "clockid_t" or "timex" in t or "timezone" in t
           or t.endswith("time_t *") for t in types):
        out.add("clock")
    return frozenset(out)


@lru_cache(maxsize=None)
def class_table(arch: str = "x86_64") -> dict[str, tuple[Syscall, ...]]:
    """``{class: (syscalls...)}`` of the calls with trace events, in number order."""
    table = SyscallTable.for_arch(arch)
    out: dict[str, list[Syscall]] = {c: [] for c in CLASSES}
    for sc in table:
        if not sc.has_event:
            continue
        for c in classes_of(sc):
            out[c].append(sc)
    return {c: tuple(v) for c, v in out.items()}


# -- -e trace=... -----------------------------------------------------------------------------

class StraceSelectionError(UsertraceError):
    """A strace selection that names no system call or class: the message, then the
    selection with a caret under the fault."""

    def __init__(self, message: str, text: str, pos: int):
        self.message = message
        self.text = text
        self.pos = pos
        super().__init__(f"{message} (at column {pos + 1} of {text!r})")

    def render(self) -> str:
        return f"{self.message}\n{self.text}\n{caret(self.text, self.pos)}"


def _event_names(sc: Syscall) -> list[str]:
    return [f"syscalls:sys_enter_{sc.event}", f"syscalls:sys_exit_{sc.event}"]


def _class_name(word: str) -> str | None:
    """The class a selection word names (``%file``, ``%net``, ``file``, ``%%stat``)."""
    if word.startswith("%"):
        name = word[1:]
        if name.startswith("%"):
            name = name if name in CLASSES else ""
        name = ALIASES.get(name, name)
        return name if name in CLASSES else None
    if word in LEGACY or word == "net":
        return ALIASES.get(word, word)
    return None


def expand_strace_selection(text: str, arch: str = "x86_64") -> list[str]:
    """The events a strace ``-e`` selection enables, in syscall-number order.

    ``text`` is what follows ``-e`` (``trace=`` and its short form ``t=`` are optional): a
    comma list of system call names (``openat``: both its events), classes (``%file``,
    ``%net``, ``%%stat``; the old ``file``, ``network``... without ``%``), ``/REGEX``
    (names that match), ``all`` and ``none``; a leading ``!`` selects everything else; a
    ``?`` before a name or class ignores it when unknown.  The ``__NR_`` names are used
    (``stat``, whose events are ``sys_enter_newstat``).  A system call without trace events
    here is an error, as is an unknown name.
    """
    table = SyscallTable.for_arch(arch)
    body = text
    start = 0
    for prefix in ("trace=", "t="):
        if body.startswith(prefix):
            start = len(prefix)
            break
    body = text[start:]
    negate = body.startswith("!")
    if negate:
        body, start = body[1:], start + 1
    chosen: set[int] = set()
    classes = class_table(arch)
    pos = start
    for word in body.split(","):
        here = pos
        pos += len(word) + 1
        quiet = word.startswith("?")
        if quiet:
            word, here = word[1:], here + 1
        if not word:
            raise StraceSelectionError("empty system call name", text, here)
        if word == "all":
            chosen |= {s.nr for s in table if s.has_event}
            continue
        if word == "none":
            continue
        if word.startswith("/"):
            try:
                rx = re.compile(word[1:])
            except re.error as exc:
                raise StraceSelectionError(f"invalid regular expression: {exc.msg}", text,
                                           here + 1 + (exc.pos or 0)) from None
            hits = {s.nr for s in table if s.has_event and rx.search(s.name)}
            if not hits and not quiet:
                raise StraceSelectionError(f"no system call matches {word[1:]!r}", text, here)
            chosen |= hits
            continue
        cls = _class_name(word)
        if cls is not None:
            chosen |= {s.nr for s in classes[cls]}
            continue
        if word.startswith("%"):
            if quiet:
                continue
            raise StraceSelectionError(f"invalid class '{word}' (classes: "
                                       + ", ".join("%" + c for c in CLASSES) + ")", text, here)
        sc = table.by_name.get(word)
        if sc is None:
            if quiet:
                continue
            raise StraceSelectionError(f"invalid system call '{word}'", text, here)
        if not sc.has_event:
            if quiet:
                continue
            raise StraceSelectionError(f"system call '{word}' has no trace event on this "
                                       "kernel", text, here)
        chosen.add(sc.nr)
    if negate:
        chosen = {s.nr for s in table if s.has_event} - chosen
    out: list[str] = []
    for nr in sorted(chosen):
        out += _event_names(table.by_nr[nr])
    return out


def strace_selection_formats(registry, text: str, arch: str = "x86_64") -> list | None:
    """The formats of ``registry`` (a recording's, or a file's) that an ``-e`` written in
    strace's terms selects (:func:`expand_strace_selection`), for ``record`` and ``report``
    alike; None when ``text`` is not in those terms, or is one plain word that names no
    system call (the caller says that no event matches).  A bad list or class raises its
    :class:`StraceSelectionError`."""
    if not is_strace_selection(text):
        return None
    try:
        names = expand_strace_selection(text, arch)
    except StraceSelectionError:
        if not any(c in text for c in ",%!?/="):      # one word, not strace's syntax
            return None
        raise
    found = (registry.get(*name.split(":", 1)) for name in names)
    return [f for f in found if f is not None]


def is_strace_selection(text: str) -> bool:
    """Whether an ``-e`` argument is written in strace's terms rather than as event names
    (``syscalls:sys_enter_openat``, ``sys_*_read``, ``user_events:app``): no ``:``, no
    ``sys_enter_``/``sys_exit_`` prefix, no glob character."""
    if ":" in text and not text.startswith(("trace=", "t=")):
        return False
    body = text.split("=", 1)[1] if text.startswith(("trace=", "t=")) else text
    if any(c in body for c in "*[") and not body.lstrip("!?").startswith("/"):
        return False
    return not any(w.lstrip("!?").startswith(("sys_enter_", "sys_exit_", "syscalls"))
                   for w in body.split(","))
