"""The compiled ptrace of the hot paths (usertrace.ptrace._ptrace) answers as ctypes does."""

import ctypes
import errno
import os
import signal

import pytest

from usertrace.ptrace import libc as L

try:
    from usertrace.ptrace import _ptrace
except ImportError:                       # pragma: no cover - depends on the build
    _ptrace = None

needs_compiled = pytest.mark.skipif(_ptrace is None,
                                    reason="the _ptrace extension is not built (no compiler?)")


@pytest.fixture
def stopped_child():
    """A child stopped under this process's ptrace (TRACEME + SIGSTOP), killed after."""
    pid = os.fork()
    if pid == 0:                          # pragma: no cover - the child
        try:
            ctypes.CDLL(None).ptrace(0, 0, 0, 0)
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSTOPPED(status)
    yield pid
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def implementations():
    found = [("ctypes", L.ctypes_ptrace(), ctypes.get_errno)]
    if _ptrace is not None:
        found.append(("compiled", _ptrace.ptrace, _ptrace.last_errno))
    return found


def test_the_hot_paths_use_the_compiled_call_where_it_is_built():
    if os.environ.get("USERTRACE_PURE_PYTHON", "") not in ("", "0"):
        assert L.FAST_PTRACE == "ctypes"
    elif _ptrace is None:
        assert L.FAST_PTRACE == "ctypes"
    else:
        assert L.FAST_PTRACE == "compiled" and L.fast_ptrace is _ptrace.ptrace


@needs_compiled
def test_registers_and_peeks_equal_ctypes(stopped_child):
    got = {}
    for name, call, _ in implementations():
        regs = ctypes.create_string_buffer(L.USER_REGS_SIZE)
        assert call(L.PTRACE_GETREGS, stopped_child, 0, regs) == 0
        if name == "compiled":                     # a bytearray is a buffer too
            raw = bytearray(L.USER_REGS_SIZE)
            assert call(L.PTRACE_GETREGS, stopped_child, 0, raw) == 0
            assert bytes(raw) == regs.raw
        word = call(L.PTRACE_PEEKUSER, stopped_child, L.USER_REGS_ORIG_RAX, 0)
        got[name] = (regs.raw, word)
    assert got["compiled"] == got["ctypes"]
    # the word peeked is the register read: orig_rax of the stopped kill() (62)
    assert got["compiled"][1] == int.from_bytes(got["compiled"][0][120:128], "little", signed=True)


@needs_compiled
def test_setregs_writes_what_getregs_reads(stopped_child):
    regs = bytearray(L.USER_REGS_SIZE)
    assert _ptrace.ptrace(L.PTRACE_GETREGS, stopped_child, 0, regs) == 0
    changed = bytearray(regs)
    changed[13 * 8:14 * 8] = (0x1234).to_bytes(8, "little")       # rsi
    assert _ptrace.ptrace(L.PTRACE_SETREGS, stopped_child, 0, changed) == 0
    back = ctypes.create_string_buffer(L.USER_REGS_SIZE)
    assert L.ctypes_ptrace()(L.PTRACE_GETREGS, stopped_child, 0, back) == 0
    assert back.raw[13 * 8:14 * 8] == (0x1234).to_bytes(8, "little")


@needs_compiled
def test_failures_give_minus_one_and_errno():
    not_ours = 1                          # init: not our tracee
    for name, call, err in implementations():
        assert call(L.PTRACE_GETREGS, not_ours, 0, ctypes.create_string_buffer(256)) == -1
        assert err() == errno.ESRCH, name
    with pytest.raises(TypeError):
        _ptrace.ptrace(L.PTRACE_CONT, 1, 0)
    with pytest.raises(BufferError):      # read-only data: the kernel would write into it
        _ptrace.ptrace(L.PTRACE_GETREGS, 1, 0, b"x" * 256)


def test_poke_word_writes_eight_bytes_on_either_path(stopped_child, monkeypatch):
    regs = ctypes.create_string_buffer(L.USER_REGS_SIZE)
    assert L.ctypes_ptrace()(L.PTRACE_GETREGS, stopped_child, 0, regs) == 0
    sp = int.from_bytes(regs.raw[19 * 8:20 * 8], "little")
    slot = sp - 128                                   # below the stack pointer: free to use
    for path, word in (("ctypes", 0xFEDC_BA98_7654_3210), ("compiled", 0x0123_4567_89AB_CDEF)):
        if path == "compiled" and _ptrace is None:
            continue
        if path == "ctypes":
            monkeypatch.setattr(L, "fast_ptrace", L.ctypes_ptrace())
        monkeypatch.setattr(L, "FAST_PTRACE", path)
        if path == "compiled":
            monkeypatch.setattr(L, "fast_ptrace", _ptrace.ptrace)
        assert L.poke_word(stopped_child, slot, word)
        with open(f"/proc/{stopped_child}/mem", "rb") as f:
            f.seek(slot)
            assert f.read(8) == word.to_bytes(8, "little")
    assert not L.poke_word(stopped_child, 0, 1)       # address 0: refused, not a crash
