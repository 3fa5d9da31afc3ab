/* persist.c: segment files and the commit file, so opening an index loads its segments and
** replays only the SQLite tail instead of re-indexing everything. A segment file is written
** once (tmp + fsync + rename) and never changed; the commit file "segments" names the live
** ones and the watermark (every document with _seq_no <= watermark is in them). Files on disk
** are untrusted: a bad magic, size, checksum or any out-of-range offset makes the file unusable
** (the caller then falls back to a full replay), never a crash.
** Invariant: a segment read back is byte-for-byte the segment that was written. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "QISEG002"
#define COMMIT_HEAD "quidditch-segments 1"

typedef struct hdr {
  char magic[8];
  uint32_t version, seg_no, max_doc, nfields;
  uint32_t sz_term, sz_skip, endian, pad;
  uint64_t payload_len, checksum;
} hdr;

static uint64_t checksum(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull, w;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct out {
  qb_buf b;
} out;

static void put(qb_buf *b, const void *p, size_t n) {
  static const uint8_t zero[8];
  qb_buf_append(b, p, n);
  if (n % 8) qb_buf_append(b, zero, 8 - n % 8); /* keep every array 8-byte aligned */
}

static void put_u64(qb_buf *b, uint64_t v) { put(b, &v, 8); }

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static qb_code write_file(const char *dir, const char *name, const void *a, size_t an,
                          const void *b, size_t bn, qb_err *err) {
  char tmp[4400], path[4400];
  int fd;
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
    return qb_fail(err, QB_IO, "cannot create %s: %s", tmp, strerror(errno));
  if (write_all(fd, a, an) || (bn && write_all(fd, b, bn)) || fsync(fd)) {
    qb_code rc = qb_fail(err, QB_IO, "cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return rc;
  }
  close(fd);
  if (rename(tmp, path)) {
    unlink(tmp);
    return qb_fail(err, QB_IO, "cannot rename %s: %s", tmp, strerror(errno));
  }
  if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    fsync(fd);
    close(fd);
  }
  return QB_OK;
}

