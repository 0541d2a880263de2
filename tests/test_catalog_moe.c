/* Catalog MoE: softmax top-k gating (renormalised or not, expert bias),
 * Mixtral top-2, DeepSeek-V3 grouped sigmoid router, stable dispatch,
 * combine in f32 and with exact f16/bf16 rounding, and the fused quantized
 * expert matmuls against a float64 chain of the unfused ops (dequantize,
 * matmul, SiLU, multiply, weight, sum, residual). CPU and CUDA.
 * Run: build/tests/test_catalog_moe. */
#include "catalog_test.h"
#include "gguf/quant.h"

/* best-first selection over scores, ties to the lower index */
static void ref_topk(const double *s, const int *mask, int E, int k, int *ids) {
    for (int j = 0; j < k; j++) {
        int b = -1;
        for (int e = 0; e < E; e++) {
            if (mask && !mask[e]) continue;
            int used = 0;
            for (int i = 0; i < j; i++) used |= ids[i] == e;
            if (!used && (b < 0 || s[e] > s[b])) b = e;
        }
        ids[j] = b;
    }
}

static void check_route(const char *what, const float *w, const int32_t *id, const double *rw, const int *rid, int64_t n) {
    for (int64_t i = 0; i < n; i++) if (id[i] != rid[i]) { ZT_CHECK(0, "%s ids[%lld] = %d want %d", what, (long long)i, id[i], rid[i]); return; }
    ZT_CHECK(zt_close(what, w, rw, n, 1e-5), "%s weights", what);
}

