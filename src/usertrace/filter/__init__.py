"""The kernel's event filter language: ``common_pid == 42 && filename ~ "/etc/*"``.

Parsed as ``kernel/trace/trace_events_filter.c`` parses it (same accepted texts, same error
messages and positions), compiled to closures over decoded records.

    compile_filter(text, fmt) -> Filter           Filter.match(record) -> bool
    compile_system_filter(text, formats) -> SystemFilter
    FilterError: .code, .message, .pos, .errno, .render()
"""

from .compile import (Filter, SystemFilter, compile_filter, compile_group_filter,
                      compile_system_filter)
from .errors import CATALOG, FilterError, FilterMatchError

__all__ = ["CATALOG", "Filter", "FilterError", "FilterMatchError", "SystemFilter",
           "compile_filter", "compile_group_filter", "compile_system_filter"]
