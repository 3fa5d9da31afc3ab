;; custom_score.wat: the score UDF of DESIGN.md §5 in hand-written WebAssembly, with the ABI's
;; allocator and batch form spelled out, as a reference for what the SDKs generate.
;;   score = bm25 * boost_factor * (1 + 1 / (1 + days / 30)) * tier_boost(user_tier)
;; days = max(recency_days, 0); tier_boost: 1 -> 1.5, 2 -> 1.2, 3 -> 1.0, else 0.8. Same
;; operations in the same order as custom_score.c, so the results are bit-identical.
;; Build: wat2wasm custom_score.wat -o custom_score.wat.wasm
(module
  (memory (export "memory") 1)

  ;; qd_alloc/qd_reset: a bump allocator from 1024 up, growing memory as needed. Nothing else
  ;; in this module uses memory, so it may own everything above 1024.
  (global $heap_base i32 (i32.const 1024))
  (global $top (mut i32) (i32.const 1024))

  (func $qd_alloc (export "qd_alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i64) (local $have i64)
    (if (i32.lt_s (local.get $len) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $p (global.get $top))
    ;; end = p + round_up(len, 8), in i64 so it cannot wrap
    (local.set $end (i64.add (i64.extend_i32_u (local.get $p))
                             (i64.and (i64.add (i64.extend_i32_u (local.get $len)) (i64.const 7))
                                      (i64.const -8))))
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $have))
      (then
        ;; spec: a failed memory.grow gives -1, not a trap
        (if (i32.eq (memory.grow (i32.wrap_i64 (i64.shr_u
                                   (i64.add (i64.sub (local.get $end) (local.get $have))
                                            (i64.const 0xffff))
                                   (i64.const 16))))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $top (i32.wrap_i64 (local.get $end)))
    (local.get $p))

  (func (export "qd_reset") (global.set $top (global.get $heap_base)))
  (func (export "qd_abi_version") (result i32) (i32.const 1))

  (func $tier_boost (param $tier i32) (result f64)
    (block $other
      (block $t3
        (block $t2
          (block $t1
            (br_table $other $t1 $t2 $t3 $other
                      (select (local.get $tier) (i32.const 0)
                              (i32.le_u (local.get $tier) (i32.const 3)))))
          (return (f64.const 1.5)))
        (return (f64.const 1.2)))
      (return (f64.const 1.0)))
    (f64.const 0.8))

  (func $custom_score (export "custom_score")
        (param $bm25 f64) (param $boost f64) (param $recency_days i32) (param $user_tier i32)
        (result f64)
    (local $days f64)
    (local.set $days
      (select (f64.const 0) (f64.convert_i32_s (local.get $recency_days))
              (i32.lt_s (local.get $recency_days) (i32.const 0))))
    ;; ((bm25 * boost) * (1 + 1 / (1 + days / 30))) * tier_boost
    (f64.mul
      (f64.mul
        (f64.mul (local.get $bm25) (local.get $boost))
        (f64.add (f64.const 1)
                 (f64.div (f64.const 1)
                          (f64.add (f64.const 1) (f64.div (local.get $days) (f64.const 30))))))
      (call $tier_boost (local.get $user_tier))))

  ;; custom_score__batch(n, args, out): args -> 4 u32 column pointers (f64, f64, i32, i32);
  ;; out <- n f64.
  (func (export "custom_score__batch") (param $n i32) (param $args i32) (param $out i32)
    (local $i i32) (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local.set $c0 (i32.load offset=0 (local.get $args)))
    (local.set $c1 (i32.load offset=4 (local.get $args)))
    (local.set $c2 (i32.load offset=8 (local.get $args)))
    (local.set $c3 (i32.load offset=12 (local.get $args)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (f64.store
          (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 3)))
          (call $custom_score
            (f64.load (i32.add (local.get $c0) (i32.shl (local.get $i) (i32.const 3))))
            (f64.load (i32.add (local.get $c1) (i32.shl (local.get $i) (i32.const 3))))
            (i32.load (i32.add (local.get $c2) (i32.shl (local.get $i) (i32.const 2))))
            (i32.load (i32.add (local.get $c3) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
