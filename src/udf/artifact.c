/* artifact.c: the native-code container (AOT artifacts and cache entries share it), Ed25519
** signatures over it, key pairs, and the trust list a node loads from `--trusted-keys DIR`.
** The container is untrusted input: qu_artifact_parse reads only within LEN, checks each
** field's form and the checksum before anything uses the object. Invariant: a qu_artifact
** that parse returned OK describes bytes whose checksum matched; whether they may run here is
** qu__artifact_match's question (and, for uploads, the signature's). */
#define _GNU_SOURCE
#include "udf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char magic[8] = {'Q', 'D', 'N', 'A', 'T', 'I', 'V', '1'};
#define FORMAT 1
#define MAX_KEYS 1024

/* ---- the container ------------------------------------------------------------------------ */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void set32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void set64(uint8_t *p, uint64_t v) {
  set32(p, (uint32_t)v);
  set32(p + 4, (uint32_t)(v >> 32));
}

static void checksum(const uint8_t *header, const uint8_t *obj, size_t len, uint8_t out[32]) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, header, 160);
  crypto_hash_sha256_update(&st, obj, len);
  crypto_hash_sha256_final(&st, out);
}

/* A NUL-padded text field of N bytes: printable ASCII without spaces, then only NULs. */
static int text_field(const uint8_t *p, size_t n, char *out, int may_be_empty) {
  size_t i = 0;
  while (i < n && p[i]) {
    if (p[i] < 0x21 || p[i] > 0x7e) return 0;
    out[i] = (char)p[i];
    i++;
  }
  if (i == n || (!i && !may_be_empty)) return 0;
  out[i] = 0;
  for (; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

qb_code qu_artifact_parse(const uint8_t *b, size_t len, qu_artifact *out, qb_err *err) {
  uint8_t sum[32];
  memset(out, 0, sizeof *out);
  if (len < QU_ARTIFACT_HEADER)
    return qb_fail(err, QB_MALFORMED, "native artifact: truncated (%zu bytes; the header alone "
                   "is %d)", len, QU_ARTIFACT_HEADER);
  if (memcmp(b, magic, 8)) return qb_fail(err, QB_MALFORMED, "native artifact: bad magic");
  uint32_t format = get32(b + 8);
  if (format != FORMAT)
    return qb_fail(err, QB_MALFORMED, "native artifact: format %u (this node reads %d)", format,
                   FORMAT);
  out->abi_version = get32(b + 12);
  out->flags = get32(b + 16);
  if (out->flags & ~QU_ARTIFACT_AOT)
    return qb_fail(err, QB_MALFORMED, "native artifact: unknown flags 0x%x", out->flags);
  if (get32(b + 20)) return qb_fail(err, QB_MALFORMED, "native artifact: reserved field not 0");
  memcpy(out->module_sha256, b + 24, 32);
  if (!text_field(b + 56, 32, out->triple, 0))
    return qb_fail(err, QB_MALFORMED, "native artifact: bad target triple field");
  if (!text_field(b + 88, 64, out->cpu_features, 1))
    return qb_fail(err, QB_MALFORMED, "native artifact: bad CPU features field");
  uint64_t olen = get64(b + 152);
  if (olen > QU_ARTIFACT_MAX_OBJECT)
    return qb_fail(err, QB_MALFORMED, "native artifact: object of %llu bytes (at most %u)",
                   (unsigned long long)olen, QU_ARTIFACT_MAX_OBJECT);
  if (olen != len - QU_ARTIFACT_HEADER)
    return qb_fail(err, QB_MALFORMED, "native artifact: %s (header says %llu object bytes, %zu "
                   "present)", olen > len - QU_ARTIFACT_HEADER ? "truncated" : "trailing bytes",
                   (unsigned long long)olen, len - QU_ARTIFACT_HEADER);
  checksum(b, b + QU_ARTIFACT_HEADER, (size_t)olen, sum);
  if (sodium_memcmp(sum, b + 160, 32))
    return qb_fail(err, QB_CORRUPT, "native artifact: checksum mismatch");
  out->object = b + QU_ARTIFACT_HEADER;
  out->object_len = (size_t)olen;
  return QB_OK;
}

qb_code qu_artifact_write(const qu_artifact *a, qb_buf *out, qb_err *err) {
  uint8_t h[QU_ARTIFACT_HEADER];
  size_t tl = strlen(a->triple), cl = strlen(a->cpu_features);
  if (!tl || tl >= sizeof a->triple || cl >= sizeof a->cpu_features)
    return qb_fail(err, QB_INVAL, "native artifact: triple or CPU features do not fit");
  if (a->object_len > QU_ARTIFACT_MAX_OBJECT)
    return qb_fail(err, QB_LIMIT, "native artifact: object of %zu bytes (at most %u)",
                   a->object_len, QU_ARTIFACT_MAX_OBJECT);
  memset(h, 0, sizeof h);
  memcpy(h, magic, 8);
  set32(h + 8, FORMAT);
  set32(h + 12, a->abi_version);
  set32(h + 16, a->flags & QU_ARTIFACT_AOT);
  memcpy(h + 24, a->module_sha256, 32);
  memcpy(h + 56, a->triple, tl);
  memcpy(h + 88, a->cpu_features, cl);
  set64(h + 152, a->object_len);
  checksum(h, a->object, a->object_len, h + 160);
  if (qb_buf_append(out, h, sizeof h) || qb_buf_append(out, a->object, a->object_len))
    return qb_fail(err, QB_NOMEM, "native artifact: out of memory");
  return QB_OK;
}

/* Is every feature of WANT (comma-separated) in HAVE? */
static int features_subset(const char *want, const char *have) {
  size_t hl = strlen(have);
  while (*want) {
    const char *end = strchr(want, ',');
    size_t n = end ? (size_t)(end - want) : strlen(want);
    int found = 0;
    for (const char *h = have; h < have + hl;) {
      const char *he = strchr(h, ',');
      size_t m = he ? (size_t)(he - h) : strlen(h);
      if (m == n && !memcmp(h, want, n)) found = 1;
      h += m + (he ? 1 : 0);
      if (!he) break;
    }
    if (n && !found) return 0;
    want += n + (end ? 1 : 0);
    if (!end) break;
  }
  return 1;
}

qb_code qu__artifact_match(const qu_artifact *a, const qu__key *k, qb_err *err) {
  if (sodium_memcmp(a->module_sha256, k->module_sha256, 32)) {
    char h1[17], h2[17];
    sodium_bin2hex(h1, sizeof h1, a->module_sha256, 8);
    sodium_bin2hex(h2, sizeof h2, k->module_sha256, 8);
    return qb_fail(err, QB_CONFLICT, "built for module %s..., this version's module is %s...",
                   h1, h2);
  }
  if (a->abi_version != k->abi_version)
    return qb_fail(err, QB_CONFLICT, "built for engine ABI %u, this node runs ABI %u",
                   a->abi_version, k->abi_version);
  if (strcmp(a->triple, k->triple))
    return qb_fail(err, QB_CONFLICT, "built for %s, this node is %s", a->triple, k->triple);
  if (!features_subset(a->cpu_features, k->cpu_features))
    return qb_fail(err, QB_CONFLICT, "needs CPU features \"%s\", this node has \"%s\"",
                   a->cpu_features, k->cpu_features);
  return QB_OK;
}

/* ---- keys and signatures --------------------------------------------------------------------- */

/* Read a small text file (at most CAP-1 bytes), trailing whitespace trimmed. */
static qb_code read_small(const char *path, char *buf, size_t cap, qb_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return qb_fail(err, QB_IO, "cannot open %s: %s", path, strerror(errno));
  ssize_t n = read(fd, buf, cap - 1);
  char extra;
  int more = n == (ssize_t)(cap - 1) && read(fd, &extra, 1) == 1;
  close(fd);
  if (n < 0 || more) return qb_fail(err, QB_MALFORMED, "%s: not a key file", path);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
  buf[n] = 0;
  return QB_OK;
}

/* Exactly 2*N hex digits in TEXT into OUT. */
static int hex_exact(const char *text, uint8_t *out, size_t n) {
  size_t got = 0;
  if (strlen(text) != 2 * n) return 0;
  return sodium_hex2bin(out, n, text, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

static qb_code write_new(const char *path, const char *text, mode_t mode, qb_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return qb_fail(err, errno == EEXIST ? QB_CONFLICT : QB_IO, "cannot create %s: %s", path,
                   strerror(errno));
  size_t n = strlen(text);
  int bad = write(fd, text, n) != (ssize_t)n || fsync(fd);
  close(fd);
  if (bad) {
    unlink(path);
    return qb_fail(err, QB_IO, "cannot write %s", path);
  }
  return QB_OK;
}

qb_code qu_keys_generate(const char *dir, const char *name, char *pub_path, char *key_path,
                         qb_err *err) {
  uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  char pubp[4096], keyp[4096], text[2 * crypto_sign_SECRETKEYBYTES + 2];
  struct stat st;
  qb_code rc;
  if (!name || !*name || strchr(name, '/') || strlen(name) > 64)
    return qb_fail(err, QB_INVAL, "keys: bad key name");
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "keys: libsodium init failed");
  if (mkdir(dir, 0700) && errno != EEXIST)
    return qb_fail(err, QB_IO, "keys: cannot create %s: %s", dir, strerror(errno));
  snprintf(pubp, sizeof pubp, "%s/%s.pub", dir, name);
  snprintf(keyp, sizeof keyp, "%s/%s.key", dir, name);
  if (!stat(pubp, &st) || !stat(keyp, &st))
    return qb_fail(err, QB_CONFLICT, "keys: %s.pub or %s.key exists in %s (not overwritten)",
                   name, name, dir);
  crypto_sign_keypair(pk, sk);
  sodium_bin2hex(text, sizeof text, sk, sizeof sk);
  strcat(text, "\n");
  rc = write_new(keyp, text, 0600, err);
  sodium_memzero(text, sizeof text);
  sodium_memzero(sk, sizeof sk);
  if (rc) return rc;
  sodium_bin2hex(text, sizeof text, pk, sizeof pk);
  strcat(text, "\n");
  if ((rc = write_new(pubp, text, 0644, err))) {
    unlink(keyp);
    return rc;
  }
  if (pub_path) snprintf(pub_path, 4096, "%s", pubp);
  if (key_path) snprintf(key_path, 4096, "%s", keyp);
  return QB_OK;
}

qb_code qu_artifact_sign(const char *key_path, const uint8_t *bytes, size_t len,
                         uint8_t sig[QU_SIG_BYTES], qb_err *err) {
  char text[2 * crypto_sign_SECRETKEYBYTES + 8];
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  qb_code rc;
  if (sodium_init() < 0) return qb_fail(err, QB_INTERNAL, "sign: libsodium init failed");
  if ((rc = read_small(key_path, text, sizeof text, err))) return rc;
  int ok = hex_exact(text, sk, sizeof sk);
  sodium_memzero(text, sizeof text);
  if (!ok)
    return qb_fail(err, QB_MALFORMED, "sign: %s: not an Ed25519 secret key (128 hex digits)",
                   key_path);
  crypto_sign_detached(sig, NULL, bytes, len, sk);
  sodium_memzero(sk, sizeof sk);
  return QB_OK;
}

struct qu__trust {
  uint32_t n;
  uint8_t (*keys)[crypto_sign_PUBLICKEYBYTES];
};

qb_code qu__trust_load(const char *dir, qu__trust **out, qb_err *err) {
  DIR *d;
  struct dirent *de;
  qu__trust *t;
  qb_code rc = QB_OK;
  *out = NULL;
  if (!(d = opendir(dir)))
    return qb_fail(err, QB_IO, "trusted keys: cannot open %s: %s", dir, strerror(errno));
  if (!(t = qb_calloc(1, sizeof *t)) || !(t->keys = qb_calloc(MAX_KEYS, sizeof *t->keys))) {
    closedir(d);
    qb_free(t, t ? sizeof *t : 0);
    return qb_fail(err, QB_NOMEM, "trusted keys: out of memory");
  }
  while (!rc && (de = readdir(d))) {
    size_t n = strlen(de->d_name);
    char path[4400], text[160];
    if (n < 5 || strcmp(de->d_name + n - 4, ".pub")) continue;
    if (t->n == MAX_KEYS) {
      rc = qb_fail(err, QB_LIMIT, "trusted keys: more than %d keys in %s", MAX_KEYS, dir);
      break;
    }
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if ((rc = read_small(path, text, sizeof text, err)) ||
        !hex_exact(text, t->keys[t->n], crypto_sign_PUBLICKEYBYTES)) {
      rc = qb_fail(err, QB_MALFORMED, "trusted keys: %s: not an Ed25519 public key (64 hex "
                   "digits)", de->d_name);
      break;
    }
    t->n++;
  }
  closedir(d);
  if (rc) {
    qu__trust_free(t);
    return rc;
  }
  qb_log(QB_INFO, "trusted keys: %u from %s", t->n, dir);
  *out = t;
  return QB_OK;
}

void qu__trust_free(qu__trust *t) {
  if (!t) return;
  qb_free(t->keys, MAX_KEYS * sizeof *t->keys);
  qb_free(t, sizeof *t);
}

qb_code qu__trust_verify(const qu__trust *t, const uint8_t *bytes, size_t len,
                         const uint8_t *sig, size_t sig_len, qb_err *err) {
  uint8_t raw[QU_SIG_BYTES];
  if (!sig || !sig_len) return qb_fail(err, QB_INVALID, "the artifact is not signed");
  if (sig_len != QU_SIG_BYTES) /* the hex form may end in a newline; raw bytes are exact */
    while (sig_len && (sig[sig_len - 1] == '\n' || sig[sig_len - 1] == '\r')) sig_len--;
  if (sig_len == QU_SIG_BYTES) {
    memcpy(raw, sig, QU_SIG_BYTES);
  } else {
    char hex[2 * QU_SIG_BYTES + 1];
    if (sig_len != 2 * QU_SIG_BYTES)
      return qb_fail(err, QB_INVALID, "the signature is not 64 bytes or 128 hex digits");
    memcpy(hex, sig, sig_len);
    hex[sig_len] = 0;
    if (!hex_exact(hex, raw, QU_SIG_BYTES))
      return qb_fail(err, QB_INVALID, "the signature is not 64 bytes or 128 hex digits");
  }
  if (!t || !t->n) return qb_fail(err, QB_INVALID, "this node trusts no key (--trusted-keys)");
  for (uint32_t i = 0; i < t->n; i++)
    if (!crypto_sign_verify_detached(raw, bytes, len, t->keys[i])) return QB_OK;
  return qb_fail(err, QB_INVALID, "not signed by a trusted key (or altered after signing)");
}
