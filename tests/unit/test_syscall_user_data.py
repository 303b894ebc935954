"""User-space data in syscall records (usertrace.sources.syscalls.user_data): the formats,
print fmts and trace text of the newest kernels (checked against the examples of the
upstream patches), the record encoder (annotated bytes, round trips), and the exit data."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usertrace.events.format import EventFormat
from usertrace.events.records import RecordCodec
from usertrace.output.printfmt import PrintFmt
from usertrace.sources.syscalls import events as ev
from usertrace.sources.syscalls import user_data as ud
from usertrace.sources.syscalls.table import SyscallTable

TABLE = SyscallTable.for_arch("x86_64")


def fmt_of(name, event_id=700):
    sc = TABLE.by_name[name]
    return ud.enter_format(name, sc.event, sc.args, event_id)


def test_formats_without_data_are_the_kernels():
    for sc in TABLE:
        if not sc.has_event:
            continue
        if ud.enter_data(sc.name, sc.nargs) is None:
            assert ud.enter_format(sc.name, sc.event, sc.args).render() == \
                ev.enter_format(sc.event, sc.args).render()
        if ud.exit_data(sc.name, sc.nargs) is None:
            assert ud.exit_format(sc.name, sc.event, sc.args).render() == \
                ev.exit_format(sc.event).render()


def test_the_user_mask_names_pointer_arguments_at_most_three():
    checked = 0
    for name, data in ud.ENTER_DATA.items():
        sc = TABLE.by_name.get(name)
        if sc is None or not sc.has_event:
            continue
        checked += 1
        assert 1 <= len(data.args) <= ud.MAX_USER_ARGS
        assert data.size_arg is None or len(data.args) == 1
        for i in data.args:
            assert "*" in sc.args[i][0], (name, sc.args[i])
    assert checked > 80


def test_val_fields_follow_the_arguments():
    fmt = fmt_of("renameat2")
    tail = [(f.type, f.name, f.offset, f.size, f.signed) for f in fmt.fields[-2:]]
    assert tail == [("__data_loc char[]", "__oldname_val", 56, 4, False),
                    ("__data_loc char[]", "__newname_val", 60, 4, False)]
    assert EventFormat.parse(fmt.render(), "syscalls").render() == fmt.render()


@pytest.mark.parametrize("name, print_fmt", [
    ("write", '"fd: 0x%08lx, buf: 0x%08lx (%s), count: 0x%08lx", ((unsigned long)(REC->fd)), '
              "((unsigned long)(REC->buf)), __print_dynamic_array(__buf_val, 1), "
              "((unsigned long)(REC->count))"),
    ("sethostname", '"name: 0x%08lx \\"%s\\", len: 0x%08lx", ((unsigned long)(REC->name)), '
                    "__get_str(__name_val), ((unsigned long)(REC->len))"),
    ("unlink", '"pathname: 0x%08lx \\"%s\\"", ((unsigned long)(REC->pathname)), '
               "__get_str(__pathname_val)"),
    # sys_enter_openat_print_fmt(), its pieces put together
    ("openat", '"dfd: 0x%08lx, filename: 0x%08lx \\"%s\\", flags: %s%s, mode: 0%03o", '
               "((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename)), "
               "__get_str(__filename_val), "
               '(REC->flags & ~3) && !(REC->flags & 3) ? "O_RDONLY|" : "",  '
               'REC->flags ? __print_flags(REC->flags, "|", { 0x1, "O_WRONLY" }, '
               '{ 0x2, "O_RDWR" }, { 0x40, "O_CREAT" }, { 0x80, "O_EXCL" }, '
               '{ 0x100, "O_NOCTTY" }, { 0x200, "O_TRUNC" }, { 0x400, "O_APPEND" }, '
               '{ 0x800, "O_NONBLOCK" }, { 0x1000, "O_DSYNC" }, { 0x4000, "O_DIRECT" }, '
               '{ 0x8000, "O_LARGEFILE" }, { 0x10000, "O_DIRECTORY" }, '
               '{ 0x20000, "O_NOFOLLOW" }, { 0x40000, "O_NOATIME" }, '
               '{ 0x80000, "O_CLOEXEC" }) : "O_RDONLY",  ((unsigned long)(REC->mode))'),
])
def test_print_fmt_as_the_kernel_builds_it(name, print_fmt):
    assert fmt_of(name).print_fmt == print_fmt


def _record(name, args, reads, buf_size=ud.DEFAULT_BUF_SIZE):
    sc = TABLE.by_name[name]
    return ud.encode_enter(700, 1113, sc.nr, args, sc.nargs, ud.enter_data(name), reads, buf_size)


# The examples of the upstream patches' messages (kernel/trace/trace_syscalls.c, 2025).
@pytest.mark.parametrize("name, args, reads, text", [
    ("renameat2", (0xFFFFFF9C, 0x7FFE02FACDFF, 0xFFFFFF9C, 0x7FFE02FACE06, 1),
     [b"/tmp/x", b"/tmp/y"],
     'sys_renameat2(olddfd: 0xffffff9c, oldname: 0x7ffe02facdff "/tmp/x", '
     'newdfd: 0xffffff9c, newname: 0x7ffe02face06 "/tmp/y", flags: 1)'),
    ("write", (2, 0x555A8DEEDDB0, 0x16), [b"root@debian-x86-64:~# "],
     "sys_write(fd: 2, buf: 0x555a8deeddb0 (72:6f:6f:74:40:64:65:62:69:61:6e:2d:78:38:36:2d:"
     '36:34:3a:7e:23:20) "root@debian-x86-64:~# ", count: 0x16)'),
    ("openat", (0xFFFFFF9C, 139785545139344, 0x80000, 0), [b"/usr/lib/locale/locale-archive"],
     'sys_openat(dfd: 4294967196, filename: 139785545139344 "/usr/lib/locale/locale-archive", '
     "flags: O_RDONLY|O_CLOEXEC)"),
    ("openat", (0xFFFFFFFFFFFFFF9C, 140733603151330, 0x941, 0o666), [b"/tmp/x"],
     'sys_openat(dfd: 18446744073709551516, filename: 140733603151330 "/tmp/x", '
     "flags: O_WRONLY|O_CREAT|O_NOCTTY|O_NONBLOCK, mode: 0666)"),
    ("write", (1, 0x10, 80), [bytes(range(80))],      # cut at 63: ", ..." and '"...'
     "sys_write(fd: 1, buf: 0x10 (" + ":".join(f"{c:02x}" for c in range(63)) + ', ...) "'
     + "".join(chr(c) if 32 <= c < 127 else "." for c in range(63)) + '"..., count: 0x50)'),
])
def test_trace_text_as_the_kernel_prints_it(name, args, reads, text):
    fmt = fmt_of(name)
    values = RecordCodec(fmt).decode(_record(name, args, reads))
    assert ud.render_enter(fmt, values) == text
    assert ud.syscall_printer(fmt)(fmt, values) == text
    assert not PrintFmt(fmt).render(values).startswith("[FAILED")


def test_record_layout_annotated():
    rec = _record("openat", (0xFFFFFF9C, 0x7FFD0010, 0, 0), [b"/etc/hostname"])
    assert rec == bytes([
        0xBC, 0x02, 0, 0, 0x59, 0x04, 0, 0,          # common_type 700, flags, pid 1113
        0x01, 0x01, 0, 0, 0, 0, 0, 0,                # __syscall_nr 257, padding
        0x9C, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,          # dfd
        0x10, 0x00, 0xFD, 0x7F, 0, 0, 0, 0,          # filename (the pointer)
        0, 0, 0, 0, 0, 0, 0, 0,                      # flags
        0, 0, 0, 0, 0, 0, 0, 0,                      # mode
        52, 0, 14, 0,                                # __filename_val: offset 52, len 14
    ]) + b"/etc/hostname\0"


@pytest.mark.parametrize("raw, buf_size, recorded", [
    (b"/etc", 63, b"/etc\0"),
    (b"", 63, b"\0"),                                    # an empty string: its NUL
    (None, 63, b""),                                     # NULL or unreadable: nothing
    (b"a\tb\x7f\x80\x9f\xa0\xff", 63, b"a.b...\xa0\xff\0"),  # the kernel's isprint()
    (b"x" * 63, 63, b"x" * 63 + b"\0"),                  # fits exactly
    (b"x" * 64, 63, b"x" * 63 + b"...\0"),               # cut: len 63 + 4
    (b"abc\0def", 63, b"abc\0"),                         # read past the NUL: up to it
    (b"abc", 0, b""),                                    # syscall_user_buf_size 0
])
def test_strings_as_the_kernel_records_them(raw, buf_size, recorded):
    assert ud.string_value(raw, buf_size) == recorded


@pytest.mark.parametrize("raw, count, buf_size, recorded", [
    (b"hello", 5, 63, b"hello"),
    (b"\0\0\xff", 3, 63, b"\0\0\xff"),                  # raw bytes, no NUL added
    (bytes(100), 100, 63, bytes(63)),
    (b"abc", 2, 63, b"ab"),
    (None, 5, 63, b""),
])
def test_buffers_as_the_kernel_records_them(raw, count, buf_size, recorded):
    assert ud.array_value(raw, count, buf_size) == recorded


def test_read_sizes():
    write = ud.enter_data("write")
    assert ud.read_size(write, (1, 0x10, 5)) == 5
    assert ud.read_size(write, (1, 0x10, 5000)) == ud.DEFAULT_BUF_SIZE
    assert ud.read_size(ud.enter_data("openat"), (0, 0x10, 0, 0), 128) == 129
    read = ud.exit_data("read")
    assert ud.exit_read_size(read, 832, 128) == 128
    assert ud.exit_read_size(read, -14, 128) == 0
    wait4 = ud.exit_data("wait4")
    assert (ud.exit_read_size(wait4, 0), ud.exit_read_size(wait4, 1234)) == (0, 4)


def test_exit_data_format_and_record():
    sc = TABLE.by_name["read"]
    fmt = ud.exit_format("read", sc.event, sc.args, 701)
    assert [(f.name, f.offset, f.size) for f in fmt.fields] == [
        ("__syscall_nr", 8, 4), ("ret", 16, 8), ("__buf_val", 24, 4)]
    assert fmt.print_fmt == '"0x%lx buf: (%s)", REC->ret, __print_dynamic_array(__buf_val, 1)'
    rec = ud.encode_exit(701, 5, 0, 3, b"abcdef", ud.exit_data("read"))
    assert rec == struct.pack("<HBBii4xq", 701, 0, 0, 5, 0, 3) + struct.pack("<I", 3 << 16 | 28) + b"abc"
    values = RecordCodec(fmt).decode(rec)
    assert values["__buf_val"] == b"abc" and values["ret"] == 3
    assert ud.render_exit(fmt, values) == 'sys_read -> 0x3 (61:62:63) "abc"'
    failed = RecordCodec(fmt).decode(ud.encode_exit(701, 5, 0, -9, b"xyz", ud.exit_data("read")))
    assert failed["__buf_val"] == b"" and ud.render_exit(fmt, failed) == "sys_read -> 0xfffffffffffffff7"


def test_every_format_with_data_renders_its_print_fmt():
    for sc in TABLE:
        if not sc.has_event:
            continue
        for fmt in (ud.enter_format(sc.name, sc.event, sc.args),
                    ud.exit_format(sc.name, sc.event, sc.args)):
            if ud.val_fields(fmt):
                values = RecordCodec(fmt).decode(RecordCodec(fmt).encode({}))
                assert not PrintFmt(fmt).render(values).startswith("[FAILED"), fmt.name


@settings(max_examples=200, deadline=None)
@given(path=st.binary(max_size=200).filter(lambda b: b"\0" not in b),
       buf=st.binary(max_size=300), buf_size=st.integers(0, ud.KERNEL_MAX_BUF_SIZE))
def test_round_trip(path, buf, buf_size):
    """encode -> decode gives back what the kernel would have kept."""
    fmt = fmt_of("openat")
    values = RecordCodec(fmt).decode(_record("openat", (1, 2, 3, 4), [path], buf_size))
    assert [values[n] for n in ("dfd", "filename", "flags", "mode")] == [1, 2, 3, 4]
    got = ud.split_string(values["__filename_val"])
    kept = path.translate(ud._DOTS)
    if buf_size == 0:
        assert got in (None, (b"", False))
    elif len(kept) > buf_size:
        assert got == (kept[:buf_size], True)
    else:
        assert got == (kept, False) or kept.endswith(b"...")
    wfmt = fmt_of("write")
    w = RecordCodec(wfmt).decode(_record("write", (1, 2, len(buf)), [buf], buf_size))
    assert w["__buf_val"] == buf[:buf_size]


def test_argument_vectors_are_usertraces_own_field():
    """execve's argv: not in the kernel's mask, recorded after its filename; strings cut as
    strings are, the vector cut at the count and size limits; trace text as a buffer."""
    assert ud.ENTER_DATA["execve"].args == (0,)               # the kernel's mask as it is
    fmt = fmt_of("execve")
    assert [f.name for f in fmt.fields[-3:]] == ["__filename_val", "__argv_val", "__envp_val"]
    assert "argv: 0x%08lx (%s)" in fmt.print_fmt and "envp: 0x%08lx (%s)" in fmt.print_fmt
    assert "__print_dynamic_array(__argv_val, 1)" in fmt.print_fmt
    data = ud.enter_data("execve", 3)
    rec = ud.encode_enter(700, 1, 59, (0x7FFD1000, 0x7FFD2000, 0x7FFD3000), 3, data,
                          [b"/bin/ls", ([b"ls", b"-l", b"x\x01y"], False), 35], 63)
    values = RecordCodec(fmt).decode(rec)
    assert ud.split_string(values["__filename_val"]) == (b"/bin/ls", False)
    assert ud.split_argv(values["__argv_val"]) == \
        ([(b"ls", False), (b"-l", False), (b"x.y", False)], False)
    assert ud.split_count(values["__envp_val"]) == 35
    text = ud.render_enter(fmt, values)
    assert "argv: 0x7ffd2000 (6c:73:00:2d:6c:00:78:2e:79:00:04)" in text
    assert "envp: 0x7ffd3000 (23:00:00:00)" in text
    rec = ud.encode_enter(700, 1, 59, (1, 0, 0), 3, data, [b"/x", None, None], 63)
    values = RecordCodec(fmt).decode(rec)
    assert ud.split_argv(values["__argv_val"]) is None and ud.split_count(values["__envp_val"]) is None
    assert ud.split_argv(ud.argv_value([b"a" * 10], False, 4)) == ([(b"aaaa", True)], False)
    assert ud.split_argv(ud.argv_value([b"a", b""], True, 4)) == \
        ([(b"a", False), (b"", False)], True)
    assert ud.split_argv(ud.argv_value([])) == ([], False)                  # execve(p, [], e)
    assert ud.split_argv(ud.argv_value([b"a", None, b"c"])) == ([(b"a", False)], True)
    assert ud.split_argv(b"") is None and ud.split_argv(None) is None      # not recorded
    big = ud.argv_value([b"x" * 60] * 100, False, 63)
    assert len(big) <= ud.ARGV_MAX_BYTES + 1 and big.endswith(ud.ARGV_MORE)


class _Memory:
    """A process's memory for the readers: ``{address: bytes}``, unreadable elsewhere."""

    def __init__(self, blocks):
        self.blocks = blocks

    def read(self, addr, size):
        for start, data in self.blocks.items():
            if start <= addr < start + len(data):
                return data[addr - start: addr - start + size]
        return None

    def read_string(self, addr, max_len):
        raw = self.read(addr, max_len)
        if raw is None:
            return None
        nul = raw.find(b"\0")
        return (raw[:nul], False) if nul >= 0 else (raw, len(raw) >= max_len)


