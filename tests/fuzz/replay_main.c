/* replay_main.c: main() for the fuzz targets without libFuzzer (SQLite's fuzzcheck): feeds
** every file named on the command line, or found directly in a named folder, to
** LLVMFuzzerTestOneInput once. A crash or sanitizer report fails the run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  if (!f)
    return fprintf(stderr, "replay: cannot open %s\n", path), 1;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
    fclose(f);
    free(buf);
    return fprintf(stderr, "replay: cannot read %s\n", path), 1;
  }
  fclose(f);
  printf("replay: %s (%ld bytes)\n", path, n);
  fflush(stdout);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  int i, bad = 0, count = 0;
  for (i = 1; i < argc; i++) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    if (stat(argv[i], &st)) {
      fprintf(stderr, "replay: %s: not found\n", argv[i]);
      bad = 1;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      bad |= replay_file(argv[i]);
      count++;
      continue;
    }
    if (!(d = opendir(argv[i])))
      continue;
    while ((e = readdir(d))) {
      char path[4096];
      if (e->d_name[0] == '.')
        continue;
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      if (!stat(path, &st) && S_ISREG(st.st_mode))
        bad |= replay_file(path), count++;
    }
    closedir(d);
  }
  printf("replay: %d inputs, no crash\n", count);
  return bad;
}
