/* analyzers.c: analyzers as chains (a tokenizer, then token filters): the built-in ones
** (standard, simple, whitespace, keyword, stop, english, snowball and a language analyzer for each
** Snowball stemmer libstemmer has) and the custom ones of an index's settings.analysis
** (tokenizer standard | whitespace | keyword | letter | lowercase; filters lowercase, stop,
** stemmer, snowball, porter_stem, asciifolding, and named filter definitions). A chain is
** immutable once built; the built-in chains are made once per process. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_FILTERS 16
#define MAX_ANALYZERS 256
#define MAX_STOPWORDS 4096
#define TOKBUF (QI_MAX_TOKEN_CHARS * 4 + 16)

enum { TK_STANDARD, TK_WHITESPACE, TK_KEYWORD, TK_LETTER, TK_LOWERCASE };
enum { FL_LOWER, FL_STOP, FL_STEM, FL_FOLD, FL_POSSESSIVE };

typedef struct flt {
  int kind;
  char algo[32];             /* FL_STEM: libstemmer's algorithm */
  const char *const *words;  /* FL_STOP: sorted (strcmp), NUL-terminated */
  size_t nwords;
  char **own;                /* the words when this filter owns them (custom lists) */
  size_t owncap;             /* entries allocated in own */
  int ignore_case;           /* FL_STOP */
  int preserve;              /* FL_FOLD: preserve_original */
} flt;

struct qi_chain {
  char name[64];
  int tok;
  int nf;
  flt f[MAX_FILTERS];
};

struct qi__analysis {
  qi_chain **chains;
  size_t n;
  json_t *fdefs; /* settings' filter definitions (a copy), for _analyze */
  const qi_chain *def, *def_search;
};

/* Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (Elasticsearch's _english_), sorted */
static const char *const english_stop[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with"};
#define N_ENGLISH_STOP (sizeof english_stop / sizeof *english_stop)

/* Elasticsearch's language analyzers that have a Snowball stemmer in libstemmer (same name) */
static const char *const languages[] = {
    "arabic", "armenian", "basque", "catalan", "danish", "dutch", "finnish", "french", "german",
    "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "norwegian",
    "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish"};
#define N_LANGUAGES (sizeof languages / sizeof *languages)

/* ---- running a chain ------------------------------------------------------------------------- */

#include "fold_tab.inc"

typedef struct run {
  const qi_chain *c;
  qi_token_fn fn;
  void *ud;
  qi__stemmer *st[MAX_FILTERS];
} run;

static int cmp_word(const char *w, size_t n, const char *s) {
  int c = strncmp(w, s, n);
  if (c) return c;
  return s[n] ? -1 : 0;
}

static int stop_has(const flt *f, const char *w, size_t n) {
  size_t lo = 0, hi = f->nwords;
  char low[TOKBUF];
  if (f->ignore_case) { /* the list is lowercased when ignore_case is on */
    size_t i, k = 0;
    uint32_t c, l;
    for (i = 0; i < n && k + 4 < sizeof low; i += l) {
      if (!(l = (uint32_t)qi__utf8_decode(w, i, n, &c))) return 0;
      k += qi__utf8_encode(qi__lower_cp(c), low + k);
    }
    w = low;
    n = k;
  }
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = cmp_word(w, n, f->words[mid]);
    if (!c) return 1;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return 0;
}

/* lowercase / fold S[0..N) into OUT (never longer than S); returns the new length */
static size_t map_lower(const char *s, size_t n, char *out) {
  size_t i, k = 0;
  uint32_t c, l;
  for (i = 0; i < n; i += l) {
    if (!(l = (uint32_t)qi__utf8_decode(s, i, n, &c))) { l = 1; out[k++] = s[i]; continue; }
    uint32_t lc = qi__lower_cp(c);
    char tmp[4];
    size_t tl = qi__utf8_encode(lc, tmp);
    if (tl > l) { memcpy(out + k, s + i, l); k += l; continue; }
    memcpy(out + k, tmp, tl);
    k += tl;
  }
  return k;
}

static size_t map_fold(const char *s, size_t n, char *out) {
  size_t i, k = 0;
  uint32_t c, l;
  for (i = 0; i < n; i += l) {
    const char *r = NULL;
    if (!(l = (uint32_t)qi__utf8_decode(s, i, n, &c))) { l = 1; out[k++] = s[i]; continue; }
    if (c >= 0xC0 && c < 0x250) r = fold_tab[c - 0xC0];
    else if (c == 0x2018 || c == 0x2019) r = "'";
    else if (c == 0x201C || c == 0x201D) r = "\"";
    if (r && strlen(r) <= l) {
      memcpy(out + k, r, strlen(r));
      k += strlen(r);
    } else {
      memcpy(out + k, s + i, l);
      k += l;
    }
  }
  return k;
}

static qb_code apply(run *r, int i, const qi_token *in, qb_err *err) {
  char b[TOKBUF], tmp[TOKBUF];
  qi_token t = *in;
  size_t n;
  for (; i < r->c->nf; i++) {
    const flt *f = &r->c->f[i];
    switch (f->kind) {
    case FL_LOWER:
      t.len = (uint32_t)map_lower(t.term, t.len, tmp);
      memcpy(b, tmp, t.len);
      t.term = b;
      break;
    case FL_FOLD:
      n = map_fold(t.term, t.len, tmp);
      if (f->preserve && (n != t.len || memcmp(tmp, t.term, n))) {
        qb_code rc = apply(r, i + 1, &t, err); /* the original first, at the same position */
        if (rc) return rc;
      }
      memcpy(b, tmp, n);
      t.len = (uint32_t)n;
      t.term = b;
      break;
    case FL_STOP:
      if (stop_has(f, t.term, t.len)) return QB_OK;
      break;
    case FL_POSSESSIVE:
      if (t.len >= 2 && (t.term[t.len - 1] | 0x20) == 's') {
        if (t.term[t.len - 2] == '\'') t.len -= 2;
        else if (t.len >= 4 && !memcmp(t.term + t.len - 4, "\xE2\x80\x99", 3)) t.len -= 4;
      }
      break;
    case FL_STEM:
      if (!r->st[i] && !(r->st[i] = qi__stem_take(f->algo)))
        return qb_fail(err, QB_NOMEM, "analysis: out of memory (stemmer [%s])", f->algo);
      if ((n = qi__stem(r->st[i], t.term, t.len, tmp, sizeof tmp))) {
        memcpy(b, tmp, n);
        t.len = (uint32_t)n;
        t.term = b;
      }
      break;
    }
    if (!t.len) return QB_OK;
  }
  return r->fn(r->ud, &t, err);
}

static qb_code on_raw(void *ud, const qi_token *t, qb_err *err) { return apply(ud, 0, t, err); }

static int is_space(uint32_t c) {
  return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x2006) || (c >= 0x2008 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x205F || c == 0x3000 || c == 0x85;
}

/* whitespace (KEEP: !is_space) and letter (KEEP: letters) tokenizers; LOWER lowercases */
static qb_code split(const char *s, size_t len, int letters, int lower, run *r, qb_err *err) {
  char buf[TOKBUF];
  size_t i = 0, l, start = 0, blen = 0, nch = 0;
  uint32_t c, pos = 0;
  int in = 0;
  qi_token t;
  qb_code rc;
  while (i <= len) {
    int keep = 0;
    l = 0;
    if (i < len) {
      if (!(l = qi__utf8_decode(s, i, len, &c)))
        return qb_fail(err, QB_INVAL, "invalid UTF-8 at byte %zu", i);
      keep = letters ? qi__is_letter_cp(c) : !is_space(c);
    }
    if (in && (!keep || nch == QI_MAX_TOKEN_CHARS)) {
      t = (qi_token){buf, (uint32_t)blen, pos++, (uint32_t)start, (uint32_t)i, "word"};
      if ((rc = apply(r, 0, &t, err))) return rc;
      in = 0;
    }
    if (i == len) break;
    if (keep) {
      if (!in) { in = 1; start = i; blen = 0; nch = 0; }
      blen += qi__utf8_encode(lower ? qi__lower_cp(c) : c, buf + blen);
      nch++;
    }
    i += l;
  }
  return QB_OK;
}

qb_code qi_chain_analyze(const qi_chain *c, const char *text, size_t len, qi_token_fn fn,
                         void *ud, qb_err *err) {
  run r;
  qb_code rc;
  int i;
  memset(&r, 0, sizeof r);
  r.c = c;
  r.fn = fn;
  r.ud = ud;
  if (len > UINT32_MAX) return qb_fail(err, QB_LIMIT, "text longer than 4 GiB");
  switch (c->tok) {
  case TK_STANDARD: rc = qi__std_tokenize(text, len, 0, on_raw, &r, err); break;
  case TK_WHITESPACE: rc = split(text, len, 0, 0, &r, err); break;
  case TK_LETTER: rc = split(text, len, 1, 0, &r, err); break;
  case TK_LOWERCASE: rc = split(text, len, 1, 1, &r, err); break;
  default: {
    size_t k;
    uint32_t cp;
    qi_token t;
    for (k = 0; k < len;) {
      size_t l = qi__utf8_decode(text, k, len, &cp);
      if (!l) return qb_fail(err, QB_INVAL, "invalid UTF-8 at byte %zu", k);
      k += l;
    }
    t = (qi_token){text, (uint32_t)len, 0, 0, (uint32_t)len, "word"};
    rc = len ? apply(&r, 0, &t, err) : QB_OK;
    break;
  }
  }
  for (i = 0; i < c->nf; i++)
    if (r.st[i]) qi__stem_give(c->f[i].algo, r.st[i]);
  return rc;
}

/* ---- built-in chains ------------------------------------------------------------------------- */

static qi_chain builtins[8 + N_LANGUAGES];
static size_t nbuiltins;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static flt f_lower(void) { return (flt){.kind = FL_LOWER}; }
static flt f_stop_en(void) { return (flt){.kind = FL_STOP, .words = english_stop, .nwords = N_ENGLISH_STOP}; }
static flt f_stem(const char *algo) {
  flt f = {.kind = FL_STEM};
  snprintf(f.algo, sizeof f.algo, "%s", algo);
  return f;
}

static qi_chain *add_builtin(const char *name, int tok) {
  qi_chain *c = &builtins[nbuiltins++];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->tok = tok;
  return c;
}

static void make_builtins(void) {
  qi_chain *c;
  size_t i;
  c = add_builtin("standard", TK_STANDARD);
  c->f[c->nf++] = f_lower();
  add_builtin("simple", TK_LOWERCASE);
  add_builtin("whitespace", TK_WHITESPACE);
  add_builtin("keyword", TK_KEYWORD);
  c = add_builtin("stop", TK_LOWERCASE);
  c->f[c->nf++] = f_stop_en();
  /* EnglishAnalyzer: possessive, lowercase, stop, Porter (the original algorithm) */
  c = add_builtin("english", TK_STANDARD);
  c->f[c->nf++] = (flt){.kind = FL_POSSESSIVE};
  c->f[c->nf++] = f_lower();
  c->f[c->nf++] = f_stop_en();
  c->f[c->nf++] = f_stem("porter");
  /* the snowball analyzer: standard, lowercase, stop, Snowball English */
  c = add_builtin("snowball", TK_STANDARD);
  c->f[c->nf++] = f_lower();
  c->f[c->nf++] = f_stop_en();
  c->f[c->nf++] = f_stem("english");
  for (i = 0; i < N_LANGUAGES; i++) {
    if (!qi__stem_known(languages[i])) continue;
    c = add_builtin(languages[i], TK_STANDARD);
    c->f[c->nf++] = f_lower();
    c->f[c->nf++] = f_stem(languages[i]);
  }
}

static const qi_chain *builtin(const char *name) {
  size_t i;
  pthread_once(&builtins_once, make_builtins);
  if (!strcmp(name, "default")) name = "standard";
  for (i = 0; i < nbuiltins; i++)
    if (!strcmp(builtins[i].name, name)) return &builtins[i];
  return NULL;
}

const qi_chain *qi__analysis_find(const qi__analysis *a, const char *name) {
  size_t i;
  if (a)
    for (i = 0; i < a->n; i++)
      if (!strcmp(a->chains[i]->name, name)) return a->chains[i];
  return builtin(name);
}

const qi_chain *qi__analysis_default(const qi__analysis *a, int search) {
  if (!a) return NULL;
  return search && a->def_search ? a->def_search : a->def;
}

const qi_chain *qi_snapshot_chain(const qi_snapshot *s, const char *name) {
  return qi__analysis_find(s && s->ix ? s->ix->analysis : NULL, name);
}

/* ---- settings.analysis ------------------------------------------------------------------------ */

static void chain_free(qi_chain *c) {
  int i;
  size_t k;
  if (!c) return;
  for (i = 0; i < c->nf; i++)
    if (c->f[i].own) {
      for (k = 0; k < c->f[i].owncap; k++)
        if (c->f[i].own[k]) qb_free(c->f[i].own[k], strlen(c->f[i].own[k]) + 1);
      qb_free(c->f[i].own, c->f[i].owncap * sizeof *c->f[i].own);
    }
  qb_free(c, sizeof *c);
}

void qi__analysis_free(qi__analysis *a) {
  size_t i;
  if (!a) return;
  for (i = 0; i < a->n; i++) chain_free(a->chains[i]);
  json_decref(a->fdefs);
  qb_free(a->chains, MAX_ANALYZERS * sizeof *a->chains);
  qb_free(a, sizeof *a);
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* A stop word list: "_english_", "_none_" or an array of strings. */
static qb_code stop_words(json_t *v, int ignore_case, const char *where, flt *f, qb_err *err) {
  size_t i, n, k;
  f->kind = FL_STOP;
  f->ignore_case = ignore_case;
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (!strcmp(s, "_english_")) {
      f->words = english_stop;
      f->nwords = N_ENGLISH_STOP;
      return QB_OK;
    }
    if (!strcmp(s, "_none_")) {
      f->words = NULL;
      f->nwords = 0;
      return QB_OK;
    }
    return qb_fail(err, QB_INVAL, "%s: unknown stop words list [%s]: only _english_ and _none_ "
                   "are built in (give the words as an array)", where, s);
  }
  if (!json_is_array(v))
    return qb_fail(err, QB_INVAL, "%s: [stopwords] must be a list name or an array of strings",
                   where);
  n = json_array_size(v);
  if (n > MAX_STOPWORDS) return qb_fail(err, QB_INVAL, "%s: more than %d stop words", where, MAX_STOPWORDS);
  if (!n) return QB_OK;
  if (!(f->own = qb_calloc(n, sizeof *f->own))) return qb_fail(err, QB_NOMEM, "analysis: out of memory");
  f->owncap = n;
  for (i = 0; i < n; i++) {
    json_t *w = json_array_get(v, i);
    const char *s;
    size_t len;
    if (!json_is_string(w)) return qb_fail(err, QB_INVAL, "%s: [stopwords] must hold strings", where);
    s = json_string_value(w);
    len = json_string_length(w);
    if (len >= TOKBUF) return qb_fail(err, QB_INVAL, "%s: a stop word is too long", where);
    if (!(f->own[i] = qb_malloc(len + 1))) return qb_fail(err, QB_NOMEM, "analysis: out of memory");
    if (ignore_case) len = map_lower(s, len, f->own[i]);
    else memcpy(f->own[i], s, len);
    f->own[i][len] = 0;
  }
  qsort(f->own, n, sizeof *f->own, cmp_str);
  for (i = k = 0; i < n; i++) /* dedupe; the freed tail's slots are NULL */
    if (k && !strcmp(f->own[k - 1], f->own[i])) {
      qb_free(f->own[i], strlen(f->own[i]) + 1);
      f->own[i] = NULL;
    } else {
      char *w = f->own[i];
      f->own[i] = NULL;
      f->own[k++] = w;
    }
  f->words = (const char *const *)f->own;
  f->nwords = k;
  return QB_OK;
}

/* A stemmer's language as Elasticsearch's stemmer / snowball filters name it. */
static qb_code stem_language(const char *lang, int snowball, const char *where, flt *f, qb_err *err) {
  char low[32];
  size_t i;
  for (i = 0; lang[i] && i + 1 < sizeof low; i++) low[i] = (char)(lang[i] | 0x20);
  low[i] = 0;
  if (!strcmp(low, "possessive_english")) {
    *f = (flt){.kind = FL_POSSESSIVE};
    return QB_OK;
  }
  /* stemmer: "english" is Porter's algorithm (PorterStemFilter), "porter2" Snowball English; the
  ** snowball filter names Snowball's own programs ("English", "Porter") */
  const char *algo = low;
  if (!snowball && (!strcmp(low, "english") || !strcmp(low, "porter"))) algo = "porter";
  else if (!strcmp(low, "porter2")) algo = "english";
  if (!qi__stem_known(algo))
    return qb_fail(err, QB_INVAL, "%s: stemmer language [%s] is not available (Snowball stemmers "
                   "only: light_ and minimal_ stemmers are not)", where, lang);
  *f = f_stem(algo);
  return QB_OK;
}

/* A filter named NAME: one of SETTINGS' "filter" definitions, else a built-in one. */
static qb_code filter_def(json_t *defs, json_t *spec, const char *where, flt *f, int depth,
                          qb_err *err);

static qb_code builtin_filter(const char *name, const char *where, flt *f, qb_err *err) {
  if (!strcmp(name, "lowercase")) *f = f_lower();
  else if (!strcmp(name, "asciifolding")) *f = (flt){.kind = FL_FOLD};
  else if (!strcmp(name, "stop")) *f = f_stop_en();
  else if (!strcmp(name, "porter_stem")) *f = f_stem("porter");
  else if (!strcmp(name, "stemmer")) *f = f_stem("porter");
  else if (!strcmp(name, "snowball")) *f = f_stem("english");
  else
    return qb_fail(err, QB_INVAL, "%s: failed to find filter under name [%s]", where, name);
  return QB_OK;
}

static qb_code check_keys(json_t *o, const char *keys, const char *where, qb_err *err) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    const char *at = keys;
    size_t n = strlen(k);
    int ok = 0;
    for (; (at = strstr(at, k)); at += n)
      if ((at == keys || at[-1] == ' ') && (at[n] == ' ' || !at[n])) { ok = 1; break; }
    if (!ok) return qb_fail(err, QB_INVAL, "unknown setting [%s.%s]", where, k);
  }
  return QB_OK;
}

