/* MoE expert matmuls on quantized weights, fused: gather_qmm_swiglu (gate and
 * up projections of each token's chosen experts + SwiGLU in one pass) and
 * gather_qmm_combine (down projection + routing-weighted sum + residual).
 * Weights F32, Q8_0 or Q4_0 in ggml's layout ([E, rows, cols], rows of
 * blocks along cols). CPU dequantizes one weight row at a time through the
 * gguf reference dequantizers; CUDA in moe_qmm.cu. Checked against a
 * float64 chain of the unfused ops by tests/test_catalog_moe.c. */
#include "gguf/quant.h"
#include "kernels/catalog/common.h"

static void zm__dq_row(float *dst, const void *w, zm_dtype dt, int64_t row, int64_t cols) {
    int64_t rb = cols / zm_dtype_block_size(dt) * zm_dtype_block_bytes(dt);
    const char *p = (const char *)w + row * rb;
    if (dt == ZM_Q8_0) zm_dequantize_row_q8_0(dst, (const zm_block_q8_0 *)p, cols);
    else if (dt == ZM_Q4_0) zm_dequantize_row_q4_0(dst, (const zm_block_q4_0 *)p, cols);
    else memcpy(dst, p, sizeof(float) * (size_t)cols);
}
static float zm__dot(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef struct {
    float *out; const float *x; const void *w0, *w1; zm_dtype wdt; const int32_t *ids; const float *rw, *res;
    int k; int64_t rows, cols; int E;
} zm__qmm_ctx;

/* swiglu: one item per (token, slot) */
static void zm__qmm_swiglu(void *cv, int64_t s0, int64_t s1) {
    const zm__qmm_ctx *c = cv;
    float *wr = malloc(sizeof(float) * (size_t)c->cols);
    if (!wr) return;
    for (int64_t s = s0; s < s1; s++) {
        int e = c->ids[s];
        const float *x = c->x + s / c->k * c->cols;
        float *h = c->out + s * c->rows;
        if (e < 0 || e >= c->E) { for (int64_t f = 0; f < c->rows; f++) h[f] = 0; continue; }
        for (int64_t f = 0; f < c->rows; f++) {
            zm__dq_row(wr, c->w0, c->wdt, (int64_t)e * c->rows + f, c->cols);
            float g = zm__dot(wr, x, c->cols);
            zm__dq_row(wr, c->w1, c->wdt, (int64_t)e * c->rows + f, c->cols);
            h[f] = zm__silu(g) * zm__dot(wr, x, c->cols);
        }
    }
    free(wr);
}
/* combine: one item per token */
static void zm__qmm_combine(void *cv, int64_t t0, int64_t t1) {
    const zm__qmm_ctx *c = cv;
    float *wr = malloc(sizeof(float) * (size_t)c->cols);
    if (!wr) return;
    for (int64_t t = t0; t < t1; t++) {
        float *o = c->out + t * c->rows;
        for (int64_t d = 0; d < c->rows; d++) o[d] = c->res ? c->res[t * c->rows + d] : 0.0f;
        for (int j = 0; j < c->k; j++) {
            int e = c->ids[t * c->k + j];
            if (e < 0 || e >= c->E) continue;
            const float *h = c->x + (t * c->k + j) * c->cols;
            float wj = c->rw[t * c->k + j];
            for (int64_t d = 0; d < c->rows; d++) {
                zm__dq_row(wr, c->w0, c->wdt, (int64_t)e * c->rows + d, c->cols);
                o[d] += wj * zm__dot(wr, h, c->cols);
            }
        }
    }
    free(wr);
}

#define ZM__QW (ZM_DT(ZM_F32) | ZM_DT(ZM_Q8_0) | ZM_DT(ZM_Q4_0))
static zm_status zm__wcheck(const char *n, const char *what, const zm_tensor *w, zm_device d, int64_t rows, int64_t cols, int64_t *E) {
    ZM_TRY(zm__arg(n, what, w, ZM__QW, d));
    if (w->ndim != 3 || w->shape[1] != rows || w->shape[2] != cols)
        return zm__err(ZM_ERR_SHAPE, "%s: %s must be [experts, %lld, %lld]", n, what, (long long)rows, (long long)cols);
    *E = w->shape[0];
    if (*E < 1 || *E > INT32_MAX) return zm__err(ZM_ERR_SHAPE, "%s: %s has %lld experts", n, what, (long long)*E);
    return ZM_OK;
}

zm_status zm_op_gather_qmm_swiglu(zm_tensor *h, const zm_tensor *x, const zm_tensor *wg, const zm_tensor *wu, const zm_tensor *ids) {
    const char *n = "gather_qmm_swiglu";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "ids", ids, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "h", h, ZM_DT(ZM_F32), d));
    if (!wg || !wu) return zm__err(ZM_ERR_INVALID, "%s: weights are NULL", n);
    int64_t D = x->shape[x->ndim - 1], T = zm_tensor_rows(x), k = ids->shape[ids->ndim - 1], F = wg->ndim == 3 ? wg->shape[1] : -1, E, E2;
    ZM_TRY(zm__wcheck(n, "w_gate", wg, d, F, D, &E));
    ZM_TRY(zm__wcheck(n, "w_up", wu, d, F, D, &E2));
    if (wu->dtype != wg->dtype || E2 != E) return zm__err(ZM_ERR_SHAPE, "%s: w_gate and w_up differ in type or experts", n);
    ZM_TRY(zm__rows_cols(n, "ids", ids, T, k));
    ZM_TRY(zm__rows_cols(n, "h", h, T * k, F));
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_gather_qmm_swiglu(h->data, x->data, wg->data, wu->data, wg->dtype, ids->data, T, (int)k, F, D, (int)E));
    zm__qmm_ctx c = {h->data, x->data, wg->data, wu->data, wg->dtype, ids->data, NULL, NULL, (int)k, F, D, (int)E};
    zm__par(T * k, F * D, zm__qmm_swiglu, &c);
    return ZM_OK;
}

