#!/usr/bin/env bash
# Install usertrace from this checkout so that `usertrace` is on the PATH.
#
# Where pip may install into the running Python (a pyenv or a virtual environment), it does
# just that.  Where the system Python refuses (Debian's "externally managed environment"), it
# makes a virtual environment (/opt/usertrace as root, ~/.local/share/usertrace otherwise) and
# links its `usertrace` into /usr/local/bin or ~/.local/bin.  pip builds the compiled parts
# (the emit path of user events, the engine's ptrace calls) where a C compiler and Python's
# headers exist.  At the end it says what it
# installed and where, the command to run, the Python applications import usertrace with,
# and which emit path user events take.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python3}"

if ! command -v "$py" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
  else
    echo "install: python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1
  fi
fi
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "install: usertrace needs Python 3.11 or newer" >&2; exit 1; }

installed() {   # what was installed and where, how to run it, how applications import it
  local py="$1" cmd="$2" path
  (cd / && "$py" -c 'import os, sys, usertrace
print(f"install: usertrace {usertrace.__version__} installed in {os.path.dirname(usertrace.__file__)}")
print(f"install: applications import usertrace.user_events when run by {sys.executable}")')
  echo "install: the command is $cmd; try: usertrace stream --calls -- ls"
  path="$(cd / && "$py" -c 'from usertrace.sources.user_events import emit_path; print(emit_path.describe())')"
  echo "install: user events emit path: $path"
  echo "install: the engine calls ptrace $(cd / && "$py" -c 'from usertrace.ptrace import libc
print("through the compiled extension" if libc.FAST_PTRACE == "compiled" else "through ctypes")')"
  case "$path" in pure*) echo "install: for the compiled one (about ten times faster), install a C" \
    "compiler and Python's headers (apt-get install gcc python3-dev) and run install.sh again" ;; esac
}

if "$py" -m pip install -q --disable-pip-version-check "$here" 2>/tmp/usertrace-pip.$$; then
  rm -f /tmp/usertrace-pip.$$
  bin="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  installed "$py" "$bin/usertrace"
  case ":$PATH:" in *":$bin:"*) ;; *) echo "install: add $bin to your PATH" ;; esac
  exit 0
fi
if ! grep -q -i "externally.managed\|No module named pip" /tmp/usertrace-pip.$$; then
  cat /tmp/usertrace-pip.$$ >&2; rm -f /tmp/usertrace-pip.$$; exit 1
fi
rm -f /tmp/usertrace-pip.$$

if [ "$(id -u)" = 0 ]; then venv=/opt/usertrace; link=/usr/local/bin; else
  venv="$HOME/.local/share/usertrace"; link="$HOME/.local/bin"; fi
if ! "$py" -m venv "$venv" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$py" -m venv "$venv"
  else
    echo "install: cannot make a virtual environment (apt-get install python3-venv)" >&2; exit 1
  fi
fi
"$venv/bin/pip" install -q --disable-pip-version-check "$here"
mkdir -p "$link"
ln -sf "$venv/bin/usertrace" "$link/usertrace"
echo "install: a virtual environment in $venv (this Python is externally managed)"
installed "$venv/bin/python3" "$link/usertrace (linked to $venv/bin/usertrace)"
case ":$PATH:" in *":$link:"*) ;; *) echo "install: add $link to your PATH" ;; esac
