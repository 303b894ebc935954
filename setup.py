"""Build of the optional compiled emit path of user events (the rest is in pyproject.toml).

The extension usertrace.sources.user_events._emit is built where a C compiler and Python's
headers exist; where they do not, the build says so and goes on: user events then use the
pure-Python emit path, which writes the same records.  In a checkout:

    python3 setup.py build_ext --inplace
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EMIT = "usertrace.sources.user_events._emit"


class optional_build_ext(build_ext):
    """build_ext that skips the compiled emit path, with a message, when it cannot build it."""

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
        print(f"usertrace: the compiled emit path is not built ({exc}); user events use the "
              f"pure-Python path (install a C compiler and Python's headers, e.g. "
              f"apt-get install gcc python3-dev, then reinstall)", file=sys.stderr)


setup(
    ext_modules=[Extension(EMIT, ["src/usertrace/sources/user_events/_emit.c"],
                           extra_compile_args=["-O2", "-std=gnu11"], optional=True)],
    cmdclass={"build_ext": optional_build_ext},
)
