/* Test helper (header-only, static): writes a tiny qwen3moe GGUF with
 * llama.cpp's keys and tensor names, deterministic weights from a seed (so
 * files of different types hold the same underlying f32 values), and knobs
 * that break one thing at a time (omit a key or tensor, wrong shape, wrong
 * key type, foreign architecture) or edit weights before they are stored.
 * Used by tests/test_hparams.c and tests/test_reference.c. */
#ifndef ZT_QWEN3MOE_TINY_H
#define ZT_QWEN3MOE_TINY_H

#include "gguf/quant.h"
#include "zmlx/core.h"
#include "zmlx/gguf.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tiny_spec {
    const char *arch; /* NULL = "qwen3moe" */
    int64_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_expert, n_expert_used, n_ff_exp, n_vocab, n_ctx;
    float eps, rope_base;
    zm_dtype wtype; /* big matrices (and token_embd, output) */
    zm_dtype ntype; /* norm vectors */
    uint64_t seed;
    int with_tokens;            /* write tokenizer.ggml.tokens (n_tokens of them) */
    int64_t n_tokens;           /* 0 = n_vocab */
    int64_t embd_rows;          /* token_embd rows, 0 = n_vocab */
    int tied;                   /* no output.weight */
    const char *omit_key;       /* leave this key out */
    const char *string_key;     /* write this key as a string */
    const char *u32_key;        /* write this integer key as u32_val (tensors unchanged) */
    int64_t u32_val;
    const char *omit_tensor;    /* leave this tensor out */
    const char *bad_tensor;     /* this tensor's ne[0] += 32 */
    const char *ntype_tensor;   /* this tensor stored as wtype_tensor instead */
    zm_dtype wtype_tensor;
    /* edit the f32 values of a tensor before it is stored (ne in ggml order) */
    void (*edit)(void *ctx, const char *name, float *v, const int64_t *ne, int ndim);
    void *edit_ctx;
} tiny_spec;

static inline tiny_spec tiny_default(void) {
    tiny_spec s = {0};
    s.n_layer = 2, s.n_embd = 64, s.n_head = 4, s.n_head_kv = 2, s.head_dim = 16, s.n_expert = 4;
    s.n_expert_used = 2, s.n_ff_exp = 32, s.n_vocab = 96, s.n_ctx = 256;
    s.eps = 1e-6f, s.rope_base = 10000.0f, s.wtype = ZM_F32, s.ntype = ZM_F32, s.seed = 1;
    return s;
}

