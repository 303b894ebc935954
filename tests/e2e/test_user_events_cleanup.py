"""A session does not grow without bound: the rings, holder files and registrations of
processes that are gone are removed (persistent events stay), whether a tracer saw them go,
was killed meanwhile, or never came back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from usertrace.sources.user_events import UserEventsServer, read_dynamic_events

SRC = str(Path(__file__).resolve().parents[2] / "src")

WRITER = """
import sys
from usertrace.sources.user_events import register
k = int(sys.argv[1])
ev = register(f"gone_{k} u32 a", persist=(k == 0))
print(ev.emit(k), flush=True)
"""


def run_writers(sdir, n):
    env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(k)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(n)]
    return [(p.communicate(timeout=60), p.returncode) for p in procs]


def files(sdir, prefix):
    return sorted(n for n in os.listdir(sdir) if n.startswith(prefix))


def test_a_tracer_removes_what_writers_that_exited_left(tmp_path):
    sdir = str(tmp_path / "session")
    got = []
    with UserEventsServer(sdir, ring_size=64 << 10) as srv:
        srv.enable("gone_*")
        results = run_writers(sdir, 12)
        assert all(rc == 0 and out == "True\n" for (out, _), rc in results), results
        srv.drain_all(lambda *rec: got.append(rec))
        assert len(files(sdir, "ring-")) == 12        # drained, the tracer still attached
    assert len(got) == 12
    assert files(sdir, "ring-") == [] and files(sdir, ".ring-") == []
    assert read_dynamic_events(sdir) == "u:gone_0 u32 a\n"     # only the persistent one
    assert files(sdir, "proc-") == []


def test_what_a_killed_tracer_left_is_removed_by_the_next_comer(tmp_path):
    sdir = str(tmp_path / "session")
    env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
    tracer = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from usertrace.sources.user_events import UserEventsServer
        srv = UserEventsServer(ring_size=64 << 10).open()
        srv.enable("gone_*")
        print("ready", flush=True)
        sys.stdin.readline()
    """)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert tracer.stdout.readline() == "ready\n"
    results = run_writers(sdir, 12)
    assert all(rc == 0 for _, rc in results)
    tracer.send_signal(signal.SIGKILL)                 # it never drains nor cleans up
    tracer.wait(30)
    assert len(files(sdir, "ring-")) == 12         # kept while a tracer was attached
    # a half-made ring of a process that is gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    Path(sdir, f".ring-{dead}-{dead}-0").write_bytes(b"")
    os.chmod(Path(sdir, f".ring-{dead}-{dead}-0"), 0o600)
    # The next application to register sweeps (no tracer is attached).
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from usertrace.sources.user_events import register
        register("newcomer u8 x")
    """)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert files(sdir, "ring-") == [] and files(sdir, ".ring-") == []
    assert len(files(sdir, "proc-")) == 1          # the newcomer's, until someone looks again
    assert read_dynamic_events(sdir) == "u:gone_0 u32 a\n"
    assert files(sdir, "proc-") == []


def test_rings_of_live_writers_stay(tmp_path):
    """A sweep without a tracer leaves the ring of a writer that is still running."""
    sdir = str(tmp_path / "session")
    env = dict(os.environ, PYTHONPATH=SRC, USERTRACE_SESSION=sdir)
    srv = UserEventsServer(sdir, ring_size=64 << 10).open()
    srv.enable("alive")
    app = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from usertrace.sources.user_events import register
        ev = register("alive u32 a")
        print(ev.emit(1), flush=True)
        sys.stdin.readline()
    """)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert app.stdout.readline() == "True\n"
    srv.close()
    subprocess.run([sys.executable, "-c", "from usertrace.sources.user_events import register; "
                    "register('other u8 x')"], env=env, check=True, timeout=60)
    assert len(files(sdir, f"ring-{app.pid}-")) == 1
    app.stdin.close()
    assert app.wait(30) == 0
