"""Each decoder of the strace view, one table row per case: the call, its arguments, the data
recorded with it, its result, and the line strace prints for it.

The expected lines are strace's (6.1) for the same call; where the view prints a pointer
instead of what strace reads from memory (a structure), the row says so in its comment.
The differential tests (tests/e2e/test_strace_calls.py) check the same decoders on real
programs against the real strace.
"""

import pytest

from usertrace.output.strace import PID_NONE, CallView, ViewOptions
from usertrace.output.strace.decoders import wait_status_text
from usertrace.output.strace.quote import HEX_ALL, HEX_NON_ASCII, quote, quote_cstring
from usertrace.output.strace.xlat import Xlat
from usertrace.sources.syscalls import user_data

P = 0x7FFD1000          # some pointer
IN4 = b"\2\0\0\x50\x0a\0\0\x01" + bytes(8)      # AF_INET 10.0.0.1 port 80
AT_FDCWD = 0xFFFFFF9C   # as a register holds -100
M1 = 0xFFFFFFFFFFFFFFFF



def stat_bytes(mode, size=0, rdev=0):
    """A struct stat of x86_64 as the exit data record it (144 bytes)."""
    b = bytearray(144)
    b[24:28] = mode.to_bytes(4, "little")
    b[40:48] = rdev.to_bytes(8, "little")
    b[48:56] = size.to_bytes(8, "little", signed=True)
    return bytes(b)


def termios(iflag, oflag, cflag, lflag):
    """The kernel's struct termios (36 bytes): the four flags, then c_line and c_cc."""
    return b"".join(v.to_bytes(4, "little") for v in (iflag, oflag, cflag, lflag)) + bytes(20)


def statx_bytes(mask, attributes, mode, size):
    """A struct statx (256 bytes)."""
    b = bytearray(256)
    b[0:4] = mask.to_bytes(4, "little")
    b[8:16] = attributes.to_bytes(8, "little")
    b[28:30] = mode.to_bytes(2, "little")
    b[40:48] = size.to_bytes(8, "little")
    return bytes(b)


