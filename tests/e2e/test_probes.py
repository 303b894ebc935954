"""Probe events end to end: ``usertrace record/stream/stat/report --probe`` (and the
session's definitions) on C targets, checked against what the targets hold.

tests/targets/probe_hits.c holds a record with a field of every integer type (the values
are in the C source), strings, arrays, nested pointers, a recursive ``fact``, ``visit`` in
assembly (endbr64 first, then instructions run out of line) and a library loaded by dlopen;
probed.c has ``add_one`` (called in a loop by N threads) and a ``wait`` mode to attach to.
The same lines, against the kernel's uprobes, are tests/kernel/test_probe_hits_kernel.py.
Every run gets a private session directory (``USERTRACE_SESSION``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _waiting import Waiting, load_base, symbol, text

SRC = str(Path(__file__).resolve().parents[2] / "src")
PYTHON = "/usr/bin/python3.11"
_LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\] (?P<flags>\S+)\s+"
                   r"(?P<ts>\d+\.\d+): (?P<event>\w+)(?:: |(?=\())(?P<text>.*)$")


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "PYTHONPATH": SRC, "USERTRACE_SESSION": str(tmp_path / "session")}


@pytest.fixture
def hits_prog():
    from conftest import build_library, build_target
    build_library("probe_lib", "libprobelib.so")
    return build_target("probe_hits")


def usertrace(env, *args, check=True, timeout=300):
    r = subprocess.run([sys.executable, "-m", "usertrace", *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    return r


def events(text):
    """(event, text, pid, ts) of each trace line."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            out.append((m["event"], m["text"], int(m["pid"]), float(m["ts"])))
    return out


def stream(env, probes, argv, *extra):
    args = [a for p in probes for a in ("--probe", p)]
    r = usertrace(env, "stream", *args, *extra, "--", *argv)
    return r, events(r.stdout)


# -- what a hit records -----------------------------------------------------------------------

def test_every_fetch_type_nested_pointers_strings_arrays_bitfields(env, hits_prog):
    r, evs = stream(env, [
        f"p:utprb/walk {hits_prog}:walk s8=+0(%di):s8 u8=+1(%di):u8 s16=+2(%di):s16 "
        "u16=+4(%di):u16 s32=+8(%di):s32 u32=+12(%di):u32 s64=+16(%di):s64 u64=+24(%di):u64 "
        "x8=+1(%di):x8 x64=+24(%di):x64 letter=+32(%di):char lo=+36(%di):b4@0/32 "
        "mid=+36(%di):b3@4/32 hi=+36(%di):b9@7/32 label=+0(%si):string round=%dx:s32",
        f"p:utprb/nest {hits_prog}:walk name=+0(+0(+40(%di))):string "
        "codes=+8(+40(%di)):u16[3] next=+0(+0(+16(+40(%di)))):string "
        "deep=+8(+16(+40(%di))):x16[3] tags=+48(%di):string[3] none=+0(+72(%di)):string "
        "comm=$comm imm=\\42 a0 a2"], [hits_prog, 2])
    walk = [t for e, t, _, _ in evs if e == "walk"]
    assert [re.sub(r"^\(0x[0-9a-f]+\) ", "", t) for t in walk] == [
        "s8=-5 u8=250 s16=-1234 u16=54321 s32=-100000 u32=4000000000 s64=-9000000000 "
        "u64=18000000000000000000 x8=0xfa x64=0xf9ccd8a1c5080000 letter='Q' lo=5 mid=3 "
        f"hi=303 label=\"{label}\" round={i}" for i, label in enumerate(("first", "again"))]
    nest = [t for e, t, _, _ in evs if e == "nest"]
    assert len(nest) == 2
    assert nest[0].split(") ", 1)[1].startswith(
        'name="shallow" codes={1,2,65535} next="deep" deep={0x7,0x8,0x9} '
        'tags={"alpha","beta",""} none=(fault) comm="probe_hits" imm=0x2a a0=0x')
    assert nest[0].endswith(" a2=0x0") and nest[1].endswith(" a2=0x1")
    # the kernel's order at one place: the definition given last first
    assert [e for e, _, _, _ in evs if e in ("walk", "nest")] == ["nest", "walk"] * 2


