/* Naive reference forward for qwen3moe, in the spirit of llama2.c's run.c:
 * one readable function per step, float64 everywhere, no SIMD, no threads,
 * no graph. It is the definition of truth the op graph is tested against.
 *
 * llama.cpp semantics (src/models/qwen3moe.cpp, llm_graph_context::build_moe_ffn):
 *   x = token_embd[token]
 *   per layer:
 *     h = rmsnorm(x) * attn_norm                 rmsnorm(v) = v / sqrt(mean(v^2) + eps)
 *     q = Wq h, k = Wk h, v = Wv h
 *     q, k: per head rmsnorm over head_dim * q_norm / k_norm, then NeoX RoPE:
 *           pairs (i, i + d/2), theta_i = pos * base^(-2i/d)
 *     attention: head h reads KV head h / (n_head / n_head_kv), causal over
 *           0..pos, scale 1/sqrt(head_dim), softmax
 *     x += Wo attn
 *     h = rmsnorm(x) * ffn_norm
 *     p = softmax(W_router h) over all experts; top-k by p (ties: lower id);
 *     w_k = p_k / sum_topk p (norm_topk_prob)
 *     x += sum_k w_k * down_k(silu(gate_k h) * up_k h)
 *   logits = output (rmsnorm(x) * output_norm)
 * Test: build/tests/test_reference. */
#include "models/reference.h"
#include "core/internal.h"
#include "gguf/quant.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------
// state

struct zm_ref {
    zm_qwen3moe_hparams hp;
    zm_qwen3moe_weights w; /* tensor table; shapes in hparams.h */
    int64_t max_ctx, n_cached;
    /* KV cache, float64:
     *   k_cache (layer, max_ctx, n_head_kv * head_dim)
     *   v_cache (layer, max_ctx, n_head_kv * head_dim_v) */
    double *k_cache, *v_cache;
    /* activations of one token */
    double *x;      /* (n_embd) residual stream */
    double *h;      /* (n_embd) normed input of a sub-block */
    double *q;      /* (n_head * head_dim) */
    double *k, *v;  /* (n_head_kv * head_dim), (n_head_kv * head_dim_v) */
    double *att;    /* (max_ctx) scores of one head */
    double *ao;     /* (n_head * head_dim_v) attention output */
    double *tmp;    /* (n_embd) projection output */
    double *probs;  /* (n_expert) router softmax */
    double *g, *u;  /* (n_ff_exp) expert gate / up */
    double *moe;    /* (n_embd) mixture output */
    float *row;     /* (max n_in) one dequantized weight row or norm vector */
    int32_t *sel;   /* (n_layer, n_expert_used) experts picked at the last forward */
    double *selw;   /* (n_layer, n_expert_used) their weights */
};

// ---------------------------------------------------------------------------
// building blocks

/* Bytes of one row of n elements of t (n a whole number of blocks: checked
 * by zm_qwen3moe_weights_load through the tensor shapes + gguf reader). */
static uint64_t row_bytes(zm_dtype t, int64_t n) {
    return (uint64_t)(n / zm_dtype_block_size(t)) * (uint64_t)zm_dtype_block_bytes(t);
}

/* y[r] = sum_c W[r, c] x[c] for W = slice e of t (ne = [n_in, n_out(, n_expert)]). */
static zm_status matvec(zm_ref *R, const zm_gguf_tensor *t, int64_t e, const double *x, double *y) {
    const int64_t n_in = t->ne[0], n_out = t->ne[1];
    const uint64_t rb = row_bytes(t->dtype, n_in);
    const uint8_t *base = (const uint8_t *)t->data + (uint64_t)e * (uint64_t)n_out * rb;
    for (int64_t r = 0; r < n_out; r++) {
        ZM_TRY(zm_dequantize(R->row, base + (uint64_t)r * rb, t->dtype, n_in));
        double s = 0;
        for (int64_t c = 0; c < n_in; c++) s += (double)R->row[c] * x[c];
        y[r] = s;
    }
    return ZM_OK;
}

/* out = x / sqrt(mean(x^2) + eps) * w; w is a norm tensor of n elements. */
static zm_status rmsnorm(zm_ref *R, double *out, const double *x, const zm_gguf_tensor *w, int64_t n) {
    ZM_TRY(zm_dequantize(R->row, w->data, w->dtype, n));
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / (double)n + (double)R->hp.rms_eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * (double)R->row[i];
    return ZM_OK;
}

