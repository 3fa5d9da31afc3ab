/* agg_parse.c: the request shapes of the aggregations of issue 12 §4 (cardinality,
** percentiles, percentile_ranks, extended_stats, weighted_avg, top_hits, range, date_range,
** filter, filters, missing, global, composite and the pipelines avg/sum/max/min_bucket and
** bucket_sort) and the new options of terms (missing, include/exclude, min_doc_count 0) and
** date_histogram (time_zone, offset, extended_bounds). Every option not listed is refused with
** a 400 naming it, as dsl.c does for the others. */
#include "aggs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const xkinds[] = {"cardinality", "percentiles", "percentile_ranks", "extended_stats",
                                     "weighted_avg", "top_hits", "range", "date_range", "filter", "filters",
                                     "missing", "global", "composite", "avg_bucket", "sum_bucket",
                                     "max_bucket", "min_bucket", "bucket_sort"};

int qq__agg_ext_kind(const char *type) {
  for (size_t i = 0; i < QB_COUNTOF(xkinds); i++)
    if (!strcmp(type, xkinds[i])) return (int)(AG_CARDINALITY + i);
  return -1;
}

typedef struct ps {
  qq__pctx *p;
  qb_err *err;
  qb_arena *ar;
  const char *type, *name;
} ps;

static qb_code nomem(ps *c) { return qb_fail(c->err, QB_NOMEM, "query: out of memory"); }
static qb_code unknown(ps *c, const char *k) {
  return qb_fail(c->err, QB_MALFORMED, "[%s] aggregation [%s] does not support [%s]", c->type, c->name, k);
}
static qb_code bad(ps *c, const char *k, const char *what) {
  return qb_fail(c->err, QB_MALFORMED, "[%s] aggregation [%s]: [%s] must be %s", c->type, c->name, k, what);
}

static qq__xagg *xget(ps *c, qq__agg *g) {
  if (!g->x && (g->x = qb_arena_alloc(c->ar, sizeof *g->x))) memset(g->x, 0, sizeof *g->x);
  return g->x;
}

/* Java's Double.toString for the common range: "100.0", "0.5", "99.9" */
void qq__fmt_double(double v, char *out, size_t cap) {
  if (v == floor(v) && fabs(v) < 1e7) {
    snprintf(out, cap, "%.1f", v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, cap, "%.*g", prec, v);
    if (strtod(out, NULL) == v) break;
  }
  if (!strchr(out, '.') && !strchr(out, 'e') && !strchr(out, 'n') && !strchr(out, 'i')) {
    size_t n = strlen(out);
    if (n + 2 < cap) memcpy(out + n, ".0", 3);
  }
}

/* "sort" of top_hits / bucket_sort: a string, an object {field: order|{order}} or an array */
static qb_code parse_sort(ps *c, const json_t *v, qq__xagg *x) {
  size_t n = json_is_array(v) ? json_array_size(v) : 1;
  if (n > 8) return qb_fail(c->err, QB_INVAL, "[%s] aggregation [%s]: at most 8 sort keys", c->type, c->name);
  if (!(x->sort = qb_arena_array(c->ar, n + 1, sizeof *x->sort))) return nomem(c);
  x->nsort = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
    qq__xsort *s = &x->sort[i];
    if (json_is_string(e)) {
      s->field = json_string_value(e);
      s->desc = !strcmp(s->field, "_score");
      continue;
    }
    if (!json_is_object(e) || json_object_size(e) != 1) return bad(c, "sort", "a field name or {\"field\": \"asc|desc\"}");
    s->field = json_object_iter_key(json_object_iter((json_t *)e));
    const json_t *o = json_object_iter_value(json_object_iter((json_t *)e));
    if (json_is_object(o)) {
      const char *k;
      json_t *ov;
      const json_t *ord = NULL;
      json_object_foreach((json_t *)o, k, ov) {
        if (!strcmp(k, "order")) ord = ov;
        else return unknown(c, k);
      }
      o = ord;
    }
    const char *d = json_is_string(o) ? json_string_value(o) : NULL;
    if (!d || (strcmp(d, "asc") && strcmp(d, "desc")))
      return qb_fail(c->err, QB_INVAL, "[%s] aggregation [%s]: unknown sort order [%s]", c->type, c->name, d ? d : "?");
    s->desc = !strcmp(d, "desc");
  }
  return QB_OK;
}

