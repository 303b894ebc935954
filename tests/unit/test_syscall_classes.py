"""strace selections (-e trace=...) expanded to events, and the class rules on known calls.
The comparison with strace itself is tests/e2e/test_strace_classes.py."""

import pytest

from usertrace.errors import UsertraceError
from usertrace.sources.syscalls.classes import (FD_RETURNING, StraceSelectionError, class_table,
                                                classes_of, expand_strace_selection,
                                                is_strace_selection)
from usertrace.sources.syscalls.table import SyscallTable

TABLE = SyscallTable.for_arch("x86_64")


def both(*events):
    out = []
    for e in events:
        out += [f"syscalls:sys_enter_{e}", f"syscalls:sys_exit_{e}"]
    return out


@pytest.mark.parametrize("text, events", [
    ("openat", both("openat")),
    ("trace=openat", both("openat")),
    ("t=close,openat", both("close", "openat")),            # number order: close is 3
    ("openat,openat", both("openat")),
    ("stat", both("newstat")),                              # the __NR_ name, the kernel's event
    ("%ipc", both("shmget", "shmat", "shmctl", "semget", "semop", "semctl", "shmdt", "msgget",
                  "msgsnd", "msgrcv", "msgctl", "semtimedop")),
    ("ipc", both("shmget", "shmat", "shmctl", "semget", "semop", "semctl", "shmdt", "msgget",
                 "msgsnd", "msgrcv", "msgctl", "semtimedop")),
    ("%stat", both("newstat")),
    ("%lstat", both("newlstat")),
    ("%%statfs", both("statfs", "fstatfs")),
    ("/^getp", both("getpid", "getpeername", "getppid", "getpgrp", "getpriority", "getpgid")),
    ("none", []),
    ("?nosuchcall,close", both("close")),
    ("?%nosuchclass,close", both("close")),
])
def test_expand(text, events):
    got = expand_strace_selection(text)
    assert sorted(got) == sorted(events)
    nrs = [TABLE.by_event[e.split(":sys_enter_")[1]].nr for e in got if ":sys_enter_" in e]
    assert nrs == sorted(nrs)                       # in syscall-number order


def test_net_is_network_and_negation_is_the_rest():
    assert expand_strace_selection("%net") == expand_strace_selection("%network")
    every = expand_strace_selection("all")
    assert len(every) == 2 * sum(1 for s in TABLE if s.has_event)
    rest = expand_strace_selection("!openat")
    assert set(rest) == set(every) - set(both("openat"))
    assert expand_strace_selection("!all") == []


# The fault is marked with ^ in the text (removed before the call), as the kernel's
# selftests mark it; the second column is the start of the message.
@pytest.mark.parametrize("marked, message", [
    ("^opnat", "invalid system call 'opnat'"),
    ("openat,^opnat", "invalid system call 'opnat'"),
    ("trace=close,^%fle", "invalid class '%fle'"),
    ("openat,^", "empty system call name"),
    ("^uselib", "system call 'uselib' has no trace event on this kernel"),
    ("/^(", "invalid regular expression"),
    ("^/nomatch_at_all", "no system call matches"),
    ("!close,?x,^bad", "invalid system call 'bad'"),
])
def test_errors_name_the_fault_and_its_place(marked, message):
    pos = marked.index("^")
    text = marked[:pos] + marked[pos + 1:]
    with pytest.raises(StraceSelectionError) as info:
        expand_strace_selection(text)
    err = info.value
    assert isinstance(err, UsertraceError)
    assert err.message.startswith(message)
    assert err.pos == pos, (err.pos, pos)
    lines = err.render().split("\n")
    assert lines[1] == text and lines[2] == " " * pos + "^"


@pytest.mark.parametrize("text, strace", [
    ("openat", True), ("%file,close", True), ("trace=!write", True), ("/^open", True),
    ("syscalls:sys_enter_openat", False), ("sys_enter_openat", False), ("sys_*_read", False),
    ("syscalls", False), ("user_events:app_*", False),
])
def test_is_strace_selection(text, strace):
    assert is_strace_selection(text) is strace


@pytest.mark.parametrize("name, classes", [
    ("openat", {"file", "desc"}),
    ("read", {"desc"}),
    ("connect", {"network"}),
    ("socket", {"network"}),
    ("mmap", {"memory", "desc"}),
    ("brk", {"memory"}),
    ("clone", {"process"}),
    ("execve", {"file", "process"}),
    ("kill", {"process", "signal"}),
    ("rt_sigprocmask", {"signal"}),
    ("epoll_pwait", {"desc"}),                  # its sigmask is held while waiting
    ("newfstatat", {"file", "desc", "fstat", "%stat"}),
    ("newlstat", {"file", "lstat", "%stat"}),
    ("getpid", {"pure"}),
    ("getuid", {"pure", "creds"}),
    ("setresuid", {"creds"}),
    ("chown", {"file"}),                        # uid_t, but a path too: not creds
    ("clock_gettime", {"clock"}),
    ("shmat", {"ipc", "memory"}),
    ("pipe2", {"desc"}),
    ("fork", {"process"}),
])
def test_classes_of_known_calls(name, classes):
    sc = TABLE.by_event.get(name) or TABLE.by_name[name]
    assert classes_of(sc) == classes


def test_every_class_has_calls_and_fd_returning_calls_exist():
    table = class_table()
    assert all(table[c] for c in table)
    assert FD_RETURNING <= set(TABLE.by_name) | {"open_tree_attr"}
