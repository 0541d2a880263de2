/* Rotary position embeddings: NeoX halves or GPT-J interleaved pairs, GQA
 * (q and k heads in one call), partial rotary (only the leading rot dims),
 * linear scaling and YaRN (as llama.cpp applies it: ramp between
 * interpolated and extrapolated angles over the correction dims, magnitude
 * scale 1 + 0.1 ln(factor)), and rope fused with the KV-cache write. Angles
 * are computed in double on both backends (a float angle at position 32k is
 * off by ~1e-3 rad). CUDA in rope.cu. Checked against float64 references
 * by tests/test_catalog_rope.c. */
#include "kernels/catalog/common.h"

static zm_status zm__rope_params(const char *n, const zm_rope_opts *o, int64_t D, zm__rope_p *p) {
    zm_rope_opts z = {0};
    if (!o) o = &z;
    p->rot = o->rot_dims ? o->rot_dims : (int)D;
    if (p->rot < 2 || p->rot > D || p->rot % 2)
        return zm__err(ZM_ERR_RANGE, "%s: rot_dims %d must be even and in 2..head_dim %lld", n, p->rot, (long long)D);
    p->interleaved = o->interleaved != 0;
    p->base = o->base > 0 ? o->base : 10000.0;
    p->freq_scale = o->freq_scale > 0 ? o->freq_scale : 1.0;
    p->mscale = o->attn_factor > 0 ? o->attn_factor : 1.0;
    p->yarn = o->yarn_factor > 1;
    p->corr0 = p->corr1 = 0;
    if (p->yarn) {
        if (o->yarn_orig_ctx < 1) return zm__err(ZM_ERR_RANGE, "%s: YaRN needs yarn_orig_ctx > 0", n);
        double fast = o->yarn_beta_fast > 0 ? o->yarn_beta_fast : 32, slow = o->yarn_beta_slow > 0 ? o->yarn_beta_slow : 1;
        double nd = p->rot, ctx = o->yarn_orig_ctx, lb = 2 * log(p->base), pi2 = 2 * 3.14159265358979323846;
        double lo = floor(nd * log(ctx / (fast * pi2)) / lb), hi = ceil(nd * log(ctx / (slow * pi2)) / lb);
        p->corr0 = lo > 0 ? lo : 0;
        p->corr1 = hi < nd - 1 ? hi : nd - 1;
        p->freq_scale = 1.0 / o->yarn_factor;
        p->mscale *= 1.0 + 0.1 * log(o->yarn_factor);
    }
    return ZM_OK;
}

/* cos and sin (times mscale) of pair i at position pos */
static void zm__rope_cs(const zm__rope_p *p, int64_t pos, int i, float *c, float *s) {
    double fr = pow(p->base, -2.0 * i / p->rot), ext = (double)pos * fr, th = ext * p->freq_scale;
    if (p->yarn) {
        double y = (i - p->corr0) / fmax(0.001, p->corr1 - p->corr0), ramp = 1 - fmin(1, fmax(0, y));
        th = th * (1 - ramp) + ext * ramp;
    }
    *c = (float)(cos(th) * p->mscale);
    *s = (float)(sin(th) * p->mscale);
}

static void zm__rope_head(float *o, const float *x, int64_t D, int64_t pos, const zm__rope_p *p) {
    int half = p->rot / 2;
    for (int i = 0; i < half; i++) {
        float c, s;
        zm__rope_cs(p, pos, i, &c, &s);
        int a = p->interleaved ? 2 * i : i, b = p->interleaved ? 2 * i + 1 : i + half;
        float x0 = x[a], x1 = x[b];
        o[a] = x0 * c - x1 * s;
        o[b] = x0 * s + x1 * c;
    }
    for (int64_t i = p->rot; i < D; i++) o[i] = x[i];
}

static zm_status zm__rope_shape(const char *n, const char *what, const zm_tensor *t, zm_device d, int64_t *T, int64_t *H, int64_t *D) {
    ZM_TRY(zm__arg(n, what, t, ZM_DT(ZM_F32), d));
    if (t->ndim < 2 || t->ndim > 3) return zm__err(ZM_ERR_SHAPE, "%s: %s must be [T, H, D] or [T, D]", n, what);
    *T = t->shape[0]; *D = t->shape[t->ndim - 1]; *H = t->ndim == 3 ? t->shape[1] : 1;
    return ZM_OK;
}

