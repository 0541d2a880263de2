/* Catalog kernels defined in the expression language: 15 activations
 * against float64 references (f32 and bf16), their symbolic gradients
 * against central differences of the reference, and the softmax family
 * (softmax, log_softmax, logsumexp, both backward passes, masked and
 * scale+mask softmax). CPU (JIT) and CUDA (NVRTC).
 * Run: build/tests/test_catalog_dsl. */
#include "catalog_test.h"
#include <float.h>
#include "zmlx/kernel.h"

static double act(const char *n, double x) {
    double sp = x > 20 ? x : log1p(exp(x)), sg = 1 / (1 + exp(-x));
    if (!strcmp(n, "exp")) return exp(x);
    if (!strcmp(n, "log")) return log(x);
    if (!strcmp(n, "tanh")) return tanh(x);
    if (!strcmp(n, "sigmoid")) return sg;
    if (!strcmp(n, "relu")) return x > 0 ? x : 0;
    if (!strcmp(n, "relu2")) return x > 0 ? x * x : 0;
    if (!strcmp(n, "silu")) return x * sg;
    if (!strcmp(n, "gelu")) return 0.5 * x * erfc(-x / sqrt(2.0));
    if (!strcmp(n, "gelu_tanh")) return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    if (!strcmp(n, "quick_gelu")) return x / (1 + exp(-1.702 * x));
    if (!strcmp(n, "softplus")) return sp;
    if (!strcmp(n, "mish")) return x * tanh(sp);
    if (!strcmp(n, "elu")) return x > 0 ? x : expm1(x);
    if (!strcmp(n, "leaky_relu")) return x > 0 ? x : 0.01 * x;
    return x * fmin(fmax(x + 3, 0), 6) / 6; /* hardswish */
}
static const char *acts[] = {"exp", "log", "tanh", "sigmoid", "relu", "relu2", "silu", "gelu", "gelu_tanh", "quick_gelu",
                             "softplus", "mish", "elu", "leaky_relu", "hardswish"};

