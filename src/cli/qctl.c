/* qctl.c: the command-line client of the REST API (DESIGN.md §1). */
#include <stdio.h>

int main(void) {
  fprintf(stderr, "qctl: not built yet\n");
  return 1;
}