qb_code qi__seg_write(const qi__seg *s, const char *dir, qb_err *err) {
  qb_buf b;
  hdr h;
  uint32_t f;
  char name[64];
  size_t nd = s->max_doc;
  qb_code rc;
  qb_buf_init(&b);
  put_u64(&b, s->id_off[nd]);
  put(&b, s->id_off, (nd + 1) * sizeof *s->id_off);
  put(&b, s->ids, s->id_off[nd]);
  put(&b, s->seq, nd * sizeof *s->seq);
  put(&b, s->ver, nd * sizeof *s->ver);
  for (f = 0; f < s->nfields; f++) {
    const qi__fseg *fs = &s->f[f];
    uint64_t nsk = 0, nords = fs->ord_off ? fs->ord_off[nd] : 0;
    uint8_t flags[8] = {fs->present, (uint8_t)fs->dv, fs->norms != NULL, fs->i64 != NULL,
                        fs->f64 != NULL, fs->ord_off != NULL, fs->pos != NULL, 0};
    uint32_t t;
    for (t = 0; t < fs->nterms; t++) nsk += fs->terms[t].nskips;
    put(&b, flags, 8);
    put_u64(&b, fs->nterms);
    put_u64(&b, fs->nterms ? fs->term_off[fs->nterms] : 0);
    put_u64(&b, fs->post_len);
    put_u64(&b, nsk);
    put_u64(&b, fs->doc_count);
    put_u64(&b, fs->sum_ttf);
    put_u64(&b, fs->sum_df);
    put_u64(&b, nords);
    put_u64(&b, fs->pos_len);
    if (fs->nterms) {
      put(&b, fs->term_off, ((size_t)fs->nterms + 1) * sizeof *fs->term_off);
      put(&b, fs->term_bytes, fs->term_off[fs->nterms]);
      put(&b, fs->terms, (size_t)fs->nterms * sizeof *fs->terms);
      put(&b, fs->post, fs->post_len);
      put(&b, fs->skips, nsk * sizeof *fs->skips);
      if (fs->pos) put(&b, fs->pos, fs->pos_len);
    }
    if (fs->norms) put(&b, fs->norms, nd);
    if (fs->i64 || fs->f64) put(&b, fs->dv_present, nd);
    if (fs->i64) put(&b, fs->i64, nd * 8);
    if (fs->f64) put(&b, fs->f64, nd * 8);
    if (fs->ord_off) {
      put(&b, fs->ord_off, (nd + 1) * sizeof *fs->ord_off);
      put(&b, fs->ords, nords * sizeof *fs->ords);
    }
  }
  if (b.failed) {
    qb_buf_fini(&b);
    return qb_fail(err, QB_NOMEM, "segment file: out of memory");
  }
  memset(&h, 0, sizeof h);
  memcpy(h.magic, MAGIC, 8);
  h.version = 1;
  h.seg_no = s->seg_no;
  h.max_doc = s->max_doc;
  h.nfields = s->nfields;
  h.sz_term = sizeof(qi__term);
  h.sz_skip = sizeof(qi__skip);
  h.endian = 0x01020304;
  h.payload_len = b.len;
  h.checksum = checksum((const uint8_t *)b.data, b.len);
  snprintf(name, sizeof name, "seg_%08x.qis", s->seg_no);
  rc = write_file(dir, name, &h, sizeof h, b.data, b.len, err);
  qb_buf_fini(&b);
  return rc;
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct in {
  const uint8_t *p;
  size_t left;
  int bad;
} in;

/* Next N bytes (8-aligned in the file), copied into the arena; NULL and bad on short input. */
static void *take(in *r, qb_arena *a, uint64_t n, size_t elem, qb_err *err) {
  uint64_t bytes, padded;
  void *d;
  if (r->bad) return NULL;
  if (__builtin_mul_overflow(n, (uint64_t)elem, &bytes) || bytes > r->left) {
    r->bad = 1;
    return NULL;
  }
  padded = (bytes + 7) & ~7ull;
  if (padded > r->left) padded = r->left;
  if (!(d = qb_arena_alloc(a, bytes ? (size_t)bytes : 1))) {
    r->bad = 2;
    return NULL;
  }
  qi__cpy(d, r->p, (size_t)bytes);
  r->p += padded;
  r->left -= padded;
  return d;
}

static uint64_t take_u64(in *r) {
  uint64_t v = 0;
  if (r->bad || r->left < 8) {
    r->bad = 1;
    return 0;
  }
  memcpy(&v, r->p, 8);
  r->p += 8;
  r->left -= 8;
  return v;
}

/* Decode every posting of F once: in-range docs, increasing, counts matching df and skips. */
static int check_postings(const qi__fseg *f, uint32_t max_doc) {
  uint32_t t;
  for (t = 0; t < f->nterms; t++) {
    const qi__term *te = &f->terms[t];
    const uint8_t *p, *end = f->post + f->post_len, *pp = NULL;
    const uint8_t *pend = f->pos ? f->pos + f->pos_len : NULL;
    uint32_t k, prev = UINT32_MAX, sk;
    uint64_t ttf = 0;
    if (f->term_off[t] > f->term_off[t + 1] || te->post_off > f->post_len || !te->df ||
        te->df > max_doc || !te->nskips || te->skip > UINT32_MAX - te->nskips)
      return 0;
    p = f->post + te->post_off;
    if (f->pos) {
      if (te->pos_off > f->pos_len) return 0;
      pp = f->pos + te->pos_off;
    }
    for (k = 0; k < te->df; k++) {
      uint64_t v = 0, fq = 1;
      unsigned shift = 0;
      if (k % QI_BLOCK_SIZE == 0) {
        sk = te->skip + k / QI_BLOCK_SIZE;
        if (k / QI_BLOCK_SIZE >= te->nskips ||
            f->post + te->post_off + f->skips[sk].offset != p ||
            (pp && f->pos + te->pos_off + f->skips[sk].pos_offset != pp))
          return 0;
      }
      do {
        if (p >= end || shift > 63) return 0;
        v |= (uint64_t)(*p & 0x7f) << shift;
        shift += 7;
      } while (*p++ & 0x80);
      if (!(v & 1)) {
        shift = 0;
        fq = 0;
        do {
          if (p >= end || shift > 63) return 0;
          fq |= (uint64_t)(*p & 0x7f) << shift;
          shift += 7;
        } while (*p++ & 0x80);
        if (!fq || fq > UINT32_MAX) return 0;
      }
      if ((v >> 1) == 0 || (v >> 1) > UINT32_MAX) return 0;
      {
        uint32_t old = prev;
        prev += (uint32_t)(v >> 1);
        if (prev >= max_doc || (k && prev <= old)) return 0;
      }
      ttf += fq;
      if (pp) { /* fq position deltas, within the stream, positions below 2^32 */
        uint64_t j, sum = 0;
        for (j = 0; j < fq; j++) {
          uint64_t x = 0;
          shift = 0;
          do {
            if (pp >= pend || shift > 63) return 0;
            x |= (uint64_t)(*pp & 0x7f) << shift;
            shift += 7;
          } while (*pp++ & 0x80);
          if ((j && !x) || (sum += x) > UINT32_MAX) return 0;
        }
      }
      sk = te->skip + k / QI_BLOCK_SIZE;
      if (prev > f->skips[sk].last_doc || fq > f->skips[sk].max_freq) return 0;
    }
    if (ttf != te->ttf || (te->df + QI_BLOCK_SIZE - 1) / QI_BLOCK_SIZE != te->nskips) return 0;
  }
  return 1;
}

qb_code qi__seg_read(const char *path, qi__seg **out, qb_err *err) {
  qi__seg *s = NULL;
  uint8_t *buf = NULL;
  size_t size = 0;
  hdr h;
  in r = {NULL, 0, 0};
  int fd = -1;
  struct stat st;
  uint32_t f;
  qb_code rc = QB_CORRUPT;
  *out = NULL;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st))
    return qb_fail(err, QB_IO, "cannot open %s: %s", path, strerror(errno));
  if ((size_t)st.st_size < sizeof h || read(fd, &h, sizeof h) != (ssize_t)sizeof h ||
      memcmp(h.magic, MAGIC, 8) || h.version != 1 || h.sz_term != sizeof(qi__term) ||
      h.sz_skip != sizeof(qi__skip) || h.endian != 0x01020304 ||
      h.payload_len != (uint64_t)st.st_size - sizeof h || h.nfields > 1u << 20) {
    close(fd);
    return qb_fail(err, QB_CORRUPT, "%s: not a segment file of this build", path);
  }
  size = (size_t)h.payload_len;
  if (!(buf = qb_malloc(size ? size : 1))) {
    close(fd);
    return qb_fail(err, QB_NOMEM, "%s: out of memory", path);
  }
  {
    size_t got = 0;
    while (got < size) {
      ssize_t n = read(fd, buf + got, size - got);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        break;
      }
      got += (size_t)n;
    }
    close(fd);
    if (got != size || checksum(buf, size) != h.checksum) {
      qb_free(buf, size ? size : 1);
      return qb_fail(err, QB_CORRUPT, "%s: checksum mismatch", path);
    }
  }
  if (!(s = qb_calloc(1, sizeof *s))) goto oom;
  qb_arena_init(&s->arena);
  atomic_init(&s->refs, 1);
  s->seg_no = h.seg_no;
  s->max_doc = h.max_doc;
  s->nfields = h.nfields;
  r.p = buf;
  r.left = size;
  r.bad = 0;
  {
    size_t nd = h.max_doc;
    uint64_t idb = take_u64(&r);
    uint32_t d;
    if (!(s->f = qb_arena_array(&s->arena, h.nfields ? h.nfields : 1, sizeof *s->f))) goto oom;
    s->id_off = take(&r, &s->arena, (uint64_t)nd + 1, 4, err);
    s->ids = take(&r, &s->arena, idb, 1, err);
    s->seq = take(&r, &s->arena, nd, 8, err);
    s->ver = take(&r, &s->arena, nd, 8, err);
    if (r.bad) goto bad;
    if (s->id_off[0] != 0 || s->id_off[nd] != idb) goto bad;
    for (d = 0; d < nd; d++)
      if (s->id_off[d] >= s->id_off[d + 1] || s->ids[s->id_off[d + 1] - 1] != 0) goto bad;
    for (f = 0; f < h.nfields; f++) {
      qi__fseg *fs = &s->f[f];
      uint8_t flags[8];
      uint64_t nterms, tbytes, plen, nsk, nords, poslen, k;
      if (r.left < 8) goto bad;
      memcpy(flags, r.p, 8);
      r.p += 8;
      r.left -= 8;
      nterms = take_u64(&r);
      tbytes = take_u64(&r);
      plen = take_u64(&r);
      nsk = take_u64(&r);
      fs->doc_count = take_u64(&r);
      fs->sum_ttf = take_u64(&r);
      fs->sum_df = take_u64(&r);
      nords = take_u64(&r);
      poslen = take_u64(&r);
      if (r.bad || flags[1] > QI_DV_KEYWORD || nterms > UINT32_MAX || tbytes > UINT32_MAX ||
          nsk > UINT32_MAX || nords > UINT32_MAX)
        goto bad;
      fs->present = flags[0];
      fs->dv = (qi_dv_kind)flags[1];
      fs->nterms = (uint32_t)nterms;
      if (nterms) {
        fs->term_off = take(&r, &s->arena, nterms + 1, 4, err);
        fs->term_bytes = take(&r, &s->arena, tbytes, 1, err);
        fs->terms = take(&r, &s->arena, nterms, sizeof *fs->terms, err);
        fs->post = take(&r, &s->arena, plen, 1, err);
        fs->skips = take(&r, &s->arena, nsk, sizeof *fs->skips, err);
        if (flags[6]) {
          fs->pos = take(&r, &s->arena, poslen, 1, err);
          fs->pos_len = (size_t)poslen;
        }
        fs->post_len = (size_t)plen;
        if (r.bad || fs->term_off[0] != 0 || fs->term_off[nterms] != tbytes) goto bad;
        for (k = 0; k < nterms; k++)
          if (fs->terms[k].skip + (uint64_t)fs->terms[k].nskips > nsk) goto bad;
        for (k = 0; k < nsk; k++)
          if (fs->skips[k].offset > plen || fs->skips[k].last_doc >= h.max_doc ||
              fs->skips[k].pos_offset > poslen)
            goto bad;
        if (!check_postings(fs, h.max_doc)) goto bad;
      }
      if (flags[2]) fs->norms = take(&r, &s->arena, nd, 1, err);
      if (flags[3] || flags[4]) fs->dv_present = take(&r, &s->arena, nd, 1, err);
      if (flags[3]) fs->i64 = take(&r, &s->arena, nd, 8, err);
      if (flags[4]) fs->f64 = take(&r, &s->arena, nd, 8, err);
      if (flags[5]) {
        fs->ord_off = take(&r, &s->arena, (uint64_t)nd + 1, 4, err);
        fs->ords = take(&r, &s->arena, nords, 4, err);
        if (r.bad || fs->ord_off[0] != 0 || fs->ord_off[nd] != nords) goto bad;
        for (d = 0; d < nd; d++)
          if (fs->ord_off[d] > fs->ord_off[d + 1]) goto bad;
        for (k = 0; k < nords; k++)
          if (fs->ords[k] >= fs->nterms) goto bad;
      }
      if (r.bad) goto bad;
    }
    if (r.left) goto bad;
  }
  if (qi__seg_finish(s)) goto oom;
  qb_free(buf, size ? size : 1);
  *out = s;
  return QB_OK;
