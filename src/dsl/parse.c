/* The expression parser: a lexer plus recursive descent with one function
 * per precedence level (comparisons < additive < multiplicative < unary minus
 * < power, right-associative, so -x**2 = -(x**2)), building the IR directly
 * (so CSE and folding happen as it parses). Hostile input is expected: depth
 * is capped at ZM_IR_MAX_DEPTH before the C stack can grow, every token is
 * read once (linear time), and every error is ZM_ERR_PARSE "at byte N: ...".
 * Checked by tests/test_dsl.c (values, errors and their offsets) and by
 * fuzz/fuzz_expr.c. Run: build/tests/test_dsl; make fuzz. */
#include "core/internal.h"
#include "dsl/ir.h"
#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- lexer

typedef enum { T_END, T_NUM, T_NAME, T_OP, T_LP, T_RP, T_COMMA, T_BAD } tok_kind;

/* two-character operators are coded as their first char + 128 */
enum { OP_POW = '*' + 128, OP_LE = '<' + 128, OP_GE = '>' + 128, OP_EQ = '=' + 128, OP_NE = '!' + 128 };

typedef struct {
    const char *src;
    size_t len, pos;
    /* current token */
    tok_kind kind;
    size_t at, tlen;
    int op;
    double num;
    /* state */
    zm_ir *ir;
    const zm_ir_names *names;
    int depth;
    zm_status st;
} parser;

static int32_t fail(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int32_t fail(parser *p, size_t at, const char *fmt, ...) {
    if (p->st != ZM_OK) return -1; /* the first error wins */
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->st = zm__err(ZM_ERR_PARSE, "at byte %zu: %s", at, msg);
    return -1;
}

/* An IR call failed (no memory, too many nodes): keep its status and message. */
static int32_t check(parser *p, int32_t node) {
    if (node < 0 && p->st == ZM_OK) {
        p->st = ZM_ERR_NOMEM;
        const char *m = zm_last_error();
        if (m && strstr(m, "more than")) p->st = ZM_ERR_RANGE;
    }
    return node;
}

static int is_name0(int c) { return isalpha(c) || c == '_'; }
static int is_name1(int c) { return isalnum(c) || c == '_'; }

/* A printable rendering of the byte at i for messages. */
static const char *show(const parser *p, size_t i, char buf[8]) {
    unsigned char c = (unsigned char)p->src[i];
    if (c > 32 && c < 127) snprintf(buf, 8, "'%c'", c);
    else snprintf(buf, 8, "0x%02x", c);
    return buf;
}

static void lex_number(parser *p) {
    const char *s = p->src;
    size_t i = p->pos, n = p->len, start = i;
    int digits = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && isdigit((unsigned char)s[i])) i++, digits++;
    }
    int bad = !digits;
    if (!bad && i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        int ed = 0;
        while (i < n && isdigit((unsigned char)s[i])) i++, ed++;
        bad = !ed;
    }
    /* "1.2.3", "3x", "1e" are malformed numbers, not two tokens */
    if (i < n && (is_name1((unsigned char)s[i]) || s[i] == '.')) bad = 1;
    if (!bad && i - start < 400) {
        char buf[400];
        memcpy(buf, s + start, i - start);
        buf[i - start] = 0;
        /* strtod follows the locale's decimal point; the language's is '.' */
        char *dot = strchr(buf, '.');
        const char *dp = localeconv()->decimal_point;
        if (dot && dp && dp[0] && !dp[1]) *dot = dp[0];
        p->num = strtod(buf, NULL);
        if (!isfinite(p->num)) bad = 2;
    } else if (!bad) {
        bad = 3;
    }
    p->kind = T_NUM;
    p->at = start;
    p->tlen = i - start;
    p->pos = i;
    if (bad) {
        while (i < n && (is_name1((unsigned char)s[i]) || s[i] == '.')) i++;
        fail(p, start, "bad number '%.*s'%s", (int)(i - start > 40 ? 40 : i - start), s + start,
             bad == 2 ? " (out of range)" : bad == 3 ? " (too long)" : "");
        p->kind = T_BAD;
    }
}

