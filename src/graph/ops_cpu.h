/* CPU kernels of the graph ops (src/graph/ops_cpu.c, ops_cpu_fused.c), as the
 * CPU executor (exec_cpu.c) calls them: one function per node, reading its
 * sources through ptr[] (every node's host data pointer, aliases resolved).
 * Matrix-vector products come from src/kernels/cpu_matvec.h.
 * Checked op by op by tests/test_graph.c against float64 references. */
#ifndef ZM_GRAPH_OPS_CPU_H
#define ZM_GRAPH_OPS_CPU_H

#include "graph/graph.h"
#include "kernels/cpu_matvec.h"

typedef struct zm__cpu_env {
    zm_pool *pool;               /* may be NULL: single-threaded */
    const zm_matvec_opts *mv;    /* NULL = defaults (auto ISA, f32 activations) */
    float *scratch;              /* per-thread scratch: n_threads * scratch_floats */
    int64_t scratch_floats;
} zm__cpu_env;

/* Floats of per-thread scratch that node id needs (0 for most ops). */
int64_t zm__cpu_scratch_floats(const zm_graph *g, int id);
/* Run node id. Leaves, VIEW: nothing to do. KV_WRITE writes into its
 * STATE (ptr[id] == ptr[src0]). Errors: ZM_ERR_RANGE for an id or position
 * out of range (message names the node), ZM_ERR_UNSUPPORTED for an op this
 * backend lacks. */
zm_status zm__cpu_node(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr);
/* Fused ops (ops_cpu_fused.c); called by zm__cpu_node. */
zm_status zm__cpu_fused(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr);
int64_t zm__cpu_fused_scratch(const zm_graph *g, int id);

/* Shared helpers. */
void zm__cpu_softmax_row(float *y, const float *x, int64_t D);
/* Indices of the k largest of x[0..E), descending, ties to the lower index, NaN never wins. */
void zm__cpu_topk_row(int32_t *o, const float *x, int64_t E, int64_t k);
void zm__cpu_rmsnorm_row(float *y, const float *x, int64_t n, float eps, const float *w);
/* Norm weight of any float dtype as f32: returns w itself for F32, else
 * converts into buf (n floats). */
const float *zm__cpu_f32_weights(const zm_node *wn, const void *data, float *buf, int64_t n);
/* cs[2i], cs[2i+1] = cos, sin of pos * base^(-2i/n_rot), i < n_rot/2 (angles in double). */
void zm__cpu_rope_table(float *cs, int n_rot, int32_t pos, float base);
void zm__cpu_rope_row(float *y, const float *x, int64_t dh, int n_rot, int mode, const float *cs);

#endif
