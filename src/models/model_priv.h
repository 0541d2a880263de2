/* Inside zm_model / zm_session, for the layers that work on the model's
 * graphs: src/patch (rewrites every graph a session builds through the
 * rewrite hook), the CUDA executor and the CLI's --dump-graph. Private. */
#ifndef ZM_MODELS_MODEL_PRIV_H
#define ZM_MODELS_MODEL_PRIV_H

#include "graph/graph.h"
#include "models/hparams.h"
#include "zmlx/gguf.h"
#include "zmlx/model.h"

/* Called on every graph a session builds (decode and each prefill size),
 * after the stock graph is built and before it is planned. */
typedef zm_status (*zm_graph_rewrite_fn)(void *ctx, zm_graph *g);

struct zm_model {
    zm_gguf *gguf;
    zm_qwen3moe_hparams hp;
    zm_qwen3moe_weights w;
    zm_model_opts opts;
    const zm_graph_backend *be;
    void *be_ctx;                 /* per model: weights (uploaded once on a GPU) */
    zm_graph_rewrite_fn rewrite;  /* NULL = stock graph */
    void *rewrite_ctx;
    uint64_t decode_bytes, weight_bytes;
    char arch[32];
};

/* Sessions created after this call build their graphs through fn (a
 * session keeps the hook it was created with). fn NULL = stock again. */
void zm__model_set_rewrite(zm_model *m, zm_graph_rewrite_fn fn, void *ctx);
/* Build the graph a session would run for n_tokens (all_logits: every
 * token's logits, else the last one's), rewrite hook applied if use_hook.
 * The caller frees it with zm_graph_free. */
zm_status zm__model_build_graph(const zm_model *m, int64_t n_tokens, int all_logits, int use_hook, zm_graph **out);
/* The decode graph a session runs (lives with the session). */
const zm_graph *zm__session_decode_graph(const zm_session *s);

#endif
