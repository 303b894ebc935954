"""``--calls``: one line per system call, as strace prints it, for ``stream`` and ``report``.

The options are strace's: ``-T`` (time in the call), ``-t``/``-tt``/``-ttt`` (wall clock),
``-r`` (time since the previous line), ``-y`` (descriptor paths), and for ``report`` ``-s N``
(the length of strings shown) and ``-z``/``-Z`` (only the calls that succeeded / failed).
:func:`view_options` turns them into the view's :class:`ViewOptions`.  Lines begin with the
thread id as with ``strace -f -o FILE`` (``report``, ``stream -o FILE``), or with
``[pid N]`` while more than one task is traced as on strace's terminal (``stream``).
"""

from __future__ import annotations

import argparse
import time

from ..output.strace import (PID_AUTO, PID_PLAIN, STATUS_ALL, TS_EPOCH, TS_NONE, CallView,
                             ViewOptions)
from .context import CliError, ExitStatus

DEFAULT_SHOWN = 32        # strace's -s


def add_arguments(p: argparse.ArgumentParser, live: bool) -> None:
    g = p.add_argument_group("one line per call, as strace prints it")
    g.add_argument("--calls", action="store_true",
                   help="print each system call on one line as strace does: "
                        "openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY) = 3")
    g.add_argument("-T", dest="durations", action="store_true",
                   help="with --calls: the time spent in each call, <0.000012>")
    g.add_argument("-t", dest="timestamps", action="count", default=0,
                   help="with --calls: the wall clock; -tt with microseconds, -ttt in seconds "
                        "since the epoch")
    g.add_argument("-r", dest="relative", action="store_true",
                   help="with --calls: the time since the previous line")
    g.add_argument("-y", dest="show_fds", action="store_true",
                   help="with --calls: the path of each file descriptor, 3</etc/hostname>")
    if not live:
        g.add_argument("-s", dest="max_len", metavar="N", type=int, default=DEFAULT_SHOWN,
                       help=f"with --calls: bytes of each string shown (default {DEFAULT_SHOWN})")
        g.add_argument("-Z", "--failed", dest="status", action="store_const", const="failed",
                       help="with --calls: only the calls that failed")
        g.add_argument("-z", "--successful", dest="status", action="store_const",
                       const="successful", help="with --calls: only the calls that succeeded")


def view_options(args: argparse.Namespace, live: bool, output: str | None = None
                 ) -> ViewOptions | None:
    """The view's options from the command line, None without ``--calls``; a CliError for
    a view option given without it."""
    if not args.calls:
        given = [flag for flag, on in (("-T", args.durations), ("-t", args.timestamps),
                                       ("-r", args.relative), ("-y", args.show_fds)) if on]
        if given:
            raise CliError(f"{given[0]} applies to --calls (one line per call)", ExitStatus.USAGE)
        return None
    if args.timestamps > TS_EPOCH:
        raise CliError(f"-{'t' * args.timestamps}: at most -ttt", ExitStatus.USAGE)
    if live:
        shown = args.string_size or DEFAULT_SHOWN
        status = STATUS_ALL             # the recording keeps whole calls itself (-Z, -z)
    else:
        shown = args.max_len
        status = args.status or STATUS_ALL
    if shown <= 0:
        raise CliError(f"-s {shown}: give a positive length", ExitStatus.USAGE)
    return ViewOptions(max_len=shown, show_fds=args.show_fds, timestamps=args.timestamps or TS_NONE,
                       relative=args.relative, durations=args.durations, status=status,
                       pids=PID_PLAIN if output or not live else PID_AUTO,
                       resolve_links=not live,
                       wall_offset_ns=time.time_ns() - time.monotonic_ns())


def print_calls(events, options: ViewOptions, out) -> None:
    """The events (decoded, in time order) as strace lines on ``out``."""
    write = out.write
    CallView(lambda line: write(line + "\n"), options).feed_all(events)
