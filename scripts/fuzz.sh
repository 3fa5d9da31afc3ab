#!/bin/sh
# fuzz.sh SECONDS: `make fuzz`. Builds the libFuzzer targets with clang-19 into build/fuzz
# (QD_FUZZ=ON, ASan + UBSan) and runs each (fuzz_module, fuzz_jit, fuzz_query, fuzz_artifact:
# every tests/fuzz/fuzz_*.c) for SECONDS, seeded from tests/fuzz/corpus/<x>/ and, for
# fuzz_module and fuzz_jit, the spec suite's .wasm files copied into a scratch corpus (never
# into the repo). A crash, leak, timeout or OOM input is copied to tests/data/regress/ and fails
# the run. Then the differential test over DIFF_COUNT (1000) fresh wasm-opt -ttf modules with
# the Release build's diff_run (RELEASE=build); a mismatch is kept in tests/data/diff/.
set -u
cd "$(dirname "$0")/.." || exit 2
SECONDS_EACH=${1:-60}
SPEC=${SPEC:-$(cd .. && pwd)/shared/wasm-spec}
OUT=build/fuzz
command -v clang-19 >/dev/null || { echo "fuzz: clang-19 not installed" >&2; exit 2; }
cmake -S . -B "$OUT" -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=Debug -DQD_FUZZ=ON \
  -DQD_SANITIZE=ON -DQD_WASM_SPEC_DIR="$SPEC" >/dev/null || exit 2
targets=$(ls tests/fuzz/fuzz_*.c 2>/dev/null | sed 's#.*/##; s#\.c$##')
[ -n "$targets" ] || { echo "fuzz: no targets" >&2; exit 2; }
# shellcheck disable=SC2086
cmake --build "$OUT" -j"$(nproc)" --target $targets || exit 2

fail=0
for t in $targets; do
  bin="$OUT/tests/$t"
  [ -x "$bin" ] || { echo "fuzz: $bin was not built" >&2; fail=1; continue; }
  input=${t#fuzz_}
  corpus="$OUT/corpus/$input"
  artifacts="$OUT/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/*
  [ -d "tests/fuzz/corpus/$input" ] && cp -n tests/fuzz/corpus/"$input"/* "$corpus"/ 2>/dev/null
  if { [ "$input" = module ] || [ "$input" = jit ]; } && [ -d "$SPEC/json" ]; then
    # the spec suite's modules: valid, invalid and malformed ones, the best seeds there are
    # (fuzz_jit compiles each valid one with LLVM: one in 20 of them, or the initial corpus
    # would take its whole budget)
    step=1
    [ "$input" = jit ] && step=20
    n=0
    for f in "$SPEC"/json/*/*.wasm "$SPEC"/fallback-wg-2.0.draft1/json/*/*.wasm; do
      n=$((n + 1))
      [ $((n % step)) = 0 ] && [ -f "$f" ] && cp -n "$f" "$corpus/spec-$(basename "$f")"
    done
  fi
  echo "fuzz: $t for ${SECONDS_EACH}s, corpus $corpus ($(ls "$corpus" | wc -l) files)"
  "$bin" -max_total_time="$SECONDS_EACH" -max_len=100000 -rss_limit_mb=2048 -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" 2>"$OUT/$t.log"
  status=$?
  tail -n 15 "$OUT/$t.log" | grep -E 'stat::|Done|ERROR|SUMMARY|crash|timeout|leak' || true
  found=0
  for a in "$artifacts"/*; do
    [ -f "$a" ] || continue
    found=1
    dest="tests/data/regress/$t-$(basename "$a")"
    cp "$a" "$dest"
    echo "fuzz: $t: FOUND $(basename "$a") -> $dest"
  done
  if [ $status != 0 ] || [ $found = 1 ]; then
    echo "fuzz: $t FAILED (status $status); log: $OUT/$t.log"
    fail=1
  else
    echo "fuzz: $t: no findings in ${SECONDS_EACH}s"
  fi
done
# the differential test on fresh seeds (tests/diff/difftest.py): interpreter, JIT and node's V8
# on DIFF_COUNT modules from binaryen's wasm-opt -ttf; a mismatch is kept in tests/data/diff/
RELEASE=${RELEASE:-build}
if [ -x "$RELEASE/tests/diff_run" ]; then
  seed=${DIFF_SEED:-$(date +%s)}
  echo "fuzz: difftest, ${DIFF_COUNT:-1000} modules from seed $seed"
  python3 tests/diff/difftest.py --runner "$RELEASE/tests/diff_run" --count "${DIFF_COUNT:-1000}" \
    --seed "$seed" --regress tests/data/diff --keep tests/data/diff
  st=$?
  [ $st = 0 ] || [ $st = 77 ] || { echo "fuzz: difftest FAILED"; fail=1; }
else
  echo "fuzz: $RELEASE/tests/diff_run not built (make build): difftest skipped"
fi
exit $fail
