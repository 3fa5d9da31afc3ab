/* blockscan.c: which exports may have a check-free block loop (docs/jit.md, "Check-free block
** drivers"). An export qualifies when everything it can run is loop-free and bounded: its body
** and every function it reaches by direct calls (an acyclic call graph, no imports, no
** call_indirect) has no loop, touches no table and calls nothing in the runtime (traps and
** bounds-checked memory accesses are fine: they leave through the trap call). For such an export the scan gives static bounds that hold for
** one document on every path: the fuel it can charge (1 for the entry + 1 per call but those
** the interpreter inlines, each call instruction counted as if taken: without loops each runs
** at most once per invocation), the
** longest chain of nested calls (depth_left it needs) and a bound on the native stack its
** frames can take. The driver checks these once per block before it takes the check-free loop
** and falls back to the checked loop otherwise, so no document can hit a limit in the
** check-free loop that the checked one would have hit.
** Invariant: the scan is conservative; any instruction it does not know disqualifies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SCAN_MAX_DEPTH 32          /* nested calls we follow (deeper: not check-free) */
#define SCAN_MAX_BYTES (64u << 10) /* body bytes one export may reach */
#define SCAN_MAX_STACK (64u << 10) /* stack bound we accept */
#define SCAN_MAX_FUEL (1u << 20)   /* fuel per document we accept */

/* May instruction OP run in a check-free loop: no loop, no runtime call (calls are handled by
** the caller)? Traps are allowed: a trap leaves the loop through the same trap call as in the
** checked code, with the counted fuel written back first. Memory loads and stores keep their
** explicit bounds checks (they trap that way), so they are allowed unless the code leaves
** bounds to guard pages (GUARD): a fault would not write the counted fuel back. */
static bool harmless(uint32_t op, bool guard) {
  switch (op) {
  case 0x00: case 0x01: case 0x02: case 0x04: case 0x05: case 0x0b: case 0x0c: case 0x0d:
  case 0x0e: case 0x0f: case 0x1a: case 0x1b: case 0x1c:  /* control without loops, select */
  case 0x20: case 0x21: case 0x22: case 0x23: case 0x24:  /* locals, globals */
  case 0x41: case 0x42: case 0x43: case 0x44:             /* constants */
    return true;
  default:
    if (op >= 0x28 && op <= 0x3f) return !guard;          /* loads, stores, memory.size */
    if (op >= 0x45 && op <= 0xc4) return true;            /* numeric, conversions, sign-ext */
    return op >= 0xfc00 && op <= 0xfc07;                  /* trunc_sat */
  }
}

typedef struct scan {
  const qw_module *m;
  bool guard;
  qw_bcounts n;
  uint8_t *state;      /* per defined function: 0 unseen, 1 on the path, 2 done, 3 bad */
  qj_block_bounds *b;  /* per defined function, valid when state == 2 */
  size_t bytes;        /* body bytes scanned for this export */
} scan;

static bool visit(scan *s, uint32_t d, unsigned depth) {
  if (s->state[d] == 2) return true;
  if (s->state[d] != 0 || depth > SCAN_MAX_DEPTH) return false; /* a cycle, bad, too deep */
  s->state[d] = 1;
  qw_bfunc bf = qw_bmod_func(s->m, d);
  size_t len = (size_t)(bf.body_end - bf.body);
  s->bytes += len;
  if (s->bytes > SCAN_MAX_BYTES) goto bad;
  /* a frame: every local and every value the body computes may be spilled (16 bytes each:
  ** no SIMD), plus the call's own overhead */
  uint64_t fuel = 0, calls_depth = 0, frame = 16u * ((uint64_t)bf.nlocals + 16 + len) + 256,
           callee_stack = 0;
  const uint8_t *p = bf.body, *base = qw_bmod_bytes(s->m, &(size_t){0});
  qw_insn in;
  while (p < bf.body_end) {
    if (!qw_insn_next(&p, bf.body_end, base, &in)) goto bad;
    if (in.op == 0x10) {
      if (in.a < s->n.nfunc_imports) goto bad;
      uint32_t c = in.a - s->n.nfunc_imports;
      if (!visit(s, c, depth + 1)) goto bad;
      bool free_call = qw_bmod_call_free(s->m, in.a); /* inlined by the interpreter: 0 */
      fuel += (free_call ? 0 : 1) + s->b[c].fuel;
      uint64_t cd = s->b[c].depth + (free_call ? 0 : 1);
      if (cd > calls_depth) calls_depth = cd;
      if (s->b[c].stack > callee_stack) callee_stack = s->b[c].stack;
      if (fuel > SCAN_MAX_FUEL) goto bad;
      continue;
    }
    if (!harmless(in.op, s->guard)) goto bad;
  }
  s->b[d].fuel = fuel;
  s->b[d].depth = calls_depth;
  s->b[d].stack = frame + callee_stack;
  if (s->b[d].stack > SCAN_MAX_STACK) goto bad;
  s->state[d] = 2;
  return true;
bad:
  s->state[d] = 3;
  return false;
}

qb_code qj__block_scan(const qw_module *m, uint32_t d, bool guard, qj_block_bounds *out,
                       uint8_t *reach, bool *ok, qb_err *err) {
  scan s = {.m = m, .guard = guard, .n = qw_bmod_counts(m)};
  uint32_t nd = s.n.nfuncs - s.n.nfunc_imports;
  *ok = false;
  s.state = qb_calloc(nd + 1, 1);
  s.b = qb_calloc(nd + 1, sizeof *s.b);
  if (!s.state || !s.b) {
    qb_free(s.state, nd + 1), qb_free(s.b, (nd + 1) * sizeof *s.b);
    return qb_fail(err, QB_NOMEM, "jit: out of memory");
  }
  if (!getenv("QJ_NO_CHECKFREE") && visit(&s, d, 0)) {
    *ok = true;
    *out = s.b[d];
    out->fuel += 1;     /* the entry's own unit */
    out->stack += 1024; /* the loop's own frame (qj_c<D>, out of line) */
    for (uint32_t i = 0; i < nd; i++)
      if (s.state[i] == 2) reach[i] = 1;
  }
  qb_free(s.state, nd + 1);
  qb_free(s.b, (nd + 1) * sizeof *s.b);
  return QB_OK;
}
