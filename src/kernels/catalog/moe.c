/* MoE routing and data movement: softmax top-k gating (renormalise, expert
 * bias that steers the choice only), Mixtral top-2, DeepSeek-V3 sigmoid
 * router (group-limited top-k, score-correction bias), stable dispatch of
 * (token, slot) rows by expert, and the weighted combine (f32 accumulation,
 * or the stock graph's exact per-op rounding in f16/bf16). The expert
 * matmuls are in moe_qmm.c. CUDA in moe.cu. Checked against float64
 * references by tests/test_catalog_moe.c. */
#include "kernels/catalog/common.h"

/* best-first insertion of (v, i) into a list of k: larger value, then lower index */
static void zm__ins(float *v, int32_t *id, int *n, int k, float x, int32_t i) {
    if (*n == k && !(x > v[k - 1] || (x == v[k - 1] && i < id[k - 1]))) return;
    int p = *n < k ? (*n)++ : k - 1;
    while (p > 0 && (x > v[p - 1] || (x == v[p - 1] && i < id[p - 1]))) { v[p] = v[p - 1]; id[p] = id[p - 1]; p--; }
    v[p] = x; id[p] = i;
}

typedef struct {
    int kind; float *w; int32_t *ids; const void *lg; zm_dtype dt; const float *bias;
    int E, k, renorm, ng, tg; float scale;
} zm__route_ctx;

static void zm__route_rows(void *cv, int64_t t0, int64_t t1) {
    const zm__route_ctx *c = cv;
    int E = c->E, k = c->k;
    float *p = malloc(sizeof(float) * (size_t)E * 2), sel[64];
    if (!p) return;
    float *ch = p + E;
    for (int64_t t = t0; t < t1; t++) {
        float *w = c->w + t * k;
        int32_t *id = c->ids + t * k;
        int n = 0;
        float m = -INFINITY, s = 0;
        for (int e = 0; e < E; e++) { p[e] = zm__ld(c->lg, c->dt, t * E + e); m = fmaxf(m, p[e]); }
        if (c->kind == 0) { /* softmax; choose on logits (monotone) unless a bias steers the choice */
            for (int e = 0; e < E; e++) { ch[e] = p[e]; p[e] = expf(p[e] - m); s += p[e]; }
            for (int e = 0; e < E; e++) p[e] /= s;
            for (int e = 0; e < E; e++) zm__ins(sel, id, &n, k, c->bias ? p[e] + c->bias[e] : ch[e], e);
            float tot = 0;
            for (int j = 0; j < k; j++) { w[j] = p[id[j]]; tot += w[j]; }
            if (c->renorm) for (int j = 0; j < k; j++) w[j] /= tot;
        } else if (c->kind == 1) { /* top-2 of the logits, softmax over the pair */
            for (int e = 0; e < E; e++) zm__ins(sel, id, &n, 2, p[e], e);
            float e1 = expf(sel[1] - sel[0]);
            w[0] = 1.0f / (1.0f + e1); w[1] = e1 / (1.0f + e1);
        } else { /* DeepSeek-V3 */
            int gs = E / c->ng;
            for (int e = 0; e < E; e++) { p[e] = 1.0f / (1.0f + expf(-p[e])); ch[e] = p[e] + (c->bias ? c->bias[e] : 0.0f); }
            float gsc[64];
            int32_t gid[64], gn = 0;
            for (int g = 0; g < c->ng; g++) { /* group score: sum of its two best choices */
                float b0 = -INFINITY, b1 = -INFINITY;
                for (int e = g * gs; e < (g + 1) * gs; e++) {
                    if (ch[e] > b0) { b1 = b0; b0 = ch[e]; } else if (ch[e] > b1) b1 = ch[e];
                }
                zm__ins(gsc, gid, &gn, c->tg, gs >= 2 ? b0 + b1 : b0, g);
            }
            for (int gi = 0; gi < c->tg; gi++)
                for (int e = gid[gi] * gs; e < (gid[gi] + 1) * gs; e++) zm__ins(sel, id, &n, k, ch[e], e);
            /* ids come out best-first, but the groups were visited out of order: zm__ins keeps the order */
            float tot = 0;
            for (int j = 0; j < k; j++) { w[j] = p[id[j]]; tot += w[j]; }
            for (int j = 0; j < k; j++) w[j] = (c->renorm ? w[j] / (tot + 1e-20f) : w[j]) * c->scale;
        }
    }
    free(p);
}