static zm_status zm__rope_run(const char *n, float *qo, const float *q, int64_t Hq, float *ko, const float *k, int64_t Hk,
                              float *vc, const float *v, int64_t S, const int32_t *pos, int64_t T, int64_t D,
                              const zm__rope_p *p, zm_device d) {
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_rope(qo, q, pos, T, Hq, D, *p, ko, k, Hk, vc, v, S));
    for (int64_t t = 0; t < T; t++) {
        for (int64_t h = 0; h < Hq; h++) zm__rope_head(qo + (t * Hq + h) * D, q + (t * Hq + h) * D, D, pos[t], p);
        if (!k) continue;
        int64_t row = S ? pos[t] : t; /* cache write: row = position */
        if (S && (row < 0 || row >= S)) continue;
        for (int64_t h = 0; h < Hk; h++) {
            zm__rope_head(ko + (row * Hk + h) * D, k + (t * Hk + h) * D, D, pos[t], p);
            if (vc) memcpy(vc + (row * Hk + h) * D, v + (t * Hk + h) * D, sizeof(float) * (size_t)D);
        }
    }
    return ZM_OK;
}

zm_status zm_op_rope(zm_tensor *out, const zm_tensor *x, const zm_tensor *pos, const zm_rope_opts *o) {
    const char *n = "rope";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    int64_t T, H, D;
    ZM_TRY(zm__rope_shape(n, "x", x, x->device, &T, &H, &D));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), x->device));
    ZM_TRY(zm__same_shape(n, "out", out, "x", x));
    ZM_TRY(zm__arg(n, "pos", pos, ZM_DT(ZM_I32), x->device));
    ZM_TRY(zm__numel(n, "pos", pos, T));
    zm__rope_p p;
    ZM_TRY(zm__rope_params(n, o, D, &p));
    return zm__rope_run(n, out->data, x->data, H, NULL, NULL, 0, NULL, NULL, 0, pos->data, T, D, &p, x->device);
}

zm_status zm_op_rope_qk(zm_tensor *qo, zm_tensor *ko, const zm_tensor *q, const zm_tensor *k, const zm_tensor *pos,
                        const zm_rope_opts *o) {
    const char *n = "rope_qk";
    if (!q || !k) return zm__err(ZM_ERR_INVALID, "%s: q or k is NULL", n);
    zm_device d = q->device;
    int64_t T, Hq, D, Tk, Hk, Dk;
    ZM_TRY(zm__rope_shape(n, "q", q, d, &T, &Hq, &D));
    ZM_TRY(zm__rope_shape(n, "k", k, d, &Tk, &Hk, &Dk));
    if (Tk != T || Dk != D) return zm__err(ZM_ERR_SHAPE, "%s: q and k differ in tokens or head dim", n);
    if (Hk < 1 || Hq % Hk) return zm__err(ZM_ERR_SHAPE, "%s: %lld q heads not a multiple of %lld kv heads", n, (long long)Hq, (long long)Hk);
    ZM_TRY(zm__arg(n, "q_out", qo, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "k_out", ko, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "q_out", qo, "q", q));
    ZM_TRY(zm__same_shape(n, "k_out", ko, "k", k));
    ZM_TRY(zm__arg(n, "pos", pos, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__numel(n, "pos", pos, T));
    zm__rope_p p;
    ZM_TRY(zm__rope_params(n, o, D, &p));
    return zm__rope_run(n, qo->data, q->data, Hq, ko->data, k->data, Hk, NULL, NULL, 0, pos->data, T, D, &p, d);
}

zm_status zm_op_rope_kv_write(zm_tensor *qo, zm_tensor *kc, zm_tensor *vc, const zm_tensor *q, const zm_tensor *k,
                              const zm_tensor *v, const zm_tensor *pos, const zm_rope_opts *o) {
    const char *n = "rope_kv_write";
    if (!q || !k || !v || !kc || !vc) return zm__err(ZM_ERR_INVALID, "%s: NULL tensor", n);
    zm_device d = q->device;
    int64_t T, Hq, D, Tk, Hk, Dk, S, Hc, Dc;
    ZM_TRY(zm__rope_shape(n, "q", q, d, &T, &Hq, &D));
    ZM_TRY(zm__rope_shape(n, "k", k, d, &Tk, &Hk, &Dk));
    if (Tk != T || Dk != D) return zm__err(ZM_ERR_SHAPE, "%s: q and k differ in tokens or head dim", n);
    ZM_TRY(zm__arg(n, "v", v, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "v", v, "k", k));
    ZM_TRY(zm__arg(n, "q_out", qo, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "q_out", qo, "q", q));
    ZM_TRY(zm__rope_shape(n, "k_cache", kc, d, &S, &Hc, &Dc));
    if (Hc != Hk || Dc != D) return zm__err(ZM_ERR_SHAPE, "%s: k_cache must be [S, %lld, %lld]", n, (long long)Hk, (long long)D);
    ZM_TRY(zm__arg(n, "v_cache", vc, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "v_cache", vc, "k_cache", kc));
    ZM_TRY(zm__arg(n, "pos", pos, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__numel(n, "pos", pos, T));
    if (S < 1) return zm__err(ZM_ERR_SHAPE, "%s: empty cache", n);
    zm__rope_p p;
    ZM_TRY(zm__rope_params(n, o, D, &p));
    return zm__rope_run(n, qo->data, q->data, Hq, kc->data, k->data, Hk, vc->data, v->data, S, pos->data, T, D, &p, d);
}
