"""The one base of every error usertrace reports, and the one caret renderer.

Every error a user can cause (a definition, a filter, a format, a file, a pid) is a
:class:`UsertraceError`.  Its ``str()`` is one line; :meth:`UsertraceError.render` is what the
CLI prints, which for the definition languages is several lines with a caret under the fault,
as the kernel's ``error_log`` and libtraceevent's ``show_error()`` print it::

    >>> print(caret("p:grp/ev /bin/true:0x10 x=%bad", 26))
                              ^
"""

from __future__ import annotations

# The exit statuses of the command line (``cli.context.ExitStatus`` names them).
EXIT_ERROR = 1     # a failed operation, a bad file, a process that is not there
EXIT_SYNTAX = 2    # input that does not parse: a filter, format, definition or event pattern


class UsertraceError(Exception):
    """An error to report to the user: what went wrong, and where when it is known.

    ``code`` is the error's name in its language's catalog, ``text`` the source text the fault
    is in and ``pos`` the fault's offset in it; each is None where the error has none.
    ``exit_status`` is what the command line exits with when this error ends it.
    """

    exit_status = EXIT_ERROR
    code: str | None = None
    text: str | None = None
    pos: int | None = None

    def render(self) -> str:
        """The text to show the user: the message, then the source text with a caret under the
        fault where the error has both."""
        if self.text is None or self.pos is None:
            return str(self)
        return f"{self}\n{self.text}\n{caret(self.text, self.pos)}"


class CatalogError(UsertraceError):
    """A fault of a language whose errors the kernel names from a catalog (filters, probe
    definitions): ``code`` a key of the subclass's ``MESSAGES``, ``message`` its text,
    ``text`` and ``pos`` where it is, ``errno`` what the kernel's ``write()`` fails with,
    ``detail`` more words where usertrace knows more than the kernel says.  Each subclass
    keeps its own constructor (the order its callers give these in) and rendering."""

    exit_status = EXIT_SYNTAX
    language = ""
    MESSAGES: dict[str, str] = {}
    NUMBERS: dict[str, int] = {}     # the kernel's number of each code it has

    def _locate(self, code: str, text: str, pos: int, errno: int, detail: str) -> None:
        if code not in self.MESSAGES:
            raise KeyError(f"unknown {self.language} error code {code!r}")
        self.code = code
        self.message = self.MESSAGES[code]
        self.text = text
        self.pos = pos
        self.errno = errno
        self.detail = detail

    @property
    def number(self) -> int | None:
        """The kernel's number of ``code`` (None for a code of usertrace's own)."""
        return self.NUMBERS.get(self.code)


def caret(text: str | bytes, pos: int, *, tabs: bool = True) -> str:
    """The line that puts a caret under ``text[pos]``: spaces, but a tab where the text has
    one, so that the caret lands under the fault on any terminal.  ``pos`` is clamped to the
    text (a fault at the end points just past it).

    The kernel's own carets count bytes and use spaces only: pass the text as bytes and
    ``tabs=False`` to get theirs.
    """
    pos = max(0, min(pos, len(text)))
    if not tabs:
        return " " * pos + "^"
    tab = "\t" if isinstance(text, str) else ord("\t")
    return "".join("\t" if c == tab else " " for c in text[:pos]) + "^"