static qb_code get_u32(ps *c, const char *k, const json_t *v, uint32_t max, uint32_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return bad(c, k, "a non-negative integer");
  if (json_integer_value(v) > (json_int_t)max)
    return qb_fail(c->err, QB_INVAL, "[%s] aggregation [%s]: [%s] must be at most %u", c->type, c->name, k, max);
  *out = (uint32_t)json_integer_value(v);
  return QB_OK;
}

static qb_code parse_ranges(ps *c, const json_t *v, int dates, qq__xagg *x) {
  if (!json_is_array(v) || !json_array_size(v)) return bad(c, "ranges", "a non-empty array");
  if (json_array_size(v) > 1024) return qb_fail(c->err, QB_INVAL, "[%s] aggregation [%s]: at most 1024 ranges", c->type, c->name);
  x->nranges = json_array_size(v);
  if (!(x->ranges = qb_arena_array(c->ar, x->nranges, sizeof *x->ranges))) return nomem(c);
  for (size_t i = 0; i < x->nranges; i++) {
    const json_t *r = json_array_get(v, i);
    qq__xrange *q = &x->ranges[i];
    const char *k;
    json_t *o;
    if (!json_is_object(r)) return bad(c, "ranges", "an array of objects");
    json_object_foreach((json_t *)r, k, o) {
      if (!strcmp(k, "key")) {
        if (!json_is_string(o)) return bad(c, "key", "a string");
        q->key = json_string_value(o);
        continue;
      }
      if (strcmp(k, "from") && strcmp(k, "to")) return unknown(c, k);
      if (json_is_null(o)) continue;
      double d;
      if (json_is_number(o)) d = json_number_value(o);
      else if (dates && json_is_string(o)) {
        int64_t ms;
        if (qq__parse_date(json_string_value(o), &ms))
          return qb_fail(c->err, QB_INVAL, "failed to parse date field [%s] in [%s] aggregation [%s]", json_string_value(o), c->type, c->name);
        d = (double)ms;
      } else if (json_is_string(o)) {
        char *end;
        d = strtod(json_string_value(o), &end);
        if (*end || end == json_string_value(o)) return bad(c, k, "a number");
      } else return bad(c, k, dates ? "a date or a number" : "a number");
      if (k[0] == 'f') { q->has_from = 1; q->from = d; }
      else { q->has_to = 1; q->to = d; }
    }
    if (!q->key) { /* "from-to" with * for an open end */
      char a[64], b[64], buf[140];
      if (dates) {
        if (q->has_from) qq__tz_format(NULL, x->format, (int64_t)q->from, a, sizeof a);
        if (q->has_to) qq__tz_format(NULL, x->format, (int64_t)q->to, b, sizeof b);
      } else {
        if (q->has_from) qq__fmt_double(q->from, a, sizeof a);
        if (q->has_to) qq__fmt_double(q->to, b, sizeof b);
      }
      snprintf(buf, sizeof buf, "%s-%s", q->has_from ? a : "*", q->has_to ? b : "*");
      if (!(q->key = qb_arena_strndup(c->ar, buf, strlen(buf)))) return nomem(c);
    }
  }
  /* Elasticsearch answers ranges sorted by from, then to */
  for (size_t i = 1; i < x->nranges; i++)
    for (size_t j = i; j > 0; j--) {
      qq__xrange *p = &x->ranges[j - 1], *q = &x->ranges[j];
      double pf = p->has_from ? p->from : -INFINITY, qf = q->has_from ? q->from : -INFINITY;
      double pt = p->has_to ? p->to : INFINITY, qt = q->has_to ? q->to : INFINITY;
      if (pf < qf || (pf == qf && pt <= qt)) break;
      qq__xrange t = *p;
      *p = *q;
      *q = t;
    }
  return QB_OK;
}

