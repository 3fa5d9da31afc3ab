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
exit $fail
