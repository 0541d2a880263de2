/* Catalog rope: NeoX and interleaved, partial rotary, linear scaling, YaRN
 * (ramp and magnitude scale written out again from the paper / llama.cpp's
 * description), GQA q+k in one call, rope fused with the KV-cache write
 * (out-of-range positions write nothing); float64 reference, positions up to
 * 40k. CPU and CUDA. Run: build/tests/test_catalog_rope. */
#include "catalog_test.h"

static void ref_rope(double *o, const float *x, int64_t D, int64_t pos, const zm_rope_opts *op) {
    int rot = op->rot_dims ? op->rot_dims : (int)D, half = rot / 2;
    double base = op->base > 0 ? op->base : 10000, fs = op->freq_scale > 0 ? op->freq_scale : 1, ms = 1, lo = 0, hi = 0;
    if (op->yarn_factor > 1) {
        double pi2 = 2 * M_PI;
        lo = fmax(0, floor(rot * log(op->yarn_orig_ctx / (32 * pi2)) / (2 * log(base))));
        hi = fmin(rot - 1, ceil(rot * log(op->yarn_orig_ctx / (1 * pi2)) / (2 * log(base))));
        fs = 1 / op->yarn_factor;
        ms = 1 + 0.1 * log(op->yarn_factor);
    }
    for (int i = 0; i < half; i++) {
        double ext = pos * pow(base, -2.0 * i / rot), th = ext * fs;
        if (op->yarn_factor > 1) {
            double ramp = 1 - fmin(1, fmax(0, (i - lo) / fmax(0.001, hi - lo)));
            th = th * (1 - ramp) + ext * ramp;
        }
        int a = op->interleaved ? 2 * i : i, b = op->interleaved ? 2 * i + 1 : i + half;
        o[a] = ms * (x[a] * cos(th) - x[b] * sin(th));
        o[b] = ms * (x[a] * sin(th) + x[b] * cos(th));
    }
    for (int64_t i = rot; i < D; i++) o[i] = x[i];
}

