"""Starting a command to trace: find it, fork, stop, install a seccomp filter, exec.

The child is made with ``os.fork()``: it must run ``prctl``/``seccomp`` between fork and exec,
which ``posix_spawn`` cannot.  The child stops itself with SIGSTOP; the parent seizes it and
sends SIGCONT (strace's order), so nothing the child does after that escapes the tracer.
Then the child installs the filter (only after it has a tracer: a SECCOMP_RET_TRACE without
one fails the call with ENOSYS) and execs.

What the command gets is what the tracer was given: the environment of
:func:`~usertrace.ptrace.procfs.original_environ` unless told otherwise, the same open file
descriptors (everything Python opens is close-on-exec), the tracer's original CPU
affinity and scheduling policy, and the default action for SIGPIPE and SIGXFSZ, which Python ignores for itself
(as ``subprocess`` restores them).
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import signal
import stat

from . import libc
from .errors import TraceError


def resolve_command(name: str, env: dict | None = None) -> str:
    """The path that ``name`` runs, found in PATH as strace finds it; TraceError if none."""
    if not name:
        raise TraceError("empty command name", errno_mod.ENOENT)
    if "/" in name:
        path = name
    else:
        path_var = None
        if env is not None:
            path_var = env.get(b"PATH", env.get("PATH") if isinstance(env, dict) else None)
            if isinstance(path_var, bytes):
                path_var = os.fsdecode(path_var)
        if path_var is None:
            path_var = os.environ.get("PATH", os.defpath)
        path = ""
        for d in path_var.split(":"):
            cand = os.path.join(d or os.getcwd(), name)
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                path = cand
                break
        if not path:
            raise TraceError(f"Cannot find executable '{name}'", errno_mod.ENOENT)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TraceError(f"Cannot stat '{path}': {exc.strerror}", exc.errno) from None
    if stat.S_ISDIR(st.st_mode):
        raise TraceError(f"Cannot execute '{path}': Is a directory", errno_mod.EISDIR)
    if not os.access(path, os.X_OK) or not st.st_mode & 0o111:
        raise TraceError(f"Cannot execute '{path}': Permission denied", errno_mod.EACCES)
    return path


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _install_seccomp(fprog: _SockFprog) -> None:
    if libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(libc.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.syscall(libc.SYS_SECCOMP, libc.SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog)) != 0:
        raise OSError(libc.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER)")


def spawn_stopped(path: str, argv: list[str], env, cwd: str | None = None,
                  seccomp_filter: bytes | None = None, affinity: set[int] | None = None,
                  policy: tuple | None = None) -> tuple[int, int]:
    """Fork a child that stops itself (SIGSTOP), then, once continued, execs ``path``.

    Returns ``(pid, errfd)`` with the child stopped: the caller seizes it and sends SIGCONT.
    ``errfd`` reads ``b"errno:step"`` if the child fails before its exec, EOF once the exec
    succeeded (the pipe is close-on-exec).  With ``seccomp_filter`` (struct sock_filter
    bytes), the child installs it after it is continued and just before the exec.
    """
    fprog = None
    if seccomp_filter is not None:
        if len(seccomp_filter) % 8:
            raise ValueError("a seccomp filter is a whole number of 8-byte instructions")
        fbuf = ctypes.create_string_buffer(seccomp_filter, len(seccomp_filter))
        fprog = _SockFprog(len(seccomp_filter) // 8, ctypes.addressof(fbuf))
    rfd, wfd = os.pipe()          # both close-on-exec
    argv_b = [os.fsencode(a) for a in argv]
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(rfd)
        os.close(wfd)
        raise TraceError(f"cannot fork: {exc.strerror}", exc.errno) from None
    if pid == 0:  # the child: no return from here
        step = "setup"
        try:
            os.close(rfd)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            if affinity:
                os.sched_setaffinity(0, affinity)
            if policy is not None and os.sched_getscheduler(0) != policy[0]:
                os.sched_setscheduler(0, *policy)
            if cwd is not None:
                step = "chdir"
                os.chdir(cwd)
            os.kill(os.getpid(), signal.SIGSTOP)
            if fprog is not None:
                step = "seccomp"
                _install_seccomp(fprog)
            step = "exec"
            os.execve(path, argv_b, env)
        except BaseException as exc:  # noqa: BLE001 - report anything, then die
            code = getattr(exc, "errno", None) or 0
            try:
                os.write(wfd, f"{code}:{step}".encode())
            finally:
                os._exit(127)
    os.close(wfd)
    while True:
        try:
            wpid, status = os.waitpid(pid, os.WUNTRACED)
        except InterruptedError:
            continue
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(rfd)
            raise
        break
    if not os.WIFSTOPPED(status):
        message = read_child_error(rfd)
        os.close(rfd)
        raise TraceError(f"cannot run '{path}': {message or 'child ended before exec'}")
    return pid, rfd


def read_child_error(rfd: int) -> str:
    """The child's report of a failure before its exec ('' when it exec'd)."""
    try:
        raw = os.read(rfd, 256)
    except OSError:           # nothing written yet (non-blocking), or closed
        return ""
    if not raw:
        return ""
    code, _, step = raw.decode(errors="replace").partition(":")
    try:
        reason = os.strerror(int(code)) if int(code) else "failed"
    except ValueError:
        reason = raw.decode(errors="replace")
    return f"{step}: {reason}"


class FirstInterrupt:
    """The first SIGINT while a launched command runs is the command's, as with ``strace -o
    FILE COMMAND``: the command gets it (from the terminal, which sends it to the whole
    foreground process group, or from the tracer when it came from elsewhere) and tracing
    goes on while it cleans up.  A second SIGINT is the tracer's."""

    def __init__(self):
        self.used = False

    def take(self, sig: int, pid: int | None, running: bool) -> bool:
        """True when ``sig`` was the command's (the caller goes on tracing)."""
        if sig != signal.SIGINT or self.used or pid is None or not running:
            return False
        self.used = True
        if not _terminal_sent_it_to(pid):
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass
        return True


def _terminal_sent_it_to(pid: int) -> bool:
    """Did a terminal's SIGINT (Ctrl-C) reach ``pid`` too?  Yes when we are in the foreground
    process group of our terminal and ``pid`` is in that group as well."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        foreground = os.tcgetpgrp(fd)
        return foreground == os.getpgrp() == os.getpgid(pid)
    except OSError:
        return False
    finally:
        os.close(fd)
