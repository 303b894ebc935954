"""The one base of every error usertrace reports, and the one caret renderer.

Every error a user can cause (a definition, a filter, a format, a file, a pid) is a
:class:`UsertraceError`.  Its ``str()`` is one line; :meth:`UsertraceError.render` is what the
CLI prints, which for the definition languages is several lines with a caret under the fault,
as the kernel's ``error_log`` and libtraceevent's ``show_error()`` print it::

    >>> print(caret("p:grp/ev /bin/true:0x10 x=%bad", 26))
                              ^
"""

from __future__ import annotations


class UsertraceError(Exception):
    """An error to report to the user: what went wrong, and where when it is known.

    ``exit_status`` is what the command line exits with when this error ends it.
    """

    exit_status = 1

    def render(self) -> str:
        """The text to show the user (one line unless a subclass adds a caret)."""
        return str(self)


def caret(text: str, pos: int) -> str:
    """The line that puts a caret under ``text[pos]``: spaces, but a tab where the text has
    one, so that the caret lands under the fault on any terminal.  ``pos`` is clamped to the
    text (a fault at the end points just past it)."""
    pos = max(0, min(pos, len(text)))
    return "".join("\t" if c == "\t" else " " for c in text[:pos]) + "^"
