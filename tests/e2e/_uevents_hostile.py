"""Writers of user events for the adversarial tests: an honest one, and a hostile neighbour of
the same user that misuses its own ring or the session's files in one precise way.

Run as a script (the session comes from ``USERTRACE_SESSION``)::

    python _uevents_hostile.py honest N          # emit N records, then obey stdin:
                                                 #   "more K": K more;  "exit"
    python _uevents_hostile.py hostile ACTION    # emit record 0 ("ring"), wait for "go",
                                                 # do ACTION ("done"), wait for "exit"
    python _uevents_hostile.py crowd THREADS N   # THREADS threads emit N records each

The hostile actions work on the raw bytes of the files, as docs/user_events.md lays them out
(not through the library's writer), as a program in another language would:

    misalign, backwards, overrun     head set 3 past, 8 before the tail, a ring and 8 ahead
    lie                              a record whose length runs past what is published
    garbage:SEED                     random bytes published as records
    truncate:SIZE                    one more record published, then the ring cut to SIZE
    truncate-session:NAME            the session's file NAME cut to 0 bytes
    fake-rings:N                     N files named ring-* that are not rings (or not safe)
"""

from __future__ import annotations

import mmap
import os
import random
import struct
import sys
import threading

HONEST = "honest u32 i; __data_loc char[] s"
HOSTILE = "hostile u32 i"
CROWD = "crowd u32 t; u32 i"
HEAD = 64 // 8          # RH_HEAD as a u64 index
TAIL = 128 // 8
HEADER = 4096


def session_dir() -> str:
    return os.environ["USERTRACE_SESSION"]


def own_ring() -> tuple[str, int]:
    """The ring file of this process's main thread, and its descriptor."""
    prefix = f"ring-{os.getpid()}-"
    name = next(n for n in os.listdir(session_dir()) if n.startswith(prefix))
    return name, os.open(os.path.join(session_dir(), name), os.O_RDWR)


def act(action: str, ev) -> None:
    kind, _, arg = action.partition(":")
    if kind == "truncate-session":
        fd = os.open(os.path.join(session_dir(), arg), os.O_RDWR | os.O_NOFOLLOW)
        os.ftruncate(fd, 0)
        return
    if kind == "fake-rings":
        fake_rings(int(arg))
        return
    if kind == "truncate":
        assert ev.emit(1)
        _, fd = own_ring()
        os.ftruncate(fd, int(arg))
        return
    _, fd = own_ring()
    mm = mmap.mmap(fd, 0)
    q = memoryview(mm).cast("Q")
    size = q[16 // 8]
    head = q[HEAD]
    if kind == "misalign":
        q[HEAD] = head + 3
    elif kind == "backwards":
        q[HEAD] = head - 8
    elif kind == "overrun":
        q[HEAD] = q[TAIL] + size + 8
    elif kind == "lie":                  # record 0, at the start, says what the event is
        index_word, common_type = struct.unpack_from("=I20xH", mm, HEADER + 4)
        struct.pack_into("=IIQiIHBBi", mm, HEADER + head % size, 1 << 20, index_word, 1, 0, 0,
                         common_type, 0, 0, os.getpid())
        q[HEAD] = head + 40
    elif kind == "garbage":
        rnd = random.Random(int(arg))
        n = 8 * rnd.randrange(1, 200)
        pos = head % size
        n = min(n, size - pos)
        mm[HEADER + pos: HEADER + pos + n] = rnd.randbytes(n)
        q[HEAD] = head + n
    else:
        raise SystemExit(f"unknown action {action}")


def fake_rings(n: int) -> None:
    d = session_dir()
    pid, tid = os.getpid(), threading.get_native_id()
    rnd = random.Random(n)
    for k in range(n):
        path = os.path.join(d, f"ring-{pid}-{tid}-fake{k}")
        kind = k % 5
        if kind == 0:                                    # garbage of a page
            data = rnd.randbytes(HEADER)
        elif kind == 1:                                  # a header claiming 1 GiB of data
            data = struct.pack("=8sIIQII16sQ", b"UTUERNG1", 1, 4096, 1 << 30, pid, tid,
                               b"fake", 0).ljust(HEADER, b"\0")
        elif kind == 2:                                  # the right size, another pid
            data = struct.pack("=8sIIQII16sQ", b"UTUERNG1", 1, 4096, 64 << 10, 1, 1,
                               b"fake", 0).ljust(HEADER + (64 << 10), b"\0")
        elif kind == 3:
            os.symlink("/etc/passwd", path)
            continue
        else:
            os.mkdir(path, 0o700)
            continue
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)


def main(argv: list[str]) -> None:
    from usertrace.sources.user_events import register
    role = argv[0]
    if role == "honest":
        ev = register(HONEST)
        emitted = 0

        def emit(k):
            nonlocal emitted
            ok = sum(ev.emit(i, f"h{i}") for i in range(emitted, emitted + k))
            emitted += k
            print(ok, flush=True)
        emit(int(argv[1]))
        for line in sys.stdin:
            if line.startswith("more"):
                emit(int(line.split()[1]))
            else:
                break
    elif role == "hostile":
        ev = register(HOSTILE)
        assert ev.emit(0)
        print("ring", flush=True)
        sys.stdin.readline()
        act(argv[1], ev)
        print("done", flush=True)
        sys.stdin.readline()
        os._exit(0)          # no clean-up: the ring may be cut short under our own mapping
    elif role == "crowd":
        ev = register(CROWD)
        nth, n = int(argv[1]), int(argv[2])
        oks = []

        def work(t):
            oks.append(sum(ev.emit(t, i) for i in range(n)))
        ths = [threading.Thread(target=work, args=(t,)) for t in range(nth)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        print(sum(oks), flush=True)
        sys.stdin.readline()
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1:])
