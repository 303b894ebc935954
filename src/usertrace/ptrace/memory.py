"""Reading a tracee's memory without stopping it: bytes and NUL-terminated strings.

``process_vm_readv`` reads another process's memory in one system call when we may ptrace it;
reads stop at a page boundary so that a string near the end of a mapping is still read.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(_IoVec), ctypes.c_ulong,
                              ctypes.POINTER(_IoVec), ctypes.c_ulong, ctypes.c_ulong]
_process_vm_readv.restype = ctypes.c_ssize_t

PAGE = os.sysconf("SC_PAGE_SIZE")


class MemoryReader:
    """Reads bytes and NUL-terminated strings out of processes we may trace."""

    def __init__(self, max_len: int = 256):
        self.max_len = max_len
        self._buf = ctypes.create_string_buffer(max_len)
        self._local = _IoVec(ctypes.cast(self._buf, ctypes.c_void_p), 0)
        self._remote = _IoVec(0, 0)

    def read(self, pid: int, addr: int, size: int) -> bytes | None:
        """Up to ``size`` bytes at ``addr`` (stopping at the end of a page), or None."""
        size = min(size, self.max_len, PAGE - addr % PAGE)
        self._local.len = size
        self._remote.base = addr
        self._remote.len = size
        n = _process_vm_readv(pid, ctypes.byref(self._local), 1, ctypes.byref(self._remote), 1, 0)
        if n <= 0:
            return None
        return self._buf.raw[:n]

    def read_string(self, pid: int, addr: int, max_len: int | None = None
                    ) -> tuple[bytes, bool] | None:
        """(the string, whether it was cut at max_len), or None when unreadable (or NULL)."""
        if not addr:
            return None
        limit = self.max_len if max_len is None else min(max_len, self.max_len)
        out = b""
        while len(out) < limit:
            chunk = self.read(pid, addr + len(out), limit - len(out))
            if chunk is None:
                return (out, False) if out else None
            nul = chunk.find(b"\0")
            if nul >= 0:
                return out + chunk[:nul], False
            out += chunk
        return out, True
