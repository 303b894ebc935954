"""The event of a probe definition: its format, its records decoded, its ``trace`` text.

The kernel lays a uprobe record out as ``struct uprobe_trace_entry_head`` (the common
fields, then one ``unsigned long`` for an entry probe: ``__probe_ip``; two for a return
probe: ``__probe_func``, ``__probe_ret_ip``), then the arguments packed one after another
in the order given, with no alignment (``tp->size`` grows by each type's size), then the
strings' bytes.  For ``x=%ax y=+0(%sp):string z=$stack3:s32 w=+8(%di):u16[3]``::

    field:unsigned long __probe_ip;  offset:8;  size:8; signed:0;
    field:u64 x;                     offset:16; size:8; signed:0;
    field:__data_loc char[] y;       offset:24; size:4; signed:1;
    field:s32 z;                     offset:28; size:4; signed:1;
    field:u16 w[];                   offset:32; size:6; signed:0;

    print fmt: "(%lx) x=0x%Lx y=\\"%s\\" z=%d w={%u,%u,%u}", REC->__probe_ip, REC->x,
               __get_str(y), REC->z, REC->w[0], REC->w[1], REC->w[2]

(``x64`` and ``char`` show as ``u64`` and ``u8``: the format names the stored type, the
print fmt the way it prints.)  The ``trace`` file does not use the print fmt: the event's own
printer (``print_uprobe_event``) writes ``(0x<ip>)``, or ``(0x<ret_ip> <- 0x<func>)`` for a
return (the print fmt has them the other way round and without ``0x``), and ``(fault)`` for a
string that could not be read; :func:`hit_text` is that printer.
"""

from __future__ import annotations

import struct

from ...events.format import COMMON_SIZE, EventFormat, Field
from .parse import ProbeArg, ProbeDefinition

FIELD_IP = "__probe_ip"
FIELD_FUNC = "__probe_func"
FIELD_RETIP = "__probe_ret_ip"
FAULT_STRING = "(fault)"

# The common_flags and common_preempt_count of a uprobe record on this kernel (6.18): 0xff and
# 0xff, which the ``trace`` file shows as ``DBZff``.  The handler runs preemptible and the
# record's context is taken one level down (``tracing_gen_ctx_dec()``) from a preempt count of
# 0: the word wraps, and the flag byte is what was set less one (0xff when nothing was; a
# reschedule pending at that moment gives another value, e.g. ``dL.ff``).  Probe records carry
# the common bytes, so that their text and filters on ``common_flags`` are the kernel's
# (tests/kernel/test_probe_hits_kernel.py reads them there).
RECORD_FLAGS = 0xFF
RECORD_PREEMPT_COUNT = 0xFF


def header_size(is_return: bool) -> int:
    """``SIZEOF_TRACE_ENTRY``: the common fields and the one or two addresses."""
    return COMMON_SIZE + 8 * (2 if is_return else 1)


def _field_type(a: ProbeArg) -> str:
    # The kernel defines an array field with type "u16[3]" and no length, which its format
    # file shows as "u16 w[]"; a string array keeps its whole type ("__data_loc char[][2]").
    if a.count and not a.type.is_string:
        return f"{a.type.fmttype}[]"
    return a.fmttype


def print_fmt(d: ProbeDefinition) -> str:
    """``__set_print_fmt``: the print fmt of the event."""
    if d.is_return:
        fmt, head = "(%lx <- %lx)", f", REC->{FIELD_FUNC}, REC->{FIELD_RETIP}"
    else:
        fmt, head = "(%lx)", f", REC->{FIELD_IP}"
    out = [f'"{fmt}']
    for a in d.args:
        conv = a.type.fmt
        out.append(f" {a.name}=" + ("{" + ",".join([conv] * a.count) + "}" if a.count else conv))
    out.append(f'"{head}')
    for a in d.args:
        ref = (lambda n: f", __get_str({n})") if a.type.is_string else (lambda n: f", REC->{n}")
        if a.count:
            out.extend(ref(f"{a.name}[{j}]") for j in range(a.count))
        else:
            out.append(ref(a.name))
    return "".join(out)


