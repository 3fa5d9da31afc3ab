#!/bin/sh
# qwasm_cli.sh QWASM EXAMPLES_DIR: the `qwasm` command line as a user sees it (outputs, exit
# statuses, one-line errors) on the examples built from examples/wat/.
qwasm=$1 ex=$2 fail=0
check() { # NAME EXPECTED_STATUS EXPECTED_OUTPUT_SUBSTRING COMMAND...
  name=$1 want=$2 text=$3; shift 3
  out=$("$@" 2>&1); got=$?
  if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -qF -- "$text"; then
    echo "FAIL $name: status $got (want $want), output: $out (want: $text)"; fail=1
  else
    echo "ok   $name"
  fi
}
[ -f "$ex/fib.wasm" ] || { echo "examples not built (no wat2wasm?): skipping"; exit 77; }
check invoke_prints_typed_result 0 "6765 : i32" "$qwasm" run "$ex/fib.wasm" --invoke fib 20
check wasi_command_exit_code 3 "hello, sandbox" "$qwasm" run "$ex/hello.wasm"
check fuel_ends_infinite_loop 1 "limit: fuel exhausted" "$qwasm" run "$ex/loop.wasm" --invoke spin --fuel 10000
check validate_valid 0 "fib.wasm: valid" "$qwasm" validate "$ex/fib.wasm"
check validate_rejects_junk 1 "magic header" "$qwasm" validate "$0"
check wrong_arg_count 2 "expects 1 argument" "$qwasm" run "$ex/fib.wasm" --invoke fib
check bad_arg 2 "not a valid i32" "$qwasm" run "$ex/fib.wasm" --invoke fib abc
check no_such_export 1 "no exported function" "$qwasm" run "$ex/fib.wasm" --invoke nope
check inspect_lists_exports 0 "func   fib (i32) -> (i32)" "$qwasm" inspect "$ex/fib.wasm"
check help 0 "usage: qwasm" "$qwasm" --help
check unknown_command 2 "unknown command" "$qwasm" frobnicate
# compile: an AOT artifact per target (the container a node loads; test_udf_aot.py deploys one)
tmp=$(mktemp -d)
check compile_x86_64 0 "x86_64-linux artifact" "$qwasm" compile "$ex/fib.wasm" --target x86_64-linux --out "$tmp/f.qdn"
check compile_aarch64 0 "aarch64-linux artifact" "$qwasm" compile "$ex/fib.wasm" --target aarch64-linux --out "$tmp/a.qdn"
check compile_container_magic 0 "QDNATIV1" head -c 8 "$tmp/a.qdn"
check compile_unknown_target 2 "unknown target" "$qwasm" compile "$ex/fib.wasm" --target riscv64-linux --out "$tmp/r.qdn"
check compile_needs_out 2 "usage: qwasm compile" "$qwasm" compile "$ex/fib.wasm" --target x86_64-linux
check compile_rejects_junk 1 "magic header" "$qwasm" compile "$0" --target x86_64-linux --out "$tmp/j.qdn"
check compile_bad_key 1 "not a key file" "$qwasm" compile "$ex/fib.wasm" --target x86_64-linux --out "$tmp/s.qdn" --sign "$0"
if [ -e "$tmp/s.qdn" ]; then echo "FAIL compile_bad_key_writes_nothing: $tmp/s.qdn exists"; fail=1; else echo "ok   compile_bad_key_writes_nothing"; fi
rm -rf "$tmp"
exit $fail
