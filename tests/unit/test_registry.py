"""The registry: ids, trace-cmd style event matching, status bits with reference counts."""

import pytest

from usertrace.events.format import EventFormat, Field
from usertrace.events.registry import Consumer, Registry, RegistryError


def ev(system, name, fid=0):
    return EventFormat(system, name, fid, [Field("long", "ret", 8, 8, True)], '"%ld", REC->ret')


@pytest.fixture
def reg():
    r = Registry()
    for name in ("sys_enter_open", "sys_enter_openat", "sys_exit_openat", "sys_enter_read"):
        r.add(ev("syscalls", name))
    r.add(ev("user_events", "app_req"))
    r.add(ev("sched", "sched_switch", 300))
    return r


def test_ids_are_unique_and_kept_when_given(reg):
    ids = [f.id for f in reg]
    assert len(set(ids)) == len(ids)
    assert reg.get("sched", "sched_switch").id == 300
    assert reg.by_id(300).name == "sched_switch"
    with pytest.raises(RegistryError, match="taken by sched:sched_switch"):
        reg.add(ev("x", "y", 300))
    with pytest.raises(RegistryError, match="already exists"):
        reg.add(ev("syscalls", "sys_enter_read"))


MATCHES = [
    # -e argument                   names matched
    ("syscalls",                    {"sys_enter_open", "sys_enter_openat", "sys_exit_openat", "sys_enter_read"}),
    ("syscalls:sys_enter_open*",    {"sys_enter_open", "sys_enter_openat"}),
    ("sys_exit_*",                  {"sys_exit_openat"}),
    ("*:app_*",                     {"app_req"}),
    ("user_events:",                {"app_req"}),
    ("sched_switch",                {"sched_switch"}),
    ("nosuch",                      set()),
    ("syscalls:sys_enter_[or]*",    {"sys_enter_open", "sys_enter_openat", "sys_enter_read"}),
]


@pytest.mark.parametrize("pattern,names", MATCHES)
def test_match_like_trace_cmd(reg, pattern, names):
    assert {f.name for f in reg.match(pattern)} == names


def test_status_bits_follow_reference_counts(reg):
    f = reg.get("syscalls", "sys_enter_read")
    assert reg.status(f) == 0
    assert reg.enable(f, Consumer.TRACE) == 0x01
    assert reg.enable(f, Consumer.TRACE) == 0x01
    assert reg.enable(f, Consumer.STREAM) == 0x03
    assert reg.status(f) == Consumer.TRACE | Consumer.STREAM == 0x03
    assert reg.disable(f, Consumer.TRACE) == 0x03          # one TRACE reference left
    reg.disable(f, Consumer.TRACE)
    assert reg.status(f) == 0x02
    reg.enable(f, Consumer.OTHER)
    assert reg.status(f) == 0x82
    with pytest.raises(RegistryError, match="busy"):
        reg.remove(f)
    reg.disable(f, Consumer.STREAM)
    reg.disable(f, Consumer.OTHER)
    assert reg.status(f) == 0
    with pytest.raises(RegistryError, match="not enabled"):
        reg.disable(f, Consumer.TRACE)
    reg.remove(f)
    assert reg.get("syscalls", "sys_enter_read") is None
