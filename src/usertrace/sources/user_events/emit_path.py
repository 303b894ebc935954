"""Which emit path this process uses: the compiled extension or pure Python.

The compiled path is the CPython extension ``_emit`` (``_emit.c``), built at install where a C
compiler and Python's headers exist (``pip install .``, ``install.sh``; in a checkout
``python3 setup.py build_ext --inplace``).  It is used when it imports, was built for the
layout of :mod:`.abi`, and ``USERTRACE_PURE_PYTHON`` is not set to anything but ``0``;
otherwise :mod:`.emitters` writes the same records in pure Python, about ten times slower.
"""

from __future__ import annotations

import importlib
import os

from ...compiled import PURE_ENV, forced_pure
from . import abi


# The rows of an event's layout table, as _emit.c numbers them (emitters._Layout.rows).
ROW_INT, ROW_BYTES, ROW_DYN_STR, ROW_DYN_ARRAY = range(4)

# What _emit.c must have been built with; any difference falls back to pure Python.
LAYOUT = {
    "version": 1, "RING_HEADER_SIZE": abi.RING_HEADER_SIZE, "RH_HEAD": abi.RH_HEAD,
    "RH_TAIL": abi.RH_TAIL, "RH_LOST": abi.RH_LOST, "RECORD_HEADER_SIZE": abi.RECORD_HEADER_SIZE,
    "COMMON_SIZE": abi.COMMON_SIZE, "MAX_PAYLOAD": abi.MAX_PAYLOAD, "WRAP_MARK": abi.WRAP_MARK,
    "CPU_UNKNOWN": abi.CPU_UNKNOWN, "K_INT": ROW_INT, "K_BYTES": ROW_BYTES,
    "K_DYN_STR": ROW_DYN_STR, "K_DYN_ARRAY": ROW_DYN_ARRAY,
}


def _load():
    """(the _emit module or None, why not)."""
    forced = forced_pure()
    if forced:
        return None, f"{PURE_ENV}={forced}"
    try:
        _emit = importlib.import_module(f"{__package__}._emit")
    except ModuleNotFoundError:
        return None, "the compiled extension is not built"
    except ImportError as exc:
        return None, f"the compiled extension does not load: {exc}"
    if getattr(_emit, "LAYOUT", None) != LAYOUT:
        return None, ("the compiled extension was built from another _emit.c "
                      "(rebuild it: python3 setup.py build_ext --inplace)")
    return _emit, ""


compiled, why_pure = _load()


def describe() -> str:
    """One line for ``usertrace --version``: which emit path and, for pure Python, why."""
    if compiled is not None:
        return f"compiled ({os.path.basename(compiled.__file__)})"
    return f"pure Python ({why_pure})"
