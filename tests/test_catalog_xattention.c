/* Independent cross-check of the catalog's attention (written apart from
 * attention.c and test_catalog_attention.c, from ops.h alone): awkward head
 * dims (1, 7, 33, 129), MHA (Hq = Hkv), MQA (5 q heads over 1), a cache of
 * one position, window 1 and a window longer than the sequence, an explicit
 * scale, sinks large enough to take almost all the mass, and paged caches
 * with pages of 1 and 7 positions, a shuffled block table and unused
 * physical pages full of NaN (they must not be read); on CUDA a block-table
 * entry far out of range is skipped, not followed. Float64 two-pass
 * softmax reference. CPU and CUDA. Run: build/tests/test_catalog_xattention. */
#include "catalog_test.h"
#include "catalog_close.h"

typedef struct { int64_t B, Hq, Hkv, D, S, page; int window; float scale, sink; } acase;

static void t_xattn(zm_device dev) {
    const acase cs[] = {
        {2, 3, 3, 1, 5, 1, 0, 0, 0},       /* D = 1, MHA, page of 1 */
        {3, 5, 1, 7, 1, 1, 0, 0.3f, 0},    /* MQA, one-position cache */
        {2, 4, 2, 33, 40, 7, 1, 0, 0},     /* window 1 */
        {2, 6, 3, 129, 23, 7, 100, 0, 0},  /* window longer than any sequence */
        {1, 4, 4, 33, 30, 7, 9, 0.05f, 12}, /* sinks dominate, small scale */
    };
    for (int ci = 0; ci < (int)(sizeof cs / sizeof cs[0]); ci++) {
        const acase *c = &cs[ci];
        int64_t B = c->B, Hq = c->Hq, Hkv = c->Hkv, D = c->D, S = c->S, pg = c->page, mp = (S + pg - 1) / pg, P = B * mp + 2;
        int64_t nq = B * Hq * D, nc = B * S * Hkv * D, np = P * pg * Hkv * D;
        float *q = zc_f(nq), *k = zc_f(nc), *v = zc_f(nc), *sk = zc_f(Hq), *o = zc_f(nq), *kp = zc_f(np), *vp = zc_f(np);
        int32_t *lens = malloc(sizeof(int32_t) * (size_t)B), *bt = malloc(sizeof(int32_t) * (size_t)(B * mp)), *perm = malloc(sizeof(int32_t) * (size_t)P);
        zt_fill_normal(q, nq, 1.5); zt_fill_normal(k, nc, 1.0); zt_fill_normal(v, nc, 1.0); zt_fill_normal(sk, Hq, 1.0);
        for (int64_t h = 0; h < Hq; h++) sk[h] += c->sink;
        for (int64_t b = 0; b < B; b++) lens[b] = b == 0 ? (int32_t)S : (int32_t)(1 + zt_rand_u64() % (uint64_t)S);
        for (int64_t i = 0; i < P; i++) perm[i] = (int32_t)i;
        for (int64_t i = P - 1; i > 0; i--) { int64_t j = (int64_t)(zt_rand_u64() % (uint64_t)(i + 1)); int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
        for (int64_t i = 0; i < np; i++) kp[i] = vp[i] = NAN; /* pages no table entry reaches stay NaN */
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < S; t++) {
                int64_t phys = perm[b * mp + t / pg];
                bt[b * mp + t / pg] = (int32_t)phys;
                if (t >= lens[b]) continue; /* positions past the length are not read either */
                memcpy(kp + ((phys * pg + t % pg) * Hkv) * D, k + ((b * S + t) * Hkv) * D, sizeof(float) * (size_t)(Hkv * D));
                memcpy(vp + ((phys * pg + t % pg) * Hkv) * D, v + ((b * S + t) * Hkv) * D, sizeof(float) * (size_t)(Hkv * D));
            }
        double *ref = zc_d(nq), *mag = zc_d(nq), scale = c->scale > 0 ? c->scale : 1 / sqrt((double)D);
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hq; h++) {
                int64_t kh = h / (Hq / Hkv), L = lens[b], t0 = c->window > 0 && L > c->window ? L - c->window : 0;
                double *s = zc_d(L), m = c->sink ? sk[h] : -INFINITY, den = 0;
                for (int64_t t = t0; t < L; t++) {
                    double d = 0;
                    for (int64_t i = 0; i < D; i++) d += (double)q[(b * Hq + h) * D + i] * k[((b * S + t) * Hkv + kh) * D + i];
                    s[t] = d * scale;
                    m = fmax(m, s[t]);
                }
                for (int64_t t = t0; t < L; t++) den += exp(s[t] - m);
                if (c->sink) den += exp(sk[h] - m);
                for (int64_t t = t0; t < L; t++)
                    for (int64_t i = 0; i < D; i++) {
                        double p = exp(s[t] - m) / den, vv = v[((b * S + t) * Hkv + kh) * D + i];
                        ref[(b * Hq + h) * D + i] += p * vv;
                        mag[(b * Hq + h) * D + i] += p * fabs(vv);
                    }
                free(s);
            }
        int64_t shq[3] = {B, Hq, D}, shc[4] = {B, S, Hkv, D}, shp[4] = {P, pg, Hkv, D}, shb[2] = {B, mp};
        zm_tensor *tq = zc_newf(dev, ZM_F32, 3, shq, q), *tk = zc_newf(dev, ZM_F32, 4, shc, k), *tv = zc_newf(dev, ZM_F32, 4, shc, v),
                  *tl = zc_new(dev, ZM_I32, 1, &B, lens), *ts = zc_newf(dev, ZM_F32, 1, &Hq, sk), *to = zc_out(dev, ZM_F32, 3, shq),
                  *tkp = zc_newf(dev, ZM_F32, 4, shp, kp), *tvp = zc_newf(dev, ZM_F32, 4, shp, vp), *tb = zc_new(dev, ZM_I32, 2, shb, bt);
        zm_attn_opts op = {c->scale, c->window, c->sink ? ts : NULL};
        char what[64];
        snprintf(what, sizeof what, "xattention case %d (D=%lld)", ci, (long long)D);
        ZT_OK(zm_op_decode_attention(to, tq, tk, tv, tl, &op));
        zc_getf(o, to);
        /* the probabilities carry exp's relative error times the score size; held to the
         * mass-weighted magnitude of V, so cancelling outputs are not held to 1e-6 of 0 */
        ZT_CHECK(zc_close_mag(what, o, ref, mag, nq, 2e-5), "%s", what);
        zm_tensor_fill(to, NAN);
        ZT_OK(zm_op_paged_attention(to, tq, tkp, tvp, tb, tl, &op));
        zc_getf(o, to);
        ZT_CHECK(zc_close_mag("paged", o, ref, mag, nq, 2e-5), "paged %s", what);
        zm_tensor *tt[] = {tq, tk, tv, tl, ts, to, tkp, tvp, tb};
        zc_free(9, tt);
        free(q); free(k); free(v); free(sk); free(o); free(kp); free(vp); free(lens); free(bt); free(perm); free(ref); free(mag);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_xattn)

