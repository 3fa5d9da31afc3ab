/* persist.c: segment files and the commit file, so opening an index loads its segments and
** replays only the SQLite tail instead of re-indexing everything. A segment file is written
** once (tmp + fsync + rename) and never changed; the commit file "segments" names the live
** ones and the watermark (every document with _seq_no <= watermark is in them). Files on disk
** are untrusted: a bad magic, size, checksum or any out-of-range offset makes the file unusable
** (the caller then falls back to a full replay), never a crash. A file read back is mapped
** read-only and its arrays are used in place (docs/index.md: why the checksum is checked at
** open).
** Invariant: a segment read back is byte-for-byte the segment that was written. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "QISEG003"
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

/* A segment file is streamed through a small buffer (no second copy of the segment in memory);
** every piece is padded to 8 bytes, so the checksum, which eats 8-byte words, can be fed piece
** by piece. */
typedef struct out {
  int fd, failed;
  uint64_t h, len;
  size_t n;
  uint8_t buf[1 << 16];
} out;

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

static void out_bytes(out *o, const void *p, size_t n) {
  const uint8_t *c = p;
  while (n && !o->failed) {
    size_t k = sizeof o->buf - o->n;
    if (k > n) k = n;
    memcpy(o->buf + o->n, c, k);
    o->n += k;
    c += k;
    n -= k;
    if (o->n == sizeof o->buf) {
      if (write_all(o->fd, o->buf, o->n)) o->failed = 1;
      o->n = 0;
    }
  }
}

