/* Quant blocks: Q8_0 and Q4_0 quantize to hand-computed bytes (inputs chosen
 * so the arithmetic is exact), every block format dequantizes hand-packed
 * blocks to the values its layout defines (the packing here is written from
 * the format description, independently of src/gguf/quant.c's unpacking),
 * random rows stay within half a step of the input, and bad sizes/types
 * give errors. Run: build/tests/test_quant */
#include "harness.h"
#include "gguf/quant.h"
#include <string.h>

// ---------------------------------------------------------------------------
static void test_q8_0_hand(void) {
    /* x0 = -127/64 is the largest magnitude: d = 1/64 exactly (f16 0x2400),
     * 1/d = 64, so q_j = 64 x_j = 8 (j - 16) for j >= 1 and q_0 = -127. */
    float x[32];
    x[0] = -127.0f / 64.0f;
    for (int j = 1; j < 32; j++) x[j] = (float)(j - 16) / 8.0f;
    zm_block_q8_0 b;
    memset(&b, 0xaa, sizeof b);
    zm_quantize_row_q8_0(&b, x, 32);
    ZT_CHECK(b.d == 0x2400, "d = %04x, want 2400", b.d);
    ZT_CHECK(b.qs[0] == -127, "qs[0] = %d", b.qs[0]);
    for (int j = 1; j < 32; j++) ZT_CHECK(b.qs[j] == 8 * (j - 16), "qs[%d] = %d want %d", j, b.qs[j], 8 * (j - 16));
    /* the bytes on disk: d little-endian, then qs */
    const uint8_t *raw = (const uint8_t *)&b;
    ZT_CHECK(raw[0] == 0x00 && raw[1] == 0x24 && raw[2] == 0x81 && raw[3] == (uint8_t)-120, "raw bytes %02x %02x %02x %02x",
             raw[0], raw[1], raw[2], raw[3]);
    float y[32];
    zt_poison_f32(y, 32);
    zm_dequantize_row_q8_0(y, &b, 32);
    for (int j = 0; j < 32; j++) ZT_CHECK(y[j] == x[j], "deq[%d] = %g want %g", j, y[j], x[j]);
    /* all zeros: d = 0, q = 0 */
    float z[32] = {0};
    zm_quantize_row_q8_0(&b, z, 32);
    ZT_CHECK(b.d == 0 && b.qs[5] == 0, "zero block");
}

static void test_q4_0_hand(void) {
    /* q_j = 3j mod 16 (j < 16), (3j + 5) mod 16 (j >= 16); x_j = (q_j - 8)/8.
     * The largest magnitude is x_0 = -1: d = -1/-8 = 0.125 (f16 0x3000). */
    float x[32];
    int q[32];
    for (int j = 0; j < 32; j++) {
        q[j] = j < 16 ? (3 * j) % 16 : (3 * j + 5) % 16;
        x[j] = (float)(q[j] - 8) / 8.0f;
    }
    zm_block_q4_0 b;
    memset(&b, 0xaa, sizeof b);
    zm_quantize_row_q4_0(&b, x, 32);
    ZT_CHECK(b.d == 0x3000, "d = %04x, want 3000", b.d);
    for (int j = 0; j < 16; j++)
        ZT_CHECK(b.qs[j] == (uint8_t)(q[j] | (q[j + 16] << 4)), "qs[%d] = %02x want %02x", j, b.qs[j], q[j] | (q[j + 16] << 4));
    const uint8_t *raw = (const uint8_t *)&b;
    ZT_CHECK(raw[0] == 0x00 && raw[1] == 0x30 && raw[2] == 0x50 && raw[3] == 0x83, "raw %02x %02x %02x %02x", raw[0], raw[1], raw[2], raw[3]);
    float y[32];
    zt_poison_f32(y, 32);
    zm_dequantize_row_q4_0(y, &b, 32);
    for (int j = 0; j < 32; j++) ZT_CHECK(y[j] == x[j], "deq[%d] = %g want %g", j, y[j], x[j]);
    /* the max is positive: d = max/-8 < 0, so -max maps to q = 16 -> clamped to 15 */
    float p[32] = {0};
    p[3] = 1.0f;
    p[4] = -1.0f;
    zm_quantize_row_q4_0(&b, p, 32);
    ZT_CHECK(b.d == 0xb000, "negative d %04x", b.d);
    ZT_CHECK((b.qs[3] & 15) == 0 && (b.qs[4] & 15) == 15 && (b.qs[0] & 15) == 8, "signed max %02x %02x %02x", b.qs[3], b.qs[4], b.qs[0]);
}

