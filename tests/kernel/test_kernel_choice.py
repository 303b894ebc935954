"""Which backend a recording gets, and why (Recorder(backend=...)): a table of requests, with
the reason that keeps the kernel from serving them marked.  Nothing is traced: choosing
reads the kernel's event ids, and makes no instance."""

import os

import pytest

from usertrace.events.registry import Consumer
from usertrace.kernel import backend as kernel_backend
from usertrace.kernel.tracefs import why_no_tracefs
from usertrace.output.stats import SyscallStats
from usertrace.session import EventSpec, Recorder, SessionError

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _need_kernel():
    reason = why_no_tracefs()
    if reason:
        pytest.skip(reason)


def S(pattern, filt=None):
    return EventSpec(pattern, filt)


# (specs, Recorder options, the reason auto falls back to ptrace; None: the kernel serves)
CASES = [
    ([S("syscalls")], {}, None),
    ([S("sys_exit_openat", "ret < 0")], {}, None),
    ([S("sys_enter_openat", 'filename.ustring ~ "/etc/*"')], {},
     "the filter of syscalls:sys_enter_openat reads a string"),
    ([S("sys_enter_openat")], {"strings": True, "consumers": Consumer.STREAM},
     "strings in the records"),
    ([S("syscalls")], {"seccomp": False}, "--no-seccomp is an option of the ptrace backend"),
    ([S("user_events:app_*")], {}, "no syscall or probe event is enabled"),
    ([S("sys_enter_openat")], {"stats": SyscallStats()}, "--summary times openat"),
    ([S("sys_*_openat", "ret < 0"), S("sys_enter_openat")], {"stats": SyscallStats()},
     "--summary counts every call"),
    ([S("sys_enter_openat")], {"stats": SyscallStats(), "consumers": Consumer.OTHER}, None),
    ([S("sys_*_openat")], {"stats": SyscallStats()}, None),
]


@pytest.mark.parametrize("specs,options,why", CASES,
                         ids=[f"{c[0][0].pattern}-{i}" for i, c in enumerate(CASES)])
def test_auto_chooses_and_says_why(specs, options, why, tmp_path):
    options.setdefault("strings", False)          # the kernel records no strings
    rec = Recorder(specs, backend="auto", session_dir=str(tmp_path / "s"), **options)
    if why is None:
        assert (rec.backend, rec.kernel is not None) == ("kernel", True)
        assert rec.backend_reason.startswith("root and a tracefs")
        return
    assert (rec.backend, rec.kernel) == ("ptrace", None)
    assert rec.backend_reason.startswith(why)
    with pytest.raises(SessionError, match="the kernel backend cannot run: " + why[:10]):
        Recorder(specs, backend="kernel", session_dir=str(tmp_path / "s"), **options)


def test_kernel_ids_in_the_session():
    rec = Recorder([S("sys_enter_getppid")], backend="kernel")
    (state,) = rec.session.states.values()
    with open(rec.kernel.root / "events/syscalls/sys_enter_getppid/id") as f:
        assert state.format.id == int(f.read())


def test_an_event_the_kernel_lacks(monkeypatch):
    real = kernel_backend.kernel_registry

    def without_getppid(root, registry=None):
        reg, _ = real(root, registry)
        return reg, {"syscalls:sys_enter_getppid"}
    monkeypatch.setattr(kernel_backend, "kernel_registry", without_getppid)
    rec = Recorder([S("sys_enter_getppid")], strings=False)
    assert rec.backend == "ptrace"
    assert rec.backend_reason == "the kernel has no event syscalls:sys_enter_getppid"
    assert Recorder([S("sys_enter_getpid")], strings=False).backend == "kernel"


def test_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    rec = Recorder([S("syscalls")], strings=False)
    assert (rec.backend, rec.backend_reason) == ("ptrace", "needs root for tracefs")
    with pytest.raises(SessionError, match="^the kernel backend cannot run: needs root"):
        Recorder([S("syscalls")], backend="kernel")
    with pytest.raises(SessionError, match=r"^-a \(every process\) needs the kernel backend"):
        Recorder([S("syscalls")], system_wide=True)


def test_ptrace_asked_for():
    rec = Recorder([S("syscalls")], backend="ptrace")
    assert (rec.backend, rec.backend_reason, rec.kernel) == ("ptrace", "asked for", None)
    with pytest.raises(SessionError, match="give one of auto, kernel, ptrace"):
        Recorder([S("syscalls")], backend="bpf")
