/* test_artifact.c: the artifact container and its signatures. The container round-trips and
** its parser refuses every malformed form (magic, format, flags, reserved, text fields,
** truncation, trailing bytes, a flipped byte); key pairs (file names, 0600, no overwrite);
** the trust list. Then uploads to a real registry with the fake native tier and a cache: an
** unsigned, wrongly signed, tampered, wrong-target, other-CPU and other-module artifact is
** never loaded (the version compiles, the reason is in its status), a good one is loaded
** (native-aot) without compiling. */
#include "udf_test_util.h"

#include <sodium.h>
#include <sys/stat.h>

#include "fake_native.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/qu_artXXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

static void container(qb_buf *out, const uint8_t sha[32], const char *triple,
                      const char *features, uint32_t abi, const char *object) {
  qu_artifact a;
  qb_err err = {0};
  memset(&a, 0, sizeof a);
  a.abi_version = abi;
  a.flags = QU_ARTIFACT_AOT;
  memcpy(a.module_sha256, sha, 32);
  snprintf(a.triple, sizeof a.triple, "%s", triple);
  snprintf(a.cpu_features, sizeof a.cpu_features, "%s", features);
  a.object = (const uint8_t *)object;
  a.object_len = strlen(object);
  qb_buf_init(out);
  if (qu_artifact_write(&a, out, &err)) fail_msg("write: %s", err.msg);
}

static const uint8_t sha_x[32] = {1, 2, 3};

static void container_round_trips(void **state) {
  (void)state;
  qb_buf b;
  qu_artifact a;
  qb_err err = {0};
  container(&b, sha_x, "x86_64-linux", "+avx2", 4, "FAKEOBJ1 object bytes");
  assert_int_equal(b.len, QU_ARTIFACT_HEADER + 21);
  assert_memory_equal(b.data, "QDNATIV1", 8);
  assert_int_equal(qu_artifact_parse((const uint8_t *)b.data, b.len, &a, &err), QB_OK);
  assert_int_equal(a.abi_version, 4);
  assert_int_equal(a.flags, QU_ARTIFACT_AOT);
  assert_memory_equal(a.module_sha256, sha_x, 32);
  assert_string_equal(a.triple, "x86_64-linux");
  assert_string_equal(a.cpu_features, "+avx2");
  assert_int_equal(a.object_len, 21);
  assert_memory_equal(a.object, "FAKEOBJ1 object bytes", 21);
  qb_buf_fini(&b);
}

/* Parse B with byte AT set to V (or cut to LEN when AT < 0): expect CODE and MSG. */
static void refused(const qb_buf *b, long at, uint8_t v, size_t len, qb_code code,
                    const char *msg) {
  uint8_t *copy = malloc(b->len);
  qu_artifact a;
  qb_err err = {0};
  memcpy(copy, b->data, b->len);
  if (at >= 0) copy[at] = v;
  assert_int_equal(qu_artifact_parse(copy, at >= 0 ? b->len : len, &a, &err), code);
  if (!strstr(err.msg, msg)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg);
  free(copy);
}

