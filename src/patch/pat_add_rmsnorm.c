/* Pattern add_rmsnorm: s = ADD(a, b); n = RMS_NORM(s, w) -> ADD_RMSNORM(a,
 * b, w) returning both s and n (the residual stream and the normed input
 * of the next block), as two VIEWs of the fused output. The sum may have
 * other users (the next residual add): they read the first VIEW.
 * Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

static int try_at(zm_graph *g, int rn) {
    if (!zm__is(g, rn, ZM_OP_RMS_NORM)) return 0;
    const zm_node *nn = zm__nd(g, rn);
    int s = nn->src[0];
    if (nn->n_src != 2 || !zm__is(g, s, ZM_OP_ADD)) return 0;
    const zm_node *sn = zm__nd(g, s);
    int a = sn->src[0], b = sn->src[1], w = nn->src[1];
    if (!zm__pm_same_shape(zm__nd(g, a), sn) || !zm__pm_same_shape(zm__nd(g, b), sn) || !zm__pm_same_shape(sn, nn)) return 0;
    if (!zm__f32(g, a) || !zm__f32(g, b) || !zm__f32(g, s) || !zm__f32(g, rn) || sn->ndim > 3) return 0;
    const zm_node *wn = zm__nd(g, w);
    if (wn->ndim != 1 || wn->shape[0] != sn->shape[sn->ndim - 1] || !zm_dtype_is_float(wn->dtype)) return 0;
    int64_t fs[ZM_MAX_DIMS] = {2};
    for (int i = 0; i < sn->ndim; i++) fs[i + 1] = sn->shape[i];
    zm_node add[3];
    add[0] = zm_node_make(ZM_OP_ADD_RMSNORM, ZM_F32, sn->ndim + 1, fs);
    add[0].n_src = 3;
    add[0].src[0] = a;
    add[0].src[1] = b;
    add[0].src[2] = w;
    add[0].fp[0] = nn->fp[0];
    add[0].layer = nn->layer;
    snprintf(add[0].name, sizeof add[0].name, "add_rmsnorm");
    for (int v = 0; v < 2; v++) {
        add[1 + v] = zm_node_make(ZM_OP_VIEW, ZM_F32, sn->ndim, sn->shape);
        add[1 + v].n_src = 1;
        add[1 + v].src[0] = ZM_NEW(0);
        add[1 + v].view_offset = v ? (int64_t)sn->nbytes : 0;
        add[1 + v].layer = nn->layer;
        snprintf(add[1 + v].name, sizeof add[1 + v].name, v ? "add_rmsnorm.norm" : "add_rmsnorm.sum");
    }
    const int red[2][2] = {{s, 1}, {rn, 2}};
    return zm__commit(zm_graph_rewrite(g, (int[]){s, rn}, 2, add, 3, red, 2, NULL, NULL));
}

const zm__pattern zm__pat_add_rmsnorm = {"add_rmsnorm", "residual add + RMSNorm in one pass, returning both", try_at, ZM_OP_ADD_RMSNORM};
