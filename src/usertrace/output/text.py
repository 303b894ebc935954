"""The kernel's ``trace`` text: header lines and one line per event.

A line is ``comm-pid [cpu] flags timestamp: event: text``::

            bash-2048    [001] .....   297.300813: sys_openat(dfd: 0xffffff9c, ...)

The event part is the event's print fmt rendered for the record, except where the kernel prints
an event its own way (syscall events: ``sys_openat(dfd: 0xffffff9c, ...)``, ``sys_openat ->
0x3``); such printers register here by system (:func:`register_printer`).

:class:`TextRenderer` makes the lines of a :class:`usertrace.trace.Trace`: per event format a
function from the record's bytes to its text (one struct unpack for the fields a row printer
prints), per task and cpu the prefix, and the time stamp from the text of its second.  Probe events, whose group is any name, are told by their fields and printed as the kernel's
``trace`` prints them (``p_app: (0x401136) x=1``), not by their print fmt.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from ..events.format import EventFormat
from ..events.records import NATIVE, Abi, RecordCodec, RecordError, int_code
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
    irqs = ("D" if flags & IRQS_OFF and flags & BH_OFF else "d" if flags & IRQS_OFF
            else "b" if flags & BH_OFF else ".")
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


# How events print after the prefix.  The kernel prints most events from their print fmt
# (``name: text``); some systems print their own way (syscall events: ``sys_openat(...)``).
# Such a system registers a factory (register_printer) that makes a RowPrinter for a format:
# the fields it prints, in its order, and a function from their values (a tuple, each as the
# format declares it, signed or not) to the text.  Given the record, the formatter unpacks
# those fields with one struct; given a dict of values, it takes them from the dict.


@dataclass(frozen=True)
class RowPrinter:
    fields: tuple[str, ...]
    render: Callable[[tuple], str]


_SYSTEM_PRINTERS: dict[str, Callable[[EventFormat], RowPrinter | None]] = {}
# Systems whose printers live elsewhere, imported when first needed.
_LAZY_PRINTERS = {"syscalls": ("usertrace.output.syscall_text", "syscall_row_printer")}


def _factory(system: str):
    factory = _SYSTEM_PRINTERS.get(system)
    if factory is None and system in _LAZY_PRINTERS:
        import importlib
        module, name = _LAZY_PRINTERS[system]
        factory = _SYSTEM_PRINTERS[system] = getattr(importlib.import_module(module), name)
    return factory


def _probe_row_printer(fmt: EventFormat) -> RowPrinter | None:
    """Probe events print their own way in every group (``print_uprobe_event``): they are
    told by their fields (``__probe_ip``, or ``__probe_func`` and ``__probe_ret_ip``)."""
    if not fmt.fields or not fmt.fields[0].name.startswith("__probe_"):
        return None
    from ..sources.probes.events import probe_printer
    printer = probe_printer(fmt)
    if printer is None:
        return None
    names = tuple(f.name for f in fmt.fields)
    return RowPrinter(names, lambda row: printer(fmt, dict(zip(names, row))))


def register_printer(system: str, factory: Callable[[EventFormat], RowPrinter | None]) -> None:
    """Let ``system``'s events print their own way (the factory returns None for a format
    that prints from its print fmt)."""
    _SYSTEM_PRINTERS[system] = factory


def plain_int_fields(fields) -> bool:
    """True when every field is a scalar integer of 1, 2, 4 or 8 bytes (no array, no string,
    no dynamic field): what one struct unpacks."""
    return all(f is not None and not f.is_dynamic and f.array_len is None
               and f.size in (1, 2, 4, 8) for f in fields)


def row_struct(fmt: EventFormat, names: tuple[str, ...], abi: Abi) -> struct.Struct | None:
    """One struct that unpacks the fields ``names`` of a record of ``fmt``, in that order,
    or None when they are not plain integers in ascending, non-overlapping places."""
    fields = [fmt.field(n) for n in names]
    if not plain_int_fields(fields):
        return None
    codes, pos = [], 0
    for f in fields:
        if f.offset < pos:
            return None
        if f.offset > pos:
            codes.append(f"{f.offset - pos}x")
        codes.append(int_code(f.size, f.signed))
        pos = f.offset + f.size
    return struct.Struct(abi.endian + "".join(codes))


_T3 = tuple(f"{i:03d}" for i in range(1000))


class TextFormatter:
    """Turns records into ``trace`` lines; compiles one body function per event format.

    :meth:`event_text` and :meth:`line` take decoded values (a dict); :meth:`body` makes the
    function that renders a record straight from its bytes, which :class:`TextRenderer` uses.
    """

    def __init__(self, abi: Abi = NATIVE):
        self.abi = abi
        self._printers: dict[int, Callable[[dict], str]] = {}
        self._bodies: dict[int, Callable] = {}
        self._rows: dict[int, tuple | None] = {}
        self.print_fmt_errors: list[tuple[EventFormat, str]] = []

    def _row_printer(self, fmt: EventFormat) -> RowPrinter | None:
        factory = _factory(fmt.system)
        return factory(fmt) if factory else _probe_row_printer(fmt)

    def _print_fmt(self, fmt: EventFormat) -> PrintFmt:
        compiled = PrintFmt(fmt)
        if compiled.failed:
            self.print_fmt_errors.append((fmt, compiled.error))
        return compiled

    def printer(self, fmt: EventFormat) -> Callable[[dict], str]:
        """The text after the prefix, from a dict of the record's values."""
        key = id(fmt)
        p = self._printers.get(key)
        if p is None:
            row = self._row_printer(fmt)
            if row is not None:
                names, render = row.fields, row.render
                p = lambda values: render(tuple([values.get(n, 0) for n in names]))  # noqa: E731
            else:
                compiled = self._print_fmt(fmt)
                name = fmt.name
                p = lambda values: f"{name}: {compiled.render(values)}"  # noqa: E731
            self._printers[key] = p
        return p

    def event_text(self, fmt: EventFormat, values: dict) -> str:
        return self.printer(fmt)(values)

    def line(self, fmt: EventFormat, values: dict, comm: str, cpu: int, ts_ns: int) -> str:
        return line_prefix(comm, values.get("common_pid", 0), cpu, ts_ns,
                           values.get("common_flags", 0), values.get("common_preempt_count", 0)
                           ) + self.event_text(fmt, values)

    def body(self, fmt: EventFormat, codec: RecordCodec | None = None) -> Callable:
        """``body(page, start, size) -> text``: the text after the prefix, from the record
        ``page[start:start+size]``.  Raises RecordError (or struct.error) for a record that
        does not fit its format."""
        key = id(fmt)
        b = self._bodies.get(key)
        if b is None:
            b = self._bodies[key] = self._compile_body(fmt, codec or RecordCodec(fmt, self.abi))
        return b

    def row(self, fmt: EventFormat) -> tuple[Callable, int, Callable] | None:
        """``(unpack, size, render)`` when the event prints with a row printer whose fields
        one struct unpacks: the text is ``render(unpack(page, start))`` for a record of at
        least ``size`` bytes."""
        key = id(fmt)
        r = self._rows.get(key, False)
        if r is False:
            row = self._row_printer(fmt)
            st = row_struct(fmt, row.fields, self.abi) if row is not None else None
            r = self._rows[key] = (st.unpack_from, st.size, row.render) if st else None
        return r

    def _compile_body(self, fmt: EventFormat, codec: RecordCodec) -> Callable:
        fast = self.row(fmt)
        if fast is not None:
            unpack, need, render = fast
            return unpacked_text(fmt.full_name, unpack, need, render)
        decode = codec.decode
        row = self._row_printer(fmt)
        if row is not None:
            names, render = row.fields, row.render

            def dict_body(page, start: int, size: int) -> str:
                values = decode(page, start, size)
                return render(tuple([values.get(n, 0) for n in names]))
            return dict_body
        compiled = self._print_fmt(fmt)
        render = compiled.render
        name = fmt.name
        return lambda page, start, size: f"{name}: {render(decode(page, start, size))}"