static void malformed_containers_are_refused(void **state) {
  (void)state;
  qb_buf b;
  container(&b, sha_x, "x86_64-linux", "+avx2", 4, "FAKEOBJ1 object bytes");
  refused(&b, -1, 0, 0, QB_MALFORMED, "truncated (0 bytes");
  refused(&b, -1, 0, 191, QB_MALFORMED, "truncated (191 bytes");
  refused(&b, -1, 0, b.len - 1, QB_MALFORMED, "truncated (header says 21 object bytes, 20");
  refused(&b, 0, 'X', 0, QB_MALFORMED, "bad magic");
  refused(&b, 8, 2, 0, QB_MALFORMED, "format 2");
  refused(&b, 16, 2, 0, QB_MALFORMED, "unknown flags");
  refused(&b, 20, 1, 0, QB_MALFORMED, "reserved");
  refused(&b, 56, 0, 0, QB_MALFORMED, "triple");       /* empty */
  refused(&b, 56 + 3, ' ', 0, QB_MALFORMED, "triple"); /* a space */
  refused(&b, 56 + 20, 'x', 0, QB_MALFORMED, "triple"); /* bytes after the NUL */
  refused(&b, 88 + 63, 'x', 0, QB_MALFORMED, "CPU features");
  refused(&b, 152 + 7, 1, 0, QB_MALFORMED, "at most");  /* a huge length */
  refused(&b, 152, 22, 0, QB_MALFORMED, "truncated");
  refused(&b, 152, 20, 0, QB_MALFORMED, "trailing bytes");
  refused(&b, 30, 0xff, 0, QB_CORRUPT, "checksum mismatch");           /* module hash */
  refused(&b, QU_ARTIFACT_HEADER + 3, 'q', 0, QB_CORRUPT, "checksum"); /* the object */
  refused(&b, 170, 0, 0, QB_CORRUPT, "checksum");                      /* the sum */
  qb_buf_fini(&b);
}

static void key_pairs(void **state) {
  (void)state;
  char pub[4096], key[4096], sub[128];
  struct stat st;
  qb_err err = {0};
  snprintf(sub, sizeof sub, "%s/keys", dir);
  assert_int_equal(qu_keys_generate(sub, "release", pub, key, &err), QB_OK);
  assert_true(strstr(pub, "/keys/release.pub") != NULL);
  assert_true(strstr(key, "/keys/release.key") != NULL);
  assert_int_equal(stat(key, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(pub, &st), 0);
  assert_int_equal(st.st_size, 65); /* 64 hex digits and a newline */
  assert_int_equal(qu_keys_generate(sub, "release", NULL, NULL, &err), QB_CONFLICT);
  /* a signature made with the key verifies with the public one */
  uint8_t sig[QU_SIG_BYTES], pk[32];
  char hex[80];
  FILE *f = fopen(pub, "r");
  assert_non_null(fgets(hex, sizeof hex, f));
  fclose(f);
  assert_int_equal(sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL), 0);
  assert_int_equal(qu_artifact_sign(key, (const uint8_t *)"abc", 3, sig, &err), QB_OK);
  assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"abc", 3, pk), 0);
  assert_int_equal(qu_artifact_sign(pub, (const uint8_t *)"abc", 3, sig, &err), QB_MALFORMED);
}

static void a_bad_trust_list_is_an_error(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/broken.pub", dir);
  FILE *f = fopen(path, "w");
  fputs("not a key\n", f);
  fclose(f);
  fake fk = {0};
  qu_compiler_options o = {.trusted_keys_dir = dir};
  qu_compiler *c = NULL;
  qb_err err = {0};
  assert_int_equal(qu_compiler_new(fake_ops(&fk), &o, &c, &err), QB_MALFORMED);
  assert_string_equal(err.msg,
                      "trusted keys: broken.pub: not an Ed25519 public key (64 hex digits)");
  o.trusted_keys_dir = "/nonexistent/keys";
  assert_int_equal(qu_compiler_new(fake_ops(&fk), &o, &c, &err), QB_IO);
}

/* ---- uploads to a registry ------------------------------------------------------------------- */

typedef struct node {
  fake f;
  qw_engine *e;
  qu_compiler *c;
  qu_registry *r;
  uint8_t sha[32];
  char trusted_key[4096], other_key[4096];
} node;

