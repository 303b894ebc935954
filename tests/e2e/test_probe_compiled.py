"""Compiled breakpoint hits (usertrace.ptrace._ptrace.hit): after its first hit, a probe of
simple arguments on an emulated instruction is served by one compiled call.  Its records
and its effect on the program must be those of the Python path, which the same run under
USERTRACE_PURE_PYTHON=1 takes at every hit.

The target, tests/targets/probe_prologues.c, starts functions with each instruction that
is emulated (endbr64, nop, push %rbp, mov %rsp,%rbp, push %rbx, push %r12, jmp, call); its
sum shows a wrong emulation."""

import json
import subprocess

import pytest
from _paths import needs_compiled, record_both_ways


ROUNDS = 50

RUN = r"""
import json, sys
from usertrace.events.registry import Consumer
from usertrace.session import Recorder
defs, out, session = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
rec = Recorder(None, probes=defs, session_dir=session, consumers=Consumer.TRACE)
rec.record_to(out)
status = rec.run(sys.argv[4:], handle_signals=False)
handler = rec.probes.handler
print("RESULT " + json.dumps({"code": status.code, "served": handler.served,
                              "hits": rec.probes.hit_counts()}), flush=True)
"""


def definitions(prog):
    p = f"{prog}"
    return [
        f"p:utcmp/endbr {p}:f_endbr i=%di:s64 a=+0(%si):u32 bits=+4(%si):b3@4/32 "
        "deep=+0(+8(%si)):x64 imm=\\7 top=$stack0:x64 ip=%ip:x64 @data",
        f"p:utcmp/nop {p}:f_nop i=%di:u8 bad=+0(%di):u64 s=+8(%si):x64",
        f"p:utcmp/push {p}:f_push x=%di:x32 caller=$stack0:x64",
        f"p:utcmp/movsp {p}:f_push+1 sp=%sp:x64 sp16=%sp:u16 bp=%bp:x64 saved=+0(%sp):x64",
        f"p:utcmp/rbx {p}:f_rbx rbx=%bx:s64 st1=$stack1:x64",
        f"p:utcmp/r12 {p}:f_r12 r12=%r12:s32 neg=\\-3:s16",
        f"p:utcmp/jmp {p}:f_jmp i=%di:s64 far=$stack9:x64",
        f"p:utcmp/call {p}:f_call i=%di bits=+4(%si):b4@0/32",
    ]


def record(prog, tmp_path, name, pure):
    out = tmp_path / f"{name}.dat"
    result, lines, events = record_both_ways(
        RUN, [json.dumps(definitions(prog)), out, tmp_path / "session", prog, ROUNDS], out, pure)
    total = [l for l in lines if l.startswith("SUM ")]
    return result, total, [(e["event"], {k: v for k, v in e["fields"].items()
                                         if k != "common_pid"}) for e in events]


@pytest.fixture
def prog():
    from conftest import build_target
    return build_target("probe_prologues")


def test_compiled_hits_record_and_run_as_the_python_path(prog, tmp_path):
    needs_compiled("hit")
    untraced = subprocess.run([str(prog), str(ROUNDS)], capture_output=True, text=True)
    fast, fast_sum, fast_events = record(prog, tmp_path, "compiled", pure=False)
    slow, slow_sum, slow_events = record(prog, tmp_path, "python", pure=True)
    # the program ran as untraced, both ways
    assert fast_sum == slow_sum == [untraced.stdout.strip()]
    assert fast["code"] == slow["code"] == 0
    # every hit recorded, and the compiled call served all but each site's first hit
    sites = len(definitions(prog))
    assert fast["hits"] == slow["hits"] == {f"utcmp:{d.split()[0].split('/')[1]}": ROUNDS
                                            for d in definitions(prog)}
    assert fast["served"] == sites * (ROUNDS - 1)
    assert slow["served"] == 0
    # the same records, field by field, in the same order
    assert len(fast_events) == sites * ROUNDS
    assert fast_events == slow_events
    # and they hold what the program had: spot checks against the source
    by = {}
    for event, fields in fast_events:
        by.setdefault(event, []).append(fields)
    assert [f["i"] for f in by["endbr"]] == list(range(ROUNDS))
    assert [f["a"] for f in by["endbr"]] == list(range(ROUNDS))
    assert {f["bits"] for f in by["endbr"]} == {5}
    assert {f["deep"] for f in by["endbr"]} == {0x1122334455667788}
    assert {f["imm"] for f in by["endbr"]} == {7}
    assert {f["bad"] for f in by["nop"]} == {0}          # a read that faults stores 0
    assert {f["neg"] for f in by["r12"]} == {-3}
    assert [f["rbx"] for f in by["rbx"]] == list(range(ROUNDS))
    assert {f["bits"] for f in by["call"]} == {0xa}
