"""``usertrace record``, ``stream`` and ``stat``: trace a command or running processes.

In trace-cmd's words: ``-e EVENT`` enables events (``syscalls``, ``syscalls:sys_enter_open*``,
``sys_exit_read``), ``-f FILTER`` filters the ``-e`` before it, ``-o FILE`` names the
trace.dat; the processes come from ``-P PID[,PID...]``, from the command after ``--``, or,
with ``-a``, are every process of the machine.  ``--backend`` chooses who makes the events:
the running kernel (root and a tracefs) or the ptrace engine.  In strace's words as well:
``-e openat``, ``-e trace=%file,%net``, ``-Z``/``-z``, and for ``stream --calls`` one line
per call with ``-T``, ``-t``, ``-tt``, ``-ttt``, ``-y``.
"""

from __future__ import annotations

import argparse
import gc
import os

from ..events.registry import Consumer
from ..filter import FilterError
from ..output.stats import SyscallStats, render_hits
from ..ptrace import TraceError
from ..ptrace.launch import resolve_command
from ..session import EventSpec, Recorder
from ..sources.probes.errors import ProbeError
from ..sources.syscalls.source import FAILED, MAX_STRING_SIZE, STRING_SIZE, SUCCESSFUL
from . import calls
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
            if not value.strip():
                parser.error(f"{option_string} '': an empty filter filters nothing (give an "
                             "expression, e.g. -f 'ret < 0', or leave -f out)")
            if specs[-1].filter is not None:
                parser.error(f"{option_string} {value!r}: -e {specs[-1].pattern} has a filter already")
            specs[-1].filter = value
        namespace.events = specs


