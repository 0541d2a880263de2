/* Optimizer step: AdamW (Loshchilov & Hutter 2019) in one pass over p, m, v
 * and g, as torch.optim.AdamW computes it: p *= 1 - lr * wd (decoupled
 * decay), m and v updated, p -= lr * m_hat / (sqrt(v_hat) + eps) with the
 * bias corrections of step t. f32, in place. CUDA in optimizer.cu.
 * Checked against a float64 reference over several steps by
 * tests/test_catalog_optimizer.c (run: build/tests/test_catalog_optimizer). */
#include "kernels/catalog/common.h"

typedef struct { float *p, *m, *v; const float *g; float lr, b1, b2, eps, wd, c1, c2; } zm__adamw_ctx;

static void zm__adamw_range(void *cv, int64_t i0, int64_t i1) {
    const zm__adamw_ctx *c = cv;
    for (int64_t i = i0; i < i1; i++) {
        float g = c->g[i], m = c->b1 * c->m[i] + (1.0f - c->b1) * g, v = c->b2 * c->v[i] + (1.0f - c->b2) * g * g;
        c->m[i] = m;
        c->v[i] = v;
        c->p[i] = c->p[i] * (1.0f - c->lr * c->wd) - c->lr * (m / c->c1) / (sqrtf(v / c->c2) + c->eps);
    }
}

zm_status zm_op_adamw_step(zm_tensor *p, zm_tensor *m, zm_tensor *v, const zm_tensor *g, const zm_adamw_opts *o) {
    const char *n = "adamw_step";
    if (!p || !o) return zm__err(ZM_ERR_INVALID, "%s: %s is NULL", n, p ? "opts" : "p");
    zm_device d = p->device;
    ZM_TRY(zm__arg(n, "p", p, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "m", m, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "v", v, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "g", g, ZM_DT(ZM_F32), d));
    int64_t N = zm_tensor_numel(p);
    ZM_TRY(zm__numel(n, "m", m, N));
    ZM_TRY(zm__numel(n, "v", v, N));
    ZM_TRY(zm__numel(n, "g", g, N));
    if (o->step < 1) return zm__err(ZM_ERR_RANGE, "%s: step %d must be >= 1 (1-based)", n, o->step);
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
        return zm__err(ZM_ERR_RANGE, "%s: betas (%g, %g) must lie in [0, 1)", n, (double)o->beta1, (double)o->beta2);
    if (!(o->eps >= 0) || !(o->lr >= 0) || !(o->weight_decay >= 0))
        return zm__err(ZM_ERR_RANGE, "%s: lr %g, eps %g and weight_decay %g must be >= 0", n, (double)o->lr,
                       (double)o->eps, (double)o->weight_decay);
    /* bias corrections in double: 1 - beta^t underflows gracefully, no pow per element */
    float c1 = (float)(1.0 - pow(o->beta1, o->step)), c2 = (float)(1.0 - pow(o->beta2, o->step));
    if (N == 0) return ZM_OK;
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_adamw(p->data, m->data, v->data, g->data, N, o->lr, o->beta1, o->beta2, o->eps,
                                      o->weight_decay, c1, c2));
    zm__adamw_ctx c = {p->data, m->data, v->data, g->data, o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, c1, c2};
    zm__par(N, 16, zm__adamw_range, &c);
    return ZM_OK;
}
