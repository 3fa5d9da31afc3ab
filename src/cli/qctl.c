/* qctl.c: the command-line client of the REST API (DESIGN.md §1): UDFs (deploy, list, status,
** versions, rollback, delete, test), indexes, _bulk and _search; and, offline, the Ed25519 keys
** that sign native artifacts (keys generate, keys sign: the UDF layer's formats). Human output
** by default, --json prints the server's raw response for scripts. Any failure exits non-zero
** with one line "qctl: <type>: <reason>" on stderr. Talks HTTP only (libcurl + jansson), but for
** the offline commands: keys, and udf compile (AOT artifacts through the UDF layer). */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "udf.h"

static const char *base_url = "http://127.0.0.1:9200";
static int json_out = 0;

static const char usage_text[] =
          "usage: qctl [--url URL] [--json] COMMAND ...\n"
          "  udf deploy --name N --wasm FILE [--manifest FILE] [--export E] [--kind K]\n"
          "             [--returns T] [--description D] [--param NAME:TYPE ...]\n"
          "             (--param, repeatable: the manifest's params in order; TYPE i32 i64\n"
          "             f32 f64 string)\n"
          "             [--native-x86_64 F] [--native-aarch64 F] [--signature S]\n"
          "             [--signature-x86_64 S] [--signature-aarch64 S]   signed AOT artifacts\n"
          "  udf compile --wasm FILE --target T [--target T2] --out DIR [--sign N.key]\n"
          "             offline: one AOT artifact per target (x86_64-linux, aarch64-linux),\n"
          "             DIR/<stem>.<target>.qdn (+ .qdn.sig when signed)\n"
          "  udf list | status N | versions N | rollback N --to vN | delete N\n"
          "  udf test N --args JSON\n"
          "  index create NAME [--mappings JSON|@FILE] | index delete NAME | index list\n"
          "  bulk [INDEX] FILE            NDJSON file ('-' = stdin)\n"
          "  search INDEX JSON|@FILE\n"
          "  health\n"
          "  keys generate --out DIR [--name N]   Ed25519 pair N.key (0600) + N.pub (default N:\n"
          "                                       signing); a node trusts DIR/*.pub files\n"
          "  keys sign --key N.key --in ARTIFACT [--out SIG]   64-byte signature (ARTIFACT.sig)\n"
          "URL: --url, else $QUIDDITCH_URL, else http://127.0.0.1:9200\n"
          "Credentials: $QUIDDITCH_API_KEY (base64 of id:key); $QUIDDITCH_CA trusts a certificate\n";

static int usage(void) {
  fputs(usage_text, stderr);
  return 2;
}

/* Whether the usage entry LINE ("  udf list | status N | versions N") is about CMD and, when
** given, its sub-command SUB: CMD is the entry's first word and SUB one of its words. */
static int entry_names(const char *line, const char *cmd, const char *sub) {
  size_t cl = strlen(cmd);
  if (strncmp(line + 2, cmd, cl) || (line[2 + cl] != ' ' && line[2 + cl] != '\0')) return 0;
  if (!sub) return 1;
  size_t sl = strlen(sub);
  for (const char *p = line + 2 + cl; (p = strstr(p, sub)); p += sl)
    if (p[-1] == ' ' && (p[sl] == ' ' || p[sl] == '\0')) return 1;
  return 0;
}

