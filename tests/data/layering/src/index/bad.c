#include "index.h"
#include "internal.h"
#include "../udf/udf.h"
#  include <wasm.h>
#include "query.h"