static zm_status zm__route(const char *n, int kind, zm_tensor *w, zm_tensor *ids, const zm_tensor *lg, const zm_tensor *bias,
                           int renorm, int ng, int tg, float scale) {
    if (!lg) return zm__err(ZM_ERR_INVALID, "%s: logits is NULL", n);
    zm_device d = lg->device;
    ZM_TRY(zm__arg(n, "logits", lg, ZM_DT_FLOAT, d));
    ZM_TRY(zm__arg(n, "weights", w, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "ids", ids, ZM_DT(ZM_I32), d));
    int64_t E = lg->shape[lg->ndim - 1], T = zm_tensor_rows(lg), k = w->shape[w->ndim - 1];
    if (E < 1 || E > 4096) return zm__err(ZM_ERR_RANGE, "%s: %lld experts (1..4096)", n, (long long)E);
    if (k < 1 || k > 64 || k > E) return zm__err(ZM_ERR_RANGE, "%s: k = %lld (1..min(64, experts %lld))", n, (long long)k, (long long)E);
    if (kind == 1 && k != 2) return zm__err(ZM_ERR_SHAPE, "%s: weights must have 2 columns, has %lld", n, (long long)k);
    ZM_TRY(zm__rows_cols(n, "weights", w, T, k));
    ZM_TRY(zm__rows_cols(n, "ids", ids, T, k));
    if (bias) { ZM_TRY(zm__arg(n, "bias", bias, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "bias", bias, E)); }
    if (kind == 2) {
        if (ng < 1 || ng > 64 || E % ng) return zm__err(ZM_ERR_RANGE, "%s: n_group %d must divide %lld experts (1..64)", n, ng, (long long)E);
        if (tg < 1 || tg > ng) return zm__err(ZM_ERR_RANGE, "%s: topk_group %d not in 1..n_group %d", n, tg, ng);
        if (k > (E / ng) * tg) return zm__err(ZM_ERR_RANGE, "%s: k %lld exceeds the %lld experts of %d groups", n, (long long)k, (long long)(E / ng * tg), tg);
    }
    const float *bp = bias ? bias->data : NULL;
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_moe_route(kind, w->data, ids->data, lg->data, lg->dtype, bp, T, (int)E, (int)k, renorm, ng, tg, scale));
    zm__route_ctx c = {kind, w->data, ids->data, lg->data, lg->dtype, bp, (int)E, (int)k, renorm, ng, tg, scale};
    zm__par(T, E * 4, zm__route_rows, &c);
    return ZM_OK;
}

zm_status zm_op_topk_gating_softmax(zm_tensor *w, zm_tensor *ids, const zm_tensor *logits, const zm_tensor *bias, int renorm) {
    return zm__route("topk_gating_softmax", 0, w, ids, logits, bias, renorm != 0, 1, 1, 1.0f);
}
zm_status zm_op_top2_gating(zm_tensor *w, zm_tensor *ids, const zm_tensor *logits) {
    return zm__route("top2_gating", 1, w, ids, logits, NULL, 1, 1, 1, 1.0f);
}
zm_status zm_op_deepseek_router(zm_tensor *w, zm_tensor *ids, const zm_tensor *logits, const zm_tensor *bias, int n_group,
                                int topk_group, int renorm, float scale) {
    return zm__route("deepseek_router", 2, w, ids, logits, bias, renorm != 0, n_group, topk_group, scale);
}

