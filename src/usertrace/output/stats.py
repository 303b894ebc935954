"""Per-syscall statistics printed as ``strace -c -w`` prints them: calls, errors, wall time from
entry to exit, sorted by time spent (ties in syscall-number order, as strace's table is kept)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    name: str
    nr: int
    calls: int = 0
    errors: int = 0
    total_ns: int = 0


def is_error(ret: int) -> bool:
    """A syscall return value that is an error (-4095..-1, as the kernel's IS_ERR_VALUE)."""
    return -4095 <= ret <= -1


class SyscallStats:
    """Accumulates completed syscalls; :meth:`render` prints the summary table."""

    HEADER = "% time     seconds  usecs/call     calls    errors syscall"
    RULE = "------ ----------- ----------- --------- --------- ----------------"

    def __init__(self):
        self.rows: dict[str, Row] = {}
        self._entered: dict[int, int] = {}      # tid -> time of the entry it is in

    #: calls that never return (no exit ever comes): counted at their entry
    NO_EXIT = frozenset({"rt_sigreturn", "sigreturn"})

    def enter(self, tid: int, name: str, nr: int, ts_ns: int) -> None:
        """Thread ``tid`` entered syscall ``nr`` (``name``) at ``ts_ns``."""
        if name in self.NO_EXIT:
            self.add(name, nr, 0, None)
        else:
            self._entered[tid] = ts_ns

    def exit(self, tid: int, name: str, nr: int, ts_ns: int, ret: int) -> None:
        """Thread ``tid`` left syscall ``nr``: counted when its entry was seen."""
        start = self._entered.pop(tid, None)
        if start is not None:
            self.add(name, nr, ts_ns - start, ret)

    def add(self, name: str, nr: int, duration_ns: int, ret: int | None) -> None:
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = Row(name, nr)
        row.calls += 1
        row.total_ns += max(duration_ns, 0)
        if ret is not None and is_error(ret):
            row.errors += 1

    def sorted_rows(self) -> list[Row]:
        return sorted(self.rows.values(), key=lambda r: (-r.total_ns, r.nr, r.name))

    def render(self) -> str:
        rows = self.sorted_rows()
        total_ns = sum(r.total_ns for r in rows)
        calls = sum(r.calls for r in rows)
        errors = sum(r.errors for r in rows)
        out = [self.HEADER, self.RULE]
        for r in rows:
            pct = 100.0 * r.total_ns / total_ns if total_ns else 0.0
            out.append(_line(pct, r.total_ns, r.calls, r.errors, r.name))
        out.append(self.RULE)
        out.append(_line(100.0, total_ns, calls, errors, "total"))
        return "\n".join(out) + "\n"


def _line(pct: float, ns: int, calls: int, errors: int, name: str) -> str:
    usecs_per_call = ns // 1000 // calls if calls else 0
    err = str(errors) if errors else ""
    return f"{pct:6.2f} {ns / 1e9:11.6f} {usecs_per_call:11d} {calls:9d} {err:>9s} {name}"


def render_hits(counts: dict[str, int]) -> str:
    """The hits of each probe event (after its filter), most first, as ``stat`` prints them::

             hits event
        --------- ----------------
           100000 app:add_one
    """
    out = [f"{'hits':>9s} event", f"{'-' * 9} {'-' * 16}"]
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"{n:9d} {name}")
    return "\n".join(out) + "\n"
