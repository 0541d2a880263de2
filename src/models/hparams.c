/* Qwen3-MoE hyper-parameters and tensor table from GGUF metadata, with
 * validation whose messages name the offending key or tensor.
 * Key names and defaults follow llama.cpp (llama-arch.cpp LLM_KV_*,
 * llama-model.cpp load_hparams / load_tensors for LLM_ARCH_QWEN3MOE).
 * Test: build/tests/test_hparams. */
#include "models/hparams.h"
#include "core/internal.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------
// keys

#define ARCH "qwen3moe"

/* A required integer key, converted to int64. */
static zm_status get_int(const zm_gguf *g, const char *key, int64_t *out, int required, int64_t dflt) {
    if (zm_gguf_find_key(g, key) < 0) {
        if (!required) { *out = dflt; return ZM_OK; }
        return zm__err(ZM_ERR_NOT_FOUND, "qwen3moe: missing required key '%s'", key);
    }
    zm_status s = zm_gguf_get_i64(g, key, out);
    if (s != ZM_OK) return zm__err_ctx(ZM_ERR_FORMAT, "qwen3moe: key '%s'", key);
    return ZM_OK;
}

static zm_status get_float(const zm_gguf *g, const char *key, float *out, int required, float dflt) {
    if (zm_gguf_find_key(g, key) < 0) {
        if (!required) { *out = dflt; return ZM_OK; }
        return zm__err(ZM_ERR_NOT_FOUND, "qwen3moe: missing required key '%s'", key);
    }
    zm_status s = zm_gguf_get_f32(g, key, out);
    if (s != ZM_OK) return zm__err_ctx(ZM_ERR_FORMAT, "qwen3moe: key '%s'", key);
    return ZM_OK;
}

static zm_status check_arch(const zm_gguf *g) {
    const char *s = NULL;
    uint64_t n = 0;
    if (zm_gguf_find_key(g, "general.architecture") < 0)
        return zm__err(ZM_ERR_NOT_FOUND, "missing required key 'general.architecture'");
    if (zm_gguf_get_str(g, "general.architecture", &s, &n) != ZM_OK)
        return zm__err_ctx(ZM_ERR_FORMAT, "key 'general.architecture'");
    if (n != strlen(ARCH) || memcmp(s, ARCH, n) != 0) {
        int shown = n > 64 ? 64 : (int)n;
        return zm__err(ZM_ERR_UNSUPPORTED, "unknown architecture '%.*s%s' (supported: " ARCH ")", shown,
                       s, n > 64 ? "..." : "");
    }
    return ZM_OK;
}

/* Limits far above any real model, low enough that every product of two of
 * them fits in int64 and a hostile file cannot ask for petabytes. */
#define LIM_LAYER   4096
#define LIM_EMBD    (1 << 20)
#define LIM_HEAD    (1 << 14)
#define LIM_HEADDIM (1 << 14)
#define LIM_FF      (1 << 24)
#define LIM_EXPERT  (1 << 16)
#define LIM_VOCAB   (1 << 24)
#define LIM_CTX     (1 << 28)

static zm_status in_range(const char *what, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
        return zm__err(ZM_ERR_FORMAT, "qwen3moe: %s = %lld is out of range [%lld, %lld]", what,
                       (long long)v, (long long)lo, (long long)hi);
    return ZM_OK;
}

