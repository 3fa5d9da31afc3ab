/* bench_http.c: the HTTP floor (issue 14). Starts a real build/quidditch (`serve` on a free
** 127.0.0.1 port, temp data directory) as a child, loads N documents of the search benchmark's
** corpus (bench_search_corpus.h) through _bulk, then times one request at a time over one
** keep-alive connection with a small raw-socket HTTP/1.1 client (no client library in the
** measurement):
**   http/root_p50       GET /, p50 and p99 (goal: p50 < 40 us)
**   http/rare_p50       POST /bench/_search {"query":{"match":{"body":RARE}}}, size 10 with
**                       _source, one rare term (sc_rare) per request (goal: p50 < 80 us)
**   http/and2_p50       the same for a two-term AND (match operator and), no goal of its own
**   http/none_p50       the same for match_none: the search path's own floor (pool hand-off,
**                       parse, render), no goal of its own
** Each is the median over RUNS runs of the run's percentile, after a warm-up run.
** Usage: bench_http [N] (or BENCH_HTTP_DOCS=N; default 100000). BENCH_QUIDDITCH=path overrides
** the server binary; BENCH_HTTP_LOOPS=N repeats the rows N times (to attach a profiler);
** BENCH_HTTP_ONLY=root|rare|and2|none runs only that row; BENCH_HTTP_WAIT=S waits S seconds
** after loading (to attach a profiler, e.g. callgrind_control -i on, before the rows start).
** Each row also prints the server's CPU time a request (all its threads, from
** /proc/PID/task/N/schedstat): less noisy than the latency on a shared machine, where a busy
** core delays each of a request's thread hand-offs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_search_corpus.h"

#define RUNS 5
#define ROOT_REQS 2000
#define BULK_DOCS 5000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char g_dir[4096];
static pid_t g_child = -1;

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(p);
}

static void cleanup(void) {
  if (g_child > 0) {
    kill(g_child, SIGTERM);
    waitpid(g_child, NULL, 0);
    g_child = -1;
  }
  if (g_dir[0]) nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  g_dir[0] = 0;
}

static void on_signal(int sig) {
  (void)sig;
  cleanup();
  _exit(130);
}

/* ---- a minimal keep-alive HTTP/1.1 client ------------------------------------------------ */

typedef struct client {
  int fd;
  char *buf; /* the response being read */
  size_t cap, len;
} client;

static int client_connect(client *c, int port) {
  struct sockaddr_in sa;
  int one = 1;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) return -1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa)) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One request; returns the status (body in c->buf + *BODY_OFF, *BODY_LEN bytes), -1 on error.
** The server must answer with Content-Length (it does: bodies are whole). */
static int request(client *c, const char *method, const char *path, const char *body, size_t blen,
                   size_t *body_off, size_t *body_len) {
  char head[512];
  int hl = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/%s\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    method, path, strstr(path, "_bulk") ? "x-ndjson" : "json", blen);
  if (write_all(c->fd, head, (size_t)hl) || (blen && write_all(c->fd, body, blen))) return -1;
  c->len = 0;
  for (;;) {
    char *e;
    if (c->len + 65536 > c->cap) {
      c->cap = (c->cap ? c->cap * 2 : 1 << 20);
      c->buf = realloc(c->buf, c->cap);
    }
    ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c->len += (size_t)r;
    c->buf[c->len] = 0;
    if (!(e = strstr(c->buf, "\r\n\r\n"))) continue;
    const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
    size_t need, off = (size_t)(e - c->buf) + 4;
    if (!cl || cl > e) return -1;
    need = off + strtoull(cl + 17, NULL, 10);
    while (c->len < need) {
      if (need + 1 > c->cap) {
        c->cap = need + 1;
        c->buf = realloc(c->buf, c->cap);
      }
      r = read(c->fd, c->buf + c->len, need - c->len);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return -1;
      c->len += (size_t)r;
    }
    c->buf[need] = 0;
    *body_off = off;
    *body_len = need - off;
    return atoi(c->buf + 9);
  }
}

/* ---- the server --------------------------------------------------------------------------- */

