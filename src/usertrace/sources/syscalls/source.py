"""The syscall source: the process engine's syscall stops become ``syscalls`` events.

For each stop the engine reports, the source looks the event up by number (two lists indexed
by syscall number, None where nothing is enabled), builds the record the kernel would (one
``struct.pack``), and hands it to the session.  The field values are built as a dict only
when something reads them (a filter, the live stream); recording alone skips that, and
packs the record of an unfiltered event with its ring-buffer header straight into the page
(:meth:`RingBuffer.packed_writer`), with no bytes object in between.
"""

from __future__ import annotations

from ...arch import Arch, host
from ...events.format import EventFormat
from ...output.strace.quote import quote_bytes
from ...output.stats import SyscallStats
from ...ptrace import ENTER, StopHandler
from ...session.core import EventState, Session
from ..base import Source
from .events import (EXIT_STRUCT, SYSTEM, arg_text, build_events, encode_enter, encode_exit,
                     enter_struct, event_base)
from .stops import SyscallStops
from .table import SyscallTable


STRING_MAX = 256        # bytes of a buffer shown by the live stream
_LENGTH_NAMES = ("count", "len", "size", "nbytes", "length")


def _length_arg(fields, i: int) -> int:
    """The index of the argument right after ``fields[i]`` when it is its length, else -1."""
    if i + 1 < len(fields) and fields[i + 1].name in _LENGTH_NAMES:
        return i + 1
    return -1


class _Slot:
    """One enabled syscall event, ready for the hot path."""

    __slots__ = ("state", "id", "nargs", "names", "event", "strings", "needs_values", "ustrings")

    def __init__(self, state: EventState, event: str, needs_values: bool, strings: bool):
        fmt = state.format
        self.state = state
        self.id = fmt.id
        own = [f for f in fmt.fields if f.name != "__syscall_nr"]
        self.nargs = len(own)
        self.names = tuple(f.name for f in own)
        self.event = event
        # the ``const char *`` arguments shown as strings in text: index -> the index of the
        # argument that gives its length (a buffer: write's buf and count), or -1 (a string)
        self.strings = {i: _length_arg(own, i) for i, f in enumerate(own)
                        if f.type == "const char *"} if strings else {}
        self.needs_values = needs_values or state.filter is not None
        # arguments whose strings the filter compares (``filename.ustring ~ "/etc/*"``)
        wanted = state.filter.ustring_fields if state.filter is not None else ()
        self.ustrings = tuple((i, n) for i, n in enumerate(self.names) if n in wanted)


