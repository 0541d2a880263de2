/* Number formats shared by quant.c and quant.cu (host and device): fp8
 * e4m3/e5m2 encode/decode, the NF4 levels, the MXFP4 (E2M1 doubled) values.
 * Every operation is exact (powers of two, rint) so both backends produce
 * the same bits. Not installed. */
#ifndef ZM_CATALOG_QUANT_FMT_H
#define ZM_CATALOG_QUANT_FMT_H
#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define ZM_HD __host__ __device__ __forceinline__
#else
#define ZM_HD static inline
#endif

/* fp8 with E exponent bits, M mantissa bits, saturating to the largest
 * finite value (e4m3 OCP "FN": 448, code 0x7e; e5m2: 57344, code 0x7b);
 * NaN -> 0x7f (sign kept). Round to nearest even. */
ZM_HD uint8_t zm__fp8_enc(float f, int kind) {
    const int M = kind ? 2 : 3, bias = kind ? 15 : 7;
    const uint8_t maxc = kind ? 0x7b : 0x7e;
    const float maxv = kind ? 57344.0f : 448.0f;
    uint8_t s = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (isnan(f)) return (uint8_t)(s | 0x7f);
    if (a >= maxv) return (uint8_t)(s | maxc);
    int e;
    (void)frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    e -= 1;              /* a = 1.x * 2^e */
    if (a == 0.0f || e < 1 - bias) { /* subnormal: multiples of 2^(1-bias-M) */
        float q = rintf(ldexpf(a, bias - 1 + M));
        return (uint8_t)(s | (uint8_t)q); /* q == 2^M is the smallest normal: same bits */
    }
    float q = rintf(ldexpf(a, M - e)) - (float)(1 << M); /* mantissa 0..2^M */
    int ec = e + bias, qi = (int)q;
    if (qi == (1 << M)) { qi = 0; ec++; }
    uint8_t c = (uint8_t)((ec << M) | qi);
    return (uint8_t)(s | (c > maxc ? maxc : c));
}
ZM_HD float zm__fp8_dec(uint8_t c, int kind) {
    const int M = kind ? 2 : 3, bias = kind ? 15 : 7;
    int s = c >> 7, e = (c >> M) & (kind ? 31 : 15), m = c & ((1 << M) - 1);
    float v;
    if (kind == 0 && (c & 0x7f) == 0x7f) v = NAN;
    else if (kind == 1 && e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexpf((float)m, 1 - bias - M);
    else v = ldexpf((float)(m + (1 << M)), e - bias - M);
    return s ? -v : v;
}

/* QLoRA's NF4 levels (Dettmers et al. 2023), ascending */
#define ZM_NF4_LEVELS                                                                              \
    {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,                    \
     -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,                   \
     0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,      \
     0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f}
/* E2M1 values doubled (ggml's kvalues_mxfp4): the e8m0 scale is halved */
#define ZM_MXFP4_VALUES {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

#endif
