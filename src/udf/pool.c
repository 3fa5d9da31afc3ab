/* pool.c: the background compiler (qu_compiler): the program's qu_native_ops, a FIFO of versions
** waiting for native code, one or two low-priority threads that serve it, the native-code
** cache and the trust list. One job: the cache (an entry this node or a trusted upload left),
** else the hook's compile, then the export's entry handed to tier.c, then (after a compile) its
** object into the cache, so the swap does not wait for the second LLVM pass. Invariant: a queued or running job holds a reference on its version, so a version
** never dies under its compile; RUNNING lists what the threads hold, so a registry can wait
** for its own versions before it closes. */
#define _GNU_SOURCE
#include "udf.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define MAX_THREADS 2

struct qu_compiler {
  qu_native_ops ops;
  qu_compiler_options opts; /* defaults applied; strings not kept */
  pthread_mutex_t mu;
  pthread_cond_t work, idle;
  qu_udf **queue;           /* ring of opts.max_queue */
  uint32_t head, count;
  qu_udf *running[MAX_THREADS];
  uint32_t nthreads;
  pthread_t threads[MAX_THREADS];
  int stop;
  qu__cache *cache;
  qu__trust *trust;
};

const qu_native_ops *qu__compiler_ops(const qu_compiler *c) { return &c->ops; }
qu_tier_pin qu__compiler_pin(const qu_compiler *c) { return c->opts.pin; }
uint32_t qu__compiler_verify_blocks(const qu_compiler *c) { return c->opts.verify_blocks; }
qu__cache *qu__compiler_cache(qu_compiler *c) { return c->cache; }
qu__trust *qu__compiler_trust(qu_compiler *c) { return c->trust; }

void qu__key_of(qu_compiler *c, const uint8_t sha256[32], qu__key *out) {
  memcpy(out->module_sha256, sha256, 32);
  out->abi_version = c->ops.abi_version;
  out->triple = c->ops.triple;
  out->cpu_features = c->ops.cpu_features;
}

/* ---- one job -------------------------------------------------------------------------------- */

/* 1 when M is past one of C's compile limits (docs/jit.md "Compile memory"): WHY says which */
static int too_big(const qu_compiler *c, const qw_module *m, char *why, size_t cap) {
  qw_module_info mi;
  qw_module_get_info(m, &mi);
  uint32_t defined = mi.nfuncs - mi.nimported_funcs;
  if (defined > c->opts.max_functions)
    snprintf(why, cap, "%u functions, over the JIT's limit of %u", defined,
             c->opts.max_functions);
  else if (mi.code_bytes > c->opts.max_code_bytes)
    snprintf(why, cap, "%u bytes of code, over the JIT's limit of %u", mi.code_bytes,
             c->opts.max_code_bytes);
  else if (mi.max_body_bytes > c->opts.max_body_bytes)
    snprintf(why, cap, "a function body of %u bytes, over the JIT's limit of %u",
             mi.max_body_bytes, c->opts.max_body_bytes);
  else
    return 0;
  return 1;
}

