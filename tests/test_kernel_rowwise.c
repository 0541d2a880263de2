/* Row-wise kernels written in the DSL, each ONE zm_map_reduce call: softmax,
 * log_softmax, rmsnorm (weight), layernorm (weight + bias), logsumexp (one
 * value per row), plus zm_reduce sum/max/min/mean, at awkward widths 1, 7,
 * 4096 and 151936 (a vocabulary row), f32 and f16/bf16, JIT and interpreter,
 * against float64 references. Run: build/tests/test_kernel_rowwise */
#include "harness.h"
#include "kernel_util.h"
#include "zmlx/kernel.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { SOFTMAX, LOG_SOFTMAX, RMSNORM, LAYERNORM, LOGSUMEXP, N_OPS };
static const char *op_name[N_OPS] = {"softmax", "log_softmax", "rmsnorm", "layernorm", "logsumexp"};
static const int64_t widths[4] = {1, 7, 4096, 151936};

/* The kernels, as a user writes them. */
static zm_status make_op(zm_kernel **k, int op, int interp) {
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    o.force_interpreter = interp;
    switch (op) {
    case SOFTMAX: {
        zm_reduction r[2] = {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}};
        return zm_map_reduce(k, "softmax", r, 2, "exp(x - r0) / r1", &o);
    }
    case LOG_SOFTMAX: {
        zm_reduction r[2] = {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}};
        return zm_map_reduce(k, "log_softmax", r, 2, "x - r0 - log(r1)", &o);
    }
    case RMSNORM: {
        o.inputs[0] = "x"; o.inputs[1] = "w";
        o.params[0] = "eps"; o.param_values[0] = 1e-6f;
        zm_reduction r[1] = {{ZM_RED_MEAN, "x * x"}};
        return zm_map_reduce(k, "rmsnorm", r, 1, "x * rsqrt(r0 + eps) * w", &o);
    }
    case LAYERNORM: {
        o.inputs[0] = "x"; o.inputs[1] = "w"; o.inputs[2] = "b";
        o.params[0] = "eps"; o.param_values[0] = 1e-5f;
        zm_reduction r[2] = {{ZM_RED_MEAN, "x"}, {ZM_RED_MEAN, "(x - r0) ** 2"}};
        return zm_map_reduce(k, "layernorm", r, 2, "(x - r0) * rsqrt(r1 + eps) * w + b", &o);
    }
    default: {
        zm_reduction r[2] = {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}};
        return zm_map_reduce(k, "logsumexp", r, 2, "r0 + log(r1)", &o);
    }
    }
}

/* float64 reference of one row. */
static void ref_row(int op, const float *x, const float *w, const float *b, int64_t n, double *y) {
    double mx = -INFINITY, s = 0, mean = 0, var = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, x[i]);
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - mx);
    for (int64_t i = 0; i < n; i++) { mean += x[i]; ss += (double)x[i] * x[i]; }
    mean /= n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    switch (op) {
    case SOFTMAX: for (int64_t i = 0; i < n; i++) y[i] = exp(x[i] - mx) / s; break;
    case LOG_SOFTMAX: for (int64_t i = 0; i < n; i++) y[i] = x[i] - mx - log(s); break;
    case RMSNORM: for (int64_t i = 0; i < n; i++) y[i] = x[i] / sqrt(ss / n + 1e-6) * w[i]; break;
    case LAYERNORM: for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) / sqrt(var + 1e-5) * w[i] + b[i]; break;
    default: y[0] = mx + log(s); break;
    }
}

