/* Synthetic models: GGUF files with random weights in the exact shapes,
 * tensor names and metadata keys of real llama.cpp models (qwen3moe), plus a
 * valid byte-level BPE vocabulary in `gpt2` form, so they load in llama.cpp
 * unchanged and throughput measured on them equals a real model's. Weights
 * are deterministic in (seed, tensor name, row): the same seed gives the same
 * underlying float weights whatever --type quantizes them to.
 * Tested by tests/test_synth.c; cross-checked in tests/crosscheck/. */
#ifndef ZMLX_SYNTH_H
#define ZMLX_SYNTH_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zm_synth_preset {
    const char *name;
    const char *arch;       /* "qwen3moe" */
    int n_layer;            /* block_count */
    int n_embd;             /* embedding_length (hidden) */
    int n_head, n_head_kv;  /* attention.head_count / head_count_kv */
    int head_dim;           /* attention.key_length = value_length */
    int n_expert;           /* expert_count */
    int n_expert_used;      /* expert_used_count (top-k) */
    int n_ff_exp;           /* expert_feed_forward_length */
    int n_ff;               /* feed_forward_length (dense FFN size; unused by MoE layers) */
    int n_vocab;            /* tokens, = token_embd ne[1] */
    int n_special;          /* tail of the vocabulary: <|endoftext|>, <|im_start|>, <|im_end|>, [PAD..] */
    int n_ctx;              /* context_length */
    float rope_base;        /* rope.freq_base */
    float rms_eps;          /* attention.layer_norm_rms_epsilon */
} zm_synth_preset;

/* The presets' numbers, usable at compile time: static const zm_synth_preset p = ZM_SYNTH_TINY; */
#define ZM_SYNTH_TINY                                                                              \
    {"tiny", "qwen3moe", 2, 64, 4, 2, 32, 8, 2, 32, 128, 512, 3, 512, 1000000.0f, 1e-6f}
#define ZM_SYNTH_SMALL                                                                             \
    {"small", "qwen3moe", 4, 256, 8, 2, 64, 16, 4, 128, 512, 4096, 3, 1024, 1000000.0f, 1e-6f}
#define ZM_SYNTH_QWEN3_30B_A3B                                                                     \
    {"qwen3-30b-a3b", "qwen3moe", 48, 2048, 32, 4, 128, 128, 8, 768, 6144, 151936, 293, 40960,     \
     1000000.0f, 1e-6f}

/* Special token ids of a preset: the first three of the special tail. */
#define ZM_SYNTH_TOK_ENDOFTEXT(p) ((p)->n_vocab - (p)->n_special)     /* bos, padding */
#define ZM_SYNTH_TOK_IM_START(p) ((p)->n_vocab - (p)->n_special + 1)
#define ZM_SYNTH_TOK_IM_END(p) ((p)->n_vocab - (p)->n_special + 2)    /* eos */

/* Preset by name ("tiny", "small", "qwen3-30b-a3b"); NULL if unknown. */
const zm_synth_preset *zm_synth_preset_find(const char *name);
/* i-th preset (0..), NULL past the end. */
const zm_synth_preset *zm_synth_preset_at(int i);

typedef struct zm_synth_opts {
    const char *arch;      /* NULL = the preset's */
    const char *preset;    /* required */
    zm_dtype type;         /* big matrices: ZM_F32, ZM_F16, ZM_BF16, ZM_Q8_0, ZM_Q4_0; norms and router stay F32 */
    uint64_t seed;
    int n_layer;           /* 0 = the preset's; else override (quick runs of real shapes) */
    /* called after each tensor with bytes of tensor data written / total (may be NULL) */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} zm_synth_opts;

/* Write the model to path (atomically). Streams: one tensor in memory at a
 * time, filled on the default thread pool. */
zm_status zm_synth_write(const char *path, const zm_synth_opts *opts);

/* Bytes of tensor data the model has (what each token of a dense model
 * would read); for sizing and reports. */
uint64_t zm_synth_data_bytes(const zm_synth_preset *p, zm_dtype type, int n_layer);

#ifdef __cplusplus
}
#endif
#endif
