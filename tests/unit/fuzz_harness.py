"""Seeded mutation of the readers' inputs, run in a child process with a memory limit.

    python fuzz_harness.py KIND SEED COUNT BUDGET_S [BASE...]     (prints a JSON list of failures)

KIND ``tracedat``: each BASE file mutated (bytes flipped, numbers poked at aligned offsets,
cut, spliced), then opened with :class:`usertrace.trace.Trace`, counted, and every event
rendered as text and as JSON.  ``format``: format texts (BASE files, or every syscall
format) mutated as text (characters, huge numbers, long declarations, deep parentheses)
and parsed; what parses is rendered again and parsed back, and a record of random bytes is
decoded and printed.  ``printfmt``: print fmts generated from a small C grammar (nesting,
casts, shifts by record fields, widths) over one format, rendered for random records.

Each input must end in a result or a clean error (a UsertraceError or TraceDatError) within
PER_INPUT_S seconds; the process runs under RLIMIT_AS of MEMORY_LIMIT bytes, so a
MemoryError is a failure too.  A failure is reported with the seed and index that remake
its input.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

PER_INPUT_S = 5
MEMORY_LIMIT = 1 << 30


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout(f"an input took more than {PER_INPUT_S} s")


INTERESTING = [0, 1, 2, 3, 4, 7, 8, 16, 28, 29, 30, 31, 32, 255, 4096, 4097, 65535, 65536,
               1 << 20, 1 << 27, 1 << 30, 1 << 31, (1 << 32) - 1, 1 << 40, 1 << 62,
               (1 << 63), (1 << 64) - 1]


def mutate_bytes(raw: bytes, rng: random.Random) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        how = rng.randrange(6)
        if how == 0:                                    # flip a few bytes
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif how in (1, 2):                             # an interesting number, aligned
            size = 4 if how == 1 else 8
            at = rng.randrange(0, max(len(b) - size, 1)) & ~(size - 1)
            v = rng.choice(INTERESTING) & ((1 << (8 * size)) - 1)
            b[at:at + size] = v.to_bytes(size, rng.choice(("little", "big")))
        elif how == 3:                                  # cut
            b = b[:rng.randrange(1, len(b))]
        elif how == 4:                                  # splice a slice elsewhere
            a = rng.randrange(len(b))
            piece = b[a:a + rng.randint(1, 64)]
            at = rng.randrange(len(b))
            b[at:at + len(piece)] = piece
        else:                                           # zero a range
            a = rng.randrange(len(b))
            n = rng.randint(1, 256)
            b[a:a + n] = bytes(len(b[a:a + n]))
        if not b:
            b = bytearray(b"\0")
    return bytes(b)


def run_tracedat(path: Path) -> None:
    from usertrace.buffer.tracedat import TraceDatError
    from usertrace.errors import UsertraceError
    from usertrace.output.jsonl import JsonRenderer
    from usertrace.output.text import TextRenderer
    from usertrace.trace import Trace

    try:
        with Trace(path) as t:
            t.counts()
            t.format_problems()
            for renderer in (TextRenderer(t), JsonRenderer(t)):
                for batch in t.batches(renderer):
                    "".join(batch)
            for ev in t.events():
                pass
    except (UsertraceError, TraceDatError):
        pass


# -- format texts ----------------------------------------------------------------------------

def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        how = rng.randrange(9)
        i = rng.randrange(len(lines))
        line = lines[i]
        if how == 0 and line:                                   # a character
            at = rng.randrange(len(line))
            lines[i] = line[:at] + rng.choice("\t ;:[]()0x9aZ_*\"\\%,") + line[at + 1:]
        elif how == 1:                                          # a huge number
            lines[i] = line.replace("offset:", "offset:" + "9" * rng.choice((3, 8, 20, 400)), 1)
        elif how == 2:
            lines[i] = line.replace("size:", "size:" + "7" * rng.choice((2, 7, 25)), 1)
        elif how == 3:                                          # a long declaration
            lines[i] = line.replace("field:", "field:" + rng.choice(("a", "[", " ", "int ")) *
                                    rng.choice((100, 20000)), 1)
        elif how == 4:                                          # deep parentheses
            k = rng.choice((10, 70, 3000))
            lines[i] = line.replace("REC->", "(" * k + "REC->", 1) + ")" * k
        elif how == 5:                                          # a wide conversion
            lines[i] = line.replace("%", "%" + str(rng.choice((5, 5000, 1500000000))), 1)
        elif how == 6:                                          # a duplicated line
            lines.insert(i, line)
        elif how == 7:                                          # a lost line
            del lines[i]
            if not lines:
                lines = [""]
        else:                                                   # an array where a scalar was
            lines[i] = line.replace(" ret;", " ret[4];").replace(" ret;", " ret[];")
    return "\n".join(lines)


def run_format(text: str, rng: random.Random) -> None:
    from usertrace.errors import UsertraceError
    from usertrace.events.format import EventFormat, FormatError
    from usertrace.events.records import RecordCodec, RecordError
    from usertrace.output.text import TextFormatter

    try:
        fmt = EventFormat.parse(text, "fuzz")
    except (FormatError, UsertraceError):
        return
    again = EventFormat.parse(fmt.render(), "fuzz")
    if again.render() != fmt.render():
        raise AssertionError("render(parse(render(x))) differs from render(x)")
    codec = RecordCodec(fmt)
    size = codec.fixed_size + rng.randrange(64)
    record = bytes(rng.randrange(256) for _ in range(size))
    try:
        values = codec.decode(record)
    except RecordError:
        return
    f = TextFormatter()
    f.event_text(fmt, values)
    try:
        f.body(fmt, codec)(record, 0, len(record))
    except RecordError:
        pass


# -- print fmts ------------------------------------------------------------------------------

FIELDS = ["a", "b", "s", "n", "arr", "str"]
PRINT_FORMAT = (
    "name: pf\nID: 1\nformat:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
    "\tfield:u64 a;\toffset:8;\tsize:8;\tsigned:0;\n"
    "\tfield:s64 b;\toffset:16;\tsize:8;\tsigned:1;\n"
    "\tfield:u8 s;\toffset:24;\tsize:1;\tsigned:0;\n"
    "\tfield:int n;\toffset:28;\tsize:4;\tsigned:1;\n"
    "\tfield:u32 arr[4];\toffset:32;\tsize:16;\tsigned:0;\n"
    "\tfield:__data_loc char[] str;\toffset:48;\tsize:4;\tsigned:0;\n\n"
    'print fmt: "%s", REC->a\n')


def gen_expr(rng: random.Random, depth: int) -> str:
    if depth > 6 or rng.random() < 0.3:
        return rng.choice([f"REC->{rng.choice(FIELDS[:4])}", str(rng.choice(INTERESTING)),
                           "REC->arr[1]", "__get_str(str)", "'x'"])
    k = rng.randrange(7)
    if k == 0:
        return "(" + gen_expr(rng, depth + 1) + ")"
    if k == 1:
        return f"({rng.choice(['unsigned long', 'int', 'u8', 's16', 'char *'])}){gen_expr(rng, depth + 1)}"
    if k == 2:
        return f"{gen_expr(rng, depth + 1)} {rng.choice(['<<', '>>'])} {gen_expr(rng, depth + 1)}"
    if k == 3:
        op = rng.choice(["+", "-", "*", "/", "%", "&", "|", "^", "&&", "||", "==", "<"])
        return f"{gen_expr(rng, depth + 1)} {op} {gen_expr(rng, depth + 1)}"
    if k == 4:
        return f"{gen_expr(rng, depth + 1)} ? {gen_expr(rng, depth + 1)} : {gen_expr(rng, depth + 1)}"
    if k == 5:
        return f"{rng.choice('-~!')}{gen_expr(rng, depth + 1)}"
    return (f"__print_symbolic({gen_expr(rng, depth + 1)}, {{ 1, \"one\" }}, "
            f"{{ {rng.choice(INTERESTING)}, \"big\" }})")


def gen_print_fmt(rng: random.Random) -> str:
    convs = []
    args = []
    for _ in range(rng.randint(0, 5)):
        flags = "".join(rng.sample("-+ #0", rng.randint(0, 2)))
        width = rng.choice(["", "", "5", "*", "4097", "1500000000", "0" * 30 + "7"])
        prec = rng.choice(["", "", ".3", ".99999", ".*"])
        length = rng.choice(["", "l", "ll", "h", "hh", "z"])
        conv = rng.choice("diuxXocsp")
        convs.append(f"%{flags}{width}{prec}{length}{conv}")
        args.append(gen_expr(rng, 0))
    if rng.random() < 0.1:
        args.append("(" * rng.choice((70, 5000)) + "REC->a" + ")" * rng.choice((70, 5000)))
        convs.append("%d")
    text = '"' + " ".join(convs) + '"' + "".join(f", {a}" for a in args)
    return text


def run_printfmt(pf: str, rng: random.Random) -> None:
    from usertrace.events.format import EventFormat
    from usertrace.output.printfmt import PrintFmt

    base = EventFormat.parse(PRINT_FORMAT, "fuzz")
    fmt = EventFormat(base.system, base.name, base.id, base.fields, pf, base.common_fields)
    compiled = PrintFmt(fmt)
    for _ in range(3):
        values = {"a": rng.choice(INTERESTING), "b": rng.choice(INTERESTING) - (1 << 63),
                  "s": rng.randrange(256), "n": rng.randrange(-(1 << 31), 1 << 31),
                  "arr": [rng.randrange(1 << 32) for _ in range(4)], "str": "hello",
                  "common_pid": 1}
        out = compiled.render(values)
        if len(out) > 1 << 20:
            raise AssertionError(f"a rendering of {len(out)} characters")


# -- driver ------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    kind, seed, count, budget = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    bases = [Path(p) for p in argv[4:]]
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    failures = []
    deadline = time.monotonic() + budget
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    if kind == "format" and not bases:
        from usertrace.catalog import known_events
        texts = [f.render() for f in list(known_events())[::40]]
    else:
        texts = [p.read_text() for p in bases] if kind == "format" else []
    done = 0
    for i in range(count):
        if time.monotonic() > deadline:
            break
        rng = random.Random(seed * 1_000_003 + i)
        what = ""
        try:
            signal.setitimer(signal.ITIMER_REAL, PER_INPUT_S)
            try:
                if kind == "tracedat":
                    base = bases[i % len(bases)]
                    what = base.name
                    data = mutate_bytes(base.read_bytes(), rng)
                    path = tmp / "t.dat"
                    path.write_bytes(data)
                    run_tracedat(path)
                elif kind == "format":
                    text = mutate_text(texts[i % len(texts)], rng)
                    what = text[:200]
                    run_format(text, rng)
                else:
                    pf = gen_print_fmt(rng)
                    what = pf[:200]
                    run_printfmt(pf, rng)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as exc:   # noqa: BLE001 - every escape is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append({"seed": seed, "index": i, "input": what,
                             "error": f"{type(exc).__name__}: {exc}"[:500],
                             "trace": traceback.format_exc()[-1500:]})
            if len(failures) >= 5:
                break
        done += 1
    json.dump({"done": done, "failures": failures}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
