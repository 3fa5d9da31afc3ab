/* test_cache.c: the native-code cache on a real folder. Through a compiler with the fake
** native tier (fake_native.h): the first load compiles and stores, a second compiler on the
** same folder (a restart) loads from the cache without compiling; a corrupt byte, a truncated
** entry, an entry for another ABI or target, and an object the hook refuses are each detected,
** counted, removed and recompiled, never loaded; so is an object that loads but gives no
** entry. Directly (internal.h): LRU eviction order under the size bound, across a reopen;
** stray temp files removed at open. */
#include "udf_test_util.h"

#include <dirent.h>
#include <sys/stat.h>

#include "fake_native.h"
#include "internal.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/qu_cacheXXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

/* The one entry file in the cache folder (fails unless there is exactly one). */
static void only_entry(char *path, size_t n) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int count = 0;
  assert_non_null(d);
  while ((de = readdir(d)))
    if (strstr(de->d_name, ".qdn")) {
      snprintf(path, n, "%s/%.80s", dir, de->d_name);
      count++;
    }
  closedir(d);
  assert_int_equal(count, 1);
}

static int count_files(void) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int count = 0;
  while ((de = readdir(d))) count += de->d_name[0] != '.';
  closedir(d);
  return count;
}

/* Load custom_score with a fresh compiler on the folder (a node start) and let it settle. */
static qu_tier_status node_start(fake *f, qu_cache_stats *cs) {
  qw_engine *e = engine_new();
  qu_manifest *m = manifest_of(custom_score_manifest);
  qu_compiler_options o = {.cache_dir = dir, .verify_blocks = UINT32_MAX};
  qu_compiler *c = NULL;
  qb_err err = {0};
  if (qu_compiler_new(fake_ops(f), &o, &c, &err)) fail_msg("compiler: %s", err.msg);
  size_t len;
  uint8_t *b = wat(custom_score_wat, &len);
  qu_options uo = {.compiler = c};
  qu_udf *u = NULL;
  if (qu_udf_load(e, m, 1, b, len, &uo, &u, &err)) fail_msg("load: %s", err.msg);
  free(b);
  qu_compiler_wait_idle(c);
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  qu_compiler_cache_stats(c, cs);
  qu_udf_release(u);
  qu_compiler_free(c);
  qu_manifest_free(m);
  qw_engine_free(e);
  return st;
}

/* An object that loads but then gives no entry for the export is removed and recompiled,
** so the next start loads the fresh one instead of failing again on every restart. */
static void object_without_entry_is_removed(void **state) {
  (void)state;
  fake f = {0};
  qu_cache_stats cs;
  node_start(&f, &cs);
  f.no_loaded_entry = 1;
  qu_tier_status st = node_start(&f, &cs);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_int_equal(st.origin, QU_ORIGIN_JIT); /* compiled again after the refused load */
  assert_int_equal(cs.rejected, 1);
  assert_int_equal(cs.hits, 0);
  assert_int_equal(cs.entries, 1);
  assert_int_equal(atomic_load(&f.compiles), 2);
  assert_int_equal(atomic_load(&f.loads), 1);
  f.no_loaded_entry = 0;
  st = node_start(&f, &cs);
  assert_int_equal(st.origin, QU_ORIGIN_CACHE);
  assert_int_equal(atomic_load(&f.compiles), 2);
}

static void restart_loads_from_the_cache(void **state) {
  (void)state;
  fake f = {0};
  qu_cache_stats cs;
  qu_tier_status st = node_start(&f, &cs);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_int_equal(st.origin, QU_ORIGIN_JIT);
  assert_int_equal(st.cache_hit, 0);
  assert_int_equal(cs.misses, 1);
  assert_int_equal(cs.entries, 1);
  assert_int_equal(cs.size_bytes, QU_ARTIFACT_HEADER + 64);
  st = node_start(&f, &cs);
  assert_int_equal(st.origin, QU_ORIGIN_CACHE);
  assert_string_equal(qu_origin_name(st.origin), "native-cache");
  assert_int_equal(st.cache_hit, 1);
  assert_int_equal(cs.hits, 1);
  assert_int_equal(cs.misses, 0);
  assert_int_equal(atomic_load(&f.compiles), 1);
  assert_int_equal(atomic_load(&f.loads), 1);
}