zm_status zm_qwen3moe_hparams_validate(const zm_qwen3moe_hparams *hp) {
    if (!hp) return zm__err(ZM_ERR_INVALID, "zm_qwen3moe_hparams_validate: hp is NULL");
    ZM_TRY(in_range(ARCH ".block_count (n_layer)", hp->n_layer, 1, LIM_LAYER));
    ZM_TRY(in_range(ARCH ".embedding_length (n_embd)", hp->n_embd, 1, LIM_EMBD));
    ZM_TRY(in_range(ARCH ".attention.head_count (n_head)", hp->n_head, 1, LIM_HEAD));
    ZM_TRY(in_range(ARCH ".attention.head_count_kv (n_head_kv)", hp->n_head_kv, 1, LIM_HEAD));
    ZM_TRY(in_range(ARCH ".attention.key_length (head_dim)", hp->head_dim, 1, LIM_HEADDIM));
    ZM_TRY(in_range(ARCH ".attention.value_length (head_dim_v)", hp->head_dim_v, 1, LIM_HEADDIM));
    ZM_TRY(in_range(ARCH ".feed_forward_length (n_ff)", hp->n_ff, 0, LIM_FF));
    ZM_TRY(in_range(ARCH ".expert_count (n_expert)", hp->n_expert, 1, LIM_EXPERT));
    ZM_TRY(in_range(ARCH ".expert_used_count (n_expert_used)", hp->n_expert_used, 1, LIM_EXPERT));
    ZM_TRY(in_range(ARCH ".expert_feed_forward_length (n_ff_exp)", hp->n_ff_exp, 1, LIM_FF));
    ZM_TRY(in_range("n_vocab", hp->n_vocab, 1, LIM_VOCAB));
    ZM_TRY(in_range(ARCH ".context_length (n_ctx_train)", hp->n_ctx_train, 1, LIM_CTX));
    if (hp->n_head % hp->n_head_kv != 0)
        return zm__err(ZM_ERR_FORMAT,
                       "qwen3moe: n_head (%lld) is not a multiple of n_head_kv (%lld): grouped-query "
                       "attention needs whole groups",
                       (long long)hp->n_head, (long long)hp->n_head_kv);
    if (hp->n_expert_used > hp->n_expert)
        return zm__err(ZM_ERR_FORMAT, "qwen3moe: expert_used_count (%lld) > expert_count (%lld)",
                       (long long)hp->n_expert_used, (long long)hp->n_expert);
    if (hp->head_dim % 2 != 0)
        return zm__err(ZM_ERR_FORMAT, "qwen3moe: key_length (head_dim) = %lld is odd; NeoX RoPE rotates pairs",
                       (long long)hp->head_dim);
    if (hp->n_head * hp->head_dim > LIM_EMBD * 16 || hp->n_head * hp->head_dim_v > LIM_EMBD * 16)
        return zm__err(ZM_ERR_FORMAT, "qwen3moe: n_head * head_dim = %lld is absurd",
                       (long long)(hp->n_head * hp->head_dim));
    if (!(hp->rms_eps > 0.0f && hp->rms_eps < 1.0f))
        return zm__err(ZM_ERR_FORMAT, "qwen3moe: attention.layer_norm_rms_epsilon = %g must be in (0, 1)",
                       (double)hp->rms_eps);
    if (!(hp->rope_base > 0.0f && isfinite(hp->rope_base)))
        return zm__err(ZM_ERR_FORMAT, "qwen3moe: rope.freq_base = %g must be positive and finite",
                       (double)hp->rope_base);
    return ZM_OK;
}