// ---------------------------------------------------------------------------
/* Pack a 256-element Q4_K / Q5_K block from 8 (scale, min) pairs and q values. */
static void pack_scales_k4(uint8_t s[12], const int sc[8], const int m[8]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

static void test_kquants_hand(void) {
    int sc[8], m[8], q[256];
    for (int s = 0; s < 8; s++) { sc[s] = s < 4 ? 1 + s : 17 + 9 * (s - 4); m[s] = s < 4 ? 2 * s : 33 + 7 * (s - 4); }
    for (int e = 0; e < 256; e++) q[e] = (int)(zt_rand_u64() % 32);
    double want[256];
    float y[256];
    /* Q4_K: element 64c + l is the low nibble of qs[32c + l], 64c + 32 + l the high one */
    zm_block_q4_k b4;
    b4.d = 0x3c00;    /* 1.0 */
    b4.dmin = 0x3800; /* 0.5 */
    pack_scales_k4(b4.scales, sc, m);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) b4.qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
    for (int e = 0; e < 256; e++) want[e] = 1.0 * sc[e / 32] * (q[e] & 15) - 0.5 * m[e / 32];
    zt_poison_f32(y, 256);
    zm_dequantize_row_q4_k(y, &b4, 256);
    zt_close("q4_k", y, want, 256, 0);
    /* Q5_K: the fifth bit of element 64c + l is bit 2c of qh[l], of 64c + 32 + l bit 2c + 1 */
    zm_block_q5_k b5;
    b5.d = 0x3400;    /* 0.25 */
    b5.dmin = 0x3c00; /* 1.0 */
    pack_scales_k4(b5.scales, sc, m);
    memset(b5.qh, 0, sizeof b5.qh);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            b5.qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
            b5.qh[l] |= (uint8_t)(((q[64 * c + l] >> 4) << (2 * c)) | ((q[64 * c + 32 + l] >> 4) << (2 * c + 1)));
        }
    for (int e = 0; e < 256; e++) want[e] = 0.25 * sc[e / 32] * q[e] - 1.0 * m[e / 32];
    zt_poison_f32(y, 256);
    zm_dequantize_row_q5_k(y, &b5, 256);
    zt_close("q5_k", y, want, 256, 0);
    /* Q6_K: halves of 128; in a half, l < 32 and quarter k: the low 4 bits sit in
     * ql[64h + l + 32(k&1)] (low nibble for k < 2, high for k >= 2), the high 2
     * bits at bit 2k of qh[32h + l]; scale scales[8h + l/16 + 2k]; value d*sc*(q-32) */
    int q6[256], s6[16];
    for (int e = 0; e < 256; e++) q6[e] = (int)(zt_rand_u64() % 64);
    for (int s = 0; s < 16; s++) s6[s] = (int)(zt_rand_u64() % 255) - 127;
    zm_block_q6_k b6;
    memset(&b6, 0, sizeof b6);
    b6.d = 0x2c00; /* 1/16 */
    for (int s = 0; s < 16; s++) b6.scales[s] = (int8_t)s6[s];
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        int qi = 64 * h + l + 32 * (k & 1);
        b6.ql[qi] |= (uint8_t)((q6[e] & 15) << (k >= 2 ? 4 : 0));
        b6.qh[32 * h + l] |= (uint8_t)((q6[e] >> 4) << (2 * k));
        want[e] = (1.0 / 16) * s6[8 * h + l / 16 + 2 * k] * (q6[e] - 32);
    }
    zt_poison_f32(y, 256);
    zm_dequantize_row_q6_k(y, &b6, 256);
    zt_close("q6_k", y, want, 256, 0);
    /* MXFP4: E2M1 codes (sign, 2-bit exponent, 1-bit mantissa), scale 2^(e-127) */
    static const double e2m1[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};
    zm_block_mxfp4 bm;
    int code[32];
    for (int j = 0; j < 32; j++) code[j] = (int)(zt_rand_u64() % 16);
    for (int e = 125; e <= 130; e++) {
        bm.e = (uint8_t)e;
        for (int j = 0; j < 16; j++) bm.qs[j] = (uint8_t)(code[j] | (code[j + 16] << 4));
        for (int j = 0; j < 32; j++) want[j] = e2m1[code[j]] * ldexp(1.0, e - 127);
        zt_poison_f32(y, 32);
        zm_dequantize_row_mxfp4(y, &bm, 32);
        zt_close("mxfp4", y, want, 32, 0);
    }
}