static qb_code parse_composite(ps *c, const json_t *body, qq__xagg *x) {
  const char *k;
  json_t *o;
  x->size = 10;
  json_object_foreach((json_t *)body, k, o) {
    if (!strcmp(k, "size")) {
      qb_code rc = get_u32(c, k, o, 65536, &x->size);
      if (rc) return rc;
    } else if (!strcmp(k, "after")) {
      if (!json_is_object(o)) return bad(c, k, "an object");
      x->after = o;
    } else if (!strcmp(k, "sources")) {
      if (!json_is_array(o) || !json_array_size(o) || json_array_size(o) > 16) return bad(c, k, "an array of 1 to 16 sources");
      x->nsrc = json_array_size(o);
      if (!(x->src = qb_arena_array(c->ar, x->nsrc, sizeof *x->src))) return nomem(c);
      for (size_t i = 0; i < x->nsrc; i++) {
        const json_t *e = json_array_get(o, i);
        qq__csrc *s = &x->src[i];
        if (!json_is_object(e) || json_object_size(e) != 1) return bad(c, "sources", "an array of {name: {type: {...}}}");
        s->name = json_object_iter_key(json_object_iter((json_t *)e));
        const json_t *t = json_object_iter_value(json_object_iter((json_t *)e));
        if (!json_is_object(t) || json_object_size(t) != 1) return bad(c, "sources", "an array of {name: {type: {...}}}");
        const char *st = json_object_iter_key(json_object_iter((json_t *)t));
        const json_t *sb = json_object_iter_value(json_object_iter((json_t *)t));
        if (!strcmp(st, "terms")) s->kind = 0;
        else if (!strcmp(st, "histogram")) s->kind = 1;
        else if (!strcmp(st, "date_histogram")) s->kind = 2;
        else return qb_fail(c->err, QB_MALFORMED, "[composite] aggregation [%s]: unknown source type [%s]", c->name, st);
        if (!json_is_object(sb)) return bad(c, "sources", "an array of {name: {type: {...}}}");
        const char *sk;
        json_t *sv;
        json_object_foreach((json_t *)sb, sk, sv) {
          if (!strcmp(sk, "field") && json_is_string(sv)) s->field = json_string_value(sv);
          else if (!strcmp(sk, "order")) {
            const char *d = json_is_string(sv) ? json_string_value(sv) : "";
            if (strcmp(d, "asc") && strcmp(d, "desc"))
              return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: unknown order [%s]", c->name, d);
            s->desc = d[0] == 'd';
          } else if (s->kind == 1 && !strcmp(sk, "interval")) {
            if (!json_is_number(sv) || !(json_number_value(sv) > 0)) return bad(c, "interval", "a number > 0");
            s->interval = json_number_value(sv);
          } else if (s->kind == 2 && (!strcmp(sk, "calendar_interval") || !strcmp(sk, "fixed_interval"))) {
            qq__agg tmp;
            memset(&tmp, 0, sizeof tmp);
            const char *v = json_is_string(sv) ? json_string_value(sv) : "";
            static const struct { const char *w; char u; } cal[] = {
                {"year", 'y'}, {"1y", 'y'}, {"quarter", 'q'}, {"1q", 'q'}, {"month", 'M'}, {"1M", 'M'},
                {"week", 'w'}, {"1w", 'w'}, {"day", 'd'}, {"1d", 'd'}, {"hour", 'h'}, {"1h", 'h'},
                {"minute", 'm'}, {"1m", 'm'}, {"second", 's'}, {"1s", 's'}};
            if (sk[0] == 'c') {
              for (size_t u = 0; u < QB_COUNTOF(cal); u++)
                if (!strcmp(v, cal[u].w)) s->cal = cal[u].u;
              if (!s->cal) return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: unknown calendar_interval [%s]", c->name, v);
            } else {
              char *end;
              double nn = strtod(v, &end);
              double ms = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1e3 : !strcmp(end, "m") ? 6e4
                        : !strcmp(end, "h") ? 3.6e6 : !strcmp(end, "d") ? 8.64e7 : 0;
              if (end == v || !(nn > 0) || !ms) return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: failed to parse fixed_interval [%s]", c->name, v);
              s->interval = nn * ms;
            }
          } else if (s->kind == 2 && !strcmp(sk, "format") && json_is_string(sv)) {
            qb_code rc = qq__date_format_check(json_string_value(sv), c->err);
            if (rc) return rc;
            s->format = json_string_value(sv);
          } else if (s->kind == 2 && !strcmp(sk, "time_zone") && json_is_string(sv)) {
            qq__tz *tz = qb_arena_alloc(c->ar, sizeof *tz);
            if (!tz) return nomem(c);
            qb_code rc = qq__tz_parse(c->ar, json_string_value(sv), tz, c->err);
            if (rc) return rc;
            s->tz = tz;
          } else {
            return qb_fail(c->err, QB_MALFORMED, "[composite] aggregation [%s]: source [%s] of type [%s] does not support [%s]", c->name, s->name, st, sk);
          }
        }
        if (!s->field) return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: source [%s] requires [field]", c->name, s->name);
        if (s->kind == 1 && !s->interval) return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: source [%s] requires [interval]", c->name, s->name);
        if (s->kind == 2 && !s->interval && !s->cal)
          return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: source [%s] requires [calendar_interval] or [fixed_interval]", c->name, s->name);
      }
    } else {
      return unknown(c, k);
    }
  }
  if (!x->nsrc) return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: [sources] is required", c->name);
  if (x->after)
    for (size_t i = 0; i < x->nsrc; i++)
      if (!json_object_get(x->after, x->src[i].name))
        return qb_fail(c->err, QB_INVAL, "[composite] aggregation [%s]: [after] has no value for source [%s]", c->name, x->src[i].name);
  return QB_OK;
}

