"""One line per system call, as ``strace -f`` prints it, from syscall events.

The events come in time order (a recording read back, or a live stream); each thread's
``sys_enter_*`` and ``sys_exit_*`` are joined into one line::

    1234  openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3

When another thread's event comes between the two, the line is cut as strace cuts it and
finished later::

    [pid  1235] read(3,  <unfinished ...>
    [pid  1234] close(4)                    = 0
    [pid  1235] <... read resumed>"abc", 10) = 3

The text of a call up to the first argument strace prints at the return is known at the
entry, the rest at the return (:mod:`.decoders`).  Process ends and signals print as
``+++ exited with 0 +++``, ``+++ killed by SIGKILL +++`` and ``--- SIGCHLD {...} ---``: live,
when the tracer tells the view (:meth:`CallView.task_exit`, :meth:`CallView.signal`); from a
recording, from its ``signal:signal_deliver`` and ``sched:sched_process_exit`` events
(:meth:`CallView.made`, :meth:`CallView.delivered`, :meth:`CallView.ended`); an
``exit_group(N)`` prints its ``+++ exited with N +++`` at once.  A recording does not say whether a core was dumped.

Options are strace's: ``-s`` (:attr:`ViewOptions.max_len`), ``-x``/``-xx``, ``-y``, ``-t``,
``-tt``, ``-ttt``, ``-r``, ``-T``, ``-a`` (the column of ``=``), ``-z``/``-Z`` (only the
calls that succeeded / failed, whole), and how lines name their thread: strace's
``[pid N]`` on a terminal when more than one task is traced, or ``N`` on every line as with
``-o FILE -f``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ...sources.syscalls import events as sc_events
from ...sources.syscalls.table import SyscallTable
from ...sources.syscalls.user_data import val_fields
from ...sources.tasks.events import (CLONE_THREAD, NEW_TASK, PROCESS_EXIT, SIG_DFL, SIGKILL,
                                     SIGNAL_DELIVER, kills_by_default)
from .decoders import (GLUED_EXITS, RESULT_GLUE, Call, Context, Options, decode_args,
                       decode_exit, result_text)
from .fds import FdTables
from .quote import HEX_NONE
from .xlat import Xlat, hex_text

PID_AUTO, PID_PLAIN, PID_NONE = "auto", "plain", "none"
TS_NONE, TS_TIME, TS_USEC, TS_EPOCH = 0, 1, 2, 3        # -t, -tt, -ttt
STATUS_ALL, STATUS_SUCCESSFUL, STATUS_FAILED = "all", "successful", "failed"
CLONES = frozenset({"clone", "clone3", "fork", "vfork"})
_SYSCALL, _SIGNAL, _EXIT, _NEW, _OTHER = range(5)


@dataclass
class ViewOptions:
    """strace's output options (the defaults are strace's)."""

    max_len: int = 32                   # -s
    hex_mode: int = HEX_NONE            # -x: 1, -xx: 2
    show_fds: bool = False              # -y
    timestamps: int = TS_NONE           # -t: 1, -tt: 2, -ttt: 3
    relative: bool = False              # -r
    durations: bool = False             # -T
    column: int = 40                    # -a
    pids: str = PID_AUTO                # "auto": [pid N] with more than one task; "plain": N
    status: str = STATUS_ALL            # -z: successful, -Z: failed
    wall_offset_ns: int | None = None   # wall clock minus the events' clock (for -t)
    live_fds: bool = False              # -y asks /proc (a live trace)
    resolve_links: bool = False         # -y resolves symbolic links here (a recording)
    task_events: bool = False           # the caller reports task ends (task_exit)


@dataclass
class _Open:
    """A line printed up to the entry part, not yet ended."""

    tid: int
    text: str


@dataclass
class _Task:
    alive: bool = True
    group: int = 0              # the thread group (process) when known
    exit_code: int | None = None
    ended: bool = False         # its +++ line is printed
    fatal: int = 0              # the signal that ends it (a recorded signal_deliver)


class CallView:
    """Turns syscall events into strace lines; each finished line goes to ``write``.

    >>> lines = []
    >>> view = CallView(lines.append, ViewOptions(pids=PID_PLAIN))
    >>> view.enter(42, "close", [3], ts_ns=0)
    >>> view.exit(42, "close", 0, ts_ns=1000)
    >>> lines
    ['42    close(3)                          = 0']
    """

    def __init__(self, write: Callable[[str], None], options: ViewOptions | None = None,
                 arch: str = "x86_64"):
        self.write = write
        self.opt = options or ViewOptions()
        self.x = Xlat.for_arch(arch)
        self.table = SyscallTable.for_arch(arch)
        self.fds = FdTables(self.x, live=self.opt.live_fds, resolve=self.opt.resolve_links)
        self.ctx_options = Options(self.opt.max_len, self.opt.hex_mode, self.opt.show_fds)
        self._pending: dict[int, Call] = {}
        self._open: _Open | None = None
        self._tasks: dict[int, _Task] = {}
        self._n_alive = 0                       # tasks whose alive is True (a prefix each)
        self._last_ts: int | None = None
        self._task_events = self.opt.task_events
        self._ctx_cache: dict[int, Context] = {}
        self._shapes: dict[int, tuple] = {}   # id(format) -> (format, what feed needs)
        self._group_code: dict[int, int] = {}   # thread group -> its exit_group code
        self._clone_flags: dict[int, int] = {}  # new task -> its task_newtask's flags, until
        #                                        its maker's call returns or it ends
        self._group_fatal: dict[int, int] = {}  # thread group -> the signal that ends it

    # -- feeding events -----------------------------------------------------------------------
    def feed(self, event) -> None:
        """One decoded event (``.format``, ``.values``, ``.ts_ns``): syscall events become
        lines, ``signal:signal_deliver`` a signal line; others are ignored."""
        fmt = event.format
        if fmt is None:
            return
        values = event.values
        tid = values.get("common_pid", 0)
        got = self._shapes.get(id(fmt))
        if got is None or got[0] is not fmt:      # (the format kept: its id stays its own)
            got = self._shapes[id(fmt)] = (fmt, self._shape(fmt))
        shape = got[1]
        kind = shape[0]
        if kind == _SYSCALL:
            _, sc_of_event, is_enter, names, types, vals = shape
            sc = self.table.by_nr.get(values.get("__syscall_nr", -1)) or sc_of_event
            if sc is None:
                return
            datas = {arg: values.get(f) for arg, f in vals} if vals else None
            if is_enter:
                self.enter(tid, sc.name, [values.get(n, 0) for n in names], event.ts_ns,
                           datas, names, types)
            else:
                self.exit(tid, sc.name, values.get("ret", 0), event.ts_ns, datas)
        elif self.opt.task_events:
            return                              # the tracer tells of signals and ends
        elif kind == _SIGNAL:
            self.delivered(tid, event.ts_ns, values.get("sig", 0), values.get("code"),
                           values.get("sa_handler", SIG_DFL))
        elif kind == _EXIT:
            self.ended(tid, event.ts_ns)
        elif kind == _NEW:
            self.made(tid, values.get("pid", 0), values.get("clone_flags", 0))

    def _shape(self, fmt) -> tuple:
        """What ``feed`` needs of a format, worked out once per format."""
        if fmt.system == sc_events.SYSTEM:
            base = sc_events.event_base(fmt.name)
            if base is not None:
                own = [f for f in fmt.fields if f.name != sc_events.NR_FIELD.name
                       and not f.is_dynamic]
                return (_SYSCALL, self.table.by_event.get(base[0]), base[1],
                        [f.name for f in own], [f.type for f in own],
                        tuple(val_fields(fmt).items()))
        elif (fmt.system, fmt.name) == SIGNAL_DELIVER:
            return (_SIGNAL,)
        elif (fmt.system, fmt.name) == PROCESS_EXIT:
            return (_EXIT,)
        elif (fmt.system, fmt.name) == NEW_TASK:
            return (_NEW,)
        return (_OTHER,)

    def feed_all(self, events: Iterable) -> None:
        for e in events:
            self.feed(e)
        self.finish()

    def enter(self, tid: int, name: str, args: list[int], ts_ns: int,
              vals: dict | None = None, arg_names: list[str] | None = None,
              arg_types: list[str] | None = None) -> None:
        """A thread entered system call ``name`` (its ``__NR_`` name)."""
        self._task(tid)
        if arg_names is None:
            sc = self.table.by_name.get(name)
            described = list(sc.args or ()) if sc else []
            arg_names = [n for _, n in described][: len(args)]
            arg_types = [t for t, _ in described][: len(args)]
        call = Call(name, tid, [a & 0xFFFF_FFFF_FFFF_FFFF for a in args], list(arg_names),
                    list(arg_types or []), dict(vals or {}), None, ts_ns, None, True)
        if tid in self._pending:        # its last call never returned (no exit event)
            self._finish_pending(tid, ts_ns)
        filtering = self.opt.status != STATUS_ALL
        if name in ("exit", "exit_group"):
            if not filtering:
                self._end_open_of_others(tid)
                self._emit_line(tid, ts_ns, self._head(call) + ")" , call, ts_ns)
            self._exiting(tid, call)
            return
        self._pending[tid] = call
        if filtering:
            return
        self._end_open_of_others(tid)
        enter, exit_ = decode_args(self._ctx(tid), call)
        text = self._prefix(tid, ts_ns) + name + "(" + ", ".join(enter)
        if exit_ and enter and call.name not in GLUED_EXITS:
            text += ", "
        self._open = _Open(tid, text)

    def exit(self, tid: int, name: str, ret: int, ts_ns: int, vals: dict | None = None) -> None:
        """A thread returned from system call ``name`` with ``ret``."""
        self._task(tid)
        call = self._pending.pop(tid, None)
        if call is None or call.name != name:
            if name in CLONES and ret == 0:
                return                      # the child's first return: strace shows none
            call = Call(name, tid, ts_exit=ts_ns)
            unmatched = True
        else:
            unmatched = False
        call.ret = ret
        call.ts_exit = ts_ns
        if vals:
            call.vals.update(vals)
        self._after(call)
        if not self._selected(call):
            if self._open is not None and self._open.tid == tid:
                self._open = None
            return
        ctx = self._ctx(tid)
        if unmatched:
            exit_text = ""
        elif self.opt.status != STATUS_ALL:
            enter, exit_ = decode_args(ctx, call)
            exit_text = ", ".join(exit_)
        else:
            exit_text = ", ".join(decode_exit(ctx, call))
        if name in GLUED_EXITS and exit_text and not exit_text.startswith(RESULT_GLUE):
            exit_text = ", " + exit_text          # the comma the entry left out
        if self.opt.status != STATUS_ALL and not unmatched:
            text = self._prefix(tid, call.ts_enter) + name + "(" + ", ".join(enter)
            text += (", " if enter and exit_ and name not in GLUED_EXITS else "") + exit_text
        elif self._open is not None and self._open.tid == tid:
            text = self._open.text + exit_text
            self._open = None
        else:
            self._end_open_of_others(tid)
            text = self._prefix(tid, ts_ns) + f"<... {name} resumed>" + exit_text
        self._emit_line(tid, ts_ns, text + ")", call, ts_ns)

    # -- processes and signals ----------------------------------------------------------------
    def task_new(self, tid: int, group: int | None = None) -> None:
        """A task the tracer attached or saw created (``group``: its process)."""
        t = self._task(tid)
        t.group = group if group is not None else t.group or tid

    def task_exit(self, tid: int, ts_ns: int, code: int | None = None,
                  signal: int | None = None, core: bool = False) -> None:
        """A task ended: ``+++ exited with CODE +++`` or ``+++ killed by SIG +++``."""
        self._task_events = True
        self._finish_pending(tid, ts_ns)
        self._end_open_of_others(None)
        t = self._tasks.get(tid)
        if t is not None and t.ended:
            return                      # exit_group already said it
        if signal is not None:
            what = f"killed by {self.x.signal_text(signal)}" + (" (core dumped)" if core else "")
        elif code is not None:
            what = f"exited with {code}"
        else:
            what = "exited"                     # how, no event says
        self._print(self._prefix(tid, ts_ns) + f"+++ {what} +++")
        self._task(tid).ended = True
        self._gone(tid)

    def delivered(self, tid: int, ts_ns: int, sig: int, code: int | None = None,
                  sa_handler: int = SIG_DFL) -> None:
        """A recorded ``signal:signal_deliver``: a ``--- SIG ---`` line (none for SIGKILL, as
        strace), and the signal that ends the task when its action is the default's."""
        t = self._task(tid)
        if sig != SIGKILL:
            self.signal(tid, ts_ns, sig, {"si_code": code} if code is not None else None)
        if sig == SIGKILL or (sa_handler == SIG_DFL and kills_by_default(sig)):
            t.fatal = sig
            self._group_fatal.setdefault(t.group, sig)

    def made(self, tid: int, child: int, clone_flags: int) -> None:
        """A recorded ``task:task_newtask``: ``child`` is a thread of ``tid``'s process when
        the flags hold CLONE_THREAD (clone3's flags are in its struct, which only a recording
        with strings holds; these are always there)."""
        self._clone_flags[child] = clone_flags
        self._task(child).group = (self._task(tid).group if clone_flags & CLONE_THREAD
                                   else child)

    def ended(self, tid: int, ts_ns: int) -> None:
        """A recorded ``sched:sched_process_exit``: the task's ``+++`` line, from its own
        exit call, its thread group's ``exit_group``, or the signal that ended the group."""
        t = self._task(tid)
        self._clone_flags.pop(tid, None)       # made, but its maker's call never returned
        group_code = self._group_code.get(t.group)
        if t.exit_code is not None and not t.fatal:
            self.task_exit(tid, ts_ns, code=t.exit_code)
        elif group_code is not None and t.fatal in (0, SIGKILL):
            self.task_exit(tid, ts_ns, code=group_code)
        elif t.fatal:
            self.task_exit(tid, ts_ns, signal=self._group_fatal.get(t.group, t.fatal))
        else:
            self.task_exit(tid, ts_ns, code=None)

    def signal(self, tid: int, ts_ns: int, sig: int, info: dict | None = None) -> None:
        """A signal reached a task: ``--- SIGCHLD {si_signo=SIGCHLD, ...} ---``."""
        self._task(tid)
        self._end_open_of_others(None)
        self._print(self._prefix(tid, ts_ns) + f"--- {self.x.signal_text(sig)} "
                    + siginfo_text(self.x, sig, info) + " ---")

    def attach(self, pid: int, tids: Iterable[int] = ()) -> None:
        """Tracing of ``pid`` began: its descriptors come from ``/proc`` (``-y``)."""
        tids = list(tids)
        for tid in [pid] + tids:
            self.task_new(tid, pid)
        if self.opt.show_fds:
            self.fds.load_proc(pid, tids)

    def finish(self) -> None:
        """The end of the events: calls that never returned end as strace ends them."""
        self._flush_open()
        for tid in list(self._pending):
            self._finish_pending(tid, self._last_ts or 0)

    # -- internals ----------------------------------------------------------------------------
    def _task(self, tid: int) -> _Task:
        t = self._tasks.get(tid)
        if t is None:
            t = self._tasks[tid] = _Task(group=tid)
            self._n_alive += 1
        elif not t.alive and not t.ended:
            t.alive = True
            self._n_alive += 1
        return t

    def _gone(self, tid: int) -> None:
        t = self._tasks.get(tid)
        if t is not None and t.alive:
            t.alive = False
            self._n_alive -= 1

    def _ctx(self, tid: int) -> Context:
        ctx = self._ctx_cache.get(tid)
        if ctx is None:
            ctx = self._ctx_cache[tid] = Context(
                self.x, self.ctx_options, lambda fd, tid=tid: self.fds.path(tid, fd),
                lambda tid=tid: self.fds.cwd(tid))
        return ctx

    def _selected(self, call: Call) -> bool:
        if self.opt.status == STATUS_SUCCESSFUL:
            return not call.failed and call.ret is not None
        if self.opt.status == STATUS_FAILED:
            return call.failed
        return True

    def _after(self, call: Call) -> None:
        """What a returned call changes: descriptor tables, new tasks."""
        if call.name in CLONES and call.ret is not None and call.ret > 0:
            flags = self._clone_flags.pop(call.ret, 0)        # needed once, here
            if call.name == "clone":
                flags = call.arg(0)
            share = bool(flags & self.x.value("clone_flags", "CLONE_FILES"))
            thread = bool(flags & self.x.value("clone_flags", "CLONE_THREAD"))
            child = self._task(call.ret)
            child.group = self._tasks[call.tid].group if thread else call.ret
            self.fds.new_task(call.tid, call.ret, share)
        if self.opt.show_fds:
            self.fds.after(call)

    def _exiting(self, tid: int, call: Call) -> None:
        """``exit_group(N)``/``exit(N)``: without task events from the caller, this is where
        the task's end is known; strace prints ``+++ exited with N +++`` after it."""
        code = call.arg(0) & 0xFF
        t = self._tasks[tid]
        t.exit_code = code
        if call.name == "exit_group":
            self._group_code[t.group] = code
        if self._task_events:
            return
        self._print(self._prefix(tid, call.ts_enter) + f"+++ exited with {code} +++")
        t.ended = True
        self._gone(tid)

    def _finish_pending(self, tid: int, ts_ns: int) -> None:
        call = self._pending.pop(tid, None)
        if call is None:
            return
        if self.opt.status != STATUS_ALL:
            return
        if self._open is not None and self._open.tid == tid:
            text = self._open.text
            self._open = None
        else:
            self._end_open_of_others(tid)
            text = self._prefix(tid, ts_ns) + f"<... {call.name} resumed>"
        self._print(self._pad(text + ")") + "= ?")

    def _end_open_of_others(self, tid: int | None) -> None:
        if self._open is not None and self._open.tid != tid:
            self._flush_open()

    def _flush_open(self) -> None:
        if self._open is not None:
            self._print(self._open.text + " <unfinished ...>")
            self._open = None

    def _head(self, call: Call) -> str:
        enter, _ = decode_args(self._ctx(call.tid), call)
        return self._prefix(call.tid, call.ts_enter) + call.name + "(" + ", ".join(enter)

    def _emit_line(self, tid: int, ts_ns: int, text: str, call: Call, _ts: int) -> None:
        line = self._pad(text) + "= " + result_text(self._ctx(tid), call)
        if self.opt.durations and call.ts_enter is not None and call.ts_exit is not None:
            line += " " + _duration(call.ts_exit - call.ts_enter)
        self._print(line)

    def _pad(self, text: str) -> str:
        text += " "
        if len(text) < self.opt.column:
            text += " " * (self.opt.column - len(text))
        return text

    def _print(self, line: str) -> None:
        self.write(line)

    def _prefix(self, tid: int, ts_ns: int | None) -> str:
        out = ""
        if self.opt.pids == PID_PLAIN:
            out = f"{tid:<5d} "
        elif self.opt.pids == PID_AUTO and self._n_alive > 1:
            out = f"[pid {tid:5d}] "
        if ts_ns is not None:
            self._last_ts = ts_ns if self._last_ts is None else max(self._last_ts, ts_ns)
        if self.opt.timestamps or self.opt.relative:
            out += self._timestamp(ts_ns or 0)
        return out

    def _timestamp(self, ts_ns: int) -> str:
        if self.opt.relative:
            prev = getattr(self, "_rel_prev", None)
            self._rel_prev = ts_ns
            d = 0 if prev is None else max(0, ts_ns - prev)
            return f"{d // 1_000_000_000:6d}.{(d // 1000) % 1_000_000:06d} "
        offset = self.opt.wall_offset_ns
        if offset is None:
            offset = time.time_ns() - time.monotonic_ns()
        wall = ts_ns + offset
        secs, usecs = divmod(wall // 1000, 1_000_000)
        if self.opt.timestamps == TS_EPOCH:
            return f"{secs}.{usecs:06d} "
        clock = time.strftime("%H:%M:%S", time.localtime(secs))
        if self.opt.timestamps == TS_USEC:
            return f"{clock}.{usecs:06d} "
        return f"{clock} "


def _duration(ns: int) -> str:
    """``<0.000123>``: -T, seconds with microseconds."""
    us = max(ns, 0) // 1000
    return f"<{us // 1_000_000}.{us % 1_000_000:06d}>"


_CODE_GROUPS = {"SIGCHLD": "cld_codes", "SIGSEGV": "segv_codes", "SIGBUS": "bus_codes",
                "SIGILL": "ill_codes", "SIGFPE": "fpe_codes", "SIGTRAP": "trap_codes",
                "SIGSYS": "sys_codes"}


def siginfo_text(x: Xlat, sig: int, info: dict | None) -> str:
    """``{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=1235, si_uid=0, si_status=0, ...}``
    from what is known of a signal's siginfo (a dict of its ``si_*`` fields)."""
    parts = [f"si_signo={x.signal_text(sig)}"]
    if not info:
        return "{" + parts[0] + "}"
    code = info.get("si_code")
    if code is not None:
        code = code - (1 << 32) if code & 0x8000_0000 and code > 0 else code
        name = x.signal(sig)
        text = None
        if code > 0 and name in _CODE_GROUPS:
            text = x.lookup(_CODE_GROUPS[name], code)
        if text is None:
            text = x.lookup("si_codes", code)
        parts.append(f"si_code={text if text is not None else code}")
    for key in ("si_errno",):
        if info.get(key):
            parts.append(f"{key}={info[key]}")
    for key in ("si_pid", "si_uid", "si_status", "si_utime", "si_stime"):
        if key in info:
            v = info[key]
            if key == "si_status" and code is not None and x.signal(sig) == "SIGCHLD" \
                    and x.lookup("cld_codes", code) in ("CLD_KILLED", "CLD_DUMPED", "CLD_STOPPED",
                                                        "CLD_TRAPPED"):
                v = x.signal_text(v)
            parts.append(f"{key}={v}")
    if "si_addr" in info:
        a = info["si_addr"]
        parts.append(f"si_addr={'NULL' if not a else hex_text(a)}")
    return "{" + ", ".join(parts) + "}"
