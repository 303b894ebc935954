"""What killed kernel recordings leave, found and removed (kernel.cleanup), on a fake tracefs:
a directory with ``instances/`` and a plain ``uprobe_events`` file (no root needed).  Only
names of ours whose pid is gone are touched, and ``uprobe_events`` is only appended to."""

import os
import subprocess

import pytest

from usertrace.kernel.cleanup import clean_stale, find_stale
from usertrace.kernel.probes import defined_probes


@pytest.fixture(scope="module")
def dead():
    """A pid that no process has (one that just ended)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


ALIVE = os.getpid()

# (instance directory name, removed?)
INSTANCES = [
    ("usertrace-{dead}-a1b2c3", True),
    ("usertrace-{alive}-a1b2c3", False),       # its process runs: in use
    ("usertrace-{dead}-xyz", False),           # not our random part (hex): not ours
    ("usertrace-probe-x", False),              # no pid
    ("other-{dead}-a1b2c3", False),            # not our prefix
    ("usertrace-{dead}-a1b2c3-x", False),      # more after the name
]

# (a line of uprobe_events, the probe removed?)
PROBES = [
    ("p:usertrace_{dead}_a1b2c3/app__hit /bin/x:0x0000000000001139", True),
    ("r:usertrace_{dead}_a1b2c3/app__ret /bin/x:0x0000000000001139 arg1=$retval", True),
    ("p:usertrace_{alive}_a1b2c3/app__hit /bin/x:0x0000000000001139", False),
    ("p:uprobes/p_x_0x1139 /bin/x:0x0000000000001139", False),
    ("p:usertrace_{dead}_a1b2c3x/ev /bin/x:0x0000000000001139", False),
]


def fake_tracefs(tmp_path, dead):
    root = tmp_path / "tracing"
    (root / "instances").mkdir(parents=True)
    for name, _ in INSTANCES:
        (root / "instances" / name.format(dead=dead, alive=ALIVE)).mkdir()
    text = "".join(line.format(dead=dead, alive=ALIVE) + "\n" for line, _ in PROBES)
    (root / "uprobe_events").write_text(text)
    return root, text


def test_finds_only_ours_of_dead_processes(tmp_path, dead):
    root, _ = fake_tracefs(tmp_path, dead)
    found = find_stale(root)
    assert found.instances == sorted(n.format(dead=dead) for n, gone in INSTANCES if gone)
    assert found.probes == [tuple(line.format(dead=dead).split()[0][2:].split("/"))
                            for line, gone in PROBES if gone]


def test_clean_removes_instances_and_appends_probe_removals(tmp_path, dead):
    root, before = fake_tracefs(tmp_path, dead)
    lines = clean_stale(root)
    left = set(os.listdir(root / "instances"))
    assert left == {n.format(dead=dead, alive=ALIVE) for n, gone in INSTANCES if not gone}
    after = (root / "uprobe_events").read_text()
    assert after.startswith(before)             # appended to, never truncated
    removals = after[len(before):].splitlines()
    assert removals == [f"-:usertrace_{dead}_a1b2c3/app__hit", f"-:usertrace_{dead}_a1b2c3/app__ret"]
    assert lines == [f"removed instance usertrace-{dead}-a1b2c3",
                     f"removed probe usertrace_{dead}_a1b2c3/app__hit",
                     f"removed probe usertrace_{dead}_a1b2c3/app__ret"]


def test_dry_run_changes_nothing(tmp_path, dead):
    root, before = fake_tracefs(tmp_path, dead)
    names = set(os.listdir(root / "instances"))
    lines = clean_stale(root, dry_run=True)
    assert lines[0] == f"would remove instance usertrace-{dead}-a1b2c3"
    assert set(os.listdir(root / "instances")) == names
    assert (root / "uprobe_events").read_text() == before


def test_an_instance_that_cannot_go_is_said(tmp_path, dead):
    root, _ = fake_tracefs(tmp_path, dead)
    busy = root / "instances" / f"usertrace-{dead}-a1b2c3"
    (busy / "file").write_text("x")            # rmdir fails: not empty
    lines = clean_stale(root)
    assert lines[0].startswith(f"cannot remove instance usertrace-{dead}-a1b2c3: ")
    assert busy.exists()


def test_defined_probes_reads_every_kind(tmp_path, dead):
    root, _ = fake_tracefs(tmp_path, dead)
    assert [g for g, _ in defined_probes(root)] == [
        f"usertrace_{dead}_a1b2c3", f"usertrace_{dead}_a1b2c3", f"usertrace_{ALIVE}_a1b2c3",
        "uprobes", f"usertrace_{dead}_a1b2c3x"]
