"""Registers of a stopped task, and a system call run inside it (to map a page).

Everything here works on a task in a ptrace-stop that the caller collected, from the tracer's
thread.  :func:`run_syscall` points the task's ip at a ``syscall`` instruction already in its
memory (the vdso's or a library's), single-steps it, reads the result and puts every register
back, as a debugger does to call into its inferior.  Signals that arrive meanwhile are kept
for the caller to deliver (:class:`Step`), a stop of another kind is stepped through, and the
end of the task is handed back to the engine.
"""

from __future__ import annotations

import ctypes
import operator
import os
import signal
import struct

from ..arch import Arch
from . import libc as L
from .errors import TraceError

_ptrace = L.fast_ptrace
_SYSCALL_INSN = b"\x0f\x05"          # x86_64 `syscall`


class TaskGone(Exception):
    """The task ended while we worked on it; ``status`` is its wait status."""

    def __init__(self, tid: int, status: int):
        super().__init__(f"task {tid} ended")
        self.tid = tid
        self.status = status


class Regs:
    """PTRACE_GETREGS / SETREGS of one architecture, by the kernel's pt_regs names.

    Both work in one buffer made once (a breakpoint hit reads and writes the registers
    every time: no allocation, one ``unpack_from``/``pack_into``)."""

    def __init__(self, arch: Arch):
        self.arch = arch
        self._buf = ctypes.create_string_buffer(arch.regs_struct.size)
        self._names = arch.kernel_regs
        self._unpack = arch.regs_struct.unpack_from
        self._pack = arch.regs_struct.pack_into
        self._values = operator.itemgetter(*arch.kernel_regs)

    def get(self, tid: int) -> dict[str, int]:
        buf = self._buf
        if _ptrace(L.PTRACE_GETREGS, tid, 0, buf) != 0:
            raise TraceError(f"task {tid}: cannot read its registers", L.fast_errno())
        return dict(zip(self._names, self._unpack(buf)))

    def set(self, tid: int, regs: dict[str, int]) -> None:
        buf = self._buf
        try:
            self._pack(buf, 0, *self._values(regs))
        except struct.error:                  # a negative value: as the unsigned word
            self._pack(buf, 0, *(v & 0xFFFF_FFFF_FFFF_FFFF for v in self._values(regs)))
        if _ptrace(L.PTRACE_SETREGS, tid, 0, buf) != 0:
            raise TraceError(f"task {tid}: cannot write its registers", L.fast_errno())


def single_step(tid: int) -> int:
    """Execute one instruction of a stopped task and wait until it is done.

    Returns a signal that arrived meanwhile (0 if none), which the caller delivers when it
    resumes the task; raises TaskGone when the task ended.
    """
    pending = 0
    sig_in = 0
    while True:
        if _ptrace(L.PTRACE_SINGLESTEP, tid, 0, sig_in) != 0:
            raise TraceError(f"task {tid}: cannot single-step it", L.fast_errno())
        sig_in = 0
        while True:
            try:
                _, status = os.waitpid(tid, L.WALL)
                break
            except InterruptedError:
                continue
        if not os.WIFSTOPPED(status):
            raise TaskGone(tid, status)
        sig = (status >> 8) & 0xFF
        event = status >> 16
        if event:                     # a seccomp stop, an interrupt: step on
            continue
        if sig == signal.SIGTRAP:
            return pending
        pending = pending or sig      # kept for later, as the kernel defers it while stepping


def find_syscall_insn(process) -> int:
    """The address of a ``syscall`` instruction in an executable mapping of ``process``
    (the vdso first), cached for the life of its address space."""
    cached = process.state.get("syscall_insn")
    if cached:
        return cached
    maps = sorted(process.maps(), key=lambda m: m.path != "[vdso]")
    for m in maps:
        if "x" not in m.perms or m.path == "[vsyscall]":
            continue
        addr = m.start
        while addr < m.end:
            size = min(m.end - addr, 1 << 16)
            data = process.peek(addr, size)
            if data is None:
                break
            i = data.find(_SYSCALL_INSN)
            if i >= 0:
                process.state["syscall_insn"] = addr + i
                return addr + i
            addr += size - 1
    raise TraceError(f"process {process.pid}: no syscall instruction to run a call with")


def run_syscall(regs: Regs, tid: int, process, nr: int, *args: int) -> tuple[int, int]:
    """Run system call ``nr`` with ``args`` in the stopped task ``tid``: (the result, a
    signal that arrived meanwhile).  Every register is as it was afterwards."""
    saved = regs.get(tid)
    call = dict(saved)
    call.update(zip(("di", "si", "dx", "r10", "r8", "r9"), args))
    call["ax"] = nr
    call["orig_ax"] = -1 & 0xFFFF_FFFF_FFFF_FFFF
    call["ip"] = find_syscall_insn(process)
    regs.set(tid, call)
    try:
        pending = single_step(tid)
        result = regs.get(tid)["ax"]
    finally:
        try:
            regs.set(tid, saved)
        except TraceError:
            pass
    if result >= 1 << 63:
        result -= 1 << 64
    return result, pending
