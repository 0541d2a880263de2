/* CPU kernels of the fused ops that src/patch puts into the graph. Each one
 * performs the same f32 operations, in the same order, as the primitive
 * chain it replaces (see graph.h), so a patched graph is bit-identical to
 * the stock one on the CPU and greedy decode stays token-identical.
 * Checked by tests/test_graph.c: each fused op against its primitive chain,
 * run through the CPU executor, compared exactly. */
#include "core/internal.h"
#include "graph/ops_cpu.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------
/* logits [P, E] -> out [2, P, k]: weights (F32) then ids (I32 bits). */
static zm_status topk_gating(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *s = &g->nodes[n->src[0]];
    const int64_t P = s->shape[0], E = s->shape[1], k = n->ip[0];
    if (k < 1 || k > E || n->nbytes != (uint64_t)(2 * P * k * 4))
        return zm__err(ZM_ERR_SHAPE, "graph node %d '%s': topk_gating_softmax k=%lld, E=%lld", id, n->name, (long long)k, (long long)E);
    float *prob = malloc(sizeof(float) * (size_t)E);
    if (!prob) return zm__err(ZM_ERR_NOMEM, "topk_gating_softmax: out of memory");
    float *wout = ptr[id];
    int32_t *iout = (int32_t *)((char *)ptr[id] + P * k * 4);
    for (int64_t p = 0; p < P; p++) {
        int32_t *o = iout + p * k;
        float *w = wout + p * k;
        zm__cpu_softmax_row(prob, (const float *)ptr[n->src[0]] + p * E, E);
        zm__cpu_topk_row(o, prob, E, k);
        for (int64_t j = 0; j < k; j++) w[j] = prob[o[j]];
        if (n->ip[1]) {
            float ws = w[0];
            for (int64_t j = 1; j < k; j++) ws += w[j];
            for (int64_t j = 0; j < k; j++) w[j] = w[j] / ws;
        }
    }
    free(prob);
    return ZM_OK;
}

/* y[p] = sum_j x[p,j] * w[p,j], slot by slot (MUL then SUM axis 1). */
static void combine_row(float *y, const float *x, const float *w, int64_t k, int64_t D) {
    for (int64_t i = 0; i < D; i++) y[i] = x[i] * w[0];
    for (int64_t j = 1; j < k; j++)
        for (int64_t i = 0; i < D; i++) y[i] += x[j * D + i] * w[j];
}

static void swiglu(float *y, const float *gt, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float s = gt[i] / (1.0f + expf(-gt[i]));
        y[i] = s * up[i];
    }
}

static zm_status gather_qmm_swiglu(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *wg = &g->nodes[n->src[0]], *wu = &g->nodes[n->src[1]];
    const int64_t E = wg->shape[0], F = wg->shape[1], D = wg->shape[2];
    const int64_t P = n->shape[0], k = n->shape[1];
    const int32_t *ids = ptr[n->src[3]];
    float *tmp = env->scratch;
    for (int64_t p = 0; p < P; p++) {
        float *y = (float *)ptr[id] + p * k * F;
        const float *x = (const float *)ptr[n->src[2]] + p * D;
        ZM_TRY(zm_matvec_experts(env->pool, env->mv, wg->dtype, ptr[n->src[0]], F, D, (int64_t)(wg->nbytes / (uint64_t)E), E,
                                 ids + p * k, k, x, 0, y, F));
        ZM_TRY(zm_matvec_experts(env->pool, env->mv, wu->dtype, ptr[n->src[1]], F, D, (int64_t)(wu->nbytes / (uint64_t)E), E,
                                 ids + p * k, k, x, 0, tmp, F));
        swiglu(y, y, tmp, k * F);
    }
    return ZM_OK;
}

static zm_status gather_qmm_combine(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *wd = &g->nodes[n->src[0]];
    const int64_t E = wd->shape[0], D = wd->shape[1], F = wd->shape[2];
    const int64_t P = n->shape[0], k = g->nodes[n->src[2]].shape[1];
    const int32_t *ids = ptr[n->src[2]];
    float *tmp = env->scratch;
    for (int64_t p = 0; p < P; p++) {
        ZM_TRY(zm_matvec_experts(env->pool, env->mv, wd->dtype, ptr[n->src[0]], D, F, (int64_t)(wd->nbytes / (uint64_t)E), E,
                                 ids + p * k, k, (const float *)ptr[n->src[1]] + p * k * F, F, tmp, D));
        float *y = (float *)ptr[id] + p * D;
        combine_row(y, tmp, (const float *)ptr[n->src[3]] + p * k, k, D);
        if (n->n_src > 4) {
            const float *r = (const float *)ptr[n->src[4]] + p * D;
            for (int64_t i = 0; i < D; i++) y[i] = y[i] + r[i];
        }
    }
    return ZM_OK;
}

