/* test_wasi.c: the WASI preview1 sandbox (src/wasm/wasi.c, DESIGN.md §4). A real WASI command
** (tests/data/wasi/printf_exit.c, compiled here with clang-19 --target=wasm32-wasi) prints,
** reads argv and exits with a code; a small WAT module (wat2wasm) calls single functions with
** good and bad pointers. Tests that need a missing tool are skipped, never failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wasm.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static char tmpdir[256];

static int setup_dir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/qd_test_wasi_XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int read_all(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  long n;
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *buf = malloc((size_t)n + 1);
  if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    return -1;
  }
  fclose(f);
  *len = (size_t)n;
  return 0;
}

/* Run a shell command; 0 when it succeeded. */
static int sh(const char *cmd) {
  return system(cmd);
}

/* The C test program as wasm, or NULL (the test is then skipped). */
static uint8_t *c_program(size_t *len) {
  char cmd[1024], out[300];
  const char *src = getenv("QD_SOURCE_DIR");
  uint8_t *buf;
  if (!src || sh("command -v clang-19 >/dev/null 2>&1"))
    return NULL;
  snprintf(out, sizeof out, "%s/printf_exit.wasm", tmpdir);
  snprintf(cmd, sizeof cmd,
           "clang-19 --target=wasm32-wasi -O2 '%s/tests/data/wasi/printf_exit.c' -o '%s'", src,
           out);
  if (sh(cmd) || read_all(out, &buf, len))
    return NULL;
  return buf;
}

static const char probe_wat[] =
    "(module\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_write\" (func $fd_write (param i32 i32 i32 i32) "
    "(result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"random_get\" (func $random_get (param i32 i32) (result "
    "i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"clock_time_get\" (func $clock (param i32 i64 i32) "
    "(result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"environ_sizes_get\" (func $env_sizes (param i32 i32) "
    "(result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"args_sizes_get\" (func $args_sizes (param i32 i32) "
    "(result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"args_get\" (func $args_get (param i32 i32) (result "
    "i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_fdstat_get\" (func $fdstat (param i32 i32) (result "
    "i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_prestat_get\" (func $prestat (param i32 i32) "
    "(result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"path_open\" (func $path_open (param i32 i32 i32 i32 "
    "i32 i64 i64 i32 i32) (result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"poll_oneoff\" (func $poll (param i32 i32 i32 i32) "
    "(result i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"fd_seek\" (func $seek (param i32 i64 i32 i32) (result "
    "i32)))\n"
    "  (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n"
    "  (memory (export \"memory\") 1)\n"
    "  (func (export \"fd_write\") (param i32 i32 i32 i32) (result i32)\n"
    "    (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))\n"
    "  (func (export \"random_get\") (param i32 i32) (result i32) (call $random_get (local.get 0) "
    "(local.get 1)))\n"
    "  (func (export \"clock_time_get\") (param i32 i32) (result i32) (call $clock (local.get 0) "
    "(i64.const 1) (local.get 1)))\n"
    "  (func (export \"environ_sizes_get\") (param i32 i32) (result i32) (call $env_sizes "
    "(local.get 0) (local.get 1)))\n"
    "  (func (export \"args_sizes_get\") (param i32 i32) (result i32) (call $args_sizes (local.get "
    "0) (local.get 1)))\n"
    "  (func (export \"args_get\") (param i32 i32) (result i32) (call $args_get (local.get 0) "
    "(local.get 1)))\n"
    "  (func (export \"fd_fdstat_get\") (param i32 i32) (result i32) (call $fdstat (local.get 0) "
    "(local.get 1)))\n"
    "  (func (export \"fd_prestat_get\") (param i32 i32) (result i32) (call $prestat (local.get 0) "
    "(local.get 1)))\n"
    "  (func (export \"path_open\") (result i32)\n"
    "    (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0)\n"
    "                     (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))\n"
    "  (func (export \"poll_oneoff\") (result i32) (call $poll (i32.const 0) (i32.const 0) "
    "(i32.const 0) (i32.const 0)))\n"
    "  (func (export \"fd_seek\") (param i32) (result i32) (call $seek (local.get 0) (i64.const 0) "
    "(i32.const 0) (i32.const 0)))\n"
    "  (func (export \"exit\") (param i32) (call $exit (local.get 0)) unreachable))\n";

