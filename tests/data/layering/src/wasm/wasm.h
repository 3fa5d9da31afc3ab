/* wasm.h: fixture */
