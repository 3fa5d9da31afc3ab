/* test_dates.c: one date reader for documents and queries. Every string below goes both ways
** through the real parts: as a document value (qi_index_put -> doc values, and dynamic date
** detection) and as a query bound (qq__parse_date, and a range query over the index). The two
** must give the same milliseconds, and reject the same strings. */
#include "fixture.h"

#include "internal.h"

typedef struct dcase {
  const char *s;
  int ok;      /* 1: a date (value WANT_MS); 0: rejected on both paths */
  int64_t want_ms;
} dcase;

#define DAY 86400000LL
#define D2024_02_29 (19782 * DAY) /* days since 1970 * ms */

static const dcase cases[] = {
    /* strict_date_optional_time: every optional part */
    {"2024", 1, 19723 * DAY},
    {"2024-02", 1, 19754 * DAY},
    {"2024-02-29", 1, D2024_02_29},
    {"2024-02-29T12", 1, D2024_02_29 + 12 * 3600000LL},
    {"2024-02-29T12:30", 1, D2024_02_29 + 12 * 3600000LL + 30 * 60000LL},
    {"2024-02-29T12:30:15", 1, D2024_02_29 + 45015000LL},
    {"2024-02-29T12:30:15.250", 1, D2024_02_29 + 45015250LL},
    {"2024-02-29T12:30:15,250", 1, D2024_02_29 + 45015250LL},
    {"2024-02-29T12:30:15.123456789", 1, D2024_02_29 + 45015123LL},
    {"2024-02-29T12:30:15.5", 1, D2024_02_29 + 45015500LL},
    /* time zone suffixes */
    {"2024-02-29T12:30:15Z", 1, D2024_02_29 + 45015000LL},
    {"2024-02-29T12:30:15+01", 1, D2024_02_29 + 45015000LL - 3600000LL},
    {"2024-02-29T12:30:15+0130", 1, D2024_02_29 + 45015000LL - 5400000LL},
    {"2024-02-29T12:30:15+01:30", 1, D2024_02_29 + 45015000LL - 5400000LL},
    {"2024-02-29T12:30:15.250-05:00", 1, D2024_02_29 + 45015250LL + 5 * 3600000LL},
    {"2024-02-29T00:00-00:30", 1, D2024_02_29 + 1800000LL},
    {"1969-12-31T23:59:59.999Z", 1, -1},
    {"0001-01-01", 1, -62135596800000LL},
    /* epoch_millis: what is not an ISO date */
    {"0", 1, 0},
    {"123", 1, 123},
    {"-1000", 1, -1000},
    {"20240", 1, 20240},
    {"1704067200000", 1, 1704067200000LL},
    {"9223372036854775807", 1, INT64_MAX},
    {"-9223372036854775808", 1, INT64_MIN},
    /* errors */
    {"", 0, 0},
    {"abc", 0, 0},
    {"2024-02-30", 0, 0},
    {"2023-02-29", 0, 0},
    {"2024-13", 0, 0},
    {"2024-00-10", 0, 0},
    {"2024-1-05", 0, 0},
    {"2024-01-01T24:00", 0, 0},
    {"2024-01-01T10:60", 0, 0},
    {"2024-01-01T10:00:60", 0, 0},
    {"2024-01-01T10:00:00.", 0, 0},
    {"2024-01-01T10:00:00.1234567890", 0, 0},
    {"2024-01-01 10:00", 0, 0},
    {"2024-01-01Z", 0, 0},
    {"2024-01-01T10:00+01:", 0, 0},
    {"2024-01-01T10:00+1", 0, 0},
    {"2024-01-01T10:00+24:00", 0, 0},
    {"2024-01-01T10:00Zx", 0, 0},
    {"1.5", 0, 0},
    {" 12345", 0, 0},
    {"-", 0, 0},
    {"9223372036854775808", 0, 0},
    {"-9223372036854775809", 0, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

static qi_index *mk(fx *f, const char *mapping) {
  qb_err err;
  snprintf(f->dir, sizeof f->dir, "/tmp/qq_dates_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  strcat(f->dir, "/idx");
  if (qi_index_create(f->dir, mapping, NULL, &f->ix, &err)) fail_msg("create: %s", err.msg);
  return f->ix;
}

static void put(fx *f, const char *id, const char *field, const char *s, qb_code want) {
  char doc[256];
  qb_err err;
  int n = snprintf(doc, sizeof doc, "{\"%s\":\"%s\"}", field, s);
  qb_code rc = qi_index_put(f->ix, id, doc, (size_t)n, NULL, &err);
  if (rc != want)
    fail_msg("put %s: %s, expected %s (%s)", doc, qb_code_name(rc), qb_code_name(want),
             rc ? err.msg : "");
}

static void documents_and_queries_read_every_date_string_alike(void **st) {
  fx *f = calloc(1, sizeof *f);
  const qi_segment *seg;
  qi_field_info fi;
  char id[16], body[256];
  uint32_t doc = 0;
  (void)st;
  mk(f, "{\"mappings\":{\"properties\":{\"t\":{\"type\":\"date\"}}}}");
  for (size_t i = 0; i < NCASES; i++) {
    snprintf(id, sizeof id, "%zu", i);
    put(f, id, "t", cases[i].s, cases[i].ok ? QB_OK : QB_INVAL);
  }
  assert_int_equal(qi_index_refresh(f->ix, NULL), QB_OK);
  f->snap = qi_index_snapshot(f->ix);
  seg = qi_snapshot_segment(f->snap, 0);
  assert_int_equal(qi_snapshot_field(f->snap, "t", &fi), QB_OK);
  for (size_t i = 0; i < NCASES; i++) {
    int64_t q = 42, dv = 0;
    uint8_t present = 0;
    qb_code rc = qq__parse_date(cases[i].s, &q);
    if (!cases[i].ok) {
      /* the query path rejects it too, and says so to the client */
      qb_code code = QB_OK;
      if (rc == QB_OK) fail_msg("query path read \"%s\" as %lld; the index rejects it", cases[i].s, (long long)q);
      snprintf(body, sizeof body, "{\"query\":{\"range\":{\"t\":{\"gte\":\"%s\"}}}}", cases[i].s);
      json_t *e = fx_search_error(f, NULL, body, &code);
      char *text = json_dumps(e, JSON_COMPACT);
      assert_int_equal(code, QB_INVAL); /* the server answers 400 illegal_argument_exception */
      if (!strstr(text, "failed to parse date field")) fail_msg("%s: %s", body, text);
      free(text);
      json_decref(e);
      continue;
    }
    if (rc) fail_msg("query path rejects \"%s\"; the index took it", cases[i].s);
    qi_dv_read_i64(seg, fi.id, &doc, 1, &dv, &present);
    assert_int_equal(present, 1);
    if (dv != q || dv != cases[i].want_ms)
      fail_msg("\"%s\": index %lld, query %lld, expected %lld", cases[i].s, (long long)dv,
               (long long)q, (long long)cases[i].want_ms);
    /* a range query with the string as both bounds finds the document(s) holding that instant
    ** (range bounds are doubles: exact up to 2^53 ms, about 285,000 years) */
    doc++;
    if (cases[i].want_ms > (1LL << 53) || cases[i].want_ms < -(1LL << 53)) continue;
    long long same = 0;
    for (size_t j = 0; j < NCASES; j++) same += cases[j].ok && cases[j].want_ms == cases[i].want_ms;
    snprintf(body, sizeof body, "{\"query\":{\"range\":{\"t\":{\"gte\":\"%s\",\"lte\":\"%s\"}}}}",
             cases[i].s, cases[i].s);
    json_t *r = fx_search(f, body);
    if (fx_total(r) != same) fail_msg("%s: %lld hits, expected %lld", body, fx_total(r), same);
    json_decref(r);
  }
  fx_teardown((void **)&f);
}

/* Dynamic mappings take a string for a date only when it has at least yyyy-MM-dd, and then
** hold the same instant a query reads from it. */
static void dynamic_date_detection_agrees_with_the_query_path(void **st) {
  fx *f = calloc(1, sizeof *f);
  qi_field_info fi;
  char field[16];
  uint32_t doc = 0;
  (void)st;
  mk(f, NULL);
  for (size_t i = 0; i < NCASES; i++) {
    snprintf(field, sizeof field, "f%zu", i);
    put(f, field, field, cases[i].s, QB_OK);
  }
  assert_int_equal(qi_index_refresh(f->ix, NULL), QB_OK);
  f->snap = qi_index_snapshot(f->ix);
  const qi_segment *seg = qi_snapshot_segment(f->snap, 0);
  for (size_t i = 0; i < NCASES; i++, doc++) {
    int64_t q = 0, dv = 0;
    uint8_t present = 0;
    int full = cases[i].ok && strlen(cases[i].s) >= 10 && cases[i].s[4] == '-' && cases[i].s[7] == '-';
    snprintf(field, sizeof field, "f%zu", i);
    assert_int_equal(qi_snapshot_field(f->snap, field, &fi), QB_OK);
    if (!full) {
      if (fi.type == QI_DATE) fail_msg("\"%s\" was mapped as a date", cases[i].s);
      continue;
    }
    if (fi.type != QI_DATE) fail_msg("\"%s\" was mapped as %s, not date", cases[i].s, qi_type_name(fi.type));
    assert_int_equal(qq__parse_date(cases[i].s, &q), QB_OK);
    qi_dv_read_i64(seg, fi.id, &doc, 1, &dv, &present);
    assert_int_equal(present, 1);
    assert_int_equal(dv, q);
  }
  fx_teardown((void **)&f);
}

/* Date math anchors are read by the same reader; "now" stays a query-only word. */
static void date_math_anchors_use_the_same_reader(void **st) {
  int64_t ms = 0;
  (void)st;
  assert_int_equal(qq__parse_date("2024-02-29T12:30:15+01:00||+1d", &ms), QB_OK);
  assert_int_equal(ms, D2024_02_29 + 45015000LL - 3600000LL + DAY);
  assert_int_equal(qq__parse_date("1704067200000||/M", &ms), QB_OK);
  assert_int_equal(ms, 1704067200000LL);
  assert_int_equal(qq__parse_date("2024-02-30||+1d", &ms), QB_INVAL);
  assert_int_equal(qi_date_parse("now", 3, &ms), QB_INVAL);
  assert_int_equal(qq__parse_date("now/d", &ms), QB_OK);
  assert_int_equal(ms % DAY, 0);
}

static void dates_render_as_elasticsearch_does(void **st) {
  char buf[40];
  (void)st;
  qi_date_format(D2024_02_29 + 45015250LL, buf, sizeof buf);
  assert_string_equal(buf, "2024-02-29T12:30:15.250Z");
  qi_date_format(-1, buf, sizeof buf);
  assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
  qi_date_format(INT64_MIN, buf, sizeof buf); /* a document may hold it: no overflow */
  assert_true(strlen(buf) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(documents_and_queries_read_every_date_string_alike),
      cmocka_unit_test(dynamic_date_detection_agrees_with_the_query_path),
      cmocka_unit_test(date_math_anchors_use_the_same_reader),
      cmocka_unit_test(dates_render_as_elasticsearch_does),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
