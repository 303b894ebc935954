"""``usertrace list`` and ``usertrace format``."""

from __future__ import annotations

import argparse
import os

from ..catalog import known_events
from ..events.format import EventFormat, FormatError, read_format_text
from .context import CliError, Context, ExitStatus


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "list":
        p.add_argument("-e", "--event", metavar="GLOB", action="append",
                       help="only events matching SYSTEM:EVENT globs (as record -e); repeatable")
        p.epilog = ("examples:\n  usertrace list\n  usertrace list -e 'syscalls:*open*'\n"
                    "  usertrace list -e 'sdt_python:*'      # probe events (usertrace probe)\n")
    else:
        p.add_argument("what", metavar="SYSTEM:EVENT|FILE",
                       help="an event name, or a format file to parse and render again")
        p.add_argument("--no-strings", action="store_true",
                       help="a syscall event as the running kernel has it, without the "
                            "user-space data (__<arg>_val fields) record and stream record")
        p.epilog = ("examples:\n  usertrace format syscalls:sys_enter_openat\n"
                    "  usertrace format --no-strings syscalls:sys_enter_openat\n"
                    "  usertrace format /sys/kernel/tracing/events/sched/sched_switch/format\n")


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args._name == "list":
        return run_list(args, ctx)
    return run_format(args, ctx)


def _known_events(ctx: Context, syscall_data: bool = False):
    """Every event known now, user events and probes from the session ``ctx.env`` names."""
    from ..sources.user_events import default_session_dir
    return known_events(user_events=True, probes=True, syscall_data=syscall_data,
                        session_dir=default_session_dir(ctx.env))


def run_list(args, ctx: Context) -> int:
    reg = _known_events(ctx)
    patterns = args.event or ["*:*"]
    seen = set()
    for pat in patterns:
        matched = reg.match(pat)
        if not matched and args.event:
            raise CliError(f"no event matches {pat!r}")
        for fmt in matched:
            if fmt.full_name not in seen:
                seen.add(fmt.full_name)
                ctx.stdout.write(fmt.full_name + "\n")
    return ExitStatus.OK


def run_format(args, ctx: Context) -> int:
    what = args.what
    if os.path.exists(what) or "/" in what:
        try:
            text = read_format_text(what)
        except FormatError as exc:
            raise CliError(str(exc)) from None
        try:
            fmt = EventFormat.parse(text)
        except FormatError as exc:
            exc.path = what
            raise
        ctx.stdout.write(fmt.render())
        return ExitStatus.OK
    reg = _known_events(ctx, syscall_data=not args.no_strings)
    system, _, name = what.rpartition(":")
    matched = [f for f in reg.match(what if system else f"*:{name}") if "*" not in what]
    if not matched:
        raise CliError(f"unknown event {what!r} (usertrace list shows the known ones)")
    ctx.stdout.write(matched[0].render())
    return ExitStatus.OK