static qb_code parse_percents(ps *c, const char *k, const json_t *v, int ranks, qq__xagg *x) {
  if (!json_is_array(v) || (!json_array_size(v) && ranks) || json_array_size(v) > 1000)
    return bad(c, k, "an array of numbers");
  x->npercents = json_array_size(v);
  if (!(x->percents = qb_arena_array(c->ar, x->npercents + 1, sizeof *x->percents))) return nomem(c);
  for (size_t i = 0; i < x->npercents; i++) {
    const json_t *e = json_array_get(v, i);
    if (!json_is_number(e)) return bad(c, k, "an array of numbers");
    double d = json_number_value(e);
    if (!ranks && !(d >= 0 && d <= 100))
      return qb_fail(c->err, QB_INVAL, "percent must be in [0,100], got [%g]: [%s]", d, c->name);
    x->percents[i] = d;
  }
  return QB_OK;
}

/* {"field": F, "missing": M} of weighted_avg's value and weight */
static qb_code parse_wpart(ps *c, qq__agg *g, const char *k, const json_t *v, qq__xagg *x) {
  const char *kk;
  json_t *o;
  if (!json_is_object(v)) return bad(c, k, "an object");
  json_object_foreach((json_t *)v, kk, o) {
    if (!strcmp(kk, "field")) {
      if (!json_is_string(o)) return bad(c, "field", "a string");
      if (k[0] == 'v') g->field = json_string_value(o);
      else x->wfield = json_string_value(o);
    } else if (!strcmp(kk, "missing")) {
      if (!json_is_number(o)) return bad(c, "missing", "a number");
      if (k[0] == 'v') x->vmissing = o;
      else x->wmissing = o;
    } else {
      return qb_fail(c->err, QB_MALFORMED, "[weighted_avg] aggregation [%s]: [%s] does not support [%s]", c->name, k, kk);
    }
  }
  return QB_OK;
}

