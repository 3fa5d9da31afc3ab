/* apikeys.c: API keys over REST, as Elasticsearch's /_security/api_key in spirit (issue 13), and
** reloading the auth file while the node serves (SIGHUP, or a changed file).
**   POST|PUT /_security/api_key {"name", "role"|"roles", "expiration"}: a new key; its secret
**            is answered once (id, api_key, encoded) and only its crypto_pwhash hash is kept
**   GET      /_security/api_key[?id=|?name=]: the keys, never a secret or a hash
**   DELETE   /_security/api_key {"ids"|"id"|"name"}: invalidate; an invalidated key fails
**            authentication at once and stays listed (invalidated: true) for 7 days
** All three need the admin role (auth.c). Keys live in the auth file beside those that
** `quidditch auth add-key` writes ("api_keys": {ID: {hash, roles, name, creation,
** expiration, invalidated}}), so a restart keeps them.
** Invariant: the file is changed only by a read-modify-write under the auth's file lock,
** written atomically (auth.c), then loaded back whole; a change that fails leaves the file
** and the credentials in force as they were. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define KEEP_MS (7ll * 86400 * 1000) /* invalidated or expired keys stay listed this long */

static int security_on(qs_req *r) {
  if (r->srv->auth) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "security is not enabled on this node: API keys need an auth file "
                  "(quidditch serve --auth-file FILE)");
  return 0;
}

/* An Elasticsearch time value ("30m", "1d", "12h", "45s", "500ms") in ms; 0 when malformed or
** not between 1 s and 10 years. */
static int64_t parse_expiration(const char *v) {
  char *end;
  if (*v < '0' || *v > '9') return 0;
  unsigned long long n = strtoull(v, &end, 10);
  int64_t unit = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? 60000
                 : !strcmp(end, "h") ? 3600000 : !strcmp(end, "d") ? 86400000 : 0;
  const int64_t max = 3650ll * 86400000;
  if (!unit || n > (unsigned long long)(max / unit)) return 0;
  int64_t ms = (int64_t)n * unit;
  return ms >= 1000 ? ms : 0;
}

static const char *role_name(const char *r) {
  return !strcmp(r, "read") || !strcmp(r, "write") || !strcmp(r, "admin") ? r : NULL;
}

/* A name as shown and stored: 1-255 bytes of UTF-8 without control characters. */
static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > 255 || !qs__utf8_ok(s, n)) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

/* The auth file's JSON (new reference), or NULL after replying. */
static json_t *read_file(qs_req *r) {
  json_error_t je;
  json_t *j = json_load_file(qs__auth_path(r->srv->auth), 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    qs__reply_code(r, QB_IO, "auth file %s cannot be read back: %s (line %d); nothing changed",
                   qs__auth_path(r->srv->auth), je.text, je.line);
    return NULL;
  }
  json_t *keys = json_object_get(j, "api_keys");
  if (!keys && json_object_set_new(j, "api_keys", keys = json_object())) keys = NULL;
  if (!json_is_object(keys)) {
    json_decref(j);
    qs__reply_code(r, QB_IO, "auth file %s: [api_keys] is not an object; nothing changed",
                   qs__auth_path(r->srv->auth));
    return NULL;
  }
  return j;
}

/* Forget keys invalidated or expired more than KEEP_MS ago (Elasticsearch's retention). */
static void prune(json_t *keys, int64_t now) {
  const char *id;
  json_t *v, *tmp;
  json_object_foreach_safe(keys, tmp, id, v) {
    int64_t inv = json_integer_value(json_object_get(v, "invalidated"));
    int64_t exp = json_integer_value(json_object_get(v, "expiration"));
    if ((inv && inv + KEEP_MS < now) || (exp && exp + KEEP_MS < now)) json_object_del(keys, id);
  }
}