def probe_format(d: ProbeDefinition, event_id: int = 0) -> EventFormat:
    """The event format the kernel makes for ``d`` (``uprobe_event_define_fields``)."""
    if d.is_return:
        fields = [Field("unsigned long", FIELD_FUNC, COMMON_SIZE, 8, False),
                  Field("unsigned long", FIELD_RETIP, COMMON_SIZE + 8, 8, False)]
    else:
        fields = [Field("unsigned long", FIELD_IP, COMMON_SIZE, 8, False)]
    base = header_size(d.is_return)
    for a in d.args:
        fields.append(Field(_field_type(a), a.name, base + a.offset, a.size, a.type.signed))
    return EventFormat(d.group, d.event, event_id, fields, print_fmt(d))


# -- records -------------------------------------------------------------------------------------

_INT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _scalar(raw: bytes, size: int, signed: bool) -> int:
    code = _INT[size]
    return struct.unpack("<" + (code.lower() if signed else code), raw)[0]


def decode(d: ProbeDefinition, record: bytes) -> dict:
    """The values of a record of ``d`` (common fields included).  A string that could not be
    read (its ``__data_loc`` length 0) is None; arrays are lists."""
    v: dict = {}
    v["common_type"], v["common_flags"], v["common_preempt_count"], v["common_pid"] = \
        struct.unpack_from("<HBBi", record, 0)
    if d.is_return:
        v[FIELD_FUNC], v[FIELD_RETIP] = struct.unpack_from("<QQ", record, COMMON_SIZE)
    else:
        v[FIELD_IP] = struct.unpack_from("<Q", record, COMMON_SIZE)[0]
    base = header_size(d.is_return)
    for a in d.args:
        at = base + a.offset
        n = a.count or 1
        items = []
        for j in range(n):
            if a.type.is_string:
                loc = struct.unpack_from("<I", record, at + 4 * j)[0]
                length, start = loc >> 16, loc & 0xFFFF
                if length == 0:
                    items.append(None)
                else:
                    raw = bytes(record[start:start + length])
                    nul = raw.find(b"\0")
                    items.append((raw if nul < 0 else raw[:nul]).decode("utf-8",
                                                                        "backslashreplace"))
            else:
                s = a.type.size
                items.append(_scalar(bytes(record[at + s * j: at + s * (j + 1)]), s,
                                     a.type.signed))
        v[a.name] = items if a.count else items[0]
    return v


# -- the trace text ------------------------------------------------------------------------------

def _print_value(a: ProbeArg, value) -> str:
    """``print_type_<type>``: one value as the kernel's trace file prints it."""
    t = a.type
    if t.is_string:
        return FAULT_STRING if value is None else f'"{value}"'
    mask = (1 << (8 * t.size)) - 1
    if t.name.startswith("x"):
        return f"0x{value & mask:x}"
    if t.name == "char":
        return f"'{chr(value & 0xFF)}'"
    if t.signed:
        return str(value)
    return str(value & mask)


def args_text(d: ProbeDefinition, values: dict) -> str:
    """``trace_probe_print_args``: `` name=value`` for each argument, arrays as ``{a,b}``."""
    out = []
    for a in d.args:
        v = values.get(a.name)
        if a.count:
            out.append(f" {a.name}={{" + ",".join(_print_value(a, x) for x in v) + "}")
        else:
            out.append(f" {a.name}={_print_value(a, v)}")
    return "".join(out)


def hit_text(d: ProbeDefinition, values: dict) -> str:
    """The event part of a ``trace`` line: ``ev: (0x401136) x=0x1 ...``, or for a return
    ``ev: (0x401180 <- 0x401136) ...`` (where it returned to, then the function)."""
    if d.is_return:
        head = f"({values[FIELD_RETIP]:#x} <- {values[FIELD_FUNC]:#x})"
    else:
        head = f"({values[FIELD_IP]:#x})"
    return f"{d.event}: {head}{args_text(d, values)}"


# -- a probe event known only by its format (read back from a trace.dat) -------------------------

