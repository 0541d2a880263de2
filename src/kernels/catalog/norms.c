/* Norms over the last axis: rmsnorm and layernorm (weight and bias optional),
 * their gradients for input, weight and bias, the fused residual forms
 * add_rmsnorm / add_layernorm (normed output and the sum), and the dropout
 * forms (sum = residual + dropout(x)). x/residual/outputs f32, f16 or bf16,
 * weights f32, statistics in float. CUDA in norms.cu. Checked against float64
 * references and finite differences by tests/test_catalog_norms.c. */
#include "kernels/catalog/common.h"

typedef struct {
    int kind; /* 0 rms, 1 layer */
    void *out, *sum;
    const void *x, *res;
    const float *w, *b;
    zm_dtype dt;
    int64_t C;
    float eps, p;
    uint64_t seed;
} zm__norm_ctx;

static void zm__norm_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__norm_ctx *c = cv;
    int64_t C = c->C;
    float *v = malloc(sizeof(float) * (size_t)C);
    if (!v) return; /* checked by the caller's scratch probe */
    float keep = 1.0f / (1.0f - c->p);
    for (int64_t r = r0; r < r1; r++) {
        int64_t o = r * C;
        double s = 0; /* row statistics in double: a long float running sum drifts */
        for (int64_t i = 0; i < C; i++) {
            float xv = zm__ld(c->x, c->dt, o + i);
            if (c->p > 0) xv = zm__philox_u01(c->seed, (uint64_t)(o + i)) >= c->p ? xv * keep : 0.0f;
            if (c->res) {
                xv += zm__ld(c->res, c->dt, o + i);
                xv = zm__rnd(c->dt, xv); /* the sum is materialised in the dtype */
            }
            v[i] = xv;
            s += xv;
            if (c->sum) zm__st(c->sum, c->dt, o + i, xv);
        }
        float mean = c->kind ? (float)(s / (double)C) : 0.0f;
        double q = 0;
        for (int64_t i = 0; i < C; i++) { float d = v[i] - mean; q += (double)d * d; }
        float rstd = 1.0f / sqrtf((float)(q / (double)C) + c->eps);
        for (int64_t i = 0; i < C; i++) {
            float y = (v[i] - mean) * rstd;
            if (c->w) y *= c->w[i];
            if (c->b) y += c->b[i];
            zm__st(c->out, c->dt, o + i, y);
        }
    }
    free(v);
}

static zm_status zm__norm(const char *n, int kind, zm_tensor *out, zm_tensor *sum, const zm_tensor *x,
                          const zm_tensor *res, const zm_tensor *w, const zm_tensor *b, float eps, float p,
                          uint64_t seed) {
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT_FLOAT, d));
    unsigned same = ZM_DT(x->dtype);
    ZM_TRY(zm__arg(n, "out", out, same, d));
    ZM_TRY(zm__same_shape(n, "out", out, "x", x));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    if (C < 1) return zm__err(ZM_ERR_SHAPE, "%s: empty last axis", n);
    if (res) { ZM_TRY(zm__arg(n, "residual", res, same, d)); ZM_TRY(zm__same_shape(n, "residual", res, "x", x)); }
    if (sum) { ZM_TRY(zm__arg(n, "sum", sum, same, d)); ZM_TRY(zm__same_shape(n, "sum", sum, "x", x)); }
    if (w) { ZM_TRY(zm__arg(n, "w", w, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "w", w, C)); }
    if (b) { ZM_TRY(zm__arg(n, "b", b, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "b", b, C)); }
    if (!(eps >= 0)) return zm__err(ZM_ERR_RANGE, "%s: eps %g", n, (double)eps);
    if (!(p >= 0 && p < 1)) return zm__err(ZM_ERR_RANGE, "%s: dropout p %g not in [0, 1)", n, (double)p);
    const float *wp = w ? w->data : NULL, *bp = b ? b->data : NULL;
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_norm(kind, out->data, sum ? sum->data : NULL, x->data, res ? res->data : NULL, wp, bp,
                                     x->dtype, R, C, eps, p, seed));
    void *probe = malloc(sizeof(float) * (size_t)C);
    if (!probe) return zm__err(ZM_ERR_NOMEM, "%s: row scratch of %lld floats", n, (long long)C);
    free(probe);
    zm__norm_ctx c = {kind, out->data, sum ? sum->data : NULL, x->data, res ? res->data : NULL, wp, bp, x->dtype, C, eps, p, seed};
    zm__par(R, C, zm__norm_rows, &c);
    return ZM_OK;
}