/* NeoX rotation of one head vector v (d elements) at position pos. */
static void rope_neox(double *v, int64_t d, int64_t pos, double base) {
    for (int64_t i = 0; i < d / 2; i++) {
        double theta = (double)pos * pow(base, -2.0 * (double)i / (double)d);
        double c = cos(theta), s = sin(theta), a = v[i], b = v[i + d / 2];
        v[i] = a * c - b * s;
        v[i + d / 2] = a * s + b * c;
    }
}

static void softmax(double *x, int64_t n) {
    double m = x[0], s = 0;
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int64_t i = 0; i < n; i++) s += (x[i] = exp(x[i] - m));
    for (int64_t i = 0; i < n; i++) x[i] /= s;
}

static double silu(double x) { return x / (1.0 + exp(-x)); }

// ---------------------------------------------------------------------------
// the two sub-blocks of a layer

static zm_status attention(zm_ref *R, int64_t il, int64_t pos) {
    const zm_qwen3moe_hparams *hp = &R->hp;
    const zm_qwen3moe_layer *L = &R->w.layers[il];
    const int64_t hd = hp->head_dim, hdv = hp->head_dim_v, kvd = hp->n_head_kv * hd, kvdv = hp->n_head_kv * hdv;
    const int64_t group = hp->n_head / hp->n_head_kv;
    ZM_TRY(rmsnorm(R, R->h, R->x, &L->attn_norm, hp->n_embd));
    ZM_TRY(matvec(R, &L->wq, 0, R->h, R->q)); /* (n_head * head_dim) */
    ZM_TRY(matvec(R, &L->wk, 0, R->h, R->k)); /* (n_head_kv * head_dim) */
    ZM_TRY(matvec(R, &L->wv, 0, R->h, R->v)); /* (n_head_kv * head_dim_v) */
    for (int64_t h = 0; h < hp->n_head; h++) {
        ZM_TRY(rmsnorm(R, R->q + h * hd, R->q + h * hd, &L->q_norm, hd));
        rope_neox(R->q + h * hd, hd, pos, hp->rope_base);
    }
    for (int64_t h = 0; h < hp->n_head_kv; h++) {
        ZM_TRY(rmsnorm(R, R->k + h * hd, R->k + h * hd, &L->k_norm, hd));
        rope_neox(R->k + h * hd, hd, pos, hp->rope_base);
    }
    double *kc = R->k_cache + il * R->max_ctx * kvd, *vc = R->v_cache + il * R->max_ctx * kvdv;
    memcpy(kc + pos * kvd, R->k, (size_t)kvd * sizeof(double));
    memcpy(vc + pos * kvdv, R->v, (size_t)kvdv * sizeof(double));
    const double scale = 1.0 / sqrt((double)hd);
    for (int64_t h = 0; h < hp->n_head; h++) {
        const int64_t kvh = h / group;
        const double *qh = R->q + h * hd;
        for (int64_t t = 0; t <= pos; t++) {
            const double *kt = kc + t * kvd + kvh * hd;
            double s = 0;
            for (int64_t i = 0; i < hd; i++) s += qh[i] * kt[i];
            R->att[t] = s * scale;
        }
        softmax(R->att, pos + 1);
        double *o = R->ao + h * hdv;
        for (int64_t i = 0; i < hdv; i++) o[i] = 0;
        for (int64_t t = 0; t <= pos; t++) {
            const double *vt = vc + t * kvdv + kvh * hdv;
            for (int64_t i = 0; i < hdv; i++) o[i] += R->att[t] * vt[i];
        }
    }
    ZM_TRY(matvec(R, &L->wo, 0, R->ao, R->tmp)); /* (n_embd) */
    for (int64_t i = 0; i < hp->n_embd; i++) R->x[i] += R->tmp[i];
    return ZM_OK;
}

