/* Qwen3-MoE hyper-parameters and weight tensors, read from a GGUF file with
 * llama.cpp's keys ("qwen3moe.*") and tensor names ("blk.N.attn_q.weight"),
 * and validated so that a bad file fails here with a message naming the key
 * or tensor, never later inside a kernel.
 * Checked against llama.cpp's src/llama-arch.cpp + llama-model.cpp (qwen3moe).
 * Test: build/tests/test_hparams. Private (not installed); used by the
 * naive reference forward (src/models/reference.c) and the graph builder. */
#ifndef ZM_MODELS_HPARAMS_H
#define ZM_MODELS_HPARAMS_H

#include "zmlx/core.h"
#include "zmlx/gguf.h"
#include <stdint.h>

// ---------------------------------------------------------------------------
typedef struct zm_qwen3moe_hparams {
    int64_t n_layer;        /* qwen3moe.block_count */
    int64_t n_embd;         /* qwen3moe.embedding_length (hidden size) */
    int64_t n_head;         /* qwen3moe.attention.head_count (query heads) */
    int64_t n_head_kv;      /* qwen3moe.attention.head_count_kv */
    int64_t head_dim;       /* qwen3moe.attention.key_length (default n_embd / n_head) */
    int64_t head_dim_v;     /* qwen3moe.attention.value_length (default head_dim) */
    int64_t n_ff;           /* qwen3moe.feed_forward_length (dense FFN; unused, 0 if absent) */
    int64_t n_expert;       /* qwen3moe.expert_count */
    int64_t n_expert_used;  /* qwen3moe.expert_used_count (top-k) */
    int64_t n_ff_exp;       /* qwen3moe.expert_feed_forward_length */
    int64_t n_vocab;        /* qwen3moe.vocab_size, else tokenizer.ggml.tokens, else token_embd rows */
    int64_t n_ctx_train;    /* qwen3moe.context_length */
    float rope_base;        /* qwen3moe.rope.freq_base (default 10000) */
    float rms_eps;          /* qwen3moe.attention.layer_norm_rms_epsilon */
    int norm_topk_prob;     /* qwen3moe.expert_weights_norm (default 1: llama.cpp renormalises) */
} zm_qwen3moe_hparams;

/* Read and validate the hyper-parameters. Errors (message names the key):
 *   ZM_ERR_UNSUPPORTED  general.architecture is not "qwen3moe"
 *   ZM_ERR_NOT_FOUND    a required key is missing
 *   ZM_ERR_FORMAT       a key has the wrong type, a size is zero or absurd,
 *                       or sizes contradict each other (n_head % n_head_kv,
 *                       n_expert_used > n_expert, odd head_dim, ...)
 * Does not look at tensors (see zm_qwen3moe_weights_load). */
zm_status zm_qwen3moe_hparams_read(const zm_gguf *g, zm_qwen3moe_hparams *hp);

/* Checks on the values alone (called by _read; public for callers that build
 * hparams by hand, e.g. tests). */
zm_status zm_qwen3moe_hparams_validate(const zm_qwen3moe_hparams *hp);

// ---------------------------------------------------------------------------
/* The weights of one block. Shapes in ggml order ne = [n_in, n_out(, n_expert)]:
 * a matrix with ne = [n_in, n_out] is stored as n_out rows of n_in. */
typedef struct zm_qwen3moe_layer {
    zm_gguf_tensor attn_norm; /* [n_embd] */
    zm_gguf_tensor wq;        /* [n_embd, n_head * head_dim] */
    zm_gguf_tensor wk;        /* [n_embd, n_head_kv * head_dim] */
    zm_gguf_tensor wv;        /* [n_embd, n_head_kv * head_dim_v] */
    zm_gguf_tensor wo;        /* [n_head * head_dim_v, n_embd] */
    zm_gguf_tensor q_norm;    /* [head_dim] */
    zm_gguf_tensor k_norm;    /* [head_dim] */
    zm_gguf_tensor ffn_norm;  /* [n_embd] */
    zm_gguf_tensor gate_inp;  /* [n_embd, n_expert]             router */
    zm_gguf_tensor gate_exps; /* [n_embd, n_ff_exp, n_expert]   per-expert gate */
    zm_gguf_tensor up_exps;   /* [n_embd, n_ff_exp, n_expert]   per-expert up */
    zm_gguf_tensor down_exps; /* [n_ff_exp, n_embd, n_expert]   per-expert down */
} zm_qwen3moe_layer;

typedef struct zm_qwen3moe_weights {
    zm_gguf_tensor tok_embd;    /* [n_embd, n_vocab] */
    zm_gguf_tensor output_norm; /* [n_embd] */
    zm_gguf_tensor output;      /* [n_embd, n_vocab]; = tok_embd when tied */
    int output_tied;            /* 1 if the file has no output.weight (llama.cpp falls back) */
    int64_t n_layer;
    zm_qwen3moe_layer *layers;  /* [n_layer], owned; free with zm_qwen3moe_weights_free */
} zm_qwen3moe_weights;

/* Find every tensor the model needs and check its ggml-order shape against
 * hp (zm_gguf_expect_tensor) and its dtype: matrices F32, F16, BF16, Q8_0,
 * Q4_0; norms F32, F16, BF16. Errors name the tensor: ZM_ERR_NOT_FOUND
 * (missing), ZM_ERR_SHAPE (wrong shape, incl. vocab mismatch with token_embd
 * rows), ZM_ERR_DTYPE (type not supported). The data pointers live as long
 * as g. On failure *w is zeroed (nothing to free). */
zm_status zm_qwen3moe_weights_load(const zm_gguf *g, const zm_qwen3moe_hparams *hp,
                                   zm_qwen3moe_weights *w);
void zm_qwen3moe_weights_free(zm_qwen3moe_weights *w); /* NULL-safe; zeroes *w */

/* Bytes per expert slice of an expert tensor (nbytes / n_expert). */
uint64_t zm_qwen3moe_expert_stride(const zm_gguf_tensor *t);

#endif
