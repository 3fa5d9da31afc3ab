// index.ts: the Quidditch UDF SDK for AssemblyScript, guest side (ABI v1,
// docs/udf-authoring.md). It gives a UDF module the exports the host expects (qd_alloc,
// qd_reset, qd_abi_version: re-export them from your entry file, see below), UTF-8 string
// helpers (AssemblyScript strings are UTF-16; the ABI's are UTF-8), and batch column helpers.
//
//   export { qd_alloc, qd_reset, qd_abi_version } from "<sdk>/assemblyscript/index";
//
// Build with `asc my_udf.ts --runtime incremental --use abort= -O3 -o my_udf.wasm`:
// `--use abort=` drops the `env.abort` import (a failed assertion then traps), so the module
// imports nothing.
//
// Invariant of the allocator: every pointer qd_alloc returned stays valid, and is never handed
// out twice, until the next qd_reset; nothing is freed on its own (a bump allocator). Its chunks
// after the static arena come from the runtime's heap (heap.alloc), never from memory.grow
// behind the runtime's back.

/** The ABI this SDK speaks; exported as qd_abi_version. */
export const ABI_VERSION: i32 = 1;

/** A string result meaning "no value" (the field is left out of the hit). */
export const STR_NULL: i64 = -1;

// ---- Allocator ------------------------------------------------------------------------------

// Chunk header (16 bytes): next: usize at +0, size: u32 at +4 (bytes of data after the header).
// @ts-ignore: decorator
@inline const HDR: u32 = 16;
// @ts-ignore: decorator
@inline const ARENA_SIZE: u32 = 65536;
const ARENA: usize = memory.data(<i32>ARENA_SIZE, 16);

let cur: usize = 0; // chunk being filled; 0 before the first call
let off: u32 = 0; // bytes used in cur's data

function arena(): usize {
  if (load<u32>(ARENA, 4) == 0) store<u32>(ARENA, ARENA_SIZE - HDR, 4);
  return ARENA;
}

function chunkNew(want: u32): usize {
  if (want > 0x3fff0000) return 0; // the runtime's largest block is 1 GiB
  const c = heap.alloc(<usize>(HDR + want));
  store<usize>(c, 0, 0);
  store<u32>(c, want, 4);
  return c;
}

/** Exported: len bytes, 8-byte aligned, valid until qd_reset; 0 when len < 0. The host writes
 *  string and batch arguments there. */
export function qd_alloc(len: i32): i32 {
  if (len < 0) return 0;
  const need: u32 = (<u32>len + 7) & ~7;
  if (cur == 0) {
    cur = arena();
    off = 0;
  }
  while (true) {
    const size = load<u32>(cur, 4);
    if (size - off >= need) {
      const p = cur + HDR + off;
      off += need;
      return <i32>p;
    }
    if (load<usize>(cur, 0) == 0) {
      // at least double what the chain can hold, so a growing workload takes few chunks
      const c = chunkNew(need > size * 2 ? need : size * 2);
      store<usize>(cur, c != 0 ? c : chunkNew(need), 0);
    }
    cur = load<usize>(cur, 0);
    off = 0;
  }
  return 0;
}

/** Exported: forget every qd_alloc since the last reset (the memory is reused). */
export function qd_reset(): void {
  cur = arena();
  off = 0;
}

/** Exported: the ABI version this module speaks. */
export function qd_abi_version(): i32 {
  return ABI_VERSION;
}

// ---- Strings --------------------------------------------------------------------------------

/** A string parameter arrives as (ptr: i32, len: i32): UTF-8 bytes in the module's memory,
 *  valid until qd_reset. This decodes them into an AssemblyScript (UTF-16) string; malformed
 *  UTF-8 becomes U+FFFD. */
export function readString(ptr: i32, len: i32): string {
  if (len <= 0) return "";
  return String.UTF8.decodeUnsafe(<usize>ptr, <usize>len, false);
}

/** Encode S as UTF-8 into qd_alloc'ed memory and return it as a string result:
 *  (ptr << 32) | len. */
export function returnString(s: string): i64 {
  const n = String.UTF8.byteLength(s, false);
  const p = qd_alloc(n);
  if (p == 0 && n > 0) unreachable();
  String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, <usize>p, false);
  return returnBytes(p, n);
}

/** Pack bytes already in this module's memory as a string result (no copy). They must stay
 *  valid until the module is called again. */
export function returnBytes(ptr: i32, len: i32): i64 {
  return (<i64>(<u32>ptr) << 32) | <i64>(<u32>len);
}

// ---- Batch form -----------------------------------------------------------------------------

/** Address of column j in a batch call <name>__batch(n, args, out): args holds one u32 column
 *  pointer per parameter; column j holds n values of parameter j's type (i32/f32: 4 bytes,
 *  i64/f64: 8, string: {ptr: u32, len: u32}). Read element i with load<T>(col + i * sizeof<T>()). */
// @ts-ignore: decorator
@inline export function column(args: i32, j: i32): usize {
  return <usize>load<u32>(<usize>args + (<usize>j << 2));
}
