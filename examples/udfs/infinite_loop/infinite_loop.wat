;; infinite_loop.wat: a UDF that never returns, for tests of the sandbox's deadline (fuel or
;; epoch, DESIGN.md §4): spin(x) loops forever, whatever x is. The host must end the call with
;; a trap and keep serving. Written in WAT because C and Rust may assume loops terminate.
;; Build: wat2wasm infinite_loop.wat -o infinite_loop.wat.wasm
(module
  (func $spin (export "spin") (param $x i32) (result i32)
    (local $i i32)
    (loop $forever
      ;; do some work each round, so an engine cannot treat the body as empty
      (local.set $i (i32.add (local.get $i) (local.get $x)))
      (br $forever))
    (local.get $i))
  (func (export "qd_abi_version") (result i32) (i32.const 1)))
