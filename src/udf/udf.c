/* udf.c: one loaded version of a UDF (qu_udf): module + manifest + WASI imports, its
** refcount, its pool of instances, and the statistics cells. Invariant: an instance in the
** free list has never trapped (a trapped or over-budget instance is freed at check-in), so any
** instance checked out is in a state its module's code put it in, not a torn one. */
#include "udf.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const tier_names[] = {"interpreter", "native"};
const char *qu_tier_name(qu_tier t) {
  return (unsigned)t < QB_COUNTOF(tier_names) ? tier_names[t] : "?";
}

/* Per-document call durations: 100 ns .. 1 s. */
const double qu_hist_bounds[QU_HIST_BUCKETS] = {1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 1e-5,
                                                 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0};

void qu__stats_observe(qu__stats *s, qu_tier t, uint64_t ns) {
  double sec = (double)ns * 1e-9;
  unsigned b = 0;
  while (b < QU_HIST_BUCKETS && sec > qu_hist_bounds[b]) b++;
  atomic_fetch_add_explicit(&s->hist[t][b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->hist_count[t], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->hist_sum_ns[t], ns, memory_order_relaxed);
}

void qu__stats_snapshot(const qu__stats *s, qu_stats *out) {
  memset(out, 0, sizeof *out);
  out->name = s->name;
  out->mode = (qu_tier)atomic_load_explicit(&s->mode, memory_order_relaxed);
  out->version = atomic_load_explicit(&s->version, memory_order_relaxed);
  for (int t = 0; t < QU_TIER_COUNT; t++) {
    out->calls[t] = atomic_load_explicit(&s->calls[t], memory_order_relaxed);
    out->errors[t] = atomic_load_explicit(&s->errors[t], memory_order_relaxed);
    out->blocks[t] = atomic_load_explicit(&s->blocks[t], memory_order_relaxed);
    for (int b = 0; b <= QU_HIST_BUCKETS; b++)
      out->hist[t][b] = atomic_load_explicit(&s->hist[t][b], memory_order_relaxed);
    out->hist_count[t] = atomic_load_explicit(&s->hist_count[t], memory_order_relaxed);
    out->hist_sum_seconds[t] =
        (double)atomic_load_explicit(&s->hist_sum_ns[t], memory_order_relaxed) * 1e-9;
  }
  out->module_bytes = atomic_load_explicit(&s->module_bytes, memory_order_relaxed);
  out->instance_bytes = atomic_load_explicit(&s->instance_bytes, memory_order_relaxed);
  out->instances = atomic_load_explicit(&s->instances, memory_order_relaxed);
  out->compiles = atomic_load_explicit(&s->compiles, memory_order_relaxed);
  out->compile_failures = atomic_load_explicit(&s->compile_failures, memory_order_relaxed);
  out->verify_mismatches = atomic_load_explicit(&s->verify_mismatches, memory_order_relaxed);
  out->compile_seconds =
      (double)atomic_load_explicit(&s->compile_ns, memory_order_relaxed) * 1e-9;
  out->compile_memory_bytes = atomic_load_explicit(&s->compile_mem_bytes, memory_order_relaxed);
}

void qu_udf_stats(const qu_udf *u, qu_stats *out) { qu__stats_snapshot(u->stats, out); }

/* ---- load / refcount ------------------------------------------------------------------------ */

qb_code qu__udf_new(qw_engine *e, const qu_manifest *m, uint32_t version, const uint8_t *wasm,
                    size_t len, const qu_options *opts, qu__stats *stats, qu_udf **out,
                    qb_err *err) {
  qu_udf *u;
  qb_code rc;
  *out = NULL;
  if (!(u = qb_calloc(1, sizeof *u))) return qb_fail(err, QB_NOMEM, "udf: out of memory");
  atomic_init(&u->refs, 1);
  u->engine = e;
  u->version = version;
  u->wasm_bytes = len;
  if (opts) u->opts = *opts;
  if (!u->opts.fuel_per_doc) u->opts.fuel_per_doc = 10000000;
  if (!u->opts.max_memory_pages) u->opts.max_memory_pages = 256;
  if (!u->opts.max_idle_instances) u->opts.max_idle_instances = 16;
  if (!u->opts.timing_sample) u->opts.timing_sample = 64;
  u->limits.max_memory_pages = u->opts.max_memory_pages;
  u->limits.max_call_depth = u->opts.max_call_depth; /* 0: the engine's default */
  pthread_mutex_init(&u->pool_mu, NULL);
  qu__tier_init(u);
  if (sodium_init() < 0) {
    rc = qb_fail(err, QB_INTERNAL, "udf: libsodium init failed");
    goto fail;
  }
  crypto_hash_sha256(u->sha256, wasm, len);
  if ((rc = qu__manifest_clone(m, &u->m, err))) goto fail;
  if (version) snprintf(u->label, sizeof u->label, "%s v%u", m->name, version);
  else snprintf(u->label, sizeof u->label, "%s", m->name); /* a deploy's trial instance */
  if (!(u->idle = qb_calloc(u->opts.max_idle_instances, sizeof *u->idle))) {
    rc = qb_fail(err, QB_NOMEM, "udf: out of memory");
    goto fail;
  }
  if ((rc = qw_module_load(e, wasm, len, &u->mod, err))) {
    qb_wrap(err, "udf %s: module: ", u->label);
    goto fail;
  }
  if ((rc = qu_manifest_check(u->m, u->mod, err))) {
    qb_wrap(err, "udf %s: ", u->label);
    goto fail;
  }
  if ((rc = qw_imports_new(&u->imports, err)) ||
      (rc = qw_imports_add_wasi(u->imports, 0, NULL, err))) {
    qb_wrap(err, "udf %s: imports: ", u->label);
    goto fail;
  }
  if (!u->opts.no_batch) {
    char bname[80];
    snprintf(bname, sizeof bname, "%s__batch", u->m->export_name);
    uint32_t n = qw_module_export_count(u->mod);
    for (uint32_t i = 0; i < n; i++) {
      qw_port p;
      qw_module_export(u->mod, i, &p);
      if (p.kind == QW_KFUNC && !strcmp(p.name, bname)) u->has_batch = 1;
    }
  }
  if (stats) {
    u->stats = stats;
  } else {
    u->stats = &u->own_stats;
    snprintf(u->own_stats.name, sizeof u->own_stats.name, "%s", m->name);
  }
  if (!stats) atomic_store(&u->stats->version, version);
  atomic_fetch_add(&u->stats->module_bytes, len);
  *out = u;
  return QB_OK;
fail:
  u->stats = NULL;
  qu__udf_destroy(u);
  return rc;
}

void qu__udf_destroy(qu_udf *u) {
  if (!u) return;
  if (u->idle) {
    for (uint32_t i = 0; i < u->nidle; i++) qu__inst_checkin(u, u->idle[i], 1);
    qb_free(u->idle, u->opts.max_idle_instances * sizeof *u->idle);
  }
  if (u->stats && u->mod) atomic_fetch_sub(&u->stats->module_bytes, u->wasm_bytes);
  qu__tier_fini(u);
  qw_imports_free(u->imports);
  qw_module_free(u->mod);
  qu_manifest_free(u->m);
  pthread_mutex_destroy(&u->pool_mu);
  qb_free(u, sizeof *u);
}

qb_code qu_udf_load(qw_engine *engine, const qu_manifest *m, uint32_t version,
                    const uint8_t *wasm, size_t len, const qu_options *opts, qu_udf **out,
                    qb_err *err) {
  qb_code rc = qu__udf_new(engine, m, version, wasm, len, opts, NULL, out, err);
  if (!rc) qu__tier_start(*out);
  return rc;
}

qu_udf *qu_udf_retain(qu_udf *u) {
  if (u) {
    uint32_t prev = atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
    QB_ASSERT(prev > 0); /* a new reference comes from one held */
  }
  return u;
}

void qu_udf_release(qu_udf *u) {
  if (!u) return;
  if (u->reg) {
    qu__registry_release(u->reg, u);
    return;
  }
  uint32_t prev = atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel);
  QB_ASSERT(prev > 0);
  if (prev == 1) qu__udf_destroy(u);
}

