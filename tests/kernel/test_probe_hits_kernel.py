"""Probe hits against the kernel's uprobe events: the same definitions, the same programs.

Each definition of :data:`DEFINITIONS` is appended to this kernel's ``uprobe_events`` (group
``utprbsrc``, as our parser translates it), enabled in a private tracefs instance, and the
program runs under ``setarch -R`` (no address randomization) and ``trace-cmd extract`` keeps the kernel's
records in a trace.dat, which ``usertrace report`` must print as the kernel's ``trace`` file
does, line for line; then, with the kernel's definitions removed, the same program runs under ``usertrace record --probe ...`` and
``usertrace report`` prints the trace.dat.  The formats must be the kernel's (the ID line
aside) and the lines the same, timestamps, pids and cpus aside: every fetch type, nested
dereferences, strings (and a fault), arrays, bitfields, ``$comm``, ``$stack``, ``@+OFFSET``,
the flags column (``DBZff`` on this kernel, see
:data:`~usertrace.sources.probes.events.RECORD_FLAGS`),
recursion and return probes, a probe on ``endbr64`` (the kernel steps it out of line and maps
its ``[uprobes]`` page; we emulate it and map our page at the same moment, so the library
loaded later by dlopen lands at the same address: ``%ip`` in it shows it), instructions mid-
function run out of line, a library loaded by ``dlopen``, SDT probes with a semaphore, and
Debian's python3.11 ``function__entry``.

``uprobe_events`` is global to the machine: only appends (O_APPEND), only our group, and
every definition is removed in ``finally``.  The kernel's uprobes fire in every process that
maps the file, so the kernel's lines are those of the pid we started.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from usertrace.kernel.tracefs import (Instance, append_uprobe_event, find_tracefs,
                                      why_no_uprobe_events)
from usertrace.sources.probes.events import probe_format
from usertrace.sources.probes.parse import ParseContext, parse_definition, with_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tracedat_tracecmd import trace_cmd_extract  # noqa: E402

pytestmark = pytest.mark.kernel

GROUP = "utprbsrc"
PYTHON = "/usr/bin/python3.11"

# $P: tests/targets/bin/probe_hits, $L: its libprobelib.so, $S: probes_sdt.
DEFINITIONS = {
    "probe_hits": [
        "p:{G}/walk $P:walk s8=+0(%di):s8 u8=+1(%di):u8 s16=+2(%di):s16 u16=+4(%di):u16 "
        "s32=+8(%di):s32 u32=+12(%di):u32 s64=+16(%di):s64 u64=+24(%di):u64 x8=+1(%di):x8 "
        "x16=+4(%di):x16 x32=+12(%di):x32 x64=+24(%di):x64 letter=+32(%di):char "
        "lo=+36(%di):b4@0/32 mid=+36(%di):b3@4/32 hi=+36(%di):b9@7/32 label=+0(%si):string "
        "ulabel=+0(%si):ustring round=%dx:s32",
        "p:{G}/nest $P:walk name=+0(+0(+40(%di))):string codes=+8(+40(%di)):u16[3] "
        "next=+0(+0(+16(+40(%di)))):string deep=+8(+16(+40(%di))):x16[3] tags=+48(%di):string[3] "
        "none=+0(+72(%di)):string nul=+0(+72(%di)):u32 comm=$comm sp=$stack0 imm=\\42 "
        "@counter",
        "p:{G}/fact $P:fact n=%di:s64 ra=$stack0 st=$stack",
        "r:{G}/fact_ret $P:fact rv=$retval:s64 sp=$stack",
        "p:{G}/visit $P:visit depth=%si:s64",
        "p:{G}/visit_rbp $P:visit+5 sp=%sp bp=%bp",
        "p:{G}/visit_load $P:visit+8 r=%di:x64",
        "p:{G}/visit_add $P:visit+11 word=%ax:x64 ip=%ip",
        "r:{G}/visit_ret $P:visit rv=$retval:x64",
        "p:{G}/hello $L:lib_hello x=%di:s64 who=+0(%si):string ip=%ip",
        "r:{G}/hello_ret $L:lib_hello rv=$retval:s64",
    ],
    "probes_sdt": [
        "$S:sdt_utapp:request",
        "p:{G}/request $S:sdt_utapp:request id=%di:s32 path=+0(%si):string",
        "p:{G}/served $S:sdt_utapp:served",
    ],
    "python": [
        "p:{G}/pyentry " + PYTHON + ":sdt_python:function__entry file=+0(%bp):string "
        "func=+0(%r12):string line=%ax:s32",
        "p:{G}/pyreturn " + PYTHON + ":sdt_python:function__return file=+0(%bp):string "
        "func=+0(%r12):string line=%ax:s32",
        PYTHON + ":sdt_python:gc__start",
    ],
}

PROGRAMS = {
    "probe_hits": lambda t: [str(t["P"]), "2"],
    "probes_sdt": lambda t: [str(t["S"])],
    "python": lambda t: [PYTHON, "-S", "-c",
                         "import gc\ndef hello(x):\n return x + 1\n\ndef main():\n"
                         " return [hello(i) for i in range(3)]\nmain()\ngc.collect()\n"],
}

_LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\] (?P<flags>\S+)\s+"
                   r"(?P<ts>\d+\.\d+): (?P<text>.*)$")


def _targets() -> dict[str, Path]:
    from conftest import build_library, build_target
    build_library("probe_lib", "libprobelib.so")
    return {"P": build_target("probe_hits"),
            "L": build_target("probe_hits").parent / "libprobelib.so",
            "S": build_target("probes_sdt")}


def _definitions(which: str, targets: dict[str, Path]) -> list[str]:
    out = []
    for text in DEFINITIONS[which]:
        text = text.replace("{G}", GROUP)
        for k, v in targets.items():
            text = text.replace(f"${k}", str(v))
        if not text.startswith(("p:", "r:")):
            # a whole SDT definition (arguments from the note), renamed into our group
            d = parse_definition(text, ParseContext())
            text = str(with_name(d, GROUP, f"{d.group}_{d.event}"))
        out.append(text)
    return out


def _lines(text: str, pid: int | None = None) -> list[tuple[str, str, str]]:
    """(comm, flags, event text) of each line of a trace text (of ``pid`` when given)."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and (pid is None or int(m["pid"]) == pid):
            out.append((m["comm"], m["flags"], m["text"]))
    return out


