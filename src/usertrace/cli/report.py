"""``usertrace report``: a trace.dat (ours or trace-cmd's) as the kernel's trace text or JSON."""

from __future__ import annotations

import argparse
import heapq

from ..buffer.layout import PageLayout, RingBufferError
from ..buffer.tracedat import TraceDatError, TraceDatReader
from ..events.records import Abi
from ..output.events import TraceReadError, count_events, iter_events
from ..output.jsonl import event_line
from ..output.text import TextFormatter, line_prefix, trace_header
from . import calls
from .context import CliError, Context, ExitStatus


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", metavar="FILE", default="trace.dat",
                   help="the trace.dat to read (default: trace.dat)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per event: {"ts_ns", "cpu", "pid", "comm", "system", '
                        '"event", "fields"}')
    calls.add_arguments(p, live=False)
    p.epilog = ("examples:\n  usertrace report\n  usertrace report -i open.dat --json | jq .fields\n"
                "  usertrace report --calls -T -y -s 128      # as strace -f -T -y -s 128\n"
                "  trace-cmd extract -B myinst -o k.dat && usertrace report -i k.dat\n")


def run(args: argparse.Namespace, ctx: Context) -> int:
    view = calls.view_options(args, live=False)
    if view is not None and args.json:
        raise CliError("--calls or --json, not both", ExitStatus.USAGE)
    try:
        reader = TraceDatReader(args.input)
    except TraceDatError as exc:
        raise CliError(str(exc)) from None
    try:
        return _report(reader, args, ctx, view)
    except (TraceDatError, TraceReadError, RingBufferError) as exc:
        raise CliError(f"{args.input}: {exc}") from None
    finally:
        reader.close()


def _report(reader: TraceDatReader, args, ctx: Context, view=None) -> int:
    layout = PageLayout(reader.page_size, Abi("<" if reader.endian == "little" else ">",
                                              reader.long_size))
    formats = list(reader.formats_by_id().values())
    # The top buffer, and the instances trace-cmd extract -B writes: all in one time order.
    buffers = [b for b in reader.buffers if any(b.num_pages(c) for c in b.cpu_ids)] or reader.buffers[:1]

    def pages(buf):
        return {cpu: buf.iter_pages(cpu) for cpu in buf.cpu_ids}

    def events():
        streams = [iter_events(pages(b), formats, layout, reader.cmdlines) for b in buffers]
        return streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda e: (e.ts_ns, e.cpu))

    out = ctx.stdout
    if view is not None:
        return _report_calls(events(), view, out)
    if args.json:
        for ev in events():
            out.write(event_line(ev) + "\n")
        return ExitStatus.OK
    entries = lost = 0
    for b in buffers:
        e, l = count_events(pages(b), layout)
        entries, lost = entries + e, lost + l
    ncpus = max([reader.cpu_count, 1] + [len(b.cpu_ids) for b in buffers])
    out.write(trace_header(entries, entries + lost, ncpus))
    text = TextFormatter()
    for ev in events():
        if ev.format is None:
            out.write(line_prefix(ev.comm, ev.pid, ev.cpu, ev.ts_ns)
                      + f"[UNKNOWN EVENT TYPE {ev.values['common_type']}]\n")
        else:
            out.write(text.line(ev.format, ev.values, ev.comm, ev.cpu, ev.ts_ns) + "\n")
    return ExitStatus.OK


def _report_calls(events, view, out) -> int:
    """``--calls``: the events as strace lines (:func:`calls.print_calls`)."""
    calls.print_calls(events, view, out)
    return ExitStatus.OK
