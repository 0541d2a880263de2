/* The expression language (src/dsl): parser, IR (CSE, constant folding,
 * simplification), symbolic gradients, printer, and both interpreters.
 * Values are checked against hand-written double C formulas at fresh random
 * points, gradients against central finite differences in double, errors by
 * status, byte offset and reason, eval_f32 against eval.
 * Run: build/tests/test_dsl (ZT_SEED=<n> to replay a seed). */
#include "harness.h"
#include "dsl/ir.h"
#include "zmlx/core.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ---- the expression table: source, double formula, x range
// (y is drawn from [0.5, 2], z from [-1, 1] with |z| >= 0.05)

static double sgn(double v) { return v > 0 ? 1 : v < 0 ? -1 : v; }
static double sigm(double v) { return 1 / (1 + exp(-v)); }

#define EXPRS(X)                                                                                   \
    X("x * tanh(log1p(exp(x)))", x * tanh(log1p(exp(x))), -3, 3)                                   \
    X("exp(x) - exp2(y)", exp(x) - pow(2, y), -3, 3)                                               \
    X("log(y) + log2(y * 3)", log(y) + log(y * 3) / log(2), -1, 1)                                 \
    X("log1p(y) * expm1(x)", log1p(y) * (exp(x) - 1), -2, 2)                                       \
    X("sqrt(y) + rsqrt(y)", sqrt(y) + 1 / sqrt(y), -1, 1)                                          \
    X("abs(x) * sign(z) + sign(-x)", fabs(x) * sgn(z) + sgn(-x), -2, 2)                            \
    X("sin(x) * cos(y)", sin(x) * cos(y), -4, 4)                                                   \
    X("tanh(x) + sigmoid(x)", tanh(x) + sigm(x), -5, 5)                                            \
    X("silu(x)", x * sigm(x), -8, 8)                                                               \
    X("gelu(x)", 0.5 * x * (1 + erf(x / sqrt(2))), -4, 4)                                          \
    X("gelu_tanh(x)", 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))), -4, 4)    \
    X("softplus(x)", x > 20 ? x : log(1 + exp(x)), -30, 30)                                        \
    X("relu(x) - relu(-x)", (x > 0 ? x : 0) - (x < 0 ? -x : 0), -2, 2)                             \
    X("erf(x) * 2", erf(x) * 2, -3, 3)                                                             \
    X("floor(x * 3) + ceil(x * 3)", floor(x * 3) + ceil(x * 3), -3, 3)                             \
    X("min(x, y) + max(x, z)", fmin(x, y) + fmax(x, z), -3, 3)                                     \
    X("pow(y, x)", pow(y, x), -3, 3)                                                               \
    X("x ** 2 + y ^ 3", x * x + y * y * y, -3, 3)                                                  \
    X("-x**2 + 2 ** 3 ** 0.5", -(x * x) + pow(2, pow(3, 0.5)), -3, 3)                              \
    X("clamp(x, -0.5, 0.5)", fmin(fmax(x, -0.5), 0.5), -2, 2)                                      \
    X("where(x > 0, x, 0.1 * x)", x > 0 ? x : 0.1 * x, -2, 2)                                      \
    X("(x < y) + (x <= y) * 2 + (x > z) * 4 + (x >= z) * 8 + (x == x) * 16 + (x != y) * 32",       \
      (x < y) + (x <= y) * 2 + (x > z) * 4 + (x >= z) * 8 + 16 + (x != y) * 32, -3, 3)             \
    X("pi * x", M_PI * x, -3, 3)                                                                   \
    X("1.5e-1 * x + .5 - 2.5E+1 / y + 1e-3 + 2.", 0.15 * x + 0.5 - 25 / y + 0.001 + 2, -3, 3)      \
    X("x / y - z * 3", x / y - z * 3, -3, 3)                                                       \
    X("sigmoid(x) * (1 - sigmoid(x))", sigm(x) * (1 - sigm(x)), -6, 6)                             \
    X("log(sigmoid(x))", log(sigm(x)), -6, 6)                                                      \
    X("sqrt(x*x + y*y + z*z)", sqrt(x * x + y * y + z * z), -3, 3)                                 \
    X("exp(-x*x / 2) / sqrt(2*pi)", exp(-x * x / 2) / sqrt(2 * M_PI), -3, 3)                       \
    X("x - -y + --z", x + y + z, -3, 3)                                                            \
    X("where(abs(x) < 1, 0.5*x*x, abs(x) - 0.5)", fabs(x) < 1 ? 0.5 * x * x : fabs(x) - 0.5, -3, 3) \
    X("gelu(x) * y + silu(z)", 0.5 * x * (1 + erf(x / sqrt(2))) * y + z * sigm(z), -3, 3)          \
    X("((x)) * + y", x * y, -3, 3)                                                                 \
    X("max(min(x, 1), -1) + 3 * x / (1 + abs(x))", fmax(fmin(x, 1), -1) + 3 * x / (1 + fabs(x)), -3, 3) \
    X("pow(x, 3) - x ** -1 + y ** x", x * x * x - 1 / x + pow(y, x), 0.2, 3)                       \
    X("exp2(x) * log2(y) - expm1(-y)", pow(2, x) * log2(y) - expm1(-y), -3, 3)                     \
    X("2 * 3 + x * 1 + 0 * y - (4 - 4) * z", 6 + x, -3, 3)                                        \
    X("rsqrt(1 + x * x) * tanh(y * z)", 1 / sqrt(1 + x * x) * tanh(y * z), -3, 3)

