/* Reductions over the last axis: sum (optionally Kahan-compensated), mean,
 * max, min, var, std (two-pass), argmax, argmin, small-k top-k. CPU here,
 * CUDA in reductions.cu. Checked against float64 references by
 * tests/test_catalog_reductions.c (build/tests/test_catalog_reductions). */
#include "kernels/catalog/common.h"

typedef struct {
    int op, ddof, k;
    const void *x;
    zm_dtype dt;
    int64_t cols;
    void *out;
    int32_t *idx;
} zm__red_ctx;

static double zm__row_reduce(const zm__red_ctx *c, int64_t r, int32_t *arg) {
    const void *x = c->x;
    int64_t C = c->cols, o = r * C;
    switch (c->op) {
    case ZM__R_SUM: case ZM__R_MEAN: {
        float s = 0;
        for (int64_t i = 0; i < C; i++) s += zm__ld(x, c->dt, o + i);
        return c->op == ZM__R_MEAN ? s / (float)C : s;
    }
    case ZM__R_SUM_KAHAN: {
        float s = 0, comp = 0;
        for (int64_t i = 0; i < C; i++) { /* Neumaier's variant: also exact when |x| > |s| */
            float v = zm__ld(x, c->dt, o + i), t = s + v;
            comp += fabsf(s) >= fabsf(v) ? (s - t) + v : (v - t) + s;
            s = t;
        }
        return s + comp;
    }
    case ZM__R_MAX: case ZM__R_MIN: case ZM__R_ARGMAX: case ZM__R_ARGMIN: {
        int mx = c->op == ZM__R_MAX || c->op == ZM__R_ARGMAX;
        float best = NAN;
        int32_t bi = 0;
        for (int64_t i = 0; i < C; i++) {
            float v = zm__ld(x, c->dt, o + i);
            if (isnan(v)) continue;
            if (isnan(best) || (mx ? v > best : v < best)) { best = v; bi = (int32_t)i; }
        }
        if (arg) *arg = bi;
        return best;
    }
    default: { /* var / std, two-pass in float */
        float s = 0;
        for (int64_t i = 0; i < C; i++) s += zm__ld(x, c->dt, o + i);
        float mean = s / (float)C, q = 0;
        for (int64_t i = 0; i < C; i++) { float d = zm__ld(x, c->dt, o + i) - mean; q += d * d; }
        float var = C - c->ddof > 0 ? q / (float)(C - c->ddof) : NAN;
        return c->op == ZM__R_STD ? sqrtf(var) : var;
    }
    }
}

static void zm__red_rows(void *cv, int64_t r0, int64_t r1) {
    zm__red_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++) {
        int32_t a = 0;
        double v = zm__row_reduce(c, r, &a);
        if (c->op == ZM__R_ARGMAX || c->op == ZM__R_ARGMIN) ((int32_t *)c->out)[r] = a;
        else ((float *)c->out)[r] = (float)v;
    }
}

static zm_status zm__reduce(const char *name, int op, zm_tensor *out, const zm_tensor *x, int ddof) {
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", name);
    zm_device d = x->device;
    ZM_TRY(zm__arg(name, "x", x, ZM_DT_FLOAT, d));
    int arg = op == ZM__R_ARGMAX || op == ZM__R_ARGMIN;
    ZM_TRY(zm__arg(name, "out", out, arg ? ZM_DT(ZM_I32) : ZM_DT(ZM_F32), d));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    if (C < 1) return zm__err(ZM_ERR_SHAPE, "%s: empty last axis", name);
    ZM_TRY(zm__numel(name, "out", out, R));
    if (ddof < 0 || ddof > 1) return zm__err(ZM_ERR_RANGE, "%s: ddof %d (0 or 1)", name, ddof);
    if (d == ZM_CUDA) ZM_CUDA_CALL(name, zm_cuda_reduce(op, out->data, x->data, x->dtype, R, C, ddof));
    zm__red_ctx c = {op, ddof, 0, x->data, x->dtype, C, out->data, NULL};
    zm__par(R, C, zm__red_rows, &c);
    return ZM_OK;
}

zm_status zm_op_sum(zm_tensor *out, const zm_tensor *x, int kahan) {
    return zm__reduce("sum", kahan ? ZM__R_SUM_KAHAN : ZM__R_SUM, out, x, 0);
}
zm_status zm_op_mean(zm_tensor *out, const zm_tensor *x) { return zm__reduce("mean", ZM__R_MEAN, out, x, 0); }
zm_status zm_op_max(zm_tensor *out, const zm_tensor *x) { return zm__reduce("max", ZM__R_MAX, out, x, 0); }
zm_status zm_op_min(zm_tensor *out, const zm_tensor *x) { return zm__reduce("min", ZM__R_MIN, out, x, 0); }
zm_status zm_op_var(zm_tensor *out, const zm_tensor *x, int ddof) { return zm__reduce("var", ZM__R_VAR, out, x, ddof); }
zm_status zm_op_std(zm_tensor *out, const zm_tensor *x, int ddof) { return zm__reduce("std", ZM__R_STD, out, x, ddof); }
zm_status zm_op_argmax(zm_tensor *out, const zm_tensor *x) { return zm__reduce("argmax", ZM__R_ARGMAX, out, x, 0); }
zm_status zm_op_argmin(zm_tensor *out, const zm_tensor *x) { return zm__reduce("argmin", ZM__R_ARGMIN, out, x, 0); }

// ---------------------------------------------------------------------------
/* (v, i) ranks before (w, j): larger value first, then lower index */
static inline int zm__before(float v, int64_t i, float w, int64_t j) { return v > w || (v == w && i < j); }

static void zm__topk_rows(void *cv, int64_t r0, int64_t r1) {
    zm__red_ctx *c = cv;
    int64_t C = c->cols;
    int k = c->k;
    for (int64_t r = r0; r < r1; r++) {
        float *vals = (float *)c->out + r * k;
        int32_t *ids = c->idx + r * k;
        int n = 0;
        for (int64_t i = 0; i < C; i++) { /* insertion into a sorted list of k */
            float v = zm__ld(c->x, c->dt, r * C + i);
            if (isnan(v)) continue;
            if (n == k && !zm__before(v, i, vals[k - 1], ids[k - 1])) continue;
            int p = n < k ? n++ : k - 1;
            while (p > 0 && zm__before(v, i, vals[p - 1], ids[p - 1])) { vals[p] = vals[p - 1]; ids[p] = ids[p - 1]; p--; }
            vals[p] = v; ids[p] = (int32_t)i;
        }
        for (int j = n; j < k; j++) { vals[j] = -INFINITY; ids[j] = -1; }
    }
}

zm_status zm_op_topk(zm_tensor *values, zm_tensor *indices, const zm_tensor *x) {
    const char *n = "topk";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT_FLOAT, d));
    ZM_TRY(zm__arg(n, "values", values, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "indices", indices, ZM_DT(ZM_I32), d));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x), k = values->shape[values->ndim - 1];
    if (k < 1 || k > 64 || k > C) return zm__err(ZM_ERR_RANGE, "%s: k = %lld (1..min(64, %lld))", n, (long long)k, (long long)C);
    ZM_TRY(zm__rows_cols(n, "values", values, R, k));
    ZM_TRY(zm__rows_cols(n, "indices", indices, R, k));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_topk(values->data, indices->data, x->data, x->dtype, R, C, (int)k));
    zm__red_ctx c = {0, 0, (int)k, x->data, x->dtype, C, values->data, indices->data};
    zm__par(R, C, zm__topk_rows, &c);
    return ZM_OK;
}
