"""``usertrace record``, ``stream`` and ``stat``: trace a command or running processes.

In trace-cmd's words: ``-e EVENT`` enables events (``syscalls``, ``syscalls:sys_enter_open*``,
``sys_exit_read``), ``-f FILTER`` filters the ``-e`` before it, ``-o FILE`` names the
trace.dat; the processes come from ``-P PID[,PID...]`` or from the command after ``--``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from ..events.registry import Consumer
from ..filter import FilterError
from ..output.stats import SyscallStats
from ..ptrace.errors import TraceError
from ..ptrace.status import ExitStatus as ProcessStatus
from ..session import EventSpec, Session, SessionError, SyscallSource
from ..session.user_events import UserEventsSource, is_user_events_spec
from .context import CliError, Context, ExitStatus


class _EventAction(argparse.Action):
    """-e appends an event spec; -f sets the filter of the last one (as trace-cmd)."""

    def __call__(self, parser, namespace, value, option_string=None):
        specs = getattr(namespace, "events", None) or []
        if option_string in ("-e", "--event"):
            specs.append(EventSpec(value))
        else:
            if not specs:
                parser.error(f"{option_string} {value!r}: a filter applies to the -e before it, "
                             "and there is none")
            if specs[-1].filter is not None:
                parser.error(f"{option_string} {value!r}: -e {specs[-1].pattern} has a filter already")
            specs[-1].filter = value
        namespace.events = specs


EXAMPLES = {
    "record": """examples:
  usertrace record -- ls /tmp            # every syscall of ls, into trace.dat
  usertrace record -e 'syscalls:sys_*_openat' -f 'ret < 0' -o fails.dat -- make
  usertrace record -e syscalls:sys_enter_write -f 'fd == 1' -P 1234,1240
  usertrace record --summary -- python3 app.py     # and a strace -c table
  usertrace record -e 'user_events:app_*' -- python3 app.py
  usertrace record -e user_events        # every process, until Ctrl-C
""",
    "stream": """examples:
  usertrace stream -- ls /tmp
  usertrace stream -s -e 'syscalls:sys_*_openat' -- cat /etc/hostname
  usertrace stream -e 'syscalls:sys_enter_*' -f 'common_pid == 1234' -P 1234
  usertrace stream -e 'user_events:app_*' -f 'status >= 500'
""",
    "stat": """examples:
  usertrace stat -- python3 -c 'print(1)'
  usertrace stat -e 'syscalls:sys_*_read*' -P 1234   # Ctrl-C: stop and print
