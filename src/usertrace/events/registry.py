"""The registry: systems, events and their ids; enabling with reference counts per consumer.

Each event has a *status*: a bit per kind of consumer that listens, as the seed's user_events
``reg``/``unreg`` keep it (bit 0 the trace buffer, bit 1 a live stream, bit 7 anything else,
e.g. a counter).  A consumer kind may enable one event several times (two filters, two
streams): the bit stays set until the last one disables it.  An event is removed only when
no consumer has it enabled (busy).  The registry is also the one allocator of event ids of a
session (:meth:`Registry.allocate_id`).
"""

from __future__ import annotations

from enum import IntFlag
from typing import Iterable

from ..errors import UsertraceError

from .format import EventFormat
from .patterns import EventPattern


class Consumer(IntFlag):
    TRACE = 0x01    # the trace buffer (record)
    STREAM = 0x02   # a live stream
    OTHER = 0x80    # counters, statistics, anything else


class RegistryError(UsertraceError, LookupError):
    """An event that cannot be added, removed or disabled: the message names it and why."""


FIRST_DYNAMIC_ID = 1000  # ids we hand out; kernel formats read from files keep theirs


class Registry:
    def __init__(self):
        self._by_key: dict[tuple[str, str], EventFormat] = {}
        self._by_id: dict[int, EventFormat] = {}
        self._refs: dict[int, dict[Consumer, int]] = {}
        self._next_id = FIRST_DYNAMIC_ID
        self._handed: set[int] = set()

    # -- events ---------------------------------------------------------------------------
    def add(self, fmt: EventFormat) -> EventFormat:
        """Register an event; an id of 0 gets the next free one. Adding twice is an error."""
        key = (fmt.system, fmt.name)
        if key in self._by_key:
            raise RegistryError(f"event {fmt.full_name} already exists")
        if not fmt.id:
            fmt.id = self.allocate_id()
        elif fmt.id in self._by_id:
            raise RegistryError(f"event id {fmt.id} of {fmt.full_name} is taken by "
                                f"{self._by_id[fmt.id].full_name}")
        self._by_key[key] = fmt
        self._by_id[fmt.id] = fmt
        self._refs[fmt.id] = {}
        return fmt

    def allocate_id(self, preferred: int = 0) -> int:
        """The one id allocator of a session: ``preferred`` when no event has it and it was
        not handed out before, else the next free id from FIRST_DYNAMIC_ID.  Sources that
        number their events themselves (user events: ``ID_BASE + index``) ask here."""
        if preferred and preferred not in self._by_id and preferred not in self._handed:
            self._handed.add(preferred)
            return preferred
        while self._next_id in self._by_id or self._next_id in self._handed:
            self._next_id += 1
        self._handed.add(self._next_id)
        return self._next_id

    def remove(self, fmt: EventFormat) -> None:
        """Delete an event; refused while any consumer has it enabled (busy)."""
        if self.status(fmt):
            raise RegistryError(f"event {fmt.full_name} is busy")
        del self._by_key[(fmt.system, fmt.name)]
        del self._by_id[fmt.id]
        del self._refs[fmt.id]

    def get(self, system: str, name: str) -> EventFormat | None:
        return self._by_key.get((system, name))

    def by_id(self, event_id: int) -> EventFormat | None:
        return self._by_id.get(event_id)

    def __iter__(self):
        return iter(sorted(self._by_key.values(), key=lambda f: (f.system, f.name)))

    def __len__(self) -> int:
        return len(self._by_key)

    def systems(self) -> list[str]:
        return sorted({s for s, _ in self._by_key})

    def match(self, pattern: str) -> list[EventFormat]:
        """Events named by a trace-cmd ``-e`` argument (:mod:`usertrace.events.patterns`)."""
        return EventPattern.parse(pattern).select(self, self.systems())

    # -- enabling -------------------------------------------------------------------------
    def enable(self, fmt: EventFormat, consumer: Consumer = Consumer.TRACE) -> int:
        """One more reference of ``consumer`` to ``fmt``; the event's status after it."""
        refs = self._refs[fmt.id]
        refs[consumer] = refs.get(consumer, 0) + 1
        return self.status(fmt)

    def disable(self, fmt: EventFormat, consumer: Consumer = Consumer.TRACE) -> int:
        """One reference of ``consumer`` less; the event's status after it."""
        refs = self._refs[fmt.id]
        n = refs.get(consumer, 0)
        if n <= 0:
            raise RegistryError(f"event {fmt.full_name} is not enabled for {consumer.name}")
        if n == 1:
            del refs[consumer]
        else:
            refs[consumer] = n - 1
        return self.status(fmt)

    def status(self, fmt: EventFormat) -> int:
        """The consumer bits of who listens to ``fmt`` (0: nobody)."""
        status = 0
        for consumer in self._refs.get(fmt.id, ()):
            status |= consumer
        return status

    def refcount(self, fmt: EventFormat, consumer: Consumer) -> int:
        return self._refs.get(fmt.id, {}).get(consumer, 0)

    def enabled(self) -> list[EventFormat]:
        return [f for f in self if self.status(f)]

    def add_all(self, formats: Iterable[EventFormat]) -> None:
        for f in formats:
            self.add(f)
