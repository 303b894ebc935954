"""User event sessions: a private directory, one registry for every process, busy and persist,
patterns that enable events registered later, the status bytes, and refusing unsafe sessions."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from usertrace.sources.user_events import (CONSUMER_OTHER, CONSUMER_STREAM, CONSUMER_TRACE,
                                           UserEventError, UserEventsServer, abi, dynamic_events,
                                           read_dynamic_events, register, status_text)
from usertrace.sources.user_events.session import normalize_pattern

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def sdir(tmp_path):
    return str(tmp_path / "session")


def run_py(code: str, sdir: str) -> str:
    """Run ``code`` in a fresh Python with the library; returns its stdout."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), USERTRACE_SESSION=sdir)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_session_is_made_private(sdir):
    ev = register("priv u8 x", session_dir=sdir)
    assert oct(os.stat(sdir).st_mode & 0o777) == "0o700"
    for name in os.listdir(sdir):
        st = os.stat(os.path.join(sdir, name))
        assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o600), name
    assert sorted(n for n in os.listdir(sdir) if not n.startswith("proc-")) == \
        ["control", "registry", "status"]
    ev.unregister()


def _other_owner(path):
    os.chown(path, 65534, 65534)


def _group_readable(path):
    os.chmod(path, 0o750)


UNSAFE = [
    ("directory owned by another user", lambda d: _other_owner(d),
     "belongs to uid 65534 (nobody), not to you"),
    ("directory readable by the group", lambda d: _group_readable(d), "mode 0750"),
    ("registry owned by another user", lambda d: _other_owner(os.path.join(d, "registry")),
     "file belongs to uid 65534"),
    ("status readable by others", lambda d: os.chmod(os.path.join(d, "status"), 0o604),
     "mode 0604"),
]


@pytest.mark.parametrize("what,spoil,says", UNSAFE, ids=[u[0] for u in UNSAFE])
def test_unsafe_sessions_are_refused(sdir, what, spoil, says):
    if os.geteuid() != 0 and "owned" in what:
        pytest.skip("needs root to give a file away")
    with UserEventsServer(sdir):
        pass
    spoil(sdir)
    with pytest.raises(UserEventError) as exc:
        UserEventsServer(sdir).open()
    assert exc.value.code == "BAD_SESSION" and says in str(exc.value)
    # An application is not hurt: its events are disabled, with a warning.
    with pytest.warns(RuntimeWarning, match="disabled"):
        ev = register("victim u32 x", session_dir=sdir)
    assert not ev.enabled and ev.emit(1) is False


def test_symlinks_are_refused(tmp_path):
    real = tmp_path / "real"
    with UserEventsServer(str(real)):
        pass
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(UserEventError, match="symlink"):
        UserEventsServer(str(link)).open()
    # A file of the session replaced by a symlink (to a file the attacker made).
    os.rename(real / "status", tmp_path / "status.saved")
    os.symlink(tmp_path / "status.saved", real / "status")
    with pytest.raises(UserEventError, match="symlink"):
        UserEventsServer(str(real)).open()