typedef struct {
    const char *src;
    double lo, hi;
} expr_case;
#define AS_CASE(s, e, l, h) {s, l, h},
static const expr_case cases[] = {EXPRS(AS_CASE)};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static double ref(int k, double x, double y, double z) {
    int i = 0;
#define AS_REF(s, e, l, h) if (k == i++) return (e);
    EXPRS(AS_REF)
#undef AS_REF
    return NAN;
}

static void draw(int k, double v[3]) {
    v[0] = zt_uniform(cases[k].lo, cases[k].hi);
    v[1] = zt_uniform(0.5, 2);
    do v[2] = zt_uniform(-1, 1); while (fabs(v[2]) < 0.05);
}

static int close_d(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    return fabs(got - want) <= tol * (1 + fabs(want));
}

static void test_expressions_vs_formulas(void) {
    ZT_CHECK(N_CASES >= 30, "only %d expressions", N_CASES);
    for (int k = 0; k < N_CASES; k++) {
        zm_ir ir;
        zm_ir_init(&ir);
        int32_t r;
        ZT_OK(zm_expr_parse(&ir, cases[k].src, NULL, &r));
        for (int t = 0; t < 200 && r >= 0; t++) {
            double v[3];
            draw(k, v);
            double got = zm_ir_eval(&ir, r, v, NULL, NULL), want = ref(k, v[0], v[1], v[2]);
            if (!close_d(got, want, 1e-12)) {
                ZT_CHECK(0, "%s at (%g, %g, %g): got %.17g want %.17g", cases[k].src, v[0], v[1], v[2], got, want);
                break;
            }
        }
        zm_ir_clear(&ir);
    }
}

/* Every function name the language has must appear in the table. */
static void test_every_function_covered(void) {
    static const char *fn[] = {"exp(", "exp2(", "log(", "log2(", "log1p(", "expm1(", "sqrt(", "rsqrt(",
                               "abs(", "sign(", "sin(", "cos(", "tanh(", "sigmoid(", "silu(", "gelu(",
                               "gelu_tanh(", "softplus(", "relu(", "erf(", "floor(", "ceil(", "min(",
                               "max(", "pow(", "clamp(", "where(", "pi", "**", "^", "<=", ">=", "==", "!="};
    for (size_t f = 0; f < sizeof fn / sizeof fn[0]; f++) {
        int seen = 0;
        for (int k = 0; k < N_CASES; k++) seen |= strstr(cases[k].src, fn[f]) != NULL;
        ZT_CHECK(seen, "no expression uses %s", fn[f]);
    }
}