/* Write J to the auth file and load it back: 1, or 0 after replying (nothing changed then:
** the write is atomic, and a file that does not load back is put back as it was). */
static int commit(qs_req *r, json_t *j, json_t *before) {
  qs__auth *a = r->srv->auth;
  qb_err err;
  if (qs__auth_write(qs__auth_path(a), j, &err)) {
    qs__reply_err(r, &err);
    return 0;
  }
  if (qs__auth_reload(a, NULL, NULL, &err)) {
    qb_err e2;
    qs__auth_write(qs__auth_path(a), before, &e2);
    qs__reply_err(r, &err);
    return 0;
  }
  return 1;
}

void qs__h_api_key_create(qs_req *r) {
  if (!security_on(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  if (!body) {
    qs__reply_error(r, 400, "action_request_validation_exception",
                    "Validation Failed: 1: api key name is required;");
    return;
  }
  const char *k;
  json_t *v;
  json_object_foreach(body, k, v) {
    if (!strcmp(k, "name") || !strcmp(k, "role") || !strcmp(k, "roles") ||
        !strcmp(k, "expiration"))
      continue;
    qs__reply_error(r, 400, "illegal_argument_exception",
                    !strcmp(k, "role_descriptors")
                        ? "[role_descriptors] is not supported: give [roles] (read, write, admin)"
                        : "unknown field [%.100s] (name, roles, role, expiration)", k);
    json_decref(body);
    return;
  }
  const char *name = json_string_value(json_object_get(body, "name"));
  json_t *roles = json_object_get(body, "roles"), *role = json_object_get(body, "role");
  json_t *expj = json_object_get(body, "expiration");
  const char *why = NULL;
  json_t *rl = json_array();
  int64_t exp_ms = 0;
  if (!name || !name_ok(name))
    why = "[name] is required: 1 to 255 bytes of UTF-8 without control characters";
  else if ((roles != NULL) == (role != NULL))
    why = "give the key's role as [role] (\"read\", \"write\" or \"admin\") or [roles] (an array)";
  else if (role && !(json_is_string(role) && role_name(json_string_value(role))))
    why = "[role]: expected \"read\", \"write\" or \"admin\"";
  else if (roles && (!json_is_array(roles) || !json_array_size(roles) ||
                     json_array_size(roles) > 3))
    why = "[roles]: expected an array of 1 to 3 of \"read\", \"write\", \"admin\"";
  else if (expj && !(json_is_string(expj) &&
                     (exp_ms = parse_expiration(json_string_value(expj)))))
    why = "[expiration]: expected a time value from 1s to 3650d (\"30m\", \"12h\", \"7d\")";
  if (!why && role) json_array_append_new(rl, json_string(json_string_value(role)));
  size_t i;
  json_t *x;
  if (!why && roles)
    json_array_foreach(roles, i, x) {
      if (!json_is_string(x) || !role_name(json_string_value(x))) {
        why = "[roles]: expected an array of 1 to 3 of \"read\", \"write\", \"admin\"";
        break;
      }
      json_array_append_new(rl, json_string(json_string_value(x)));
    }
  if (why) {
    qs__reply_error(r, 400, "illegal_argument_exception", "%s", why);
    json_decref(rl);
    json_decref(body);
    return;
  }
  /* the id: 20 characters, the secret: 22 (URL-safe base64 of random bytes, as Elasticsearch's) */
  unsigned char rid[15], rkey[16];
  char id[32], key[32], hash[crypto_pwhash_STRBYTES];
  randombytes_buf(rid, sizeof rid);
  randombytes_buf(rkey, sizeof rkey);
  sodium_bin2base64(id, sizeof id, rid, sizeof rid, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_bin2base64(key, sizeof key, rkey, sizeof rkey, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(rkey, sizeof rkey);
  if (crypto_pwhash_str(hash, key, strlen(key), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE)) {
    qs__reply_code(r, QB_NOMEM, "crypto_pwhash_str ran out of memory");
    sodium_memzero(key, sizeof key);
    json_decref(rl);
    json_decref(body);
    return;
  }
  int64_t now = qb_wall_ms();
  qs__auth *a = r->srv->auth;
  qs__auth_lock_file(a, 1);
  json_t *j = read_file(r), *before = j ? json_deep_copy(j) : NULL;
  int ok = 0;
  if (j) {
    json_t *keys = json_object_get(j, "api_keys");
    prune(keys, now);
    json_t *e = json_pack("{s:s, s:O, s:s, s:I}", "hash", hash, "roles", rl, "name", name,
                          "creation", (json_int_t)now);
    if (e && exp_ms) json_object_set_new(e, "expiration", json_integer(now + exp_ms));
    if (!e || !before || json_object_set_new(keys, id, e))
      qs__reply_code(r, QB_NOMEM, "out of memory");
    else ok = commit(r, j, before);
  }
  qs__auth_lock_file(a, 0);
  json_decref(j);
  json_decref(before);
  if (ok) {
    char both[64], encoded[96];
    snprintf(both, sizeof both, "%s:%s", id, key);
    sodium_bin2base64(encoded, sizeof encoded, (const unsigned char *)both, strlen(both),
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(both, sizeof both);
    char roles_s[32] = "";
    json_array_foreach(rl, i, x) {
      size_t l = strlen(roles_s);
      snprintf(roles_s + l, sizeof roles_s - l, "%s%s", l ? "," : "", json_string_value(x));
    }
    qb_log(QB_INFO, "API key created: %s [%s] (roles %s, %s)", id, name, roles_s,
           exp_ms ? "expires" : "never expires");
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", name, "api_key", key,
                            "encoded", encoded);
    if (out && exp_ms) json_object_set_new(out, "expiration", json_integer(now + exp_ms));
    qs__reply_json(r, 200, out);
    sodium_memzero(encoded, sizeof encoded);
  }
  sodium_memzero(key, sizeof key);
  json_decref(rl);
  json_decref(body);
}

void qs__h_api_key_get(qs_req *r) {
  if (!security_on(r)) return;
  const char *want_id = qs__arg(r, "id"), *want_name = qs__arg(r, "name");
  json_t *all = qs__auth_keys(r->srv->auth), *out = json_array();
  size_t i;
  json_t *k;
  json_array_foreach(all, i, k) {
    if (want_id && *want_id && strcmp(json_string_value(json_object_get(k, "id")), want_id))
      continue;
    if (want_name && *want_name && strcmp(want_name, "*") &&
        strcmp(json_string_value(json_object_get(k, "name")), want_name))
      continue;
    json_array_append(out, k);
  }
  json_decref(all);
  if (!all || !out) {
    json_decref(out);
    qs__reply_code(r, QB_NOMEM, "out of memory");
    return;
  }
  if (want_id && *want_id && !json_array_size(out)) {
    json_decref(out);
    qs__reply_error(r, 404, "resource_not_found_exception", "api key [%.100s] not found",
                    want_id);
    return;
  }
  qs__reply_json(r, 200, json_pack("{s:o}", "api_keys", out));
}

void qs__h_api_key_invalidate(qs_req *r) {
  if (!security_on(r)) return;
  json_t *body;
  if (!qs__body_object(r, &body)) return;
  const char *k;
  json_t *v;
  const char *why = body ? NULL : "a body with [ids], [id] or [name] is required";
  if (body) json_object_foreach(body, k, v) {
      if ((!strcmp(k, "id") || !strcmp(k, "name")) && json_is_string(v)) continue;
      if (!strcmp(k, "ids") && json_is_array(v)) continue;
      why = "expected [ids] (an array of ids), [id] or [name] (strings)";
    }
  json_t *ids = body ? json_object_get(body, "ids") : NULL;
  const char *one = body ? json_string_value(json_object_get(body, "id")) : NULL;
  const char *name = body ? json_string_value(json_object_get(body, "name")) : NULL;
  if (!why && !ids && !one && !name) why = "one of [ids], [id] or [name] is required";
  if (!why && (ids != NULL) + (one != NULL) + (name != NULL) > 1)
    why = "give only one of [ids], [id] and [name]";
  if (why) {
    qs__reply_error(r, 400, "action_request_validation_exception", "Validation Failed: 1: %s;",
                    why);
    json_decref(body);
    return;
  }
  int64_t now = qb_wall_ms();
  qs__auth *a = r->srv->auth;
  json_t *done = json_array(), *before_list = json_array();
  qs__auth_lock_file(a, 1);
  json_t *j = read_file(r), *before = j ? json_deep_copy(j) : NULL;
  int ok = 0;
  if (j) {
    json_t *keys = json_object_get(j, "api_keys");
    const char *id;
    json_object_foreach(keys, id, v) {
      int match = one ? !strcmp(id, one) : 0;
      size_t i;
      json_t *x;
      if (ids) json_array_foreach(ids, i, x) match |= json_is_string(x) &&
                                                        !strcmp(json_string_value(x), id);
      if (name) {
        const char *label = json_string_value(json_object_get(v, "name"));
        match = !strcmp(label ? label : id, name);
      }
      if (!match) continue;
      if (json_integer_value(json_object_get(v, "invalidated"))) {
        json_array_append_new(before_list, json_string(id));
      } else {
        json_object_set_new(v, "invalidated", json_integer(now));
        json_array_append_new(done, json_string(id));
      }
    }
    prune(keys, now);
    /* refuse to lock everyone out: the file must keep a usable credential */
    size_t usable = json_object_size(json_object_get(j, "users"));
    json_object_foreach(keys, id, v) {
      int64_t exp = json_integer_value(json_object_get(v, "expiration"));
      usable += !json_integer_value(json_object_get(v, "invalidated")) && (!exp || exp > now);
    }
    if (!usable) {
      qs__reply_error(r, 400, "illegal_argument_exception",
                      "invalidating these keys would leave no usable credential in the auth "
                      "file: add a user or another key first; nothing changed");
    } else if (!before) {
      qs__reply_code(r, QB_NOMEM, "out of memory");
    } else {
      ok = !json_array_size(done) || commit(r, j, before);
    }
  }
  qs__auth_lock_file(a, 0);
  json_decref(j);
  json_decref(before);
  if (ok) {
    size_t i;
    json_t *x;
    json_array_foreach(done, i, x) qb_log(QB_INFO, "API key invalidated: %s", json_string_value(x));
    qs__reply_json(r, 200, json_pack("{s:O, s:O, s:i}", "invalidated_api_keys", done,
                                     "previously_invalidated_api_keys", before_list,
                                     "error_count", 0));
  }
  json_decref(done);
  json_decref(before_list);
  json_decref(body);
}

/* ---- reloading ------------------------------------------------------------------------------ */

/* The reload itself; the caller holds the file lock (so a REST change in progress is either
** wholly before or wholly after it). */
static void reload_locked(qs_server *s, const char *why) {
  qb_err err;
  size_t users = 0, keys = 0;
  if (qs__auth_reload(s->auth, &users, &keys, &err))
    qb_log(QB_ERROR, "auth file %s not reloaded (%s), the old credentials stay: %s",
           qs__auth_path(s->auth), why, err.msg);
  else
    qb_log(QB_INFO, "auth file %s reloaded (%s): %zu users, %zu API keys", qs__auth_path(s->auth),
           why, users, keys);
}

void qs__auth_reload_logged(qs_server *s, const char *why) {
  if (!s->auth) {
    qb_log(QB_INFO, "%s: no auth file to reload (the node runs without credentials)", why);
    return;
  }
  qs__auth_lock_file(s->auth, 1);
  reload_locked(s, why);
  qs__auth_lock_file(s->auth, 0);
}

void qs_server_reload_auth(qs_server *s) { qs__auth_reload_logged(s, "SIGHUP"); }

void qs__auth_watch(qs_server *s) {
  if (!s->auth) return;
  qs__auth_lock_file(s->auth, 1); /* our own writes were loaded back under this lock */
  if (qs__auth_changed(s->auth)) reload_locked(s, "the file changed");
  qs__auth_lock_file(s->auth, 0);
}
