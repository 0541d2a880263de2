/* The expression table shared by tests/test_kernel.c (CPU) and
 * tests/test_kernel_cuda.c (GPU): 36 expressions, every DSL function at
 * least once, each with its float64 reference and an input range. */
#ifndef ZT_KERNEL_CASES_H
#define ZT_KERNEL_CASES_H
#include <math.h>

typedef double (*ref_fn)(const double *v);
typedef struct {
    const char *expr;
    int nin;
    double lo, hi; /* input range (all inputs) */
    ref_fn ref;
    double floor; /* error floor as a fraction of max|ref| (0: 1e-2), for cancellation */
} ecase;

static double sg(double a) { return 1.0 / (1.0 + exp(-a)); }
#define R(name, body) static double name(const double *v) { double x = v[0], y = v[1], z = v[2]; (void)x; (void)y; (void)z; return body; }
R(r_mish, x * tanh(log1p(exp(x))))
R(r_exp, exp(x))
R(r_exp2, exp2(x))
R(r_log, log(x))
R(r_log2, log2(x))
R(r_log1p, log1p(x))
R(r_expm1, expm1(x))
R(r_sqrt, sqrt(x))
R(r_rsqrt, 1.0 / sqrt(x))
R(r_abs, fabs(x) + 1)
R(r_sign, (x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0) * x * x)
R(r_min, fmin(x, y))
R(r_max, fmax(x, y) - 0.5)
R(r_pow, pow(x, y))
R(r_clamp, fmin(fmax(x, -1.0), 1.0))
R(r_sin, sin(x))
R(r_cos, cos(x))
R(r_tanh, tanh(x))
R(r_sigmoid, sg(x))
R(r_silu, x * sg(x))
R(r_gelu, 0.5 * x * (1 + erf(x / sqrt(2.0))))
R(r_gelu_tanh, 0.5 * x * (1 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))))
R(r_softplus, log1p(exp(x)))
R(r_relu, x > 0 ? x : 0)
R(r_erf, erf(x))
R(r_floor, floor(x))
R(r_ceil, ceil(x))
R(r_where, x > y ? x : y * 2)
R(r_arith, -x + y * z - x / (y + 5))
R(r_cmp, (x < 0) + (x <= y) + (x >= y) * 2.0 + (x == x) + (x != y))
R(r_powop, x * x * x - 2 * x * x)
R(r_hypot, sqrt(x * x + y * y))
R(r_gauss, exp(-x * x / 2) / sqrt(2 * M_PI))
R(r_swiglu, x * sg(x) * y)
R(r_logsig, log(sg(x)))
R(r_nested, tanh(sin(x) * cos(y)) + exp(-fabs(z)))

static const ecase cases[] __attribute__((unused)) = {
    {"x * tanh(log1p(exp(x)))", 1, -6, 6, r_mish, 0},
    {"exp(x)", 1, -5, 5, r_exp, 0},
    {"exp2(x)", 1, -5, 5, r_exp2, 0},
    {"log(x)", 1, 0.1, 10, r_log, 0},
    {"log2(x)", 1, 0.1, 10, r_log2, 0},
    {"log1p(x)", 1, -0.5, 5, r_log1p, 0},
    {"expm1(x)", 1, -2, 2, r_expm1, 0},
    {"sqrt(x)", 1, 0.1, 10, r_sqrt, 0},
    {"rsqrt(x)", 1, 0.1, 10, r_rsqrt, 0},
    {"abs(x) + 1", 1, -3, 3, r_abs, 0},
    {"sign(x) * x * x", 1, -3, 3, r_sign, 0},
    {"min(x, y)", 2, -3, 3, r_min, 0},
    {"max(x, y) - 0.5", 2, -3, 3, r_max, 0},
    {"pow(x, y)", 2, 0.5, 2.5, r_pow, 0},
    {"clamp(x, -1, 1)", 1, -3, 3, r_clamp, 0},
    {"sin(x)", 1, -3, 3, r_sin, 0},
    {"cos(x)", 1, -3, 3, r_cos, 0},
    {"tanh(x)", 1, -4, 4, r_tanh, 0},
    {"sigmoid(x)", 1, -8, 8, r_sigmoid, 0},
    {"silu(x)", 1, -8, 8, r_silu, 0},
    {"gelu(x)", 1, -5, 5, r_gelu, 0},
    {"gelu_tanh(x)", 1, -5, 5, r_gelu_tanh, 0},
    {"softplus(x)", 1, -10, 25, r_softplus, 0},
    {"relu(x)", 1, -3, 3, r_relu, 0},
    {"erf(x)", 1, -3, 3, r_erf, 0},
    {"floor(x)", 1, -5, 5, r_floor, 0},
    {"ceil(x)", 1, -5, 5, r_ceil, 0},
    {"where(x > y, x, y * 2)", 2, -3, 3, r_where, 0},
    {"-x + y * z - x / (y + 5)", 3, -2, 2, r_arith, 0},
    {"(x < 0) + (x <= y) + (x >= y) * 2 + (x == x) + (x != y)", 2, -3, 3, r_cmp, 0},
    {"x ** 3 - 2 * x ^ 2", 1, -3, 3, r_powop, 0},
    {"sqrt(x*x + y*y)", 2, 0.5, 3, r_hypot, 0},
    {"exp(-x*x/2) / sqrt(2*pi)", 1, -4, 4, r_gauss, 0},
    {"silu(x) * y", 2, -4, 4, r_swiglu, 0},
    {"log(sigmoid(x))", 1, -8, 8, r_logsig, 0},
    {"tanh(sin(x) * cos(y)) + exp(-abs(z))", 3, -3, 3, r_nested, 0.1},
};
static inline double case_floor(const ecase *c) { return c->floor > 0 ? c->floor : 1e-2; }
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

#endif