static void compile_one(qu_compiler *c, qu_udf *u) {
  const qu_native_ops *ops = &c->ops;
  qu_native *n = NULL;
  qu_native_entry ne = {0};
  qu_origin origin = QU_ORIGIN_JIT;
  int hit = 0, compiled = 0;
  qb_err err = {0};
  qu__key key;
  uint64_t t0 = qb_now_ns();
  qu__mem mem;
  qu__mem_begin(&mem);
  qu__tier_set_state(u, QU_NATIVE_COMPILING);
  qu__key_of(c, u->sha256, &key);
  if (c->cache && ops->load) {
    qb_buf buf;
    qu_artifact a;
    qb_buf_init(&buf);
    if (qu__cache_get(c->cache, &key, &buf, &a) == QB_OK) {
      if (ops->load(ops->ud, u->mod, a.object, a.object_len, &n, &err) == QB_OK) {
        hit = 1;
        origin = (a.flags & QU_ARTIFACT_AOT) ? QU_ORIGIN_AOT : QU_ORIGIN_CACHE;
      } else {
        char why[sizeof err.msg + 32];
        snprintf(why, sizeof why, "the object did not load: %s", err.msg);
        qu__cache_reject(c->cache, &key, why);
        n = NULL;
      }
    }
    qb_buf_fini(&buf);
  }
compile:
  if (!n) {
    char big[160];
    if (too_big(c, u->mod, big, sizeof big)) {
      qu__tier_failed(u, "not compiled: %s", big);
      qb_log(QB_WARN, "UDF %s: not compiled to native code: %s; staying on the interpreter",
             u->label, big);
      return;
    }
    if (ops->compile(ops->ud, u->mod, &n, &err)) {
      qu__tier_failed(u, "compilation failed: %s", err.msg);
      qb_log(QB_ERROR, "UDF %s: native compilation failed: %s; staying on the interpreter",
             u->label, err.msg);
      return;
    }
    compiled = 1;
  }
  if (ops->entry(ops->ud, n, u->m->export_name, &ne, &err) || (!ne.doc == !ne.block)) {
    if (!err.msg[0]) snprintf(err.msg, sizeof err.msg, "the hook gave no single entry");
    ops->free(ops->ud, n);
    n = NULL;
    if (hit) { /* a cached object that loads but serves no entry: never again; compile instead */
      char why[sizeof err.msg + 32];
      snprintf(why, sizeof why, "no native entry for %s: %s", u->m->export_name, err.msg);
      qu__cache_reject(c->cache, &key, why);
      hit = 0;
      origin = QU_ORIGIN_JIT;
      memset(&ne, 0, sizeof ne);
      err.msg[0] = 0;
      goto compile;
    }
    qu__tier_failed(u, "no native entry for export %s: %s", u->m->export_name, err.msg);
    qb_log(QB_ERROR, "UDF %s: no native entry for %s: %s; staying on the interpreter", u->label,
           u->m->export_name, err.msg);
    return;
  }
  qu__tier_install(u, n, &ne, origin, hit, qb_now_ns() - t0, qu__mem_end(&mem));
  /* the object for the cache after the swap: native code serves meanwhile (EMIT only reads N;
  ** this job's reference on U keeps N alive) */
  if (compiled && c->cache && ops->emit) {
    qb_buf obj;
    qb_buf_init(&obj);
    qb_err e2 = {0};
    if (ops->emit(ops->ud, n, &obj, &e2) ||
        qu__cache_put(c->cache, &key, 0, (const uint8_t *)obj.data, obj.len, &e2))
      qb_log(QB_WARN, "UDF %s: native code not cached: %s", u->label, e2.msg);
    qb_buf_fini(&obj);
  }
}

/* ---- the threads ------------------------------------------------------------------------------ */

