/* printf_exit.c: a WASI command for tests/unit/wasm/test_wasi.c, compiled at test time with
** clang-19 --target=wasm32-wasi (wasi-libc). Prints through printf (fd_write), reads its argv,
** looks at what the sandbox denies (environment, files), and exits with code 7 (proc_exit). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int i;
  struct timespec ts;
  unsigned char rnd[16] = {0};
  const char *home = getenv("HOME");
  FILE *f = fopen("/etc/passwd", "r");
  printf("hello from wasi, argc=%d\n", argc);
  for (i = 0; i < argc; i++)
    printf("argv[%d]=%s\n", i, argv[i]);
  printf("env HOME=%s\n", home ? home : "(none)");
  printf("fopen=%s\n", f ? "opened" : "denied");
  clock_gettime(CLOCK_REALTIME, &ts);
  printf("clock=%s\n", ts.tv_sec > 1600000000 ? "ok" : "bad");
  printf("random=%s\n", getentropy(rnd, sizeof rnd) == 0 ? "ok" : "bad");
  fprintf(stderr, "to stderr\n");
  fflush(stdout);
  return 7;
}
