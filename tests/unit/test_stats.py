"""The strace -c summary: numbers, errors, order and layout."""

from usertrace.output.stats import SyscallStats, is_error

# strace -c -w printed this on this machine for `ls` (layout reference):
STRACE_LINES = [
    "% time     seconds  usecs/call     calls    errors syscall",
    "------ ----------- ----------- --------- --------- ----------------",
    " 23.70    0.000599          14        40        19 openat",
    "100.00    0.002528          16       157        27 total",
]


def test_layout_matches_strace():
    s = SyscallStats()
    for i in range(40):
        s.add("openat", 257, 599_200 // 40, -2 if i < 19 else 3)
    s.add("mmap", 9, 2_528_000 - 599_200, 0)
    for i in range(116):
        s.add("close", 3, 0, -9 if i < 8 else 0)
    lines = s.render().splitlines()
    assert lines[0] == STRACE_LINES[0] and lines[1] == STRACE_LINES[1]
    assert lines[3] == STRACE_LINES[2]
    assert lines[-1] == STRACE_LINES[3]
    assert lines[-2] == STRACE_LINES[1]


def test_order_by_time_then_number_and_blank_errors():
    s = SyscallStats()
    s.add("write", 1, 10, 5)
    s.add("read", 0, 10, -11)
    s.add("close", 3, 50, 0)
    s.add("brk", 12, 0, 0)
    names = [line.split()[-1] for line in s.render().splitlines()[2:-2]]
    assert names == ["close", "read", "write", "brk"]
    row = {line.split()[-1]: line for line in s.render().splitlines()}
    assert row["write"].split()[-2] == "1"          # calls, then an empty errors column
    assert row["read"].split()[-3:-1] == ["1", "1"]  # one call, one error


def test_error_range():
    assert [is_error(v) for v in (-1, -4095, -4096, 0, 5, -516)] == [True, True, False, False, False, True]
