"""Probe definitions: today's uprobe syntax, parsed as the kernel parses it, and what we add.

The kernel's grammar (``Documentation/trace/uprobetracer.rst``)::

    p[:[GRP/][EVENT]] PATH:OFFSET[%return][(REF_CTR_OFFSET)] [FETCHARGS]
    r[:[GRP/][EVENT]] PATH:OFFSET[(REF_CTR_OFFSET)] [FETCHARGS]
    -:[GRP/][EVENT]

is parsed here step by step as ``__trace_uprobe_create`` (``trace_uprobe.c``) and
``traceprobe_parse_probe_arg`` (``trace_probe.c``) parse it, so that the same definitions are
taken and refused, with the same errors under the same columns.  The steps are numbered as
below; their order decides which error a definition with several faults gets:

1. the line: a ``#`` starts a comment; the words are split on white space (``argv_split``);
   a line starting with ``-`` removes events (``dyn_event_release``);
2. the command word: ``p`` or ``r`` (a ``:`` after it introduces the name; anything else
   after the letter is ignored, so ``r5`` is a return probe with the default name);
3. the place: it must hold a ``/`` and, after its last ``:``, a digit; else the kernel says
   ``EINVAL`` and logs nothing (this is where our extensions take over: symbols, SDT notes);
4. the file must exist and be a regular file;
5. ``(REF_CTR_OFFSET)``, then ``%return``, then the offset;
6. the group and event names (``traceprobe_parse_event_name``), else the defaults
   ``uprobes`` and ``p_<file>_0x<offset>`` (the file name up to its first ``.``, ``-`` or
   ``_``; ``p`` even for a return probe);
7. at most ``MAX_TRACE_ARGS`` arguments, then each argument: its name, its type (arrays,
   bitfields), its fetch program (:func:`_parse_probe_arg`, recursive for dereferences), the
   size of the event, and the last adjustments of the program (``finalize_fetch_insn``).

What usertrace adds, each translated into the kernel's syntax before step 3 sees it:

- ``PATH:SYMBOL[+OFFS]`` and ``SYMBOL[+OFFS]`` (the traced command's main program) for
  ``PATH:OFFSET``, resolved through the ELF symbol tables (:mod:`.elf`);
- ``[PATH:]sdt_PROVIDER:NAME`` for an SDT probe (:mod:`.sdt`), alone as a whole definition
  (``sdt_python:function__entry``) or as the place of a ``p`` definition;
- the legacy fetch arguments of the first kprobe tracer: ``sN`` (``$stackN``), ``sa``
  (``$stack``), ``aN`` (the N-th argument of the x86_64 calling convention, from 0),
  ``rv`` (``$retval``), ``ra`` (the return address), ``@SYM[+|-OFFS]`` (a data symbol of the
  probed file).

``str()`` of a parsed definition is its line in ``uprobe_events``.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field, replace

from ...filter.lexer import _parse_integer
from . import types as T
from .errors import ProbeError
from .types import FetchInsn, FetchType

MAX_TRACE_ARGS = 128
MAX_ARGSTR_LEN = 63
MAX_ARRAY_LEN = 64
MAX_ARG_NAME_LEN = 32
MAX_STRING_SIZE = 4096          # PATH_MAX
MAX_PROBE_EVENT_SIZE = 3072
MAX_EVENT_NAME_LEN = 64
PARAM_MAX_STACK = 16384 // 8    # THREAD_SIZE / sizeof(long), x86_64 without KASAN
DEFAULT_GROUP = "uprobes"
RESERVED_FIELD_NAMES = ("common_type", "common_flags", "common_preempt_count", "common_pid",
                        "common_tgid", "__probe_ip", "__probe_ret_ip", "__probe_func")

# The x86_64 calling convention's integer argument registers (for the legacy ``aN``).
ARG_REGS = ("di", "si", "dx", "cx", "r8", "r9")


# -- the parsed definitions ------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeArg:
    """One fetch argument (``struct probe_arg``)."""

    name: str
    comm: str                          # the expression as written after '=' (type included)
    type: FetchType
    count: int                         # array length, 0 for a scalar
    offset: int                        # from the start of the arguments in the record
    code: tuple[FetchInsn, ...]
    dynamic: bool                      # a string: its data is in the record's dynamic area

    @property
    def size(self) -> int:
        return self.type.size * (self.count or 1)

    @property
    def fmttype(self) -> str:
        """The type of its field in the format file (``u16[3]``, ``__data_loc char[]``)."""
        return f"{self.type.fmttype}[{self.count}]" if self.count else self.type.fmttype


@dataclass(frozen=True)
class ProbeDefinition:
    """A probe event definition, as the kernel holds it after parsing."""

    kind: str                          # "p" or "r"
    group: str
    event: str
    path: str
    offset: int                        # file offset of the probed instruction
    ref_ctr_offset: int = 0            # file offset of the reference counter (SDT semaphore)
    args: tuple[ProbeArg, ...] = ()
    size: int = 0                      # bytes of the arguments in the record (tp->size)
    source: str = ""                   # the definition as given
    symbol: str = ""                   # where a symbol or an SDT note placed it

    @property
    def is_return(self) -> bool:
        return self.kind == "r"

    @property
    def full_name(self) -> str:
        return f"{self.group}:{self.event}"

    def place(self) -> str:
        text = f"{self.path}:0x{self.offset:016x}"
        return text + (f"(0x{self.ref_ctr_offset:x})" if self.ref_ctr_offset else "")

    def __str__(self) -> str:
        """The line ``cat uprobe_events`` shows (``trace_uprobe_show``)."""
        args = "".join(f" {a.name}={a.comm}" for a in self.args)
        return f"{self.kind}:{self.group}/{self.event} {self.place()}{args}"

    def kernel_command(self) -> str:
        """The definition in the kernel's own syntax, for ``uprobe_events``."""
        return str(self)


