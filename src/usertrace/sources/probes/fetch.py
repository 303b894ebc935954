"""Running fetch programs at a hit: registers and memory in, the kernel's record out.

This is ``store_trace_args`` and ``process_fetch_insn`` of ``trace_uprobe.c`` and
``trace_probe_tmpl.h``, for the engine to call when a probe is hit.  It needs the task's
registers (a dict by the kernel's names ``ax``, ``sp``... or ``struct user_regs_struct``'s
``rax``, ``rsp``..., or an object with those attributes) and a memory reader
``read(addr, n) -> bytes | None`` (None: the address cannot be read).

What the kernel does, and so what this does:

- a string is measured first (``strnlen_user``, at most ``MAX_STRING_SIZE`` = 4096 bytes with
  its NUL; a longer one counts 0), the record is sized, then the strings are copied; a string
  that cannot be read gets a ``__data_loc`` of length 0 and prints as ``(fault)``;
- ``$stackN`` that cannot be read is 0 (``get_user_stack_nth``);
- a value read from memory (``+8(%di):u32``) that cannot be read is 0 (``copy_from_user``
  clears what it could not copy);
- a dereference on the way that cannot be read stops the argument: its field keeps what the
  kernel's per-cpu buffer held before (we write 0) and a string field keeps the place and the
  remaining length it was given (so it shows the bytes of the next string, as the kernel's);
- an immediate string (``\\"text"``) is kernel memory, which a uprobe reads with the user
  copy routines: it always faults, as under the kernel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Mapping

from . import types as T
from .events import FIELD_FUNC, FIELD_IP, FIELD_RETIP, decode, header_size
from .parse import MAX_STRING_SIZE, ProbeArg, ProbeDefinition

Reader = Callable[[int, int], "bytes | None"]
MASK64 = (1 << 64) - 1
PAGE = 4096
_COMM = object()        # FETCH_TOKEN_COMM
_KERNEL = object()      # an address in kernel memory (an immediate string)


class _Fault(Exception):
    pass


def _regs_getter(regs) -> Callable[[str], int]:
    """A function from the kernel's register name to its value."""
    if isinstance(regs, Mapping):
        def get(name: str) -> int:
            if name in regs:
                return regs[name] & MASK64
            return regs[T.X86_64_REGS[name]] & MASK64
        return get
    return lambda name: getattr(regs, T.X86_64_REGS[name]) & MASK64


@dataclass(frozen=True)
class Hit:
    """One hit: the record bytes as the kernel writes them, and its decoded values."""

    record: bytes
    values: dict | None


class _Run:
    """The state of one hit: registers, memory, comm, and the address translation."""

    def __init__(self, regs, read: Reader, comm: str, bp_addr: int, probe_offset: int):
        self.reg = _regs_getter(regs)
        self.read = read
        self.comm = comm.encode()[:15]
        self.bp_addr = bp_addr
        self.probe_offset = probe_offset

    def mem(self, addr: int, n: int) -> bytes | None:
        if addr is _COMM or addr is _KERNEL or not 0 <= addr <= MASK64 - n + 1:
            return None
        data = self.read(addr, n)
        return data if data is not None and len(data) == n else None

    def u64(self, addr: int) -> int:
        data = self.mem(addr, 8)
        if data is None:
            raise _Fault
        return struct.unpack("<Q", data)[0]

    def cstring(self, addr, limit: int) -> bytes | None:
        """The bytes up to a NUL (not included), at most ``limit`` bytes looked at; None on a
        fault; the ``limit`` bytes when no NUL is among them."""
        if addr is _COMM:
            return self.comm
        if addr is _KERNEL:
            return None
        out = bytearray()
        while len(out) < limit:
            n = min(limit - len(out), PAGE - (addr + len(out)) % PAGE)
            chunk = self.mem((addr + len(out)) & MASK64, n)
            if chunk is None:
                return None
            nul = chunk.find(b"\0")
            if nul >= 0:
                return bytes(out + chunk[:nul])
            out += chunk
        return bytes(out)

    # -- process_fetch_insn, stage 1 -------------------------------------------------------
    def load(self, insn) -> object:
        op = insn.op
        if op == T.REG:
            return self.reg(insn.param)
        if op == T.STACK:
            data = self.mem((self.reg("sp") + 8 * insn.param) & MASK64, 8)
            return struct.unpack("<Q", data)[0] if data is not None else 0
        if op == T.STACKP:
            return self.reg("sp")
        if op == T.RETVAL:
            return self.reg("ax")
        if op == T.IMM:
            return insn.immediate
        if op == T.COMM:
            return _COMM
        if op == T.DATA:
            return _KERNEL
        if op == T.FOFFS:
            return (self.bp_addr - self.probe_offset + insn.immediate) & MASK64
        raise ValueError(f"not a load: {op}")


