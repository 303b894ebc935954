"""Ring buffer throughput: events written per second, and events read back and decoded into
dicts with RecordCodec, for syscall-sized records.  Medians of interleaved runs.

    python benchmarks/bench_ring.py [--events 200000] [--runs 7]

encode      RingBuffer.write() of a 48-byte payload, time stamps precomputed
encode+ts   the same with time.monotonic_ns() taken per event, as a tracer does
pages       decode_page() of the pages only: (ts, payload) per event
decode      pages decoded, every record turned into a dict by RecordCodec and dropped (what a
            consumer that filters, counts or prints does)
decode+keep the same, all the dicts kept in a list
codec       RecordCodec.decode() alone on the same record
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from usertrace.buffer.ring import RingBuffer, iter_events  # noqa: E402
from usertrace.catalog import known_events  # noqa: E402
from usertrace.events.records import RecordCodec  # noqa: E402

# sys_enter_write as the kernel has it (ours equals kernel 6.18's, ID aside): 8 fields, a 40-byte record
FORMAT = known_events().get("syscalls", "sys_enter_write")



def bench_encode(n: int, payload: bytes) -> float:
    rb = RingBuffer(nr_pages=256, overwrite=True)
    write = rb.write
    stamps = range(10**12, 10**12 + 150 * n, 150)
    t0 = time.perf_counter()
    for ts in stamps:
        write(ts, payload)
    return n / (time.perf_counter() - t0)


def bench_encode_clock(n: int, payload: bytes) -> float:
    rb = RingBuffer(nr_pages=256, overwrite=True)
    write = rb.write
    clock = time.monotonic_ns
    t0 = time.perf_counter()
    for _ in range(n):
        write(clock(), payload)
    return n / (time.perf_counter() - t0)


def make_pages(n: int, record: bytes) -> list[bytes]:
    rb = RingBuffer(nr_pages=n // 70 + 2, overwrite=False)
    for i in range(n):
        if not rb.write(10**12 + 150 * i, record):
            raise SystemExit("bench: the buffer is too small")
    return list(rb.iter_pages())


def bench_pages(pages: list[bytes], n: int) -> float:
    t0 = time.perf_counter()
    count = 0
    for _ in iter_events(pages):
        count += 1
    dt = time.perf_counter() - t0
    assert count == n
    return n / dt


def bench_decode(pages: list[bytes], codec: RecordCodec, n: int) -> float:
    decode = codec.decode
    count = 0
    t0 = time.perf_counter()
    for _, payload in iter_events(pages):
        count += decode(payload)["count"] == 4096
    dt = time.perf_counter() - t0
    assert count == n
    return n / dt


def bench_decode_keep(pages: list[bytes], codec: RecordCodec, n: int) -> float:
    decode = codec.decode
    t0 = time.perf_counter()
    records = [decode(payload) for _, payload in iter_events(pages)]
    dt = time.perf_counter() - t0
    assert len(records) == n and records[-1]["count"] == 4096
    return n / dt


def bench_codec(codec: RecordCodec, record: bytes, n: int) -> float:
    decode = codec.decode
    view = memoryview(record)
    t0 = time.perf_counter()
    for _ in range(n):
        decode(view)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    n = args.events
    codec = RecordCodec(FORMAT)
    record = codec.encode({"common_pid": 4242, "__syscall_nr": 1, "fd": 1,
                           "buf": 0x7FFD12345678, "count": 4096})
    payload = bytes(range(48))
    pages = make_pages(n, record)
    results: dict[str, list[float]] = {k: [] for k in
                                       ("encode", "encode+ts", "pages", "decode", "decode+keep",
                                        "codec")}
    for _ in range(args.runs):          # interleaved, so that noise spreads over all
        results["encode"].append(bench_encode(n, payload))
        results["encode+ts"].append(bench_encode_clock(n, payload))
        results["pages"].append(bench_pages(pages, n))
        results["decode"].append(bench_decode(pages, codec, n))
        results["decode+keep"].append(bench_decode_keep(pages, codec, n))
        results["codec"].append(bench_codec(codec, record, n))
    print(f"ring buffer, {n} events x {args.runs} runs, Python {sys.version.split()[0]}")
    print(f"  record: {len(record)} bytes, {len(codec.format.all_fields())} fields; "
          f"encode payload: {len(payload)} bytes")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"  {name:<11} {med:>11,.0f} /s   ({1e9 / med:6.0f} ns each; "
              f"min {min(values):,.0f}, max {max(values):,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
