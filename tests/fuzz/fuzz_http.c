/* fuzz_http.c: raw bytes as an HTTP request to a real node in this process (server_harness.h):
** the request line, headers, framing, routing, every handler's parsing. Whatever arrives, the
** node answers or closes, never crashes, leaks or hangs; a GET / afterwards still answers. */
#include "server_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char probe[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  static unsigned long runs;
  harness_start();
  if (size > 1 << 20) return 0;
  harness_exchange(data, size);
  if (++runs % 64 == 0 && !harness_exchange((const uint8_t *)probe, sizeof probe - 1)) {
    fprintf(stderr, "fuzz_http: the node stopped answering GET /\n");
    abort();
  }
  return 0;
}
