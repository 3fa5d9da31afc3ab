#include "wasm.h"
#include "internal.h"
#include "compile.h"
#include <stdio.h>
#include "base.h"
#include <base.h>
