"""The probe source: probe events from breakpoints in the traced processes.

A recording with probe events, step by step:

1. **Definitions.**  The session's (``usertrace probe DEF``, kept in the session directory,
   enabled by ``-e GROUP`` or ``-e GROUP:EVENT``) and the run's own (``--probe DEF``: defined
   and enabled for this run only, taken as writes to ``uprobe_events`` after the session's,
   all or nothing).  Each event gets its format in the session's registry, its id from the
   registry's allocator, so ``-e`` and ``-f`` work on it as on any event.
2. **Sites.**  The definitions of the enabled events become *sites*, one per probed place
   (a file, by its inode as the kernel's uprobe holds it, and a file offset), each holding
   the entry probes and the return probes of that place.
3. **Placement.**  In every traced process that maps a probed file (the launched command at
   its exec, ``-P`` processes, new images after exec, libraries mapped later): for each
   executable mapping of the file that holds a site's offset, a breakpoint at::

       mapping start + (site offset - mapping file offset)

   e.g. ``555555555000-555555556000 r-xp 00001000 ... probes`` and offset 0x1189: address
   0x555555555189.  The maps are read again after each ``mmap`` of executable file bytes (the
   engine stops at its exit: ``dlopen``), but only when a probed file is a library; a fork
   child inherits the breakpoints with its parent's memory.  An SDT semaphore (the
   definition's reference counter) is raised by one in each process for each site placed, as
   the kernel's ``uprobe`` raises it, and lowered again when we let go of the process.
4. **A hit.**  :class:`ProbeStops` (the engine's breakpoint handler) calls the site: each entry
   probe runs its :class:`~.fetch.FetchProgram` on the task's registers and memory and emits
   the record through the session (filter, trace buffer, live stream, counters); a site with
   return probes makes the function return through the trampoline, where the return probes
   run with ``$retval`` and the return address.

A disabled probe has no breakpoint: only the enabled events' definitions are placed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ...arch import Arch, host
from ...events.format import EventFormat
from ...events.patterns import EventPattern
from ...ptrace.breakpoints import Breakpoints
from ...ptrace.errors import TraceError
from ...ptrace.handlers import EXIT
from ..base import Source
from ..user_events.parse import UserEventError
from .errors import ProbeError
from .events import RECORD_FLAGS, RECORD_PREEMPT_COUNT, decode, probe_format
from .fetch import FetchProgram
from .manage import ProbeStore, apply_commands
from .parse import ParseContext, ProbeDefinition, parse_command

if TYPE_CHECKING:                 # the session imports this module (a recording's sources)
    from ...session.core import EventSpec, EventState, Session

PROT_WRITE, PROT_EXEC = 0x2, 0x4
MASK64 = (1 << 64) - 1


@dataclass(eq=False)
class _Probe:
    """One enabled definition, ready for its hits."""

    definition: ProbeDefinition
    state: "EventState"
    program: FetchProgram
    values: bool                          # decode the record (a filter or a stream reads it)
    hits: int = 0
    record: Callable | None = None        # the record alone (FetchProgram.record_function)
    write: Callable | None = None         # straight to the trace buffer (Session.record_writer)

    def __post_init__(self):
        self.record = self.program.record_function(RECORD_FLAGS, RECORD_PREEMPT_COUNT)


@dataclass(eq=False)
class _Site:
    """One probed place: a file offset and the probes there."""

    file: "_File"
    offset: int
    ref_ctr: int = 0                      # file offset of the semaphore (0: none)
    entries: list[_Probe] = field(default_factory=list)
    returns: list[_Probe] = field(default_factory=list)
    kernel_steps: bool | None = None      # the kernel steps this instruction out of line
    refused: str = ""                     # why it cannot be placed (said once)
    hit: Callable | None = None           # its breakpoint callback


@dataclass(eq=False)
class _File:
    """A probed file: its path now, its inode, and its sites by offset."""

    path: str
    dev: int
    ino: int
    library: bool                         # mapped by the dynamic linker (not at exec)
    sites: dict[int, _Site] = field(default_factory=dict)


class _Placed:
    """What one address space holds of ours: sites by address, semaphores raised."""

    def __init__(self):
        self.sites: dict[int, _Site] = {}
        self.sems: dict[int, int] = {}    # site address -> the semaphore's address

    def copy(self) -> "_Placed":
        p = _Placed()
        p.sites = dict(self.sites)
        p.sems = dict(self.sems)
        return p


def _is_library(path: str, ctx: ParseContext) -> bool:
    """A shared library is mapped by the dynamic linker after exec; a program (it names an
    interpreter, or is not position independent) is mapped by the kernel at exec."""
    try:
        elf = ctx.elf(path)
    except Exception:
        return True
    return elf.is_pie_or_shared and ".interp" not in elf.sections


class ProbeStops(Breakpoints):
    """The engine's handler of probe events: places the sites' breakpoints in each process
    and keeps them there (new processes, exec, ``mmap``), raises the semaphores, and hands
    the hits to the sites."""

    def __init__(self, source: "ProbeSource", arch: Arch, requeue: Callable[[int, int], None]):
        from .insn import InsnAnalyzer            # iced-x86: only when something is probed
        super().__init__(arch, InsnAnalyzer(), requeue)
        self.source = source
        self.files = list(source.files.values())
        self._key = ("probe sites", id(self))         # our key in Process.state
        self._mmap = arch.nr["mmap"]
        self._execs = (arch.nr["execve"], arch.nr["execveat"])
        if any(f.library for f in self.files):
            self.exit_syscalls = frozenset({self._mmap})

    # -- the life of processes -------------------------------------------------------------
    def on_task(self, what: str, task, ts: int) -> None:
        super().on_task(what, task, ts)               # a fork child inherits the breakpoints
        if task.comm:
            self.source.session.note_comm(task.tid, task.comm)
        process = task.process
        if process is None or what == "exit":
            return
        if what == "new":
            if self._key in process.state:
                return                                # another thread of a placed process
            parent = getattr(process, "parent", None)
            if parent is not None and self._key in parent.state:
                process.state[self._key] = parent.state[self._key].copy()
                return                                # a fork child: its parent's memory
            if task.nr in self._execs:                # its image is about to be replaced
                return
        self.place(task)

    def on_syscall(self, kind: int, task, nr: int, args: tuple, ret: int, ts: int) -> None:
        if kind != EXIT or nr != self._mmap or -4095 <= ret < 0:
            return
        fd = args[4] & 0xFFFFFFFF
        if fd == 0xFFFFFFFF or not args[2] & (PROT_EXEC | PROT_WRITE):
            return
        if args[2] & PROT_EXEC or self._waiting_semaphore(task.process):
            self.place(task)

    def _waiting_semaphore(self, process) -> bool:
        placed = process.state.get(self._key)
        return placed is not None and any(
            s.ref_ctr and a not in placed.sems for a, s in placed.sites.items())

    def on_detach(self, process) -> None:
        """The semaphores down, then every byte back (every thread is stopped)."""
        placed = process.state.pop(self._key, None)
        if placed is not None:
            for sem in placed.sems.values():
                _add_u16(process, sem, -1)
        super().on_detach(process)

    # -- placement --------------------------------------------------------------------------
    def place(self, task) -> None:
        """Put the sites' breakpoints into every executable mapping of a probed file that
        ``task``'s process has now, forget those whose text went away, raise semaphores."""
        process = task.process
        placed = process.state.get(self._key)
        if placed is None:
            placed = process.state[self._key] = _Placed()
        maps = process.maps()
        # Sites whose mapping went away (a library unloaded, its place reused) are forgotten:
        # the byte kept for them must never be written into what is there now.
        here = {}
        for m in maps:
            if "x" in m.perms and m.path:
                here.setdefault(m.path, []).append(m)
        for addr, site in list(placed.sites.items()):
            f = site.file
            if not any(m.inode == f.ino and m.start <= addr < m.end
                       and addr - m.start + m.offset == site.offset
                       for m in here.get(f.path, ())) or process.peek(addr, 1) != \
                    self.arch.breakpoint[:1]:
                self.forget(process, addr)
                del placed.sites[addr]
                placed.sems.pop(addr, None)
        for f in self.files:
            for m in here.get(f.path, ()):
                if m.inode != f.ino:
                    continue                          # the file was replaced on disk
                size = m.end - m.start
                for off, site in f.sites.items():
                    if m.offset <= off < m.offset + size:
                        addr = m.start + off - m.offset
                        if addr not in placed.sites:
                            self._insert(task, placed, addr, site)
        for addr, site in placed.sites.items():
            if site.ref_ctr and addr not in placed.sems:
                sem = _semaphore_address(maps, site)
                if sem is not None and _add_u16(process, sem, +1):
                    placed.sems[addr] = sem

    def _insert(self, task, placed: _Placed, addr: int, site: _Site) -> None:
        if site.refused:
            return
        try:
            bp = self.insert(task.process, addr, site.hit)
        except TraceError as exc:
            site.refused = str(exc)
            self.source.refused(site, exc)
            return
        placed.sites[addr] = site
        if site.kernel_steps is None:
            site.kernel_steps = getattr(bp.info, "kernel_emulates", "") is None

    # -- hits -------------------------------------------------------------------------------
    def site_callback(self, site: _Site) -> Callable:
        """The breakpoint callback of ``site``: its entry probes, then the return hijack."""
        entries = tuple(site.entries)
        returns = tuple(site.returns)
        fire = self.source.fire
        hijack = self.hijack_return
        map_xol_page = self.map_xol_page

        def hit(task, regs, ts):
            ip = regs["ip"]
            if site.kernel_steps:
                map_xol_page(task)
            for p in entries:
                fire(p, task, regs, ts, ip, None)
            if returns:
                def returned(task, regs, ts):
                    for p in returns:
                        fire(p, task, regs, ts, ip, ip)
                hijack(task, regs, ip, returned)

        # Entry probes whose arguments all have simple shapes: the compiled hit makes their
        # records (the breakpoints' "compiled hits"), these are what it then calls.
        specs = tuple(p.program.compiled_record(self._reg_index, RECORD_FLAGS,
                                                RECORD_PREEMPT_COUNT) for p in entries)
        if entries and not returns and all(specs):
            emit_record = self.source.emit_record

            def on_records(task, records, ts):
                for p, record in zip(entries, records):
                    emit_record(p, task, record, ts)
            hit.compiled = (specs, on_records)
        return hit


