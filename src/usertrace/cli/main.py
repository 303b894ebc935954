"""The ``usertrace`` command: a table of subcommands, each its own module (as trace-cmd's
``commands[]``).  Every subcommand calls only the public library."""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import redirect_stderr, redirect_stdout

from .. import __version__
from ..errors import UsertraceError
from .context import Context, ExitStatus

# name -> (module, one-line help)
COMMANDS = {
    "record": ("record", "trace a command or processes into a trace.dat file"),
    "stream": ("record", "trace and print the events live as text"),
    "stat": ("record", "count syscalls, errors and time per syscall, like strace -c"),
    "report": ("report", "print a trace.dat file as the kernel's trace text or JSON"),
    "list": ("listing", "list the events that can be traced"),
    "format": ("listing", "print the format of an event or of a format file"),
    "probe": ("probe", "define, list and remove probe events (as uprobe_events)"),
    "clean": ("clean", "remove tracefs instances and probes left by killed recordings"),
}

EPILOG = """\
examples:
  usertrace record -- ls /tmp            # every syscall of ls, into trace.dat
  usertrace record -e 'syscalls:sys_*_openat' -f 'ret < 0' -o open.dat -- make
  usertrace stream -s -e sys_enter_openat -P 1234  # attach, print live
  usertrace report -i open.dat --json
  usertrace stat -- python3 app.py                 # like strace -c
  usertrace list -e 'syscalls:*open*'
  usertrace format syscalls:sys_enter_openat
  usertrace record -a -e 'sys_enter_open*'         # every process (root: the kernel)
"""


def version_text() -> str:
    """``usertrace --version``: the version, and which emit path user events take here."""
    from ..sources.user_events import emit_path
    return f"usertrace {__version__}\nuser events emit path: {emit_path.describe()}"


class _Version(argparse.Action):
    """``--version``: its text made only when asked (it looks at the compiled parts)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the version and which emit path user events take, and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(version_text() + "\n")      # as argparse's own version action
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or with ``only`` the options of that one alone (the
    others keep their name and help: a command starts without importing the rest)."""
    parser = argparse.ArgumentParser(
        prog="usertrace", description="The Linux kernel's trace events for any process you may trace.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        if only is None or name == only:
            mod = importlib.import_module(f".{module}", __package__)
            mod.add_arguments(name, sp)
            sp.set_defaults(_run=getattr(mod, "run"), _name=name)
    return parser


def _subcommand(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is no option), if it is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


def main(argv: list[str] | None = None, ctx: Context | None = None) -> int:
    ctx = ctx or Context()
    parser = build_parser(_subcommand(sys.argv[1:] if argv is None else argv))
    try:
        # argparse writes --help, --version and usage errors to sys.stdout and sys.stderr.
        with redirect_stdout(ctx.stdout), redirect_stderr(ctx.stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help or a usage error
        return int(exc.code or 0)
    if not getattr(args, "subcommand", None):
        parser.print_help(ctx.stdout)
        return ExitStatus.USAGE
    try:
        return int(args._run(args, ctx) or 0)
    except UsertraceError as exc:  # every error a user can cause: a message, never a traceback
        ctx.error(exc.render().rstrip("\n"))
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.OK


def console_main() -> None:
    """The ``usertrace`` script: main(), then end as the traced command ended (strace does)."""
    ctx = Context()
    status = main(None, ctx)
    for stream in (ctx.stdout, ctx.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if ctx.kill_with is not None:
        ctx.kill_with.exit_like()
    sys.exit(status)


if __name__ == "__main__":
    console_main()