def test_no_session_possible_means_disabled(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(RuntimeWarning):
        ev = register("nowhere u32 x; __data_loc char[] s", session_dir=str(blocker / "sub"))
    assert (ev.enabled, ev.status, ev.emit(1, "x"), ev.emit(x=1, s="y")) == (False, 0, False, False)
    ev.unregister()


def test_default_directory(monkeypatch, tmp_path):
    from usertrace.sources.user_events.session import default_session_dir
    monkeypatch.delenv("USERTRACE_SESSION", raising=False)
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert default_session_dir() == str(xdg / "usertrace")
    xdg.chmod(0o755)                                    # not a proper runtime dir
    assert default_session_dir() == f"/dev/shm/usertrace-{os.geteuid()}"
    monkeypatch.setenv("USERTRACE_SESSION", "/somewhere")
    assert default_session_dir() == "/somewhere"


# -- one registry for every process ---------------------------------------------------------------
def test_same_definition_same_event_in_every_process(sdir):
    ev = register("shared u32 a; __data_loc char[] s", session_dir=sdir)
    out = run_py("""
        from usertrace.sources.user_events import register
        print(register("shared u32 a;__data_loc char[] s").index,
              register("other u8 b").index)
    """, sdir)
    assert out.split() == [str(ev.index), str(ev.index + 1)]
    ev.unregister()


def test_other_fields_under_a_taken_name(sdir):
    ev = register("taken u32 a", session_dir=sdir)
    with pytest.raises(UserEventError) as exc:
        register("taken u64 a", session_dir=sdir)
    assert (exc.value.code, exc.value.errno) == ("NAME_IN_USE", errno.EADDRINUSE)
    assert "taken u32 a" in str(exc.value)
    ev.unregister()
    # Once nobody holds it the name is free again (the kernel's auto-delete).
    register("taken u64 a", session_dir=sdir).unregister()


def test_multi_format_events(sdir):
    a = register("mf u32 a", multi_format=True, session_dir=sdir)
    b = register("mf u64 b", multi_format=True, session_dir=sdir)
    c = register("mf u32 a", multi_format=True, session_dir=sdir)
    plain = register("mf u8 z", session_dir=sdir)           # single-format names do not clash
    assert a.index == c.index != b.index != plain.index
    with UserEventsServer(sdir) as srv:
        names = sorted(f.full_name for f in srv.formats())
        assert names == ["user_events:mf", "user_events_multi:mf.0", "user_events_multi:mf.1"]
        assert [f.full_name for f in srv.enable("user_events_multi:mf.*")] == \
            ["user_events_multi:mf.0", "user_events_multi:mf.1"]
        assert (a.enabled, b.enabled, plain.enabled) == (True, True, False)
    for e in (a, b, c, plain):
        e.unregister()


def test_delete_busy_and_persist(sdir):
    dynamic_events("u:kept u32 x\nu:gone u8 y", session_dir=sdir)
    assert read_dynamic_events(sdir) == "u:kept u32 x\nu:gone u8 y\n"
    dynamic_events("-:gone", session_dir=sdir)
    held = register("kept u32 x", session_dir=sdir)
    with pytest.raises(UserEventError) as exc:
        dynamic_events("-:user_events/kept", session_dir=sdir)
    assert (exc.value.code, exc.value.errno) == ("BUSY", errno.EBUSY)
    held.unregister()                                       # persistent: it stays
    assert read_dynamic_events(sdir) == "u:kept u32 x\n"
    with UserEventsServer(sdir) as srv:
        srv.enable("kept")
        with pytest.raises(UserEventError, match="busy"):
            dynamic_events("-:kept", session_dir=sdir)       # enabled by a tracer: busy
    with pytest.raises(UserEventError) as exc:
        dynamic_events("-:kept u64 x", session_dir=sdir)    # other fields: no such event
    assert exc.value.code == "NOT_FOUND"
    dynamic_events("-:kept u32 x", session_dir=sdir)
    with pytest.raises(UserEventError) as exc:
        dynamic_events("-:kept", session_dir=sdir)
    assert (exc.value.code, exc.value.errno) == ("NOT_FOUND", errno.ENOENT)
    assert read_dynamic_events(sdir) == ""


def test_events_of_a_dead_process_go_unless_persistent(sdir):
    run_py("""
        from usertrace.sources.user_events import register
        register("transient u32 x"); register("durable u32 x", persist=True)
    """, sdir)
    assert read_dynamic_events(sdir) == "u:durable u32 x\n"
    assert not [n for n in os.listdir(sdir) if n.startswith("proc-") and n != f"proc-{os.getpid()}"]


def test_a_live_process_keeps_its_events(sdir):
    proc = subprocess.Popen(
        [sys.executable, "-c", "from usertrace.sources.user_events import register\n"
         "e = register('alive u32 x'); print(e.index, flush=True); input()"],
        env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), USERTRACE_SESSION=sdir),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        with pytest.raises(UserEventError, match="busy"):
            dynamic_events("-:alive", session_dir=sdir)
        assert read_dynamic_events(sdir) == "u:alive u32 x\n"
    finally:
        proc.communicate("\n", timeout=30)
    assert read_dynamic_events(sdir) == ""


def test_registering_twice_in_one_process_holds_until_both_let_go(sdir):
    a = register("twice u8 x", session_dir=sdir)
    b = register("twice u8 x", session_dir=sdir)
    a.unregister()
    a.unregister()                                          # idempotent
    assert read_dynamic_events(sdir) == "u:twice u8 x\n"
    b.unregister()
    assert read_dynamic_events(sdir) == ""
    assert b.emit(1) is False


