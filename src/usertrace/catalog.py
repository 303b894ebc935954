"""The events usertrace knows before anything is traced: one registry built from every source.

Syscall events come from the generated syscall table, the task events (signals delivered,
tasks ended) from :mod:`usertrace.sources.tasks`; user events and probe events join a
session's registry as they are registered or defined (``usertrace probe``).
"""

from __future__ import annotations

from .events.registry import Registry


def known_events(user_events: bool = False, probes: bool = False,
                 session_dir: str | None = None, syscall_data: bool = False) -> Registry:
    """A fresh registry holding every event the sources define up front; with
    ``user_events``, also the user events registered right now in the session at
    ``session_dir`` (default: the user's); with ``probes``, the probe events it defines
    (``usertrace probe``).  ``syscall_data``: the syscall events with the user-space data the
    newest kernels record (``__<arg>_val`` fields, :mod:`usertrace.sources.syscalls.user_data`);
    without, exactly the running kernel's formats."""
    reg = Registry()
    if user_events:
        for fmt in registered_user_events(session_dir):
            reg.add(fmt)
    try:
        if syscall_data:
            from .sources.syscalls.user_data import build_events
        else:
            from .sources.syscalls.events import build_events
    except ImportError:  # the syscall source is not built on this platform
        build_events = None
    if build_events is not None:
        for sc in build_events():
            reg.add(sc.enter)
            reg.add(sc.exit)
    from .sources.tasks.events import task_formats
    for fmt in task_formats():
        reg.add(fmt)
    if probes:
        for fmt in defined_probe_events(session_dir):
            if reg.get(fmt.system, fmt.name) is None:
                reg.add(fmt)
    return reg


def defined_probe_events(session_dir: str | None = None) -> list:
    """The formats of the probe events defined in the user's session (``usertrace probe``);
    a definition that no longer holds (its file gone) is left out."""
    from .sources.probes.source import ProbeSource
    return ProbeSource([], session_dir=session_dir).formats()


def registered_user_events(session_dir: str | None = None) -> list:
    """The formats of the user events registered in the user's session (none without one).

    Read only: the session is not created, and no tracer is attached to it."""
    from .sources.user_events import abi
    from .sources.user_events.session import close_session, open_session

    try:
        sess = open_session(session_dir, create=False)
    except Exception:     # no session, or not ours: there is nothing to list
        return []
    try:
        return [slot.definition().event_format(abi.ID_BASE + slot.index, slot.multi_id)
                for slot in sess.slots()]
    finally:
        close_session(sess)