def _semaphore_address(maps, site: _Site) -> int | None:
    """Where the semaphore of ``site`` is in a process: in a private writable mapping of the
    file that holds its offset (``valid_ref_ctr_vma``)."""
    f = site.file
    for m in maps:
        if m.path == f.path and m.inode == f.ino and "w" in m.perms and m.perms[3] == "p" \
                and m.offset <= site.ref_ctr < m.offset + (m.end - m.start):
            return m.start + site.ref_ctr - m.offset
    return None


def _add_u16(process, addr: int, delta: int) -> bool:
    """Add ``delta`` to the u16 at ``addr`` (a semaphore; never below 0)."""
    raw = process.peek(addr, 2)
    if raw is None:
        return False
    v = int.from_bytes(raw, "little")
    if delta < 0 and v == 0:
        return True
    return process.poke(addr, ((v + delta) & 0xFFFF).to_bytes(2, "little"))


class ProbeSource(Source):
    """Probe events: the session's definitions (enabled by ``-e``) and ``definitions`` of
    this run (enabled for it), placed in the traced processes.

    ``session_dir``: the session whose ``usertrace probe`` definitions count (default: the
    user's); ``program``: the traced command's main program, where a place given as
    ``SYMBOL`` alone is looked up.  Raises ProbeError for a definition refused (all or
    nothing, as a write to ``uprobe_events``).
    """

    def __init__(self, definitions: list[str] = (), *, session_dir: str | None = None,
                 program: str | None = None, warn: Callable[[str], None] | None = None,
                 arch: Arch | None = None):
        self.arch = arch or host()
        self.ctx = ParseContext(program)
        self.warn = warn or (lambda message: None)
        self.store = ProbeStore(session_dir, self.ctx)
        stored = self._stored()
        self.definitions, added = apply_commands(stored, list(definitions), self.ctx,
                                                 removals=False)
        self.run_events = list(dict.fromkeys(d.full_name for d in added))
        self._formats: dict[str, EventFormat] = {}
        self.session: Session | None = None
        self.engine = None                     # the engine the handler works for (its requeue)
        self.files: dict[tuple[int, int], _File] = {}
        self.probes: list[_Probe] = []
        self.handler: ProbeStops | None = None
        self._refusals: list[str] = []

    def _stored(self) -> list[ProbeDefinition]:
        out = []
        try:
            lines = self.store.lines()
        except (OSError, UserEventError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.warn(f"probe definitions of {self.store.path} left out: {why}")
            return out
        for line in lines:
            try:
                d = parse_command(line, self.ctx)
            except ProbeError as exc:
                self.warn(f"probe definition left out ({exc.message}): {line}")
                continue
            if isinstance(d, ProbeDefinition):
                out.append(d)
        return out

    # -- events -----------------------------------------------------------------------------
    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.group for d in self.definitions))

    def formats(self) -> list[EventFormat]:
        """One format per event (an event with several places has one)."""
        seen: dict[str, EventFormat] = {}
        for d in self.definitions:
            if d.full_name not in seen:
                seen[d.full_name] = self._formats.get(d.full_name) or probe_format(d)
        return list(seen.values())

    def register(self, registry) -> list[EventFormat]:
        """Add every event to ``registry`` with an id from its allocator (a recording that
        gives up the kernel backend starts again with another registry: a fresh set)."""
        from ...session.core import SessionError
        if registry is not getattr(self, "_registry", None):
            self._registry = registry
            self._formats = {}
        for d in self.definitions:
            if d.full_name in self._formats:
                continue
            if registry.get(d.group, d.event) is not None:
                raise SessionError(f"probe event {d.full_name}: an event of that name "
                                   "exists already")
            fmt = probe_format(d, registry.allocate_id())
            registry.add(fmt)
            self._formats[d.full_name] = fmt
        return list(self._formats.values())

    def run_specs(self) -> list[EventSpec]:
        """The ``-e`` of the run's own definitions (enabled for the run)."""
        from ...session.core import EventSpec
        return [EventSpec(name) for name in self.run_events]

    def owns(self, fmt: EventFormat) -> bool:
        return self._formats.get(fmt.full_name) is fmt

    def claims(self, pattern: EventPattern) -> bool:
        return bool(pattern.select(self._formats.values(), list(self.systems)))

    # -- recording --------------------------------------------------------------------------
    def prepare(self, session: Session, specs=(), consumers: int = 0) -> None:
        """The sites of the enabled events."""
        self.session = session
        needs_values = session.stream is not None
        enabled = {s.format.full_name: s for s in session.states.values() if self.owns(s.format)}
        for d in self.definitions:
            state = enabled.get(d.full_name)
            if state is None:
                continue
            f = self._file(d)
            if f is None:
                continue
            probe = _Probe(d, state, FetchProgram(d, state.format.id),
                           needs_values or state.filter is not None,
                           write=session.record_writer(state))
            self.probes.append(probe)
            site = f.sites.get(d.offset)
            if site is None:
                site = f.sites[d.offset] = _Site(f, d.offset, d.ref_ctr_offset)
            # The kernel calls the consumers of one place newest first.
            (site.returns if d.is_return else site.entries).insert(0, probe)

    def _file(self, d: ProbeDefinition) -> _File | None:
        path = os.path.realpath(d.path)
        try:
            st = os.stat(path)
        except OSError as exc:
            self.warn(f"probe {d.full_name}: {d.path}: {exc.strerror}; not placed")
            return None
        key = (st.st_dev, st.st_ino)
        f = self.files.get(key)
        if f is None:
            f = self.files[key] = _File(path, st.st_dev, st.st_ino,
                                        _is_library(path, self.ctx))
        return f

    def stop_handler(self) -> ProbeStops | None:
        if not any(f.sites for f in self.files.values()):
            return None
        if self.engine is None:
            from ...session.core import SessionError
            raise SessionError("probe events need the process engine (ProbeSource.engine)")
        self.handler = ProbeStops(self, self.arch, self.engine.requeue)
        for f in self.files.values():
            for site in f.sites.values():
                site.hit = self.handler.site_callback(site)
        return self.handler

    def fire(self, p: _Probe, task, regs: dict, ts: int, bp_addr: int, func: int | None) -> None:
        """One probe's record for a hit (an entry, or a return with ``func``)."""
        if p.values:
            hit = p.program.run(regs, task.process.peek, comm=task.comm, bp_addr=bp_addr,
                                func=func, pid=task.tid, flags=RECORD_FLAGS,
                                preempt_count=RECORD_PREEMPT_COUNT)
            record, values = hit.record, hit.values
        else:
            record = p.record(regs, task.process.peek, task.comm, bp_addr, func, task.tid)
            values = None
        if self.session.emit(p.state, values, ts, task.cpu, task.comm, record):
            p.hits += 1

    def emit_record(self, p: _Probe, task, record: bytes, ts: int) -> None:
        """A record made by the compiled hit (an entry probe of simple arguments)."""
        if p.write is not None:
            p.write(task.cpu, ts, record)
            p.hits += 1
            return
        values = decode(p.definition, record) if p.values else None
        if self.session.emit(p.state, values, ts, task.cpu, task.comm, record):
            p.hits += 1

    def refused(self, site: _Site, exc: Exception) -> None:
        names = ", ".join(p.definition.full_name for p in site.entries + site.returns)
        line = f"probe {names} at {site.file.path}:{site.offset:#x} not placed: {exc}"
        self._refusals.append(line)
        self.warn(line)

    def hit_counts(self) -> dict[str, int]:
        """Records emitted per event (after its filter)."""
        out: dict[str, int] = {}
        for p in self.probes:
            out[p.definition.full_name] = out.get(p.definition.full_name, 0) + p.hits
        return out

    def problems(self) -> list[str]:
        """The places that could not be probed were said when met (``warn``); in the end,
        how many."""
        n = len(self._refusals)
        return [f"probes: {n} place{'s' if n > 1 else ''} not probed (said above)"] if n else []


__all__ = ["ProbeSource", "ProbeStops"]