/* The probe module as wasm, or NULL (the test is then skipped). */
static uint8_t *probe_module(size_t *len) {
  char wat[300], wasm[300], cmd[800];
  FILE *f;
  uint8_t *buf;
  if (sh("command -v wat2wasm >/dev/null 2>&1"))
    return NULL;
  snprintf(wat, sizeof wat, "%s/probe.wat", tmpdir);
  snprintf(wasm, sizeof wasm, "%s/probe.wasm", tmpdir);
  if (!(f = fopen(wat, "w")))
    return NULL;
  fputs(probe_wat, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "wat2wasm '%s' -o '%s'", wat, wasm);
  if (sh(cmd) || read_all(wasm, &buf, len))
    return NULL;
  return buf;
}

/* Captured output: fd 1 through the sink or the log in CAPTURED, fd 2 through the sink in
** CAPTURED_ERR. */
static char captured[8192], captured_err[1024];
static size_t ncaptured, ncaptured_err;
static int nlines;

static void capture_sink(void *ud, int fd, const char *p, size_t n) {
  char *buf = fd == 2 ? captured_err : captured;
  size_t *len = fd == 2 ? &ncaptured_err : &ncaptured;
  size_t cap = fd == 2 ? sizeof captured_err : sizeof captured;
  (void)ud;
  if (*len + n + 1 >= cap)
    return;
  memcpy(buf + *len, p, n);
  *len += n;
  buf[*len] = 0;
}

static void capture_log(void *ud, qb_level level, const char *line) {
  size_t n = strlen(line);
  (void)ud;
  (void)level;
  nlines++;
  if (ncaptured + n + 2 >= sizeof captured)
    return;
  memcpy(captured + ncaptured, line, n);
  ncaptured += n;
  captured[ncaptured++] = '\n';
  captured[ncaptured] = 0;
}

static void reset_capture(void) {
  captured[0] = captured_err[0] = 0;
  ncaptured = ncaptured_err = 0;
  nlines = 0;
}

typedef struct world {
  qw_engine *e;
  qw_module *m;
  qw_imports *im;
  qw_instance *inst;
  uint8_t *mem;
  size_t mem_bytes;
} world;

static const char *const test_argv[] = {"prog", "alpha", "be ta"};

/* Instantiate BYTES with WASI (argv above); SINK: the capture sink, or NULL for the log. */
static void world_open(world *w, const uint8_t *bytes, size_t len, int sink) {
  qb_err err;
  memset(w, 0, sizeof *w);
  reset_capture();
  assert_int_equal(qw_engine_new(NULL, &w->e, &err), QB_OK);
  if (qw_module_load(w->e, bytes, len, &w->m, &err))
    fail_msg("load: %s", err.msg);
  assert_int_equal(qw_imports_new(&w->im, &err), QB_OK);
  if (sink)
    qw_wasi_set_output(w->im, capture_sink, NULL);
  if (qw_imports_add_wasi(w->im, 3, test_argv, &err))
    fail_msg("wasi: %s", err.msg);
  if (qw_instance_new(w->m, w->im, NULL, &w->inst, &err))
    fail_msg("instance: %s", err.msg);
  w->mem = qw_instance_memory(w->inst, &w->mem_bytes);
  assert_non_null(w->mem);
}

static void world_close(world *w) {
  qw_instance_free(w->inst);
  qw_imports_free(w->im);
  qw_module_free(w->m);
  qw_engine_free(w->e);
}

