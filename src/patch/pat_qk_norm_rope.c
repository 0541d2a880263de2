/* Pattern qk_norm_rope: ROPE(RMS_NORM(x [P,H,Dh], w [Dh]), pos) ->
 * QK_NORM_ROPE(x, w, pos): the per-head Q/K norm and the rotation in one
 * pass. Fires when the norm's result is used only by the rope.
 * Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

static int try_at(zm_graph *g, int ro) {
    if (!zm__is(g, ro, ZM_OP_ROPE)) return 0;
    const zm_node *rn = zm__nd(g, ro);
    int nm = rn->src[0], pos = rn->src[1];
    if (!zm__is(g, nm, ZM_OP_RMS_NORM)) return 0;
    const zm_node *nn = zm__nd(g, nm);
    if (nn->n_src != 2 || nn->ndim != 3 || rn->ndim != 3 || !zm__pm_same_shape(nn, rn)) return 0;
    int x = nn->src[0], w = nn->src[1];
    const zm_node *wn = zm__nd(g, w);
    if (!zm__f32(g, x) || !zm__f32(g, nm) || !zm__f32(g, ro) || !zm__pm_same_shape(zm__nd(g, x), nn)) return 0;
    if (wn->ndim != 1 || wn->shape[0] != nn->shape[2] || !zm_dtype_is_float(wn->dtype)) return 0;
    if (zm__nd(g, pos)->dtype != ZM_I32) return 0;
    if (!zm__pm_only_used_by(g, nm, &ro, 1)) return 0;
    zm_node f = zm_node_make(ZM_OP_QK_NORM_ROPE, ZM_F32, 3, rn->shape);
    f.n_src = 3;
    f.src[0] = x;
    f.src[1] = w;
    f.src[2] = pos;
    f.fp[0] = nn->fp[0];
    f.fp[1] = rn->fp[0];
    f.ip[0] = rn->ip[0];
    f.ip[1] = rn->ip[1];
    f.layer = rn->layer;
    snprintf(f.name, sizeof f.name, "qk_norm_rope");
    return zm__commit(zm_graph_replace(g, (int[]){nm, ro}, 2, &f, ro, NULL, NULL));
}

const zm__pattern zm__pat_qk_norm_rope = {"qk_norm_rope", "per-head RMSNorm + RoPE of Q or K in one kernel", try_at, ZM_OP_QK_NORM_ROPE};
