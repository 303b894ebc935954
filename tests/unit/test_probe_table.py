"""Our probe parser against the table of tests/data/probe_cases.txt (no kernel needed).

The table's expectations come from the kernel (tests/kernel/test_probe_kernel.py checks them
there): every row is parsed here with $T the probe target; refused rows must give the same
code, errno and caret, and the error_log text with the caret in that column.
"""

from __future__ import annotations

import errno
import importlib.util
import sys
from pathlib import Path

import pytest

from usertrace.sources.probes.errors import CATALOG, KERNEL_CODES, MESSAGES, ProbeError
from usertrace.sources.probes.events import probe_format
from usertrace.sources.probes.parse import ParseContext, ProbeDefinition, parse_command

_DATA = Path(__file__).resolve().parents[1] / "data" / "probe_cases.py"
_spec = importlib.util.spec_from_file_location("probe_cases", _DATA)
probe_cases = importlib.util.module_from_spec(_spec)
sys.modules["probe_cases"] = probe_cases
_spec.loader.exec_module(probe_cases)

CASES = probe_cases.load()


@pytest.fixture(scope="module")
def probe_target():
    from conftest import build_target
    return str(build_target("probes"))


def test_table_is_big_and_mixed():
    ok = [c for c in CASES if c.ok]
    refused = [c for c in CASES if not c.ok]
    assert len(CASES) >= 120 and len(ok) >= 30 and len(refused) >= 80
    used = {c.code for c in refused}
    # every catalog code a uprobe definition can reach has a row
    reachable = {code for code, _ in CATALOG} - {
        "BAD_MAXACT_TYPE", "BAD_MAXACT", "MAXACT_TOO_BIG", "BAD_PROBE_ADDR", "NON_UNIQ_SYMBOL",
        "BAD_RETPROBE", "NO_TRACEPOINT", "BAD_TP_NAME", "EVENT_EXIST", "NO_RETVAL",
        "BAD_STACK_NUM", "FILE_ON_KPROBE", "BAD_SYMSTRING", "BAD_INSN_BNDRY", "FAIL_REG_PROBE",
        "DIFF_PROBE_TYPE", "DIFF_ARG_TYPE", "SAME_PROBE", "NO_EVENT_INFO", "BAD_ATTACH_EVENT",
        "BAD_ATTACH_ARG", "NO_EP_FILTER", "NO_BTFARG", "NO_BTF_ENTRY", "BAD_VAR_ARGS",
        "DOUBLE_ARGS", "ARGS_2LONG", "ARGIDX_2BIG", "NO_PTR_STRCT", "NOSUP_DAT_ARG",
        "BAD_HYPHEN", "NO_BTF_FIELD", "BAD_BTF_TID", "BAD_TYPE4STR", "TOO_MANY_ARGS",
        "TOO_MANY_EARGS"}
    assert reachable - used == set()


def test_catalog_is_the_kernels_order():
    codes = [c for c, _ in CATALOG]
    assert codes[0] == "FILE_NOT_FOUND" and codes[-1] == "EVENT_TOO_BIG" and len(codes) == 81
    assert codes.index("BAD_FETCH_ARG") == 39
    assert MESSAGES["BAD_VAR"] == "Invalid $-variable specified"      # 6.18's spelling


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_row(case, probe_target):
    text, col = case.definition(probe_target)
    ctx = ParseContext()
    if case.ok:
        d = parse_command(text, ctx)
        assert isinstance(d, ProbeDefinition)
        if case.listing is not None:
            assert str(d) == case.expected_listing(probe_target)
        # the line it lists is itself a definition that parses to the same event
        again = parse_command(str(d), ctx)
        assert str(again) == str(d)
        assert probe_format(again).render() == probe_format(d).render()
        return
    with pytest.raises(ProbeError) as info:
        parse_command(text, ctx)
    err = info.value
    assert (err.code, errno.errorcode[err.errno]) == (case.code, errno.errorcode[case.errno])
    if not case.ext:
        assert err.logged == (case.code in KERNEL_CODES and case.logged)
    assert err.command == " ".join(text.split("#")[0].split())
    assert col is not None, "a refused row marks its caret with ^"
    assert err.caret_column() == col
    lines = err.log_entry().split("\n")
    assert lines[0] == f"trace_uprobe: error: {MESSAGES[case.code]}"
    assert lines[1] == f"  Command: {err.command}"
    assert lines[2] == " " * (len("  Command: ") + col) + "^"


def test_too_many_arguments(probe_target):
    args = " ".join(f"a{i}=%ax" for i in range(129))
    with pytest.raises(ProbeError) as info:
        parse_command(f"p:utprb/many {probe_target}:0x10 {args}")
    assert info.value.code == "TOO_MANY_ARGS" and info.value.errno == errno.E2BIG
    assert info.value.caret_column() == len(f"p:utprb/many {probe_target}:0x10 ")
    d = parse_command(f"p:utprb/many {probe_target}:0x10 " + " ".join(f"a{i}=%ax" for i in range(128)))
    assert len(d.args) == 128
