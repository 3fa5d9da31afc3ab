/* quidditch.c: the server binary. `quidditch serve [--listen HOST:PORT] [--data DIR]
** [--node-name NAME] [--threads N] [--log-level debug|info|warn|error] [--role data|coord|both
** --etcd URL [--lease-ttl S]]`: parse the flags, install the stderr log sink, start the node
** (src/server) and serve until SIGINT or SIGTERM; SIGHUP reloads the auth file. Exit codes: 0 stopped, 1 could not start,
** 2 bad flags, 3 etcd unreachable at start, 4 node name taken in the cluster. */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static int usage(FILE *f) {
  fprintf(f,
          "usage: quidditch serve [--listen HOST:PORT] [--data DIR] [--node-name NAME]\n"
          "                       [--threads N] [--log-level debug|info|warn|error]\n"
          "                       [--role data|coord|both --etcd http://HOST:PORT [--lease-ttl S]]\n"
          "                       [--max-connections N] [--max-connections-per-client N]\n"
          "                       [--header-timeout-ms MS] [--body-timeout-ms MS] [--idle-timeout-ms MS]\n"
          "                       [--disk-flood-stage PCT] [--disk-high PCT]\n"
          "                       [--auth-file FILE] [--cluster-secret-file FILE] [--tls-cert PEM --tls-key PEM]\n"
          "                       [--search-threads N] [--write-threads N] [--search-queue N]\n"
          "                       [--write-queue N] [--udf-tier interp|native|auto]\n"
          "                       [--trusted-keys DIR]\n"
          "                       [--udf-fuel N] [--udf-memory SIZE] [--udf-call-depth N]\n"
          "                       [--udf-block-timeout-ms MS] [--udf-max-module SIZE]\n"
          "                       [--udf-versions-kept N] [--udf-idle-unload-ms MS]\n"
          "                       [--script-value-max SIZE] [--script-response-max SIZE]\n"
          "                       [--search-slow-ms MS]\n"
          "       quidditch auth add-user|add-key NAME --role read|write|admin --file FILE\n"
          "         (the password or key is read from standard input; only its hash is kept;\n"
          "         a running node reloads the file on SIGHUP and when it changes)\n"
          "  With no flags: the embedded default, one process that is coordinator and data node,\n"
          "  data under ./data, listening on 127.0.0.1:9200. With --role: a cluster node on etcd\n"
          "  (docs/cluster.md).\n"
          "  UDF budgets (docs/operations.md): --udf-fuel units per document (10000000),\n"
          "  --udf-memory linear memory per instance (16m), --udf-call-depth wasm frames (10000),\n"
          "  --udf-block-timeout-ms wall clock per block (1000), --udf-max-module (10m),\n"
          "  --udf-versions-kept per UDF (10), --udf-idle-unload-ms (300000). script_fields:\n"
          "  --script-value-max one string value (1m), --script-response-max one shard's (64m).\n"
          "  SIZE is bytes, or a number with k, m or g (KiB, MiB, GiB). --search-slow-ms: a search\n"
          "  taking this long is logged at WARN with its request id and UDFs (1000).\n");
  return f == stderr ? 2 : 0;
}

/* SIZE: bytes, or a number with k|m|g (1024-based; "kb", "mib" too). 0 when malformed. */
static uint64_t parse_size(const char *v) {
  char *end;
  if (!*v || *v == '-' || *v == '+') return 0;
  unsigned long long n = strtoull(v, &end, 10);
  unsigned shift = 0;
  if (*end == 'k' || *end == 'K') shift = 10, end++;
  else if (*end == 'm' || *end == 'M') shift = 20, end++;
  else if (*end == 'g' || *end == 'G') shift = 30, end++;
  if (shift && (*end == 'i' || *end == 'I')) end++;
  if (shift && (*end == 'b' || *end == 'B')) end++;
  else if (!shift && (*end == 'b' || *end == 'B')) end++;
  if (*end || end == v || n > (UINT64_MAX >> shift)) return 0;
  return (uint64_t)n << shift;
}

