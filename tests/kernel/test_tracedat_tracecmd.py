"""trace-cmd's own trace.dat, made from the kernel with ``trace-cmd extract``, read by our reader.

``trace-cmd record`` crashes on this kernel (the function tracer's files answer EPERM), but
``trace-cmd extract`` reads an instance's buffer as it is: the test enables the getppid syscall
events in a private instance, runs getppid in this process (cpu 0) and in a child (cpu 1),
extracts, and compares every event our reader decodes with ``trace-cmd report -t -R``.

This module also makes the golden fixtures of tests/data/tracedat/ (run as root)::

    python tests/kernel/test_tracedat_tracecmd.py --regenerate
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "unit"))  # the page and report helpers

from test_tracedat_pages import decode_trace, parse_report  # noqa: E402

from usertrace.buffer.tracedat import TraceDatError, TraceDatReader  # noqa: E402

GOLDEN = TESTS / "data" / "tracedat"
EVENTS = [("syscalls", "sys_enter_getppid"), ("syscalls", "sys_exit_getppid")]
PARENT_CALLS, CHILD_CALLS = 3, 4

try:
    import zstandard  # noqa: F401
    HAVE_ZSTD = True
except ImportError:
    HAVE_ZSTD = False


def stage_events_dir(tracefs: Path, dest: Path, events) -> Path:
    """A copy of ``events/`` with only header_page, header_event, ftrace/print and ``events``.

    trace-cmd 3.1.6 dies of SIGSEGV when ``events/`` holds no ftrace event, hence ftrace/print.
    """
    src = tracefs / "events"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("header_page", "header_event"):
        (dest / name).write_bytes((src / name).read_bytes())
    for system, event in [("ftrace", "print"), *events]:
        d = dest / system / event
        d.mkdir(parents=True, exist_ok=True)
        (d / "format").write_bytes((src / system / event / "format").read_bytes())
    return dest


def trace_cmd_extract(instance, out: Path, work: Path, *extra: str, events=None) -> None:
    """``trace-cmd extract -k -B <instance> -o out`` and ``extra`` options.

    ``-k`` keeps the instance as it is (without it extract disables tracing and resets the
    events of the instances it touched).  It runs in a private mount namespace where
    ``events/`` shows only our events and /proc/kallsyms, printk_formats and kptr_restrict are
    /dev/null: the file stays a few KB (not 7 MB of kallsyms and 101 event systems) and
    extract does not flip the machine's kptr_restrict.  Without ``unshare``, a plain extract.
    """
    cmd = ["trace-cmd", "extract", "-k", "-B", instance.name, "-o", str(out), *extra]
    if shutil.which("unshare"):
        staged = stage_events_dir(instance.root, work / "events", events or EVENTS)
        binds = [(staged, instance.root / "events"), ("/dev/null", "/proc/kallsyms"),
                 ("/dev/null", instance.root / "printk_formats"),
                 ("/dev/null", "/proc/sys/kernel/kptr_restrict")]
        script = " && ".join(f"mount --bind '{a}' '{b}'" for a, b in binds) + ' && exec "$@"'
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")


def trace_cmd_convert(src: Path, out: Path, *options: str) -> None:
    """``trace-cmd convert``: the same trace in another version or compression."""
    r = subprocess.run(["trace-cmd", "convert", *options, "-i", str(src), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"trace-cmd convert: exit {r.returncode}\n{r.stderr}")


def trace_cmd_report(path: Path) -> str:
    r = subprocess.run(["trace-cmd", "report", "-t", "-R", "-i", str(path)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"trace-cmd report: exit {r.returncode}\n{r.stderr}")
    return r.stdout


def getppid_workload() -> int:
    """getppid PARENT_CALLS times here on cpu 0, CHILD_CALLS times in a child on cpu 1."""
    cpus = sorted(os.sched_getaffinity(0))
    saved = set(cpus)
    other = cpus[1] if len(cpus) > 1 else cpus[0]
    child_code = (f"import os\nos.sched_setaffinity(0, {{{other}}})\n"
                  f"for _ in range({CHILD_CALLS}): os.getppid()\n")
    os.sched_setaffinity(0, {cpus[0]})
    try:
        for _ in range(PARENT_CALLS):
            os.getppid()
        child = subprocess.Popen([sys.executable, "-c", child_code])
        child.wait()
    finally:
        os.sched_setaffinity(0, saved)
    return child.pid


def record_getppid(instance, work: Path) -> dict:
    """Enable the events, run the workload, stop the instance; the facts to check."""
    for system, event in EVENTS:
        instance.enable(system, event)
    child = getppid_workload()
    instance.write("tracing_on", "0")
    return {"parent_pid": os.getpid(), "parent_ppid": os.getppid(), "child_pid": child,
            "parent_calls": PARENT_CALLS, "child_calls": CHILD_CALLS, "instance": instance.name}


def check_trace(path: Path, facts: dict, report_text: str) -> None:
    """Our reader against trace-cmd's report and against what the workload did."""
    with TraceDatReader(path) as r:
        ours = decode_trace(r)
        by_name = {f.name: f for fs in r.event_formats.values() for f in fs}
        cmdlines = r.cmdlines
        assert r.format_errors == []
        assert r.has_buffer(facts["instance"])
        assert r.page_size == os.sysconf("SC_PAGE_SIZE")
        texts = r.event_texts["syscalls"]
    theirs, comms = parse_report(report_text, by_name)
    assert ours == theirs
    assert len(ours) > 0
    assert {e.buffer for e in ours} == {facts["instance"]}
    for pid, comm in comms.items():
        assert cmdlines.get(pid, "<...>") == comm
    child = [e for e in ours if e.pid == facts["child_pid"]]
    parent = [e for e in ours if e.pid == facts["parent_pid"]]
    assert [e.event for e in child] == ["sys_enter_getppid", "sys_exit_getppid"] * facts["child_calls"]
    assert {dict(e.fields)["ret"] for e in child if e.event == "sys_exit_getppid"} == {facts["parent_pid"]}
    assert sum(e.event == "sys_exit_getppid" for e in parent) >= facts["parent_calls"]
    assert {dict(e.fields)["ret"] for e in parent if e.event == "sys_exit_getppid"} == {facts["parent_ppid"]}
    assert {dict(e.fields)["__syscall_nr"] for e in ours} == {110}
    assert len(texts) == 2 and all(t.startswith("name: sys_") for t in texts)


