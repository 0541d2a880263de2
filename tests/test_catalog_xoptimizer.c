/* Independent cross-check of the catalog's optimizer (written apart from
 * optimizer.c and test_catalog_optimizer.c, from ops.h alone): adamw_step against a float64 AdamW (torch.optim.AdamW
 * semantics) over several steps with fresh gradients each step, checking p,
 * m and v; awkward sizes, an unaligned view (CUDA's scalar path), weight
 * decay on and off; bad options give statuses. CPU and CUDA.
 * Run: build/tests/test_catalog_xoptimizer. */
#include "catalog_test.h"
#include "catalog_close.h"

static void t_adamw(zm_device dev) {
    const int64_t sizes[] = {1, 7, 33, 1000, 4099, 100003};
    for (int si = 0; si < 6; si++)
        for (int var = 0; var < 2; var++) { /* var 1: weight decay, unaligned views */
            int64_t n = sizes[si], n1 = n + 1;
            zm_adamw_opts o = {1e-2f, 0.9f, 0.999f, 1e-8f, var ? 0.1f : 0.0f, 0};
            if (var) { o.beta1 = 0.8f; o.beta2 = 0.95f; o.eps = 1e-6f; o.lr = 3e-3f; }
            float *p = zc_f(n1), *g = zc_f(n1), *out = zc_f(n1);
            double *rp = zc_d(n), *rm = zc_d(n), *rv = zc_d(n), *mm = zc_d(n); /* mm: magnitude behind m (it cancels) */
            zt_fill_normal(p, n1, 1.0);
            for (int64_t i = 0; i < n; i++) rp[i] = p[i + var];
            zm_tensor *bp = zc_newf(dev, ZM_F32, 1, &n1, p), *bm = zc_out(dev, ZM_F32, 1, &n1), *bv = zc_out(dev, ZM_F32, 1, &n1),
                      *bg = zc_out(dev, ZM_F32, 1, &n1);
            zm_tensor_fill(bm, 0); zm_tensor_fill(bv, 0);
            zm_tensor *tp = NULL, *tm = NULL, *tv = NULL, *tg = NULL;
            int64_t off = var ? 4 : 0;
            zm_tensor_view(&tp, bp, 1, &n, NULL, off); zm_tensor_view(&tm, bm, 1, &n, NULL, off);
            zm_tensor_view(&tv, bv, 1, &n, NULL, off); zm_tensor_view(&tg, bg, 1, &n, NULL, off);
            for (int step = 1; step <= 4; step++) {
                o.step = step;
                zt_fill_normal(g, n1, step == 3 ? 1e-3 : 1.0); /* a step with tiny gradients: v_hat near eps */
                zm_tensor *h = NULL;
                zm_tensor_wrap(&h, g, ZM_F32, ZM_CPU, 1, &n1, NULL);
                zm_tensor_copy(bg, h);
                zm_tensor_free(h);
                double c1 = 1 - pow(o.beta1, step), c2 = 1 - pow(o.beta2, step);
                for (int64_t i = 0; i < n; i++) {
                    double gi = g[i + var];
                    rm[i] = o.beta1 * rm[i] + (1 - (double)o.beta1) * gi;
                    mm[i] = o.beta1 * mm[i] + (1 - (double)o.beta1) * fabs(gi);
                    rv[i] = o.beta2 * rv[i] + (1 - (double)o.beta2) * gi * gi;
                    rp[i] = rp[i] * (1 - (double)o.lr * o.weight_decay) - o.lr * (rm[i] / c1) / (sqrt(rv[i] / c2) + o.eps);
                }
                ZT_OK(zm_op_adamw_step(tp, tm, tv, tg, &o));
            }
            char what[64];
            snprintf(what, sizeof what, "adamw n=%lld var %d", (long long)n, var);
            zc_getf(out, tp);
            ZT_CHECK(zt_close(what, out, rp, n, 1e-5), "%s p", what);
            zc_getf(out, tm);
            ZT_CHECK(zc_close_mag(what, out, rm, mm, n, 1e-6), "%s m", what);
            zc_getf(out, tv);
            ZT_CHECK(zt_close(what, out, rv, n, 1e-5), "%s v", what);
            zm_tensor *tt[] = {tp, tm, tv, tg, bp, bm, bv, bg};
            zc_free(8, tt);
            free(p); free(g); free(out); free(rp); free(rm); free(rv); free(mm);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_adamw)

static void t_bad(void) {
    int64_t a = 8, b = 9;
    zm_tensor *p = zc_out(ZM_CPU, ZM_F32, 1, &a), *q = zc_out(ZM_CPU, ZM_F32, 1, &b), *h = zc_out(ZM_CPU, ZM_F16, 1, &a);
    zm_adamw_opts o = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1};
    ZT_CHECK(zm_op_adamw_step(p, p, p, q, &o) == ZM_ERR_SHAPE, "g size");
    ZT_CHECK(zm_op_adamw_step(p, h, p, p, &o) == ZM_ERR_DTYPE, "f16 m");
    ZT_CHECK(zm_op_adamw_step(p, p, p, p, NULL) == ZM_ERR_INVALID, "NULL opts");
    o.step = 0;
    ZT_CHECK(zm_op_adamw_step(p, p, p, p, &o) == ZM_ERR_RANGE, "step 0");
    o.step = 1; o.beta2 = 1.0f;
    ZT_CHECK(zm_op_adamw_step(p, p, p, p, &o) == ZM_ERR_RANGE, "beta2 = 1");
    zm_tensor *tt[] = {p, q, h};
    zc_free(3, tt);
}

int main(void) {
    ZC_RUN(t_adamw);
    ZT_RUN(t_bad);
    return zt_finish();
}
