/* wasi.c: the WASI preview1 sandbox (DESIGN.md §4), as host functions on a qw_imports list.
** No files, no network, no environment: fd_write to fd 1/2 goes to the log (rate-limited, one
** line per write, control characters escaped) or to the embedder's sink; clocks, random_get and
** args work; proc_exit ends the call with QW_TRAP_EXIT; every other function returns ENOSYS (52)
** or EBADF (8). Invariant: every guest pointer goes through span() before it is touched, so a
** bad pointer is EFAULT (21), never a host access outside the guest's memory. */
#include "wasm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

/* WASI errno values (preview1 `errno` enum). */
enum {
  E_SUCCESS = 0,
  E_BADF = 8,
  E_FAULT = 21,
  E_INVAL = 28,
  E_IO = 29,
  E_NOSYS = 52,
  E_SPIPE = 70
};

#define WASI_MODULE "wasi_snapshot_preview1"
#define LOG_BURST 20     /* lines of guest output logged back to back before limiting */
#define LOG_PER_SEC 10   /* then this many per second */
#define LOG_LINE_MAX 800 /* bytes of one write kept in its log line */

/* One context per qw_imports_add_wasi / qw_wasi_set_output call, shared by every instance
** linked against it (possibly on several threads: the rate limiter has a mutex). The list owns
** the newest one (im->wasi, released by im->wasi_free); older ones hang off it through PREV, so
** instances linked before a qw_wasi_set_output keep theirs until the list is freed. */
typedef struct ctx {
  struct ctx *prev;
  int argc;
  char **argv;           /* argc copies */
  size_t argv_bytes;     /* sum of strlen+1 */
  qw_wasi_output_fn out; /* NULL: the log */
  void *out_ud;
  pthread_mutex_t lock; /* guards the fields below */
  double tokens;        /* lines that may be logged now */
  uint64_t last_ns;
  uint64_t suppressed; /* lines dropped since the last logged one */
} ctx;

static void ctx_free(void *p) {
  ctx *c = p, *prev;
  int i;
  for (; c; c = prev) {
    prev = c->prev;
    for (i = 0; i < c->argc; i++)
      qb_free(c->argv[i], strlen(c->argv[i]) + 1);
    qb_free(c->argv, (size_t)c->argc * sizeof(char *));
    pthread_mutex_destroy(&c->lock);
    qb_free(c, sizeof *c);
  }
}

static ctx *ctx_new(int argc, const char *const *argv, qw_wasi_output_fn out, void *out_ud) {
  ctx *c = qb_calloc(1, sizeof *c);
  int i;
  if (!c)
    return NULL;
  pthread_mutex_init(&c->lock, NULL);
  c->out = out;
  c->out_ud = out_ud;
  c->tokens = LOG_BURST;
  c->last_ns = qb_now_ns();
  if (argc < 0 || !argv)
    argc = 0;
  if (argc && !(c->argv = qb_calloc((size_t)argc, sizeof(char *))))
    goto fail;
  for (i = 0; i < argc; i++) {
    const char *s = argv[i] ? argv[i] : "";
    size_t n = strlen(s) + 1;
    if (!(c->argv[i] = qb_malloc(n)))
      goto fail;
    memcpy(c->argv[i], s, n);
    c->argc = i + 1;
    c->argv_bytes += n;
  }
  return c;
fail: /* c->argc counts the copies made so far */
  for (i = 0; i < c->argc; i++)
    qb_free(c->argv[i], strlen(c->argv[i]) + 1);
  qb_free(c->argv, (size_t)argc * sizeof(char *));
  pthread_mutex_destroy(&c->lock);
  qb_free(c, sizeof *c);
  return NULL;
}

/* Make C the list's newest context (the older one, if any, is kept alive behind it). */
static void ctx_attach(qw_imports *im, ctx *c) {
  if (im->wasi && im->wasi_free != ctx_free) { /* someone else's state: never ours to free */
    c->prev = NULL;
  } else {
    c->prev = im->wasi;
  }
  im->wasi = c;
  im->wasi_free = ctx_free;
}

/* ---- guest memory ------------------------------------------------------------------------- */

#define A32(i) ((uint32_t)args[i])