needs_trace_cmd = pytest.mark.skipif(shutil.which("trace-cmd") is None,
                                     reason="trace-cmd is not installed (apt-get install trace-cmd)")


@pytest.mark.kernel
@needs_trace_cmd
@pytest.mark.parametrize("variant", ["v7", "v6", "v7-zstd"])
def test_read_what_trace_cmd_extracted(tracefs_instance, tmp_path, variant):
    facts = record_getppid(tracefs_instance, tmp_path)
    path = tmp_path / "trace.dat"
    if variant == "v7-zstd":
        trace_cmd_extract(tracefs_instance, path, tmp_path)  # trace-cmd's default compression
    else:
        trace_cmd_extract(tracefs_instance, tmp_path / "v7.dat", tmp_path, "--compression", "none")
        if variant == "v6":
            trace_cmd_convert(tmp_path / "v7.dat", path, "--file-version", "6", "--compression", "none")
        else:
            path = tmp_path / "v7.dat"
    report_text = trace_cmd_report(path)
    if variant == "v7-zstd" and not HAVE_ZSTD:
        with pytest.raises(TraceDatError, match="zstandard"):
            TraceDatReader(path)
        return
    check_trace(path, facts, report_text)
    with TraceDatReader(path) as r:
        assert r.version == (6 if variant == "v6" else 7)
        assert r.clock == tracefs_instance.read("trace_clock").split("[")[1].split("]")[0]


# -- the golden fixtures -----------------------------------------------------------------------

def regenerate(dest: Path = GOLDEN) -> None:
    """Remake getppid_v7.dat, getppid_v6.dat, getppid_v7_zstd.dat, getppid.report, getppid.json."""
    import tempfile

    from usertrace.kernel.tracefs import Instance, why_no_tracefs

    reason = why_no_tracefs()
    if reason:
        sys.exit(f"cannot regenerate: {reason}")
    with tempfile.TemporaryDirectory() as tmp, Instance(name="usertrace-golden") as inst:
        work = Path(tmp)
        facts = record_getppid(inst, work)
        trace_cmd_extract(inst, dest / "getppid_v7.dat", work, "--compression", "none")
    # extract consumes the buffer: the other files are conversions of the first
    trace_cmd_convert(dest / "getppid_v7.dat", dest / "getppid_v7_zstd.dat", "--compression", "zstd")
    trace_cmd_convert(dest / "getppid_v7.dat", dest / "getppid_v6.dat", "--file-version", "6",
                      "--compression", "none")
    report_text = trace_cmd_report(dest / "getppid_v7.dat")
    (dest / "getppid.report").write_text(report_text)
    version = subprocess.run(["trace-cmd", "--version"], capture_output=True, text=True).stdout.split()
    facts["trace_cmd"] = " ".join(version[:3])
    facts["kernel"] = os.uname().release
    (dest / "getppid.json").write_text(json.dumps(facts, indent=2) + "\n")
    check_trace(dest / "getppid_v7.dat", facts, report_text)
    check_trace(dest / "getppid_v6.dat", facts, trace_cmd_report(dest / "getppid_v6.dat"))
    print(f"wrote the golden trace.dat files to {dest}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: {sys.argv[0]} --regenerate   (as root, with trace-cmd and a tracefs)")
    regenerate()
