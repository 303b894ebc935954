"""The strace view of syscall events: one line per call, as ``strace -f`` prints it.

::

    from usertrace.output.strace import CallView, ViewOptions
    view = CallView(print, ViewOptions(max_len=128, show_fds=True))
    for event in events:        # decoded events in time order (a trace.dat, a live stream)
        view.feed(event)
    view.finish()

Its parts: :mod:`.quote` (strings as strace escapes them), :mod:`.xlat` (flag, enum, signal
and errno names from the generated constants), :mod:`.decoders` (each call's arguments and
result), :mod:`.fds` (descriptor paths for ``-y``), :mod:`.view` (enter and exit joined per
thread, ``<unfinished ...>``, prefixes, timestamps).
"""

from .decoders import Call, Context, Options, decode_args, result_text
from .quote import HEX_ALL, HEX_NON_ASCII, HEX_NONE, quote, quote_bytes, quote_cstring
from .view import (PID_AUTO, PID_NONE, PID_PLAIN, STATUS_ALL, STATUS_FAILED, STATUS_SUCCESSFUL,
                   TS_EPOCH, TS_NONE, TS_TIME, TS_USEC, CallView, ViewOptions, siginfo_text)
from .xlat import Xlat

__all__ = [
    "CallView", "ViewOptions", "Call", "Context", "Options", "Xlat", "decode_args",
    "result_text", "siginfo_text", "quote", "quote_bytes", "quote_cstring",
    "HEX_NONE", "HEX_NON_ASCII", "HEX_ALL", "PID_AUTO", "PID_PLAIN", "PID_NONE",
    "TS_NONE", "TS_TIME", "TS_USEC", "TS_EPOCH", "STATUS_ALL", "STATUS_SUCCESSFUL",
    "STATUS_FAILED",
]