/* Host pointer to LEN bytes at guest address PTR in CALLER's memory 0, or NULL when any of
** them is outside it (or there is no memory). */
static uint8_t *span(qw_instance *caller, uint32_t ptr, uint64_t len) {
  size_t size = 0;
  uint8_t *base = caller ? qw_instance_memory(caller, &size) : NULL;
  if (!base || (uint64_t)ptr + len > (uint64_t)size)
    return NULL;
  return base + ptr;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
static void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)v);
  put_u32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define RET(e) (results[0] = (uint32_t)(e), (const qw_trap *)NULL)

/* ---- output ------------------------------------------------------------------------------- */

/* One log line for one write: a trailing newline dropped, control bytes escaped, cut at
** LOG_LINE_MAX. The rate limit is a token bucket per context. */
static void log_output(ctx *c, int fd, const uint8_t *p, size_t n) {
  char line[LOG_LINE_MAX * 4 + 16];
  size_t i, o = 0;
  uint64_t now, dropped = 0;
  int ok;
  if (!qb_log_enabled(QB_INFO))
    return;
  pthread_mutex_lock(&c->lock);
  now = qb_now_ns();
  c->tokens += (double)(now - c->last_ns) * LOG_PER_SEC / 1e9;
  if (c->tokens > LOG_BURST)
    c->tokens = LOG_BURST;
  c->last_ns = now;
  ok = c->tokens >= 1.0;
  if (ok) {
    c->tokens -= 1.0;
    dropped = c->suppressed;
    c->suppressed = 0;
  } else {
    c->suppressed++;
  }
  pthread_mutex_unlock(&c->lock);
  if (!ok)
    return;
  if (dropped)
    qb_log(QB_INFO, "wasi: %llu lines of guest output suppressed (rate limit)",
           (unsigned long long)dropped);
  if (n && p[n - 1] == '\n')
    n--;
  for (i = 0; i < n && i < LOG_LINE_MAX; i++) {
    uint8_t ch = p[i];
    if (ch == '\n')
      line[o++] = '\\', line[o++] = 'n';
    else if (ch == '\r')
      line[o++] = '\\', line[o++] = 'r';
    else if (ch == '\t')
      line[o++] = '\\', line[o++] = 't';
    else if (ch == '\\')
      line[o++] = '\\', line[o++] = '\\';
    else if (ch < 0x20 || ch == 0x7f)
      o += (size_t)snprintf(line + o, 5, "\\x%02x", ch);
    else
      line[o++] = (char)ch;
  }
  if (n > LOG_LINE_MAX)
    memcpy(line + o, "...", 3), o += 3;
  line[o] = 0;
  qb_log(QB_INFO, "wasi fd %d: %s", fd, line);
}

static const qw_trap *fd_write(void *ud, qw_instance *caller, const uint64_t *args,
                               uint64_t *results) {
  ctx *c = ud;
  uint32_t fd = A32(0), iovs = A32(1), n = A32(2), i;
  uint8_t *v, *nw;
  uint64_t total = 0;
  if (fd != 1 && fd != 2)
    return RET(E_BADF);
  if (!(v = span(caller, iovs, (uint64_t)n * 8)) || !(nw = span(caller, A32(3), 4)))
    return RET(E_FAULT);
  for (i = 0; i < n; i++) /* check every buffer before writing any */
    if (!span(caller, get_u32(v + 8 * i), get_u32(v + 8 * i + 4)))
      return RET(E_FAULT);
  if (!c->out && n > 1) {
    /* gather into one log line */
    uint8_t buf[LOG_LINE_MAX + 1];
    size_t o = 0;
    for (i = 0; i < n; i++) {
      uint32_t len = get_u32(v + 8 * i + 4);
      const uint8_t *p = span(caller, get_u32(v + 8 * i), len);
      size_t k = len < sizeof buf - o ? len : sizeof buf - o;
      memcpy(buf + o, p, k);
      o += k;
      total += len;
    }
    if (total)
      log_output(c, (int)fd, buf, o);
  } else {
    for (i = 0; i < n; i++) {
      uint32_t len = get_u32(v + 8 * i + 4);
      const uint8_t *p = span(caller, get_u32(v + 8 * i), len);
      if (!len)
        continue;
      if (c->out)
        c->out(c->out_ud, (int)fd, (const char *)p, len);
      else
        log_output(c, (int)fd, p, len);
      total += len;
    }
  }
  put_u32(nw, (uint32_t)total);
  return RET(E_SUCCESS);
}