/* One op at one width and dtype; JIT (interp = 0) or interpreter. */
static void check_op(zm_kernel *k, int op, int64_t cols, zm_dtype dt, const char *mode) {
    int64_t rows = cols > 10000 ? 2 : 3, n = rows * cols, shape[2] = {rows, cols};
    float *x = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)cols), *b = malloc(sizeof(float) * (size_t)cols);
    zt_fill_normal(x, n, 3.0);
    zt_fill_uniform(w, cols, 0.5, 1.5);
    zt_fill_uniform(b, cols, -1, 1);
    zm_tensor *in[3] = {kt_make(dt, 2, shape, x), kt_make(dt, 1, &cols, w), kt_make(dt, 1, &cols, b)};
    int nin = op == RMSNORM ? 2 : op == LAYERNORM ? 3 : 1;
    int per_row = op == LOGSUMEXP;
    zm_tensor *out = per_row ? kt_out(dt, 1, &rows) : kt_out(dt, 2, shape);
    ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, nin));
    float *y = kt_read(out);
    int64_t m = per_row ? rows : n;
    double *ref = malloc(sizeof(double) * (size_t)m);
    for (int64_t r = 0; r < rows; r++) ref_row(op, x + r * cols, w, b, cols, ref + (per_row ? r : r * cols));
    char what[128];
    snprintf(what, sizeof what, "%s %s %s width %lld", mode, op_name[op], zm_dtype_name(dt), (long long)cols);
    /* f32: the row sums carry ~sqrt(n) ulp; softmax of 151936 terms is tiny
     * per element, so compare relative to each value with a small floor */
    double tol = dt == ZM_F32 ? (cols > 10000 ? 1e-4 : 3e-5) : kt_tol(dt) * 1.5;
    kt_close(what, y, ref, m, tol, op == SOFTMAX ? 1e-3 : 1e-2);
    free(y); free(ref); free(x); free(w); free(b);
    for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
    zm_tensor_free(out);
}

static void test_rowwise_f32(void) {
    for (int op = 0; op < N_OPS; op++) {
        zm_kernel *k = NULL;
        ZT_OK(make_op(&k, op, 0));
        if (!k) continue;
        ZT_CHECK(!strcmp(zm_kernel_cpu_mode(k), "jit"), "%s: not compiled", op_name[op]);
        for (int wi = 0; wi < 4; wi++) check_op(k, op, widths[wi], ZM_F32, "jit");
        zm_kernel_free(k);
    }
}

static void test_rowwise_half(void) {
    for (int op = 0; op < N_OPS; op++) {
        zm_kernel *k = NULL;
        ZT_OK(make_op(&k, op, 0));
        if (!k) continue;
        check_op(k, op, 7, ZM_F16, "jit");
        check_op(k, op, 4096, ZM_F16, "jit");
        check_op(k, op, 4096, ZM_BF16, "jit");
        zm_kernel_free(k);
    }
}

static void test_rowwise_interp(void) {
    for (int op = 0; op < N_OPS; op++) {
        zm_kernel *k = NULL;
        ZT_OK(make_op(&k, op, 1));
        if (!k) continue;
        ZT_CHECK(!strcmp(zm_kernel_cpu_mode(k), "interp"), "%s: interpreter not used", op_name[op]);
        for (int wi = 0; wi < 4; wi++) check_op(k, op, widths[wi], ZM_F32, "interp");
        zm_kernel_free(k);
    }
}

/* zm_reduce: one value per row. */
static void test_reduce(void) {
    const zm_red_op ops[4] = {ZM_RED_SUM, ZM_RED_MAX, ZM_RED_MIN, ZM_RED_MEAN};
    const char *names[4] = {"sum", "max", "min", "mean"};
    for (int o = 0; o < 4; o++) {
        zm_kernel *k = NULL;
        ZT_OK(zm_reduce(&k, names[o], ops[o], "x * x - y", NULL));
        if (!k) continue;
        for (int wi = 0; wi < 4; wi++) {
            int64_t cols = widths[wi], rows = 5, n = rows * cols, shape[2] = {rows, cols};
            float *x = malloc(sizeof(float) * (size_t)n), y[1] = {0.25f};
            zt_fill_uniform(x, n, -2, 2);
            int64_t one = 1;
            zm_tensor *in[2] = {kt_make(ZM_F32, 2, shape, x), kt_make(ZM_F32, 1, &one, y)};
            zm_tensor *out = kt_out(ZM_F32, 1, &rows);
            ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, 2));
            float *r = kt_read(out);
            double ref[5];
            for (int64_t row = 0; row < rows; row++) {
                double acc = ops[o] == ZM_RED_MAX ? -INFINITY : ops[o] == ZM_RED_MIN ? INFINITY : 0;
                for (int64_t i = 0; i < cols; i++) {
                    double v = (double)x[row * cols + i] * x[row * cols + i] - y[0];
                    acc = ops[o] == ZM_RED_MAX ? fmax(acc, v) : ops[o] == ZM_RED_MIN ? fmin(acc, v) : acc + v;
                }
                ref[row] = ops[o] == ZM_RED_MEAN ? acc / cols : acc;
            }
            char what[64];
            snprintf(what, sizeof what, "reduce %s width %lld", names[o], (long long)cols);
            kt_close(what, r, ref, rows, 1e-4, 1e-2);
            free(r); free(x);
            zm_tensor_free(in[0]); zm_tensor_free(in[1]); zm_tensor_free(out);
        }
        zm_kernel_free(k);
    }
}