zm_status zm_op_rmsnorm(zm_tensor *out, const zm_tensor *x, const zm_tensor *w, float eps) {
    return zm__norm("rmsnorm", 0, out, NULL, x, NULL, w, NULL, eps, 0, 0);
}
zm_status zm_op_layernorm(zm_tensor *out, const zm_tensor *x, const zm_tensor *w, const zm_tensor *b, float eps) {
    return zm__norm("layernorm", 1, out, NULL, x, NULL, w, b, eps, 0, 0);
}
zm_status zm_op_add_rmsnorm(zm_tensor *out, zm_tensor *sum, const zm_tensor *x, const zm_tensor *res,
                            const zm_tensor *w, float eps) {
    if (!res) return zm__err(ZM_ERR_INVALID, "add_rmsnorm: residual is NULL");
    return zm__norm("add_rmsnorm", 0, out, sum, x, res, w, NULL, eps, 0, 0);
}
zm_status zm_op_add_layernorm(zm_tensor *out, zm_tensor *sum, const zm_tensor *x, const zm_tensor *res,
                              const zm_tensor *w, const zm_tensor *b, float eps) {
    if (!res) return zm__err(ZM_ERR_INVALID, "add_layernorm: residual is NULL");
    return zm__norm("add_layernorm", 1, out, sum, x, res, w, b, eps, 0, 0);
}
zm_status zm_op_rmsnorm_dropout(zm_tensor *out, zm_tensor *sum, const zm_tensor *x, const zm_tensor *res,
                                const zm_tensor *w, float p, uint64_t seed, float eps) {
    return zm__norm("rmsnorm_dropout", 0, out, sum, x, res, w, NULL, eps, p, seed);
}
zm_status zm_op_layernorm_dropout(zm_tensor *out, zm_tensor *sum, const zm_tensor *x, const zm_tensor *res,
                                  const zm_tensor *w, const zm_tensor *b, float p, uint64_t seed, float eps) {
    return zm__norm("layernorm_dropout", 1, out, sum, x, res, w, b, eps, p, seed);
}

// ---------------------------------------------------------------------------
/* Gradients (f32). With xh = (x - mean) * rstd and gw = g * w:
 *   rms:   dx = rstd * (gw - xh * mean(gw * xh))
 *   layer: dx = rstd * (gw - mean(gw) - xh * mean(gw * xh))
 *   dw = sum_rows g * xh, db = sum_rows g. */
typedef struct { int kind; float *dx, *dw, *db; const float *x, *w, *g; int64_t R, C; float eps; } zm__ng_ctx;

