"""sys_enter/sys_exit formats, their trace text and their records."""

import pytest
from hypothesis import given, strategies as st

from usertrace.events.format import EventFormat
from usertrace.events.records import RecordCodec
from usertrace.sources.syscalls import events as ev

# The kernel's own text (6.18), ID line included.
OPENAT_ENTER = """name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx, flags: 0x%08lx, mode: 0x%08lx", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename)), ((unsigned long)(REC->flags)), ((unsigned long)(REC->mode))
"""

OPENAT_EXIT = """name: sys_exit_openat
ID: 781
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;

print fmt: "0x%lx", REC->ret
"""

GETPPID_ENTER_TAIL = "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\nprint fmt: \"\"\n"

OPENAT_ARGS = (("int", "dfd"), ("const char *", "filename"), ("int", "flags"), ("umode_t", "mode"))


def test_openat_formats_equal_the_kernels():
    assert ev.enter_format("openat", OPENAT_ARGS, 782).render() == OPENAT_ENTER
    assert ev.exit_format("openat", 781).render() == OPENAT_EXIT
    assert EventFormat.parse(OPENAT_ENTER, "syscalls") == ev.enter_format("openat", OPENAT_ARGS, 782)


def test_no_argument_event():
    text = ev.enter_format("getppid", (), 1).render()
    assert text.endswith(GETPPID_ENTER_TAIL)


def test_too_many_arguments():
    with pytest.raises(ValueError, match="at most 6 arguments, not 7"):
        ev.enter_fields([("int", f"a{i}") for i in range(7)])


@pytest.mark.parametrize("values,text", [
    ((0xFFFFFF9C, 0x564D41778750, 0x241, 0),
     "sys_openat(dfd: 0xffffff9c, filename: 0x564d41778750, flags: 0x241, mode: 0)"),
    ((9, 10, 0, 1), "sys_openat(dfd: 9, filename: 0xa, flags: 0, mode: 1)"),
    ((-1, 2 ** 64 - 1, 15, 16),   # a negative value is the 64-bit pattern the kernel stores
     "sys_openat(dfd: 0xffffffffffffffff, filename: 0xffffffffffffffff, flags: 0xf, mode: 0x10)"),
])
def test_render_enter(values, text):
    assert ev.render_enter("openat", [n for _, n in OPENAT_ARGS], values) == text


def test_render_enter_verbose_and_empty():
    assert (ev.render_enter("close", ["fd"], [3], ["unsigned int"])
            == "sys_close(unsigned int fd: 3)")
    assert ev.render_enter("getppid", [], []) == "sys_getppid()"


@pytest.mark.parametrize("ret,text", [
    (3, "sys_openat -> 0x3"),
    (0, "sys_openat -> 0x0"),
    (-2, "sys_openat -> 0xfffffffffffffffe"),
    (-516, "sys_openat -> 0xfffffffffffffdfc"),   # -ERESTART_RESTARTBLOCK leaks as itself
])
def test_render_exit(ret, text):
    assert ev.render_exit("openat", ret) == text


def test_printer_from_formats_alone():
    enter = ev.syscall_printer(EventFormat.parse(OPENAT_ENTER, "syscalls"))
    values = RecordCodec(EventFormat.parse(OPENAT_ENTER, "syscalls")).decode(
        ev.encode_enter(782, 7, 257, (0xFFFFFF9C, 0x1000, 0, 0, 0, 0), 4))
    assert enter(None, values) == "sys_openat(dfd: 0xffffff9c, filename: 0x1000, flags: 0, mode: 0)"
    exit_ = ev.syscall_printer(EventFormat.parse(OPENAT_EXIT, "syscalls"))
    assert exit_(None, {"ret": -13}) == "sys_openat -> 0xfffffffffffffff3"
    assert ev.syscall_printer(EventFormat("sched", "sched_switch", 1, [], '""')) is None


u64 = st.integers(min_value=0, max_value=2 ** 64 - 1)


@given(nargs=st.integers(0, 6), args=st.lists(u64, min_size=6, max_size=6),
       pid=st.integers(1, 2 ** 31 - 1), nr=st.integers(0, 511),
       ret=st.integers(-(2 ** 63), 2 ** 63 - 1))
def test_hand_tuned_records_equal_the_codecs(nargs, args, pid, nr, ret):
    names = [("unsigned long", f"a{i}") for i in range(nargs)]
    enter = ev.enter_format("x", names, 700)
    exit_ = ev.exit_format("x", 701)
    rec = ev.encode_enter(700, pid, nr, args, nargs)
    codec = RecordCodec(enter)
    values = {"common_pid": pid, "__syscall_nr": nr, **{f"a{i}": args[i] for i in range(nargs)}}
    # The kernel reserves sizeof(struct syscall_trace_enter) + 8 * nargs: 16 bytes without
    # arguments, where the format's fields end at 12.
    assert rec == codec.encode(values).ljust(16, b"\0")
    assert len(rec) == ev.enter_record_size(nargs) == 16 + 8 * nargs
    assert codec.decode(rec) == {"common_type": 700, "common_flags": 0,
                                 "common_preempt_count": 0, **values}
    rec = ev.encode_exit(701, pid, nr, ret)
    assert rec == RecordCodec(exit_).encode({"common_pid": pid, "__syscall_nr": nr, "ret": ret})
    assert RecordCodec(exit_).decode(rec)["ret"] == ret
    assert len(rec) == ev.EXIT_RECORD_SIZE


def test_build_events_covers_the_table():
    events = ev.build_events()
    assert len(events) == 360
    by_name = {e.name: e for e in events}
    stat = by_name["stat"]
    assert (stat.nr, stat.enter.name, stat.exit.name) == (4, "sys_enter_newstat", "sys_exit_newstat")
    assert "uselib" not in by_name
    assert len({e.enter.name for e in events} | {e.exit.name for e in events}) == 720
