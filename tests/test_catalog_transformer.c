/* Catalog transformer fusions: swiglu / geglu (two-input, split, bias) and
 * their gradients against finite differences, silu_mul_residual, dropout
 * (Philox known-answer vectors, mask identical on CPU and CUDA, keep rate).
 * f32/f16/bf16 on CPU and CUDA. Run: build/tests/test_catalog_transformer. */
#include "catalog_test.h"
#include "kernels/catalog/common.h"

static double act_ref(int k, double x) { return k ? 0.5 * x * (1 + erf(x / sqrt(2.0))) : x / (1 + exp(-x)); }

/* form: 0 two-input, 1 split, 2 split + bias, 3 silu_mul_residual */
static void t_glu(zm_device dev) {
    const zm_dtype dts[] = {ZM_F32, ZM_F16, ZM_BF16};
    for (int di = 0; di < 3; di++)
        for (int ci = 0; ci < ZC_NCOLS; ci++)
            for (int k = 0; k < 2; k++)
                for (int form = 0; form < 4; form++) {
                    if (form == 3 && k) continue;
                    zm_dtype dt = dts[di];
                    int64_t R = 3, F = zc_cols[ci], n = R * F, sh[2] = {R, F}, sh2[2] = {R, 2 * F}, F2 = 2 * F;
                    float *a = zc_f(2 * n), *u = zc_f(n), *res = zc_f(n), *bias = zc_f(2 * F), *o = zc_f(n);
                    zt_fill_normal(a, 2 * n, 2.0); zt_fill_normal(u, n, 1.0); zt_fill_normal(res, n, 1.0); zt_fill_normal(bias, 2 * F, 0.5);
                    zc_round(a, 2 * n, dt); zc_round(u, n, dt); zc_round(res, n, dt);
                    double *ref = zc_d(n);
                    for (int64_t r = 0; r < R; r++)
                        for (int64_t i = 0; i < F; i++) {
                            double g, up;
                            if (form == 1 || form == 2) {
                                g = a[r * F2 + i]; up = a[r * F2 + F + i];
                                if (form == 2) { g += bias[i]; up += bias[F + i]; }
                            } else { g = a[r * F + i]; up = u[r * F + i]; }
                            ref[r * F + i] = act_ref(k, g) * up + (form == 3 ? res[r * F + i] : 0);
                        }
                    zm_tensor *to = zc_out(dev, dt, 2, sh), *tb = zc_newf(dev, ZM_F32, 1, &F2, bias), *ta, *tu = zc_newf(dev, dt, 2, sh, u),
                              *tr = zc_newf(dev, dt, 2, sh, res);
                    ta = (form == 1 || form == 2) ? zc_newf(dev, dt, 2, sh2, a) : zc_newf(dev, dt, 2, sh, a);
                    if (form == 0) ZT_OK(zm_op_glu(to, ta, tu, (zm_glu_kind)k));
                    else if (form == 3) ZT_OK(zm_op_silu_mul_residual(to, ta, tu, tr));
                    else ZT_OK(zm_op_glu_split(to, ta, form == 2 ? tb : NULL, (zm_glu_kind)k));
                    zc_getf(o, to);
                    char what[64];
                    snprintf(what, sizeof what, "glu k%d form%d %s F=%lld", k, form, zm_dtype_name(dt), (long long)F);
                    ZT_CHECK(zt_close(what, o, ref, n, dt == ZM_F32 ? (form == 3 ? 1e-4 : 1e-5) : zc_tol(dt)), "%s", what); /* + residual cancels */
                    zm_tensor *tt[] = {to, tb, ta, tu, tr};
                    zc_free(5, tt);
                    free(a); free(u); free(res); free(bias); free(o); free(ref);
                    if (zt_failed_now()) return;
                }
}
ZC_DEVICES(t_glu)

static void t_glu_grad(zm_device dev) {
    for (int k = 0; k < 2; k++)
        for (int split = 0; split < 2; split++)
            for (int ci = 0; ci < ZC_NCOLS; ci++) {
                int64_t R = 2, F = zc_cols[ci], n = R * F, sh[2] = {R, F}, sh2[2] = {R, 2 * F};
                float *x = zc_f(2 * n), *g = zc_f(n), *o = zc_f(2 * n);
                double *fd = zc_d(2 * n);
                zt_fill_normal(x, 2 * n, 2.0); zt_fill_normal(g, n, 1.0);
                /* L = sum g * act(gate) * up; central differences per gate and up element */
                for (int64_t r = 0; r < R; r++)
                    for (int64_t i = 0; i < F; i++) {
                        double a = split ? x[r * 2 * F + i] : x[r * F + i], u = split ? x[r * 2 * F + F + i] : x[n + r * F + i], h = 1e-4;
                        double da = g[r * F + i] * u * (act_ref(k, a + h) - act_ref(k, a - h)) / (2 * h);
                        double du = g[r * F + i] * act_ref(k, a);
                        if (split) { fd[r * 2 * F + i] = da; fd[r * 2 * F + F + i] = du; }
                        else { fd[r * F + i] = da; fd[n + r * F + i] = du; }
                    }
                zm_tensor *tg = zc_newf(dev, ZM_F32, 2, sh, g);
                if (split) {
                    zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh2, x), *td = zc_out(dev, ZM_F32, 2, sh2);
                    ZT_OK(zm_op_glu_split_grad(td, tx, tg, (zm_glu_kind)k));
                    zc_getf(o, td);
                    zm_tensor *tt[] = {tx, td};
                    zc_free(2, tt);
                } else {
                    zm_tensor *ta = zc_newf(dev, ZM_F32, 2, sh, x), *tu = zc_newf(dev, ZM_F32, 2, sh, x + n),
                              *tda = zc_out(dev, ZM_F32, 2, sh), *tdu = zc_out(dev, ZM_F32, 2, sh);
                    ZT_OK(zm_op_glu_grad(tda, tdu, ta, tu, tg, (zm_glu_kind)k));
                    zc_getf(o, tda); zc_getf(o + n, tdu);
                    zm_tensor *tt[] = {ta, tu, tda, tdu};
                    zc_free(4, tt);
                }
                ZT_CHECK(zt_close("glu grad vs finite differences", o, fd, 2 * n, 1e-4), "k%d split%d F=%lld", k, split, (long long)F);
                zm_tensor_free(tg);
                free(x); free(g); free(o); free(fd);
                if (zt_failed_now()) return;
            }
}
ZC_DEVICES(t_glu_grad)