// ---- IR construction

static int count_op(const zm_ir *ir, int32_t root, zm_ir_op op) {
    unsigned char *m = zm__ir_reach(ir, root);
    int c = 0;
    for (int32_t i = 0; m && i <= root; i++) c += m[i] && ir->nodes[i].op == op;
    free(m);
    return c;
}

static int32_t parse1(zm_ir *ir, const char *s) {
    int32_t r = -1;
    ZT_OK(zm_expr_parse(ir, s, NULL, &r));
    return r;
}

static void expect_print(zm_ir *ir, const char *src, const char *want) {
    char buf[256];
    int32_t r = parse1(ir, src);
    if (r < 0) return;
    ZT_OK(zm_ir_print(ir, r, buf, sizeof buf));
    ZT_CHECK(strcmp(buf, want) == 0, "%s printed as %s, want %s", src, buf, want);
}

static void test_cse_fold_simplify(void) {
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t r = parse1(&ir, "x*y + x*y");
    ZT_CHECK(r >= 0 && count_op(&ir, r, ZM_IR_MUL) == 1, "x*y + x*y: one mul node");
    r = parse1(&ir, "x*y + y*x");
    ZT_CHECK(r >= 0 && count_op(&ir, r, ZM_IR_MUL) == 1, "x*y + y*x: one mul node (commuted)");
    r = parse1(&ir, "exp(x) * exp(x) + exp(x)");
    ZT_CHECK(r >= 0 && count_op(&ir, r, ZM_IR_EXP) == 1, "one exp node");
    expect_print(&ir, "2*3+x", "(6 + x)");
    expect_print(&ir, "x*1", "x");
    expect_print(&ir, "1*x", "x");
    expect_print(&ir, "x+0", "x");
    expect_print(&ir, "0+x", "x");
    expect_print(&ir, "x-0", "x");
    expect_print(&ir, "x*0", "0");
    expect_print(&ir, "0*exp(x)", "0");
    expect_print(&ir, "--x", "x");
    expect_print(&ir, "-(-(x))", "x");
    expect_print(&ir, "x - x", "0");
    expect_print(&ir, "x / 1", "x");
    expect_print(&ir, "x ** 1", "x");
    expect_print(&ir, "x ** 0", "1");
    expect_print(&ir, "x ** 2", "(x * x)");
    expect_print(&ir, "sqrt(4) + exp(0) * x", "(2 + x)");
    expect_print(&ir, "2 * (3 * x)", "(6 * x)");
    expect_print(&ir, "where(1, x, y)", "x");
    expect_print(&ir, "where(x < 0, y, y)", "y");
    expect_print(&ir, "max(x, x)", "x");
    expect_print(&ir, "-x**2", "(-(x * x))");
    expect_print(&ir, "x + -y", "(x - y)");
    /* a fold that would give Inf keeps the op (constants stay finite) */
    r = parse1(&ir, "1 / 0 + x");
    ZT_CHECK(r >= 0 && isinf(zm_ir_eval(&ir, r, (double[]){1, 0, 0}, NULL, NULL)), "1/0 + x = inf");
    for (int32_t i = 0; i < ir.n; i++)
        if (ir.nodes[i].op == ZM_IR_CONST) ZT_CHECK(isfinite(ir.nodes[i].value), "non-finite constant node");
    /* hash-consing: parsing the same text twice gives the same node */
    ZT_CHECK(parse1(&ir, "silu(x) * y") == parse1(&ir, "silu(x)*y"), "same text, same node");
    zm_ir_clear(&ir);
    zm_ir_clear(&ir); /* twice is harmless */
}

