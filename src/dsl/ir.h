/* The expression IR: a DAG of scalar ops in topological order (every operand
 * index is smaller than its user's), built by hash-consing so equal
 * subexpressions are one node (CSE), with constants folded on insertion.
 * Produced by the parser (parse.c), differentiated by grad.c, evaluated by
 * interp.c, and walked by the emitters (src/jit/emit_*.c).
 * Tested by tests/test_dsl.c; parser fuzzed by fuzz/fuzz_expr.c. */
#ifndef ZM_DSL_IR_H
#define ZM_DSL_IR_H

#include "zmlx/core.h"
#include <stdint.h>

typedef enum {
    /* leaves */
    ZM_IR_CONST = 0, /* value */
    ZM_IR_INPUT,     /* index: element of input tensor `index` */
    ZM_IR_PARAM,     /* index: scalar parameter `index` */
    ZM_IR_RED,       /* index: row reduction result r<index> (map_reduce) */
    /* unary (a) */
    ZM_IR_NEG, ZM_IR_EXP, ZM_IR_EXP2, ZM_IR_LOG, ZM_IR_LOG2, ZM_IR_LOG1P, ZM_IR_EXPM1,
    ZM_IR_SQRT, ZM_IR_RSQRT, ZM_IR_ABS, ZM_IR_SIGN, ZM_IR_SIN, ZM_IR_COS, ZM_IR_TANH,
    ZM_IR_SIGMOID, ZM_IR_SILU, ZM_IR_GELU, ZM_IR_GELU_TANH, ZM_IR_SOFTPLUS, ZM_IR_RELU,
    ZM_IR_ERF, ZM_IR_FLOOR, ZM_IR_CEIL,
    /* binary (a, b) */
    ZM_IR_ADD, ZM_IR_SUB, ZM_IR_MUL, ZM_IR_DIV, ZM_IR_POW, ZM_IR_MIN, ZM_IR_MAX,
    ZM_IR_LT, ZM_IR_LE, ZM_IR_GT, ZM_IR_GE, ZM_IR_EQ, ZM_IR_NE, /* 1.0 or 0.0 */
    /* ternary (a, b, c) */
    ZM_IR_WHERE, /* a != 0 ? b : c */
    ZM_IR_OP_COUNT
} zm_ir_op;

/* Reference semantics (double in zm_ir_apply; every emitter in src/jit and
 * zm_ir_eval_f32 compute the same formulas in float):
 *
 *   op          value
 *   ----------  -----------------------------------------------------------
 *   neg         -a
 *   exp exp2    e^a, 2^a                 log log2   ln a, log2 a
 *   log1p       ln(1+a)                  expm1      e^a - 1
 *   sqrt        sqrt(a)                  rsqrt      1 / sqrt(a)
 *   abs         |a|                      sign       -1, 0, +1 (NaN stays NaN; -0 stays -0)
 *   sin cos     sin a, cos a             tanh       tanh a
 *   sigmoid     1 / (1 + exp(-a))
 *   silu        a * sigmoid(a)
 *   gelu        0.5 a (1 + erf(a / sqrt(2)))
 *   gelu_tanh   0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))
 *   softplus    a > 20 ? a : log1p(exp(a))
 *   relu        fmax(a, 0)               (so relu(NaN) = 0, as fmaxf)
 *   erf floor ceil   as libm
 *   add sub mul div  a+b a-b a*b a/b     pow   pow(a, b) (libm powf in float)
 *   min max     fmin(a, b), fmax(a, b)   (C99: a NaN operand is ignored)
 *   lt le gt ge eq ne   (a OP b) ? 1 : 0 (any comparison with NaN is 0, ne is 1)
 *   where       a != 0 ? b : c           (NaN counts as true)
 *
 * CONST values are always finite (the parser rejects overflowing literals and
 * the folder keeps the op when a folded value would be Inf or NaN), so an
 * emitter may print them with "%.17g" (and an 'f' suffix in float code). */

/* Limits: the parser refuses nesting deeper than ZM_IR_MAX_DEPTH and an IR
 * never grows past ZM_IR_MAX_NODES nodes (ZM_ERR_RANGE). */
#define ZM_IR_MAX_DEPTH 200
#define ZM_IR_MAX_NODES (1 << 22)

