/* compiler.h: the compiler extensions we use, behind names, so the rest of the tree stays C11. */
#ifndef QB_COMPILER_H
#define QB_COMPILER_H

#if defined(__GNUC__) || defined(__clang__)
#define QB_LIKELY(x) __builtin_expect(!!(x), 1)
#define QB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define QB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define QB_NOINLINE __attribute__((noinline))
#define QB_INLINE static inline __attribute__((always_inline))
#define QB_UNUSED __attribute__((unused))
#else
#define QB_LIKELY(x) (x)
#define QB_UNLIKELY(x) (x)
#define QB_PRINTF(f, a)
#define QB_NOINLINE
#define QB_INLINE static inline
#define QB_UNUSED
#endif

#define QB_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#endif
