#include "base.h"
#include "wasm.h"
