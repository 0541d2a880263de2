/* Pattern swiglu: MUL(SILU(gate), up) -> SWIGLU(gate, up).
 * Fires when the SILU result is used only by the MUL and gate, up and the
 * product all have one shape in F32. Checked by tests/test_patch.c. */
#include "patch/patch_priv.h"

static int try_at(zm_graph *g, int m) {
    if (!zm__is(g, m, ZM_OP_MUL)) return 0;
    const zm_node *mn = zm__nd(g, m);
    int s = mn->src[0], up = mn->src[1];
    if (!zm__is(g, s, ZM_OP_SILU)) return 0;
    int gate = zm__nd(g, s)->src[0];
    const zm_node *gn = zm__nd(g, gate), *un = zm__nd(g, up);
    if (!zm__pm_same_shape(gn, mn) || !zm__pm_same_shape(un, mn) || !zm__pm_same_shape(zm__nd(g, s), mn)) return 0;
    if (!zm__f32(g, gate) || !zm__f32(g, up) || !zm__f32(g, m) || !zm__f32(g, s)) return 0;
    if (!zm__pm_only_used_by(g, s, &m, 1)) return 0;
    zm_node f = zm_node_make(ZM_OP_SWIGLU, ZM_F32, mn->ndim, mn->shape);
    f.n_src = 2;
    f.src[0] = gate;
    f.src[1] = up;
    f.layer = mn->layer;
    snprintf(f.name, sizeof f.name, "swiglu");
    return zm__commit(zm_graph_replace(g, (int[]){s, m}, 2, &f, m, NULL, NULL));
}

const zm__pattern zm__pat_swiglu = {"swiglu", "SILU(gate) * up -> one SwiGLU kernel", try_at, ZM_OP_SWIGLU};
