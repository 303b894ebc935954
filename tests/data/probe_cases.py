"""Reader of probe_cases.txt (the probe definition table).

Used by tests/unit/test_probe_table.py (our parser against the table) and
tests/kernel/test_probe_kernel.py (the table against the kernel).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE = HERE / "probe_cases.txt"


@dataclass(frozen=True)
class Case:
    line: int
    text: str                  # the definition with its ^ marker, $T unsubstituted
    ok: bool
    ext: bool = False          # beyond the kernel
    code: str = ""
    errno: int = 0
    logged: bool = True        # the kernel writes an error_log entry
    listing: str | None = None  # the expected uprobe_events line ($T unsubstituted)

    @property
    def id(self) -> str:
        return f"{TABLE.name}:{self.line}"

    def definition(self, target: str) -> tuple[str, int | None]:
        """The definition for target path ``target`` and its caret column (None: no ^)."""
        text = self.text.replace("$T", target)
        col = text.find("^")
        return text.replace("^", "", 1), (col if col >= 0 else None)

    def expected_listing(self, target: str) -> str | None:
        return None if self.listing is None else self.listing.replace("$T", target)


def load(path: Path = TABLE) -> list[Case]:
    cases: list[Case] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.name}:{lineno}"
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw.startswith("=> "):
            if not cases or not cases[-1].ok:
                raise ValueError(f"{where}: a listing after no ok row")
            last = cases.pop()
            cases.append(Case(**{**last.__dict__, "listing": raw[3:]}))
            continue
        head, sep, text = raw.partition(" :: ")
        if not sep:
            raise ValueError(f"{where}: no ' :: ' in {raw!r}")
        words = head.split()
        ext = words[0] == "ext"
        if ext:
            words = words[1:]
        if words == ["ok"]:
            cases.append(Case(lineno, text, True, ext))
        elif words[0] == "err" and len(words) in (3, 4):
            logged = not (len(words) == 4 and words[3] == "nolog")
            if len(words) == 4 and words[3] != "nolog":
                raise ValueError(f"{where}: cannot read {head!r}")
            cases.append(Case(lineno, text, False, ext, words[1], getattr(errno, words[2]),
                              logged and not ext))
        else:
            raise ValueError(f"{where}: cannot read {head!r}")
    return cases