static qb_code filter_def(json_t *defs, json_t *spec, const char *where, flt *f, int depth,
                          qb_err *err) {
  json_t *jt, *v;
  const char *type;
  qb_code rc;
  if (json_is_string(spec)) {
    json_t *d = json_object_get(defs, json_string_value(spec));
    if (!d) return builtin_filter(json_string_value(spec), where, f, err);
    if (depth > 0) return qb_fail(err, QB_INVAL, "%s: filter [%s] refers to another", where, json_string_value(spec));
    char w2[256];
    snprintf(w2, sizeof w2, "index.analysis.filter.%s", json_string_value(spec));
    return filter_def(defs, d, w2, f, depth + 1, err);
  }
  if (!json_is_object(spec)) return qb_fail(err, QB_INVAL, "%s: a filter is a name or an object", where);
  jt = json_object_get(spec, "type");
  if (!json_is_string(jt)) return qb_fail(err, QB_INVAL, "%s: filter [type] must be set", where);
  type = json_string_value(jt);
  if (!strcmp(type, "lowercase")) {
    if ((rc = check_keys(spec, "type", where, err))) return rc;
    *f = f_lower();
  } else if (!strcmp(type, "asciifolding")) {
    if ((rc = check_keys(spec, "type preserve_original", where, err))) return rc;
    *f = (flt){.kind = FL_FOLD};
    v = json_object_get(spec, "preserve_original");
    if (v && !json_is_boolean(v) && !(json_is_string(v) && (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false"))))
      return qb_fail(err, QB_INVAL, "%s: [preserve_original] must be a boolean", where);
    f->preserve = json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), "true"));
  } else if (!strcmp(type, "stop")) {
    json_t *sw = json_object_get(spec, "stopwords"), *ic = json_object_get(spec, "ignore_case");
    if ((rc = check_keys(spec, "type stopwords ignore_case", where, err))) return rc;
    if (ic && !json_is_boolean(ic)) return qb_fail(err, QB_INVAL, "%s: [ignore_case] must be a boolean", where);
    memset(f, 0, sizeof *f);
    if (!sw) { *f = f_stop_en(); f->ignore_case = json_is_true(ic); return QB_OK; }
    return stop_words(sw, json_is_true(ic), where, f, err);
  } else if (!strcmp(type, "stemmer") || !strcmp(type, "snowball")) {
    json_t *l = json_object_get(spec, "language");
    if (!l) l = json_object_get(spec, "name");
    if ((rc = check_keys(spec, type[1] == 't' ? "type language name" : "type language", where, err)))
      return rc;
    if (l && !json_is_string(l)) return qb_fail(err, QB_INVAL, "%s: [language] must be a string", where);
    return stem_language(l ? json_string_value(l) : "english", type[1] == 'n', where, f, err);
  } else if (!strcmp(type, "porter_stem")) {
    if ((rc = check_keys(spec, "type", where, err))) return rc;
    *f = f_stem("porter");
  } else {
    return qb_fail(err, QB_INVAL, "%s: unknown filter type [%s]: the filters served are "
                   "lowercase, stop, stemmer, snowball, porter_stem and asciifolding", where, type);
  }
  return QB_OK;
}

