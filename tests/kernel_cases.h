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
    {"x * tanh(log1p(exp(x)))", 1, -6, 6, r_mish},
    {"exp(x)", 1, -5, 5, r_exp},
    {"exp2(x)", 1, -5, 5, r_exp2},
    {"log(x)", 1, 0.1, 10, r_log},
    {"log2(x)", 1, 0.1, 10, r_log2},
    {"log1p(x)", 1, -0.5, 5, r_log1p},
    {"expm1(x)", 1, -2, 2, r_expm1},
    {"sqrt(x)", 1, 0.1, 10, r_sqrt},
    {"rsqrt(x)", 1, 0.1, 10, r_rsqrt},
    {"abs(x) + 1", 1, -3, 3, r_abs},
    {"sign(x) * x * x", 1, -3, 3, r_sign},
    {"min(x, y)", 2, -3, 3, r_min},
    {"max(x, y) - 0.5", 2, -3, 3, r_max},
    {"pow(x, y)", 2, 0.5, 2.5, r_pow},
    {"clamp(x, -1, 1)", 1, -3, 3, r_clamp},
    {"sin(x)", 1, -3, 3, r_sin},
    {"cos(x)", 1, -3, 3, r_cos},
    {"tanh(x)", 1, -4, 4, r_tanh},
    {"sigmoid(x)", 1, -8, 8, r_sigmoid},
    {"silu(x)", 1, -8, 8, r_silu},
    {"gelu(x)", 1, -5, 5, r_gelu},
    {"gelu_tanh(x)", 1, -5, 5, r_gelu_tanh},
    {"softplus(x)", 1, -10, 25, r_softplus},
    {"relu(x)", 1, -3, 3, r_relu},
    {"erf(x)", 1, -3, 3, r_erf},
    {"floor(x)", 1, -5, 5, r_floor},
    {"ceil(x)", 1, -5, 5, r_ceil},
    {"where(x > y, x, y * 2)", 2, -3, 3, r_where},
    {"-x + y * z - x / (y + 5)", 3, -2, 2, r_arith},
    {"(x < 0) + (x <= y) + (x >= y) * 2 + (x == x) + (x != y)", 2, -3, 3, r_cmp},
    {"x ** 3 - 2 * x ^ 2", 1, -3, 3, r_powop},
    {"sqrt(x*x + y*y)", 2, 0.5, 3, r_hypot},
    {"exp(-x*x/2) / sqrt(2*pi)", 1, -4, 4, r_gauss},
    {"silu(x) * y", 2, -4, 4, r_swiglu},
    {"log(sigmoid(x))", 1, -8, 8, r_logsig},
    {"tanh(sin(x) * cos(y)) + exp(-abs(z))", 3, -3, 3, r_nested},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

#endif
