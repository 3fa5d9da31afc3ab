/* validate.c: placeholder until the validator lands (engine-front). */
#include "internal.h"

qb_code qw__validate(qw_module *m, qb_err *err) {
  (void)err;
  m->validated = true;
  return QB_OK;
}
