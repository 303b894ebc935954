"""The one -e matcher (usertrace.events.patterns): trace-cmd's rules, and list, format and
record/stream agreeing on what a pattern names."""

import pytest

from usertrace.errors import UsertraceError
from usertrace.events.patterns import EventPattern, PatternError

SYSTEMS = ["syscalls", "user_events", "user_events_multi", "sched"]

# pattern -> (system glob, event glob) against SYSTEMS
GLOBS = [
    ("syscalls", ("syscalls", "*")),
    ("sched", ("sched", "*")),
    ("user_events*", ("user_events*", "*")),          # a glob over systems
    ("sys_enter_open*", ("*", "sys_enter_open*")),   # no such system: event names
    ("app_req", ("*", "app_req")),
    ("syscalls:sys_*_read", ("syscalls", "sys_*_read")),
    ("user_events/app_req", ("user_events", "app_req")),   # the tracefs path form
    ("sched:", ("sched", "*")),
    (":sys_exit_read", ("*", "sys_exit_read")),
    ("*:*", ("*", "*")),
]


@pytest.mark.parametrize("text,expected", GLOBS)
def test_globs_follow_trace_cmd(text, expected):
    assert EventPattern.parse(text).glob(SYSTEMS) == expected


class Fmt:
    def __init__(self, system, name):
        self.system, self.name = system, name


FORMATS = [Fmt("syscalls", "sys_enter_openat"), Fmt("syscalls", "sys_exit_openat"),
           Fmt("user_events", "app_req"), Fmt("user_events", "app_late"),
           Fmt("sched", "sched_switch")]

SELECT = [
    ("app_req", ["user_events:app_req"]),
    ("user_events", ["user_events:app_req", "user_events:app_late"]),
    ("*openat", ["syscalls:sys_enter_openat", "syscalls:sys_exit_openat"]),
    ("sched", ["sched:sched_switch"]),
    ("nothing_here", []),
]


@pytest.mark.parametrize("text,names", SELECT)
def test_select(text, names):
    got = EventPattern.parse(text).select(FORMATS)
    assert [f"{f.system}:{f.name}" for f in got] == names


def test_names_system_tells_a_system_from_event_names():
    assert EventPattern.parse("user_events").names_system("user_events")
    assert EventPattern.parse("user_events:app_*").names_system("user_events")
    assert not EventPattern.parse("app_req").names_system("user_events")
    assert EventPattern.parse("app_req").matches_system("user_events")


@pytest.mark.parametrize("text,fault", [
    ("", "empty"), ("   ", "empty"), ("user_events:" + "a" * 300, "too long"),
    ("sys_enter_open at", "character 15"), ("a\tb", "character 2"), ("x\x01", "character 2"),
])
def test_bad_patterns_are_clear_errors(text, fault):
    with pytest.raises(PatternError, match=fault) as info:
        EventPattern.parse(text)
    assert isinstance(info.value, UsertraceError) and info.value.exit_status == 2