static int tokenizer_kind(const char *s) {
  if (!strcmp(s, "standard")) return TK_STANDARD;
  if (!strcmp(s, "whitespace")) return TK_WHITESPACE;
  if (!strcmp(s, "keyword")) return TK_KEYWORD;
  if (!strcmp(s, "letter")) return TK_LETTER;
  if (!strcmp(s, "lowercase")) return TK_LOWERCASE;
  return -1;
}

qb_code qi__chain_custom(json_t *fdefs, const char *tokenizer, json_t *filters, const char *name,
                         const char *where, qi_chain **out, qb_err *err) {
  qi_chain *c = qb_calloc(1, sizeof *c);
  size_t i;
  qb_code rc;
  *out = NULL;
  if (!c) return qb_fail(err, QB_NOMEM, "analysis: out of memory");
  snprintf(c->name, sizeof c->name, "%s", name);
  if ((c->tok = tokenizer_kind(tokenizer)) < 0) {
    chain_free(c);
    return qb_fail(err, QB_INVAL, "%s: failed to find tokenizer under name [%s] (standard, "
                   "whitespace, keyword, letter and lowercase are served)", where, tokenizer);
  }
  if (filters && !json_is_array(filters) && !json_is_string(filters)) {
    chain_free(c);
    return qb_fail(err, QB_INVAL, "%s: [filter] must be an array", where);
  }
  for (i = 0; filters && i < (json_is_string(filters) ? 1 : json_array_size(filters)); i++) {
    json_t *spec = json_is_string(filters) ? filters : json_array_get(filters, i);
    if (c->nf == MAX_FILTERS) {
      chain_free(c);
      return qb_fail(err, QB_INVAL, "%s: more than %d filters", where, MAX_FILTERS);
    }
    if ((rc = filter_def(fdefs, spec, where, &c->f[c->nf], 0, err))) {
      c->nf++;
      chain_free(c);
      return rc;
    }
    c->nf++;
  }
  *out = c;
  return QB_OK;
}

