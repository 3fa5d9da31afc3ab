/* analyze.c: the standard analyzer (Lucene's StandardTokenizer + LowerCaseFilter, no stop
** words) and the keyword analyzer. Word boundaries approximate UAX#29 with a per-code-point
** class table (cls) and the rules WB5-WB13b; lowercasing covers ASCII (fast path), Latin-1,
** Latin Extended-A, Greek, Cyrillic and Armenian. Invariant: the input is validated as strict
** UTF-8 as it is decoded, so nothing past a bad byte is ever looked at. */
#include "index.h"

#include <string.h>

enum { C_OTHER, C_LETTER, C_NUM, C_EXTNUMLET, C_KATA, C_IDEO, C_EXTEND, C_MIDLETTER,
       C_MIDNUMLET, C_MIDNUM };

/* Decode one code point at S[I..LEN). Returns its byte length, 0 when invalid. */
static size_t decode(const unsigned char *s, size_t i, size_t len, uint32_t *cp) {
  unsigned char c = s[i];
  uint32_t v;
  size_t n, k;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (len - i < n) return 0;
  for (k = 1; k < n; k++) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i + k] & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

static size_t encode(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

static int cls_ascii(uint32_t c) {
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return C_LETTER;
  if (c >= '0' && c <= '9') return C_NUM;
  switch (c) {
  case '_': return C_EXTNUMLET;
  case ':': return C_MIDLETTER;
  case '.': case '\'': return C_MIDNUMLET;
  case ',': case ';': return C_MIDNUM;
  default: return C_OTHER;
  }
}

/* Word-break class of code point C (UAX#29 WordBreakProperty, approximated by blocks). */
static int cls(uint32_t c) {
  if (c < 0x80) return cls_ascii(c);
  if (c < 0x100) {
    if (c == 0xAA || c == 0xB5 || c == 0xBA) return C_LETTER;
    if (c == 0xB7) return C_MIDLETTER;
    if (c == 0xAD) return C_EXTEND; /* soft hyphen: Format */
    if (c >= 0xC0 && c != 0xD7 && c != 0xF7) return C_LETTER;
    return C_OTHER;
  }
  if (c < 0x300) return C_LETTER;                       /* Latin Extended, IPA, modifiers */
  if (c < 0x370) return C_EXTEND;                       /* combining diacritics */
  if (c < 0x400) {
    if (c == 0x37E) return C_MIDNUM;
    if (c == 0x387) return C_MIDLETTER;
    return C_LETTER;
  }
  if (c < 0x530) return (c >= 0x483 && c <= 0x489) ? C_EXTEND : C_LETTER;
  if (c < 0x590) {
    if (c == 0x589) return C_MIDNUM;
    if (c >= 0x531 && c <= 0x587) return C_LETTER;
    return C_OTHER;
  }
  if (c < 0x600) {
    if (c >= 0x591 && c <= 0x5C7) return C_EXTEND;
    if (c == 0x5F4) return C_MIDLETTER;
    if (c >= 0x5D0 && c <= 0x5F3) return C_LETTER;
    return C_OTHER;
  }
  if (c < 0x700) {
    if (c == 0x60C || c == 0x60D || c == 0x66C) return C_MIDNUM;
    if ((c >= 0x610 && c <= 0x61A) || (c >= 0x64B && c <= 0x65F) || c == 0x670 ||
        (c >= 0x6D6 && c <= 0x6ED))
      return C_EXTEND;
    if ((c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9)) return C_NUM;
    if (c == 0x61B || c == 0x61F || c == 0x66A || c == 0x66D || c == 0x6D4) return C_OTHER;
    return C_LETTER;
  }
  if (c < 0x900) return C_LETTER;                       /* Syriac, Thaana, NKo, ... */
  if (c < 0xE00) {                                      /* Indic scripts */
    if ((c & 0x7F) >= 0x66 && (c & 0x7F) <= 0x6F) return C_NUM;
    if (c == 0x964 || c == 0x965) return C_OTHER;
    return C_LETTER;
  }
  if (c < 0xE80) {                                      /* Thai: runs stay one word */
    if (c >= 0xE50 && c <= 0xE59) return C_NUM;
    if (c == 0xE3F || c == 0xE4F || c == 0xE5A || c == 0xE5B) return C_OTHER;
    return C_LETTER;
  }
  if (c < 0x2000) {
    if (c >= 0x1AB0 && c <= 0x1AFF) return C_EXTEND;
    if (c >= 0x1DC0 && c <= 0x1DFF) return C_EXTEND;
    return C_LETTER;                                    /* Lao..Greek Extended */
  }
  if (c < 0x2070) {
    if (c >= 0x200B && c <= 0x200F) return C_EXTEND;    /* ZW(N)J, marks: Format/Extend */
    if (c >= 0x2060 && c <= 0x206F) return C_EXTEND;
    if (c == 0x2018 || c == 0x2019 || c == 0x2024) return C_MIDNUMLET;
    if (c == 0x2027) return C_MIDLETTER;
    if (c == 0x2044) return C_MIDNUM;
    if (c == 0x203F || c == 0x2040 || c == 0x2054) return C_EXTNUMLET;
    return C_OTHER;
  }
  if (c < 0x2C00) {
    if (c >= 0x20D0 && c <= 0x20FF) return C_EXTEND;
    if (c >= 0x2160 && c <= 0x2188) return C_LETTER;    /* Roman numerals */
    return C_OTHER;                                     /* symbols, arrows, math, emoji-ish */
  }
  if (c < 0x2E00) return C_LETTER;                      /* Glagolitic, Coptic, Georgian sup */
  if (c < 0x2E80) return C_OTHER;
  if (c < 0x3000) return C_IDEO;                        /* CJK radicals */
  if (c < 0x3040) {
    if (c == 0x3005 || c == 0x3007 || (c >= 0x3021 && c <= 0x3029)) return C_IDEO;
    if (c >= 0x302A && c <= 0x302F) return C_EXTEND;
    if (c >= 0x3031 && c <= 0x3035) return C_KATA;
    return C_OTHER;
  }
  if (c < 0x30A0) return (c == 0x3099 || c == 0x309A) ? C_EXTEND : C_IDEO; /* Hiragana */
  if (c < 0x3100) return c == 0x30FB ? C_OTHER : C_KATA;
  if (c < 0x31F0) return C_LETTER;                      /* Bopomofo, Hangul compat */
  if (c < 0x3200) return C_KATA;
  if (c < 0x3400) return C_OTHER;                       /* enclosed CJK */
  if (c < 0xA000) return C_IDEO;
  if (c < 0xD800) return C_LETTER;                      /* Yi, ..., Hangul syllables */
  if (c < 0xF900) return C_OTHER;                       /* private use */
  if (c < 0xFB00) return C_IDEO;
  if (c < 0xFE00) return c == 0xFB1E ? C_EXTEND : C_LETTER;
  if (c < 0xFE10) return C_EXTEND;                      /* variation selectors */
  if (c < 0xFE70) {
    if (c >= 0xFE20 && c <= 0xFE2F) return C_EXTEND;
    if (c == 0xFE10 || c == 0xFE14 || c == 0xFE50 || c == 0xFE54) return C_MIDNUM;
    if (c == 0xFE52) return C_MIDNUMLET;
    if (c == 0xFE13 || c == 0xFE55) return C_MIDLETTER;
    if (c == 0xFE33 || c == 0xFE34 || (c >= 0xFE4D && c <= 0xFE4F)) return C_EXTNUMLET;
    return C_OTHER;
  }
  if (c < 0xFF00) return c == 0xFEFF ? C_EXTEND : C_LETTER;
  if (c < 0xFFF0) {
    if (c >= 0xFF10 && c <= 0xFF19) return C_NUM;
    if ((c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A)) return C_LETTER;
    if (c >= 0xFF66 && c <= 0xFF9D) return C_KATA;
    if (c == 0xFF9E || c == 0xFF9F) return C_EXTEND;
    if (c >= 0xFFA0 && c <= 0xFFDC) return C_LETTER;
    if (c == 0xFF07 || c == 0xFF0E) return C_MIDNUMLET;
    if (c == 0xFF0C || c == 0xFF1B) return C_MIDNUM;
    if (c == 0xFF1A) return C_MIDLETTER;
    if (c == 0xFF3F) return C_EXTNUMLET;
    return C_OTHER;
  }
  if (c < 0x10000) return C_OTHER;
  if (c < 0x1D000) return C_LETTER;                     /* historic scripts */
  if (c < 0x1D400) return C_OTHER;                      /* musical symbols */
  if (c < 0x1D800) return c >= 0x1D7CE ? C_NUM : C_LETTER; /* math alphanumerics */
  if (c < 0x1F000) return C_LETTER;
  if (c < 0x20000) return C_OTHER;                      /* emoji, symbols */
  if (c < 0x40000) return C_IDEO;
  if (c >= 0xE0000 && c <= 0xE0FFF) return C_EXTEND;
  return C_OTHER;
}

/* Simple lowercase mapping (Character.toLowerCase) for the blocks we cover. */
static uint32_t lower(uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c < 0x100) return (c >= 0xC0 && c <= 0xDE && c != 0xD7) ? c + 32 : c;
  if (c < 0x180) {
    if (c == 0x130) return 'i';
    if (c == 0x178) return 0xFF;
    if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
    return (c & 1) ? c : c + 1;
  }
  if (c < 0x370) return c;
  if (c < 0x400) {
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x3D8 && c <= 0x3EF) return (c & 1) ? c : c + 1;
    return c;
  }
  if (c < 0x530) {
    if (c < 0x410) return c + 80;
    if (c < 0x430) return c + 32;
    if (c < 0x460) return c;
    if (c < 0x482 || (c >= 0x48A && c < 0x4C0)) return (c & 1) ? c : c + 1;
    if (c == 0x4C0) return 0x4CF;
    if (c >= 0x4C1 && c <= 0x4CE) return (c & 1) ? c + 1 : c;
    if (c >= 0x4D0) return (c & 1) ? c : c + 1;
    return c;
  }
  if (c >= 0x531 && c <= 0x556) return c + 48;
  if (c >= 0x1E00 && c <= 0x1E95) return (c & 1) ? c : c + 1; /* Latin Extended Additional */
  if (c >= 0x1EA0 && c <= 0x1EFF) return (c & 1) ? c : c + 1;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
  return c;
}