static void next(parser *p) {
    const char *s = p->src;
    while (p->pos < p->len && isspace((unsigned char)s[p->pos])) p->pos++;
    p->at = p->pos;
    p->tlen = 1;
    if (p->pos >= p->len) {
        p->kind = T_END;
        p->tlen = 0;
        return;
    }
    unsigned char c = (unsigned char)s[p->pos];
    unsigned char d = p->pos + 1 < p->len ? (unsigned char)s[p->pos + 1] : 0;
    if (isdigit(c) || (c == '.' && isdigit(d))) {
        lex_number(p);
        return;
    }
    if (is_name0(c)) {
        size_t i = p->pos;
        while (i < p->len && is_name1((unsigned char)s[i])) i++;
        p->kind = T_NAME;
        p->tlen = i - p->pos;
        p->pos = i;
        return;
    }
    p->pos++;
    switch (c) {
    case '(': p->kind = T_LP; return;
    case ')': p->kind = T_RP; return;
    case ',': p->kind = T_COMMA; return;
    case '+': case '-': case '/': case '^': p->kind = T_OP; p->op = c; return;
    case '*':
    case '<':
    case '>':
        p->kind = T_OP;
        p->op = c;
        if ((c == '*' && d == '*') || (c != '*' && d == '=')) p->op = c + 128, p->pos++, p->tlen = 2;
        return;
    case '=':
    case '!':
        if (d == '=') {
            p->kind = T_OP;
            p->op = c + 128;
            p->pos++;
            p->tlen = 2;
            return;
        }
        break;
    default: break;
    }
    char b[8];
    p->kind = T_BAD;
    fail(p, p->at, "unexpected character %s", show(p, p->at, b));
}

// ---- names and functions

static const struct {
    const char *name;
    zm_ir_op op;
    int arity;
} funcs[] = {
    {"exp", ZM_IR_EXP, 1},         {"exp2", ZM_IR_EXP2, 1},   {"log", ZM_IR_LOG, 1},
    {"log2", ZM_IR_LOG2, 1},       {"log1p", ZM_IR_LOG1P, 1}, {"expm1", ZM_IR_EXPM1, 1},
    {"sqrt", ZM_IR_SQRT, 1},       {"rsqrt", ZM_IR_RSQRT, 1}, {"abs", ZM_IR_ABS, 1},
    {"sign", ZM_IR_SIGN, 1},       {"sin", ZM_IR_SIN, 1},     {"cos", ZM_IR_COS, 1},
    {"tanh", ZM_IR_TANH, 1},       {"sigmoid", ZM_IR_SIGMOID, 1}, {"silu", ZM_IR_SILU, 1},
    {"gelu", ZM_IR_GELU, 1},       {"gelu_tanh", ZM_IR_GELU_TANH, 1},
    {"softplus", ZM_IR_SOFTPLUS, 1}, {"relu", ZM_IR_RELU, 1}, {"erf", ZM_IR_ERF, 1},
    {"floor", ZM_IR_FLOOR, 1},     {"ceil", ZM_IR_CEIL, 1},   {"pow", ZM_IR_POW, 2},
    {"min", ZM_IR_MIN, 2},         {"max", ZM_IR_MAX, 2},     {"where", ZM_IR_WHERE, 3},
    {"clamp", ZM_IR_OP_COUNT, 3}, /* min(max(x, lo), hi) */
};
#define N_FUNCS (int)(sizeof funcs / sizeof funcs[0])

static int find_func(const char *s, size_t n) {
    for (int i = 0; i < N_FUNCS; i++)
        if (strlen(funcs[i].name) == n && memcmp(funcs[i].name, s, n) == 0) return i;
    return -1;
}

static int name_is(const char *name, const char *s, size_t n) {
    return name && strlen(name) == n && memcmp(name, s, n) == 0;
}

