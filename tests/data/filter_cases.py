"""Reader of filter_cases.txt (the filter table) and filter_cases.formats (its events).

Used by tests/unit/test_filter_table.py (our filter against the table) and
tests/kernel/test_filter_kernel.py (the table against the kernel).
"""

from __future__ import annotations

import errno
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from usertrace.events.format import EventFormat
from usertrace.filter.lexer import kstrtoll, kstrtoull
from usertrace.filter.predicate import STRING_KINDS, FieldResolver

HERE = Path(__file__).resolve().parent
TABLE = HERE / "filter_cases.txt"
FORMATS = HERE / "filter_cases.formats"


@dataclass(frozen=True)
class Case:
    event: str                    # "system/event"
    expr: str
    line: int
    ok: bool
    matches: frozenset[str] = frozenset()   # for ok rows: the samples that match
    code: str = ""                          # for err rows
    col: int | None = None                  # caret column, None where the kernel shows none
    errno: int = 0
    unsafe: bool = False          # never written to a kernel
    nomatch: bool = False         # the kernel's matches not compared (they are not stable)

    @property
    def id(self) -> str:
        return f"{self.event}:{self.line}"


@dataclass
class Section:
    event: str
    format: EventFormat
    controls: tuple[str, ...] = ()
    samples: dict[str, dict] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)

    @property
    def resolver(self) -> FieldResolver:
        return FieldResolver(self.format)


def load_formats(path: Path = FORMATS) -> dict[str, EventFormat]:
    """{"system/event": EventFormat} from the stored kernel format files."""
    out: dict[str, EventFormat] = {}
    system = None
    chunk: list[str] = []

    def flush():
        if system is not None and chunk:
            fmt = EventFormat.parse("".join(chunk), system)
            out[f"{system}/{fmt.name}"] = fmt

    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("#"):
            continue
        if line.startswith("== "):
            flush()
            system = line[3:].strip()
            chunk = []
        else:
            chunk.append(line)
    flush()
    return out


def _sample(section: Section, text: str, where: str) -> dict:
    """A full record: every field of the format (0 or ""), comm and cpu, then the values given."""
    res = section.resolver
    rec: dict = {}
    for f in section.format.all_fields():
        ref = res.find(f.name)
        rec[f.name] = "" if ref is not None and ref.kind in STRING_KINDS else 0
    rec[res.comm_key] = ""
    rec[res.cpu_key] = 0
    for item in shlex.split(text):
        name, sep, value = item.partition("=")
        ref = res.find(name)
        if not sep or ref is None:
            raise ValueError(f"{where}: bad sample item {item!r}")
        rec[ref.key] = value if ref.kind in STRING_KINDS else _number(value, where)
    return rec


def _number(text: str, where: str) -> int:
    """A C number (decimal, 0x hex, 0 octal, maybe negative)."""
    value = kstrtoll(text) if text.startswith("-") else kstrtoull(text)
    if value is None:
        raise ValueError(f"{where}: bad number {text!r}")
    return value


def load(path: Path = TABLE) -> list[Section]:
    formats = load_formats()
    sections: list[Section] = []
    cur: Section | None = None
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.name}:{lineno}"
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            event = line.strip("[] ")
            cur = Section(event, formats[event])
            sections.append(cur)
            continue
        if cur is None:
            raise ValueError(f"{where}: a row before any [event]")
        if line.startswith("controls:"):
            cur.controls = tuple(line.split(":", 1)[1].split())
            continue
        if line.startswith("sample "):
            head, _, rest = line.partition(":")
            cur.samples[head.split()[1]] = _sample(cur, rest, where)
            continue
        head, sep, expr = line.partition(" :: ")
        if not sep:
            raise ValueError(f"{where}: no ' :: ' in {line!r}")
        words = head.split()
        unsafe = "unsafe" in words
        nomatch = "nomatch" in words
        words = [w for w in words if w not in ("unsafe", "nomatch")]
        if words[0] == "ok" and len(words) == 2:
            names = frozenset() if words[1] == "-" else frozenset(words[1].split(","))
            unknown = names - set(cur.samples)
            if unknown:
                raise ValueError(f"{where}: unknown samples {sorted(unknown)}")
            cur.cases.append(Case(cur.event, expr, lineno, True, names, unsafe=unsafe,
                                  nomatch=nomatch))
        elif words[0] == "err" and len(words) == 4:
            code, col, err = words[1:]
            cur.cases.append(Case(cur.event, expr, lineno, False, code=code,
                                  col=None if col == "-" else int(col),
                                  errno=getattr(errno, err), unsafe=unsafe))
        else:
            raise ValueError(f"{where}: cannot read {line!r}")
    return sections


def all_cases(sections: list[Section] | None = None) -> list[tuple[Section, Case]]:
    sections = load() if sections is None else sections
    return [(s, c) for s in sections for c in s.cases]