// ---------------------------------------------------------------------------
zm_status zm_op_moe_dispatch(zm_tensor *xs, zm_tensor *perm, zm_tensor *offsets, const zm_tensor *x, const zm_tensor *ids) {
    const char *n = "moe_dispatch";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "ids", ids, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "xs", xs, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "perm", perm, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "offsets", offsets, ZM_DT(ZM_I32), d));
    int64_t D = x->shape[x->ndim - 1], T = zm_tensor_rows(x), k = ids->shape[ids->ndim - 1], E = zm_tensor_numel(offsets) - 1;
    ZM_TRY(zm__rows_cols(n, "ids", ids, T, k));
    ZM_TRY(zm__rows_cols(n, "xs", xs, T * k, D));
    ZM_TRY(zm__numel(n, "perm", perm, T * k));
    if (E < 1 || E > 65536) return zm__err(ZM_ERR_SHAPE, "%s: offsets must hold experts + 1 entries (1..65536 experts)", n);
    if (T * k > INT32_MAX) return zm__err(ZM_ERR_RANGE, "%s: too many rows", n);
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_moe_dispatch(xs->data, perm->data, offsets->data, x->data, ids->data, T, (int)k, D, (int)E));
    const int32_t *id = ids->data;
    int32_t *off = offsets->data, *pm = perm->data;
    memset(off, 0, sizeof(int32_t) * (size_t)(E + 1));
    for (int64_t s = 0; s < T * k; s++) if (id[s] >= 0 && id[s] < E) off[id[s] + 1]++;
    for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
    int32_t *fill = calloc((size_t)E, sizeof(int32_t));
    if (!fill) return zm__err(ZM_ERR_NOMEM, "%s: out of memory", n);
    for (int64_t s = 0; s < T * k; s++) {
        if (id[s] < 0 || id[s] >= E) continue;
        int64_t row = off[id[s]] + fill[id[s]]++;
        pm[row] = (int32_t)s;
        memcpy((float *)xs->data + row * D, (const float *)x->data + s / k * D, sizeof(float) * (size_t)D);
    }
    free(fill);
    return ZM_OK;
}

typedef struct { void *out; const void *y, *res; const float *w; zm_dtype dt; int k; int64_t D; int exact; } zm__comb_ctx;
static void zm__comb_rows(void *cv, int64_t t0, int64_t t1) {
    const zm__comb_ctx *c = cv;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t i = 0; i < c->D; i++) {
            float acc = 0;
            for (int j = 0; j < c->k; j++) {
                float wj = c->w[t * c->k + j], yv = zm__ld(c->y, c->dt, (t * c->k + j) * c->D + i);
                if (c->exact) { /* weight cast to the dtype, product and running sum rounded each step */
                    float p = zm__rnd(c->dt, zm__rnd(c->dt, wj) * yv);
                    acc = j ? zm__rnd(c->dt, acc + p) : p;
                } else acc += wj * yv;
            }
            if (c->res) acc += zm__ld(c->res, c->dt, t * c->D + i);
            zm__st(c->out, c->dt, t * c->D + i, acc);
        }
}

static zm_status zm__combine(const char *n, zm_tensor *out, const zm_tensor *y, const zm_tensor *w, const zm_tensor *res, int exact) {
    if (!y) return zm__err(ZM_ERR_INVALID, "%s: y is NULL", n);
    zm_device d = y->device;
    ZM_TRY(zm__arg(n, "y", y, ZM_DT_FLOAT, d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(y->dtype), d));
    ZM_TRY(zm__arg(n, "weights", w, ZM_DT(ZM_F32), d));
    int64_t D = out->shape[out->ndim - 1], T = zm_tensor_rows(out), k = w->shape[w->ndim - 1];
    ZM_TRY(zm__rows_cols(n, "weights", w, T, k));
    ZM_TRY(zm__rows_cols(n, "y", y, T * k, D));
    if (res) { ZM_TRY(zm__arg(n, "residual", res, ZM_DT(y->dtype), d)); ZM_TRY(zm__rows_cols(n, "residual", res, T, D)); }
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_moe_combine(out->data, y->data, w->data, res ? res->data : NULL, y->dtype, T, (int)k, D, exact));
    zm__comb_ctx c = {out->data, y->data, res ? res->data : NULL, w->data, y->dtype, (int)k, D, exact};
    zm__par(T, D * k, zm__comb_rows, &c);
    return ZM_OK;
}
zm_status zm_op_moe_combine(zm_tensor *out, const zm_tensor *y, const zm_tensor *w, const zm_tensor *res) {
    return zm__combine("moe_combine", out, y, w, res, 0);
}
zm_status zm_op_moe_combine_exact(zm_tensor *out, const zm_tensor *y, const zm_tensor *w, const zm_tensor *res) {
    return zm__combine("moe_combine_exact", out, y, w, res, 1);
}
