/* stem.c: Snowball stemmers from libstemmer (Debian's libstemmer-dev), shared through one pool
** per algorithm. A struct sb_stemmer keeps state between calls, so a thread takes one from the
** pool for the length of an analysis and gives it back; at most POOL_KEEP idle ones are kept per
** algorithm, the rest are freed. Invariant: a pooled stemmer is used by one thread at a time. */
#include "internal.h"

#include <libstemmer.h>

#define POOL_KEEP 8
#define MAX_ALGOS 48

typedef struct pool {
  char name[24];
  struct sb_stemmer *idle[POOL_KEEP];
  int nidle;
} pool;

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static pool pools[MAX_ALGOS];
static int npools;

int qi__stem_known(const char *algo) {
  const char **l = sb_stemmer_list();
  for (; l && *l; l++)
    if (!strcmp(*l, algo)) return 1;
  return 0;
}

/* The pool of ALGO (created on first use), under pools_lock; NULL when full or unknown. */
static pool *find_pool(const char *algo) {
  int i;
  for (i = 0; i < npools; i++)
    if (!strcmp(pools[i].name, algo)) return &pools[i];
  if (npools == MAX_ALGOS || strlen(algo) >= sizeof pools[0].name || !qi__stem_known(algo))
    return NULL;
  snprintf(pools[npools].name, sizeof pools[npools].name, "%s", algo);
  return &pools[npools++];
}

qi__stemmer *qi__stem_take(const char *algo) {
  struct sb_stemmer *st = NULL;
  pool *p;
  pthread_mutex_lock(&pools_lock);
  p = find_pool(algo);
  if (p && p->nidle) st = p->idle[--p->nidle];
  pthread_mutex_unlock(&pools_lock);
  if (!st) st = sb_stemmer_new(algo, "UTF_8");
  return (qi__stemmer *)st;
}

void qi__stem_give(const char *algo, qi__stemmer *s) {
  pool *p;
  if (!s) return;
  pthread_mutex_lock(&pools_lock);
  p = find_pool(algo);
  if (p && p->nidle < POOL_KEEP) {
    p->idle[p->nidle++] = (struct sb_stemmer *)s;
    s = NULL;
  }
  pthread_mutex_unlock(&pools_lock);
  if (s) sb_stemmer_delete((struct sb_stemmer *)s);
}

size_t qi__stem(qi__stemmer *s, const char *word, size_t len, char *out, size_t cap) {
  struct sb_stemmer *st = (struct sb_stemmer *)s;
  const sb_symbol *r = sb_stemmer_stem(st, (const sb_symbol *)word, (int)len);
  int n;
  if (!r) return 0; /* out of memory inside libstemmer: keep the word */
  n = sb_stemmer_length(st);
  if (n <= 0 || (size_t)n > cap) return 0;
  memcpy(out, r, (size_t)n);
  return (size_t)n;
}
