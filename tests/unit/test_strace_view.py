"""The strace view's lines: enter and exit joined per thread, cut and resumed when threads
interleave, prefixes, timestamps, durations, -z/-Z, ends of processes, signals, -y."""

import os
import time
from dataclasses import dataclass

import pytest

from usertrace.events.records import RecordCodec
from usertrace.output.strace import (PID_AUTO, PID_NONE, PID_PLAIN, STATUS_FAILED,
                                     STATUS_SUCCESSFUL, TS_EPOCH, TS_TIME, TS_USEC, CallView,
                                     ViewOptions)
from usertrace.sources.syscalls import events as sc_events
from usertrace.sources.syscalls import user_data
from usertrace.sources.syscalls.table import SyscallTable

TABLE = SyscallTable.for_arch("x86_64")
AT_FDCWD = 0xFFFFFF9C
P = 0x7FFD1000


def pad(text, column=40):
    """A call's text before its result, as strace pads it: ``) `` then up to the column."""
    text += " "
    return text + " " * max(0, column - len(text)) + "= "


def view(**options):
    lines = []
    options.setdefault("pids", PID_PLAIN)
    return CallView(lines.append, ViewOptions(**options)), lines


def test_one_call_one_line_aligned_at_column_40():
    v, lines = view()
    v.enter(42, "close", [3], 0)
    v.exit(42, "close", 0, 10)
    v.enter(42, "openat", [AT_FDCWD, P, 0, 0], 20, {"filename": b"/a/rather/long/path/name\0"})
    v.exit(42, "openat", 3, 30)
    assert lines == ["42    close(3)                          = 0",
                     '42    openat(AT_FDCWD, "/a/rather/long/path/name", O_RDONLY) = 3']
    assert lines[0].index("=") == 40


def test_interleaved_threads_are_cut_and_resumed_as_strace_does():
    v, lines = view()
    v.enter(1, "read", [3, P, 10], 0)
    v.enter(2, "close", [4], 1)
    v.exit(1, "read", 3, 2, {"buf": b"abc"})
    v.enter(2, "getpid", [], 3)            # 2 never returned from close: an orphan
    v.exit(2, "getpid", 1, 4)
    v.finish()
    assert lines == [
        "1     read(3,  <unfinished ...>",
        "2     close(4 <unfinished ...>",
        pad('1     <... read resumed>"abc", 10)') + "3",
        pad("2     <... close resumed>)") + "?",
        pad("2     getpid()") + "1",
    ]


def test_bracket_prefixes_only_while_more_than_one_task_lives():
    v, lines = view(pids=PID_AUTO)
    v.enter(1, "clone", [0x1200011, 0, 0, P, 0], 0)
    v.exit(1, "clone", 2, 1)
    v.enter(2, "exit_group", [0], 2)
    v.enter(1, "getpid", [], 3)
    v.exit(1, "getpid", 1, 4)
    assert lines[0].startswith("clone(")
    assert lines[1] == pad("[pid     2] exit_group(0)") + "?"
    assert lines[2] == "[pid     2] +++ exited with 0 +++"
    assert lines[3].startswith("getpid()")


def test_the_childs_first_return_from_clone_is_not_a_line():
    v, lines = view()
    v.enter(1, "clone", [0x11, 0, 0, 0, 0], 0)
    v.exit(2, "clone", 0, 1)              # the kernel's return in the child
    v.exit(1, "clone", 2, 2)
    assert lines == ["1     clone(child_stack=NULL, flags=SIGCHLD) = 2"]


def test_an_exit_without_its_entry_is_a_resumed_line():
    v, lines = view()
    v.exit(7, "read", 5, 0)
    assert lines == [pad("7     <... read resumed>)") + "5"]


def test_durations_and_timestamps():
    offset = 1_700_000_000_000_000_000 - 5_000_000_000
    v, lines = view(durations=True, timestamps=TS_EPOCH, wall_offset_ns=offset)
    v.enter(1, "close", [3], 5_000_000_000)
    v.exit(1, "close", 0, 5_000_123_456)
    assert lines == ["1     1700000000.000000 close(3)        = 0 <0.000123>"]
    for mode, fmt in ((TS_TIME, "%H:%M:%S "), (TS_USEC, "%H:%M:%S.000250 ")):
        v, lines = view(pids=PID_NONE, timestamps=mode, wall_offset_ns=offset)
        v.enter(1, "getpid", [], 5_000_250_000)
        v.exit(1, "getpid", 1, 5_000_260_000)
        assert lines[0].startswith(time.strftime(fmt, time.localtime(1_700_000_000)))