static zm_status add_rmsnorm(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *a = &g->nodes[n->src[0]];
    const int64_t D = a->shape[a->ndim - 1], rows = zm_node_numel(a) / D;
    const zm_node *wn = &g->nodes[n->src[2]];
    float *buf = NULL;
    if (wn->dtype != ZM_F32 && !(buf = malloc(sizeof(float) * (size_t)D))) return zm__err(ZM_ERR_NOMEM, "add_rmsnorm: out of memory");
    const float *w = zm__cpu_f32_weights(wn, ptr[n->src[2]], buf, D);
    float *sum = ptr[id], *nrm = (float *)ptr[id] + rows * D;
    const float *x = ptr[n->src[0]], *y = ptr[n->src[1]];
    for (int64_t i = 0; i < rows * D; i++) sum[i] = x[i] + y[i];
    for (int64_t r = 0; r < rows; r++) zm__cpu_rmsnorm_row(nrm + r * D, sum + r * D, D, n->fp[0], w);
    free(buf);
    return ZM_OK;
}

static zm_status qk_norm_rope(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *wn = &g->nodes[n->src[1]];
    const int64_t P = n->shape[0], H = n->shape[1], D = n->shape[2];
    float *tmp = env->scratch, *wbuf = env->scratch + D, *cs = env->scratch + 2 * D;
    const float *w = zm__cpu_f32_weights(wn, ptr[n->src[1]], wbuf, D);
    const int32_t *pos = ptr[n->src[2]];
    for (int64_t p = 0; p < P; p++) {
        zm__cpu_rope_table(cs, n->ip[1], pos[p], n->fp[1]);
        for (int64_t h = 0; h < H; h++) {
            const int64_t o = (p * H + h) * D;
            zm__cpu_rmsnorm_row(tmp, (const float *)ptr[n->src[0]] + o, D, n->fp[0], w);
            zm__cpu_rope_row((float *)ptr[id] + o, tmp, D, n->ip[1], n->ip[0], cs);
        }
    }
    return ZM_OK;
}

// ---------------------------------------------------------------------------
int64_t zm__cpu_fused_scratch(const zm_graph *g, int id) {
    const zm_node *n = &g->nodes[id];
    switch (n->op) {
    case ZM_OP_GATHER_QMM_SWIGLU: return n->shape[1] * n->shape[2];
    case ZM_OP_GATHER_QMM_COMBINE: return g->nodes[n->src[2]].shape[1] * n->shape[1];
    case ZM_OP_QK_NORM_ROPE: return 3 * n->shape[2];
    default: return 0;
    }
}

zm_status zm__cpu_fused(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id];
    switch (n->op) {
    case ZM_OP_TOPK_GATING_SOFTMAX: return topk_gating(g, id, ptr);
    case ZM_OP_MOE_COMBINE: {
        const zm_node *x = &g->nodes[n->src[0]];
        const int64_t P = x->shape[0], k = x->shape[1], D = x->shape[2];
        for (int64_t p = 0; p < P; p++)
            combine_row((float *)ptr[id] + p * D, (const float *)ptr[n->src[0]] + p * k * D, (const float *)ptr[n->src[1]] + p * k, k, D);
        return ZM_OK;
    }
    case ZM_OP_SWIGLU: swiglu(ptr[id], ptr[n->src[0]], ptr[n->src[1]], zm_node_numel(n)); return ZM_OK;
    case ZM_OP_GATHER_QMM_SWIGLU: return gather_qmm_swiglu(env, g, id, ptr);
    case ZM_OP_GATHER_QMM_COMBINE: return gather_qmm_combine(env, g, id, ptr);
    case ZM_OP_ADD_RMSNORM: return add_rmsnorm(g, id, ptr);
    case ZM_OP_QK_NORM_ROPE: return qk_norm_rope(env, g, id, ptr);
    default:
        return zm__err(ZM_ERR_UNSUPPORTED, "graph node %d '%s': op %s has no CPU kernel", id, n->name, zm_op_name(n->op));
    }
}