static void test_print_roundtrip(void) {
    for (int k = 0; k < N_CASES; k++) {
        zm_ir a, b;
        zm_ir_init(&a);
        zm_ir_init(&b);
        char buf[8192];
        int32_t r = parse1(&a, cases[k].src), r2 = -1;
        ZT_OK(zm_ir_print(&a, r, buf, sizeof buf));
        ZT_OK(zm_expr_parse(&b, buf, NULL, &r2));
        for (int t = 0; t < 20 && r2 >= 0; t++) {
            double v[3];
            draw(k, v);
            double ga = zm_ir_eval(&a, r, v, NULL, NULL), gb = zm_ir_eval(&b, r2, v, NULL, NULL);
            if (!close_d(gb, ga, 1e-13)) {
                ZT_CHECK(0, "%s -> %s: %.17g vs %.17g", cases[k].src, buf, ga, gb);
                break;
            }
        }
        zm_ir_clear(&a);
        zm_ir_clear(&b);
    }
    /* a widely shared DAG prints in bounded time and reports truncation */
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t r = zm_ir_leaf(&ir, ZM_IR_INPUT, 0);
    for (int i = 0; i < 200; i++) r = zm_ir_op2(&ir, ZM_IR_ADD, r, zm_ir_op1(&ir, ZM_IR_SIN, r));
    char small[64];
    ZT_CHECK(zm_ir_print(&ir, r, small, sizeof small) == ZM_ERR_RANGE && strlen(small) == 63, "truncation");
    zm_ir_clear(&ir);
}

// ---- names

static void test_names(void) {
    zm_ir ir;
    zm_ir_init(&ir);
    zm_ir_names nm = {{"a", "bias"}, 2, {"alpha", "eps"}, 2, 2};
    int32_t r;
    ZT_OK(zm_expr_parse(&ir, "a * alpha + bias / (r1 + eps) - r0", &nm, &r));
    double v = zm_ir_eval(&ir, r, (double[]){2, 3}, (double[]){5, 0.5}, (double[]){7, 1.5});
    ZT_CHECK(fabs(v - (2 * 5 + 3 / (1.5 + 0.5) - 7)) < 1e-12, "named eval %g", v);
    ZT_CHECK(zm_ir_max_index(&ir, r, ZM_IR_RED) == 1 && zm_ir_max_index(&ir, r, ZM_IR_PARAM) == 1 &&
             zm_ir_uses_inputs(&ir, r), "max_index / uses_inputs");
    ZT_OK(zm_expr_parse(&ir, "r0 + log(r1)", &nm, &r));
    ZT_CHECK(!zm_ir_uses_inputs(&ir, r) && zm_ir_max_index(&ir, r, ZM_IR_INPUT) == -1, "no inputs");
    ZT_CHECK(zm_expr_parse(&ir, "r2 + a", &nm, &r) == ZM_ERR_PARSE && strstr(zm_last_error(), "'r2'"),
             "r2 beyond n_reds: %s", zm_last_error());
    ZT_CHECK(zm_expr_parse(&ir, "x + a", &nm, &r) == ZM_ERR_PARSE && strstr(zm_last_error(), "'x'"),
             "x is not a name here: %s", zm_last_error());
    zm_ir_clear(&ir);

    char names[8][32];
    int n = -1;
    ZT_OK(zm_expr_scan_inputs("w * exp(b) + y * x + alpha * 1e-3 + pi + r0 + w", (const char *[]){"alpha"}, 1, names, &n));
    ZT_CHECK(n == 4 && !strcmp(names[0], "x") && !strcmp(names[1], "y") && !strcmp(names[2], "w") &&
             !strcmp(names[3], "b"), "scan: n=%d %s %s %s %s", n, names[0], names[1], names[2], names[3]);
    ZT_OK(zm_expr_scan_inputs("silu(z) * sigmoid (x)", NULL, 0, names, &n));
    ZT_CHECK(n == 2 && !strcmp(names[0], "x") && !strcmp(names[1], "z"), "scan x, z");
    ZT_CHECK(zm_expr_scan_inputs("a+b+c+d+e+f+g+h+i", NULL, 0, names, &n) == ZM_ERR_RANGE, "9 inputs");
}

