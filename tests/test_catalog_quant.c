/* Catalog quant: Q8_0 / Q4_0 bytes equal gguf's reference quantizer (ggml's
 * rules), MXFP4 bytes equal an independent rendering of ggml's rule, every
 * dequantizer equals a float64 decode of the bytes, fused dequant + SiLU,
 * int8 per row, int4 per group, fp8 e4m3 / e5m2 (every code decoded, random
 * and edge values encoded against a nearest-even search over all codes), NF4.
 * CPU and CUDA against the same references. Run: build/tests/test_catalog_quant. */
#include "catalog_test.h"
#include "gguf/quant.h"

static const int64_t qcols[] = {32, 64, 160, 4160};

static double h2d(const uint8_t *p) { return zm_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static double ref_dq(zm_dtype dt, const uint8_t *q, int64_t i) {
    static const int mx[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    int64_t b = i / 32, j = i % 32;
    if (dt == ZM_Q8_0) return (int8_t)q[b * 34 + 2 + j] * h2d(q + b * 34);
    if (dt == ZM_Q4_0) { const uint8_t *p = q + b * 18; int v = j < 16 ? (p[2 + j] & 15) : (p[2 + j - 16] >> 4); return (v - 8) * h2d(p); }
    const uint8_t *p = q + b * 17;
    int v = j < 16 ? (p[1 + j] & 15) : (p[1 + j - 16] >> 4);
    return mx[v] * ldexp(1.0, p[0] - 128);
}
/* ggml's quantize_row_mxfp4_ref, written again from its description */
static void ref_mxfp4(uint8_t *y, const float *x, int64_t n) {
    static const int mx[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    for (int64_t b = 0; b < n / 32; b++) {
        double amax = 0;
        for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(x[b * 32 + j]));
        int e = amax > 0 ? (int)floor(log2(amax)) - 2 + 127 : 0;
        if (e < 0) e = 0;
        double d = ldexp(1.0, e - 128);
        y[b * 17] = (uint8_t)e;
        for (int j = 0; j < 16; j++) {
            int q[2];
            for (int h = 0; h < 2; h++) {
                double v = x[b * 32 + j + 16 * h], best = fabs(mx[0] * d - v);
                q[h] = 0;
                for (int i = 1; i < 16; i++) if (fabs(mx[i] * d - v) < best) { best = fabs(mx[i] * d - v); q[h] = i; }
            }
            y[b * 17 + 1 + j] = (uint8_t)(q[0] | q[1] << 4);
        }
    }
}

static void t_block(zm_device dev) {
    const zm_dtype dts[] = {ZM_Q8_0, ZM_Q4_0, ZM_MXFP4};
    for (int di = 0; di < 3; di++)
        for (int ci = 0; ci < 4; ci++) {
            zm_dtype dt = dts[di];
            int64_t R = 3, C = qcols[ci], n = R * C, sh[2] = {R, C}, nb = zm_dtype_block_bytes(dt) * n / 32;
            float *x = zc_f(n), *o = zc_f(n);
            zt_fill_normal(x, n, 2.0);
            for (int64_t i = 0; i < 32; i++) x[i] = 0; /* an all-zero block */
            x[40] = 1e-30f;                             /* a tiny value in a normal block */
            uint8_t *ref = malloc((size_t)nb), *got = malloc((size_t)nb);
            if (dt == ZM_MXFP4) ref_mxfp4(ref, x, n);
            else ZT_OK(zm_quantize(ref, dt, x, n));
            zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tq = zc_out(dev, dt, 2, sh), *to = zc_out(dev, ZM_F32, 2, sh);
            ZT_OK(zm_op_quantize(tq, tx));
            zc_get(got, tq);
            int64_t bad = -1;
            for (int64_t i = 0; i < nb && bad < 0; i++) if (got[i] != ref[i]) bad = i;
            ZT_CHECK(bad < 0, "%s quantize C=%lld: byte %lld is %02x, reference %02x", zm_dtype_name(dt), (long long)C, (long long)bad,
                     bad >= 0 ? got[bad] : 0, bad >= 0 ? ref[bad] : 0);
            double *rd = zc_d(n), *rs = zc_d(n), maxerr = 0, amax = 0;
            for (int64_t i = 0; i < n; i++) {
                rd[i] = ref_dq(dt, ref, i); rs[i] = rd[i] / (1 + exp(-rd[i]));
                maxerr = fmax(maxerr, fabs(rd[i] - x[i])); amax = fmax(amax, fabs(x[i]));
            }
            /* round trip: within half a step (Q8_0: amax/254, Q4_0: amax/16; MXFP4 up to a quarter of amax) */
            double bound = dt == ZM_Q8_0 ? amax / 127 : dt == ZM_Q4_0 ? amax / 8 : amax / 2;
            ZT_CHECK(maxerr <= bound, "%s round trip error %g > %g", zm_dtype_name(dt), maxerr, bound);
            ZT_OK(zm_op_dequantize(to, tq));
            zc_getf(o, to);
            ZT_CHECK(zt_close("dequantize", o, rd, n, 1e-7), "%s dequantize C=%lld", zm_dtype_name(dt), (long long)C);
            zm_tensor_fill(to, NAN);
            ZT_OK(zm_op_dequantize_silu(to, tq));
            zc_getf(o, to);
            ZT_CHECK(zt_close("dequantize_silu", o, rs, n, 1e-6), "%s dequantize_silu C=%lld", zm_dtype_name(dt), (long long)C);
            zm_tensor *tt[] = {tx, tq, to};
            zc_free(3, tt);
            free(x); free(o); free(ref); free(got); free(rd); free(rs);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_block)

static void t_int8_int4(zm_device dev) {
    for (int ci = 0; ci < 4; ci++) {
        int64_t R = 3, C = qcols[ci], n = R * C, sh[2] = {R, C};
        float *x = zc_f(n), *o = zc_f(n), *s = zc_f(R), *sc = zc_f(n), *zr = zc_f(n);
        zt_fill_normal(x, n, 3.0);
        for (int64_t i = 0; i < C; i++) x[i] = 0; /* a zero row */
        int8_t *q = malloc((size_t)n);
        uint8_t *q4 = malloc((size_t)n);
        double *rd = zc_d(n);
        zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tq = zc_out(dev, ZM_I8, 2, sh), *ts = zc_out(dev, ZM_F32, 1, &R), *to = zc_out(dev, ZM_F32, 2, sh);
        ZT_OK(zm_op_quantize_int8_row(tq, ts, tx));
        zc_get(q, tq); zc_getf(s, ts);
        for (int64_t r = 0; r < R; r++) {
            float amax = 0;
            for (int64_t i = 0; i < C; i++) amax = fmaxf(amax, fabsf(x[r * C + i]));
            float sr = amax / 127.0f, inv = sr > 0 ? 1.0f / sr : 0.0f;
            ZT_CHECK(s[r] == sr, "int8 scale row %lld: %g want %g", (long long)r, s[r], sr);
            for (int64_t i = 0; i < C; i++) {
                int want = (int)rintf(x[r * C + i] * inv);
                if (q[r * C + i] != want) { ZT_CHECK(0, "int8 q[%lld] = %d want %d", (long long)(r * C + i), q[r * C + i], want); break; }
                rd[r * C + i] = (double)q[r * C + i] * sr;
                ZT_CHECK(fabs(rd[r * C + i] - x[r * C + i]) <= 0.5001 * sr, "int8 round trip");
            }
        }
        ZT_OK(zm_op_dequantize_int8_row(to, tq, ts));
        zc_getf(o, to);
        ZT_CHECK(zt_close("dequantize_int8_row", o, rd, n, 1e-7), "int8 dequant C=%lld", (long long)C);
        /* int4 groups */
        const int groups[] = {32, 64, 128};
        for (int gi = 0; gi < 3; gi++) {
            int g = groups[gi];
            if (C % g) continue;
            int64_t shq[2] = {R, C / 2}, shs[2] = {R, C / g}, ng = n / g;
            zm_tensor *t4 = zc_out(dev, ZM_U8, 2, shq), *tsc = zc_out(dev, ZM_F32, 2, shs), *tz = zc_out(dev, ZM_F32, 2, shs);
            ZT_OK(zm_op_quantize_int4_group(t4, tsc, tz, tx, g));
            zc_get(q4, t4); zc_getf(sc, tsc); zc_getf(zr, tz);
            for (int64_t k = 0; k < ng; k++) {
                float lo = 0, hi = 0;
                for (int i = 0; i < g; i++) { lo = fminf(lo, x[k * g + i]); hi = fmaxf(hi, x[k * g + i]); }
                float sk = (hi - lo) / 15.0f, inv = sk > 0 ? 1.0f / sk : 0.0f, z = rintf(-lo * inv);
                ZT_CHECK(sc[k] == sk && zr[k] == z, "int4 group %lld scale/zero %g %g want %g %g", (long long)k, sc[k], zr[k], sk, z);
                for (int i = 0; i < g; i++) {
                    int64_t e = k * g + i;
                    int v = (q4[e / 2] >> (4 * (e & 1))) & 15, want = (int)fminf(15, fmaxf(0, rintf(x[e] * inv) + z));
                    if (v != want) { ZT_CHECK(0, "int4 q[%lld] = %d want %d", (long long)e, v, want); break; }
                    rd[e] = sk * ((double)v - z);
                    ZT_CHECK(fabs(rd[e] - x[e]) <= 0.5001 * sk + 1e-30, "int4 round trip %g vs %g", rd[e], x[e]);
                }
                if (zt_failed_now()) break;
            }
            zm_tensor_fill(to, NAN);
            ZT_OK(zm_op_dequantize_int4_group(to, t4, tsc, tz, g));
            zc_getf(o, to);
            ZT_CHECK(zt_close("dequantize_int4_group", o, rd, n, 1e-6), "int4 dequant C=%lld g=%d", (long long)C, g);
            zm_tensor *tt[] = {t4, tsc, tz};
            zc_free(3, tt);
        }
        zm_tensor *tt[] = {tx, tq, ts, to};
        zc_free(4, tt);
        free(x); free(o); free(s); free(sc); free(zr); free(q); free(q4); free(rd);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_int8_int4)

/* fp8 by definition: e4m3 (bias 7, no Inf, 0x7f NaN), e5m2 (bias 15, IEEE-like) */
static double fp8_val(int c, int kind) {
    int M = kind ? 2 : 3, bias = kind ? 15 : 7, e = (c >> M) & (kind ? 31 : 15), m = c & ((1 << M) - 1);
    double v;
    if (!kind && (c & 0x7f) == 0x7f) return NAN;
    if (kind && e == 31) return m ? NAN : ((c & 0x80) ? -INFINITY : INFINITY);
    v = e ? ldexp(1.0 + m / (double)(1 << M), e - bias) : ldexp(m / (double)(1 << M), 1 - bias);
    return (c & 0x80) ? -v : v;
}
static int fp8_ref_enc(double x, int kind) {
    if (isnan(x)) return -1;
    double maxv = kind ? 57344 : 448; /* saturating: at or beyond it, the largest finite */
    if (fabs(x) >= maxv) return (x < 0 ? 0x80 : 0) | (kind ? 0x7b : 0x7e);
    int best = -1;
    double be = INFINITY;
    for (int c = 0; c < 256; c++) {
        double v = fp8_val(c, kind);
        if (!isfinite(v) || (signbit(v) != signbit(x))) continue;
        double e = fabs(v - x);
        if (e < be || (e == be && (c & 1) == 0)) { be = e; best = c; } /* ties to the even mantissa */
    }
    return best; /* beyond the largest finite this is the saturated maximum */
}

static void t_fp8(zm_device dev) {
    for (int kind = 0; kind < 2; kind++) {
        int64_t n = 256 + 4000;
        float *x = zc_f(n), *o = zc_f(n);
        uint8_t *q = malloc((size_t)n), *codes = malloc((size_t)n);
        for (int c = 0; c < 256; c++) codes[c] = (uint8_t)c;
        for (int64_t i = 256; i < n; i++) codes[i] = 0;
        /* values over the whole range, subnormals, ties, beyond the maximum */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(zt_normal() * pow(2.0, zt_uniform(kind ? -18 : -10, kind ? 17 : 10)));
        for (int c = 0; c < 127; c++) { /* exact midpoints between neighbours: ties */
            double a = fp8_val(c, kind), b = fp8_val(c + 1, kind);
            if (isfinite(a) && isfinite(b)) x[c] = (float)((a + b) / 2);
        }
        x[200] = 0; x[201] = -0.0f; x[202] = 1e30f; x[203] = -1e30f; x[204] = NAN;
        float scale = 1.0f;
        zm_tensor *tx = zc_newf(dev, ZM_F32, 1, &n, x), *tq = zc_out(dev, ZM_U8, 1, &n), *tc = zc_new(dev, ZM_U8, 1, &n, codes), *to = zc_out(dev, ZM_F32, 1, &n);
        ZT_OK(zm_op_quantize_fp8(tq, tx, scale, (zm_fp8_kind)kind));
        zc_get(q, tq);
        for (int64_t i = 0; i < n; i++) {
            int want = fp8_ref_enc(x[i], kind);
            if (want < 0) { ZT_CHECK((q[i] & 0x7f) == 0x7f || (kind && (q[i] & 0x7c) == 0x7c && (q[i] & 3)), "fp8 NaN -> %02x", q[i]); continue; }
            if (q[i] != want && !(x[i] == 0 && (q[i] & 0x7f) == 0)) {
                ZT_CHECK(0, "%s encode %.9g -> %02x want %02x", kind ? "e5m2" : "e4m3", x[i], q[i], want);
                break;
            }
        }
        ZT_OK(zm_op_dequantize_fp8(to, tc, 2.0f, (zm_fp8_kind)kind));
        zc_getf(o, to);
        for (int c = 0; c < 256; c++) {
            double v = fp8_val(c, kind) * 2;
            ZT_CHECK((isnan(v) && isnan(o[c])) || o[c] == v, "%s decode %02x -> %g want %g", kind ? "e5m2" : "e4m3", c, o[c], v);
        }
        zm_tensor *tt[] = {tx, tq, tc, to};
        zc_free(4, tt);
        free(x); free(o); free(q); free(codes);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_fp8)

static const double nf4lv[16] = {-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                                 -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                                 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                                 0.7229568362236023, 1.0};
static void t_nf4(zm_device dev) {
    for (int ci = 1; ci < 4; ci += 2) {
        int64_t R = 2, C = qcols[ci], n = R * C, sh[2] = {R, C}, shq[2] = {R, C / 2}, sha[2] = {R, C / 64};
        float *x = zc_f(n), *o = zc_f(n), *am = zc_f(n / 64);
        uint8_t *q = malloc((size_t)n / 2);
        double *rd = zc_d(n);
        zt_fill_normal(x, n, 1.0);
        zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tq = zc_out(dev, ZM_U8, 2, shq), *ta = zc_out(dev, ZM_F32, 2, sha), *to = zc_out(dev, ZM_F32, 2, sh);
        ZT_OK(zm_op_quantize_nf4(tq, ta, tx));
        zc_get(q, tq); zc_getf(am, ta);
        for (int64_t g = 0; g < n / 64; g++) {
            float a = 0;
            for (int i = 0; i < 64; i++) a = fmaxf(a, fabsf(x[g * 64 + i]));
            ZT_CHECK(am[g] == a, "nf4 absmax");
            float inv = 1.0f / a;
            for (int i = 0; i < 64; i++) {
                int64_t e = g * 64 + i;
                float v = x[e] * inv;
                int bi = 0;
                for (int k = 1; k < 16; k++) if (fabsf(v - (float)nf4lv[k]) < fabsf(v - (float)nf4lv[bi])) bi = k;
                int got = (q[e / 2] >> (4 * (e & 1))) & 15;
                if (got != bi) { ZT_CHECK(0, "nf4 code %lld: %d want %d", (long long)e, got, bi); break; }
                rd[e] = nf4lv[got] * a;
            }
        }
        ZT_OK(zm_op_dequantize_nf4(to, tq, ta));
        zc_getf(o, to);
        ZT_CHECK(zt_close("dequantize_nf4", o, rd, n, 1e-6), "nf4 dequant");
        zm_tensor *tt[] = {tx, tq, ta, to};
        zc_free(4, tt);
        free(x); free(o); free(am); free(q); free(rd);
    }
}
ZC_DEVICES(t_nf4)

static void t_bad(void) {
    int64_t sh[2] = {2, 48}, sh2[2] = {2, 24}, r2 = 2;
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, sh), *q = NULL, *q4 = zc_out(ZM_CPU, ZM_U8, 2, sh2), *s = zc_out(ZM_CPU, ZM_F32, 1, &r2);
    ZT_CHECK(zm_tensor_new(&q, ZM_Q8_0, ZM_CPU, 2, sh) == ZM_ERR_SHAPE, "48 is not a whole number of blocks");
    ZT_CHECK(zm_op_quantize_nf4(q4, s, x) == ZM_ERR_SHAPE, "nf4 needs rows of 64k");
    ZT_CHECK(zm_op_quantize_int4_group(q4, s, s, x, 7) == ZM_ERR_SHAPE, "odd group");
    ZT_CHECK(zm_op_quantize_fp8(q4, x, 1.0f, ZM_FP8_E4M3) == ZM_ERR_SHAPE, "fp8 shape");
    zm_tensor *tt[] = {x, q, q4, s};
    zc_free(4, tt);
}

int main(void) {
    ZC_RUN(t_block);
    ZC_RUN(t_int8_int4);
    ZC_RUN(t_fp8);
    ZC_RUN(t_nf4);
    ZT_RUN(t_bad);
    return zt_finish();
}
