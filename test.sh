#!/usr/bin/env bash
# Install what is missing, build, and run every suite — unit, integration and the same
# again under AddressSanitizer + UndefinedBehaviorSanitizer, then the libFuzzer targets
# for a bounded time from a clang build directory (build-fuzz). The last line is
# "N passed, N failed" counted from the runners' own results.
set -uo pipefail
cd "$(dirname "$0")"

tests/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

configure() { # DIR [meson options…]
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

status=0
configure build || status=1
configure build-asan -Db_sanitize=address,undefined -Db_lundef=false || status=1
if [ $status -ne 0 ] || ! ninja -C build >/dev/null || ! ninja -C build-asan >/dev/null; then
  ninja -C build 2>&1 | tail -30
  ninja -C build-asan 2>&1 | tail -30
  echo "0 passed, 1 failed"
  exit 1
fi

# The fuzzers: a clang tree in which only the fuzz targets are built (the rest of the
# tree is compiled by gcc above).
if ! CC=clang configure build-fuzz -Dfuzzing=true || ! ninja -C build-fuzz fuzzers >/dev/null; then
  ninja -C build-fuzz fuzzers 2>&1 | tail -30
  echo "0 passed, 1 failed"
  exit 1
fi

/usr/bin/python3 tests/run-suites.py build build-asan build-fuzz