const qu_manifest *qu_udf_manifest(const qu_udf *u) { return u->m; }
const char *qu_udf_name(const qu_udf *u) { return u->m->name; }
uint32_t qu_udf_version(const qu_udf *u) { return u->version; }
const char *qu_udf_label(const qu_udf *u) { return u->label; }
const qw_module *qu_udf_module(const qu_udf *u) { return u->mod; }
int qu_udf_has_batch(const qu_udf *u) { return u->has_batch; }

/* ---- the pool ------------------------------------------------------------------------------- */

static qb_code inst_new(qu_udf *u, qu__inst **out, qb_err *err) {
  qu__inst *in;
  qb_code rc;
  char bname[80];
  *out = NULL;
  if (!(in = qb_calloc(1, sizeof *in))) return qb_fail(err, QB_NOMEM, "udf: out of memory");
  if ((rc = qw_instance_new(u->mod, u->imports, &u->limits, &in->wi, err))) {
    qb_wrap(err, "UDF %s failed to instantiate: ", u->label);
    qb_free(in, sizeof *in);
    return rc;
  }
  in->fn = qw_instance_func(in->wi, u->m->export_name);
  in->alloc = qw_instance_func(in->wi, "qd_alloc");
  in->reset = qw_instance_func(in->wi, "qd_reset");
  snprintf(bname, sizeof bname, "%s__batch", u->m->export_name);
  in->batch = u->has_batch ? qw_instance_func(in->wi, bname) : NULL;
  if (!in->fn) {
    qw_instance_free(in->wi);
    qb_free(in, sizeof *in);
    return QB_NEVER(err); /* qu_manifest_check found it in the module */
  }
  /* ABI v1 (docs/udf-authoring.md 2.1): a WASI reactor's _initialize runs once, first; a
  ** module that says it speaks another ABI is refused. Both under a budget. */
  qw_func *init = qw_instance_func(in->wi, "_initialize");
  qw_func *abi = qw_instance_func(in->wi, "qd_abi_version");
  uint64_t slots[1] = {0};
  const qw_trap *t = NULL;
  qw_instance_set_fuel(in->wi, u->opts.fuel_per_doc * QU_BLOCK_MAX);
  if (init && (t = qw_func_call_raw(init, slots))) {
    rc = qb_fail(err, qw_trap_code(t) == QB_LIMIT ? QB_LIMIT : QB_TRAP,
                 "UDF %s trapped in _initialize: %s", u->label, qw_trap_message(t));
  } else if (abi && (t = qw_func_call_raw(abi, slots))) {
    rc = qb_fail(err, qw_trap_code(t) == QB_LIMIT ? QB_LIMIT : QB_TRAP,
                 "UDF %s trapped in qd_abi_version: %s", u->label, qw_trap_message(t));
  } else if (abi && (uint32_t)slots[0] != 1) {
    rc = qb_fail(err, QB_INVALID, "UDF %s speaks ABI %d (qd_abi_version); this host speaks 1",
                 u->label, (int32_t)(uint32_t)slots[0]);
  }
  if (rc) {
    qw_instance_free(in->wi);
    qb_free(in, sizeof *in);
    return rc;
  }
  in->bytes = qw_instance_memory_bytes(in->wi);
  atomic_fetch_add(&u->stats->instance_bytes, in->bytes);
  atomic_fetch_add(&u->stats->instances, 1);
  *out = in;
  return QB_OK;
}

