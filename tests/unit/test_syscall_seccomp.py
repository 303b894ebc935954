"""The seccomp-BPF program: TRACE exactly for the enabled native calls, ALLOW for the rest."""

import struct

import pytest
from hypothesis import given, strategies as st

from usertrace.ptrace import seccomp as sc

TRACE, ALLOW = sc.SECCOMP_RET_TRACE, sc.SECCOMP_RET_ALLOW
AUDIT_ARCH_I386 = 0x40000003


@pytest.mark.parametrize("numbers,expected", [
    ([], []),
    ([5], [(5, 5)]),
    ([3, 1, 2, 7, 8, 10], [(1, 3), (7, 8), (10, 10)]),
    ([4, 4, 5], [(4, 5)]),
])
def test_ranges(numbers, expected):
    assert sc.ranges(numbers) == expected


def test_openat_only_program_is_short_and_exact():
    prog = sc.build_program({257})
    assert len(prog) == 9
    assert sc.run_program(prog, 257) == TRACE
    for nr in (0, 1, 256, 258, 511, 600):
        assert sc.run_program(prog, nr) == ALLOW


def test_other_abis_are_allowed():
    prog = sc.build_program({1, 257})
    assert sc.run_program(prog, 257, arch=AUDIT_ARCH_I386) == ALLOW       # i386 numbering
    assert sc.run_program(prog, 257 | sc.X32_SYSCALL_BIT) == ALLOW       # x32
    assert sc.run_program(prog, -1) == ALLOW                             # syscall(-1)


@given(st.sets(st.integers(0, 511), max_size=512), st.integers(-5, 2 ** 31 - 1))
def test_program_traces_exactly_the_set(traced, nr):
    prog = sc.build_program(traced)
    assert len(prog) <= sc.MAX_INSNS
    want = TRACE if 0 <= nr <= 511 and nr in traced else ALLOW
    assert sc.run_program(prog, nr) == want
    for n in list(traced)[:20]:
        assert sc.run_program(prog, n) == TRACE


def test_complement_keeps_everything_but_a_few_short():
    everything_but = set(range(512)) - {0, 1, 2}
    prog = sc.build_program(everything_but)
    assert len(prog) < 20
    assert [sc.run_program(prog, n) for n in (0, 1, 2, 3, 511, 512, 1000)] == \
        [ALLOW, ALLOW, ALLOW, TRACE, TRACE, ALLOW, ALLOW]


def test_worst_case_alternating_numbers_fit():
    prog = sc.build_program(range(0, 512, 2))
    assert len(prog) <= sc.MAX_INSNS
    assert sc.run_program(prog, 254) == TRACE and sc.run_program(prog, 255) == ALLOW


def test_encoding_is_struct_sock_filter():
    raw = sc.build_filter({257})
    assert len(raw) == 9 * 8
    assert struct.unpack_from("<HBBI", raw, 0) == (0x20, 0, 0, 4)             # ld [4]
    assert struct.unpack_from("<HBBI", raw, 8) == (0x15, 1, 0, 0xC000003E)    # jeq arch
    assert struct.unpack_from("<HBBI", raw, 7 * 8) == (0x06, 0, 0, TRACE)
