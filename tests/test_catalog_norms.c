/* Catalog norms: rmsnorm / layernorm with and without weight and bias, the
 * fused residual forms (normed output and the sum), the dropout forms, in
 * f32/f16/bf16 against float64 references; gradients for input, weight and
 * bias against finite differences. CPU and CUDA.
 * Run: build/tests/test_catalog_norms. */
#include "catalog_test.h"

/* v = residual + dropout(x) (rounded to dt when a residual is added), then norm */
static void ref_norm(int kind, double *out, double *sum, const float *x, const float *res, const float *w,
                     const float *b, int64_t C, int64_t off, double eps, float p, uint64_t seed, zm_dtype dt) {
    double *v = zc_d(C), s = 0, q = 0;
    for (int64_t i = 0; i < C; i++) {
        double xv = x[i];
        if (p > 0) xv = zm_philox_uniform(seed, (uint64_t)(off + i)) >= p ? xv / (1.0 - p) : 0.0;
        if (res) { xv += res[i]; float f = (float)xv; zc_round(&f, 1, dt); xv = f; }
        v[i] = xv; s += xv;
        if (sum) sum[i] = xv;
    }
    double mean = kind ? s / C : 0;
    for (int64_t i = 0; i < C; i++) q += (v[i] - mean) * (v[i] - mean);
    double rstd = 1 / sqrt(q / C + eps);
    for (int64_t i = 0; i < C; i++) out[i] = (v[i] - mean) * rstd * (w ? w[i] : 1) + (b ? b[i] : 0);
    free(v);
}

/* variant: 0 rms, 1 rms no weight, 2 layer, 3 layer no weight, 4 add_rms, 5 add_layer, 6 rms_dropout, 7 layer_dropout */
static void t_norm(zm_device dev) {
    const zm_dtype dts[] = {ZM_F32, ZM_F16, ZM_BF16};
    const int64_t cols[] = {1, 7, 33, 1000, 4099, 13000};
    for (int di = 0; di < 3; di++)
        for (int ci = 0; ci < 6; ci++)
            for (int var = 0; var < 8; var++) {
                zm_dtype dt = dts[di];
                int kind = (var == 2 || var == 3 || var == 5 || var == 7);
                int has_res = var >= 4, has_w = var != 1 && var != 3, has_b = kind && has_w;
                float p = var >= 6 ? 0.25f : 0.0f;
                uint64_t seed = zt_rand_u64();
                int64_t R = 3, C = cols[ci], sh[2] = {R, C}, n = R * C;
                float *x = zc_f(n), *res = zc_f(n), *w = zc_f(C), *b = zc_f(C), *o = zc_f(n), *so = zc_f(n);
                double *ref = zc_d(n), *rsum = zc_d(n);
                zt_fill_normal(x, n, 2.0); zt_fill_normal(res, n, 1.0);
                for (int64_t i = 0; i < n; i++) x[i] += 0.3f;
                zt_fill_uniform(w, C, 0.5, 1.5); zt_fill_normal(b, C, 0.5);
                zc_round(x, n, dt); zc_round(res, n, dt);
                for (int64_t r = 0; r < R; r++)
                    ref_norm(kind, ref + r * C, rsum + r * C, x + r * C, has_res ? res + r * C : NULL, has_w ? w : NULL,
                             has_b ? b : NULL, C, r * C, 1e-5, p, seed, dt);
                zm_tensor *tx = zc_newf(dev, dt, 2, sh, x), *tr = zc_newf(dev, dt, 2, sh, res), *tw = zc_newf(dev, ZM_F32, 1, &C, w),
                          *tb = zc_newf(dev, ZM_F32, 1, &C, b), *to = zc_out(dev, dt, 2, sh), *ts = zc_out(dev, dt, 2, sh);
                const zm_tensor *W = has_w ? tw : NULL, *B = has_b ? tb : NULL;
                switch (var) {
                case 0: case 1: ZT_OK(zm_op_rmsnorm(to, tx, W, 1e-5f)); break;
                case 2: case 3: ZT_OK(zm_op_layernorm(to, tx, W, B, 1e-5f)); break;
                case 4: ZT_OK(zm_op_add_rmsnorm(to, ts, tx, tr, W, 1e-5f)); break;
                case 5: ZT_OK(zm_op_add_layernorm(to, ts, tx, tr, W, B, 1e-5f)); break;
                case 6: ZT_OK(zm_op_rmsnorm_dropout(to, ts, tx, tr, W, p, seed, 1e-5f)); break;
                default: ZT_OK(zm_op_layernorm_dropout(to, ts, tx, tr, W, B, p, seed, 1e-5f)); break;
                }
                char what[80];
                snprintf(what, sizeof what, "norm variant %d %s C=%lld", var, zm_dtype_name(dt), (long long)C);
                zc_getf(o, to);
                /* C == 1 layernorm: x - mean is 0 exactly, the output is the bias */
                double tol = dt == ZM_F32 ? 3e-4 : zc_tol(dt) * 2; /* y*w + b cancels: absolute error ~ ulp(b) */
                ZT_CHECK(zt_close(what, o, ref, n, tol), "%s", what);
                if (has_res) {
                    zc_getf(so, ts);
                    ZT_CHECK(zt_close("sum", so, rsum, n, dt == ZM_F32 ? 3e-5 : zc_tol(dt)), "%s sum", what);
                }
                zm_tensor *tt[] = {tx, tr, tw, tb, to, ts};
                zc_free(6, tt);
                free(x); free(res); free(w); free(b); free(o); free(so); free(ref); free(rsum);
                if (zt_failed_now()) return;
            }
}
ZC_DEVICES(t_norm)

