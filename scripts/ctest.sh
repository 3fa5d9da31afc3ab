#!/bin/sh
# ctest.sh DIR [CTEST ARGS...]: the Makefile's way to run CTest in the build folder DIR (every
# test, or those CTEST ARGS select), output on failure. With QD_NO_SKIP=1 (.ci/run sets it) a
# skipped test (exit 77: a tool or built example was missing) fails the run too: CI installs
# everything (scripts/deps.sh), so there a skip means a test silently stopped testing.
dir=$1
[ -n "$dir" ] && [ -d "$dir" ] || { echo "usage: $0 BUILD_DIR [ctest args]" >&2; exit 2; }
shift
cd "$dir" || exit 2
log=Testing/ctest-last.log
mkdir -p Testing
ctest --output-on-failure -O "$log" "$@"
rc=$?
if [ "${QD_NO_SKIP:-0}" = 1 ] && grep -q '\*\*\*Skipped' "$log"; then
  echo "ctest ($dir): skipped tests fail the run (QD_NO_SKIP=1):" >&2
  grep '\*\*\*Skipped' "$log" >&2
  [ "$rc" = 0 ] && rc=1
fi
exit "$rc"