@dataclass(frozen=True)
class ProbeRemoval:
    """``-:[GRP/][EVENT] [PATH:OFFSET [ARGS]]`` (``dyn_event_release``)."""

    group: str | None
    event: str                         # "" removes every event of the group
    match: tuple[str, ...] = ()        # further words, matched against the definition
    source: str = ""

    def matches(self, d: ProbeDefinition) -> bool:
        """``trace_uprobe_match``: the name (and group), then the place and arguments given."""
        if self.event and d.event != self.event:
            return False
        if self.group is not None and d.group != self.group:
            return False
        if not self.match:
            return True
        head = self.match[0]
        n = len(d.path)
        if not (head.startswith(d.path) and head[n:n + 1] == ":"):
            return False
        if head[n + 1:] != d.place()[n + 1:]:
            return False
        words = self.match[1:]
        if len(d.args) < len(words):
            return False
        return all(f"{a.name}={a.comm}"[:MAX_ARGSTR_LEN] == w for a, w in zip(d.args, words))

    def __str__(self) -> str:
        head = f"-:{self.group}/{self.event}" if self.group is not None else f"-:{self.event}"
        return " ".join((head,) + self.match)


@dataclass
class ParseContext:
    """What the parser may need beyond the text: the traced command's main program (for
    ``SYMBOL`` alone and ``sdt_`` names without a path), and a cache of opened ELF files."""

    main_program: str | None = None
    elf_cache: dict = field(default_factory=dict)

    def elf(self, path: str):
        from .elf import ElfFile
        f = self.elf_cache.get(path)
        if f is None:
            f = self.elf_cache[path] = ElfFile(path)
        return f


# -- kernel helpers ----------------------------------------------------------------------------

def _isdigit(c: str) -> bool:
    return "0" <= c <= "9"


def _isalpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def is_good_name(name: str, hyphen_ok: bool = False) -> bool:
    """``is_good_name`` (``hyphen_ok``: ``is_good_system_name``): a C identifier, and for a
    group, '-' too."""
    if not name:
        return False
    c = name[0]
    if not (_isalpha(c) or c == "_" or (hyphen_ok and c == "-")):
        return False
    return all(_isalpha(c) or _isdigit(c) or c == "_" or (hyphen_ok and c == "-")
               for c in name[1:])


def _radix(s: str, base: int) -> tuple[str, int]:
    """``_parse_integer_fixup_radix``: the base, and the digits after a 0x prefix."""
    if base == 0:
        if s[:1] == "0":
            if s[1:2].lower() == "x" and s[2:3] and s[2] in "0123456789abcdefABCDEF":
                return s[2:], 16
            return s, 8
        return s, 10
    if base == 16 and s[:2].lower() == "0x":
        return s[2:], 16
    return s, base