static double loss_norm(int kind, const float *xf, const double *xd, const double *wd, const double *bd, const float *g,
                        int64_t R, int64_t C) {
    double L = 0;
    for (int64_t r = 0; r < R; r++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < C; i++) s += xd[r * C + i];
        double mean = kind ? s / C : 0;
        for (int64_t i = 0; i < C; i++) q += (xd[r * C + i] - mean) * (xd[r * C + i] - mean);
        double rstd = 1 / sqrt(q / C + 1e-5);
        for (int64_t i = 0; i < C; i++) L += g[r * C + i] * ((xd[r * C + i] - mean) * rstd * wd[i] + (bd ? bd[i] : 0));
    }
    (void)xf;
    return L;
}

static void t_norm_grad(zm_device dev) {
    const int64_t cols[] = {1, 7, 33, 130};
    for (int kind = 0; kind < 2; kind++)
        for (int ci = 0; ci < 4; ci++)
            for (int has_w = 0; has_w < 2; has_w++) {
                int64_t R = 3, C = cols[ci], sh[2] = {R, C}, n = R * C;
                if (C == 1) continue; /* one element: layernorm is constant, rmsnorm is sign(x) (gradient ~ eps) */
                float *x = zc_f(n), *w = zc_f(C), *g = zc_f(n), *o = zc_f(n), *ow = zc_f(C), *ob = zc_f(C);
                zt_fill_normal(x, n, 1.5); zt_fill_uniform(w, C, 0.5, 1.5); zt_fill_normal(g, n, 1.0);
                double *xd = zc_d(n), *wd = zc_d(C), *bd = zc_d(C), *fx = zc_d(n), *fw = zc_d(C), *fb = zc_d(C);
                for (int64_t i = 0; i < n; i++) xd[i] = x[i];
                for (int64_t i = 0; i < C; i++) wd[i] = has_w ? w[i] : 1;
                double h = 1e-4;
                for (int64_t i = 0; i < n; i++) {
                    double k = xd[i];
                    xd[i] = k + h; double lp = loss_norm(kind, x, xd, wd, bd, g, R, C);
                    xd[i] = k - h; double lm = loss_norm(kind, x, xd, wd, bd, g, R, C);
                    xd[i] = k; fx[i] = (lp - lm) / (2 * h);
                }
                for (int64_t i = 0; i < C; i++) {
                    double k = wd[i];
                    wd[i] = k + h; double lp = loss_norm(kind, x, xd, wd, bd, g, R, C);
                    wd[i] = k - h; double lm = loss_norm(kind, x, xd, wd, bd, g, R, C);
                    wd[i] = k; fw[i] = (lp - lm) / (2 * h);
                    k = bd[i];
                    bd[i] = k + h; lp = loss_norm(kind, x, xd, wd, bd, g, R, C);
                    bd[i] = k - h; lm = loss_norm(kind, x, xd, wd, bd, g, R, C);
                    bd[i] = k; fb[i] = (lp - lm) / (2 * h);
                }
                zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tw = zc_newf(dev, ZM_F32, 1, &C, w), *tg = zc_newf(dev, ZM_F32, 2, sh, g),
                          *tdx = zc_out(dev, ZM_F32, 2, sh), *tdw = zc_out(dev, ZM_F32, 1, &C), *tdb = zc_out(dev, ZM_F32, 1, &C);
                if (kind) ZT_OK(zm_op_layernorm_grad(tdx, tdw, tdb, tx, has_w ? tw : NULL, tg, 1e-5f));
                else ZT_OK(zm_op_rmsnorm_grad(tdx, tdw, tx, has_w ? tw : NULL, tg, 1e-5f));
                zc_getf(o, tdx); zc_getf(ow, tdw);
                char what[64];
                snprintf(what, sizeof what, "%s grad C=%lld w=%d", kind ? "layernorm" : "rmsnorm", (long long)C, has_w);
                ZT_CHECK(zt_close("dx vs finite differences", o, fx, n, 2e-3), "%s dx", what);
                ZT_CHECK(zt_close("dw vs finite differences", ow, fw, C, 2e-3), "%s dw", what);
                if (kind) { zc_getf(ob, tdb); ZT_CHECK(zt_close("db vs finite differences", ob, fb, C, 2e-3), "%s db", what); }
                zm_tensor *tt[] = {tx, tw, tg, tdx, tdw, tdb};
                zc_free(6, tt);
                free(x); free(w); free(g); free(o); free(ow); free(ob); free(xd); free(wd); free(bd); free(fx); free(fw); free(fb);
                if (zt_failed_now()) return;
            }
}
ZC_DEVICES(t_norm_grad)

