/* test_bm25.c: SmallFloat norms and BM25 against values derived by hand from Lucene's formula:
** idf = ln(1 + (N - n + 0.5)/(n + 0.5)), score = boost*idf*tf/(tf + k1*(1 - b + b*dl/avgdl)),
** k1 = 1.2, b = 0.75, dl decoded from the one-byte norm. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "index.h"

static void assert_rel(double got, double want) {
  double rel = fabs(got - want) / fabs(want);
  if (rel > 1e-5) fail_msg("got %.9g, want %.9g (relative error %.3g)", got, want, rel);
}

static void smallfloat_matches_lucene_tables(void **state) {
  (void)state;
  /* below NUM_FREE_VALUES (24) and in the subnormal range (< 24 + 8) lengths are exact */
  assert_int_equal(qi_smallfloat_int_to_byte4(0), 0);
  assert_int_equal(qi_smallfloat_int_to_byte4(10), 10);
  assert_int_equal(qi_smallfloat_int_to_byte4(31), 31);
  assert_int_equal(qi_smallfloat_byte4_to_int(31), 31);
  /* 32: 24 + longToInt4(8): 4 bits, shift 0, (8 & 7) | (0+1)<<3 = 8 -> byte 32 */
  assert_int_equal(qi_smallfloat_int_to_byte4(32), 32);
  /* 100: 100-24 = 76 = 0b1001100: 7 bits, shift 3, 76>>3 = 9, 9&7 = 1, 1 | 4<<3 = 33 -> 57;
  ** decoded: 24 + (1|8)<<3 = 24 + 72 = 96 */
  assert_int_equal(qi_smallfloat_int_to_byte4(100), 57);
  assert_int_equal(qi_smallfloat_byte4_to_int(57), 96);
  /* largest byte decodes to about 2^31 (Lucene: byte4ToInt(255) = 2013265944) */
  assert_int_equal(qi_smallfloat_byte4_to_int(255), 2013265944u);
  /* encoding is monotonic and decode(encode(x)) <= x */
  {
    uint32_t i;
    for (i = 1; i < 100000; i += 7) {
      assert_true(qi_smallfloat_byte4_to_int(qi_smallfloat_int_to_byte4(i)) <= i);
      assert_true(qi_smallfloat_int_to_byte4(i) >= qi_smallfloat_int_to_byte4(i - 1));
    }
  }
}

static void idf_is_lucene_idf(void **state) {
  (void)state;
  /* N = 10, n = 3: ln(1 + 7.5/3.5) = ln(22/7) = 1.1451323043 */
  assert_rel(qi_bm25_idf(10, 3), 1.1451323043030026);
  /* N = 1000, n = 1: ln(1 + 999.5/1.5) = 6.5032896717 */
  assert_rel(qi_bm25_idf(1000, 1), 6.503289671207057);
}

static void score_uses_decoded_length_and_no_k1_plus_one(void **state) {
  qi_field_stats st = {10, 800, 0};
  qi_bm25 w;
  (void)state;
  /* avgdl = 800/10 = 80; dl = 100 decodes to 96 (norm byte 57);
  ** K = 1.2*(0.25 + 0.75*96/80) = 1.2*1.15 = 1.38; score = idf*2/(2+1.38) = 0.6775930795 */
  qi_bm25_init(&w, 1.0f, &st, 3, -1, -1);
  assert_rel(w.avgdl, 80.0);
  assert_rel(qi_bm25_score(&w, 2, qi_smallfloat_int_to_byte4(100)), 0.6775930794692323);
}

static void boost_multiplies_the_score(void **state) {
  qi_field_stats st = {1000, 8500, 0};
  qi_bm25 w;
  (void)state;
  /* N = 1000, n = 1, tf = 1, dl = 10 (exact), avgdl = 8.5, boost 2:
  ** 2*6.5032896717*1/(1 + 1.2*(0.25 + 0.75*10/8.5)) = 5.5140111925 */
  qi_bm25_init(&w, 2.0f, &st, 1, -1, -1);
  assert_rel(qi_bm25_score(&w, 1, 10), 5.514011192544637);
}

static void block_scores_equal_single_scores(void **state) {
  qi_field_stats st = {50, 400, 0};
  qi_bm25 w;
  uint32_t f[4] = {1, 2, 3, 40};
  uint8_t n[4] = {1, 8, 57, 100};
  float out[4];
  int i;
  (void)state;
  qi_bm25_init(&w, 1.0f, &st, 5, -1, -1);
  qi_bm25_score_block(&w, f, n, 4, out);
  for (i = 0; i < 4; i++) assert_true(out[i] == qi_bm25_score(&w, f[i], n[i]));
  /* more occurrences score higher, longer fields lower */
  assert_true(qi_bm25_score(&w, 3, 8) > qi_bm25_score(&w, 2, 8));
  assert_true(qi_bm25_score(&w, 2, 57) < qi_bm25_score(&w, 2, 8));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(smallfloat_matches_lucene_tables),
      cmocka_unit_test(idf_is_lucene_idf),
      cmocka_unit_test(score_uses_decoded_length_and_no_k1_plus_one),
      cmocka_unit_test(boost_multiplies_the_score),
      cmocka_unit_test(block_scores_equal_single_scores),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
