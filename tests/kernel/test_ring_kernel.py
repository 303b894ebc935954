"""The kernel as oracle for the ring-buffer format: pages read from trace_pipe_raw of a private
tracefs instance decode to what the instance's `trace` text shows, and our writer, fed the
same events, writes the same pages byte for byte (overwrite and stop-when-full included)."""

import os
import random
import re
import struct
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from usertrace.buffer.layout import PageLayout
from usertrace.buffer.ring import RingBuffer, decode_page, iter_events, merge_events
from usertrace.events.format import EventFormat
from usertrace.events.records import RecordCodec
from usertrace.kernel.rawpipe import page_layout, read_all_pages, read_cpu_pages

pytestmark = pytest.mark.kernel

TRACE_LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+"
                        r"(?P<secs>\d+)\.(?P<usecs>\d{6}): (?P<msg>.*)$")


def parse_trace(text):
    """(cpu, microseconds, pid, message) of each event line of a `trace` text."""
    rows, lost = [], []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if "LOST" in line:
            lost.append(line)
            continue
        m = TRACE_LINE.match(line)
        assert m, f"unexpected trace line {line!r}"
        rows.append((int(m["cpu"]), int(m["secs"]) * 10**6 + int(m["usecs"]), int(m["pid"]),
                     m["msg"]))
    return rows, lost


def parse_stats(text):
    return dict(line.split(":", 1) for line in text.splitlines())


@contextmanager
def on_one_cpu():
    """Run the body on one cpu (trace_marker writes go to the buffer of the writer's cpu)."""
    old = os.sched_getaffinity(0)
    cpu = min(old)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, old)


def write_markers(inst, lengths, sleep_at=None):
    """Write one trace_marker message per length; the number of writes the kernel refused."""
    fd = os.open(inst.path / "trace_marker", os.O_WRONLY)
    refused = 0
    try:
        for i, n in enumerate(lengths):
            if i == sleep_at:
                time.sleep(0.3)                 # > 2**27 ns: the next event needs a time extend
            try:
                os.write(fd, b"m" * n)
            except OSError:                     # EBADF: the buffer is full (stop mode)
                refused += 1
    finally:
        os.close(fd)
    return refused


def marker_record_size(n):
    """The size of the ftrace:print record of an n-byte trace_marker write: struct
    print_entry (common header, ip) then the text with a newline and a NUL."""
    return 16 + n + 2


def type_lens(page, layout):
    """The type_len of every event header on a page (a small independent walker)."""
    commit = decode_page(page, layout=layout).commit
    off, end, found = layout.data_offset, layout.data_offset + commit, []
    while off < end:
        word, a0 = struct.unpack_from("<II", page, off)
        t = word & 31
        found.append(t)
        off += 4 + (4 * t if 1 <= t <= 28 else a0 if t in (0, 29) else 4)
    return found


