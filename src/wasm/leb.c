/* leb.c: LEB128 readers for the decoder and the validator (spec 5.2.2). Each reader accepts at
** most ceil(N/7) bytes and requires the unused bits of the last byte to be zero (unsigned) or a
** copy of the sign bit (signed). On failure *P is left unchanged, and qw__leb_why says which of
** the spec's three rules broke, so callers can report its wording. */
#include "internal.h"

/* Reads an unsigned/signed LEB of at most BITS bits into *OUT (sign-extended when SIGNED). */
static inline bool leb(const uint8_t **pp, const uint8_t *end, unsigned bits, bool sign,
                       uint64_t *out) {
  const uint8_t *p = *pp;
  uint64_t v = 0;
  unsigned shift = 0;
  for (;;) {
    uint8_t b;
    if (p >= end)
      return false;
    b = *p++;
    if (bits - shift <= 7) {        /* the last byte this width allows */
      unsigned used = bits - shift; /* payload bits that remain */
      if (b & 0x80)
        return false;
      if (sign) {
        /* bits [used-1 .. 6] must all equal the sign bit */
        uint8_t hi = (uint8_t)(b & 0x7f) >> (used - 1);
        if (hi != 0 && hi != (0x7f >> (used - 1)))
          return false;
      } else if (((b & 0x7f) >> used) != 0) {
        return false;
      }
      v |= (uint64_t)(b & 0x7f) << shift;
      shift += 7;
      break;
    }
    v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80))
      break;
  }
  if (sign && shift < 64 && (v >> (shift - 1) & 1))
    v |= ~(uint64_t)0 << shift;
  *pp = p;
  *out = v;
  return true;
}

bool qw__leb_u32(const uint8_t **p, const uint8_t *end, uint32_t *out) {
  const uint8_t *q = *p;
  /* fast path: one byte */
  if (QB_LIKELY(q < end && !(*q & 0x80))) {
    *out = *q;
    *p = q + 1;
    return true;
  }
  uint64_t v;
  if (!leb(p, end, 32, false, &v))
    return false;
  *out = (uint32_t)v;
  return true;
}

bool qw__leb_s32(const uint8_t **p, const uint8_t *end, int32_t *out) {
  uint64_t v;
  if (!leb(p, end, 32, true, &v))
    return false;
  *out = (int32_t)(uint32_t)v;
  return true;
}

bool qw__leb_s64(const uint8_t **p, const uint8_t *end, int64_t *out) {
  uint64_t v;
  if (!leb(p, end, 64, true, &v))
    return false;
  *out = (int64_t)v;
  return true;
}

bool qw__leb_s33(const uint8_t **p, const uint8_t *end, int64_t *out) {
  uint64_t v;
  if (!leb(p, end, 33, true, &v))
    return false;
  *out = (int64_t)v;
  return true;
}

const char *qw__leb_why(const uint8_t *p, const uint8_t *end, unsigned bits) {
  unsigned n = (bits + 6) / 7, i;
  for (i = 0; i < n; i++) {
    if (p + i >= end)
      return "unexpected end";
    if (!(p[i] & 0x80))
      return "integer too large"; /* ended in time: bad unused bits */
  }
  return "integer representation too long";
}