def test_recursion_and_return_probes(env, hits_prog):
    r, evs = stream(env, [f"p:utprb/fact {hits_prog}:fact n=%di:s64",
                          f"r:utprb/fact_ret {hits_prog}:fact rv=$retval:s64"], [hits_prog, 1])
    got = [(e, t.split(") ", 1)[1]) for e, t, _, _ in evs]
    assert got == [("fact", f"n={n}") for n in (5, 4, 3, 2, 1)] + \
        [("fact_ret", f"rv={v}") for v in (1, 2, 6, 24, 120)]
    rets = [re.match(r"\((0x[0-9a-f]+) <- (0x[0-9a-f]+)\)", t).groups()
            for e, t, _, _ in evs if e == "fact_ret"]
    funcs = {f for _, f in rets}
    entries = {re.match(r"\((0x[0-9a-f]+)\)", t)[1] for e, t, _, _ in evs if e == "fact"}
    assert funcs == entries                   # (return address <- the function)
    assert len({r for r, _ in rets[:4]}) == 1 and rets[4][0] != rets[0][0]   # into fact, main


def test_endbr64_and_instructions_mid_function_the_program_unharmed(env, hits_prog):
    plain = subprocess.run([str(hits_prog), "3"], capture_output=True, text=True, check=True)
    r, evs = stream(env, [f"p:utprb/visit {hits_prog}:visit depth=%si:s64",
                          f"p:utprb/rbp {hits_prog}:visit+5 bp=%bp",
                          f"p:utprb/load {hits_prog}:visit+8 r=%di",
                          f"p:utprb/add {hits_prog}:visit+11 word=%ax",
                          f"r:utprb/visit_ret {hits_prog}:visit rv=$retval"], [hits_prog, 3])
    assert [e for e, _, _, _ in evs] == ["visit", "rbp", "load", "add", "visit_ret"] * 3
    words = {t.split("word=")[1] for e, t, _, _ in evs if e == "add"}
    assert words == {"0xd431fb2efafb"}        # s8, u8, s16, u16 of the record, little-endian
    assert [t.split("rv=")[1] for e, t, _, _ in evs if e == "visit_ret"] == \
        ["0xd431fb2efafb", "0xd431fb2efafc", "0xd431fb2efafd"]
    assert r.stdout.splitlines()[-1] == plain.stdout.strip()    # the same checksum


def test_a_library_loaded_by_dlopen(env, hits_prog):
    lib = hits_prog.parent / "libprobelib.so"
    r, evs = stream(env, [f"p:utprb/hello {lib}:lib_hello x=%di:s64 who=+0(%si):string",
                          f"r:utprb/hello_ret {lib}:lib_hello rv=$retval:s64"], [hits_prog, 1])
    got = [(e, t.split(") ", 1)[1]) for e, t, _, _ in evs]
    assert got == [("hello", 'x=41 who="from main"'), ("hello_ret", "rv=51"),
                   ("hello", 'x=42 who="again"'), ("hello_ret", "rv=49")]


def test_a_filter_on_probe_fields_and_json_values(env, hits_prog, tmp_path):
    dat = tmp_path / "f.dat"
    usertrace(env, "record", "-o", dat, "--probe", f"p:utprb/fact {hits_prog}:fact n=%di:s64",
              "--probe", f"p:utprb/nest {hits_prog}:walk none=+0(+72(%di)):string "
              "label=+0(%si):string", "-e", "utprb:fact", "-f", "n >= 4", "--", hits_prog, 2)
    r = usertrace(env, "report", "-i", dat, "--json")
    evs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["fields"]["n"] for e in evs if e["event"] == "fact"] == [5, 4, 5, 4]
    nest = [e["fields"] for e in evs if e["event"] == "nest"]
    assert [(f["none"], f["label"]) for f in nest] == [(None, "first"), (None, "again")]
    assert all(e["system"] == "utprb" and e["fields"]["__probe_ip"] > 0 for e in evs)
    text = usertrace(env, "report", "-i", dat).stdout
    assert [t for e, t, _, _ in events(text) if e == "nest"][0].endswith(
        ' none=(fault) label="first"')
    # a string field, with a glob, in the live stream
    r = usertrace(env, "stream", "--probe", f"p:utprb/w {hits_prog}:walk label=+0(%si):string "
                  "round=%dx:s32", "-e", "utprb:w", "-f", 'label ~ "ag*"', "--", hits_prog, 3)
    assert [t.split(") ", 1)[1] for _, t, _, _ in events(r.stdout)] == [
        'label="again" round=1', 'label="again" round=2']


