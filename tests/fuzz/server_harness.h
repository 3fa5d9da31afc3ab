/* server_harness.h: a real quidditch node inside the fuzzer's process (port 0 on 127.0.0.1, a
** temporary data directory, short connection deadlines), and one exchange of raw bytes with it
** over a fresh loopback connection. Included by the fuzz targets that go through HTTP end to
** end (fuzz_http.c, fuzz_bulk.c); the node is freed and its directory removed at exit. */
#ifndef QD_FUZZ_SERVER_HARNESS_H
#define QD_FUZZ_SERVER_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server.h"

static qs_server *harness_srv;
static char harness_dir[64];

static void harness_stop(void) {
  char cmd[128];
  qs_server_free(harness_srv);
  harness_srv = NULL;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", harness_dir);
  if (system(cmd)) { /* best effort */
  }
}

static void harness_start(void) {
  if (harness_srv) return;
  signal(SIGPIPE, SIG_IGN);
  snprintf(harness_dir, sizeof harness_dir, "/tmp/qd-fuzz-http-XXXXXX");
  if (!mkdtemp(harness_dir)) abort();
  qs_options o = {0};
  o.listen = "127.0.0.1:0";
  o.data_dir = harness_dir;
  o.threads = 2;
  o.header_timeout_ms = 500;
  o.body_timeout_ms = 500;
  o.idle_timeout_ms = 500;
  o.disk_flood_stage_pct = 100;
  o.disk_high_pct = 100;
  qb_err err;
  if (qs_server_new(&o, &harness_srv, &err)) {
    fprintf(stderr, "harness: %s\n", err.msg);
    abort();
  }
  atexit(harness_stop);
}

/* Send REQ[0..N) on a new connection, close our side, and read until the node closes, ten
** seconds pass without an answer, or 30 ms pass after one. Returns the bytes received. */
static size_t harness_exchange(const uint8_t *req, size_t n) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(qs_server_port(harness_srv));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {10, 0}; /* a bulk with many index creations can take seconds */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    size_t off = 0;
    while (off < n) {
      ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    /* The first bytes may take a while (a search); once the node has answered, a keep-alive
    ** connection stays open, so stop when nothing more comes within 30 ms. */
    char buf[65536];
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
      got += (size_t)r;
      struct timeval more = {0, 30000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &more, sizeof more);
    }
  }
  close(fd);
  return got;
}

#endif