static const qw_trap *fd_read(void *ud, qw_instance *caller, const uint64_t *args,
                              uint64_t *results) {
  uint8_t *nr;
  if (A32(0) != 0)
    return RET(E_BADF);
  if (!span(caller, A32(1), (uint64_t)A32(2) * 8) || !(nr = span(caller, A32(3), 4)))
    return RET(E_FAULT);
  put_u32(nr, 0); /* stdin is empty: end of file */
  return RET(E_SUCCESS);
}

/* ---- args, environment, clocks, random ---------------------------------------------------- */

static const qw_trap *args_sizes_get(void *ud, qw_instance *caller, const uint64_t *args,
                                     uint64_t *results) {
  ctx *c = ud;
  uint8_t *pc = span(caller, A32(0), 4), *pb = span(caller, A32(1), 4);
  if (!pc || !pb)
    return RET(E_FAULT);
  put_u32(pc, (uint32_t)c->argc);
  put_u32(pb, (uint32_t)c->argv_bytes);
  return RET(E_SUCCESS);
}

static const qw_trap *args_get(void *ud, qw_instance *caller, const uint64_t *args,
                               uint64_t *results) {
  ctx *c = ud;
  uint32_t at = A32(1);
  uint8_t *pv = span(caller, A32(0), (uint64_t)c->argc * 4), *pb = span(caller, at, c->argv_bytes);
  int i;
  if (!pv || !pb)
    return RET(E_FAULT);
  for (i = 0; i < c->argc; i++) {
    size_t n = strlen(c->argv[i]) + 1;
    put_u32(pv + 4 * i, at);
    memcpy(pb, c->argv[i], n);
    pb += n;
    at += (uint32_t)n;
  }
  return RET(E_SUCCESS);
}

static const qw_trap *environ_sizes_get(void *ud, qw_instance *caller, const uint64_t *args,
                                        uint64_t *results) {
  uint8_t *pc = span(caller, A32(0), 4), *pb = span(caller, A32(1), 4);
  if (!pc || !pb)
    return RET(E_FAULT);
  put_u32(pc, 0); /* no environment in the sandbox */
  put_u32(pb, 0);
  return RET(E_SUCCESS);
}

static const qw_trap *environ_get(void *ud, qw_instance *caller, const uint64_t *args,
                                  uint64_t *results) {
  return RET(E_SUCCESS); /* nothing to write */
}

static clockid_t clock_of(uint32_t id, int *ok) {
  *ok = 1;
  switch (id) {
  case 0:
    return CLOCK_REALTIME;
  case 1:
    return CLOCK_MONOTONIC;
  case 2:
    return CLOCK_PROCESS_CPUTIME_ID;
  case 3:
    return CLOCK_THREAD_CPUTIME_ID;
  default:
    *ok = 0;
    return CLOCK_MONOTONIC;
  }
}

