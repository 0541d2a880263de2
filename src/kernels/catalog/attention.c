/* Decode attention: one query per sequence over a KV cache, GQA (query head
 * h reads kv head h / (Hq / Hkv)), attention sinks (a per-head logit that
 * joins the softmax denominator, as gpt-oss), sliding window (only the last
 * `window` positions), and the paged variant (a block table maps a
 * sequence's page i to a physical page). Max-subtracted softmax in float.
 * CUDA in attention.cu (online softmax, flash-decoding style). Checked
 * against float64 references by tests/test_catalog_attention.c. */
#include "kernels/catalog/common.h"

typedef struct {
    float *out; const float *q, *k, *v, *sinks; const int32_t *lens, *bt;
    int64_t mp, page, Hq, Hkv, D, S; float scale; int window;
} zm__attn_ctx;

static const float *zm__kv(const zm__attn_ctx *c, const float *base, int64_t b, int64_t i, int64_t h) {
    if (!c->bt) return base + ((b * c->S + i) * c->Hkv + h) * c->D;
    int64_t pg = c->bt[b * c->mp + i / c->page];
    return base + ((pg * c->page + i % c->page) * c->Hkv + h) * c->D;
}

static float zm__attn_score(const zm__attn_ctx *c, const float *q, int64_t b, int64_t i, int64_t h) {
    const float *k = zm__kv(c, c->k, b, i, h);
    float d = 0;
    for (int64_t j = 0; j < c->D; j++) d += q[j] * k[j];
    return d * c->scale;
}

/* Two passes over the keys (the max, then the weights), each score computed
 * the same way both times: no scratch buffer, so nothing can fail here. */
static void zm__attn_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__attn_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++) { /* r = b * Hq + hq */
        int64_t b = r / c->Hq, hq = r % c->Hq, h = hq / (c->Hq / c->Hkv), L = c->lens[b];
        int64_t st = c->window > 0 && L > c->window ? L - c->window : 0;
        const float *q = c->q + r * c->D;
        float *o = c->out + r * c->D, m = c->sinks ? c->sinks[hq] : -INFINITY, den = 0;
        for (int64_t i = st; i < L; i++) m = fmaxf(m, zm__attn_score(c, q, b, i, h));
        for (int64_t j = 0; j < c->D; j++) o[j] = 0;
        for (int64_t i = st; i < L; i++) {
            float p = expf(zm__attn_score(c, q, b, i, h) - m);
            den += p;
            const float *v = zm__kv(c, c->v, b, i, h);
            for (int64_t j = 0; j < c->D; j++) o[j] += p * v[j];
        }
        if (c->sinks) den += expf(c->sinks[hq] - m);
        for (int64_t j = 0; j < c->D; j++) o[j] /= den;
    }
}

static zm_status zm__attn(const char *n, zm_tensor *out, const zm_tensor *q, const zm_tensor *k, const zm_tensor *v,
                          const zm_tensor *bt, const zm_tensor *lens, const zm_attn_opts *o) {
    if (!q || !k) return zm__err(ZM_ERR_INVALID, "%s: q or cache is NULL", n);
    zm_device d = q->device;
    ZM_TRY(zm__arg(n, "q", q, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "out", out, "q", q));
    ZM_TRY(zm__arg(n, "k", k, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "v", v, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "v", v, "k", k));
    ZM_TRY(zm__arg(n, "lens", lens, ZM_DT(ZM_I32), d));
    if (q->ndim != 3 || k->ndim != 4) return zm__err(ZM_ERR_SHAPE, "%s: q must be [B, Hq, D] and caches 4-D", n);
    int64_t B = q->shape[0], Hq = q->shape[1], D = q->shape[2], Hkv = k->shape[2], S = k->shape[1], mp = 0, page = 0;
    if (k->shape[3] != D) return zm__err(ZM_ERR_SHAPE, "%s: cache head dim %lld, q has %lld", n, (long long)k->shape[3], (long long)D);
    if (Hkv < 1 || Hq % Hkv) return zm__err(ZM_ERR_SHAPE, "%s: %lld q heads not a multiple of %lld kv heads", n, (long long)Hq, (long long)Hkv);
    if (D < 1 || D > 256) return zm__err(ZM_ERR_UNSUPPORTED, "%s: head dim %lld (1..256)", n, (long long)D);
    ZM_TRY(zm__numel(n, "lens", lens, B));
    if (bt) {
        ZM_TRY(zm__arg(n, "block_table", bt, ZM_DT(ZM_I32), d));
        if (bt->ndim != 2 || bt->shape[0] != B) return zm__err(ZM_ERR_SHAPE, "%s: block_table must be [B, max_pages]", n);
        mp = bt->shape[1]; page = S; S = mp * page; /* S: the longest sequence the table can hold */
    } else if (k->shape[0] != B) return zm__err(ZM_ERR_SHAPE, "%s: cache batch %lld, q has %lld", n, (long long)k->shape[0], (long long)B);
    zm_attn_opts z = {0};
    if (!o) o = &z;
    if (o->sinks) { ZM_TRY(zm__arg(n, "sinks", o->sinks, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "sinks", o->sinks, Hq)); }
    float scale = o->scale > 0 ? o->scale : 1.0f / sqrtf((float)D);
    const float *sk = o->sinks ? o->sinks->data : NULL;
    const int32_t *btp = bt ? bt->data : NULL;
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_decode_attention(out->data, q->data, k->data, v->data, lens->data, btp, mp, page, bt ? k->shape[0] : 0, B, Hq, Hkv, D,
                                                 S, scale, o->window, sk));
    /* host-side checks of the data the CPU path indexes with */
    const int32_t *L = lens->data;
    for (int64_t b = 0; b < B; b++) {
        if (L[b] < 1 || L[b] > S) return zm__err(ZM_ERR_RANGE, "%s: lens[%lld] = %d not in 1..%lld", n, (long long)b, L[b], (long long)S);
        for (int64_t p = 0; bt && p < (L[b] + page - 1) / page; p++)
            if (btp[b * mp + p] < 0 || btp[b * mp + p] >= k->shape[0])
                return zm__err(ZM_ERR_RANGE, "%s: block_table[%lld][%lld] = %d outside %lld pages", n, (long long)b, (long long)p,
                               btp[b * mp + p], (long long)k->shape[0]);
    }
    zm__attn_ctx c = {out->data, q->data, k->data, v->data, sk, L, btp, mp, page, Hq, Hkv, D, S, scale, o->window};
    zm__par(B * Hq, S * D, zm__attn_rows, &c);
    return ZM_OK;
}

zm_status zm_op_decode_attention(zm_tensor *out, const zm_tensor *q, const zm_tensor *k, const zm_tensor *v, const zm_tensor *lens,
                                 const zm_attn_opts *o) {
    return zm__attn("decode_attention", out, q, k, v, NULL, lens, o);
}
zm_status zm_op_paged_attention(zm_tensor *out, const zm_tensor *q, const zm_tensor *k, const zm_tensor *v, const zm_tensor *bt,
                                const zm_tensor *lens, const zm_attn_opts *o) {
    if (!bt) return zm__err(ZM_ERR_INVALID, "paged_attention: block_table is NULL");
    return zm__attn("paged_attention", out, q, k, v, bt, lens, o);
}
