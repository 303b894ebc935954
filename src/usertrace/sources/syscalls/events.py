"""The ``syscalls`` events: ``sys_enter_<name>`` and ``sys_exit_<name>``, as the kernel makes them.

Today's kernel (kernel/trace/trace_syscalls.c) lays out every syscall event the same way::

    enter:  common header (8) | int __syscall_nr @8 | 4 pad | arg[i] @16+8i, 8 bytes, unsigned
    exit:   common header (8) | int __syscall_nr @8 | 4 pad | long ret @16, signed

Each argument field keeps the C type of the syscall's definition (``const char * filename``)
but is stored as an unsigned long, so ``AT_FDCWD`` reads ``0xffffff9c`` and an ``int`` -1
reads ``0xffffffff``.  The print fmt of an enter event prints every argument ``0x%08lx``;
the ``trace`` file does not use it but prints ``sys_openat(dfd: 0xffffff9c, ..., mode: 0)``
(values below 10 in decimal) and ``sys_openat -> 0x3``, which :func:`render_enter` and
:func:`render_exit` reproduce.

The event name is the kernel's entry point (``newstat`` for ``stat``, ``sendfile64`` for
``sendfile``), not the ``__NR_`` name: see :mod:`.table`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

from ...events.format import EventFormat, Field

SYSTEM = "syscalls"
ENTER_PREFIX = "sys_enter_"
EXIT_PREFIX = "sys_exit_"
MAX_ARGS = 6

NR_FIELD = Field("int", "__syscall_nr", 8, 4, True)
RET_FIELD = Field("long", "ret", 16, 8, True)
ARGS_OFFSET = 16
EXIT_PRINT_FMT = '"0x%lx", REC->ret'


def enter_fields(args: Sequence[tuple[str, str]]) -> list[Field]:
    """The own fields of a sys_enter event for arguments ``[(C type, name), ...]``."""
    if len(args) > MAX_ARGS:
        raise ValueError(f"a system call has at most {MAX_ARGS} arguments, not {len(args)}")
    return [NR_FIELD] + [Field(ctype, name, ARGS_OFFSET + 8 * i, 8, False)
                         for i, (ctype, name) in enumerate(args)]


def enter_print_fmt(arg_names: Sequence[str]) -> str:
    """The print fmt of a sys_enter event: ``"a: 0x%08lx, b: 0x%08lx", ((unsigned long)(REC->a)), ...``."""
    text = ", ".join(f"{name}: 0x%08lx" for name in arg_names)
    recs = "".join(f", ((unsigned long)(REC->{name}))" for name in arg_names)
    return f'"{text}"{recs}'


def enter_format(event: str, args: Sequence[tuple[str, str]], event_id: int = 0) -> EventFormat:
    """The format of ``syscalls:sys_enter_<event>`` (``event_id`` 0: let the registry choose)."""
    return EventFormat(SYSTEM, ENTER_PREFIX + event, event_id, enter_fields(args),
                       enter_print_fmt([name for _, name in args]))


def exit_format(event: str, event_id: int = 0) -> EventFormat:
    """The format of ``syscalls:sys_exit_<event>``."""
    return EventFormat(SYSTEM, EXIT_PREFIX + event, event_id, [NR_FIELD, RET_FIELD],
                       EXIT_PRINT_FMT)


# -- the trace file's text -------------------------------------------------------------------

MAX_ERRNO = 4095        # a return value in [-4095, -1] is an error (the kernel's IS_ERR_VALUE)


def is_error(ret: int) -> bool:
    """Did a call that returned ``ret`` fail (as strace's ``-Z`` and ``-z`` tell)?"""
    return -MAX_ERRNO <= ret < 0


def arg_text(value: int) -> str:
    """One argument as the kernel's trace prints it: decimal below 10, else hex."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return str(value) if value < 10 else f"0x{value:x}"


def render_enter(event: str, arg_names: Sequence[str], values: Sequence[int],
                 arg_types: Sequence[str] | None = None) -> str:
    """``sys_openat(dfd: 0xffffff9c, filename: 0x7ffd..., flags: 0x241, mode: 0)``.

    ``arg_types`` given, each argument is preceded by its type, as with the kernel's
    ``verbose`` trace option.
    """
    if arg_types is None:
        parts = [f"{n}: {arg_text(v)}" for n, v in zip(arg_names, values)]
    else:
        parts = [f"{t} {n}: {arg_text(v)}" for t, n, v in zip(arg_types, arg_names, values)]
    return f"sys_{event}({', '.join(parts)})"


def render_exit(event: str, ret: int) -> str:
    """``sys_openat -> 0x3``; a negative ret prints as its 64-bit two's complement."""
    return f"sys_{event} -> 0x{ret & 0xFFFF_FFFF_FFFF_FFFF:x}"


def event_base(fmt_name: str) -> tuple[str, bool] | None:
    """``("openat", True)`` for ``sys_enter_openat``, ``("openat", False)`` for the exit."""
    if fmt_name.startswith(ENTER_PREFIX):
        return fmt_name[len(ENTER_PREFIX):], True
    if fmt_name.startswith(EXIT_PREFIX):
        return fmt_name[len(EXIT_PREFIX):], False
    return None


def syscall_printer(fmt: EventFormat, verbose: bool = False):
    """A ``trace``-line printer for one syscall event's decoded records, or None.

    It fits :func:`usertrace.output.text.register_printer`: ``printer(fmt, values) -> text``.
    It works from the format alone, so formats read from a kernel's trace.dat print too.
    """
    base = event_base(fmt.name)
    if fmt.system != SYSTEM or base is None:
        return None
    event, is_enter = base
    if not is_enter:
        return lambda _fmt, values: render_exit(event, values.get("ret", 0))
    own = [f for f in fmt.fields if f.name != NR_FIELD.name and not f.is_dynamic]
    names = [f.name for f in own]
    types = [f.type for f in own] if verbose else None
    return lambda _fmt, values: render_enter(event, names, [values.get(n, 0) for n in names], types)


# -- records ---------------------------------------------------------------------------------

# Hand-tuned layouts: common_type, common_flags, common_preempt_count, common_pid,
# __syscall_nr, padding, then the arguments or ret.  They equal what RecordCodec makes of the
# formats above (tests check it), in one pack call.  The kernel reserves
# sizeof(struct syscall_trace_enter) + 8 * nargs: an enter record without arguments is 16
# bytes, though its format's fields end at 12.
_ENTER_STRUCTS = tuple(struct.Struct(f"<HBBii4x{n}Q") for n in range(MAX_ARGS + 1))
_EXIT_STRUCT = struct.Struct("<HBBii4xq")


def encode_enter(event_id: int, pid: int, nr: int, args: Sequence[int], nargs: int,
                 flags: int = 0, preempt_count: int = 0) -> bytes:
    """The record of a sys_enter event: the first ``nargs`` of ``args`` (unsigned 64-bit)."""
    return _ENTER_STRUCTS[nargs].pack(event_id, flags, preempt_count, pid, nr, *args[:nargs])


def encode_exit(event_id: int, pid: int, nr: int, ret: int,
                flags: int = 0, preempt_count: int = 0) -> bytes:
    """The record of a sys_exit event."""
    return _EXIT_STRUCT.pack(event_id, flags, preempt_count, pid, nr, ret)


def enter_struct(nargs: int) -> struct.Struct:
    """The struct of a sys_enter record with ``nargs`` arguments: it packs ``(event_id,
    flags, preempt_count, pid, nr, *args)`` into the bytes :func:`encode_enter` returns."""
    return _ENTER_STRUCTS[nargs]


EXIT_STRUCT = _EXIT_STRUCT      # packs (event_id, flags, preempt_count, pid, nr, ret)


def enter_record_size(nargs: int) -> int:
    return _ENTER_STRUCTS[nargs].size


EXIT_RECORD_SIZE = _EXIT_STRUCT.size


# -- the events of a table -------------------------------------------------------------------

@dataclass
class SyscallEvents:
    """One system call and its two events."""

    nr: int
    name: str                       # the __NR_ name: "stat"
    event: str                      # the event's base name: "newstat"
    args: tuple[tuple[str, str], ...]
    enter: EventFormat
    exit: EventFormat

    @property
    def nargs(self) -> int:
        return len(self.args)


def build_events(table: Iterable[tuple] | None = None) -> list[SyscallEvents]:
    """The events of every system call of ``table`` that the kernel has events for.

    ``table`` is a sequence of ``(nr, name, event, args)`` (the generated
    ``table_x86_64.SYSCALLS`` by default).  Event ids are 0: registering them assigns ids.
    """
    if table is None:
        from .table_x86_64 import SYSCALLS as table
    out = []
    for nr, name, event, args in table:
        if event is None:
            continue
        out.append(SyscallEvents(nr, name, event, tuple(args),
                                 enter_format(event, args), exit_format(event)))
    return out
