/* test_errors.c: bad requests get the right qb_code and a message naming what is wrong and
** where (the server maps codes to statuses: tests/unit/server/test_errors.c); failed shards
** show up in _shards.failures; partials survive the wire format. */
#include "fixture.h"

static void expect_error(void **st, const char *body, qb_code want, const char *reason_part) {
  qb_code code;
  json_t *e = fx_search_error(*st, NULL, body, &code);
  if (code != want) fail_msg("%s: %s, expected %s", body, qb_code_name(code), qb_code_name(want));
  const char *reason = json_string_value(fx_path(e, "error.reason"));
  if (!reason || !strstr(reason, reason_part)) fail_msg("reason [%s] lacks [%s]", reason ? reason : "", reason_part);
  json_decref(e);
}

static void bad_json_is_a_parse_error(void **st) {
  expect_error(st, "{\"query\": {", QB_PARSE, "failed to parse the request body");
  expect_error(st, "[1,2]", QB_PARSE, "must be a JSON object");
}

static void unknown_queries_and_keys_are_malformed(void **st) {
  expect_error(st, "{\"query\":{\"fuzzy_wuzzy\":{}}}", QB_MALFORMED, "unknown query [fuzzy_wuzzy]");
  expect_error(st, "{\"query\":{\"bool\":{\"must\":[{\"nope\":{}}]}}}", QB_MALFORMED, "unknown query [nope]");
  expect_error(st, "{\"query\":{\"match\":{\"title\":\"a\"},\"term\":{\"tag\":\"b\"}}}", QB_MALFORMED, "[match] and [term]");
  expect_error(st, "{\"querry\":{}}", QB_MALFORMED, "[querry]");
  expect_error(st, "{\"query\":{\"bool\":{\"shoud\":[]}}}", QB_MALFORMED, "[bool] query does not support [shoud]");
  expect_error(st, "{\"query\":{\"match\":[1]}}", QB_MALFORMED, "[match] query malformed");
  expect_error(st, "{\"query\":{\"term\":{\"tag\":{\"value\":\"a\",\"x\":1}}}}", QB_MALFORMED, "[term] query does not support [x]");
  expect_error(st, "{\"aggs\":{\"a\":{\"histogramm\":{\"field\":\"x\"}}}}", QB_MALFORMED, "unknown aggregation type [histogramm]");
}

static void bad_values_are_invalid_arguments(void **st) {
  expect_error(st, "{\"from\":9995,\"size\":10}", QB_INVAL, "Result window is too large");
  expect_error(st, "{\"size\":-1}", QB_INVAL, "[size] parameter cannot be negative");
  expect_error(st, "{\"query\":{\"match\":{\"title\":{\"query\":\"a\",\"operator\":\"xor\"}}}}", QB_INVAL, "unknown operator [xor]");
  expect_error(st, "{\"query\":{\"range\":{\"date\":{\"gte\":\"yesterday-ish\"}}}}", QB_INVAL, "failed to parse date field");
  expect_error(st, "{\"query\":{\"term\":{\"popularity\":\"abc\"}}}", QB_INVAL, "abc");
  expect_error(st, "{\"sort\":[{\"title\":\"asc\"}]}", QB_INVAL, "Text fields are not optimised");
  expect_error(st, "{\"aggs\":{\"a\":{\"avg\":{\"field\":\"tag\"}}}}", QB_INVAL, "[keyword] is not supported for aggregation [avg]");
  expect_error(st, "{\"query\":{\"function_score\":{\"boost_mode\":\"twice\"}}}", QB_INVAL, "illegal boost_mode [twice]");
}