def unpacked_text(full_name: str, unpack: Callable, need: int, render: Callable) -> Callable:
    """``text(page, start, size) = render(unpack(page, start))`` for a record of at least
    ``need`` bytes; a shorter one raises RecordError."""
    def text(page, start: int, size: int) -> str:
        if size < need:
            raise short_record(full_name, size, need)
        return render(unpack(page, start))
    return text


def short_record(full_name: str, size: int, need: int) -> RecordError:
    return RecordError(f"{full_name}: record of {size} bytes is shorter than the {need} its "
                       f"fields need")


class TextRenderer:
    """Renders a trace's records as ``trace`` lines (a :class:`usertrace.trace.Renderer`)."""

    def __init__(self, trace):
        self.trace = trace
        self.formatter = TextFormatter(trace.abi)
        self._sec = [-(1 << 70), ""]       # the second being printed: its first ns, its text

    def _second(self, ts: int) -> int:
        """Start printing the second ``ts`` falls in (rounded to the microsecond as the
        kernel rounds); return ``ts`` less the second's first ns."""
        secs = (ts + 500) // 1000 // 1_000_000
        sec = self._sec
        sec[0] = secs * 1_000_000_000 - 500
        sec[1] = f"{secs:5d}."
        return ts - sec[0]

    def compile(self, rec) -> Callable:
        prefix = (f"{rec.comm:>16s}-{rec.pid:<7d} [{rec.cpu:03d}] "
                  f"{lat_flags(rec.flags, rec.preempt_count)} ")
        fmt = rec.format
        sec, second, t3 = self._sec, self._second, _T3
        fast = self.formatter.row(fmt) if fmt is not None else None
        if fast is not None:
            # the hot path (every syscall event): one function, one unpack, one template
            unpack, need, render = fast
            full_name = fmt.full_name

            def row_line(page, start: int, size: int, ts: int) -> str:
                if size < need:
                    raise short_record(full_name, size, need)
                r = ts - sec[0]
                if not 0 <= r < 1_000_000_000:
                    r = second(ts)
                u = r // 1000
                return (f"{prefix}{sec[1]}{t3[u // 1000]}{t3[u % 1000]}: "
                        f"{render(unpack(page, start))}\n")
            return row_line
        if fmt is None:
            text = (f"{rec.failed.name}: [FAILED TO PARSE]" if rec.failed is not None
                    else f"[UNKNOWN EVENT TYPE {rec.event_id}]")
            body = lambda page, start, size: text  # noqa: E731
        else:
            body = self.formatter.body(fmt, self.trace.decoder.codec(fmt.id))

        def line(page, start: int, size: int, ts: int) -> str:
            r = ts - sec[0]
            if not 0 <= r < 1_000_000_000:
                r = second(ts)
            u = r // 1000
            return f"{prefix}{sec[1]}{t3[u // 1000]}{t3[u % 1000]}: {body(page, start, size)}\n"
        return line

    def failed(self, rec, page, start: int, size: int, ts: int, reason: str) -> str:
        fmt = rec.format or rec.failed
        if fmt is not None:
            text = f"{fmt.name}: [FAILED TO PARSE]"
        elif rec.event_id >= 0:
            text = f"[UNKNOWN EVENT TYPE {rec.event_id}]: [FAILED TO PARSE]"
        else:
            text = "[FAILED TO PARSE]"          # not even a common header
        return (line_prefix(rec.comm, rec.pid, rec.cpu, ts, rec.flags, rec.preempt_count)
                + text + "\n")