static void *worker(void *arg) {
  qu_compiler *c = arg;
  uint32_t slot;
  if (c->opts.nice >= 0) /* Linux: a thread's own nice value, by its tid */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), c->opts.nice);
  pthread_mutex_lock(&c->mu);
  for (slot = 0; slot < MAX_THREADS && !pthread_equal(c->threads[slot], pthread_self()); slot++) {
  }
  if (slot == MAX_THREADS) slot = 0; /* cannot happen: the creator stored our id first */
  for (;;) {
    while (!c->stop && !c->count) pthread_cond_wait(&c->work, &c->mu);
    if (c->stop) break;
    qu_udf *u = c->queue[c->head];
    c->head = (c->head + 1) % c->opts.max_queue;
    c->count--;
    c->running[slot] = u;
    pthread_mutex_unlock(&c->mu);
    compile_one(c, u);
    qu_udf_release(u);
    pthread_mutex_lock(&c->mu);
    c->running[slot] = NULL;
    pthread_cond_broadcast(&c->idle);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

void qu__compiler_submit(qu_compiler *c, qu_udf *u) {
  if (c->opts.pin == QU_PIN_NATIVE) {
    compile_one(c, u);
    return;
  }
  pthread_mutex_lock(&c->mu);
  if (c->stop || c->count == c->opts.max_queue) {
    pthread_mutex_unlock(&c->mu);
    qu__tier_failed(u, "the compile queue is full (%u versions)", c->opts.max_queue);
    qb_log(QB_WARN, "UDF %s: the compile queue is full; staying on the interpreter", u->label);
    return;
  }
  qu__tier_set_state(u, QU_NATIVE_QUEUED);
  c->queue[(c->head + c->count) % c->opts.max_queue] = qu_udf_retain(u);
  c->count++;
  pthread_cond_signal(&c->work);
  pthread_mutex_unlock(&c->mu);
}

static int busy(const qu_compiler *c, const qu_registry *r) {
  for (uint32_t i = 0; i < MAX_THREADS; i++)
    if (c->running[i] && (!r || c->running[i]->reg == r)) return 1;
  return 0;
}

void qu__compiler_forget(qu_compiler *c, qu_registry *r) {
  pthread_mutex_lock(&c->mu);
  /* drop R's queued jobs (the registry frees its versions itself), keep the others in order */
  uint32_t kept = 0, n = c->count;
  for (uint32_t i = 0; i < n; i++) {
    qu_udf *u = c->queue[(c->head + i) % c->opts.max_queue];
    if (u->reg == r) {
      atomic_fetch_sub_explicit(&u->refs, 1, memory_order_relaxed);
      continue;
    }
    c->queue[(c->head + kept++) % c->opts.max_queue] = u;
  }
  c->count = kept;
  while (busy(c, r)) pthread_cond_wait(&c->idle, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

void qu_compiler_wait_idle(qu_compiler *c) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  while (c->count || busy(c, NULL)) pthread_cond_wait(&c->idle, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

/* ---- life cycle ------------------------------------------------------------------------------- */

qb_code qu_compiler_new(const qu_native_ops *ops, const qu_compiler_options *opts,
                        qu_compiler **out, qb_err *err) {
  qu_compiler *c;
  qb_code rc;
  *out = NULL;
  if (!ops || !ops->compile || !ops->entry || !ops->free || !ops->triple || !ops->cpu_features)
    return qb_fail(err, QB_INVAL, "udf compiler: the native hook needs compile, entry, free, "
                   "triple and cpu_features");
  if (strlen(ops->triple) >= 32 || strlen(ops->cpu_features) >= 64)
    return qb_fail(err, QB_INVAL, "udf compiler: triple (31) or cpu features (63) too long");
  if (opts && opts->threads > MAX_THREADS)
    return qb_fail(err, QB_INVAL, "udf compiler: %u threads (at most %d)", opts->threads,
                   MAX_THREADS);
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "udf compiler: libsodium init failed");
  if (!(c = qb_calloc(1, sizeof *c))) return qb_fail(err, QB_NOMEM, "udf compiler: out of memory");
  c->ops = *ops;
  if (opts) c->opts = *opts;
  if (!c->opts.threads) c->opts.threads = 1;
  if (!c->opts.nice) c->opts.nice = 19;
  if (!c->opts.verify_blocks) c->opts.verify_blocks = 8;
  if (!c->opts.max_queue) c->opts.max_queue = 256;
  if (!c->opts.max_functions) c->opts.max_functions = 10000;
  if (!c->opts.max_code_bytes) c->opts.max_code_bytes = 4u << 20;
  if (!c->opts.max_body_bytes) c->opts.max_body_bytes = 256u << 10;
  if (!c->opts.cache_max_bytes) c->opts.cache_max_bytes = (uint64_t)256 << 20;
  c->opts.cache_dir = c->opts.trusted_keys_dir = NULL;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->work, NULL);
  pthread_cond_init(&c->idle, NULL);
  if (!(c->queue = qb_calloc(c->opts.max_queue, sizeof *c->queue))) {
    rc = qb_fail(err, QB_NOMEM, "udf compiler: out of memory");
    goto fail;
  }
  if (opts && opts->cache_dir &&
      (rc = qu__cache_open(opts->cache_dir, c->opts.cache_max_bytes, &c->cache, err)))
    goto fail;
  if (opts && opts->trusted_keys_dir && (rc = qu__trust_load(opts->trusted_keys_dir, &c->trust, err)))
    goto fail;
  if (c->opts.pin != QU_PIN_NATIVE) {
    pthread_mutex_lock(&c->mu); /* workers find their slot once the ids are stored */
    for (uint32_t i = 0; i < c->opts.threads; i++) {
      if (pthread_create(&c->threads[i], NULL, worker, c)) {
        pthread_mutex_unlock(&c->mu);
        rc = qb_fail(err, QB_NOMEM, "udf compiler: cannot start a thread");
        goto fail;
      }
      c->nthreads++;
    }
    pthread_mutex_unlock(&c->mu);
  }
  *out = c;
  return QB_OK;
fail:
  qu_compiler_free(c);
  return rc;
}

void qu_compiler_free(qu_compiler *c) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  uint32_t n = c->count;
  qu_udf *dropped[256];
  uint32_t nd = 0;
  pthread_cond_broadcast(&c->work);
  pthread_mutex_unlock(&c->mu);
  for (uint32_t i = 0; i < c->nthreads; i++) pthread_join(c->threads[i], NULL);
  /* the queue is the compiler's alone now */
  while (n) {
    for (nd = 0; n && nd < QB_COUNTOF(dropped); n--, nd++) {
      dropped[nd] = c->queue[c->head];
      c->head = (c->head + 1) % c->opts.max_queue;
    }
    for (uint32_t i = 0; i < nd; i++) {
      qu__tier_failed(dropped[i], "the compiler stopped before compiling it");
      qu_udf_release(dropped[i]);
    }
  }
  qu__cache_close(c->cache);
  qu__trust_free(c->trust);
  qb_free(c->queue, c->queue ? c->opts.max_queue * sizeof *c->queue : 0);
  pthread_cond_destroy(&c->work);
  pthread_cond_destroy(&c->idle);
  pthread_mutex_destroy(&c->mu);
  qb_free(c, sizeof *c);
}

void qu_compiler_cache_stats(qu_compiler *c, qu_cache_stats *out) {
  memset(out, 0, sizeof *out);
  if (c && c->cache) qu__cache_stats(c->cache, out);
}
