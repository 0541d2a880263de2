/* dtypes: names, block geometry, ggml ids, f16/bf16 <-> f32 conversion.
 * Conversions round to nearest even and keep NaN/Inf/subnormals; checked
 * exhaustively over all 2^16 half values in tests/test_core.c. */
#include "core/internal.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------
typedef struct {
    const char *name;
    int64_t block;  /* elements per block */
    int64_t bytes;  /* bytes per block */
    int ggml;       /* ggml type id, -1 if none */
} zm__dtype_info;

static const zm__dtype_info zm__dt[ZM_DTYPE_COUNT] = {
    [ZM_F32] = {"f32", 1, 4, 0},        [ZM_F16] = {"f16", 1, 2, 1},
    [ZM_BF16] = {"bf16", 1, 2, 30},     [ZM_I32] = {"i32", 1, 4, 26},
    [ZM_U8] = {"u8", 1, 1, -1},         [ZM_I8] = {"i8", 1, 1, 24},
    [ZM_Q8_0] = {"q8_0", 32, 34, 8},    [ZM_Q4_0] = {"q4_0", 32, 18, 2},
    [ZM_Q4_K] = {"q4_k", 256, 144, 12}, [ZM_Q5_K] = {"q5_k", 256, 176, 13},
    [ZM_Q6_K] = {"q6_k", 256, 210, 14}, [ZM_MXFP4] = {"mxfp4", 32, 17, 39},
};

static int zm__dt_ok(zm_dtype t) { return (int)t >= 0 && t < ZM_DTYPE_COUNT; }
const char *zm_dtype_name(zm_dtype t) { return zm__dt_ok(t) ? zm__dt[t].name : "?"; }
int64_t zm_dtype_block_size(zm_dtype t) { return zm__dt_ok(t) ? zm__dt[t].block : 0; }
int64_t zm_dtype_block_bytes(zm_dtype t) { return zm__dt_ok(t) ? zm__dt[t].bytes : 0; }
int zm_dtype_is_quant(zm_dtype t) { return zm__dt_ok(t) && zm__dt[t].block > 1; }
int zm_dtype_is_float(zm_dtype t) { return t == ZM_F32 || t == ZM_F16 || t == ZM_BF16; }

int zm_dtype_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < ZM_DTYPE_COUNT; i++)
        if (strcasecmp(name, zm__dt[i].name) == 0) return i;
    return -1;
}
int zm_dtype_from_ggml(uint32_t g) {
    for (int i = 0; i < ZM_DTYPE_COUNT; i++)
        if (zm__dt[i].ggml >= 0 && (uint32_t)zm__dt[i].ggml == g) return i;
    return -1;
}
int zm_dtype_to_ggml(zm_dtype t) { return zm__dt_ok(t) ? zm__dt[t].ggml : -1; }

// ---------------------------------------------------------------------------
static uint32_t zm__bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float zm__float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t zm_f32_to_f16(float f) {
    uint32_t x = zm__bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* Inf or NaN: keep NaN quiet and non-zero */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x0200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: Inf */
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to 0 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        int e = (int)(ax >> 23); /* 102..112 */
        int shift = 126 - e;     /* mantissa bits to drop (14..24) */
        uint32_t h = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((ax >> 13) - (112u << 10)); /* rebias 127 -> 15 */
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into exponent: fine */
    return (uint16_t)(sign | h);
}

float zm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        if (m == 0) return zm__float(sign);
        float v = ldexpf((float)m, -24); /* exact */
        return sign ? -v : v;
    }
    if (e == 31) return zm__float(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    return zm__float(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t zm_f32_to_bf16(float f) {
    uint32_t x = zm__bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u); /* quiet NaN */
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;
    return (uint16_t)(x >> 16);
}

float zm_bf16_to_f32(uint16_t h) { return zm__float((uint32_t)h << 16); }

void zm_convert_to_f32(float *dst, const void *src, zm_dtype t, int64_t n) {
    const uint16_t *s16 = (const uint16_t *)src;
    switch (t) {
    case ZM_F32: memcpy(dst, src, (size_t)n * 4); break;
    case ZM_F16: for (int64_t i = 0; i < n; i++) dst[i] = zm_f16_to_f32(s16[i]); break;
    case ZM_BF16: for (int64_t i = 0; i < n; i++) dst[i] = zm_bf16_to_f32(s16[i]); break;
    case ZM_I32: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)src)[i]; break;
    case ZM_U8: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const uint8_t *)src)[i]; break;
    case ZM_I8: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const int8_t *)src)[i]; break;
    default: for (int64_t i = 0; i < n; i++) dst[i] = NAN; break;
    }
}

void zm_convert_from_f32(void *dst, zm_dtype t, const float *src, int64_t n) {
    uint16_t *d16 = (uint16_t *)dst;
    switch (t) {
    case ZM_F32: memcpy(dst, src, (size_t)n * 4); break;
    case ZM_F16: for (int64_t i = 0; i < n; i++) d16[i] = zm_f32_to_f16(src[i]); break;
    case ZM_BF16: for (int64_t i = 0; i < n; i++) d16[i] = zm_f32_to_bf16(src[i]); break;
    case ZM_I32: for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)lrintf(src[i]); break;
    case ZM_U8: for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)lrintf(src[i]); break;
    case ZM_I8: for (int64_t i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)lrintf(src[i]); break;
    default: break;
    }
}

const char *zm_device_name(zm_device d) {
    return d == ZM_CPU ? "cpu" : d == ZM_CUDA ? "cuda" : "?";
}