/* Spoil the entry with HOW, then a node start must recompile and replace it. */
static void spoiled_entry_is_recompiled(void (*spoil)(const char *path)) {
  fake f = {0};
  qu_cache_stats cs;
  char path[256];
  node_start(&f, &cs);
  only_entry(path, sizeof path);
  spoil(path);
  qu_tier_status st = node_start(&f, &cs);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_int_equal(st.origin, QU_ORIGIN_JIT); /* compiled again, not loaded */
  assert_int_equal(cs.rejected, 1);
  assert_int_equal(cs.hits, 0);
  assert_int_equal(cs.entries, 1); /* the fresh one */
  assert_int_equal(atomic_load(&f.compiles), 2);
  assert_int_equal(atomic_load(&f.loads), 0);
  /* and the fresh entry is good */
  st = node_start(&f, &cs);
  assert_int_equal(st.origin, QU_ORIGIN_CACHE);
}

static void flip_object_byte(const char *path) {
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  fseek(fp, QU_ARTIFACT_HEADER + 20, SEEK_SET);
  int c = fgetc(fp);
  fseek(fp, QU_ARTIFACT_HEADER + 20, SEEK_SET);
  fputc(c ^ 0x40, fp);
  fclose(fp);
}
static void truncate_entry(const char *path) { assert_int_equal(truncate(path, 150), 0); }
static void truncate_object(const char *path) {
  assert_int_equal(truncate(path, QU_ARTIFACT_HEADER + 10), 0);
}

/* Rewrite the entry as a well-formed container that differs from the key in one field. */
static void rewrite(const char *path, uint32_t abi, const char *triple, const char *features,
                    const char *object) {
  FILE *fp = fopen(path, "rb");
  uint8_t old[4096];
  size_t n = fread(old, 1, sizeof old, fp);
  fclose(fp);
  qu_artifact a, w;
  qb_err err = {0};
  assert_int_equal(qu_artifact_parse(old, n, &a, &err), QB_OK);
  memset(&w, 0, sizeof w);
  w.abi_version = abi ? abi : a.abi_version;
  memcpy(w.module_sha256, a.module_sha256, 32);
  snprintf(w.triple, sizeof w.triple, "%s", triple ? triple : a.triple);
  snprintf(w.cpu_features, sizeof w.cpu_features, "%s", features ? features : a.cpu_features);
  w.object = object ? (const uint8_t *)object : a.object;
  w.object_len = object ? strlen(object) : a.object_len;
  qb_buf out;
  qb_buf_init(&out);
  assert_int_equal(qu_artifact_write(&w, &out, &err), QB_OK);
  fp = fopen(path, "wb");
  fwrite(out.data, 1, out.len, fp);
  fclose(fp);
  qb_buf_fini(&out);
}
static void wrong_abi(const char *path) { rewrite(path, 7, NULL, NULL, NULL); }
static void wrong_triple(const char *path) { rewrite(path, 0, "aarch64-linux", NULL, NULL); }
static void wrong_cpu(const char *path) { rewrite(path, 0, NULL, "+sse2,+avx512f", NULL); }
static void bad_object(const char *path) { rewrite(path, 0, NULL, NULL, "NOTFAKE!"); }

static void corrupt_byte(void **s) { (void)s; spoiled_entry_is_recompiled(flip_object_byte); }
static void truncated_header(void **s) { (void)s; spoiled_entry_is_recompiled(truncate_entry); }
static void truncated_object(void **s) { (void)s; spoiled_entry_is_recompiled(truncate_object); }
static void other_abi(void **s) { (void)s; spoiled_entry_is_recompiled(wrong_abi); }
static void other_triple(void **s) { (void)s; spoiled_entry_is_recompiled(wrong_triple); }
static void other_cpu(void **s) { (void)s; spoiled_entry_is_recompiled(wrong_cpu); }
static void object_the_hook_refuses(void **s) { (void)s; spoiled_entry_is_recompiled(bad_object); }

