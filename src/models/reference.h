/* The naive reference forward of a qwen3moe model: plain scalar loops,
 * float64 activations and accumulation, weights dequantized row by row with
 * gguf's reference dequantizers. It shares no code with the op graph or the
 * fast kernels, so the graph (src/graph, src/models/qwen3moe.c) is tested
 * against it. Semantics are llama.cpp's qwen3moe (see reference.c).
 * Slow on purpose; meant for the tiny and small presets.
 * Test: build/tests/test_reference. */
#ifndef ZM_MODELS_REFERENCE_H
#define ZM_MODELS_REFERENCE_H

#include "models/hparams.h"
#include "zmlx/gguf.h"

typedef struct zm_ref zm_ref;

/* Reads and validates hparams and every tensor of g (which must outlive the
 * ref) and allocates a float64 KV cache of max_ctx positions.
 * Errors as zm_qwen3moe_hparams_read / zm_qwen3moe_weights_load, plus
 * ZM_ERR_RANGE for max_ctx outside [1, n_ctx_train] and ZM_ERR_NOMEM. */
zm_status zm_ref_new(zm_ref **out, const zm_gguf *g, int64_t max_ctx);
void zm_ref_free(zm_ref *r); /* NULL-safe */
const zm_qwen3moe_hparams *zm_ref_hparams(const zm_ref *r);

/* One token at position pos: writes its K/V into the cache and the logits
 * (n_vocab of them) into logits. Positions must come in order: pos may be at
 * most the number of positions already in the cache (pos = 0 starts over;
 * an earlier pos rewinds). ZM_ERR_RANGE for a token outside [0, n_vocab) or
 * pos outside [0, max_ctx) or past the cache. */
zm_status zm_ref_forward(zm_ref *r, int32_t token, int64_t pos, double *logits);

/* The experts layer il picked at the last forward, best first (n_expert_used
 * ids) and their renormalised weights (may be NULL). For tests that compare
 * routing exactly. ZM_ERR_RANGE for a bad layer or before any forward. */
zm_status zm_ref_last_experts(const zm_ref *r, int64_t il, int32_t *ids, double *weights);

#endif
