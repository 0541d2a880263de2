/* The IR interpreter: zm_ir_apply (the reference semantics of every op in
 * double, also used by the constant folder), zm_ir_eval (one point, double)
 * and zm_ir_eval_f32 (arrays in float: the CPU JIT's fallback when no C
 * compiler works). The formulas are the table in ir.h; the float ones are
 * written once as F_* macros shared by the scalar and the array paths.
 * Checked by tests/test_dsl.c against hand-written double formulas, and
 * eval_f32 against eval. Run: build/tests/test_dsl. */
#include "core/internal.h"
#include "dsl/ir.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- double reference

double zm_ir_apply(zm_ir_op op, double a, double b, double c) {
    switch (op) {
    case ZM_IR_NEG: return -a;
    case ZM_IR_EXP: return exp(a);
    case ZM_IR_EXP2: return exp2(a);
    case ZM_IR_LOG: return log(a);
    case ZM_IR_LOG2: return log2(a);
    case ZM_IR_LOG1P: return log1p(a);
    case ZM_IR_EXPM1: return expm1(a);
    case ZM_IR_SQRT: return sqrt(a);
    case ZM_IR_RSQRT: return 1.0 / sqrt(a);
    case ZM_IR_ABS: return fabs(a);
    case ZM_IR_SIGN: return a > 0 ? 1.0 : a < 0 ? -1.0 : a;
    case ZM_IR_SIN: return sin(a);
    case ZM_IR_COS: return cos(a);
    case ZM_IR_TANH: return tanh(a);
    case ZM_IR_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case ZM_IR_SILU: return a / (1.0 + exp(-a));
    case ZM_IR_GELU: return 0.5 * a * (1.0 + erf(a * 0.70710678118654752440));
    case ZM_IR_GELU_TANH:
        return 0.5 * a * (1.0 + tanh(0.79788456080286535588 * (a + 0.044715 * a * a * a)));
    case ZM_IR_SOFTPLUS: return a > 20 ? a : log1p(exp(a));
    case ZM_IR_RELU: return fmax(a, 0.0);
    case ZM_IR_ERF: return erf(a);
    case ZM_IR_FLOOR: return floor(a);
    case ZM_IR_CEIL: return ceil(a);
    case ZM_IR_ADD: return a + b;
    case ZM_IR_SUB: return a - b;
    case ZM_IR_MUL: return a * b;
    case ZM_IR_DIV: return a / b;
    case ZM_IR_POW: return pow(a, b);
    case ZM_IR_MIN: return fmin(a, b);
    case ZM_IR_MAX: return fmax(a, b);
    case ZM_IR_LT: return a < b ? 1.0 : 0.0;
    case ZM_IR_LE: return a <= b ? 1.0 : 0.0;
    case ZM_IR_GT: return a > b ? 1.0 : 0.0;
    case ZM_IR_GE: return a >= b ? 1.0 : 0.0;
    case ZM_IR_EQ: return a == b ? 1.0 : 0.0;
    case ZM_IR_NE: return a != b ? 1.0 : 0.0;
    case ZM_IR_WHERE: return a != 0 ? b : c;
    default: return NAN; /* leaves have no operands to apply to */
    }
}

