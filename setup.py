"""Build of the optional compiled parts (the rest is in pyproject.toml).

Three extensions, built where a C compiler and Python's headers exist: the emit path of user
events (usertrace.sources.user_events._emit), ptrace(2) without ctypes for the engine's
hot paths (usertrace.ptrace._ptrace), and the ring buffer's writer for a batch of records
(usertrace.buffer._ring).  Where they cannot be built, the build says so and goes on: user
events then use the pure-Python emit path, which writes the same records, the engine calls
ptrace through ctypes, and the ring writes each record in Python.  In a checkout:

    python3 setup.py build_ext --inplace
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EMIT = "usertrace.sources.user_events._emit"
PTRACE = "usertrace.ptrace._ptrace"
RING = "usertrace.buffer._ring"


class optional_build_ext(build_ext):
    """build_ext that skips a compiled part, with a message, when it cannot build it."""

    def run(self):
        try:
            super().run()
        except Exception as exc:        # no compiler at all, or no Python headers
            self._skipped(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:        # the compiler failed
            self._skipped(exc)

    @staticmethod
    def _skipped(exc):
        print(f"usertrace: the compiled parts are not built ({exc}); user events use the "
              f"pure-Python emit path, the engine ctypes and the ring buffer Python (install "
              f"a C compiler and Python's headers, e.g. apt-get install gcc python3-dev, then "
              f"reinstall)", file=sys.stderr)


setup(
    ext_modules=[Extension(EMIT, ["src/usertrace/sources/user_events/_emit.c"],
                           extra_compile_args=["-O2", "-std=gnu11"], optional=True),
                 Extension(PTRACE, ["src/usertrace/ptrace/_ptrace.c"],
                           extra_compile_args=["-O2", "-std=gnu11"], optional=True),
                 Extension(RING, ["src/usertrace/buffer/_ring.c"],
                           extra_compile_args=["-O2", "-std=gnu11"], optional=True)],
    cmdclass={"build_ext": optional_build_ext},
)
