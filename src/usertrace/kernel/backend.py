"""The kernel backend: the same recording made by the running kernel, in a private instance.

Where the user is root and a tracefs is mounted, the kernel's own syscall events do what the
ptrace engine does, for every process of the machine if asked, at a fraction of the cost.
:class:`KernelSource` is the source of a recording (:mod:`usertrace.sources.base`) that
stands in for the syscall source and the process engine:

1. ``start()``: left-overs of killed runs are removed (:mod:`.cleanup`); the instance
   ``instances/usertrace-<pid>-<random>`` is made with tracing off, the ``mono`` trace clock
   (the clock of our own sources' records: they merge in time order), stop-when-full
   (``options/overwrite`` 0: new events are dropped and counted, as our own trace buffer
   does), ``-b`` (default 4 MiB) as its ``buffer_size_kb``; each enabled event's filter (already checked by
   our parser, with its messages) is written to the event's ``filter`` file and the event
   enabled; the readers start.
2. ``run()``: the processes are chosen (:class:`.scope.ProcessScope`: a launched command,
   ``-P`` processes, or every process), tracing is switched on, the command let go, and the
   recording waits for them.
3. The readers, while it runs: ``record`` copies each cpu's full pages from
   ``per_cpu/cpuN/trace_pipe_raw`` as they are into the trace.dat's section of that cpu
   (buffers 0..ncpus-1 of the :class:`~usertrace.session.cpus.CpuMap`; the user-events
   source has its own buffer after them), one thread per cpu, splice(2) from the kernel; the
   kernel's pages already are our record format.  ``stream`` and ``stat`` (and ``record
   --summary``) decode the events instead, all cpus merged in time order by one thread.
4. ``stop()``: tracing off, the readers take what is left (the partial pages too), the
   kernel's per-cpu ``stats`` are read (events read, dropped, overrun: a loss is reported,
   never silent), the task names are taken from the kernel's ``saved_cmdlines`` (as
   trace-cmd does), and the instance and every probe it defined are removed.

Probe events: :meth:`KernelSource.add_probe` takes a parsed probe definition
(:mod:`usertrace.sources.probes.parse`: what the probe source will hand over) or its text; it
is written to ``uprobe_events`` under the session's own group when the recording starts and
removed at the end (:mod:`.probes`).

The kernel's own ways, where they differ from the ptrace engine's records: ``common_flags``
and ``common_preempt_count`` are the kernel's (the ptrace engine writes 0); a record's cpu is
where the event happened; task names come from ``saved_cmdlines``.
"""

from __future__ import annotations

import heapq
import os
import secrets
import select
import signal
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from ..arch import host
from ..buffer.reader import PageReader
from ..events.format import EventFormat
from ..events.records import RecordCodec
from ..events.registry import Consumer
from ..output.stats import SyscallStats
from ..ptrace import ExitStatus
from ..session.core import EventSpec, EventState, Session, SessionError
from ..sources.base import Source
from ..sources.probes.parse import ProbeDefinition, parse_definition
from ..sources.syscalls.events import event_base
from ..sources.syscalls.table import SyscallTable
from .cleanup import clean_stale
from .events import KERNEL_SYSTEMS, SYSCALLS, kernel_registry
from .probes import ProbeGroup
from .rawpipe import CpuPipe, cpu_list, page_layout
from .scope import ProcessScope
from .tracefs import Instance, TracefsError, find_tracefs, instance_name, why_no_tracefs

BACKENDS = ("auto", "kernel", "ptrace")
DEFAULT_BUFFER_KB = 4096   # the instance's buffer per cpu without -b (see KernelSource)
COPY_PERCENT = 10          # buffer_percent while recording: wake the copiers at a tenth full
POLL_MS = 20               # the readers look at least this often (the kernel's wake-up at
                           # buffer_percent alone came late on a loaded machine: its buffer
                           # was full by then)
ROUND_PAGES = 64           # pages a decoding round takes from one cpu at most
_HEADER = struct.Struct("<HBBi")          # common_type, flags, preempt_count, pid
_NR = struct.Struct("<i")                 # __syscall_nr at 8
_RET = struct.Struct("<q")                # ret at 16 (sys_exit_*)
_DEFERRED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


def kernel_unfit(*, strings: bool = False, seccomp: bool = True) -> str | None:
    """Why the kernel backend cannot run here, before any event is looked at (None: it can)."""
    why = why_no_tracefs()
    if why is not None:
        return why
    if strings:
        return ("strings in the records (__<arg>_val) are read from the traced processes' "
                "memory: the ptrace backend (--no-strings records the kernel's formats)")
    if not seccomp:
        return "--no-seccomp is an option of the ptrace backend"
    return None


