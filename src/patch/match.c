/* Matching helpers shared by the pattern files, and the driver that runs a
 * pattern over every site of a graph. Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"
#include <string.h>

int zm__pm_same_shape(const zm_node *a, const zm_node *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

int zm__pm_shape_is(const zm_node *n, int ndim, const int64_t *shape) {
    if (n->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (n->shape[i] != shape[i]) return 0;
    return 1;
}

int zm__pm_only_used_by(const zm_graph *g, int id, const int *allowed, int n) {
    for (int o = 0; o < g->n_out; o++)
        if (g->out[o] == id) return 0;
    for (int i = id + 1; i < g->n_nodes; i++) {
        const zm_node *u = &g->nodes[i];
        for (int s = 0; s < u->n_src; s++) {
            if (u->src[s] != id) continue;
            int ok = 0;
            for (int a = 0; a < n; a++) ok |= allowed[a] == i;
            if (!ok) return 0;
        }
    }
    return 1;
}

zm_status zm__pattern_apply(const zm__pattern *p, zm_graph *g, int *sites) {
    /* After a rewrite ids change: rescan from the start. Sites that failed
     * stay failed, and each success removes its anchor, so this ends. */
    for (int i = 0; i < g->n_nodes; i++) {
        int r = p->try_at(g, i);
        if (r < 0) return (zm_status)r;
        if (r > 0) {
            if (sites) (*sites)++;
            i = -1;
        }
    }
    return ZM_OK;
}
