/* kernels.h: the interpreter benchmark's kernels (bench_interp.c), built twice by
** bench/CMakeLists.txt: to wasm32 (clang-19 --target=wasm32 -O2 -nostdlib, each export kept
** with -Wl,--export) and natively with -O2. No libc: plain loops over static arrays. */
#ifndef QD_BENCH_KERNELS_H
#define QD_BENCH_KERNELS_H

#include <stdint.h>

#if defined(__wasm__)
#define KEXPORT(name) __attribute__((export_name(#name)))
#else
#define KEXPORT(name)
#endif
#define KNOINLINE __attribute__((noinline))

int32_t k_fib(int32_t n);                   /* fib.c: recursive Fibonacci */
int32_t k_sieve(int32_t n, int32_t rounds); /* sieve.c: primes below n, ROUNDS times */
double k_matmul(int32_t n, int32_t rounds); /* matmul.c: c += a*b (n x n), returns the trace */
void k_hash_init(void);                     /* hash.c: fill the 1 MiB buffer */
int32_t k_hash(int32_t rounds);             /* FNV-1a over 1 MiB, ROUNDS times */
int32_t k_calls(int32_t n);                 /* calls.c: N calls of a small function */
/* udf.c: the design's UDF (DESIGN.md §5) and a loop calling it N times inside the module */
double custom_score(double bm25, double boost, int32_t recency_days, int32_t tier);
double k_score_loop(int32_t n);

#endif