/* `qctl CMD [SUB] --help`: the usage text's entries for that command (and sub-command), with
** their continuation lines, on stdout; exit 0. A command with no entry gets the whole text. */
static int command_help(const char *cmd, const char *sub) {
  char line[256];
  int shown = 0, in_entry = 0;
  for (const char *p = usage_text; *p;) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    snprintf(line, sizeof line, "%.*s", (int)len, p);
    p += len + (end ? 1 : 0);
    if (len < 3 || line[0] != ' ' || line[1] != ' ') { /* the header and footer lines */
      in_entry = 0;
      continue;
    }
    if (line[2] != ' ') in_entry = entry_names(line, cmd, sub); /* else: a continuation */
    if (!in_entry) continue;
    if (!shown) printf("usage: qctl [--url URL] [--json] ...\n");
    printf("%s\n", line);
    shown = 1;
  }
  if (!shown && sub) return command_help(cmd, NULL); /* an unknown sub-command: the command's */
  if (!shown) fputs(usage_text, stdout);
  return 0;
}

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("qctl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

/* ---- files ---------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      char *nb = realloc(buf, cap * 2 + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  if (f != stdin) fclose(f);
  if (buf) buf[n] = 0;
  *len = n;
  return buf;
}

/* "JSON" or "@FILE" -> text (malloc'd). */
static char *json_arg(const char *arg) {
  size_t n;
  if (arg[0] == '@') return read_file(arg + 1, &n);
  return strdup(arg);
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

typedef struct resp {
  long status;
  char *body;
  size_t len;
  json_t *json;
} resp;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
  resp *r = ud;
  size_t n = size * nmemb;
  char *nb = realloc(r->body, r->len + n + 1);
  if (!nb) return 0;
  memcpy(nb + r->len, p, n);
  r->body = nb;
  r->len += n;
  nb[r->len] = 0;
  return n;
}

/* One request. BODY may be NULL; MIME (multipart) replaces it. Returns 0 when the server
** answered (any status), 1 after printing why it could not be reached. */
static int request(const char *method, const char *path, const char *body, size_t len,
                   const char *ctype, curl_mime *mime, resp *r) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  if (!c) return fail("cannot initialise libcurl");
  size_t ul = strlen(base_url) + strlen(path) + 1;
  char *url = malloc(ul);
  snprintf(url, ul, "%s%s", base_url, path);
  struct curl_slist *h = NULL;
  if (ctype) {
    char line[256];
    snprintf(line, sizeof line, "Content-Type: %s", ctype);
    h = curl_slist_append(h, line);
  }
  h = curl_slist_append(h, "Expect:");
  /* QUIDDITCH_API_KEY: the base64 of "id:key", sent as Elasticsearch's clients send API keys */
  const char *key = getenv("QUIDDITCH_API_KEY");
  if (key && *key) {
    char line[1024];
    snprintf(line, sizeof line, "Authorization: ApiKey %s", key);
    h = curl_slist_append(h, line);
  }
  /* QUIDDITCH_CA: a CA or self-signed certificate to trust for an https:// URL */
  const char *ca = getenv("QUIDDITCH_CA");
  if (ca && *ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (mime) curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
  else if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  CURLcode rc = curl_easy_perform(c);
  int ret = 0;
  if (rc != CURLE_OK) {
    ret = fail("cannot reach %s: %s", base_url, curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body) r->json = json_loadb(r->body, r->len, 0, NULL);
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(url);
  return ret;
}

static void resp_free(resp *r) {
  free(r->body);
  json_decref(r->json);
}

/* Non-2xx: print the server's error in one line; returns 1. */
static int server_error(resp *r) {
  if (json_out && r->body) printf("%s\n", r->body);
  json_t *e = json_object_get(r->json, "error");
  const char *type = json_string_value(json_object_get(e, "type"));
  const char *reason = json_string_value(json_object_get(e, "reason"));
  if (type && reason) return fail("%s: %s", type, reason);
  if (json_is_string(e)) return fail("HTTP %ld: %s", r->status, json_string_value(e));
  if (json_is_false(json_object_get(r->json, "found"))) return fail("not found (HTTP 404)");
  return fail("HTTP %ld%s%.200s", r->status, r->body ? ": " : "", r->body ? r->body : "");
}

/* Run a request and handle --json and errors. Returns 0 and leaves *R for the caller when
** the human output is needed; 1 on failure; -1 when done (printed raw). */
static int call(const char *method, const char *path, const char *body, size_t len,
                const char *ctype, curl_mime *mime, resp *r) {
  if (request(method, path, body, len, ctype, mime, r)) return 1;
  if (r->status < 200 || r->status >= 300) {
    int rc = server_error(r);
    resp_free(r);
    return rc;
  }
  if (json_out) {
    printf("%s\n", r->body ? r->body : "");
    resp_free(r);
    return -1;
  }
  return 0;
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}
static long long jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void human_size(long long n, char *out, size_t cap) {
  char b[QB_SIZE_STR];
  snprintf(out, cap, "%s", qb_size_str(n < 0 ? 0 : (uint64_t)n, b));
}

/* ---- udf ------------------------------------------------------------------------------------ */

/* `--param NAME:TYPE` appended to PARAMS as the manifest's {"name", "type"}; 0 or an error. */
static int add_param(json_t *params, const char *spec) {
  static const char *const types[] = {"i32", "i64", "f32", "f64", "string"};
  const char *colon = strchr(spec, ':');
  if (!colon || colon == spec)
    return fail("udf deploy: --param '%s': expected NAME:TYPE (e.g. price:f64)", spec);
  for (size_t k = 0; k < sizeof types / sizeof *types; k++)
    if (!strcmp(colon + 1, types[k])) {
      json_array_append_new(params, json_pack("{s:s%, s:s}", "name", spec,
                                              (size_t)(colon - spec), "type", types[k]));
      return 0;
    }
  return fail("udf deploy: --param '%s': type '%s' is not one of i32, i64, f32, f64, string",
              spec, colon + 1);
}

/* The native parts a deploy may carry (h_udf.c reads them): artifact or signature files */
static const char *const native_flags[] = {"native-x86_64", "native-aarch64", "signature",
                                           "signature-x86_64", "signature-aarch64"};
#define NNATIVE (sizeof native_flags / sizeof *native_flags)

static int udf_deploy(int argc, char **argv) {
  const char *name = NULL, *wasm_path = NULL, *manifest_path = NULL;
  const char *native_path[NNATIVE] = {0};
  char *native[NNATIVE] = {0};
  size_t native_len[NNATIVE] = {0};
  json_t *params = json_array(); /* from --param, in order; replaces the manifest's */
  const char *fields[4][2] = {{"export", NULL}, {"kind", NULL}, {"returns", NULL},
                              {"description", NULL}};
  for (int i = 0; i < argc; i += 2) { /* flag, value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      json_decref(params);
      return fail("%s needs a value", a);
    }
    if (!strcmp(a, "--param")) {
      if (add_param(params, v)) {
        json_decref(params);
        return 1;
      }
    } else if (!strcmp(a, "--name")) name = v;
    else if (!strcmp(a, "--wasm")) wasm_path = v;
    else if (!strcmp(a, "--manifest")) manifest_path = v;
    else {
      size_t j;
      for (j = 0; j < NNATIVE; j++)
        if (!strncmp(a, "--", 2) && !strcmp(a + 2, native_flags[j])) break;
      if (j < NNATIVE) {
        native_path[j] = v;
        continue;
      }
      int k;
      for (k = 0; k < 4; k++)
        if (!strncmp(a, "--", 2) && !strcmp(a + 2, fields[k][0])) break;
      if (k == 4) {
        json_decref(params);
        return fail("udf deploy: unknown flag '%s'", a);
      }
      fields[k][1] = v;
    }
  }
  if (!wasm_path) {
    json_decref(params);
    return fail("udf deploy: --wasm FILE is required");
  }
  for (size_t j = 0; j < NNATIVE; j++) {
    if (!native_path[j]) continue;
    if (!(native[j] = read_file(native_path[j], &native_len[j]))) {
      for (size_t k = 0; k < j; k++) free(native[k]);
      json_decref(params);
      return fail("cannot read %s", native_path[j]);
    }
  }
  size_t wlen;
  char *wasm = read_file(wasm_path, &wlen);
  if (!wasm) {
    for (size_t j = 0; j < NNATIVE; j++) free(native[j]);
    json_decref(params);
    return fail("cannot read %s", wasm_path);
  }
  json_t *m = NULL;
  if (manifest_path) {
    json_error_t je;
    m = json_load_file(manifest_path, 0, &je);
    if (!json_is_object(m)) {
      free(wasm);
      for (size_t j = 0; j < NNATIVE; j++) free(native[j]);
      json_decref(params);
      json_decref(m);
      return fail("manifest %s: %s", manifest_path, m ? "not a JSON object" : je.text);
    }
  } else {
    m = json_object();
  }
  char *name_copy = NULL; /* the manifest's string dies when "name" is replaced below */
  if (!name && json_string_value(json_object_get(m, "name")))
    name = name_copy = strdup(json_string_value(json_object_get(m, "name")));
  if (!name) {
    free(wasm);
    for (size_t j = 0; j < NNATIVE; j++) free(native[j]);
    json_decref(m);
    json_decref(params);
    return fail("udf deploy: --name N is required (or a manifest with \"name\")");
  }
  json_object_set_new(m, "name", json_string(name));
  for (int k = 0; k < 4; k++) /* what the user names explicitly wins */
    if (fields[k][1]) json_object_set_new(m, fields[k][0], json_string(fields[k][1]));
  if (json_array_size(params)) json_object_set(m, "params", params);
  json_decref(params);
  char *mtext = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(m);

  char sz[32];
  human_size((long long)wlen, sz, sizeof sz);
  if (!json_out) {
    printf("uploading %s... ", sz);
    fflush(stdout);
  }
  CURL *dummy = curl_easy_init();
  curl_mime *mime = curl_mime_init(dummy);
  curl_mimepart *p = curl_mime_addpart(mime);
  curl_mime_name(p, "manifest");
  curl_mime_data(p, mtext, CURL_ZERO_TERMINATED);
  curl_mime_type(p, "application/json");
  p = curl_mime_addpart(mime);
  curl_mime_name(p, "wasm");
  curl_mime_filename(p, "module.wasm");
  curl_mime_data(p, wasm, wlen);
  curl_mime_type(p, "application/wasm");
  for (size_t j = 0; j < NNATIVE; j++) {
    if (!native[j]) continue;
    p = curl_mime_addpart(mime);
    curl_mime_name(p, native_flags[j]);
    curl_mime_filename(p, native_flags[j]);
    curl_mime_data(p, native[j], native_len[j]);
    curl_mime_type(p, "application/octet-stream");
  }
  char path[300];
  char *esc = curl_easy_escape(dummy, name, 0);
  snprintf(path, sizeof path, "/_udf/%s", esc);
  curl_free(esc);
  resp r;
  if (!json_out) {
    if (request("PUT", path, NULL, 0, NULL, mime, &r)) goto out_fail;
    if (r.status < 200 || r.status >= 300) {
      printf("rejected\n");
      server_error(&r);
      resp_free(&r);
      goto out_fail;
    }
    long long version = jint(r.json, "version");
    printf("validated... v%lld ready\n", version);
    human_size(jint(r.json, "size"), sz, sizeof sz);
    printf("deployed %s v%lld: %s, kind %s, export %s, sha256 %.16s...\n", jstr(r.json, "name"),
           version, sz, jstr(r.json, "kind"), jstr(r.json, "export"), jstr(r.json, "sha256"));
    const char *node;
    json_t *ni;
    json_object_foreach(json_object_get(r.json, "nodes"), node, ni) {
      json_t *ms = json_object_get(ni, "load_ms"); /* one node; a cluster gives took_ms */
      if (!ms) ms = json_object_get(ni, "took_ms");
      if (!strcmp(jstr(ni, "status"), "failed"))
        printf("  \xe2\x9c\x97 %-12s failed: %s\n", node, jstr(ni, "reason"));
      else
        printf("  %-12s %-8s tier %s (loaded in %.1f ms)\n", node, jstr(ni, "status"),
               jstr(ni, "tier"), json_number_value(ms));
      if (*jstr(ni, "artifact")) printf("    artifact: %s\n", jstr(ni, "artifact"));
    }
    if (json_object_get(r.json, "nodes_total")) { /* a cluster's coordinator answered */
      long long ok = jint(r.json, "nodes_ready"), total = jint(r.json, "nodes_total");
      if (ok == total)
        printf("\xe2\x9c\x93 Distributed to %lld data node%s in %lld ms\n", total,
               total == 1 ? "" : "s", jint(r.json, "took"));
      else
        printf("\xe2\x9c\x97 Ready on %lld of %lld data nodes (the others install it from etcd "
               "when they rejoin)\n", ok, total);
    }
    resp_free(&r);
  } else {
    int rc = call("PUT", path, NULL, 0, NULL, mime, &r);
    if (rc > 0) goto out_fail;
  }
  curl_mime_free(mime);
  curl_easy_cleanup(dummy);
  free(mtext);
  free(wasm);
  free(name_copy);
  for (size_t j = 0; j < NNATIVE; j++) free(native[j]);
  return 0;
out_fail:
  curl_mime_free(mime);
  curl_easy_cleanup(dummy);
  free(mtext);
  free(wasm);
  free(name_copy);
  for (size_t j = 0; j < NNATIVE; j++) free(native[j]);
  return 1;
}

/* udf compile: offline, no server. One AOT artifact per --target, DIR/<stem>.<target>.qdn, and
** with --sign its signature DIR/<stem>.<target>.qdn.sig */
static int write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int bad = fwrite(p, 1, n, f) != n;
  return (fclose(f) || bad) ? -1 : 0;
}

static int udf_compile(int argc, char **argv) {
  const char *wasm_path = NULL, *out = NULL, *key = NULL, *targets[8];
  int ntargets = 0;
  for (int i = 0; i < argc; i += 2) { /* flag, value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return fail("udf compile: %s needs a value", a);
    if (!strcmp(a, "--wasm")) wasm_path = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--sign")) key = v;
    else if (!strcmp(a, "--target")) {
      if (!qu_aot_target(v))
        return fail("udf compile: unknown target '%s' (x86_64-linux or aarch64-linux)", v);
      if (ntargets == 8) return fail("udf compile: at most 8 targets");
      targets[ntargets++] = qu_aot_target(v);
    } else return fail("udf compile: unknown flag '%s'", a);
  }
  if (!wasm_path || !out || !ntargets)
    return fail("usage: qctl udf compile --wasm FILE --target T [--target T2] --out DIR "
                "[--sign N.key]");
  size_t wlen;
  char *wasm = read_file(wasm_path, &wlen);
  if (!wasm) return fail("cannot read %s", wasm_path);
  if (mkdir(out, 0755) && errno != EEXIST) {
    free(wasm);
    return fail("udf compile: cannot create %s: %s", out, strerror(errno));
  }
  const char *base = strrchr(wasm_path, '/');
  base = base ? base + 1 : wasm_path;
  size_t stem = strlen(base);
  if (stem > 5 && !strcmp(base + stem - 5, ".wasm")) stem -= 5;
  int rc = 0;
  for (int t = 0; t < ntargets && !rc; t++) {
    qb_buf art;
    qb_err err = {0};
    char path[4096], sigp[4200];
    qb_buf_init(&art);
    snprintf(path, sizeof path, "%s/%.*s.%s.qdn", out, (int)stem, base, targets[t]);
    uint8_t sig[QU_SIG_BYTES];
    snprintf(sigp, sizeof sigp, "%s.sig", path);
    if (qu_aot_compile((const uint8_t *)wasm, wlen, targets[t], &art, &err)) {
      rc = fail("udf compile: %s for %s: %s", wasm_path, targets[t], err.msg);
    } else if (key && qu_artifact_sign(key, (const uint8_t *)art.data, art.len, sig, &err)) {
      rc = fail("%s", err.msg); /* signed first: a bad key leaves no unsigned artifact */
    } else if (write_bytes(path, art.data, art.len)) {
      rc = fail("udf compile: cannot write %s: %s", path, strerror(errno));
    } else {
      printf("%-14s %s (%zu bytes)\n", targets[t], path, art.len);
      if (key && write_bytes(sigp, sig, sizeof sig))
        rc = fail("udf compile: cannot write %s: %s", sigp, strerror(errno));
      else if (key)
        printf("%-14s %s\n", "signature", sigp);
    }
    qb_buf_fini(&art);
  }
  free(wasm);
  return rc;
}

static void print_version_row(json_t *v) {
  char sz[32];
  human_size(jint(v, "size"), sz, sizeof sz);
  printf("%-24s v%-7lld %-10s %-9s %.16s%s\n", jstr(v, "name"), jint(v, "version"),
         jstr(v, "kind"), sz, jstr(v, "sha256"), json_is_true(json_object_get(v, "current"))
                                                      ? "  (current)" : "");
}

static int udf_cmd(int argc, char **argv) {
  if (argc < 1) return usage();
  const char *sub = argv[0];
  if (!strcmp(sub, "deploy")) return udf_deploy(argc - 1, argv + 1);
  if (!strcmp(sub, "compile")) return udf_compile(argc - 1, argv + 1);
  resp r;
  int rc;
  char path[512];
  if (!strcmp(sub, "list")) {
    if ((rc = call("GET", "/_udf", NULL, 0, NULL, NULL, &r))) return rc < 0 ? 0 : rc;
    json_t *arr = json_object_get(r.json, "udfs");
    printf("%-24s %-8s %-10s %-9s %s\n", "NAME", "VERSION", "KIND", "SIZE", "SHA256");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) print_version_row(v);
    if (!json_array_size(arr)) printf("(no UDFs deployed)\n");
    resp_free(&r);
    return 0;
  }
  if (argc < 2) return fail("udf %s needs a UDF name", sub);
  const char *name = argv[1];
  if (!strcmp(sub, "status")) {
    snprintf(path, sizeof path, "/_udf/%s", name);
    if ((rc = call("GET", path, NULL, 0, NULL, NULL, &r))) return rc < 0 ? 0 : rc;
    json_t *j = r.json, *st = json_object_get(j, "stats");
    char sz[32];
    human_size(jint(j, "size"), sz, sizeof sz);
    printf("%s v%lld (%s, export %s)\n", jstr(j, "name"), jint(j, "version"), jstr(j, "kind"),
           jstr(j, "export"));
    if (*jstr(j, "description")) printf("  description  %s\n", jstr(j, "description"));
    printf("  sha256       %s\n  size         %s\n  tier         %s\n", jstr(j, "sha256"), sz,
           jstr(j, "tier"));
    printf("  calls        %lld (errors %lld)\n", jint(st, "calls"), jint(st, "errors"));
    double avg = json_number_value(json_object_get(st, "avg_call_seconds"));
    if (avg > 0) printf("  avg call     %.3f us\n", avg * 1e6);
    const char *node;
    json_t *ni;
    json_object_foreach(json_object_get(j, "nodes"), node, ni) {
      printf("  node %-8s %s, %s", node, jstr(ni, "status"), jstr(ni, "tier"));
      if (*jstr(ni, "native")) printf(" (native: %s", jstr(ni, "native"));
      if (json_number_value(json_object_get(ni, "compile_ms")) > 0)
        printf(", %.1f ms%s", json_number_value(json_object_get(ni, "compile_ms")),
               json_is_true(json_object_get(ni, "cache_hit")) ? ", from the cache" : "");
      if (jint(ni, "compile_memory_bytes") > 0)
        printf(", %.1f MiB peak", (double)jint(ni, "compile_memory_bytes") / 1048576.0);
      if (*jstr(ni, "native")) printf(")");
      printf("\n");
      if (*jstr(ni, "reason")) printf("    why not native: %s\n", jstr(ni, "reason"));
      if (*jstr(ni, "artifact")) printf("    artifact: %s\n", jstr(ni, "artifact"));
    }
    resp_free(&r);
    return 0;
  }
  if (!strcmp(sub, "versions")) {
    snprintf(path, sizeof path, "/_udf/%s/_versions", name);
    if ((rc = call("GET", path, NULL, 0, NULL, NULL, &r))) return rc < 0 ? 0 : rc;
    size_t i;
    json_t *v;
    printf("%-24s %-8s %-10s %-9s %s\n", "NAME", "VERSION", "KIND", "SIZE", "SHA256");
    json_array_foreach(json_object_get(r.json, "versions"), i, v) print_version_row(v);
    resp_free(&r);
    return 0;
  }
  if (!strcmp(sub, "rollback")) {
    if (argc < 4 || strcmp(argv[2], "--to")) return fail("usage: qctl udf rollback N --to vN");
    json_t *b = json_pack("{s:s}", "to", argv[3]);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    snprintf(path, sizeof path, "/_udf/%s/_rollback", name);
    rc = call("POST", path, body, strlen(body), "application/json", NULL, &r);
    free(body);
    if (rc) return rc < 0 ? 0 : rc;
    printf("%s rolled back: v%lld -> v%lld\n", name, jint(r.json, "previous"),
           jint(r.json, "version"));
    resp_free(&r);
    return 0;
  }
  if (!strcmp(sub, "delete")) {
    snprintf(path, sizeof path, "/_udf/%s", name);
    if ((rc = call("DELETE", path, NULL, 0, NULL, NULL, &r))) return rc < 0 ? 0 : rc;
    printf("deleted %s (all versions)\n", name);
    resp_free(&r);
    return 0;
  }
  if (!strcmp(sub, "test")) {
    const char *args = "{}";
    if (argc >= 4 && !strcmp(argv[2], "--args")) args = argv[3];
    char *a = json_arg(args);
    if (!a) return fail("cannot read %s", args);
    json_error_t je;
    json_t *aj = json_loads(a, 0, &je);
    free(a);
    if (!json_is_object(aj)) {
      json_decref(aj);
      return fail("--args: %s", "expected a JSON object");
    }
    json_t *b = json_object_get(aj, "args") ? aj : json_pack("{s:o}", "args", aj);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    snprintf(path, sizeof path, "/_udf/%s/_test", name);
    rc = call("POST", path, body, strlen(body), "application/json", NULL, &r);
    free(body);
    if (rc) return rc < 0 ? 0 : rc;
    char *res = json_dumps(json_object_get(r.json, "result"),
                           JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    printf("%s v%lld -> %s (%.3f ms)\n", name, jint(r.json, "version"), res ? res : "null",
           json_number_value(json_object_get(r.json, "took_ms")));
    free(res);
    resp_free(&r);
    return 0;
  }
  return fail("unknown udf command '%s'", sub);
}

/* ---- indexes, bulk, search ---------------------------------------------------------------- */

static int index_cmd(int argc, char **argv) {
  if (argc < 1) return usage();
  resp r;
  int rc;
  char path[512];
  if (!strcmp(argv[0], "list")) {
    if ((rc = call("GET", "/_cat/indices?format=json", NULL, 0, NULL, NULL, &r)))
      return rc < 0 ? 0 : rc;
    size_t i;
    json_t *v;
    printf("%-32s %s\n", "INDEX", "DOCS");
    json_array_foreach(r.json, i, v) printf("%-32s %s\n", jstr(v, "index"), jstr(v, "docs.count"));
    resp_free(&r);
    return 0;
  }
  if (argc < 2) return fail("index %s needs an index name", argv[0]);
  snprintf(path, sizeof path, "/%s", argv[1]);
  if (!strcmp(argv[0], "create")) {
    char *body = NULL;
    if (argc >= 4 && !strcmp(argv[2], "--mappings")) {
      char *m = json_arg(argv[3]);
      json_error_t je;
      json_t *mj = m ? json_loads(m, 0, &je) : NULL;
      free(m);
      if (!json_is_object(mj)) {
        json_decref(mj);
        return fail("--mappings: expected a JSON object");
      }
      /* Accept {"properties": ...}, {"mappings": ...} or a full create body. */
      json_t *b = (json_object_get(mj, "mappings") || json_object_get(mj, "settings"))
                      ? mj : json_pack("{s:o}", "mappings", mj);
      body = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
      json_decref(b);
    }
    rc = call("PUT", path, body, body ? strlen(body) : 0, "application/json", NULL, &r);
    free(body);
    if (rc) return rc < 0 ? 0 : rc;
    printf("created index %s\n", argv[1]);
    resp_free(&r);
    return 0;
  }
  if (!strcmp(argv[0], "delete")) {
    if ((rc = call("DELETE", path, NULL, 0, NULL, NULL, &r))) return rc < 0 ? 0 : rc;
    printf("deleted index %s\n", argv[1]);
    resp_free(&r);
    return 0;
  }
  return fail("unknown index command '%s'", argv[0]);
}

static int bulk_cmd(int argc, char **argv) {
  if (argc < 1 || argc > 2) return fail("usage: qctl bulk [INDEX] FILE");
  const char *file = argv[argc - 1];
  char path[512];
  if (argc == 2) snprintf(path, sizeof path, "/%s/_bulk?refresh=true", argv[0]);
  else snprintf(path, sizeof path, "/_bulk?refresh=true");
  size_t len;
  char *body = read_file(file, &len);
  if (!body) return fail("cannot read %s", file);
  resp r;
  int rc = call("POST", path, body, len, "application/x-ndjson", NULL, &r);
  free(body);
  if (rc) return rc < 0 ? 0 : rc;
  json_t *items = json_object_get(r.json, "items");
  size_t n = json_array_size(items), errors = 0, i;
  json_t *it;
  json_array_foreach(items, i, it) {
    json_t *res = json_object_iter_value(json_object_iter(it));
    json_t *e = json_object_get(res, "error");
    if (!e) continue;
    if (errors++ < 5)
      fprintf(stderr, "  item %zu (%s): %s: %s\n", i, jstr(res, "_id"), jstr(e, "type"),
              jstr(e, "reason"));
  }
  printf("%zu items in %lld ms, %zu errors\n", n, jint(r.json, "took"), errors);
  resp_free(&r);
  return errors ? fail("%zu of %zu bulk items failed", errors, n) : 0;
}

static int search_cmd(int argc, char **argv) {
  if (argc < 1) return fail("usage: qctl search INDEX[?PARAMS] [JSON|@FILE]");
  char *body = argc >= 2 ? json_arg(argv[1]) : strdup("{}");
  if (!body) return fail("cannot read %s", argv[1]);
  char path[512];
  const char *q = strchr(argv[0], '?'); /* "products?search_type=dfs_query_then_fetch" */
  int ilen = q ? (int)(q - argv[0]) : (int)strlen(argv[0]);
  snprintf(path, sizeof path, "/%.*s/_search%.400s", ilen, argv[0], q ? q : "");
  resp r;
  int rc = call("POST", path, body, strlen(body), "application/json", NULL, &r);
  free(body);
  if (rc) return rc < 0 ? 0 : rc;
  json_t *hits = json_object_get(r.json, "hits");
  json_t *total = json_object_get(hits, "total");
  printf("%lld hits (took %lld ms)\n", jint(total, "value"), jint(r.json, "took"));
  size_t i;
  json_t *h;
  json_array_foreach(json_object_get(hits, "hits"), i, h) {
    char *src = json_dumps(json_object_get(h, "_source"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_t *sc = json_object_get(h, "_score");
    if (json_is_number(sc)) printf("%12.6f  %-20s %s\n", json_number_value(sc), jstr(h, "_id"),
                                   src ? src : "");
    else printf("%12s  %-20s %s\n", "-", jstr(h, "_id"), src ? src : "");
    free(src);
  }
  json_t *aggs = json_object_get(r.json, "aggregations");
  if (aggs) {
    char *a = json_dumps(aggs, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("aggregations: %s\n", a ? a : "");
    free(a);
  }
  resp_free(&r);
  return 0;
}

static int health_cmd(void) {
  resp r;
  int rc = call("GET", "/_cluster/health", NULL, 0, NULL, NULL, &r);
  if (rc) return rc < 0 ? 0 : rc;
  printf("cluster %s: %s, %lld node(s), %lld shard(s)\n", jstr(r.json, "cluster_name"),
         jstr(r.json, "status"), jint(r.json, "number_of_nodes"), jint(r.json, "active_shards"));
  resp_free(&r);
  return 0;
}

/* ---- keys: offline, no server ---------------------------------------------------------------- */

static int keys_cmd(int argc, char **argv) {
  const char *out = NULL, *name = "signing", *key = NULL, *in = NULL;
  if (argc < 1) return fail("usage: qctl keys generate --out DIR [--name N] | keys sign ...");
  for (int i = 1; i < argc; i += 2) { /* flag, value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return fail("keys: %s needs a value", a);
    if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--name")) name = v;
    else if (!strcmp(a, "--key")) key = v;
    else if (!strcmp(a, "--in")) in = v;
    else return fail("keys: unknown flag '%s'", a);
  }
  qb_err err = {0};
  if (!strcmp(argv[0], "generate")) {
    char pub[4096], sec[4096];
    if (!out) return fail("usage: qctl keys generate --out DIR [--name N]");
    if (qu_keys_generate(out, name, pub, sec, &err)) return fail("%s", err.msg);
    printf("public key  %s  (copy it into each node's --trusted-keys folder)\n", pub);
    printf("private key %s  (mode 0600: keep it secret; sign with qctl keys sign)\n", sec);
    return 0;
  }
  if (!strcmp(argv[0], "sign")) {
    size_t len;
    uint8_t sig[QU_SIG_BYTES];
    char path[4096];
    if (!key || !in) return fail("usage: qctl keys sign --key N.key --in ARTIFACT [--out SIG]");
    char *bytes = read_file(in, &len);
    if (!bytes) return fail("keys: cannot read %s", in);
    qb_code rc = qu_artifact_sign(key, (const uint8_t *)bytes, len, sig, &err);
    free(bytes);
    if (rc) return fail("%s", err.msg);
    snprintf(path, sizeof path, "%s", out ? out : in);
    if (!out) strncat(path, ".sig", sizeof path - strlen(path) - 1);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(sig, 1, sizeof sig, f) != sizeof sig || fclose(f))
      return fail("keys: cannot write %s", path);
    printf("signature   %s\n", path);
    return 0;
  }
  return fail("unknown keys command '%s'", argv[0]);
}

int main(int argc, char **argv) {
  const char *env = getenv("QUIDDITCH_URL");
  if (env && *env) base_url = env;
  int i = 1;
  for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
    if (!strcmp(argv[i], "--json")) json_out = 1;
    else if (!strcmp(argv[i], "--url") && i + 1 < argc) base_url = argv[++i];
    else if (!strcmp(argv[i], "--help")) return fputs(usage_text, stdout), 0;
    else return fail("unknown flag '%s'", argv[i]);
  }
  if (i >= argc) return usage();
  /* --json may also follow the command */
  int n = 0;
  char **rest = malloc(sizeof *rest * (size_t)(argc + 1));
  for (int k = i; k < argc; k++) {
    if (!strcmp(argv[k], "--json")) json_out = 1;
    else if (!strcmp(argv[k], "--url") && k + 1 < argc) base_url = argv[++k];
    else rest[n++] = argv[k];
  }
  rest[n] = NULL;
  for (int k = 0; k < n; k++)
    if (!strcmp(rest[k], "--help") || !strcmp(rest[k], "-h")) {
      int rc = command_help(rest[0], k > 1 ? rest[1] : NULL);
      free(rest);
      return rc;
    }
  size_t bl = strlen(base_url);
  static char url[1024];
  snprintf(url, sizeof url, "%.*s", (int)(bl && base_url[bl - 1] == '/' ? bl - 1 : bl), base_url);
  base_url = url;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc;
  const char *cmd = rest[0];
  if (!strcmp(cmd, "udf")) rc = udf_cmd(n - 1, rest + 1);
  else if (!strcmp(cmd, "index")) rc = index_cmd(n - 1, rest + 1);
  else if (!strcmp(cmd, "bulk")) rc = bulk_cmd(n - 1, rest + 1);
  else if (!strcmp(cmd, "search")) rc = search_cmd(n - 1, rest + 1);
  else if (!strcmp(cmd, "health")) rc = health_cmd();
  else if (!strcmp(cmd, "keys")) rc = keys_cmd(n - 1, rest + 1);
  else rc = usage();
  curl_global_cleanup();
  free(rest);
  return rc;
}