static qb_code bad_utf8(qb_err *err, size_t at) {
  return qb_fail(err, QB_INVAL, "invalid UTF-8 at byte %zu", at);
}

static int is_word(int k) { return k == C_LETTER || k == C_NUM || k == C_EXTNUMLET || k == C_KATA; }

static int joins(int a, int b) {
  if (a == C_KATA || b == C_KATA)
    return (a == C_KATA || a == C_EXTNUMLET) && (b == C_KATA || b == C_EXTNUMLET);
  return is_word(a) && is_word(b);
}

/* Lucene's StandardTokenizer token types */
static const char *word_type(uint32_t first, int nums_only, int kata_only) {
  if (nums_only) return "<NUM>";
  if (kata_only) return "<KATAKANA>";
  if ((first >= 0xAC00 && first <= 0xD7A3) || (first >= 0x1100 && first <= 0x11FF) ||
      (first >= 0x3130 && first <= 0x318F))
    return "<HANGUL>";
  return "<ALPHANUM>";
}

static qb_code standard(const char *text, size_t len, int lowercase, qi_token_fn fn, void *ud,
                        qb_err *err) {
  const unsigned char *s = (const unsigned char *)text;
  char buf[QI_MAX_TOKEN_CHARS * 4 + 8];
  qi_token tok;
  size_t i = 0, n, blen;
  uint32_t c, pos = 0;
  qb_code rc;
  int k;
  while (i < len) {
    /* ASCII fast path for what separates words */
    if (s[i] < 0x80 && (unsigned)((s[i] | 0x20) - 'a') >= 26u && (unsigned)(s[i] - '0') >= 10u &&
        s[i] != '_') {
      i++;
      continue;
    }
    if (!(n = decode(s, i, len, &c))) return bad_utf8(err, i);
    k = cls(c);
    if (k == C_IDEO) {
      blen = encode(lowercase ? lower(c) : c, buf);
      tok = (qi_token){buf, (uint32_t)blen, pos++, (uint32_t)i, (uint32_t)(i + n),
                       (c >= 0x3040 && c < 0x30A0) ? "<HIRAGANA>" : "<IDEOGRAPHIC>"};
      if ((rc = fn(ud, &tok, err))) return rc;
      i += n;
      continue;
    }
    if (!is_word(k)) {
      i += n;
      continue;
    }
    {
      size_t start = i, nchars = 0;
      int last = k, alnum = 0, nums_only = 1, kata_only = 1;
      uint32_t first = c;
      blen = 0;
      for (;;) {
        if (k != C_EXTEND) last = k;
        if (k == C_LETTER || k == C_NUM || k == C_KATA) alnum = 1;
        if (k == C_LETTER || k == C_KATA || k == C_EXTNUMLET) nums_only = 0;
        if (k != C_KATA && k != C_EXTEND) kata_only = 0;
        blen += (c < 0x80) ? (buf[blen] = (char)((lowercase && c >= 'A' && c <= 'Z') ? c + 32 : c), 1)
                           : encode(lowercase ? lower(c) : c, buf + blen);
        nchars++;
        i += n;
        if (last == C_LETTER || last == C_NUM) /* fast path: ASCII letters and digits join it */
          while (i < len && nchars < QI_MAX_TOKEN_CHARS && (c = s[i]) < 0x80 &&
                 ((c | 0x20) - 'a' < 26 || c - '0' < 10)) {
            if (c >= 'A') nums_only = 0, last = C_LETTER;
            else last = C_NUM;
            buf[blen++] = (char)(lowercase && c >= 'A' && c <= 'Z' ? c + 32 : c);
            nchars++;
            i++;
          }
        if (nchars >= QI_MAX_TOKEN_CHARS || i >= len) break;
        if (s[i] < 0x80) {
          c = s[i];
          n = 1;
        } else if (!(n = decode(s, i, len, &c))) {
          return bad_utf8(err, i);
        }
        k = cls(c);
        if (k == C_EXTEND || joins(last, k)) continue;
        if ((last == C_LETTER && (k == C_MIDLETTER || k == C_MIDNUMLET)) ||
            (last == C_NUM && (k == C_MIDNUM || k == C_MIDNUMLET))) {
          uint32_t c3;
          size_t n3;
          if (i + n >= len) break;
          if (!(n3 = decode(s, i + n, len, &c3))) return bad_utf8(err, i + n);
          if (cls(c3) != last || nchars + 1 >= QI_MAX_TOKEN_CHARS) break;
          /* WB6/7 (letter mid letter), WB11/12 (digit mid digit): the mid char stays inside */
          blen += encode(c, buf + blen);
          nchars++;
          i += n;
          c = c3;
          n = n3;
          k = last;
          continue;
        }
        break;
      }
      if (!alnum) continue;
      tok = (qi_token){buf, (uint32_t)blen, pos++, (uint32_t)start, (uint32_t)i,
                       word_type(first, nums_only, kata_only)};
      if ((rc = fn(ud, &tok, err))) return rc;
    }
  }
  return QB_OK;
}

