"""Reading strace's output (and the strace view's, which has the same form) for the
differential tests: calls per thread with their arguments and results, lines cut by other
threads joined again, threads paired by role, and strace's string literals back to bytes."""

from __future__ import annotations

import difflib
import re

LINE = re.compile(r"^(\d+)\s+(.*)$")
CALL = re.compile(r"^(\w+)\((.*)\)\s+= (.*)$", re.S)
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$", re.S)
CLONES = ("clone", "clone3", "fork", "vfork")
PTR = re.compile(r"0x[0-9a-f]+")


def split_args(text: str) -> list[str]:
    """The arguments of a call's text, split at the commas outside quotes and brackets."""
    out, depth, cur, quoted, i = [], 0, [], False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            cur.append(c)
            if c == "\\":
                cur.append(text[i + 1])
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0 and text[i + 1: i + 2] == " ":
            out.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur))
    return out


# A fork that a signal interrupts before it made the child (a shell's SIGCHLD, say) returns
# ERESTARTNOINTR and the kernel makes it again: whether that happens in one run or the other
# is timing, so such a line is left out on both sides and the fork made again is compared.
FORKS = frozenset({"clone", "clone3", "fork", "vfork"})


class Calls:
    """``{tid: [(name, [args], result)]}`` in order of first appearance."""

    def __init__(self, text: str):
        self.threads: dict[int, list[tuple[str, list[str], str]]] = {}
        pending: dict[int, str] = {}
        for line in text.splitlines():
            m = LINE.match(line)
            if not m:
                continue
            tid, rest = int(m[1]), m[2]
            self.threads.setdefault(tid, [])
            if rest.startswith(("+++", "---")):
                continue
            if rest.endswith(" <unfinished ...>"):
                pending[tid] = rest[: -len(" <unfinished ...>")]
                continue
            r = RESUMED.match(rest)
            if r:
                rest = pending.pop(tid, r[1] + "(") + r[2]
            c = CALL.match(rest)
            if c and not (c[1] in FORKS and c[3].startswith("? ERESTARTNOINTR")):
                self.threads[tid].append((c[1], split_args(c[2]), c[3]))

    @property
    def root(self) -> int:
        return next(iter(self.threads))


def align(a: list, b: list, skip=()) -> tuple[list[tuple], list, list]:
    """Calls of one thread paired by name (difflib); ``skip``: names left out first.
    Returns (pairs, only in a, only in b)."""
    a = [c for c in a if c[0] not in skip]
    b = [c for c in b if c[0] not in skip]
    sm = difflib.SequenceMatcher(None, [c[0] for c in a], [c[0] for c in b], autojunk=False)
    pairs, only_a, only_b = [], [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            pairs += list(zip(a[i1:i2], b[j1:j2]))
        else:
            only_a += a[i1:i2]
            only_b += b[j1:j2]
    return pairs, only_a, only_b


def pair_threads(a: Calls, b: Calls, skip=(), ids: dict[int, int] | None = None
                 ) -> dict[int, int]:
    """Threads of ``a`` and ``b`` paired by role: the first ones, then the children that
    the same clone/fork of paired threads returned.  ``ids`` receives every such pair,
    the children that made no call too."""
    tids = {a.root: b.root}
    todo = [(a.root, b.root)]
    while todo:
        ta, tb = todo.pop()
        pairs, _, _ = align(a.threads.get(ta, []), b.threads.get(tb, []), skip)
        for x, y in pairs:
            if x[0] in CLONES and x[2].isdigit() and y[2].isdigit():
                ca, cb = int(x[2]), int(y[2])
                if ids is not None:
                    ids[ca] = cb
                if ca not in tids and ca in a.threads and cb in b.threads:
                    tids[ca] = cb
                    todo.append((ca, cb))
    return tids


def is_pointer(text: str) -> bool:
    return PTR.fullmatch(text) is not None


def decoded_only_by_strace(theirs: str) -> bool:
    """An argument strace shows from memory: a string, an array, a structure."""
    return theirs[:1] in '"[{' or theirs.startswith("~[") or (
        is_pointer(theirs.split(" ", 1)[0]) and "/*" in theirs)


_ESC = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, '"': 34, "\\": 92, "'": 39, "a": 7, "b": 8}


def unquote(text: str) -> tuple[bytes, bool] | None:
    """strace's ``"..."`` literal as bytes, and whether ``...`` followed it; None when the
    text is not a string."""
    if not text.startswith('"'):
        return None
    out = bytearray()
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return bytes(out), text[i + 1:] == "..."
        if c != "\\":
            out += c.encode("latin-1")
            i += 1
            continue
        n = text[i + 1]
        if n == "x":
            out.append(int(text[i + 2: i + 4], 16))
            i += 4
        elif n in "01234567":
            j = i + 1
            while j < len(text) and j < i + 4 and text[j] in "01234567":
                j += 1
            out.append(int(text[i + 1: j], 8))
            i = j
        else:
            out.append(_ESC[n])
            i += 2
    return None
