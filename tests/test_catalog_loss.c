/* Catalog loss: softmax cross-entropy with ignore index, and its gradient
 * against finite differences of the float64 reference; CPU and CUDA.
 * Run: build/tests/test_catalog_loss. */
#include "catalog_test.h"

static double ref_xent(const double *x, int64_t V, int t) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < V; i++) m = fmax(m, x[i]);
    for (int64_t i = 0; i < V; i++) s += exp(x[i] - m);
    return m + log(s) - x[t];
}

static void t_xent(zm_device dev) {
    const int64_t Vs[] = {1, 5, 33, 1000, 5003};
    for (int vi = 0; vi < 5; vi++) {
        int64_t R = 6, V = Vs[vi], sh[2] = {R, V}, n = R * V;
        float *x = zc_f(n), *o = zc_f(n), *dloss = zc_f(R);
        int32_t tg[6];
        double *xd = zc_d(n), ref[6], *fd = zc_d(n);
        zt_fill_normal(x, n, 3.0);
        zt_fill_uniform(dloss, R, 0.5, 2.0);
        for (int64_t i = 0; i < n; i++) xd[i] = x[i];
        for (int r = 0; r < R; r++) tg[r] = (int32_t)(zt_rand_u64() % V);
        tg[2] = -100; /* ignored */
        for (int r = 0; r < R; r++) ref[r] = tg[r] == -100 ? 0 : ref_xent(xd + r * V, V, tg[r]);
        zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tt = zc_new(dev, ZM_I32, 1, &R, tg),
                  *tl = zc_out(dev, ZM_F32, 1, &R), *td = zc_out(dev, ZM_F32, 2, sh), *tdl = zc_newf(dev, ZM_F32, 1, &R, dloss);
        ZT_OK(zm_op_softmax_cross_entropy(tl, tx, tt, -100));
        zc_getf(o, tl);
        ZT_CHECK(zt_close("xent loss", o, ref, R, 1e-5), "loss V=%lld", (long long)V);
        /* gradient of L = sum_r dloss_r * loss_r, central differences in double */
        for (int r = 0; r < R; r++)
            for (int64_t i = 0; i < V; i++) {
                if (tg[r] == -100) { fd[r * V + i] = 0; continue; }
                double *xr = xd + r * V, keep = xr[i], h = 1e-4;
                xr[i] = keep + h; double lp = ref_xent(xr, V, tg[r]);
                xr[i] = keep - h; double lm = ref_xent(xr, V, tg[r]);
                xr[i] = keep;
                fd[r * V + i] = dloss[r] * (lp - lm) / (2 * h);
            }
        ZT_OK(zm_op_softmax_cross_entropy_grad(td, tx, tt, tdl, -100));
        zc_getf(o, td);
        ZT_CHECK(zt_close("xent grad vs finite differences", o, fd, n, 1e-4), "grad V=%lld", (long long)V);
        zm_tensor *ts[] = {tx, tt, tl, td, tdl};
        zc_free(5, ts);
        free(x); free(o); free(dloss); free(xd); free(fd);
    }
}
ZC_DEVICES(t_xent)

static void t_bad(void) {
    int64_t sh[2] = {2, 4}, r2 = 2, r3 = 3;
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, sh), *t = zc_out(ZM_CPU, ZM_I32, 1, &r3), *l = zc_out(ZM_CPU, ZM_F32, 1, &r2),
              *tf = zc_out(ZM_CPU, ZM_F32, 1, &r2);
    ZT_CHECK(zm_op_softmax_cross_entropy(l, x, t, -1) == ZM_ERR_SHAPE, "3 targets for 2 rows");
    ZT_CHECK(zm_op_softmax_cross_entropy(l, x, tf, -1) == ZM_ERR_DTYPE, "float targets");
    zm_tensor *ts[] = {x, t, l, tf};
    zc_free(4, ts);
}

int main(void) {
    ZC_RUN(t_xent);
    ZT_RUN(t_bad);
    return zt_finish();
}