static void script_compile_errors_are_invalid_scripts_with_positions(void **st) {
  expect_error(st, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":\"_score * (2 +\"}}}",
               QB_INVALID, "unexpected end of expression at position 13");
  expect_error(st, "{\"query\":{\"function_score\":{\"script_score\":{\"script\":{\"source\":\"nope + 1\"}}}}}",
               QB_INVALID, "unknown variable [nope] at position 0");
  expect_error(st, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":\"doc['tag'].value\"}}}",
               QB_INVAL, "field [tag] is not numeric");
  /* Elasticsearch's doc['F'] on a field the mapping lacks (a typo would otherwise read 0) */
  expect_error(st, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":\"doc['popularty'].value\"}}}",
               QB_INVALID, "No field found for [popularty] in mapping");
  expect_error(st, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":\"-_score\"}}}",
               QB_TRAP, "must produce a finite, non-negative score, but got [-1] for document [");
  /* issue 13 #10: 1/0 was capped silently at max_boost (3.4e38); NaN says NaN */
  expect_error(st, "{\"query\":{\"function_score\":{\"script_score\":{\"script\":\"1/0\"}}}}",
               QB_TRAP, "but got [Infinity] for document [");
  expect_error(st, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":\"sqrt(-1)\"}}}",
               QB_TRAP, "but got [NaN] for document [");
  expect_error(st, "{\"query\":{\"script_score\":{\"query\":{\"match_all\":{}},\"script\":{\"source\":\"t\","
               "\"params\":{\"t\":\"_context.user.tier\"}}}}}",
               QB_INVALID, "request context has no number at [_context.user.tier] at position 0");
}

/* The query layer knows no Elasticsearch type: a failed shard's type comes from the env's
** error_type (the server's table), "exception" without one. */
static const char *test_type(qb_code code) { return code == QB_TRAP ? "trap_type_from_env" : NULL; }

static void failed_shards_show_up_in_shards_failures(void **st) {
  fx *f = *st;
  qq_request *req;
  qq_partial *parts[2];
  qb_err err, e2;
  json_t *out;
  qq_env env = {0};
  env.error_type = test_type;
  const char *body = "{\"query\":{\"match\":{\"title\":\"fox\"}}}";
  assert_int_equal(qq_request_parse(&env, body, strlen(body), 0, &req, &err), QB_OK);
  assert_int_equal(qq_shard_search(req, f->snap, "test", 0, &parts[0], &err), QB_OK);
  qb_fail(&e2, QB_TRAP, "udf custom_score v3: wasm trap: out of bounds memory access");
  assert_int_equal(qq_partial_failed("test", 1, &e2, &parts[1], &err), QB_OK);
  /* through the wire format */
  json_t *wire;
  qq_partial *back;
  assert_int_equal(qq_partial_to_json(parts[0], &wire, &err), QB_OK);
  assert_int_equal(qq_partial_from_json(wire, &back, &err), QB_OK);
  json_decref(wire);
  qq_partial_free(parts[0]);
  parts[0] = back;
  assert_int_equal(qq_response_render(req, parts, 2, 5, &out, &err), QB_OK);
  assert_json_num(out, "_shards.total", 2);
  assert_json_num(out, "_shards.failed", 1);
  assert_json_num(out, "_shards.failures.0.shard", 1);
  assert_json_str(out, "_shards.failures.0.reason.type", "trap_type_from_env");
  assert_json_num(out, "hits.total.value", 2);
  assert_json_num(out, "took", 5);
  json_decref(out);
  /* all shards failed: the request fails */
  qq_partial_free(parts[0]);
  assert_int_equal(qq_partial_failed("test", 0, &e2, &parts[0], &err), QB_OK);
  assert_int_equal(qq_response_render(req, parts, 2, 5, &out, &err), QB_TRAP);
  assert_non_null(strstr(err.msg, "out of bounds"));
  qq_partial_free(parts[0]);
  qq_partial_free(parts[1]);
  qq_request_free(req);
}