def kstrtoul_ret(s: str, base: int = 0, limit: int = (1 << 64) - 1) -> tuple[int, int]:
    """``kstrtoul``/``kstrtouint``: (value, 0), or (0, the errno the kernel returns:
    ERANGE for an overflow, EINVAL for anything else).  One trailing newline is allowed."""
    if s[:1] == "+":
        s = s[1:]
    s, base = _radix(s, base)
    value, used, overflow = _parse_integer(s, base)
    if overflow:
        return 0, errno.ERANGE
    if used == 0:
        return 0, errno.EINVAL
    rest = s[used:]
    if rest[:1] == "\n":
        rest = rest[1:]
    if rest:
        return 0, errno.EINVAL
    if value > limit:
        return 0, errno.ERANGE
    return value, 0


def kstrtol_ret(s: str, base: int = 0) -> tuple[int, int]:
    """``kstrtol``: as :func:`kstrtoul_ret`, with a sign, within the long range."""
    if s[:1] == "-":
        rest = s[1:]
        if rest[:1] == "+":
            return 0, errno.EINVAL
        v, err = kstrtoul_ret(rest, base)
        if err:
            return 0, err
        return (0, errno.ERANGE) if v > 1 << 63 else (-v, 0)
    v, err = kstrtoul_ret(s, base)
    if err:
        return 0, err
    return (0, errno.ERANGE) if v >= 1 << 63 else (v, 0)


def kstrtoul(s: str, base: int = 0, limit: int = (1 << 64) - 1) -> int | None:
    """The value, or None where ``kstrtoul`` fails."""
    v, err = kstrtoul_ret(s, base, limit)
    return None if err else v


def kstrtol(s: str, base: int = 0) -> int | None:
    v, err = kstrtol_ret(s, base)
    return None if err else v


def simple_strtoul(s: str, base: int = 0) -> tuple[int, int]:
    """``simple_strtoul``: the value of the leading digits and where they end."""
    digits, base = _radix(s, base)
    skipped = len(s) - len(digits)
    value, used, _ = _parse_integer(digits, base)
    return value, skipped + used


def find_fetch_type(name: str | None) -> FetchType | None:
    """``find_fetch_type`` for a uprobe (``TPARG_FL_USER``)."""
    if name is not None and name in T.KERNEL_ONLY_TYPES:
        return None
    if name is None:
        name = T.DEFAULT_TYPE
    if name[:1] == "b":
        slash = name.find("/")
        if slash < 0:
            return None
        bs = kstrtoul(name[slash + 1:])
        return {8: T.TYPES_BY_NAME["u8"], 16: T.TYPES_BY_NAME["u16"],
                32: T.TYPES_BY_NAME["u32"], 64: T.TYPES_BY_NAME["u64"]}.get(bs)
    return T.TYPES_BY_NAME.get(name)


# -- step 1: lines and words ----------------------------------------------------------------

_SPACE = " \t\n\v\f\r"


def split_words(line: str) -> list[str]:
    """``argv_split``: the words of a line, split on white space."""
    out, word = [], []
    for c in line:
        if c in _SPACE:
            if word:
                out.append("".join(word))
                word = []
        else:
            word.append(c)
    if word:
        out.append("".join(word))
    return out


def strip_comment(line: str) -> str:
    i = line.find("#")
    return line if i < 0 else line[:i]


class _Log:
    """``trace_probe_log``: the words of the command and the word errors refer to."""

    def __init__(self, argv: list[str]):
        self.argv = list(argv)
        self.index = 0

    def command(self) -> str:
        return " ".join(self.argv)

    def error(self, code: str, offset: int, err: int = errno.EINVAL, detail: str = "",
              index: int | None = None) -> ProbeError:
        idx = self.index if index is None else index
        pos = sum(len(w) + 1 for w in self.argv[:idx])
        if idx >= len(self.argv):
            pos, offset = pos, 0
        return ProbeError(code, self.command(), pos + offset, err, detail)