# -- patterns and status bytes ---------------------------------------------------------------------
PATTERNS = [
    ("app_*", "*:app_*"), ("user_events", "user_events:*"), ("user_events*", "user_events*:*"),
    ("user_events:app_*", "user_events:app_*"), ("user_events/app_x", "user_events:app_x"),
    ("*:", "*:*"), ("sched", "*:sched"),
]


@pytest.mark.parametrize("given,kept", PATTERNS)
def test_patterns_are_kept_as_system_event_globs(given, kept):
    assert normalize_pattern(given) == kept


def test_enabling_reaches_events_registered_later(sdir):
    early = register("app_early u32 x", session_dir=sdir)
    with UserEventsServer(sdir) as srv:
        assert [f.name for f in srv.enable("app_*")] == ["app_early"]
        srv.enable("user_events:app_late", CONSUMER_STREAM)
        late = register("app_late u32 x", session_dir=sdir)
        other = register("zzz u32 x", session_dir=sdir)
        assert (early.status, late.status, other.status) == (1, 3, 0)
        # ... and in another process, at its registration.
        assert run_py("""
            from usertrace.sources.user_events import register
            e = register("app_child u8 y"); print(e.status, e.enabled)
        """, sdir).split() == ["1", "True"]
        srv.disable("app_*")
        assert (early.status, late.status) == (0, 2)
        srv.enable("*", CONSUMER_OTHER)
        assert (early.status, late.status, other.status) == (0x80, 0x82, 0x80)
        assert early.enabled and other.enabled
        assert "app_late # Used by perf other\n" in status_text(sdir)
    # The tracer went away: every event reads as disabled, the applications go on.
    assert (early.status, late.status, other.status) == (0, 0, 0)
    assert not late.enabled and late.emit(1) is False
    for e in (early, late, other):
        e.unregister()


def test_status_text_as_the_kernel_shows_it(sdir):
    a = register("st_a u8 x", session_dir=sdir)
    b = register("st_b u8 x", session_dir=sdir)
    with UserEventsServer(sdir) as srv:
        srv.enable("st_b", CONSUMER_TRACE)
        assert status_text(sdir) == "st_a\nst_b # Used by ftrace\n\nActive: 2\nBusy: 1\n"
    a.unregister()
    b.unregister()


@pytest.mark.parametrize("byte", [1, 2, 0x80, 0x83, 0xFF])
def test_enabled_is_any_bit(sdir, byte):
    ev = register("bits u8 x", session_dir=sdir)
    ev.session.status[ev.index] = byte
    assert (ev.enabled, ev.status) == (True, byte)
    ev.session.status[ev.index] = 0
    assert (ev.enabled, ev.status) == (False, 0)
    ev.unregister()


def test_one_tracer_per_session(sdir):
    with UserEventsServer(sdir):
        with pytest.raises(UserEventError) as exc:
            UserEventsServer(sdir).open()
        assert exc.value.code == "SESSION_BUSY"
        out = run_py("""
            from usertrace.sources.user_events import UserEventsServer, UserEventError
            try:
                UserEventsServer().open()
            except UserEventError as e:
                print(e.code)
        """, sdir)
        assert out.strip() == "SESSION_BUSY"
    UserEventsServer(sdir).open().close()


def test_a_dead_tracers_patterns_are_dropped(sdir):
    run_py("""
        import os
        from usertrace.sources.user_events import UserEventsServer
        s = UserEventsServer().open(); s.enable("left_*"); os._exit(0)
    """, sdir)
    # The first application to register finds no tracer attached: nobody would drain.
    ev = register("left_on u8 x", session_dir=sdir)
    assert not ev.enabled
    with UserEventsServer(sdir) as srv:
        assert srv.patterns() == []
        srv.enable("left_*")
        assert ev.enabled
    assert not ev.enabled
    ev.unregister()


def test_bad_patterns(sdir):
    with UserEventsServer(sdir) as srv:
        with pytest.raises(UserEventError):
            srv.enable("x" * 200)
        with pytest.raises(UserEventError):
            srv.enable("a", consumer=0x04)
        for k in range(abi.MAX_PATTERNS):
            srv.enable(f"p{k}")
        with pytest.raises(UserEventError) as exc:
            srv.enable("one_more")
        assert exc.value.code == "TOO_MANY_PATTERNS"
