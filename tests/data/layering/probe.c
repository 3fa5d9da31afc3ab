/* probe.c: must NOT compile (CTest layering/compiler). It is built with the include paths of
** a target that links every layer (qserver), and asks for a private header of src/wasm. */
#include "wasm.h"
#include "compile.h"