// ---- gradients

/* f at v with component j moved by d */
static double at(zm_ir *ir, int32_t r, const double *v, int j, double d) {
    double w[3] = {v[0], v[1], v[2]};
    w[j] += d;
    return zm_ir_eval(ir, r, w, NULL, NULL);
}

static void test_grad_vs_finite_differences(void) {
    int checked = 0, kinks = 0;
    for (int k = 0; k < N_CASES; k++) {
        zm_ir ir;
        zm_ir_init(&ir);
        int32_t r = parse1(&ir, cases[k].src), one = zm_ir_const(&ir, 1), g[3];
        for (int j = 0; j < 3; j++) ZT_OK(zm_ir_grad(&ir, r, j, one, &g[j]));
        for (int t = 0; t < 40 && r >= 0; t++) {
            double v[3];
            draw(k, v);
            for (int j = 0; j < 3; j++) {
                double h = 1e-5 * (1 + fabs(v[j]));
                double fd = (at(&ir, r, v, j, h) - at(&ir, r, v, j, -h)) / (2 * h);
                double fd2 = (at(&ir, r, v, j, h / 8) - at(&ir, r, v, j, -h / 8)) / (h / 4);
                if (!isfinite(fd) || fabs(fd - fd2) > 1e-4 * (1 + fabs(fd))) { /* a kink or a jump */
                    kinks++;
                    continue;
                }
                double gv = zm_ir_eval(&ir, g[j], v, NULL, NULL);
                checked++;
                if (!close_d(gv, fd, 2e-6)) {
                    char buf[512];
                    zm_ir_print(&ir, g[j], buf, sizeof buf);
                    ZT_CHECK(0, "d/d%c %s at (%g, %g, %g): %.12g, finite differences %.12g; grad = %s",
                             "xyz"[j], cases[k].src, v[0], v[1], v[2], gv, fd, buf);
                    t = 1 << 20;
                    break;
                }
            }
        }
        zm_ir_clear(&ir);
    }
    ZT_CHECK(checked > 20 * kinks && checked > 3000, "%d gradients checked, %d points at kinks", checked, kinks);
}

static double grad_at(const char *src, int wrt, double x, double y) {
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t r = parse1(&ir, src), g = -1;
    if (r >= 0) ZT_OK(zm_ir_grad(&ir, r, wrt, zm_ir_const(&ir, 1), &g));
    double v = g >= 0 ? zm_ir_eval(&ir, g, (double[]){x, y, 0}, NULL, NULL) : NAN;
    zm_ir_clear(&ir);
    return v;
}

