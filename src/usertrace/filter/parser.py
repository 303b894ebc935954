"""The filter expression: predicates joined by ``&&``, ``||``, ``!`` and parentheses.

This follows the kernel's ``predicate_parse`` step by step, so that the same texts are taken
and refused, with the same errors at the same places.  Its loop reads, outside predicates,
only '(' and '!'; then a predicate; then, until the next predicate, only ')', "&&", "||" or
the end.  Anything else there is "Too many terms in predicate expression".  Two oddities
follow and are kept: a trailing "&&" or "||" (and trailing '!'s) are accepted and ignored,
and a '(' right after ')' is refused.

The kernel turns the expression into a branch program in the same pass (the worked example
above ``predicate_parse``: each predicate jumps on true or false to a later one or to the
end).  :class:`KernelProgram` builds that program too: it is the reference our expression
tree is tested against, and it finds the one input the kernel cannot handle (a trailing
"&&" after an "||" at the top level, e.g. ``a || b &&``: its program jumps before its own
start, which the kernel reads out of bounds).  We refuse that input as a meaningless filter.

The result of :func:`parse` is a tree of :class:`Pred`, :class:`Not`, :class:`And` and
:class:`Or` nodes that :mod:`compile` turns into closures.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from .errors import FilterError
from .lexer import PAGE_SIZE, from_kernel_bytes, is_not, prescan, to_kernel_bytes
from .predicate import FieldResolver, NoFieldName, Predicate, parse_pred


# -- the tree -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pred:
    pred: Predicate


@dataclass(frozen=True)
class Not:
    child: "Node"


@dataclass(frozen=True)
class And:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    children: tuple["Node", ...]


Node = Pred | Not | And | Or


def iter_preds(node: Node):
    """The predicates of a tree, left to right."""
    if isinstance(node, Pred):
        yield node.pred
    elif isinstance(node, Not):
        yield from iter_preds(node.child)
    else:
        for c in node.children:
            yield from iter_preds(c)


def _join(cls, items: list[Node]) -> Node:
    flat: list[Node] = []
    for it in items:
        flat.extend(it.children if isinstance(it, cls) else (it,))
    return flat[0] if len(flat) == 1 else cls(tuple(flat))


def _negate(node: Node, neg: bool) -> Node:
    if not neg:
        return node
    return node.child if isinstance(node, Not) else Not(node)


class _Group:
    """One level of parentheses while the tree is built: its terms so far."""

    __slots__ = ("neg", "ors", "ands")

    def __init__(self, neg: bool):
        self.neg = neg
        self.ors: list[Node] = []
        self.ands: list[Node] = []

    def close(self) -> Node | None:
        ors = self.ors + ([_join(And, self.ands)] if self.ands else [])
        return _join(Or, ors) if ors else None


# -- the kernel's program -----------------------------------------------------------------

INVERT, PROCESS_AND, PROCESS_OR = 1, 2, 4


class KernelProgram:
    """The branch program ``predicate_parse`` builds: entry i tests predicate i and, when the
    result equals ``when[i]``, goes on after entry ``target[i]``, else at entry i+1.  Entry N
    answers true, entry N+1 false."""

    def __init__(self):
        self.target: list[int] = []
        self.when: list[int] = []
        self.inverts: list[int] = []

    def add(self, invert: int) -> None:
        n = len(self.target)
        self.target.append(n - 1)
        self.when.append(0)
        self.inverts.append(invert)

    def update(self, n: int, invert: int) -> bool:
        """``update_preds``; False where the kernel would index before the program."""
        t = self.target[n]
        if t < 0:
            return False
        s = self.target[t]
        self.when[t] = invert
        self.target[t] = n
        self.target[n] = s
        return True

    def finish(self) -> bool:
        """The kernel's last step and its second and third passes; False where the kernel
        would read outside the program or refuse it (a target not after its entry)."""
        n = len(self.target)
        self.target += [1, 0]      # the TRUE and FALSE entries hold the answer in target
        self.when += [0, 0]
        self.target[n - 1] = n
        self.when[n - 1] = 0
        for i in range(n - 2, -1, -1):
            t = self.target[i]
            if t < 0:
                return False
            if self.when[i] == self.when[t]:
                self.target[i] = self.target[t]
        for i in range(n):
            self.when[i] ^= self.inverts[i]
            if self.target[i] <= i:
                return False
        return True

    def run(self, results) -> bool:
        """Evaluate with ``results[i]`` the truth of predicate i (``filter_match_preds``)."""
        i = 0
        n = len(self.inverts)
        while i < n:
            if int(bool(results[i])) == self.when[i]:
                i = self.target[i]
            i += 1
        return bool(self.target[i])


# -- the parse ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parsed:
    text: str              # the filter as the kernel keeps it (trailing white space stripped)
    tree: Node
    program: KernelProgram
    preds: tuple[Predicate, ...]


def parse(text: str, resolver: FieldResolver, nr_cpus: int) -> Parsed:
    """Parse ``text`` for the event ``resolver`` describes; raise :class:`FilterError`."""
    nbytes = len(text.encode("utf-8", "surrogateescape"))
    s = to_kernel_bytes(text)
    shown = from_kernel_bytes(s)
    if nbytes >= PAGE_SIZE:
        raise FilterError("NONE", 0, shown, errno.EINVAL,
                          f"a filter of {nbytes} bytes is longer than the kernel's "
                          f"{PAGE_SIZE - 1}")
    counts = prescan(s, shown)
    if counts.nr_preds == 0:
        raise FilterError("NONE", 0, shown, errno.EINVAL, "empty filter")
    return _Parser(s, shown, resolver, nr_cpus, counts.nr_preds + 2).run()


class _Parser:
    def __init__(self, s, shown, resolver, nr_cpus, max_preds):
        self.s = s
        self.text = shown
        self.resolver = resolver
        self.nr_cpus = nr_cpus
        self.max_preds = max_preds

    def error(self, code: str, pos: int, err: int = errno.EPERM, detail: str = ""):
        return FilterError(code, pos, self.text, err, detail)

    def run(self) -> Parsed:
        s = self.s
        n = len(s)
        prog = KernelProgram()
        preds: list[Predicate] = []
        top = [0]                       # the kernel's op_stack of INVERT/PROCESS_* flags
        groups = [_Group(False)]        # the tree being built, one entry per '(' level
        invert = 0
        i = 0
        last_op = -1
        while i < n:                                    # the kernel's step #1
            c = s[i]
            at = i
            i += 1
            if c in " \t\n\v\f\r\xa0":
                continue
            if c == "(":                                # #2
                top.append(invert)
                groups.append(_Group(bool(invert) != bool(top[-2] & INVERT)))
                continue
            if c == "!" and is_not(s, at):              # #3
                invert ^= 1
                continue
            if len(preds) >= self.max_preds:
                raise self.error("TOO_MANY_PREDS", at)
            prog.add(invert)                            # #4
            try:
                pred = parse_pred(s, at, self.resolver, self.text, self.nr_cpus)
            except NoFieldName as exc:
                raise self.error("NONE", exc.args[0], errno.EPERM,
                                 "expected a field name") from None
            preds.append(pred)
            term: object = _negate(Pred(pred), bool(invert) != bool(top[-1] & INVERT))
            i = pred.end
            while True:                                 # #5
                at = i
                c = s[i] if i < n else "\0"
                i += 1
                if c in " \t\n\v\f\r\xa0":
                    continue
                if c in "&|":
                    if at + 1 < n and s[at + 1] == c:
                        i += 1
                    else:
                        raise self.error("TOO_MANY_PREDS", at)
                elif c not in ")\0":
                    raise self.error("TOO_MANY_PREDS", at)
                invert = top[-1] & INVERT               # #6
                npred = len(preds) - 1
                if top[-1] & PROCESS_AND:               # #7
                    if not prog.update(npred, invert):
                        raise self._meaningless(at)
                    top[-1] &= ~PROCESS_AND
                group = groups[-1]
                if c == "&":                            # #8
                    top[-1] |= PROCESS_AND
                    group.ands.append(term)
                    last_op = at
                    break
                if top[-1] & PROCESS_OR:                # #9
                    if not prog.update(npred, 1 - invert):
                        raise self._meaningless(at)
                    top[-1] &= ~PROCESS_OR
                group.ands.append(term)
                if c == "|":                            # #10
                    top[-1] |= PROCESS_OR
                    group.ors.append(_join(And, group.ands))
                    group.ands = []
                    last_op = at
                    break
                if c == "\0":                           # #11
                    return self._finish(prog, preds, top, groups, i, last_op)
                if len(top) == 1:                       # a ')' too many
                    raise self.error("TOO_MANY_CLOSE", i)
                top.pop()                               # #12
                groups.pop()
                term = _negate(group.close(), group.neg)
        return self._finish(prog, preds, top, groups, i, last_op)

    def _finish(self, prog, preds, top, groups, i, last_op) -> Parsed:
        if len(top) != 1:
            raise self.error("TOO_MANY_OPEN", i)
        if not preds:
            raise self.error("NO_FILTER", i, errno.EINVAL)
        if not prog.finish():
            raise self._meaningless(last_op)
        tree = groups[0].close()
        assert tree is not None
        return Parsed(self.text, tree, prog, tuple(preds))

    def _meaningless(self, at: int) -> FilterError:
        return self.error("INVALID_FILTER", max(at, 0), errno.EINVAL,
                          "the kernel cannot run this (a trailing '&&' after '||')")