qb_code qu__inst_checkout(qu_udf *u, qu__inst **out, qb_err *err) {
  pthread_mutex_lock(&u->pool_mu);
  QB_ASSERT(u->nidle <= u->opts.max_idle_instances);
  if (u->nidle) {
    *out = u->idle[--u->nidle];
    QB_ASSERT(*out && (*out)->wi && (*out)->fn);
    pthread_mutex_unlock(&u->pool_mu);
    return QB_OK;
  }
  pthread_mutex_unlock(&u->pool_mu);
  return inst_new(u, out, err);
}

void qu__inst_checkin(qu_udf *u, qu__inst *in, int discard) {
  if (!in) return;
  size_t now = qw_instance_memory_bytes(in->wi); /* memory.grow since the last look */
  if (now != in->bytes) {
    atomic_fetch_add(&u->stats->instance_bytes, now);
    atomic_fetch_sub(&u->stats->instance_bytes, in->bytes);
    in->bytes = now;
  }
  if (!discard) {
    pthread_mutex_lock(&u->pool_mu);
    if (u->nidle < u->opts.max_idle_instances) {
      u->idle[u->nidle++] = in;
      in = NULL;
    }
    pthread_mutex_unlock(&u->pool_mu);
    if (!in) return;
  }
  atomic_fetch_sub(&u->stats->instance_bytes, in->bytes);
  uint64_t live = atomic_fetch_sub(&u->stats->instances, 1);
  QB_ASSERT(live > 0); /* every instance freed here was counted by inst_new */
  qw_instance_free(in->wi);
  qb_free(in, sizeof *in);
}