static void node_up(node *n) {
  static int serial;
  char base[96], keys[128], other[128], cache[128], db[128];
  qb_err err = {0};
  memset(n, 0, sizeof *n);
  snprintf(base, sizeof base, "%s/node%d", dir, ++serial);
  assert_int_equal(mkdir(base, 0700), 0);
  snprintf(keys, sizeof keys, "%s/trusted", base);
  snprintf(other, sizeof other, "%s/other", base);
  snprintf(cache, sizeof cache, "%s/cache", base);
  snprintf(db, sizeof db, "%s/udf.db", base);
  assert_int_equal(qu_keys_generate(keys, "ci", NULL, n->trusted_key, &err), QB_OK);
  assert_int_equal(qu_keys_generate(other, "stranger", NULL, n->other_key, &err), QB_OK);
  qu_compiler_options o = {.cache_dir = cache, .trusted_keys_dir = keys,
                           .verify_blocks = UINT32_MAX};
  if (qu_compiler_new(fake_ops(&n->f), &o, &n->c, &err)) fail_msg("compiler: %s", err.msg);
  n->e = engine_new();
  qu_options uo = {.compiler = n->c};
  if (qu_registry_open(n->e, db, &uo, &n->r, &err)) fail_msg("open: %s", err.msg);
  size_t len;
  uint8_t *b = wat(custom_score_wat, &len);
  crypto_hash_sha256(n->sha, b, len);
  if (qu_registry_deploy(n->r, NULL, custom_score_manifest, strlen(custom_score_manifest), b,
                         len, NULL, &err))
    fail_msg("deploy: %s", err.msg);
  free(b);
}

static void node_down(node *n) {
  qu_registry_close(n->r);
  qu_compiler_free(n->c);
  qw_engine_free(n->e);
}

/* Offer ART (signed with KEY, or unsigned when NULL; TAMPER flips a byte after signing), then
** load the version: expect the offer's code and the origin the version ends on. */
static qu_tier_status offer(node *n, const qb_buf *art, const char *key, int tamper,
                            qb_code want) {
  uint8_t sig[QU_SIG_BYTES];
  qb_err err = {0};
  uint8_t *bytes = malloc(art->len);
  memcpy(bytes, art->data, art->len);
  if (key) assert_int_equal(qu_artifact_sign(key, bytes, art->len, sig, &err), QB_OK);
  if (tamper) bytes[QU_ARTIFACT_HEADER + 1] ^= 1;
  qb_code rc = qu_registry_offer_artifact(n->r, "custom_score", 1, bytes, art->len,
                                          key ? sig : NULL, key ? sizeof sig : 0, &err);
  free(bytes);
  if (rc != want) fail_msg("offer: %s (code %s)", err.msg, qb_code_name(rc));
  qu_udf *u = NULL;
  if (qu_registry_acquire(n->r, "custom_score", 0, &u, &err)) fail_msg("acquire: %s", err.msg);
  qu_compiler_wait_idle(n->c);
  qu_tier_status st;
  qu_udf_tier_status(u, &st);
  qu_udf_release(u);
  qu_tier_status st2;
  assert_int_equal(qu_registry_tier_status(n->r, "custom_score", 0, &st2, &err), QB_OK);
  assert_int_equal(st2.origin, st.origin);
  return st;
}

static void never_loaded(const qb_buf *art, const char *key_kind, int tamper, qb_code want,
                         const char *why) {
  node n;
  node_up(&n);
  const char *key = !strcmp(key_kind, "trusted") ? n.trusted_key
                    : !strcmp(key_kind, "other") ? n.other_key : NULL;
  qu_tier_status st = offer(&n, art, key, tamper, want);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_int_equal(st.origin, QU_ORIGIN_JIT); /* compiled here */
  assert_int_equal(atomic_load(&n.f.loads), 0);
  assert_int_equal(atomic_load(&n.f.compiles), 1);
  if (!strstr(st.artifact, why)) fail_msg("status \"%s\" lacks \"%s\"", st.artifact, why);
  assert_non_null(strstr(st.artifact, "uploaded artifact not used"));
  node_down(&n);
}

/* A container for the deployed module; fills SHA's place from a first node. */
static void good_container(qb_buf *b, const char *triple, const char *features, uint32_t abi) {
  size_t len;
  uint8_t *w = wat(custom_score_wat, &len), sha[32];
  crypto_hash_sha256(sha, w, len);
  free(w);
  container(b, sha, triple, features, abi, "FAKEOBJ1 from an AOT build");
}