/* Call export NAME with i32 args; returns the i32 result (or -1000 - code on error). */
static int32_t call(world *w, const char *name, int n, ...) {
  qw_func *f = qw_instance_func(w->inst, name);
  qw_val args[8], res[1];
  qw_sig sig;
  qb_err err;
  va_list ap;
  int i;
  qb_code rc;
  assert_non_null(f);
  va_start(ap, n);
  for (i = 0; i < n; i++)
    args[i] = qw_i32(va_arg(ap, int32_t));
  va_end(ap);
  qw_func_sig(f, &sig);
  rc = qw_func_call(f, args, (uint32_t)n, res, sig.nresults, &err);
  if (rc)
    return -1000 - (int32_t)rc;
  return sig.nresults ? (int32_t)res[0].of.i32 : 0;
}

static void put32(world *w, uint32_t at, uint32_t v) {
  memcpy(w->mem + at, &v, 4);
}
static uint32_t get32(world *w, uint32_t at) {
  uint32_t v;
  memcpy(&v, w->mem + at, 4);
  return v;
}

#define SKIP_IF_NULL(p, what)                                                                      \
  do {                                                                                             \
    if (!(p)) {                                                                                    \
      print_message("skipped: %s not available\n", what);                                          \
      skip();                                                                                      \
    }                                                                                              \
  } while (0)

/* ---- tests ---------------------------------------------------------------------------------- */

static void wasi_command_prints_argv_and_exits_with_its_code(void **state) {
  size_t len;
  uint8_t *bytes = c_program(&len);
  world w;
  qw_func *start;
  uint64_t slots[1] = {0};
  const qw_trap *t;
  (void)state;
  SKIP_IF_NULL(bytes, "clang-19 --target=wasm32-wasi");
  world_open(&w, bytes, len, 1);
  start = qw_instance_func(w.inst, "_start");
  assert_non_null(start);
  t = qw_func_call_raw(start, slots);
  assert_ptr_equal(t, QW_TRAP_EXIT);
  assert_int_equal(qw_instance_exit_code(w.inst), 7);
  assert_non_null(strstr(captured, "hello from wasi, argc=3\n"));
  assert_non_null(strstr(captured, "argv[0]=prog\n"));
  assert_non_null(strstr(captured, "argv[2]=be ta\n"));
  assert_non_null(strstr(captured, "env HOME=(none)\n"));
  assert_non_null(strstr(captured, "fopen=denied\n"));
  assert_non_null(strstr(captured, "clock=ok\n"));
  assert_non_null(strstr(captured, "random=ok\n"));
  assert_string_equal(captured_err, "to stderr\n");
  assert_null(strstr(captured, "to stderr"));
  world_close(&w);
  free(bytes);
}

static void wasi_fd_write_without_sink_goes_to_log_escaped(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 0);
  qb_log_set(capture_log, NULL, QB_INFO);
  memcpy(w.mem + 100, "two\nlines\n", 10);
  put32(&w, 0, 100);
  put32(&w, 4, 10);
  assert_int_equal(call(&w, "fd_write", 4, 1, 0, 1, 16), 0);
  assert_int_equal(get32(&w, 16), 10);
  qb_log_set(NULL, NULL, QB_INFO);
  assert_non_null(strstr(captured, "wasi fd 1: two\\nlines\n"));
  assert_int_equal(nlines, 1);
  world_close(&w);
  free(bytes);
}

static void wasi_log_output_is_rate_limited(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  int i;
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 0);
  qb_log_set(capture_log, NULL, QB_INFO);
  memcpy(w.mem + 100, "spam\n", 5);
  put32(&w, 0, 100);
  put32(&w, 4, 5);
  for (i = 0; i < 1000; i++)
    assert_int_equal(call(&w, "fd_write", 4, 2, 0, 1, 16), 0);
  qb_log_set(NULL, NULL, QB_INFO);
  assert_in_range(nlines, 1, 100); /* a burst, then a trickle; never all 1000 */
  world_close(&w);
  free(bytes);
}