zm_status zm_qwen3moe_hparams_read(const zm_gguf *g, zm_qwen3moe_hparams *hp) {
    if (!g || !hp) return zm__err(ZM_ERR_INVALID, "zm_qwen3moe_hparams_read: NULL argument");
    memset(hp, 0, sizeof *hp);
    ZM_TRY(check_arch(g));
    ZM_TRY(get_int(g, ARCH ".block_count", &hp->n_layer, 1, 0));
    ZM_TRY(get_int(g, ARCH ".embedding_length", &hp->n_embd, 1, 0));
    ZM_TRY(get_int(g, ARCH ".attention.head_count", &hp->n_head, 1, 0));
    /* llama.cpp: head_count_kv defaults to head_count (no GQA). */
    ZM_TRY(get_int(g, ARCH ".attention.head_count_kv", &hp->n_head_kv, 0, hp->n_head));
    ZM_TRY(in_range(ARCH ".attention.head_count (n_head)", hp->n_head, 1, LIM_HEAD));
    ZM_TRY(get_int(g, ARCH ".attention.key_length", &hp->head_dim, 0, hp->n_embd / hp->n_head));
    ZM_TRY(get_int(g, ARCH ".attention.value_length", &hp->head_dim_v, 0, hp->head_dim));
    ZM_TRY(get_int(g, ARCH ".feed_forward_length", &hp->n_ff, 0, 0));
    ZM_TRY(get_int(g, ARCH ".expert_count", &hp->n_expert, 1, 0));
    ZM_TRY(get_int(g, ARCH ".expert_used_count", &hp->n_expert_used, 1, 0));
    ZM_TRY(get_int(g, ARCH ".expert_feed_forward_length", &hp->n_ff_exp, 1, 0));
    ZM_TRY(get_int(g, ARCH ".context_length", &hp->n_ctx_train, 1, 0));
    ZM_TRY(get_float(g, ARCH ".rope.freq_base", &hp->rope_base, 0, 10000.0f));
    ZM_TRY(get_float(g, ARCH ".attention.layer_norm_rms_epsilon", &hp->rms_eps, 1, 0));

    hp->norm_topk_prob = 1;
    if (zm_gguf_find_key(g, ARCH ".expert_weights_norm") >= 0 &&
        zm_gguf_get_bool(g, ARCH ".expert_weights_norm", &hp->norm_topk_prob) != ZM_OK)
        return zm__err_ctx(ZM_ERR_FORMAT, "qwen3moe: key '" ARCH ".expert_weights_norm'");

    /* Partial rotary embeddings are not part of qwen3moe. */
    int64_t rope_dim = 0;
    ZM_TRY(get_int(g, ARCH ".rope.dimension_count", &rope_dim, 0, hp->head_dim));
    if (rope_dim != hp->head_dim)
        return zm__err(ZM_ERR_UNSUPPORTED, "qwen3moe: rope.dimension_count = %lld != key_length %lld "
                       "(partial RoPE is not supported)", (long long)rope_dim, (long long)hp->head_dim);

    /* Vocabulary size: explicit key, else the tokenizer's list, else the
     * embedding's rows (checked against the tensor in weights_load). */
    if (zm_gguf_find_key(g, ARCH ".vocab_size") >= 0) {
        ZM_TRY(get_int(g, ARCH ".vocab_size", &hp->n_vocab, 1, 0));
    } else if (zm_gguf_find_key(g, "tokenizer.ggml.tokens") >= 0) {
        zm_gguf_type et;
        uint64_t n = 0;
        if (zm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) != ZM_OK)
            return zm__err_ctx(ZM_ERR_FORMAT, "qwen3moe: key 'tokenizer.ggml.tokens'");
        if (et != ZM_GGUF_STRING)
            return zm__err(ZM_ERR_FORMAT, "qwen3moe: 'tokenizer.ggml.tokens' is not an array of strings");
        hp->n_vocab = n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
    } else {
        int64_t ti = zm_gguf_find_tensor(g, "token_embd.weight");
        zm_gguf_tensor t;
        if (ti < 0)
            return zm__err(ZM_ERR_NOT_FOUND, "qwen3moe: no vocabulary size (no " ARCH ".vocab_size, "
                           "no tokenizer.ggml.tokens, no token_embd.weight)");
        ZM_TRY(zm_gguf_tensor_info(g, ti, &t));
        hp->n_vocab = t.ndim == 2 ? t.ne[1] : 0;
    }
    return zm_qwen3moe_hparams_validate(hp);
}

// ---------------------------------------------------------------------------
// tensors

static int is_matrix_type(zm_dtype t) {
    return t == ZM_F32 || t == ZM_F16 || t == ZM_BF16 || t == ZM_Q8_0 || t == ZM_Q4_0;
}
static int is_norm_type(zm_dtype t) { return t == ZM_F32 || t == ZM_F16 || t == ZM_BF16; }

static zm_status expect(const zm_gguf *g, const char *name, int ndim, int64_t a, int64_t b, int64_t c,
                        int matrix, zm_gguf_tensor *out) {
    int64_t ne[3] = {a, b, c};
    if (zm_gguf_find_tensor(g, name) < 0)
        return zm__err(ZM_ERR_NOT_FOUND, "qwen3moe: missing tensor '%s'", name);
    zm_status s = zm_gguf_expect_tensor(g, name, ndim, ne, out);
    if (s != ZM_OK) return zm__err_ctx(s, "qwen3moe"); /* gguf's message names tensor, shape, expected */
    if (matrix ? !is_matrix_type(out->dtype) : !is_norm_type(out->dtype))
        return zm__err(ZM_ERR_DTYPE, "qwen3moe: tensor '%s' has type %s (supported: %s)", name,
                       zm_dtype_name(out->dtype), matrix ? "f32, f16, bf16, q8_0, q4_0" : "f32, f16, bf16");
    return ZM_OK;
}

