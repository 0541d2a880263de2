/* The CUDA graph backend (src/graph/exec_cuda.c): zm_graph_backend_cuda plus
 * a few private probes for benchmarks and the CLI. Without CUDA the probes
 * return 0 / do nothing. Private header. */
#ifndef ZM_GRAPH_EXEC_CUDA_H
#define ZM_GRAPH_EXEC_CUDA_H

#include "graph/graph.h"
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef ZM_HAVE_CUDA
extern const zm_graph_backend zm_graph_backend_cuda;
#endif
/* Per-op launch times, collected while $ZMLX_CUDA_PROFILE=1 (each launch
 * timed with CUDA events; graph capture is off then). */
void zm__cuda_profile_reset(void);
void zm__cuda_profile_dump(FILE *f);
/* Device bytes of the weights a backend ctx has uploaded. */
int64_t zm__cuda_ctx_weight_bytes(const void *ctx);
/* Kernel launches an exec's lowered graph makes per run. */
int zm__cuda_exec_launches(const void *exec);

/* A minimal qwen3moe fusion pass (src/graph/fuse_qwen3moe.c) with the
 * signature of a session rewrite hook; ctx unused. */
zm_status zm__fuse_qwen3moe(void *ctx, zm_graph *g);

#ifdef __cplusplus
}
#endif
#endif
