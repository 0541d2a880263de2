/* Pattern moe_gating: the router's SOFTMAX -> TOPK -> GATHER (-> SUM ->
 * DIV renormalisation) becomes one TOPK_GATING_SOFTMAX node, whose output
 * holds the routing weights and the expert ids, named by two VIEWs that
 * take over the uses of the old weights and ids.
 * Fires only when the softmax feeds exactly the top-k and the gather, and
 * (for the renormalised form) the gathered weights feed exactly the sum and
 * the divide. Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

static int try_at(zm_graph *g, int sm) {
    if (!zm__is(g, sm, ZM_OP_SOFTMAX)) return 0;
    const zm_node *smn = zm__nd(g, sm);
    if (smn->ndim != 2 || !zm__f32(g, sm) || !zm__f32(g, smn->src[0])) return 0;
    const int64_t P = smn->shape[0], E = smn->shape[1];
    /* the top-k and the gather reading the probabilities */
    int tk = -1, ga = -1;
    for (int i = sm + 1; i < g->n_nodes; i++) {
        const zm_node *u = zm__nd(g, i);
        if (u->op == ZM_OP_TOPK && u->src[0] == sm) tk = tk < 0 ? i : -2;
        if (u->op == ZM_OP_GATHER && u->src[0] == sm) ga = ga < 0 ? i : -2;
    }
    if (tk < 0 || ga < 0 || zm__nd(g, ga)->src[1] != tk) return 0;
    if (!zm__pm_only_used_by(g, sm, (int[]){tk, ga}, 2)) return 0;
    const zm_node *tkn = zm__nd(g, tk), *gan = zm__nd(g, ga);
    const int64_t k = tkn->ip[0];
    if (tkn->dtype != ZM_I32 || !zm__pm_shape_is(tkn, 2, (int64_t[]){P, k}) || !zm__pm_shape_is(gan, 2, (int64_t[]){P, k}) ||
        !zm__f32(g, ga) || k < 1 || k > E)
        return 0;
    /* optional renormalisation w / sum(w) */
    int su = -1, dv = -1;
    for (int i = ga + 1; i < g->n_nodes; i++) {
        const zm_node *u = zm__nd(g, i);
        if (u->op == ZM_OP_SUM && u->src[0] == ga && u->ip[0] == 1 && zm__pm_shape_is(u, 2, (int64_t[]){P, 1})) su = i;
        if (su >= 0 && u->op == ZM_OP_DIV && u->src[0] == ga && u->src[1] == su) { dv = i; break; }
    }
    int renorm = su >= 0 && dv >= 0 && zm__pm_only_used_by(g, ga, (int[]){su, dv}, 2) && zm__pm_only_used_by(g, su, &dv, 1) &&
                 zm__f32(g, dv) && zm__pm_shape_is(zm__nd(g, dv), 2, (int64_t[]){P, k});
    zm_node add[3];
    add[0] = zm_node_make(ZM_OP_TOPK_GATING_SOFTMAX, ZM_F32, 3, (int64_t[]){2, P, k});
    add[0].n_src = 1;
    add[0].src[0] = smn->src[0];
    add[0].ip[0] = (int32_t)k;
    add[0].ip[1] = renorm;
    add[0].layer = smn->layer;
    snprintf(add[0].name, sizeof add[0].name, "topk_gating_softmax");
    add[1] = zm_node_make(ZM_OP_VIEW, ZM_F32, 2, (int64_t[]){P, k});
    add[2] = zm_node_make(ZM_OP_VIEW, ZM_I32, 2, (int64_t[]){P, k});
    for (int v = 1; v < 3; v++) {
        add[v].n_src = 1;
        add[v].src[0] = ZM_NEW(0);
        add[v].layer = smn->layer;
    }
    add[2].view_offset = 4 * P * k;
    snprintf(add[1].name, sizeof add[1].name, "gating.weights");
    snprintf(add[2].name, sizeof add[2].name, "gating.ids");
    int del[5] = {sm, tk, ga, su, dv};
    const int red[2][2] = {{renorm ? dv : ga, 1}, {tk, 2}};
    return zm__commit(zm_graph_rewrite(g, del, renorm ? 5 : 3, add, 3, red, 2, NULL, NULL));
}

const zm__pattern zm__pat_moe_gating = {"moe_gating", "router softmax + top-k + gather + renormalise in one kernel", try_at, ZM_OP_TOPK_GATING_SOFTMAX};
