/* The IR node store: hash-consed insertion (equal nodes are one node, which
 * is common-subexpression elimination), constant folding and algebraic
 * simplification on insert, and small queries over a root's sub-DAG.
 * Checked by tests/test_dsl.c (CSE, folding, simplification cases) and fuzzed
 * through the parser by fuzz/fuzz_expr.c. Run: build/tests/test_dsl. */
#include "dsl/ir.h"
#include "core/internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- op table

static const struct {
    const char *name;
    int arity;
} op_info[ZM_IR_OP_COUNT] = {
    [ZM_IR_CONST] = {"const", 0},     [ZM_IR_INPUT] = {"input", 0},
    [ZM_IR_PARAM] = {"param", 0},     [ZM_IR_RED] = {"red", 0},
    [ZM_IR_NEG] = {"neg", 1},         [ZM_IR_EXP] = {"exp", 1},
    [ZM_IR_EXP2] = {"exp2", 1},       [ZM_IR_LOG] = {"log", 1},
    [ZM_IR_LOG2] = {"log2", 1},       [ZM_IR_LOG1P] = {"log1p", 1},
    [ZM_IR_EXPM1] = {"expm1", 1},     [ZM_IR_SQRT] = {"sqrt", 1},
    [ZM_IR_RSQRT] = {"rsqrt", 1},     [ZM_IR_ABS] = {"abs", 1},
    [ZM_IR_SIGN] = {"sign", 1},       [ZM_IR_SIN] = {"sin", 1},
    [ZM_IR_COS] = {"cos", 1},         [ZM_IR_TANH] = {"tanh", 1},
    [ZM_IR_SIGMOID] = {"sigmoid", 1}, [ZM_IR_SILU] = {"silu", 1},
    [ZM_IR_GELU] = {"gelu", 1},       [ZM_IR_GELU_TANH] = {"gelu_tanh", 1},
    [ZM_IR_SOFTPLUS] = {"softplus", 1}, [ZM_IR_RELU] = {"relu", 1},
    [ZM_IR_ERF] = {"erf", 1},         [ZM_IR_FLOOR] = {"floor", 1},
    [ZM_IR_CEIL] = {"ceil", 1},       [ZM_IR_ADD] = {"add", 2},
    [ZM_IR_SUB] = {"sub", 2},         [ZM_IR_MUL] = {"mul", 2},
    [ZM_IR_DIV] = {"div", 2},         [ZM_IR_POW] = {"pow", 2},
    [ZM_IR_MIN] = {"min", 2},         [ZM_IR_MAX] = {"max", 2},
    [ZM_IR_LT] = {"lt", 2},           [ZM_IR_LE] = {"le", 2},
    [ZM_IR_GT] = {"gt", 2},           [ZM_IR_GE] = {"ge", 2},
    [ZM_IR_EQ] = {"eq", 2},           [ZM_IR_NE] = {"ne", 2},
    [ZM_IR_WHERE] = {"where", 3},
};

const char *zm_ir_op_name(zm_ir_op op) {
    if ((int)op < 0 || op >= ZM_IR_OP_COUNT) return "?";
    return op_info[op].name;
}

int zm_ir_op_arity(zm_ir_op op) {
    if ((int)op < 0 || op >= ZM_IR_OP_COUNT) return -1;
    return op_info[op].arity;
}

// ---- storage and hash-consing

void zm_ir_init(zm_ir *ir) { memset(ir, 0, sizeof *ir); }

void zm_ir_clear(zm_ir *ir) {
    if (!ir) return;
    free(ir->nodes);
    free(ir->hash);
    memset(ir, 0, sizeof *ir);
}

