/* The catalog's element-wise and row-wise families written in the
 * expression language: 15 activations (each with its symbolic VJP from
 * zm_kernel_grad) and the softmax family (softmax, log_softmax, logsumexp,
 * their backward passes, masked and scale+mask softmax) as zm_map_reduce
 * definitions. Kernels are compiled on first use (C JIT or NVRTC, disk
 * cached) and kept for the process. Checked against float64 references and
 * finite differences by tests/test_catalog_dsl.c. */
#include "kernels/catalog/common.h"
#include "zmlx/kernel.h"
#include <pthread.h>

typedef struct {
    const char *name;
    const char *expr;   /* element-wise expression, or the post of a map_reduce */
    int n_red;          /* 0: element-wise */
    zm_reduction red[2];
    const char *in[3];  /* input names (NULL-terminated) */
    const char *param;  /* one scalar parameter or NULL */
    float pval;
} zm__dsl_def;

static const zm__dsl_def zm__dsl[] = {
    {"exp", "exp(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"log", "log(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"tanh", "tanh(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"sigmoid", "sigmoid(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"relu", "relu(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"relu2", "relu(x) * relu(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"silu", "silu(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"gelu", "gelu(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"gelu_tanh", "gelu_tanh(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"quick_gelu", "x * sigmoid(1.702 * x)", 0, {{0}}, {"x"}, NULL, 0},
    {"softplus", "softplus(x)", 0, {{0}}, {"x"}, NULL, 0},
    {"mish", "x * tanh(softplus(x))", 0, {{0}}, {"x"}, NULL, 0},
    {"elu", "where(x > 0, x, alpha * expm1(x))", 0, {{0}}, {"x"}, "alpha", 1.0f},
    {"leaky_relu", "where(x > 0, x, slope * x)", 0, {{0}}, {"x"}, "slope", 0.01f},
    {"hardswish", "x * min(max(x + 3, 0), 6) / 6", 0, {{0}}, {"x"}, NULL, 0},
    {"softmax", "exp(x - r0) / r1", 2, {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}}, {"x"}, NULL, 0},
    {"log_softmax", "x - r0 - log(r1)", 2, {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}}, {"x"}, NULL, 0},
    {"logsumexp", "r0 + log(r1)", 2, {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}}, {"x"}, NULL, 0},
    {"softmax_backward", "y * (g - r0)", 1, {{ZM_RED_SUM, "y * g"}}, {"y", "g"}, NULL, 0},
    {"log_softmax_backward", "g - exp(y) * r0", 1, {{ZM_RED_SUM, "g"}}, {"y", "g"}, NULL, 0},
    /* masked entries leave the max and the sum; a row with none kept yields 0 (r1 = 0 -> where) */
    {"masked_softmax", "where(m, exp(x - r0) / max(r1, 1e-30), 0)", 2,
     {{ZM_RED_MAX, "where(m, x, -3.0e38)"}, {ZM_RED_SUM, "where(m, exp(x - r0), 0)"}}, {"x", "m"}, NULL, 0},
    {"scale_mask_softmax", "exp(x * scale + m - r0) / r1", 2,
     {{ZM_RED_MAX, "x * scale + m"}, {ZM_RED_SUM, "exp(x * scale + m - r0)"}}, {"x", "m"}, "scale", 1.0f},
};
#define ZM__NDSL ((int)(sizeof zm__dsl / sizeof zm__dsl[0]))

static zm_kernel *zm__dsl_k[ZM__NDSL][2];
static pthread_mutex_t zm__dsl_mu = PTHREAD_MUTEX_INITIALIZER;

static int zm__dsl_find(const char *name) {
    for (int i = 0; name && i < ZM__NDSL; i++)
        if (!strcmp(zm__dsl[i].name, name)) return i;
    return -1;
}

/* caller holds zm__dsl_mu */
static zm_status zm__dsl_build(int i, int grad, zm_kernel **out) {
    if (zm__dsl_k[i][grad]) { *out = zm__dsl_k[i][grad]; return ZM_OK; }
    const zm__dsl_def *d = &zm__dsl[i];
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    for (int j = 0; j < 3 && d->in[j]; j++) o.inputs[j] = d->in[j];
    if (d->param) { o.params[0] = d->param; o.param_values[0] = d->pval; }
    zm_kernel *k = NULL;
    if (grad) {
        if (d->n_red) return zm__err(ZM_ERR_UNSUPPORTED, "%s: row-wise; its backward is a catalog kernel of its own", d->name);
        zm_kernel *f;
        ZM_TRY(zm__dsl_build(i, 0, &f));
        ZM_TRY(zm_kernel_grad(&k, f, 0));
    } else if (d->n_red) ZM_TRY(zm_map_reduce(&k, d->name, d->red, d->n_red, d->expr, &o));
    else ZM_TRY(zm_elementwise(&k, d->name, d->expr, &o));
    zm__dsl_k[i][grad] = k;
    *out = k;
    return ZM_OK;
}

zm_status zm_op_dsl_kernel(const char *name, int grad, zm_kernel **out) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_op_dsl_kernel: out is NULL");
    *out = NULL;
    int i = zm__dsl_find(name);
    if (i < 0) return zm__err(ZM_ERR_NOT_FOUND, "no expression-language catalog kernel '%s'", name ? name : "(null)");
    pthread_mutex_lock(&zm__dsl_mu);
    zm_status s = zm__dsl_build(i, grad != 0, out);
    pthread_mutex_unlock(&zm__dsl_mu);
    return s;
}

static zm_status zm__dsl_call(const char *name, int want_rows, int grad, zm_tensor *out, const zm_tensor *const *ins, int n_ins,
                              int set_param, float param) {
    int i = zm__dsl_find(name);
    if (i < 0) return zm__err(ZM_ERR_NOT_FOUND, "no expression-language catalog kernel '%s'", name ? name : "(null)");
    if ((zm__dsl[i].n_red > 0) != want_rows)
        return zm__err(ZM_ERR_INVALID, "%s is %s; call %s", name, want_rows ? "element-wise" : "row-wise",
                       want_rows ? "zm_op_unary" : "zm_op_rowwise");
    if (!out) return zm__err(ZM_ERR_INVALID, "%s: out is NULL", name);
    pthread_mutex_lock(&zm__dsl_mu); /* one caller at a time per process: parameters live in the shared kernel */
    zm_kernel *k = NULL;
    zm_status s = zm__dsl_build(i, grad, &k);
    if (!s && zm__dsl[i].param) s = zm_kernel_set_param(k, zm__dsl[i].param, set_param ? param : zm__dsl[i].pval);
    if (!s) s = zm_kernel_call(k, &out, 1, ins, n_ins);
    pthread_mutex_unlock(&zm__dsl_mu);
    return s;
}

zm_status zm_op_unary(const char *name, zm_tensor *out, const zm_tensor *x) {
    const zm_tensor *in[1] = {x};
    return zm__dsl_call(name, 0, 0, out, in, 1, 0, 0);
}
zm_status zm_op_unary_grad(const char *name, zm_tensor *dx, const zm_tensor *x, const zm_tensor *g) {
    const zm_tensor *in[2] = {x, g};
    return zm__dsl_call(name, 0, 1, dx, in, 2, 0, 0);
}
zm_status zm_op_rowwise(const char *name, zm_tensor *out, const zm_tensor *const *ins, int n_ins, float param) {
    return zm__dsl_call(name, 1, 0, out, ins, n_ins, 1, param);
}
