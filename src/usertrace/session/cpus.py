"""Which trace buffer is which: the machine's cpus, then buffers that sources ask for.

A trace.dat has one buffer per "cpu".  Records of a source that runs on the tracer's own
threads (the user events drain: records of many processes, in batches) go to a buffer of
their own, so that every buffer stays in time order and readers merge them by time, as the
kernel's ``trace`` file merges its per-cpu buffers::

    >>> cpus = CpuMap(2)
    >>> cpus.reserve("user_events")
    2
    >>> cpus.nbuffers, cpus.owner(2)
    (3, 'user_events')
"""

from __future__ import annotations

import os


class CpuMap:
    """Buffers 0..ncpus-1 are the machine's cpus; reserved buffers follow."""

    def __init__(self, ncpus: int | None = None):
        self.ncpus = ncpus or os.cpu_count() or 1
        self._extra: list[str] = []

    def reserve(self, owner: str) -> int:
        """A buffer of its own for ``owner``; the same one when asked again."""
        if owner in self._extra:
            return self.ncpus + self._extra.index(owner)
        self._extra.append(owner)
        return self.ncpus + len(self._extra) - 1

    @property
    def nbuffers(self) -> int:
        return self.ncpus + len(self._extra)

    def owner(self, index: int) -> str:
        """``"cpu N"`` or the name of the source that reserved it."""
        if index < self.ncpus:
            return f"cpu {index}"
        return self._extra[index - self.ncpus]
