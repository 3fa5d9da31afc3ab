#!/bin/sh
# run_spec.sh QWASM SPEC_DIR KNOWN [TIER]: the `spec` CTest (TIER: interp, the default, or jit). Exit 0 when every failing assertion is in
# KNOWN, 1 otherwise, 77 (CTest: skipped) when the suite is missing.
qwasm=$1 dir=$2 known=$3 tier=${4:-interp}
if [ ! -d "$dir/json" ]; then
  echo "**********************************************************************"
  echo "*** SPEC SUITE NOT FOUND at $dir: skipping"
  echo "*** (configure with -DQD_WASM_SPEC_DIR=/path/to/wasm-spec)"
  echo "**********************************************************************"
  exit 77
fi
set -- "$dir/json"
[ -d "$dir/fallback-wg-2.0.draft1/json" ] && set -- "$@" "$dir/fallback-wg-2.0.draft1/json"
exec "$qwasm" spec --tier "$tier" --known "$known" "$@"
