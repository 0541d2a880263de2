/* Softmax cross-entropy per row with an ignore index, and its gradient.
 * Max-subtracted log-sum-exp in float. CUDA in loss.cu. Checked against
 * float64 references and finite differences by tests/test_catalog_loss.c. */
#include "kernels/catalog/common.h"

typedef struct { float *loss, *dl; const float *x, *dloss; const int32_t *t; int64_t V; int ign; } zm__xent_ctx;

static void zm__xent_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__xent_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * c->V;
        int32_t t = c->t[r];
        int ign = t == c->ign;
        float m = -INFINITY, s = 0;
        for (int64_t i = 0; i < c->V; i++) m = fmaxf(m, x[i]);
        for (int64_t i = 0; i < c->V; i++) s += expf(x[i] - m);
        float lse = m + logf(s);
        if (c->loss) c->loss[r] = ign ? 0.f : (t >= 0 && t < c->V) ? lse - x[t] : NAN;
        if (c->dl) {
            float gs = ign ? 0.f : c->dloss ? c->dloss[r] : 1.f;
            float *d = c->dl + r * c->V;
            for (int64_t i = 0; i < c->V; i++) d[i] = gs * (expf(x[i] - lse) - (i == t ? 1.f : 0.f));
        }
    }
}

static zm_status zm__xent(const char *n, zm_tensor *loss, zm_tensor *dl, const zm_tensor *logits,
                          const zm_tensor *tg, const zm_tensor *dloss, int ign) {
    if (!logits) return zm__err(ZM_ERR_INVALID, "%s: logits is NULL", n);
    zm_device d = logits->device;
    ZM_TRY(zm__arg(n, "logits", logits, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "targets", tg, ZM_DT(ZM_I32), d));
    int64_t V = logits->shape[logits->ndim - 1], R = zm_tensor_rows(logits);
    if (V < 1) return zm__err(ZM_ERR_SHAPE, "%s: empty vocabulary axis", n);
    ZM_TRY(zm__numel(n, "targets", tg, R));
    if (loss) { ZM_TRY(zm__arg(n, "loss", loss, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "loss", loss, R)); }
    if (dl) { ZM_TRY(zm__arg(n, "dlogits", dl, ZM_DT(ZM_F32), d)); ZM_TRY(zm__same_shape(n, "dlogits", dl, "logits", logits)); }
    if (dloss) { ZM_TRY(zm__arg(n, "dloss", dloss, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "dloss", dloss, R)); }
    float *lp = loss ? loss->data : NULL, *dp = dl ? dl->data : NULL;
    const float *gp = dloss ? dloss->data : NULL;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_softmax_xent(lp, dp, logits->data, tg->data, gp, R, V, ign));
    zm__xent_ctx c = {lp, dp, logits->data, gp, tg->data, V, ign};
    zm__par(R, V, zm__xent_rows, &c);
    return ZM_OK;
}

zm_status zm_op_softmax_cross_entropy(zm_tensor *loss, const zm_tensor *logits, const zm_tensor *targets, int ignore_index) {
    if (!loss) return zm__err(ZM_ERR_INVALID, "softmax_cross_entropy: loss is NULL");
    return zm__xent("softmax_cross_entropy", loss, NULL, logits, targets, NULL, ignore_index);
}
zm_status zm_op_softmax_cross_entropy_grad(zm_tensor *dlogits, const zm_tensor *logits, const zm_tensor *targets,
                                           const zm_tensor *dloss, int ignore_index) {
    if (!dlogits) return zm__err(ZM_ERR_INVALID, "softmax_cross_entropy_grad: dlogits is NULL");
    return zm__xent("softmax_cross_entropy_grad", NULL, dlogits, logits, targets, dloss, ignore_index);
}