// ---------------------------------------------------------------------------
static void test_random_rows(void) {
    enum { N = 32 * 64 };
    static float x[N], y[N];
    static zm_block_q8_0 b8[N / 32];
    static zm_block_q4_0 b4[N / 32];
    for (int it = 0; it < 200; it++) {
        zt_fill_normal(x, N, pow(10.0, zt_uniform(-3, 3)));
        ZT_OK(zm_quantize(b8, ZM_Q8_0, x, N));
        zt_poison_f32(y, N);
        ZT_OK(zm_dequantize(y, b8, ZM_Q8_0, N));
        for (int i = 0; i < N; i++) {
            /* half a step of the exact scale amax/127, plus the f16 rounding
             * of the stored scale (coarse when it is subnormal) over <= 127 steps */
            double amax = 0;
            for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) amax = fmax(amax, fabs((double)x[j]));
            double d = amax / 127, dh = fabs((double)zm_f16_to_f32(b8[i / 32].d));
            double tol = 0.5 * d * (1 + 1e-6) + 127 * fabs(dh - d) + 1e-30;
            ZT_CHECK(fabs((double)y[i] - x[i]) <= tol, "q8_0 [%d] %g -> %g (d %g, stored %g)", i, x[i], y[i], d, dh);
            if (zt_failed_now()) return;
        }
        ZT_OK(zm_quantize(b4, ZM_Q4_0, x, N));
        zt_poison_f32(y, N);
        ZT_OK(zm_dequantize(y, b4, ZM_Q4_0, N));
        for (int i = 0; i < N; i++) {
            /* values of the max's opposite sign may clamp at 7 steps: one step,
             * plus the f16 rounding of the stored scale over <= 8 steps */
            double amax = 0;
            for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) amax = fmax(amax, fabs((double)x[j]));
            double d = amax / 8, dh = fabs((double)zm_f16_to_f32(b4[i / 32].d));
            double tol = 1.0 * d * (1 + 1e-6) + 8 * fabs(dh - d) + 1e-30;
            ZT_CHECK(fabs((double)y[i] - x[i]) <= tol, "q4_0 [%d] %g -> %g (d %g, stored %g)", i, x[i], y[i], d, dh);
            if (zt_failed_now()) return;
        }
    }
}

static void test_errors(void) {
    float x[64] = {0}, y[64];
    uint8_t buf[256];
    ZT_CHECK(zm_quantize(buf, ZM_Q8_0, x, 33) == ZM_ERR_SHAPE, "partial block");
    ZT_CHECK(zm_quantize(buf, ZM_Q4_K, x, 256) == ZM_ERR_DTYPE, "no q4_k quantizer");
    ZT_CHECK(zm_dequantize(y, buf, ZM_Q4_0, 48) == ZM_ERR_SHAPE, "partial block dequant");
    ZT_CHECK(zm_dequantize(y, buf, (zm_dtype)99, 4) == ZM_ERR_DTYPE, "bad dtype");
    ZT_CHECK(zm_dequantize(NULL, buf, ZM_F32, 4) == ZM_ERR_INVALID, "NULL");
    /* plain types go through the core conversion */
    uint16_t h[4] = {0x3c00, 0xc000, 0x0000, 0x3800};
    ZT_OK(zm_dequantize(y, h, ZM_F16, 4));
    ZT_CHECK(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0.0f && y[3] == 0.5f, "f16");
}

int main(void) {
    ZT_RUN(test_q8_0_hand);
    ZT_RUN(test_q4_0_hand);
    ZT_RUN(test_kquants_hand);
    ZT_RUN(test_random_rows);
    ZT_RUN(test_errors);
    return zt_finish();
}
