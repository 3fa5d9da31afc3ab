/* source_raw.c: whether a stored _source can go into a response as it is (issue 14: parsing
** and printing the hits' _source was most of a rare-term search). qq_json_canonical accepts a
** text only when it is valid JSON that the compact writer (json_write.c) would print
** back byte for byte from the tree qq__json_load builds: so splicing it changes no response,
** and any text it is unsure of (whitespace, \u escapes, a duplicate key, a real not in its
** shortest form, invalid UTF-8, anything that is not JSON) takes the old path, where damage is
** still reported. One pass, no allocation; reals cost one or two conversions each. */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define RAW_MAX_DEPTH 64
#define RAW_MAX_KEYS 256 /* keys of the objects open at once (the duplicate check) */

typedef struct cn {
  const unsigned char *p, *end;
  const unsigned char *key[RAW_MAX_KEYS]; /* open objects' keys (escaped, as in the text) */
  size_t klen[RAW_MAX_KEYS], nkeys;
} cn;

/* the length of the valid UTF-8 sequence at S (N bytes left), 0 when not one: jansson's rules
** (no overlong forms, no surrogates, nothing past U+10FFFF) */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c >= 0xc2 && c <= 0xdf) return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
    if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)) return 0;
    return 4;
  }
  return 0;
}

/* 1: printable ASCII the writer copies as it is; 2: '"' or '\\'; 0: a control byte; 3: UTF-8 */
static const unsigned char cls[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20..0x2f: '"' */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, /* 0x50..0x5f: '\\' */
    R16(1), R16(1),
    R16(3), R16(3), R16(3), R16(3), R16(3), R16(3), R16(3), R16(3),
#undef R16
};

/* a string on its opening quote: 1 when canonical (the writer's escapes only) */
static int string(cn *c) {
  const unsigned char *p = c->p + 1, *end = c->end;
  for (;;) {
#ifdef __SSE2__
    /* sixteen bytes at a time while none is '"', '\\' or below 0x20 or above 0x7f (one signed
    ** compare takes both: bytes from 0x80 are negative) */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
      __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
      __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmplt_epi8(x, space));
      int mask = _mm_movemask_epi8(hit);
      if (mask) {
        p += __builtin_ctz((unsigned)mask);
        break;
      }
      p += 16;
    }
#else
    /* eight bytes at a time while none is a control byte, '"', '\\' or non-ASCII */
    while (end - p >= 8) {
      uint64_t x, q, b;
      memcpy(&x, p, 8);
      q = x ^ 0x2222222222222222ull;
      b = x ^ 0x5c5c5c5c5c5c5c5cull;
      /* a byte < 0x20, == '"', == '\\' (the zero-byte tests), or with its high bit set */
      if ((((x - 0x2020202020202020ull) & ~x) | ((q - 0x0101010101010101ull) & ~q) |
           ((b - 0x0101010101010101ull) & ~b) | x) &
          0x8080808080808080ull)
        break;
      p += 8;
    }
#endif
    while (p < end && cls[*p] == 1) p++;
    if (p >= end) return 0;
    switch (cls[*p]) {
    case 2:
      if (*p == '"') {
        c->p = p + 1;
        return 1;
      }
      /* the writer's escapes: exactly these (a control byte it writes as \u00XX: not here) */
      if (p + 1 >= end || !strchr("\"\\nrtbf", p[1]) || !p[1]) return 0;
      p += 2;
      break;
    case 3: {
      size_t n = utf8_len(p, (size_t)(end - p));
      if (!n) return 0;
      p += n;
      break;
    }
    default: return 0; /* a raw control byte: not JSON */
    }
  }
}

/* A real written I.F (I from S to DOT, F from DOT + 1 to END, no exponent) with at most 15
** significant digits: its double is the one nearest that decimal D, and D without trailing
** zeros is the shortest text reading back as it (DBL_DIG: two such decimals never share a
** double), so qb_real_text prints D in its fixed layout when 1e-6 <= |D| < 1e21: I, '.', F,
** where F has no trailing zero unless it is "0". 1 canonical, 0 not, -1 not decided here
** (more digits or out of that range: qb_real_text decides). */
static int fixed_real(const unsigned char *s, const unsigned char *dot, const unsigned char *end) {
  const unsigned char *f = dot + 1;
  size_t il = (size_t)(dot - s), fl = (size_t)(end - f), sig;
  if (end[-1] == '0' && fl != 1) return 0; /* a trailing zero the writer drops */
  int fzero = fl == 1 && f[0] == '0';
  if (il == 1 && s[0] == '0') { /* 0.F */
    if (fzero) return 1; /* 0.0 (and -0.0) */
    size_t lz = 0;
    while (lz < fl && f[lz] == '0') lz++;
    if (lz > 5) return -1; /* below 1e-6: the writer uses an exponent */
    sig = fl - lz;
  } else {
    if (il > 21) return -1; /* 1e21 or more: an exponent */
    sig = il + fl;
    if (fzero) { /* I.0: I's own digits, up to its last nonzero one */
      sig = il;
      while (sig > 1 && s[sig - 1] == '0') sig--;
    }
  }
  return sig <= 15 ? 1 : -1;
}

