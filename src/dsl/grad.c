/* Symbolic differentiation: reverse mode over the DAG. Each node's adjoint
 * (upstream gradient times d root / d node) is accumulated from its users in
 * reverse topological order, and every new node goes through the simplifying
 * constructors of ir.c, so zero terms vanish and shared terms are shared.
 * Only operands that depend on the variable receive an adjoint, so nothing
 * is built for constant branches (and pow's log term appears only when the
 * exponent depends on the variable).
 * Checked by tests/test_dsl.c against central finite differences in double
 * at random points away from kinks. Run: build/tests/test_dsl.
 *
 * Subgradient choices (where the derivative is undefined or a distribution):
 *   relu'(0) = 0          (the gradient flows only where a > 0)
 *   abs'(a) = sign(a), so abs'(0) = 0
 *   sign, floor, ceil and the comparisons < <= > >= == != have derivative 0
 *   min(a, b): a tie goes to the first argument (a <= b routes to a);
 *   max(a, b): a tie goes to the first argument (a >= b routes to a)
 *   where(c, a, b): the gradient goes to the branch chosen (a where c != 0,
 *   else b); the condition gets none
 *   softplus'(a) = sigmoid(a) everywhere (the a > 20 branch has slope 1,
 *   which sigmoid equals to float precision there)
 *   pow(a, b): d/da = b * pow(a, b - 1); d/db = pow(a, b) * log(a), built only
 *   when b depends on the variable (so x**2 at x < 0 stays finite)
 */
#include "core/internal.h"
#include "dsl/ir.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    zm_ir *ir;
    int32_t *adj;
    const unsigned char *dep;
    int bad;
} gctx;

static int32_t K(gctx *g, double v) { return zm_ir_const(g->ir, v); }
static int32_t U(gctx *g, zm_ir_op op, int32_t a) { return zm_ir_op1(g->ir, op, a); }
static int32_t B(gctx *g, zm_ir_op op, int32_t a, int32_t b) { return zm_ir_op2(g->ir, op, a, b); }
static int32_t W(gctx *g, int32_t c, int32_t a, int32_t b) { return zm_ir_op3(g->ir, ZM_IR_WHERE, c, a, b); }

/* adj[to] += contrib (only for operands that depend on the variable) */
static void acc(gctx *g, int32_t to, int32_t contrib) {
    if (to < 0 || !g->dep[to]) return;
    if (contrib < 0) {
        g->bad = 1;
        return;
    }
    g->adj[to] = g->adj[to] < 0 ? contrib : B(g, ZM_IR_ADD, g->adj[to], contrib);
    if (g->adj[to] < 0) g->bad = 1;
}

