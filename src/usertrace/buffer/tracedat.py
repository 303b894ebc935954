"""trace-cmd's ``trace.dat``, versions 6 and 7: :class:`TraceDatWriter` and :class:`TraceDatReader`.

The file carries ring-buffer pages per cpu (opaque here: :mod:`usertrace.buffer.ring` and
:class:`~usertrace.events.records.RecordCodec` decode them) with the metadata a reader needs to
decode them: ``header_page``/``header_event``, the event formats by system, saved cmdlines and
options (trace clock, uname, trace instances).  The layout is in :mod:`.tracedat_layout`.
"""

from .tracedat_layout import HEADER_EVENT_TEXT, Option, TraceDatError, header_page_text
from .tracedat_read import CpuData, Section, TraceDatBuffer, TraceDatReader
from .tracedat_write import TraceDatWriter

__all__ = [
    "HEADER_EVENT_TEXT",
    "CpuData",
    "Option",
    "Section",
    "TraceDatBuffer",
    "TraceDatError",
    "TraceDatReader",
    "TraceDatWriter",
    "header_page_text",
]
