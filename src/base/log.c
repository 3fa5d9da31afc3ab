/* log.c: one line per event through an installable sink; silent until a program installs one.
** The level is checked before anything is formatted. Also the clocks. */
#include "base.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static qb_log_fn sink;
static void *sink_ud;
static qb_level min_level = QB_INFO;

static _Thread_local qb_log_tag_fn tag_fn;
static _Thread_local void *tag_arg;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

const char *qb_level_name(qb_level l) { return (unsigned)l <= QB_ERROR ? level_names[l] : "?"; }

void qb_log_set(qb_log_fn fn, void *ud, qb_level level) {
  sink = fn;
  sink_ud = ud;
  min_level = level;
}

int qb_log_enabled(qb_level level) { return sink && level >= min_level; }

void qb_log_set_tag(qb_log_tag_fn fn, void *arg) {
  tag_fn = fn;
  tag_arg = arg;
}

void qb_log(qb_level level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  size_t i;
  if (!qb_log_enabled(level)) return;
  size_t at = 0;
  const char *tag = tag_fn ? tag_fn(tag_arg) : NULL;
  if (tag && *tag) {
    int k = snprintf(line, sizeof line, "[request %.128s] ", tag);
    at = k > 0 && (size_t)k < sizeof line ? (size_t)k : 0;
  }
  va_start(ap, fmt);
  vsnprintf(line + at, sizeof line - at, fmt, ap);
  va_end(ap);
  for (i = 0; line[i]; i++) /* one event is one line */
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  sink(sink_ud, level, line);
}

void qb_log_stderr(void *node, qb_level level, const char *line) {
  struct timespec ts;
  struct tm tm;
  char when[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  if (node)
    fprintf(stderr, "%s.%03ldZ [%s] %s: %s\n", when, ts.tv_nsec / 1000000L, (const char *)node,
            qb_level_name(level), line);
  else
    fprintf(stderr, "%s.%03ldZ %s: %s\n", when, ts.tv_nsec / 1000000L, qb_level_name(level), line);
}

uint64_t qb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t qb_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