static void unsigned_artifacts_are_not_loaded(void **s) {
  (void)s;
  qb_buf b;
  good_container(&b, "x86_64-linux", "+avx2", 1);
  never_loaded(&b, "none", 0, QB_INVALID, "not signed");
  qb_buf_fini(&b);
}

static void wrongly_signed_artifacts_are_not_loaded(void **s) {
  (void)s;
  qb_buf b;
  good_container(&b, "x86_64-linux", "+avx2", 1);
  never_loaded(&b, "other", 0, QB_INVALID, "not signed by a trusted key");
  qb_buf_fini(&b);
}

static void tampered_artifacts_are_not_loaded(void **s) {
  (void)s;
  qb_buf b;
  good_container(&b, "x86_64-linux", "+avx2", 1);
  never_loaded(&b, "trusted", 1, QB_INVALID, "not signed by a trusted key");
  qb_buf_fini(&b);
}

static void wrong_target_artifacts_are_not_loaded(void **s) {
  (void)s;
  qb_buf b;
  good_container(&b, "aarch64-linux", "", 1);
  never_loaded(&b, "trusted", 0, QB_CONFLICT, "built for aarch64-linux, this node is x86_64-linux");
  qb_buf_fini(&b);
  good_container(&b, "x86_64-linux", "+avx512f", 1);
  never_loaded(&b, "trusted", 0, QB_CONFLICT, "needs CPU features \"+avx512f\"");
  qb_buf_fini(&b);
  container(&b, sha_x, "x86_64-linux", "+avx2", 1, "FAKEOBJ1 of another module");
  never_loaded(&b, "trusted", 0, QB_CONFLICT, "built for module 0102030000000000...");
  qb_buf_fini(&b);
  good_container(&b, "x86_64-linux", "+avx2", 9);
  never_loaded(&b, "trusted", 0, QB_CONFLICT, "built for engine ABI 9, this node runs ABI 1");
  qb_buf_fini(&b);
  /* altered before signing: the signature holds, the container's own checksum does not */
  good_container(&b, "x86_64-linux", "+avx2", 1);
  b.data[12] = 9;
  qu_artifact a;
  qb_err err = {0};
  assert_int_equal(qu_artifact_parse((const uint8_t *)b.data, b.len, &a, &err), QB_CORRUPT);
  never_loaded(&b, "trusted", 0, QB_CORRUPT, "checksum mismatch");
  qb_buf_fini(&b);
}

static void a_good_artifact_is_loaded_without_compiling(void **s) {
  (void)s;
  qb_buf b;
  node n;
  good_container(&b, "x86_64-linux", "+avx2", 1);
  node_up(&n);
  qu_tier_status st = offer(&n, &b, n.trusted_key, 0, QB_OK);
  assert_int_equal(st.state, QU_NATIVE_READY);
  assert_int_equal(st.origin, QU_ORIGIN_AOT);
  assert_string_equal(qu_origin_name(st.origin), "native-aot");
  assert_int_equal(atomic_load(&n.f.loads), 1);
  assert_int_equal(atomic_load(&n.f.compiles), 0);
  assert_non_null(strstr(st.artifact, "uploaded artifact accepted"));
  node_down(&n);
  qb_buf_fini(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(container_round_trips),
      cmocka_unit_test(malformed_containers_are_refused),
      cmocka_unit_test_setup_teardown(key_pairs, setup, teardown),
      cmocka_unit_test_setup_teardown(a_bad_trust_list_is_an_error, setup, teardown),
      cmocka_unit_test_setup_teardown(unsigned_artifacts_are_not_loaded, setup, teardown),
      cmocka_unit_test_setup_teardown(wrongly_signed_artifacts_are_not_loaded, setup, teardown),
      cmocka_unit_test_setup_teardown(tampered_artifacts_are_not_loaded, setup, teardown),
      cmocka_unit_test_setup_teardown(wrong_target_artifacts_are_not_loaded, setup, teardown),
      cmocka_unit_test_setup_teardown(a_good_artifact_is_loaded_without_compiling, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