# (name, args, recorded data {argument: bytes}, result, the line)
CASES = [
    # files and descriptors
    ("openat", [AT_FDCWD, P, 0x80000, 0], {"filename": b"/etc/hostname\0"}, 3,
     'openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3'),
    ("openat", [AT_FDCWD, P, 0x241, 0o644], {"filename": b"/tmp/x\0"}, -13,
     'openat(AT_FDCWD, "/tmp/x", O_WRONLY|O_CREAT|O_TRUNC, 0644) = -1 EACCES (Permission denied)'),
    ("openat", [3, P, 0x410002, 0o600], {"filename": b".\0"}, 4,
     'openat(3, ".", O_RDWR|O_TMPFILE, 0600) = 4'),
    ("openat", [AT_FDCWD, P, 0x90800, 0], {}, 3,                     # no data: the pointer
     "openat(AT_FDCWD, 0x7ffd1000, O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3"),
    ("open", [P, 0o501, 0o666], {"filename": b"f\0"}, 3,
     'open("f", O_WRONLY|O_CREAT|O_NOCTTY, 0666) = 3'),
    ("creat", [P, 0o600], {"pathname": b"f\0"}, 3, 'creat("f", 0600) = 3'),
    ("close", [3], {}, 0, "close(3) = 0"),
    ("close", [M1], {}, -9, "close(-1) = -1 EBADF (Bad file descriptor)"),
    ("read", [3, P, 832], {"buf": b"\x7fELF\x02\x01\x01\x00"}, 8,
     'read(3, "\\177ELF\\2\\1\\1\\0", 832) = 8'),
    ("read", [0, P, 10], {}, -512,
     "read(0, 0x7ffd1000, 10) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)"),
    ("read", [3, P, 10], {}, -14, "read(3, 0x7ffd1000, 10) = -1 EFAULT (Bad address)"),
    ("write", [1, P, 40], {"buf": b"a" * 40}, 40, 'write(1, "' + "a" * 32 + '"..., 40) = 40'),
    ("write", [1, P, 3], {"buf": b"\0\x007"}, 3, 'write(1, "\\0\\0007", 3) = 3'),
    ("pread64", [3, P, 4, 64], {"buf": b"\x06\0\0\0"}, 4, 'pread64(3, "\\6\\0\\0\\0", 4, 64) = 4'),
    ("lseek", [3, M1, 0], {}, -22, "lseek(3, -1, SEEK_SET) = -1 EINVAL (Invalid argument)"),
    ("lseek", [3, 0, 2], {}, 3, "lseek(3, 0, SEEK_END) = 3"),
    ("lseek", [3, 0, 7], {}, -22, "lseek(3, 0, 0x7 /* SEEK_??? */) = -1 EINVAL (Invalid argument)"),
    ("dup3", [3, 21, 0x80000], {}, 21, "dup3(3, 21, O_CLOEXEC) = 21"),
    ("dup2", [3, 20], {}, 20, "dup2(3, 20) = 20"),
    ("pipe2", [P, 0x80800], {"fildes": b"\3\0\0\0\4\0\0\0"}, 0,
     "pipe2([3, 4], O_NONBLOCK|O_CLOEXEC) = 0"),
    ("fcntl", [3, 1, 0], {}, 1, "fcntl(3, F_GETFD) = 0x1 (flags FD_CLOEXEC)"),
    ("fcntl", [3, 1, 0], {}, 0, "fcntl(3, F_GETFD) = 0"),
    ("fcntl", [3, 2, 1], {}, 0, "fcntl(3, F_SETFD, FD_CLOEXEC) = 0"),
    ("fcntl", [3, 3, 0], {}, 0x8002, "fcntl(3, F_GETFL) = 0x8002 (flags O_RDWR|O_LARGEFILE)"),
    ("fcntl", [3, 4, 0x800], {}, 0, "fcntl(3, F_SETFL, O_RDONLY|O_NONBLOCK) = 0"),
    ("fcntl", [3, 1030, 10], {}, 10, "fcntl(3, F_DUPFD_CLOEXEC, 10) = 10"),
    ("fcntl", [3, 5, P], {}, 0, "fcntl(3, F_GETLK, 0x7ffd1000) = 0"),   # strace: {l_type=...}
    ("flock", [3, 5], {}, 0, "flock(3, LOCK_SH|LOCK_NB) = 0"),
    ("newfstatat", [AT_FDCWD, P, P, 0x100], {"filename": b"/etc\0"}, 0,
     'newfstatat(AT_FDCWD, "/etc", 0x7ffd1000, AT_SYMLINK_NOFOLLOW) = 0'),
    ("newfstatat", [3, P, P, 0x1000], {"filename": b"\0"}, 0,
     'newfstatat(3, "", 0x7ffd1000, AT_EMPTY_PATH) = 0'),
    ("statx", [AT_FDCWD, P, 0x4100, 0x7FF, P], {"filename": b"/\0"}, 0,
     'statx(AT_FDCWD, "/", AT_STATX_DONT_SYNC|AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, '
     "0x7ffd1000) = 0"),
    # socket addresses given to connect and bind (recorded at the entry, addrlen bytes)
    ("connect", [3, P, 16], {"uservaddr": b"\2\0\0\x50\x0a\0\0\x01" + bytes(8)}, -111,
     'connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.0.0.1")}, 16)'
     " = -1 ECONNREFUSED (Connection refused)"),
    ("connect", [3, P, 28], {"uservaddr": b"\x0a\0\x01\xbb" + bytes(4) + bytes(15) + b"\1"
                                          + bytes(4)}, 0,
     "connect(3, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
     'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0'),
    ("connect", [3, P, 110], {"uservaddr": b"\1\0/run/x\0" + bytes(100)}, 0,
     'connect(3, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0'),
    ("bind", [3, P, 6], {"umyaddr": b"\1\0\0abc"}, 0,
     'bind(3, {sa_family=AF_UNIX, sun_path=@"abc"}, 6) = 0'),
    ("bind", [3, P, 16], {"umyaddr": b"\x11\0" + bytes(14)}, 0,        # AF_PACKET: not decoded
     "bind(3, 0x7ffd1000, 16) = 0"),
    ("connect", [3, P, 16], {}, 0, "connect(3, 0x7ffd1000, 16) = 0"),    # not recorded
    # execve's vectors: the arguments, and the number of environment strings
    ("execve", [P, P + 64, P + 128], {"filename": b"/bin/true\0",
                                      "argv": user_data.argv_value([b"true"]),
                                      "envp": user_data.count_value(1)}, 0,
     'execve("/bin/true", ["true"], 0x7ffd1080 /* 1 var */) = 0'),
    ("execve", [P, P + 64, P + 128], {"filename": b"/bin/true\0",
                                      "envp": user_data.count_value(35)}, -2,
     'execve("/bin/true", 0x7ffd1040, 0x7ffd1080 /* 35 vars */) = -1 ENOENT '
     "(No such file or directory)"),
    # what uname and getdents64 wrote
    ("uname", [P], {"name": b"Linux".ljust(65, b"\0") + b"vm".ljust(65, b"\0") + bytes(260)}, 0,
     'uname({sysname="Linux", nodename="vm", ...}) = 0'),
    ("uname", [P], {"name": bytes(10)}, 0, "uname(0x7ffd1000) = 0"),
    ("getdents64", [3, P, 32768], {"dirent": user_data.count_value(141)}, 4480,
     "getdents64(3, 0x7ffd1000 /* 141 entries */, 32768) = 4480"),
    ("getdents64", [3, P, 32768], {"dirent": user_data.count_value(1)}, 24,
     "getdents64(3, 0x7ffd1000 /* 1 entry */, 32768) = 24"),
    ("getdents64", [3, P, 32768], {"dirent": user_data.count_value(0)}, -9,
     "getdents64(3, 0x7ffd1000, 32768) = -1 EBADF (Bad file descriptor)"),
    # poll: the array given, and the one returned with its revents
    ("poll", [P, 3, 0], {"ufds": bytes.fromhex("030000000300" "0000" "040000000400" "0000"
                                               "ffffffff0100" "0000")}, 0,
     "poll([{fd=3, events=POLLIN|POLLPRI}, {fd=4, events=POLLOUT}, {fd=-1}], 3, 0) = 0 (Timeout)"),
    ("poll", [P, 2, 1000], {"ufds": bytes.fromhex("030000000100" "1100" "040000000400" "0000")},
     1, "poll([{fd=3, events=POLLIN}, {fd=4, events=POLLOUT}], 2, 1000) = 1 "
        "([{fd=3, revents=POLLIN|POLLHUP}])"),
    ("poll", [P, 1, -1 & M1], {}, 1, "poll(0x7ffd1000, 1, -1) = 1"),           # not recorded
    ("poll", [0, 0, 10], {}, 0, "poll(NULL, 0, 10) = 0 (Timeout)"),
    # limits (given: entry data; the old ones: exit data)
    ("prlimit64", [0, 3, 0, P], {"old_rlim": (8192 * 1024).to_bytes(8, "little") + M1.to_bytes(
        8, "little")}, 0,
     "prlimit64(0, RLIMIT_STACK, NULL, {rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}) = 0"),
    ("prlimit64", [0, 7, P, 0], {"new_rlim": (1024).to_bytes(8, "little")
                                 + (524800).to_bytes(8, "little")}, 0,
     "prlimit64(0, RLIMIT_NOFILE, {rlim_cur=1024, rlim_max=524800}, NULL) = 0"),
    # signal sets and actions (given: entry data; filled: exit data)
    ("rt_sigprocmask", [0, P, P + 8, 8], {"nset": (1 << 16).to_bytes(8, "little"),
                                          "oset": bytes(8)}, 0,
     "rt_sigprocmask(SIG_BLOCK, [CHLD], [], 8) = 0"),
    ("rt_sigprocmask", [2, P, 0, 8], {"nset": (0xFFFFFFFE7FFFFFFF).to_bytes(8, "little")}, 0,
     "rt_sigprocmask(SIG_SETMASK, ~[RTMIN RT_1], NULL, 8) = 0"),
    ("rt_sigprocmask", [0, P, 0, 8], {"nset": ((1 << 41) - 1).to_bytes(8, "little")}, 0,
     "rt_sigprocmask(SIG_BLOCK, [HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE "
     "ALRM TERM STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS "
     "RTMIN RT_1 RT_2 RT_3 RT_4 RT_5 RT_6 RT_7 RT_8 RT_9], NULL, 8) = 0"),     # 41: not yet ~
    ("rt_sigprocmask", [0, P, 0, 16], {"nset": bytes(8)}, -22,
     "rt_sigprocmask(SIG_BLOCK, 0x7ffd1000, NULL, 16) = -1 EINVAL (Invalid argument)"),
    ("rt_sigaction", [2, P, P + 32, 8],
     {"act": (0x401000).to_bytes(8, "little") + (0x14000000).to_bytes(8, "little")
      + (0x7F0000001000).to_bytes(8, "little") + (1 << 1).to_bytes(8, "little"),
      "oact": bytes(32)}, 0,
     "rt_sigaction(SIGINT, {sa_handler=0x401000, sa_mask=[INT], "
     "sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x7f0000001000}, "
     "{sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0"),
    ("rt_sigaction", [13, P, 0, 8], {"act": (1).to_bytes(8, "little") + bytes(24)}, 0,
     "rt_sigaction(SIGPIPE, {sa_handler=SIG_IGN, sa_mask=[], sa_flags=0}, NULL, 8) = 0"),
    # the structures the exit data hold, as strace abbreviates them
    ("newfstatat", [3, P, P, 0x1000], {"filename": b"\0", "statbuf": stat_bytes(0o100644, 34675)},
     0, 'newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=34675, ...}, AT_EMPTY_PATH) = 0'),
    ("fstat", [1, P], {"statbuf": stat_bytes(0o20620, rdev=0x8801)}, 0,
     "fstat(1, {st_mode=S_IFCHR|0620, st_rdev=makedev(0x88, 0x1), ...}) = 0"),
    ("stat", [P, P], {"filename": b"/tmp\0", "statbuf": stat_bytes(0o41777, 4096)}, 0,
     'stat("/tmp", {st_mode=S_IFDIR|S_ISVTX|0777, st_size=4096, ...}) = 0'),
    ("lstat", [P, P], {"filename": b"/x\0", "statbuf": stat_bytes(0o100644, 1)}, -2,
     'lstat("/x", 0x7ffd1000) = -1 ENOENT (No such file or directory)'),   # failed: wrote none
    ("fstat", [1, P], {"statbuf": b"\0" * 10}, 0, "fstat(1, 0x7ffd1000) = 0"),   # cut short
    ("statx", [AT_FDCWD, P, 0x100, 0x7FF, P],
     {"filename": b"/\0", "buffer": statx_bytes(0x17FF, 0x2000, 0o40755, 4096)}, 0,
     'statx(AT_FDCWD, "/", AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, '
     "{stx_mask=STATX_BASIC_STATS|STATX_MNT_ID, stx_attributes=STATX_ATTR_MOUNT_ROOT, "
     "stx_mode=S_IFDIR|0755, stx_size=4096, ...}) = 0"),
    ("access", [P, 6], {"filename": b"/etc/passwd\0"}, 0, 'access("/etc/passwd", R_OK|W_OK) = 0'),
    ("access", [P, 0], {"filename": b"/x\0"}, -2,
     'access("/x", F_OK) = -1 ENOENT (No such file or directory)'),
    ("faccessat2", [AT_FDCWD, P, 1, 0x200], {"filename": b"x\0"}, 0,
     'faccessat2(AT_FDCWD, "x", X_OK, AT_EACCESS) = 0'),
    ("mkdir", [P, 0o755], {"pathname": b"d\0"}, 0, 'mkdir("d", 0755) = 0'),
    ("mknod", [P, 0o20600, 0x103], {"filename": b"n\0"}, 0,
     'mknod("n", S_IFCHR|0600, makedev(0x1, 0x3)) = 0'),
    ("mknod", [P, 0o10644, 0], {"filename": b"f\0"}, 0, 'mknod("f", S_IFIFO|0644) = 0'),
    ("unlinkat", [AT_FDCWD, P, 0x200], {"pathname": b"d\0"}, 0,
     'unlinkat(AT_FDCWD, "d", AT_REMOVEDIR) = 0'),
    ("renameat2", [AT_FDCWD, P, AT_FDCWD, P, 1], {"oldname": b"a\0", "newname": b"b\0"}, 0,
     'renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE) = 0'),
    ("chown", [P, 0xFFFFFFFF, 0xFFFFFFFF], {"filename": b"f\0"}, 0, 'chown("f", -1, -1) = 0'),
    ("umask", [0o22], {}, 0o2, "umask(022) = 002"),
    ("umask", [0], {}, 0o22, "umask(000) = 022"),
    ("readlink", [P, P, 4096], {"path": b"/proc/self/exe\0", "buf": b"/usr/bin/ls"}, 11,
     'readlink("/proc/self/exe", "/usr/bin/ls", 4096) = 11'),
    ("getcwd", [P, 4096], {"buf": b"/tmp\0"}, 5, 'getcwd("/tmp", 4096) = 5'),
    ("getdents64", [3, P, 32768], {}, 640, "getdents64(3, 0x7ffd1000, 32768) = 640"),
    ("close_range", [3, 0xFFFFFFFF, 0], {}, 0, "close_range(3, 4294967295, 0) = 0"),
    ("ioctl", [1, 0x5401, P], {}, -25,
     "ioctl(1, TCGETS, 0x7ffd1000) = -1 ENOTTY (Inappropriate ioctl for device)"),
    ("ioctl", [3, 0x541B, P], {}, 0, "ioctl(3, FIONREAD, 0x7ffd1000) = 0"),
    ("ioctl", [3, 0x12345678, 0], {}, -25,
     "ioctl(3, 0x12345678, 0) = -1 ENOTTY (Inappropriate ioctl for device)"),  # strace: _IOC()
    # memory
    ("mmap", [0, 8192, 3, 0x22, 0xFFFFFFFF, 0], {}, 0x7F9E3759F000,
     "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f9e3759f000"),
    ("mmap", [0x7F9E3756F000, 110592, 5, 0x812, 3, 0x7000], {}, 0x7F9E3756F000,
     "mmap(0x7f9e3756f000, 110592, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, "
     "3, 0x7000) = 0x7f9e3756f000"),
    ("mmap", [0, 4096, 1, 0x54040021, M1, 0], {}, -12,
     "mmap(NULL, 4096, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT, -1, 0)"
     " = -1 ENOMEM (Cannot allocate memory)"),
    ("mprotect", [P, 4096, 0], {}, 0, "mprotect(0x7ffd1000, 4096, PROT_NONE) = 0"),
    ("mprotect", [P, 4096, 0x10000001], {}, 0,
     "mprotect(0x7ffd1000, 4096, PROT_READ|0x10000000) = 0"),
    ("munmap", [P, 4096], {}, 0, "munmap(0x7ffd1000, 4096) = 0"),
    ("mremap", [P, 4096, 8192, 1, 0], {}, 0x7F0000000000,
     "mremap(0x7ffd1000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f0000000000"),
    ("madvise", [P, 4096, 4], {}, 0, "madvise(0x7ffd1000, 4096, MADV_DONTNEED) = 0"),
    ("brk", [0], {}, 0x5597E0D14000, "brk(NULL) = 0x5597e0d14000"),
    # processes and signals
    ("clone", [0x1200011, 0, 0, P, 0], {}, 1235,
     "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, "
     "child_tidptr=0x7ffd1000) = 1235"),
    ("clone3", [P, 88], {}, 1236, "clone3(0x7ffd1000, 88) = 1236"),  # strace: {flags=...}
    ("vfork", [], {}, 1237, "vfork() = 1237"),
    ("execve", [P, P, P], {"filename": b"/bin/ls\0"}, 0,
     'execve("/bin/ls", 0x7ffd1000, 0x7ffd1000) = 0'),            # strace: ["ls", "/"], /* vars */
    ("exit_group", [3], {}, None, "exit_group(3) = ?"),
    ("wait4", [M1, P, 0, 0], {"stat_addr": b"\0\3\0\0"}, 1235,
     "wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 3}], 0, NULL) = 1235"),
    ("wait4", [1235, P, 0, 0], {"stat_addr": b"\x09\0\0\0"}, 1235,
     "wait4(1235, [{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}], 0, NULL) = 1235"),
    ("wait4", [M1, P, 1, 0], {}, -10,
     "wait4(-1, 0x7ffd1000, WNOHANG, NULL) = -1 ECHILD (No child processes)"),
    ("kill", [1234, 9], {}, 0, "kill(1234, SIGKILL) = 0"),
    ("kill", [1234, 0], {}, 0, "kill(1234, 0) = 0"),
    ("tgkill", [1234, 1235, 34], {}, 0, "tgkill(1234, 1235, SIGRT_2) = 0"),
    ("rt_sigaction", [32, P, 0, 8], {}, 0, "rt_sigaction(SIGRTMIN, 0x7ffd1000, NULL, 8) = 0"),
    ("rt_sigprocmask", [0, 0, P, 8], {}, 0, "rt_sigprocmask(SIG_BLOCK, NULL, 0x7ffd1000, 8) = 0"),
    ("futex", [P, 0x81, 1, 0, 0, 0], {}, 0, "futex(0x7ffd1000, FUTEX_WAKE_PRIVATE, 1) = 0"),
    ("futex", [P, 0x80, 2, 0, 0, 0], {}, -11,
     "futex(0x7ffd1000, FUTEX_WAIT_PRIVATE, 2, NULL) = -1 EAGAIN (Resource temporarily unavailable)"),
    ("futex", [P, 0x109, 0, 0, 0, 0xFFFFFFFF], {}, 0,
     "futex(0x7ffd1000, FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_MATCH_ANY) = 0"),
    ("futex", [P, 0x84, 1, 2, P, 0], {}, 0,
     "futex(0x7ffd1000, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2, 0x7ffd1000, 0) = 0"),
    ("futex", [P, 10, 1, 0, 0, 0x10], {}, 0, "futex(0x7ffd1000, FUTEX_WAKE_BITSET, 1, 0x10) = 0"),
    ("set_tid_address", [P], {}, 1234, "set_tid_address(0x7ffd1000) = 1234"),
    ("set_robust_list", [P, 24], {}, 0, "set_robust_list(0x7ffd1000, 24) = 0"),
    ("rseq", [P, 0x20, 0, 0x53053053], {}, 0, "rseq(0x7ffd1000, 0x20, 0, 0x53053053) = 0"),
    ("arch_prctl", [0x1002, P], {}, 0, "arch_prctl(ARCH_SET_FS, 0x7ffd1000) = 0"),
    ("arch_prctl", [0x3001, P], {}, -22,
     "arch_prctl(0x3001 /* ARCH_??? */, 0x7ffd1000) = -1 EINVAL (Invalid argument)"),
    ("prlimit64", [0, 3, 0, P], {}, 0, "prlimit64(0, RLIMIT_STACK, NULL, 0x7ffd1000) = 0"),
    ("prctl", [1, 9, 0, 0, 0], {}, 0, "prctl(PR_SET_PDEATHSIG, SIGKILL) = 0"),
    ("personality", [0xFFFFFFFF], {}, 0, "personality(0xffffffff) = 0 (PER_LINUX)"),
    ("personality", [0x40000], {}, 0, "personality(PER_LINUX|ADDR_NO_RANDOMIZE) = 0 (PER_LINUX)"),
    ("getpid", [], {}, 1234, "getpid() = 1234"),
    ("getrandom", [P, 4, 1], {"ubuf": b"\x35\x7d\xdb\xa4"}, 4,
     'getrandom("\\x35\\x7d\\xdb\\xa4", 4, GRND_NONBLOCK) = 4'),
    ("clock_gettime", [7, P], {}, 0, "clock_gettime(CLOCK_BOOTTIME, 0x7ffd1000) = 0"),
    ("nanosleep", [P, 0], {}, 0, "nanosleep(0x7ffd1000, NULL) = 0"),        # no enter data
    ("nanosleep", [P, 0], {"rqtp": (2).to_bytes(8, "little") + (500).to_bytes(8, "little")}, 0,
     "nanosleep({tv_sec=2, tv_nsec=500}, NULL) = 0"),
    ("clock_nanosleep", [0, 0, P, P], {"rqtp": (1).to_bytes(8, "little") + bytes(8)}, 0,
     "clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=1, tv_nsec=0}, 0x7ffd1000) = 0"),
    ("sched_yield", [], {}, 0, "sched_yield() = 0"),
    # network
    ("socket", [1, 0x80001, 0], {}, 3, "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3"),
    ("socket", [2, 2, 0], {}, 4, "socket(AF_INET, SOCK_DGRAM, IPPROTO_IP) = 4"),
    ("socket", [10, 0x801, 6], {}, 5, "socket(AF_INET6, SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 5"),
    ("socket", [16, 3, 0], {}, 6, "socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) = 6"),
    ("socket", [99, 1, 0], {}, -97,
     "socket(99 /* AF_??? */, SOCK_STREAM, 0) = -1 EAFNOSUPPORT (Address family not supported by protocol)"),
    ("socketpair", [1, 1, 0, P], {"usockvec": b"\5\0\0\0\6\0\0\0"}, 0,
     "socketpair(AF_UNIX, SOCK_STREAM, 0, [5, 6]) = 0"),
    ("connect", [3, P, 110], {}, -2,
     "connect(3, 0x7ffd1000, 110) = -1 ENOENT (No such file or directory)"),  # strace: {sa_family=...}
    ("setsockopt", [3, 1, 2, P, 4], {}, 0,
     "setsockopt(3, SOL_SOCKET, SO_REUSEADDR, 0x7ffd1000, 4) = 0"),        # no enter data
    ("setsockopt", [3, 1, 2, P, 4], {"optval": b"\1\0\0\0"}, 0,
     "setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0"),
    ("setsockopt", [3, 1, 7, P, 8], {"optval": b"\0\0\2\0\0\0\0\0"}, 0,
     "setsockopt(3, SOL_SOCKET, SO_SNDBUF, [131072], 8) = 0"),           # int-like: 4 bytes
    ("setsockopt", [3, 1, 7, P, 2], {"optval": b"\0\2"}, -22,
     "setsockopt(3, SOL_SOCKET, SO_SNDBUF, 0x7ffd1000, 2) = -1 EINVAL (Invalid argument)"),
    ("setsockopt", [3, 1, 13, P, 8], {"optval": b"\1\0\0\0\5\0\0\0"}, 0,
     "setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=5}, 8) = 0"),
    ("setsockopt", [3, 1, 26, P, 16], {"optval": bytes(16)}, 0,
     "setsockopt(3, SOL_SOCKET, SO_ATTACH_FILTER, 0x7ffd1000, 16) = 0"),   # strace: {len=...}
    ("setsockopt", [3, 6, 1, P, 4], {"optval": b"\1\0\0\0"}, 0,
     "setsockopt(3, SOL_TCP, TCP_NODELAY, [1], 4) = 0"),
    ("setsockopt", [3, 6, 13, P, 5], {"optval": b"cubic"}, 0,
     'setsockopt(3, SOL_TCP, TCP_CONGESTION, "cubic", 5) = 0'),
    ("setsockopt", [3, 0, 35, P, 8], {"optval": bytes(8)}, 0,
     "setsockopt(3, SOL_IP, IP_ADD_MEMBERSHIP, 0x7ffd1000, 8) = 0"),     # strace: {imr_...}
    ("setsockopt", [3, 41, 26, P, 4], {"optval": b"\1\0\0\0"}, 0,
     "setsockopt(3, SOL_IPV6, IPV6_V6ONLY, [1], 4) = 0"),
    ("setsockopt", [3, 6, 99, P, 4], {"optval": b"\1\0\0\0"}, -92,
     "setsockopt(3, SOL_TCP, 0x63 /* TCP_??? */, [1], 4) = -1 ENOPROTOOPT (Protocol not available)"),
    ("setsockopt", [3, 270, 1, P, 4], {"optval": b"\3\0\0\0"}, 0,
     "setsockopt(3, SOL_NETLINK, 1, [3], 4) = 0"),           # strace: NETLINK_ADD_MEMBERSHIP
    ("setsockopt", [3, 1, 2, 0, 0], {}, -14,
     "setsockopt(3, SOL_SOCKET, SO_REUSEADDR, NULL, 0) = -1 EFAULT (Bad address)"),
    ("accept4", [3, P, P + 8, 0x80000], {"upeer_addrlen": b"\x80\0\0\0",
     "upeer_sockaddr": b"\x10\0\0\0" + IN4}, 5,
     'accept4(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.0.0.1")}, '
     '[128 => 16], SOCK_CLOEXEC) = 5'),
    ("accept4", [3, P, P + 8, 0x800], {"upeer_addrlen": b"\x80\0\0\0"}, -11,
     "accept4(3, 0x7ffd1000, [128], SOCK_NONBLOCK) = -1 EAGAIN (Resource temporarily unavailable)"),
    ("accept", [3, 0, 0], {}, 4, "accept(3, NULL, NULL) = 4"),
    ("accept", [3, P, P + 8], {}, 4, "accept(3, 0x7ffd1000, 0x7ffd1008) = 4"),  # not recorded
    ("getsockname", [3, P, P + 8], {"usockaddr_len": b"\x10\0\0\0",
     "usockaddr": b"\x10\0\0\0" + IN4}, 0,
     'getsockname(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.0.0.1")}, [16]) = 0'),
    ("getpeername", [3, P, P + 8], {"usockaddr_len": b"\x08\0\0\0",
     "usockaddr": b"\x10\0\0\0" + IN4[:8]}, 0,
     'getpeername(3, {sa_family=AF_INET, sa_data="\\0P\\n\\0\\0\\1"}, [8 => 16]) = 0'),
    ("getsockname", [3, P, P + 8], {"usockaddr_len": b"\x6e\0\0\0",
     "usockaddr": b"\x02\0\0\0\1\0"}, 0,
     "getsockname(3, {sa_family=AF_UNIX}, [110 => 2]) = 0"),
    # terminals: the termios the tests' own pty gives (strace 6.1's text), and odd values
    ("ioctl", [4, 0x5401, P], {"arg": termios(0x500, 0x5, 0xbf, 0x8a3b)}, 0,
     "ioctl(4, TCGETS, {c_iflag=ICRNL|IXON, c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|OPOST|ONLCR, "
     "c_cflag=B38400|CS8|CREAD, c_lflag=ISIG|ICANON|ECHO|ECHOE|ECHOK|IEXTEN|ECHOCTL|ECHOKE, "
     "...}) = 0"),
    ("ioctl", [3, 0x5402, P], {"arg": termios(0, 0, 0, 0)}, 0,
     "ioctl(3, SNDCTL_TMR_START or TCSETS, {c_iflag=, c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|, "
     "c_cflag=B0|CS5|, c_lflag=, ...}) = 0"),
    ("ioctl", [3, 0x5403, P], {"arg": termios(1 << 31, 1 << 31, 0x400d002e, 1 << 30)}, 0,
     "ioctl(3, SNDCTL_TMR_STOP or TCSETSW, {c_iflag=0x80000000, "
     "c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|0x80000000, c_cflag=B19200|B9600<<IBSHIFT|CS7|CMSPAR, "
     "c_lflag=0x40000000, ...}) = 0"),
    ("ioctl", [3, 0x5402, P], {"arg": termios(0, 0x1d00, 0, 0)}, 0,         # TAB3, CR2, NL1
     "ioctl(3, SNDCTL_TMR_START or TCSETS, {c_iflag=, c_oflag=NL1|CR2|XTABS|BS0|VT0|FF0|, "
     "c_cflag=B0|CS5|, c_lflag=, ...}) = 0"),
    ("ioctl", [4, 0x5401, P], {}, -25,
     "ioctl(4, TCGETS, 0x7ffd1000) = -1 ENOTTY (Inappropriate ioctl for device)"),
    ("ioctl", [4, 0x5413, P], {"arg": b"\x18\0\x50\0\0\0\0\0"}, 0,
     "ioctl(4, TIOCGWINSZ, {ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}) = 0"),
    ("ioctl", [4, 0x541b, P], {"arg": b"\3\0\0\0"}, 0, "ioctl(4, FIONREAD, [3]) = 0"),
    ("ioctl", [4, 0x5421, P], {"arg": b"\1\0\0\0"}, 0, "ioctl(4, FIONBIO, [1]) = 0"),
    ("ioctl", [7, 0x80045430, P], {"arg": b"\5\0\0\0"}, 0, "ioctl(7, TIOCGPTN, [5]) = 0"),
    ("ioctl", [4, 0x1234, P], {}, -22,
     "ioctl(4, 0x1234, 0x7ffd1000) = -1 EINVAL (Invalid argument)"),
    ("getsockopt", [3, 1, 4, P, P + 8], {"optlen": b"\4\0\0\0",
     "optval": b"\4\0\0\0" + b"\x6f\0\0\0"}, 0,
     "getsockopt(3, SOL_SOCKET, SO_ERROR, [111], [4]) = 0"),
    ("getsockopt", [3, 6, 13, P, P + 8], {"optlen": b"\x40\0\0\0",
     "optval": b"\x10\0\0\0" + b"bbr" + bytes(13)}, 0,
     'getsockopt(3, SOL_TCP, TCP_CONGESTION, "bbr\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0", '
     '[64 => 16]) = 0'),
    ("getsockopt", [4, 1, 17, P, P + 8], {"optlen": b"\x0c\0\0\0",
     "optval": b"\x0c\0\0\0" + (42).to_bytes(4, "little") + bytes(8)}, 0,
     "getsockopt(4, SOL_SOCKET, SO_PEERCRED, {pid=42, uid=0, gid=0}, [12]) = 0"),
    ("getsockopt", [3, 1, 8, P, P + 8], {"optlen": b"\2\0\0\0", "optval": b"\2\0\0\0\0\0"},
     0, 'getsockopt(3, SOL_SOCKET, SO_RCVBUF, "\\x00\\x00", [2]) = 0'),
    ("getsockopt", [3, 1, 99, P, P + 8], {"optlen": b"\4\0\0\0"}, -92,
     "getsockopt(3, SOL_SOCKET, 0x63 /* SO_??? */, 0x7ffd1000, [4]) = "
     "-1 ENOPROTOOPT (Protocol not available)"),
    ("getsockopt", [3, 1, 4, P, P + 8], {}, 0,
     "getsockopt(3, SOL_SOCKET, SO_ERROR, 0x7ffd1000, 0x7ffd1008) = 0"),    # not recorded
    ("sendto", [4, P, 3, 0x4040, 0, 0], {}, 3,
     "sendto(4, 0x7ffd1000, 3, MSG_DONTWAIT|MSG_NOSIGNAL, NULL, 0) = 3"),   # no enter data
    ("sendto", [4, P, 3, 0x4040, 0, 0], {"buff": b"abc"}, 3,
     'sendto(4, "abc", 3, MSG_DONTWAIT|MSG_NOSIGNAL, NULL, 0) = 3'),
    ("recvfrom", [3, P, 256, 0, 0, 0], {"ubuf": b"abc"}, 3,
     'recvfrom(3, "abc", 256, 0, NULL, NULL) = 3'),
    ("shutdown", [3, 1], {}, 0, "shutdown(3, SHUT_WR) = 0"),
    ("epoll_create1", [0x80000], {}, 7, "epoll_create1(EPOLL_CLOEXEC) = 7"),
    ("eventfd2", [0, 0x80800], {}, 8, "eventfd2(0, EFD_CLOEXEC|EFD_NONBLOCK) = 8"),
    ("memfd_create", [P, 3], {"uname": b"calls\0"}, 9,
     'memfd_create("calls", MFD_CLOEXEC|MFD_ALLOW_SEALING) = 9'),
    # the kernel's other errors
    ("read", [3, P, 1], {}, -600, "read(3, 0x7ffd1000, 1) = -1 (errno 600)"),
    ("ioctl", [3, 0x5401, P], {}, -515,
     "ioctl(3, TCGETS, 0x7ffd1000) = -1 ENOIOCTLCMD (Unknown error 515)"),
    ("nanosleep", [P, P], {}, -516,
     "nanosleep(0x7ffd1000, 0x7ffd1000) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)"),
]


