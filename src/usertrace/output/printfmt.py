"""Render an event's ``print fmt`` for a decoded record, as the kernel's ``trace`` file does.

A print fmt is a C string literal followed by C expressions over the record::

    "dfd: 0x%08lx, filename: 0x%08lx", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename))

The expressions are parsed once into small closures (:class:`PrintFmt`), then evaluated
per record.  What syscall, uprobe and user events use is covered: ``REC->field``, casts,
arithmetic and bit operators, the conditional operator, ``__get_str``, ``__get_rel_str``,
``__get_dynamic_array``, ``__print_symbolic``, ``__print_flags``, ``__print_dynamic_array``
(``{0x68,0x69}``, as the kernel's ``trace_print_array_seq``); the conversions ``%d %i %u
%x %X %o %c %s %p`` with flags, width, precision and the ``hh h l ll z`` lengths.  What cannot
be parsed renders as libtraceevent does, ``[FAILED TO PARSE]`` followed by the raw fields.
"""

from __future__ import annotations

import re
from typing import Callable

from ..errors import EXIT_SYNTAX, UsertraceError
from ..events.format import EventFormat, c_int, c_type_size


class PrintFmtError(UsertraceError, ValueError):
    """A print fmt that does not parse (``PrintFmt`` then renders the raw fields instead)."""

    exit_status = EXIT_SYNTAX


# Bounds that no kernel print fmt comes near, so that a hostile one costs little: the nesting
# of parentheses and unary operators (the parser recurses on it), a width or precision (the
# kernel's trace_seq holds a page: no conversion prints more), and shift counts (as x86 does
# in the C the kernel runs, the count is taken mod 64 and the result kept to 64 bits).
MAX_NESTING = 64
MAX_WIDTH = 4096
_MASK64 = (1 << 64) - 1


# -- lexer --------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<chr>'(?:[^'\\]|\\.)')
  | (?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>?:(),{}\[\].])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "a": "\a"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), body)