def test_probes_with_syscall_events_in_time_order(env, hits_prog, tmp_path):
    dat = tmp_path / "s.dat"
    usertrace(env, "record", "-o", dat, "-e", "syscalls:sys_enter_write", "--probe",
              f"p:utprb/fact {hits_prog}:fact n=%di:s64", "--", hits_prog, 1)
    evs = events(usertrace(env, "report", "-i", dat).stdout)
    names = [e for e, _, _, _ in evs]
    assert names == ["fact"] * 5 + ["sys_write"]           # the checksum is printed last
    assert [ts for _, _, _, ts in evs] == sorted(ts for _, _, _, ts in evs)


def test_stat_counts_hits(env, hits_prog):
    r = usertrace(env, "stat", "--probe", f"p:utprb/fact {hits_prog}:fact",
                  "--probe", f"r:utprb/ret {hits_prog}:fact", "--", hits_prog, 3)
    rows = dict(reversed(line.split()) for line in r.stderr.splitlines()
                if re.match(r"^\s*\d+ utprb:", line))
    assert rows == {"utprb:fact": "15", "utprb:ret": "15"}


# -- processes --------------------------------------------------------------------------------

def test_eight_threads_one_probe_every_hit_counted(env, target):
    probed = target("probed")
    n = 100_000
    r = usertrace(env, "stat", "--probe", f"p:utprb/add {probed}:add_one x=%di:s64",
                  "--", probed, n, "threads", 8, timeout=1800)
    assert re.search(rf"^\s*{8 * n} utprb:add$", r.stderr, re.M), r.stderr
    assert r.stdout.strip() == str(8 * sum(i + 1 for i in range(n)))


def test_fork_children_and_programs_run_by_exec(env, target, hits_prog):
    probed = target("probed")
    r, evs = stream(env, [f"p:utprb/add {probed}:add_one+4 x=%di:s64"], [probed, 50, "fork"])
    pids = {p for e, _, p, _ in evs}
    assert len(evs) == 100 and len(pids) == 2               # the parent's and the child's
    assert f"child {sum(i + 1 for i in range(50))}" in r.stdout
    r, evs = stream(env, [f"p:utprb/fact {hits_prog}:fact"],
                    ["/bin/sh", "-c", f"{hits_prog} 1 && {hits_prog} 1"])
    assert len(evs) == 10 and len({p for _, _, p, _ in evs}) == 2


