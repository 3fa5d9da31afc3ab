/* test_base.c: errors, allocator accounting and failure injection, arenas, buffers, log tags. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base.h"

static void fail_formats_message_and_returns_code(void **state) {
  qb_err err;
  (void)state;
  assert_int_equal(qb_fail(&err, QB_MALFORMED, "section %d at offset 0x%x", 7, 0x1a3), QB_MALFORMED);
  assert_int_equal(err.code, QB_MALFORMED);
  assert_string_equal(err.msg, "section 7 at offset 0x1a3");
  assert_int_equal(qb_fail(NULL, QB_IO, "ignored"), QB_IO);
}

static void wrap_prefixes_message_and_keeps_code(void **state) {
  qb_err err;
  (void)state;
  qb_fail(&err, QB_TRAP, "integer divide by zero");
  qb_wrap(&err, "udf %s v%d: ", "custom_score", 3);
  assert_int_equal(err.code, QB_TRAP);
  assert_string_equal(err.msg, "udf custom_score v3: integer divide by zero");
}

static void long_messages_are_truncated_not_overflowed(void **state) {
  qb_err err;
  char big[1000];
  (void)state;
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  qb_fail(&err, QB_INVAL, "%s", big);
  assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
  qb_wrap(&err, "%s", big);
  assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
}

static void code_names_come_from_the_table(void **state) {
  (void)state;
  assert_string_equal(qb_code_name(QB_OK), "OK");
  assert_string_equal(qb_code_name(QB_NOTFOUND), "NOTFOUND");
  assert_string_equal(qb_code_name((qb_code)999), "?");
}

static void allocator_counts_live_bytes(void **state) {
  size_t before = qb_alloc_live_bytes();
  char *p;
  (void)state;
  p = qb_malloc(100);
  assert_non_null(p);
  assert_int_equal(qb_alloc_live_bytes(), before + 100);
  p = qb_realloc(p, 100, 300);
  assert_non_null(p);
  assert_int_equal(qb_alloc_live_bytes(), before + 300);
  qb_free(p, 300);
  assert_int_equal(qb_alloc_live_bytes(), before);
  assert_null(qb_calloc(SIZE_MAX / 2, 4));
}

/* each thread counts in its own slot: a block freed on another thread than the one that
** allocated it still leaves the sum as it was, and many threads (past the slots) count too */
static void *alloc_there(void *arg) {
  void **p = arg;
  *p = qb_malloc(1000);
  return NULL;
}

static void *free_there(void *arg) {
  qb_free(*(void **)arg, 1000);
  return NULL;
}

static void live_bytes_add_up_across_threads(void **state) {
  (void)state;
  size_t before = qb_alloc_live_bytes();
  for (int round = 0; round < 150; round++) { /* 300 threads: more than the slots */
    void *p = NULL;
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, alloc_there, &p), 0);
    pthread_join(a, NULL);
    assert_non_null(p);
    assert_int_equal(qb_alloc_live_bytes(), before + 1000);
    assert_int_equal(pthread_create(&b, NULL, free_there, &p), 0);
    pthread_join(b, NULL);
    assert_int_equal(qb_alloc_live_bytes(), before);
  }
  void *q = NULL;
  pthread_t a;
  assert_int_equal(pthread_create(&a, NULL, alloc_there, &q), 0);
  pthread_join(a, NULL);
  qb_free(q, 1000); /* here */
  assert_int_equal(qb_alloc_live_bytes(), before);
}

static void fail_after_n_fails_exactly_the_nth_allocation(void **state) {
  void *a, *b;
  (void)state;
  qb_alloc_fail_after(2);
  a = qb_malloc(8);
  b = qb_malloc(8);
  qb_alloc_fail_after(0);
  assert_non_null(a);
  assert_null(b);
  qb_free(a, 8);
}

/* jansson's callbacks: blocks without a size given back are still counted, aligned, and fail
** on the Nth allocation like any other. */
static void sized_blocks_are_counted_and_fail_like_any_other(void **state) {
  size_t before = qb_alloc_live_bytes();
  unsigned char *p;
  (void)state;
  assert_non_null(p = qb_sized_malloc(100));
  assert_int_equal((uintptr_t)p % 16, 0);
  memset(p, 0xab, 100);
  assert_true(qb_alloc_live_bytes() >= before + 100);
  qb_sized_free(p);
  assert_int_equal(qb_alloc_live_bytes(), before);
  qb_sized_free(NULL);
  assert_null(qb_sized_malloc(SIZE_MAX - 4));
  qb_alloc_fail_after(1);
  p = qb_sized_malloc(8);
  qb_alloc_fail_after(0);
  assert_null(p);
  assert_int_equal(qb_alloc_live_bytes(), before);
}

static void parse_and_corrupt_are_distinct_codes(void **state) {
  (void)state;
  assert_int_not_equal(QB_PARSE, QB_CORRUPT);
  assert_string_equal(qb_code_name(QB_PARSE), "PARSE");
  assert_string_equal(qb_code_name(QB_CORRUPT), "CORRUPT");
}

static void arena_allocates_zeroed_aligned_memory_and_frees_all(void **state) {
  qb_arena a;
  size_t before = qb_alloc_live_bytes();
  int i;
  (void)state;
  qb_arena_init(&a);
  for (i = 0; i < 1000; i++) {
    unsigned char *p = qb_arena_alloc(&a, (size_t)i + 1);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_int_equal(p[i], 0);
    memset(p, 0xab, (size_t)i + 1);
  }
  assert_non_null(qb_arena_alloc(&a, 3u << 20)); /* bigger than a chunk */
  assert_string_equal(qb_arena_strndup(&a, "hello world", 5), "hello");
  assert_null(qb_arena_array(&a, SIZE_MAX / 2, 4));
  qb_arena_fini(&a);
  assert_int_equal(qb_alloc_live_bytes(), before);
}

