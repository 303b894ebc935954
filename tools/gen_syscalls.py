#!/usr/bin/env python3
"""Generate src/usertrace/sources/syscalls/table_x86_64.py: the x86_64 system calls.

Inputs (all offline):

* the syscall events of a tracefs: ``DIR/events/syscalls/sys_enter_*/format`` (argument names
  and C types, exactly as the kernel prints them in the field lines), from ``--tracefs DIR``
  (default /sys/kernel/tracing, or a copy of its ``events/syscalls`` tree);
* the numbers: ``asm/unistd_64.h`` of the kernel headers (``--unistd``) plus
  ``tools/data/x86_64_syscalls_extra.txt`` (``--extra``) for system calls younger than the
  headers and entry points named differently from the ``__NR_`` name.

Or everything from a *snapshot* (``--snapshot FILE``): a compact text file that this tool writes
with ``--save-snapshot FILE`` and that holds the inputs above, the kernel release and the date.
A unit test re-runs the generator on the snapshot committed under tests/data and compares the
output with the committed module, so the module never drifts from its inputs.

Every system call the numbers name is in the table; one the kernel has no trace event for
(not implemented, or compiled out) has ``None`` as its event.  Before writing, each event's
format is rendered from the model of usertrace.sources.syscalls.events and compared with the
kernel's text (all but the ID line): a kernel whose syscall events look different stops the
generator with the first difference.

Examples::

    tools/gen_syscalls.py --save-snapshot tests/data/syscalls_x86_64.snapshot
    tools/gen_syscalls.py --snapshot tests/data/syscalls_x86_64.snapshot --check
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))

from usertrace.events.format import EventFormat, FormatError  # noqa: E402
from usertrace.sources.syscalls import events as sc_events  # noqa: E402
from genlib import GenError, add_output_arguments, check_module, libc_dev_version  # noqa: E402

DEFAULT_TRACEFS = Path("/sys/kernel/tracing")
DEFAULT_UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
DEFAULT_EXTRA = ROOT / "tools" / "data" / "x86_64_syscalls_extra.txt"
DEFAULT_OUTPUT = ROOT / "src" / "usertrace" / "sources" / "syscalls" / "table_x86_64.py"
SNAPSHOT_MAGIC = "# usertrace syscall snapshot v1"
GENERATOR = "tools/gen_syscalls.py"



# -- numbers ----------------------------------------------------------------------------------

_NR_RE = re.compile(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$")


def read_unistd(path: Path) -> dict[str, int]:
    """``{name: number}`` from an asm/unistd_64.h."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GenError(f"{path}: {exc.strerror} (apt-get install linux-libc-dev)") from None
    numbers = {}
    for line in text.splitlines():
        m = _NR_RE.match(line)
        if m:
            numbers[m[1]] = int(m[2])
    if not numbers:
        raise GenError(f"{path}: no '#define __NR_name number' lines")
    return numbers


def read_extra(path: Path) -> list[tuple[int, str, str]]:
    """``[(number, name, entry)]`` from the extra file (entry "=" means the name)."""
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit():
            raise GenError(f"{path}:{lineno}: expected 'NUMBER NAME ENTRY', got {line!r}")
        nr, name, entry = int(parts[0]), parts[1], parts[2]
        out.append((nr, name, name if entry == "=" else entry))
    return out


def merge_numbers(header: dict[str, int], extra: list[tuple[int, str, str]]
                  ) -> list[tuple[int, str, str]]:
    """``[(number, name, entry)]`` sorted by number; header and extra must agree."""
    rows = {name: (nr, name, name) for name, nr in header.items()}
    for nr, name, entry in extra:
        if name in header and header[name] != nr:
            raise GenError(f"extra file gives {name} number {nr}, the headers {header[name]}")
        rows[name] = (nr, name, entry)
    by_nr: dict[int, str] = {}
    for nr, name, _ in rows.values():
        if nr in by_nr:
            raise GenError(f"number {nr} names both {by_nr[nr]} and {name}")
        by_nr[nr] = name
    return sorted(rows.values())


# -- formats ----------------------------------------------------------------------------------

def _without_id(text: str) -> str:
    return re.sub(r"^ID: \d+$", "ID: -", text, count=1, flags=re.M)