def parse_command(line: str, ctx: ParseContext | None = None
                  ) -> ProbeDefinition | ProbeRemoval | None:
    """One line written to ``uprobe_events``: a definition, a removal, or None (a blank or
    comment line).  Raise :class:`ProbeError` where the kernel refuses it."""
    ctx = ctx or ParseContext()
    text = strip_comment(line.rstrip("\n"))
    argv = split_words(text)
    if not argv:
        return None
    if text[:1] == "-":
        return _parse_removal(argv, line)
    return _parse_definition(argv, line, ctx)


def parse_definition(text: str, ctx: ParseContext | None = None) -> ProbeDefinition:
    """A probe definition; a removal or an empty text is an error."""
    d = parse_command(text, ctx)
    if not isinstance(d, ProbeDefinition):
        raise ProbeError("NOT_A_PROBE", text.strip(), 0,
                         detail="expected p:[GRP/]EVENT PLACE [ARGS] or r:...")
    return d


def _parse_removal(argv: list[str], source: str) -> ProbeRemoval:
    log = _Log(argv)
    head = argv[0]
    if head[1:2] != ":":
        raise ProbeError("BAD_REMOVE", log.command(), 1, errno.EINVAL,
                         "expected -:[GRP/]EVENT", False)
    event = head[2:]
    group = None
    slash = event.find("/")
    if slash >= 0:
        group, event = event[:slash], event[slash + 1:]
    if group is None and not event:
        raise ProbeError("BAD_REMOVE", log.command(), 2, errno.EINVAL,
                         "expected -:[GRP/]EVENT", False)
    return ProbeRemoval(group, event, tuple(argv[1:]), source)


# -- steps 2 to 7: a definition ----------------------------------------------------------------

def _silent(log: _Log, detail: str, pos: int = 0) -> ProbeError:
    """A refusal the kernel does not log (its -ECANCELED, turned into EINVAL)."""
    return ProbeError("NOT_A_PROBE", log.command(), pos, errno.EINVAL, detail, False)


def _parse_definition(argv: list[str], source: str, ctx: ParseContext) -> ProbeDefinition:
    log = _Log(argv)
    # step 2: the command word
    kind = argv[0][0]
    if kind not in "pr":
        if argv[0].startswith("sdt_") or ":sdt_" in argv[0]:
            from .sdt import expand_sdt_definition
            return _parse_definition(expand_sdt_definition(argv, ctx, log), source, ctx)
        raise _silent(log, "a definition starts with p: or r: (or -: to remove)")
    if len(argv) < 2:
        raise _silent(log, "no place to probe", len(argv[0]) + 1)
    event: str | None = argv[0][2:] if argv[0][1:2] == ":" else None
    # step 3: the place, and our extensions of it (a symbol, an SDT note)
    place = argv[1]
    symbol = ""
    colon = place.rfind(":")
    if "/" not in place or colon < 0 or not _isdigit(place[colon + 1:colon + 2]):
        from .elf import resolve_place
        symbol = place
        log.index = 1
        place = resolve_place(place, ctx, log)
        argv = argv[:1] + [place] + argv[2:]
        colon = place.rfind(":")
    argv = argv[:2] + _expand_legacy(argv[2:], kind, ctx, place, log)
    log = _Log(argv)
    log.index = 1
    filename, arg = place[:colon], place[colon + 1:]
    base = colon + 1                                   # where ``arg`` starts in argv[1]
    # step 4: the file
    check_file(filename, log)
    # step 5: reference counter, %return, offset
    ref_ctr_offset = 0
    rctr = arg.find("(")
    if rctr >= 0:
        rend = arg.find(")", rctr)
        if rend < 0:
            raise log.error("REFCNT_OPEN_BRACE", base + len(arg))
        if rend + 1 != len(arg):
            raise log.error("BAD_REFCNT_SUFFIX", base + rend + 1)
        value, err = kstrtoul_ret(arg[rctr + 1:rend])
        if err:
            raise log.error("BAD_REFCNT", base + rctr + 1, err)
        ref_ctr_offset = value
        arg = arg[:rctr]
    is_return = kind == "r"
    pct = arg.find("%")
    if pct >= 0:
        if arg[pct:] != "%return":
            raise log.error("BAD_ADDR_SUFFIX", base + pct)
        is_return = True
        arg = arg[:pct]
    offset, err = kstrtoul_ret(arg)
    if err:
        raise log.error("BAD_UPROBE_OFFS", base, err)
    # step 6: the names
    log.index = 0
    group = DEFAULT_GROUP
    if event is not None:
        group, event = _parse_event_name(event, group, log, 2)
    if event is None:
        tail = os.path.basename(filename)
        cut = min((i for i in (tail.find(c) for c in ".-_") if i >= 0), default=len(tail))
        event = f"p_{tail[:cut]}_0x{offset:x}"[:MAX_EVENT_NAME_LEN - 1]
    # step 7: the arguments
    nargs = len(argv) - 2
    if nargs > MAX_TRACE_ARGS:
        log.index = 2
        raise log.error("TOO_MANY_ARGS", 0, errno.E2BIG)
    args: list[ProbeArg] = []
    size = 0
    for i, word in enumerate(argv[2:]):
        log.index = i + 2
        parg, size = _traceprobe_parse_probe_arg(args, i, word, size, is_return, log)
        args.append(parg)
    return ProbeDefinition("r" if is_return else "p", group, event, filename, offset,
                           ref_ctr_offset, tuple(args), size, source.strip(), symbol)


