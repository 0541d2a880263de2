/* Transformer element-wise fusions: SwiGLU / GeGLU in two-input and split
 * ([gate | up] in one row) forms, with optional bias and their gradients;
 * silu_mul_residual; dropout with a counter-based RNG (Philox4x32-10) whose
 * mask is identical on CPU and CUDA. f32/f16/bf16 in and out, float math.
 * CUDA in transformer.cu. Checked by tests/test_catalog_transformer.c. */
#include "kernels/catalog/common.h"

static inline float zm__act(int act, float x) { return act ? zm__gelu(x) : zm__silu(x); }
static inline float zm__dact(int act, float x) {
    if (act) return 0.5f * erfcf(-x * 0.70710678118654752f) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
    float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

typedef struct {
    void *out; int64_t ors; const void *gate; int64_t grs; const void *up; int64_t urs;
    const float *bg, *bu; const void *res; void *dup; int64_t drs; const void *g;
    zm_dtype dt; int64_t F; int act, grad;
} zm__glu_ctx;

static void zm__glu_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__glu_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < c->F; i++) {
            float a = zm__ld(c->gate, c->dt, r * c->grs + i), u = zm__ld(c->up, c->dt, r * c->urs + i);
            if (c->bg) { a += c->bg[i]; u += c->bu[i]; }
            if (!c->grad) {
                float y = zm__act(c->act, a) * u;
                if (c->res) y += zm__ld(c->res, c->dt, r * c->F + i);
                zm__st(c->out, c->dt, r * c->ors + i, y);
            } else {
                float g = zm__ld(c->g, c->dt, r * c->F + i);
                zm__st(c->out, c->dt, r * c->ors + i, g * u * zm__dact(c->act, a));
                zm__st(c->dup, c->dt, r * c->drs + i, g * zm__act(c->act, a));
            }
        }
}

static zm_status zm__glu_check(const char *n, const zm_tensor *t, const char *what, zm_dtype dt, zm_device d,
                               int64_t rows, int64_t cols) {
    ZM_TRY(zm__arg(n, what, t, ZM_DT(dt), d));
    return zm__rows_cols(n, what, t, rows, cols);
}

static zm_status zm__glu_run(const char *n, zm__glu_ctx *c, int64_t R, zm_device d) {
    if (d == ZM_CUDA) {
        if (c->grad)
            ZM_CUDA_CALL(n, zm_cuda_glu_grad(c->out, c->ors, c->dup, c->drs, c->gate, c->grs, c->up, c->urs, c->g, c->dt, R,
                                             c->F, c->act));
        ZM_CUDA_CALL(n, zm_cuda_glu(c->out, c->ors, c->gate, c->grs, c->up, c->urs, c->bg, c->bu, c->res, c->dt, R, c->F,
                                    c->act));
    }
    zm__par(R, c->F, zm__glu_rows, c);
    return ZM_OK;
}

zm_status zm_op_glu(zm_tensor *out, const zm_tensor *gate, const zm_tensor *up, zm_glu_kind k) {
    const char *n = k ? "geglu" : "swiglu";
    if (!gate) return zm__err(ZM_ERR_INVALID, "%s: gate is NULL", n);
    zm_device d = gate->device;
    ZM_TRY(zm__arg(n, "gate", gate, ZM_DT_FLOAT, d));
    int64_t F = gate->shape[gate->ndim - 1], R = zm_tensor_rows(gate);
    ZM_TRY(zm__glu_check(n, up, "up", gate->dtype, d, R, F));
    ZM_TRY(zm__glu_check(n, out, "out", gate->dtype, d, R, F));
    zm__glu_ctx c = {out->data, F, gate->data, F, up->data, F, NULL, NULL, NULL, NULL, 0, NULL, gate->dtype, F, k != 0, 0};
    return zm__glu_run(n, &c, R, d);
}

zm_status zm_op_glu_split(zm_tensor *out, const zm_tensor *x, const zm_tensor *bias, zm_glu_kind k) {
    const char *n = bias ? (k ? "bias_geglu" : "bias_swiglu") : (k ? "geglu_split" : "swiglu_split");
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT_FLOAT, d));
    int64_t F2 = x->shape[x->ndim - 1], F = F2 / 2, R = zm_tensor_rows(x);
    if (F2 % 2) return zm__err(ZM_ERR_SHAPE, "%s: last dim %lld of x is odd ([gate | up] halves)", n, (long long)F2);
    ZM_TRY(zm__glu_check(n, out, "out", x->dtype, d, R, F));
    const float *bg = NULL, *bu = NULL;
    if (bias) {
        ZM_TRY(zm__arg(n, "bias", bias, ZM_DT(ZM_F32), d));
        ZM_TRY(zm__numel(n, "bias", bias, F2));
        bg = bias->data; bu = bg + F;
    }
    int64_t es = zm_dtype_block_bytes(x->dtype);
    zm__glu_ctx c = {out->data, F, x->data, F2, (char *)x->data + F * es, F2, bg, bu, NULL, NULL, 0, NULL, x->dtype, F, k != 0, 0};
    return zm__glu_run(n, &c, R, d);
}

