/* Pattern gather_qmm_combine: the selected experts' down matmul, the
 * routing-weight scale, the sum over experts and the residual add in one
 * kernel:
 *   d = MATMUL_ID(Wd, h [P,k,F], ids)
 *   m = SUM(MUL(d, w3), axis 1)   or   m = MOE_COMBINE(d, w)
 *   r = ADD(m, x)  (optional: without it the fused node has no residual)
 *   -> GATHER_QMM_COMBINE(Wd, h, ids, w [P,k], x)
 * Fires when d and the combine are used only inside the chain.
 * Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

int zm__match_weighted_sum(const zm_graph *g, int su, int *y, int *w3, int *mul);

static int try_at(zm_graph *g, int cb) {
    int d, w, mu = -1;
    if (zm__is(g, cb, ZM_OP_MOE_COMBINE)) {
        d = zm__nd(g, cb)->src[0];
        w = zm__nd(g, cb)->src[1];
    } else if (!zm__match_weighted_sum(g, cb, &d, &w, &mu)) {
        return 0;
    }
    if (!zm__is(g, d, ZM_OP_MATMUL_ID)) return 0;
    const zm_node *dn = zm__nd(g, d), *cn = zm__nd(g, cb);
    int wd = dn->src[0], h = dn->src[1], ids = dn->src[2];
    const zm_node *wdn = zm__nd(g, wd), *hn = zm__nd(g, h);
    if (wdn->op != ZM_OP_WEIGHT || wdn->ndim != 3 || dn->ndim != 3) return 0;
    const int64_t P = dn->shape[0], k = dn->shape[1], D = wdn->shape[1], F = wdn->shape[2];
    if (!zm__pm_shape_is(dn, 3, (int64_t[]){P, k, D}) || !zm__pm_shape_is(hn, 3, (int64_t[]){P, k, F}) || !zm__f32(g, h) ||
        !zm__pm_shape_is(cn, 2, (int64_t[]){P, D}))
        return 0;
    if (!zm__pm_only_used_by(g, d, (int[]){mu >= 0 ? mu : cb}, 1)) return 0;
    /* the residual add, if the combine's only user is ADD(combine, x) */
    int ad = -1, x = -1;
    for (int i = cb + 1; i < g->n_nodes && ad < 0; i++) {
        const zm_node *u = zm__nd(g, i);
        if (u->op != ZM_OP_ADD || (u->src[0] != cb && u->src[1] != cb)) continue;
        int o = u->src[0] == cb ? u->src[1] : u->src[0];
        if (o != cb && zm__pm_same_shape(zm__nd(g, o), cn) && zm__pm_same_shape(u, cn) && zm__f32(g, o)) { ad = i; x = o; }
    }
    if (ad >= 0 && !zm__pm_only_used_by(g, cb, &ad, 1)) ad = -1;
    zm_node add[2];
    int n_add = 0;
    int wsrc = w;
    if (mu >= 0) { /* w is the [P,k,1] VIEW side of the MUL: name it as [P,k] */
        add[n_add] = zm_node_make(ZM_OP_VIEW, ZM_F32, 2, (int64_t[]){P, k});
        add[n_add].n_src = 1;
        add[n_add].src[0] = w;
        add[n_add].layer = cn->layer;
        snprintf(add[n_add].name, sizeof add[n_add].name, "gather_qmm_combine.weights");
        wsrc = ZM_NEW(n_add);
        n_add++;
    } else if (!zm__pm_shape_is(zm__nd(g, w), 2, (int64_t[]){P, k}) || !zm__f32(g, w)) {
        return 0;
    }
    zm_node *f = &add[n_add];
    *f = zm_node_make(ZM_OP_GATHER_QMM_COMBINE, ZM_F32, 2, (int64_t[]){P, D});
    f->n_src = ad >= 0 ? 5 : 4;
    f->src[0] = wd;
    f->src[1] = h;
    f->src[2] = ids;
    f->src[3] = wsrc;
    if (ad >= 0) f->src[4] = x;
    f->layer = cn->layer;
    snprintf(f->name, sizeof f->name, "gather_qmm_combine");
    int del[4], n_del = 0;
    del[n_del++] = d;
    if (mu >= 0) del[n_del++] = mu;
    del[n_del++] = cb;
    if (ad >= 0) del[n_del++] = ad;
    const int red[1][2] = {{ad >= 0 ? ad : cb, n_add}};
    return zm__commit(zm_graph_rewrite(g, del, n_del, add, n_add + 1, red, 1, NULL, NULL));
}

const zm__pattern zm__pat_gather_qmm_combine = {
    "gather_qmm_combine", "selected experts' down matmul + routing weights + sum + residual in one kernel", try_at, ZM_OP_GATHER_QMM_COMBINE};
