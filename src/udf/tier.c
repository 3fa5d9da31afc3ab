/* tier.c: which code a loaded version's blocks run. A version starts on the interpreter entry;
** when its compiler hands over native code (qu__tier_install) the version either switches at
** once (no verification) or first runs its next verify_blocks blocks on both tiers
** (E_VERIFY: the interpreter's results are served, native results compared bit for bit by the
** executor); all agreeing publishes the native entry, one mismatch puts the interpreter back
** for good, logs an ERROR naming the UDF and counts in the statistics.
** Invariant (the rule next to qu_udf.entry in internal.h): ENTRY only ever points at one of
** the version's own three entries, changes under TIER_MU with a release store, and nothing it
** pointed at (entries, native code) is freed before qu__udf_destroy. */
#include "udf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const origin_names[] = {"interpreter", "native-jit", "native-cache",
                                           "native-aot"};
const char *qu_origin_name(qu_origin o) {
  return (unsigned)o < QB_COUNTOF(origin_names) ? origin_names[o] : "?";
}

static const char *const state_names[] = {"off",       "queued", "compiling",
                                          "verifying", "ready",  "failed"};
const char *qu_native_state_name(qu_native_state s) {
  return (unsigned)s < QB_COUNTOF(state_names) ? state_names[s] : "?";
}

void qu__tier_init(qu_udf *u) {
  pthread_mutex_init(&u->tier_mu, NULL);
  u->e_interp.kind = QU__E_INTERP;
  u->e_interp.origin = QU_ORIGIN_INTERP;
  atomic_init(&u->entry, &u->e_interp);
  atomic_init(&u->verify_left, 0);
  memset(&u->status, 0, sizeof u->status);
  u->status.origin = QU_ORIGIN_INTERP;
  u->status.state = QU_NATIVE_OFF;
  if (!u->opts.compiler)
    snprintf(u->status.reason, sizeof u->status.reason, "this node has no native compiler");
}

void qu__tier_fini(qu_udf *u) {
  if (u->native && u->opts.compiler) {
    const qu_native_ops *ops = qu__compiler_ops(u->opts.compiler);
    ops->free(ops->ud, u->native);
  }
  u->native = NULL;
  pthread_mutex_destroy(&u->tier_mu);
}

/* The statistics cell shows the tier of the name's current version. */
static void publish(qu_udf *u, qu__entry *e) {
  atomic_store_explicit(&u->entry, e, memory_order_release);
  u->status.origin = e->kind == QU__E_NATIVE ? e->origin : QU_ORIGIN_INTERP;
  if (atomic_load_explicit(&u->stats->version, memory_order_relaxed) == u->version)
    atomic_store_explicit(&u->stats->mode, e->kind == QU__E_NATIVE ? QU_TIER_NATIVE
                                                                    : QU_TIER_INTERP,
                          memory_order_relaxed);
}

void qu__tier_start(qu_udf *u) {
  qu_compiler *c = u->opts.compiler;
  if (!c) return;
  if (qu__compiler_pin(c) == QU_PIN_INTERP) {
    pthread_mutex_lock(&u->tier_mu);
    snprintf(u->status.reason, sizeof u->status.reason, "the node is pinned to the interpreter");
    pthread_mutex_unlock(&u->tier_mu);
    return;
  }
  /* a fresh version of the current name starts interpreted */
  if (atomic_load_explicit(&u->stats->version, memory_order_relaxed) == u->version)
    atomic_store_explicit(&u->stats->mode, QU_TIER_INTERP, memory_order_relaxed);
  qu__compiler_submit(c, u);
}

void qu__tier_set_state(qu_udf *u, qu_native_state st) {
  pthread_mutex_lock(&u->tier_mu);
  u->status.state = st;
  pthread_mutex_unlock(&u->tier_mu);
}

void qu__tier_failed(qu_udf *u, const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&u->tier_mu);
  u->status.state = QU_NATIVE_FAILED;
  va_start(ap, fmt);
  vsnprintf(u->status.reason, sizeof u->status.reason, fmt, ap);
  va_end(ap);
  publish(u, &u->e_interp);
  pthread_mutex_unlock(&u->tier_mu);
  atomic_fetch_add_explicit(&u->stats->compile_failures, 1, memory_order_relaxed);
}

