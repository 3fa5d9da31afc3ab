/* compile.h: the translator's own header (compile.c, compile_emit.c; nothing else includes
** it). The translation state C, the virtual stack and control stack entries, and the
** emission, stack, branch and operator helpers compile_emit.c gives the opcode walk in
** compile.c. Names shared between the two files are qw__tr_. */
#ifndef QW_COMPILE_H
#define QW_COMPILE_H

#include <string.h>

#include "internal.h"
#include "wasm_backend.h"

enum {
#define IOP(n) OP_##n,
#include "iops.def"
  OP__COUNT
};

enum { K_HOME, K_LOCAL, K_CONST };
typedef struct ent {
  uint8_t kind;
  uint32_t slot; /* K_HOME: its home slot; K_LOCAL: the local's slot */
  uint64_t k;    /* K_CONST: the value's bits (i32/f32 zero-extended) */
} ent;

enum { C_BLOCK, C_LOOP, C_IF, C_FUNC, C_INLINE }; /* C_INLINE: the body of an inlined call */
typedef struct ctl {
  uint8_t kind;
  bool dead;          /* the rest of the current arm is unreachable: emit nothing */
  bool skip;          /* the construct itself is unreachable (entered in dead code) */
  uint32_t height;    /* stack height at entry, params excluded: branch values go to homes here */
  uint32_t nparams, nresults;
  uint32_t loop_pos;  /* C_LOOP: code position of the header */
  int32_t patches;    /* forward branches to bind at `end` (list in C.pt) */
  int32_t else_patch; /* C_IF: the branch to the else arm until bound, else -1 */
} ctl;

typedef struct patch {
  uint32_t at, from; /* code[at] = target - from */
  int32_t next;
} patch;

typedef struct C {
  const qw_module *m;
  const void *const *xlat; /* op -> handler address (computed goto), NULL for switch builds */
  uint32_t s0;         /* params + declared locals */
  uint32_t nresults;
  uint32_t *code;
  uint32_t n, cap;
  uint32_t *pcm; /* pairs */
  uint32_t npc, pccap;
  ent *st;
  uint32_t sp, stcap, maxsp;
  ctl *cs;
  uint32_t csp, cscap;
  patch *pt;
  uint32_t npt, ptcap;
  uint32_t *tmp; /* br_table labels */
  uint32_t tmpcap;
  uint64_t *kv; /* constant slots' values: slot kbase + i holds kv[i] */
  uint32_t nk, kcap, kbase;
  bool kfrozen; /* second pass: the constant table is fixed */
  bool oom;
  uint32_t wofs; /* wasm offset of the instruction being translated */
  uint32_t fidx; /* its function (differs from the compiled one inside an inlined call) */
  const uint32_t *lmap; /* inside an inlined call: the slot of each of its locals; else NULL
                           (local x is slot x) */
  uint32_t lmap_buf[32];
  uint32_t inl;  /* ctl index of the inlined call's label (its `return`), or UINT32_MAX */
  /* peephole state: the last emitted instruction, and the one before it */
  uint32_t last_start, last_end, last_op, last_dst_depth;
  bool last_has_dst;
  uint32_t prev_start, prev_end, prev_op;
  bool prev_valid;
  uint32_t barrier; /* a label was bound at this code position */
} C;

#define GROW(c, arr, cap, need) qw__tr_grow((c), (void **)&(arr), &(cap), (need), sizeof(*(arr)))
#define E(c, op, ...) \
  qw__tr_emitv((c), (op), sizeof((uint32_t[]){__VA_ARGS__}) / 4, (const uint32_t[]){__VA_ARGS__})
#define E0(c, op) qw__tr_emitv((c), (op), 0, NULL)

extern const uint8_t qw__tr_neg10[10], qw__tr_rev10[10];

bool qw__tr_grow(C *c, void **p, uint32_t *cap, uint64_t need, size_t elsz);
uint32_t qw__tr_emitv(C *c, uint32_t op, uint32_t nargs, const uint32_t *args);
void qw__tr_dst_is(C *c, uint32_t depth);
uint32_t qw__tr_home(const C *c, uint32_t depth);
bool qw__tr_last_is(const C *c, uint32_t op, uint32_t depth);
void qw__tr_drop_last(C *c);
void qw__tr_label_here(C *c);
void qw__tr_push(C *c, uint8_t kind, uint32_t slot, uint64_t k);
void qw__tr_push_home(C *c);
void qw__tr_push_homes(C *c, uint32_t n);
void qw__tr_mat(C *c, uint32_t i);
void qw__tr_slot_for(C *c, uint32_t i);
void qw__tr_need_slots(C *c, uint32_t n);
uint32_t qw__tr_slot_at(C *c, uint32_t fromtop);
void qw__tr_add_patch(C *c, ctl *t, uint32_t at, uint32_t from);
void qw__tr_link_to(C *c, ctl *t, uint32_t at, uint32_t from);
void qw__tr_bind_patches(C *c, int32_t p);
uint32_t qw__tr_arity(const ctl *t);
bool qw__tr_in_place(C *c, uint32_t n, uint32_t height);
void qw__tr_moves(C *c, uint32_t n, uint32_t height);
void qw__tr_ret(C *c);
void qw__tr_br_to(C *c, uint32_t rel);
uint32_t qw__tr_cond_br(C *c, bool on_true, uint32_t *at);
ctl *qw__tr_push_ctl(C *c, uint8_t kind, uint32_t np, uint32_t nr);
void qw__tr_settle(C *c, uint32_t np, uint32_t below);
/* BT: a block type as qw_insn.bt has it */
void qw__tr_blocktype(const qw_module *m, int64_t bt, uint32_t *np, uint32_t *nr);
void qw__tr_binop_m(C *c, uint32_t o, uint32_t oi, uint32_t orv, bool wide, uint32_t om,
                    uint32_t ld, bool comm);
void qw__tr_binop(C *c, uint32_t o, uint32_t oi, uint32_t orv, bool wide);
void qw__tr_unop(C *c, uint32_t o);
void qw__tr_sink(C *c, uint32_t o, uint32_t nimm, uint32_t i0, uint32_t i1, uint32_t n);
void qw__tr_local_set(C *c, uint32_t x, bool tee);
void qw__tr_load(C *c, uint32_t o, uint32_t off);
void qw__tr_store(C *c, uint32_t o, uint32_t off);
void qw__tr_call(C *c, uint32_t o, uint32_t imm0, uint32_t imm1, uint32_t np, uint32_t nr,
                 bool indirect);
void qw__tr_unreachable_rest(C *c);

#endif