/* A prebuilt analyzer type with options: standard / stop / a language with "stopwords". */
static qb_code typed_analyzer(json_t *def, const char *type, const char *name, const char *where,
                              qi_chain **out, qb_err *err) {
  const qi_chain *b = builtin(type);
  json_t *sw = json_object_get(def, "stopwords");
  qi_chain *c;
  int i, at = -1;
  qb_code rc;
  *out = NULL;
  if (!b || !strcmp(type, "default"))
    return qb_fail(err, QB_INVAL, "%s: unknown analyzer type [%s]", where, type);
  if ((rc = check_keys(def, (!strcmp(type, "simple") || !strcmp(type, "whitespace") ||
                             !strcmp(type, "keyword")) ? "type" : "type stopwords", where, err)))
    return rc;
  if (!(c = qb_malloc(sizeof *c))) return qb_fail(err, QB_NOMEM, "analysis: out of memory");
  *c = *b;
  snprintf(c->name, sizeof c->name, "%s", name);
  if (sw) {
    for (i = 0; i < c->nf; i++)
      if (c->f[i].kind == FL_STOP) at = i;
    if (at < 0) { /* standard and language analyzers: stop words go after lowercase */
      for (i = 0; i < c->nf && c->f[i].kind != FL_LOWER; i++) {}
      at = i < c->nf ? i + 1 : c->nf;
      memmove(&c->f[at + 1], &c->f[at], (size_t)(c->nf - at) * sizeof *c->f);
      c->nf++;
    }
    memset(&c->f[at], 0, sizeof c->f[at]);
    if ((rc = stop_words(sw, 0, where, &c->f[at], err))) {
      chain_free(c);
      return rc;
    }
  }
  *out = c;
  return QB_OK;
}

