/* Reference quantize / dequantize for ggml's block formats, written from
 * ggml-quants.c's *_ref functions so the bytes match ggml's bit for bit
 * (round-to-nearest; the scale for the inverse is the f32 one, the stored
 * scale is its f16 rounding, as in ggml). These are the truth that the SIMD
 * kernels are tested against. Test: build/tests/test_quant. */
#include "gguf/quant.h"
#include "core/internal.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------
// Q8_0, Q4_0

void zm_quantize_row_q8_0(zm_block_q8_0 *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK8_0; i++, x += ZM_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < ZM_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = zm_f32_to_f16(d);
        for (int j = 0; j < ZM_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void zm_quantize_row_q4_0(zm_block_q4_0 *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK4_0; i++, x += ZM_QK4_0) {
        float amax = 0.0f, max = 0.0f; /* max: the signed value of largest magnitude */
        for (int j = 0; j < ZM_QK4_0; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = zm_f32_to_f16(d);
        for (int j = 0; j < ZM_QK4_0 / 2; j++) {
            /* +8.5 then truncation = round half up into 0..16, clamped to 15 */
            int a = (int8_t)(x[j] * id + 8.5f), b = (int8_t)(x[j + 16] * id + 8.5f);
            if (a > 15) a = 15;
            if (b > 15) b = 15;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

void zm_dequantize_row_q8_0(float *y, const zm_block_q8_0 *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK8_0; i++) {
        const float d = zm_f16_to_f32(x[i].d);
        for (int j = 0; j < ZM_QK8_0; j++) *y++ = (float)x[i].qs[j] * d;
    }
}

void zm_dequantize_row_q4_0(float *y, const zm_block_q4_0 *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK4_0; i++, y += ZM_QK4_0) {
        const float d = zm_f16_to_f32(x[i].d);
        for (int j = 0; j < ZM_QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

// ---------------------------------------------------------------------------
// K-quants

/* 6-bit scale and min of sub-block j from the 12 packed bytes (ggml's get_scale_min_k4) */
static void zm__scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void zm_dequantize_row_q4_k(float *y, const zm_block_q4_k *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK_K; i++) {
        const float d = zm_f16_to_f32(x[i].d), dmin = zm_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0, is = 0; j < ZM_QK_K; j += 64, is += 2, q += 32) {
            uint8_t sc, m;
            zm__scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            zm__scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void zm_dequantize_row_q5_k(float *y, const zm_block_q5_k *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK_K; i++) {
        const float d = zm_f16_to_f32(x[i].d), dmin = zm_f16_to_f32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        unsigned u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < ZM_QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            zm__scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            zm__scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void zm_dequantize_row_q6_k(float *y, const zm_block_q6_k *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK_K; i++) {
        const float d = zm_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int k = 0; k < ZM_QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// MXFP4

/* E2M1 values doubled (ggml's kvalues_mxfp4), so the e8m0 scale is halved */
static const int8_t zm__mxfp4_vals[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

void zm_dequantize_row_mxfp4(float *y, const zm_block_mxfp4 *x, int64_t n) {
    for (int64_t i = 0; i < n / ZM_QK_MXFP4; i++, y += ZM_QK_MXFP4) {
        const float d = ldexpf(1.0f, (int)x[i].e - 128); /* 2^(e-127) / 2 */
        for (int j = 0; j < ZM_QK_MXFP4 / 2; j++) {
            y[j] = (float)zm__mxfp4_vals[x[i].qs[j] & 0x0f] * d;
            y[j + 16] = (float)zm__mxfp4_vals[x[i].qs[j] >> 4] * d;
        }
    }
}

// ---------------------------------------------------------------------------
// generic entry points

zm_status zm_dequantize(float *dst, const void *src, zm_dtype t, int64_t n) {
    if (!dst || (!src && n) || n < 0) return zm__err(ZM_ERR_INVALID, "zm_dequantize: bad argument");
    if ((int)t < 0 || t >= ZM_DTYPE_COUNT) return zm__err(ZM_ERR_DTYPE, "zm_dequantize: unknown dtype %d", (int)t);
    if (n % zm_dtype_block_size(t))
        return zm__err(ZM_ERR_SHAPE, "zm_dequantize: %lld elements is not a whole number of %s blocks", (long long)n,
                       zm_dtype_name(t));
    switch (t) {
    case ZM_Q8_0: zm_dequantize_row_q8_0(dst, src, n); break;
    case ZM_Q4_0: zm_dequantize_row_q4_0(dst, src, n); break;
    case ZM_Q4_K: zm_dequantize_row_q4_k(dst, src, n); break;
    case ZM_Q5_K: zm_dequantize_row_q5_k(dst, src, n); break;
    case ZM_Q6_K: zm_dequantize_row_q6_k(dst, src, n); break;
    case ZM_MXFP4: zm_dequantize_row_mxfp4(dst, src, n); break;
    default: zm_convert_to_f32(dst, src, t, n); break;
    }
    return ZM_OK;
}

zm_status zm_quantize(void *dst, zm_dtype t, const float *src, int64_t n) {
    if (!dst || (!src && n) || n < 0) return zm__err(ZM_ERR_INVALID, "zm_quantize: bad argument");
    switch (t) {
    case ZM_F32: case ZM_F16: case ZM_BF16: zm_convert_from_f32(dst, t, src, n); return ZM_OK;
    case ZM_Q8_0: case ZM_Q4_0: break;
    default: return zm__err(ZM_ERR_DTYPE, "zm_quantize: no quantizer for %s", zm_dtype_name(t));
    }
    if (n % 32) return zm__err(ZM_ERR_SHAPE, "zm_quantize: %lld elements is not a whole number of %s blocks",
                               (long long)n, zm_dtype_name(t));
    if (t == ZM_Q8_0) zm_quantize_row_q8_0(dst, src, n);
    else zm_quantize_row_q4_0(dst, src, n);
    return ZM_OK;
}
