#!/usr/bin/env bash
# What the test suite needs, installed or set up where it can be; idempotent.
# Without root, or offline, the tests that need a missing piece skip and say why.
set -u
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v trace-cmd >/dev/null 2>&1 || need+=(trace-cmd)
command -v strace >/dev/null 2>&1 || need+=(strace)
[ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ] || need+=(systemtap-sdt-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/unistd_64.h ] || [ "$(uname -m)" != x86_64 ] || need+=(linux-libc-dev)
# Python's headers, for the compiled emit path (Debian's python3-dev, for its own python3).
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

python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -i "warning: running pip as" || true

# The compiled emit path of user events, in the checkout (the tests run src/ first): where
# there is no compiler it says so, and the tests of the compiled path skip.
tmp="$(mktemp -d)"
PYTHONWARNINGS=ignore python3 setup.py -q build_ext --inplace --build-temp "$tmp" --build-lib "$tmp" || true
rm -rf "$tmp"