def _add(val, n: int):
    return val if val is _COMM or val is _KERNEL else (val + n) & MASK64


def _strlen(run: _Run, addr) -> int:
    """``fetch_store_strlen``: the length with its NUL, 0 on a fault or past 4096."""
    if addr is _COMM:
        return len(run.comm) + 1
    s = run.cstring(addr, MAX_STRING_SIZE + 1)
    if s is None or len(s) + 1 > MAX_STRING_SIZE:
        return 0
    return len(s) + 1


def _store_string(run: _Run, addr, buf: bytearray, dest: int) -> int:
    """``fetch_store_string``: copy into the place the data_loc at ``dest`` gives."""
    loc = struct.unpack_from("<I", buf, dest)[0]
    maxlen, off = loc >> 16, loc & 0xFFFF
    if not maxlen:
        return -12                                   # -ENOMEM
    s = run.cstring(addr, maxlen)
    if s is None:
        struct.pack_into("<I", buf, dest, off)
        return -14                                   # -EFAULT
    ret = len(s)
    if addr is _COMM:
        s = s[:maxlen - 1]
    data = s[:maxlen]
    buf[off:off + len(data)] = data
    if ret >= maxlen:
        buf[off + maxlen - 1] = 0
        ret = maxlen
    else:
        buf[off + len(data)] = 0
        ret += 1
    struct.pack_into("<I", buf, dest, ret << 16 | off)
    return ret


def _process(run: _Run, code: tuple, buf: bytearray | None, dest: int) -> int:
    """``process_fetch_insn`` + ``process_fetch_insn_bottom``: store one argument at
    ``dest`` (or, with ``buf`` None, only measure its strings); the dynamic bytes used."""
    c = 0
    val = run.load(code[c])
    c += 1
    total = 0
    i = 0
    loc = 0
    lval = val
    ret = 0
    stage = 2
    s3 = c
    while True:
        if stage == 2:
            while code[c].op in (T.DEREF, T.UDEREF):
                lval = val
                try:
                    val = run.u64(_add(val, code[c].offset))
                except _Fault:
                    return -14
                c += 1
            s3 = c
            stage = 3
        insn = code[c]
        array = False
        if buf is None:
            if insn.op not in T.STRING_STORES:
                return -84                           # -EILSEQ
            ret = _strlen(run, _add(val, insn.offset))
            c += 1
            array = True
        if not array:
            if insn.op == T.ST_RAW:
                buf[dest:dest + insn.size] = ((val if isinstance(val, int) else 0)
                                              & ((1 << 8 * insn.size) - 1)
                                              ).to_bytes(insn.size, "little")
            elif insn.op in (T.ST_MEM, T.ST_UMEM):
                data = run.mem(_add(val, insn.offset), insn.size)
                buf[dest:dest + insn.size] = data if data is not None else bytes(insn.size)
            elif insn.op in T.STRING_STORES:
                loc = struct.unpack_from("<I", buf, dest)[0]
                ret = _store_string(run, _add(val, insn.offset), buf, dest)
            else:
                return -84
            c += 1
            if code[c].op == T.MOD_BF:
                m = code[c]
                bits = 8 * m.basesize
                mask = (1 << bits) - 1
                v = int.from_bytes(buf[dest:dest + m.basesize], "little")
                v = ((v << m.lshift) & mask) >> m.rshift
                buf[dest:dest + m.basesize] = v.to_bytes(m.basesize, "little")
                c += 1
        if code[c].op == T.LP_ARRAY:
            if ret < 0:
                ret = 0
            total += ret
            i += 1
            if i < code[c].param:
                c = s3
                if code[s3].op not in T.STRING_STORES:
                    dest += code[s3].size
                    val = _add(val, code[s3].size)
                    stage = 3
                    continue
                c -= 1
                val = _add(lval, 8)
                dest += 4
                if buf is not None:
                    maxlen, off = loc >> 16, loc & 0xFFFF
                    struct.pack_into("<I", buf, dest, (maxlen - ret) << 16 | (off + ret))
                stage = 2
                continue
            c += 1
            ret = total
        return ret if code[c].op == T.END else -84