def check_model(kind: str, ours: EventFormat, kernel_text: str, where: str) -> None:
    """Stop with a diff when our rendering of an event differs from the kernel's."""
    mine = _without_id(ours.render())
    theirs = _without_id(kernel_text)
    if mine != theirs:
        diff = "".join(difflib.unified_diff(theirs.splitlines(True), mine.splitlines(True),
                                            "kernel", "usertrace", n=1))
        raise GenError(f"{where}: the kernel's {kind} format differs from the model in "
                       f"usertrace.sources.syscalls.events:\n{diff}")


def read_tracefs(tracefs: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """``{event: ((type, name), ...)}`` for every sys_enter_* of a tracefs (or a copy of it)."""
    base = tracefs / "events" / "syscalls"
    if not base.is_dir():
        base = tracefs  # a copy of events/syscalls itself
    enters = sorted(p for p in base.glob(sc_events.ENTER_PREFIX + "*") if p.is_dir())
    if not enters:
        raise GenError(f"{tracefs}: no events/syscalls/sys_enter_*/format "
                       "(mount tracefs, run as root, or pass --snapshot)")
    out = {}
    for d in enters:
        event = d.name[len(sc_events.ENTER_PREFIX):]
        try:
            enter_text = (d / "format").read_text()
            exit_text = (base / (sc_events.EXIT_PREFIX + event) / "format").read_text()
        except OSError as exc:
            raise GenError(f"{exc.filename}: {exc.strerror}") from None
        try:
            fmt = EventFormat.parse(enter_text, sc_events.SYSTEM)
        except FormatError as exc:
            raise GenError(f"{d / 'format'}: {exc}") from None
        args = tuple((f.type, f.name) for f in fmt.fields if f.name != "__syscall_nr")
        check_model("enter", sc_events.enter_format(event, args), enter_text, str(d / "format"))
        check_model("exit", sc_events.exit_format(event), exit_text,
                    str(base / (sc_events.EXIT_PREFIX + event) / "format"))
        out[event] = args
    return out


# -- the snapshot -----------------------------------------------------------------------------
#
#   # usertrace syscall snapshot v1
#   release<TAB>6.18.44
#   captured<TAB>2026-11-22
#   source<TAB>...                      (one or more)
#   <nr><TAB><name><TAB><event or -><TAB><type name;type name;...>

class Snapshot:
    def __init__(self, release: str, captured: str, sources: list[str],
                 rows: list[tuple[int, str, str | None, tuple[tuple[str, str], ...] | None]]):
        self.release = release
        self.captured = captured
        self.sources = sources
        self.rows = rows

    def dump(self) -> str:
        lines = [SNAPSHOT_MAGIC, f"release\t{self.release}", f"captured\t{self.captured}"]
        lines += [f"source\t{s}" for s in self.sources]
        for nr, name, event, args in self.rows:
            if event is None:
                lines.append(f"{nr}\t{name}\t-")
            else:
                lines.append(f"{nr}\t{name}\t{event}\t" + ";".join(f"{t} {n}" for t, n in args))
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: Path) -> "Snapshot":
        try:
            text = path.read_text()
        except OSError as exc:
            raise GenError(f"{path}: {exc.strerror}") from None
        lines = text.splitlines()
        if not lines or lines[0] != SNAPSHOT_MAGIC:
            raise GenError(f"{path}:1: not a snapshot (expected {SNAPSHOT_MAGIC!r})")
        meta: dict[str, list[str]] = {"release": [], "captured": [], "source": []}
        rows = []
        for lineno, line in enumerate(lines[1:], 2):
            parts = line.split("\t")
            if parts[0] in meta:
                meta[parts[0]].append(parts[1] if len(parts) > 1 else "")
                continue
            if not parts[0].isdigit() or len(parts) not in (3, 4):
                raise GenError(f"{path}:{lineno}: malformed line {line!r}")
            nr, name, event = int(parts[0]), parts[1], parts[2]
            if event == "-":
                rows.append((nr, name, None, None))
                continue
            args = []
            for arg in filter(None, (parts[3] if len(parts) > 3 else "").split(";")):
                ctype, _, aname = arg.rpartition(" ")
                if not ctype:
                    raise GenError(f"{path}:{lineno}: argument {arg!r} has no type")
                args.append((ctype, aname))
            rows.append((nr, name, event, tuple(args)))
        if not meta["release"] or not meta["captured"]:
            raise GenError(f"{path}: missing 'release' or 'captured' line")
        return cls(meta["release"][0], meta["captured"][0], meta["source"], rows)


