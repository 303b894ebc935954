"""``usertrace probe``: define, list and remove probe events, as ``uprobe_events`` does.

With no definition it lists the session's definitions as ``cat uprobe_events`` does; each
definition is added (all of them or none); ``-:[GRP/]EVENT`` removes; ``--clear`` removes
everything.  A refused definition prints the kernel's ``error_log`` text, with a caret."""

from __future__ import annotations

from ..errors import UsertraceError
from ..sources.user_events.parse import UserEventError
from ..sources.probes.manage import ProbeStore, session_dir
from ..sources.probes.parse import ParseContext, ProbeDefinition
from .context import Context, ExitStatus

EPILOG = """\
examples:
  usertrace probe 'p:app/open /usr/bin/app:0x1139 fd=%di:s32 path=+0(%si):string'
  usertrace probe 'r:app/open_ret /usr/bin/app:open_file ret=$retval:s32'
  usertrace probe 'p /usr/lib/x86_64-linux-gnu/libc.so.6:malloc size=%di:u64'
  usertrace probe /usr/bin/python3.11:sdt_python:function__entry
  usertrace probe                        # list, as cat uprobe_events
  usertrace probe '-:app/open'           # remove one event ('-:app/' the whole group)
  usertrace probe --clear
"""


def add_arguments(name: str, parser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("definitions", nargs="*", metavar="DEF",
                        help="a probe definition (p:..., r:..., [PATH:]sdt_PROV:NAME) or "
                             "a removal (-:[GRP/]EVENT)")
    parser.add_argument("--clear", action="store_true", help="remove every definition")
    parser.add_argument("--program", metavar="PATH",
                        help="the program in which a place given as SYMBOL alone is looked up")
    # A removal starts with '-': it is a definition, not an option.
    parse_optional = parser._parse_optional

    def _parse_optional(arg_string):
        if arg_string.startswith("-:"):
            return None
        return parse_optional(arg_string)
    parser._parse_optional = _parse_optional


def run(args, ctx: Context) -> int:
    store = ProbeStore(session_dir(ctx.env), ParseContext(args.program))
    try:
        if args.clear:
            store.clear()
        if args.definitions:
            store.apply(args.definitions)
        elif not args.clear:
            ctx.stdout.write(store.listing())
    except (UsertraceError, UserEventError) as exc:
        ctx.stderr.write(exc.render() + "\n")
        return ExitStatus.ERROR
    except OSError as exc:
        ctx.error(f"{store.path}: {exc.strerror or exc}")
        return ExitStatus.ERROR
    return ExitStatus.OK


__all__ = ["add_arguments", "run", "ProbeDefinition"]