_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True)
class ValueShape:
    """An argument of a simple shape: ``base`` (``"reg"`` with ``param`` a register name,
    ``"imm"``, ``"pc"``: the probed address plus ``param``, ``"stack"``: ``$stack<param>``),
    then 8-byte dereferences at ``derefs`` offsets, then a ``mem_size``-byte read at
    ``mem_offset`` (0: the value itself is stored), masked to ``size`` bytes, then a
    bitfield ``(lshift, rshift, basesize)``.  What both of its runners compute: the Python
    function of :func:`_value_function` and the compiled breakpoint hit
    (``usertrace.ptrace._ptrace.hit``)."""

    base: str
    param: object
    derefs: tuple[int, ...]
    mem_size: int
    mem_offset: int
    size: int
    bitfield: tuple[int, int, int] | None


def _value_shape(code: tuple, probe_offset: int) -> ValueShape | None:
    """The argument ``code`` as a :class:`ValueShape`, for the shapes that need no string,
    array or ``$comm``: a load, dereferences, a raw or memory store, a bitfield.  None for
    any other shape (the interpreter, :func:`_process`, runs those)."""
    load, rest = code[0], list(code[1:])
    derefs = []
    while rest and rest[0].op in (T.DEREF, T.UDEREF):
        derefs.append(rest.pop(0).offset)
    if not rest or rest[0].op not in (T.ST_RAW, T.ST_MEM, T.ST_UMEM):
        return None
    store = rest.pop(0)
    bf = rest.pop(0) if rest and rest[0].op == T.MOD_BF else None
    if [i.op for i in rest] != [T.END]:
        return None
    op, param = load.op, load.param
    if op == T.REG:
        if param not in T.X86_64_REGS:
            return None
        base = ("reg", param)
    elif op == T.STACKP:
        base = ("reg", "sp")
    elif op == T.RETVAL:
        base = ("reg", "ax")
    elif op == T.IMM:
        base = ("imm", load.immediate)
    elif op == T.FOFFS:
        base = ("pc", load.immediate - probe_offset)
    elif op == T.STACK:
        base = ("stack", param)
    else:
        return None
    mem = store.op != T.ST_RAW
    return ValueShape(base[0], base[1], tuple(derefs), store.size if mem else 0,
                      store.offset if mem else 0, store.size,
                      (bf.lshift, bf.rshift, bf.basesize) if bf is not None else None)


