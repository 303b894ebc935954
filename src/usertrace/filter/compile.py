"""Filters compiled to closures over a decoded record, with the kernel's semantics.

>>> f = compile_filter('ret < 0 && comm != "sshd"', fmt)           # doctest: +SKIP
>>> f.match({"common_pid": 7, "__syscall_nr": 257, "ret": -2, "comm": "cat"})
True

A record is the dict :meth:`RecordCodec.decode` gives: integers already in their field's
range and signedness, char arrays as str.  Filters on the generic fields read two more keys
that the caller adds (:attr:`Filter.comm_key`, :attr:`Filter.cpu_key`; "comm" and "cpu",
unless the event has a field of that name itself, then "COMM" and "CPU").

Numbers compare as the kernel compares them: the constant is cut to the field's size and
read with the field's signedness (``==`` on a u32 field with ``0x100000001`` is ``== 1``; on a
signed int field ``< 4294967296`` is ``< 0``).  ``&`` is "any bit in common".  The ``cpu``
field takes ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``; ``cpu & N`` never matches.

Strings on pointer fields (``char *``): the kernel reads the string the pointer points to as
kernel memory; for the user pointers of syscall events that fails, and the predicate is
false with ``==`` and ``!=`` alike, unless it says ``field.ustring`` (read user memory).  Here
the same: without ``.ustring`` such a predicate is always false; with it, it compares the str
the record holds for the field, which a tracer puts there after reading it from the traced
process (:attr:`Filter.ustring_fields` names those fields); an int there (not read) fails.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field as dc_field
from typing import Callable, Iterable, Mapping

from ..events.format import EventFormat, c_int
from .errors import FilterError, FilterMatchError
from .lexer import to_kernel_bytes, from_kernel_bytes
from .parser import And, Node, Not, Pred, parse
from .predicate import (COMM, CPU, CPUMASK, PTR_STRING, STACKTRACE, STATIC_STRING,
                        STRING_KINDS, TASK_COMM_LEN, FieldResolver, Predicate)
from .strings import compile_match

Test = Callable[[Mapping], bool]

_FALSE: Test = lambda r: False      # noqa: E731
_TRUE: Test = lambda r: True        # noqa: E731


def _array_getter(key: str, elem_size: int, size: int, signed: bool):
    """The kernel reads a non-char fixed array's first ``size`` bytes as one integer."""
    ebits = elem_size * 8
    emask = (1 << ebits) - 1
    little = sys.byteorder == "little"
    count = size // elem_size

    def get(r) -> int:
        v = r[key]
        if isinstance(v, (bytes, bytearray)):
            raw = int.from_bytes(bytes(v[:size]).ljust(size, b"\0"), sys.byteorder)
        else:
            elems = list(v[:count]) + [0] * (count - len(v))
            if not little:
                elems.reverse()
            raw = 0
            for k, e in enumerate(elems):
                raw |= (e & emask) << (k * ebits)
        return c_int(raw, size, signed)
    return get


def _numeric(p: Predicate) -> Test:
    ref = p.ref
    key = ref.key
    op = p.op
    if ref.kind == CPU:
        c = c_int(p.value, 4, True)
        return _compare(key, op, c, band_false=True)
    f = ref.field
    if ref.kind == STACKTRACE or f is None or f.is_dynamic or ref.size not in (1, 2, 4, 8):
        return _FALSE        # the kernel has no comparison for these sizes (or the word of a
                             # __data_loc field, which a decoded record no longer holds)
    c = c_int(p.value, ref.size, ref.signed)
    if f.array_len is not None:
        get = _array_getter(key, max(f.elem_size, 1), ref.size, ref.signed)
        return _compare_get(get, op, c)
    return _compare(key, op, c)


def _compare(key: str, op: str, c: int, band_false: bool = False) -> Test:
    if op == "==":
        return lambda r: r[key] == c
    if op == "!=":
        return lambda r: r[key] != c
    if op == "<":
        return lambda r: r[key] < c
    if op == "<=":
        return lambda r: r[key] <= c
    if op == ">":
        return lambda r: r[key] > c
    if op == ">=":
        return lambda r: r[key] >= c
    if op == "&":
        return _FALSE if band_false else (lambda r: r[key] & c != 0)
    raise ValueError(op)


def _compare_get(get, op: str, c: int) -> Test:
    if op == "==":
        return lambda r: get(r) == c
    if op == "!=":
        return lambda r: get(r) != c
    if op == "<":
        return lambda r: get(r) < c
    if op == "<=":
        return lambda r: get(r) <= c
    if op == ">":
        return lambda r: get(r) > c
    if op == ">=":
        return lambda r: get(r) >= c
    if op == "&":
        return lambda r: get(r) & c != 0
    raise ValueError(op)


