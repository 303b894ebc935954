"""Our syscall event formats and trace text against the running kernel's (the oracle).

Every ``syscalls`` event the kernel has: our ``format`` text equals the kernel's but for the
``ID:`` line.  And the kernel's ``trace`` lines for a program with known arguments equal what
render_enter/render_exit make of the same values.
"""

import re
import subprocess
from pathlib import Path

import pytest

from usertrace.kernel.tracefs import find_tracefs, why_no_tracefs
from usertrace.sources.syscalls import events as ev
from usertrace.sources.syscalls.table import SyscallTable

pytestmark = pytest.mark.kernel


def _syscalls_dir() -> Path:
    reason = why_no_tracefs()
    if reason:
        pytest.skip(reason)
    d = find_tracefs() / "events" / "syscalls"
    if not d.is_dir():
        pytest.skip("this kernel has no syscall events (CONFIG_FTRACE_SYSCALLS)")
    return d


def _without_id(text: str) -> str:
    return re.sub(r"^ID: \d+$", "ID:", text, count=1, flags=re.M)


def test_every_kernel_syscall_format_equals_ours():
    d = _syscalls_dir()
    table = SyscallTable.for_arch("x86_64")
    kernel_events = sorted(p.name for p in d.iterdir() if p.is_dir())
    assert kernel_events, "no syscall events"
    mismatches = []
    for name in kernel_events:
        base = ev.event_base(name)
        assert base is not None, name
        event, is_enter = base
        sc = table.by_event.get(event)
        if sc is None:
            mismatches.append(f"{name}: not in our table")
            continue
        ours = ev.enter_format(event, sc.args) if is_enter else ev.exit_format(event)
        kernel = (d / name / "format").read_text()
        if _without_id(ours.render()) != _without_id(kernel):
            mismatches.append(name)
    assert not mismatches, f"{len(mismatches)} of {len(kernel_events)} differ: {mismatches[:10]}"
    # And the other way round: every event of ours exists in the kernel.
    ours = {e.enter.name for e in ev.build_events()} | {e.exit.name for e in ev.build_events()}
    assert ours == set(kernel_events)


def _kernel_lines(inst, target_path, events):
    for e in events:
        inst.enable("syscalls", e)
    proc = subprocess.Popen([str(target_path), "0"], stdout=subprocess.DEVNULL)
    # The instance records everyone: keep this program's lines (comm-pid prefix).
    proc.wait()
    for e in events:
        inst.disable("syscalls", e)
    text = inst.read("trace")
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"\s*(.+)-(\d+)\s+\[\d+\] \S+\s+[\d.]+: (.*)$", line)
        if m and int(m.group(2)) == proc.pid:
            out.append(m.group(3))
    return out


def test_trace_text_equals_the_kernels(tracefs_instance, target):
    """sc_seq makes calls with known arguments; the kernel's trace lines are ours."""
    exe = target("sc_seq")
    lines = _kernel_lines(tracefs_instance, exe,
                          ["sys_enter_close", "sys_exit_close", "sys_enter_getppid",
                           "sys_exit_lseek", "sys_enter_lseek"])
    assert ev.render_enter("close", ["fd"], [12345]) in lines
    assert ev.render_exit("close", -9) in lines
    assert ev.render_enter("close", ["fd"], [2 ** 64 - 1]) in lines
    assert ev.render_enter("getppid", [], []) in lines
    assert any(re.fullmatch(r"sys_lseek\(fd: 3, offset: 7, whence: 0\)", x) for x in lines), lines
    assert ev.render_exit("lseek", 0) in lines       # /dev/null seeks to 0 whatever asked


def test_no_strings_records_and_shows_exactly_the_kernels_formats(tmp_path, target):
    """``record --no-strings`` writes every syscall format into the trace.dat as the running
    kernel has it, and ``format --no-strings`` prints it; without --no-strings the formats
    carry the newest kernels' user data, and differ where (and only where) there is some."""
    import io

    from usertrace.buffer.tracedat import TraceDatReader
    from usertrace.catalog import known_events
    from usertrace.cli.context import Context
    from usertrace.cli.main import main
    from usertrace.sources.syscalls import user_data as ud

    d = _syscalls_dir()
    kernel = {p.name: _without_id((p / "format").read_text()) for p in d.iterdir() if p.is_dir()}
    exe = str(target("sc_seq"))
    for strings in (False, True):
        dat = tmp_path / f"{strings}.dat"
        ctx = Context(stdout=io.StringIO(), stderr=io.StringIO(), env={})
        argv = ["record", "-o", str(dat)] + ([] if strings else ["--no-strings"])
        assert main(argv + ["--", exe, "0"], ctx) == 0, ctx.stderr.getvalue()
        reader = TraceDatReader(str(dat))
        recorded = {f.name: _without_id(f.render()) for f in reader.formats_by_id().values()
                    if f.system == "syscalls"}
        reader.close()
        assert set(recorded) == set(kernel)
        differ = sorted(n for n in kernel if recorded[n] != kernel[n])
        if not strings:
            assert differ == []
        else:
            with_data = sorted(n for n in recorded if "__data_loc char[] __" in recorded[n])
            assert differ == with_data and len(with_data) > 80
            assert "sys_enter_openat" in with_data and "sys_exit_read" in with_data
            assert all(ud.val_fields(f) for f in known_events(syscall_data=True)
                       if f.name in with_data)
    for name in ("sys_enter_openat", "sys_exit_read", "sys_enter_write", "sys_enter_getppid"):
        out = io.StringIO()
        assert main(["format", "--no-strings", f"syscalls:{name}"],
                    Context(stdout=out, stderr=io.StringIO(), env={})) == 0
        assert _without_id(out.getvalue()) == kernel[name]


def test_the_task_events_formats_equal_the_kernels():
    """The ptrace backend's task events (sources/tasks) are laid out and printed as the
    running kernel's, byte for byte but the ID line."""
    from usertrace.sources.tasks.events import task_formats

    reason = why_no_tracefs()
    if reason:
        pytest.skip(reason)
    for fmt in task_formats():
        path = find_tracefs() / "events" / fmt.system / fmt.name / "format"
        if not path.exists():
            pytest.skip(f"this kernel has no {fmt.full_name}")
        kernel = re.sub(r"(?m)^ID: \d+$", "ID: 0", path.read_text())
        assert fmt.render() == kernel