def test_relative_timestamps():
    v, lines = view(pids=PID_NONE, relative=True)
    v.enter(1, "getpid", [], 1_000_000_000)
    v.exit(1, "getpid", 1, 1_000_000_100)
    v.enter(1, "getpid", [], 3_500_000_000)
    v.exit(1, "getpid", 1, 3_500_000_100)
    assert [line[:16] for line in lines] == ["     0.000000 ge", "     2.500000 ge"]


@pytest.mark.parametrize("status, kept", [(STATUS_SUCCESSFUL, ["close(3)"]),
                                          (STATUS_FAILED, ["close(4)"])])
def test_z_and_Z_keep_whole_calls(status, kept):
    v, lines = view(pids=PID_NONE, status=status, column=0)
    v.enter(1, "close", [3], 0)
    v.enter(2, "close", [4], 1)           # interleaved: no unfinished lines with -z/-Z
    v.exit(2, "close", -9, 2)
    v.exit(1, "close", 0, 3)
    assert [line.split(" = ")[0] for line in lines] == kept
    assert not any("unfinished" in line or "resumed" in line for line in lines)


def test_task_ends_and_signals_from_the_caller():
    v, lines = view()
    v.task_new(5)
    v.signal(5, 0, 17, {"si_code": 1, "si_pid": 6, "si_uid": 0, "si_status": 0,
                        "si_utime": 0, "si_stime": 0})
    v.signal(5, 0, 15, {"si_code": 0, "si_pid": 1, "si_uid": 0})
    v.signal(5, 0, 11, {"si_code": 1, "si_addr": 0})
    v.signal(5, 0, 2, None)
    v.enter(5, "exit_group", [1], 1)
    v.task_exit(5, 2, code=1)
    v.task_exit(6, 3, signal=9)
    v.task_exit(7, 4, signal=11, core=True)
    assert lines == [
        "5     --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=6, si_uid=0, "
        "si_status=0, si_utime=0, si_stime=0} ---",
        "5     --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=1, si_uid=0} ---",
        "5     --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---",
        "5     --- SIGINT {si_signo=SIGINT} ---",
        pad("5     exit_group(1)") + "?",
        "5     +++ exited with 1 +++",          # once: exit_group said it, task_exit too
        "6     +++ killed by SIGKILL +++",
        "7     +++ killed by SIGSEGV (core dumped) +++",
    ]


def test_a_task_killed_in_a_call():
    v, lines = view()
    v.enter(5, "pause", [], 0)
    v.enter(6, "kill", [5, 9], 1)
    v.exit(6, "kill", 0, 2)
    v.task_exit(5, 3, signal=9)
    assert lines == ["5     pause( <unfinished ...>",
                     pad("6     kill(5, SIGKILL)") + "0",
                     pad("5     <... pause resumed>)") + "?",
                     "5     +++ killed by SIGKILL +++"]


# -- -y ----------------------------------------------------------------------------------------

def test_descriptor_paths_follow_the_calls():
    v, lines = view(pids=PID_NONE, show_fds=True, column=0)
    v.enter(1, "chdir", [P], 0, {"filename": b"/etc\0"})
    v.exit(1, "chdir", 0, 1)
    v.enter(1, "openat", [AT_FDCWD, P, 0x80000, 0], 2, {"filename": b"hostname\0"})
    v.exit(1, "openat", 3, 3)
    v.enter(1, "dup2", [3, 10], 4)
    v.exit(1, "dup2", 10, 5)
    v.enter(1, "close", [3], 6)
    v.exit(1, "close", 0, 7)
    v.enter(1, "read", [10, P, 1], 8)
    v.exit(1, "read", 1, 9, {"buf": b"v"})
    v.enter(1, "close", [3], 10)
    v.exit(1, "close", -9, 11)
    assert lines[1:] == [
        'openat(AT_FDCWD</etc>, "hostname", O_RDONLY|O_CLOEXEC) = 3</etc/hostname>',
        "dup2(3</etc/hostname>, 10) = 10</etc/hostname>",
        "close(3</etc/hostname>) = 0",
        'read(10</etc/hostname>, "v", 1) = 1',
        "close(3) = -1 EBADF (Bad file descriptor)",
    ]