static void wasi_pointers_outside_memory_are_efault(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 1);
  /* iovec array past the end */
  assert_int_equal(call(&w, "fd_write", 4, 1, 65536 - 4, 1, 16), 21);
  /* a buffer that runs past the end */
  put32(&w, 0, 65530);
  put32(&w, 4, 100);
  assert_int_equal(call(&w, "fd_write", 4, 1, 0, 1, 16), 21);
  /* a huge iovec count (count * 8 overflows 32 bits) */
  assert_int_equal(call(&w, "fd_write", 4, 1, 0, 0x20000001, 16), 21);
  assert_int_equal(call(&w, "random_get", 2, 65500, 100), 21);
  assert_int_equal(call(&w, "random_get", 2, -1, 2), 21);
  assert_int_equal(call(&w, "clock_time_get", 2, 1, 65532), 21);
  assert_int_equal(call(&w, "args_sizes_get", 2, 0, 65535), 21);
  assert_int_equal(call(&w, "fd_fdstat_get", 2, 1, 65530), 21);
  assert_int_equal(ncaptured, 0); /* nothing was written */
  world_close(&w);
  free(bytes);
}

static void wasi_args_environment_clock_and_random_work(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  uint64_t t1, t2;
  int i, nonzero = 0;
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 1);
  assert_int_equal(call(&w, "args_sizes_get", 2, 0, 4), 0);
  assert_int_equal(get32(&w, 0), 3);
  assert_int_equal(get32(&w, 4), strlen("prog") + strlen("alpha") + strlen("be ta") + 3);
  assert_int_equal(call(&w, "args_get", 2, 100, 200), 0);
  assert_int_equal(get32(&w, 100), 200);
  assert_string_equal((char *)w.mem + get32(&w, 104), "alpha");
  assert_string_equal((char *)w.mem + get32(&w, 108), "be ta");
  put32(&w, 0, 99), put32(&w, 4, 99);
  assert_int_equal(call(&w, "environ_sizes_get", 2, 0, 4), 0);
  assert_int_equal(get32(&w, 0), 0);
  assert_int_equal(get32(&w, 4), 0);
  assert_int_equal(call(&w, "clock_time_get", 2, 1, 8), 0);
  memcpy(&t1, w.mem + 8, 8);
  assert_int_equal(call(&w, "clock_time_get", 2, 1, 8), 0);
  memcpy(&t2, w.mem + 8, 8);
  assert_true(t2 >= t1 && t1 > 0);
  assert_int_equal(call(&w, "clock_time_get", 2, 99, 8), 28); /* EINVAL: no such clock */
  memset(w.mem + 1000, 0, 64);
  assert_int_equal(call(&w, "random_get", 2, 1000, 64), 0);
  for (i = 0; i < 64; i++)
    nonzero += w.mem[1000 + i] != 0;
  assert_true(nonzero > 32);
  world_close(&w);
  free(bytes);
}

static void wasi_stdio_is_a_char_device_and_files_do_not_exist(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 1);
  assert_int_equal(call(&w, "fd_fdstat_get", 2, 1, 0), 0);
  assert_int_equal(w.mem[0], 2);                            /* CHARACTER_DEVICE */
  assert_int_equal(call(&w, "fd_fdstat_get", 2, 3, 0), 8);  /* EBADF */
  assert_int_equal(call(&w, "fd_prestat_get", 2, 3, 0), 8); /* no preopened directories */
  assert_int_equal(call(&w, "path_open", 0), 8);
  assert_int_equal(call(&w, "poll_oneoff", 0), 52); /* ENOSYS */
  assert_int_equal(call(&w, "fd_seek", 1, 1), 70);  /* ESPIPE */
  assert_int_equal(call(&w, "fd_seek", 1, 9), 8);
  assert_int_equal(call(&w, "fd_write", 4, 5, 0, 0, 16), 8); /* only fd 1 and 2 write */
  world_close(&w);
  free(bytes);
}

