/* Independent cross-check of the catalog's rope (written apart from rope.c
 * and test_catalog_rope.c, from ops.h and ggml's rope_yarn as published):
 * the options the first test leaves at their defaults (attn_factor, YaRN
 * beta_fast / beta_slow, linear freq_scale with attn_factor), awkward head
 * dims (2, 10 with 6 rotated, 130), [T, D] single-head input, negative
 * positions, GQA 7:1, and rope_kv_write leaving every cache row it does not
 * own bit-for-bit unchanged. Bad input (zero kv heads, odd rot_dims) gives a
 * status, not a crash. CPU and CUDA. Run: build/tests/test_catalog_xrope. */
#include "catalog_test.h"
#include "catalog_close.h"

/* ggml_rope_yarn_corr_dims / rope_yarn_ramp / rope_yarn, in double */
static void ref_head(double *o, double *mag, const float *x, int64_t D, int64_t pos, const zm_rope_opts *op) {
    int rot = op->rot_dims ? op->rot_dims : (int)D;
    double base = op->base > 0 ? op->base : 10000.0, fs = op->freq_scale > 0 ? op->freq_scale : 1.0;
    double mscale = op->attn_factor > 0 ? op->attn_factor : 1.0, ext = 0, c0 = 0, c1 = 0;
    if (op->yarn_factor > 1) {
        double bf = op->yarn_beta_fast > 0 ? op->yarn_beta_fast : 32, bs = op->yarn_beta_slow > 0 ? op->yarn_beta_slow : 1;
        c0 = fmax(0, floor(rot * log(op->yarn_orig_ctx / (bf * 2 * M_PI)) / (2 * log(base))));
        c1 = fmin(rot - 1, ceil(rot * log(op->yarn_orig_ctx / (bs * 2 * M_PI)) / (2 * log(base))));
        fs = 1.0 / op->yarn_factor;
        ext = 1;
        mscale *= 1 + 0.1 * log(1.0 / fs);
    }
    double theta_scale = pow(base, -2.0 / rot);
    for (int i0 = 0; i0 < rot; i0 += 2) {
        double extrap = pos * pow(theta_scale, i0 / 2), interp = fs * extrap, th = interp;
        if (ext) {
            double y = (i0 / 2 - c0) / fmax(0.001, c1 - c0), mix = (1 - fmin(1, fmax(0, y))) * ext;
            th = interp * (1 - mix) + extrap * mix;
        }
        double c = cos(th) * mscale, s = sin(th) * mscale;
        int a = op->interleaved ? i0 : i0 / 2, b = op->interleaved ? i0 + 1 : i0 / 2 + rot / 2;
        o[a] = x[a] * c - x[b] * s;
        o[b] = x[a] * s + x[b] * c;
        mag[a] = mag[b] = (fabs(x[a]) + fabs(x[b])) * mscale;
    }
    for (int64_t i = rot; i < D; i++) { o[i] = x[i]; mag[i] = fabs(x[i]); }
}

typedef struct { int64_t D; int rot, inter; float base, fs, attn, yf; int ctx; float bf, bs; } rcase;

