/* test_etcd.c: the etcd v3 client against a real etcd (/usr/bin/etcd, Debian's etcd-server)
** started here on free loopback ports with a temporary data directory: kv get/put/delete,
** ranges by prefix, binary values, txn compares on mod_revision, leases (a leased key goes
** with its revoked lease), a watch stream that sees puts and deletes in order, and an
** unreachable endpoint refused with a clear error. Skipped (77) without /usr/bin/etcd. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

#define ETCD "/usr/bin/etcd"

static char dir[64];
static pid_t etcd_pid;
static char url[64];

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
      getsockname(fd, (struct sockaddr *)&sa, &len))
    return -1;
  close(fd);
  return ntohs(sa.sin_port);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static int start_etcd(void **state) {
  snprintf(dir, sizeof dir, "/tmp/qd-etcd-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  int cport = free_port(), pport = free_port();
  char curls[64], purls[64], datad[128], initial[96], logf[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", cport);
  snprintf(curls, sizeof curls, "http://127.0.0.1:%d", cport);
  snprintf(purls, sizeof purls, "http://127.0.0.1:%d", pport);
  snprintf(datad, sizeof datad, "%s/data", dir);
  snprintf(initial, sizeof initial, "default=%s", purls);
  snprintf(logf, sizeof logf, "%s/etcd.log", dir);
  etcd_pid = fork();
  if (etcd_pid == 0) {
    if (!freopen(logf, "w", stderr) || !freopen(logf, "a", stdout)) _exit(127);
    execl(ETCD, ETCD, "--data-dir", datad, "--listen-client-urls", curls,
          "--advertise-client-urls", curls, "--listen-peer-urls", purls,
          "--initial-advertise-peer-urls", purls, "--initial-cluster", initial, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 1000; i++) { /* up to 20 s */
    qc_etcd *e;
    if (qc_etcd_open(url, 500, &e, NULL) == QB_OK) {
      qc_etcd_close(e);
      return 0;
    }
    sleep_ms(20);
  }
  return -1;
}