qb_code qq__agg_parse_ext(qq__pctx *p, qq__agg *g, const char *type, const json_t *body, int nested) {
  ps c = {p, qq__pctx_err(p), &qq__pctx_req(p)->arena, type, g->name};
  qq__xagg *x = xget(&c, g);
  qb_code rc = QB_OK;
  const char *k;
  json_t *o;
  if (!x) return nomem(&c);
  if (g->kind == AG_FILTER) { /* the body is the query */
    x->nfilters = 1;
    if (!(x->filters = qb_arena_array(c.ar, 1, sizeof *x->filters))) return nomem(&c);
    return qq__pctx_query(p, body, "aggregations.filter", &x->filters[0]);
  }
  if (!json_is_object(body)) return qb_fail(c.err, QB_MALFORMED, "aggregation [%s]: [%s] must be an object", g->name, type);
  x->keyed = g->kind == AG_PERCENTILES || g->kind == AG_PERCENTILE_RANKS || g->kind == AG_FILTERS;
  x->compression = 100;
  x->sigma = 2;
  x->threshold = 3000;
  x->size = g->kind == AG_TOP_HITS ? 3 : 0;
  g->size = 10;
  int metric = g->kind <= AG_WEIGHTED_AVG;
  json_object_foreach((json_t *)body, k, o) {
    if (!strcmp(k, "field") && g->kind != AG_WEIGHTED_AVG && (metric || g->kind == AG_RANGE || g->kind == AG_DATE_RANGE || g->kind == AG_MISSING)) {
      if (!json_is_string(o)) return bad(&c, k, "a string");
      g->field = json_string_value(o);
    } else if (!strcmp(k, "script") && metric && g->kind != AG_WEIGHTED_AVG) {
      if ((rc = qq__pctx_script(p, o, g->name, &g->script))) return rc;
    } else if (!strcmp(k, "missing") && metric && g->kind != AG_WEIGHTED_AVG) {
      g->missing = o;
    } else if (g->kind == AG_CARDINALITY && !strcmp(k, "precision_threshold")) {
      json_int_t t = json_is_integer(o) ? json_integer_value(o) : -1;
      if (t < 0) return bad(&c, k, "a non-negative integer");
      x->threshold = t > 40000 ? 40000 : (uint32_t)t;
    } else if (g->kind == AG_PERCENTILES && !strcmp(k, "percents")) {
      if ((rc = parse_percents(&c, k, o, 0, x))) return rc;
    } else if (g->kind == AG_PERCENTILE_RANKS && !strcmp(k, "values")) {
      if ((rc = parse_percents(&c, k, o, 1, x))) return rc;
    } else if ((g->kind == AG_PERCENTILES || g->kind == AG_PERCENTILE_RANKS || g->kind == AG_RANGE ||
                g->kind == AG_DATE_RANGE || g->kind == AG_FILTERS) && !strcmp(k, "keyed")) {
      if (!json_is_boolean(o)) return bad(&c, k, "a boolean");
      x->keyed = json_is_true(o);
    } else if ((g->kind == AG_PERCENTILES || g->kind == AG_PERCENTILE_RANKS) && !strcmp(k, "tdigest")) {
      const char *tk;
      json_t *tv;
      if (!json_is_object(o)) return bad(&c, k, "an object");
      json_object_foreach(o, tk, tv) {
        if (strcmp(tk, "compression")) return qb_fail(c.err, QB_MALFORMED, "[%s] aggregation [%s]: [tdigest] does not support [%s]", type, g->name, tk);
        if (!json_is_number(tv) || !(json_number_value(tv) > 0)) return bad(&c, "compression", "a number > 0");
        x->compression = json_number_value(tv);
        if (x->compression > 10000) return qb_fail(c.err, QB_INVAL, "[%s] aggregation [%s]: [compression] must be at most 10000", type, g->name);
      }
    } else if (g->kind == AG_EXTENDED_STATS && !strcmp(k, "sigma")) {
      if (!json_is_number(o) || json_number_value(o) < 0)
        return qb_fail(c.err, QB_INVAL, "[sigma] must be greater than or equal to 0. Found [%s] in [%s]", json_is_number(o) ? "negative" : "?", g->name);
      x->sigma = json_number_value(o);
    } else if (g->kind == AG_WEIGHTED_AVG && (!strcmp(k, "value") || !strcmp(k, "weight"))) {
      if ((rc = parse_wpart(&c, g, k, o, x))) return rc;
    } else if (g->kind == AG_TOP_HITS && !strcmp(k, "size")) {
      if ((rc = get_u32(&c, k, o, 100, &x->size))) return rc;
    } else if (g->kind == AG_TOP_HITS && !strcmp(k, "from")) {
      if ((rc = get_u32(&c, k, o, 100, &x->from))) return rc;
    } else if ((g->kind == AG_TOP_HITS || g->kind == AG_BUCKET_SORT) && !strcmp(k, "sort")) {
      if ((rc = parse_sort(&c, o, x))) return rc;
    } else if (g->kind == AG_TOP_HITS && !strcmp(k, "_source")) {
      if (!json_is_boolean(o) && !json_is_string(o) && !json_is_array(o) && !json_is_object(o))
        return bad(&c, k, "a boolean, a pattern, an array of patterns or {includes, excludes}");
      x->source = o;
    } else if ((g->kind == AG_RANGE || g->kind == AG_DATE_RANGE) && !strcmp(k, "ranges")) {
      continue; /* after format */
    } else if (g->kind == AG_DATE_RANGE && !strcmp(k, "format")) {
      if (!json_is_string(o)) return bad(&c, k, "a string");
      if ((rc = qq__date_format_check(json_string_value(o), c.err))) return rc;
      x->format = json_string_value(o);
    } else if (g->kind == AG_FILTERS && !strcmp(k, "filters")) {
      if (json_is_object(o)) {
        const char *fk;
        json_t *fv;
        size_t i = 0;
        x->nfilters = json_object_size(o);
        if (!(x->filters = qb_arena_array(c.ar, x->nfilters + 1, sizeof *x->filters)) ||
            !(x->fnames = qb_arena_array(c.ar, x->nfilters + 1, sizeof *x->fnames)))
          return nomem(&c);
        json_object_foreach(o, fk, fv) {
          x->fnames[i] = fk;
          if ((rc = qq__pctx_query(p, fv, "aggregations.filters", &x->filters[i++]))) return rc;
        }
      } else if (json_is_array(o)) {
        x->anon = 1;
        x->nfilters = json_array_size(o);
        if (!(x->filters = qb_arena_array(c.ar, x->nfilters + 1, sizeof *x->filters))) return nomem(&c);
        for (size_t i = 0; i < x->nfilters; i++)
          if ((rc = qq__pctx_query(p, json_array_get(o, i), "aggregations.filters", &x->filters[i]))) return rc;
      } else {
        return bad(&c, k, "an object or an array of queries");
      }
      if (x->nfilters > 1024) return qb_fail(c.err, QB_INVAL, "[filters] aggregation [%s]: at most 1024 filters", g->name);
    } else if (g->kind == AG_FILTERS && !strcmp(k, "other_bucket")) {
      if (!json_is_boolean(o)) return bad(&c, k, "a boolean");
      x->other = json_is_true(o);
    } else if (g->kind == AG_FILTERS && !strcmp(k, "other_bucket_key")) {
      if (!json_is_string(o)) return bad(&c, k, "a string");
      x->other_key = json_string_value(o);
      x->other = 1;
    } else if (g->kind == AG_COMPOSITE) {
      return parse_composite(&c, body, x);
    } else if (QQ__AGG_PIPE(g->kind) && g->kind != AG_BUCKET_SORT && !strcmp(k, "buckets_path")) {
      if (!json_is_string(o)) return bad(&c, k, "a string");
      x->path = json_string_value(o);
    } else if (QQ__AGG_PIPE(g->kind) && !strcmp(k, "gap_policy")) {
      const char *gp = json_is_string(o) ? json_string_value(o) : "";
      if (strcmp(gp, "skip") && strcmp(gp, "insert_zeros"))
        return qb_fail(c.err, QB_INVAL, "[%s] aggregation [%s]: unknown gap_policy [%s]", type, g->name, gp);
      x->gap_zero = gp[0] == 'i';
    } else if (g->kind == AG_BUCKET_SORT && (!strcmp(k, "from") || !strcmp(k, "size"))) {
      if ((rc = get_u32(&c, k, o, 65536, k[0] == 'f' ? &x->from : &x->size))) return rc;
    } else {
      return unknown(&c, k);
    }
  }
  if (g->kind == AG_RANGE || g->kind == AG_DATE_RANGE) {
    if (!json_object_get(body, "ranges")) return qb_fail(c.err, QB_INVAL, "[%s] aggregation [%s]: [ranges] is required", type, g->name);
    if ((rc = parse_ranges(&c, json_object_get(body, "ranges"), g->kind == AG_DATE_RANGE, x))) return rc;
  }
  if (g->kind == AG_COMPOSITE) return parse_composite(&c, body, x); /* an empty body */
  if ((metric && g->kind != AG_TOP_HITS) || g->kind == AG_RANGE || g->kind == AG_DATE_RANGE || g->kind == AG_MISSING) {
    if (!g->field && !g->script)
      return qb_fail(c.err, QB_INVAL, "aggregation [%s]: required one of fields [field, script], but none were specified", g->name);
  }
  if (g->kind == AG_WEIGHTED_AVG && (!g->field || !x->wfield))
    return qb_fail(c.err, QB_INVAL, "[weighted_avg] aggregation [%s]: [value.field] and [weight.field] are required", g->name);
  if (g->kind == AG_PERCENTILES && !x->percents) {
    static const double def[] = {1, 5, 25, 50, 75, 95, 99};
    x->npercents = QB_COUNTOF(def);
    if (!(x->percents = qb_arena_array(c.ar, x->npercents, sizeof *x->percents))) return nomem(&c);
    memcpy(x->percents, def, sizeof def);
  }
  if (g->kind == AG_PERCENTILE_RANKS && !x->percents)
    return qb_fail(c.err, QB_INVAL, "[percentile_ranks] aggregation [%s]: [values] is required", g->name);
  if (g->kind == AG_FILTERS && !x->filters) return qb_fail(c.err, QB_INVAL, "[filters] aggregation [%s]: [filters] is required", g->name);
  if (g->kind == AG_GLOBAL && nested)
    return qb_fail(c.err, QB_INVAL, "Aggregator [%s] of type [global] cannot be a sub-aggregator", g->name);
  if (QQ__AGG_PIPE(g->kind) && g->kind != AG_BUCKET_SORT && !x->path)
    return qb_fail(c.err, QB_INVAL, "[%s] aggregation [%s]: [buckets_path] is required", type, g->name);
  if (g->kind == AG_BUCKET_SORT && !x->size) x->size = UINT32_MAX;
  if (g->kind == AG_BUCKET_SORT && !nested)
    return qb_fail(c.err, QB_INVAL, "bucket_sort aggregation [%s] must be declared inside of another aggregation", g->name);
  if (g->kind == AG_TOP_HITS && x->nsort > 1)
    return qb_fail(c.err, QB_INVAL, "[top_hits] aggregation [%s]: one sort key is supported here, got %zu", g->name, x->nsort);
  if (g->kind == AG_CARDINALITY) {
    uint32_t t = x->threshold < 16 ? 16 : x->threshold;
    x->hll_p = (int)ceil(log2((double)t)) + 2;
    if (x->hll_p > 18) x->hll_p = 18;
  }
  return QB_OK;
}

