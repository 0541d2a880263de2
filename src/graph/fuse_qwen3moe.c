/* A minimal fusion pass over the stock qwen3moe graph, so the CUDA tests and
 * the GPU benchmark can run a patched graph before src/patch (issue 4)
 * exists: five rewrites matched on op and data flow (never names), each
 * checked to have single-use intermediates:
 *   softmax, topk, gather (, sum, div)         -> topk_gating_softmax
 *   matmul_id gate, matmul_id up, silu, mul    -> gather_qmm_swiglu
 *   matmul_id down, mul w, sum, add residual   -> gather_qmm_combine
 *   add residual, rms_norm                     -> add_rmsnorm
 *   rms_norm per head, rope                    -> qk_norm_rope
 * The fused ops compute what the chain computes (graph.h); on CUDA they are
 * bit-identical (tests/test_cuda_ops.c), so greedy decode stays
 * token-identical (tests/test_cuda_graph.c). Usable as a session rewrite
 * hook (zm__model_set_rewrite(m, zm__fuse_qwen3moe, NULL)). */
#include "core/internal.h"
#include "graph/exec_cuda.h"
#include <string.h>

static int uses(const zm_graph *g, int id) { return zm_graph_uses(g, id); }
static const zm_node *N(const zm_graph *g, int id) { return &g->nodes[id]; }
static zm_node view_of(int src, zm_dtype dt, int ndim, const int64_t *shape, int64_t off) {
    zm_node v = zm_node_make(ZM_OP_VIEW, dt, ndim, shape);
    v.n_src = 1;
    v.src[0] = src;
    v.view_offset = off;
    return v;
}

// ---------------------------------------------------------------------------
/* softmax s -> topk t, gather w (s, t) [-> sum ws (w), div wn (w, ws)] */
static int try_gating(zm_graph *g, int s) {
    if (N(g, s)->op != ZM_OP_SOFTMAX || N(g, s)->ndim != 2) return 0;
    int t = -1, w = -1;
    for (int i = s + 1; i < g->n_nodes; i++) {
        const zm_node *n = N(g, i);
        if (n->op == ZM_OP_TOPK && n->src[0] == s) t = i;
        if (n->op == ZM_OP_GATHER && n->src[0] == s) w = i;
    }
    if (t < 0 || w < 0 || uses(g, s) != 2 || N(g, w)->src[1] != t) return 0;
    int del[5] = {s, t, w}, nd = 3, last = w, renorm = 0;
    /* renormalisation: w read by a SUM (axis 1) and a DIV (w / sum) only */
    int sum = -1, div = -1;
    for (int i = w + 1; i < g->n_nodes; i++) {
        const zm_node *n = N(g, i);
        if (n->op == ZM_OP_SUM && n->src[0] == w && n->ip[0] == 1) sum = i;
        if (n->op == ZM_OP_DIV && n->src[0] == w && sum >= 0 && n->src[1] == sum) div = i;
    }
    if (sum >= 0 && div >= 0 && uses(g, w) == 2 && uses(g, sum) == 1) {
        del[nd++] = sum;
        del[nd++] = div;
        last = div;
        renorm = 1;
    }
    const int64_t P = N(g, s)->shape[0], k = N(g, t)->shape[1];
    zm_node add[3];
    add[0] = zm_node_make(ZM_OP_TOPK_GATING_SOFTMAX, ZM_F32, 3, (int64_t[]){2, P, k});
    add[0].n_src = 1;
    add[0].src[0] = N(g, s)->src[0];
    add[0].ip[0] = (int32_t)k;
    add[0].ip[1] = renorm;
    add[0].layer = N(g, s)->layer;
    snprintf(add[0].name, sizeof add[0].name, "blk.%d.topk_gating", add[0].layer);
    add[1] = view_of(ZM_NEW(0), ZM_F32, 2, (int64_t[]){P, k}, 0);
    add[2] = view_of(ZM_NEW(0), ZM_I32, 2, (int64_t[]){P, k}, 4 * P * k);
    add[1].layer = add[2].layer = add[0].layer;
    const int red[2][2] = {{last, 1}, {t, 2}};
    return zm_graph_rewrite(g, del, nd, add, 3, red, 2, NULL, NULL) == ZM_OK;
}

