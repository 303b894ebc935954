"""The kernel's ``trace`` text: header lines and one line per event.

A line is ``comm-pid [cpu] flags timestamp: event: text``::

            bash-2048    [001] .....   297.300813: sys_openat(dfd: 0xffffff9c, ...)

The event part is the event's print fmt rendered for the record, except where the kernel prints
an event its own way (syscall events: ``sys_openat(dfd: 0xffffff9c, ...)``, ``sys_openat ->
0x3``); such printers register here by system (:func:`register_printer`).
"""

from __future__ import annotations

from typing import Callable

from ..events.format import EventFormat
from .printfmt import PrintFmt

# Flags of common_flags, as kernel/trace/trace.h numbers them (6.x).
IRQS_OFF, NEED_RESCHED_LAZY, NEED_RESCHED = 0x01, 0x02, 0x04
HARDIRQ, SOFTIRQ, PREEMPT_RESCHED, NMI, BH_OFF = 0x08, 0x10, 0x20, 0x40, 0x80

HEADER_LINES = (
    "#                                _-----=> irqs-off/BH-disabled\n"
    "#                               / _----=> need-resched\n"
    "#                              | / _---=> hardirq/softirq\n"
    "#                              || / _--=> preempt-depth\n"
    "#                              ||| / _-=> migrate-disable\n"
    "#                              |||| /     delay\n"
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
    "#              | |         |   |||||     |         |\n"
)


def trace_header(entries: int, written: int, ncpus: int, tracer: str = "nop") -> str:
    """The header of the kernel's ``trace`` file."""
    return (f"# tracer: {tracer}\n#\n"
            f"# entries-in-buffer/entries-written: {entries}/{written}   #P:{ncpus}\n#\n"
            + HEADER_LINES)


_RESCHED = {
    NEED_RESCHED | NEED_RESCHED_LAZY | PREEMPT_RESCHED: "B",
    NEED_RESCHED | PREEMPT_RESCHED: "N",
    NEED_RESCHED_LAZY | PREEMPT_RESCHED: "L",
    NEED_RESCHED | NEED_RESCHED_LAZY: "b",
    NEED_RESCHED: "n",
    NEED_RESCHED_LAZY: "l",
    PREEMPT_RESCHED: "p",
}


def lat_flags(flags: int, preempt_count: int) -> str:
    """The five latency-format characters (irqs-off, need-resched, irq context, depths)."""
    if not flags and not preempt_count:
        return "....."
    irqs = "d" if flags & IRQS_OFF else "b" if flags & BH_OFF else "."
    resched = _RESCHED.get(flags & (NEED_RESCHED | NEED_RESCHED_LAZY | PREEMPT_RESCHED), ".")
    nmi, hard, soft = flags & NMI, flags & HARDIRQ, flags & SOFTIRQ
    ctx = ("Z" if nmi and hard else "z" if nmi else "H" if hard and soft else
           "h" if hard else "s" if soft else ".")
    depth = f"{preempt_count & 0xF:x}" if preempt_count & 0xF else "."
    migrate = f"{preempt_count >> 4:x}" if preempt_count & 0xF0 else "."
    return irqs + resched + ctx + depth + migrate


def format_timestamp(ts_ns: int) -> str:
    """Seconds and microseconds as the kernel prints them: rounded to the microsecond."""
    usecs = (ts_ns + 500) // 1000
    return f"{usecs // 1_000_000:5d}.{usecs % 1_000_000:06d}"


def line_prefix(comm: str, pid: int, cpu: int, ts_ns: int, flags: int = 0, preempt: int = 0) -> str:
    return f"{comm:>16s}-{pid:<7d} [{cpu:03d}] {lat_flags(flags, preempt)} {format_timestamp(ts_ns)}: "


# A printer renders the part after the prefix for one event: (format, values) -> text.
Printer = Callable[[EventFormat, dict], str]
_SYSTEM_PRINTERS: dict[str, Callable[[EventFormat], Printer | None]] = {}
# Systems whose printers live with their source, imported when first needed.
_LAZY_PRINTERS = {"syscalls": ("usertrace.sources.syscalls.user_data", "trace_printer")}


def _factory(system: str):
    factory = _SYSTEM_PRINTERS.get(system)
    if factory is None and system in _LAZY_PRINTERS:
        import importlib
        module, name = _LAZY_PRINTERS[system]
        factory = _SYSTEM_PRINTERS[system] = getattr(importlib.import_module(module), name)
    return factory


def register_printer(system: str, factory: Callable[[EventFormat], Printer | None]) -> None:
    """Let ``system``'s events print their own way (factory returns None to use the print fmt)."""
    _SYSTEM_PRINTERS[system] = factory


class TextFormatter:
    """Turns decoded records into ``trace`` lines; caches one printer per event format."""

    def __init__(self):
        self._printers: dict[int, Printer] = {}

    def printer(self, fmt: EventFormat) -> Printer:
        key = id(fmt)
        p = self._printers.get(key)
        if p is None:
            factory = _factory(fmt.system)
            p = factory(fmt) if factory else None
            if p is None:
                compiled = PrintFmt(fmt)
                name = fmt.name
                p = lambda _fmt, values: f"{name}: {compiled.render(values)}"  # noqa: E731
            self._printers[key] = p
        return p

    def event_text(self, fmt: EventFormat, values: dict) -> str:
        return self.printer(fmt)(fmt, values)

    def line(self, fmt: EventFormat, values: dict, comm: str, cpu: int, ts_ns: int) -> str:
        return line_prefix(comm, values.get("common_pid", 0), cpu, ts_ns,
                           values.get("common_flags", 0), values.get("common_preempt_count", 0)
                           ) + self.event_text(fmt, values)