static int free_port(void) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof sa) &&
      !getsockname(fd, (struct sockaddr *)&sa, &sl))
    port = ntohs(sa.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static int start_server(const char *bin, int port, const char *data) {
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  g_child = fork();
  if (g_child < 0) return -1;
  if (!g_child) {
    execl(bin, bin, "serve", "--listen", listen, "--data", data, "--log-level", "warn", (char *)NULL);
    _exit(127);
  }
  return 0;
}

/* CPU nanoseconds the server's threads have run (0 when /proc does not tell) */
static double server_cpu_ns(void) {
  char path[64];
  double ns = 0;
  struct dirent *e;
  snprintf(path, sizeof path, "/proc/%d/task", (int)g_child);
  DIR *d = opendir(path);
  if (!d) return 0;
  while ((e = readdir(d))) {
    char p[384];
    unsigned long long run = 0;
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)g_child, e->d_name);
    FILE *f = fopen(p, "r");
    if (f && fscanf(f, "%llu", &run) == 1) ns += (double)run;
    if (f) fclose(f);
  }
  closedir(d);
  return ns;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, sc_cmp_double);
  return v[n / 2];
}

typedef struct row {
  double p50, p99, lo, hi, cpu; /* cpu: the server's CPU microseconds a request (median run) */
  int fails;
} row;

/* KIND 0: GET /; 1: rare term; 2: two-term AND; 3: match_none */
static void measure(client *cl, const sc_corpus *c, int kind, row *out) {
  int nreq = kind ? SC_QUERIES : ROOT_REQS, r, q;
  double *lat = malloc((size_t)nreq * sizeof *lat), p50[RUNS], p99[RUNS], cpu[RUNS];
  memset(out, 0, sizeof *out);
  for (r = 0; r <= RUNS; r++) {
    double c0 = server_cpu_ns();
    for (q = 0; q < nreq; q++) {
      char body[256];
      int bl = 0, st;
      size_t bo, blen;
      const char *t[2];
      if (kind == 1) {
        bl = snprintf(body, sizeof body, "{\"query\":{\"match\":{\"body\":\"%s\"}}}", sc_rare(c, q));
      } else if (kind == 2) {
        sc_query(c, q, &t[0], &t[1]);
        bl = snprintf(body, sizeof body,
                      "{\"query\":{\"match\":{\"body\":{\"query\":\"%s %s\",\"operator\":\"and\"}}}}",
                      t[0], t[1]);
      } else if (kind == 3) {
        bl = snprintf(body, sizeof body, "{\"query\":{\"match_none\":{}}}");
      }
      double t0 = now_s();
      st = kind ? request(cl, "POST", "/bench/_search", body, (size_t)bl, &bo, &blen)
                : request(cl, "GET", "/", NULL, 0, &bo, &blen);
      lat[q] = (now_s() - t0) * 1e6;
      if (st != 200) out->fails++;
    }
    qsort(lat, (size_t)nreq, sizeof *lat, sc_cmp_double);
    if (r) {
      cpu[r - 1] = (server_cpu_ns() - c0) / 1e3 / nreq;
      p50[r - 1] = sc_pct(lat, (size_t)nreq, 50);
      p99[r - 1] = sc_pct(lat, (size_t)nreq, 99);
    }
  }
  out->lo = out->hi = p50[0];
  for (r = 1; r < RUNS; r++) {
    if (p50[r] < out->lo) out->lo = p50[r];
    if (p50[r] > out->hi) out->hi = p50[r];
  }
  out->p50 = median(p50, RUNS);
  out->p99 = median(p99, RUNS);
  out->cpu = median(cpu, RUNS);
  free(lat);
}

