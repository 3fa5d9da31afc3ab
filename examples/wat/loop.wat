;; loop.wat: an infinite loop, to show the fuel limit.
;;   qwasm run build/examples/loop.wasm --invoke spin --fuel 1000000   =>  limit: fuel exhausted
(module
  (func (export "spin") (loop $l (br $l))))