static void t_act(zm_device dev) {
    for (int a = 0; a < 15; a++)
        for (int di = 0; di < 2; di++) {
            zm_dtype dt = di ? ZM_BF16 : ZM_F32;
            int64_t R = 3, C = 1001, n = R * C, sh[2] = {R, C};
            float *x = zc_f(n), *g = zc_f(n), *o = zc_f(n);
            double *ref = zc_d(n), *fd = zc_d(n);
            zt_fill_normal(x, n, 3.0);
            if (!strcmp(acts[a], "log")) for (int64_t i = 0; i < n; i++) x[i] = fabsf(x[i]) + 0.05f;
            /* keep away from kinks, where central differences straddle two branches */
            for (int64_t i = 0; i < n; i++) {
                if (fabsf(x[i]) < 1e-2f) x[i] = 0.5f;
                if (!strcmp(acts[a], "hardswish") && fabsf(fabsf(x[i]) - 3) < 1e-2f) x[i] = 1.0f;
            }
            zt_fill_normal(g, n, 1.0);
            zc_round(x, n, dt);
            for (int64_t i = 0; i < n; i++) {
                ref[i] = act(acts[a], x[i]);
                double h = 1e-4 * fmax(1, fabs(x[i]));
                fd[i] = g[i] * (act(acts[a], x[i] + h) - act(acts[a], x[i] - h)) / (2 * h);
            }
            zm_tensor *tx = zc_newf(dev, dt, 2, sh, x), *to = zc_out(dev, dt, 2, sh);
            ZT_OK(zm_op_unary(acts[a], to, tx));
            zc_getf(o, to);
            char what[64];
            snprintf(what, sizeof what, "%s %s", acts[a], zm_dtype_name(dt));
            /* the DSL's gelu is 0.5 x (1 + erf(x / sqrt 2)) in float: for x << 0 the
             * sum cancels, so its error is absolute (~ulp(1) |x|), not relative */
            int cancels = !strncmp(acts[a], "gelu", 4);
            ZT_CHECK(zt_close(what, o, ref, n, di ? zc_tol(dt) : cancels ? 1e-4 : 1e-5), "%s", what);
            if (!di) {
                zm_tensor *tg = zc_newf(dev, ZM_F32, 2, sh, g), *td = zc_out(dev, ZM_F32, 2, sh);
                ZT_OK(zm_op_unary_grad(acts[a], td, tx, tg));
                zc_getf(o, td);
                snprintf(what, sizeof what, "%s gradient vs finite differences", acts[a]);
                /* gelu's float gradient cancels for x << 0 as its value does
                 * (0.5 (1 + tanh u) and 1 - tanh^2 u): its error there is
                 * absolute, a few ulp(1) |x| |g|; within that, take the
                 * reference as met (seed 38074434482 found one: 4.2e-6 vs
                 * 4.2e-7 at x near -5) */
                if (cancels)
                    for (int64_t i = 0; i < n; i++)
                        if (fabs(o[i] - fd[i]) <= 64 * FLT_EPSILON * fabs(g[i]) * fmax(1, fabs(x[i]))) fd[i] = o[i];
                ZT_CHECK(zt_close(what, o, fd, n, 1e-3), "%s", what); /* float s(1 - s) near saturation */
                zm_tensor *tt[] = {tg, td};
                zc_free(2, tt);
            }
            zm_tensor *tt[] = {tx, to};
            zc_free(2, tt);
            free(x); free(g); free(o); free(ref); free(fd);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_act)

static void t_rowwise(zm_device dev) {
    const int64_t cols[] = {1, 33, 1000, 4099};
    for (int ci = 0; ci < 4; ci++) {
        int64_t R = 4, C = cols[ci], n = R * C, sh[2] = {R, C};
        float *x = zc_f(n), *g = zc_f(n), *m = zc_f(n), *am = zc_f(C), *o = zc_f(n);
        double *ref = zc_d(n);
        zt_fill_normal(x, n, 3.0); zt_fill_normal(g, n, 1.0); zt_fill_normal(am, C, 1.0);
        for (int64_t i = 0; i < n; i++) m[i] = zt_uniform(0, 1) < 0.7 ? 1.0f : 0.0f;
        for (int64_t i = 0; i < C; i++) m[2 * C + i] = 0; /* a fully masked row */
        zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tg = zc_newf(dev, ZM_F32, 2, sh, g), *tm = zc_newf(dev, ZM_F32, 2, sh, m),
                  *tam = zc_newf(dev, ZM_F32, 1, &C, am), *to = zc_out(dev, ZM_F32, 2, sh), *tl = zc_out(dev, ZM_F32, 1, &R);
        for (int v = 0; v < 7; v++) {
            for (int64_t r = 0; r < R; r++) {
                const float *xr = x + r * C, *gr = g + r * C, *mr = m + r * C;
                double mx = -INFINITY, s = 0, sm = 0, gs = 0, mmx = -INFINITY, msum = 0, smx = -INFINITY, ssum = 0;
                for (int64_t i = 0; i < C; i++) {
                    mx = fmax(mx, xr[i]);
                    if (mr[i] != 0) mmx = fmax(mmx, xr[i]);
                    smx = fmax(smx, 0.5 * xr[i] + am[i]);
                }
                for (int64_t i = 0; i < C; i++) {
                    s += exp(xr[i] - mx);
                    if (mr[i] != 0) msum += exp(xr[i] - mmx);
                    ssum += exp(0.5 * xr[i] + am[i] - smx);
                }
                /* backward passes take y = softmax(x) (or log_softmax) as input: here y := x's softmax */
                for (int64_t i = 0; i < C; i++) { double y = exp(xr[i] - mx) / s; sm += y * gr[i]; gs += gr[i]; }
                for (int64_t i = 0; i < C; i++) {
                    double y = exp(xr[i] - mx) / s, ly = xr[i] - mx - log(s), *rr = ref + r * C + i;
                    switch (v) {
                    case 0: *rr = y; break;
                    case 1: *rr = ly; break;
                    case 2: *rr = mx + log(s); break;
                    case 3: *rr = y * (gr[i] - sm); break;
                    case 4: *rr = gr[i] - exp(ly) * gs; break;
                    case 5: *rr = mr[i] != 0 ? exp(xr[i] - mmx) / msum : 0; break;
                    default: *rr = exp(0.5 * xr[i] + am[i] - smx) / ssum; break;
                    }
                }
            }
            static const char *names[] = {"softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
                                          "masked_softmax", "scale_mask_softmax"};
            zm_tensor *ty = NULL;
            if (v == 3 || v == 4) { /* y from the kernel itself, as a training loop would pass it */
                ty = zc_out(dev, ZM_F32, 2, sh);
                const zm_tensor *in1[1] = {tx};
                ZT_OK(zm_op_rowwise(v == 3 ? "softmax" : "log_softmax", ty, in1, 1, 0));
                /* and the reference from that same f32 y: the backward is
                 * checked on its own inputs (the forward's rounding, carried
                 * through exp(y) * sum(g) over 4099 columns, came within 1e-5
                 * of the tolerance on some CPUs) */
                float *yk = zc_f(n);
                zc_getf(yk, ty);
                for (int64_t r = 0; r < R; r++) {
                    const float *yr = yk + r * C, *gr = g + r * C;
                    double sm = 0, gs = 0;
                    for (int64_t i = 0; i < C; i++) { sm += (double)yr[i] * gr[i]; gs += gr[i]; }
                    for (int64_t i = 0; i < C; i++)
                        ref[r * C + i] = v == 3 ? yr[i] * (gr[i] - sm) : gr[i] - exp((double)yr[i]) * gs;
                }
                free(yk);
            }
            const zm_tensor *ins[2] = {v == 3 || v == 4 ? ty : tx, v == 3 || v == 4 ? tg : v == 5 ? tm : tam};
            zm_tensor *out = v == 2 ? tl : to;
            zm_tensor_fill(out, NAN);
            ZT_OK(zm_op_rowwise(names[v], out, ins, v <= 2 ? 1 : 2, 0.5f));
            int64_t no = v == 2 ? R : n;
            double *rl = zc_d(n);
            if (v == 2) for (int64_t r = 0; r < R; r++) rl[r] = ref[r * C];
            zc_getf(o, out);
            ZT_CHECK(zt_close(names[v], o, v == 2 ? rl : ref, no, 1e-4), "%s C=%lld", names[v], (long long)C);
            if ((v == 3 || v == 4) && C <= 1000) {
                /* the backward kernels against central differences of L = sum g * f(x), f the float64 forward */
                double *fd = zc_d(n), *xd = zc_d(C);
                for (int64_t r = 0; r < R; r++) {
                    for (int64_t i = 0; i < C; i++) xd[i] = x[r * C + i];
                    for (int64_t i = 0; i < C; i++) {
                        double h = 1e-4, L[2];
                        for (int sgn = 0; sgn < 2; sgn++) {
                            xd[i] = x[r * C + i] + (sgn ? -h : h);
                            double mx = -INFINITY, s = 0, acc = 0;
                            for (int64_t j = 0; j < C; j++) mx = fmax(mx, xd[j]);
                            for (int64_t j = 0; j < C; j++) s += exp(xd[j] - mx);
                            for (int64_t j = 0; j < C; j++) acc += g[r * C + j] * (v == 3 ? exp(xd[j] - mx) / s : xd[j] - mx - log(s));
                            L[sgn] = acc;
                        }
                        xd[i] = x[r * C + i];
                        fd[r * C + i] = (L[0] - L[1]) / (2 * h);
                    }
                }
                ZT_CHECK(zt_close("backward vs finite differences", o, fd, n, 1e-3), "%s C=%lld vs finite differences", names[v], (long long)C);
                free(fd); free(xd);
            }
            free(rl);
            zm_tensor_free(ty);
        }
        zm_tensor *tt[] = {tx, tg, tm, tam, to, tl};
        zc_free(6, tt);
        free(x); free(g); free(m); free(am); free(o); free(ref);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_rowwise)

static void t_bad(void) {
    int64_t sh[2] = {2, 4};
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, sh), *o = zc_out(ZM_CPU, ZM_F32, 2, sh);
    ZT_CHECK(zm_op_unary("nosuch", o, x) == ZM_ERR_NOT_FOUND, "unknown activation");
    ZT_CHECK(zm_op_unary("softmax", o, x) == ZM_ERR_INVALID, "row-wise through zm_op_unary");
    zm_kernel *k = NULL;
    ZT_CHECK(zm_op_dsl_kernel("softmax", 1, &k) == ZM_ERR_UNSUPPORTED && !k, "grad of a row-wise kernel");
    zm_tensor *tt[] = {x, o};
    zc_free(2, tt);
}

int main(void) {
    ZC_RUN(t_act);
    ZC_RUN(t_rowwise);
    ZT_RUN(t_bad);
    return zt_finish();
}