static const qw_trap *clock_res_get(void *ud, qw_instance *caller, const uint64_t *args,
                                    uint64_t *results) {
  struct timespec ts;
  int ok;
  clockid_t id = clock_of(A32(0), &ok);
  uint8_t *p = span(caller, A32(1), 8);
  if (!ok)
    return RET(E_INVAL);
  if (!p)
    return RET(E_FAULT);
  if (clock_getres(id, &ts))
    return RET(E_INVAL);
  put_u64(p, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
  return RET(E_SUCCESS);
}

static const qw_trap *clock_time_get(void *ud, qw_instance *caller, const uint64_t *args,
                                     uint64_t *results) {
  struct timespec ts;
  int ok;
  clockid_t id = clock_of(A32(0), &ok);
  uint8_t *p = span(caller, A32(2), 8); /* args[1] is the precision, which we ignore */
  if (!ok)
    return RET(E_INVAL);
  if (!p)
    return RET(E_FAULT);
  if (clock_gettime(id, &ts))
    return RET(E_INVAL);
  put_u64(p, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
  return RET(E_SUCCESS);
}

static const qw_trap *random_get(void *ud, qw_instance *caller, const uint64_t *args,
                                 uint64_t *results) {
  uint32_t len = A32(1);
  uint8_t *p = span(caller, A32(0), len);
  size_t done = 0;
  if (!p)
    return RET(E_FAULT);
  while (done < len) {
    ssize_t r = getrandom(p + done, len - done, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return RET(E_IO);
    }
    done += (size_t)r;
  }
  return RET(E_SUCCESS);
}

/* ---- process ------------------------------------------------------------------------------ */

static const qw_trap *proc_exit(void *ud, qw_instance *caller, const uint64_t *args,
                                uint64_t *results) {
  if (caller)
    caller->exit_code = (int)A32(0);
  return QW_TRAP_EXIT;
}

static const qw_trap *sched_yield_(void *ud, qw_instance *caller, const uint64_t *args,
                                   uint64_t *results) {
  return RET(E_SUCCESS);
}

/* ---- file descriptors 0..2 ---------------------------------------------------------------- */

static const qw_trap *fd_close(void *ud, qw_instance *caller, const uint64_t *args,
                               uint64_t *results) {
  return RET(A32(0) <= 2 ? E_SUCCESS : E_BADF); /* closing stdio is allowed and changes nothing */
}

static const qw_trap *fd_seek(void *ud, qw_instance *caller, const uint64_t *args,
                              uint64_t *results) {
  if (A32(0) > 2)
    return RET(E_BADF);
  if (!span(caller, A32(3), 8))
    return RET(E_FAULT);
  return RET(E_SPIPE); /* a character device cannot seek */
}

static const qw_trap *fd_tell(void *ud, qw_instance *caller, const uint64_t *args,
                              uint64_t *results) {
  if (A32(0) > 2)
    return RET(E_BADF);
  return RET(E_SPIPE);
}

/* fdstat: u8 filetype, u16 flags at 2, u64 rights_base at 8, u64 rights_inheriting at 16. */
static const qw_trap *fd_fdstat_get(void *ud, qw_instance *caller, const uint64_t *args,
                                    uint64_t *results) {
  enum {
    FILETYPE_CHARACTER_DEVICE = 2,
    RIGHT_FD_READ = 1 << 1,
    RIGHT_FD_WRITE = 1 << 6,
    RIGHT_POLL = 1 << 27
  };
  uint32_t fd = A32(0);
  uint8_t *p;
  if (fd > 2)
    return RET(E_BADF);
  if (!(p = span(caller, A32(1), 24)))
    return RET(E_FAULT);
  memset(p, 0, 24);
  p[0] = FILETYPE_CHARACTER_DEVICE;
  put_u64(p + 8, (fd == 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE) | RIGHT_POLL);
  return RET(E_SUCCESS);
}

/* Any other function taking an fd first: stdio cannot do it, other fds do not exist. */
static const qw_trap *fd_other(void *ud, qw_instance *caller, const uint64_t *args,
                               uint64_t *results) {
  return RET(A32(0) <= 2 ? E_NOSYS : E_BADF);
}

/* fd_prestat_get and the path_* functions: there are no preopened directories. */
static const qw_trap *no_fd(void *ud, qw_instance *caller, const uint64_t *args,
                            uint64_t *results) {
  return RET(E_BADF);
}

static const qw_trap *nosys(void *ud, qw_instance *caller, const uint64_t *args,
                            uint64_t *results) {
  return RET(E_NOSYS);
}

/* ---- the import table --------------------------------------------------------------------- */

/* Signatures as "params:results", i = i32, I = i64. */
static const struct {
  const char *name, *sig;
  qw_host_fn fn;
} funcs[] = {
    {"args_get", "ii:i", args_get},
    {"args_sizes_get", "ii:i", args_sizes_get},
    {"environ_get", "ii:i", environ_get},
    {"environ_sizes_get", "ii:i", environ_sizes_get},
    {"clock_res_get", "ii:i", clock_res_get},
    {"clock_time_get", "iIi:i", clock_time_get},
    {"fd_advise", "iIIi:i", fd_other},
    {"fd_allocate", "iII:i", fd_other},
    {"fd_close", "i:i", fd_close},
    {"fd_datasync", "i:i", fd_other},
    {"fd_fdstat_get", "ii:i", fd_fdstat_get},
    {"fd_fdstat_set_flags", "ii:i", fd_other},
    {"fd_fdstat_set_rights", "iII:i", fd_other},
    {"fd_filestat_get", "ii:i", fd_other},
    {"fd_filestat_set_size", "iI:i", fd_other},
    {"fd_filestat_set_times", "iIIi:i", fd_other},
    {"fd_pread", "iiiIi:i", fd_other},
    {"fd_prestat_get", "ii:i", no_fd},
    {"fd_prestat_dir_name", "iii:i", no_fd},
    {"fd_pwrite", "iiiIi:i", fd_other},
    {"fd_read", "iiii:i", fd_read},
    {"fd_readdir", "iiiIi:i", fd_other},
    {"fd_renumber", "ii:i", fd_other},
    {"fd_seek", "iIii:i", fd_seek},
    {"fd_sync", "i:i", fd_other},
    {"fd_tell", "ii:i", fd_tell},
    {"fd_write", "iiii:i", fd_write},
    {"path_create_directory", "iii:i", no_fd},
    {"path_filestat_get", "iiiii:i", no_fd},
    {"path_filestat_set_times", "iiiiIIi:i", no_fd},
    {"path_link", "iiiiiii:i", no_fd},
    {"path_open", "iiiiiIIii:i", no_fd},
    {"path_readlink", "iiiiii:i", no_fd},
    {"path_remove_directory", "iii:i", no_fd},
    {"path_rename", "iiiiii:i", no_fd},
    {"path_symlink", "iiiii:i", no_fd},
    {"path_unlink_file", "iii:i", no_fd},
    {"poll_oneoff", "iiii:i", nosys},
    {"proc_exit", "i:", proc_exit},
    {"proc_raise", "i:i", nosys},
    {"sched_yield", ":i", sched_yield_},
    {"random_get", "ii:i", random_get},
    {"sock_accept", "iii:i", no_fd},
    {"sock_recv", "iiiiii:i", no_fd},
    {"sock_send", "iiiii:i", no_fd},
    {"sock_shutdown", "ii:i", no_fd},
};

static qb_code add_all(qw_imports *im, ctx *c, qb_err *err) {
  size_t k;
  for (k = 0; k < QB_COUNTOF(funcs); k++) {
    uint8_t params[16], results[2];
    uint32_t np = 0, nr = 0;
    const char *s;
    qb_code rc;
    for (s = funcs[k].sig; *s != ':'; s++)
      params[np++] = *s == 'I' ? QW_I64 : QW_I32;
    for (s++; *s; s++)
      results[nr++] = QW_I32;
    rc = qw_imports_add_host(im, WASI_MODULE, funcs[k].name, params, np, results, nr, funcs[k].fn,
                             c, err);
    if (rc)
      return rc;
  }
  return QB_OK;
}

qb_code qw_imports_add_wasi(qw_imports *im, int argc, const char *const *argv, qb_err *err) {
  ctx *c;
  qb_code rc;
  if (!im)
    return qb_fail(err, QB_INVAL, "wasi: no import list");
  if (!(c = ctx_new(argc, argv, im->wasi_out, im->wasi_out_ud)))
    return qb_fail(err, QB_NOMEM, "wasi: out of memory");
  ctx_attach(im, c); /* owned by the list from here, even if adding the functions fails */
  if ((rc = add_all(im, c, err)))
    qb_wrap(err, "wasi: ");
  return rc;
}

void qw_wasi_set_output(qw_imports *im, qw_wasi_output_fn fn, void *ud) {
  ctx *old, *c;
  if (!im)
    return;
  im->wasi_out = fn;
  im->wasi_out_ud = ud;
  old = im->wasi_free == ctx_free ? im->wasi : NULL;
  if (!old)
    return; /* qw_imports_add_wasi picks the sink up */
  /* WASI already on the list: a new context with the same argv and the functions defined again
  ** (later entries win), so instances linked before this call keep their sink. */
  if (!(c = ctx_new(old->argc, (const char *const *)old->argv, fn, ud)))
    return;
  ctx_attach(im, c);
  (void)add_all(im, c, NULL);
}