static void allocation_failures_return_nomem_and_leak_nothing(void **st) {
  fx *f = *st;
  const char *body = "{\"query\":{\"bool\":{\"must\":{\"match\":{\"title\":\"quick dog\"}},\"filter\":{\"range\":{\"days\":{\"gte\":1}}}}},"
                     "\"sort\":[\"_score\"],\"aggs\":{\"t\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{\"a\":{\"avg\":{\"field\":\"price\"}},"
                     "\"b\":{\"terms\":{\"field\":\"active\"}}}},\"h\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\"},"
                     "\"aggs\":{\"s\":{\"sum\":{\"field\":\"days\"}}}}},"
                     "\"script_fields\":{\"x\":{\"script\":\"doc['days'].value + 1\"}}}";
  const qi_snapshot *snaps[1] = {f->snap};
  for (uint64_t k = 1; k < 100000; k++) {
    json_t *out = NULL;
    qb_err err;
    size_t before = qb_alloc_live_bytes();
    qb_alloc_fail_after(k);
    qb_code rc = qq_search(NULL, "test", snaps, 1, body, strlen(body), &out, &err);
    qb_alloc_fail_after(0);
    json_decref(out);
    if (rc == QB_OK) return;
    if (rc != QB_NOMEM) fail_msg("allocation %llu: %s (%s)", (unsigned long long)k, err.msg, qb_code_name(rc));
    if (qb_alloc_live_bytes() != before)
      fail_msg("allocation %llu failing leaked %zu bytes", (unsigned long long)k, qb_alloc_live_bytes() - before);
  }
  fail_msg("never succeeded");
}

/* A cheap stand-in for the fuzzer: seeds mutated byte by byte must give a response or an error
** (with a message), never a crash, under ASan/UBSan. */
static void mutated_bodies_give_a_response_or_an_error(void **st) {
  fx *f = *st;
  static const char *seeds[] = {
      "{\"query\":{\"bool\":{\"must\":{\"match\":{\"title\":\"quick dog\"}},\"should\":[{\"term\":{\"tag\":\"pet\"}}],"
      "\"minimum_should_match\":\"50%\"}},\"sort\":[{\"days\":\"desc\"}],\"from\":1,\"size\":3}",
      "{\"query\":{\"function_score\":{\"query\":{\"range\":{\"date\":{\"gte\":\"2024-01-01\"}}},\"functions\":[{\"filter\":"
      "{\"exists\":{\"field\":\"price\"}},\"weight\":2},{\"script_score\":{\"script\":\"log(1+doc['days'].value)*_score\"}}],"
      "\"score_mode\":\"avg\",\"boost_mode\":\"sum\"}},\"aggs\":{\"t\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{\"s\":"
      "{\"stats\":{\"field\":\"price\"}}}}},\"_source\":{\"includes\":[\"u*\"]}}",
      "{\"query\":{\"script_score\":{\"query\":{\"ids\":{\"values\":[\"1\",\"3\"]}},\"script\":{\"source\":"
      "\"doc['price'].empty ? 1 : max(doc['price'].value, params.m) / 2\",\"params\":{\"m\":3}}}},\"script_fields\":"
      "{\"f\":{\"script\":\"_score * 2\"}},\"track_total_hits\":1}",
  };
  const qi_snapshot *snaps[1] = {f->snap};
  char buf[1024];
  int oks = 0, fails = 0;
  srand(11);
  for (int round = 0; round < 3000; round++) {
    const char *seed = seeds[round % 3];
    size_t len = strlen(seed);
    memcpy(buf, seed, len);
    for (int m = 1 + rand() % 2; m > 0; m--) {
      size_t at = (size_t)rand() % len;
      static const char alphabet[] = "{}[]\":,0123456789-.eE'()*+/<>=!?&|_ abcdfz\\";
      switch (rand() % 3) {
      case 0: buf[at] = alphabet[rand() % (sizeof alphabet - 1)]; break;
      case 1: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
      default:
        if (len < sizeof buf - 1) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = alphabet[rand() % (sizeof alphabet - 1)];
          len++;
        }
      }
    }
    json_t *out = NULL;
    qb_err err;
    qb_err_clear(&err);
    qb_code rc = qq_search(NULL, "test", snaps, 1, buf, len, &out, &err);
    if (rc == QB_OK) {
      assert_non_null(out);
      json_decref(out);
      oks++;
    } else {
      fails++;
      if (!err.msg[0]) fail_msg("%s without a message for %.*s", qb_code_name(rc), (int)len, buf);
      if (rc == QB_INTERNAL) fail_msg("internal error %s for %.*s", err.msg, (int)len, buf);
    }
  }
  if (oks < 100 || fails < 100) fail_msg("%d responses, %d errors: mutations too weak or too strong", oks, fails);
}