static void wasi_proc_exit_ends_the_call_with_its_code(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  qw_func *f;
  qw_val arg = qw_i32(42);
  qb_err err;
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 1);
  f = qw_instance_func(w.inst, "exit");
  assert_int_equal(qw_func_call(f, &arg, 1, NULL, 0, &err), qw_trap_code(QW_TRAP_EXIT));
  assert_string_equal(err.msg, qw_trap_message(QW_TRAP_EXIT));
  assert_int_equal(qw_instance_exit_code(w.inst), 42);
  /* the instance stays usable */
  assert_int_equal(call(&w, "poll_oneoff", 0), 52);
  world_close(&w);
  free(bytes);
}

static void wasi_output_sink_applies_to_instances_linked_after_it(void **state) {
  size_t len;
  uint8_t *bytes = probe_module(&len);
  world w;
  qw_instance *second;
  qb_err err;
  uint8_t *mem2;
  size_t n2;
  qw_func *f;
  qw_val args[4];
  qw_val res[1];
  (void)state;
  SKIP_IF_NULL(bytes, "wat2wasm");
  world_open(&w, bytes, len, 0); /* first instance: the log */
  qw_wasi_set_output(w.im, capture_sink, NULL);
  assert_int_equal(qw_instance_new(w.m, w.im, NULL, &second, &err), QB_OK);
  mem2 = qw_instance_memory(second, &n2);
  memcpy(mem2 + 100, "via sink", 8);
  memcpy(mem2, &(uint32_t){100}, 4);
  memcpy(mem2 + 4, &(uint32_t){8}, 4);
  f = qw_instance_func(second, "fd_write");
  args[0] = qw_i32(1), args[1] = qw_i32(0), args[2] = qw_i32(1), args[3] = qw_i32(16);
  assert_int_equal(qw_func_call(f, args, 4, res, 1, &err), QB_OK);
  assert_int_equal(res[0].of.i32, 0);
  assert_string_equal(captured, "via sink");
  /* the first instance still logs (no sink output) */
  reset_capture();
  memcpy(w.mem + 100, "via log", 7);
  put32(&w, 0, 100);
  put32(&w, 4, 7);
  assert_int_equal(call(&w, "fd_write", 4, 1, 0, 1, 16), 0);
  assert_int_equal(ncaptured, 0);
  qw_instance_free(second);
  world_close(&w);
  free(bytes);
}

static void wasi_setup_out_of_memory_fails_cleanly_at_every_allocation(void **state) {
  uint64_t k;
  (void)state;
  for (k = 1; k < 10000; k++) {
    qw_imports *im;
    qb_err err;
    qb_code rc;
    assert_int_equal(qw_imports_new(&im, &err), QB_OK);
    qb_alloc_fail_after(k);
    qw_wasi_set_output(im, capture_sink, NULL); /* may fail silently: then no sink */
    rc = qw_imports_add_wasi(im, 3, test_argv, &err);
    qb_alloc_fail_after(0);
    qw_imports_free(im); /* LeakSanitizer checks that nothing is left behind */
    if (rc == QB_OK)
      break;
    assert_int_equal(rc, QB_NOMEM);
  }
  assert_true(k > 1 && k < 10000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(wasi_command_prints_argv_and_exits_with_its_code),
      cmocka_unit_test(wasi_fd_write_without_sink_goes_to_log_escaped),
      cmocka_unit_test(wasi_log_output_is_rate_limited),
      cmocka_unit_test(wasi_pointers_outside_memory_are_efault),
      cmocka_unit_test(wasi_args_environment_clock_and_random_work),
      cmocka_unit_test(wasi_stdio_is_a_char_device_and_files_do_not_exist),
      cmocka_unit_test(wasi_proc_exit_ends_the_call_with_its_code),
      cmocka_unit_test(wasi_output_sink_applies_to_instances_linked_after_it),
      cmocka_unit_test(wasi_setup_out_of_memory_fails_cleanly_at_every_allocation),
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