def _string(p: Predicate) -> Test:
    ref = p.ref
    key = ref.key
    if ref.kind == STATIC_STRING:
        buflen = ref.size
    elif ref.kind == COMM:
        buflen = TASK_COMM_LEN
    else:
        buflen = None
    test = compile_match(p.match, p.pattern, buflen)
    neg = p.negate
    if ref.kind == PTR_STRING:
        if not p.ustring:
            # The kernel reads the pointer as a kernel address; a user pointer (every
            # pointer our events hold) fails to read, and the predicate fails, != included.
            return _FALSE
        # field.ustring: the caller puts the string it read from the process in the record;
        # where it could not (an int is still there), the kernel's read failed too.
        if neg:
            return lambda r: isinstance(v := r[key], str) and not test(v)
        return lambda r: isinstance(v := r[key], str) and test(v)
    if neg:
        return lambda r: not test(r[key])
    return lambda r: test(r[key])


def _mask_bits(v, elem_size: int) -> frozenset[int]:
    if isinstance(v, int):
        return frozenset(i for i in range(v.bit_length()) if v >> i & 1)
    if isinstance(v, (bytes, bytearray)):
        n = int.from_bytes(bytes(v), sys.byteorder)
        return _mask_bits(n, 1)
    bits = set()
    width = elem_size * 8
    for k, word in enumerate(v):
        word &= (1 << width) - 1
        bits.update(k * width + i for i in range(word.bit_length()) if word >> i & 1)
    return frozenset(bits)


def _cpulist(p: Predicate, nr_cpus: int) -> Test:
    ref = p.ref
    key = ref.key
    cpus: frozenset[int] = p.value        # type: ignore[assignment]
    op = p.op
    single = len(cpus) == 1
    first = min(cpus) if cpus else 0
    if ref.kind == CPUMASK:
        es = ref.field.elem_size if ref.field is not None else 8
        es = es if es in (1, 2, 4, 8) else 8
        valid = frozenset(range(nr_cpus))

        def field_mask(r) -> frozenset[int]:
            return _mask_bits(r[key], es) & valid
        if single:
            if op == "&":
                return lambda r: first in field_mask(r)
            eq = lambda r: field_mask(r) == cpus    # noqa: E731
        else:
            if op == "&":
                return lambda r: bool(field_mask(r) & cpus)
            eq = lambda r: field_mask(r) == cpus    # noqa: E731
        return eq if op == "==" else (lambda r: not eq(r))
    if ref.kind == CPU:
        if single:
            return (lambda r: r[key] != first) if op == "!=" else (lambda r: r[key] == first)
        if op == "&":
            return lambda r: r[key] in cpus
        return _TRUE if op == "!=" else _FALSE
    # a numeric field
    if ref.size not in (1, 2, 4, 8) or ref.field is None or ref.field.is_dynamic:
        return _FALSE
    mask = (1 << (ref.size * 8)) - 1
    if single:
        c = first & mask
        if op == "!=":
            return lambda r: (r[key] & mask) != c
        return lambda r: (r[key] & mask) == c

    def in_range(r) -> bool:
        return (r[key] & mask & 0xFFFFFFFF) < nr_cpus
    if op == "&":
        return lambda r: in_range(r) and (r[key] & mask & 0xFFFFFFFF) in cpus
    if op == "!=":
        return in_range
    return _FALSE


def compile_predicate(p: Predicate, nr_cpus: int) -> Test:
    if p.is_cpulist:
        return _cpulist(p, nr_cpus)
    if p.ref.kind in STRING_KINDS:
        return _string(p)
    return _numeric(p)


def compile_tree(node: Node, nr_cpus: int) -> Test:
    """Closures for a tree; ``and``/``or`` short-circuit left to right as the kernel's
    program does."""
    if isinstance(node, Pred):
        return compile_predicate(node.pred, nr_cpus)
    if isinstance(node, Not):
        inner = compile_tree(node.child, nr_cpus)
        return lambda r: not inner(r)
    parts = [compile_tree(c, nr_cpus) for c in node.children]
    if isinstance(node, And):
        if len(parts) == 2:
            a, b = parts
            return lambda r: a(r) and b(r)
        if len(parts) == 3:
            a, b, c = parts
            return lambda r: a(r) and b(r) and c(r)
        return lambda r: all(t(r) for t in parts)
    if len(parts) == 2:
        a, b = parts
        return lambda r: a(r) or b(r)
    if len(parts) == 3:
        a, b, c = parts
        return lambda r: a(r) or b(r) or c(r)
    return lambda r: any(t(r) for t in parts)


@dataclass
class Filter:
    """A compiled event filter.

    ``match(record)`` says whether the kernel's filter lets the record through.
    ``test`` is the bare closure (fastest; raises KeyError on a missing value).
    """

    text: str
    format: EventFormat | None
    test: Test
    tree: Node | None = None
    preds: tuple[Predicate, ...] = ()
    fields: tuple[str, ...] = ()           # the event's own and common fields it reads
    comm_key: str | None = None            # record key of the task's name, if it needs one
    cpu_key: str | None = None             # record key of the CPU number, if it needs one
    ustring_fields: tuple[str, ...] = ()   # pointer fields whose strings it compares
    program: object = dc_field(default=None, repr=False)

    @property
    def needs_comm(self) -> bool:
        return self.comm_key is not None

    @property
    def needs_cpu(self) -> bool:
        return self.cpu_key is not None

    @property
    def is_clear(self) -> bool:
        """True for the filter ``0``, which removes a filter (everything matches)."""
        return self.tree is None

    def match(self, values: Mapping) -> bool:
        try:
            return self.test(values)        # every closure answers a bool
        except KeyError as exc:
            raise FilterMatchError(
                f"filter {self.text!r}: the record has no value for {exc.args[0]!r}") from None
        except TypeError as exc:
            raise FilterMatchError(f"filter {self.text!r}: a record value of the wrong "
                                   f"kind ({exc})") from None

    __call__ = match


