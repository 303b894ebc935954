"""The ``-e`` pattern: which events a user names, by trace-cmd's rules (one matcher for all).

``SYSTEM:EVENT`` (or ``SYSTEM/EVENT``, the tracefs path) with shell globs in either part; an
empty part means every one (``sched:``, ``:sys_enter_open``).  A bare word names a *system*
when one of that name exists, and otherwise *events* of that name in any system::

    >>> systems = ["syscalls", "user_events"]
    >>> EventPattern.parse("syscalls").glob(systems)
    ('syscalls', '*')
    >>> EventPattern.parse("sys_enter_open*").glob(systems)
    ('*', 'sys_enter_open*')
    >>> EventPattern.parse("user_events/app_req").glob(systems)
    ('user_events', 'app_req')

``list``, ``format``, ``record``, ``stream``, ``stat`` and the user-events enabling all match
through this module, so an event that one of them shows is an event the others accept.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable

from ..errors import UsertraceError

MAX_PATTERN = 255          # bytes; longer patterns are refused, as tracefs refuses long names


class PatternError(UsertraceError):
    """A pattern that cannot name any event (empty, too long, a control character)."""

    exit_status = 2


@dataclass(frozen=True)
class EventPattern:
    """One ``-e`` argument: ``system`` is None for a bare word (resolved against systems)."""

    text: str
    system: str | None
    event: str

    @classmethod
    def parse(cls, text: str) -> "EventPattern":
        if not text.strip():
            raise PatternError("an empty event pattern names no event")
        if len(text.encode("utf-8", "surrogateescape")) > MAX_PATTERN:
            raise PatternError(f"event pattern of {len(text)} characters is too long "
                               f"(at most {MAX_PATTERN}): {text[:40]}...")
        bad = next((i for i, c in enumerate(text) if c.isspace() or not c.isprintable()), None)
        if bad is not None:
            raise PatternError(f"event pattern {text!r}: character {bad + 1} is not allowed "
                               f"(white space or a control character)")
        for sep in (":", "/"):
            if sep in text:
                sys_pat, ev_pat = text.split(sep, 1)
                return cls(text, sys_pat or "*", ev_pat or "*")
        return cls(text, None, text)

    def glob(self, systems: Iterable[str]) -> tuple[str, str]:
        """(system glob, event glob), a bare word resolved against the ``systems`` known."""
        if self.system is not None:
            return self.system, self.event
        if any(fnmatch.fnmatchcase(s, self.event) for s in systems):
            return self.event, "*"
        return "*", self.event

    def matches_system(self, system: str) -> bool:
        """Could this pattern name events of ``system`` (a bare word: as a system name, or
        as event names in any system)?"""
        return self.system is None or fnmatch.fnmatchcase(system, self.system)

    def names_system(self, system: str) -> bool:
        """Does the pattern name ``system`` itself (``user_events``, ``user_events:app_*``)
        rather than event names that may be anywhere?"""
        if self.system is None:
            return fnmatch.fnmatchcase(system, self.event)
        return fnmatch.fnmatchcase(system, self.system)

    def select(self, formats: Iterable, systems: Iterable[str] | None = None) -> list:
        """The formats (anything with ``system`` and ``name``) this pattern names; a bare word
        is resolved against ``systems`` (default: the formats' own systems)."""
        formats = list(formats)
        if systems is None:
            systems = {f.system for f in formats}
        sys_glob, ev_glob = self.glob(systems)
        return [f for f in formats if fnmatch.fnmatchcase(f.system, sys_glob)
                and fnmatch.fnmatchcase(f.name, ev_glob)]

    def __str__(self) -> str:
        return self.text