static zm_status moe(zm_ref *R, int64_t il) {
    const zm_qwen3moe_hparams *hp = &R->hp;
    const zm_qwen3moe_layer *L = &R->w.layers[il];
    const int64_t k = hp->n_expert_used;
    int32_t *sel = R->sel + il * k;
    double *selw = R->selw + il * k;
    ZM_TRY(rmsnorm(R, R->h, R->x, &L->ffn_norm, hp->n_embd));
    ZM_TRY(matvec(R, &L->gate_inp, 0, R->h, R->probs)); /* (n_expert) router logits */
    softmax(R->probs, hp->n_expert);
    /* top-k by selection: largest p first, the lower id on ties */
    double sum = 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < hp->n_expert; e++) {
            int taken = 0;
            for (int64_t m = 0; m < j; m++) taken |= sel[m] == e;
            if (!taken && (best < 0 || R->probs[e] > R->probs[best])) best = e;
        }
        sel[j] = (int32_t)best;
        selw[j] = R->probs[best];
        sum += selw[j];
    }
    if (hp->norm_topk_prob)
        for (int64_t j = 0; j < k; j++) selw[j] /= sum;
    for (int64_t i = 0; i < hp->n_embd; i++) R->moe[i] = 0;
    for (int64_t j = 0; j < k; j++) {
        ZM_TRY(matvec(R, &L->gate_exps, sel[j], R->h, R->g)); /* (n_ff_exp) */
        ZM_TRY(matvec(R, &L->up_exps, sel[j], R->h, R->u));   /* (n_ff_exp) */
        for (int64_t i = 0; i < hp->n_ff_exp; i++) R->g[i] = silu(R->g[i]) * R->u[i];
        ZM_TRY(matvec(R, &L->down_exps, sel[j], R->g, R->tmp)); /* (n_embd) */
        for (int64_t i = 0; i < hp->n_embd; i++) R->moe[i] += selw[j] * R->tmp[i];
    }
    for (int64_t i = 0; i < hp->n_embd; i++) R->x[i] += R->moe[i];
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// public

zm_status zm_ref_forward(zm_ref *R, int32_t token, int64_t pos, double *logits) {
    if (!R || !logits) return zm__err(ZM_ERR_INVALID, "zm_ref_forward: NULL argument");
    const zm_qwen3moe_hparams *hp = &R->hp;
    if (token < 0 || token >= hp->n_vocab)
        return zm__err(ZM_ERR_RANGE, "zm_ref_forward: token %d outside [0, %lld)", token, (long long)hp->n_vocab);
    if (pos < 0 || pos >= R->max_ctx || pos > R->n_cached)
        return zm__err(ZM_ERR_RANGE, "zm_ref_forward: pos %lld outside [0, %lld] (cache holds %lld of max %lld)",
                       (long long)pos, (long long)(R->n_cached < R->max_ctx ? R->n_cached : R->max_ctx - 1),
                       (long long)R->n_cached, (long long)R->max_ctx);
    R->n_cached = pos; /* a failure below leaves positions >= pos unusable */
    /* x = token_embd[token]: row `token` of ne = [n_embd, n_vocab] */
    const zm_gguf_tensor *te = &R->w.tok_embd;
    uint64_t rb = row_bytes(te->dtype, hp->n_embd);
    ZM_TRY(zm_dequantize(R->row, (const uint8_t *)te->data + (uint64_t)token * rb, te->dtype, hp->n_embd));
    for (int64_t i = 0; i < hp->n_embd; i++) R->x[i] = R->row[i];
    for (int64_t il = 0; il < hp->n_layer; il++) {
        ZM_TRY(attention(R, il, pos));
        ZM_TRY(moe(R, il));
    }
    ZM_TRY(rmsnorm(R, R->h, R->x, &R->w.output_norm, hp->n_embd));
    ZM_TRY(matvec(R, &R->w.output, 0, R->h, logits)); /* (n_vocab) */
    R->n_cached = pos + 1;
    return ZM_OK;
}

zm_status zm_ref_last_experts(const zm_ref *R, int64_t il, int32_t *ids, double *weights) {
    if (!R || !ids) return zm__err(ZM_ERR_INVALID, "zm_ref_last_experts: NULL argument");
    if (il < 0 || il >= R->hp.n_layer || R->n_cached == 0)
        return zm__err(ZM_ERR_RANGE, "zm_ref_last_experts: layer %lld of %lld (forward run: %s)", (long long)il,
                       (long long)R->hp.n_layer, R->n_cached ? "yes" : "no");
    const int64_t k = R->hp.n_expert_used;
    memcpy(ids, R->sel + il * k, (size_t)k * sizeof *ids);
    if (weights) memcpy(weights, R->selw + il * k, (size_t)k * sizeof *weights);
    return ZM_OK;
}

