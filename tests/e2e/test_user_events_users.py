"""Two users: one cannot read, inject into or squat the other's session, and cannot make root's
tracer write through a symlink it planted.  The users are made for the test (``useradd``, root
only) and removed after; without root the tests skip.

What each test holds usertrace to is in docs/reliability.md."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from usertrace.cli.context import Context
from usertrace.cli.main import main

SRC = str(Path(__file__).resolve().parents[2] / "src")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"),
                                reason="needs root and useradd to make a second user")


def _python_for_others() -> str | None:
    """An interpreter another user may run (this one may sit in root's home)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        try:
            r = subprocess.run([exe, "-c", "import sys; assert sys.version_info >= (3, 11); "
                                "import usertrace.sources.user_events"],
                               user=65534, group=65534, extra_groups=[], cwd="/",
                               env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
                               capture_output=True)
        except OSError:
            continue
        if r.returncode == 0:
            return exe
    return None


class User:
    def __init__(self, name: str):
        self.name = name
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def run(self, argv, env=None, umask=0o022, **kw) -> subprocess.CompletedProcess:
        full = {"PATH": "/usr/bin:/bin", "PYTHONPATH": SRC, "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": "/tmp", "LANG": "C.UTF-8"}
        full.update(env or {})
        return subprocess.run(argv, user=self.uid, group=self.gid, extra_groups=[],
                              umask=umask, cwd="/tmp", env=full, capture_output=True, text=True,
                              timeout=120, **kw)

    def python(self, code: str, *args, **kw) -> subprocess.CompletedProcess:
        return self.run([PYTHON, "-c", textwrap.dedent(code), *map(str, args)], **kw)

    def usertrace(self, *argv, **kw) -> subprocess.CompletedProcess:
        return self.run([PYTHON, "-m", "usertrace", *argv], **kw)


PYTHON = None


@pytest.fixture(scope="module")
def users():
    """Two users made for these tests (a victim and a neighbour), removed afterwards."""
    global PYTHON
    PYTHON = _python_for_others()
    if PYTHON is None:
        pytest.skip("no Python 3.11 that another user may run")
    made = []
    try:
        for role in ("victim", "other"):
            name = f"ut{role[:3]}{secrets.token_hex(3)}"
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            name], check=True, capture_output=True)
            made.append(name)
        yield User(made[0]), User(made[1])
    finally:
        for name in made:
            try:
                uid = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
            shutil.rmtree(f"/dev/shm/usertrace-{uid}", ignore_errors=True)
            subprocess.run(["userdel", name], capture_output=True)
            try:
                subprocess.run(["groupdel", grp.getgrgid(uid).gr_name], capture_output=True)
            except KeyError:
                pass


@pytest.fixture
def shared():
    """A directory everyone may write to, sticky, as /tmp is (pytest's own are root's only)."""
    import tempfile
    top = Path(tempfile.mkdtemp(prefix="usertrace-users-", dir="/tmp"))
    os.chmod(top, 0o755)
    d = top / "shared"
    d.mkdir()
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(top, ignore_errors=True)


def test_a_squatted_default_session_is_reported_with_what_to_do(users):
    victim, other = users
    default = f"/dev/shm/usertrace-{victim.uid}"
    shutil.rmtree(default, ignore_errors=True)
    r = other.run(["mkdir", "-m", "700", default])            # the squatter comes first
    assert r.returncode == 0, r.stderr
    try:
        r = victim.usertrace("record", "-e", "user_events:app_*", "-o", "/dev/null", "--",
                             "/bin/true")
        assert r.returncode == 1
        assert "Traceback" not in r.stderr
        assert f"belongs to uid {other.uid} ({other.name}), not to you" in r.stderr
        assert f"rm -r {default}" in r.stderr and "USERTRACE_SESSION" in r.stderr
        # the victim's applications go on, their events disabled, with a warning
        r = victim.python("""
            import warnings
            from usertrace.user_events import register
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                ev = register("app_x u32 a")
            print(ev.enabled, ev.emit(1), [str(x.message) for x in w])
        """)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("False False ") and "belongs to uid" in r.stdout
        assert os.listdir(default) == []                      # nothing written there
    finally:
        shutil.rmtree(default, ignore_errors=True)


TRACER = """
import sys, threading
from usertrace.sources.user_events import UserEventsServer
got = []
srv = UserEventsServer(sys.argv[1]).open()
srv.enable("app_*")
print("ready", flush=True)
sys.stdin.readline()
srv.close(drain_into=lambda ts, cpu, tid, pid, comm, rec, fmt: got.append((pid, fmt.name)))
t = srv.totals()
print(sorted(set(got)), len(got), t.refused, sorted(t.reasons.items()), flush=True)
"""


