/* Catalog attention: decode attention over a KV cache (GQA, sinks, sliding
 * window, several sequences of different lengths) and the paged variant with
 * a shuffled block table, against a float64 softmax reference. CPU and CUDA.
 * Run: build/tests/test_catalog_attention. */
#include "catalog_test.h"

static void ref_attn(double *o, const float *q, const float *k, const float *v, int64_t L, int64_t S, int64_t Hkv, int64_t h,
                     int64_t D, double scale, int window, const float *sink) {
    int64_t st = window > 0 && L > window ? L - window : 0;
    double m = sink ? *sink : -INFINITY, den = 0, *s = zc_d(L);
    (void)S;
    for (int64_t i = st; i < L; i++) {
        double d = 0;
        for (int64_t j = 0; j < D; j++) d += (double)q[j] * k[(i * Hkv + h) * D + j];
        s[i] = d * scale; m = fmax(m, s[i]);
    }
    for (int64_t j = 0; j < D; j++) o[j] = 0;
    for (int64_t i = st; i < L; i++) {
        double p = exp(s[i] - m);
        den += p;
        for (int64_t j = 0; j < D; j++) o[j] += p * v[(i * Hkv + h) * D + j];
    }
    if (sink) den += exp(*sink - m);
    for (int64_t j = 0; j < D; j++) o[j] /= den;
    free(s);
}

static void t_attn(zm_device dev) {
    const int64_t Ds[] = {64, 100, 128, 256};
    for (int di = 0; di < 4; di++)
        for (int var = 0; var < 4; var++) { /* plain, sinks, window, sinks + window */
            int64_t B = 3, Hq = 8, Hkv = 2, D = Ds[di], S = 300, page = 16, mp = (S + page - 1) / page, P = B * mp + 3;
            int32_t lens[3] = {1, 157, 300};
            int window = var >= 2 ? 50 : 0;
            int64_t shq[3] = {B, Hq, D}, shc[4] = {B, S, Hkv, D}, shp[4] = {P, page, Hkv, D}, shb[2] = {B, mp};
            float *q = zc_f(B * Hq * D), *k = zc_f(B * S * Hkv * D), *v = zc_f(B * S * Hkv * D), *sk = zc_f(Hq), *o = zc_f(B * Hq * D);
            float *kp = zc_f(P * page * Hkv * D), *vp = zc_f(P * page * Hkv * D);
            int32_t *bt = malloc(sizeof(int32_t) * B * mp);
            zt_fill_normal(q, B * Hq * D, 1.0); zt_fill_normal(k, B * S * Hkv * D, 1.0); zt_fill_normal(v, B * S * Hkv * D, 1.0);
            zt_fill_normal(sk, Hq, 2.0);
            zt_fill_normal(kp, P * page * Hkv * D, 1.0); zt_fill_normal(vp, P * page * Hkv * D, 1.0);
            /* pages: a permutation of physical pages, contents copied from the contiguous cache */
            int32_t *perm = malloc(sizeof(int32_t) * P);
            for (int64_t i = 0; i < P; i++) perm[i] = (int32_t)i;
            for (int64_t i = P - 1; i > 0; i--) { int64_t j = (int64_t)(zt_rand_u64() % (uint64_t)(i + 1)); int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
            for (int64_t b = 0; b < B; b++)
                for (int64_t pg = 0; pg < mp; pg++) {
                    bt[b * mp + pg] = perm[b * mp + pg];
                    for (int64_t off = 0; off < page && pg * page + off < S; off++)
                        for (int64_t x = 0; x < Hkv * D; x++) {
                            kp[((int64_t)bt[b * mp + pg] * page + off) * Hkv * D + x] = k[((b * S) + pg * page + off) * Hkv * D + x];
                            vp[((int64_t)bt[b * mp + pg] * page + off) * Hkv * D + x] = v[((b * S) + pg * page + off) * Hkv * D + x];
                        }
                }
            double *ref = zc_d(B * Hq * D), scale = 1 / sqrt((double)D);
            for (int64_t b = 0; b < B; b++)
                for (int64_t h = 0; h < Hq; h++)
                    ref_attn(ref + (b * Hq + h) * D, q + (b * Hq + h) * D, k + b * S * Hkv * D, v + b * S * Hkv * D, lens[b], S, Hkv,
                             h / (Hq / Hkv), D, scale, window, var & 1 ? sk + h : NULL);
            zm_tensor *tq = zc_newf(dev, ZM_F32, 3, shq, q), *tk = zc_newf(dev, ZM_F32, 4, shc, k), *tv = zc_newf(dev, ZM_F32, 4, shc, v),
                      *tl = zc_new(dev, ZM_I32, 1, &B, lens), *ts = zc_newf(dev, ZM_F32, 1, &Hq, sk), *to = zc_out(dev, ZM_F32, 3, shq),
                      *tkp = zc_newf(dev, ZM_F32, 4, shp, kp), *tvp = zc_newf(dev, ZM_F32, 4, shp, vp), *tb = zc_new(dev, ZM_I32, 2, shb, bt);
            zm_attn_opts op = {0, window, var & 1 ? ts : NULL};
            ZT_OK(zm_op_decode_attention(to, tq, tk, tv, tl, &op));
            zc_getf(o, to);
            char what[64];
            snprintf(what, sizeof what, "decode_attention D=%lld var %d", (long long)D, var);
            ZT_CHECK(zt_close(what, o, ref, B * Hq * D, 1e-3), "%s", what);
            zm_tensor_fill(to, NAN);
            ZT_OK(zm_op_paged_attention(to, tq, tkp, tvp, tb, tl, &op));
            zc_getf(o, to);
            ZT_CHECK(zt_close("paged", o, ref, B * Hq * D, 1e-3), "paged %s", what);
            zm_tensor *tt[] = {tq, tk, tv, tl, ts, to, tkp, tvp, tb};
            zc_free(9, tt);
            free(q); free(k); free(v); free(sk); free(o); free(kp); free(vp); free(bt); free(perm); free(ref);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_attn)

static void t_bad(void) {
    int64_t shq[3] = {1, 3, 8}, shc[4] = {1, 4, 2, 8}, one = 1;
    int32_t len = 9;
    zm_tensor *q = zc_out(ZM_CPU, ZM_F32, 3, shq), *k = zc_out(ZM_CPU, ZM_F32, 4, shc), *o = zc_out(ZM_CPU, ZM_F32, 3, shq),
              *l = zc_new(ZM_CPU, ZM_I32, 1, &one, &len);
    ZT_CHECK(zm_op_decode_attention(o, q, k, k, l, NULL) == ZM_ERR_SHAPE, "3 q heads over 2 kv heads");
    shq[1] = 4;
    zm_tensor *q4 = zc_out(ZM_CPU, ZM_F32, 3, shq), *o4 = zc_out(ZM_CPU, ZM_F32, 3, shq);
    ZT_CHECK(zm_op_decode_attention(o4, q4, k, k, l, NULL) == ZM_ERR_RANGE, "length 9 > cache 4");
    zm_tensor *tt[] = {q, k, o, l, q4, o4};
    zc_free(6, tt);
}

int main(void) {
    ZC_RUN(t_attn);
    ZT_RUN(t_bad);
    return zt_finish();
}