qb_code qi_analyze(qi_analyzer a, const char *text, size_t len, qi_token_fn fn, void *ud,
                   qb_err *err) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i;
  uint32_t c, n;
  qi_token tok;
  if (a == QI_ANALYZER_STANDARD) return standard(text, len, 1, fn, ud, err);
  if (a == QI_ANALYZER_CHAIN) return qb_fail(err, QB_INVAL, "analyzer: a chain needs qi_chain_analyze");
  if (a != QI_ANALYZER_KEYWORD) return QB_OK;
  for (i = 0; i < len; i += n) {
    if (s[i] < 0x80) {
      n = 1;
      continue;
    }
    if (!(n = (uint32_t)decode(s, i, len, &c))) return bad_utf8(err, i);
  }
  if (len > UINT32_MAX) return qb_fail(err, QB_LIMIT, "keyword value longer than 4 GiB");
  tok = (qi_token){text, (uint32_t)len, 0, 0, (uint32_t)len, "word"};
  return fn(ud, &tok, err);
}

/* ---- pieces analyzers.c builds chains from ---- */

qb_code qi__std_tokenize(const char *text, size_t len, int lowercase, qi_token_fn fn, void *ud,
                         qb_err *err) {
  return standard(text, len, lowercase, fn, ud, err);
}

size_t qi__utf8_decode(const char *s, size_t i, size_t len, uint32_t *cp) {
  return decode((const unsigned char *)s, i, len, cp);
}

size_t qi__utf8_encode(uint32_t c, char *out) { return encode(c, out); }

uint32_t qi__lower_cp(uint32_t c) { return lower(c); }

int qi__is_letter_cp(uint32_t c) {
  int k = cls(c);
  return k == C_LETTER || k == C_KATA || k == C_IDEO;
}
