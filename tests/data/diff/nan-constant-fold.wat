(module
  (func (export "div_zero_locals") (result i32) (local f32)
    (i32.reinterpret_f32 (f32.div (local.get 0) (local.get 0))))
  (func (export "div_zero_params") (param f32) (result i32)
    (i32.reinterpret_f32 (f32.div (local.get 0) (local.get 0))))
  (func (export "sub_inf_const") (result i64)
    (i64.reinterpret_f64 (f64.sub (f64.const inf) (f64.const inf)))))