/* Random123's known-answer vectors for philox4x32-10 */
static void t_philox_kat(void) {
    uint32_t c[4] = {0, 0, 0, 0};
    zm__philox(c, 0, 0);
    ZT_CHECK(c[0] == 0x6627e8d5u && c[1] == 0xe169c58du && c[2] == 0xbc57ac4cu && c[3] == 0x9b00dbd8u,
             "philox(0; 0) = %08x %08x %08x %08x", c[0], c[1], c[2], c[3]);
    uint32_t d[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    zm__philox(d, 0xffffffffu, 0xffffffffu);
    ZT_CHECK(d[0] == 0x408f276du && d[1] == 0x41c83b0eu && d[2] == 0xa20bc7c6u && d[3] == 0x6d5451fdu,
             "philox(~0; ~0) = %08x %08x %08x %08x", d[0], d[1], d[2], d[3]);
}

static void t_dropout(zm_device dev) {
    const zm_dtype dts[] = {ZM_F32, ZM_F16, ZM_BF16};
    for (int di = 0; di < 3; di++) {
        zm_dtype dt = dts[di];
        int64_t n = 100003;
        float p = 0.3f, *x = zc_f(n), *o = zc_f(n);
        uint64_t seed = zt_rand_u64();
        zt_fill_normal(x, n, 1.0);
        for (int64_t i = 0; i < n; i++) if (x[i] == 0) x[i] = 1;
        zc_round(x, n, dt);
        double *ref = zc_d(n);
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++) {
            int keep = zm_philox_uniform(seed, (uint64_t)i) >= p;
            kept += keep;
            ref[i] = keep ? x[i] / (1.0 - p) : 0;
        }
        zm_tensor *tx = zc_newf(dev, dt, 1, &n, x), *to = zc_out(dev, dt, 1, &n);
        ZT_OK(zm_op_dropout(to, tx, p, seed));
        zc_getf(o, to);
        ZT_CHECK(zt_close("dropout", o, ref, n, dt == ZM_F32 ? 1e-6 : zc_tol(dt)), "dropout %s", zm_dtype_name(dt));
        for (int64_t i = 0; i < n; i++)
            if ((o[i] == 0) != (ref[i] == 0)) { ZT_CHECK(0, "mask differs at %lld", (long long)i); break; }
        /* its gradient is dropout of g with the same seed: central differences of L = sum g * dropout(x) */
        float *gg = zc_f(n), *dg = zc_f(n);
        double *fd = zc_d(n);
        zt_fill_normal(gg, n, 1.0);
        zc_round(gg, n, dt);
        for (int64_t i = 0; i < n; i++) {
            double h = 1e-3, keep = zm_philox_uniform(seed, (uint64_t)i) >= p ? 1.0 / (1.0 - p) : 0.0;
            fd[i] = gg[i] * (((x[i] + h) * keep) - ((x[i] - h) * keep)) / (2 * h);
        }
        zm_tensor *tg = zc_newf(dev, dt, 1, &n, gg), *td = zc_out(dev, dt, 1, &n);
        ZT_OK(zm_op_dropout(td, tg, p, seed));
        zc_getf(dg, td);
        ZT_CHECK(zt_close("dropout grad vs finite differences", dg, fd, n, dt == ZM_F32 ? 1e-5 : zc_tol(dt)), "dropout grad %s", zm_dtype_name(dt));
        zm_tensor_free(tg); zm_tensor_free(td);
        free(gg); free(dg); free(fd);
        double rate = (double)kept / n; /* 5 sigma of a binomial(1e5, 0.7) */
        ZT_CHECK(fabs(rate - 0.7) < 5 * sqrt(0.21 / n), "keep rate %g", rate);
        zm_tensor *tt[] = {tx, to};
        zc_free(2, tt);
        free(x); free(o); free(ref);
    }
}
ZC_DEVICES(t_dropout)

static void t_bad(void) {
    int64_t a[2] = {2, 7}, b[2] = {2, 3};
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, a), *o = zc_out(ZM_CPU, ZM_F32, 2, b), *o7 = zc_out(ZM_CPU, ZM_F32, 2, a);
    ZT_CHECK(zm_op_glu_split(o, x, NULL, ZM_GLU_SWIGLU) == ZM_ERR_SHAPE, "odd split");
    ZT_CHECK(zm_op_glu(o, x, x, ZM_GLU_GEGLU) == ZM_ERR_SHAPE, "out shape");
    ZT_CHECK(zm_op_dropout(o7, x, -0.1f, 1) == ZM_ERR_RANGE, "negative p");
    zm_tensor *tt[] = {x, o, o7};
    zc_free(3, tt);
}

int main(void) {
    ZC_RUN(t_glu);
    ZC_RUN(t_glu_grad);
    ZT_RUN(t_philox_kat);
    ZC_RUN(t_dropout);
    ZT_RUN(t_bad);
    return zt_finish();
}