/* The coordinator reads partials from the network: mutated ones must render or fail, never crash */
static void mutated_partials_render_or_fail(void **st) {
  fx *f = *st;
  qq_request *req;
  qq_partial *p;
  qb_err err;
  json_t *j;
  const char *body = "{\"query\":{\"match\":{\"title\":\"quick dog\"}},\"sort\":[{\"tag\":\"asc\"},\"_score\"],"
                     "\"aggs\":{\"t\":{\"terms\":{\"field\":\"tag\"},\"aggs\":{\"a\":{\"avg\":{\"field\":\"price\"}}}},"
                     "\"h\":{\"date_histogram\":{\"field\":\"date\",\"calendar_interval\":\"month\"}},\"s\":{\"stats\":{\"field\":\"days\"}}}}";
  assert_int_equal(qq_request_parse(NULL, body, strlen(body), 0, &req, &err), QB_OK);
  assert_int_equal(qq_shard_search(req, f->snap, "test", 0, &p, &err), QB_OK);
  assert_int_equal(qq_partial_to_json(p, &j, &err), QB_OK);
  qq_partial_free(p);
  char *text = json_dumps(j, JSON_COMPACT);
  size_t len = strlen(text);
  json_decref(j);
  srand(5);
  int parsed = 0;
  for (int round = 0; round < 2000; round++) {
    char buf[8192];
    if (len >= sizeof buf - 8) break;
    memcpy(buf, text, len + 1);
    for (int m = 1 + rand() % 3; m > 0; m--) {
      static const char alphabet[] = "{}[]\":,0123456789-.eEtrufalsn ";
      buf[(size_t)rand() % len] = alphabet[rand() % (sizeof alphabet - 1)];
    }
    json_t *mj = json_loadb(buf, len, 0, NULL);
    if (!mj) continue;
    parsed++;
    qq_partial *parts[2] = {NULL, NULL};
    if (qq_partial_from_json(mj, &parts[0], &err) == QB_OK) {
      json_t *out = NULL;
      assert_int_equal(qq_partial_from_json(mj, &parts[1], &err), QB_OK);
      if (qq_response_render(req, parts, 2, 1, &out, &err) == QB_OK) json_decref(out);
      qq_partial_free(parts[0]);
      qq_partial_free(parts[1]);
    }
    json_decref(mj);
  }
  if (parsed < 200) fail_msg("only %d mutated partials parsed", parsed);
  qb_sized_free(text); /* jansson allocates through qb_alloc here (main) */
  qq_request_free(req);
}

int main(void) {
  json_set_alloc_funcs(qb_sized_malloc, qb_sized_free); /* OOM runs reach inside jansson too */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bad_json_is_a_parse_error),
      cmocka_unit_test(unknown_queries_and_keys_are_malformed),
      cmocka_unit_test(bad_values_are_invalid_arguments),
      cmocka_unit_test(script_compile_errors_are_invalid_scripts_with_positions),
      cmocka_unit_test(failed_shards_show_up_in_shards_failures),
      cmocka_unit_test(allocation_failures_return_nomem_and_leak_nothing),
      cmocka_unit_test(mutated_bodies_give_a_response_or_an_error),
      cmocka_unit_test(mutated_partials_render_or_fail),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