def _tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise PrintFmtError(f"unexpected {text[pos]!r} at {pos}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


# -- parser: expressions into closures of one argument (the record dict) ------------------------

Eval = Callable[[dict], object]

_SIGNED_TYPES = ("int", "long", "short", "char", "s8", "s16", "s32", "s64", "signed", "ssize_t", "pid_t")


def _cast(ctype: str) -> Callable[[object], object]:
    t = ctype.strip()
    if "*" in t:
        size, signed = 8, False
    else:
        size = c_type_size(t) if t not in ("bool", "_Bool") else 1
        signed = not (t.startswith("unsigned") or t.startswith("u") or t.startswith("__u")
                      or t in ("size_t", "bool", "_Bool")) and any(s in t for s in _SIGNED_TYPES)

    def cast(v):
        return c_int(v, size, signed) if isinstance(v, int) else v
    return cast


_TYPE_WORDS = {"unsigned", "signed", "int", "long", "short", "char", "const", "void", "bool",
               "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "size_t", "ssize_t",
               "__u8", "__u16", "__u32", "__u64", "__s8", "__s16", "__s32", "__s64", "struct",
               "pid_t", "umode_t", "_Bool", "uint", "ulong", "ushort", "uchar"}

_BINARY = [  # precedence climbing, lowest first
    ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
    ("<<", ">>"), ("+", "-"), ("*", "/", "%"),
]

_BINOPS: dict[str, Callable[[int, int], int]] = {
    "||": lambda a, b: int(bool(a) or bool(b)), "&&": lambda a, b: int(bool(a) and bool(b)),
    "|": lambda a, b: a | b, "^": lambda a, b: a ^ b, "&": lambda a, b: a & b,
    "==": lambda a, b: int(a == b), "!=": lambda a, b: int(a != b),
    "<": lambda a, b: int(a < b), ">": lambda a, b: int(a > b),
    "<=": lambda a, b: int(a <= b), ">=": lambda a, b: int(a >= b),
    "<<": lambda a, b: (a << (b & 63)) & _MASK64, ">>": lambda a, b: a >> (b & 63),
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: int(a / b) if b else 0, "%": lambda a, b: a % b if b else 0,
}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fmt: EventFormat):
        self.toks = tokens
        self.i = 0
        self.fmt = fmt
        self.depth = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise PrintFmtError(f"expected {value!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def args(self) -> list[Eval]:
        out = []
        while self.peek()[0] != "eof":
            self.take(",")
            out.append(self.expr())
        return out

    def _nested(self, parse: Callable[[], Eval]) -> Eval:
        """``parse()`` one level deeper: the parser recurses on nesting, which is bounded."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise PrintFmtError(f"expressions nested more than {MAX_NESTING} deep")
        try:
            return parse()
        finally:
            self.depth -= 1

    def expr(self) -> Eval:
        return self._nested(self._conditional)

    def _conditional(self) -> Eval:
        cond = self.binary(0)
        if self.peek()[1] == "?":
            self.take("?")
            a = self.expr()
            self.take(":")
            b = self.expr()
            return lambda r: a(r) if cond(r) else b(r)
        return cond

    def binary(self, level: int) -> Eval:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in _BINARY[level]:
            op = _BINOPS[self.take()[1]]
            right = self.binary(level + 1)
            left = (lambda l, r_, o: lambda r: o(l(r), r_(r)))(left, right, op)
        return left

    def unary(self) -> Eval:
        return self._nested(self._unary)

    def _unary(self) -> Eval:
        kind, val = self.peek()
        if val in ("-", "~", "!", "+"):
            self.take()
            inner = self.unary()
            return {"-": lambda r: -inner(r), "~": lambda r: ~inner(r),
                    "!": lambda r: int(not inner(r)), "+": inner}[val]
        if val == "(" and self._is_cast():
            self.take("(")
            words = []
            while self.peek()[1] != ")":
                words.append(self.take()[1])
            self.take(")")
            cast = _cast(" ".join(words).replace(" *", "*"))
            inner = self.unary()
            return lambda r: cast(inner(r))
        return self.postfix()

    def _is_cast(self) -> bool:
        j = 1
        saw = False
        while True:
            kind, val = self.peek(j)
            if val == ")":
                return saw
            if kind == "id" and (val in _TYPE_WORDS or val.endswith("_t")) or val == "*":
                saw = True
                j += 1
                continue
            if kind == "id" and saw:  # struct NAME
                j += 1
                continue
            return False

    def postfix(self) -> Eval:
        node = self.primary()
        while self.peek()[1] == "[":
            self.take("[")
            idx = self.expr()
            self.take("]")
            node = (lambda n, ix: lambda r: n(r)[ix(r)])(node, idx)
        return node

    def primary(self) -> Eval:
        kind, val = self.take()
        if kind == "num":
            n = int(val.rstrip("uUlL"), 0)
            return lambda r: n
        if kind == "str":
            s = _unescape(val[1:-1])
            while self.peek()[0] == "str":  # adjacent literals concatenate
                s += _unescape(self.take()[1][1:-1])
            return lambda r: s
        if kind == "chr":
            c = ord(_unescape(val[1:-1]))
            return lambda r: c
        if val == "(":
            e = self.expr()
            self.take(")")
            return e
        if kind == "id" and val == "REC":
            self.take("->")
            name = self.take()[1]
            if self.fmt.field(name) is None:
                raise PrintFmtError(f"no field {name!r}")
            return lambda r: r[name]
        if kind == "id" and self.peek()[1] == "(":
            return self.call(val)
        raise PrintFmtError(f"unexpected {val!r}")

    def call(self, fn: str) -> Eval:
        self.take("(")
        if fn in ("__get_str", "__get_rel_str", "__get_dynamic_array", "__get_rel_dynamic_array",
                  "__get_bitmask", "__get_sockaddr"):
            name = self.take()[1]
            self.take(")")
            return lambda r: r[name]
        if fn == "__print_dynamic_array":
            name = self.take()[1]
            self.take(",")
            size = self.expr()({})
            self.take(")")
            return lambda r: _print_array(r[name], size)
        if fn in ("__get_dynamic_array_len", "__get_rel_dynamic_array_len"):
            name = self.take()[1]
            self.take(")")
            f = self.fmt.field(name)
            es = f.elem_size if f else 1
            return lambda r: len(r[name]) * (es if not isinstance(r[name], (str, bytes)) else 1)
        if fn in ("__print_symbolic", "__print_flags", "__print_symbolic_u64", "__print_flags_u64"):
            value = self.expr()
            sep = None
            if fn.startswith("__print_flags"):
                self.take(",")
                sep = self.expr()
            table = []
            while self.peek()[1] == ",":
                self.take(",")
                self.take("{")
                k = self.expr()
                self.take(",")
                name = self.expr()
                self.take("}")
                table.append((k({}), name({})))
            self.take(")")
            if sep is None:
                return lambda r: next((n for k, n in table if k == value(r)), _hexstr(value(r)))
            return lambda r: _flags(value(r), sep({}), table)
        raise PrintFmtError(f"unknown function {fn}")


def _print_array(value, el_size: int) -> str:
    """``{0x1,0x2}``: the elements of a dynamic array (bytes, a list, or text)."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray)) and el_size > 1:
        n = len(value) // el_size
        value = [int.from_bytes(value[i * el_size:(i + 1) * el_size], "little") for i in range(n)]
    return "{" + ",".join(f"0x{v:x}" for v in value) + "}"


def _hexstr(v) -> str:
    return hex(v) if isinstance(v, int) else str(v)


def _flags(v: int, sep: str, table: list[tuple[int, str]]) -> str:
    out = []
    for k, name in table:
        if k and v & k == k:
            out.append(name)
            v &= ~k
        elif not k and not v:
            return name
    if v:
        out.append(hex(v))
    return sep.join(out)


# -- printf ---------------------------------------------------------------------------------

_CONV_RE = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?"
                      r"(?P<len>hh|h|ll|l|z|L|j|t)?(?P<conv>[diouxXcsp%])(?P<ext>[a-zA-Z]*)")

