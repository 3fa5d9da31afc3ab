/* spec.h: `qwasm spec`, the spec-suite runner (spec.c), called by qwasm.c's main, and what the
** two share. */
#ifndef QD_CLI_SPEC_H
#define QD_CLI_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* The whole file PATH into *BUF (malloc'd, one spare byte; free it) and *LEN. -1 with errno set
** (and *BUF NULL) when it cannot be opened or read. Defined in qwasm.c. */
int read_file(const char *path, uint8_t **buf, size_t *len);

/* ARGV holds the arguments after "spec". Returns the process exit status. */
int spec_main(int argc, char **argv);

#endif