oom:
  rc = QB_NOMEM;
bad:
  if (r.bad == 2) rc = QB_NOMEM;
  qb_free(buf, size ? size : 1);
  if (s) {
    qb_arena_fini(&s->arena);
    qb_free(s, sizeof *s);
  }
  return rc == QB_NOMEM ? qb_fail(err, QB_NOMEM, "%s: out of memory", path)
                        : qb_fail(err, QB_CORRUPT, "%s: malformed segment file", path);
}

/* ---- the commit file ------------------------------------------------------------------------ */

qb_code qi__commit_write(const char *dir, const uint32_t *seg_nos, size_t n, uint64_t watermark,
                         uint32_t seg_counter, qb_err *err) {
  qb_buf b;
  size_t i;
  qb_code rc;
  DIR *d;
  struct dirent *de;
  qb_buf_init(&b);
  qb_buf_printf(&b, "%s\nwatermark %llu\nnext_segment %u\n", COMMIT_HEAD,
                (unsigned long long)watermark, seg_counter);
  for (i = 0; i < n; i++) qb_buf_printf(&b, "segment %08x\n", seg_nos[i]);
  if (b.failed) {
    qb_buf_fini(&b);
    return qb_fail(err, QB_NOMEM, "commit file: out of memory");
  }
  rc = write_file(dir, "segments", b.data, b.len, NULL, 0, err);
  qb_buf_fini(&b);
  if (rc) return rc;
  /* segment files no longer named are garbage now */
  if ((d = opendir(dir)) != NULL) {
    while ((de = readdir(d)) != NULL) {
      unsigned no;
      char tail[8];
      int keep = 0;
      if (sscanf(de->d_name, "seg_%8x.%3s", &no, tail) != 2) continue;
      for (i = 0; i < n && !keep; i++) keep = seg_nos[i] == no && !strcmp(tail, "qis");
      if (!keep) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
      }
    }
    closedir(d);
  }
  return QB_OK;
}

