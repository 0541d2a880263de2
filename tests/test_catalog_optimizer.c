/* Catalog optimizer: five AdamW steps against a float64 reference of the
 * same update (PyTorch's decoupled weight decay). CPU and CUDA.
 * Run: build/tests/test_catalog_optimizer. */
#include "catalog_test.h"

static void t_adamw(zm_device dev) {
    int64_t n = 100003;
    float *p = zc_f(n), *m = zc_f(n), *v = zc_f(n), *g = zc_f(n), *o = zc_f(n);
    double *rp = zc_d(n), *rm = zc_d(n), *rv = zc_d(n);
    zt_fill_normal(p, n, 1.0);
    for (int64_t i = 0; i < n; i++) { rp[i] = p[i]; m[i] = v[i] = 0; }
    zm_tensor *tp = zc_newf(dev, ZM_F32, 1, &n, p), *tm = zc_newf(dev, ZM_F32, 1, &n, m), *tv = zc_newf(dev, ZM_F32, 1, &n, v);
    zm_adamw_opts op = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0};
    for (int step = 1; step <= 5; step++) {
        zt_fill_normal(g, n, 1.0);
        op.step = step;
        double c1 = 1 - pow(0.9f, step), c2 = 1 - pow(0.999f, step);
        for (int64_t i = 0; i < n; i++) {
            /* the betas as the kernel holds them (float), everything else in double */
            double b1 = 0.9f, b2 = 0.999f, lr = 1e-2f, wd = 0.1f;
            rm[i] = b1 * rm[i] + (1 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1 - b2) * (double)g[i] * g[i];
            rp[i] = rp[i] * (1 - lr * wd) - lr * (rm[i] / c1) / (sqrt(rv[i] / c2) + 1e-8);
        }
        zm_tensor *tg = zc_newf(dev, ZM_F32, 1, &n, g);
        ZT_OK(zm_op_adamw_step(tp, tm, tv, tg, &op));
        zm_tensor_free(tg);
    }
    zc_getf(o, tp);
    ZT_CHECK(zt_close("adamw p", o, rp, n, 1e-5), "p after 5 steps");
    zc_getf(o, tm);
    ZT_CHECK(zt_close("adamw m", o, rm, n, 1e-4), "m after 5 steps");
    zc_getf(o, tv);
    ZT_CHECK(zt_close("adamw v", o, rv, n, 1e-4), "v after 5 steps");
    op.step = 0;
    ZT_CHECK(zm_op_adamw_step(tp, tm, tv, tp, &op) == ZM_ERR_RANGE, "step 0 refused");
    zm_tensor *tt[] = {tp, tm, tv};
    zc_free(3, tt);
    free(p); free(m); free(v); free(g); free(o); free(rp); free(rm); free(rv);
}
ZC_DEVICES(t_adamw)

int main(void) {
    ZC_RUN(t_adamw);
    return zt_finish();
}