def test_children_copy_or_share_the_table_and_exec_closes_cloexec():
    v, lines = view(pids=PID_NONE, show_fds=True, column=0)
    v.enter(1, "openat", [AT_FDCWD, P, 0x80000, 0], 0, {"filename": b"/a\0"})
    v.exit(1, "openat", 3, 1)
    v.enter(1, "clone", [0x11, 0, 0, 0, 0], 2)                   # fork: a copy
    v.exit(1, "clone", 2, 3)
    v.enter(1, "clone", [0x3D0F00, P, P, P, P], 4)               # a thread: shared
    v.exit(1, "clone", 3, 5)
    v.enter(1, "openat", [AT_FDCWD, P, 0, 0], 6, {"filename": b"/b\0"})
    v.exit(1, "openat", 4, 7)
    for tid in (2, 3):
        v.enter(tid, "close", [4], 8)
        v.exit(tid, "close", 0, 9)
    v.enter(2, "execve", [P, P, P], 10, {"filename": b"/bin/true\0"})
    v.exit(2, "execve", 0, 11)
    v.enter(2, "close", [3], 12)
    v.exit(2, "close", -9, 13)
    assert lines[-4:] == [
        "close(4) = 0",                         # the fork's copy has no fd 4
        "close(4</b>) = 0",                     # the thread shares it
        'execve("/bin/true", 0x7ffd1000, 0x7ffd1000) = 0',
        "close(3) = -1 EBADF (Bad file descriptor)",    # O_CLOEXEC: gone at exec
    ]


def test_attach_reads_the_descriptors_from_proc():
    v, lines = view(pids=PID_NONE, show_fds=True, column=0)
    r, w = os.pipe()
    try:
        v.attach(os.getpid())
        v.enter(os.getpid(), "close", [r], 0)
        v.exit(os.getpid(), "close", 0, 1)
        assert lines == [f"close({r}<{os.readlink(f'/proc/self/fd/{r}')}>) = 0"]
    finally:
        os.close(r)
        os.close(w)


# -- events as the reader gives them -----------------------------------------------------------

@dataclass
class Event:
    format: object
    values: dict
    ts_ns: int


def _events(name, args, ret, reads=None, exit_read=None, tid=9):
    """The two records of a call, encoded and decoded as a trace would carry them: with
    the kernel's formats, or with user data when ``reads`` are given."""
    sc = TABLE.by_name[name]
    if reads is None:
        enter_fmt = sc_events.enter_format(sc.event, sc.args, 1)
        exit_fmt = sc_events.exit_format(sc.event, 2)
        rec_in = sc_events.encode_enter(1, tid, sc.nr, args, len(args))
        rec_out = sc_events.encode_exit(2, tid, sc.nr, ret)
    else:
        enter_fmt = user_data.enter_format(name, sc.event, sc.args, 1)
        exit_fmt = user_data.exit_format(name, sc.event, sc.args, 2)
        data = user_data.enter_data(name)
        rec_in = (user_data.encode_enter(1, tid, sc.nr, args, len(args), data, reads)
                  if data else sc_events.encode_enter(1, tid, sc.nr, args, len(args)))
        out = user_data.exit_data(name)
        rec_out = (user_data.encode_exit(2, tid, sc.nr, ret, exit_read, out)
                   if out else sc_events.encode_exit(2, tid, sc.nr, ret))
    return [Event(enter_fmt, RecordCodec(enter_fmt).decode(rec_in), 0),
            Event(exit_fmt, RecordCodec(exit_fmt).decode(rec_out), 1)]


