"""The probe table (tests/data/probe_cases.txt) against the real kernel's uprobe_events.

Every row (but the "ext ... err" rows, which are ours alone) is appended to this kernel's
``uprobe_events`` with $T the probe target.  An accepted row must be accepted, listed by the
kernel as ``str()`` of our parse, and get the format :func:`probe_format` makes (the ID line
aside); it is removed at once.  A refused row must fail with the row's errno and leave the
error_log entry :meth:`ProbeError.log_entry` shows (message, command, caret), or none for a
"nolog" row.  An "ext ok" row (our syntax) is sent as our translation, ``str(definition)``.

``uprobe_events`` is global to the machine: only appends, only groups of these rows
(``utprb``, ``ut-prb``, ``_u9``, and ``uprobes/p_probes_*`` from the default names), and
every event defined is removed, also on failure.
"""

from __future__ import annotations

import errno
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from usertrace.sources.probes.errors import ProbeError
from usertrace.sources.probes.events import probe_format
from usertrace.sources.probes.parse import ParseContext, ProbeDefinition, parse_command
from usertrace.kernel.tracefs import append_uprobe_event, find_tracefs, why_no_uprobe_events

pytestmark = pytest.mark.kernel

_DATA = Path(__file__).resolve().parents[1] / "data" / "probe_cases.py"
_spec = importlib.util.spec_from_file_location("probe_cases", _DATA)
probe_cases = importlib.util.module_from_spec(_spec)
sys.modules["probe_cases"] = probe_cases
_spec.loader.exec_module(probe_cases)

CASES = [c for c in probe_cases.load() if c.ok or not c.ext]


def _root() -> Path:
    reason = why_no_uprobe_events()
    if reason:
        pytest.skip(reason)
    return find_tracefs()


def append(root: Path, line: str) -> int:
    """Append one line to uprobe_events (never truncate); 0 or the errno of the refusal."""
    try:
        append_uprobe_event(line, root)
        return 0
    except OSError as exc:
        return exc.errno


_ENTRY = re.compile(r"^\[\s*(?P<ts>[\d.]+)\] (?P<head>.*)$")


def error_log(root: Path) -> list[tuple[str, str]]:
    """The error_log entries as (timestamp, entry text without its timestamp)."""
    lines = (root / "error_log").read_text().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = _ENTRY.match(lines[i])
        if m and i + 2 < len(lines):
            out.append((m["ts"], f"{m['head']}\n{lines[i + 1]}\n{lines[i + 2]}\n"))
            i += 3
        else:
            i += 1
    return out


@pytest.fixture(scope="module")
def probe_target():
    from conftest import build_target
    return str(build_target("probes"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_row_against_the_kernel(case, probe_target):
    root = _root()
    text, _ = case.definition(probe_target)
    ours = None
    try:
        ours = parse_command(text, ParseContext())
    except ProbeError as exc:
        ours = exc
    if case.ext:
        assert isinstance(ours, ProbeDefinition)
        text = str(ours)
    before = set(error_log(root))
    got = append(root, text)
    try:
        if case.ok:
            assert got == 0, f"refused ({errno.errorcode.get(got)}):\n{error_log(root)[-1:]}"
            assert isinstance(ours, ProbeDefinition)
            head = f"{ours.kind}:{ours.group}/{ours.event} "
            listed = [ln for ln in (root / "uprobe_events").read_text().splitlines()
                      if ln.startswith(head)]
            assert listed == [str(ours)]
            fmt = (root / "events" / ours.group / ours.event / "format").read_text()
            mine = probe_format(ours).render()
            strip_id = lambda t: re.sub(r"^ID: \d+$", "ID:", t, flags=re.M)  # noqa: E731
            assert strip_id(fmt) == strip_id(mine)
            return
        assert got == case.errno, f"errno {errno.errorcode.get(got, got)}"
        assert isinstance(ours, ProbeError)
        new = [entry for key, entry in
               ((ts, e) for ts, e in error_log(root)) if (key, entry) not in before
               and f"  Command: {ours.command}\n" in entry]
        if case.logged:
            assert new, "the kernel logged no error for this command"
            assert new[-1] == ours.log_entry()
        else:
            assert not new, f"the kernel logged:\n{new[-1]}"
    finally:
        if got == 0 and isinstance(ours, ProbeDefinition):
            assert append(root, f"-:{ours.group}/{ours.event}") == 0