/* ---- LRU, directly ----------------------------------------------------------------------------- */

static qu__key key_n(int i) {
  qu__key k;
  memset(&k, 0, sizeof k);
  k.module_sha256[0] = (uint8_t)i;
  k.abi_version = 1;
  k.triple = "x86_64-linux";
  k.cpu_features = "";
  return k;
}

static int has(qu__cache *c, int i) {
  qu__key k = key_n(i);
  qb_buf b;
  qu_artifact a;
  qb_buf_init(&b);
  int hit = qu__cache_get(c, &k, &b, &a) == QB_OK;
  if (hit) assert_int_equal(a.object[0], 'A' + i);
  qb_buf_fini(&b);
  return hit;
}

static void put(qu__cache *c, int i) {
  qu__key k = key_n(i);
  uint8_t obj[1000];
  qb_err err = {0};
  memset(obj, 'A' + i, sizeof obj);
  if (qu__cache_put(c, &k, 0, obj, sizeof obj, &err)) fail_msg("put: %s", err.msg);
}

static void eviction_is_least_recently_used_first(void **state) {
  (void)state;
  qu__cache *c = NULL;
  qb_err err = {0};
  qu_cache_stats cs;
  const uint64_t entry = QU_ARTIFACT_HEADER + 1000;
  assert_int_equal(qu__cache_open(dir, 3 * entry, &c, &err), QB_OK); /* room for three */
  put(c, 1);
  put(c, 2);
  put(c, 3);
  assert_true(has(c, 1)); /* 1 is now the most recently used: 2 is the oldest */
  put(c, 4);              /* evicts 2 */
  qu__cache_stats(c, &cs);
  assert_int_equal(cs.evictions, 1);
  assert_int_equal(cs.entries, 3);
  assert_int_equal(cs.size_bytes, 3 * entry);
  assert_false(has(c, 2));
  assert_true(has(c, 3)); /* order now: 1, 4, 3 (oldest first) */
  qu__cache_close(c);
  /* the order survives a reopen (the files' mtimes); a stray temp file is swept */
  char tmp[128];
  snprintf(tmp, sizeof tmp, "%s/.tmp-crashed-write", dir);
  FILE *fp = fopen(tmp, "w");
  fputs("half", fp);
  fclose(fp);
  assert_int_equal(qu__cache_open(dir, 3 * entry, &c, &err), QB_OK);
  assert_int_equal(count_files(), 3);
  put(c, 5); /* evicts 1 */
  assert_false(has(c, 1));
  assert_true(has(c, 4));
  assert_true(has(c, 3));
  assert_true(has(c, 5));
  qu__cache_close(c);
  /* a smaller bound at open evicts down to it, oldest first (1 entry left: 5, used last) */
  assert_int_equal(qu__cache_open(dir, entry, &c, &err), QB_OK);
  qu__cache_stats(c, &cs);
  assert_int_equal(cs.entries, 1);
  assert_true(has(c, 5));
  qu__cache_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(restart_loads_from_the_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(corrupt_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(truncated_header, setup, teardown),
      cmocka_unit_test_setup_teardown(truncated_object, setup, teardown),
      cmocka_unit_test_setup_teardown(other_abi, setup, teardown),
      cmocka_unit_test_setup_teardown(other_triple, setup, teardown),
      cmocka_unit_test_setup_teardown(other_cpu, setup, teardown),
      cmocka_unit_test_setup_teardown(object_the_hook_refuses, setup, teardown),
      cmocka_unit_test_setup_teardown(object_without_entry_is_removed, setup, teardown),
      cmocka_unit_test_setup_teardown(eviction_is_least_recently_used_first, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