double zm_ir_eval(const zm_ir *ir, int32_t root, const double *inputs, const double *params,
                  const double *reds) {
    if (!ir || root < 0 || root >= ir->n) return NAN;
    double vstack[256];
    unsigned char mstack[256];
    double *v = vstack;
    unsigned char *m = mstack;
    if (root >= 256) {
        v = malloc(((size_t)root + 1) * sizeof *v);
        m = zm__ir_reach(ir, root);
        if (!v || !m) {
            free(v);
            free(m);
            zm__err(ZM_ERR_NOMEM, "zm_ir_eval: out of memory");
            return NAN;
        }
    } else {
        memset(m, 0, (size_t)root + 1);
        m[root] = 1;
        for (int32_t i = root; i >= 0; i--) {
            if (!m[i]) continue;
            const zm_ir_node *n = &ir->nodes[i];
            if (n->a >= 0) m[n->a] = 1;
            if (n->b >= 0) m[n->b] = 1;
            if (n->c >= 0) m[n->c] = 1;
        }
    }
    for (int32_t i = 0; i <= root; i++) {
        if (!m[i]) continue;
        const zm_ir_node *n = &ir->nodes[i];
        switch (n->op) {
        case ZM_IR_CONST: v[i] = n->value; break;
        case ZM_IR_INPUT: v[i] = inputs ? inputs[n->index] : NAN; break;
        case ZM_IR_PARAM: v[i] = params ? params[n->index] : NAN; break;
        case ZM_IR_RED: v[i] = reds ? reds[n->index] : NAN; break;
        default:
            v[i] = zm_ir_apply(n->op, n->a >= 0 ? v[n->a] : 0, n->b >= 0 ? v[n->b] : 0,
                               n->c >= 0 ? v[n->c] : 0);
        }
    }
    double r = v[root];
    if (v != vstack) free(v);
    if (m != mstack) free(m);
    return r;
}

// ---- float formulas (the emitters print the same ones)

#define F_SIGN(a) ((a) > 0.0f ? 1.0f : (a) < 0.0f ? -1.0f : (a))
#define F_SIGMOID(a) (1.0f / (1.0f + expf(-(a))))
#define F_SILU(a) ((a) / (1.0f + expf(-(a))))
#define F_GELU(a) (0.5f * (a) * (1.0f + erff((a) * 0.70710678118654752440f)))
#define F_GELU_TANH(a) \
    (0.5f * (a) * (1.0f + tanhf(0.79788456080286535588f * ((a) + 0.044715f * (a) * (a) * (a)))))
#define F_SOFTPLUS(a) ((a) > 20.0f ? (a) : log1pf(expf(a)))

#define F_UNARY(X)                                                                                 \
    X(ZM_IR_NEG, -a) X(ZM_IR_EXP, expf(a)) X(ZM_IR_EXP2, exp2f(a)) X(ZM_IR_LOG, logf(a))           \
    X(ZM_IR_LOG2, log2f(a)) X(ZM_IR_LOG1P, log1pf(a)) X(ZM_IR_EXPM1, expm1f(a))                   \
    X(ZM_IR_SQRT, sqrtf(a)) X(ZM_IR_RSQRT, 1.0f / sqrtf(a)) X(ZM_IR_ABS, fabsf(a))                 \
    X(ZM_IR_SIGN, F_SIGN(a)) X(ZM_IR_SIN, sinf(a)) X(ZM_IR_COS, cosf(a)) X(ZM_IR_TANH, tanhf(a))  \
    X(ZM_IR_SIGMOID, F_SIGMOID(a)) X(ZM_IR_SILU, F_SILU(a)) X(ZM_IR_GELU, F_GELU(a))              \
    X(ZM_IR_GELU_TANH, F_GELU_TANH(a)) X(ZM_IR_SOFTPLUS, F_SOFTPLUS(a))                           \
    X(ZM_IR_RELU, fmaxf(a, 0.0f)) X(ZM_IR_ERF, erff(a)) X(ZM_IR_FLOOR, floorf(a))                 \
    X(ZM_IR_CEIL, ceilf(a))
#define F_BINARY(X)                                                                                \
    X(ZM_IR_ADD, a + b) X(ZM_IR_SUB, a - b) X(ZM_IR_MUL, a * b) X(ZM_IR_DIV, a / b)               \
    X(ZM_IR_POW, powf(a, b)) X(ZM_IR_MIN, fminf(a, b)) X(ZM_IR_MAX, fmaxf(a, b))                  \
    X(ZM_IR_LT, a < b ? 1.0f : 0.0f) X(ZM_IR_LE, a <= b ? 1.0f : 0.0f)                            \
    X(ZM_IR_GT, a > b ? 1.0f : 0.0f) X(ZM_IR_GE, a >= b ? 1.0f : 0.0f)                            \
    X(ZM_IR_EQ, a == b ? 1.0f : 0.0f) X(ZM_IR_NE, a != b ? 1.0f : 0.0f)