/* matmul_id g (Wg, x, ids), matmul_id u (Wu, x, ids), silu gs (g), mul (gs, u) */
static int try_swiglu(zm_graph *g, int m) {
    const zm_node *mn = N(g, m);
    if (mn->op != ZM_OP_MUL) return 0;
    int gs = mn->src[0], u = mn->src[1];
    if (N(g, gs)->op != ZM_OP_SILU || N(g, u)->op != ZM_OP_MATMUL_ID) return 0;
    int gm = N(g, gs)->src[0];
    const zm_node *G = N(g, gm), *U = N(g, u);
    if (G->op != ZM_OP_MATMUL_ID || G->src[1] != U->src[1] || G->src[2] != U->src[2]) return 0;
    if (N(g, G->src[1])->shape[1] != 1 || uses(g, gm) != 1 || uses(g, gs) != 1 || uses(g, u) != 1) return 0;
    zm_node f = zm_node_make(ZM_OP_GATHER_QMM_SWIGLU, ZM_F32, mn->ndim, mn->shape);
    f.n_src = 4;
    f.src[0] = G->src[0];
    f.src[1] = U->src[0];
    f.src[2] = G->src[1];
    f.src[3] = G->src[2];
    f.layer = mn->layer;
    snprintf(f.name, sizeof f.name, "blk.%d.gather_qmm_swiglu", f.layer);
    return zm_graph_replace(g, (int[]){gm, u, gs, m}, 4, &f, m, NULL, NULL) == ZM_OK;
}

/* matmul_id d (Wd, h, ids), mul dw (d, w3 = view of w [P,k]), sum axis 1, add (sum, x) */
static int try_combine(zm_graph *g, int a) {
    const zm_node *an = N(g, a);
    if (an->op != ZM_OP_ADD) return 0;
    for (int side = 0; side < 2; side++) {
        int s = an->src[side], x = an->src[1 - side];
        if (N(g, s)->op != ZM_OP_SUM || N(g, s)->ip[0] != 1 || uses(g, s) != 1) continue;
        int dw = N(g, s)->src[0];
        if (N(g, dw)->op != ZM_OP_MUL || uses(g, dw) != 1) continue;
        int d = N(g, dw)->src[0], w3 = N(g, dw)->src[1];
        if (N(g, d)->op != ZM_OP_MATMUL_ID || uses(g, d) != 1 || N(g, w3)->op != ZM_OP_VIEW) continue;
        int w = N(g, w3)->src[0];
        const zm_node *D = N(g, d);
        if (N(g, w)->ndim != 2 || N(g, w)->shape[1] != N(g, D->src[2])->shape[1]) continue;
        if (N(g, D->src[1])->shape[1] == 1) continue; /* per-slot input expected */
        zm_node f = zm_node_make(ZM_OP_GATHER_QMM_COMBINE, ZM_F32, an->ndim, an->shape);
        f.n_src = 5;
        f.src[0] = D->src[0];
        f.src[1] = D->src[1];
        f.src[2] = D->src[2];
        f.src[3] = w;
        f.src[4] = x;
        f.layer = an->layer;
        snprintf(f.name, sizeof f.name, "blk.%d.gather_qmm_combine", f.layer);
        int del[5] = {d, dw, s, a}, nd = 4;
        if (uses(g, w3) == 1) del[nd++] = w3;
        return zm_graph_replace(g, del, nd, &f, a, NULL, NULL) == ZM_OK;
    }
    return 0;
}