def test_syscall_pages_match_trace_text(tracefs_instance):
    inst = tracefs_instance
    names = ("sys_enter_getppid", "sys_exit_getppid")
    for name in names:
        inst.enable("syscalls", name)
    child = subprocess.run([sys.executable, "-c", "import os\nfor _ in range(300): os.getppid()\n"
                            "print(os.getpid())"], capture_output=True, text=True, check=True)
    inst.write("tracing_on", "0")
    text = inst.read("trace")                   # before trace_pipe_raw consumes the buffer
    layout = page_layout(inst)
    pages = read_all_pages(inst, layout)

    codecs = {}
    for name in names:
        fmt = EventFormat.parse(inst.read(f"events/syscalls/{name}/format"), "syscalls")
        codecs[fmt.id] = (name, RecordCodec(fmt))
    rows = []
    for ts, cpu, payload in merge_events(pages, layout):
        name, codec = codecs[struct.unpack_from("<H", payload)[0]]
        rec = codec.decode(payload)
        msg = ("sys_getppid()" if name == "sys_enter_getppid"
               else f"sys_getppid -> 0x{rec['ret'] & (2**64 - 1):x}")
        rows.append((cpu, (ts + 500) // 1000, rec["common_pid"], msg))

    expected, lost = parse_trace(text)
    assert not lost
    assert rows == expected
    entries = re.search(r"entries-in-buffer/entries-written: (\d+)/(\d+)", text)
    assert len(rows) == int(entries[1]) == int(entries[2])
    pid = int(child.stdout)
    mine = [r for r in rows if r[2] == pid]
    assert len(mine) == 600
    assert {r[3] for r in mine} == {"sys_getppid()", f"sys_getppid -> 0x{os.getpid():x}"}


def test_kernel_pages_equal_our_pages(tracefs_instance):
    inst = tracefs_instance
    rnd = random.Random(7)
    lengths = [rnd.choice([1, 4, 50, 93, 94, 95, 96, 97, 150, 400, 1500]) for _ in range(400)]
    with on_one_cpu() as cpu:
        assert write_markers(inst, lengths, sleep_at=200) == 0
    inst.write("tracing_on", "0")
    layout = page_layout(inst)
    kernel_pages = read_cpu_pages(inst, cpu, layout)
    events = list(iter_events(kernel_pages, layout))
    assert [len(p) for _, p in events] == \
        [layout.stored_payload_size(marker_record_size(n)) for n in lengths]
    kinds = {t for page in kernel_pages for t in type_lens(page, layout)}
    assert {0, 30} <= kinds                     # long events and a time extend were written

    rb = RingBuffer(layout=layout, nr_pages=len(kernel_pages) + 1, overwrite=False)
    for ts, payload in events:
        assert rb.write(ts, payload)
    ours = list(rb.iter_pages())
    assert len(ours) == len(kernel_pages)
    for i, (mine, theirs) in enumerate(zip(ours, kernel_pages)):
        assert mine == theirs, f"page {i} differs"


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "stop"])
def test_full_buffer_matches_our_writer(tracefs_instance, overwrite):
    inst = tracefs_instance
    inst.write("buffer_size_kb", "8")           # 3 pages of 4080 bytes, and the reader page
    inst.write("options/overwrite", "1" if overwrite else "0")
    rnd = random.Random(11)
    lengths = [rnd.randrange(1, 300) for _ in range(500)]
    with on_one_cpu() as cpu:
        refused = write_markers(inst, lengths)
    inst.write("tracing_on", "0")
    stats = parse_stats(inst.read(f"per_cpu/cpu{cpu}/stats"))
    layout = page_layout(inst)
    kernel_pages = read_cpu_pages(inst, cpu, layout)
    kept = list(iter_events(kernel_pages, layout))
    after = parse_stats(inst.read(f"per_cpu/cpu{cpu}/stats"))

    # replay: the events the kernel kept with their times; the others only need a size
    rb = RingBuffer(layout=layout, nr_pages=3, overwrite=overwrite)
    lost = len(lengths) - len(kept)
    first_kept = lost if overwrite else 0
    for i, n in enumerate(lengths):
        if first_kept <= i < first_kept + len(kept):
            ts, payload = kept[i - first_kept]
        elif overwrite:                         # overwritten: before the first kept event
            ts, payload = kept[0][0] - len(lengths) + i, bytes(marker_record_size(n))
        else:                                   # dropped: after the last kept event
            ts, payload = kept[-1][0] + i, bytes(marker_record_size(n))
        rb.write(ts, payload)
    assert refused == (0 if overwrite else lost)
    # per_cpu/cpuN/stats, but for "now ts": the same counters, bytes and oldest time
    assert [line for line in rb.stats().render().splitlines() if not line.startswith("now")] \
        == [f"{k}:{v}" for k, v in stats.items() if k != "now ts"]
    assert int(stats["overrun"] if overwrite else stats["dropped events"]) == lost > 0

    ours = list(rb.iter_pages())
    assert [mine == theirs for mine, theirs in zip(ours, kernel_pages)] == [True] * len(ours)
    assert len(ours) == len(kernel_pages)
    first = decode_page(kernel_pages[0], layout=layout)
    assert first.missed_events == (lost if overwrite else 0)
    assert [line for line in rb.stats().render().splitlines() if not line.startswith("now")] \
        == [f"{k}:{v}" for k, v in after.items() if k != "now ts"]


def test_lost_events_flag_from_syscalls(tracefs_instance):
    inst = tracefs_instance
    inst.write("buffer_size_kb", "4")
    inst.enable("syscalls", "sys_enter_getppid")
    inst.enable("syscalls", "sys_exit_getppid")
    with on_one_cpu() as cpu:
        subprocess.run([sys.executable, "-c", "import os\nfor _ in range(5000): os.getppid()"],
                       check=True)
    inst.write("tracing_on", "0")
    overrun = int(parse_stats(inst.read(f"per_cpu/cpu{cpu}/stats"))["overrun"])
    layout = page_layout(inst)
    pages = read_cpu_pages(inst, cpu, layout)
    decoded = [decode_page(p, i, layout) for i, p in enumerate(pages)]
    assert overrun > 0
    assert decoded[0].missed_events in (overrun, -1)       # -1: no room left for the count
    assert [d.missed_events for d in decoded[1:]] == [0] * (len(decoded) - 1)
    raw_commit = struct.unpack_from("<q", pages[0], 8)[0]
    assert raw_commit < 0                       # 1 << 31 added as a C int, sign-extended
    assert all(d.events for d in decoded)


def test_sub_buffer_size(tracefs_instance):
    inst = tracefs_instance
    assert page_layout(inst) == PageLayout(4096)
    inst.write("buffer_subbuf_size_kb", "8")
    layout = page_layout(inst)
    assert (layout.page_size, layout.data_size) == (8192, 8176)
    with on_one_cpu() as cpu:
        write_markers(inst, [200] * 100)
    pages = read_cpu_pages(inst, cpu, layout)
    assert all(len(p) == 8192 for p in pages)
    assert len(list(iter_events(pages, layout))) == 100
