"""The filter language's error catalog, mirroring the kernel's ``ERRORS`` list.

``kernel/trace/trace_events_filter.c`` keeps one list of ``C(CODE, "message")`` pairs; a parse
error is a code and a byte position in the filter text, and the event's ``filter`` file then
shows the text, a caret under that position and ``parse_error: <message>``::

    fd ~ 3
          ^
    parse_error: Illegal operation for field type

:class:`FilterError` carries the same code, message and position (``pos`` is the position the
kernel reports, which for faults inside a predicate is one byte past the natural one; we keep
the kernel's number so that the caret lands where the kernel puts it) and the errno that the
kernel's ``write()`` fails with.  ``err.render()`` is the ``filter`` file's text, byte for byte.
"""

from __future__ import annotations

import errno as _errno

from ..errors import CatalogError, UsertraceError, caret

# (code, message) in the kernel's order; the index is the kernel's FILT_ERR_* number.
CATALOG: tuple[tuple[str, str], ...] = (
    ("NONE", "No error"),
    ("INVALID_OP", "Invalid operator"),
    ("TOO_MANY_OPEN", "Too many '('"),
    ("TOO_MANY_CLOSE", "Too few '('"),
    ("MISSING_QUOTE", "Missing matching quote"),
    ("MISSING_BRACE_OPEN", "Missing '{'"),
    ("MISSING_BRACE_CLOSE", "Missing '}'"),
    ("OPERAND_TOO_LONG", "Operand too long"),
    ("EXPECT_STRING", "Expecting string field"),
    ("EXPECT_DIGIT", "Expecting numeric field"),
    ("ILLEGAL_FIELD_OP", "Illegal operation for field type"),
    ("FIELD_NOT_FOUND", "Field not found"),
    ("ILLEGAL_INTVAL", "Illegal integer value"),
    ("BAD_SUBSYS_FILTER", "Couldn't find or set field in one of a subsystem's events"),
    ("TOO_MANY_PREDS", "Too many terms in predicate expression"),
    ("INVALID_FILTER", "Meaningless filter expression"),
    ("INVALID_CPULIST", "Invalid cpulist"),
    ("IP_FIELD_ONLY", "Only 'ip' field is supported for function trace"),
    ("INVALID_VALUE", "Invalid value (did you forget quotes)?"),
    ("NO_FUNCTION", "Function not found"),
    ("ERRNO", "Error"),
    ("NO_FILTER", "No filter found"),
)

MESSAGES: dict[str, str] = dict(CATALOG)
NUMBERS: dict[str, int] = {code: i for i, (code, _) in enumerate(CATALOG)}


class FilterError(CatalogError, ValueError):
    """An event filter the kernel would refuse.

    ``code`` is a key of :data:`CATALOG`; ``message`` its text; ``pos`` the byte offset the
    kernel reports (its caret column); ``text`` the filter text as the kernel keeps it
    (trailing white space stripped); ``errno`` the error of the kernel's ``write()``.

    A few faults carry no message in the kernel (``code == "NONE"``: an empty filter, a
    predicate with no field name); the kernel's file then shows ``Error: (0)`` and no caret.
    For those, ``detail`` says what is wrong and ``str(err)`` shows it with a caret at ``pos``;
    ``render()`` stays the kernel's text.
    """

    language = "filter"
    MESSAGES = MESSAGES
    NUMBERS = NUMBERS                 # FILT_ERR_*

    def __init__(self, code: str, pos: int, text: str, errno: int = _errno.EINVAL,
                 detail: str = ""):
        self._locate(code, text, pos, errno, detail)
        super().__init__(self._describe())

    @property
    def has_message(self) -> bool:
        """True when the kernel shows a caret and a message (``parse_error: ...``)."""
        return self.code != "NONE"

    def caret_column(self) -> int:
        """The caret's column as the kernel computes it: ``pos``, clamped to the text."""
        return len(self._caret()) - 1

    def _caret(self) -> str:
        # The kernel counts bytes and pads with spaces only.
        return caret(self.text.encode("utf-8", "surrogateescape"), self.pos, tabs=False)

    def render(self) -> str:
        """The text the event's ``filter`` file shows after the refused write, byte for byte."""
        if not self.has_message:
            return f"{self.text}\nError: (0)\n\n"
        return f"{self.text}\n{self._caret()}\nparse_error: {self.message}\n\n"

    def _describe(self) -> str:
        if self.has_message:
            return self.render().rstrip("\n")
        return f"{self.text}\n{self._caret()}\nparse_error: {self.detail or 'Error'}"

    def __str__(self) -> str:
        return self._describe()

    def __repr__(self) -> str:
        return f"FilterError({self.code!r}, pos={self.pos}, text={self.text!r})"


class FilterMatchError(UsertraceError, ValueError):
    """A record handed to :meth:`Filter.match` lacks a value the filter reads, or has a
    value of the wrong kind (the message names the field)."""