static void test_grad_subgradients(void) {
    struct { const char *src; int wrt; double x, y, want; } c[] = {
        {"relu(x)", 0, 0, 0, 0},          {"relu(x)", 0, 1e-300, 0, 1},   {"abs(x)", 0, 0, 0, 0},
        {"abs(x)", 0, -2, 0, -1},         {"sign(x)", 0, 0.3, 0, 0},      {"floor(x) + ceil(x)", 0, 0.3, 0, 0},
        {"x < y", 0, 1, 2, 0},            {"min(x, y)", 0, 1, 1, 1},      {"min(x, y)", 1, 1, 1, 0},
        {"max(x, y)", 0, 1, 1, 1},        {"max(x, y)", 1, 1, 1, 0},      {"min(x, y)", 1, 3, 1, 1},
        {"where(x > 0, x * y, 5 * x)", 0, 2, 3, 3}, {"where(x > 0, x * y, 5 * x)", 0, -2, 3, 5},
        {"where(x > 0, x * y, 5 * x)", 1, -2, 3, 0}, {"x ** 3", 0, -2, 0, 12}, {"pow(x, 2)", 0, -3, 0, -6},
        {"pow(y, x)", 0, 2, 3, 9 * log(3)}, {"clamp(x, -1, 1)", 0, 2, 0, 0}, {"clamp(x, -1, 1)", 0, 0.5, 0, 1},
        {"y * 3", 0, 1, 2, 0},            {"softplus(x)", 0, 30, 0, 1},   {"sqrt(x)", 0, 4, 0, 0.25},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double g = grad_at(c[i].src, c[i].wrt, c[i].x, c[i].y);
        ZT_CHECK(fabs(g - c[i].want) < 1e-9 * (1 + fabs(c[i].want)), "d/d%c %s at (%g, %g) = %.17g, want %g",
                 "xyz"[c[i].wrt], c[i].src, c[i].x, c[i].y, g, c[i].want);
    }
    /* pow with a constant exponent builds no log term (so x < 0 stays finite) */
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t r = parse1(&ir, "pow(x, 3) * y"), g;
    ZT_OK(zm_ir_grad(&ir, r, 0, zm_ir_const(&ir, 1), &g));
    ZT_CHECK(count_op(&ir, g, ZM_IR_LOG) == 0, "no log in d/dx x**3");
    /* the VJP: the seed multiplies the derivative (seed = a 4th input g) */
    int32_t seed = zm_ir_leaf(&ir, ZM_IR_INPUT, 3);
    r = parse1(&ir, "silu(x)");
    ZT_OK(zm_ir_grad(&ir, r, 0, seed, &g));
    double x = 0.7, s = sigm(x);
    double v = zm_ir_eval(&ir, g, (double[]){x, 0, 0, -2.5}, NULL, NULL);
    ZT_CHECK(fabs(v - (-2.5) * (s + x * s * (1 - s))) < 1e-12, "vjp %g", v);
    /* second derivative (grad of grad) against finite differences of the first */
    r = parse1(&ir, "x * tanh(log1p(exp(x)))");
    int32_t g1, g2;
    ZT_OK(zm_ir_grad(&ir, r, 0, zm_ir_const(&ir, 1), &g1));
    ZT_OK(zm_ir_grad(&ir, g1, 0, zm_ir_const(&ir, 1), &g2));
    for (int t = 0; t < 50; t++) {
        double p[3] = {zt_uniform(-3, 3), 0, 0}, h = 1e-5;
        double fd = (at(&ir, g1, p, 0, h) - at(&ir, g1, p, 0, -h)) / (2 * h);
        double gv = zm_ir_eval(&ir, g2, p, NULL, NULL);
        if (!close_d(gv, fd, 1e-6)) { ZT_CHECK(0, "second derivative at %g: %g vs %g", p[0], gv, fd); break; }
    }
    /* bad arguments are refused, not crashed on */
    ZT_CHECK(zm_ir_grad(&ir, ir.n + 5, 0, 0, &g) == ZM_ERR_INVALID && g == -1, "bad root");
    ZT_CHECK(zm_ir_grad(&ir, r, 7, zm_ir_const(&ir, 1), &g) == ZM_OK && ir.nodes[g].op == ZM_IR_CONST &&
             ir.nodes[g].value == 0, "d/d(unused input) = 0");
    zm_ir_clear(&ir);
}

// ---- errors

static void expect_err(const char *src, int byte, const char *reason) {
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t r = 123;
    zm_status s = zm_expr_parse(&ir, src, NULL, &r);
    char want[32];
    snprintf(want, sizeof want, "at byte %d: ", byte);
    const char *m = zm_last_error();
    size_t n = strlen(src);
    ZT_CHECK(s == ZM_ERR_PARSE && r == -1, "'%.40s': status %d root %d", src, s, r);
    ZT_CHECK(strncmp(m, want, strlen(want)) == 0 && strstr(m, reason), "'%.40s'%s: message '%s', want '%s...%s'",
             src, n > 40 ? "..." : "", m, want, reason);
    zm_ir_clear(&ir);
}

static char *repeat(const char *unit, size_t times, const char *tail) {
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < times; i++) memcpy(s + i * u, unit, u);
    memcpy(s + u * times, tail, t + 1);
    return s;
}

