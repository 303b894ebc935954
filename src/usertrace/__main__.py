"""``python -m usertrace`` and the ``usertrace`` script.

The command line's modules are imported here, inside the handling of Ctrl-C, so that a
SIGINT during the start (a second or so on a loaded machine) ends usertrace with status 130
and no traceback, as one a moment later would."""

import sys


def main() -> None:
    try:
        from .cli.main import console_main
    except KeyboardInterrupt:
        sys.exit(130)
    console_main()


if __name__ == "__main__":
    main()