/* The UDF budget and result-limit flags: 1 when A is one of them and V was stored, 0 when A
** is not one, -1 (after saying why) when V is out of range. */
static int budget_flag(const char *a, const char *v, qs_options *opt) {
  static const struct {
    const char *flag;
    int size;          /* a SIZE, else a plain number */
    uint64_t lo, hi;
    const char *what;
  } t[] = {
      {"--udf-fuel", 0, 1000, 1000000000000ull, "fuel units per document"},
      {"--udf-memory", 1, 64u << 10, 4ull << 30, "bytes of linear memory"},
      {"--udf-call-depth", 0, 1, 100000, "wasm frames per call"},
      {"--udf-block-timeout-ms", 0, 1, 3600000, "milliseconds per block"},
      {"--udf-max-module", 1, 1024, 100u << 20, "bytes per module"},
      {"--udf-versions-kept", 0, 1, 100000, "versions per UDF"},
      {"--udf-idle-unload-ms", 0, 1, 86400000, "milliseconds"},
      {"--script-value-max", 1, 1, 1ull << 30, "bytes per script_fields value"},
      {"--script-response-max", 1, 1, 64ull << 30, "bytes per shard response"},
      {"--search-slow-ms", 0, 1, 86400000, "milliseconds"},
  };
  size_t i = 0;
  while (i < sizeof t / sizeof *t && strcmp(a, t[i].flag)) i++;
  if (i == sizeof t / sizeof *t) return 0;
  uint64_t n = 0;
  if (t[i].size) n = parse_size(v);
  else {
    char *end;
    unsigned long long x = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (*v >= '0' && *v <= '9' && !*end) n = x;
  }
  if (n < t[i].lo || n > t[i].hi) {
    fprintf(stderr, "quidditch: %s '%s': expected %s from %llu to %llu%s\n", a, v, t[i].what,
            (unsigned long long)t[i].lo, (unsigned long long)t[i].hi,
            t[i].size ? " (a number of bytes, or with k, m or g)" : "");
    return -1;
  }
  switch (i) {
  case 0: opt->udf_fuel_per_doc = n; break;
  case 1: opt->udf_memory_bytes = n; break;
  case 2: opt->udf_call_depth = (uint32_t)n; break;
  case 3: opt->udf_block_timeout_ms = (uint32_t)n; break;
  case 4: opt->udf_max_module_bytes = n; break;
  case 5: opt->udf_versions_kept = (uint32_t)n; break;
  case 6: opt->udf_idle_unload_ms = (uint32_t)n; break;
  case 7: opt->script_value_max_bytes = n; break;
  case 8: opt->script_response_max_bytes = n; break;
  default: opt->slow_search_ms = (uint32_t)n; break;
  }
  return 1;
}