def test_feeding_records_without_and_with_user_data():
    v, lines = view(pids=PID_NONE, column=0)
    v.feed_all(_events("openat", (AT_FDCWD, P, 0, 0), 3)
               + _events("openat", (AT_FDCWD, P, 0, 0), 3, [b"/etc/hostname"])
               + _events("write", (1, P, 6), 6, [b"hello\n"])
               + _events("read", (3, P, 100), 5, [], b"hi\0\xff\n")
               + _events("stat", (P, P), -2, [b"/nope"]))
    assert lines == [
        "openat(AT_FDCWD, 0x7ffd1000, O_RDONLY) = 3",
        'openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3',
        'write(1, "hello\\n", 6) = 6',
        'read(3, "hi\\0\\377\\n", 100) = 5',
        # the kernel's list has no stat (it has statfs): the path stays a pointer
        "stat(0x7ffd1000, 0x7ffd1000) = -1 ENOENT (No such file or directory)",
    ]


# -- task events of a recording ------------------------------------------------------------------

@dataclass
class _Ev:
    format: object
    values: dict
    ts_ns: int = 0


def _task_event(name, tid, **fields):
    from usertrace.sources.tasks.events import task_formats
    fmt = next(f for f in task_formats() if f.name == name)
    return _Ev(fmt, {"common_pid": tid, **fields})


def test_recorded_task_events_end_tasks_as_strace_does():
    """task_newtask says which task is a thread; signal_deliver prints the signal (never
    SIGKILL) and, under the default action of a fatal one, how the group ends;
    sched_process_exit prints the end."""
    v, lines = view()
    v.enter(10, "clone3", [P, 88], 0)
    v.feed(_task_event("task_newtask", 10, pid=11, clone_flags=0x3D0F00))    # a thread
    v.exit(10, "clone3", 11, 1)
    v.enter(10, "clone", [0x1200011, 0, 0, 0, 0], 2)
    v.feed(_task_event("task_newtask", 10, pid=12, clone_flags=0x1200000))   # a child
    v.exit(10, "clone", 12, 3)
    v.feed(_task_event("signal_deliver", 12, sig=11, code=1, sa_handler=0))
    v.feed(_task_event("sched_process_exit", 12, pid=12))
    v.feed(_task_event("signal_deliver", 10, sig=10, code=-6, sa_handler=0x4011E9))
    v.enter(10, "exit_group", [4], 4)
    v.feed(_task_event("signal_deliver", 11, sig=9, code=0, sa_handler=0))   # zapped
    v.feed(_task_event("sched_process_exit", 11, pid=11))
    v.feed(_task_event("sched_process_exit", 10, pid=10))
    ends = [x for x in lines if "+++" in x or "---" in x]
    assert ends == [
        "12    --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR} ---",
        "12    +++ killed by SIGSEGV +++",
        "10    --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_TKILL} ---",
        "11    +++ exited with 4 +++",           # its SIGKILL came from the group's exit
        "10    +++ exited with 4 +++",           # at its end, once ends are recorded
    ]


def test_a_thread_of_a_faulting_process_dies_of_the_fault():
    v, lines = view()
    v.feed(_task_event("task_newtask", 20, pid=21, clone_flags=0x3D0F00))
    v.feed(_task_event("signal_deliver", 20, sig=11, code=1, sa_handler=0))
    v.feed(_task_event("signal_deliver", 21, sig=9, code=0, sa_handler=0))
    v.feed(_task_event("sched_process_exit", 21, pid=21))
    v.feed(_task_event("sched_process_exit", 20, pid=20))
    v.feed(_task_event("signal_deliver", 30, sig=10, code=0, sa_handler=0x401000))
    v.feed(_task_event("sched_process_exit", 30, pid=30))   # a handler: not what ended it
    assert [x for x in lines if "+++" in x] == ["21    +++ killed by SIGSEGV +++",
                                                "20    +++ killed by SIGSEGV +++",
                                                "30    +++ exited +++"]


def test_live_views_take_ends_from_the_tracer_not_from_events():
    v, lines = view(task_events=True)
    v.feed(_task_event("signal_deliver", 5, sig=10, code=0, sa_handler=0))
    v.feed(_task_event("sched_process_exit", 5, pid=5))
    assert lines == []