/* Read DIR/segments: *SEG_NOS (qb_malloc'd, *N entries; free with *N * 4 bytes), watermark,
** next segment number. QB_NOTFOUND when there is no commit file. */
qb_code qi__commit_read(const char *dir, uint32_t **seg_nos, size_t *n, uint64_t *watermark,
                        uint32_t *seg_counter, qb_err *err) {
  char path[4400], line[256];
  FILE *f;
  size_t cap = 0;
  unsigned long long wm = 0;
  unsigned sc = 0, no;
  int head = 0;
  *seg_nos = NULL;
  *n = 0;
  snprintf(path, sizeof path, "%s/segments", dir);
  if (!(f = fopen(path, "r"))) return QB_NOTFOUND;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!head) {
      if (strcmp(line, COMMIT_HEAD)) break;
      head = 1;
    } else if (sscanf(line, "watermark %llu", &wm) == 1 || sscanf(line, "next_segment %u", &sc) == 1) {
    } else if (sscanf(line, "segment %8x", &no) == 1) {
      if (qi__grow((void **)seg_nos, &cap, *n + 1, sizeof **seg_nos)) {
        fclose(f);
        qb_free(*seg_nos, cap * sizeof **seg_nos);
        *seg_nos = NULL;
        *n = 0;
        return qb_fail(err, QB_NOMEM, "commit file: out of memory");
      }
      (*seg_nos)[(*n)++] = no;
    } else {
      head = -1;
      break;
    }
  }
  fclose(f);
  if (head != 1) {
    qb_free(*seg_nos, cap * sizeof **seg_nos);
    *seg_nos = NULL;
    *n = 0;
    return qb_fail(err, QB_CORRUPT, "%s: malformed commit file", path);
  }
  /* shrink to exactly *n so the caller can free with *n */
  if (cap != *n) {
    uint32_t *t = *n ? qb_realloc(*seg_nos, cap * sizeof **seg_nos, *n * sizeof **seg_nos) : NULL;
    if (!*n) qb_free(*seg_nos, cap * sizeof **seg_nos);
    else if (t) *seg_nos = t;
    else return qb_fail(err, QB_NOMEM, "commit file: out of memory");
    if (!*n) *seg_nos = NULL;
  }
  *watermark = wm;
  *seg_counter = sc;
  return QB_OK;
}
