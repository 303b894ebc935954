"""The process engine: launch or attach, follow threads and children, dispatch stops.

>>> from usertrace.ptrace import Engine, StopHandler, ENTER
>>> class Show(StopHandler):                              # doctest: +SKIP
...     enter_syscalls = exit_syscalls = {257}            # openat
...     def on_syscall(self, kind, task, nr, args, ret, ts):
...         print("enter" if kind == ENTER else "exit", task.tid, nr, ret)
>>> engine = Engine()                                     # doctest: +SKIP
>>> engine.add(Show())                                    # doctest: +SKIP
>>> engine.launch(["cat", "/etc/hostname"])               # doctest: +SKIP
>>> engine.run().returncode                               # doctest: +SKIP
"""

from .engine import Engine
from .errors import TraceError
from .handlers import ENTER, EXIT, StopHandler
from .process import Mapping, Process
from .status import ExitStatus
from .task import Task

__all__ = ["ENTER", "EXIT", "Engine", "ExitStatus", "Mapping", "Process", "StopHandler", "Task",
           "TraceError"]