def _value_function(shape: ValueShape):
    """``shape`` as a function ``(regs, read, bp_addr) -> int`` (the unsigned value stored).
    The kernel's answers are kept: a dereference or a read that faults stores 0,
    ``$stackN`` that faults is 0."""
    unpack = struct.Struct("<Q").unpack
    base, param = shape.base, shape.param
    if base == "reg":
        first = lambda regs, read, bp: regs[param]  # noqa: E731
    elif base == "imm":
        first = lambda regs, read, bp: param  # noqa: E731
    elif base == "pc":
        first = lambda regs, read, bp: bp + param  # noqa: E731
    else:
        n8 = 8 * param

        def first(regs, read, bp):
            data = read((regs["sp"] + n8) & MASK64, 8)
            return unpack(data)[0] if data is not None and len(data) == 8 else 0
    derefs = shape.derefs
    size = shape.mem_size
    offset = shape.mem_offset
    mask = (1 << 8 * shape.size) - 1
    code_size = _UNSIGNED.get(size)
    bf = shape.bitfield
    if bf is not None:
        lshift, rshift, basesize = bf
        bmask = (1 << 8 * basesize) - 1

    def value(regs, read, bp):
        v = first(regs, read, bp) & MASK64
        for off in derefs:
            data = read((v + off) & MASK64, 8)
            if data is None or len(data) != 8:
                return 0
            v = unpack(data)[0]
        if size:
            data = read((v + offset) & MASK64, size)
            if data is None or len(data) != size:
                return 0
            v = struct.unpack("<" + code_size, data)[0]
        v &= mask
        if bf is not None:
            v = ((v << lshift) & bmask) >> rshift
        return v
    return value


