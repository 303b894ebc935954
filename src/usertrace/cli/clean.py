"""``usertrace clean``: remove what killed kernel recordings left in the kernel.

A kernel recording removes its tracefs instance and its uprobes when it ends, on Ctrl-C,
SIGTERM or an error; one killed with SIGKILL cannot.  Every kernel recording removes such
left-overs before it starts; ``clean`` does it on demand
(:func:`usertrace.kernel.cleanup.clean_stale`).  Only what is named after a process that no
longer exists is touched.
"""

from __future__ import annotations

import argparse

from ..kernel.cleanup import clean_stale
from ..kernel.tracefs import find_tracefs, why_no_tracefs
from .context import CliError, Context


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="only say what would be removed")
    p.epilog = ("examples:\n  usertrace clean\n  usertrace clean -n\n\n"
                "It removes tracefs instances usertrace-<pid>-<random> and uprobe groups\n"
                "usertrace_<pid>_<random> whose process is gone.\n")


def run(args: argparse.Namespace, ctx: Context) -> int:
    why = why_no_tracefs()
    if why is not None:
        raise CliError(f"cannot look at the kernel's tracefs: {why}")
    lines = clean_stale(find_tracefs(), dry_run=args.dry_run)
    for line in lines:
        ctx.stdout.write(line + "\n")
    if not lines:
        ctx.stdout.write("nothing left over by killed recordings\n")
    return 1 if any(line.startswith("cannot") for line in lines) else 0