zm_status zm_op_gather_qmm_combine(zm_tensor *out, const zm_tensor *h, const zm_tensor *wd, const zm_tensor *ids,
                                   const zm_tensor *weights, const zm_tensor *res) {
    const char *n = "gather_qmm_combine";
    if (!h) return zm__err(ZM_ERR_INVALID, "%s: h is NULL", n);
    zm_device d = h->device;
    ZM_TRY(zm__arg(n, "h", h, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "ids", ids, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "weights", weights, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    if (!wd) return zm__err(ZM_ERR_INVALID, "%s: w_down is NULL", n);
    int64_t D = out->shape[out->ndim - 1], T = zm_tensor_rows(out), k = ids->shape[ids->ndim - 1], F = h->shape[h->ndim - 1], E;
    ZM_TRY(zm__wcheck(n, "w_down", wd, d, D, F, &E));
    ZM_TRY(zm__rows_cols(n, "ids", ids, T, k));
    ZM_TRY(zm__rows_cols(n, "weights", weights, T, k));
    ZM_TRY(zm__rows_cols(n, "h", h, T * k, F));
    if (res) { ZM_TRY(zm__arg(n, "residual", res, ZM_DT(ZM_F32), d)); ZM_TRY(zm__rows_cols(n, "residual", res, T, D)); }
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_gather_qmm_combine(out->data, h->data, wd->data, wd->dtype, ids->data, weights->data,
                                                   res ? res->data : NULL, T, (int)k, D, F, (int)E));
    zm__qmm_ctx c = {out->data, h->data, wd->data, NULL, wd->dtype, ids->data, weights->data, res ? res->data : NULL, (int)k, D, F, (int)E};
    zm__par(T, k * D * F, zm__qmm_combine, &c);
    return ZM_OK;
}
