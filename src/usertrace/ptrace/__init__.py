"""The process engine: launch or attach, follow threads and children, report system calls.

>>> from usertrace.ptrace import Tracer, ENTER
>>> def show(kind, task, nr, args, ret, ts):        # doctest: +SKIP
...     print("enter" if kind == ENTER else "exit", task.tid, nr, ret)
>>> t = Tracer(show, syscalls={257})                  # doctest: +SKIP
>>> t.launch(["cat", "/etc/hostname"])                # doctest: +SKIP
>>> t.run().returncode                                # doctest: +SKIP
"""

from .engine import ENTER, EXIT, Tracer
from .errors import TraceError
from .status import ExitStatus
from .task import Task

__all__ = ["ENTER", "EXIT", "ExitStatus", "Task", "TraceError", "Tracer"]
