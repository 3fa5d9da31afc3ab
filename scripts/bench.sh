#!/bin/sh
# bench.sh: `make bench`. Prints what the numbers depend on (commit, CPU, compilers, flags),
# then runs every build/bench/bench_* binary (Release build in build/, made by `make build`).
# Benchmarks report; this script fails only when there is nothing to run.
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
echo "== quidditch benchmarks =="
echo "commit:   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ local changes)')"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //') ($(nproc) cpus)"
echo "kernel:   $(uname -sr)"
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
echo "compiler: ${cc:-cc} ($(${cc:-cc} --version 2>/dev/null | head -1))"
echo "build:    $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null) -O2 (CMAKE_C_FLAGS: $(sed -n 's/^CMAKE_C_FLAGS:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null))"
echo "kernels:  clang-19 -O2 (native), clang-19 --target=wasm32 -O2 -mbulk-memory (wasm); $(clang-19 --version 2>/dev/null | head -1)"
echo "v8:       node $(node --version 2>/dev/null || echo 'not found')"
found=0
for b in "$BUILD"/bench/bench_*; do
  [ -x "$b" ] && [ -f "$b" ] || continue
  found=1
  echo
  echo "== $(basename "$b") =="
  "$b" || echo "$(basename "$b"): exited with status $?"
done
for p in bench/bench_*.py; do   # benchmarks against a running server, in python3
  [ -f "$p" ] || continue
  found=1
  echo
  echo "== $(basename "$p" .py) =="
  python3 "$p" "$BUILD" || echo "$(basename "$p"): exited with status $?"
done
if [ $found = 0 ]; then
  echo "bench: no benchmarks in $BUILD/bench (run make build first)" >&2
  exit 1
fi