static uint64_t node_hash(const zm_ir_node *n) {
    uint64_t bits = 0;
    memcpy(&bits, &n->value, sizeof bits);
    uint64_t h = 1469598103934665603ull;
    uint64_t parts[6] = {(uint64_t)n->op, (uint64_t)(uint32_t)n->a, (uint64_t)(uint32_t)n->b,
                         (uint64_t)(uint32_t)n->c, (uint64_t)(uint32_t)n->index, bits};
    for (int i = 0; i < 6; i++) {
        h ^= parts[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static int node_eq(const zm_ir_node *x, const zm_ir_node *y) {
    return x->op == y->op && x->a == y->a && x->b == y->b && x->c == y->c &&
           x->index == y->index && memcmp(&x->value, &y->value, sizeof x->value) == 0;
}

static int hash_grow(zm_ir *ir) {
    int32_t cap = ir->hash_cap ? ir->hash_cap * 2 : 64;
    int32_t *h = calloc((size_t)cap, sizeof *h);
    if (!h) return 0;
    for (int32_t i = 0; i < ir->n; i++) {
        uint64_t s = node_hash(&ir->nodes[i]) & (uint64_t)(cap - 1);
        while (h[s]) s = (s + 1) & (uint64_t)(cap - 1);
        h[s] = i + 1;
    }
    free(ir->hash);
    ir->hash = h;
    ir->hash_cap = cap;
    return 1;
}

/* Find or append the node (already simplified). */
static int32_t intern(zm_ir *ir, const zm_ir_node *nd) {
    if ((int64_t)(ir->n + 1) * 2 > ir->hash_cap && !hash_grow(ir)) {
        zm__err(ZM_ERR_NOMEM, "expression IR: out of memory (%d nodes)", (int)ir->n);
        return -1;
    }
    uint64_t mask = (uint64_t)(ir->hash_cap - 1);
    uint64_t s = node_hash(nd) & mask;
    while (ir->hash[s]) {
        int32_t i = ir->hash[s] - 1;
        if (node_eq(&ir->nodes[i], nd)) return i;
        s = (s + 1) & mask;
    }
    if (ir->n >= ZM_IR_MAX_NODES) {
        zm__err(ZM_ERR_RANGE, "expression IR: more than %d nodes", ZM_IR_MAX_NODES);
        return -1;
    }
    if (ir->n == ir->cap) {
        int32_t cap = ir->cap ? ir->cap * 2 : 32;
        zm_ir_node *p = realloc(ir->nodes, (size_t)cap * sizeof *p);
        if (!p) {
            zm__err(ZM_ERR_NOMEM, "expression IR: out of memory (%d nodes)", (int)ir->n);
            return -1;
        }
        ir->nodes = p;
        ir->cap = cap;
    }
    ir->nodes[ir->n] = *nd;
    ir->hash[s] = ir->n + 1;
    return ir->n++;
}

static zm_ir_node mk(zm_ir_op op, int32_t a, int32_t b, int32_t c) {
    zm_ir_node n;
    memset(&n, 0, sizeof n); /* padding too: nodes are compared with memcmp on value */
    n.op = op;
    n.a = a;
    n.b = b;
    n.c = c;
    n.index = -1;
    return n;
}

int32_t zm_ir_const(zm_ir *ir, double v) {
    if (!isfinite(v)) {
        zm__err(ZM_ERR_RANGE, "expression IR: constant %g is not finite", v);
        return -1;
    }
    if (v == 0) v = 0.0; /* one zero: -0 and +0 behave alike everywhere we fold */
    zm_ir_node n = mk(ZM_IR_CONST, -1, -1, -1);
    n.value = v;
    return intern(ir, &n);
}

int32_t zm_ir_leaf(zm_ir *ir, zm_ir_op op, int32_t index) {
    if ((op != ZM_IR_INPUT && op != ZM_IR_PARAM && op != ZM_IR_RED) || index < 0) {
        zm__err(ZM_ERR_INVALID, "expression IR: bad leaf (op %d, index %d)", (int)op, (int)index);
        return -1;
    }
    zm_ir_node n = mk(op, -1, -1, -1);
    n.index = index;
    return intern(ir, &n);
}

// ---- simplification

static int is_const(const zm_ir *ir, int32_t i, double *v) {
    if (ir->nodes[i].op != ZM_IR_CONST) return 0;
    if (v) *v = ir->nodes[i].value;
    return 1;
}
static int is_val(const zm_ir *ir, int32_t i, double v) {
    return ir->nodes[i].op == ZM_IR_CONST && ir->nodes[i].value == v;
}
static int valid(const zm_ir *ir, int32_t i) { return i >= 0 && i < ir->n; }

/* Fold when every operand is constant and the result is finite; returns the
 * constant node, or -2 when folding does not apply. */
static int32_t try_fold(zm_ir *ir, zm_ir_op op, int32_t a, int32_t b, int32_t c) {
    double va = 0, vb = 0, vc = 0;
    int ar = op_info[op].arity;
    if (!is_const(ir, a, &va)) return -2;
    if (ar >= 2 && !is_const(ir, b, &vb)) return -2;
    if (ar >= 3 && !is_const(ir, c, &vc)) return -2;
    double r = zm_ir_apply(op, va, vb, vc);
    if (!isfinite(r)) return -2;
    return zm_ir_const(ir, r);
}

int32_t zm_ir_op1(zm_ir *ir, zm_ir_op op, int32_t a) {
    if (a < 0) return -1; /* propagate an earlier failure */
    if (zm_ir_op_arity(op) != 1 || !valid(ir, a)) {
        zm__err(ZM_ERR_INVALID, "expression IR: bad unary node (op %d, operand %d)", (int)op, (int)a);
        return -1;
    }
    int32_t f = try_fold(ir, op, a, -1, -1);
    if (f != -2) return f;
    /* copies: inserting (also in the nested calls below) may move the array */
    const zm_ir_node na_ = ir->nodes[a], *na = &na_;
    switch (op) {
    case ZM_IR_NEG:
        if (na->op == ZM_IR_NEG) return na->a;                           /* --x = x */
        if (na->op == ZM_IR_SUB) return zm_ir_op2(ir, ZM_IR_SUB, na->b, na->a); /* -(a-b) = b-a */
        break;
    case ZM_IR_ABS:
        if (na->op == ZM_IR_ABS || na->op == ZM_IR_EXP || na->op == ZM_IR_SQRT) return a;
        if (na->op == ZM_IR_NEG) return zm_ir_op1(ir, ZM_IR_ABS, na->a);
        break;
    case ZM_IR_FLOOR:
    case ZM_IR_CEIL:
        if (na->op == ZM_IR_FLOOR || na->op == ZM_IR_CEIL) return a;
        break;
    default: break;
    }
    zm_ir_node nd = mk(op, a, -1, -1);
    return intern(ir, &nd);
}

/* Commutative ops get a canonical operand order (constants first, then by
 * index) so x*y and y*x are one node. min/max are left alone: their
 * gradient's tie rule names the first argument. */
static int commutes(zm_ir_op op) {
    return op == ZM_IR_ADD || op == ZM_IR_MUL || op == ZM_IR_EQ || op == ZM_IR_NE;
}

int32_t zm_ir_op2(zm_ir *ir, zm_ir_op op, int32_t a, int32_t b) {
    if (a < 0 || b < 0) return -1;
    if (zm_ir_op_arity(op) != 2 || !valid(ir, a) || !valid(ir, b)) {
        zm__err(ZM_ERR_INVALID, "expression IR: bad binary node (op %d, operands %d %d)", (int)op,
                (int)a, (int)b);
        return -1;
    }
    int32_t f = try_fold(ir, op, a, b, -1);
    if (f != -2) return f;
    if (commutes(op)) {
        int ca = is_const(ir, a, NULL), cb = is_const(ir, b, NULL);
        if ((cb && !ca) || (ca == cb && b < a)) {
            int32_t t = a;
            a = b;
            b = t;
        }
    }
    /* copies: inserting (also in the nested calls below) may move the array */
    const zm_ir_node na_ = ir->nodes[a], nb_ = ir->nodes[b], *na = &na_, *nb = &nb_;
    double ka = 0;
    int kca = is_const(ir, a, &ka);
    switch (op) {
    case ZM_IR_ADD:
        if (is_val(ir, a, 0)) return b;                                        /* 0 + x */
        if (nb->op == ZM_IR_NEG) return zm_ir_op2(ir, ZM_IR_SUB, a, nb->a);    /* a + -b */
        if (na->op == ZM_IR_NEG) return zm_ir_op2(ir, ZM_IR_SUB, b, na->a);    /* -a + b */
        if (kca && nb->op == ZM_IR_ADD && is_const(ir, nb->a, NULL))           /* c1 + (c2 + x) */
            return zm_ir_op2(ir, ZM_IR_ADD, zm_ir_op2(ir, ZM_IR_ADD, a, nb->a), nb->b);
        break;
    case ZM_IR_SUB:
        if (is_val(ir, b, 0)) return a;                                        /* x - 0 */
        if (is_val(ir, a, 0)) return zm_ir_op1(ir, ZM_IR_NEG, b);              /* 0 - x */
        if (a == b) return zm_ir_const(ir, 0.0);                               /* x - x */
        if (nb->op == ZM_IR_NEG) return zm_ir_op2(ir, ZM_IR_ADD, a, nb->a);    /* a - -b */
        if (is_const(ir, b, NULL))                                             /* x - c = -c + x */
            return zm_ir_op2(ir, ZM_IR_ADD, zm_ir_const(ir, -nb->value), a);
        break;
    case ZM_IR_MUL:
        if (is_val(ir, a, 1)) return b;                                        /* 1 * x */
        if (is_val(ir, a, 0)) return a;                                        /* 0 * x */
        if (is_val(ir, a, -1)) return zm_ir_op1(ir, ZM_IR_NEG, b);             /* -1 * x */
        if (na->op == ZM_IR_NEG && nb->op == ZM_IR_NEG)                        /* -a * -b */
            return zm_ir_op2(ir, ZM_IR_MUL, na->a, nb->a);
        if (kca && nb->op == ZM_IR_NEG)                                        /* c * -x */
            return zm_ir_op2(ir, ZM_IR_MUL, zm_ir_const(ir, -ka), nb->a);
        if (kca && nb->op == ZM_IR_MUL && is_const(ir, nb->a, NULL))           /* c1 * (c2 * x) */
            return zm_ir_op2(ir, ZM_IR_MUL, zm_ir_op2(ir, ZM_IR_MUL, a, nb->a), nb->b);
        break;
    case ZM_IR_DIV:
        if (is_val(ir, b, 1)) return a;                                        /* x / 1 */
        if (is_val(ir, b, -1)) return zm_ir_op1(ir, ZM_IR_NEG, a);             /* x / -1 */
        if (is_val(ir, a, 0)) return a;                                        /* 0 / x */
        if (nb->op == ZM_IR_NEG && na->op == ZM_IR_NEG)                        /* -a / -b */
            return zm_ir_op2(ir, ZM_IR_DIV, na->a, nb->a);
        break;
    case ZM_IR_POW:
        if (is_val(ir, b, 1)) return a;                                        /* x ** 1 */
        if (is_val(ir, b, 0)) return zm_ir_const(ir, 1.0);                     /* x ** 0 (pow(NaN,0)=1 too) */
        if (is_val(ir, b, 2)) return zm_ir_op2(ir, ZM_IR_MUL, a, a);           /* x ** 2 */
        if (is_val(ir, b, -1)) return zm_ir_op2(ir, ZM_IR_DIV, zm_ir_const(ir, 1.0), a);
        if (is_val(ir, a, 1)) return a;                                        /* 1 ** x */
        break;
    case ZM_IR_MIN:
    case ZM_IR_MAX:
        if (a == b) return a;
        break;
    default: break;
    }
    zm_ir_node nd = mk(op, a, b, -1);
    return intern(ir, &nd);
}

int32_t zm_ir_op3(zm_ir *ir, zm_ir_op op, int32_t a, int32_t b, int32_t c) {
    if (a < 0 || b < 0 || c < 0) return -1;
    if (op != ZM_IR_WHERE || !valid(ir, a) || !valid(ir, b) || !valid(ir, c)) {
        zm__err(ZM_ERR_INVALID, "expression IR: bad ternary node (op %d)", (int)op);
        return -1;
    }
    double ka;
    if (is_const(ir, a, &ka)) return ka != 0 ? b : c; /* where(const, b, c) */
    if (b == c) return b;
    zm_ir_node nd = mk(op, a, b, c);
    return intern(ir, &nd);
}

// ---- queries

/* mark[i] = 1 for every node reachable from root (root < ir->n). */
static void reach(const zm_ir *ir, int32_t root, unsigned char *mark) {
    memset(mark, 0, (size_t)root + 1);
    mark[root] = 1;
    for (int32_t i = root; i >= 0; i--) {
        if (!mark[i]) continue;
        const zm_ir_node *n = &ir->nodes[i];
        if (n->a >= 0) mark[n->a] = 1;
        if (n->b >= 0) mark[n->b] = 1;
        if (n->c >= 0) mark[n->c] = 1;
    }
}

unsigned char *zm__ir_reach(const zm_ir *ir, int32_t root) {
    if (!ir || root < 0 || root >= ir->n) return NULL;
    unsigned char *m = malloc((size_t)root + 1);
    if (m) reach(ir, root, m);
    return m;
}

int zm_ir_max_index(const zm_ir *ir, int32_t root, zm_ir_op leaf) {
    if (!ir || root < 0 || root >= ir->n) return -1;
    unsigned char *m = zm__ir_reach(ir, root);
    int best = -1;
    for (int32_t i = 0; i <= root; i++)
        if ((!m || m[i]) && ir->nodes[i].op == leaf && ir->nodes[i].index > best)
            best = ir->nodes[i].index; /* without memory: a conservative scan */
    free(m);
    return best;
}

int zm_ir_uses_inputs(const zm_ir *ir, int32_t root) {
    return zm_ir_max_index(ir, root, ZM_IR_INPUT) >= 0;
}
