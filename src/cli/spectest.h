/* spectest.h: the spec suite's `spectest` host module (print*, global_i32/i64/f32/f64 = 666 /
** 666.6, table 10..20 funcref, memory 1..2), built as a tiny wasm module so its globals, table
** and memory are ordinary exports. Used by `qwasm spec` and the module fuzzer. */
#ifndef QD_CLI_SPECTEST_H
#define QD_CLI_SPECTEST_H

#include "wasm.h"

/* The module's bytes (static, LEN set). */
const uint8_t *spectest_bytes(size_t *len);

/* Load and instantiate it; *MOD and *INST are the caller's to free (instance first). */
qb_code spectest_new(qw_engine *e, qw_module **mod, qw_instance **inst, qb_err *err);

#endif
