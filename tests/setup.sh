#!/usr/bin/env bash
# What the test suite needs, installed or set up where it can be; idempotent.
# Without root, or offline, the tests that need a missing piece skip and say why.
#
# The Python packages go into a test environment of the checkout's own, .venv (a virtual
# environment that also sees the system's packages); the user's install of usertrace, if
# any, is never touched.  The tests run with .venv/bin/python, and import usertrace from
# src/ (tests/conftest.py puts it first).
set -u
cd "$(dirname "$0")/.."
venv=.venv

need=()
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v trace-cmd >/dev/null 2>&1 || need+=(trace-cmd)
command -v strace >/dev/null 2>&1 || need+=(strace)
[ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ] || need+=(systemtap-sdt-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/unistd_64.h ] || [ "$(uname -m)" != x86_64 ] || need+=(linux-libc-dev)
# Python's headers, for the compiled parts (Debian's python3-dev, for its own python3).
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || [ "$(command -v python3)" != /usr/bin/python3 ] || need+=(python3-dev)
if [ "$(id -u)" = 0 ] && [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
    || echo "setup: could not install ${need[*]}; the tests that need them skip"
fi

# The kernel as oracle: a tracefs, where we are root and it is not mounted yet.
if [ "$(id -u)" = 0 ] && [ ! -e /sys/kernel/tracing/events/header_page ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null \
    || echo "setup: cannot mount tracefs; the kernel tests skip"
fi

# The test environment: Debian's python3 makes one only with python3-venv.
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv --system-site-packages "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing python3-venv"
      (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq python3-venv) >/dev/null 2>&1
    fi
    python3 -m venv --system-site-packages "$venv" \
      || { echo "setup: cannot make the test environment $venv (apt-get install python3-venv)" >&2; exit 1; }
  fi
fi
py="$venv/bin/python"
# usertrace's dependencies and the test tools, into the test environment only (an editable
# install there points at this checkout).
"$py" -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -i "warning: running pip as" || true
"$py" -c 'import pytest, hypothesis, elftools, zstandard, iced_x86' \
  || { echo "setup: the test environment $venv lacks packages (offline?)" >&2; exit 1; }

# The compiled parts (the emit path of user events, the engine's ptrace calls, the ring's
# batch writer), in the checkout (the tests run src/ first): where there is no compiler it
# says so, and the tests of the compiled parts skip.
tmp="$(mktemp -d)"
PYTHONWARNINGS=ignore "$py" setup.py -q build_ext --inplace --build-temp "$tmp" --build-lib "$tmp" || true
rm -rf "$tmp"
echo "setup: done; run the tests with $venv/bin/python -m pytest"