def check_file(path: str, log: _Log) -> None:
    """Step 4 (``kern_path`` then ``d_is_reg``): the file exists and is a regular file."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise log.error("FILE_NOT_FOUND", 0, exc.errno) from None
    if not stat.S_ISREG(st.st_mode):
        raise log.error("NO_REGULAR_FILE", 0)


def _parse_event_name(text: str, group: str, log: _Log, offset: int) -> tuple[str, str | None]:
    """``traceprobe_parse_event_name``: ``[GROUP/][EVENT]`` (``.`` also separates)."""
    slash = text.find("/")
    if slash < 0:
        slash = text.find(".")
    event: str | None = text
    if slash >= 0:
        if slash == 0:
            raise log.error("NO_GROUP_NAME", offset)
        if slash + 1 > MAX_EVENT_NAME_LEN:
            raise log.error("GROUP_TOO_LONG", offset)
        if not is_good_name(text[:slash], hyphen_ok=True):
            raise log.error("BAD_GROUP_NAME", offset)
        group = text[:slash]
        event = text[slash + 1:]
        offset += slash + 1
    if not event:
        if slash >= 0:
            return group, None
        raise log.error("NO_EVENT_NAME", offset)
    if len(event) >= MAX_EVENT_NAME_LEN:
        raise log.error("EVENT_TOO_LONG", offset)
    if not is_good_name(event):
        raise log.error("BAD_EVENT_NAME", offset)
    return group, event


# -- the legacy fetch arguments (the seed's kprobe tracer) ---------------------------------------

def _expand_legacy(words: list[str], kind: str, ctx: ParseContext, place: str,
                   log: _Log) -> list[str]:
    """``sN sa aN rv ra @SYM[+|-OFFS]`` into today's syntax, named as written (``a0=%di``).

    A word with a name (``x=...``), a type or anything else is left to the kernel's parser."""
    out = []
    for i, word in enumerate(words):
        body = _legacy(word, kind, ctx, place, log, i + 2)
        if body is None:
            out.append(word)
            continue
        # the word names the argument; @SYM+8 becomes SYM_8
        name = word.lstrip("@").replace("+", "_").replace("-", "_")
        out.append(f"{name}={body}")
    return out


def _legacy(word: str, kind: str, ctx: ParseContext, place: str, log: _Log, index: int
            ) -> str | None:
    if word == "sa":
        return "$stack"
    if word == "rv":
        if kind != "r":
            raise log.error("RETVAL_ON_PROBE", 0, index=index)
        return "$retval"
    if word == "ra":
        # On a return probe the return address is where the function returned to (the
        # instruction pointer at the hit); on entry it is the top of the stack.
        return "%ip" if kind == "r" else "+0($stack)"
    if len(word) > 1 and word[0] in "sa" and word[1:].isdigit() and word[1:2] != "+":
        n = int(word[1:])
        if word[0] == "s":
            return f"$stack{n}"
        if n < len(ARG_REGS):
            return f"%{ARG_REGS[n]}"
        return f"$stack{n - len(ARG_REGS) + 1}"      # past the return address
    if word[:1] == "@" and len(word) > 1 and (_isalpha(word[1]) or word[1] == "_"):
        from .elf import data_symbol_foffs
        return f"@+{data_symbol_foffs(word[1:], place, ctx, log, index)}"
    return None