/* d(node i)/d(operand) times the adjoint d of node i, pushed to operands. */
static void back(gctx *g, int32_t i, int32_t d) {
    zm_ir_node nd = g->ir->nodes[i]; /* a copy: inserting may move the array */
    int32_t a = nd.a, b = nd.b, c = nd.c, r = i;
    const double LN2 = 0.69314718055994530942, SQRT2PI_INV = 0.39894228040143267794,
                 TWO_SQRTPI = 1.12837916709551257390, K0 = 0.79788456080286535588, K1 = 0.044715;
    switch (nd.op) {
    case ZM_IR_NEG: acc(g, a, U(g, ZM_IR_NEG, d)); break;
    case ZM_IR_EXP: acc(g, a, B(g, ZM_IR_MUL, d, r)); break;
    case ZM_IR_EXP2: acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_MUL, K(g, LN2), r))); break;
    case ZM_IR_LOG: acc(g, a, B(g, ZM_IR_DIV, d, a)); break;
    case ZM_IR_LOG2: acc(g, a, B(g, ZM_IR_DIV, d, B(g, ZM_IR_MUL, K(g, LN2), a))); break;
    case ZM_IR_LOG1P: acc(g, a, B(g, ZM_IR_DIV, d, B(g, ZM_IR_ADD, K(g, 1), a))); break;
    case ZM_IR_EXPM1: acc(g, a, B(g, ZM_IR_MUL, d, U(g, ZM_IR_EXP, a))); break;
    case ZM_IR_SQRT: acc(g, a, B(g, ZM_IR_DIV, B(g, ZM_IR_MUL, K(g, 0.5), d), r)); break;
    case ZM_IR_RSQRT: /* -0.5 a^-3/2 = -0.5 r^3 */
        acc(g, a, B(g, ZM_IR_MUL, B(g, ZM_IR_MUL, K(g, -0.5), d), B(g, ZM_IR_MUL, r, B(g, ZM_IR_MUL, r, r))));
        break;
    case ZM_IR_ABS: acc(g, a, B(g, ZM_IR_MUL, d, U(g, ZM_IR_SIGN, a))); break;
    case ZM_IR_SIN: acc(g, a, B(g, ZM_IR_MUL, d, U(g, ZM_IR_COS, a))); break;
    case ZM_IR_COS: acc(g, a, U(g, ZM_IR_NEG, B(g, ZM_IR_MUL, d, U(g, ZM_IR_SIN, a)))); break;
    case ZM_IR_TANH: acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_SUB, K(g, 1), B(g, ZM_IR_MUL, r, r)))); break;
    case ZM_IR_SIGMOID:
        acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_MUL, r, B(g, ZM_IR_SUB, K(g, 1), r))));
        break;
    case ZM_IR_SILU: { /* s + x s (1 - s) = s + r (1 - s) */
        int32_t s = U(g, ZM_IR_SIGMOID, a);
        acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_ADD, s, B(g, ZM_IR_MUL, r, B(g, ZM_IR_SUB, K(g, 1), s)))));
        break;
    }
    case ZM_IR_GELU: { /* Phi(x) + x phi(x) */
        int32_t cdf = B(g, ZM_IR_MUL, K(g, 0.5),
                        B(g, ZM_IR_ADD, K(g, 1), U(g, ZM_IR_ERF, B(g, ZM_IR_MUL, K(g, 0.70710678118654752440), a))));
        int32_t pdf = B(g, ZM_IR_MUL, K(g, SQRT2PI_INV),
                        U(g, ZM_IR_EXP, B(g, ZM_IR_MUL, K(g, -0.5), B(g, ZM_IR_MUL, a, a))));
        acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_ADD, cdf, B(g, ZM_IR_MUL, a, pdf))));
        break;
    }
    case ZM_IR_GELU_TANH: { /* 0.5 (1 + t) + 0.5 x (1 - t^2) K0 (1 + 3 K1 x^2) */
        int32_t x2 = B(g, ZM_IR_MUL, a, a);
        int32_t t = U(g, ZM_IR_TANH, B(g, ZM_IR_MUL, K(g, K0),
                                       B(g, ZM_IR_ADD, a, B(g, ZM_IR_MUL, K(g, K1), B(g, ZM_IR_MUL, x2, a)))));
        int32_t left = B(g, ZM_IR_MUL, K(g, 0.5), B(g, ZM_IR_ADD, K(g, 1), t));
        int32_t du = B(g, ZM_IR_MUL, K(g, K0), B(g, ZM_IR_ADD, K(g, 1), B(g, ZM_IR_MUL, K(g, 3 * K1), x2)));
        int32_t right = B(g, ZM_IR_MUL, B(g, ZM_IR_MUL, K(g, 0.5), a),
                          B(g, ZM_IR_MUL, B(g, ZM_IR_SUB, K(g, 1), B(g, ZM_IR_MUL, t, t)), du));
        acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_ADD, left, right)));
        break;
    }
    case ZM_IR_SOFTPLUS: acc(g, a, B(g, ZM_IR_MUL, d, U(g, ZM_IR_SIGMOID, a))); break;
    case ZM_IR_RELU: acc(g, a, W(g, B(g, ZM_IR_GT, a, K(g, 0)), d, K(g, 0))); break;
    case ZM_IR_ERF:
        acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_MUL, K(g, TWO_SQRTPI), U(g, ZM_IR_EXP, U(g, ZM_IR_NEG, B(g, ZM_IR_MUL, a, a))))));
        break;
    case ZM_IR_ADD: acc(g, a, d); acc(g, b, d); break;
    case ZM_IR_SUB: acc(g, a, d); acc(g, b, U(g, ZM_IR_NEG, d)); break;
    case ZM_IR_MUL:
        if (g->dep[a]) acc(g, a, B(g, ZM_IR_MUL, d, b));
        if (g->dep[b]) acc(g, b, B(g, ZM_IR_MUL, d, a));
        break;
    case ZM_IR_DIV:
        if (g->dep[a]) acc(g, a, B(g, ZM_IR_DIV, d, b));
        if (g->dep[b]) acc(g, b, U(g, ZM_IR_NEG, B(g, ZM_IR_DIV, B(g, ZM_IR_MUL, d, r), b)));
        break;
    case ZM_IR_POW:
        if (g->dep[a])
            acc(g, a, B(g, ZM_IR_MUL, d, B(g, ZM_IR_MUL, b, B(g, ZM_IR_POW, a, B(g, ZM_IR_SUB, b, K(g, 1))))));
        if (g->dep[b]) acc(g, b, B(g, ZM_IR_MUL, d, B(g, ZM_IR_MUL, r, U(g, ZM_IR_LOG, a))));
        break;
    case ZM_IR_MIN:
    case ZM_IR_MAX: {
        int32_t first = B(g, nd.op == ZM_IR_MIN ? ZM_IR_LE : ZM_IR_GE, a, b);
        if (g->dep[a]) acc(g, a, W(g, first, d, K(g, 0)));
        if (g->dep[b]) acc(g, b, W(g, first, K(g, 0), d));
        break;
    }
    case ZM_IR_WHERE:
        if (g->dep[b]) acc(g, b, W(g, a, d, K(g, 0)));
        if (g->dep[c]) acc(g, c, W(g, a, K(g, 0), d));
        break;
    default: break; /* leaves; sign, floor, ceil, comparisons: derivative 0 */
    }
}