def _print_fmt_string(print_fmt: str) -> str | None:
    """The quoted format string at the start of a print fmt, unescaped (``\\"`` is ``"``)."""
    if not print_fmt.startswith('"'):
        return None
    out = []
    i = 1
    while i < len(print_fmt):
        c = print_fmt[i]
        if c == "\\" and i + 1 < len(print_fmt):
            out.append(print_fmt[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out)
        out.append(c)
        i += 1
    return None


def _type_of(conv: str, elem_size: int, is_string: bool):
    """The fetch type that prints as ``conv`` (one element's text in the print fmt)."""
    from .types import TYPES_BY_NAME
    if is_string:
        return TYPES_BY_NAME["string"] if conv == '"%s"' else None
    bits = 8 * elem_size
    if conv == "'%c'":
        name = "char"
    elif conv in ("0x%x", "0x%Lx"):
        name = f"x{bits}"
    elif conv in ("%d", "%Ld"):
        name = f"s{bits}"
    elif conv in ("%u", "%Lu"):
        name = f"u{bits}"
    else:
        return None
    t = TYPES_BY_NAME.get(name)
    return t if t is not None and t.size == elem_size else None


def definition_of_format(fmt: EventFormat) -> ProbeDefinition | None:
    """The definition a probe event's format describes, enough to decode and print its
    records as the kernel does (no place, no fetch programs); None when ``fmt`` is not a
    probe event's.

    The format gives each argument's name, place, size and stored type; the print fmt tells
    the types that are stored alike apart (``x32``, ``u32`` and ``char`` are all ``u32`` or
    ``u8`` fields): for ``(%lx) n=%d c='%c' w={0x%x,0x%x}`` the arguments are ``n`` (s32),
    ``c`` (char) and ``w`` (x16[2], from its 4-byte ``u16[]`` field)."""
    names = [f.name for f in fmt.fields]
    if names[:1] == [FIELD_IP]:
        kind, own = "p", fmt.fields[1:]
    elif names[:2] == [FIELD_FUNC, FIELD_RETIP]:
        kind, own = "r", fmt.fields[2:]
    else:
        return None
    text = _print_fmt_string(fmt.print_fmt)
    head = "(%lx <- %lx)" if kind == "r" else "(%lx)"
    if text is None or not text.startswith(head):
        return None
    pos = len(head)
    base = header_size(kind == "r")
    args = []
    for i, f in enumerate(own):
        lead = f" {f.name}="
        if not text.startswith(lead, pos):
            return None
        pos += len(lead)
        end = text.find(f" {own[i + 1].name}=", pos) if i + 1 < len(own) else len(text)
        if end < 0:
            return None
        piece, pos = text[pos:end], end
        is_string = f.is_dynamic and f.is_string
        if piece.startswith("{") and piece.endswith("}"):
            convs = piece[1:-1].split(",")
            count = len(convs)
        else:
            convs, count = [piece], 0
        elem = 4 if is_string else (f.size // count if count else f.size)
        t = _type_of(convs[0], elem, is_string)
        if t is None or any(c != convs[0] for c in convs) or (count and elem * count != f.size):
            return None
        args.append(ProbeArg(f.name, "", t, count, f.offset - base, (), is_string))
    size = sum(a.size for a in args)
    return ProbeDefinition(kind, fmt.system, fmt.name, "", 0, 0, tuple(args), size)


class ProbeCodec:
    """Decodes the records of a probe event as :func:`decode` does (a string that could not
    be read is None, a string array a list), for readers that know only its format."""

    def __init__(self, fmt: EventFormat, definition: ProbeDefinition):
        self.format = fmt
        self.definition = definition

    def decode(self, data, offset: int = 0, length: int | None = None) -> dict:
        end = len(data) if length is None else offset + length
        return decode(self.definition, bytes(data[offset:end]))


def probe_codec(fmt: EventFormat, abi=None) -> ProbeCodec | None:
    """A codec for ``fmt`` if it is a probe event's (little-endian, 64-bit records)."""
    if abi is not None and (abi.endian != "<" or abi.long_size != 8):
        return None
    d = definition_of_format(fmt)
    return ProbeCodec(fmt, d) if d is not None else None


def probe_printer(fmt: EventFormat):
    """The ``trace`` printer of a probe event (``print_uprobe_event``), None for another
    event: registered with :mod:`usertrace.output.text` for events of any group."""
    d = definition_of_format(fmt)
    if d is None:
        return None
    return lambda _fmt, values: hit_text(d, values)
