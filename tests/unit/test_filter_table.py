"""Our filter against the table of tests/data/filter_cases.txt (no kernel needed).

The table's expectations come from the kernel (tests/kernel/test_filter_kernel.py checks them
there); here every row is compiled with our parser and, for accepted rows, run on every
sample record of its section.
"""

from __future__ import annotations

import errno
import importlib.util
import sys
from pathlib import Path

import pytest

from usertrace.filter import FilterError, compile_filter

_DATA = Path(__file__).resolve().parents[1] / "data" / "filter_cases.py"
_spec = importlib.util.spec_from_file_location("filter_cases", _DATA)
filter_cases = importlib.util.module_from_spec(_spec)
sys.modules["filter_cases"] = filter_cases
_spec.loader.exec_module(filter_cases)

SECTIONS = filter_cases.load()
CASES = filter_cases.all_cases(SECTIONS)
NR_CPUS = 2      # the machine the table was measured on


def test_table_is_big_and_mixed():
    ok = [c for _, c in CASES if c.ok]
    refused = [c for _, c in CASES if not c.ok]
    assert len(CASES) >= 100 and len(ok) >= 50 and len(refused) >= 50
    assert {c.code for c in refused} >= {"INVALID_OP", "FIELD_NOT_FOUND", "ILLEGAL_INTVAL",
                                         "EXPECT_STRING", "EXPECT_DIGIT", "ILLEGAL_FIELD_OP",
                                         "INVALID_VALUE", "TOO_MANY_PREDS", "TOO_MANY_OPEN",
                                         "TOO_MANY_CLOSE", "MISSING_QUOTE", "OPERAND_TOO_LONG"}


@pytest.mark.parametrize("section,case", CASES, ids=lambda x: getattr(x, "id", ""))
def test_row(section, case):
    if not case.ok:
        with pytest.raises(FilterError) as info:
            compile_filter(case.expr, section.format, nr_cpus=NR_CPUS)
        err = info.value
        got = (err.code, err.caret_column() if err.has_message else None,
               errno.errorcode[err.errno])
        assert got == (case.code, case.col, errno.errorcode[case.errno])
        if err.has_message:
            lines = err.render().split("\n")
            assert lines[1] == " " * case.col + "^"
            assert lines[2] == "parse_error: " + err.message
        return
    f = compile_filter(case.expr, section.format, nr_cpus=NR_CPUS)
    assert f.text == case.expr.rstrip(" \t\n\v\f\r")
    answers = {name: f.match(rec) for name, rec in section.samples.items()}
    assert all(type(a) is bool for a in answers.values())
    assert {name for name, a in answers.items() if a} == set(case.matches)