static int stop_etcd(void **state) {
  if (etcd_pid > 0) {
    kill(etcd_pid, SIGTERM);
    waitpid(etcd_pid, NULL, 0);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static qc_etcd *open_etcd(void) {
  qc_etcd *e;
  qb_err err;
  if (qc_etcd_open(url, 0, &e, &err)) fail_msg("open: %s", err.msg);
  return e;
}

static void put_get_delete_round_trip(void **state) {
  qc_etcd *e = open_etcd();
  qb_err err;
  qc_kvs k;
  int64_t rev = 0, deleted = 0;
  assert_int_equal(qc_etcd_put(e, "/t/a", "one", 3, 0, &rev, &err), QB_OK);
  assert_true(rev > 0);
  assert_int_equal(qc_etcd_get(e, "/t/a", &k, &err), QB_OK);
  assert_int_equal(k.n, 1);
  assert_string_equal(k.kv[0].key, "/t/a");
  assert_int_equal(k.kv[0].value_len, 3);
  assert_memory_equal(k.kv[0].value, "one", 3);
  assert_int_equal(k.kv[0].mod_revision, rev);
  qc_kvs_fini(&k);
  assert_int_equal(qc_etcd_delete(e, "/t/a", 0, &deleted, &err), QB_OK);
  assert_int_equal(deleted, 1);
  assert_int_equal(qc_etcd_get(e, "/t/a", &k, &err), QB_OK);
  assert_int_equal(k.n, 0);
  qc_kvs_fini(&k);
  qc_etcd_close(e);
}

static void binary_values_survive(void **state) {
  qc_etcd *e = open_etcd();
  qb_err err;
  uint8_t v[300];
  for (int i = 0; i < 300; i++) v[i] = (uint8_t)(i * 7);
  for (size_t n = 0; n < 5; n++) { /* every base64 padding case, and 0 */
    size_t len = n ? 295 + n : 0;
    assert_int_equal(qc_etcd_put(e, "/t/bin", v, len, 0, NULL, &err), QB_OK);
    qc_kvs k;
    assert_int_equal(qc_etcd_get(e, "/t/bin", &k, &err), QB_OK);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.kv[0].value_len, len);
    if (len) assert_memory_equal(k.kv[0].value, v, len);
    qc_kvs_fini(&k);
  }
  qc_etcd_close(e);
}

static void range_by_prefix_is_in_key_order_and_stops_at_the_prefix(void **state) {
  qc_etcd *e = open_etcd();
  qb_err err;
  const char *keys[] = {"/p/b", "/p/a", "/p/c/d", "/pz", "/o"};
  for (int i = 0; i < 5; i++)
    assert_int_equal(qc_etcd_put(e, keys[i], keys[i], strlen(keys[i]), 0, NULL, &err), QB_OK);
  qc_kvs k;
  assert_int_equal(qc_etcd_range(e, "/p/", 0, &k, &err), QB_OK);
  assert_int_equal(k.n, 3);
  assert_string_equal(k.kv[0].key, "/p/a");
  assert_string_equal(k.kv[1].key, "/p/b");
  assert_string_equal(k.kv[2].key, "/p/c/d");
  assert_true(k.revision > 0);
  qc_kvs_fini(&k);
  int64_t deleted;
  assert_int_equal(qc_etcd_delete(e, "/p/", 1, &deleted, &err), QB_OK);
  assert_int_equal(deleted, 3);
  assert_int_equal(qc_etcd_range(e, "/p", 1, &k, &err), QB_OK);
  assert_int_equal(k.n, 1);
  assert_string_equal(k.kv[0].key, "/pz");
  assert_int_equal(k.kv[0].value_len, 0); /* keys only */
  qc_kvs_fini(&k);
  qc_etcd_close(e);
}

static void txn_compare_lets_only_one_writer_win(void **state) {
  qc_etcd *e = open_etcd();
  qb_err err;
  qc_txn_cmp absent = {"/t/leader", 0};
  qc_txn_op put_a = {.key = "/t/leader", .value = "a", .len = 1};
  qc_txn_op put_b = {.key = "/t/leader", .value = "b", .len = 1};
  int64_t rev;
  assert_int_equal(qc_etcd_txn(e, &absent, 1, &put_a, 1, &rev, &err), QB_OK);
  assert_int_equal(qc_etcd_txn(e, &absent, 1, &put_b, 1, NULL, &err), QB_CONFLICT);
  qc_kvs k;
  assert_int_equal(qc_etcd_get(e, "/t/leader", &k, &err), QB_OK);
  assert_memory_equal(k.kv[0].value, "a", 1);
  qc_kvs_fini(&k);
  /* a compare on the revision read wins once; two ops in one txn apply together */
  qc_txn_cmp seen = {"/t/leader", rev};
  qc_txn_op two[2] = {{.key = "/t/leader", .value = "b", .len = 1},
                      {.key = "/t/other", .value = "x", .len = 1}};
  assert_int_equal(qc_etcd_txn(e, &seen, 1, two, 2, NULL, &err), QB_OK);
  assert_int_equal(qc_etcd_txn(e, &seen, 1, two, 1, NULL, &err), QB_CONFLICT);
  assert_int_equal(qc_etcd_get(e, "/t/other", &k, &err), QB_OK);
  assert_int_equal(k.n, 1);
  qc_kvs_fini(&k);
  qc_txn_op del = {.del = 1, .key = "/t/", .prefix = 1};
  assert_int_equal(qc_etcd_txn(e, NULL, 0, &del, 1, NULL, &err), QB_OK);
  assert_int_equal(qc_etcd_get(e, "/t/other", &k, &err), QB_OK);
  assert_int_equal(k.n, 0);
  qc_kvs_fini(&k);
  qc_etcd_close(e);
}

static void a_leased_key_goes_with_its_lease(void **state) {
  qc_etcd *e = open_etcd();
  qb_err err;
  qc_lease *l;
  assert_int_equal(qc_lease_start(e, 5, NULL, NULL, &l, &err), QB_OK);
  assert_true(qc_lease_ok(l));
  assert_int_equal(qc_etcd_lease_keepalive(e, qc_lease_id(l), &err), QB_OK);
  assert_int_equal(qc_etcd_put(e, "/n/dn1", "up", 2, qc_lease_id(l), NULL, &err), QB_OK);
  qc_kvs k;
  assert_int_equal(qc_etcd_get(e, "/n/dn1", &k, &err), QB_OK);
  assert_int_equal(k.n, 1);
  assert_int_equal(k.kv[0].lease, qc_lease_id(l));
  qc_kvs_fini(&k);
  int64_t id = qc_lease_id(l);
  qc_lease_stop(l); /* revokes */
  assert_int_equal(qc_etcd_get(e, "/n/dn1", &k, &err), QB_OK);
  assert_int_equal(k.n, 0);
  qc_kvs_fini(&k);
  assert_int_equal(qc_etcd_lease_keepalive(e, id, &err), QB_NOTFOUND);
  qc_etcd_close(e);
}

typedef struct seen {
  pthread_mutex_t mu;
  int n;
  char what[8][64];
} seen;

static void on_event(void *ud, int deleted, const qc_kv *kv) {
  seen *s = ud;
  pthread_mutex_lock(&s->mu);
  if (s->n < 8)
    snprintf(s->what[s->n++], 64, "%s %s=%.*s", deleted ? "del" : "put", kv->key,
             (int)kv->value_len, kv->value);
  pthread_mutex_unlock(&s->mu);
}

static int count(seen *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

static void watch_sees_puts_and_deletes_in_order(void **state) {
  qc_etcd *e = open_etcd();
  qb_err err;
  seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  qc_kvs k;
  assert_int_equal(qc_etcd_range(e, "/w/", 0, &k, &err), QB_OK);
  int64_t from = k.revision + 1;
  qc_kvs_fini(&k);
  qc_watch *w;
  assert_int_equal(qc_watch_start(e, "/w/", from, on_event, &s, &w, &err), QB_OK);
  assert_int_equal(qc_etcd_put(e, "/w/x", "1", 1, 0, NULL, &err), QB_OK);
  assert_int_equal(qc_etcd_put(e, "/other", "1", 1, 0, NULL, &err), QB_OK);
  assert_int_equal(qc_etcd_put(e, "/w/y", "2", 1, 0, NULL, &err), QB_OK);
  assert_int_equal(qc_etcd_delete(e, "/w/x", 0, NULL, &err), QB_OK);
  for (int i = 0; i < 1000 && count(&s) < 3; i++) sleep_ms(10);
  qc_watch_stop(w);
  assert_int_equal(s.n, 3);
  assert_string_equal(s.what[0], "put /w/x=1");
  assert_string_equal(s.what[1], "put /w/y=2");
  assert_string_equal(s.what[2], "del /w/x=");
  qc_etcd_close(e);
}

static void an_unreachable_endpoint_is_refused_by_name(void **state) {
  qc_etcd *e;
  qb_err err;
  char bad[64];
  snprintf(bad, sizeof bad, "http://127.0.0.1:%d", free_port());
  assert_int_equal(qc_etcd_open(bad, 500, &e, &err), QB_UNAVAILABLE);
  assert_non_null(strstr(err.msg, bad));
  assert_non_null(strstr(err.msg, "unreachable"));
  assert_int_equal(qc_etcd_open("127.0.0.1:2379", 500, &e, &err), QB_INVAL);
}

int main(void) {
  if (access(ETCD, X_OK)) {
    fprintf(stderr, "skipped: %s is not installed (Debian package etcd-server)\n", ETCD);
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(put_get_delete_round_trip),
      cmocka_unit_test(binary_values_survive),
      cmocka_unit_test(range_by_prefix_is_in_key_order_and_stops_at_the_prefix),
      cmocka_unit_test(txn_compare_lets_only_one_writer_win),
      cmocka_unit_test(a_leased_key_goes_with_its_lease),
      cmocka_unit_test(watch_sees_puts_and_deletes_in_order),
      cmocka_unit_test(an_unreachable_endpoint_is_refused_by_name),
  };
  return cmocka_run_group_tests(tests, start_etcd, stop_etcd);
}
