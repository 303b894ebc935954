"""The filter table (tests/data/filter_cases.txt) against the real kernel.

For every row: write the expression to the event's ``filter`` file in a private tracefs
instance; the kernel must accept or refuse it as the row says, with the same errno, and its
``filter`` file must then show exactly what :meth:`FilterError.render` shows (the text, the
caret, the message).  For accepted rows that read only fields a test can set (the section's
``controls``), each sample record is produced for real by a child process (a syscall with
chosen arguments, a rename, an exec, a file lock), and the set of samples that pass the
kernel's filter must be the row's.  Each sample is first checked to produce exactly one
event, with the values the table gives (a filter naming every controlled value must pass it).
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import os
import struct
import sys
from pathlib import Path

import pytest

from usertrace.events.format import EventFormat
from usertrace.filter import FilterError, compile_filter, compile_system_filter
from usertrace.filter.predicate import PTR_STRING, STRING_KINDS
from usertrace.kernel.tracefs import TracefsError, find_tracefs

pytestmark = pytest.mark.kernel

_DATA = Path(__file__).resolve().parents[1] / "data" / "filter_cases.py"
_spec = importlib.util.spec_from_file_location("filter_cases", _DATA)
filter_cases = importlib.util.module_from_spec(_spec)
sys.modules["filter_cases"] = filter_cases
_spec.loader.exec_module(filter_cases)

SECTIONS = filter_cases.load()
CASES = filter_cases.all_cases(SECTIONS)
SAMPLES = [(s, name) for s in SECTIONS if s.controls for name in s.samples]

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
PR_SET_NAME = 15
SYS_LSEEK, SYS_OPENAT = 8, 257
LLONG_MAX = (1 << 63) - 1


# -- writing filters ----------------------------------------------------------------------

def write_filter(inst, event: str, text: str) -> int:
    """Write ``text`` to the event's filter file; 0 or the errno of the refusal."""
    try:
        inst.set_filter(*event.split("/"), text)
    except TracefsError as exc:
        return exc.errno
    return 0


def read_filter(inst, event: str) -> str:
    return inst.read(f"events/{event}/filter")


# -- producing events ---------------------------------------------------------------------

def _u64(v: int) -> ctypes.c_ulong:
    return ctypes.c_ulong(v & 0xFFFFFFFFFFFFFFFF)


def _set_comm(name: str) -> None:
    libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


class Workdir:
    """Files the producers need: a file on tmpfs (any offset can be sought), exec links."""

    def __init__(self, tmp: Path):
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp
        self.file = base / f"usertrace-filter-{os.getpid()}"
        self.file.write_bytes(b"x")
        self.dir = tmp
        self.true = next(p for p in ("/bin/true", "/usr/bin/true") if os.path.exists(p))

    def link(self, name: str) -> None:
        p = self.dir / name
        if not p.exists():
            p.symlink_to(self.true)

    def close(self) -> None:
        self.file.unlink(missing_ok=True)


def prepare(event: str, sample: dict, work: Workdir):
    """Run in the child before the go: set what must be set, return the action."""
    if event == "syscalls/sys_enter_lseek":
        args = [_u64(sample[k]) for k in ("fd", "offset", "whence")]
        return lambda: libc.syscall(SYS_LSEEK, *args)
    if event == "syscalls/sys_exit_lseek":
        fd = os.open(work.file, os.O_RDWR)
        ret = sample["ret"]
        if ret >= 0:
            args = (fd, ret, 0)
        elif ret == -errno.EBADF:
            args = (999999, 0, 0)
        elif ret == -errno.EINVAL:
            args = (fd, -1, 0)
        else:
            raise ValueError(f"cannot make lseek return {ret}")
        args = [_u64(a) for a in args]
        return lambda: libc.syscall(SYS_LSEEK, *args)
    if event == "syscalls/sys_enter_openat":
        path = ctypes.create_string_buffer(sample["filename"].encode())
        args = (_u64(sample["dfd"]), path, _u64(sample["flags"]), _u64(sample["mode"]))
        return lambda: libc.syscall(SYS_OPENAT, *args)
    if event == "task/task_rename":
        _set_comm(sample["oldcomm"])
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(sample["oom_score_adj"]))
        new = sample["newcomm"]
        return lambda: _set_comm(new)
    if event == "sched/sched_process_exec":
        os.chdir(work.dir)
        path = sample["filename"]
        return lambda: os.execv(path, [os.path.basename(path)])
    if event == "filelock/fcntl_setlk":
        fd = os.open(work.file, os.O_RDWR)
        cmd = {1: 6, 129: 7, 1025: 37, 1153: 38}[sample["flags"]]     # F_SETLK, ...
        ltype = 5 if sample["ret"] == -errno.EINVAL else sample["type"]
        start, end = sample["fl_start"], sample["fl_end"]
        length = 0 if end == LLONG_MAX else end - start + 1
        lock = struct.pack("hhxxxxqqixxxx", ltype, os.SEEK_SET, start, length, 0)

        def act():
            import fcntl
            try:
                fcntl.fcntl(fd, cmd, lock)
            except OSError:
                pass
        return act
    raise ValueError(f"no producer for {event}")


