/* test_route.c: document routing as Elasticsearch does it: MurmurHash3 x86_32 on the
** reference vectors, the same hash of the routing string's UTF-16 code units as
** Elasticsearch's Murmur3HashFunction.hash(String) (its own test values), floorMod (negative
** hashes give a shard in range), and a spread over shards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

static void murmur3_matches_the_reference_vectors(void **state) {
  assert_int_equal(qc_murmur3_32("", 0, 0), 0);
  assert_int_equal(qc_murmur3_32("", 0, 1), 0x514e28b7u);
  assert_int_equal(qc_murmur3_32("hello", 5, 0), 0x248bfa47u);
  const char *fox = "The quick brown fox jumps over the lazy dog";
  assert_int_equal(qc_murmur3_32(fox, strlen(fox), 0), 0x2e4ff723u);
}

/* Elasticsearch's Murmur3HashFunction.hash(String) values (UTF-16LE code units, seed 0). */
static uint32_t es_hash(const char *s) {
  uint8_t b[256];
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) b[2 * i] = (uint8_t)s[i], b[2 * i + 1] = 0;
  return qc_murmur3_32(b, 2 * n, 0);
}

static void routing_hash_is_elasticsearchs(void **state) {
  assert_int_equal(es_hash("hell"), 0x5a0cb7c3u);
  assert_int_equal(es_hash("hello"), 0xd7c31989u);
  assert_int_equal(es_hash("hello w"), 0x22ab2984u);
  assert_int_equal(es_hash("hello wo"), 0xdf0ca123u);
  assert_int_equal(es_hash("hello wor"), 0xe7744d61u);
  assert_int_equal(es_hash("The quick brown fox jumps over the lazy dog"), 0xe07db09cu);
  assert_int_equal(es_hash("The quick brown fox jumps over the lazy cog"), 0x4e63d2adu);
}

static void shard_is_floor_mod_of_the_hash(void **state) {
  const char *ids[] = {"hell", "hello", "hello w", "hello wo", "hello wor"};
  for (int i = 0; i < 5; i++) {
    int32_t h = (int32_t)es_hash(ids[i]);
    for (uint32_t n = 1; n <= 7; n++) {
      int32_t want = h % (int32_t)n;
      if (want < 0) want += (int32_t)n;
      assert_int_equal(qc_route_shard(ids[i], strlen(ids[i]), n), (uint32_t)want);
    }
  }
  /* non-ASCII: U+00E9 is one UTF-16 unit, U+1F600 a surrogate pair */
  uint8_t e9[2] = {0xe9, 0x00}, smile[4] = {0x3d, 0xd8, 0x00, 0xde};
  int32_t h1 = (int32_t)qc_murmur3_32(e9, 2, 0), h2 = (int32_t)qc_murmur3_32(smile, 4, 0);
  assert_int_equal(qc_route_shard("\xc3\xa9", 2, 5), (uint32_t)(((h1 % 5) + 5) % 5));
  assert_int_equal(qc_route_shard("\xf0\x9f\x98\x80", 4, 5), (uint32_t)(((h2 % 5) + 5) % 5));
}

static void ids_spread_over_the_shards(void **state) {
  unsigned count[3] = {0};
  char id[16];
  for (int i = 0; i < 3000; i++) {
    snprintf(id, sizeof id, "%d", i);
    count[qc_route_shard(id, strlen(id), 3)]++;
  }
  for (int s = 0; s < 3; s++)
    if (count[s] < 800) fail_msg("shard %d got %u of 3000 ids", s, count[s]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(murmur3_matches_the_reference_vectors),
      cmocka_unit_test(routing_hash_is_elasticsearchs),
      cmocka_unit_test(shard_is_floor_mod_of_the_hash),
      cmocka_unit_test(ids_spread_over_the_shards),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
