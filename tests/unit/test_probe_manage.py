"""The session's probe definitions (usertrace probe): all or nothing, listed as
uprobe_events lists them, the kernel's rules for events with several probes, removal."""

from __future__ import annotations

import io

import pytest

from usertrace.cli.context import Context
from usertrace.cli.main import main
from usertrace.sources.probes.errors import ProbeError
from usertrace.sources.probes.manage import ProbeStore


@pytest.fixture
def target():
    from conftest import build_target
    return str(build_target("probes"))


@pytest.fixture
def store(tmp_path):
    return ProbeStore(str(tmp_path / "session"))


def test_add_list_remove(store, target):
    store.add([f"p:app/a {target}:0x10 x=%ax", f"r:app/b {target}:fact rv=$retval:s32"])
    lines = store.lines()
    assert lines[0] == f"p:app/a {target}:0x0000000000000010 x=%ax"
    assert lines[1].startswith("r:app/b ") and lines[1].endswith(" rv=$retval:s32")
    store.remove("app/a")
    assert [ln.split()[0] for ln in store.lines()] == ["r:app/b"]
    with pytest.raises(ProbeError) as info:
        store.remove("app/a")
    assert info.value.code == "NO_SUCH_EVENT"
    assert store.clear() == 1 and store.lines() == []


def test_all_or_nothing(store, target):
    store.add([f"p:app/a {target}:0x10"])
    with pytest.raises(ProbeError) as info:
        store.add([f"p:app/c {target}:0x20", f"p:app/d {target}:0x30 x=%bad"])
    assert info.value.code == "BAD_REG_NAME"
    assert [ln.split()[0] for ln in store.lines()] == ["p:app/a"]


def test_events_with_several_probes(store, target):
    store.add([f"p:app/e {target}:0x10 x=%ax"])
    store.add([f"p:app/e {target}:0x20 x=%bx"])         # same names and types: appended
    assert len(store.lines()) == 2
    for bad, code in ((f"r:app/e {target}:0x30 x=%ax", "DIFF_PROBE_TYPE"),
                      (f"p:app/e {target}:0x30 x=%ax:u32", "DIFF_ARG_TYPE"),
                      (f"p:app/e {target}:0x30 y=%ax", "DIFF_ARG_TYPE"),
                      (f"p:app/e {target}:0x10 x=%ax", "SAME_PROBE")):
        with pytest.raises(ProbeError) as info:
            store.add([bad])
        assert info.value.code == code
    store.remove(f"-:app/e {target}:0x0000000000000020")    # one of them, by its place
    assert len(store.lines()) == 1 and "0x0000000000000010" in store.lines()[0]
    store.remove("-:app/")                                   # the whole group
    assert store.lines() == []


def _cli(args, session):
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdout=out, stderr=err, env={"USERTRACE_SESSION": str(session)})
    status = main(["probe", *args], ctx)
    return status, out.getvalue(), err.getvalue()


def test_cli(tmp_path, target):
    session = tmp_path / "s"
    status, out, err = _cli([f"p:app/a {target}:add_point p=+0(%di):s32"], session)
    assert (status, out, err) == (0, "", "")
    status, out, _ = _cli([], session)
    assert status == 0 and out.startswith("p:app/a ") and out.endswith(" p=+0(%di):s32\n")
    status, out, err = _cli([f"p:app/b {target}:0x10 x=%rax"], session)
    assert status == 1 and err.splitlines()[0] == "trace_uprobe: error: Invalid register name"
    assert err.splitlines()[2].index("^") == err.splitlines()[1].index("%rax")
    status, _, _ = _cli(["-:app/a"], session)
    assert status == 0 and _cli([], session)[1] == ""
    _cli([f"p:app/c {target}:0x10"], session)
    assert _cli(["--clear"], session)[0] == 0 and _cli([], session)[1] == ""