void qu__tier_install(qu_udf *u, qu_native *n, const qu_native_entry *ne, qu_origin origin,
                      int cache_hit, uint64_t ns, uint64_t mem_bytes) {
  uint32_t target = qu__compiler_verify_blocks(u->opts.compiler);
  const char *how = origin == QU_ORIGIN_JIT ? "JIT compilation" : origin == QU_ORIGIN_CACHE
                                                                      ? "native cache load"
                                                                      : "AOT artifact load";
  pthread_mutex_lock(&u->tier_mu);
  u->native = n;
  u->e_native.kind = QU__E_NATIVE;
  u->e_native.origin = origin;
  u->e_native.ne = *ne;
  u->e_verify = u->e_native;
  u->e_verify.kind = QU__E_VERIFY;
  u->status.compile_ms = (double)ns / 1e6;
  u->status.compile_memory_bytes = mem_bytes;
  u->status.cache_hit = cache_hit;
  u->status.verify_target = target == UINT32_MAX ? 0 : target;
  u->status.verified_blocks = 0;
  u->status.reason[0] = 0;
  atomic_fetch_add_explicit(&u->stats->compiles, 1, memory_order_relaxed);
  atomic_store_explicit(&u->stats->compile_ns, ns, memory_order_relaxed);
  atomic_store_explicit(&u->stats->compile_mem_bytes, mem_bytes, memory_order_relaxed);
  if (target == UINT32_MAX) {
    u->status.state = QU_NATIVE_READY;
    publish(u, &u->e_native);
    pthread_mutex_unlock(&u->tier_mu);
    qb_log(QB_INFO, "%s of %s completed in %.0f ms, hot-swapped to native", how, u->label,
           (double)ns / 1e6);
    return;
  }
  u->status.state = QU_NATIVE_VERIFYING;
  atomic_store_explicit(&u->verify_left, target, memory_order_relaxed);
  publish(u, &u->e_verify);
  pthread_mutex_unlock(&u->tier_mu);
  qb_log(QB_INFO, "%s of %s completed in %.0f ms, verifying %u blocks against the interpreter",
         how, u->label, (double)ns / 1e6, target);
}

void qu__tier_verified(qu_udf *u, int ok, const char *why) {
  if (ok) {
    /* several threads may verify at once; the one that takes the count to zero swaps */
    uint32_t left = atomic_load_explicit(&u->verify_left, memory_order_relaxed);
    do {
      if (!left) return; /* done already (swapped, or failed) */
    } while (!atomic_compare_exchange_weak_explicit(&u->verify_left, &left, left - 1,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed));
    pthread_mutex_lock(&u->tier_mu);
    if (u->status.state == QU_NATIVE_VERIFYING) {
      u->status.verified_blocks++;
      if (left == 1) {
        u->status.state = QU_NATIVE_READY;
        publish(u, &u->e_native);
        pthread_mutex_unlock(&u->tier_mu);
        qb_log(QB_INFO, "UDF %s: native code agreed with the interpreter on %u blocks, "
               "hot-swapped to native (%s)", u->label, u->status.verify_target,
               qu_origin_name(u->e_native.origin));
        return;
      }
    }
    pthread_mutex_unlock(&u->tier_mu);
    return;
  }
  pthread_mutex_lock(&u->tier_mu);
  if (u->status.state == QU_NATIVE_FAILED) { /* another thread found one first */
    pthread_mutex_unlock(&u->tier_mu);
    return;
  }
  u->status.state = QU_NATIVE_FAILED;
  snprintf(u->status.reason, sizeof u->status.reason,
           "native code disagreed with the interpreter: %s", why);
  atomic_store_explicit(&u->verify_left, 0, memory_order_relaxed);
  publish(u, &u->e_interp);
  pthread_mutex_unlock(&u->tier_mu);
  atomic_fetch_add_explicit(&u->stats->verify_mismatches, 1, memory_order_relaxed);
  qb_log(QB_ERROR, "UDF %s: native code disagreed with the interpreter (%s); staying on the "
         "interpreter", u->label, why);
}

void qu_udf_tier_status(qu_udf *u, qu_tier_status *out) {
  pthread_mutex_lock(&u->tier_mu);
  *out = u->status;
  pthread_mutex_unlock(&u->tier_mu);
}