static zm_status load_layer(const zm_gguf *g, const zm_qwen3moe_hparams *hp, int64_t il,
                            zm_qwen3moe_layer *L) {
    char n[96];
    const int64_t E = hp->n_embd, Q = hp->n_head * hp->head_dim, K = hp->n_head_kv * hp->head_dim;
    const int64_t V = hp->n_head_kv * hp->head_dim_v, O = hp->n_head * hp->head_dim_v;
#define T(field, suffix, nd, a, b, c, mat)                                                         \
    snprintf(n, sizeof n, "blk.%lld." suffix ".weight", (long long)il);                            \
    ZM_TRY(expect(g, n, nd, a, b, c, mat, &L->field))
    T(attn_norm, "attn_norm", 1, E, 0, 0, 0);
    T(wq, "attn_q", 2, E, Q, 0, 1);
    T(wk, "attn_k", 2, E, K, 0, 1);
    T(wv, "attn_v", 2, E, V, 0, 1);
    T(wo, "attn_output", 2, O, E, 0, 1);
    T(q_norm, "attn_q_norm", 1, hp->head_dim, 0, 0, 0);
    T(k_norm, "attn_k_norm", 1, hp->head_dim, 0, 0, 0);
    T(ffn_norm, "ffn_norm", 1, E, 0, 0, 0);
    T(gate_inp, "ffn_gate_inp", 2, E, hp->n_expert, 0, 1);
    T(gate_exps, "ffn_gate_exps", 3, E, hp->n_ff_exp, hp->n_expert, 1);
    T(up_exps, "ffn_up_exps", 3, E, hp->n_ff_exp, hp->n_expert, 1);
    T(down_exps, "ffn_down_exps", 3, hp->n_ff_exp, E, hp->n_expert, 1);
#undef T
    return ZM_OK;
}

zm_status zm_qwen3moe_weights_load(const zm_gguf *g, const zm_qwen3moe_hparams *hp, zm_qwen3moe_weights *w) {
    if (!g || !hp || !w) return zm__err(ZM_ERR_INVALID, "zm_qwen3moe_weights_load: NULL argument");
    memset(w, 0, sizeof *w);
    ZM_TRY(zm_qwen3moe_hparams_validate(hp));
    zm_qwen3moe_weights t = {0};
    int64_t ti = zm_gguf_find_tensor(g, "token_embd.weight");
    zm_gguf_tensor te;
    if (ti >= 0 && zm_gguf_tensor_info(g, ti, &te) == ZM_OK && te.ndim == 2 && te.ne[0] == hp->n_embd &&
        te.ne[1] != hp->n_vocab)
        return zm__err(ZM_ERR_SHAPE, "qwen3moe: vocabulary mismatch: %lld tokens (vocab_size / tokenizer) but "
                       "token_embd.weight has %lld rows", (long long)hp->n_vocab, (long long)te.ne[1]);
    ZM_TRY(expect(g, "token_embd.weight", 2, hp->n_embd, hp->n_vocab, 0, 1, &t.tok_embd));
    ZM_TRY(expect(g, "output_norm.weight", 1, hp->n_embd, 0, 0, 0, &t.output_norm));
    if (zm_gguf_find_tensor(g, "output.weight") >= 0) {
        ZM_TRY(expect(g, "output.weight", 2, hp->n_embd, hp->n_vocab, 0, 1, &t.output));
    } else {
        t.output = t.tok_embd;
        t.output_tied = 1;
    }
    t.n_layer = hp->n_layer;
    t.layers = calloc((size_t)hp->n_layer, sizeof *t.layers);
    if (!t.layers) return zm__err(ZM_ERR_NOMEM, "qwen3moe: out of memory for %lld layers", (long long)hp->n_layer);
    for (int64_t il = 0; il < hp->n_layer; il++) {
        zm_status s = load_layer(g, hp, il, &t.layers[il]);
        if (s != ZM_OK) { free(t.layers); return s; }
    }
    *w = t;
    return ZM_OK;
}

void zm_qwen3moe_weights_free(zm_qwen3moe_weights *w) {
    if (!w) return;
    free(w->layers);
    memset(w, 0, sizeof *w);
}

uint64_t zm_qwen3moe_expert_stride(const zm_gguf_tensor *t) {
    if (!t || t->ndim != 3 || t->ne[2] <= 0) return 0;
    return t->nbytes / (uint64_t)t->ne[2];
}
