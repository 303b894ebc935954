"""A seccomp-BPF program that stops a launched command only at the system calls the sources
asked for (the engine builds it from the union of its handlers' needs).

The program returns ``SECCOMP_RET_TRACE`` for the enabled native system calls (the tracer gets
a PTRACE_EVENT_SECCOMP stop) and ``SECCOMP_RET_ALLOW`` for everything else, so a syscall
that nobody enabled costs a few BPF instructions and no stop.  Calls of another ABI get
ALLOW: i386 calls (``arch`` is not AUDIT_ARCH_X86_64) and x32 calls (the number carries
``__X32_SYSCALL_BIT``), for which the kernel has no trace events either.

The enabled numbers are folded into ranges; each range costs three instructions (one for a
single number) and every jump is local, so the program stays far below the kernel's 4096
instruction limit and needs no long jumps::

    ld  [4]                 ; arch
    jeq #0xc000003e, 1, 0
    ret #ALLOW
    ld  [0]                 ; nr
    jge #0x40000000, 0, 1   ; x32
    ret #ALLOW
    jge #lo, 0, 2           ; for each range lo..hi (jeq #lo, 0, 1 when lo == hi)
    jgt #hi, 1, 0
    ret #TRACE
    ...
    ret #ALLOW

When more than half of the numbers are enabled, the complement is written instead, with
ALLOW and TRACE swapped, so "everything but a few" is as short as "only a few".
"""

from __future__ import annotations

import struct
from typing import Iterable

from ..arch import X86_64, Arch

X32_SYSCALL_BIT = X86_64.x32_syscall_bit

# <linux/filter.h>, <linux/bpf_common.h>
BPF_LD, BPF_JMP, BPF_RET = 0x00, 0x05, 0x06
BPF_W, BPF_ABS, BPF_K = 0x00, 0x20, 0x00
BPF_JEQ, BPF_JGT, BPF_JGE = 0x10, 0x20, 0x30

# <linux/seccomp.h>
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_TRACE = 0x7FF00000

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
OFF_NR, OFF_ARCH = 0, 4

MAX_INSNS = 4096

_INSN = struct.Struct("<HBBI")   # struct sock_filter: code, jt, jf, k


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def ranges(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, disjoint inclusive ranges covering ``numbers``: {1,2,3,7} -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def build_program(traced: Iterable[int], arch: Arch = X86_64) -> list[tuple[int, int, int, int]]:
    """The instructions ``(code, jt, jf, k)`` of the filter for the syscall numbers ``traced``.

    ``arch.max_nr`` is the highest native number; numbers above it never reach a trace
    event, so the complement is taken within 0..max_nr only.  Calls of another ABI of the
    architecture (``arch.audit_arch`` differs, or the x32 bit is set) are allowed.
    """
    max_nr, audit_arch = arch.max_nr, arch.audit_arch
    traced = {n for n in traced if 0 <= n <= max_nr}
    hit, miss = SECCOMP_RET_TRACE, SECCOMP_RET_ALLOW
    if len(traced) > (max_nr + 1) // 2:
        # Write the complement: ALLOW for the numbers not traced, TRACE for the rest of
        # 0..max_nr, ALLOW above it.
        traced = set(range(max_nr + 1)) - traced
        hit, miss = SECCOMP_RET_ALLOW, SECCOMP_RET_TRACE
    prog = [
        _stmt(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
        _jump(BPF_JMP | BPF_JEQ | BPF_K, audit_arch, 1, 0),
        _stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        _stmt(BPF_LD | BPF_W | BPF_ABS, OFF_NR),
    ]
    if arch.x32_syscall_bit:
        prog += [_jump(BPF_JMP | BPF_JGE | BPF_K, arch.x32_syscall_bit, 0, 1),
                 _stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)]
    if miss == SECCOMP_RET_TRACE:
        # Numbers above the table (and negative ones, which read as huge) are never traced.
        prog += [_jump(BPF_JMP | BPF_JGT | BPF_K, max_nr, 0, 1),
                 _stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)]
    for lo, hi in ranges(traced):
        if lo == hi:
            prog.append(_jump(BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 1))
        else:
            prog.append(_jump(BPF_JMP | BPF_JGE | BPF_K, lo, 0, 2))
            prog.append(_jump(BPF_JMP | BPF_JGT | BPF_K, hi, 1, 0))
        prog.append(_stmt(BPF_RET | BPF_K, hit))
    prog.append(_stmt(BPF_RET | BPF_K, miss))
    if len(prog) > MAX_INSNS:
        raise ValueError(f"seccomp program of {len(prog)} instructions exceeds {MAX_INSNS}")
    return prog


def encode_program(prog: list[tuple[int, int, int, int]]) -> bytes:
    """The ``struct sock_filter[]`` bytes of a program."""
    return b"".join(_INSN.pack(*insn) for insn in prog)


def build_filter(traced: Iterable[int], arch: Arch = X86_64) -> bytes:
    """The encoded filter (what :func:`usertrace.ptrace.launch.install_seccomp` takes)."""
    return encode_program(build_program(traced, arch))


def run_program(prog: list[tuple[int, int, int, int]], nr: int, arch: int = X86_64.audit_arch,
                args: tuple[int, ...] = (0,) * 6) -> int:
    """Interpret a program on one ``seccomp_data`` (for tests: the kernel runs the real one).

    Only the instructions :func:`build_program` emits are understood.
    """
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    acc = 0
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == BPF_LD | BPF_W | BPF_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == BPF_RET | BPF_K:
            return k
        elif code & 0x07 == BPF_JMP:
            op = code & 0xF0
            taken = (acc == k if op == BPF_JEQ else acc > k if op == BPF_JGT else acc >= k)
            pc += jt if taken else jf
        else:
            raise ValueError(f"instruction {pc}: code {code:#x} not understood")
        pc += 1
