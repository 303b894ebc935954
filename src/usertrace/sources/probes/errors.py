"""The probe definition language's error catalog, mirroring the kernel's ``trace_probe.h``.

``kernel/trace/trace_probe.h`` keeps one list of ``C(CODE, "message")`` pairs for every
probe-based dynamic event (kprobes, uprobes, fprobes, eprobes).  A refused definition leaves
one entry in tracefs's ``error_log``: the subsystem and the message, the command as the kernel
rebuilt it (its words joined by single spaces) and a caret under the fault::

    [  430.333468] trace_uprobe: error: Invalid register name
      Command: p:utprb/e1 /bin/true:0x10 x=%bad
                                           ^

:class:`ProbeError` carries the same code, message, command and caret position;
``render()`` is that entry without its timestamp.  A few definitions the kernel refuses
without a log entry (a line that is no uprobe at all, a removal that matches nothing): those
have ``logged`` false and their own code from :data:`USERTRACE_CATALOG`, as do the faults of
what usertrace adds to the language (symbols, SDT notes, the legacy fetch arguments).
"""

from __future__ import annotations

import errno as _errno

from ...errors import CatalogError, caret

SUBSYSTEM = "trace_uprobe"

# (code, message) in the kernel's order; the index is the kernel's TP_ERR_* number.
CATALOG: tuple[tuple[str, str], ...] = (
    ("FILE_NOT_FOUND", "Failed to find the given file"),
    ("NO_REGULAR_FILE", "Not a regular file"),
    ("BAD_REFCNT", "Invalid reference counter offset"),
    ("REFCNT_OPEN_BRACE", "Reference counter brace is not closed"),
    ("BAD_REFCNT_SUFFIX", "Reference counter has wrong suffix"),
    ("BAD_UPROBE_OFFS", "Invalid uprobe offset"),
    ("BAD_MAXACT_TYPE", "Maxactive is only for function exit"),
    ("BAD_MAXACT", "Invalid maxactive number"),
    ("MAXACT_TOO_BIG", "Maxactive is too big"),
    ("BAD_PROBE_ADDR", "Invalid probed address or symbol"),
    ("NON_UNIQ_SYMBOL", "The symbol is not unique"),
    ("BAD_RETPROBE", "Retprobe address must be an function entry"),
    ("NO_TRACEPOINT", "Tracepoint is not found"),
    ("BAD_TP_NAME", "Invalid character in tracepoint name"),
    ("BAD_ADDR_SUFFIX", "Invalid probed address suffix"),
    ("NO_GROUP_NAME", "Group name is not specified"),
    ("GROUP_TOO_LONG", "Group name is too long"),
    ("BAD_GROUP_NAME", "Group name must follow the same rules as C identifiers"),
    ("NO_EVENT_NAME", "Event name is not specified"),
    ("EVENT_TOO_LONG", "Event name is too long"),
    ("BAD_EVENT_NAME", "Event name must follow the same rules as C identifiers"),
    ("EVENT_EXIST", "Given group/event name is already used by another event"),
    ("RETVAL_ON_PROBE", "$retval is not available on probe"),
    ("NO_RETVAL", "This function returns 'void' type"),
    ("BAD_STACK_NUM", "Invalid stack number"),
    ("BAD_ARG_NUM", "Invalid argument number"),
    ("BAD_VAR", "Invalid $-variable specified"),
    ("BAD_REG_NAME", "Invalid register name"),
    ("BAD_MEM_ADDR", "Invalid memory address"),
    ("BAD_IMM", "Invalid immediate value"),
    ("IMMSTR_NO_CLOSE", "String is not closed with '\"'"),
    ("FILE_ON_KPROBE", "File offset is not available with kprobe"),
    ("BAD_FILE_OFFS", "Invalid file offset value"),
    ("SYM_ON_UPROBE", "Symbol is not available with uprobe"),
    ("TOO_MANY_OPS", "Dereference is too much nested"),
    ("DEREF_NEED_BRACE", "Dereference needs a brace"),
    ("BAD_DEREF_OFFS", "Invalid dereference offset"),
    ("DEREF_OPEN_BRACE", "Dereference brace is not closed"),
    ("COMM_CANT_DEREF", "$comm can not be dereferenced"),
    ("BAD_FETCH_ARG", "Invalid fetch argument"),
    ("ARRAY_NO_CLOSE", "Array is not closed"),
    ("BAD_ARRAY_SUFFIX", "Array has wrong suffix"),
    ("BAD_ARRAY_NUM", "Invalid array size"),
    ("ARRAY_TOO_BIG", "Array number is too big"),
    ("BAD_TYPE", "Unknown type is specified"),
    ("BAD_STRING", "String accepts only memory argument"),
    ("BAD_SYMSTRING", "Symbol String doesn't accept data/userdata"),
    ("BAD_BITFIELD", "Invalid bitfield"),
    ("ARG_NAME_TOO_LONG", "Argument name is too long"),
    ("NO_ARG_NAME", "Argument name is not specified"),
    ("BAD_ARG_NAME", "Argument name must follow the same rules as C identifiers"),
    ("USED_ARG_NAME", "This argument name is already used"),
    ("ARG_TOO_LONG", "Argument expression is too long"),
    ("NO_ARG_BODY", "No argument expression"),
    ("BAD_INSN_BNDRY", "Probe point is not an instruction boundary"),
    ("FAIL_REG_PROBE", "Failed to register probe event"),
    ("DIFF_PROBE_TYPE", "Probe type is different from existing probe"),
    ("DIFF_ARG_TYPE", "Argument type or name is different from existing probe"),
    ("SAME_PROBE", "There is already the exact same probe event"),
    ("NO_EVENT_INFO", "This requires both group and event name to attach"),
    ("BAD_ATTACH_EVENT", "Attached event does not exist"),
    ("BAD_ATTACH_ARG", "Attached event does not have this field"),
    ("NO_EP_FILTER", "No filter rule after 'if'"),
    ("NOSUP_BTFARG", "BTF is not available or not supported"),
    ("NO_BTFARG", "This variable is not found at this probe point"),
    ("NO_BTF_ENTRY", "No BTF entry for this probe point"),
    ("BAD_VAR_ARGS", "$arg* must be an independent parameter without name etc."),
    ("NOFENTRY_ARGS", "$arg* can be used only on function entry or exit"),
    ("DOUBLE_ARGS", "$arg* can be used only once in the parameters"),
    ("ARGS_2LONG", "$arg* failed because the argument list is too long"),
    ("ARGIDX_2BIG", "$argN index is too big"),
    ("NO_PTR_STRCT", "This is not a pointer to union/structure."),
    ("NOSUP_DAT_ARG", "Non pointer structure/union argument is not supported."),
    ("BAD_HYPHEN", "Failed to parse single hyphen. Forgot '>'?"),
    ("NO_BTF_FIELD", "This field is not found."),
    ("BAD_BTF_TID", "Failed to get BTF type info."),
    ("BAD_TYPE4STR", "This type does not fit for string."),
    ("NEED_STRING_TYPE", "$comm and immediate-string only accepts string type"),
    ("TOO_MANY_ARGS", "Too many arguments are specified"),
    ("TOO_MANY_EARGS", "Too many entry arguments specified"),
    ("EVENT_TOO_BIG", "Event too big (too many fields?)"),
)