static void t_bad(void) {
    int64_t sh[2] = {2, 8}, c7 = 7;
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, sh), *o = zc_out(ZM_CPU, ZM_F32, 2, sh), *w = zc_out(ZM_CPU, ZM_F32, 1, &c7),
              *oh = zc_out(ZM_CPU, ZM_F16, 2, sh);
    ZT_CHECK(zm_op_rmsnorm(o, x, w, 1e-5f) == ZM_ERR_SHAPE, "weight of 7 for rows of 8");
    ZT_CHECK(zm_op_rmsnorm(oh, x, NULL, 1e-5f) == ZM_ERR_DTYPE, "f16 out of f32 x");
    ZT_CHECK(zm_op_rmsnorm_dropout(o, NULL, x, NULL, NULL, 1.0f, 1, 1e-5f) == ZM_ERR_RANGE, "p = 1");
    ZT_CHECK(zm_op_add_rmsnorm(o, NULL, x, NULL, NULL, 1e-5f) == ZM_ERR_INVALID, "no residual");
    zm_tensor *tt[] = {x, o, w, oh};
    zc_free(4, tt);
}

int main(void) {
    ZC_RUN(t_norm);
    ZC_RUN(t_norm_grad);
    ZT_RUN(t_bad);
    return zt_finish();
}
