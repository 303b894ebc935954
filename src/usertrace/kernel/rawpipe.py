"""Raw ring-buffer pages of a tracefs instance, from ``per_cpu/cpuN/trace_pipe_raw``.

Reading ``trace_pipe_raw`` consumes: each read(2) of one sub-buffer's size returns one page
in the kernel's format (:mod:`usertrace.buffer.layout`), the page the kernel is still
writing as a copy of what it holds so far.  Opened with ``O_NONBLOCK`` the file answers
EAGAIN once the cpu's buffer is empty.  A read must ask for a whole sub-buffer: a shorter
one splits a page, and the rest comes out as the next "page".

splice(2) from the file moves only full pages (the kernel hands its pages over, no copy),
and answers EAGAIN when only the page being written is left: :class:`CpuPipe` takes full
pages that way while tracing goes on, and the last, partial pages with read(2) at the end.
A blocking read returns as soon as any event is there; poll(2) says "readable" once the
instance's ``buffer_percent`` of the buffer is full (0: any event).

>>> with Instance() as inst:                                  # doctest: +SKIP
...     inst.enable("syscalls", "sys_enter_getppid")
...     os.getppid()
...     layout = page_layout(inst)
...     pages = read_all_pages(inst, layout)                   # {cpu: [page, ...]}
...     events = list(merge_events(pages, layout))             # [(ts, cpu, payload), ...]
"""

from __future__ import annotations

import errno
import fcntl
import os

from usertrace.buffer.layout import PageLayout, RingBufferError
from usertrace.events.records import NATIVE, Abi

from .tracefs import Instance, TracefsError


def page_layout(instance: Instance, abi: Abi = NATIVE) -> PageLayout:
    """The page layout of ``instance``, from its ``events/header_page`` (which shows the
    instance's sub-buffer size); the byte order is the running kernel's, ``abi``."""
    try:
        text = instance.read("events/header_page")
    except OSError as exc:
        raise TracefsError(f"{instance.path}/events/header_page: {exc.strerror}") from None
    try:
        return PageLayout.from_header_page(text, abi)
    except RingBufferError as exc:
        raise TracefsError(f"{instance.path}/events/header_page: {exc}") from None


def cpu_list(instance: Instance) -> list[int]:
    """The cpus that have a ``per_cpu/cpuN`` directory in ``instance``."""
    try:
        names = os.listdir(instance.path / "per_cpu")
    except OSError as exc:
        raise TracefsError(f"{instance.path}/per_cpu: {exc.strerror}") from None
    return sorted(int(n[3:]) for n in names if n.startswith("cpu") and n[3:].isdigit())


def read_cpu_pages(instance: Instance, cpu: int, layout: PageLayout | None = None,
                   max_pages: int | None = None) -> list[bytes]:
    """Consume the pages of one cpu's buffer, oldest first, until it is empty (or
    ``max_pages`` were read)."""
    layout = layout or page_layout(instance)
    size = layout.page_size
    path = instance.path / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise TracefsError(f"{path}: {exc.strerror}") from None
    pages: list[bytes] = []
    try:
        while max_pages is None or len(pages) < max_pages:
            page = _read_page(fd, size, path)
            if page is None:
                break
            pages.append(page)
    finally:
        os.close(fd)
    return pages


def _read_page(fd: int, size: int, path) -> bytes | None:
    """One page, or None at the end; a short read is completed by the reads after it."""
    chunks: list[bytes] = []
    have = 0
    while have < size:
        try:
            chunk = os.read(fd, size - have)
        except OSError as exc:        # (os.read retries EINTR itself)
            if exc.errno == errno.EAGAIN:
                break
            raise TracefsError(f"{path}: {exc.strerror}") from None
        if not chunk:
            break
        chunks.append(chunk)
        have += len(chunk)
    if not have:
        return None
    if have < size:
        raise TracefsError(f"{path}: the buffer ended inside a page ({have} of {size} bytes)")
    return b"".join(chunks)


def read_all_pages(instance: Instance, layout: PageLayout | None = None) -> dict[int, list[bytes]]:
    """Consume the pages of every cpu's buffer: ``{cpu: [page, ...]}``."""
    layout = layout or page_layout(instance)
    return {cpu: read_cpu_pages(instance, cpu, layout) for cpu in cpu_list(instance)}


class CpuPipe:
    """One cpu's ``trace_pipe_raw``, opened non-blocking: :meth:`full_pages` by splice,
    :meth:`read_page` for what is left (a partial page too).  ``fileno()`` is for poll."""

    PIPE_SIZE = 1 << 18               # bytes in flight per splice: 64 pages of 4 KiB

    def __init__(self, instance: Instance, cpu: int, page_size: int):
        self.cpu = cpu
        self.page_size = page_size
        self.path = instance.path / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw"
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise TracefsError(f"{self.path}: {exc.strerror}") from None
        self._pipe: tuple[int, int] | None = None

    def fileno(self) -> int:
        return self.fd

    def full_pages(self) -> bytes:
        """The full pages there are now, oldest first (up to PIPE_SIZE bytes); b"" when
        none (the page being written stays in the kernel)."""
        if self._pipe is None:
            r, w = os.pipe()
            try:
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.PIPE_SIZE)
            except OSError:
                pass                  # the default pipe size: fewer pages per splice
            self._pipe = (r, w)
        r, w = self._pipe
        try:
            n = os.splice(self.fd, w, self.PIPE_SIZE, flags=os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise TracefsError(f"{self.path}: splice: {exc.strerror}") from None
        chunks, have = [], 0
        while have < n:
            chunk = os.read(r, n - have)
            chunks.append(chunk)
            have += len(chunk)
        return b"".join(chunks)

    def read_page(self) -> bytes | None:
        """The oldest page (the one being written: what it holds so far), or None when the
        cpu's buffer is empty."""
        return _read_page(self.fd, self.page_size, self.path)

    def close(self) -> None:
        for fd in (self.fd, *(self._pipe or ())):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd = -1
        self._pipe = None
