"""What an event source is, and how a recording drives it.

A source owns a family of events (``syscalls``, ``user_events``, probe groups) and produces
their records.  A recording (:class:`usertrace.session.Recorder`) drives every source the same
way, in this order:

1. ``claims(spec)``: does an ``-e`` pattern name events of this source (now, or once they
   exist: user events register later)?
2. ``reserve(cpus)``: before the trace buffer is made, a source whose records do not come
   from one cpu reserves a buffer of its own in the :class:`~usertrace.session.cpus.CpuMap`.
3. ``prepare(session, specs, consumers)``: the events are enabled in the session (filters
   compiled, consumers known); ``specs`` are the ``-e`` the source claimed, ``consumers`` the
   consumer bits.  The source builds what its hot path needs.
4. ``stop_handler()``: what it needs from traced processes (syscall stops, breakpoint traps,
   new tasks), as a :class:`~usertrace.ptrace.StopHandler` for the process engine; None when
   it needs no process stopped (user events arrive through shared memory).
5. ``start()`` / ``stop()``: begin and end producing (a thread of its own, for a source that
   is ``threaded``); ``stop()`` delivers what is still pending.
6. ``problems()``: what the user must hear at the end (records lost or refused, by reason).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..events.format import EventFormat
from ..events.patterns import EventPattern

if TYPE_CHECKING:
    from ..ptrace import StopHandler
    from ..session.core import Session


class Source:
    """The interface every event source implements; defaults do nothing."""

    #: the systems whose events this source produces (patterns are matched against them)
    systems: tuple[str, ...] = ()
    #: True when the source emits from a thread of its own (the session then serializes)
    threaded = False

    def formats(self) -> list[EventFormat]:
        """The events this source defines before anything is traced (``usertrace list``)."""
        return []

    def claims(self, pattern: EventPattern) -> bool:
        """Does ``pattern`` name (or may it name, later) events of this source?"""
        return any(pattern.matches_system(s) for s in self.systems)

    def reserve(self, cpus) -> None:
        """Reserve buffers of its own in the session's CpuMap (before recording starts)."""

    def prepare(self, session: "Session", specs: list, consumers: int) -> None:
        """The session's events are enabled: get ready to produce them."""

    def stop_handler(self) -> "StopHandler | None":
        return None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def problems(self) -> list[str]:
        """Lines for the user about what this source lost or refused (empty: nothing)."""
        return []