static void test_errors(void) {
    expect_err("(x + 1", 6, "missing ')' to close '(' at byte 0");
    expect_err("exp(x * (y + 1)", 15, "missing ')'");
    expect_err("x + 1)", 5, "unmatched ')'");
    expect_err("foo(x)", 0, "unknown function 'foo'");
    expect_err("x + bar * 2", 4, "unknown variable 'bar'");
    expect_err("exp(x, y)", 0, "takes 1 argument, got 2");
    expect_err("x + where(x, y)", 4, "takes 3 arguments, got 2");
    expect_err("pow(x)", 0, "takes 2 arguments, got 1");
    expect_err("sin()", 0, "takes 1 argument, got 0");
    expect_err("", 0, "empty expression");
    expect_err("   \t\n", 0, "empty expression");
    expect_err("x y", 2, "unexpected 'y'");
    expect_err("x + 1 2", 6, "unexpected '2'");
    expect_err("1.2.3 + x", 0, "bad number");
    expect_err("x * 1e", 4, "bad number");
    expect_err("3x", 0, "bad number");
    expect_err("1e999", 0, "out of range");
    expect_err("x + $", 4, "unexpected character '$'");
    expect_err("x +", 3, "ends where a value is expected");
    expect_err("exp + 1", 0, "needs arguments");
    expect_err("min(x,)", 6, "unmatched ')'");
    expect_err("max(x y)", 6, "expected ',' or ')'");
    expect_err("x = 1", 2, "unexpected character '='");
    expect_err("()", 1, "unmatched ')'");

    /* hostile sizes: 1 MB of '(' (and others) fail fast at the depth cap */
    const size_t MB = 1 << 20;
    struct { const char *unit, *tail; } deep[] = {{"(", ""}, {"-", "x"}, {"exp(", "x"}, {"x**", "x"}, {"(", "x)"}};
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        char *s = repeat(deep[i].unit, MB / strlen(deep[i].unit), deep[i].tail);
        if (!s) continue;
        double t0 = (double)clock() / CLOCKS_PER_SEC;
        zm_ir ir;
        zm_ir_init(&ir);
        int32_t r;
        zm_status st = zm_expr_parse(&ir, s, NULL, &r);
        double dt = (double)clock() / CLOCKS_PER_SEC - t0;
        ZT_CHECK(st == ZM_ERR_PARSE && strstr(zm_last_error(), "nested deeper than") && dt < 0.5,
                 "1 MB of '%s': status %d, %s, %.3f s", deep[i].unit, st, zm_last_error(), dt);
        size_t at = strtoul(zm_last_error() + 8, NULL, 10);
        ZT_CHECK(at <= strlen(deep[i].unit) * (ZM_IR_MAX_DEPTH + 1), "error at byte %zu", at);
        zm_ir_clear(&ir);
        free(s);
    }
    /* ... but nesting just under the cap parses, and a long flat sum is linear */
    char *ok = malloc(2 * 150 + 2);
    memset(ok, '(', 150);
    ok[150] = 'x';
    memset(ok + 151, ')', 150);
    ok[301] = 0;
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t r;
    ZT_OK(zm_expr_parse(&ir, ok, NULL, &r));
    free(ok);
    char *flat = repeat("x*y+", MB / 4, "x");
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    ZT_OK(zm_expr_parse(&ir, flat, NULL, &r));
    double dt = (double)clock() / CLOCKS_PER_SEC - t0;
    ZT_CHECK(dt < 2.0 && r >= 0 && ir.n < 300000, "1 MB flat sum took %.3f s, %d nodes", dt, (int)ir.n);
    free(flat);
    zm_ir_clear(&ir);
    ZT_CHECK(zm_expr_parse(&ir, NULL, NULL, &r) == ZM_ERR_INVALID, "NULL source");
}

// ---- float32 arrays