typedef struct zm_ir_node {
    zm_ir_op op;
    int32_t a, b, c; /* operand node indices, -1 if unused */
    int32_t index;   /* INPUT / PARAM / RED index */
    double value;    /* CONST */
} zm_ir_node;

typedef struct zm_ir {
    zm_ir_node *nodes;
    int32_t n, cap;
    /* hash table for CSE: slot -> node index + 1 (0 = empty) */
    int32_t *hash;
    int32_t hash_cap;
} zm_ir;

/* Names the parser resolves: each identifier maps to an input, a parameter
 * or a reduction result. Unknown identifiers are parse errors. */
typedef struct zm_ir_names {
    const char *inputs[8]; int n_inputs;
    const char *params[8]; int n_params;
    int n_reds; /* r0 .. r(n_reds-1) are valid names */
} zm_ir_names;

const char *zm_ir_op_name(zm_ir_op op); /* "exp", "add", ... */
int zm_ir_op_arity(zm_ir_op op);        /* 0..3 */

void zm_ir_init(zm_ir *ir);
void zm_ir_clear(zm_ir *ir);             /* frees storage */
/* Insert (with folding and CSE); returns the node index, or -1 on NOMEM
 * (with zm_last_error set). Operands must be existing indices. */
int32_t zm_ir_leaf(zm_ir *ir, zm_ir_op op, int32_t index);
int32_t zm_ir_const(zm_ir *ir, double v);
int32_t zm_ir_op1(zm_ir *ir, zm_ir_op op, int32_t a);
int32_t zm_ir_op2(zm_ir *ir, zm_ir_op op, int32_t a, int32_t b);
int32_t zm_ir_op3(zm_ir *ir, zm_ir_op op, int32_t a, int32_t b, int32_t c);

/* Parse src into ir; *root = the result node. Errors are ZM_ERR_PARSE with
 * a message "at byte N: <reason>". Never crashes on any input. */
zm_status zm_expr_parse(zm_ir *ir, const char *src, const zm_ir_names *names, int32_t *root);
/* Auto-detect names: identifiers that are not functions become inputs in
 * order x, y, z first, then others in order of first appearance.
 * (Used when the caller gives no input names.) */
zm_status zm_expr_scan_inputs(const char *src, const char **params, int n_params,
                              char names[8][32], int *n_inputs);

/* d(root)/d(input `wrt`) times node `seed` (the upstream gradient), as a new
 * node in the same IR, simplified. Subgradients: documented in grad.c. */
zm_status zm_ir_grad(zm_ir *ir, int32_t root, int32_t wrt, int32_t seed, int32_t *out);

/* Does node `root` depend on any INPUT leaf? On any RED leaf? */
int zm_ir_uses_inputs(const zm_ir *ir, int32_t root);
int zm_ir_max_index(const zm_ir *ir, int32_t root, zm_ir_op leaf); /* -1 if none */

/* Interpreter: evaluate root with the given leaf values (double / float). */
double zm_ir_eval(const zm_ir *ir, int32_t root, const double *inputs, const double *params,
                  const double *reds);
/* Float32 array evaluator (the CPU JIT's interpreter fallback): out[i] =
 * root evaluated at element i for i in [0, n), in float arithmetic with the
 * formulas above. Input k's element i is in[k][i * in_stride[k]] (stride in
 * elements; 0 broadcasts in[k][0]). params[j] and reds[j] are scalars (may be
 * NULL when root uses none). Works node by node over blocks of a few hundred
 * elements. On allocation failure out is filled with NaN and zm_last_error
 * is set. out may not alias an input. */
void zm_ir_eval_f32(const zm_ir *ir, int32_t root, int64_t n, const float *const *in,
                    const int64_t *in_stride, const float *params, const float *reds, float *out);
/* Reference semantics of one op in double (shared by the interpreter, the
 * constant folder and the tests). */
double zm_ir_apply(zm_ir_op op, double a, double b, double c);

/* Private to src/dsl and src/jit: a malloc'ed mark array of root + 1 bytes,
 * 1 for each node reachable from root (NULL on bad root or no memory). */
unsigned char *zm__ir_reach(const zm_ir *ir, int32_t root);

/* Human-readable form of a node, for debugging and error messages. */
zm_status zm_ir_print(const zm_ir *ir, int32_t root, char *buf, size_t len);

#endif