# -- step 7: one argument -------------------------------------------------------------------

class _ArgError(Exception):
    pass


class _Code:
    """The fetch_insn array being filled: FETCH_INSN_MAX entries, the last one END."""

    def __init__(self):
        self.ops: list[dict] = [{"op": T.NOP} for _ in range(T.FETCH_INSN_MAX)]
        self.ops[-1]["op"] = T.END
        self.end = T.FETCH_INSN_MAX - 1

    def __getitem__(self, i: int) -> dict:
        return self.ops[i]


class _Ctx:
    """``struct traceprobe_parse_context`` for a uprobe: the flags and the log offset."""

    def __init__(self, is_return: bool, log: _Log):
        self.is_return = is_return
        self.offset = 0
        self.log = log

    def err(self, code: str, offset: int | None = None, err: int = errno.EINVAL) -> ProbeError:
        return self.log.error(code, self.offset if offset is None else offset, err)


def _traceprobe_parse_probe_arg(done: list[ProbeArg], i: int, arg: str, size: int, is_return: bool,
                     log: _Log) -> tuple[ProbeArg, int]:
    """``traceprobe_parse_probe_arg``: the name, then the body; (the argument, new tp->size)."""
    eq = arg.find("=")
    if eq >= 0:
        if eq > MAX_ARG_NAME_LEN:
            raise log.error("ARG_NAME_TOO_LONG", 0)
        if eq == 0:
            raise log.error("NO_ARG_NAME", 0)
        name, body = arg[:eq], arg[eq + 1:]
    else:
        name, body = f"arg{i + 1}", arg
    if not is_good_name(name):
        raise log.error("BAD_ARG_NAME", 0)
    if name in RESERVED_FIELD_NAMES or any(a.name == name for a in done):
        raise log.error("USED_ARG_NAME", 0)
    ctx = _Ctx(is_return, log)
    ctx.offset = eq + 1 if eq >= 0 else 0
    return _parse_probe_arg_body(name, body, size, ctx)


def _parse_probe_arg_body(name: str, body: str, size: int, ctx: _Ctx
                          ) -> tuple[ProbeArg, int]:
    if len(body) > MAX_ARGSTR_LEN:
        raise ctx.err("ARG_TOO_LONG", err=errno.E2BIG)
    if not body:
        raise ctx.err("NO_ARG_BODY")
    arg, type_name, count, ftype = _parse_probe_arg_type(body, ctx)
    code = _Code()
    c = _parse_probe_arg(arg, code, 0, ctx)
    psize = ftype.size * (count or 1)
    arg_offset = size
    size += psize
    if size > MAX_PROBE_EVENT_SIZE:
        raise ctx.err("EVENT_TOO_BIG", err=errno.E2BIG)
    type_offset = (body.find(":") + 1) if type_name is not None else 0
    dynamic = _finalize_fetch_insn(code, c, ftype, count, type_name, type_offset, ctx)
    insns = []
    for op in code.ops:
        insns.append(FetchInsn(**op))
        if op["op"] == T.END:
            break
    return ProbeArg(name, body, ftype, count, arg_offset, tuple(insns), dynamic), size


def _parse_probe_arg_type(body: str, ctx: _Ctx):
    """``parse_probe_arg_type``: split ``:TYPE[N]`` off; (expression, type, count, fetch type)."""
    t = body.find(":")
    count = 0
    type_name = None
    arg = body
    if t >= 0:
        arg, tpart = body[:t], body[t + 1:]
        t2 = tpart.find("[")
        if t2 >= 0:
            inner = tpart[t2 + 1:]
            pos2 = t + 1 + t2 + 1                    # where ``inner`` starts in ``body``
            t3 = inner.find("]")
            if t3 < 0:
                raise ctx.err("ARRAY_NO_CLOSE", ctx.offset + pos2 + len(inner))
            if t3 + 1 != len(inner):
                raise ctx.err("BAD_ARRAY_SUFFIX", ctx.offset + pos2 + t3 + 1)
            n = kstrtoul(inner[:t3], 0, 0xFFFFFFFF)
            if not n:
                raise ctx.err("BAD_ARRAY_NUM", ctx.offset + pos2)
            if n > MAX_ARRAY_LEN:
                raise ctx.err("ARRAY_TOO_BIG", ctx.offset + pos2)
            count = n
            tpart = tpart[:t2]
        type_name = tpart
    offs = t + 1 if t >= 0 else 0
    if arg in ("$comm", "$COMM") or arg.startswith('\\"'):
        if count or (type_name is not None and type_name != "string"):
            raise ctx.err("NEED_STRING_TYPE", ctx.offset + offs)
        ftype = find_fetch_type("string")
    else:
        ftype = find_fetch_type(type_name)
    if ftype is None:
        raise ctx.err("BAD_TYPE", ctx.offset + offs)
    return arg, type_name, count, ftype