qb_code qq__agg_opt_ext(qq__pctx *p, qq__agg *g, const char *type, const char *k, const json_t *v, int *handled) {
  ps c = {p, qq__pctx_err(p), &qq__pctx_req(p)->arena, type, g->name};
  qq__xagg *x;
  *handled = 0;
  if (g->kind == AG_TERMS && (!strcmp(k, "missing") || !strcmp(k, "include") || !strcmp(k, "exclude") ||
                              !strcmp(k, "min_doc_count"))) {
    if (!(x = xget(&c, g))) return nomem(&c);
    *handled = 1;
    if (k[0] == 'm' && k[1] == 'i' && k[2] == 's') {
      if (!json_is_string(v) && !json_is_number(v)) return bad(&c, k, "a string or a number");
      x->tmissing = v;
      return QB_OK;
    }
    if (k[0] == 'm') {
      if (!json_is_integer(v) || json_integer_value(v) < 0)
        return qb_fail(c.err, QB_INVAL, "[terms] aggregation [%s]: [min_doc_count] must be a non-negative integer", g->name);
      g->min_doc_count = (uint64_t)json_integer_value(v);
      x->mdc0 = !g->min_doc_count;
      return QB_OK;
    }
    int inc = k[0] == 'i';
    if (json_is_string(v)) {
      const char *re = json_string_value(v);
      if (strlen(re) > 1000) return qb_fail(c.err, QB_INVAL, "[terms] aggregation [%s]: [%s] is longer than 1000 characters", g->name, k);
      for (const char *s = re; *s; s++)
        if (s[0] == '\\' && s[1] >= '1' && s[1] <= '9')
          return qb_fail(c.err, QB_INVAL, "[terms] aggregation [%s]: [%s]: back-references are not supported", g->name, k);
      char *anch = qb_arena_alloc(c.ar, strlen(re) + 5);
      if (!anch) return nomem(&c);
      sprintf(anch, "^(%s)$", re);
      regex_t rx;
      int e = regcomp(&rx, anch, REG_EXTENDED | REG_NOSUB);
      if (e) return qb_fail(c.err, QB_INVAL, "[terms] aggregation [%s]: [%s] is not a valid regular expression: %s", g->name, k, re);
      regfree(&rx);
      if (inc) x->inc_re = anch;
      else x->exc_re = anch;
    } else if (json_is_array(v)) {
      size_t n = json_array_size(v);
      const char **arr = qb_arena_array(c.ar, n + 1, sizeof *arr);
      if (!arr) return nomem(&c);
      for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) return bad(&c, k, "a regular expression or an array of strings");
        arr[i] = json_string_value(e);
      }
      if (inc) { x->inc = arr; x->ninc = n; }
      else { x->exc = arr; x->nexc = n; }
    } else {
      return qb_fail(c.err, QB_INVAL, "[terms] aggregation [%s]: [%s] must be a regular expression or an array of strings "
                     "(partitions are not supported)", g->name, k);
    }
    return QB_OK;
  }
  if ((g->kind == AG_DATE_HISTOGRAM || g->kind == AG_HISTOGRAM) && !strcmp(k, "extended_bounds")) {
    if (!(x = xget(&c, g))) return nomem(&c);
    *handled = 1;
    const char *kk;
    json_t *o;
    int has[2] = {0, 0};
    if (!json_is_object(v)) return bad(&c, k, "an object {min, max}");
    json_object_foreach((json_t *)v, kk, o) {
      int mx = !strcmp(kk, "max");
      if (!mx && strcmp(kk, "min")) return qb_fail(c.err, QB_MALFORMED, "[%s] aggregation [%s]: [extended_bounds] does not support [%s]", type, g->name, kk);
      int64_t ms;
      if (json_is_number(o)) ms = (int64_t)json_number_value(o);
      else if (g->kind == AG_DATE_HISTOGRAM && json_is_string(o) && !qq__parse_date(json_string_value(o), &ms)) {}
      else return bad(&c, "extended_bounds", "{min, max} of dates or numbers");
      if (mx) x->emax = ms;
      else x->emin = ms;
      has[mx] = 1;
    }
    if (!has[0] || !has[1] || x->emin > x->emax)
      return qb_fail(c.err, QB_INVAL, "[%s] aggregation [%s]: [extended_bounds] needs min <= max", type, g->name);
    x->has_ebounds = 1;
    return QB_OK;
  }
  if (g->kind == AG_DATE_HISTOGRAM && !strcmp(k, "time_zone")) {
    if (!(x = xget(&c, g))) return nomem(&c);
    *handled = 1;
    if (!json_is_string(v)) return bad(&c, k, "a string");
    qq__tz *tz = qb_arena_alloc(c.ar, sizeof *tz);
    if (!tz) return nomem(&c);
    qb_code rc = qq__tz_parse(c.ar, json_string_value(v), tz, c.err);
    if (rc) return rc;
    x->tz = tz;
    return QB_OK;
  }
  if (g->kind == AG_DATE_HISTOGRAM && !strcmp(k, "offset")) {
    if (!(x = xget(&c, g))) return nomem(&c);
    *handled = 1;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    char *end;
    double n = json_is_number(v) ? json_number_value(v) : strtod(s, &end);
    if (json_is_string(v)) {
      double ms = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1e3 : !strcmp(end, "m") ? 6e4 : !strcmp(end, "h") ? 3.6e6
                : !strcmp(end, "d") ? 8.64e7 : 0;
      if (end == s || !ms) return qb_fail(c.err, QB_INVAL, "[date_histogram] aggregation [%s]: failed to parse [offset] [%s]", g->name, s);
      n *= ms;
    } else if (!json_is_number(v)) {
      return bad(&c, k, "a time value such as \"+6h\"");
    }
    x->offset_ms = (int64_t)n;
    return QB_OK;
  }
  return QB_OK;
}

qb_code qq__agg_check_ext(qq__pctx *p, qq__agg *g) {
  qb_err *err = qq__pctx_err(p);
  for (size_t i = 0; i < g->nsubs; i++)
    if (g->subs[i].kind == AG_BUCKET_SORT && !QQ__AGG_BUCKETS(g->kind) && g->kind != AG_COMPOSITE)
      return qb_fail(err, QB_INVAL, "bucket_sort aggregation [%s] must be declared inside of another aggregation "
                     "(terms, histogram, date_histogram)", g->subs[i].name);
  return QB_OK;
}