/* `quidditch auth add-user|add-key NAME --role R --file FILE`, the secret on standard input
** (one line), so it is never in argv or the shell's history. */
static int auth_cmd(int argc, char **argv) {
  const char *role = NULL, *file = NULL;
  if (argc < 2 || (strcmp(argv[0], "add-user") && strcmp(argv[0], "add-key"))) {
    fprintf(stderr, "usage: quidditch auth add-user|add-key NAME --role read|write|admin --file FILE\n");
    return 2;
  }
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--role")) role = argv[i + 1];
    else if (!strcmp(argv[i], "--file")) file = argv[i + 1];
    else {
      fprintf(stderr, "quidditch auth: unknown flag '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!role || !file) {
    fprintf(stderr, "quidditch auth: --role and --file are required\n");
    return 2;
  }
  char secret[256];
  if (!fgets(secret, sizeof secret, stdin)) {
    fprintf(stderr, "quidditch auth: give the %s on standard input\n",
            strcmp(argv[0], "add-key") ? "password" : "key");
    return 2;
  }
  secret[strcspn(secret, "\r\n")] = 0;
  qb_err err;
  int key = !strcmp(argv[0], "add-key");
  qb_code rc = qs_auth_add(file, key, argv[1], secret, role, &err);
  memset(secret, 0, sizeof secret);
  if (rc) {
    fprintf(stderr, "quidditch auth: %s\n", err.msg);
    return 1;
  }
  printf("%s %s added to %s with role %s\n", key ? "API key" : "user", argv[1], file, role);
  return 0;
}

int main(int argc, char **argv) {
  qs_options opt = {0};
  qb_level level = QB_INFO;
  /* jansson allocates through qb_alloc too (counted; base.h), before any JSON exists */
  json_set_alloc_funcs(qb_sized_malloc, qb_sized_free);
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
    return usage(argc < 2 ? stderr : stdout);
  if (!strcmp(argv[1], "auth")) return auth_cmd(argc - 2, argv + 2);
  if (strcmp(argv[1], "serve")) {
    fprintf(stderr, "quidditch: unknown command '%s'\n", argv[1]);
    return usage(stderr);
  }
  for (int i = 2; i < argc; i += 2) { /* flag, value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!v) {
      fprintf(stderr, "quidditch: %s needs a value\n", a);
      return 2;
    }
    int bf = budget_flag(a, v, &opt);
    if (bf < 0) return 2;
    if (bf) continue;
    if (!strcmp(a, "--listen")) opt.listen = v;
    else if (!strcmp(a, "--auth-file")) opt.auth_file = v;
    else if (!strcmp(a, "--cluster-secret-file")) opt.cluster_secret_file = v;
    else if (!strcmp(a, "--tls-cert")) opt.tls_cert_file = v;
    else if (!strcmp(a, "--tls-key")) opt.tls_key_file = v;
    else if (!strcmp(a, "--data")) opt.data_dir = v;
    else if (!strcmp(a, "--udf-tier")) opt.udf_tier = v;
    else if (!strcmp(a, "--trusted-keys")) opt.trusted_keys_dir = v;
    else if (!strcmp(a, "--node") || !strcmp(a, "--node-name")) opt.node_name = v;
    else if (!strcmp(a, "--etcd")) opt.etcd = v;
    else if (!strcmp(a, "--lease-ttl")) {
      char *end;
      unsigned long t = strtoul(v, &end, 10);
      if (*end || t < 1 || t > 3600) {
        fprintf(stderr, "quidditch: --lease-ttl %s: expected seconds from 1 to 3600\n", v);
        return 2;
      }
      opt.lease_ttl_s = (uint32_t)t;
    }
    else if (!strcmp(a, "--threads")) opt.threads = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--max-connections") || !strcmp(a, "--max-connections-per-client") ||
             !strcmp(a, "--header-timeout-ms") || !strcmp(a, "--body-timeout-ms") ||
             !strcmp(a, "--idle-timeout-ms") || !strcmp(a, "--disk-flood-stage") ||
             !strcmp(a, "--disk-high") || !strcmp(a, "--search-threads") ||
             !strcmp(a, "--write-threads") || !strcmp(a, "--search-queue") ||
             !strcmp(a, "--write-queue")) {
      char *end;
      unsigned long n = strtoul(v, &end, 10);
      if (*end || !*v || n == 0 || n > 100000000ul) {
        fprintf(stderr, "quidditch: %s wants a positive number, got '%s'\n", a, v);
        return 2;
      }
      uint32_t *f = !strcmp(a, "--max-connections") ? &opt.max_connections
                    : !strcmp(a, "--max-connections-per-client") ? &opt.max_connections_per_client
                    : !strcmp(a, "--header-timeout-ms") ? &opt.header_timeout_ms
                    : !strcmp(a, "--body-timeout-ms") ? &opt.body_timeout_ms
                    : !strcmp(a, "--disk-flood-stage") ? &opt.disk_flood_stage_pct
                    : !strcmp(a, "--disk-high") ? &opt.disk_high_pct
                    : !strcmp(a, "--search-threads") ? &opt.search_threads
                    : !strcmp(a, "--write-threads") ? &opt.write_threads
                    : !strcmp(a, "--search-queue") ? &opt.search_queue
                    : !strcmp(a, "--write-queue") ? &opt.write_queue
                    : &opt.idle_timeout_ms;
      if ((f == &opt.search_threads || f == &opt.write_threads) && n > 256) {
        fprintf(stderr, "quidditch: %s: at most 256 threads, got '%s'\n", a, v);
        return 2;
      }
      if ((f == &opt.disk_flood_stage_pct || f == &opt.disk_high_pct) && n > 100) {
        fprintf(stderr, "quidditch: %s is a percentage (1-100), got '%s'\n", a, v);
        return 2;
      }
      *f = (uint32_t)n;
    }
    else if (!strcmp(a, "--role")) {
      if (!strcmp(v, "all")) opt.role = 0; /* the embedded default */
      else if (!strcmp(v, "data")) opt.role = 1;
      else if (!strcmp(v, "coord")) opt.role = 2;
      else if (!strcmp(v, "both")) opt.role = 3;
      else {
        fprintf(stderr, "quidditch: --role %s: expected data, coord or both (or all: the "
                        "embedded default)\n", v);
        return 2;
      }
    }
    else if (!strcmp(a, "--log-level")) {
      if (!strcmp(v, "debug")) level = QB_DEBUG;
      else if (!strcmp(v, "info")) level = QB_INFO;
      else if (!strcmp(v, "warn")) level = QB_WARN;
      else if (!strcmp(v, "error")) level = QB_ERROR;
      else {
        fprintf(stderr, "quidditch: unknown log level '%s'\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "quidditch: unknown flag '%s'\n", a);
      return usage(stderr);
    }
  }
  if (opt.role && !opt.etcd) {
    fprintf(stderr, "quidditch: --role needs --etcd http://HOST:PORT (the cluster's metadata)\n");
    return 2;
  }
  if (!opt.role && opt.etcd) {
    fprintf(stderr, "quidditch: --etcd needs --role data|coord|both\n");
    return 2;
  }
  qb_log_set(qb_log_stderr, (void *)(opt.node_name ? opt.node_name : "node-1"), level);

  /* Block the stop signals in every thread; the main thread waits for them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP); /* reload the auth file */
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  qs_server *srv;
  qb_err err;
  if (qs_server_new(&opt, &srv, &err)) {
    qb_log(QB_ERROR, "cannot start: %s", err.msg);
    fprintf(stderr, "quidditch: %s\n", err.msg);
    return err.code == QB_UNAVAILABLE ? 3 : err.code == QB_CONFLICT ? 4 : 1;
  }
  int sig = 0;
  while (!sigwait(&set, &sig) && sig == SIGHUP) qs_server_reload_auth(srv);
  qb_log(QB_INFO, "%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  qs_server_free(srv);
  qb_log(QB_INFO, "stopped");
  return 0;
}