def default_nr_cpus() -> int:
    """The kernel's ``nr_cpu_ids`` here: one more than the highest possible CPU."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
        return max(int(part.split("-")[-1]) for part in text.split(",")) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def compile_filter(text: str, fmt: EventFormat, nr_cpus: int | None = None) -> Filter:
    """Compile the filter ``text`` for events of format ``fmt``; raise :class:`FilterError`
    with the kernel's message and position where the kernel would refuse it.

    ``nr_cpus`` bounds ``CPUS{...}`` lists (the kernel's ``nr_cpu_ids``; default: this
    machine's).  The text ``0`` is the kernel's "remove the filter": a filter that matches
    everything, with ``is_clear`` set.
    """
    if not isinstance(text, str):
        raise TypeError(f"filter text must be str, not {type(text).__name__}")
    nr_cpus = nr_cpus or default_nr_cpus()
    stripped = to_kernel_bytes(text)
    if stripped.lstrip(" \t\n\v\f\r\xa0") == "0":
        return Filter(from_kernel_bytes(stripped), fmt, _TRUE)
    resolver = FieldResolver(fmt)
    parsed = parse(text, resolver, nr_cpus)
    test = compile_tree(parsed.tree, nr_cpus)
    fields: list[str] = []
    comm_key = cpu_key = None
    ustring: list[str] = []
    for p in parsed.preds:
        ref = p.ref
        if ref.kind == COMM and ref.is_generic:
            comm_key = ref.key
        elif ref.kind == CPU and ref.is_generic:
            cpu_key = ref.key
        elif ref.kind == STACKTRACE and ref.is_generic:
            continue
        elif ref.name not in fields:
            fields.append(ref.name)
            if ref.kind == PTR_STRING and p.ustring:
                ustring.append(ref.name)
    return Filter(parsed.text, fmt, test, parsed.tree, parsed.preds, tuple(fields),
                  comm_key, cpu_key, tuple(ustring), parsed.program)


@dataclass
class SystemFilter:
    """One filter text set on a whole system (``events/<system>/filter``).

    As the kernel does, each event gets the filter if it parses for that event; an event it
    does not parse for (a field it lacks, a type that does not suit) is left unfiltered, and
    its ``filter`` file shows "Couldn't find or set field in one of a subsystem's events".
    """

    text: str
    filters: dict[str, Filter]         # event full name -> its filter
    refused: dict[str, FilterError]    # event full name -> why it stays unfiltered

    def filter_for(self, event: str) -> Filter | None:
        return self.filters.get(event)

    def match(self, event: str, values: Mapping) -> bool:
        f = self.filters.get(event)
        return True if f is None else f.match(values)


def compile_system_filter(text: str, formats: Iterable[EventFormat],
                          nr_cpus: int | None = None) -> SystemFilter:
    """Apply one filter text to every event of a system (the formats given).

    Raises :class:`FilterError` (BAD_SUBSYS_FILTER) only when there is no event at all, as
    the kernel's write fails only then.
    """
    formats = list(formats)
    shown = from_kernel_bytes(to_kernel_bytes(text))
    if not formats:
        raise FilterError("BAD_SUBSYS_FILTER", 0, shown)
    filters: dict[str, Filter] = {}
    refused: dict[str, FilterError] = {}
    for fmt in formats:
        try:
            filters[fmt.full_name] = compile_filter(text, fmt, nr_cpus)
        except FilterError as exc:
            err = FilterError("BAD_SUBSYS_FILTER", 0, shown, exc.errno)
            err.__cause__ = exc
            refused[fmt.full_name] = err
    return SystemFilter(shown, filters, refused)


def compile_group_filter(text: str, formats: Iterable[EventFormat],
                         nr_cpus: int | None = None) -> dict[str, Filter | None]:
    """The filter of each event that one ``-e`` pattern names, by full name.

    One event: its filter, or the FilterError.  Several: the kernel's rule for a system's
    filter: each event that has every field the filter names gets it, the others none (they
    pass unfiltered); a FilterError only when no event takes it.
    """
    formats = list(formats)
    if len(formats) == 1:
        return {formats[0].full_name: compile_filter(text, formats[0], nr_cpus)}
    sf = compile_system_filter(text, formats, nr_cpus)
    if not sf.filters:
        raise next(iter(sf.refused.values()))
    return {fmt.full_name: sf.filter_for(fmt.full_name) for fmt in formats}
