/* Models: load a GGUF file, decode with a KV cache.
 *
 *   zm_model *m;  zm_model_load(&m, "model.gguf", NULL);
 *   zm_session *s; zm_session_new(&s, m);
 *   int32_t next; zm_session_prefill(s, ids, n, NULL, &next);
 *   for (...) zm_session_decode(s, next, NULL, &next);
 *   zm_session_free(s); zm_model_free(m);
 *
 * A model maps the file (weights are read in place, never copied on the
 * CPU), reads and validates the hyper-parameters and builds the stock graph
 * of primitive ops (src/models/qwen3moe.c). A session owns a KV cache of
 * n_ctx positions and the executors of its prefill and decode graphs.
 * Ownership: zm_model_free / zm_session_free (NULL-safe) release everything;
 * a session must be freed before its model. Architectures: qwen3moe.
 * Tested by tests/test_model.c (build/tests/test_model). */
#ifndef ZMLX_MODEL_H
#define ZMLX_MODEL_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zm_model zm_model;
typedef struct zm_session zm_session;

typedef struct zm_model_opts {
    zm_device device;   /* ZM_CPU (default) or ZM_CUDA */
    int n_threads;      /* CPU threads, 0 = zm_pool_default() ($ZMLX_THREADS or all cores) */
    int64_t n_ctx;      /* KV cache positions per session; 0 = min(context_length, 4096) */
    int poison;         /* debug: NaN-fill planner buffers after their last use */
    int profile;        /* time every op (see zm_session_profile) */
} zm_model_opts;

/* opts may be NULL (defaults). Errors name the cause: ZM_ERR_IO (file),
 * ZM_ERR_FORMAT (bad GGUF), ZM_ERR_UNSUPPORTED (unknown architecture),
 * ZM_ERR_NOT_FOUND (missing tensor or key), ZM_ERR_SHAPE (wrong shape),
 * ZM_ERR_NO_DEVICE (CUDA asked for but absent). */
zm_status zm_model_load(zm_model **out, const char *path, const zm_model_opts *opts);
void zm_model_free(zm_model *m);

const char *zm_model_arch(const zm_model *m);   /* "qwen3moe"; lives with m */
int64_t zm_model_n_vocab(const zm_model *m);
int64_t zm_model_n_layer(const zm_model *m);
int64_t zm_model_n_embd(const zm_model *m);
int64_t zm_model_n_head(const zm_model *m);
int64_t zm_model_n_head_kv(const zm_model *m);
int64_t zm_model_head_dim(const zm_model *m);
int64_t zm_model_n_expert(const zm_model *m);
int64_t zm_model_n_expert_used(const zm_model *m);
int64_t zm_model_n_ctx(const zm_model *m);      /* KV cache positions per session */
zm_dtype zm_model_weight_type(const zm_model *m); /* dtype of the expert matrices */
/* Bytes of weights one decode token must read: every dense weight, one
 * embedding row, and only n_expert_used experts per layer (for GB/s). */
uint64_t zm_model_decode_bytes(const zm_model *m);
uint64_t zm_model_weight_bytes(const zm_model *m); /* all tensors of the file */
zm_device zm_model_device(const zm_model *m);

zm_status zm_session_new(zm_session **out, zm_model *m);
void zm_session_free(zm_session *s);
/* Clear the KV cache: the next prefill starts at position 0. */
zm_status zm_session_reset(zm_session *s);
int64_t zm_session_pos(const zm_session *s);    /* tokens in the cache */

/* Feed n >= 1 token ids at positions pos..pos+n-1. logits (may be NULL)
 * receives n_vocab floats for the last token; next (may be NULL) its greedy
 * id. ZM_ERR_RANGE if the cache would overflow or an id is out of the
 * vocabulary (the session is then unchanged). */
zm_status zm_session_prefill(zm_session *s, const int32_t *ids, int64_t n, float *logits, int32_t *next);
/* One token: the same as prefill of n = 1, through the decode graph that is
 * planned once and replayed for every position. */
zm_status zm_session_decode(zm_session *s, int32_t id, float *logits, int32_t *next);
/* n >= 1 greedy steps from token id: ids[i] receives the greedy id after
 * step i, and feeds step i + 1 (ids[n-1] is the next token to feed); the
 * same ids as n calls of zm_session_decode(s, id, NULL, &id). On CUDA the
 * steps run back to back on the device, with no host round trip between
 * tokens (the decode graph and the greedy step captured once). */
zm_status zm_session_decode_greedy(zm_session *s, int32_t id, int64_t n, int32_t *ids);
/* Bytes of planned intermediates of the decode graph (its arena). */
int64_t zm_session_decode_arena_bytes(const zm_session *s);
/* With opts.profile: time spent in the decode graph per op kind so far, as
 * up to n (name, seconds, calls) rows sorted by time; returns rows written,
 * or -1 if profiling is off or the backend cannot. names live forever. */
int zm_session_decode_profile(const zm_session *s, const char **names, double *seconds, int64_t *calls, int n);

#ifdef __cplusplus
}
#endif
#endif