static float apply_f32(zm_ir_op op, float a, float b, float c) {
    switch (op) {
#define CASE(OP, E) \
    case OP: return (E);
        F_UNARY(CASE)
        F_BINARY(CASE)
#undef CASE
    case ZM_IR_WHERE: return a != 0.0f ? b : c;
    default: return NAN;
    }
}

/* One op over m elements: d[j] = op(A[j*sa], B[j*sb], C[j*sc]); a stride of
 * 0 broadcasts a scalar operand, 1 walks a block. The loops are specialised
 * on the strides so the compiler can vectorise the arithmetic ones (a unary
 * op of a scalar is itself a scalar, computed once, so unary sa is 1). */
static void apply_block(zm_ir_op op, int m, float *d, const float *A, int sa,
                        const float *B, int sb, const float *C, int sc) {
    switch (op) {
#define UCASE(OP, E)                                                                               \
    case OP:                                                                                       \
        for (int j = 0; j < m; j++) {                                                              \
            float a = A[j];                                                                        \
            d[j] = (E);                                                                            \
        }                                                                                          \
        break;
        F_UNARY(UCASE)
#undef UCASE
#define BCASE(OP, E)                                                                               \
    case OP:                                                                                       \
        if (sa && sb)                                                                              \
            for (int j = 0; j < m; j++) {                                                          \
                float a = A[j], b = B[j];                                                          \
                d[j] = (E);                                                                        \
            }                                                                                      \
        else if (sa)                                                                               \
            for (int j = 0; j < m; j++) {                                                          \
                float a = A[j], b = B[0];                                                          \
                d[j] = (E);                                                                        \
            }                                                                                      \
        else                                                                                       \
            for (int j = 0; j < m; j++) {                                                          \
                float a = A[0], b = B[j];                                                          \
                d[j] = (E);                                                                        \
            }                                                                                      \
        break;
        F_BINARY(BCASE)
#undef BCASE
    case ZM_IR_WHERE:
        for (int j = 0; j < m; j++) d[j] = A[j * sa] != 0.0f ? B[j * sb] : C[j * sc];
        break;
    default:
        for (int j = 0; j < m; j++) d[j] = NAN;
    }
}

// ---- float arrays

#define BLOCK 256
#define STRIDE(k) (in_stride ? in_stride[k] : 1) /* NULL: all contiguous */

typedef struct {
    int32_t slot;   /* buffer slot, -1: scalar or direct input pointer */
    int32_t last;   /* last reachable user (node index), root for the root */
    int scalar;     /* same value for every element */
} f32_info;

