/* Catalog scans: cumsum (inclusive, exclusive), its gradient checked against
 * finite differences of the float64 reference, cumprod; CPU and CUDA.
 * Run: build/tests/test_catalog_scan. */
#include "catalog_test.h"

static void ref_cumsum(double *o, const double *x, int64_t C, int excl) {
    double a = 0;
    for (int64_t i = 0; i < C; i++) { if (excl) { o[i] = a; a += x[i]; } else { a += x[i]; o[i] = a; } }
}

static void t_cumsum(zm_device dev) {
    for (int ci = 0; ci < ZC_NCOLS; ci++)
        for (int excl = 0; excl < 2; excl++) {
            int64_t R = 3, C = zc_cols[ci], sh[2] = {R, C}, n = R * C;
            float *x = zc_f(n), *o = zc_f(n);
            double *xd = zc_d(n), *ref = zc_d(n);
            zt_fill_normal(x, n, 1.0);
            for (int64_t i = 0; i < n; i++) xd[i] = x[i];
            for (int64_t r = 0; r < R; r++) ref_cumsum(ref + r * C, xd + r * C, C, excl);
            zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *to = zc_out(dev, ZM_F32, 2, sh);
            ZT_OK(zm_op_cumsum(to, tx, excl));
            zc_getf(o, to);
            /* a running float sum drifts ~ sqrt(C) ulps: compare by the row's scale */
            ZT_CHECK(zt_rel_l2(o, ref, n) < 1e-5, "cumsum C=%lld excl=%d rel %g", (long long)C, excl, zt_rel_l2(o, ref, n));
            /* gradient: L = sum g * cumsum(x); dL/dx by central differences on the reference */
            float *g = zc_f(n);
            zt_fill_normal(g, n, 1.0);
            double *fd = zc_d(n), *tmp = zc_d(C);
            for (int64_t r = 0; r < R; r++)
                for (int64_t i = 0; i < C; i++) {
                    double h = 1e-3, lp = 0, lm = 0, *xr = xd + r * C, keep = xr[i];
                    xr[i] = keep + h; ref_cumsum(tmp, xr, C, excl);
                    for (int64_t j = 0; j < C; j++) lp += g[r * C + j] * tmp[j];
                    xr[i] = keep - h; ref_cumsum(tmp, xr, C, excl);
                    for (int64_t j = 0; j < C; j++) lm += g[r * C + j] * tmp[j];
                    xr[i] = keep;
                    fd[r * C + i] = (lp - lm) / (2 * h);
                }
            zm_tensor *tg = zc_newf(dev, ZM_F32, 2, sh, g);
            zm_tensor_fill(to, NAN);
            ZT_OK(zm_op_cumsum_grad(to, tg, excl));
            zc_getf(o, to);
            ZT_CHECK(zt_rel_l2(o, fd, n) < 1e-5, "cumsum_grad vs finite differences C=%lld excl=%d: %g", (long long)C, excl, zt_rel_l2(o, fd, n));
            zm_tensor *ts[] = {tx, to, tg};
            zc_free(3, ts);
            free(x); free(o); free(xd); free(ref); free(g); free(fd); free(tmp);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_cumsum)

static void t_cumprod(zm_device dev) {
    for (int ci = 0; ci < ZC_NCOLS; ci++) {
        int64_t R = 3, C = zc_cols[ci], sh[2] = {R, C}, n = R * C;
        float *x = zc_f(n), *o = zc_f(n);
        double *ref = zc_d(n);
        /* factors near 1 with random sign so long products stay finite */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(zt_uniform(0.99, 1.01) * (zt_uniform(0, 1) < 0.1 ? -1 : 1));
        for (int64_t r = 0; r < R; r++) {
            double a = 1;
            for (int64_t i = 0; i < C; i++) { a *= x[r * C + i]; ref[r * C + i] = a; }
        }
        zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *to = zc_out(dev, ZM_F32, 2, sh);
        ZT_OK(zm_op_cumprod(to, tx));
        zc_getf(o, to);
        ZT_CHECK(zt_close("cumprod", o, ref, n, 1e-4), "cumprod C=%lld", (long long)C);
        zm_tensor *ts[] = {tx, to};
        zc_free(2, ts);
        free(x); free(o); free(ref);
    }
}
ZC_DEVICES(t_cumprod)

static void t_bad(void) {
    int64_t a[2] = {2, 3}, b[2] = {3, 2};
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, a), *o = zc_out(ZM_CPU, ZM_F32, 2, b), *oi = zc_out(ZM_CPU, ZM_I32, 2, a);
    ZT_CHECK(zm_op_cumsum(o, x, 0) == ZM_ERR_SHAPE, "shape mismatch");
    ZT_CHECK(zm_op_cumprod(oi, x) == ZM_ERR_DTYPE, "i32 out");
    zm_tensor *ts[] = {x, o, oi};
    zc_free(3, ts);
}

int main(void) {
    ZC_RUN(t_cumsum);
    ZC_RUN(t_cumprod);
    ZT_RUN(t_bad);
    return zt_finish();
}