class SyscallSource(Source):
    """The ``syscalls`` events, from the stops of the process engine.

    ``strings``: show ``const char *`` arguments as strings in the live stream (read from the
    tracee at the syscall's entry); the records stay the kernel's.  ``stats``: count calls,
    errors and time from entry to exit per syscall (``strace -c``).
    """

    systems = (SYSTEM,)

    def __init__(self, *, strings: bool = False, stats: SyscallStats | None = None,
                 arch: Arch | None = None):
        self.arch = arch or host()
        self.table = SyscallTable.for_arch(self.arch.name)
        self.strings = strings
        self.stats = stats
        self.session: Session | None = None
        size = self.arch.max_nr + 1
        self.enter: list[_Slot | None] = [None] * size
        self.exit: list[_Slot | None] = [None] * size
        self._names = {s.nr: s.name for s in self.table}

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
            slot = _Slot(state, base[0], needs_values, self.strings and base[1])
            (self.enter if base[1] else self.exit)[sc.nr] = slot

    def stop_sets(self) -> tuple[set[int], set[int]]:
        """(enters, exits) the engine must report: those of the enabled events; for the
        statistics, both of every call either names."""
        enter = {nr for nr, s in enumerate(self.enter) if s is not None}
        exit_ = {nr for nr, s in enumerate(self.exit) if s is not None}
        if self.stats is not None:
            enter = exit_ = enter | exit_
        return enter, exit_

    def stop_handler(self) -> StopHandler | None:
        enter, exit_ = self.stop_sets()
        if not enter and not exit_:
            return None
        callback = self.on_syscall
        packed = self.session.packed_writers(EXIT_STRUCT) if self.stats is None else None
        if packed is not None:
            callback = self._packed_callback()
        return SyscallStops(callback, enter, exit_, on_task=self.on_task, arch=self.arch)

    def _packed_callback(self):
        """The engine's callback when records go straight to the trace buffer: the record
        of an event that needs no values is packed in place into the ring of the task's cpu;
        any other stop takes :meth:`on_syscall`."""
        session = self.session
        fast_enter = [s for s in self.enter if s is not None and not s.needs_values]
        by_nargs = {n: session.packed_writers(enter_struct(n))[0]
                    for n in {s.nargs for s in fast_enter}}
        enter = [None if s is None or s.needs_values else (by_nargs[s.nargs], s.id, s.nargs)
                 for s in self.enter]
        exit_ = [None if s is None or s.needs_values else s.id for s in self.exit]
        exit_writers, settle = session.packed_writers(EXIT_STRUCT)
        general = self.on_syscall

        def on_syscall(kind, task, nr, args, ret, ts, ENTER=ENTER):
            if kind == ENTER:
                fast = enter[nr]
                if fast is not None:
                    writers, event_id, nargs = fast
                    cpu = task.cpu
                    done = writers[cpu](ts, (event_id, 0, 0, task.tid, nr) + args[:nargs])
                    if done != 1:
                        settle(cpu, done)
                    return
            else:
                event_id = exit_[nr]
                if event_id is not None:
                    cpu = task.cpu
                    done = exit_writers[cpu](ts, (event_id, 0, 0, task.tid, nr, ret))
                    if done != 1:
                        settle(cpu, done)
                    return
            general(kind, task, nr, args, ret, ts)
        return on_syscall

    # -- the engine's callbacks -----------------------------------------------------------
    def on_task(self, what: str, task, ts: int) -> None:
        if task.comm:
            self.session.note_comm(task.tid, task.comm)

    def on_syscall(self, kind: int, task, nr: int, args: tuple, ret: int, ts: int) -> None:
        if kind == ENTER:
            if self.stats is not None:
                self.stats.enter(task.tid, self._names.get(nr, str(nr)), nr, ts)
            slot = self.enter[nr]
            if slot is None:
                return
            tid = task.tid
            record = encode_enter(slot.id, tid, nr, args, slot.nargs)
            if not slot.needs_values:
                self._unfiltered(slot, task, ts, record)
                return
            values = {"common_type": slot.id, "common_flags": 0, "common_preempt_count": 0,
                      "common_pid": tid, "__syscall_nr": nr}
            values.update(zip(slot.names, args))
            body = fvalues = None
            if slot.strings and self.session.stream is not None:
                body = lambda: self._enter_text(slot, task, args)  # noqa: E731
            if slot.ustrings:
                fvalues = dict(values)
                for i, name in slot.ustrings:
                    got = task.process.read_string(args[i])
                    if got is not None:
                        fvalues[name] = got[0].decode("utf-8", "backslashreplace")
            self.session.emit(slot.state, values, ts, task.cpu, task.comm, record, body, fvalues)
            return
        if self.stats is not None:
            self.stats.exit(task.tid, self._names.get(nr, str(nr)), nr, ts, ret)
        slot = self.exit[nr]
        if slot is None:
            return
        tid = task.tid
        record = encode_exit(slot.id, tid, nr, ret)
        if not slot.needs_values:
            self._unfiltered(slot, task, ts, record)
            return
        values = {"common_type": slot.id, "common_flags": 0, "common_preempt_count": 0,
                  "common_pid": tid, "__syscall_nr": nr, "ret": ret}
        self.session.emit(slot.state, values, ts, task.cpu, task.comm, record)

    def _unfiltered(self, slot: _Slot, task, ts: int, record: bytes) -> None:
        """A record nobody needs the values of."""
        self.session.emit(slot.state, None, ts, task.cpu, task.comm, record)

    def _enter_text(self, slot: _Slot, task, args: tuple) -> str:
        """The enter line with each string shown after its pointer:
        ``filename: 0x7ffd... "/etc/passwd"``."""
        parts = []
        for i, name in enumerate(slot.names):
            v = args[i] & 0xFFFF_FFFF_FFFF_FFFF
            piece = f"{name}: {arg_text(v)}"
            length_at = slot.strings.get(i)
            if length_at is not None:
                if length_at < 0:
                    got = task.process.read_string(v)
                else:                             # a buffer: its bytes up to its count
                    want = args[length_at]
                    data = task.process.read(v, min(want, STRING_MAX)) if v and want else b""
                    got = None if data is None else (data, want > len(data))
                if got is not None:
                    piece += " " + quote_bytes(got[0]) + ("..." if got[1] else "")
            parts.append(piece)
        return f"sys_{slot.event}({', '.join(parts)})"
