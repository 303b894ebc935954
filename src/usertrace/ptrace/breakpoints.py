"""Software breakpoints in traced processes: what probe events stand on.

A breakpoint replaces the first byte of an instruction with the architecture's trap (``int3``)
in one process's memory.  When a thread runs into it, the engine gets a SIGTRAP stop and hands
it here (:meth:`Breakpoints.on_trap`); the callbacks of that address run with the thread's
registers, then the instruction that was displaced runs without ever putting its byte back
(other threads would run past the probe):

* **emulated** when the instruction allows it (``push %rbp``, ``endbr64``, nops, relative
  jumps and calls, ``mov %rsp,%rbp``, ``sub $imm,%rsp``): the registers and memory are
  changed as the instruction would, one stop per hit;
* **out of line**, in a slot of a page mapped into the process at the first hit that needs
  one (as the kernel maps its ``[uprobes]`` page, so later mappings land where they would
  under the kernel): a copy of the instruction followed by a jump back, and the thread simply
  continues there (one stop per hit); an instruction that needs a fixup after it ran (a
  RIP-relative operand through a scratch register, an indirect call's return address) is
  single-stepped in its slot instead (two stops).

Which of these applies is the decision of an instruction analyzer given by the caller
(``analyze(code, address)``, ``emulate``, ``pre_xol``, ``post_xol``: the probe source passes
``usertrace.sources.probes.insn``), so that this module stays free of instruction tables.

**Compiled hits.**  A hit as above costs some twenty microseconds of Python (registers as a
dict, the callbacks, the emulation, the registers back).  Where the ``_ptrace`` extension is
built, a breakpoint whose instruction the analyzer can hand over in compiled form
(``compiled_emulation``: a nop, ``endbr64``, ``push``, ``mov %rsp,%rbp``, a relative jump or
call) and whose callbacks all have one (an ``on_hit.compiled`` attribute: ``(specs,
on_records)``, the records to make, and what to call with them) is served by
``_ptrace.hit`` after its first hit (:meth:`Breakpoints.serve_trap`): registers read,
records made, the instruction emulated, the registers written back and the task resumed in
one call, then ``on_records(task, records, ts)`` while the task runs on.  The
first hit of each breakpoint takes the Python path (which maps the out-of-line page where a
callback asks for it), and so does any hit the compiled call declines.

**Return probes** replace the return address on the stack at the function's entry with the
address of a trampoline slot (a trap), keeping ``(return address, function, stack slot)`` on a
stack per thread; the trap of the trampoline pops it, runs the return callbacks and sends the
thread on to the real return address.  A ``longjmp`` or an exception that unwinds past
pending returns leaves instances whose stack slot is below the stack pointer: they are dropped
at the next return of that thread, as the kernel drops them.

**Nothing is left behind**: :meth:`Breakpoints.on_detach` (the engine calls it with every
thread stopped) puts every displaced byte back and every replaced return address on the
stacks; the slots' page stays mapped (harmless), so a thread that was sent into a slot still
finds its jump back.  A fork child inherits the breakpoints in its memory: its process takes
a copy of its parent's table, so the child is served too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..arch import Arch
from .errors import TraceError
from .handlers import StopHandler
from .inject import Regs, TaskGone, run_syscall, single_step
from .libc import compiled, poke_word
from .task import Task

NOT_MINE = -1
PAGE = 4096
SLOT = 64                                 # bytes per slot of the out-of-line page
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
PROT_READ, PROT_EXEC = 0x1, 0x4
MASK64 = (1 << 64) - 1

OnHit = Callable[[Task, dict, int], None]


def jump_to(target: int) -> bytes:
    """``jmp *0(%rip)`` followed by the 8-byte target: a jump anywhere, 14 bytes."""
    return b"\xff\x25\x00\x00\x00\x00" + (target & MASK64).to_bytes(8, "little")


@dataclass
class Breakpoint:
    address: int
    original: bytes                       # the byte(s) the trap replaced
    info: object = None                   # the analyzer's facts (None: a return trampoline)
    hits: list = field(default_factory=list)        # OnHit callbacks
    slot: int = 0                         # out-of-line slot, once made
    step: bool = False                    # single-step in the slot (needs a fixup after)
    compiled: tuple | bool | None = None  # its compiled form (False: none; None: not tried)


@dataclass
class ReturnInstance:
    ret: int                              # the real return address
    func: int                             # the probed function
    stack: int                            # where the return address was on the stack
    on_return: OnHit | None = None


class _Table:
    """What one address space holds of ours."""

    def __init__(self):
        self.bps: dict[int, Breakpoint] = {}
        self.fast: dict[int, tuple] = {}     # address -> compiled form (_ptrace.hit's sites)
        self.xol = 0                      # the out-of-line page, once mapped
        self.next_slot = 0
        self.trampoline = 0               # the return trampoline's slot

    def copy(self) -> "_Table":
        t = _Table()
        t.bps = {a: Breakpoint(b.address, b.original, b.info, list(b.hits), b.slot, b.step,
                               b.compiled)
                 for a, b in self.bps.items()}
        t.fast = dict(self.fast)
        t.xol, t.next_slot, t.trampoline = self.xol, self.next_slot, self.trampoline
        return t


class Analyzer:
    """The instruction facts the breakpoints need; the probe source gives a real one."""

    def analyze(self, code: bytes, address: int):
        raise NotImplementedError

    def emulate(self, info, regs: dict):
        return None

    def compiled_emulation(self, info, reg_index: dict[str, int]):
        """``(kind, length, param)`` for ``_ptrace.hit``, or None (see the module)."""
        return None

    def pre_xol(self, plan, regs: dict, address: int, slot: int):
        raise NotImplementedError

    def post_xol(self, plan, regs: dict, address: int, slot: int, saved):
        raise NotImplementedError


class Breakpoints(StopHandler):
    """Every breakpoint of one engine; add it to the engine with ``engine.add()``."""

    wants_traps = True

    def __init__(self, arch: Arch, analyzer: Analyzer, requeue: Callable[[int, int], None]):
        self.arch = arch
        self.analyzer = analyzer
        self.regs = Regs(arch)
        self._trap_len = len(arch.breakpoint)
        self._emulate = analyzer.emulate
        self._requeue = requeue               # a task's end seen here goes to the engine
        self._returns: dict[int, list[ReturnInstance]] = {}
        self.served = 0                       # hits served by the compiled call
        self._compiled_hit = compiled("hit")
        self._reg_index = {name: i for i, name in enumerate(arch.kernel_regs)}
        self._rbuf = bytearray(arch.regs_struct.size)

    # -- placing ----------------------------------------------------------------------------
    def _table(self, process) -> _Table:
        t = process.state.get(self)
        if t is None:
            t = process.state[self] = _Table()
        return t

    def insert(self, process, address: int, on_hit: OnHit) -> Breakpoint:
        """A breakpoint at ``address`` in ``process`` calling ``on_hit(task, regs, ts)``
        (regs by pt_regs names, ``ip`` the address); several callbacks may share one.
        Raises TraceError when the instruction cannot be probed or the memory not written."""
        table = self._table(process)
        bp = table.bps.get(address)
        if bp is not None:
            bp.hits.append(on_hit)
            self._recompile(table, bp)
            return bp
        code = process.peek(address, 16)
        if code is None:
            raise TraceError(f"process {process.pid}: cannot read the instruction at "
                             f"{address:#x}")
        info = self.analyzer.analyze(code, address)
        if not getattr(info, "supported", True):
            raise TraceError(f"cannot probe {address:#x}: {getattr(info, 'refusal', '')}")
        trap = self.arch.breakpoint
        original = code[:len(trap)]
        if not process.poke(address, trap):
            raise TraceError(f"process {process.pid}: cannot write a breakpoint at {address:#x}")
        bp = table.bps[address] = Breakpoint(address, original, info, [on_hit])
        return bp

    def remove(self, process, address: int, on_hit: OnHit | None = None) -> None:
        """Take ``on_hit`` (all when None) off ``address``; the byte goes back with the last."""
        table = process.state.get(self)
        bp = table.bps.get(address) if table else None
        if bp is None:
            return
        if on_hit is not None and on_hit in bp.hits:
            bp.hits.remove(on_hit)
        self._recompile(table, bp)
        if on_hit is None or not bp.hits:
            process.poke(address, bp.original)
            del table.bps[address]

    def forget(self, process, address: int) -> None:
        """Drop the breakpoint at ``address`` without writing: its text is gone (unmapped, or
        mapped anew), and the byte kept must never be written into what is there now."""
        table = process.state.get(self)
        if table is not None:
            table.bps.pop(address, None)
            table.fast.pop(address, None)

    def map_xol_page(self, task: Task) -> None:
        """Map the out-of-line page now if it is not: where the kernel would step the
        instruction out of line but we emulate it, so that later mappings land where they
        would under the kernel (its ``[uprobes]`` page is mapped at such a first hit)."""
        table = self._table(task.process)
        if not table.xol:
            self._slot(task, table)

    def addresses(self, process) -> list[int]:
        table = process.state.get(self)
        return sorted(table.bps) if table else []

    # -- return probes ----------------------------------------------------------------------
    def hijack_return(self, task: Task, regs: dict, func: int, on_return: OnHit) -> None:
        """At a function's entry (``regs`` of its first instruction): make its return come
        back here, to call ``on_return(task, regs, ts)`` with the registers of the return."""
        process = task.process
        table = self._table(process)
        tramp = self._trampoline(task, table)
        sp = regs["sp"]
        raw = process.peek(sp, 8)
        if raw is None:
            return
        ret = int.from_bytes(raw, "little")
        if ret == tramp:                      # a tail call already hijacked: keep the first
            return
        if not process.poke(sp, tramp.to_bytes(8, "little")):
            return
        self._returns.setdefault(task.tid, []).append(ReturnInstance(ret, func, sp, on_return))

    def _trampoline(self, task: Task, table: _Table) -> int:
        if not table.trampoline:
            slot = self._slot(task, table)
            if not task.process.poke(slot, self.arch.breakpoint):
                raise TraceError(f"process {task.pid}: cannot write the return trampoline")
            table.trampoline = slot
            table.bps[slot] = Breakpoint(slot, b"", None, [])
        return table.trampoline

    def _returned(self, task: Task, regs: dict, ts: int) -> None:
        stack = self._returns.get(task.tid) or []
        sp = regs["sp"]
        # The return popped the address: its slot is just below sp.  Instances further down
        # the stack were skipped by a longjmp or an exception: drop them.
        while stack and stack[-1].stack < sp - 8:
            stack.pop()
        if not stack:
            raise TraceError(f"task {task.tid} returned through the trampoline with no "
                             "pending return")
        ri = stack.pop()
        regs["ip"] = ri.ret
        if ri.on_return is not None:
            ri.on_return(task, regs, ts)

    # -- a hit -----------------------------------------------------------------------------
    def _trapped_at(self, task: Task):
        """(table, regs, breakpoint) when ``task`` stopped just after a trap of ours."""
        process = task.process
        table = process.state.get(self) if process is not None else None
        if not table:
            return None
        regs = self.regs.get(task.tid)
        pc = (regs["ip"] - self._trap_len) & MASK64
        bp = table.bps.get(pc)
        if bp is None:
            return None
        regs["ip"] = pc
        return table, regs, bp

    # -- compiled hits ---------------------------------------------------------------------
    def _compile(self, bp: Breakpoint) -> tuple | bool:
        """``bp``'s site for ``_ptrace.hit``: ``(emulation, specs, calls)``, ``calls`` the
        ``(on_records, number of specs)`` of each callback; False when it has none."""
        if self._compiled_hit is None or bp.info is None or not bp.hits:
            return False
        emulation = self.analyzer.compiled_emulation(bp.info, self._reg_index)
        if emulation is None:
            return False
        specs: list = []
        calls = []
        for hit in bp.hits:
            form = getattr(hit, "compiled", None)
            if form is None:
                return False
            some, on_records = form
            specs += some
            calls.append((on_records, len(some)))
        return emulation, tuple(specs), tuple(calls)

    def _recompile(self, table: _Table, bp: Breakpoint) -> None:
        """The callbacks of ``bp`` changed: its next hit takes the Python path, and compiles
        it anew."""
        bp.compiled = None
        table.fast.pop(bp.address, None)

    def serve_trap(self, task: Task, ts: int, resume: int) -> bool:
        """The hit served by ``_ptrace.hit``, the task resumed with ``resume`` before the
        records are written (they are made); False when it declined (nothing changed)."""
        process = task.process
        table = process.state.get(self) if process is not None else None
        if table is None or not table.fast:
            return False
        fd = process.mem_fd()
        if fd < 0:
            return False
        got = self._compiled_hit(task.tid, self._rbuf, fd, table.fast, resume)
        if got is None:
            return False
        self.served += 1
        calls, records = got
        if len(calls) == 1:
            calls[0][0](task, records, ts)
        else:
            i = 0
            for on_records, n in calls:
                on_records(task, records[i:i + n], ts)
                i += n
        return True

    def on_trap(self, task: Task, ts: int) -> int:
        found = self._trapped_at(task)
        if found is None:
            return NOT_MINE                   # the program's own trap: it gets its SIGTRAP
        table, regs, bp = found
        if bp.info is None:                   # the return trampoline
            self._returned(task, regs, ts)
            self.regs.set(task.tid, regs)
            return 0
        for hit in tuple(bp.hits):
            hit(task, regs, ts)
        done = self._emulate(bp.info, regs)
        if done is None:
            return self._displaced(task, table, bp, regs)
        changes, writes = done
        for addr, data in writes:             # a push or a call: one word on the stack
            if len(data) != 8 or not poke_word(task.tid, addr, int.from_bytes(data, "little")):
                task.process.poke(addr, data)
        regs.update(changes)
        self.regs.set(task.tid, regs)
        if bp.compiled is None:               # served by _ptrace.hit from the next hit on
            bp.compiled = self._compile(bp)
            if bp.compiled:
                table.fast[bp.address] = bp.compiled
        return 0

    def _displaced(self, task: Task, table: _Table, bp: Breakpoint, regs: dict) -> int:
        """Run the instruction the trap displaced out of line (it is not emulated); the
        signal to deliver on resuming."""
        an = self.analyzer
        plan = bp.info.xol
        if not bp.slot:
            self._fill_slot(task, table, bp, plan)
        if not bp.step:                       # the copy jumps back by itself
            regs["ip"] = bp.slot
            self.regs.set(task.tid, regs)
            return 0
        changes, saved = an.pre_xol(plan, regs, bp.address, bp.slot)
        regs.update(changes)
        self.regs.set(task.tid, regs)
        try:
            pending = single_step(task.tid)
        except TaskGone as gone:
            self._requeue(gone.tid, gone.status)
            return 0
        after = self.regs.get(task.tid)
        changes, writes = an.post_xol(plan, after, bp.address, bp.slot, saved)
        for addr, data in writes:
            task.process.poke(addr, data)
        after.update(changes)
        self.regs.set(task.tid, after)
        return pending

    def _fill_slot(self, task: Task, table: _Table, bp: Breakpoint, plan) -> None:
        slot = self._slot(task, table)
        fixups = set(getattr(plan, "fixups", ()))
        bp.step = bool(getattr(plan, "scratch", None)) or bool(fixups - {"IP"})
        code = plan.code
        if not bp.step:
            code = code + jump_to(bp.address + plan.length)
        if len(code) > SLOT or not task.process.poke(slot, code):
            raise TraceError(f"process {task.pid}: cannot write an out-of-line slot")
        bp.slot = slot

    def _slot(self, task: Task, table: _Table) -> int:
        if not table.xol:
            addr, pending = run_syscall(self.regs, task.tid, task.process,
                                        self.arch.nr["mmap"], 0, PAGE,
                                        PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                                        MASK64, 0)
            if addr < 0:
                raise TraceError(f"process {task.pid}: cannot map the out-of-line page "
                                 f"(errno {-addr})")
            table.xol = addr
        if table.next_slot + SLOT > PAGE:
            raise TraceError(f"process {task.pid}: the out-of-line page is full")
        slot = table.xol + table.next_slot
        table.next_slot += SLOT
        return slot

    def take_back_trap(self, task: Task) -> bool:
        found = self._trapped_at(task)
        if found is None:
            return False
        _, regs, bp = found                   # regs["ip"] is back on the instruction, whose
        if bp.info is None:                   # byte returns before the task runs again;
            stack = self._returns.get(task.tid) or []     # the trampoline: on to the real
            if not stack:                                 # return address
                return False
            regs["ip"] = stack.pop().ret
        self.regs.set(task.tid, regs)
        return True

    # -- the life of processes -------------------------------------------------------------
    def on_task(self, what: str, task: Task, ts: int) -> None:
        if what == "new":
            proc = task.process
            parent = getattr(proc, "parent", None)
            if proc is not None and self not in proc.state and parent is not None \
                    and self in parent.state:
                proc.state[self] = parent.state[self].copy()      # a fork inherits them
                if task.parent_tid in self._returns:
                    self._returns[task.tid] = list(self._returns[task.parent_tid])
        elif what in ("exec", "exit"):
            self._returns.pop(task.tid, None)

    def on_detach(self, process) -> None:
        """Every byte back, every return address back on the stacks (threads stopped)."""
        table = process.state.get(self)
        if not table:
            return
        table.fast.clear()
        for bp in table.bps.values():
            if bp.original:
                process.poke(bp.address, bp.original)
        for tid in list(process.tids):
            for ri in self._returns.pop(tid, []):
                process.poke(ri.stack, ri.ret.to_bytes(8, "little"))
        process.state.pop(self, None)
