/* fuzz_bulk.c: `_bulk` NDJSON bodies, sent as POST /_bulk?refresh=true to a real node in this
** process (server_harness.h): action lines, sources, mixed indexes, routing through to the
** stores. Every body gets an answer (200 with per-item results, or a 4xx) and the node stays
** up, with no crash, leak or sanitizer report. */
#include "server_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  harness_start();
  if (size > 1 << 20) return 0;
  char head[200];
  int hn = snprintf(head, sizeof head, "POST /_bulk?refresh=%s HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/x-ndjson\r\nConnection: close\r\n"
                    "Content-Length: %zu\r\n\r\n", size % 3 ? "false" : "true", size);
  uint8_t *req = malloc((size_t)hn + size);
  if (!req) return 0;
  memcpy(req, head, (size_t)hn);
  if (size) memcpy(req + hn, data, size);
  static const char probe[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (!harness_exchange(req, (size_t)hn + size) &&
      !harness_exchange((const uint8_t *)probe, sizeof probe - 1)) {
    fprintf(stderr, "fuzz_bulk: no answer to a %zu-byte body, and none to GET / after it\n", size);
    abort();
  }
  free(req);
  return 0;
}
