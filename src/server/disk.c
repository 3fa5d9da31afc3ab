/* disk.c: the flood-stage disk watermark (issue 13 #6), as Elasticsearch's: when the data
** directory's filesystem is fuller than the flood stage (default 95 %), requests that add data
** (document writes, bulk, index creation, mappings, UDF deploys) answer 429
** cluster_block_exception, while reads and deletes go on; the block lifts by itself once usage
** falls below the high watermark (default 90 %). The refresher thread checks once per refresh
** interval. Invariant: `blocked` is only written by qs__disk_check (one thread) and read with
** relaxed atomics; a request racing with a change sees either state, both of them safe. */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "internal.h"

void qs__disk_init(qs_server *s, const qs_options *opt) {
  qs__disk *d = &s->disk;
  d->flood_pct = opt && opt->disk_flood_stage_pct ? opt->disk_flood_stage_pct : 95;
  d->high_pct = opt && opt->disk_high_pct ? opt->disk_high_pct : 90;
  if (d->high_pct > d->flood_pct) d->high_pct = d->flood_pct;
}

void qs__disk_check(qs_server *s) {
  qs__disk *d = &s->disk;
  struct statvfs v;
  if (statvfs(s->data_dir, &v) || !v.f_blocks) return;
  /* as df: the space a non-root writer can use */
  uint64_t total = (uint64_t)v.f_blocks, avail = (uint64_t)v.f_bavail;
  uint64_t used_pm = total > avail ? (total - avail) * 1000 / total : 0; /* per mille */
  __atomic_store_n(&d->used_pm, used_pm, __ATOMIC_RELAXED);
  int was = __atomic_load_n(&d->blocked, __ATOMIC_RELAXED);
  if (!was && used_pm >= (uint64_t)d->flood_pct * 10) {
    __atomic_store_n(&d->blocked, 1, __ATOMIC_RELAXED);
    qb_log(QB_WARN, "disk usage %llu.%llu%% of %s exceeds the flood-stage watermark (%u%%): writes "
           "are blocked until it falls below %u%%", (unsigned long long)(used_pm / 10),
           (unsigned long long)(used_pm % 10), s->data_dir, d->flood_pct, d->high_pct);
  } else if (was && used_pm < (uint64_t)d->high_pct * 10) {
    __atomic_store_n(&d->blocked, 0, __ATOMIC_RELAXED);
    qb_log(QB_INFO, "disk usage %llu.%llu%% of %s is below the high watermark (%u%%): writes are "
           "allowed again", (unsigned long long)(used_pm / 10), (unsigned long long)(used_pm % 10),
           s->data_dir, d->high_pct);
  }
}

/* The handlers that add data; reads, refreshes and deletes stay open under the block. */
static int adds_data(qs_handler h) {
  return h == qs__h_bulk || h == qs__h_doc_put || h == qs__h_doc_create || h == qs__h_doc_update ||
         h == qs__h_index_create || h == qs__h_mapping_put || h == qs__h_udf_put ||
         h == qs__h_udf_rollback;
}

int qs__disk_refuse(qs_req *r) {
  qs__disk *d = &r->srv->disk;
  if (!__atomic_load_n(&d->blocked, __ATOMIC_RELAXED) || !adds_data(qs__routes[r->route].handler))
    return 0;
  uint64_t pm = __atomic_load_n(&d->used_pm, __ATOMIC_RELAXED);
  qs__replica_blocked(r, "disk usage exceeded the flood-stage watermark"); /* a primary steps down */
  qs__reply_error(r, 429, "cluster_block_exception",
                  "blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, "
                  "index has read-only-allow-delete block]; disk usage %llu.%llu%% of the data "
                  "directory exceeds %u%% (lifts below %u%%)", (unsigned long long)(pm / 10),
                  (unsigned long long)(pm % 10), d->flood_pct, d->high_pct);
  return 1;
}