""",
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("-e", "--event", dest="events", metavar="EVENT", action=_EventAction,
                   help="events to enable: SYSTEM, SYSTEM:EVENT, EVENT, with globs; repeatable "
                        "(default: syscalls)")
    p.add_argument("-f", "--filter", dest="events", metavar="FILTER", action=_EventAction,
                   help="filter for the -e before it, in the kernel's filter language")
    p.add_argument("-P", "--pid", dest="pids", metavar="PID[,PID...]", action="append",
                   help="attach to running processes (every thread); repeatable")
    if name == "record":
        p.add_argument("-o", "--output", metavar="FILE", default="trace.dat",
                       help="the trace.dat to write (default: trace.dat)")
        p.add_argument("--file-version", type=int, choices=(6, 7), default=7,
                       help="trace.dat version (default 7)")
        p.add_argument("-b", "--buffer-size", metavar="KB", type=int, default=1024,
                       help="ring buffer per cpu in KiB before pages go to the file (default 1024)")
        p.add_argument("--summary", action="store_true",
                       help="also print a strace -c table of the syscalls at the end")
    if name == "stream":
        p.add_argument("-s", "--strings", action="store_true",
                       help="show const char * arguments as strings too (read from the tracee "
                            "at the syscall's entry; the records stay the kernel's)")
    p.add_argument("--no-seccomp", action="store_true",
                   help="stop the launched command at every syscall, as when attaching "
                        "(slower; for comparison)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]",
                   help="the command to launch and trace")
    p.epilog = EXAMPLES[name]


def run(args: argparse.Namespace, ctx: Context) -> int:
    name = args._name
    pids = _parse_pids(args.pids or [])
    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if pids and command:
        raise CliError("give either -P PID or a command after --, not both", ExitStatus.USAGE)
    specs = args.events or [EventSpec("syscalls")]
    user_specs = [s for s in specs if is_user_events_spec(s)]
    if not pids and not command and not (user_specs and name != "stat"):
        raise CliError(f"nothing to trace: usertrace {name} [-e EVENT]... -- COMMAND, "
                       f"or -P PID (or -e 'user_events:...' alone, until Ctrl-C)",
                       ExitStatus.USAGE)

    ncpus = os.cpu_count() or 1
    session = Session(ncpus=ncpus + 1 if user_specs else ncpus)
    consumers = {"record": Consumer.TRACE, "stream": Consumer.STREAM, "stat": Consumer.OTHER}[name]
    for spec in specs:
        try:
            if spec in user_specs and not session.registry.match(spec.pattern):
                continue                      # user events only: they come and go
            session.enable(spec, consumers)
        except FilterError as exc:
            raise CliError(f"bad filter for -e {spec.pattern}:\n{exc.render()}") from None
        except SessionError as exc:
            raise CliError(str(exc)) from None

    stats = SyscallStats() if name == "stat" or getattr(args, "summary", False) else None
    if name == "record":
        nr_pages = max(args.buffer_size * 1024 // 4096, 2)
        try:
            session.record_to(args.output, version=args.file_version, nr_pages=nr_pages)
        except SessionError as exc:
            raise CliError(str(exc)) from None
    elif name == "stream":
        session.stream_to(ctx.stdout, flush_each=True)

    users = None
    if user_specs:
        users = UserEventsSource(session, user_specs, consumers,
                                 warn=lambda msg: ctx.error(msg))
        try:
            users.start()
        except (SessionError, FilterError) as exc:
            session.abort()
            msg = exc.render() if isinstance(exc, FilterError) else str(exc)
            raise CliError(msg) from None
    try:
        if pids or command:
            status = _trace_processes(session, args, pids, command, stats)
        else:
            status = _wait_for_signal()
    except TraceError as exc:
        _stop(users)
        session.abort()
        raise CliError(str(exc)) from None
    except BaseException:
        _stop(users)
        session.abort()
        raise
    _stop(users)
    try:
        session.finish()
    except SessionError as exc:
        raise CliError(str(exc)) from None

    if users is not None and (users.lost or users.refused):
        ctx.error(f"user events: {users.lost} lost (writers' buffers full), "
                  f"{users.refused} refused (malformed)")
    if name == "record":
        t = session.trace
        ctx.stderr.write(f"usertrace: {t.entries} events recorded in {args.output}"
                         + (f", {t.lost} lost (buffer full)" if t.lost else "") + "\n")
    if stats is not None:
        ctx.stderr.write(stats.render())      # as strace -c: on stderr
    if status.detached:
        return ExitStatus.OK if not command else status.returncode
    if status.signal is not None:
        ctx.kill_with = status
    return status.returncode


def _trace_processes(session: Session, args, pids: list[int], command: list[str],
                     stats: SyscallStats | None) -> ProcessStatus:
    source = SyscallSource(session, strings=getattr(args, "strings", False), stats=stats)
    tracer = source.make_tracer(seccomp=not args.no_seccomp)
    if command:
        tracer.launch(command)
    else:
        tracer.attach(pids)
    return tracer.run()


def _wait_for_signal() -> ProcessStatus:
    """Trace user events alone until SIGINT, SIGTERM or SIGHUP."""
    stop = threading.Event()
    caught = []

    def handler(sig, frame):
        caught.append(sig)
        stop.set()
    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
    return ProcessStatus(0, None, detached=True) if caught else ProcessStatus(0)


def _stop(users) -> None:
    if users is not None:
        users.stop()


def _parse_pids(values: list[str]) -> list[int]:
    pids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part.isdigit() or int(part) <= 0:
                raise CliError(f"-P {value}: {part!r} is not a process id", ExitStatus.USAGE)
            pids.append(int(part))
    return pids

