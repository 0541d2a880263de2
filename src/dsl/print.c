/* Human-readable infix form of an IR node, for debugging, error messages and
 * the parse -> print -> parse round trip of the tests. Every operation is
 * parenthesised, so the text re-parses to the same value with the default
 * names (inputs 0..2 print as x, y, z; later ones as in3.., parameters as
 * p0.., reductions as r0..). Output is bounded by the buffer and by a depth
 * cap, so a deep or widely shared DAG cannot take exponential time or stack.
 * Checked by tests/test_dsl.c. Run: build/tests/test_dsl. */
#include "core/internal.h"
#include "dsl/ir.h"
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PRINT_MAX_DEPTH 1000

typedef struct {
    const zm_ir *ir;
    char *buf;
    size_t len, pos;
    int full, deep;
} pctx;

static void put(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(pctx *c, const char *fmt, ...) {
    if (c->full) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(c->buf + c->pos, c->len - c->pos, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= c->len - c->pos) {
        c->full = 1;
        c->pos = c->len - 1;
        return;
    }
    c->pos += (size_t)w;
}

static const char *infix(zm_ir_op op) {
    switch (op) {
    case ZM_IR_ADD: return "+";
    case ZM_IR_SUB: return "-";
    case ZM_IR_MUL: return "*";
    case ZM_IR_DIV: return "/";
    case ZM_IR_LT: return "<";
    case ZM_IR_LE: return "<=";
    case ZM_IR_GT: return ">";
    case ZM_IR_GE: return ">=";
    case ZM_IR_EQ: return "==";
    case ZM_IR_NE: return "!=";
    default: return NULL;
    }
}

static void emit(pctx *c, int32_t i, int depth) {
    if (c->full) return;
    if (depth > PRINT_MAX_DEPTH) {
        c->deep = 1;
        put(c, "...");
        return;
    }
    const zm_ir_node *n = &c->ir->nodes[i];
    static const char *xyz[3] = {"x", "y", "z"};
    switch (n->op) {
    case ZM_IR_CONST: {
        char num[40];
        snprintf(num, sizeof num, "%.17g", n->value);
        const char *dp = localeconv()->decimal_point; /* the language's point is '.' */
        char *q = dp && dp[0] && !dp[1] && dp[0] != '.' ? strchr(num, dp[0]) : NULL;
        if (q) *q = '.';
        put(c, n->value < 0 ? "(%s)" : "%s", num);
        return;
    }
    case ZM_IR_INPUT:
        if (n->index < 3) put(c, "%s", xyz[n->index]);
        else put(c, "in%d", (int)n->index);
        return;
    case ZM_IR_PARAM: put(c, "p%d", (int)n->index); return;
    case ZM_IR_RED: put(c, "r%d", (int)n->index); return;
    case ZM_IR_NEG:
        put(c, "(-");
        emit(c, n->a, depth + 1);
        put(c, ")");
        return;
    default: break;
    }
    const char *op = infix(n->op);
    if (op) {
        put(c, "(");
        emit(c, n->a, depth + 1);
        put(c, " %s ", op);
        emit(c, n->b, depth + 1);
        put(c, ")");
        return;
    }
    put(c, "%s(", zm_ir_op_name(n->op));
    int ar = zm_ir_op_arity(n->op);
    int32_t ops[3] = {n->a, n->b, n->c};
    for (int k = 0; k < ar; k++) {
        if (k) put(c, ", ");
        emit(c, ops[k], depth + 1);
    }
    put(c, ")");
}

zm_status zm_ir_print(const zm_ir *ir, int32_t root, char *buf, size_t len) {
    if (buf && len) buf[0] = 0;
    if (!ir || !buf || len < 2 || root < 0 || root >= ir->n)
        return zm__err(ZM_ERR_INVALID, "zm_ir_print: bad argument (root %d, buffer %zu bytes)", (int)root, len);
    pctx c = {ir, buf, len, 0, 0, 0};
    emit(&c, root, 0);
    buf[c.pos] = 0;
    if (c.deep) return zm__err(ZM_ERR_RANGE, "zm_ir_print: expression deeper than %d levels", PRINT_MAX_DEPTH);
    if (c.full) return zm__err(ZM_ERR_RANGE, "zm_ir_print: text longer than %zu bytes (truncated)", len - 1);
    return ZM_OK;
}