/* a number: 1 when json_out prints it back as it is */
static int number(cn *c) {
  const unsigned char *s = c->p, *p = s, *end = c->end, *dot = NULL;
  int real = 0, exp = 0;
  if (p < end && *p == '-') p++;
  if (p >= end || *p < '0' || *p > '9') return 0;
  if (*p == '0') p++;
  else
    while (p < end && *p >= '0' && *p <= '9') p++;
  if (p < end && *p == '.') {
    real = 1;
    dot = p++;
    if (p >= end || *p < '0' || *p > '9') return 0;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    real = exp = 1;
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') return 0;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  size_t n = (size_t)(p - s);
  c->p = p;
  if (real && !exp) { /* I.F: decided from the digits alone, mostly (see fixed_real) */
    int k = fixed_real(s + (*s == '-'), dot, p);
    if (k >= 0) return k;
  }
  if (!real) { /* "%lld" of the value: no "-0"; at most 18 digits always fits int64 */
    if (n > 18 + (*s == '-')) return 0;
    return !(n == 2 && s[0] == '-' && s[1] == '0');
  }
  char lit[QB_REAL_TEXT], out[QB_REAL_TEXT];
  if (n >= sizeof lit) return 0;
  memcpy(lit, s, n);
  lit[n] = 0;
  double v = strtod(lit, NULL);
  if (!isfinite(v)) return 0;
  return (size_t)qb_real_text(v, out) == n && !memcmp(out, lit, n);
}

static int value(cn *c, int depth);

static int object(cn *c, int depth) {
  size_t base = c->nkeys;
  c->p++;
  if (c->p < c->end && *c->p == '}') {
    c->p++;
    return 1;
  }
  for (;;) {
    const unsigned char *k = c->p + 1;
    if (c->p >= c->end || *c->p != '"' || !string(c)) return 0;
    size_t kl = (size_t)(c->p - 1 - k);
    for (size_t i = base; i < c->nkeys; i++) /* a duplicate: jansson keeps one of them */
      if (c->klen[i] == kl && !memcmp(c->key[i], k, kl)) return 0;
    if (c->nkeys == RAW_MAX_KEYS) return 0;
    c->key[c->nkeys] = k;
    c->klen[c->nkeys++] = kl;
    if (c->p >= c->end || *c->p != ':') return 0;
    c->p++;
    if (!value(c, depth + 1)) return 0;
    if (c->p >= c->end) return 0;
    if (*c->p == '}') {
      c->p++;
      c->nkeys = base;
      return 1;
    }
    if (*c->p != ',') return 0;
    c->p++;
  }
}

static int array(cn *c, int depth) {
  c->p++;
  if (c->p < c->end && *c->p == ']') {
    c->p++;
    return 1;
  }
  for (;;) {
    if (!value(c, depth + 1) || c->p >= c->end) return 0;
    if (*c->p == ']') {
      c->p++;
      return 1;
    }
    if (*c->p != ',') return 0;
    c->p++;
  }
}

static int word(cn *c, const char *w, size_t n) {
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return 0;
  c->p += n;
  return 1;
}

static int value(cn *c, int depth) {
  if (depth > RAW_MAX_DEPTH || c->p >= c->end) return 0;
  switch (*c->p) {
  case '{': return object(c, depth);
  case '[': return array(c, depth);
  case '"': return string(c);
  case 't': return word(c, "true", 4);
  case 'f': return word(c, "false", 5);
  case 'n': return word(c, "null", 4);
  default: return number(c);
  }
}

int qq_json_canonical(const char *text, size_t len) {
  cn c;
  if (!text || !len || text[0] != '{') return 0;
  c.p = (const unsigned char *)text;
  c.end = c.p + len;
  c.nkeys = 0;
  return value(&c, 1) && c.p == c.end;
}

int qq__utf8_ok(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    if (*p < 0x80) {
      p++;
      continue;
    }
    size_t k = utf8_len(p, (size_t)(end - p));
    if (!k) return 0;
    p += k;
  }
  return 1;
}