def _environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERTRACE")}
    env["PYTHONHASHSEED"] = "0"
    return env


@pytest.mark.parametrize("which", list(DEFINITIONS))
def test_the_same_lines_as_the_kernel(which, tmp_path):
    reason = why_no_uprobe_events()
    if reason:
        pytest.skip(reason)
    root = find_tracefs()
    if which == "python" and not os.path.exists(PYTHON):
        pytest.skip(f"no {PYTHON} (Debian's python3.11 carries the SDT notes)")
    if which == "probes_sdt" and not any(os.path.exists(p) for p in (
            "/usr/include/sys/sdt.h", "/usr/include/x86_64-linux-gnu/sys/sdt.h")):
        pytest.skip("no <sys/sdt.h> (apt-get install systemtap-sdt-dev)")
    targets = _targets()
    texts = _definitions(which, targets)
    ctx = ParseContext()
    defs = [parse_definition(t, ctx) for t in texts]
    argv = PROGRAMS[which](targets)
    # One environment for both sides (the stack addresses depend on it).
    env = dict(_environ(), PYTHONPATH=os.environ["PYTHONPATH"],
               USERTRACE_SESSION=str(tmp_path / "session"))

    # The kernel's side: defined, enabled in a private instance, the program run, removed.
    defined = []
    try:
        for d in defs:
            append_uprobe_event(str(d), root)
            defined.append(d)
        formats = {d.full_name: (root / "events" / d.group / d.event / "format").read_text()
                   for d in defs}
        with Instance() as inst:
            inst.enable(GROUP)
            proc = subprocess.Popen(["setarch", "-R", *argv], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            stdout, stderr = proc.communicate(timeout=120)
            inst.disable(GROUP)
            kernel_text = inst.read("trace")
            kernel_dat = tmp_path / "k.dat"
            if shutil.which("trace-cmd"):       # the kernel's records, for our report
                trace_cmd_extract(inst, kernel_dat, tmp_path / "extract",
                                  events=[(d.group, d.event) for d in defs])
    finally:
        for d in reversed(defined):
            try:
                append_uprobe_event(f"-:{d.group}/{d.event}", root)
            except OSError:
                pass
    assert proc.returncode == 0, stderr
    kernel = _lines(kernel_text, proc.pid)

    strip_id = lambda t: re.sub(r"^ID: \d+$", "ID:", t, flags=re.M)  # noqa: E731
    for d in defs:
        assert strip_id(probe_format(d).render()) == strip_id(formats[d.full_name])

    # Ours: the same definitions for one run, the same program.
    out = tmp_path / "u.dat"
    ours_env = env
    probes = [a for t in texts for a in ("--probe", t)]
    run = subprocess.run([sys.executable, "-m", "usertrace", "record", "-o", str(out), *probes,
                          "--", "setarch", "-R", *argv], env=ours_env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == stdout                           # the program did the same
    report = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i", str(out)],
                            env=ours_env, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    ours = _lines(report.stdout)
    assert [t for _, _, t in ours] == [t for _, _, t in kernel]
    # The kernel's own records, read back from trace-cmd's trace.dat: the kernel's lines, whole.
    if kernel_dat.exists():
        theirs = subprocess.run([sys.executable, "-m", "usertrace", "report", "-i",
                                 str(kernel_dat)], env=env, capture_output=True, text=True,
                                timeout=120)
        assert theirs.returncode == 0, theirs.stderr
        body = [ln for ln in kernel_text.splitlines() if not ln.startswith("#")]
        assert [ln for ln in theirs.stdout.splitlines() if not ln.startswith("#")] == body
    assert [c for c, _, _ in ours] == [c for c, _, _ in kernel]
    # The flags: the kernel's record context is taken one level below the preemptible
    # handler's (RECORD_FLAGS explains it), so its flag byte is whatever was set less one: 0xff
    # ("DBZ") unless a reschedule was pending at that moment.  The preempt count is 0xff always.
    assert {f for _, f, _ in ours} == {"DBZff"}
    assert {f[3:] for _, f, _ in kernel} == {"ff"}
    assert [f for _, f, _ in kernel].count("DBZff") >= len(kernel) * 0.8
    assert len(kernel) >= len(defs)
