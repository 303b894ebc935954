"""The kernel's ``trace`` text of syscall events, as a row printer (:class:`.text.RowPrinter`).

The kernel prints syscall events its own way (``print_syscall_enter``/``print_syscall_exit``
in kernel/trace/trace_syscalls.c), not from their print fmt::

    sys_openat(dfd: 0xffffff9c, filename: 0x7ffd2a3c1f40, flags: 0x80000, mode: 0)
    sys_openat -> 0x3

each argument in decimal below 10 and in hex from 10 on (:func:`arg_text`), ``ret`` always in
hex, as its 64-bit two's complement.  The printer works from the format alone (the names
``sys_enter_<event>``/``sys_exit_<event>`` and the fields), so formats read from a kernel's
trace.dat print too; a format whose fields are not what the kernel makes (an array ``ret``)
gets no row printer and prints from its print fmt.

For the kernel's own layout (every argument an unsigned 64-bit field) the text is made by one
``%`` of a template per event, with the per-argument choice written out for each number of
arguments: that is the hot path of ``report``.
"""

from __future__ import annotations

from ..events.format import EventFormat
from ..sources.syscalls.events import NR_FIELD, SYSTEM, arg_text, event_base
from .text import RowPrinter, plain_int_fields

_MASK = (1 << 64) - 1
_D = tuple(str(i) for i in range(10))     # arguments below 10 print in decimal


def syscall_row_printer(fmt: EventFormat) -> RowPrinter | None:
    """The row printer of a ``syscalls`` event format, or None when it is not one the kernel
    would print its own way."""
    base = event_base(fmt.name)
    if fmt.system != SYSTEM or base is None:
        return None
    if any(f.is_dynamic for f in fmt.fields):    # user-space data (``__<arg>_val``)
        from ..sources.syscalls.user_data import syscall_printer as with_data
        printer = with_data(fmt)
        if printer is None:
            return None
        names = tuple(f.name for f in fmt.fields)
        return RowPrinter(names, lambda row: printer(fmt, dict(zip(names, row))))
    event, is_enter = base
    event = event.replace("%", "%%")        # the name goes into % templates
    if not is_enter:
        ret = fmt.field("ret")
        if ret is None or not plain_int_fields([ret]):
            return None
        tmpl = f"sys_{event} -> 0x%x"
        return RowPrinter(("ret",), lambda v: tmpl % (v[0] & _MASK))
    own = [f for f in fmt.fields if f.name != NR_FIELD.name and not f.is_dynamic]
    if not plain_int_fields(own):
        return None
    names = tuple(f.name for f in own)
    tmpl = f"sys_{event}(" + ", ".join(f"{n}: %s" for n in names) + ")"
    if len(own) <= 6 and all(f.size == 8 and not f.signed for f in own):
        return RowPrinter(names, _ENTER[len(own)](tmpl))
    return RowPrinter(names, lambda v: tmpl % tuple([arg_text(x) for x in v]))


# The enter text for 0..6 unsigned 64-bit arguments, one function per count (a loop or a
# map over the arguments costs twice as much as these).
def _enter0(tmpl):
    text = tmpl
    return lambda v: text


def _enter1(tmpl):
    def render(v):
        a, = v
        return tmpl % (_D[a] if a < 10 else hex(a),)
    return render


def _enter2(tmpl):
    def render(v):
        a, b = v
        return tmpl % (_D[a] if a < 10 else hex(a), _D[b] if b < 10 else hex(b))
    return render


def _enter3(tmpl):
    def render(v):
        a, b, c = v
        return tmpl % (_D[a] if a < 10 else hex(a), _D[b] if b < 10 else hex(b),
                       _D[c] if c < 10 else hex(c))
    return render


def _enter4(tmpl):
    def render(v):
        a, b, c, d = v
        return tmpl % (_D[a] if a < 10 else hex(a), _D[b] if b < 10 else hex(b),
                       _D[c] if c < 10 else hex(c), _D[d] if d < 10 else hex(d))
    return render


def _enter5(tmpl):
    def render(v):
        a, b, c, d, e = v
        return tmpl % (_D[a] if a < 10 else hex(a), _D[b] if b < 10 else hex(b),
                       _D[c] if c < 10 else hex(c), _D[d] if d < 10 else hex(d),
                       _D[e] if e < 10 else hex(e))
    return render


def _enter6(tmpl):
    def render(v):
        a, b, c, d, e, f = v
        return tmpl % (_D[a] if a < 10 else hex(a), _D[b] if b < 10 else hex(b),
                       _D[c] if c < 10 else hex(c), _D[d] if d < 10 else hex(d),
                       _D[e] if e < 10 else hex(e), _D[f] if f < 10 else hex(f))
    return render


_ENTER = (_enter0, _enter1, _enter2, _enter3, _enter4, _enter5, _enter6)