const zm_qwen3moe_hparams *zm_ref_hparams(const zm_ref *R) { return R ? &R->hp : NULL; }

void zm_ref_free(zm_ref *R) {
    if (!R) return;
    zm_qwen3moe_weights_free(&R->w);
    double **d[] = {&R->k_cache, &R->v_cache, &R->x, &R->h, &R->q, &R->k, &R->v, &R->att, &R->ao,
                    &R->tmp, &R->probs, &R->g, &R->u, &R->moe, &R->selw};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) free(*d[i]);
    free(R->row);
    free(R->sel);
    free(R);
}

static double *dalloc(int64_t n, int *fail) {
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) *fail = 1;
    return p;
}

zm_status zm_ref_new(zm_ref **out, const zm_gguf *g, int64_t max_ctx) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_ref_new: out is NULL");
    *out = NULL;
    if (!g) return zm__err(ZM_ERR_INVALID, "zm_ref_new: gguf is NULL");
    zm_ref *R = calloc(1, sizeof *R);
    if (!R) return zm__err(ZM_ERR_NOMEM, "zm_ref_new: out of memory");
    zm_status s = zm_qwen3moe_hparams_read(g, &R->hp);
    if (s == ZM_OK) s = zm_qwen3moe_weights_load(g, &R->hp, &R->w);
    if (s != ZM_OK) { zm_ref_free(R); return s; }
    const zm_qwen3moe_hparams *hp = &R->hp;
    if (max_ctx < 1 || max_ctx > hp->n_ctx_train) {
        const long long n_ctx = (long long)hp->n_ctx_train; /* hp dies with R */
        zm_ref_free(R);
        return zm__err(ZM_ERR_RANGE, "zm_ref_new: max_ctx %lld outside [1, %lld] (context_length)",
                       (long long)max_ctx, n_ctx);
    }
    R->max_ctx = max_ctx;
    int64_t kvd = hp->n_head_kv * hp->head_dim, kvdv = hp->n_head_kv * hp->head_dim_v, kc, vc;
    if (!zm__mul_i64(hp->n_layer * max_ctx, kvd, &kc) || !zm__mul_i64(hp->n_layer * max_ctx, kvdv, &vc) ||
        kc > (int64_t)(SIZE_MAX / 2 / sizeof(double)) || vc > (int64_t)(SIZE_MAX / 2 / sizeof(double))) {
        zm_ref_free(R);
        return zm__err(ZM_ERR_RANGE, "zm_ref_new: KV cache of %lld positions overflows", (long long)max_ctx);
    }
    int64_t n_in = hp->n_embd;
    if (hp->n_head * hp->head_dim_v > n_in) n_in = hp->n_head * hp->head_dim_v;
    if (hp->n_ff_exp > n_in) n_in = hp->n_ff_exp;
    if (hp->head_dim > n_in) n_in = hp->head_dim;
    int fail = 0;
    R->k_cache = dalloc(kc, &fail);
    R->v_cache = dalloc(vc, &fail);
    R->x = dalloc(hp->n_embd, &fail);
    R->h = dalloc(hp->n_embd, &fail);
    R->q = dalloc(hp->n_head * hp->head_dim, &fail);
    R->k = dalloc(kvd, &fail);
    R->v = dalloc(kvdv, &fail);
    R->att = dalloc(max_ctx, &fail);
    R->ao = dalloc(hp->n_head * hp->head_dim_v, &fail);
    R->tmp = dalloc(hp->n_embd, &fail);
    R->probs = dalloc(hp->n_expert, &fail);
    R->g = dalloc(hp->n_ff_exp, &fail);
    R->u = dalloc(hp->n_ff_exp, &fail);
    R->moe = dalloc(hp->n_embd, &fail);
    R->selw = dalloc(hp->n_layer * hp->n_expert_used, &fail);
    R->row = calloc((size_t)n_in, sizeof(float));
    R->sel = calloc((size_t)(hp->n_layer * hp->n_expert_used), sizeof(int32_t));
    if (fail || !R->row || !R->sel) {
        zm_ref_free(R);
        return zm__err(ZM_ERR_NOMEM, "zm_ref_new: out of memory (KV cache %lld positions)", (long long)max_ctx);
    }
    *out = R;
    return ZM_OK;
}
