"""``usertrace report``: a trace.dat (ours or trace-cmd's) as the kernel's trace text or JSON.

A thin layer over :class:`usertrace.trace.Trace` (open, select, the events in time order)
and the output renderers (:class:`~usertrace.output.text.TextRenderer`,
:class:`~usertrace.output.jsonl.JsonRenderer`); lines go out in large chunks as they are
made, the first ones at once.
"""

from __future__ import annotations

import argparse
import re
import time

from ..buffer.tracedat import TraceDatError
from ..filter import FilterError
from ..output.jsonl import JsonRenderer
from ..output.text import TextRenderer, trace_header
from ..trace import Trace, TraceReadError
from . import calls
from .context import CliError, Context, ExitStatus
from .record import _EventAction

CHUNK = 1 << 20             # characters of output gathered before a write
PROGRESS_AFTER = 1.0        # seconds before a progress line appears (stderr a terminal)
PROGRESS_EVERY = 0.25


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", metavar="FILE", default="trace.dat",
                   help="the trace.dat to read (default: trace.dat)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per event: {"ts_ns", "cpu", "pid", "comm", "system", '
                        '"event", "fields"}')
    p.add_argument("-e", "--event", dest="events", metavar="EVENT", action=_EventAction,
                   help="only these events: SYSTEM, SYSTEM:EVENT, EVENT, with globs, or as "
                        "strace writes them (openat, %%file, trace=!close); repeatable")
    p.add_argument("-f", "--filter", dest="events", metavar="FILTER", action=_EventAction,
                   help="only the events of the -e before it that pass this filter (the "
                        "kernel's filter language)")
    p.add_argument("-P", "--pid", dest="pids", metavar="PID[,PID...]", action="append",
                   help="only the events of these tasks (common_pid); repeatable")
    p.add_argument("--cpu", dest="cpus", metavar="CPU[,CPU-CPU...]", action="append",
                   help="only the events of these cpus; repeatable")
    p.add_argument("--start", metavar="SECONDS",
                   help="only events at or after this time stamp (as the text prints it)")
    p.add_argument("--end", metavar="SECONDS",
                   help="only events at or before this time stamp (as the text prints it)")
    calls.add_arguments(p, live=False)
    p.epilog = ("examples:\n  usertrace report\n  usertrace report -i open.dat --json | jq .fields\n"
                "  usertrace report -e 'syscalls:sys_exit_*' -f 'ret < 0' -P 1234\n"
                "  usertrace report --cpu 0,2-3 --start 1200.5 --end 1201\n"
                "  usertrace report --calls -T -y -s 128      # as strace -f -T -y -s 128\n"
                "  trace-cmd extract -B myinst -o k.dat && usertrace report -i k.dat\n")


def run(args: argparse.Namespace, ctx: Context) -> int:
    view = calls.view_options(args, live=False)
    if view is not None and args.json:
        raise CliError("--calls or --json, not both", ExitStatus.USAGE)
    try:
        trace = Trace(args.input)
    except (TraceDatError, TraceReadError) as exc:
        raise CliError(str(exc)) from None
    try:
        return _report(trace, args, ctx, view)
    except TraceReadError as exc:
        raise CliError(str(exc)) from None
    except FilterError as exc:
        raise CliError(exc.render(), ExitStatus.USAGE) from None
    finally:
        trace.close()


def _report(trace: Trace, args, ctx: Context, view=None) -> int:
    sel = trace.select(
        events=[(spec.pattern, spec.filter) for spec in args.events] if args.events else None,
        pids=_numbers("-P", args.pids, ranges=False) if args.pids else None,
        cpus=_numbers("--cpu", args.cpus, ranges=True) if args.cpus else None,
        start_ns=_time("--start", args.start, first=True) if args.start else None,
        end_ns=_time("--end", args.end, first=False) if args.end else None)
    for line in trace.format_problems():
        _warn(ctx, line)
    if view is not None:                  # --calls: one line per call, as strace prints it
        calls.print_calls(trace.events(sel), view, ctx.stdout)
        return ExitStatus.OK
    out = _Output(ctx)
    if args.json:
        renderer = JsonRenderer(trace)
    else:
        renderer = TextRenderer(trace)
        entries, lost = trace.counts()
        out.write(trace_header(entries, entries + lost, trace.ncpus))
        out.flush()
    progress = _Progress(ctx, trace)
    first = True
    for batch in trace.batches(renderer, sel, on_page=progress.page):
        out.lines(batch)
        if first:
            out.flush()
            first = False
    out.flush()
    progress.done()
    if not args.json:
        for fmt, error in renderer.formatter.print_fmt_errors:
            _warn(ctx, f"{trace.path}: event {fmt.full_name}: its print fmt does not parse "
                       f"({error}): its events print as [FAILED TO PARSE] with their fields")
    problems = trace.problems
    if problems.total:
        _warn(ctx, f"{trace.path}: skipped what could not be read: {problems.summary()}")
        for p in problems.first:
            ctx.stderr.write(f"  {p}\n")
        if problems.total > len(problems.first):
            ctx.stderr.write(f"  ... and {problems.total - len(problems.first)} more\n")
    return ExitStatus.OK


