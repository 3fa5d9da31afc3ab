/* test_durability.c: acknowledged writes survive SIGKILL. A forked child writes documents (single
** puts and bulk batches) and reports each acknowledged id over a pipe; the parent kills it with
** SIGKILL mid-stream, reopens the index and checks that every acked document is there and
** searchable. */
#include "support.h"

#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void child(const char *dir, int fd) {
  qi_index *ix;
  qb_err err;
  char id[32], doc[256];
  int i = 0, k;
  if (qi_index_open(dir, NULL, &ix, &err)) _exit(2);
  for (;;) {
    if (i % 3 == 2) { /* a bulk batch of 5, acked together after commit */
      qi_bulk *b;
      int first = i;
      if (qi_bulk_begin(ix, &b, &err)) _exit(3);
      for (k = 0; k < 5; k++, i++) {
        snprintf(id, sizeof id, "d%d", i);
        snprintf(doc, sizeof doc, "{\"body\":\"durable w%d\",\"n\":%d}", i, i);
        if (qi_bulk_put(b, id, doc, strlen(doc), NULL, &err)) _exit(4);
      }
      if (qi_bulk_commit(b, &err)) _exit(5);
      for (k = first; k < i; k++)
        if (write(fd, &k, sizeof k) != sizeof k) _exit(6);
    } else {
      snprintf(id, sizeof id, "d%d", i);
      snprintf(doc, sizeof doc, "{\"body\":\"durable w%d\",\"n\":%d}", i, i);
      if (qi_index_put(ix, id, doc, strlen(doc), NULL, &err)) _exit(7);
      if (write(fd, &i, sizeof i) != sizeof i) _exit(8);
      i++;
    }
    if (i % 50 == 0) qi_index_refresh(ix, NULL);
  }
}

static void acknowledged_writes_survive_sigkill(void **state) {
  char dir[4096];
  qi_index *ix;
  qi_options opt = {0};
  qb_err err;
  int fds[2], got, status, max_acked = -1, nacked = 0, i;
  pid_t pid;
  char *acked = calloc(1 << 20, 1);
  qi_snapshot *s;
  qb_buf b;
  (void)state;
  tmpdir_new(dir);
  assert_int_equal(qi_index_create(dir, NULL, &opt, &ix, &err), QB_OK);
  qi_index_close(ix);
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    child(dir, fds[1]);
    _exit(0);
  }
  close(fds[1]);
  /* read acks until 300 arrived, then kill the child mid-stream */
  while (nacked < 300 && read(fds[0], &got, sizeof got) == sizeof got) {
    acked[got] = 1;
    nacked++;
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  /* acks written before the kill are still in the pipe */
  while (read(fds[0], &got, sizeof got) == sizeof got) {
    acked[got] = 1;
    nacked++;
  }
  close(fds[0]);
  for (i = 0; i < (1 << 20); i++)
    if (acked[i]) max_acked = i;
  assert_true(nacked >= 300);
  if (qi_index_open(dir, NULL, &ix, &err)) fail_msg("reopen: %s", err.msg);
  assert_true(qi_index_doc_count(ix) >= (uint64_t)nacked);
  qb_buf_init(&b);
  s = qi_index_snapshot(ix);
  for (i = 0; i <= max_acked; i++) {
    char id[32], term[32];
    const char *t = term;
    hit h[1];
    if (!acked[i]) continue;
    snprintf(id, sizeof id, "d%d", i);
    qb_buf_reset(&b);
    if (qi_index_get(ix, id, &b, NULL, NULL, &err)) fail_msg("acked doc %s lost: %s", id, err.msg);
    snprintf(term, sizeof term, "w%d", i);
    if (search_or(s, "body", &t, 1, h, 1) != 1) fail_msg("acked doc %s not searchable", id);
    assert_string_equal(h[0].id, id);
  }
  qi_snapshot_release(s);
  qb_buf_fini(&b);
  qi_index_close(ix);
  free(acked);
  tmpdir_remove(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(acknowledged_writes_survive_sigkill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