/* r<digits> with no leading zero (r0, r1, r12) */
static int red_index(const char *s, size_t n) {
    if (n < 2 || n > 6 || s[0] != 'r' || (s[1] == '0' && n > 2)) return -1;
    int v = 0;
    for (size_t i = 1; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int32_t variable(parser *p, size_t at, size_t n) {
    const char *s = p->src + at;
    const zm_ir_names *nm = p->names;
    for (int i = 0; i < nm->n_inputs && i < 8; i++)
        if (name_is(nm->inputs[i], s, n)) return check(p, zm_ir_leaf(p->ir, ZM_IR_INPUT, i));
    for (int i = 0; i < nm->n_params && i < 8; i++)
        if (name_is(nm->params[i], s, n)) return check(p, zm_ir_leaf(p->ir, ZM_IR_PARAM, i));
    int r = red_index(s, n);
    if (r >= 0 && r < nm->n_reds) return check(p, zm_ir_leaf(p->ir, ZM_IR_RED, r));
    if (n == 2 && memcmp(s, "pi", 2) == 0) return check(p, zm_ir_const(p->ir, 3.14159265358979323846));
    if (find_func(s, n) >= 0)
        return fail(p, at, "function '%.*s' needs arguments in parentheses", (int)n, s);
    return fail(p, at, "unknown variable '%.*s'", (int)(n > 64 ? 64 : n), s);
}

// ---- grammar

static int32_t parse_cmp(parser *p);
static int32_t parse_unary(parser *p);

static int32_t call(parser *p, size_t at, size_t n) {
    const char *s = p->src + at;
    int f = find_func(s, n);
    if (f < 0) return fail(p, at, "unknown function '%.*s'", (int)(n > 64 ? 64 : n), s);
    size_t lp = p->at;
    next(p); /* past '(' */
    int32_t args[3] = {-1, -1, -1};
    int got = 0;
    if (p->kind == T_RP) {
        next(p);
    } else {
        for (;;) {
            int32_t a = parse_cmp(p);
            if (a < 0) return -1;
            if (got < 3) args[got] = a;
            got++;
            if (p->kind == T_COMMA) {
                next(p);
                continue;
            }
            if (p->kind == T_RP) {
                next(p);
                break;
            }
            if (p->kind == T_END)
                return fail(p, p->at, "missing ')' to close '(' at byte %zu", lp);
            char b[8];
            return fail(p, p->at, "expected ',' or ')' in call of '%s', found %s", funcs[f].name,
                        show(p, p->at, b));
        }
    }
    if (got != funcs[f].arity)
        return fail(p, at, "function '%s' takes %d argument%s, got %d", funcs[f].name,
                    funcs[f].arity, funcs[f].arity == 1 ? "" : "s", got);
    zm_ir *ir = p->ir;
    switch (funcs[f].arity) {
    case 1: return check(p, zm_ir_op1(ir, funcs[f].op, args[0]));
    case 2: return check(p, zm_ir_op2(ir, funcs[f].op, args[0], args[1]));
    default:
        if (funcs[f].op == ZM_IR_WHERE) return check(p, zm_ir_op3(ir, ZM_IR_WHERE, args[0], args[1], args[2]));
        return check(p, zm_ir_op2(ir, ZM_IR_MIN, zm_ir_op2(ir, ZM_IR_MAX, args[0], args[1]), args[2]));
    }
}

static int32_t parse_primary(parser *p) {
    char b[8];
    switch (p->kind) {
    case T_NUM: {
        double v = p->num;
        next(p);
        return check(p, zm_ir_const(p->ir, v));
    }
    case T_NAME: {
        size_t at = p->at, n = p->tlen;
        next(p);
        if (p->kind == T_LP) return call(p, at, n);
        return variable(p, at, n);
    }
    case T_LP: {
        size_t lp = p->at;
        next(p);
        int32_t e = parse_cmp(p);
        if (e < 0) return -1;
        if (p->kind != T_RP) {
            if (p->kind == T_END) return fail(p, p->at, "missing ')' to close '(' at byte %zu", lp);
            return fail(p, p->at, "expected ')' to close '(' at byte %zu, found %s", lp, show(p, p->at, b));
        }
        next(p);
        return e;
    }
    case T_END: return fail(p, p->at, "expression ends where a value is expected");
    case T_RP: return fail(p, p->at, "unmatched ')' (a value is expected here)");
    case T_BAD: return -1;
    default: return fail(p, p->at, "expected a value, found %s", show(p, p->at, b));
    }
}

/* power: primary (('**' | '^') unary)?  -- right-associative through unary */
static int32_t parse_power(parser *p) {
    int32_t a = parse_primary(p);
    if (a < 0) return -1;
    if (p->kind == T_OP && (p->op == OP_POW || p->op == '^')) {
        next(p);
        int32_t b = parse_unary(p);
        if (b < 0) return -1;
        return check(p, zm_ir_op2(p->ir, ZM_IR_POW, a, b));
    }
    return a;
}

/* unary: ('-' | '+') unary | power. Every nesting level of the grammar passes
 * here, so the depth cap lives here. */
static int32_t parse_unary(parser *p) {
    if (++p->depth > ZM_IR_MAX_DEPTH) {
        p->depth--;
        return fail(p, p->at, "expression nested deeper than %d levels", ZM_IR_MAX_DEPTH);
    }
    int32_t r;
    if (p->kind == T_OP && (p->op == '-' || p->op == '+')) {
        int neg = p->op == '-';
        next(p);
        r = parse_unary(p);
        if (r >= 0 && neg) r = check(p, zm_ir_op1(p->ir, ZM_IR_NEG, r));
    } else {
        r = parse_power(p);
    }
    p->depth--;
    return r;
}

static int32_t parse_mul(parser *p) {
    int32_t a = parse_unary(p);
    while (a >= 0 && p->kind == T_OP && (p->op == '*' || p->op == '/')) {
        zm_ir_op op = p->op == '*' ? ZM_IR_MUL : ZM_IR_DIV;
        next(p);
        int32_t b = parse_unary(p);
        if (b < 0) return -1;
        a = check(p, zm_ir_op2(p->ir, op, a, b));
    }
    return a;
}

static int32_t parse_add(parser *p) {
    int32_t a = parse_mul(p);
    while (a >= 0 && p->kind == T_OP && (p->op == '+' || p->op == '-')) {
        zm_ir_op op = p->op == '+' ? ZM_IR_ADD : ZM_IR_SUB;
        next(p);
        int32_t b = parse_mul(p);
        if (b < 0) return -1;
        a = check(p, zm_ir_op2(p->ir, op, a, b));
    }
    return a;
}

static int cmp_op(const parser *p, zm_ir_op *op) {
    if (p->kind != T_OP) return 0;
    switch (p->op) {
    case '<': *op = ZM_IR_LT; return 1;
    case OP_LE: *op = ZM_IR_LE; return 1;
    case '>': *op = ZM_IR_GT; return 1;
    case OP_GE: *op = ZM_IR_GE; return 1;
    case OP_EQ: *op = ZM_IR_EQ; return 1;
    case OP_NE: *op = ZM_IR_NE; return 1;
    default: return 0;
    }
}

static int32_t parse_cmp(parser *p) {
    int32_t a = parse_add(p);
    zm_ir_op op;
    while (a >= 0 && cmp_op(p, &op)) {
        next(p);
        int32_t b = parse_add(p);
        if (b < 0) return -1;
        a = check(p, zm_ir_op2(p->ir, op, a, b));
    }
    return a;
}

// ---- public

static const zm_ir_names default_names = {{"x", "y", "z"}, 3, {NULL}, 0, 0};

zm_status zm_expr_parse(zm_ir *ir, const char *src, const zm_ir_names *names, int32_t *root) {
    if (root) *root = -1;
    if (!ir || !src || !root) return zm__err(ZM_ERR_INVALID, "zm_expr_parse: NULL argument");
    parser p = {.src = src, .len = strlen(src), .ir = ir, .names = names ? names : &default_names};
    next(&p);
    if (p.kind == T_END) return zm__err(ZM_ERR_PARSE, "at byte 0: empty expression");
    int32_t r = parse_cmp(&p);
    if (r >= 0 && p.kind != T_END) {
        char b[8];
        if (p.kind == T_RP) fail(&p, p.at, "unmatched ')'");
        else if (p.kind != T_BAD)
            fail(&p, p.at, "unexpected %s after the end of the expression", show(&p, p.at, b));
        r = -1;
    }
    if (r < 0) return p.st != ZM_OK ? p.st : zm__err(ZM_ERR_PARSE, "at byte %zu: malformed", p.at);
    *root = r;
    return ZM_OK;
}

zm_status zm_expr_scan_inputs(const char *src, const char **params, int n_params, char names[8][32],
                              int *n_inputs) {
    if (n_inputs) *n_inputs = 0;
    if (!src || !names || !n_inputs || n_params < 0)
        return zm__err(ZM_ERR_INVALID, "zm_expr_scan_inputs: NULL argument");
    char found[8][32];
    int nf = 0;
    size_t n = strlen(src);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)src[i];
        if (isdigit(c) || c == '.') { /* skip numbers, exponents included */
            while (i < n && (is_name1((unsigned char)src[i]) || src[i] == '.' ||
                             ((src[i] == '+' || src[i] == '-') && (src[i - 1] == 'e' || src[i - 1] == 'E'))))
                i++;
            continue;
        }
        if (!is_name0(c)) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < n && is_name1((unsigned char)src[i])) i++;
        size_t len = i - s, j = i;
        while (j < n && isspace((unsigned char)src[j])) j++;
        if (j < n && src[j] == '(') continue; /* a call: a function, never an input */
        if ((len == 2 && memcmp(src + s, "pi", 2) == 0) || red_index(src + s, len) >= 0) continue;
        int skip = 0;
        for (int k = 0; k < n_params && params && params[k]; k++) skip |= name_is(params[k], src + s, len);
        for (int k = 0; k < nf; k++) skip |= strlen(found[k]) == len && memcmp(found[k], src + s, len) == 0;
        if (skip) continue;
        if (len >= 32) return zm__err(ZM_ERR_PARSE, "at byte %zu: name longer than 31 bytes", s);
        if (nf == 8) return zm__err(ZM_ERR_RANGE, "at byte %zu: more than 8 inputs", s);
        memcpy(found[nf], src + s, len);
        found[nf++][len] = 0;
    }
    /* x, y, z first, then the others in order of appearance */
    static const char *pref[3] = {"x", "y", "z"};
    int out = 0;
    for (int k = 0; k < 3; k++)
        for (int f = 0; f < nf; f++)
            if (strcmp(found[f], pref[k]) == 0) strcpy(names[out++], found[f]);
    for (int f = 0; f < nf; f++)
        if (strcmp(found[f], "x") && strcmp(found[f], "y") && strcmp(found[f], "z"))
            strcpy(names[out++], found[f]);
    *n_inputs = out;
    return ZM_OK;
}