def snapshot_from_sources(tracefs: Path, unistd: Path, extra: Path, release: str) -> Snapshot:
    numbers = merge_numbers(read_unistd(unistd), read_extra(extra))
    formats = read_tracefs(tracefs)
    known = {entry for _, _, entry in numbers}
    orphans = sorted(set(formats) - known)
    if orphans:
        raise GenError(f"events without a number ({', '.join(orphans)}): add them to {extra}")
    rows = [(nr, name, entry if entry in formats else None, formats.get(entry))
            for nr, name, entry in numbers]
    libc = libc_dev_version()
    sources = [
        f"formats: {tracefs}/events/syscalls/*/format",
        f"numbers: {unistd}" + (f" (linux-libc-dev {libc})" if libc else ""),
        f"numbers: {os.path.relpath(extra, ROOT) if extra.is_relative_to(ROOT) else extra}",
    ]
    return Snapshot(release, datetime.date.today().isoformat(), sources, rows)


# -- the module -------------------------------------------------------------------------------

def render_module(snap: Snapshot) -> str:
    with_event = sum(1 for r in snap.rows if r[2] is not None)
    out = [
        '"""x86_64 system calls: numbers, names, and the arguments of their trace events.\n',
        "\n",
        f"Generated by {GENERATOR}: do not edit; re-run the generator instead.\n",
        f"Kernel release: {snap.release} (captured {snap.captured})\n",
        "Sources:\n",
    ]
    out += [f"    {s}\n" for s in snap.sources]
    out += [
        f"{len(snap.rows)} system calls, {with_event} of them with trace events.\n",
        '"""\n',
        "\n",
        f"GENERATOR = {GENERATOR!r}\n",
        f"KERNEL_RELEASE = {snap.release!r}\n",
        f"CAPTURED = {snap.captured!r}\n",
        "ARCH = 'x86_64'\n",
        "AUDIT_ARCH = 0xC000003E  # AUDIT_ARCH_X86_64\n",
        "X32_SYSCALL_BIT = 0x40000000\n",
        "\n",
        "# (number, name, event, arguments): name is the __NR_ name; event the base name of\n",
        "# syscalls:sys_enter_<event>/sys_exit_<event> (the kernel's entry point), or None when\n",
        "# the kernel has no trace event for it; arguments ((C type, name), ...) or None.\n",
        "SYSCALLS = (\n",
    ]
    for nr, name, event, args in snap.rows:
        if event is None:
            out.append(f"    ({nr}, {name!r}, None, None),\n")
            continue
        head = f"    ({nr}, {name!r}, {event!r}, ("
        items = [f"({t!r}, {n!r})" for t, n in args]
        one = head + ", ".join(items) + ("," if len(items) == 1 else "") + ")),\n"
        if len(one) <= 100:
            out.append(one)
        else:
            out.append(head + "\n")
            out += [f"        {item},\n" for item in items]
            out.append("    )),\n")
    out.append(")\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("Examples::")[1])
    ap.add_argument("--tracefs", type=Path, default=DEFAULT_TRACEFS,
                    help="a tracefs, or a copy of its events/syscalls (default %(default)s)")
    ap.add_argument("--unistd", type=Path, default=DEFAULT_UNISTD, help="asm/unistd_64.h")
    ap.add_argument("--extra", type=Path, default=DEFAULT_EXTRA,
                    help="numbers the headers lack (default tools/data/x86_64_syscalls_extra.txt)")
    ap.add_argument("--release", default=os.uname().release,
                    help="the kernel release the formats come from (default: this kernel's)")
    ap.add_argument("--snapshot", type=Path, help="read every input from this snapshot")
    ap.add_argument("--save-snapshot", type=Path, help="also write the inputs as a snapshot")
    add_output_arguments(ap, DEFAULT_OUTPUT)
    args = ap.parse_args(argv)
    try:
        if args.snapshot:
            snap = Snapshot.load(args.snapshot)
        else:
            snap = snapshot_from_sources(args.tracefs, args.unistd, args.extra, args.release)
        text = render_module(snap)
        if args.check:
            return check_module(args.output, text)
        if args.save_snapshot:
            args.save_snapshot.write_text(snap.dump())
        args.output.write_text(text)
    except GenError as exc:
        print(f"gen_syscalls: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
