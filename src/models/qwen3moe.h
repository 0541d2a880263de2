/* The stock qwen3moe graph builder (src/models/qwen3moe.c). Private. */
#ifndef ZM_MODELS_QWEN3MOE_H
#define ZM_MODELS_QWEN3MOE_H

#include "graph/graph.h"
#include "models/hparams.h"

/* A graph for n_tokens tokens at positions read from its POS input, with a
 * KV cache of n_ctx positions (STATE slots 2*layer, 2*layer+1). Outputs:
 * slot 0 logits F32 [R, n_vocab], slot 1 greedy ids I32 [R], where R =
 * n_tokens if all_logits else 1 (the last token). Weight leaves point into
 * w's mapping. */
zm_status zm_qwen3moe_build_graph(zm_graph **out, const zm_qwen3moe_hparams *hp, const zm_qwen3moe_weights *w,
                                  int64_t n_tokens, int64_t n_ctx, int all_logits);

#endif