def _str_to_immediate(s: str) -> tuple[int, int]:
    """``str_to_immediate``: (value, 0) or (0, errno)."""
    if _isdigit(s[:1] or "x"):
        return kstrtoul_ret(s)
    if s[:1] in ("-", "+"):
        v, err = kstrtol_ret(s if s[0] == "-" else s[1:])
        return v & ((1 << 64) - 1), err
    return 0, errno.EINVAL


def _parse_probe_arg(arg: str, code: _Code, c: int, ctx: _Ctx) -> int:
    """``parse_probe_arg``: fill ``code`` from entry ``c``; the index of the last entry used."""
    op = code[c]
    head = arg[:1]
    if head == "$":
        _parse_probe_vars(arg, op, ctx)
    elif head == "%":
        reg = arg[1:]
        if reg not in T.X86_64_REGS:
            raise ctx.err("BAD_REG_NAME")
        op.update(op=T.REG, param=reg)
    elif head == "@":
        deref_offset = 0
        if _isdigit(arg[1:2] or "x"):
            v, err = kstrtoul_ret(arg[1:])
            if err:
                raise ctx.err("BAD_MEM_ADDR", err=err)
            op.update(op=T.IMM, immediate=v)
        elif arg[1:2] == "+":
            v, err = kstrtol_ret(arg[2:])
            if err:
                raise ctx.err("BAD_FILE_OFFS", err=err)
            op.update(op=T.FOFFS, immediate=v & ((1 << 64) - 1))
        else:
            raise ctx.err("SYM_ON_UPROBE")
        c += 1
        if c == code.end:
            raise ctx.err("TOO_MANY_OPS")
        code[c].update(op=T.DEREF, offset=deref_offset)
        return c
    elif head in ("+", "-"):
        deref = T.DEREF
        p = arg
        if p[1:2] == "u":
            deref = T.UDEREF
            p = p[0] + p[2:]
        if p[0] == "+":
            p = p[1:]
        tmp = p.find("(")
        if tmp < 0:
            raise ctx.err("DEREF_NEED_BRACE")
        offset, err = kstrtol_ret(p[:tmp])
        if err:
            raise ctx.err("BAD_DEREF_OFFS", err=err)
        ctx.offset += tmp + 1 + (1 if p[0] != "-" else 0)
        inner = p[tmp + 1:]
        close = inner.rfind(")")
        if close < 0:
            raise ctx.err("DEREF_OPEN_BRACE", ctx.offset + len(inner))
        cur_offs = ctx.offset
        c = _parse_probe_arg(inner[:close], code, c, ctx)
        ctx.offset = cur_offs
        if code[c]["op"] in (T.COMM, T.DATA):
            raise ctx.err("COMM_CANT_DEREF")
        c += 1
        if c == code.end:
            raise ctx.err("TOO_MANY_OPS")
        code[c].update(op=deref, offset=offset)
        return c
    elif head == "\\":
        if arg[1:2] == '"':
            s = arg[2:]
            if not s or s[-1] != '"':
                raise ctx.err("IMMSTR_NO_CLOSE", ctx.offset + 2 + len(s))
            op.update(op=T.DATA, data=s[:-1])
        else:
            v, err = _str_to_immediate(arg[1:])
            if err:
                raise ctx.err("BAD_IMM", ctx.offset + 1, err)
            op.update(op=T.IMM, immediate=v)
    elif _isalpha(head) or head == "_":
        raise ctx.err("NOSUP_BTFARG")                # a BTF variable: kernel functions only
    if op["op"] == T.NOP:
        raise ctx.err("BAD_FETCH_ARG")
    return c