static void t_rope(zm_device dev) {
    for (int var = 0; var < 6; var++) { /* neox, interleaved, partial, linear, yarn, yarn+interleaved+partial */
        zm_rope_opts op = {0};
        int64_t T = 5, Hq = 8, Hk = 2, D = 64 + 2 * (var == 2), S = 50000;
        op.interleaved = var == 1 || var == 5;
        if (var == 2 || var == 5) op.rot_dims = 32;
        if (var == 3) op.freq_scale = 0.25f;
        if (var >= 4) { op.yarn_factor = 4; op.yarn_orig_ctx = 4096; op.base = 1e6f; }
        int32_t pos[5] = {0, 1, 777, 4095, 40001};
        int64_t shq[3] = {T, Hq, D}, shk[3] = {T, Hk, D}, shc[3] = {S, Hk, D};
        float *q = zc_f(T * Hq * D), *k = zc_f(T * Hk * D), *v = zc_f(T * Hk * D), *oq = zc_f(T * Hq * D), *ok = zc_f(T * Hk * D);
        double *rq = zc_d(T * Hq * D), *rk = zc_d(T * Hk * D);
        zt_fill_normal(q, T * Hq * D, 1.0); zt_fill_normal(k, T * Hk * D, 1.0); zt_fill_normal(v, T * Hk * D, 1.0);
        for (int64_t t = 0; t < T; t++) {
            for (int64_t h = 0; h < Hq; h++) ref_rope(rq + (t * Hq + h) * D, q + (t * Hq + h) * D, D, pos[t], &op);
            for (int64_t h = 0; h < Hk; h++) ref_rope(rk + (t * Hk + h) * D, k + (t * Hk + h) * D, D, pos[t], &op);
        }
        zm_tensor *tq = zc_newf(dev, ZM_F32, 3, shq, q), *tk = zc_newf(dev, ZM_F32, 3, shk, k), *tv = zc_newf(dev, ZM_F32, 3, shk, v),
                  *tp = zc_new(dev, ZM_I32, 1, &T, pos), *toq = zc_out(dev, ZM_F32, 3, shq), *tok = zc_out(dev, ZM_F32, 3, shk);
        char what[48];
        snprintf(what, sizeof what, "rope variant %d", var);
        ZT_OK(zm_op_rope(toq, tq, tp, &op));
        zc_getf(oq, toq);
        ZT_CHECK(zt_close(what, oq, rq, T * Hq * D, 1e-4), "%s (rope)", what);
        zm_tensor_fill(toq, NAN);
        ZT_OK(zm_op_rope_qk(toq, tok, tq, tk, tp, &op));
        zc_getf(oq, toq); zc_getf(ok, tok);
        ZT_CHECK(zt_close(what, oq, rq, T * Hq * D, 1e-4) && zt_close(what, ok, rk, T * Hk * D, 1e-4), "%s (rope_qk, GQA)", what);
        if (var == 0 || var == 4) { /* fused cache write; one position past the cache */
            int64_t Sm = 5000;
            shc[0] = Sm;
            zm_tensor *tkc = zc_out(dev, ZM_F32, 3, shc), *tvc = zc_out(dev, ZM_F32, 3, shc);
            zm_tensor_fill(tkc, 7.0f); zm_tensor_fill(tvc, 7.0f);
            zm_tensor_fill(toq, NAN);
            ZT_OK(zm_op_rope_kv_write(toq, tkc, tvc, tq, tk, tv, tp, &op));
            zc_getf(oq, toq);
            ZT_CHECK(zt_close(what, oq, rq, T * Hq * D, 1e-4), "%s (kv_write q)", what);
            float *kc = zc_f(Sm * Hk * D), *vcache = zc_f(Sm * Hk * D);
            zc_getf(kc, tkc); zc_getf(vcache, tvc);
            for (int64_t t = 0; t < T; t++) {
                if (pos[t] >= Sm) continue;
                ZT_CHECK(zt_close("k_cache row", kc + pos[t] * Hk * D, rk + t * Hk * D, Hk * D, 1e-4), "k row %d", pos[t]);
                ZT_CHECK(!memcmp(vcache + pos[t] * Hk * D, v + t * Hk * D, sizeof(float) * Hk * D), "v row %d", pos[t]);
            }
            int64_t untouched = 0;
            for (int64_t i = 0; i < Sm * Hk * D; i++) untouched += kc[i] == 7.0f && vcache[i] == 7.0f;
            ZT_CHECK(untouched == (Sm - 4) * Hk * D, "rows other than the 4 positions untouched (%lld)", (long long)untouched);
            zm_tensor *tt[] = {tkc, tvc};
            zc_free(2, tt);
            free(kc); free(vcache);
        }
        zm_tensor *tt[] = {tq, tk, tv, tp, toq, tok};
        zc_free(6, tt);
        free(q); free(k); free(v); free(oq); free(ok); free(rq); free(rk);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_rope)

static void t_bad(void) {
    int64_t sh[3] = {2, 4, 8}, shk[3] = {2, 3, 8}, t2 = 2;
    int32_t pos[2] = {0, 1};
    zm_tensor *q = zc_out(ZM_CPU, ZM_F32, 3, sh), *k = zc_out(ZM_CPU, ZM_F32, 3, shk), *p = zc_new(ZM_CPU, ZM_I32, 1, &t2, pos),
              *o = zc_out(ZM_CPU, ZM_F32, 3, sh), *ok = zc_out(ZM_CPU, ZM_F32, 3, shk);
    zm_rope_opts op = {.rot_dims = 5};
    ZT_CHECK(zm_op_rope(o, q, p, &op) == ZM_ERR_RANGE, "odd rot_dims");
    ZT_CHECK(zm_op_rope_qk(o, ok, q, k, p, NULL) == ZM_ERR_SHAPE, "4 q heads over 3 kv heads");
    zm_rope_opts y = {.yarn_factor = 4};
    ZT_CHECK(zm_op_rope(o, q, p, &y) == ZM_ERR_RANGE, "YaRN without original context");
    zm_tensor *tt[] = {q, k, p, o, ok};
    zc_free(5, tt);
}

int main(void) {
    ZC_RUN(t_rope);
    ZT_RUN(t_bad);
    return zt_finish();
}
