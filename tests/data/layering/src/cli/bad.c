#include "udf.h"
#include "query.h"
#include "internal.h"
#include "expr_int.h"
#include <src/index/index.h>