# What usertrace adds: faults the kernel reports without an error_log entry, and faults of
# the parts of the language that are ours (symbols, SDT notes, the legacy fetch arguments).
USERTRACE_CATALOG: tuple[tuple[str, str], ...] = (
    ("NOT_A_PROBE", "Not a uprobe definition"),
    ("NO_SUCH_EVENT", "No such probe event"),
    ("BAD_REMOVE", "Invalid probe removal"),
    ("NO_PROGRAM", "No program to look the symbol up in"),
    ("NOT_ELF", "Not an ELF file"),
    ("NO_SYMBOL", "Symbol not found"),
    ("BAD_SYMBOL_OFFS", "Invalid symbol offset"),
    ("NO_SDT_NOTE", "SDT probe not found"),
    ("NO_DATA_SYMBOL", "Data symbol not found"),
    ("LEGACY_ON_PROBE", "This argument is only available on return probes"),
)

MESSAGES: dict[str, str] = dict(CATALOG + USERTRACE_CATALOG)
NUMBERS: dict[str, int] = {code: i for i, (code, _) in enumerate(CATALOG)}
KERNEL_CODES = frozenset(NUMBERS)


class ProbeError(CatalogError):
    """A probe definition the kernel (or usertrace, for what it adds) refuses.

    ``code`` is a key of :data:`CATALOG` or :data:`USERTRACE_CATALOG`; ``message`` its text;
    ``command`` the definition as the kernel rebuilds it for the log (its words joined by one
    space); ``pos`` the caret's column in ``command``; ``errno`` the error of the kernel's
    ``write()``; ``detail`` more words where we know more than the kernel says (the closest
    symbols, ...).  ``logged`` is False where the kernel writes no ``error_log`` entry.
    """

    language = "probe"
    MESSAGES = MESSAGES
    NUMBERS = NUMBERS                 # TP_ERR_*

    def __init__(self, code: str, command: str, pos: int, errno: int = _errno.EINVAL,
                 detail: str = "", logged: bool | None = None):
        self._locate(code, command, pos, errno, detail)
        self.command = command
        self.logged = code in KERNEL_CODES if logged is None else logged
        super().__init__(self.render())

    def caret_column(self) -> int:
        return max(0, min(self.pos, len(self.command)))

    def log_entry(self) -> str:
        """The kernel's ``error_log`` entry without its ``[timestamp] `` prefix."""
        line = f"  Command: {self.command}"
        return (f"{SUBSYSTEM}: error: {self.message}\n{line}\n"
                f"{caret(line, len('  Command: ') + self.caret_column())}\n")

    def render(self) -> str:
        text = self.log_entry().rstrip("\n")
        return f"{text}\n  ({self.detail})" if self.detail else text

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"ProbeError({self.code!r}, pos={self.pos}, command={self.command!r})"
