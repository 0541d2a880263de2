/* Inside src/patch: the pattern interface and the matching helpers every
 * pattern file uses. A pattern scans a graph, and at each site where the
 * exact op sequence, data flow, single use of intermediates, shapes and
 * dtypes all hold, replaces the sequence with one fused node (plus VIEWs
 * naming its outputs). Names are never looked at. */
#ifndef ZM_PATCH_PRIV_H
#define ZM_PATCH_PRIV_H

#include "core/internal.h"
#include "graph/graph.h"

/* Try to rewrite the site anchored at node `id`. Returns 1 if rewritten,
 * 0 if the site does not match (or the rewrite was refused: g unchanged),
 * a negative zm_status on a hard error. */
typedef int (*zm__pattern_fn)(zm_graph *g, int id);

typedef struct zm__pattern {
    const char *name;
    const char *desc;
    zm__pattern_fn try_at;
    zm_op fused; /* the op it produces */
} zm__pattern;

/* Run one pattern over every site of g; *sites (may be NULL) += rewrites. */
zm_status zm__pattern_apply(const zm__pattern *p, zm_graph *g, int *sites);
/* Apply every pattern of mask, in registry order. counts[i] (may be NULL)
 * receives the sites of pattern i. */
zm_status zm__patch_graph(zm_graph *g, uint32_t mask, int *counts);

/* ---- matching helpers ---- */
static inline const zm_node *zm__nd(const zm_graph *g, int id) { return &g->nodes[id]; }
static inline int zm__is(const zm_graph *g, int id, zm_op op) {
    return id >= 0 && id < g->n_nodes && g->nodes[id].op == op;
}
static inline int zm__f32(const zm_graph *g, int id) { return g->nodes[id].dtype == ZM_F32; }
int zm__pm_same_shape(const zm_node *a, const zm_node *b);
int zm__pm_shape_is(const zm_node *n, int ndim, const int64_t *shape);
/* Every use of node id (sources of live nodes; graph outputs count as a use
 * by nobody) is by a node in allowed[0..n). */
int zm__pm_only_used_by(const zm_graph *g, int id, const int *allowed, int n);

/* The result of a rewrite as a try_at return: 1 done, 0 refused (the
 * graph is unchanged, e.g. a use of a deleted node would precede its
 * replacement), < 0 a hard error. */
static inline int zm__commit(zm_status st) {
    if (st == ZM_OK) return 1;
    if (st == ZM_ERR_INVALID) { zm_clear_error(); return 0; }
    return (int)st;
}

/* Each pattern file defines one of these. */
extern const zm__pattern zm__pat_moe_gating, zm__pat_qk_norm_rope, zm__pat_add_rmsnorm,
    zm__pat_gather_qmm_swiglu, zm__pat_swiglu, zm__pat_gather_qmm_combine, zm__pat_moe_combine;

#endif
