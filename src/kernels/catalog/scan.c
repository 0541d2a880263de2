/* Scans over the last axis: cumsum (inclusive or exclusive) with its
 * gradient (the reverse scan of g), cumprod. f32, sequential float
 * accumulation per row on the CPU; CUDA in scan.cu. Checked against float64
 * references and finite differences by tests/test_catalog_scan.c. */
#include "kernels/catalog/common.h"

typedef struct { float *out; const float *x; int64_t C; int excl, rev, prod; } zm__scan_ctx;

static void zm__scan_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__scan_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * c->C;
        float *o = c->out + r * c->C, acc = c->prod ? 1.0f : 0.0f;
        for (int64_t j = 0; j < c->C; j++) {
            int64_t i = c->rev ? c->C - 1 - j : j;
            float v = x[i];
            if (c->excl) { o[i] = acc; acc += v; }
            else { acc = c->prod ? acc * v : acc + v; o[i] = acc; }
        }
    }
}

static zm_status zm__scan(const char *n, zm_tensor *out, const zm_tensor *x, int excl, int rev, int prod) {
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "out", out, "x", x));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    if (d == ZM_CUDA) {
        if (prod) ZM_CUDA_CALL(n, zm_cuda_cumprod(out->data, x->data, R, C));
        ZM_CUDA_CALL(n, zm_cuda_cumsum(out->data, x->data, R, C, excl, rev));
    }
    zm__scan_ctx c = {out->data, x->data, C, excl, rev, prod};
    zm__par(R, C, zm__scan_rows, &c);
    return ZM_OK;
}

zm_status zm_op_cumsum(zm_tensor *out, const zm_tensor *x, int exclusive) {
    return zm__scan("cumsum", out, x, exclusive != 0, 0, 0);
}
zm_status zm_op_cumsum_grad(zm_tensor *dx, const zm_tensor *g, int exclusive) {
    return zm__scan("cumsum_grad", dx, g, exclusive != 0, 1, 0);
}
zm_status zm_op_cumprod(zm_tensor *out, const zm_tensor *x) { return zm__scan("cumprod", out, x, 0, 0, 1); }