static void test_rowwise_bad(void) {
    zm_kernel *k = (zm_kernel *)&k;
    zm_reduction r[1] = {{ZM_RED_SUM, "x"}};
    ZT_CHECK(zm_map_reduce(&k, "m", r, 0, "x", NULL) != ZM_OK && !k, "0 reductions accepted");
    ZT_CHECK(zm_map_reduce(&k, "m", r, 1, "x / r1", NULL) == ZM_ERR_PARSE && !k, "r1 accepted with one reduction");
    zm_reduction self[1] = {{ZM_RED_SUM, "x + r0"}};
    ZT_CHECK(zm_map_reduce(&k, "m", self, 1, "x", NULL) == ZM_ERR_PARSE && !k, "r0 used inside its own reduction");
    zm_reduction badop[1] = {{(zm_red_op)9, "x"}};
    ZT_CHECK(zm_map_reduce(&k, "m", badop, 1, "x", NULL) == ZM_ERR_INVALID && !k, "bad reduction op accepted");
    ZT_CHECK(zm_reduce(&k, "m", ZM_RED_SUM, "1 + 2", NULL) == ZM_ERR_INVALID && !k, "reduction with no input accepted");
    ZT_OK(make_op(&k, SOFTMAX, 0));
    if (!k) return;
    int64_t shape[2] = {3, 8}, wrong[2] = {3, 7};
    zm_tensor *x = kt_out(ZM_F32, 2, shape), *y = kt_out(ZM_F32, 2, wrong);
    ZT_CHECK(zm_kernel_call(k, &y, 1, (const zm_tensor *const *)&x, 1) == ZM_ERR_SHAPE, "wrong output shape accepted");
    zm_kernel *g = NULL;
    ZT_CHECK(zm_kernel_grad(&g, k, 0) == ZM_ERR_UNSUPPORTED && !g, "grad of a row-wise kernel accepted");
    zm_tensor_free(x); zm_tensor_free(y);
    zm_kernel_free(k);
}

/* Rows of width 0: reductions of nothing give their identities. */
static void test_rowwise_empty(void) {
    zm_kernel *lse = NULL, *sum = NULL;
    ZT_OK(make_op(&lse, LOGSUMEXP, 0));
    ZT_OK(zm_reduce(&sum, "sum", ZM_RED_SUM, "x", NULL));
    if (!lse || !sum) { zm_kernel_free(lse); zm_kernel_free(sum); return; }
    int64_t shape[2] = {3, 0}, rows = 3;
    zm_tensor *x = kt_out(ZM_F32, 2, shape), *y = kt_out(ZM_F32, 1, &rows);
    ZT_OK(zm_kernel_call(sum, &y, 1, (const zm_tensor *const *)&x, 1));
    for (int i = 0; i < 3; i++) ZT_CHECK(((float *)y->data)[i] == 0.0f, "sum of an empty row: %g", ((float *)y->data)[i]);
    ZT_OK(zm_kernel_call(lse, &y, 1, (const zm_tensor *const *)&x, 1));
    for (int i = 0; i < 3; i++) ZT_CHECK(isinf(((float *)y->data)[i]) && ((float *)y->data)[i] < 0, "logsumexp of an empty row: %g", ((float *)y->data)[i]);
    zm_tensor_free(x); zm_tensor_free(y);
    zm_kernel_free(lse); zm_kernel_free(sum);
}

int main(void) {
    ZT_RUN(test_rowwise_empty);
    ZT_RUN(test_rowwise_f32);
    ZT_RUN(test_rowwise_half);
    ZT_RUN(test_rowwise_interp);
    ZT_RUN(test_reduce);
    ZT_RUN(test_rowwise_bad);
    return zt_finish();
}