static void zm__ng_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__ng_ctx *c = cv;
    int64_t C = c->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * C, *g = c->g + r * C;
        float s = 0, q = 0;
        for (int64_t i = 0; i < C; i++) s += x[i];
        float mean = c->kind ? s / (float)C : 0.0f;
        for (int64_t i = 0; i < C; i++) q += (x[i] - mean) * (x[i] - mean);
        float rstd = 1.0f / sqrtf(q / (float)C + c->eps), a = 0, bsum = 0;
        for (int64_t i = 0; i < C; i++) {
            float gw = g[i] * (c->w ? c->w[i] : 1.0f), xh = (x[i] - mean) * rstd;
            a += gw * xh; bsum += gw;
        }
        a /= (float)C; bsum /= (float)C;
        for (int64_t i = 0; i < C; i++) {
            float gw = g[i] * (c->w ? c->w[i] : 1.0f), xh = (x[i] - mean) * rstd;
            c->dx[r * C + i] = rstd * (gw - (c->kind ? bsum : 0.0f) - xh * a);
        }
    }
}
/* dw, db: columns split across threads, each summing down the rows */
static void zm__ng_cols(void *cv, int64_t c0, int64_t c1) {
    const zm__ng_ctx *c = cv;
    int64_t C = c->C;
    for (int64_t j = c0; j < c1; j++) { if (c->dw) c->dw[j] = 0; if (c->db) c->db[j] = 0; }
    for (int64_t r = 0; r < c->R; r++) {
        const float *x = c->x + r * C, *g = c->g + r * C;
        float s = 0, q = 0;
        for (int64_t i = 0; i < C; i++) s += x[i];
        float mean = c->kind ? s / (float)C : 0.0f;
        for (int64_t i = 0; i < C; i++) q += (x[i] - mean) * (x[i] - mean);
        float rstd = 1.0f / sqrtf(q / (float)C + c->eps);
        for (int64_t j = c0; j < c1; j++) {
            if (c->dw) c->dw[j] += g[j] * (x[j] - mean) * rstd;
            if (c->db) c->db[j] += g[j];
        }
    }
}

static zm_status zm__norm_grad(const char *n, int kind, zm_tensor *dx, zm_tensor *dw, zm_tensor *db, const zm_tensor *x,
                               const zm_tensor *w, const zm_tensor *g, float eps) {
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "g", g, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "dx", dx, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "g", g, "x", x));
    ZM_TRY(zm__same_shape(n, "dx", dx, "x", x));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    if (C < 1) return zm__err(ZM_ERR_SHAPE, "%s: empty last axis", n);
    if (w) { ZM_TRY(zm__arg(n, "w", w, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "w", w, C)); }
    if (dw) { ZM_TRY(zm__arg(n, "dw", dw, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "dw", dw, C)); }
    if (db) { ZM_TRY(zm__arg(n, "db", db, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "db", db, C)); }
    float *dwp = dw ? dw->data : NULL, *dbp = db ? db->data : NULL;
    const float *wp = w ? w->data : NULL;
    if (d == ZM_CUDA) {
#ifdef ZM_HAVE_CUDA
        void *scratch = NULL; /* per-row mean and rstd, then per-chunk dw/db partials */
        ZM_TRY(zm_cuda_malloc(&scratch, sizeof(float) * (2 * (size_t)R + 2 * 64 * (size_t)C + 1)));
        zm_status s = zm_cuda_norm_grad(kind, dx->data, dwp, dbp, x->data, wp, g->data, R, C, eps, scratch);
        if (s == ZM_OK) s = zm_cuda_sync(); /* scratch is freed right after */
        zm_cuda_free(scratch);
        return s;
#else
        return zm__no_cuda(n);
#endif
    }
    zm__ng_ctx c = {kind, dx->data, dwp, dbp, x->data, wp, g->data, R, C, eps};
    zm__par(R, C, zm__ng_rows, &c);
    if (dwp || dbp) zm__par(C, R, zm__ng_cols, &c);
    return ZM_OK;
}

zm_status zm_op_rmsnorm_grad(zm_tensor *dx, zm_tensor *dw, const zm_tensor *x, const zm_tensor *w,
                             const zm_tensor *g, float eps) {
    return zm__norm_grad("rmsnorm_grad", 0, dx, dw, NULL, x, w, g, eps);
}
zm_status zm_op_layernorm_grad(zm_tensor *dx, zm_tensor *dw, zm_tensor *db, const zm_tensor *x, const zm_tensor *w,
                               const zm_tensor *g, float eps) {
    return zm__norm_grad("layernorm_grad", 1, dx, dw, db, x, w, g, eps);
}