static void t_xrope(zm_device dev) {
    const rcase cs[] = {
        {2, 0, 0, 0, 0, 0.7f, 0, 0, 0, 0},         /* minimal head, attn_factor alone */
        {10, 6, 1, 500, 0.5f, 1.3f, 0, 0, 0, 0},    /* partial interleaved, linear scaling + attn_factor */
        {10, 6, 0, 500, 0, 0, 0, 0, 0, 0},          /* partial NeoX */
        {130, 0, 0, 1e6f, 0, 0.9f, 8, 2048, 16, 2}, /* YaRN, non-default betas, attn_factor */
        {64, 32, 1, 5e5f, 0, 0, 2.5f, 8192, 0, 0},  /* YaRN partial interleaved, default betas */
    };
    for (int ci = 0; ci < (int)(sizeof cs / sizeof cs[0]); ci++)
        for (int two_d = 0; two_d < 2; two_d++) {
            const rcase *c = &cs[ci];
            zm_rope_opts op = {c->inter, c->rot, c->base, c->fs, c->yf, c->ctx, c->bf, c->bs, c->attn};
            int64_t T = 13, Hq = two_d ? 1 : 7, Hk = 1, D = c->D, nq = T * Hq * D, nk = T * Hk * D, S = 40;
            int32_t pos[13];
            for (int t = 0; t < T; t++) pos[t] = t == 0 ? -3 : (int32_t)(zt_rand_u64() % 3000);
            pos[T - 1] = 0;
            float *q = zc_f(nq), *k = zc_f(nk), *v = zc_f(nk), *o = zc_f(nq), *kc = zc_f(S * Hk * D), *vc = zc_f(S * Hk * D);
            double *rq = zc_d(nq), *mq = zc_d(nq), *rk = zc_d(nk), *mk = zc_d(nk);
            zt_fill_normal(q, nq, 1.0); zt_fill_normal(k, nk, 1.0); zt_fill_normal(v, nk, 1.0);
            for (int64_t t = 0; t < T; t++) {
                for (int64_t h = 0; h < Hq; h++) ref_head(rq + (t * Hq + h) * D, mq + (t * Hq + h) * D, q + (t * Hq + h) * D, D, pos[t], &op);
                ref_head(rk + t * D, mk + t * D, k + t * D, D, pos[t], &op);
            }
            int64_t sq3[3] = {T, Hq, D}, sq2[2] = {T, D}, sk[3] = {T, Hk, D}, sc[3] = {S, Hk, D};
            zm_tensor *tq = two_d ? zc_newf(dev, ZM_F32, 2, sq2, q) : zc_newf(dev, ZM_F32, 3, sq3, q),
                      *to = two_d ? zc_out(dev, ZM_F32, 2, sq2) : zc_out(dev, ZM_F32, 3, sq3), *tp = zc_new(dev, ZM_I32, 1, &T, pos);
            char what[64];
            snprintf(what, sizeof what, "xrope case %d %s", ci, two_d ? "[T, D]" : "[T, 7, D]");
            ZT_OK(zm_op_rope(to, tq, tp, &op));
            zc_getf(o, to);
            /* angles up to 3000 rad: a float angle is off by ~1e-4, the op's are double */
            ZT_CHECK(zc_close_mag(what, o, rq, mq, nq, 2e-6), "%s", what);
            if (!two_d) { /* fused cache write; pos -3 writes nothing, every other row keeps its bits */
                zm_tensor *tk = zc_newf(dev, ZM_F32, 3, sk, k), *tv = zc_newf(dev, ZM_F32, 3, sk, v);
                for (int64_t i = 0; i < S * Hk * D; i++) { kc[i] = 1000.0f + (float)i; vc[i] = -1000.0f - (float)i; }
                zm_tensor *tkc = zc_newf(dev, ZM_F32, 3, sc, kc), *tvc = zc_newf(dev, ZM_F32, 3, sc, vc);
                for (int64_t t = 0; t < T; t++) pos[t] = pos[t] < 0 ? -3 : (int32_t)(pos[t] % (S - 2)); /* rows S-2, S-1 never written */
                pos[T - 1] = pos[1];                                                                  /* last writer wins */
                zm_tensor_free(tp);
                tp = zc_new(dev, ZM_I32, 1, &T, pos);
                zm_tensor_fill(to, NAN);
                ZT_OK(zm_op_rope_kv_write(to, tkc, tvc, tq, tk, tv, tp, &op));
                double *ek = zc_d(S * D), *em = zc_d(S * D), *rq2 = zc_d(nq), *mq2 = zc_d(nq);
                int *own = calloc((size_t)S, sizeof(int));
                for (int64_t i = 0; i < S * D; i++) { ek[i] = kc[i]; em[i] = fabs(kc[i]); }
                for (int64_t t = 0; t < T; t++) {
                    for (int64_t h = 0; h < Hq; h++) ref_head(rq2 + (t * Hq + h) * D, mq2 + (t * Hq + h) * D, q + (t * Hq + h) * D, D, pos[t], &op);
                    if (pos[t] < 0) continue;
                    ref_head(ek + pos[t] * D, em + pos[t] * D, k + t * D, D, pos[t], &op);
                    own[pos[t]] = (int)t + 1;
                }
                float *gk = zc_f(S * D), *gv = zc_f(S * D);
                zc_getf(o, to); zc_getf(gk, tkc); zc_getf(gv, tvc);
                ZT_CHECK(zc_close_mag("kv_write q", o, rq2, mq2, nq, 2e-6), "%s q", what);
                ZT_CHECK(zc_close_mag("kv_write k cache", gk, ek, em, S * D, 2e-6), "%s k cache", what);
                int bad = -1;
                for (int64_t r = 0; r < S && bad < 0; r++)
                    for (int64_t i = 0; i < D; i++) {
                        float want = own[r] ? v[(own[r] - 1) * D + i] : vc[r * D + i];
                        if (memcmp(&gv[r * D + i], &want, 4)) { bad = (int)r; break; }
                        if (!own[r] && memcmp(&gk[r * D + i], &kc[r * D + i], 4)) { bad = (int)r; break; }
                    }
                ZT_CHECK(bad < 0, "%s: cache row %d wrong (v copy, or an unowned row changed)", what, bad);
                zm_tensor *tt[] = {tk, tv, tkc, tvc};
                zc_free(4, tt);
                free(ek); free(em); free(rq2); free(mq2); free(own); free(gk); free(gv);
            }
            zm_tensor *tt[] = {tq, to, tp};
            zc_free(3, tt);
            free(q); free(k); free(v); free(o); free(kc); free(vc); free(rq); free(mq); free(rk); free(mk);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_xrope)

static void t_bad(void) {
    int64_t sq[3] = {2, 4, 8}, sk0[3] = {2, 0, 8}, one = 2;
    int32_t pos[2] = {0, 1};
    zm_tensor *q = zc_out(ZM_CPU, ZM_F32, 3, sq), *qo = zc_out(ZM_CPU, ZM_F32, 3, sq), *k0 = zc_out(ZM_CPU, ZM_F32, 3, sk0),
              *ko = zc_out(ZM_CPU, ZM_F32, 3, sk0), *p = zc_new(ZM_CPU, ZM_I32, 1, &one, pos);
    ZT_CHECK(zm_op_rope_qk(qo, ko, q, k0, p, NULL) == ZM_ERR_SHAPE, "zero kv heads");
    zm_rope_opts op = {0};
    op.rot_dims = 5;
    ZT_CHECK(zm_op_rope(qo, q, p, &op) == ZM_ERR_RANGE, "odd rot_dims");
    op.rot_dims = 0; op.yarn_factor = 4; op.yarn_orig_ctx = 0;
    ZT_CHECK(zm_op_rope(qo, q, p, &op) != ZM_OK, "YaRN without an original context");
    zm_tensor *tt[] = {q, qo, k0, ko, p};
    zc_free(5, tt);
}

int main(void) {
    ZC_RUN(t_xrope);
    ZT_RUN(t_bad);
    return zt_finish();
}