/* add a (x, y) -> rms_norm r (a, w); a keeps its other readers via a VIEW */
static int try_add_rmsnorm(zm_graph *g, int r) {
    const zm_node *rn = N(g, r);
    if (rn->op != ZM_OP_RMS_NORM || rn->n_src != 2 || rn->ndim != 2) return 0;
    int a = rn->src[0];
    if (N(g, a)->op != ZM_OP_ADD || !(N(g, a)->ndim == 2 && N(g, N(g, a)->src[1])->ndim == 2)) return 0;
    if (memcmp(N(g, N(g, a)->src[0])->shape, N(g, N(g, a)->src[1])->shape, sizeof rn->shape)) return 0;
    for (int i = a + 1; i < r; i++) /* a's readers must come after r */
        for (int s = 0; s < N(g, i)->n_src; s++)
            if (N(g, i)->src[s] == a) return 0;
    const int64_t P = rn->shape[0], Dm = rn->shape[1];
    zm_node add[3];
    add[0] = zm_node_make(ZM_OP_ADD_RMSNORM, ZM_F32, 3, (int64_t[]){2, P, Dm});
    add[0].n_src = 3;
    add[0].src[0] = N(g, a)->src[0];
    add[0].src[1] = N(g, a)->src[1];
    add[0].src[2] = rn->src[1];
    add[0].fp[0] = rn->fp[0];
    add[0].layer = rn->layer;
    snprintf(add[0].name, sizeof add[0].name, "blk.%d.add_rmsnorm", add[0].layer);
    add[1] = view_of(ZM_NEW(0), ZM_F32, 2, (int64_t[]){P, Dm}, 0);
    add[2] = view_of(ZM_NEW(0), ZM_F32, 2, (int64_t[]){P, Dm}, 4 * P * Dm);
    add[1].layer = add[2].layer = rn->layer;
    const int red[2][2] = {{a, 1}, {r, 2}};
    return zm_graph_rewrite(g, (int[]){a, r}, 2, add, 3, red, 2, NULL, NULL) == ZM_OK;
}

/* rms_norm n (x [P,H,D], w) -> rope (n, pos) */
static int try_qk_norm_rope(zm_graph *g, int ro) {
    const zm_node *rn = N(g, ro);
    if (rn->op != ZM_OP_ROPE) return 0;
    int n = rn->src[0];
    const zm_node *nn = N(g, n);
    if (nn->op != ZM_OP_RMS_NORM || nn->n_src != 2 || nn->ndim != 3 || uses(g, n) != 1) return 0;
    zm_node f = zm_node_make(ZM_OP_QK_NORM_ROPE, ZM_F32, 3, rn->shape);
    f.n_src = 3;
    f.src[0] = nn->src[0];
    f.src[1] = nn->src[1];
    f.src[2] = rn->src[1];
    f.fp[0] = nn->fp[0];
    f.fp[1] = rn->fp[0];
    f.ip[0] = rn->ip[0];
    f.ip[1] = rn->ip[1];
    f.layer = rn->layer;
    snprintf(f.name, sizeof f.name, "blk.%d.qk_norm_rope", f.layer);
    return zm_graph_replace(g, (int[]){n, ro}, 2, &f, ro, NULL, NULL) == ZM_OK;
}

zm_status zm__fuse_qwen3moe(void *ctx, zm_graph *g) {
    (void)ctx;
    if (!g) return zm__err(ZM_ERR_INVALID, "fuse: NULL graph");
    for (int pass = 0; pass < 5; pass++) {
        for (int i = 0; i < g->n_nodes; i++) {
            int hit = 0;
            switch (pass) {
            case 0: hit = try_gating(g, i); break;
            case 1: hit = try_swiglu(g, i); break;
            case 2: hit = try_combine(g, i); break;
            case 3: hit = try_add_rmsnorm(g, i); break;
            default: hit = try_qk_norm_rope(g, i); break;
            }
            if (hit && i > 8) i -= 8; /* ids shifted: look again just before */
        }
    }
    zm_clear_error(); /* refused candidates leave messages that mean nothing */
    return zm_graph_validate(g);
}