def test_the_environment_counter():
    from usertrace.sources.syscalls.source import _read_count
    ptrs = b"".join((0x2000 + k).to_bytes(8, "little") for k in range(100))
    mem = _Memory({0x1000: ptrs + bytes(8), 0x5000: ptrs})     # 0x5000: no NULL, then unreadable
    assert ud.split_count(_read_count(mem, 0x1000, 63)) == 100
    assert ud.split_count(_read_count(mem, 0x1000 + 8 * 99, 63)) == 1
    assert ud.split_count(_read_count(mem, 0x1000 + 8 * 100, 63)) == 0
    assert _read_count(mem, 0x5000, 63) == b"" and _read_count(mem, 0, 63) == b""


def test_the_argument_vector_reader():
    from usertrace.sources.syscalls.source import _read_argv
    ptrs = lambda *p: b"".join(x.to_bytes(8, "little") for x in p)   # noqa: E731
    mem = _Memory({0x1000: ptrs(0x2000, 0x2010, 0), 0x2000: b"ls\0", 0x2010: b"-l\0",
                   0x3000: ptrs(0x2000, 0x9000, 0), 0x4000: ptrs(0x2000, 0x2010)})
    assert ud.split_argv(_read_argv(mem, 0x1000, 63)) == ([(b"ls", False), (b"-l", False)], False)
    assert ud.split_argv(_read_argv(mem, 0x1000, 1)) == ([(b"l", True)], True)   # -s 1
    assert ud.split_argv(_read_argv(mem, 0x3000, 63)) == ([(b"ls", False)], True)   # bad string
    assert ud.split_argv(_read_argv(mem, 0x4000, 63)) == \
        ([(b"ls", False), (b"-l", False)], True)        # the table runs into unreadable memory
    assert _read_argv(mem, 0x8000, 63) == b"" and _read_argv(mem, 0, 63) == b""


def test_getdents64_records_its_number_of_entries():
    data = ud.exit_data("getdents64")
    def dirent(name):
        reclen = (19 + len(name) + 1 + 7) // 8 * 8
        return bytes(16) + reclen.to_bytes(2, "little") + b"\x04" + name + b"\0" + \
            bytes(reclen - 20 - len(name))
    buf = dirent(b".") + dirent(b"..") + dirent(b"a-longer-name")
    assert ud.split_count(ud.exit_value(data, buf, len(buf))) == 3
    assert ud.split_count(ud.exit_value(data, None, 0)) == 0            # the end: 0 entries
    assert ud.exit_value(data, buf[:-1], len(buf)) == b""               # cut short: unknown
    assert ud.exit_value(data, buf, len(buf) - 8) == b""                # a record past ret
    assert ud.exit_value(data, bytes(64), 64) == b""                    # reclen 0: not dirents
    assert ud.exit_value(data, buf, -9) == b""                          # failed
    fmt = ud.exit_format("getdents64", "getdents64", TABLE.by_name["getdents64"].args)
    rec = ud.encode_exit(701, 1, 217, len(buf), buf, data)
    assert ud.split_count(RecordCodec(fmt).decode(rec)["__dirent_val"]) == 3