zm_status zm_op_glu_grad(zm_tensor *dgate, zm_tensor *dup, const zm_tensor *gate, const zm_tensor *up,
                         const zm_tensor *g, zm_glu_kind k) {
    const char *n = k ? "geglu_grad" : "swiglu_grad";
    if (!gate) return zm__err(ZM_ERR_INVALID, "%s: gate is NULL", n);
    zm_device d = gate->device;
    ZM_TRY(zm__arg(n, "gate", gate, ZM_DT_FLOAT, d));
    zm_dtype dt = gate->dtype;
    int64_t F = gate->shape[gate->ndim - 1], R = zm_tensor_rows(gate);
    ZM_TRY(zm__glu_check(n, up, "up", dt, d, R, F));
    ZM_TRY(zm__glu_check(n, g, "g", dt, d, R, F));
    ZM_TRY(zm__glu_check(n, dgate, "dgate", dt, d, R, F));
    ZM_TRY(zm__glu_check(n, dup, "dup", dt, d, R, F));
    zm__glu_ctx c = {dgate->data, F, gate->data, F, up->data, F, NULL, NULL, NULL, dup->data, F, g->data, dt, F, k != 0, 1};
    return zm__glu_run(n, &c, R, d);
}

zm_status zm_op_glu_split_grad(zm_tensor *dx, const zm_tensor *x, const zm_tensor *g, zm_glu_kind k) {
    const char *n = k ? "geglu_split_grad" : "swiglu_split_grad";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT_FLOAT, d));
    zm_dtype dt = x->dtype;
    int64_t F2 = x->shape[x->ndim - 1], F = F2 / 2, R = zm_tensor_rows(x);
    if (F2 % 2) return zm__err(ZM_ERR_SHAPE, "%s: last dim %lld of x is odd", n, (long long)F2);
    ZM_TRY(zm__glu_check(n, g, "g", dt, d, R, F));
    ZM_TRY(zm__glu_check(n, dx, "dx", dt, d, R, F2));
    int64_t es = zm_dtype_block_bytes(dt);
    zm__glu_ctx c = {dx->data, F2, x->data, F2, (char *)x->data + F * es, F2, NULL, NULL, NULL,
                     (char *)dx->data + F * es, F2, g->data, dt, F, k != 0, 1};
    return zm__glu_run(n, &c, R, d);
}

zm_status zm_op_silu_mul_residual(zm_tensor *out, const zm_tensor *gate, const zm_tensor *up, const zm_tensor *res) {
    const char *n = "silu_mul_residual";
    if (!gate) return zm__err(ZM_ERR_INVALID, "%s: gate is NULL", n);
    zm_device d = gate->device;
    ZM_TRY(zm__arg(n, "gate", gate, ZM_DT_FLOAT, d));
    int64_t F = gate->shape[gate->ndim - 1], R = zm_tensor_rows(gate);
    ZM_TRY(zm__glu_check(n, up, "up", gate->dtype, d, R, F));
    ZM_TRY(zm__glu_check(n, res, "residual", gate->dtype, d, R, F));
    ZM_TRY(zm__glu_check(n, out, "out", gate->dtype, d, R, F));
    zm__glu_ctx c = {out->data, F, gate->data, F, up->data, F, NULL, NULL, res->data, NULL, 0, NULL, gate->dtype, F, 0, 0};
    return zm__glu_run(n, &c, R, d);
}

// ---------------------------------------------------------------------------
float zm_philox_uniform(uint64_t seed, uint64_t i) { return zm__philox_u01(seed, i); }

typedef struct { void *out; const void *x; zm_dtype dt; float p; uint64_t seed; } zm__drop_ctx;
static void zm__drop_range(void *cv, int64_t i0, int64_t i1) {
    const zm__drop_ctx *c = cv;
    float keep = 1.0f / (1.0f - c->p);
    for (int64_t i = i0; i < i1; i++)
        zm__st(c->out, c->dt, i, zm__philox_u01(c->seed, (uint64_t)i) >= c->p ? zm__ld(c->x, c->dt, i) * keep : 0.0f);
}

zm_status zm_op_dropout(zm_tensor *out, const zm_tensor *x, float p, uint64_t seed) {
    const char *n = "dropout";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT_FLOAT, d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(x->dtype), d));
    ZM_TRY(zm__same_shape(n, "out", out, "x", x));
    if (!(p >= 0 && p < 1)) return zm__err(ZM_ERR_RANGE, "%s: p %g not in [0, 1)", n, (double)p);
    int64_t N = zm_tensor_numel(x);
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_dropout(out->data, x->data, x->dtype, N, p, seed));
    zm__drop_ctx c = {out->data, x->data, x->dtype, p, seed};
    zm__par(N, 16, zm__drop_range, &c);
    return ZM_OK;
}