/* CUDA cannot check a device-resident block table without a sync, so a page
 * id out of range must skip its positions, not read outside the pages: the
 * result equals attention over the valid first page alone, and the context
 * stays usable. */
static void t_hostile_table_cuda(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    int64_t shq[3] = {1, 2, 8}, shp[4] = {2, 4, 1, 8}, shc[4] = {1, 4, 1, 8}, shb[2] = {1, 2}, one = 1;
    int32_t bt[2] = {0, 1000000}, len8 = 8, len4 = 4;
    float q[16], kp[64], vp[64], o1[16], o2[16];
    zt_fill_normal(q, 16, 1.0); zt_fill_normal(kp, 64, 1.0); zt_fill_normal(vp, 64, 1.0);
    zm_tensor *tq = zc_newf(ZM_CUDA, ZM_F32, 3, shq, q), *tkp = zc_newf(ZM_CUDA, ZM_F32, 4, shp, kp), *tvp = zc_newf(ZM_CUDA, ZM_F32, 4, shp, vp),
              *tk = zc_newf(ZM_CUDA, ZM_F32, 4, shc, kp), *tv = zc_newf(ZM_CUDA, ZM_F32, 4, shc, vp), *tb = zc_new(ZM_CUDA, ZM_I32, 2, shb, bt),
              *l8 = zc_new(ZM_CUDA, ZM_I32, 1, &one, &len8), *l4 = zc_new(ZM_CUDA, ZM_I32, 1, &one, &len4),
              *o = zc_out(ZM_CUDA, ZM_F32, 3, shq);
    ZT_OK(zm_op_paged_attention(o, tq, tkp, tvp, tb, l8, NULL));
    zc_getf(o1, o);
    ZT_OK(zm_op_decode_attention(o, tq, tk, tv, l4, NULL));
    zc_getf(o2, o);
    double ref[16];
    for (int i = 0; i < 16; i++) ref[i] = o2[i];
    ZT_CHECK(zt_close("hostile block table", o1, ref, 16, 1e-6), "page id 1000000 was not skipped");
    zm_tensor *tt[] = {tq, tkp, tvp, tk, tv, tb, l8, l4, o};
    zc_free(9, tt);
}

static void t_bad(void) {
    int64_t shq[3] = {2, 4, 8}, shc[4] = {2, 6, 2, 8}, shp[4] = {3, 2, 2, 8}, shb[2] = {2, 3}, two = 2;
    int32_t lens[2] = {6, 0}, bt[6] = {0, 1, 2, 0, 1, 7};
    zm_tensor *q = zc_out(ZM_CPU, ZM_F32, 3, shq), *o = zc_out(ZM_CPU, ZM_F32, 3, shq), *k = zc_out(ZM_CPU, ZM_F32, 4, shc),
              *kp = zc_out(ZM_CPU, ZM_F32, 4, shp), *l = zc_new(ZM_CPU, ZM_I32, 1, &two, lens), *b = zc_new(ZM_CPU, ZM_I32, 2, shb, bt);
    ZT_CHECK(zm_op_decode_attention(o, q, k, k, l, NULL) == ZM_ERR_RANGE, "length 0");
    lens[1] = 6;
    zm_tensor_free(l);
    l = zc_new(ZM_CPU, ZM_I32, 1, &two, lens);
    ZT_CHECK(zm_op_paged_attention(o, q, kp, kp, b, l, NULL) == ZM_ERR_RANGE, "block table entry 7 of 3 pages");
    ZT_CHECK(zm_op_paged_attention(o, q, kp, kp, NULL, l, NULL) == ZM_ERR_INVALID, "no block table");
    ZT_CHECK(zm_op_decode_attention(o, q, k, k, NULL, NULL) != ZM_OK, "no lengths");
    zm_tensor *tt[] = {q, o, k, kp, l, b};
    zc_free(6, tt);
}

int main(void) {
    ZC_RUN(t_xattn);
    ZT_RUN(t_hostile_table_cuda);
    ZT_RUN(t_bad);
    return zt_finish();
}
