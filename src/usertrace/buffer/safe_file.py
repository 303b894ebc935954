"""Write an output file whole, then put it in place, without trusting the directory it goes to.

A tracer often runs as root and is told where to write (``record -o OUT``), sometimes into a
directory other users can write to (``/tmp``).  The file is therefore never opened by a name
someone else could have prepared:

* A regular file (or no file yet) is written to an unnamed file in the target directory
  (``O_TMPFILE``), which is then linked under a fresh random name (``linkat``, which never
  follows a symlink and fails if the name exists) and renamed over OUT.  A rename replaces
  whatever entry OUT is -- a file, a symlink planted meanwhile -- and never writes through it.
  Where ``O_TMPFILE`` is missing (an old kernel, a file system without it, no ``/proc``), the
  fresh name is created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` instead.  A crash leaves OUT as it
  was (and, with ``O_TMPFILE``, nothing else).
* A symlink at OUT is followed only if it belongs to the user or to root: a link another user
  planted is refused, never followed.
* A FIFO or the null device is written through: opened without ``O_CREAT``/``O_TRUNC``,
  checked after opening to be what it was, never replaced.  A FIFO nobody reads is refused
  rather than waited on.  The file is assembled in a scratch file first (a trace.dat is
  written with seeks), then copied through.
* Any other special file (a block or character device, a socket) and a directory are refused,
  as is an empty name.

>>> out = OutputFile("trace.dat")          # checked now: the error comes before any work
>>> f = out.open()                          # doctest: +SKIP
>>> f.write(data); out.commit()             # doctest: +SKIP
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
import tempfile

from ..errors import UsertraceError

_COPY_CHUNK = 1 << 20
_MAX_LINKS = 40            # symlinks followed at most (the kernel's MAXSYMLINKS)
_NULL_DEVICE = (1, 3)      # major, minor of /dev/null


class OutputFileError(UsertraceError):
    """An output path that cannot or must not be written: the path and the reason."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write {path}: {reason}" if path else f"cannot write: {reason}")


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _is_null(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == _NULL_DEVICE


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "a special file"


def resolve_output(path: str) -> tuple[str, os.stat_result | None]:
    """Where writing ``path`` goes, and what is there now (None: nothing yet).

    Symlinks are followed only while each belongs to the user or to root.  A link the kernel
    resolves itself (``/proc/self/fd/1`` names a pipe, not a path) ends the walk with what
    it leads to."""
    euid = os.geteuid()
    p = path
    for _ in range(_MAX_LINKS):
        lst = _lstat(p)
        if lst is None or not stat.S_ISLNK(lst.st_mode):
            return p, lst
        if lst.st_uid not in (euid, 0):
            raise OutputFileError(path, f"{p} is a symlink of uid {lst.st_uid}, not followed "
                                        "(another user could have planted it; name the file "
                                        "it leads to)")
        nxt = os.path.join(os.path.dirname(p), os.readlink(p))
        if _lstat(nxt) is None:
            try:
                return p, os.stat(p)              # a link only the kernel resolves
            except FileNotFoundError:
                return nxt, None                  # a dangling link: the file is made there
            except OSError as exc:
                raise OutputFileError(path, exc.strerror) from None
        p = nxt
    raise OutputFileError(path, "too many levels of symbolic links")


class OutputFile:
    """A file to write whole and then put in place: see the module's docstring.

    The checks run when the object is made, so that a bad ``-o`` is refused before anything
    is traced; :meth:`open` gives the stream to write, :meth:`commit` puts the file in place,
    :meth:`discard` drops it.  ``scratch_dir`` is where other temporary files of the same
    output belong (the target's directory, or the temporary directory for a FIFO or the null
    device).
    """

    def __init__(self, path: str | os.PathLike):
        path = os.fspath(path)
        self.path = path
        if not path:
            raise OutputFileError("", "the output file name is empty")
        if "\0" in path:
            raise OutputFileError(path, "the name holds a NUL byte")
        try:
            target, st = resolve_output(path)
        except OSError as exc:
            raise OutputFileError(path, exc.strerror) from None
        self.target = target
        self.through = st is not None and (stat.S_ISFIFO(st.st_mode) or _is_null(st))
        self._dfd = -1
        self._anon = -1              # the O_TMPFILE descriptor
        self._fresh: str | None = None
        self._stream: io.BufferedRandom | None = None
        self._null = st is not None and _is_null(st)
        if self.through:
            self.scratch_dir = tempfile.gettempdir()
            if not os.access(target, os.W_OK):
                raise OutputFileError(path, "permission denied")
            return
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise OutputFileError(path, f"it is {_kind(st)} (usertrace writes a regular file, "
                                        "a FIFO or /dev/null)")
        if target.endswith("/"):
            raise OutputFileError(path, "it names a directory")
        self.scratch_dir = os.path.dirname(os.path.abspath(target))
        self.base = os.path.basename(target)
        try:
            self._dfd = os.open(self.scratch_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OutputFileError(path, f"no directory {self.scratch_dir}") from None
        except OSError as exc:
            raise OutputFileError(path, f"directory {self.scratch_dir}: {exc.strerror}") from None
        if st is not None and not os.access(target, os.W_OK):
            self.close()
            raise OutputFileError(path, "permission denied")
        try:
            self._anon = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666,
                                 dir_fd=self._dfd)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                self.close()
                raise OutputFileError(path, exc.strerror) from None
        if self._anon >= 0 and not os.path.exists(f"/proc/self/fd/{self._anon}"):
            os.close(self._anon)                  # no /proc to link it from: a fresh name
            self._anon = -1
        if self._anon < 0 and not os.access(self.scratch_dir, os.W_OK | os.X_OK):
            self.close()
            raise OutputFileError(path, "permission denied")

    # -- writing ------------------------------------------------------------------------
    def open(self) -> io.BufferedRandom:
        """The stream to write the whole file to (seekable); :meth:`commit` closes it."""
        if self._stream is None:
            if self._null:
                self._stream = os.fdopen(self._open_through(), "wb")   # seeks are no-ops
            elif self.through:
                self._stream = tempfile.TemporaryFile(dir=self.scratch_dir, prefix=".usertrace-")
            else:
                fd = os.dup(self._anon) if self._anon >= 0 else self._create_fresh()
                self._stream = os.fdopen(fd, "w+b")
        return self._stream

    def commit(self) -> None:
        """Put the file written to :meth:`open`'s stream in place (or through); close."""
        stream = self.open()
        try:
            stream.flush()
            if self._null:
                return
            if self.through:
                fd = self._open_through()
                try:
                    _copy_through(stream, fd)
                finally:
                    os.close(fd)
                return
            if self._fresh is None:
                self._link_fresh()
            os.rename(self._fresh, self.base, src_dir_fd=self._dfd, dst_dir_fd=self._dfd)
            self._fresh = None
        except OSError:
            self.discard()
            raise
        finally:
            self.close()

    def _open_through(self) -> int:
        """The FIFO or null device, opened for writing and checked to be what it was."""
        try:
            fd = os.open(self.target, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OutputFileError(self.path, "no process reads the FIFO") from None
            raise
        st = os.fstat(fd)
        if not (stat.S_ISFIFO(st.st_mode) or _is_null(st)):
            os.close(fd)
            raise OutputFileError(self.path, f"it became {_kind(st)} meanwhile")
        os.set_blocking(fd, True)
        return fd

    def discard(self) -> None:
        """Drop what was written; the target stays as it was."""
        if self._fresh is not None:
            try:
                os.unlink(self._fresh, dir_fd=self._dfd)
            except OSError:
                pass
            self._fresh = None
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError:
                pass
            self._stream = None
        for name in ("_anon", "_dfd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    # -- the fresh name -------------------------------------------------------------------
    def _fresh_names(self):
        stem = self.base[:200]
        for _ in range(100):
            yield f".{stem}.{secrets.token_hex(6)}.tmp"
        raise OutputFileError(self.path, f"no free temporary name in {self.scratch_dir}")

    def _create_fresh(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for name in self._fresh_names():
            try:
                fd = os.open(name, flags, 0o666, dir_fd=self._dfd)
            except FileExistsError:
                continue
            self._fresh = name
            return fd

    def _link_fresh(self) -> None:
        for name in self._fresh_names():
            try:
                os.link(f"/proc/self/fd/{self._anon}", name, dst_dir_fd=self._dfd,
                        follow_symlinks=True)
            except FileExistsError:
                continue
            self._fresh = name
            return

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _copy_through(stream, fd: int) -> None:
    """Copy ``stream`` from its start to ``fd`` (a FIFO)."""
    stream.seek(0)
    while True:
        chunk = stream.read(_COPY_CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            n = os.write(fd, view)
            view = view[n:]
