/* test_analyze.c: the standard analyzer's word boundaries, lowercasing and UTF-8 checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "index.h"

typedef struct toks {
  char out[2048]; /* tokens joined by '|' */
  size_t n;
  qi_token last;
} toks;

static qb_code collect(void *ud, const qi_token *t, qb_err *err) {
  toks *k = ud;
  size_t l = strlen(k->out);
  (void)err;
  snprintf(k->out + l, sizeof k->out - l, "%s%.*s", k->n ? "|" : "", (int)t->len, t->term);
  k->n++;
  k->last = *t;
  return QB_OK;
}

static const char *run(toks *k, qi_analyzer a, const char *text) {
  qb_err err;
  memset(k, 0, sizeof *k);
  assert_int_equal(qi_analyze(a, text, strlen(text), collect, k, &err), QB_OK);
  return k->out;
}

static void standard_splits_ascii_words_and_lowercases(void **state) {
  toks k;
  (void)state;
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "The Quick-Brown FOX, jumped!"),
                      "the|quick|brown|fox|jumped");
  assert_int_equal(k.last.position, 4);
  assert_int_equal(k.last.start_offset, 21);
  assert_int_equal(k.last.end_offset, 27);
}

static void apostrophes_and_dots_inside_words_stay(void **state) {
  toks k;
  (void)state;
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "O'Neil's U.S.A. trip"), "o'neil's|u.s.a|trip");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "it's 'quoted'"), "it's|quoted");
}

static void numbers_keep_decimal_and_thousands_separators(void **state) {
  toks k;
  (void)state;
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "pi is 3.14, cost 1,000 or 7."),
                      "pi|is|3.14|cost|1,000|or|7");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "abc123 foo_bar __"), "abc123|foo_bar");
}

static void latin1_greek_cyrillic_are_lowercased(void **state) {
  toks k;
  (void)state;
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "ÉCOLE Straße ÀÖØ"), "école|straße|àöø");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "ŁÓDŹ ĞÜŞ Ÿ"), "łódź|ğüş|ÿ");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "ΑΘΗΝΑ Ώρα"), "αθηνα|ώρα");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "МОСКВА Ёлка"), "москва|ёлка");
}

static void han_ideographs_are_single_tokens(void **state) {
  toks k;
  (void)state;
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "中文abc"), "中|文|abc");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "カタカナ ひら"), "カタカナ|ひ|ら");
}

static void punctuation_and_symbols_separate_words(void **state) {
  toks k;
  (void)state;
  /* em dash and emoji separate; "c...d": a run of dots is not a single MidNumLet */
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "a\xe2\x80\x94" "b \xf0\x9f\x98\x80 c...d"),
                      "a|b|c|d");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "x--y (z) [w]"), "x|y|z|w");
  assert_string_equal(run(&k, QI_ANALYZER_STANDARD, "...  ,;"), "");
}

static void long_words_are_split_at_255_chars(void **state) {
  char big[600];
  toks k;
  (void)state;
  memset(big, 'a', 300);
  big[300] = 0;
  run(&k, QI_ANALYZER_STANDARD, big);
  assert_int_equal(k.n, 2);
  assert_int_equal(k.last.len, 45);
}

static void invalid_utf8_is_an_error_with_offset(void **state) {
  static const char *bad[] = {"ok \xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "x\xf4\x90\x80\x80",
                              "\xe2\x82"};
  toks k;
  qb_err err;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&k, 0, sizeof k);
    assert_int_equal(qi_analyze(QI_ANALYZER_STANDARD, bad[i], strlen(bad[i]), collect, &k, &err),
                     QB_INVAL);
    assert_non_null(strstr(err.msg, "invalid UTF-8"));
    assert_int_equal(qi_analyze(QI_ANALYZER_KEYWORD, bad[i], strlen(bad[i]), collect, &k, &err),
                     QB_INVAL);
  }
  assert_int_equal(qi_analyze(QI_ANALYZER_STANDARD, "ok \xff", 4, collect, &k, &err), QB_INVAL);
  assert_string_equal(err.msg, "invalid UTF-8 at byte 3");
}

static void keyword_analyzer_keeps_the_whole_value(void **state) {
  toks k;
  (void)state;
  assert_string_equal(run(&k, QI_ANALYZER_KEYWORD, "New York, NY"), "New York, NY");
  assert_int_equal(k.n, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(standard_splits_ascii_words_and_lowercases),
      cmocka_unit_test(apostrophes_and_dots_inside_words_stay),
      cmocka_unit_test(numbers_keep_decimal_and_thousands_separators),
      cmocka_unit_test(latin1_greek_cyrillic_are_lowercased),
      cmocka_unit_test(han_ideographs_are_single_tokens),
      cmocka_unit_test(punctuation_and_symbols_separate_words),
      cmocka_unit_test(long_words_are_split_at_255_chars),
      cmocka_unit_test(invalid_utf8_is_an_error_with_offset),
      cmocka_unit_test(keyword_analyzer_keeps_the_whole_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
