/* AdamW in one pass over p, m, v and g (decoupled weight decay, as
 * PyTorch's AdamW: p *= 1 - lr*wd, then the Adam step with bias-corrected
 * moments). Bias corrections are computed once per call in double. CUDA in
 * optimizer.cu. Checked against a float64 reference of several steps by
 * tests/test_catalog_optimizer.c. */
#include "kernels/catalog/common.h"

zm_status zm_op_adamw_step(zm_tensor *p, zm_tensor *m, zm_tensor *v, const zm_tensor *g, const zm_adamw_opts *o) {
    const char *n = "adamw_step";
    if (!p || !o) return zm__err(ZM_ERR_INVALID, "%s: p or opts is NULL", n);
    zm_device d = p->device;
    ZM_TRY(zm__arg(n, "p", p, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "m", m, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "v", v, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "g", g, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "m", m, "p", p));
    ZM_TRY(zm__same_shape(n, "v", v, "p", p));
    ZM_TRY(zm__same_shape(n, "g", g, "p", p));
    if (o->step < 1) return zm__err(ZM_ERR_RANGE, "%s: step %d (1-based)", n, o->step);
    if (!(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->eps > 0 && o->lr >= 0))
        return zm__err(ZM_ERR_RANGE, "%s: betas in [0, 1), eps > 0, lr >= 0 required", n);
    float c1 = (float)(1 - pow(o->beta1, o->step)), c2 = (float)(1 - pow(o->beta2, o->step));
    int64_t N = zm_tensor_numel(p);
    if (d == ZM_CUDA)
        ZM_CUDA_CALL(n, zm_cuda_adamw(p->data, m->data, v->data, g->data, N, o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, c1, c2));
    float *pp = p->data, *mp = m->data, *vp = v->data;
    const float *gp = g->data;
    for (int64_t i = 0; i < N; i++) {
        float gi = gp[i];
        mp[i] = o->beta1 * mp[i] + (1 - o->beta1) * gi;
        vp[i] = o->beta2 * vp[i] + (1 - o->beta2) * gi * gi;
        float mh = mp[i] / c1, vh = vp[i] / c2;
        pp[i] = pp[i] * (1 - o->lr * o->weight_decay) - o->lr * mh / (sqrtf(vh) + o->eps);
    }
    return ZM_OK;
}
