#include "query.h"
#include "index.h"
#include <../index/internal.h>
#include "wasm/compile.h"
#include "expr_int.h"