zm_status zm_ir_grad(zm_ir *ir, int32_t root, int32_t wrt, int32_t seed, int32_t *out) {
    if (out) *out = -1;
    if (!ir || !out || root < 0 || root >= ir->n || seed < 0 || seed >= ir->n || wrt < 0)
        return zm__err(ZM_ERR_INVALID, "zm_ir_grad: bad argument (root %d, wrt %d, seed %d)", (int)root,
                       (int)wrt, (int)seed);
    size_t cnt = (size_t)root + 1;
    unsigned char *mark = zm__ir_reach(ir, root);
    unsigned char *dep = calloc(cnt, 1);
    int32_t *adj = malloc(cnt * sizeof *adj);
    if (!mark || !dep || !adj) {
        free(mark);
        free(dep);
        free(adj);
        return zm__err(ZM_ERR_NOMEM, "zm_ir_grad: out of memory");
    }
    int32_t leaf = -1;
    for (int32_t i = 0; i <= root; i++) {
        adj[i] = -1;
        if (!mark[i]) continue;
        const zm_ir_node *n = &ir->nodes[i];
        if (n->op == ZM_IR_INPUT) {
            dep[i] = n->index == wrt;
            if (dep[i]) leaf = i;
        } else {
            dep[i] = (n->a >= 0 && dep[n->a]) || (n->b >= 0 && dep[n->b]) || (n->c >= 0 && dep[n->c]);
        }
    }
    gctx g = {ir, adj, dep, 0};
    zm_status st = ZM_OK;
    if (leaf < 0 || !dep[root]) {
        *out = zm_ir_const(ir, 0.0);
    } else {
        adj[root] = seed;
        for (int32_t i = root; i > leaf && !g.bad; i--)
            if (mark[i] && dep[i] && adj[i] >= 0) back(&g, i, adj[i]);
        /* a path through zero-derivative ops only (sign, floor, ...) leaves no adjoint */
        *out = g.bad ? -1 : adj[leaf] >= 0 ? adj[leaf] : zm_ir_const(ir, 0.0);
    }
    if (*out < 0) {
        const char *m = zm_last_error();
        st = (m && strstr(m, "more than")) ? ZM_ERR_RANGE : ZM_ERR_NOMEM;
        zm__err_ctx(st, "zm_ir_grad");
    }
    free(mark);
    free(dep);
    free(adj);
    return st;
}
