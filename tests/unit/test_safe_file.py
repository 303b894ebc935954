"""Output files written without trusting their directory: a planted symlink is never followed,
a device is never replaced, a FIFO or /dev/null is written through, a failed write leaves the
old file as it was and nothing next to it."""

from __future__ import annotations

import os
import socket
import stat
import threading

import pytest

from usertrace.buffer import safe_file
from usertrace.buffer.safe_file import OutputFile, OutputFileError
from usertrace.errors import UsertraceError


def write(path, data: bytes) -> None:
    out = OutputFile(path)
    out.open().write(data)
    out.commit()


def listing(d) -> list[str]:
    return sorted(os.listdir(d))


@pytest.fixture
def planted(tmp_path):
    """A file another user would like root to overwrite, and a symlink to it at OUT.tmp
    (the name the old writer used) and at a few other likely names."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    d = tmp_path / "out"
    d.mkdir()
    for name in ("t.dat.tmp", ".t.dat.tmp", "t.dat~"):
        os.symlink(victim, d / name)
    return d, victim


def test_planted_symlinks_next_to_the_output_are_not_followed(planted):
    d, victim = planted
    before = listing(d)
    write(d / "t.dat", b"trace")
    assert victim.read_bytes() == b"precious"
    assert (d / "t.dat").read_bytes() == b"trace"
    assert listing(d) == sorted(before + ["t.dat"])            # nothing else left behind
    assert all(os.path.islink(d / n) for n in before)


def test_fallback_without_o_tmpfile_skips_a_planted_fresh_name(planted, monkeypatch):
    """Without O_TMPFILE the fresh name is made with O_EXCL|O_NOFOLLOW: a symlink planted at
    the name it would pick first is skipped, never written through."""
    d, victim = planted
    real_open = os.open

    def no_tmpfile(path, flags, *args, **kw):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(95, "Operation not supported")
        return real_open(path, flags, *args, **kw)

    tokens = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(safe_file.os, "open", no_tmpfile)
    monkeypatch.setattr(safe_file.secrets, "token_hex", lambda n: next(tokens))
    os.symlink(victim, d / ".t.dat.aaaaaaaaaaaa.tmp")             # the first guess is taken
    write(d / "t.dat", b"trace")
    assert victim.read_bytes() == b"precious"
    assert (d / "t.dat").read_bytes() == b"trace"
    assert os.path.islink(d / ".t.dat.aaaaaaaaaaaa.tmp")
    assert not os.path.exists(d / ".t.dat.bbbbbbbbbbbb.tmp")     # renamed over t.dat


def test_linked_fresh_name_skips_a_taken_name(planted, monkeypatch):
    d, victim = planted
    tokens = iter(["cccccccccccc", "dddddddddddd"])
    monkeypatch.setattr(safe_file.secrets, "token_hex", lambda n: next(tokens))
    os.symlink(victim, d / ".t.dat.cccccccccccc.tmp")
    write(d / "t.dat", b"trace")
    assert victim.read_bytes() == b"precious"
    assert (d / "t.dat").read_bytes() == b"trace"


def test_an_existing_file_is_replaced_and_a_failed_write_leaves_it(tmp_path):
    out = tmp_path / "t.dat"
    out.write_bytes(b"old")
    f = OutputFile(out)
    f.open().write(b"half a new fi")
    f.discard()
    assert out.read_bytes() == b"old" and listing(tmp_path) == ["t.dat"]
    write(out, b"new")
    assert out.read_bytes() == b"new" and listing(tmp_path) == ["t.dat"]


def test_the_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write(tmp_path / "t.dat", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "t.dat").st_mode) == 0o640


def test_own_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "data" / "t.dat"
    real.parent.mkdir()
    real.write_bytes(b"old")
    os.symlink(real, tmp_path / "t.dat")
    write(tmp_path / "t.dat", b"new")
    assert os.path.islink(tmp_path / "t.dat") and real.read_bytes() == b"new"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a symlink of another user")
def test_symlink_of_another_user_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, tmp_path / "t.dat")
    os.lchown(tmp_path / "t.dat", 4242, 4242)
    with pytest.raises(OutputFileError, match="symlink of uid 4242, not followed"):
        OutputFile(tmp_path / "t.dat")
    assert victim.read_bytes() == b"precious"


def test_dev_null_is_written_through_never_replaced():
    before = os.stat("/dev/null")
    write("/dev/null", b"x" * 100_000)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_mode) == (before.st_ino, before.st_rdev,
                                                            before.st_mode)


def test_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)    # a reader, there before the commit
    keep = os.open(fifo, os.O_WRONLY)                    # so that it never reads an early EOF
    os.set_blocking(rfd, True)
    size = 300_000                                       # more than a pipe holds
    got = bytearray()

    def read():
        while len(got) < size:
            got.extend(os.read(rfd, size - len(got)))

    th = threading.Thread(target=read)
    th.start()
    write(fifo, b"a" * size)
    th.join(30)
    os.close(keep)
    os.close(rfd)
    assert got == b"a" * size
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_fifo_without_reader_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = OutputFile(fifo)
    out.open()
    with pytest.raises(OutputFileError, match="no process reads the FIFO"):
        out.commit()


def _socket_file(tmp_path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "sock"))
    s.close()
    return tmp_path / "sock"


BAD = [
    # path                                          the fault
    (lambda t: "",                                   "the output file name is empty"),
    (lambda t: t,                                    "it is a directory"),
    (lambda t: str(t) + "/",                         "it is a directory"),
    (lambda t: "/dev/zero",                          "it is a character device"),
    (lambda t: t / "no" / "dir" / "t.dat",           "no directory"),
    (lambda t: "/proc/self/status",                  None),     # a regular file on /proc
    (_socket_file,                                   "it is a socket"),
    (lambda t: "a\0b",                               "NUL byte"),
]


@pytest.mark.parametrize("make,says", BAD)
def test_bad_output_paths_are_refused_before_any_work(tmp_path, make, says):
    path = make(tmp_path)
    if says is None:                     # /proc refuses new files: O_TMPFILE and O_EXCL alike
        with pytest.raises(OutputFileError):
            write(path, b"x")
        return
    with pytest.raises(OutputFileError, match=says) as info:
        OutputFile(path)
    assert isinstance(info.value, UsertraceError)
    if path == "/dev/zero":
        assert stat.S_ISCHR(os.stat("/dev/zero").st_mode)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory_is_refused(tmp_path):
    d = tmp_path / "ro"
    d.mkdir(mode=0o500)
    with pytest.raises(OutputFileError, match="ermission denied"):
        OutputFile(d / "t.dat")