def test_another_user_cannot_read_or_inject_into_a_session(users, shared):
    victim, other = users
    sdir = str(shared / "session")
    tracer = subprocess.Popen([PYTHON, "-c", textwrap.dedent(TRACER), sdir],
                              user=victim.uid, group=victim.gid, extra_groups=[], cwd="/tmp",
                              env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert tracer.stdout.readline() == "ready\n", tracer.stderr.read()
    app = victim.python("""
        import os, sys
        from usertrace.user_events import register
        ev = register("app_own u32 a")
        print(os.getpid(), sum(ev.emit(i) for i in range(10)))
    """, env={"USERTRACE_SESSION": sdir})
    assert app.returncode == 0, app.stderr
    app_pid, sent = map(int, app.stdout.split())
    assert sent == 10
    # The neighbour: cannot list, read or open anything of the session.
    r = other.python("""
        import os, sys
        d = sys.argv[1]
        for what in ("listdir", "registry", "status", "control"):
            try:
                os.listdir(d) if what == "listdir" else open(os.path.join(d, what), "rb")
                print(what, "OPEN")
            except PermissionError:
                print(what, "refused")
    """, sdir)
    assert r.stdout.split() == ["listdir", "refused", "registry", "refused", "status",
                                "refused", "control", "refused"], r.stderr
    # ... nor register or emit there (its events read as disabled), nor attach as a tracer.
    r = other.python("""
        import sys, warnings
        from usertrace.user_events import register
        from usertrace.sources.user_events import UserEventError, UserEventsServer
        warnings.simplefilter("ignore")
        ev = register("app_evil u32 a", session_dir=sys.argv[1])
        print(ev.enabled, sum(ev.emit(i) for i in range(10)))
        try:
            UserEventsServer(sys.argv[1]).open()
        except UserEventError as exc:
            print(exc.code)
    """, sdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "0", "BAD_SESSION"] or \
        r.stdout.split() == ["False", "0", "NO_SESSION"]
    r = other.usertrace("record", "-e", "user_events:app_*", "-o", "/dev/null", "--", "/bin/true",
                        env={"USERTRACE_SESSION": sdir})
    assert r.returncode == 1 and "Traceback" not in r.stderr and sdir in r.stderr
    tracer.stdin.write("\n")
    tracer.stdin.flush()
    out, err = tracer.communicate(timeout=60)
    assert tracer.returncode == 0, err
    assert out.strip() == f"[({app_pid}, 'app_own')] 10 0 []"


def test_umask_777_changes_nothing(users, shared):
    victim, _ = users
    sdir = str(shared / "session")
    r = victim.python("""
        import os, stat, sys
        from usertrace.sources.user_events import UserEventsServer, register
        d = sys.argv[1]
        with UserEventsServer(d) as srv:
            srv.enable("app_u")
            ev = register("app_u u32 a", session_dir=d)
            print(ev.emit(1), srv.drain(lambda *rec: None))
        modes = {n: stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode) for n in os.listdir(d)}
        print(stat.S_IMODE(os.stat(d).st_mode), sorted(set(modes.values())), len(modes))
    """, sdir, umask=0o777)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["True 1", f"{0o700} [{0o600}] 5"]   # 3 files, proc-, ring-


def test_a_session_the_tracer_may_not_open_is_a_clean_error(users, shared):
    victim, _ = users
    closed = shared.parent / "closed"
    closed.mkdir(mode=0o700)                    # root's, and closed to others
    for where in (str(closed / "session"), str(closed)):
        r = victim.usertrace("record", "-e", "user_events:app_*", "-o", "/dev/null", "--",
                             "/bin/true", env={"USERTRACE_SESSION": where})
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert where in r.stderr


def _run_cli(*argv):
    import io
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), Context(stdout=out, stderr=err, env={}))
    return status, err.getvalue()


def test_root_never_writes_through_a_planted_symlink(users, shared, target):
    """The neighbour plants OUT.tmp (the name the old writer used) and OUT itself as symlinks
    to a file of root's: root's record neither follows nor harms them."""
    _, other = users
    precious = shared.parent / "precious"
    precious.write_bytes(b"root's")
    out = shared / "t.dat"
    for name in ("t.dat.tmp", ".t.dat.tmp"):
        r = other.run(["ln", "-s", str(precious), str(shared / name)])
        assert r.returncode == 0, r.stderr
    basic = str(target("cli_basic"))
    status, err = _run_cli("record", "-o", str(out), "--", basic, "1", "0")
    assert status == 0, err
    assert precious.read_bytes() == b"root's" and out.stat().st_uid == 0
    assert all(os.path.islink(shared / n) for n in ("t.dat.tmp", ".t.dat.tmp"))
    out.unlink()
    r = other.run(["ln", "-s", str(precious), str(out)])
    assert r.returncode == 0, r.stderr
    status, err = _run_cli("record", "-o", str(out), "--", basic, "1", "0")
    assert status == 1 and f"symlink of uid {other.uid}, not followed" in err
    assert precious.read_bytes() == b"root's" and os.path.islink(out)


def test_dev_null_as_output_is_never_replaced(target):
    before = os.stat("/dev/null")
    status, err = _run_cli("record", "-o", "/dev/null", "--", str(target("cli_basic")), "1", "0")
    assert status == 0, err
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino,
                                                                           before.st_rdev)