def test_attach_and_detach_leave_the_text_as_it_was(env, target):
    probed = target("probed")
    add_one, depth, run = (symbol(probed, s) for s in ("add_one", "depth", "run"))
    # a definition of the session, not enabled: it must have no breakpoint
    usertrace(env, "probe", f"p:utprbs/run {probed}:run")
    tracer = None
    with Waiting([probed, "wait", "400000", "threads", "2"]) as prog:
        try:
            assert prog.first == "ready\n"
            base = load_base(prog.pid, probed)
            before = {a: text(prog.pid, base + a, 16) for a in (add_one, depth, run)}
            tracer = subprocess.Popen(
                [sys.executable, "-m", "usertrace", "stream", "-P", str(prog.pid),
                 "--probe", f"p:utprb/add {probed}:add_one+4 x=%di:s64",
                 "--probe", f"r:utprb/depth {probed}:depth rv=$retval:s64"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            while text(prog.pid, base + depth, 1) != b"\xcc":     # placed
                assert time.monotonic() < deadline and tracer.poll() is None
                time.sleep(0.05)
            assert text(prog.pid, base + add_one + 4, 1) == b"\xcc"
            assert text(prog.pid, base + run, 16) == before[run]   # disabled: untouched
            prog.say("go")
            for _ in range(200):                                    # hits, returns pending
                assert tracer.stdout.readline()
            tracer.send_signal(signal.SIGINT)
            out, err = tracer.communicate(timeout=120)
            assert tracer.returncode == 0, err
            assert "Traceback" not in err
            assert "TracerPid:\t0" in Path(f"/proc/{prog.pid}/status").read_text()
            for a, t in before.items():
                assert text(prog.pid, base + a, 16) == t            # the text as it was
            # every return address was put back: the threads' sums are right
            assert prog.line() == f"{2 * sum(i + 1 for i in range(400000))}\n"
            assert prog.end() == 0
        finally:
            if tracer is not None and tracer.poll() is None:
                tracer.kill()


def test_a_binary_replaced_on_disk_is_not_probed_in_the_old_image(env, target, tmp_path):
    """As the kernel's uprobe, a definition holds the file it names now (its inode): a process
    still running the replaced program is left alone, a new one is probed."""
    exe = tmp_path / "probed"
    exe.write_bytes(target("probed").read_bytes())
    exe.chmod(0o755)
    with Waiting([exe, "wait", "1000"]) as old:
        assert old.first == "ready\n"
        new = tmp_path / "probed.new"
        new.write_bytes(exe.read_bytes())
        new.chmod(0o755)
        os.replace(new, exe)                                 # another inode at the same path
        add_one = symbol(exe, "add_one")
        base = load_base(old.pid)                            # the mapping of the deleted file
        before = text(old.pid, base + add_one, 16)
        tracer = subprocess.Popen(
            [sys.executable, "-m", "usertrace", "stream", "-P", str(old.pid),
             "--probe", f"p:utprb/add {exe}:add_one+4"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert text(old.pid, base + add_one, 16) == before
        old.say("go")
        assert old.line() == f"{sum(i + 1 for i in range(1000))}\n"
        tracer.send_signal(signal.SIGINT)
        out, err = tracer.communicate(timeout=60)
        assert tracer.returncode == 0 and "Traceback" not in err, err
        assert out == ""
        assert old.end() == 0
    r, evs = stream(env, [f"p:utprb/add {exe}:add_one+4"], [exe, 10])
    assert len(evs) == 10


# -- SDT probes -------------------------------------------------------------------------------

needs_sdt = pytest.mark.skipif(
    not any(os.path.exists(p) for p in ("/usr/include/sys/sdt.h",
                                        "/usr/include/x86_64-linux-gnu/sys/sdt.h")),
    reason="no <sys/sdt.h> (apt-get install systemtap-sdt-dev)")


@needs_sdt
def test_sdt_probes_with_a_semaphore(env, target):
    sdt = target("probes_sdt")
    # alone: named and typed from the note; the guarded request fires only while the
    # semaphore is raised
    r, evs = stream(env, [f"{sdt}:sdt_utapp:request",
                          f"p:utprb/req {sdt}:sdt_utapp:request id=%di:s32 "
                          "path=+0(%si):string"], [sdt])
    got = [(e, t.split(") ", 1)[1]) for e, t, _, _ in evs]
    assert [g for g in got if g[0] == "req"] == [("req", 'id=1 path="/index.html"'),
                                                 ("req", 'id=2 path="/about"')]
    reqs = [t for e, t in got if e == "request"]
    assert len(reqs) == 2 and reqs[0].startswith("arg1=1 arg2=") and reqs[0].endswith("arg3=1234")
    assert reqs[1].endswith(" arg3=-5")
    r, evs = stream(env, [f"{sdt}:sdt_utapp:served"], [sdt])
    assert [e for e, _, _, _ in evs] == ["served", "served"]


@needs_sdt
def test_the_semaphore_is_raised_while_attached_and_lowered_at_detach(env, target):
    sdt = target("probes_sdt")
    tracer = None
    with Waiting([sdt, "wait"]) as prog:
        try:
            sem = int(prog.first, 16)
            semaphore = lambda: int.from_bytes(text(prog.pid, sem, 2), "little")  # noqa: E731
            assert semaphore() == 0
            tracer = subprocess.Popen([sys.executable, "-m", "usertrace", "stream", "-P",
                                       str(prog.pid), "--probe", f"{sdt}:sdt_utapp:request"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            deadline = time.monotonic() + 60
            while semaphore() != 1:
                assert time.monotonic() < deadline and tracer.poll() is None
                time.sleep(0.05)
            prog.say("serve")
            assert prog.line() == "1\n"
            line = tracer.stdout.readline()
            assert " request: (0x" in line and \
                line.endswith(" arg1=3 arg2=" + line.split("arg2=")[1])
            tracer.send_signal(signal.SIGINT)
            _, err = tracer.communicate(timeout=60)
            assert tracer.returncode == 0, err
            assert semaphore() == 0                         # lowered when we let go
            prog.say("serve")
            assert prog.line() == "2\n"                    # runs on, unharmed
        finally:
            if tracer is not None and tracer.poll() is None:
                tracer.kill()


@pytest.mark.skipif(not os.path.exists(PYTHON), reason=f"no {PYTHON} (Debian's, with SDT notes)")
def test_python_function_calls_out_of_the_box(env):
    code = "def hello(x):\n return x + 1\n\nprint([hello(i) for i in range(3)])\n"
    r, evs = stream(env, [f"p:py/ret {PYTHON}:sdt_python:function__return "
                          "file=+0(%bp):string func=+0(%r12):string line=%ax:s32",
                          f"{PYTHON}:sdt_python:function__return"],
                    [PYTHON, "-S", "-c", code])
    assert "[1, 2, 3]" in r.stdout.splitlines()
    ours = [t.split(") ", 1)[1] for e, t, _, _ in evs if e == "ret"]
    assert ours.count('file="<string>" func="hello" line=2') == 3
    assert ours[-1] == 'file="<string>" func="<module>" line=4'
    assert sum(e == "function__return" for e, _, _, _ in evs) == len(ours)


# -- definitions --------------------------------------------------------------------------------

def test_session_definitions_list_format_and_enable(env, hits_prog, tmp_path):
    from usertrace.sources.probes.events import probe_format
    from usertrace.sources.probes.parse import parse_definition
    d = f"p:utprbs/fact {hits_prog}:fact n=%di:s64"
    usertrace(env, "probe", d, f"r:utprbs/ret {hits_prog}:fact rv=$retval:s64")
    listed = usertrace(env, "list", "-e", "utprbs:*").stdout.split()
    assert listed == ["utprbs:fact", "utprbs:ret"]
    fmt = usertrace(env, "format", "utprbs:fact").stdout
    mine = probe_format(parse_definition(d)).render()
    strip_id = lambda t: re.sub(r"^ID: \d+$", "ID:", t, flags=re.M)  # noqa: E731
    assert strip_id(fmt) == strip_id(mine)
    # -e GROUP:EVENT enables one, -e GROUP the group
    r = usertrace(env, "stream", "-e", "utprbs:ret", "--", hits_prog, 1)
    assert [e for e, _, _, _ in events(r.stdout)] == ["ret"] * 5
    r = usertrace(env, "stream", "-e", "utprbs", "--", hits_prog, 1)
    assert sorted(e for e, _, _, _ in events(r.stdout)) == ["fact"] * 5 + ["ret"] * 5
    # not enabled, not traced: syscall events only
    r = usertrace(env, "stream", "-e", "sys_enter_write", "--", hits_prog, 1)
    assert [e for e, _, _, _ in events(r.stdout)] == ["sys_write"]


def test_an_instruction_that_cannot_be_probed_is_said_and_left_alone(env, hits_prog):
    plain = subprocess.run([str(hits_prog), "1"], capture_output=True, text=True, check=True)
    r = usertrace(env, "stream", "--probe", f"p:utprb/bump {hits_prog}:bump",
                  "--probe", f"p:utprb/fact {hits_prog}:fact", "--", hits_prog, 1)
    assert [e for e, _, _, _ in events(r.stdout)] == ["fact"] * 5
    assert r.stdout.splitlines()[-1] == plain.stdout.strip()
    said = [ln for ln in r.stderr.splitlines() if "utprb:bump" in ln]
    assert len(said) == 1 and "not placed" in said[0] and "LOCK prefix" in said[0]
    assert "probes: 1 place not probed" in r.stderr


def test_a_bad_probe_is_refused_with_the_kernels_message(env, hits_prog, tmp_path):
    from usertrace.sources.probes.errors import ProbeError
    from usertrace.sources.probes.parse import ParseContext, parse_definition
    marker = tmp_path / "ran"
    bad = f"p:utprb/x {hits_prog}:fact n=%rax"
    r = usertrace(env, "record", "-o", tmp_path / "x.dat", "--probe", bad, "--",
                  "/bin/sh", "-c", f"touch {marker}", check=False)
    assert r.returncode == 1 and not marker.exists()
    with pytest.raises(ProbeError) as info:
        parse_definition(bad, ParseContext())
    assert r.stderr == info.value.render() + "\n"
    lines = r.stderr.splitlines()
    assert lines[0] == "trace_uprobe: error: Invalid register name"
    assert lines[2].index("^") == lines[1].index("%rax")
    r = usertrace(env, "stream", "--probe", f"p:utprb/y {hits_prog}:facts", "--", "true",
                  check=False)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "trace_uprobe: error: Symbol not found"
    assert "closest: fact" in r.stderr