static inline uint64_t tiny__rng(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline double tiny__normal(uint64_t *s) {
    double u1 = ((double)(tiny__rng(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(tiny__rng(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static inline int tiny__skip_key(const tiny_spec *s, const char *k) { return s->omit_key && !strcmp(s->omit_key, k); }

static inline zm_status tiny__u32(zm_gguf_writer *w, const tiny_spec *s, const char *k, int64_t v) {
    if (tiny__skip_key(s, k)) return ZM_OK;
    if (s->string_key && !strcmp(s->string_key, k)) return zm_gguf_set_str(w, k, "oops");
    if (s->u32_key && !strcmp(s->u32_key, k)) v = s->u32_val;
    return zm_gguf_set_u32(w, k, (uint32_t)v);
}
static inline zm_status tiny__f32(zm_gguf_writer *w, const tiny_spec *s, const char *k, float v) {
    if (tiny__skip_key(s, k)) return ZM_OK;
    if (s->string_key && !strcmp(s->string_key, k)) return zm_gguf_set_str(w, k, "oops");
    return zm_gguf_set_f32(w, k, v);
}

/* One tensor: values = scale * normal (+ offset), then stored as dtype t. */
static inline zm_status tiny__tensor(zm_gguf_writer *w, const tiny_spec *s, uint64_t *rng, const char *name,
                                     zm_dtype t, int ndim, int64_t a, int64_t b, int64_t c, double scale,
                                     double offset) {
    int64_t ne[3] = {a, b, c}, n = 1;
    for (int d = 0; d < ndim; d++) n *= ne[d];
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(offset + scale * tiny__normal(rng)); /* drawn even if omitted */
    if (s->omit_tensor && !strcmp(s->omit_tensor, name)) { free(v); return ZM_OK; }
    if (s->edit) s->edit(s->edit_ctx, name, v, ne, ndim);
    if (s->ntype_tensor && !strcmp(s->ntype_tensor, name)) t = s->wtype_tensor;
    if (s->bad_tensor && !strcmp(s->bad_tensor, name)) {
        ne[0] += 32;
        float *v2 = calloc((size_t)(n / a * ne[0]), sizeof *v2);
        free(v), v = v2, n = n / a * ne[0];
    }
    size_t bytes = (size_t)(n / zm_dtype_block_size(t) * zm_dtype_block_bytes(t));
    void *q = malloc(bytes);
    zm_status st = zm_quantize(q, t, v, n);
    if (st == ZM_OK) st = zm_gguf_add_tensor(w, name, t, ndim, ne, q);
    free(v), free(q);
    return st;
}

/* Writes the model to path; returns the status of the writer. */
static inline zm_status tiny_write(const char *path, const tiny_spec *s) {
    zm_gguf_writer *w = NULL;
    zm_status st = zm_gguf_writer_new(&w);
    if (st != ZM_OK) return st;
    const int64_t E = s->n_embd, Q = s->n_head * s->head_dim, K = s->n_head_kv * s->head_dim;
    const int64_t V = s->n_vocab, R = s->embd_rows ? s->embd_rows : V, F = s->n_ff_exp, X = s->n_expert;
#define K_(call) if (st == ZM_OK) st = (call)
    if (!tiny__skip_key(s, "general.architecture")) K_(zm_gguf_set_str(w, "general.architecture", s->arch ? s->arch : "qwen3moe"));
    K_(zm_gguf_set_str(w, "general.name", "zt tiny"));
    K_(tiny__u32(w, s, "qwen3moe.block_count", s->n_layer));
    K_(tiny__u32(w, s, "qwen3moe.context_length", s->n_ctx));
    K_(tiny__u32(w, s, "qwen3moe.embedding_length", E));
    K_(tiny__u32(w, s, "qwen3moe.feed_forward_length", 4 * E));
    K_(tiny__u32(w, s, "qwen3moe.attention.head_count", s->n_head));
    K_(tiny__u32(w, s, "qwen3moe.attention.head_count_kv", s->n_head_kv));
    K_(tiny__u32(w, s, "qwen3moe.attention.key_length", s->head_dim));
    K_(tiny__u32(w, s, "qwen3moe.attention.value_length", s->head_dim));
    K_(tiny__f32(w, s, "qwen3moe.attention.layer_norm_rms_epsilon", s->eps));
    K_(tiny__f32(w, s, "qwen3moe.rope.freq_base", s->rope_base));
    K_(tiny__u32(w, s, "qwen3moe.expert_count", X));
    K_(tiny__u32(w, s, "qwen3moe.expert_used_count", s->n_expert_used));
    K_(tiny__u32(w, s, "qwen3moe.expert_feed_forward_length", F));
    if (s->with_tokens) {
        int64_t nt = s->n_tokens ? s->n_tokens : V;
        char **toks = calloc((size_t)nt, sizeof *toks);
        for (int64_t i = 0; i < nt; i++) {
            toks[i] = malloc(24);
            snprintf(toks[i], 24, "t%lld", (long long)i);
        }
        K_(zm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)nt));
        for (int64_t i = 0; i < nt; i++) free(toks[i]);
        free(toks);
    }
    uint64_t rng = s->seed * 0x2545F4914F6CDD1Dull + 7;
    const double se = 1.0 / sqrt((double)E), sf = 1.0 / sqrt((double)F), sq = 1.0 / sqrt((double)Q);
    K_(tiny__tensor(w, s, &rng, "token_embd.weight", s->wtype, 2, E, R, 0, 1.0, 0));
    for (int64_t il = 0; il < s->n_layer && st == ZM_OK; il++) {
        char n[64];
#define T_(suffix, t, nd, a, b, c, sc, off)                                                        \
    snprintf(n, sizeof n, "blk.%lld." suffix ".weight", (long long)il);                            \
    K_(tiny__tensor(w, s, &rng, n, t, nd, a, b, c, sc, off))
        T_("attn_norm", s->ntype, 1, E, 0, 0, 0.1, 1.0);
        T_("attn_q", s->wtype, 2, E, Q, 0, se, 0);
        T_("attn_k", s->wtype, 2, E, K, 0, se, 0);
        T_("attn_v", s->wtype, 2, E, K, 0, se, 0);
        T_("attn_output", s->wtype, 2, Q, E, 0, sq, 0);
        T_("attn_q_norm", s->ntype, 1, s->head_dim, 0, 0, 0.1, 1.0);
        T_("attn_k_norm", s->ntype, 1, s->head_dim, 0, 0, 0.1, 1.0);
        T_("ffn_norm", s->ntype, 1, E, 0, 0, 0.1, 1.0);
        T_("ffn_gate_inp", ZM_F32, 2, E, X, 0, se, 0);
        T_("ffn_gate_exps", s->wtype, 3, E, F, X, se, 0);
        T_("ffn_up_exps", s->wtype, 3, E, F, X, se, 0);
        T_("ffn_down_exps", s->wtype, 3, F, E, X, sf, 0);
#undef T_
    }
    K_(tiny__tensor(w, s, &rng, "output_norm.weight", s->ntype, 1, E, 0, 0, 0.1, 1.0));
    if (!s->tied) K_(tiny__tensor(w, s, &rng, "output.weight", s->wtype, 2, E, V, 0, se, 0));
    K_(zm_gguf_write(w, path, NULL, NULL, NULL));
#undef K_
    zm_gguf_writer_free(w);
    return st;
}

/* A unique temp path for this process (caller unlinks). */
static inline void tiny_path(char *buf, size_t n, const char *tag) {
    const char *d = getenv("TMPDIR");
    snprintf(buf, n, "%s/zt_%s_%d.gguf", d && *d ? d : "/tmp", tag, (int)getpid());
}

#endif
