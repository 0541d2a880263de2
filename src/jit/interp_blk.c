/* The CPU fallback when no C compiler works (or opts->force_interpreter):
 * evaluates the IR one block of elements at a time, node by node, in float,
 * with the very functions the emitted C uses (prelude.h), so interpreter and
 * JIT agree to the last few ulp of libm. Same block contract as the compiled
 * functions (jit.h). Checked by tests/test_kernel.c (JIT vs interpreter). */
#include "jit/jit.h"
#include <math.h>
#include <string.h>

#define ZM_FN static inline __attribute__((unused))
#include "jit/prelude.h"
ZM__PRELUDE_EXP(ZM__PRELUDE_CODE)
ZM__PRELUDE(ZM__PRELUDE_CODE)

size_t zm__interp_scratch(const zm_kernel *k) { return (size_t)(k->ir.n + 1) * ZM__BLK; }

/* Evaluate the cone of root over len (<= ZM__BLK) elements; returns the
 * values (inside scratch or an input). */
static const float *zm__eval(const zm_kernel *k, int32_t root, int64_t len, const float *const *a, const float *p,
                             const float *r, float *scratch) {
    const zm_ir *ir = &k->ir;
    uint8_t mark_stack[512];
    uint8_t *mark = ir->n <= 512 ? mark_stack : calloc((size_t)ir->n, 1);
    const float **val = malloc(sizeof *val * (size_t)(ir->n ? ir->n : 1));
    if (!mark || !val) { /* out of memory: NaN, never a crash */
        if (mark != mark_stack) free(mark);
        free(val);
        for (int64_t i = 0; i < len; i++) scratch[i] = NAN;
        return scratch;
    }
    memset(mark, 0, (size_t)ir->n);
    zm__ir_mark(ir, root, mark);
    for (int32_t n = 0; n <= root; n++) {
        if (!mark[n]) continue;
        const zm_ir_node *nd = &ir->nodes[n];
        float *v = scratch + (size_t)n * ZM__BLK;
        const float *A = nd->a >= 0 && nd->a < n ? val[nd->a] : NULL;
        const float *B = nd->b >= 0 && nd->b < n ? val[nd->b] : NULL;
        const float *C = nd->c >= 0 && nd->c < n ? val[nd->c] : NULL;
        float c = 0;
        switch (nd->op) {
        case ZM_IR_INPUT: val[n] = a[nd->index]; continue;
        case ZM_IR_CONST: c = (float)nd->value; goto fill;
        case ZM_IR_PARAM: c = p[nd->index]; goto fill;
        case ZM_IR_RED: c = r[nd->index]; goto fill;
        default: break;
        }
#define U(OP, F) case OP: for (int64_t i = 0; i < len; i++) v[i] = F(A[i]); break;
#define B2(OP, E) case OP: for (int64_t i = 0; i < len; i++) { float x = A[i], y = B[i]; v[i] = (E); } break;
        switch (nd->op) {
        case ZM_IR_NEG: for (int64_t i = 0; i < len; i++) v[i] = -A[i]; break;
        U(ZM_IR_EXP, zm_exp) U(ZM_IR_EXP2, exp2f) U(ZM_IR_LOG, logf) U(ZM_IR_LOG2, log2f)
        U(ZM_IR_LOG1P, log1pf) U(ZM_IR_EXPM1, expm1f) U(ZM_IR_SQRT, sqrtf) U(ZM_IR_RSQRT, zm_rsqrt)
        U(ZM_IR_ABS, fabsf) U(ZM_IR_SIGN, zm_sign) U(ZM_IR_SIN, sinf) U(ZM_IR_COS, cosf)
        U(ZM_IR_TANH, tanhf) U(ZM_IR_SIGMOID, zm_sigmoid) U(ZM_IR_SILU, zm_silu) U(ZM_IR_GELU, zm_gelu)
        U(ZM_IR_GELU_TANH, zm_gelu_tanh) U(ZM_IR_SOFTPLUS, zm_softplus) U(ZM_IR_RELU, zm_relu)
        U(ZM_IR_ERF, erff) U(ZM_IR_FLOOR, floorf) U(ZM_IR_CEIL, ceilf)
        B2(ZM_IR_ADD, x + y) B2(ZM_IR_SUB, x - y) B2(ZM_IR_MUL, x * y) B2(ZM_IR_DIV, x / y)
        B2(ZM_IR_POW, powf(x, y)) B2(ZM_IR_MIN, zm_min(x, y)) B2(ZM_IR_MAX, zm_max(x, y))
        B2(ZM_IR_LT, x < y ? 1.0f : 0.0f) B2(ZM_IR_LE, x <= y ? 1.0f : 0.0f)
        B2(ZM_IR_GT, x > y ? 1.0f : 0.0f) B2(ZM_IR_GE, x >= y ? 1.0f : 0.0f)
        B2(ZM_IR_EQ, x == y ? 1.0f : 0.0f) B2(ZM_IR_NE, x != y ? 1.0f : 0.0f)
        case ZM_IR_WHERE: for (int64_t i = 0; i < len; i++) v[i] = zm_where(A[i], B[i], C[i]); break;
        default: for (int64_t i = 0; i < len; i++) v[i] = NAN; break;
        }
#undef U
#undef B2
        val[n] = v;
        continue;
    fill:
        for (int64_t i = 0; i < len; i++) v[i] = c;
        val[n] = v;
    }
    const float *res = val[root];
    if (mark != mark_stack) free(mark);
    free(val);
    return res;
}

void zm__interp_ew(const zm_kernel *k, int32_t root, int64_t len, float *o, const float *const *a, const float *p,
                   const float *r, float *scratch) {
    const float *v = zm__eval(k, root, len, a, p, r, scratch);
    if (v != o) memmove(o, v, sizeof(float) * (size_t)len);
}

void zm__interp_red(const zm_kernel *k, int stage, int64_t len, float *acc, const float *const *a, const float *p,
                    const float *r, float *scratch) {
    const float *v = zm__eval(k, k->red_root[stage], len, a, p, r, scratch);
    zm_red_op op = k->red_op[stage];
    for (int64_t i = 0; i < len; i++) {
        int l = (int)(i & 15);
        float x = v[i];
        if (op == ZM_RED_MAX) acc[l] = (x > acc[l] || x != x) ? x : acc[l];
        else if (op == ZM_RED_MIN) acc[l] = (x < acc[l] || x != x) ? x : acc[l];
        else acc[l] = acc[l] + x;
    }
}

float zm__interp_row(const zm_kernel *k, const float *p, const float *r) {
    float scratch_stack[4 * ZM__BLK];
    size_t need = zm__interp_scratch(k);
    float *scratch = need <= 4 * ZM__BLK ? scratch_stack : malloc(sizeof(float) * need);
    if (!scratch) return NAN;
    float out;
    const float *v = zm__eval(k, k->root, 1, NULL, p, r, scratch);
    out = v[0];
    if (scratch != scratch_stack) free(scratch);
    return out;
}