def one_line(name, args, data, ret, **options):
    lines = []
    view = CallView(lines.append, ViewOptions(pids=PID_NONE, column=0, **options))
    view.enter(100, name, args, 0, {k: v for k, v in data.items()})
    if ret is not None:
        view.exit(100, name, ret, 1000, {k: v for k, v in data.items()})
    view.finish()
    return lines[0]


@pytest.mark.parametrize("name, args, data, ret, line", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_decoder(name, args, data, ret, line):
    assert one_line(name, args, data, ret) == line


def test_the_table_covers_sixty_calls():
    assert len({c[0] for c in CASES}) >= 60


@pytest.mark.parametrize("status, text", [
    (0x0300, "[{WIFEXITED(s) && WEXITSTATUS(s) == 3}]"),
    (0x0009, "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}]"),
    (0x008B, "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV && WCOREDUMP(s)}]"),
    (0x137F, "[{WIFSTOPPED(s) && WSTOPSIG(s) == SIGSTOP}]"),
    (0xFFFF, "[{WIFCONTINUED(s)}]"),
])
def test_wait_status(status, text):
    assert wait_status_text(Xlat.for_arch("x86_64"), status) == text


@pytest.mark.parametrize("data, length, max_len, mode, text", [
    (b"abc", 3, 32, 0, '"abc"'),
    (b"abc", 10, 32, 0, '"abc"...'),                   # fewer bytes known than the length
    (b"abcdef", 6, 4, 0, '"abcd"...'),                 # -s 4
    (b"\0\x001", 3, 32, 0, '"\\0\\0001"'),             # an octal digit follows: three digits
    (b"\t\n\r\v\f\"\\", 7, 32, 0, '"\\t\\n\\r\\v\\f\\"\\\\"'),
    (b"\x7f\xff\x80", 3, 32, 0, '"\\177\\377\\200"'),
    (b"ok\n", 3, 32, HEX_NON_ASCII, '"ok\\n"'),        # -x: white space is not a reason
    (b"ok\x01", 3, 32, HEX_NON_ASCII, '"\\x6f\\x6b\\x01"'),
    (b"ok", 2, 32, HEX_ALL, '"\\x6f\\x6b"'),           # -xx
])
def test_quote(data, length, max_len, mode, text):
    assert quote(data, length, max_len, mode) == text


def test_cstrings_stop_at_nul_and_mark_cuts():
    assert quote_cstring(b"abc\0def") == '"abc"'
    assert quote_cstring(b"abcdef", 3) == '"abc"...'
    assert quote_cstring(b"abc", None, cut=True) == '"abc"...'
    assert quote_cstring(b"a" * 200, None) == '"' + "a" * 200 + '"'   # paths: never cut


def test_paths_ignore_s_buffers_honour_it():
    path = b"/" + b"p" * 100 + b"\0"
    line = one_line("openat", [AT_FDCWD, P, 0, 0], {"filename": path}, 3, max_len=8)
    assert '"/' + "p" * 100 + '"' in line
    assert one_line("write", [1, P, 10], {"buf": b"0123456789"}, 10, max_len=4) == \
        'write(1, "0123"..., 10) = 10'


def test_a_string_the_kernel_cut_ends_with_dots():
    line = one_line("openat", [AT_FDCWD, P, 0, 0], {"filename": b"/usr/lib/lo...\0"}, 3)
    assert line == 'openat(AT_FDCWD, "/usr/lib/lo"..., O_RDONLY) = 3'


def test_hex_options():
    assert one_line("write", [1, P, 3], {"buf": b"ok\x01"}, 3, hex_mode=HEX_NON_ASCII) == \
        'write(1, "\\x6f\\x6b\\x01", 3) = 3'