static void arena_limit_fails_allocation(void **state) {
  qb_arena a;
  (void)state;
  qb_arena_init(&a);
  a.limit_bytes = 1024;
  assert_non_null(qb_arena_alloc(&a, 512));
  assert_null(qb_arena_alloc(&a, 1024));
  qb_arena_fini(&a);
}

static void buf_appends_and_formats(void **state) {
  qb_buf b;
  int i;
  (void)state;
  qb_buf_init(&b);
  for (i = 0; i < 100; i++) assert_int_equal(qb_buf_printf(&b, "%d,", i), QB_OK);
  assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
  assert_int_equal(b.data[b.len], 0);
  qb_buf_reset(&b);
  qb_buf_puts(&b, "x");
  assert_string_equal(b.data, "x");
  qb_buf_fini(&b);
}

static void buf_failure_is_sticky(void **state) {
  qb_buf b;
  (void)state;
  qb_buf_init(&b);
  qb_alloc_fail_after(1);
  assert_int_equal(qb_buf_puts(&b, "abc"), QB_NOMEM);
  qb_alloc_fail_after(0);
  assert_int_equal(qb_buf_puts(&b, "abc"), QB_NOMEM);
  assert_true(b.failed);
  qb_buf_fini(&b);
}

static int assert_probe_calls;
static int assert_probe(void) { return ++assert_probe_calls; }

/* QB_ASSERT: in a checked build (QB_ASSERTS) a false condition aborts naming itself; in an
** unchecked one the condition is never evaluated. */
static void assert_aborts_naming_the_condition_or_is_compiled_out(void **state) {
  (void)state;
#ifdef QB_ASSERTS
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    QB_ASSERT(assert_probe() == 1); /* true: goes on */
    QB_ASSERT(assert_probe() == 7);
    _exit(0);
  }
  close(fds[1]);
  char out[512] = {0};
  size_t n = 0;
  ssize_t r;
  while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  assert_non_null(strstr(out, "assertion failed: assert_probe() == 7 ("));
  assert_non_null(strstr(out, "test_base.c:"));
#else
  QB_ASSERT(assert_probe() == 7);
  assert_int_equal(assert_probe_calls, 0);
#endif
}

/* The per-thread log tag: asked for only when a line is written, on the thread that set it. */
static char last_line[1100];
static int tag_calls;
static void keep_line(void *ud, qb_level level, const char *line) {
  (void)ud, (void)level;
  snprintf(last_line, sizeof last_line, "%s", line);
}
static const char *the_tag(void *arg) {
  tag_calls++;
  return arg;
}
static void *log_untagged(void *arg) {
  (void)arg;
  qb_log(QB_WARN, "from another thread");
  return NULL;
}

static void log_lines_carry_the_thread_tag(void **state) {
  (void)state;
  qb_log_set(keep_line, NULL, QB_INFO);
  qb_log_set_tag(the_tag, "node-1-5f-7");
  qb_log(QB_DEBUG, "below the level");
  assert_int_equal(tag_calls, 0); /* nothing written, nothing asked */
  qb_log(QB_ERROR, "GET /x: %s", "broken");
  assert_string_equal(last_line, "[request node-1-5f-7] GET /x: broken");
  assert_int_equal(tag_calls, 1);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, log_untagged, NULL), 0);
  pthread_join(t, NULL);
  assert_string_equal(last_line, "from another thread");
  qb_log_set_tag(NULL, NULL);
  qb_log(QB_INFO, "untagged");
  assert_string_equal(last_line, "untagged");
  qb_log_set(NULL, NULL, QB_INFO);
}

static void sizes_are_exact_below_a_kib_then_one_decimal(void **state) {
  (void)state;
  char b[QB_SIZE_STR];
  assert_string_equal(qb_size_str(0, b), "0 B");
  assert_string_equal(qb_size_str(521, b), "521 B");
  assert_string_equal(qb_size_str(1023, b), "1023 B");
  assert_string_equal(qb_size_str(1024, b), "1.0 KiB");
  assert_string_equal(qb_size_str(2355, b), "2.3 KiB");
  assert_string_equal(qb_size_str(1024 * 1024 - 1, b), "1.0 MiB"); /* never "1024.0 KiB" */
  assert_string_equal(qb_size_str(15u << 20, b), "15.0 MiB");
  assert_string_equal(qb_size_str(UINT64_MAX, b), "16.0 EiB");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fail_formats_message_and_returns_code),
      cmocka_unit_test(wrap_prefixes_message_and_keeps_code),
      cmocka_unit_test(long_messages_are_truncated_not_overflowed),
      cmocka_unit_test(code_names_come_from_the_table),
      cmocka_unit_test(allocator_counts_live_bytes),
      cmocka_unit_test(live_bytes_add_up_across_threads),
      cmocka_unit_test(fail_after_n_fails_exactly_the_nth_allocation),
      cmocka_unit_test(sized_blocks_are_counted_and_fail_like_any_other),
      cmocka_unit_test(parse_and_corrupt_are_distinct_codes),
      cmocka_unit_test(arena_allocates_zeroed_aligned_memory_and_frees_all),
      cmocka_unit_test(arena_limit_fails_allocation),
      cmocka_unit_test(buf_appends_and_formats),
      cmocka_unit_test(buf_failure_is_sticky),
      cmocka_unit_test(assert_aborts_naming_the_condition_or_is_compiled_out),
      cmocka_unit_test(log_lines_carry_the_thread_tag),
      cmocka_unit_test(sizes_are_exact_below_a_kib_then_one_decimal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
