#include "udf.h"
#include <base.h>
#include "wasm.h"
#include "../../src/wasm/internal.h"