def test_many_children_made_and_ended_leave_one_task_and_no_flags_behind():
    """Prefixes follow the count of live tasks (kept as a count: a check per line), and the
    clone flags of task_newtask are kept only until the maker's call returns."""
    v, lines = view(pids=PID_AUTO)
    for child in range(100, 2100):
        v.enter(10, "clone3", [P, 88], child)
        v.feed(_task_event("task_newtask", 10, pid=child, clone_flags=0x1200000))
        v.exit(10, "clone3", child, child)
        v.enter(child, "getpid", [], child)
        v.exit(child, "getpid", child, child)
        v.feed(_task_event("sched_process_exit", child, pid=child))
    v.enter(10, "getpid", [], 5000)
    v.exit(10, "getpid", 10, 5001)
    assert lines[-1].startswith("getpid()")                     # alone again: no [pid ...]
    assert sum(1 for x in lines if x.startswith("[pid  2099] getpid()")) == 1
    assert not v._clone_flags


def test_execve_shows_its_argument_vector_as_strace_does():
    v, lines = view(max_len=4)
    argv = user_data.argv_value([b"ls", b"-l", b"/a/long/path"], True, 63)
    v.enter(7, "execve", [P, P + 64, P + 128], 0, {"filename": b"/bin/ls\0", "argv": argv})
    v.exit(7, "execve", 0, 1)
    v.enter(7, "execve", [P, P + 64, P + 128], 2, {"filename": b"/bin/ls\0"})   # not recorded
    v.exit(7, "execve", -2, 3)
    v.enter(7, "execve", [P, 0, 0], 4, {"filename": b"/bin/ls\0"})
    v.exit(7, "execve", -14, 5)
    assert [x.split(" = ")[0].rstrip() for x in lines] == [
        '7     execve("/bin/ls", ["ls", "-l", "/a/l"..., ...], 0x7ffd1080)',
        '7     execve("/bin/ls", 0x7ffd1040, 0x7ffd1080)',
        '7     execve("/bin/ls", NULL, NULL)',
    ]


def _clone_args(flags, exit_signal=0, stack=0x7F0000000000, size=0x7FFF80, tls=0x7F00000006C0,
                tid=0x7F0000000990):
    words = [flags, 0, tid, tid, exit_signal, stack, size, tls, 0, 0, 0]
    return b"".join(w.to_bytes(8, "little") for w in words)


THREAD_FLAGS = 0x3D0F00       # VM FS FILES SIGHAND THREAD SYSVSEM SETTLS PARENT_SETTID CHILD_CLEARTID


def test_clone3_shows_its_arguments_and_the_tid_it_wrote_as_strace():
    head = ("clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|"
            "CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, "
            "child_tid=0x7f0000000990, parent_tid=0x7f0000000990, exit_signal=0, "
            "stack=0x7f0000000000, stack_size=0x7fff80, tls=0x7f00000006c0}")
    v, lines = view(column=0)
    v.enter(10, "clone3", [P, 88], 0, {"uargs": _clone_args(THREAD_FLAGS)})
    v.exit(10, "clone3", 11, 1)
    assert lines == ["10    " + head + " => {parent_tid=[11]}, 88) = 11"]
    # cut by another thread: the rest comes with the resumed line
    v, lines = view(column=0)
    v.enter(10, "clone3", [P, 88], 0, {"uargs": _clone_args(THREAD_FLAGS)})
    v.enter(12, "getpid", [], 1)
    v.exit(12, "getpid", 12, 2)
    v.exit(10, "clone3", 11, 3)
    assert lines == ["10    " + head + " <unfinished ...>", "12    getpid() = 12",
                     "10    <... clone3 resumed> => {parent_tid=[11]}, 88) = 11"]
    # no CLONE_PARENT_SETTID: only the size at the return; a failure writes nothing
    v, lines = view(column=0)
    v.enter(10, "clone3", [P, 88], 0, {"uargs": _clone_args(0, exit_signal=17, stack=0,
                                                            size=0)})
    v.exit(10, "clone3", -1, 1)
    assert lines == ["10    clone3({flags=0, exit_signal=SIGCHLD, stack=NULL, stack_size=0}, "
                     "88) = -1 EPERM (Operation not permitted)"]
    # not recorded: the pointer, as before
    v, lines = view(column=0)
    v.enter(10, "clone3", [P, 88], 0)
    v.exit(10, "clone3", 11, 1)
    assert lines == ["10    clone3(0x7ffd1000, 88) = 11"]