void zm_ir_eval_f32(const zm_ir *ir, int32_t root, int64_t n, const float *const *in,
                    const int64_t *in_stride, const float *params, const float *reds, float *out) {
    if (n <= 0 || !out) return;
    if (!ir || root < 0 || root >= ir->n) {
        zm__err(ZM_ERR_INVALID, "zm_ir_eval_f32: bad root %d", (int)root);
        for (int64_t i = 0; i < n; i++) out[i] = NAN;
        return;
    }
    size_t cnt = (size_t)root + 1;
    unsigned char *mark = zm__ir_reach(ir, root);
    f32_info *info = malloc(cnt * sizeof *info);
    float *sval = malloc(cnt * sizeof *sval);
    const float **ptr = malloc(cnt * sizeof *ptr); /* per-block operand pointer */
    int32_t *freelist = malloc(cnt * sizeof *freelist);
    float *buf = NULL;
    int32_t n_slots = 0, n_free = 0;
    if (!mark || !info || !sval || !ptr || !freelist) goto nomem;

    /* liveness and scalar-ness */
    for (size_t i = 0; i < cnt; i++) info[i] = (f32_info){-1, -1, 0};
    for (int32_t i = 0; i <= root; i++) {
        if (!mark[i]) continue;
        const zm_ir_node *nd = &ir->nodes[i];
        int32_t ops[3] = {nd->a, nd->b, nd->c};
        int sc = 1;
        for (int k = 0; k < 3; k++)
            if (ops[k] >= 0) {
                info[ops[k]].last = i;
                sc &= info[ops[k]].scalar;
            }
        switch (nd->op) {
        case ZM_IR_CONST: sval[i] = (float)nd->value; sc = 1; break;
        case ZM_IR_PARAM: sval[i] = params ? params[nd->index] : NAN; sc = 1; break;
        case ZM_IR_RED: sval[i] = reds ? reds[nd->index] : NAN; sc = 1; break;
        case ZM_IR_INPUT:
            sc = STRIDE(nd->index) == 0;
            if (sc) sval[i] = in[nd->index][0];
            break;
        default:
            if (sc) sval[i] = apply_f32(nd->op, ops[0] >= 0 ? sval[ops[0]] : 0,
                                        ops[1] >= 0 ? sval[ops[1]] : 0, ops[2] >= 0 ? sval[ops[2]] : 0);
        }
        info[i].scalar = sc;
    }
    info[root].last = root;
    if (info[root].scalar) {
        for (int64_t i = 0; i < n; i++) out[i] = sval[root];
        goto done;
    }

    /* buffer slots for vector nodes (the root writes straight into out);
     * an operand's slot is released before its last user is placed, so that
     * user may reuse it: every op is element-wise, reads precede the write. */
    for (int32_t i = 0; i < root; i++) {
        if (!mark[i] || info[i].scalar) continue;
        const zm_ir_node *nd = &ir->nodes[i];
        if (nd->op == ZM_IR_INPUT && STRIDE(nd->index) == 1) continue; /* read in place */
        int32_t ops[3] = {nd->a, nd->b, nd->c};
        for (int k = 0; k < 3; k++) {
            int32_t o = ops[k];
            if (o < 0 || info[o].slot < 0 || info[o].last != i) continue;
            int dup = 0;
            for (int q = 0; q < k; q++) dup |= ops[q] == o;
            if (!dup) freelist[n_free++] = info[o].slot;
        }
        info[i].slot = n_free ? freelist[--n_free] : n_slots++;
    }
    if (n_slots) {
        buf = malloc((size_t)n_slots * BLOCK * sizeof *buf);
        if (!buf) goto nomem;
    }

    for (int64_t base = 0; base < n; base += BLOCK) {
        int m = n - base < BLOCK ? (int)(n - base) : BLOCK;
        for (int32_t i = 0; i <= root; i++) {
            if (!mark[i]) continue;
            const zm_ir_node *nd = &ir->nodes[i];
            if (info[i].scalar) {
                ptr[i] = &sval[i];
                continue;
            }
            if (nd->op == ZM_IR_INPUT && STRIDE(nd->index) == 1 && i != root) {
                ptr[i] = in[nd->index] + base; /* read in place: no slot */
                continue;
            }
            float *d = i == root ? out + base : buf + (size_t)info[i].slot * BLOCK;
            if (nd->op == ZM_IR_INPUT) {
                const float *src = in[nd->index];
                int64_t s = STRIDE(nd->index);
                for (int j = 0; j < m; j++) d[j] = src[(base + j) * s];
                ptr[i] = d;
                continue;
            }
            int32_t a = nd->a, b = nd->b, c = nd->c;
            apply_block(nd->op, m, d, ptr[a], !info[a].scalar, b >= 0 ? ptr[b] : NULL,
                        b >= 0 ? !info[b].scalar : 0, c >= 0 ? ptr[c] : NULL,
                        c >= 0 ? !info[c].scalar : 0);
            ptr[i] = d;
        }
    }
    goto done;

nomem:
    zm__err(ZM_ERR_NOMEM, "zm_ir_eval_f32: out of memory (%d nodes)", (int)cnt);
    for (int64_t i = 0; i < n; i++) out[i] = NAN;
done:
    free(mark);
    free(info);
    free(sval);
    free(ptr);
    free(freelist);
    free(buf);
}
