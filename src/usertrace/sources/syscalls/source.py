"""The syscall source: the process engine's syscall stops become ``syscalls`` events.

For each stop the engine reports, the source looks the event up by number (two lists indexed
by syscall number, None where nothing is enabled), builds the record the kernel would (one
``struct.pack``), and hands it to the session.  The field values are built as a dict only
when something reads them (a filter, the live stream); recording alone skips that, and
packs the record of an unfiltered event with its ring-buffer header straight into the page
(:meth:`RingBuffer.packed_writer`), with no bytes object in between.

**User-space data.**  When the enabled formats carry ``__<arg>_val`` fields (the newest
kernels' user data, :mod:`.user_data`; :func:`usertrace.catalog.known_events` with
``syscall_data``), the source reads what the arguments point to from the tracee while it is
stopped: at the entry for what the call reads (paths, ``write``'s buffer up to ``count``), at
the exit for what it wrote (``read``'s buffer up to ``ret``, ``pipe``'s descriptors).  Such
records are packed in place too: the fixed part and the data after it
(:meth:`RingBuffer.packed_tail_writer`).  Formats without those fields (the running kernel's)
are recorded without reading anything.

**Whole calls by result** (strace's ``-Z``/``-z``): with ``status``, the enter record of a
call is held until its exit tells whether it failed; both are then kept or both dropped.  A
held enter keeps its own time stamp, so on a cpu with other threads it may follow events
that happened after it (each thread's records stay in order).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ...arch import Arch, host
from ...events.format import EventFormat
from ...events.records import RecordCodec
from ...output.stats import SyscallStats
from ...ptrace import ENTER, StopHandler
from ...ptrace.handlers import REC_BUFFER, REC_PLAIN, REC_STRING
from ..base import Source
from . import user_data as ud
from .events import (EXIT_STRUCT, SYSTEM, build_events, encode_enter, encode_exit, enter_struct,
                     event_base, is_error)
from .stops import SyscallStops
from .table import SyscallTable

if TYPE_CHECKING:           # (the session package imports this module: no cycle at run time)
    from ...session.core import EventState, Session

STRING_SIZE = 128       # bytes of each string or buffer recorded (the kernel's default is 63)
MAX_STRING_SIZE = 1024  # three strings of it and six arguments fit a ring-buffer page
FAILED, SUCCESSFUL = "failed", "successful"          # status: strace's -Z, -z


# -- reading the tracee ----------------------------------------------------------------------

def _read_bytes(process, addr: int, size: int) -> bytes:
    """``size`` bytes at ``addr`` (fewer where the memory ends), b"" when unreadable."""
    if not addr or size <= 0:
        return b""
    out = process.read(addr, size)
    if out is None:
        return b""
    while len(out) < size:                    # the read stops at a page end
        more = process.read(addr + len(out), size - len(out))
        if not more:
            break
        out += more
    return out


def _read_string(process, addr: int, size: int) -> bytes:
    """A string as the kernel records it (:func:`.user_data.string_value`)."""
    got = process.read_string(addr, size + 1) if addr else None
    return ud.string_value(None if got is None else got[0], size)


def _read_argv(process, addr: int, size: int) -> bytes:
    """An argument vector as :func:`.user_data.argv_value` records it: at most ``size``
    strings (strace's ``-s`` counts them too), and whether more followed."""
    if not addr:
        return b""
    table = _read_bytes(process, addr, 8 * (size + 1))
    if len(table) < 8:
        return b""                            # unreadable: the pointer is shown
    items: list[bytes | None] = []
    more = len(table) < 8 * (size + 1)        # the table ends in memory we cannot read
    for k in range(0, len(table) - 7, 8):
        p = int.from_bytes(table[k:k + 8], "little")
        if not p:
            more = False
            break
        if len(items) == size:
            more = True
            break
        got = process.read_string(p, size + 1)
        items.append(None if got is None else got[0])
    return ud.argv_value(items, more, size)


def _read_count(process, addr: int, size: int) -> bytes:
    """The number of strings of a vector (``envp``) as :func:`.user_data.count_value`
    records it: its pointers read to the NULL that ends it; nothing when it cannot be."""
    if not addr:
        return b""
    n = 0
    while n < ud.MAX_VECTOR:
        table = _read_bytes(process, addr + 8 * n, 512)
        if len(table) < 8:
            return b""
        for k in range(0, len(table) - 7, 8):
            if not int.from_bytes(table[k:k + 8], "little"):
                return ud.count_value(n + k // 8)
        n += len(table) // 8
    return b""


def _enter_reader(data: ud.UserData, start: int, size: int):
    """``read(process, args) -> (data_loc words, data)`` for a sys_enter record whose data
    begin at ``start``."""
    idx = data.recorded
    if data.fixed:                            # a structure: whole, or nothing
        i, n = idx[0], data.fixed

        def read(process, args):
            raw = ud.struct_value(_read_bytes(process, args[i], n), n)
            return (len(raw) << 16 | start,), raw
    elif data.per_request:                      # ... whose size another argument decides
        i = idx[0]

        def read(process, args):
            n = ud.request_size(data, args)
            raw = ud.struct_value(_read_bytes(process, args[i], n), n) if n else b""
            return (len(raw) << 16 | start,), raw
    elif data.size_arg is not None:             # a buffer (or a sized string) with its count
        i, j, unit = idx[0], data.size_arg, data.unit
        sized = ud.sized

        def read(process, args):
            raw = _read_bytes(process, args[i], sized(args[j], unit, size))
            return (len(raw) << 16 | start,), raw
    elif len(idx) == 1:
        i = idx[0]

        def read(process, args):
            raw = _read_string(process, args[i], size)
            return (len(raw) << 16 | start,), raw
    else:
        readers = [(i, _read_argv if i in data.arrays else
                    _read_count if i in data.counts else _read_string) for i in idx]

        def read(process, args):
            raws = [reader(process, args[i], size) for i, reader in readers]
            locs = []
            offset = start
            for raw in raws:
                locs.append(len(raw) << 16 | offset)
                offset += len(raw)
            return tuple(locs), b"".join(raws)
    return read


def _exit_reader(data: ud.ExitData, start: int, size: int):
    """``read(process, args, ret) -> (data_loc words, data)`` for a sys_exit record."""
    i = data.arg
    exit_value = ud.exit_value
    if data.size == "written":                  # the length the call wrote, then the value
        j = data.size_arg

        def read(process, args, ret):
            raw = b""
            if ret >= data.min_ret and args[i] and args[j]:
                length = _read_bytes(process, args[j], 4)
                n = min(int.from_bytes(length, "little"), size) if len(length) == 4 else 0
                raw = ud.written_value(length, _read_bytes(process, args[i], n) if n else b"")
            return (len(raw) << 16 | start,), raw
        return read

    def read(process, args, ret):
        n = ud.exit_read_size(data, ret, size, args)
        raw = exit_value(data, _read_bytes(process, args[i], n)
                         if n and i < len(args) else None, ret, size, args)
        return (len(raw) << 16 | start,), raw
    return read


class _Slot:
    """One enabled syscall event, ready for the hot path."""

    __slots__ = ("state", "id", "nargs", "names", "event", "needs_values", "ustrings",
                 "head", "reader", "codec", "data", "size")

    def __init__(self, state: EventState, sc, is_enter: bool, needs_values: bool, size: int):
        fmt = state.format
        self.state = state
        self.id = fmt.id
        own = [f for f in fmt.fields if f.name != "__syscall_nr" and not f.is_dynamic]
        self.nargs = len(own)
        self.names = tuple(f.name for f in own)
        self.event = sc.event
        self.needs_values = needs_values or state.filter is not None
        # arguments whose strings the filter compares (``filename.ustring ~ "/etc/*"``)
        wanted = state.filter.ustring_fields if state.filter is not None else ()
        self.ustrings = tuple((i, n) for i, n in enumerate(self.names) if n in wanted)
        # user data: the struct of the fixed part (with its data_loc words) and the reader
        self.head: struct.Struct | None = None
        self.reader = None
        self.codec: RecordCodec | None = None
        self.data: ud.UserData | ud.ExitData | None = None     # what the reader reads
        self.size = size
        vals = [f.name for f in fmt.fields if f.is_dynamic]
        if not vals:
            return
        if is_enter:
            data = ud.enter_data(sc.name, self.nargs)
            if data is None or vals != [ud.val_field_name(self.names[i]) for i in data.recorded]:
                return
            self.head = struct.Struct(f"<HBBii4x{self.nargs}Q{len(vals)}I")
            self.reader = _enter_reader(data, self.head.size, size)
            self.data = data
        else:
            data = ud.exit_data(sc.name, len(sc.args))
            if data is None or vals != [ud.val_field_name(sc.args[data.arg][1])]:
                return
            self.head = struct.Struct("<HBBii4xqI")
            self.reader = _exit_reader(data, self.head.size, size)
            self.data = data
        if self.needs_values:                # (the Python path decodes only for values)
            self.codec = RecordCodec(fmt)


class SyscallSource(Source):
    """The ``syscalls`` events, from the stops of the process engine.

    ``string_size``: bytes recorded of each string or buffer, when the formats carry user
    data (the kernel's ``syscall_user_buf_size``).  ``stats``: count calls, errors and time
    from entry to exit per syscall (``strace -c``).  ``status``: ``"failed"`` or
    ``"successful"`` keeps only those calls, enter and exit (strace's ``-Z``, ``-z``).
    ``watchers``: objects told of the traced tasks (``on_task(what, task, ts)``) and of the
    signals they get (``on_signal(task, sig, siginfo, ts)``), e.g. a live call view.
    """

    systems = (SYSTEM,)

    def __init__(self, *, stats: SyscallStats | None = None, arch: Arch | None = None,
                 string_size: int = STRING_SIZE, status: str | None = None):
        if not 0 < string_size <= MAX_STRING_SIZE:
            raise ValueError(f"string size {string_size}: give 1 to {MAX_STRING_SIZE}")
        if status not in (None, FAILED, SUCCESSFUL):
            raise ValueError(f"status must be None, {FAILED!r} or {SUCCESSFUL!r}, not {status!r}")
        self.arch = arch or host()
        self.table = SyscallTable.for_arch(self.arch.name)
        self.string_size = string_size
        self.stats = stats
        self.status = status
        self.watchers: list = []
        self.session: Session | None = None
        size = self.arch.max_nr + 1
        self.enter: list[_Slot | None] = [None] * size
        self.exit: list[_Slot | None] = [None] * size
        self._names = {s.nr: s.name for s in self.table}
        self._sigreturn = self.arch.nr["rt_sigreturn"]
        self._entered: dict[int, int] = {}
        self._held: dict[int, tuple] = {}         # tid -> (nr, what the enter emits or None)

    def formats(self) -> list[EventFormat]:
        out = []
        for sc in build_events((s.nr, s.name, s.event, s.args) for s in self.table):
            out += [sc.enter, sc.exit]
        return out

    def prepare(self, session: Session, specs=(), consumers: int = 0) -> None:
        self.session = session
        needs_values = session.stream is not None
        for state in session.states.values():
            fmt = state.format
            if fmt.system != SYSTEM:
                continue
            base = event_base(fmt.name)
            sc = self.table.by_event.get(base[0]) if base else None
            if sc is None:
                continue
            slot = _Slot(state, sc, base[1], needs_values, self.string_size)
            (self.enter if base[1] else self.exit)[sc.nr] = slot

    def stop_sets(self) -> tuple[set[int], set[int]]:
        """(enters, exits) the engine must report: those of the enabled events; for the
        statistics and for whole calls by result, both of every call either names."""
        enter = {nr for nr, s in enumerate(self.enter) if s is not None}
        exit_ = {nr for nr, s in enumerate(self.exit) if s is not None}
        if self.stats is not None or self.status is not None:
            enter = exit_ = enter | exit_
        return enter, exit_

    def stop_handler(self) -> StopHandler | None:
        enter, exit_ = self.stop_sets()
        if not enter and not exit_:
            return None
        callback = self.on_syscall
        packed = None
        if self.stats is None and self.status is None:
            packed = self._packed_callback()
            if packed is not None:
                callback = packed
        on_signal = self._on_signal if self.watchers else None
        stops = SyscallStops(callback, enter, exit_, on_task=self.on_task, on_signal=on_signal,
                             arch=self.arch)
        if packed is not None:                # the records go straight to the trace buffer
            stops.compiled_syscalls = self._compiled()
        return stops

    def _compiled(self) -> tuple | None:
        """The records the engine's compiled stop loop can make (``StopHandler.
        compiled_syscalls``): those the packed callback writes with no reader, with a
        string, or with a buffer sized by an argument (entry) or by the result (exit); the
        same bytes as :meth:`_packed_callback` packs (``tests/e2e/test_syscall_compiled.py``
        compares them)."""
        enter, exit_ = {}, {}
        for nr, slot in enumerate(self.enter):
            if slot is None or slot.needs_values:
                continue
            d = slot.data
            if slot.reader is None:
                enter[nr] = (slot.id, slot.nargs, REC_PLAIN, 0, 0, 0)
            elif d.arrays or d.counts or d.fixed or d.per_request or len(d.args) != 1:
                continue
            elif d.size_arg is None:
                enter[nr] = (slot.id, slot.nargs, REC_STRING, d.args[0], 0, slot.size)
            elif d.unit == 1:
                enter[nr] = (slot.id, slot.nargs, REC_BUFFER, d.args[0], d.size_arg, slot.size)
        for nr, slot in enumerate(self.exit):
            if slot is None or slot.needs_values:
                continue
            d = slot.data
            if slot.reader is None:
                exit_[nr] = (slot.id, REC_PLAIN, 0, 0, 0)
            elif d.size == "ret":
                exit_[nr] = (slot.id, REC_BUFFER, d.arg, d.min_ret, slot.size)
        some = next((s for s in self.enter + self.exit if s is not None), None)
        write_records = self.session.records_writer(some.state) if some is not None else None
        if write_records is None or not (enter or exit_):
            return None
        return enter, exit_, write_records

    def _packed_callback(self):
        """The engine's callback when records go straight to the trace buffer: the record
        of an event that needs no values is packed in place into the ring of the task's cpu
        (its data read from the tracee first); any other stop takes :meth:`on_syscall`.
        None when the session cannot take records that way."""
        session = self.session
        if session.packed_writers(EXIT_STRUCT) is None:
            return None
        _, settle = session.packed_writers(EXIT_STRUCT)

        def fast(slot: _Slot | None, plain: struct.Struct):
            if slot is None or slot.needs_values:
                return None
            if slot.reader is None:
                return session.packed_writers(plain)[0], slot.id, slot.nargs, None
            return session.packed_tail_writers(slot.head)[0], slot.id, slot.nargs, slot.reader

        enter = [fast(s, enter_struct(s.nargs) if s else None) for s in self.enter]
        exit_ = [fast(s, EXIT_STRUCT) for s in self.exit]
        general = self.on_syscall

        def on_syscall(kind, task, nr, args, ret, ts, ENTER=ENTER):
            if kind == ENTER:
                got = enter[nr]
                if got is not None:
                    writers, event_id, nargs, reader = got
                    cpu = task.cpu
                    if reader is None:
                        done = writers[cpu](ts, (event_id, 0, 0, task.tid, nr) + args[:nargs])
                    else:
                        locs, data = reader(task.process, args)
                        done = writers[cpu](ts, (event_id, 0, 0, task.tid, nr) + args[:nargs]
                                            + locs, data)
                    if done != 1:
                        settle(cpu, done)
                    return
            else:
                got = exit_[nr]
                if got is not None:
                    writers, event_id, _, reader = got
                    cpu = task.cpu
                    if reader is None:
                        done = writers[cpu](ts, (event_id, 0, 0, task.tid, nr, ret))
                    else:
                        locs, data = reader(task.process, args, ret)
                        done = writers[cpu](ts, (event_id, 0, 0, task.tid, nr, ret) + locs, data)
                    if done != 1:
                        settle(cpu, done)
                    return
            general(kind, task, nr, args, ret, ts)
        return on_syscall

    # -- the engine's callbacks -----------------------------------------------------------
    def on_task(self, what: str, task, ts: int) -> None:
        if task.comm:
            self.session.note_comm(task.tid, task.comm)
        if what == "exit":
            self._held.pop(task.tid, None)
            self._entered.pop(task.tid, None)
        for w in self.watchers:
            w.on_task(what, task, ts)

    def _on_signal(self, task, sig: int, siginfo: bytes, ts: int) -> None:
        for w in self.watchers:
            w.on_signal(task, sig, siginfo, ts)

    def on_syscall(self, kind: int, task, nr: int, args: tuple, ret: int, ts: int) -> None:
        if kind == ENTER:
            if self.stats is not None:
                if nr == self._sigreturn:         # no exit ever comes: count it now
                    if self.status is None:
                        self.stats.add(self._names.get(nr, str(nr)), nr, 0, None)
                else:
                    self._entered[task.tid] = ts
            slot = self.enter[nr]
            if self.status is not None:           # held until the exit tells its result
                self._held[task.tid] = (nr, None if slot is None
                                        else self._enter_event(slot, task, nr, args, ts))
                return
            if slot is not None:
                self.session.emit(*self._enter_event(slot, task, nr, args, ts))
            return
        selected = True
        if self.status is not None:
            selected = is_error(ret) == (self.status == FAILED)
            held = self._held.pop(task.tid, None)
            if selected and held is not None and held[0] == nr and held[1] is not None:
                self.session.emit(*held[1])
        if self.stats is not None:
            start = self._entered.pop(task.tid, None)
            if start is not None and selected:
                self.stats.add(self._names.get(nr, str(nr)), nr, ts - start, ret)
        slot = self.exit[nr]
        if slot is None or not selected:
            return
        tid = task.tid
        if slot.reader is not None:
            locs, data = slot.reader(task.process, args, ret)
            record = slot.head.pack(slot.id, 0, 0, tid, nr, ret, *locs) + data
            values = slot.codec.decode(record) if slot.needs_values else None
        else:
            record = encode_exit(slot.id, tid, nr, ret)
            values = None
            if slot.needs_values:
                values = {"common_type": slot.id, "common_flags": 0, "common_preempt_count": 0,
                          "common_pid": tid, "__syscall_nr": nr, "ret": ret}
        self.session.emit(slot.state, values, ts, task.cpu, task.comm, record)

    def _enter_event(self, slot: _Slot, task, nr: int, args: tuple, ts: int) -> tuple:
        """The arguments of :meth:`Session.emit` for the enter record of ``slot``."""
        tid = task.tid
        if slot.reader is not None:
            locs, data = slot.reader(task.process, args)
            record = slot.head.pack(slot.id, 0, 0, tid, nr, *args[:slot.nargs], *locs) + data
        else:
            record = encode_enter(slot.id, tid, nr, args, slot.nargs)
        if not slot.needs_values:
            return slot.state, None, ts, task.cpu, task.comm, record
        if slot.codec is not None:
            values = slot.codec.decode(record)
        else:
            values = {"common_type": slot.id, "common_flags": 0, "common_preempt_count": 0,
                      "common_pid": tid, "__syscall_nr": nr}
            values.update(zip(slot.names, args))
        fvalues = None
        if slot.ustrings:
            fvalues = dict(values)
            for i, name in slot.ustrings:
                got = task.process.read_string(args[i])
                if got is not None:
                    fvalues[name] = got[0].decode("utf-8", "backslashreplace")
        return slot.state, values, ts, task.cpu, task.comm, record, None, fvalues