def _warn(ctx: Context, message: str) -> None:
    ctx.stderr.write(f"usertrace: warning: {message}\n")


class _Output:
    """The lines, gathered into large writes; bytes as the file has them (a comm that is not
    UTF-8 goes out as its own bytes) when stdout is a binary-backed stream."""

    def __init__(self, ctx: Context):
        self.stream = ctx.stdout
        self.binary = getattr(ctx.stdout, "buffer", None)
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= CHUNK:
            self.flush()

    def lines(self, lines: list[str]) -> None:
        """A batch of lines (joined once, with the others of the chunk, when it goes out)."""
        self.parts += lines
        self.size += 100 * len(lines)          # about: a line's length is not worth summing
        if self.size >= CHUNK:
            self.flush()

    def flush(self) -> None:
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        if self.binary is not None:
            self.stream.flush()
            self.binary.write(text.encode("utf-8", "surrogateescape"))
            self.binary.flush()
        else:
            self.stream.write(text)
            self.stream.flush()


class _Progress:
    """``usertrace report: 45% of 30000 pages`` on stderr, when it is a terminal and the
    report takes more than a second."""

    def __init__(self, ctx: Context, trace: Trace):
        isatty = getattr(ctx.stderr, "isatty", None)
        self.on = bool(isatty and isatty())
        self.stderr = ctx.stderr
        self.trace = trace
        self.pages = 0
        self.total = None
        self.start = time.monotonic()
        self.next = self.start + PROGRESS_AFTER
        self.shown = False

    def page(self) -> None:
        self.pages += 1
        if not self.on or self.pages & 63:
            return
        now = time.monotonic()
        if now < self.next:
            return
        if self.total is None:
            self.total = max(self.trace.num_pages(), 1)
        self.next = now + PROGRESS_EVERY
        pct = min(100 * self.pages // self.total, 100)
        self.stderr.write(f"\rusertrace report: {pct:3d}% of {self.total} pages")
        self.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stderr.write("\r\033[K")
            self.stderr.flush()


def _numbers(option: str, values: list[str], ranges: bool) -> list[int]:
    """``1,3`` (and ``5-7`` with ``ranges``) of every value of a repeatable option."""
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            lo, sep, hi = part.partition("-") if ranges else (part, "", "")
            if not lo.isdigit() or (sep and not hi.isdigit()) or len(part) > 20:
                raise CliError(f"{option} {value}: {part!r} is not a number"
                               f"{' or a range' if ranges else ''}", ExitStatus.USAGE)
            first, last = int(lo), int(hi) if sep else int(lo)
            if last < first or last - first > 1 << 16:
                raise CliError(f"{option} {value}: bad range {part!r}", ExitStatus.USAGE)
            out.extend(range(first, last + 1))
    return out


_TIME_RE = re.compile(r"^(\d{1,12})(?:\.(\d{1,9}))?$")


def _time(option: str, text: str, first: bool) -> int:
    """The ns bound of ``--start``/``--end SECONDS``.  With at most 6 decimals the time is
    one the text prints (rounded to the microsecond): every event printed with it is in."""
    m = _TIME_RE.match(text.strip())
    if m is None:
        raise CliError(f"{option} {text!r}: not a time in seconds (e.g. 1200.000123)",
                       ExitStatus.USAGE)
    secs, frac = int(m[1]), m[2] or ""
    if len(frac) <= 6:
        us = secs * 1_000_000 + int(frac.ljust(6, "0"))
        return us * 1000 - 500 if first else us * 1000 + 499
    return secs * 1_000_000_000 + int(frac.ljust(9, "0"))