static uint64_t checksum_step(uint64_t h, const uint8_t *p, size_t n) {
  uint64_t w;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void put(out *o, const void *p, size_t n) {
  static const uint8_t zero[8];
  o->h = checksum_step(o->h, p, n - n % 8);
  if (n % 8) { /* the last partial word, zero-padded: the same words the reader sees */
    uint8_t w[8] = {0};
    memcpy(w, (const uint8_t *)p + n - n % 8, n % 8);
    o->h = checksum_step(o->h, w, 8);
  }
  out_bytes(o, p, n);
  if (n % 8) out_bytes(o, zero, 8 - n % 8); /* keep every array 8-byte aligned */
  o->len += (n + 7) & ~(size_t)7;
}

static void put_u64(out *o, uint64_t v) { put(o, &v, 8); }

/* Put the written, fsynced TMP in place as PATH, and make the rename durable (fsync DIR). */
static qb_code publish(const char *dir, const char *tmp, const char *path, qb_err *err) {
  if (rename(tmp, path)) {
    unlink(tmp);
    return qb_fail(err, QB_IO, "cannot rename %s: %s", tmp, strerror(errno));
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  return QB_OK;
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
  return publish(dir, tmp, path, err);
}

static void put_payload(out *o, const qi__seg *s) {
  uint32_t f;
  size_t nd = s->max_doc;
  put_u64(o, s->id_off[nd]);
  put(o, s->id_off, (nd + 1) * sizeof *s->id_off);
  put(o, s->ids, s->id_off[nd]);
  put(o, s->seq, nd * sizeof *s->seq);
  put(o, s->ver, nd * sizeof *s->ver);
  put_u64(o, (uint64_t)s->id_mask + 1);
  put(o, s->id_hash, (s->id_mask + 1) * sizeof *s->id_hash);
  for (f = 0; f < s->nfields; f++) {
    const qi__fseg *fs = &s->f[f];
    uint64_t nsk = 0, nords = fs->ord_off ? fs->ord_off[nd] : 0;
    uint8_t flags[8] = {fs->present, (uint8_t)fs->dv, fs->norms != NULL, fs->i64 != NULL,
                        fs->f64 != NULL, fs->ord_off != NULL, fs->pos != NULL, 0};
    uint32_t t;
    for (t = 0; t < fs->nterms; t++) nsk += fs->terms[t].nskips;
    put(o, flags, 8);
    put_u64(o, fs->nterms);
    put_u64(o, fs->nterms ? fs->term_off[fs->nterms] : 0);
    put_u64(o, fs->post_len);
    put_u64(o, nsk);
    put_u64(o, fs->doc_count);
    put_u64(o, fs->sum_ttf);
    put_u64(o, fs->sum_df);
    put_u64(o, nords);
    put_u64(o, fs->pos_len);
    if (fs->nterms) {
      put(o, fs->term_off, ((size_t)fs->nterms + 1) * sizeof *fs->term_off);
      put(o, fs->term_bytes, fs->term_off[fs->nterms]);
      put(o, fs->terms, (size_t)fs->nterms * sizeof *fs->terms);
      put(o, fs->post, fs->post_len);
      put(o, fs->skips, nsk * sizeof *fs->skips);
      if (fs->pos) put(o, fs->pos, fs->pos_len);
    }
    if (fs->norms) put(o, fs->norms, nd);
    if (fs->i64 || fs->f64) put(o, fs->dv_present, nd);
    if (fs->i64) put(o, fs->i64, nd * 8);
    if (fs->f64) put(o, fs->f64, nd * 8);
    if (fs->ord_off) {
      put(o, fs->ord_off, (nd + 1) * sizeof *fs->ord_off);
      put(o, fs->ords, nords * sizeof *fs->ords);
    }
  }
}

/* Test hook: with QD_TEST_SEGMENT_WRITE_FAIL=1 in the environment every segment file write
** fails as on a full disk (tests of failed merges and refreshes set it; nothing else does). */
static int injected_failure(void) {
  const char *e = getenv("QD_TEST_SEGMENT_WRITE_FAIL");
  return e && *e == '1';
}

qb_code qi__seg_write(const qi__seg *s, const char *dir, qb_err *err) {
  hdr h;
  char name[64], tmp[4400], path[4400];
  out *o;
  int fd;
  qb_code rc = QB_OK;
  snprintf(name, sizeof name, "seg_%08x.qis", s->seg_no);
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!(o = qb_malloc(sizeof *o))) return qb_fail(err, QB_NOMEM, "segment file: out of memory");
  memset(&h, 0, sizeof h);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
    qb_free(o, sizeof *o);
    return qb_fail(err, QB_IO, "cannot create %s: %s", tmp, strerror(errno));
  }
  o->fd = fd;
  o->failed = 0;
  o->h = 0xcbf29ce484222325ull;
  o->len = 0;
  o->n = 0;
  out_bytes(o, &h, sizeof h); /* the header goes in last, once the checksum is known */
  put_payload(o, s);
  if (!o->failed && o->n && write_all(fd, o->buf, o->n)) o->failed = 1;
  if (!o->failed && injected_failure()) {
    o->failed = 1;
    errno = ENOSPC;
  }
  memcpy(h.magic, MAGIC, 8);
  h.version = 1;
  h.seg_no = s->seg_no;
  h.max_doc = s->max_doc;
  h.nfields = s->nfields;
  h.sz_term = sizeof(qi__term);
  h.sz_skip = sizeof(qi__skip);
  h.endian = 0x01020304;
  h.payload_len = o->len;
  h.checksum = o->h;
  if (o->failed || pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fsync(fd)) {
    rc = qb_fail(err, QB_IO, "cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    qb_free(o, sizeof *o);
    return rc;
  }
  close(fd);
  qb_free(o, sizeof *o);
  return publish(dir, tmp, path, err);
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct in {
  const uint8_t *p;
  size_t left;
  int bad;
} in;

/* The next N elements of ELEM bytes (8-aligned in the file), in place in the mapping; NULL and
** bad on short input. */
static void *take(in *r, uint64_t n, size_t elem) {
  uint64_t bytes, padded;
  const uint8_t *d;
  if (r->bad) return NULL;
  if (__builtin_mul_overflow(n, (uint64_t)elem, &bytes) || bytes > r->left) {
    r->bad = 1;
    return NULL;
  }
  padded = (bytes + 7) & ~7ull;
  if (padded > r->left) padded = r->left;
  d = r->p;
  r->p += padded;
  r->left -= padded;
  return (void *)(uintptr_t)d; /* read-only pages: nothing writes through segment arrays */
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

qb_code qi__seg_read(const char *path, int verify, qi__seg **out, qb_err *err) {
  qi__seg *s = NULL;
  const uint8_t *buf;
  void *map = MAP_FAILED;
  size_t size = 0, map_len = 0;
  hdr h;
  in r = {NULL, 0, 0};
  int fd = -1;
  struct stat st;
  uint32_t f;
  qb_code rc = QB_CORRUPT;
  *out = NULL;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st)) {
    rc = qb_fail(err, QB_IO, "cannot open %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return rc;
  }
  /* the size is checked before mapping: a page past the end of the file would be SIGBUS */
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof h + 8 ||
      (uint64_t)st.st_size > SIZE_MAX || read(fd, &h, sizeof h) != (ssize_t)sizeof h ||
      memcmp(h.magic, MAGIC, 8) || h.version != 1 || h.sz_term != sizeof(qi__term) ||
      h.sz_skip != sizeof(qi__skip) || h.endian != 0x01020304 ||
      h.payload_len != (uint64_t)st.st_size - sizeof h || h.payload_len % 8 ||
      h.nfields > 1u << 20) {
    close(fd);
    return qb_fail(err, QB_CORRUPT, "%s: not a segment file of this build", path);
  }
  map_len = (size_t)st.st_size;
  map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return qb_fail(err, QB_IO, "cannot map %s: %s", path, strerror(errno));
  buf = (const uint8_t *)map + sizeof h;
  size = (size_t)h.payload_len;
  if (verify && checksum(buf, size) != h.checksum) {
    munmap(map, map_len);
    return qb_fail(err, QB_CORRUPT, "%s: checksum mismatch", path);
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
    uint64_t idb = take_u64(&r), slots, used = 0;
    uint32_t d;
    if (!(s->f = qb_arena_array(&s->arena, h.nfields ? h.nfields : 1, sizeof *s->f))) goto oom;
    s->id_off = take(&r, (uint64_t)nd + 1, 4);
    s->ids = take(&r, idb, 1);
    s->seq = take(&r, nd, 8);
    s->ver = take(&r, nd, 8);
    slots = take_u64(&r);
    if (r.bad || slots < nd + 1 || slots > (uint64_t)UINT32_MAX + 1 || (slots & (slots - 1)))
      goto bad;
    s->id_hash = take(&r, slots, 4);
    s->id_mask = (size_t)slots - 1;
    if (r.bad) goto bad;
    if (s->id_off[0] != 0 || s->id_off[nd] != idb) goto bad;
    for (d = 0; d < nd; d++)
      if (s->id_off[d] >= s->id_off[d + 1] || s->ids[s->id_off[d + 1] - 1] != 0) goto bad;
    /* the _id table: entries in range and at least one empty slot (a probe ends) */
    for (uint64_t k = 0; k < slots; k++) {
      if (s->id_hash[k] > nd) goto bad;
      used += s->id_hash[k] != 0;
    }
    if (used != nd) goto bad;
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
        fs->term_off = take(&r, nterms + 1, 4);
        fs->term_bytes = take(&r, tbytes, 1);
        fs->terms = take(&r, nterms, sizeof *fs->terms);
        fs->post = take(&r, plen, 1);
        fs->skips = take(&r, nsk, sizeof *fs->skips);
        if (flags[6]) {
          fs->pos = take(&r, poslen, 1);
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
        if (verify && !check_postings(fs, h.max_doc)) goto bad;
      }
      if (flags[2]) fs->norms = take(&r, nd, 1);
      if (flags[3] || flags[4]) fs->dv_present = take(&r, nd, 1);
      if (flags[3]) fs->i64 = take(&r, nd, 8);
      if (flags[4]) fs->f64 = take(&r, nd, 8);
      if (flags[5]) {
        fs->ord_off = take(&r, (uint64_t)nd + 1, 4);
        fs->ords = take(&r, nords, 4);
        if (r.bad || fs->ord_off[0] != 0 || fs->ord_off[nd] != nords) goto bad;
        for (d = 0; d < nd; d++)
          if (fs->ord_off[d] > fs->ord_off[d + 1]) goto bad;
        if (verify)
          for (k = 0; k < nords; k++)
            if (fs->ords[k] >= fs->nterms) goto bad;
      }
      if (r.bad) goto bad;
    }
    if (r.left) goto bad;
  }
  if (qi__seg_finish(s, 1)) goto oom;
  s->map = map;
  s->map_len = map_len;
  *out = s;
  return QB_OK;
oom:
  rc = QB_NOMEM;
bad:
  munmap(map, map_len);
  if (s) {
    qb_arena_fini(&s->arena);
    qb_free(s, sizeof *s);
  }
  return rc == QB_NOMEM ? qb_fail(err, QB_NOMEM, "%s: out of memory", path)
                        : qb_fail(err, QB_CORRUPT, "%s: malformed segment file", path);
}

/* ---- the commit file ------------------------------------------------------------------------ */

qb_code qi__commit_write(const char *dir, const uint32_t *seg_nos, size_t n,
                         const uint32_t *busy, size_t nbusy, uint64_t watermark,
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
      for (i = 0; i < nbusy && !keep; i++) keep = busy[i] == no; /* a merge is writing it */
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