def kernel_cpus(root: Path) -> int:
    """The cpus the kernel keeps a buffer for (its possible cpus)."""
    try:
        n = sum(1 for d in os.listdir(Path(root) / "per_cpu") if d.startswith("cpu"))
    except OSError:
        n = 0
    return max(n, os.cpu_count() or 1)


class KernelSource(Source):
    """The syscall events (and probe events) of the running kernel, in a private instance.

    ``stats``: count calls, errors and time from entry to exit per syscall (``strace -c``);
    ``buffer_kb``: the instance's buffer per cpu (None: DEFAULT_BUFFER_KB, four times the
    ptrace backend's rings: the kernel's buffer must hold what comes while the readers wait
    for a cpu; on a loaded 2-cpu machine a 10 s writer of a million events a second lost
    nothing with it in 5 runs of 5, and with 1 MiB lost 0.2% in one run of 3);
    ``warn(message)`` hears what the user should know while recording.
    """

    systems = (SYSCALLS,)
    threaded = True

    def __init__(self, root: Path | None = None, *, stats: SyscallStats | None = None,
                 buffer_kb: int | None = None, warn: Callable[[str], None] | None = None):
        self.root = Path(root) if root is not None else find_tracefs()
        if self.root is None:
            raise TracefsError("no tracefs mounted")
        self.stats = stats
        self.buffer_kb = buffer_kb
        self.warn = warn or (lambda message: None)
        self.token = secrets.token_hex(3)
        self.instance: Instance | None = None
        self.probes = ProbeGroup(self.root, self.token)
        self.scope: ProcessScope | None = None
        self.session: Session | None = None
        self.missing: set[str] = set()
        self.leftovers: list[str] = []          # what the start removed of killed runs
        self.cpu_stats: dict[int, dict[str, str]] = {}
        self.error: BaseException | None = None  # of a reader thread
        self._shown: dict[int, EventState] = {}  # id -> state, for the live stream
        self._probe_specs: list[tuple] = []
        self.consumers = 0
        self.cpus: list[int] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._stop_r = self._stop_w = -1
        self._names = {s.nr: s.name for s in SyscallTable.for_arch(host().name)}
        self._comms: dict[int, str] = {}
        self._seen: set[int] = set()            # pids set_event_pid held (in_scope)
        self._seen_at = 0
        self.system_wide = False

    # -- before the recording ------------------------------------------------------------------
    def registry(self, registry=None):
        """The catalog numbered as the kernel numbers its events (:func:`.kernel_registry`);
        remembers the events the kernel lacks."""
        reg, self.missing = kernel_registry(self.root, registry)
        return reg

    def check(self, session: Session, consumers: int) -> str | None:
        """Why the kernel cannot serve the events enabled in ``session`` (None: it can)."""
        if not self._probe_specs and not any(s.format.system == SYSCALLS
                                             for s in session.states.values()):
            return "no syscall or probe event is enabled"
        for state in session.states.values():
            if state.format.full_name in self.missing:
                return f"the kernel has no event {state.format.full_name}"
            if state.filter is not None and state.filter.ustring_fields:
                return (f"the filter of {state.format.full_name} reads a string: the kernel "
                        "reads it only from a page in memory, and misses the others")
        if self.stats is not None and consumers & Consumer.TRACE:
            if any(s.filter is not None for s in session.states.values()):
                return ("--summary counts every call, and the kernel's filter would hide "
                        "calls from it")
            have = {s.format.name for s in session.states.values()}
            for name in sorted(have):
                base = event_base(name)
                if base and ("sys_exit_" if base[1] else "sys_enter_") + base[0] not in have:
                    return (f"--summary times {base[0]} from entry to exit, and the kernel "
                            f"would record the {'exit' if base[1] else 'entry'} it is not "
                            "asked to")
        return None

    def add_probe(self, definition, filter: str | None = None) -> ProbeDefinition:
        """A probe event to define in the kernel when the recording starts, recorded as the
        definition's ``group:event`` with ``filter``: a
        :class:`~usertrace.sources.probes.parse.ProbeDefinition` (what the probe source
        hands over), or its text, parsed here by the probes' parser (symbols, SDT notes and
        the legacy arguments resolved; a bad one refused with the kernel's error and caret).
        """
        if isinstance(definition, str):
            definition = parse_definition(definition)
        self._probe_specs.append((definition, filter))
        return definition

    def prepare(self, session: Session, specs=(), consumers: int = 0) -> None:
        self.session = session
        self.consumers = consumers

    @property
    def _filtering(self) -> bool:
        """Filters go to the kernel, but for ``stat`` alone (``strace -c`` counts every
        call, as the ptrace backend's statistics do)."""
        return self.stats is None or bool(self.consumers & (Consumer.TRACE | Consumer.STREAM))

    # -- the instance -------------------------------------------------------------------------
    def start(self) -> None:
        """Remove left-overs, make and set up the instance (tracing off), start the readers;
        on a failure, remove what was made."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.leftovers = clean_stale(self.root)
        inst = Instance(instance_name(self.token), self.root).create()
        self.instance = inst
        inst.write("tracing_on", "0")
        inst.write("trace_clock", "mono")
        inst.set_option("overwrite", False)
        inst.write("buffer_size_kb", str(self.buffer_kb or DEFAULT_BUFFER_KB))
        self.layout = page_layout(inst)
        trace = self.session.trace
        if trace is not None and trace.page_size != self.layout.page_size:
            raise SessionError(f"the kernel's pages are {self.layout.page_size} bytes, the "
                               f"trace.dat's {trace.page_size}")
        self._define_probes()
        self._enable_events()
        self.cpus = [c for c in cpu_list(inst) if c < self.session.cpus.ncpus]
        if trace is not None:                 # the kernel counts its pages' events
            for cpu in self.cpus:
                trace.writer.set_counts(cpu, 0, 0)
        decode = self.session.stream is not None or self.stats is not None
        inst.write("buffer_percent", "0" if self.session.stream is not None else
                   str(COPY_PERCENT))
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        pipes = [CpuPipe(inst, cpu, self.layout.page_size) for cpu in self.cpus]
        if decode:
            self._spawn(self._decode, pipes, name="usertrace-kernel")
        else:
            for pipe in pipes:
                self._spawn(self._copy, pipe, name=f"usertrace-kernel-cpu{pipe.cpu}")

    def _define_probes(self) -> None:
        for definition, filt in self._probe_specs:
            fmt = self.probes.define(definition)
            self.session.registry.add(fmt)
            consumers = self.consumers or Consumer.TRACE
            self.session.enable(EventSpec(definition.full_name, filt), consumers)

    def _enable_events(self) -> None:
        """Each enabled event with its filter; for the statistics, the entry and exit of
        every call named (without filters: ``strace -c`` counts every call)."""
        inst = self.instance
        session = self.session
        kernel_names = {v: k for k, v in self.probes.defined.items()}
        wanted: dict[tuple[str, str], EventState | None] = {}
        for state in session.states.values():
            fmt = state.format
            if fmt.system in KERNEL_SYSTEMS:
                wanted[(fmt.system, fmt.name)] = state
            elif (fmt.system, fmt.name) in kernel_names:
                wanted[(self.probes.name, kernel_names[(fmt.system, fmt.name)])] = state
        counted: set[str] = set()
        if self.stats is not None:
            for system, name in list(wanted):
                base = event_base(name) if system == SYSCALLS else None
                if base:
                    counted.update((f"sys_enter_{base[0]}", f"sys_exit_{base[0]}"))
        for name in sorted(counted):
            if (SYSCALLS, name) not in wanted and session.registry.get(SYSCALLS, name):
                wanted[(SYSCALLS, name)] = None
        for (system, name), state in wanted.items():
            if state is not None and state.filter is not None and self._filtering:
                try:
                    inst.set_filter(system, name, state.filter.text)
                except TracefsError as exc:
                    raise SessionError(self._refused(state, exc)) from None
            inst.enable(system, name)
            if state is not None:
                fmt = state.format
                self._shown[fmt.id] = EventState(fmt, None, RecordCodec(fmt))

    def _refused(self, state: EventState, exc: TracefsError) -> str:
        """Our parser took a filter the kernel refuses: say so, with the kernel's words."""
        log = ""
        try:
            log = self.instance.read("error_log").strip()
        except OSError:
            pass
        return (f"the kernel refused the filter of {state.format.full_name} "
                f"({state.filter.text!r}) that usertrace's parser accepts: {exc}"
                + (f"\n{log}" if log else ""))

    # -- running ---------------------------------------------------------------------------------
    def run(self, command: list[str] | None = None, pids: list[int] | None = None, *,
            system_wide: bool = False, handle_signals: bool = True) -> ExitStatus:
        """Choose the processes, switch tracing on, let the command go and wait for the
        processes to end (or a signal).  How the command ended."""
        self.scope = scope = ProcessScope(self.instance)
        self.system_wide = system_wide
        if system_wide:
            own = [int(t) for t in os.listdir("/proc/self/task")]
            scope.everything(own)
        if command:
            scope.launch(command)
        elif pids:
            for pid, comm in _comms(scope.attach(pids)).items():
                self.session.note_comm(pid, comm)
        self.instance.write("tracing_on", "1")
        scope.go()
        status = scope.wait(handle_signals, tick=None if system_wide else self._note_pids)
        if status.signal == signal.SIGPIPE:
            # our output is gone: the signal may come before the reader's BrokenPipeError
            for t in self._threads:
                t.join(0.5)
        if self.error is not None:
            raise self.error
        return status

    def in_scope(self, pid: int) -> bool:
        """Is ``pid`` a process this recording traces (or traced)?  The scope of the user
        events of a recording with a command or ``-P``: the pids the kernel's
        ``set_event_pid`` has held, looked at every TICK_MS while the recording runs and
        again for a pid not seen yet.  (A process that lived less than that and was gone
        before its records were drained is missed.)"""
        if pid in self._seen or self.system_wide:
            return True
        now = time.monotonic_ns()
        if now - self._seen_at > 1_000_000:     # at most every ms for unknown pids
            self._note_pids()
        return pid in self._seen

    def _note_pids(self) -> None:
        self._seen_at = time.monotonic_ns()
        inst = self.instance
        if inst is None:
            return
        try:
            text = inst.read("set_event_pid")
        except OSError:
            return
        self._seen.update(int(p) for p in text.split() if p.isdigit())

    # -- the readers -----------------------------------------------------------------------------
    def _spawn(self, target, arg, name: str) -> None:
        t = threading.Thread(target=self._guard, args=(target, arg), name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _guard(self, target, arg) -> None:
        try:
            target(arg)
        except BaseException as exc:        # noqa: BLE001 - handed to the main thread
            if self.error is None:
                self.error = exc
            if self.scope is not None:
                self.scope.request_stop(signal.SIGPIPE if isinstance(exc, BrokenPipeError)
                                        else signal.SIGTERM)

    def _wait_for_pages(self, poller) -> bool:
        """Until the kernel has pages to take or the recording stops; True when it stops."""
        if self._stop.is_set():
            return True
        poller.poll(POLL_MS)
        return self._stop.is_set()

    def _copy(self, pipe: CpuPipe) -> None:
        """One cpu's pages, as they are, into that cpu's section of the trace.dat."""
        put = self.session.trace.put_pages
        cpu = pipe.cpu
        poller = select.poll()
        poller.register(pipe.fileno(), select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        try:
            while True:
                stopping = self._wait_for_pages(poller)
                while data := pipe.full_pages():
                    put(cpu, data)
                if stopping:
                    break
            while (page := pipe.read_page()) is not None:
                put(cpu, page)
        finally:
            pipe.close()

    def _decode(self, pipes: list[CpuPipe]) -> None:
        """Every cpu's events, merged in time order, to the stream and the statistics (and
        the pages to the trace.dat, for ``record --summary``).

        Each round reads what every cpu has; an event is handed on only once no cpu can
        still bring an earlier one: below the time each cpu was emptied at (or, for a cpu
        left unfinished, its last event read)."""
        reader = PageReader(self.layout)
        trace = self.session.trace
        pending = {p.cpu: deque() for p in pipes}
        poller = select.poll()
        for p in pipes:
            poller.register(p.fileno(), select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        deliver = self._deliver
        try:
            while True:
                stopping = self._wait_for_pages(poller)
                marks = []
                for pipe in pipes:
                    mark = time.monotonic_ns()
                    queue = pending[pipe.cpu]
                    for _ in range(ROUND_PAGES if not stopping else 1 << 62):
                        page = pipe.read_page()
                        if page is None:
                            break
                        if trace is not None:
                            trace.put_pages(pipe.cpu, page)
                        queue.extend(reader.decode(page).events)
                    else:
                        mark = queue[-1][0] if queue else mark
                    marks.append(mark)
                upto = min(marks) if marks and not stopping else 1 << 64
                ready = []
                for cpu, queue in pending.items():
                    out = []
                    while queue and queue[0][0] < upto:
                        ts, payload = queue.popleft()
                        out.append((ts, cpu, payload))
                    ready.append(out)
                for ts, cpu, payload in heapq.merge(*ready, key=lambda e: (e[0], e[1])):
                    deliver(ts, cpu, payload)
                if stopping:
                    break
        finally:
            for pipe in pipes:
                pipe.close()

    def _deliver(self, ts: int, cpu: int, payload) -> None:
        etype, _, _, pid = _HEADER.unpack_from(payload)
        state = self._shown.get(etype)
        stats = self.stats
        if stats is not None and len(payload) >= 16:
            fmt = state.format if state is not None else self._counted_format(etype)
            if fmt is not None and fmt.system == SYSCALLS:
                nr = _NR.unpack_from(payload, 8)[0]
                name = self._names.get(nr, str(nr))
                if fmt.name.startswith("sys_enter_"):
                    stats.enter(pid, name, nr, ts)
                else:
                    stats.exit(pid, name, nr, ts, _RET.unpack_from(payload, 16)[0])
        if state is None or self.session.stream is None:
            return
        values = state.codec.decode(payload)
        if state.format.name in ("sys_exit_execve", "sys_exit_execveat", "sys_exit_prctl"):
            self._comms.pop(pid, None)        # the task's name may have changed
        self.session.emit(state, values, ts, cpu, self._comm(pid))

    def _counted_format(self, etype: int) -> EventFormat | None:
        return self.session.registry.by_id(etype)

    def _comm(self, pid: int) -> str:
        comm = self._comms.get(pid)
        if comm is None:
            comm = _comms([pid]).get(pid) or self._saved_cmdlines().get(pid, "<...>")
            self._comms[pid] = comm
        return comm

    def _saved_cmdlines(self) -> dict[int, str]:
        """The kernel's ``saved_cmdlines``: the names of tasks that had events (read only)."""
        try:
            text = (self.root / "saved_cmdlines").read_text()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            pid, _, comm = line.partition(" ")
            if pid.isdigit():
                out[int(pid)] = comm
        return out

    # -- the end ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Tracing off, the readers take what is left, the kernel's counts are read, the
        instance and the probes are removed.  Safe to call more than once.  A second Ctrl-C
        or a SIGTERM meanwhile waits until it is done (in the main thread)."""
        if self.instance is None:
            return
        blocked = threading.current_thread() is threading.main_thread()
        if blocked:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
        try:
            self._drain()
        finally:
            try:
                self._remove()
            finally:
                if blocked:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _drain(self) -> None:
        try:
            self.instance.write("tracing_on", "0")
        except TracefsError:
            pass
        self._stop.set()
        if self._stop_w >= 0:
            os.write(self._stop_w, b"\0")
        for t in self._threads:
            t.join()
        self._threads = []
        self._read_counts()
        if self.session is not None and self.session.trace is not None:
            for pid, comm in self._saved_cmdlines().items():
                self.session.cmdlines.setdefault(pid, comm)

    def _remove(self) -> None:
        try:
            self.instance.remove()
        except TracefsError as exc:
            self.warn(f"{exc} (usertrace clean removes it once this process is gone)")
        self.instance = None
        for line in self.probes.remove():
            self.warn(f"cannot remove probe {line}")
        if self.scope is not None:
            self.scope.close()
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1

    def _read_counts(self) -> None:
        """The kernel's per-cpu ``stats``: what was read and what was lost (in the summary and
        the trace.dat's CPUSTAT)."""
        trace = self.session.trace if self.session is not None else None
        read = lost = 0
        for cpu in self.cpus:
            try:
                text = self.instance.read(f"per_cpu/cpu{cpu}/stats")
            except OSError:
                continue
            stats = {}
            for line in text.splitlines():
                key, _, value = line.partition(":")
                stats[key.strip()] = value.strip()
            self.cpu_stats[cpu] = stats
            cpu_read = _int(stats.get("read events"))
            cpu_lost = sum(_int(stats.get(k)) for k in ("overrun", "dropped events",
                                                        "commit overrun"))
            read += cpu_read
            lost += cpu_lost
            if trace is not None:
                trace.writer.set_counts(cpu, cpu_read, cpu_lost)
        if trace is not None:
            trace.count_foreign(read, lost)

    def problems(self) -> list[str]:
        """A line per cpu whose events the kernel lost (never silent)."""
        out = []
        for cpu, stats in sorted(self.cpu_stats.items()):
            parts = []
            for key, what in (("dropped events", "dropped (buffer full)"),
                              ("overrun", "overwritten (buffer full)"),
                              ("commit overrun", "lost inside the kernel (commit overrun)")):
                n = _int(stats.get(key))
                if n:
                    parts.append(f"{n} {what}")
            if parts:
                hint = " (a larger -b keeps more)" if self.consumers & Consumer.TRACE else ""
                out.append(f"kernel: cpu {cpu}: " + ", ".join(parts) + hint)
        return out



def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _comms(pids) -> dict[int, str]:
    """``/proc/PID/comm`` of each pid that still exists."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                out[pid] = f.read().rstrip("\n")
        except OSError:
            pass
    return out
