/* Pattern moe_combine: SUM over the expert axis of MUL(y [P,k,D], w3
 * [P,k,1]) -> MOE_COMBINE(y, w [P,k]). The weights enter as a [P,k] VIEW of
 * w3 (same bytes). Fires when the product is used only by the sum.
 * Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

/* Shared with gather_qmm_combine: is `su` the weighted sum over experts
 * SUM(MUL(y, w3), axis 1)? Fills y, w3 and the MUL's id. */
int zm__match_weighted_sum(const zm_graph *g, int su, int *y, int *w3, int *mul);

int zm__match_weighted_sum(const zm_graph *g, int su, int *y, int *w3, int *mul) {
    if (!zm__is(g, su, ZM_OP_SUM)) return 0;
    const zm_node *sn = zm__nd(g, su);
    int mu = sn->src[0];
    if (sn->ip[0] != 1 || !zm__is(g, mu, ZM_OP_MUL)) return 0;
    const zm_node *mn = zm__nd(g, mu);
    if (mn->ndim != 3 || !zm__f32(g, mu) || !zm__f32(g, su)) return 0;
    const int64_t P = mn->shape[0], k = mn->shape[1], D = mn->shape[2];
    if (!zm__pm_shape_is(sn, 2, (int64_t[]){P, D})) return 0;
    const zm_node *yn = zm__nd(g, mn->src[0]), *wn = zm__nd(g, mn->src[1]);
    if (!zm__pm_same_shape(yn, mn) || !zm__pm_shape_is(wn, 3, (int64_t[]){P, k, 1}) || yn->dtype != ZM_F32 || wn->dtype != ZM_F32)
        return 0;
    if (!zm__pm_only_used_by(g, mu, &su, 1)) return 0;
    *y = mn->src[0];
    *w3 = mn->src[1];
    *mul = mu;
    return 1;
}

static int try_at(zm_graph *g, int su) {
    int y, w3, mu;
    if (!zm__match_weighted_sum(g, su, &y, &w3, &mu)) return 0;
    const zm_node *mn = zm__nd(g, mu);
    const int64_t P = mn->shape[0], k = mn->shape[1];
    zm_node add[2];
    add[0] = zm_node_make(ZM_OP_VIEW, ZM_F32, 2, (int64_t[]){P, k});
    add[0].n_src = 1;
    add[0].src[0] = w3;
    add[0].layer = mn->layer;
    snprintf(add[0].name, sizeof add[0].name, "moe_combine.weights");
    add[1] = zm_node_make(ZM_OP_MOE_COMBINE, ZM_F32, 2, zm__nd(g, su)->shape);
    add[1].n_src = 2;
    add[1].src[0] = y;
    add[1].src[1] = ZM_NEW(0);
    add[1].layer = mn->layer;
    snprintf(add[1].name, sizeof add[1].name, "moe_combine");
    const int red[1][2] = {{su, 1}};
    return zm__commit(zm_graph_rewrite(g, (int[]){mu, su}, 2, add, 2, red, 1, NULL, NULL));
}

const zm__pattern zm__pat_moe_combine = {"moe_combine", "routing-weight scale + sum over experts in one kernel", try_at, ZM_OP_MOE_COMBINE};