static void test_eval_f32_matches_eval(void) {
    enum { N = 1000 };
    float *xs = malloc(2 * N * sizeof *xs), *ys = malloc(N * sizeof *ys), zs[1], *out = malloc(N * sizeof *out);
    double *want = malloc(N * sizeof *want);
    for (int k = 0; k < N_CASES; k++) {
        zm_ir ir;
        zm_ir_init(&ir);
        int32_t r = parse1(&ir, cases[k].src);
        if (r < 0) continue;
        double v[3];
        draw(k, v);
        zs[0] = (float)v[2];
        for (int i = 0; i < N; i++) {
            draw(k, v);
            xs[2 * i] = (float)v[0];
            xs[2 * i + 1] = NAN; /* x is read with stride 2: these must never be used */
            ys[i] = (float)v[1];
        }
        zt_poison_f32(out, N);
        int64_t n = k == 3 ? 1 : k % 4 == 1 ? 257 : N; /* partial blocks too */
        zm_ir_eval_f32(&ir, r, n, (const float *const[]){xs, ys, zs}, (const int64_t[]){2, 1, 0}, NULL, NULL, out);
        for (int i = 0; i < n; i++) want[i] = zm_ir_eval(&ir, r, (double[]){xs[2 * i], ys[i], zs[0]}, NULL, NULL);
        /* float vs double: absolute + relative, since several cases cancel */
        for (int i = 0; i < n; i++)
            if (!(fabs(out[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])))) {
                ZT_CHECK(0, "eval_f32 %s [%d of %d]: got %.9g want %.9g", cases[k].src, i, (int)n, out[i], want[i]);
                break;
            }
        zm_ir_clear(&ir);
    }
    /* a gradient graph (many live temporaries), parameters and reductions */
    zm_ir ir;
    zm_ir_init(&ir);
    zm_ir_names nm = {{"x", "y"}, 2, {"alpha"}, 1, 1};
    int32_t r, g;
    ZT_OK(zm_expr_parse(&ir, "gelu_tanh(x * alpha) * softplus(y - r0) + where(x > y, exp(x), sin(y))", &nm, &r));
    ZT_OK(zm_ir_grad(&ir, r, 0, zm_ir_const(&ir, 1), &g));
    zt_fill_uniform(xs, N, -3, 3);
    zt_fill_uniform(ys, N, -3, 3);
    float alpha = 0.8f, red = 0.25f;
    for (int root = 0; root < 2; root++) {
        int32_t node = root ? g : r;
        zt_poison_f32(out, N);
        zm_ir_eval_f32(&ir, node, N, (const float *const[]){xs, ys}, NULL, &alpha, &red, out);
        for (int i = 0; i < N; i++) want[i] = zm_ir_eval(&ir, node, (double[]){xs[i], ys[i]}, (double[]){alpha}, (double[]){red});
        zt_close(root ? "eval_f32 gradient" : "eval_f32 params", out, want, N, 2e-5);
    }
    /* all-scalar root: a broadcast value */
    ZT_OK(zm_expr_parse(&ir, "alpha * 2 + r0", &nm, &r));
    zt_poison_f32(out, N);
    zm_ir_eval_f32(&ir, r, N, NULL, NULL, &alpha, &red, out);
    int same = 1;
    for (int i = 0; i < N; i++) same &= out[i] == alpha * 2 + red;
    ZT_CHECK(same, "scalar root broadcast: %g", out[0]);
    zm_ir_clear(&ir);
    free(xs);
    free(ys);
    free(out);
    free(want);
}

int main(void) {
    ZT_RUN(test_expressions_vs_formulas);
    ZT_RUN(test_every_function_covered);
    ZT_RUN(test_cse_fold_simplify);
    ZT_RUN(test_print_roundtrip);
    ZT_RUN(test_names);
    ZT_RUN(test_grad_vs_finite_differences);
    ZT_RUN(test_grad_subgradients);
    ZT_RUN(test_errors);
    ZT_RUN(test_eval_f32_matches_eval);
    return zt_finish();
}