int main(int argc, char **argv) {
  uint64_t n = 100000, i;
  const char *env = getenv("BENCH_HTTP_DOCS"), *tmp = getenv("TMPDIR");
  const char *bin = getenv("BENCH_QUIDDITCH");
  char data[4200], *text = malloc(121 * 16), *bulk;
  size_t bcap = (size_t)BULK_DOCS * 2600, bo, blen;
  sc_corpus c;
  client cl = {-1, NULL, 0, 0};
  int port, st, k;
  double t0;
  if (argc > 1) n = strtoull(argv[1], NULL, 10);
  else if (env && *env) n = strtoull(env, NULL, 10);
  if (n < 1000) n = 1000;
  if (!bin || !*bin) bin = BENCH_QUIDDITCH;
  if (access(bin, X_OK)) {
    printf("http/root  skipped: %s not built\n", bin);
    return 0;
  }
  if (sc_load(&c, "/usr/share/dict/words")) {
    printf("http/root  skipped: /usr/share/dict/words (wamerican) missing\n");
    return 0;
  }
  snprintf(g_dir, sizeof g_dir, "%s/bench_http_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_dir)) return 1;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);
  signal(SIGPIPE, SIG_IGN);
  snprintf(data, sizeof data, "%s/data", g_dir);
  if ((port = free_port()) < 0 || start_server(bin, port, data)) {
    cleanup();
    return 1;
  }
  for (k = 0; k < 200 && client_connect(&cl, port); k++) usleep(50000);
  if (cl.fd < 0) {
    printf("http/root  failed: the server did not start on port %d\n", port);
    cleanup();
    return 1;
  }
  printf("# http: build/quidditch on 127.0.0.1:%d, one keep-alive connection, %llu docs of the "
         "search corpus (seed %#x)\n", port, (unsigned long long)n, SC_SEED);
  fflush(stdout);
  {
    const char *m = "{\"mappings\":{\"properties\":{\"body\":{\"type\":\"text\"},\"price\":{\"type\":"
                    "\"double\"},\"days\":{\"type\":\"integer\"},\"tier\":{\"type\":\"integer\"}}}}";
    if ((st = request(&cl, "PUT", "/bench", m, strlen(m), &bo, &blen)) != 200) {
      printf("http/root  failed: PUT /bench answered %d\n", st);
      cleanup();
      return 1;
    }
  }
  bulk = malloc(bcap);
  t0 = now_s();
  for (i = 0; i < n;) {
    size_t len = 0;
    uint64_t end = i + BULK_DOCS < n ? i + BULK_DOCS : n;
    for (; i < end; i++) {
      sc_doc d;
      sc_doc_make(&c, i, &d, text);
      len += (size_t)snprintf(bulk + len, bcap - len,
                              "{\"index\":{\"_id\":\"%s\"}}\n{\"body\":\"%s\",\"price\":%.2f,\"days\":%d,"
                              "\"tier\":%d}\n", d.id, d.text, d.price, (int)d.days, (int)d.tier);
    }
    if ((st = request(&cl, "POST", "/bench/_bulk", bulk, len, &bo, &blen)) != 200 ||
        strstr(cl.buf + bo, "\"errors\":true")) {
      printf("http/root  failed: _bulk answered %d\n", st);
      cleanup();
      return 1;
    }
  }
  request(&cl, "POST", "/bench/_refresh", NULL, 0, &bo, &blen);
  /* until the server is idle (its background merges and persists done, at most 60 s): they
  ** would otherwise share the cores with the first rows */
  for (k = 0; k < 300; k++) {
    double c0 = server_cpu_ns();
    usleep(200000);
    if (server_cpu_ns() - c0 < 0.05 * 200e6) break;
  }
  fprintf(stderr, "# loaded %llu docs in %.1f s (server pid %d)\n", (unsigned long long)n, now_s() - t0, (int)g_child);
  { /* BENCH_HTTP_WAIT=S: S seconds before the rows, to attach a profiler to a fixed workload */
    const char *w = getenv("BENCH_HTTP_WAIT");
    if (w && atoi(w) > 0) sleep((unsigned)atoi(w));
  }
  {
    static const char *const names[4] = {"root", "rare", "and2", "none"};
    static const double goals[4] = {40, 80, 0, 0};
    const char *lp = getenv("BENCH_HTTP_LOOPS"); /* repeat the rows (for a profiler) */
    const char *only = getenv("BENCH_HTTP_ONLY"); /* one row only (for a profiler) */
    int loops = lp && atoi(lp) > 1 ? atoi(lp) : 1;
    for (k = 0; k < 4 * loops; k++) {
      row rw;
      if (only && *only && strcmp(only, names[k % 4])) continue;
      measure(&cl, &c, k % 4, &rw);
      if (rw.fails) printf("http/%s_p50  %d requests failed\n", names[k % 4], rw.fails);
      printf("http/%s_p50  %.1fus  p99 %.1fus", names[k % 4], rw.p50, rw.p99);
      if (goals[k % 4] > 0) printf("  goal < %.0fus (%.2fx goal)", goals[k % 4], rw.p50 / goals[k % 4]);
      printf("  med/%d [%.1f..%.1f]  server cpu %.1fus/req\n", RUNS, rw.lo, rw.hi, rw.cpu);
      fflush(stdout);
    }
  }
  close(cl.fd);
  free(cl.buf);
  free(bulk);
  free(text);
  sc_free(&c);
  cleanup();
  return 0;
}
