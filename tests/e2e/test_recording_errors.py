"""An error on the recording path stops the recording, never the traced command: the command
runs to its end with its exit status, what was recorded is kept, and the error is reported."""

import errno
import sys

from usertrace.events.registry import Consumer
from usertrace.session import EventSpec, Recorder
from usertrace.buffer.tracedat import TraceDatReader
from usertrace.buffer.ring import decode_page


class FailingOut:
    """A stream that takes 3 lines, then fails as a full disk does."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        if len(self.lines) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.lines.append(text)

    def flush(self):
        pass


def test_a_failing_consumer_stops_the_recording_not_the_command(tmp_path):
    warnings = []
    rec = Recorder([EventSpec("sys_enter_getppid")], consumers=Consumer.STREAM,
                   warn=warnings.append)
    out = FailingOut()
    rec.stream_to(out)
    marker = tmp_path / "done"
    code = f"import os\nfor _ in range(20): os.getppid()\nopen({str(marker)!r}, 'w').write('x')\n" \
           "raise SystemExit(7)"
    status = rec.run([sys.executable, "-c", code], handle_signals=False)
    assert status.code == 7 and marker.read_text() == "x"     # ran to its end
    assert len(out.lines) == 3
    problems = rec.problems()
    assert len(problems) == 1 and "No space left on device" in problems[0]
    assert "17 events not recorded" in problems[0]
    assert warnings and "recording stopped" in warnings[0]


def test_what_was_recorded_before_an_error_is_kept(tmp_path):
    dat = tmp_path / "t.dat"
    # the ptrace backend: the kernel backend's records reach the file as the kernel's pages,
    # not through trace.write
    rec = Recorder([EventSpec("sys_enter_getppid")], backend="ptrace")
    rec.record_to(str(dat))
    seen = []
    real_write = rec.session.trace.write

    def write(cpu, ts, record):               # the 6th record breaks the trace buffer
        if len(seen) == 5:
            raise OSError(errno.EIO, "Input/output error")
        seen.append(ts)
        real_write(cpu, ts, record)

    rec.session.trace.write = write
    rec.session.packed_writers = lambda st: None     # every record through emit()
    status = rec.run([sys.executable, "-c", "import os\nfor _ in range(10): os.getppid()"],
                     handle_signals=False)
    assert status.code == 0
    with TraceDatReader(str(dat)) as r:
        n = sum(len(decode_page(p).events) for b in r.buffers for c in b.cpu_ids
                for p in b.iter_pages(c))
    assert n == 5
    assert "Input/output error" in rec.problems()[0]


def test_a_disk_that_fills_up_keeps_what_fits(tmp_path):
    """A 2 MiB file system filled by the recording: the command runs to its end, the
    trace.dat holds the events that fit and is readable, and the loss is counted."""
    import os
    import subprocess
    from usertrace.trace import Trace

    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
        import pytest
        pytest.skip("cannot mount a tmpfs here")
    try:
        dat = mnt / "t.dat"
        warnings = []
        rec = Recorder([EventSpec("sys_enter_getppid")], warn=warnings.append)
        rec.record_to(str(dat))
        status = rec.run([sys.executable, "-c",
                          "import os\nfor _ in range(200000): os.getppid()\nraise SystemExit(5)"],
                         handle_signals=False)
        assert status.code == 5                          # the command ran to its end
        t = rec.session.trace
        assert rec.failed and "No space left on device" in t.error
        assert t.lost > 0 and t.entries > 1000
        assert t.entries + t.lost == 200000
        with Trace(str(dat)) as tr:
            got = sum(1 for _ in tr.events())
        assert got == t.entries
        assert "No space left on device" in rec.problems()[0]
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