_LEN_BITS = {"hh": 8, "h": 16, None: 32, "l": 64, "ll": 64, "z": 64, "L": 64, "j": 64, "t": 64}


def _conv_piece(spec: re.Match) -> Callable[[object], str]:
    flags, conv, length = spec["flags"], spec["conv"], spec["len"]
    width = spec["width"]
    prec = spec["prec"]
    bits = _LEN_BITS.get(length, 64)
    pyflags = flags.replace("#", "")
    alt = "#" in flags

    def pad(s: str, neg_ok: bool = True) -> str:
        w = int(width) if width and width != "*" else 0
        if len(s) >= w:
            return s
        if "-" in flags:
            return s.ljust(w)
        if "0" in flags and prec is None and conv not in "sc":
            sign = s[0] if s[:1] in "+- " and neg_ok else ""
            body = s[len(sign):]
            pre = ""
            if body[:2] in ("0x", "0X"):
                pre, body = body[:2], body[2:]
            return sign + pre + body.rjust(w - len(sign) - len(pre), "0")
        return s.rjust(w)

    def number(v) -> str:
        if not isinstance(v, int):
            try:
                v = int(v)
            except (TypeError, ValueError):
                return str(v)
        u = c_int(v, bits // 8, False)
        if conv in "di":
            n = c_int(v, bits // 8, True)
            s = str(abs(n))
            if prec is not None:
                s = s.rjust(int(prec), "0")
            sign = "-" if n < 0 else ("+" if "+" in pyflags else (" " if " " in pyflags else ""))
            return pad(sign + s)
        if conv == "u":
            s = str(u)
        elif conv in "xX":
            s = format(u, conv)
        elif conv == "o":
            s = format(u, "o")
        else:  # p
            s = format(u, "x")
            return pad("0x" + s)
        if prec is not None:
            s = s.rjust(int(prec), "0")
        if alt and u:
            s = ("0" + s) if conv == "o" else ("0" + conv + s) if conv in "xX" else s
        return pad(s)

    if conv == "s":
        def text(v) -> str:
            s = v if isinstance(v, str) else (v.decode("utf-8", "backslashreplace")
                                               if isinstance(v, (bytes, bytearray)) else str(v))
            if prec is not None:
                s = s[: int(prec)]
            return pad(s)
        return text
    if conv == "c":
        return lambda v: pad(chr(v & 0xFF) if isinstance(v, int) else str(v)[:1])
    return number


def _split_format(fmt: str) -> list[str | Callable[[object], str]]:
    """The literal text and conversion pieces of a printf format."""
    pieces: list = []
    pos = 0
    for m in _CONV_RE.finditer(fmt):
        for key in ("width", "prec"):
            n = m[key]
            if n and n != "*" and (len(n) > 5 or int(n) > MAX_WIDTH):
                raise PrintFmtError(f"{'width' if key == 'width' else 'precision'} {n[:20]} "
                                    f"of {m.group()[:30]!r} is larger than a trace line "
                                    f"({MAX_WIDTH})")
        if m.start() > pos:
            pieces.append(fmt[pos:m.start()])
        if m["conv"] == "%":
            pieces.append("%")
        elif m["conv"] == "p" and m["ext"]:
            # %pS, %ps, %pB...: symbol lookups we cannot do; print the address.
            pieces.append(_conv_piece(m))
        else:
            pieces.append(_conv_piece(m))
            if m["ext"]:
                pieces.append(m["ext"])
        pos = m.end()
    if pos < len(fmt):
        pieces.append(fmt[pos:])
    return pieces


class PrintFmt:
    """A compiled print fmt: ``render(values) -> str``."""

    def __init__(self, fmt: EventFormat):
        self.format = fmt
        self.failed = False
        self.error = ""
        try:
            toks = _tokenize(fmt.print_fmt)
            if not toks or toks[0][0] != "str":
                raise PrintFmtError("print fmt does not start with a string")
            parser = _Parser(toks, fmt)
            fmt_text = parser.primary()({})
            self._args = parser.args()
            self._pieces = _split_format(fmt_text)
            if sum(1 for p in self._pieces if not isinstance(p, str)) != len(self._args):
                raise PrintFmtError("the number of conversions and arguments differ")
        except (PrintFmtError, IndexError, KeyError, ValueError) as exc:
            self.failed = True
            self.error = str(exc) or type(exc).__name__

    def render(self, values: dict) -> str:
        if not self.failed:
            try:
                out = []
                args = iter(self._args)
                for p in self._pieces:
                    out.append(p if isinstance(p, str) else p(next(args)(values)))
                return "".join(out)
            except (KeyError, TypeError, IndexError, ValueError):
                pass
        return "[FAILED TO PARSE] " + " ".join(
            f"{f.name}={values.get(f.name)}" for f in self.format.fields)

