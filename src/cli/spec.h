/* spec.h: `qwasm spec`, the spec-suite runner (spec.c), called by qwasm.c's main. */
#ifndef QD_CLI_SPEC_H
#define QD_CLI_SPEC_H

/* ARGV holds the arguments after "spec". Returns the process exit status. */
int spec_main(int argc, char **argv);

#endif