EXAMPLES = {
    "record": """examples:
  usertrace record -- ls /tmp            # every syscall of ls, into trace.dat
  usertrace record -e 'syscalls:sys_*_openat' -f 'ret < 0' -o fails.dat -- make
  usertrace record -e trace=%file -Z -o fails.dat -- make   # failed file calls, whole
  usertrace record -e syscalls:sys_enter_write -f 'fd == 1' -P 1234,1240
  usertrace record --summary -- python3 app.py     # and a strace -c table
  usertrace record -e 'user_events:app_*' -- python3 app.py
  usertrace record -e user_events        # every process, until Ctrl-C
  usertrace record -a -e syscalls:sys_enter_openat  # the machine, until Ctrl-C
  usertrace record --backend ptrace -- ls          # without the kernel's help
  usertrace record --probe 'p:app/req ./server:handle fd=%di:s32' -- ./server
  usertrace record --probe /usr/bin/python3.11:sdt_python:function__entry -- python3 app.py
""",
    "stream": """examples:
  usertrace stream -- ls /tmp
  usertrace stream --calls -e openat,read -y -T -- cat /etc/hostname   # as strace
  usertrace stream --calls -o ls.txt -- ls /tmp
  usertrace stream -e 'syscalls:sys_*_openat' -- cat /etc/hostname
  usertrace stream -e 'syscalls:sys_enter_*' -f 'common_pid == 1234' -P 1234
  usertrace stream -e 'user_events:app_*' -f 'status >= 500'
  usertrace stream --probe 'r:app/ret ./server:handle rv=$retval:s32' -f 'rv < 0' -- ./server
""",
    "stat": """examples:
  usertrace stat -- python3 -c 'print(1)'
  usertrace stat -e %file -Z -o errors.txt -- make
  usertrace stat -e 'syscalls:sys_*_read*' -P 1234   # Ctrl-C: stop and print
  usertrace stat -a                                  # the machine (kernel backend)
  usertrace stat --probe 'p:app/hit ./server:handle' -- ./server   # hits per probe
""",
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("-e", "--event", dest="events", metavar="EVENT", action=_EventAction,
                   help="events to enable: SYSTEM, SYSTEM:EVENT, EVENT, with globs; or as strace "
                        "selects calls: openat,read, trace=%%file,%%net, !close; repeatable "
                        "(default: syscalls and the task events task:task_newtask, "
                        "signal:signal_deliver, sched:sched_process_exit)")
    p.add_argument("-f", "--filter", dest="events", metavar="FILTER", action=_EventAction,
                   help="filter for the -e before it, in the kernel's filter language")
    p.add_argument("-P", "--pid", dest="pids", metavar="PID[,PID...]", action="append",
                   help="attach to running processes (every thread); repeatable")
    p.add_argument("-a", "--all", action="store_true",
                   help="every process of the machine (the kernel backend)")
    p.add_argument("--backend", choices=("auto", "kernel", "ptrace"), default="auto",
                   help="who makes the events: the running kernel (root and a tracefs), "
                        "the ptrace engine, or auto (default): the kernel where it can "
                        "serve every enabled event, else ptrace")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say which backend runs and why")
    p.add_argument("--probe", dest="probes", metavar="DEF", action="append",
                   help="define a probe event for this run and enable it (usertrace probe's "
                        "syntax: p:[GRP/]EVENT PLACE [ARGS], r:..., [PATH:]sdt_PROV:NAME); "
                        "repeatable; with --probe and no -e, only the probes are traced")
    if name == "record":
        p.add_argument("-o", "--output", metavar="FILE", default="trace.dat",
                       help="the trace.dat to write (default: trace.dat)")
        p.add_argument("--file-version", type=int, choices=(6, 7), default=7,
                       help="trace.dat version (default 7)")
        p.add_argument("-b", "--buffer-size", metavar="KB", type=int,
                       help="ring buffer per cpu in KiB (default 1024; the kernel's buffer "
                            "with the kernel backend, default 4096): when the file falls "
                            "behind and it is full, new events are dropped and counted")
        p.add_argument("--summary", action="store_true",
                       help="also print a strace -c table of the syscalls at the end")
    if name in ("stream", "stat"):
        p.add_argument("-o", "--output", metavar="FILE",
                       help="write the " + ("events" if name == "stream" else "table")
                            + " to FILE instead of " + ("stdout" if name == "stream" else "stderr"))
    if name in ("record", "stream"):
        p.add_argument("-s", "--string-size", "--strings", dest="string_size", metavar="N",
                       nargs="?", type=int, const=None, default=None,
                       help=f"bytes of each string or buffer recorded (default {STRING_SIZE}; "
                            f"with --calls the length shown, default 32, paths whole: at "
                            f"least {STRING_SIZE} bytes are recorded)")
        p.add_argument("--no-strings", action="store_true",
                       help="record no user-space data: exactly the running kernel's formats")
    p.add_argument("-Z", "--failed", action="store_const", dest="status", const=FAILED,
                   help="only the calls that failed, enter and exit (strace -Z)")
    p.add_argument("-z", "--successful", action="store_const", dest="status", const=SUCCESSFUL,
                   help="only the calls that succeeded, enter and exit (strace -z)")
    if name == "stream":
        calls.add_arguments(p, live=True)
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
    if pids and args.all:
        raise CliError("give either -P PID or -a (every process), not both", ExitStatus.USAGE)
    if args.no_seccomp and args.backend == "kernel":
        raise CliError("--no-seccomp is an option of the ptrace backend", ExitStatus.USAGE)
    consumers = {"record": Consumer.TRACE, "stream": Consumer.STREAM, "stat": Consumer.OTHER}[name]
    stats = SyscallStats() if name == "stat" or getattr(args, "summary", False) else None
    size = getattr(args, "string_size", None)
    if size is not None and not 0 < size <= MAX_STRING_SIZE:
        raise CliError(f"-s {size}: give 1 to {MAX_STRING_SIZE} (bytes)", ExitStatus.USAGE)
    view = calls.view_options(args, live=True, output=getattr(args, "output", None)) \
        if name == "stream" else None
    try:
        rec = Recorder(args.events, consumers=consumers, stats=stats, status=args.status,
                       strings=False if name == "stat" or getattr(args, "no_strings", False)
                       else None,
                       string_size=_recorded_size(size, view), warn=ctx.error,
                       backend=args.backend, system_wide=args.all,
                       seccomp=not args.no_seccomp, probes=args.probes,
                       program=_program(command, pids, ctx.env))
    except ProbeError as exc:                 # the kernel's error_log text, with its caret
        ctx.stderr.write(exc.render() + "\n")
        return ExitStatus.ERROR
    except FilterError as exc:
        spec = next((s for s in args.events or [] if (s.filter or "").rstrip() == exc.text), None)
        where = f" for -e {spec.pattern}" if spec else ""
        raise CliError(f"bad filter{where}:\n{exc.render()}", ExitStatus.USAGE) from None
    if args.verbose:
        ctx.error(f"backend: {rec.backend} ({rec.backend_reason})")
    if not pids and not command and not args.all and not (rec.wants_user_events
                                                          and name != "stat"):
        raise CliError(f"nothing to trace: usertrace {name} [-e EVENT]... -- COMMAND, "
                       f"or -P PID (or -e 'user_events:...' alone, until Ctrl-C)",
                       ExitStatus.USAGE)
    out = None
    if name != "record" and args.output:
        out = _open_output(args.output)
    try:
        if name == "record":
            rec.record_to(args.output, version=args.file_version, buffer_kb=args.buffer_size)
        elif view is not None:
            rec.stream_calls_to(out or ctx.stdout, view)
        elif name == "stream":
            rec.stream_to(out or ctx.stdout)
        # What start-up built (modules, tables, formats) lives as long as the command: the
        # garbage collector need not walk it again at every collection while tracing.
        gc.freeze()
        try:
            status = rec.run(command or None, pids or None)
        except FilterError as exc:
            raise CliError(exc.render(), ExitStatus.USAGE) from None
        if args.verbose and rec.kernel is not None:
            for line in rec.kernel.leftovers:
                ctx.error(f"{line} (left by a run that was killed)")
        for line in rec.problems():
            ctx.error(line)
        if name == "record":
            ctx.stderr.write(f"usertrace: {rec.summary()}\n")
        if stats is not None and (stats.rows or not rec.probes.probes):
            (out or ctx.stderr).write(stats.render())      # as strace -c: on stderr
        if name == "stat" and rec.probes.probes:
            (out or ctx.stderr).write(render_hits(rec.probes.hit_counts()))
    finally:
        if out is not None:
            out.close()
    if rec.failed and status.returncode == 0:
        return ExitStatus.ERROR               # the command did well; the recording did not
    if status.detached:
        return ExitStatus.OK if not command else status.returncode
    if status.signal is not None:
        ctx.kill_with = status
    return status.returncode


def _recorded_size(size: int | None, view) -> int:
    """Bytes recorded of each string: ``-s`` (default STRING_SIZE); with ``--calls``, where
    ``-s`` is the length shown, at least STRING_SIZE, so that paths, which strace never cuts
    at ``-s``, come whole."""
    if view is None:
        return size or STRING_SIZE
    return max(size or STRING_SIZE, STRING_SIZE)


def _program(command: list[str], pids: list[int], env: dict) -> str | None:
    """The traced program, where a probe placed by ``SYMBOL`` alone is looked up."""
    if command:
        try:
            return resolve_command(command[0], env)
        except TraceError:
            return None                       # the launch says why
    if pids:
        try:
            return os.readlink(f"/proc/{pids[0]}/exe")
        except OSError:
            return None
    return None


def _open_output(path: str):
    """``-o FILE`` of stream and stat, opened before anything is traced."""
    try:
        return open(path, "w")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


def _parse_pids(values: list[str]) -> list[int]:
    pids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part.isdigit() or int(part) <= 0:
                raise CliError(f"-P {value}: {part!r} is not a process id", ExitStatus.USAGE)
            pids.append(int(part))
    return pids