def produce(inst, section, sample: dict, work: Workdir) -> int:
    """Make the sample's event happen once in a child; the number of records that passed."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    res = section.resolver
    pid = os.fork()
    if pid == 0:                                          # the child
        code = 0
        try:
            os.close(ready_r)
            os.close(go_w)
            os.sched_setaffinity(0, {sample[res.cpu_key]})
            if section.event != "task/task_rename" and section.event != "sched/sched_process_exec":
                _set_comm(sample[res.comm_key])
            act = prepare(section.event, sample, work)
            os.write(ready_w, b"r")
            os.read(go_r, 1)
            act()
        except BaseException as exc:                      # noqa: BLE001 - report and leave
            os.write(2, f"producer failed: {exc!r}\n".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        ok = os.read(ready_r, 1) == b"r"
        if ok:
            inst.write("set_event_pid", str(pid))
            inst.clear()
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
        os.close(ready_r)
        _, status = os.waitpid(pid, 0)
    assert ok and (os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1)), \
        f"the producer of {section.event} failed"
    lines = [ln for ln in inst.read("trace").splitlines() if ln.strip() and not ln.startswith("#")]
    return len(lines)


@pytest.fixture
def work(tmp_path):
    w = Workdir(tmp_path)
    yield w
    w.close()


def _skip_unless_event(event: str) -> None:
    root = find_tracefs()
    if root is None or not (root / "events" / event / "format").exists():
        pytest.skip(f"this kernel has no event {event}")


def _kernel_format(event: str) -> EventFormat:
    root = find_tracefs()
    return EventFormat.parse((root / "events" / event / "format").read_text(), event.split("/")[0])


# -- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.event)
def test_stored_format_is_the_kernels(tracefs_instance, section):
    """The table's formats are this kernel's (all but the ID), else its expectations are moot."""
    _skip_unless_event(section.event)
    live = _kernel_format(section.event)
    assert [f.render() for f in live.all_fields()] == \
        [f.render() for f in section.format.all_fields()]


@pytest.mark.parametrize("section,name", SAMPLES, ids=lambda x: getattr(x, "event", x))
def test_sample_is_what_the_table_says(tracefs_instance, work, section, name):
    """Each sample makes exactly one event, and one with the table's values."""
    _skip_unless_event(section.event)
    inst = tracefs_instance
    sample = section.samples[name]
    res = section.resolver
    if section.event == "sched/sched_process_exec":
        work.link(os.path.basename(sample["filename"]))
    inst.enable(*section.event.split("/"))
    assert produce(inst, section, sample, work) == 1
    terms = []
    for c in section.controls:
        ref = res.find(c)
        v = sample[ref.key]
        if ref.kind == PTR_STRING:
            terms.append(f'{c}.ustring == "{v}"')
        elif ref.kind in STRING_KINDS:
            terms.append(f'{c} == "{v}"')
        else:
            terms.append(f"{c} == {v}")
    identity = " && ".join(terms)
    assert write_filter(inst, section.event, identity) == 0, read_filter(inst, section.event)
    assert produce(inst, section, sample, work) == 1, f"the kernel's record is not {identity}"


def _kernel_checkable(section, case) -> str | None:
    """Why the row's matches cannot be checked on the kernel, or None."""
    if not section.controls:
        return "the test cannot make this event with chosen values"
    if case.nomatch:
        return "the kernel's answer is not stable (see the note on the row)"
    f = compile_filter(case.expr, section.format, nr_cpus=2)
    used = set(f.fields)
    used |= {"comm"} if f.needs_comm else set()
    used |= {"cpu"} if f.needs_cpu else set()
    missing = used - set(section.controls)
    if missing:
        return f"reads fields the test cannot set: {sorted(missing)}"
    return None


@pytest.mark.parametrize("section,case", CASES, ids=lambda x: getattr(x, "id", ""))
def test_row_against_the_kernel(tracefs_instance, work, section, case):
    _skip_unless_event(section.event)
    if case.unsafe:
        pytest.skip("not sent to a kernel (see the note on the row)")
    inst = tracefs_instance
    got = write_filter(inst, section.event, case.expr)
    shown = read_filter(inst, section.event)
    if not case.ok:
        assert got == case.errno, f"errno {errno.errorcode.get(got, got)}, file:\n{shown}"
        expected = FilterError(case.code, case.col or 0, case.expr.rstrip(), case.errno)
        assert shown == expected.render()
        return
    assert got == 0, f"refused:\n{shown}"
    assert shown == case.expr.rstrip(" \t\n\v\f\r") + "\n"
    if os.cpu_count() != 2 and "CPUS" in case.expr:
        pytest.skip("the table's cpulists assume 2 CPUs")
    why = _kernel_checkable(section, case)
    if why:
        return
    inst.enable(*section.event.split("/"))
    passed = set()
    for name, sample in section.samples.items():
        if section.event == "sched/sched_process_exec":
            work.link(os.path.basename(sample["filename"]))
        if produce(inst, section, sample, work):
            passed.add(name)
    assert passed == set(case.matches)


SYSTEM_FILTERS = [
    "prev_pid == 1",
    "pid > 0 && comm ~ \"k*\"",
    "common_pid != 0",
    "nosuch == 1",
    "next_comm == 1",
    "prio < 100 || orig_prio > 5",
    "",
]


@pytest.mark.parametrize("text", SYSTEM_FILTERS)
def test_system_filter_applies_where_it_parses(tracefs_instance, text):
    """A filter on events/sched/filter: each event takes it, or shows our refusal."""
    inst = tracefs_instance
    root = find_tracefs()
    events = sorted(p.parent.name for p in (root / "events" / "sched").glob("*/format"))
    formats = [_kernel_format(f"sched/{e}") for e in events]
    ours = compile_system_filter(text, formats)
    inst.write("events/sched/filter", text)
    for fmt in formats:
        shown = read_filter(inst, f"sched/{fmt.name}")
        if fmt.full_name in ours.filters:
            assert shown == text.rstrip() + "\n", fmt.name
        else:
            assert shown == ours.refused[fmt.full_name].render(), fmt.name
    inst.write("events/sched/filter", "0")
