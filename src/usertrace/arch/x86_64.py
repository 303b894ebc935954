"""x86_64: the registers, the syscall-info layout, the audit arch and the breakpoint.

``struct user_regs_struct`` (``<sys/user.h>``), what ``PTRACE_GETREGS`` fills, is 27 unsigned
longs in this order; ``orig_rax`` holds the system call number at a syscall stop (-1 after
``rt_sigreturn``), ``rax`` the return value at its exit.  ``struct ptrace_syscall_info``
(``<linux/ptrace.h>``) is::

    u8 op; u8 pad[3]; u32 arch; u64 instruction_pointer; u64 stack_pointer;
    union { entry: u64 nr, args[6]; exit: s64 rval, u8 is_error; seccomp: u64 nr, args[6],
            u32 ret_data }

88 bytes in all; op is 1 at an entry, 2 at an exit, 3 at a seccomp stop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
        "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
        "gs_base", "ds", "es", "fs", "gs")
# The same registers by the names of the kernel's struct pt_regs, which the probe fetch
# arguments use (%ax, %sp, %ip, %flags ...).
KERNEL_REGS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx",
               "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss", "fs_base",
               "gs_base", "ds", "es", "fs", "gs")


@dataclass(frozen=True)
class Arch:
    """What the engine and the sources need to know of one architecture."""

    name: str
    audit_arch: int                 # AUDIT_ARCH_* of native system calls (seccomp, syscall info)
    max_nr: int                     # syscall numbers above it are never native
    regs: tuple[str, ...]           # user_regs_struct, in order
    kernel_regs: tuple[str, ...]    # the same, by the names of the kernel's pt_regs
    regs_struct: struct.Struct
    syscall_info_size: int
    syscall_entry: struct.Struct    # (arch, nr, arg0..arg5) of an entry or seccomp stop
    syscall_exit: struct.Struct     # (arch, rval) of an exit stop
    pc: str                         # the program counter register
    sp: str                         # the stack pointer
    retval: str                     # the function return value register
    nr_reg: str                     # where the syscall number stays during the call
    arg_regs: tuple[str, ...]       # function arguments, in order (the C calling convention)
    breakpoint: bytes               # the trap instruction
    long_size: int
    x32_syscall_bit: int = 0        # numbers with this bit are another ABI (no events)
    # Numbers the engine itself needs (the others come from the syscall tables).
    nr: dict = field(default_factory=dict)

    def reg_offset(self, name: str) -> int:
        """Byte offset of a register in user_regs_struct (for PTRACE_PEEKUSER)."""
        return self.regs.index(name) * self.long_size

    def unpack_regs(self, raw: bytes) -> dict[str, int]:
        return dict(zip(self.regs, self.regs_struct.unpack_from(raw)))

    def pack_regs(self, regs: dict[str, int]) -> bytes:
        return self.regs_struct.pack(*(regs[r] & 0xFFFF_FFFF_FFFF_FFFF for r in self.regs))

    def unpack_kernel_regs(self, raw: bytes) -> dict[str, int]:
        """user_regs_struct as ``{"ip": ..., "sp": ..., "ax": ...}`` (pt_regs names)."""
        return dict(zip(self.kernel_regs, self.regs_struct.unpack_from(raw)))

    def pack_kernel_regs(self, regs: dict[str, int]) -> bytes:
        return self.regs_struct.pack(*(regs[r] & 0xFFFF_FFFF_FFFF_FFFF for r in self.kernel_regs))


X86_64 = Arch(
    name="x86_64",
    audit_arch=0xC000003E,
    max_nr=511,
    regs=REGS,
    kernel_regs=KERNEL_REGS,
    regs_struct=struct.Struct(f"<{len(REGS)}Q"),
    syscall_info_size=88,
    syscall_entry=struct.Struct("<4xI16x7Q"),
    syscall_exit=struct.Struct("<4xI16xq"),
    pc="rip",
    sp="rsp",
    retval="rax",
    nr_reg="orig_rax",
    arg_regs=("rdi", "rsi", "rdx", "rcx", "r8", "r9"),
    breakpoint=b"\xcc",
    long_size=8,
    x32_syscall_bit=0x40000000,
    nr={"rt_sigreturn": 15, "prctl": 157, "execve": 59, "execveat": 322, "seccomp": 317,
        "tgkill": 234, "mmap": 9, "rt_sigaction": 13, "exit": 60, "exit_group": 231, "clone": 56,
        "clone3": 435, "fork": 57, "vfork": 58},
)
