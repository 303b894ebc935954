"""usertrace: the Linux kernel's trace events for any process a user may trace.

Three event sources (syscall events, probe events, user events) share one event model
(:mod:`usertrace.events`), the kernel's filter language (:mod:`usertrace.filter`), the
kernel's ring-buffer page format (:mod:`usertrace.buffer`) and the kernel's text and
trace-cmd's ``trace.dat`` on the way out (:mod:`usertrace.output`).
"""

__version__ = "0.1.0"
