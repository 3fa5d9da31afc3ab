/* select.c: which defined functions the native tier compiles, and which of them get an entry
** (docs/jit.md "What is compiled"). Native code is only ever entered through an export (the
** interpreter runs the start function at instantiation, before any code is attached), so the
** set is what calls of the roots can run: the function exports, closed over direct calls, and
** over call_indirect of type T to every defined function of T's signature (a table can only
** hold, and a call_indirect only succeed on, such functions).
** UDF mode (qj_options.udf) drops the roots the UDF layer runs in the interpreter only (exec.c):
** the ABI's own exports (qd_alloc, qd_reset, qd_abi_version...) and the batch form X__batch of
** an export X. In a Rust module those reach the allocator, the panic machinery and, through
** call_indirect, the formatting code: compiling them only costs compile time. Given the one
** export the UDF runs (qj_options.export_name), that export is the only root.
** A function outside the set keeps its interpreter entry; calls between the tiers work
** (wasm_backend.h), so the set decides speed, never results.
** UDF mode also finds the hot set: what the roots reach through calls that are not right before
** `unreachable` (Rust's and AssemblyScript's panic and abort helpers; in title_upper.rust most
** of the module hangs off them). lower_func.c compiles the rest at optnone: same results,
** cheaper code generation, slower code only on the way to a trap.
** Invariant: a selected function's direct callees are selected (lower_call.c calls them
** natively, without a check). */
#include <string.h>

#include "internal.h"

static bool same_sig(qw_bfunctype a, qw_bfunctype b) {
  return a.nparams == b.nparams && a.nresults == b.nresults &&
         !memcmp(a.params, b.params, a.nparams) && !memcmp(a.results, b.results, a.nresults);
}

/* is export NAME one the UDF layer runs only in the interpreter? */
static bool udf_interp_only(const qw_module *m, const char *name) {
  if (!strncmp(name, "qd_", 3)) return true;
  size_t len = strlen(name);
  if (len <= 7 || strcmp(name + len - 7, "__batch")) return false;
  uint32_t ne = qw_module_export_count(m);
  for (uint32_t i = 0; i < ne; i++) {
    qw_port p;
    qw_module_export(m, i, &p);
    if (p.kind == QW_KFUNC && strlen(p.name) == len - 7 && !strncmp(p.name, name, len - 7))
      return true;
  }
  return false;
}

/* Close the set over calls from WORK[0..TOP): every function reached gets BIT, a
** call_indirect target also WHY. COLD_CUT: a call right before `unreachable` is no edge (a
** panic or abort helper: it runs once, on the way to a trap). */
static qb_code close_over(const qw_module *m, uint8_t *sel, uint8_t bit, uint8_t why,
                          bool cold_cut, uint32_t *work, uint32_t top, qb_err *err) {
  qw_bcounts n = qw_bmod_counts(m);
  uint32_t nd = n.nfuncs - n.nfunc_imports;
  uint8_t *tseen = qb_calloc(n.ntypes + 1, 1); /* call_indirect types already followed */
  if (!tseen) return qb_fail(err, QB_NOMEM, "jit: out of memory");
#define ADD(d_, why_)                                                                        \
  do {                                                                                       \
    uint32_t a_ = (d_);                                                                      \
    if (!(sel[a_] & bit)) work[top++] = a_;                                                  \
    sel[a_] |= bit | (why_);                                                                 \
  } while (0)
  const uint8_t *base = qw_bmod_bytes(m, &(size_t){0});
  qb_code rc = QB_OK;
  while (top && !rc) {
    qw_bfunc bf = qw_bmod_func(m, work[--top]);
    const uint8_t *p = bf.body;
    qw_insn in;
    int64_t pend = -1; /* the callee of the call just decoded, under COLD_CUT */
    while (p < bf.body_end) {
      if (!qw_insn_next(&p, bf.body_end, base, &in)) {
        rc = qb_fail(err, QB_INTERNAL, "jit: cannot decode function body at 0x%x",
                     bf.body_offset);
        break;
      }
      if (pend >= 0 && in.op != 0x00) ADD((uint32_t)pend, 0);
      pend = -1;
      if (in.op == 0x10 && in.a >= n.nfunc_imports) {
        if (cold_cut) pend = in.a - n.nfunc_imports;
        else ADD(in.a - n.nfunc_imports, 0);
      }
      if (in.op != 0x11 || tseen[in.a]) continue;
      tseen[in.a] = 1;
      qw_bfunctype t = qw_bmod_type(m, in.a);
      for (uint32_t d = 0; d < nd; d++)
        if (same_sig(qw_bmod_type(m, qw_bmod_func(m, d).type_idx), t)) ADD(d, why);
    }
    if (pend >= 0) ADD((uint32_t)pend, 0);
  }
#undef ADD
  qb_free(tseen, n.ntypes + 1);
  return rc;
}

qb_code qj__select(const qw_module *m, bool udf, const char *only, uint8_t *sel, qb_err *err) {
  qw_bcounts n = qw_bmod_counts(m);
  uint32_t nd = n.nfuncs - n.nfunc_imports, ne = qw_module_export_count(m), nr = 0;
  uint32_t *work = qb_calloc(nd + 1, sizeof *work), *roots = qb_calloc(nd + 1, sizeof *roots);
  if (!work || !roots) {
    qb_free(work, (nd + 1) * sizeof *work), qb_free(roots, (nd + 1) * sizeof *roots);
    return qb_fail(err, QB_NOMEM, "jit: out of memory");
  }
  memset(sel, 0, nd);
  for (uint32_t i = 0; i < ne; i++) {
    qw_port p;
    qw_module_export(m, i, &p);
    if (p.kind != QW_KFUNC || p.index < n.nfunc_imports) continue;
    if (udf && (only ? strcmp(p.name, only) != 0 : udf_interp_only(m, p.name))) continue;
    uint32_t d = p.index - n.nfunc_imports;
    if (!(sel[d] & QJ_SEL_ROOT)) roots[nr++] = d;
    sel[d] |= QJ_SEL_CODE | QJ_SEL_ROOT | QJ_SEL_HOT;
  }
  memcpy(work, roots, nr * sizeof *work);
  qb_code rc = close_over(m, sel, QJ_SEL_CODE, QJ_SEL_INDIRECT, false, work, nr, err);
  if (!rc && udf) { /* the hot set: what runs without going to a trap */
    memcpy(work, roots, nr * sizeof *work);
    rc = close_over(m, sel, QJ_SEL_HOT, 0, true, work, nr, err);
  } else if (!rc) {
    for (uint32_t d = 0; d < nd; d++)
      if (sel[d]) sel[d] |= QJ_SEL_HOT;
  }
  qb_free(work, (nd + 1) * sizeof *work);
  qb_free(roots, (nd + 1) * sizeof *roots);
  return rc;
}