def _parse_probe_vars(arg: str, op: dict, ctx: _Ctx) -> None:
    """``parse_probe_vars``: ``$retval``, ``$stack``, ``$stackN``, ``$comm``, ``$argN``."""
    var = arg[1:]
    if var.startswith("retval"):
        if not ctx.is_return:
            raise ctx.err("RETVAL_ON_PROBE")
        op.update(op=T.RETVAL)
        return
    if var.startswith("stack"):
        rest = var[5:]
        if rest == "":
            op.update(op=T.STACKP)
            return
        if _isdigit(rest[0]):
            n = kstrtoul(rest, 10)
            if n is None:
                raise ctx.err("BAD_VAR")
            op.update(op=T.STACK, param=n)
            return
        raise ctx.err("BAD_VAR")
    if var in ("comm", "COMM"):
        op.update(op=T.COMM)
        return
    if var.startswith("arg"):
        n = kstrtoul(var[3:], 10)
        if n is None:
            raise ctx.err("BAD_VAR")
        if not n or n > PARAM_MAX_STACK:
            raise ctx.err("BAD_ARG_NUM")
        raise ctx.err("NOFENTRY_ARGS")               # function entry/exit: kernel probes only
    raise ctx.err("BAD_VAR")


def _parse_bitfield(bf: str, t: FetchType, code: _Code, c: int) -> int | None:
    """``__parse_bitfield_probe_arg``: the MOD_BF entry; None where the kernel fails."""
    if bf[:1] != "b":
        return c
    bw, used = simple_strtoul(bf[1:])
    tail = 1 + used
    if bw == 0 or bf[tail:tail + 1] != "@":
        return None
    start = tail + 1
    bo, used = simple_strtoul(bf[start:])
    if used == 0 or bf[start + used:start + used + 1] != "/":
        return None
    c += 1
    if code[c]["op"] != T.NOP:
        return None
    bits = t.size * 8
    code[c].update(op=T.MOD_BF, basesize=t.size, lshift=(bits - (bw + bo)) & 0xFF,
                   rshift=(bits - bw) & 0xFF)
    return None if bits < bw + bo else c


def _finalize_fetch_insn(code: _Code, c: int, t: FetchType, count: int, type_name: str | None,
                         type_offset: int, ctx: _Ctx) -> bool:
    """``finalize_fetch_insn``: the store, bitfield and array entries; True for a string."""
    dynamic = False
    op = code[c]["op"]
    if t.is_string:
        if op not in (T.DEREF, T.UDEREF, T.IMM, T.COMM, T.DATA):
            raise ctx.err("BAD_STRING", ctx.offset + type_offset)
        if op in (T.IMM, T.COMM, T.DATA) or count:
            c += 1
            if code[c]["op"] != T.NOP:
                raise ctx.err("TOO_MANY_OPS")
        if t.name == "ustring" or code[c]["op"] == T.UDEREF:
            store = T.ST_USTRING
        else:
            store = T.ST_STRING
        code[c].update(op=store, size=t.size)
        dynamic = True
    elif op == T.DEREF:
        code[c].update(op=T.ST_MEM, size=t.size)
    elif op == T.UDEREF:
        code[c].update(op=T.ST_UMEM, size=t.size)
    else:
        c += 1
        if code[c]["op"] != T.NOP:
            raise ctx.err("TOO_MANY_OPS", err=errno.E2BIG)
        code[c].update(op=T.ST_RAW, size=t.size)
    scode = c
    if type_name is not None:
        nc = _parse_bitfield(type_name, t, code, c)
        if nc is None:
            raise ctx.err("BAD_BITFIELD", ctx.offset + type_offset)
        c = nc
    if count:
        if code[scode]["op"] not in (T.ST_MEM, T.ST_STRING, T.ST_USTRING):
            raise ctx.err("BAD_STRING", ctx.offset + type_offset)
        c += 1
        if code[c]["op"] != T.NOP:
            raise ctx.err("TOO_MANY_OPS", err=errno.E2BIG)
        code[c].update(op=T.LP_ARRAY, param=count)
    c += 1
    code[c].update(op=T.END)
    return dynamic


def with_name(d: ProbeDefinition, group: str | None = None, event: str | None = None
              ) -> ProbeDefinition:
    """The same definition under another group or event name."""
    return replace(d, group=group or d.group, event=event or d.event)