qb_code qi__analysis_build(json_t *settings, qi__analysis **out, qb_err *err) {
  json_t *an = NULL, *adefs, *fdefs, *v;
  qi__analysis *a;
  const char *k;
  qb_code rc = QB_OK;
  *out = NULL;
  if (json_is_object(settings)) {
    json_object_foreach(settings, k, v) {
      if (!strncmp(k, "analysis.", 9) || !strncmp(k, "index.analysis", 14))
        return qb_fail(err, QB_INVAL, "setting [%s]: write analysis settings as objects "
                       "({\"analysis\": {\"analyzer\": {...}}})", k);
    }
    an = json_object_get(settings, "analysis");
    if (!an) an = json_object_get(json_object_get(settings, "index"), "analysis");
  }
  if (!an) return QB_OK;
  if (!json_is_object(an)) return qb_fail(err, QB_INVAL, "[index.analysis] must be an object");
  json_object_foreach(an, k, v) {
    if (!strcmp(k, "analyzer") || !strcmp(k, "filter")) {
      if (!json_is_object(v)) return qb_fail(err, QB_INVAL, "[index.analysis.%s] must be an object", k);
      continue;
    }
    if ((!strcmp(k, "tokenizer") || !strcmp(k, "char_filter") || !strcmp(k, "normalizer")) &&
        json_is_object(v) && !json_object_size(v))
      continue;
    return qb_fail(err, QB_INVAL, "[index.analysis.%s] is not supported: custom analyzers take "
                   "the built-in tokenizers and filter definitions", k);
  }
  adefs = json_object_get(an, "analyzer");
  fdefs = json_object_get(an, "filter");
  /* filters are checked even when no analyzer uses them */
  json_object_foreach(fdefs, k, v) {
    char where[256];
    snprintf(where, sizeof where, "index.analysis.filter.%s", k);
    if (!json_is_object(v)) return qb_fail(err, QB_INVAL, "[%s] must be an object", where);
    qi_chain *h = qb_calloc(1, sizeof *h);
    if (!h) return qb_fail(err, QB_NOMEM, "analysis: out of memory");
    rc = filter_def(fdefs, v, where, &h->f[0], 1, err);
    h->nf = 1;
    chain_free(h);
    if (rc) return rc;
  }
  if (json_object_size(adefs) > MAX_ANALYZERS)
    return qb_fail(err, QB_INVAL, "[index.analysis.analyzer]: more than %d analyzers", MAX_ANALYZERS);
  if (!(a = qb_calloc(1, sizeof *a)) || !(a->chains = qb_calloc(MAX_ANALYZERS, sizeof *a->chains))) {
    qb_free(a, sizeof *a);
    return qb_fail(err, QB_NOMEM, "analysis: out of memory");
  }
  json_object_foreach(adefs, k, v) {
    char where[256];
    json_t *jt, *jtok;
    qi_chain *c = NULL;
    snprintf(where, sizeof where, "index.analysis.analyzer.%s", k);
    if (strlen(k) >= sizeof c->name || !*k) {
      rc = qb_fail(err, QB_INVAL, "[%s]: an analyzer name is 1 to 63 bytes", where);
      break;
    }
    if (!json_is_object(v)) {
      rc = qb_fail(err, QB_INVAL, "[%s] must be an object", where);
      break;
    }
    jt = json_object_get(v, "type");
    jtok = json_object_get(v, "tokenizer");
    if (jt && !json_is_string(jt)) {
      rc = qb_fail(err, QB_INVAL, "[%s.type] must be a string", where);
      break;
    }
    if ((!jt && jtok) || (jt && !strcmp(json_string_value(jt), "custom"))) {
      json_t *cf = json_object_get(v, "char_filter"), *gap = json_object_get(v, "position_increment_gap");
      if ((rc = check_keys(v, "type tokenizer filter char_filter position_increment_gap", where, err))) break;
      if (cf && !(json_is_array(cf) && !json_array_size(cf))) {
        rc = qb_fail(err, QB_INVAL, "[%s.char_filter]: character filters are not supported", where);
        break;
      }
      if (gap && !(json_is_integer(gap) && json_integer_value(gap) == 100)) {
        rc = qb_fail(err, QB_INVAL, "[%s.position_increment_gap]: only 100 is supported", where);
        break;
      }
      if (!json_is_string(jtok)) {
        rc = qb_fail(err, QB_INVAL, "analyzer [%s] must specify either an analyzer type, or a tokenizer", k);
        break;
      }
      rc = qi__chain_custom(fdefs, json_string_value(jtok), json_object_get(v, "filter"), k, where, &c, err);
    } else if (!jt) {
      rc = qb_fail(err, QB_INVAL, "analyzer [%s] must specify either an analyzer type, or a tokenizer", k);
    } else {
      rc = typed_analyzer(v, json_string_value(jt), k, where, &c, err);
    }
    if (rc) break;
    a->chains[a->n++] = c;
    if (!strcmp(k, "default")) a->def = c;
    if (!strcmp(k, "default_search")) a->def_search = c;
  }
  if (!rc && fdefs && !(a->fdefs = json_deep_copy(fdefs)))
    rc = qb_fail(err, QB_NOMEM, "analysis: out of memory");
  if (rc) {
    qi__analysis_free(a);
    return rc;
  }
  *out = a;
  return QB_OK;
}

void qi__chain_free(qi_chain *c) { chain_free(c); }

json_t *qi__analysis_filters(const qi__analysis *a) { return a ? a->fdefs : NULL; }