static void t_route(zm_device dev) {
    const int Es[] = {8, 60, 128, 256};
    for (int ei = 0; ei < 4; ei++)
        for (int var = 0; var < 5; var++) { /* 0 softmax renorm, 1 no renorm, 2 + bias, 3 top2, 4 deepseek */
            int64_t T = 5, E = Es[ei], k = var == 3 ? 2 : E >= 60 ? 8 : 2, sh[2] = {T, E}, shk[2] = {T, k};
            int ng = E == 256 ? 8 : E == 128 ? 4 : E == 60 ? 6 : 2, tg = E == 256 ? 4 : 2;
            if (var == 4 && k > E / ng * tg) continue;
            float *lg = zc_f(T * E), *bias = zc_f(E), *w = zc_f(T * k);
            int32_t *id = malloc(sizeof(int32_t) * T * k);
            int *rid = malloc(sizeof(int) * T * k), *mask = malloc(sizeof(int) * E);
            double *rw = zc_d(T * k), *p = zc_d(E), *sc = zc_d(E);
            zt_fill_normal(lg, T * E, 2.0);
            zt_fill_normal(bias, E, var == 4 ? 0.1 : 0.02);
            zm_dtype dt = ei == 1 ? ZM_BF16 : ZM_F32; /* one shape with bf16 logits */
            zc_round(lg, T * E, dt);
            for (int64_t t = 0; t < T; t++) {
                const float *l = lg + t * E;
                double m = -INFINITY, s = 0;
                for (int e = 0; e < E; e++) m = fmax(m, l[e]);
                for (int e = 0; e < E; e++) s += exp(l[e] - m);
                for (int e = 0; e < E; e++) p[e] = exp(l[e] - m) / s;
                int *ri = rid + t * k;
                double *wr = rw + t * k;
                if (var <= 2) {
                    for (int e = 0; e < E; e++) sc[e] = var == 2 ? p[e] + bias[e] : p[e];
                    ref_topk(sc, NULL, E, k, ri);
                    double tot = 0;
                    for (int j = 0; j < k; j++) tot += p[ri[j]];
                    for (int j = 0; j < k; j++) wr[j] = p[ri[j]] / (var == 1 ? 1 : tot);
                } else if (var == 3) {
                    for (int e = 0; e < E; e++) sc[e] = l[e];
                    ref_topk(sc, NULL, E, 2, ri);
                    double a = exp(l[ri[0]]), b = exp(l[ri[1]]);
                    wr[0] = a / (a + b); wr[1] = b / (a + b);
                } else {
                    int gs = (int)E / ng, gid[64];
                    double gsc[64], sg[256];
                    for (int e = 0; e < E; e++) { sg[e] = 1 / (1 + exp(-l[e])); sc[e] = sg[e] + bias[e]; }
                    for (int g = 0; g < ng; g++) {
                        int two[2];
                        ref_topk(sc + g * gs, NULL, gs, 2, two);
                        gsc[g] = sc[g * gs + two[0]] + sc[g * gs + two[1]];
                    }
                    ref_topk(gsc, NULL, ng, tg, gid);
                    for (int e = 0; e < E; e++) { mask[e] = 0; for (int g = 0; g < tg; g++) mask[e] |= e / gs == gid[g]; }
                    ref_topk(sc, mask, E, k, ri);
                    double tot = 0;
                    for (int j = 0; j < k; j++) tot += sg[ri[j]];
                    for (int j = 0; j < k; j++) wr[j] = sg[ri[j]] / tot * 2.5;
                }
            }
            zm_tensor *tl = zc_newf(dev, dt, 2, sh, lg), *tb = zc_newf(dev, ZM_F32, 1, &E, bias), *tw = zc_out(dev, ZM_F32, 2, shk),
                      *ti = zc_out(dev, ZM_I32, 2, shk);
            if (var <= 2) ZT_OK(zm_op_topk_gating_softmax(tw, ti, tl, var == 2 ? tb : NULL, var != 1));
            else if (var == 3) ZT_OK(zm_op_top2_gating(tw, ti, tl));
            else ZT_OK(zm_op_deepseek_router(tw, ti, tl, tb, ng, tg, 1, 2.5f));
            zc_getf(w, tw); zc_get(id, ti);
            char what[64];
            snprintf(what, sizeof what, "router var %d E=%lld", var, (long long)E);
            check_route(what, w, id, rw, rid, T * k);
            zm_tensor *tt[] = {tl, tb, tw, ti};
            zc_free(4, tt);
            free(lg); free(bias); free(w); free(id); free(rid); free(mask); free(rw); free(p); free(sc);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_route)

static void t_dispatch(zm_device dev) {
    int64_t T = 37, k = 4, E = 16, D = 33, sh[2] = {T, D}, shk[2] = {T, k}, shx[2] = {T * k, D}, ne = E + 1, nk = T * k;
    float *x = zc_f(T * D), *xs = zc_f(T * k * D);
    int32_t *ids = malloc(sizeof(int32_t) * T * k), *perm = malloc(sizeof(int32_t) * T * k), off[17];
    zt_fill_normal(x, T * D, 1.0);
    for (int64_t i = 0; i < T * k; i++) ids[i] = (int32_t)(zt_rand_u64() % (E - 3)); /* some experts empty */
    ids[5] = -1; ids[9] = (int32_t)E;                                                  /* dropped slots */
    zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *ti = zc_new(dev, ZM_I32, 2, shk, ids), *txs = zc_out(dev, ZM_F32, 2, shx),
              *tp = zc_out(dev, ZM_I32, 1, &nk), *to = zc_out(dev, ZM_I32, 1, &ne);
    ZT_OK(zm_op_moe_dispatch(txs, tp, to, tx, ti));
    zc_getf(xs, txs); zc_get(perm, tp); zc_get(off, to);
    int64_t row = 0;
    ZT_CHECK(off[0] == 0, "offsets[0] = %d", off[0]);
    for (int e = 0; e < E; e++) {
        ZT_CHECK(off[e] == row, "offsets[%d] = %d want %lld", e, off[e], (long long)row);
        for (int64_t s = 0; s < T * k; s++) {
            if (ids[s] != e) continue;
            ZT_CHECK(perm[row] == s, "perm[%lld] = %d want %lld", (long long)row, perm[row], (long long)s);
            ZT_CHECK(!memcmp(xs + row * D, x + s / k * D, sizeof(float) * D), "row %lld copied from token %lld", (long long)row, (long long)(s / k));
            row++;
        }
    }
    ZT_CHECK(off[E] == row && row == T * k - 2, "offsets[E] = %d want %lld", off[E], (long long)row);
    zm_tensor *tt[] = {tx, ti, txs, tp, to};
    zc_free(5, tt);
    free(x); free(xs); free(ids); free(perm);
}
ZC_DEVICES(t_dispatch)

static void t_combine(zm_device dev) {
    const zm_dtype dts[] = {ZM_F32, ZM_F16, ZM_BF16};
    for (int di = 0; di < 3; di++)
        for (int exact = 0; exact < 2; exact++)
            for (int has_res = 0; has_res < 2; has_res++) {
                zm_dtype dt = dts[di];
                int64_t T = 7, k = 8, D = 1001, sh[2] = {T, D}, shk[2] = {T, k}, shy[2] = {T * k, D};
                float *y = zc_f(T * k * D), *w = zc_f(T * k), *r = zc_f(T * D), *o = zc_f(T * D);
                zt_fill_normal(y, T * k * D, 1.0); zt_fill_uniform(w, T * k, 0, 0.3); zt_fill_normal(r, T * D, 1.0);
                zc_round(y, T * k * D, dt); zc_round(r, T * D, dt);
                double *ref = zc_d(T * D);
                float *exa = zc_f(T * D);
                for (int64_t t = 0; t < T; t++)
                    for (int64_t i = 0; i < D; i++) {
                        double s = has_res ? r[t * D + i] : 0;
                        float acc = 0; /* the stock graph in the dtype: cast w, multiply, add in slot order, then residual */
                        for (int j = 0; j < k; j++) {
                            s += (double)w[t * k + j] * y[(t * k + j) * D + i];
                            float wj = w[t * k + j], p;
                            zc_round(&wj, 1, dt);
                            p = wj * y[(t * k + j) * D + i]; zc_round(&p, 1, dt);
                            if (j) { acc = acc + p; zc_round(&acc, 1, dt); } else acc = p;
                        }
                        if (has_res) acc += r[t * D + i];
                        zc_round(&acc, 1, dt);
                        ref[t * D + i] = s; exa[t * D + i] = acc;
                    }
                zm_tensor *ty = zc_newf(dev, dt, 2, shy, y), *tw = zc_newf(dev, ZM_F32, 2, shk, w), *tr = zc_newf(dev, dt, 2, sh, r),
                          *to = zc_out(dev, dt, 2, sh);
                if (exact) ZT_OK(zm_op_moe_combine_exact(to, ty, tw, has_res ? tr : NULL));
                else ZT_OK(zm_op_moe_combine(to, ty, tw, has_res ? tr : NULL));
                zc_getf(o, to);
                if (exact) {
                    int64_t bad = -1;
                    for (int64_t i = 0; i < T * D && bad < 0; i++) if (o[i] != exa[i]) bad = i;
                    ZT_CHECK(bad < 0, "combine_exact %s res=%d [%lld]: %.9g want %.9g (bit-exact)", zm_dtype_name(dt), has_res, (long long)bad,
                             bad >= 0 ? o[bad] : 0, bad >= 0 ? exa[bad] : 0);
                } else ZT_CHECK(zt_close("moe_combine", o, ref, T * D, dt == ZM_F32 ? 1e-4 : zc_tol(dt)), "combine %s res=%d", zm_dtype_name(dt), has_res);
                zm_tensor *tt[] = {ty, tw, tr, to};
                zc_free(4, tt);
                free(y); free(w); free(r); free(o); free(ref); free(exa);
                if (zt_failed_now()) return;
            }
}
ZC_DEVICES(t_combine)

static void t_qmm(zm_device dev) {
    const zm_dtype wdts[] = {ZM_F32, ZM_Q8_0, ZM_Q4_0};
    for (int wi = 0; wi < 3; wi++) {
        zm_dtype wdt = wdts[wi];
        int64_t T = 3, k = 2, E = 5, D = 96, F = 40, shx[2] = {T, D}, shk[2] = {T, k}, shw[3] = {E, F, D}, shd[3] = {E, D, F},
                shh[2] = {T * k, F};
        if (wdt != ZM_F32) F = 64, shw[1] = F, shd[2] = F, shh[1] = F; /* down rows are blocks of F */
        float *x = zc_f(T * D), *wg = zc_f(E * F * D), *wu = zc_f(E * F * D), *wd = zc_f(E * D * F), *rw = zc_f(T * k), *res = zc_f(T * D);
        float *dg = zc_f(E * F * D), *du = zc_f(E * F * D), *dd = zc_f(E * D * F), *h = zc_f(T * k * F), *o = zc_f(T * D);
        int32_t ids[6] = {0, 3, 4, 4, 2, 1};
        zt_fill_normal(x, T * D, 1.0); zt_fill_normal(wg, E * F * D, 0.1); zt_fill_normal(wu, E * F * D, 0.1); zt_fill_normal(wd, E * D * F, 0.1);
        zt_fill_uniform(rw, T * k, 0.1, 0.6); zt_fill_normal(res, T * D, 1.0);
        size_t bw = (size_t)(E * F * D / zm_dtype_block_size(wdt) * zm_dtype_block_bytes(wdt));
        void *qg = malloc(bw), *qu = malloc(bw), *qd = malloc(bw);
        ZT_OK(zm_quantize(qg, wdt, wg, E * F * D)); ZT_OK(zm_quantize(qu, wdt, wu, E * F * D)); ZT_OK(zm_quantize(qd, wdt, wd, E * D * F));
        ZT_OK(zm_dequantize(dg, qg, wdt, E * F * D)); ZT_OK(zm_dequantize(du, qu, wdt, E * F * D)); ZT_OK(zm_dequantize(dd, qd, wdt, E * D * F));
        double *rh = zc_d(T * k * F), *ro = zc_d(T * D);
        float *hf = zc_f(T * k * F);
        for (int64_t s = 0; s < T * k; s++)
            for (int64_t f = 0; f < F; f++) {
                double g = 0, u = 0;
                for (int64_t i = 0; i < D; i++) {
                    g += (double)dg[(ids[s] * F + f) * D + i] * x[s / k * D + i];
                    u += (double)du[(ids[s] * F + f) * D + i] * x[s / k * D + i];
                }
                rh[s * F + f] = g / (1 + exp(-g)) * u;
            }
        zt_fill_normal(hf, T * k * F, 1.0); /* combine gets its own h, so an error there is its own */
        for (int64_t t = 0; t < T; t++)
            for (int64_t dcol = 0; dcol < D; dcol++) {
                double acc = res[t * D + dcol];
                for (int j = 0; j < k; j++) {
                    double dot = 0;
                    for (int64_t f = 0; f < F; f++) dot += (double)dd[(ids[t * k + j] * D + dcol) * F + f] * hf[(t * k + j) * F + f];
                    acc += rw[t * k + j] * dot;
                }
                ro[t * D + dcol] = acc;
            }
        zm_tensor *tx = zc_newf(dev, ZM_F32, 2, shx, x), *ti = zc_new(dev, ZM_I32, 2, shk, ids),
                  *tg = zc_new(dev, wdt, 3, shw, wdt == ZM_F32 ? (void *)wg : qg), *tu = zc_new(dev, wdt, 3, shw, wdt == ZM_F32 ? (void *)wu : qu),
                  *td = zc_new(dev, wdt, 3, shd, wdt == ZM_F32 ? (void *)wd : qd), *th = zc_out(dev, ZM_F32, 2, shh),
                  *thf = zc_newf(dev, ZM_F32, 2, shh, hf), *tw = zc_newf(dev, ZM_F32, 2, shk, rw), *tr = zc_newf(dev, ZM_F32, 2, shx, res),
                  *to = zc_out(dev, ZM_F32, 2, shx);
        ZT_OK(zm_op_gather_qmm_swiglu(th, tx, tg, tu, ti));
        zc_getf(h, th);
        ZT_CHECK(zt_close("gather_qmm_swiglu", h, rh, T * k * F, 1e-4), "%s gather_qmm_swiglu", zm_dtype_name(wdt));
        ZT_OK(zm_op_gather_qmm_combine(to, thf, td, ti, tw, tr));
        zc_getf(o, to);
        ZT_CHECK(zt_close("gather_qmm_combine", o, ro, T * D, 1e-4), "%s gather_qmm_combine", zm_dtype_name(wdt));
        zm_tensor *tt[] = {tx, ti, tg, tu, td, th, thf, tw, tr, to};
        zc_free(10, tt);
        free(x); free(wg); free(wu); free(wd); free(rw); free(res); free(dg); free(du); free(dd); free(h); free(o);
        free(qg); free(qu); free(qd); free(rh); free(ro); free(hf);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_qmm)

static void t_bad(void) {
    int64_t sh[2] = {2, 8}, shk[2] = {2, 3}, shk2[2] = {2, 2};
    zm_tensor *l = zc_out(ZM_CPU, ZM_F32, 2, sh), *w = zc_out(ZM_CPU, ZM_F32, 2, shk), *i = zc_out(ZM_CPU, ZM_I32, 2, shk),
              *i2 = zc_out(ZM_CPU, ZM_I32, 2, shk2);
    ZT_CHECK(zm_op_top2_gating(w, i, l) == ZM_ERR_SHAPE, "top2 with 3 columns");
    ZT_CHECK(zm_op_topk_gating_softmax(w, i2, l, NULL, 1) == ZM_ERR_SHAPE, "ids columns differ");
    ZT_CHECK(zm_op_deepseek_router(w, i, l, NULL, 3, 1, 1, 1.0f) == ZM_ERR_RANGE, "3 groups of 8 experts");
    ZT_CHECK(zm_op_deepseek_router(w, i, l, NULL, 4, 1, 1, 1.0f) == ZM_ERR_RANGE, "k 3 > 2 experts of one group");
    zm_tensor *tt[] = {l, w, i, i2};
    zc_free(4, tt);
}

int main(void) {
    ZC_RUN(t_route);
    ZC_RUN(t_dispatch);
    ZC_RUN(t_combine);
    ZC_RUN(t_qmm);
    ZT_RUN(t_bad);
    return zt_finish();
}