class FetchProgram:
    """The fetch programs of one probe definition, ready to run at each hit.

    >>> prog = FetchProgram(defn, event_id=2326)               # doctest: +SKIP
    >>> hit = prog.run(regs, read, comm="app", bp_addr=0x401136, pid=42)
    >>> hit.record, hit.values["x"]

    A definition whose arguments all have simple shapes (registers, the stack, memory
    through dereferences, bitfields: no strings, arrays or ``$comm``) runs compiled: one
    function per argument and one ``struct.pack`` for the record, the same bytes as the
    interpreter's (``tests/unit/test_probe_records.py`` compares the two).
    """

    def __init__(self, d: ProbeDefinition, event_id: int = 0):
        self.defn = d
        self.event_id = event_id
        self.esize = header_size(d.is_return)
        self.shapes = [_value_shape(a.code, d.offset) for a in d.args]
        self._fast = None
        if all(v is not None for v in self.shapes):
            values = [_value_function(v) for v in self.shapes]
            head = "<HBBiQQ" if d.is_return else "<HBBiQ"
            self._fast = (tuple(values), struct.Struct(
                head + "".join(_UNSIGNED[a.type.size] for a in d.args)).pack)

    def compiled_record(self, reg_index: Mapping[str, int], flags: int = 0,
                        preempt_count: int = 0) -> tuple | None:
        """The record of an entry hit as the compiled breakpoint hit makes it
        (``usertrace.ptrace._ptrace.hit``): ``(event_id, flags, preempt_count, args)``, each
        argument ``(size, base, param, derefs, mem_size, mem_offset, lshift, rshift,
        basesize)`` with ``base`` 0 a register (``param`` its index in ``reg_index``), 1 an
        immediate, 2 the probed address plus ``param``, 3 ``$stack<param>``.  None for a
        return probe or an argument of another shape."""
        if self.defn.is_return or self._fast is None:
            return None
        bases = {"reg": 0, "imm": 1, "pc": 2, "stack": 3}
        args = []
        for a, shape in zip(self.defn.args, self.shapes):
            if shape.size != a.type.size:
                return None
            param = reg_index[shape.param] if shape.base == "reg" else shape.param
            lshift, rshift, basesize = shape.bitfield or (0, 0, 0)
            args.append((shape.size, bases[shape.base], param & MASK64, shape.derefs,
                         shape.mem_size, shape.mem_offset & MASK64, lshift, rshift, basesize))
        return (self.event_id, flags, preempt_count, tuple(args))

    def _run_fast(self, regs: dict, read: Reader, bp_addr: int, func, pid: int, flags: int,
                  preempt_count: int) -> bytes:
        values, pack = self._fast
        if self.defn.is_return:
            head = (self.event_id, flags, preempt_count, pid,
                    (func if func is not None else bp_addr) & MASK64, regs["ip"] & MASK64)
        else:
            head = (self.event_id, flags, preempt_count, pid, bp_addr & MASK64)
        return pack(*head, *[v(regs, read, bp_addr) for v in values])

    def record_function(self, flags: int = 0, preempt_count: int = 0) -> Callable:
        """``f(regs, read, comm, bp_addr, func, pid) -> bytes``: the record of a hit and
        nothing else, by the shortest way (the hot path of a recording that needs no
        values); ``regs`` by the kernel's names, ``func`` the function of a return probe."""
        eid = self.event_id
        if self._fast is None:
            def record(regs, read, comm, bp_addr, func, pid):
                return self.run(regs, read, comm=comm, bp_addr=bp_addr, func=func, pid=pid,
                                flags=flags, preempt_count=preempt_count, values=False).record
            return record
        values, pack = self._fast
        if self.defn.is_return:
            def record(regs, read, comm, bp_addr, func, pid):
                return pack(eid, flags, preempt_count, pid, func, regs["ip"],
                            *[v(regs, read, bp_addr) for v in values])
        elif values:
            def record(regs, read, comm, bp_addr, func, pid):
                return pack(eid, flags, preempt_count, pid, bp_addr,
                            *[v(regs, read, bp_addr) for v in values])
        else:
            def record(regs, read, comm, bp_addr, func, pid):
                return pack(eid, flags, preempt_count, pid, bp_addr)
        return record

    def run(self, regs, read: Reader, *, comm: str = "", bp_addr: int, func: int | None = None,
            pid: int = 0, flags: int = 0, preempt_count: int = 0, values: bool = True) -> Hit:
        """Fetch every argument for a hit at ``bp_addr`` (the probed instruction's address in
        the task; for a return probe the function's, and the return address is the ``ip``
        of ``regs``).  Without ``values`` only the record is made (``Hit.values`` is None)."""
        d = self.defn
        if self._fast is not None and type(regs) is dict and "ip" in regs:
            record = self._run_fast(regs, read, bp_addr, func, pid, flags, preempt_count)
            return Hit(record, decode(d, record) if values else None)
        run = _Run(regs, read, comm, bp_addr, d.offset)
        dsize = 0
        for a in d.args:
            if a.dynamic:
                n = _process(run, a.code, None, 0)
                if n > 0:
                    dsize += n
        buf = bytearray(self.esize + d.size + dsize)
        struct.pack_into("<HBBi", buf, 0, self.event_id, flags, preempt_count, pid)
        if d.is_return:
            struct.pack_into("<QQ", buf, 8, (func if func is not None else bp_addr) & MASK64,
                             run.reg("ip"))
        else:
            struct.pack_into("<Q", buf, 8, bp_addr & MASK64)
        maxlen = dsize
        dyndata = self.esize + d.size
        for a in d.args:
            dest = self.esize + a.offset
            if a.dynamic:
                struct.pack_into("<I", buf, dest, (maxlen << 16 | dyndata) & 0xFFFFFFFF)
            ret = _process(run, a.code, buf, dest)
            if a.dynamic and ret > 0:
                dyndata += ret
                maxlen -= ret
        record = bytes(buf)
        return Hit(record, decode(d, record) if values else None)


def argument_values(d: ProbeDefinition, values: dict) -> dict[str, object]:
    """Only the arguments of a decoded record (no common or address fields)."""
    skip = {FIELD_IP, FIELD_FUNC, FIELD_RETIP}
    return {k: v for k, v in values.items() if not k.startswith("common_") and k not in skip}


__all__ = ["FetchProgram", "Hit", "ProbeArg", "argument_values"]
