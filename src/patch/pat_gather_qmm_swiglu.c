/* Pattern gather_qmm_swiglu: the selected experts' gate and up matmuls and
 * the SwiGLU between them in one kernel:
 *   g = MATMUL_ID(Wg, x, ids); u = MATMUL_ID(Wu, x, ids);
 *   h = MUL(SILU(g), u)   or   h = SWIGLU(g, u)
 *   -> h = GATHER_QMM_SWIGLU(Wg, Wu, x, ids)
 * Fires when g, u (and SILU) are used only inside the chain, x is the
 * broadcast [P, 1, D] input, both weights are [E, F, D] of one dtype.
 * Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

static int try_at(zm_graph *g, int m) {
    int gate, up, s = -1;
    const zm_node *mn = zm__nd(g, m);
    if (zm__is(g, m, ZM_OP_SWIGLU)) {
        gate = mn->src[0];
        up = mn->src[1];
    } else if (zm__is(g, m, ZM_OP_MUL) && zm__is(g, mn->src[0], ZM_OP_SILU)) {
        s = mn->src[0];
        gate = zm__nd(g, s)->src[0];
        up = mn->src[1];
        if (!zm__pm_only_used_by(g, s, &m, 1) || !zm__pm_same_shape(zm__nd(g, s), mn)) return 0;
    } else {
        return 0;
    }
    if (!zm__is(g, gate, ZM_OP_MATMUL_ID) || !zm__is(g, up, ZM_OP_MATMUL_ID)) return 0;
    const zm_node *gn = zm__nd(g, gate), *un = zm__nd(g, up);
    if (gn->src[1] != un->src[1] || gn->src[2] != un->src[2]) return 0; /* same x, same ids */
    int wg = gn->src[0], wu = un->src[0], x = gn->src[1], ids = gn->src[2];
    const zm_node *wgn = zm__nd(g, wg), *wun = zm__nd(g, wu), *xn = zm__nd(g, x);
    if (wgn->op != ZM_OP_WEIGHT || wun->op != ZM_OP_WEIGHT || wgn->dtype != wun->dtype || !zm__pm_same_shape(wgn, wun) ||
        wgn->ndim != 3)
        return 0;
    const int64_t P = mn->shape[0], k = mn->shape[1], F = wgn->shape[1], D = wgn->shape[2];
    if (!zm__pm_shape_is(mn, 3, (int64_t[]){P, k, F}) || !zm__pm_same_shape(gn, mn) || !zm__pm_same_shape(un, mn)) return 0;
    if (!zm__pm_shape_is(xn, 3, (int64_t[]){P, 1, D}) || !zm__f32(g, x) || !zm__f32(g, m)) return 0;
    if (!zm__pm_shape_is(zm__nd(g, ids), 2, (int64_t[]){P, k}) || zm__nd(g, ids)->dtype != ZM_I32) return 0;
    int inside[2] = {s >= 0 ? s : m, m};
    if (!zm__pm_only_used_by(g, gate, inside, 1) || !zm__pm_only_used_by(g, up, &m, 1)) return 0;
    zm_node f = zm_node_make(ZM_OP_GATHER_QMM_SWIGLU, ZM_F32, 3, mn->shape);
    f.n_src = 4;
    f.src[0] = wg;
    f.src[1] = wu;
    f.src[2] = x;
    f.src[3] = ids;
    f.layer = mn->layer;
    snprintf(f.name, sizeof f.name, "gather_qmm_swiglu");
    int del[4] = {gate, up, m, s};
    return zm__commit(zm_graph_replace(g, del, s >= 0 ? 4 : 3, &f, m, NULL, NULL));
}

const zm__pattern zm__pat_gather_qmm_swiglu = {"gather_qmm_swiglu",
                                               "selected experts' gate + up matmuls + SwiGLU in one kernel", try_at, ZM_OP_GATHER_QMM_SWIGLU};
