/* x86 SIMD row-dot kernels for cpu_matvec.c: AVX2+FMA+F16C, AVX-512
 * (F/BW/VL/DQ) and AVX-512 VNNI. Each function carries its own
 * __attribute__((target)) so the file builds without -march flags and the
 * caller picks a path at run time (cpu_matvec.c checks __builtin_cpu_supports
 * before installing a table). Every kernel is compared with the scalar one
 * and a float64 reference in tests/test_matvec.c.
 *
 * Numerics: f32 mode keeps several f32 accumulators (order differs from the
 * scalar loop, so results agree to f32 rounding, not bit for bit). q8 mode
 * sums int8 x int8 products exactly in int32 per block, then scales in f32.
 * Q4_0 in q8 mode uses the unsigned nibble n in [0, 15] against signed x
 * (maddubs / vpdpbusd want u8 x s8) and subtracts 8 * sum(x_q) per block in
 * the int32 lanes (sum(x_q) from each of the 8 lanes of a block). */
#include "kernels/cpu_matvec_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TA2 __attribute__((target("avx2,fma,f16c")))
#define TA5 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define TAV __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// ---------------------------------------------------------------------------
// AVX2

TA2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TA2 static inline float f16_1(uint16_t h) { return _cvtsh_ss(h); }
static inline float bf16_1(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

TA2 static inline __m256 ld_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
TA2 static inline __m256 ld_bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/* Four independent accumulators hide the FMA latency; LOAD8 turns 8 weights into f32. */
#define DOT_FLOAT_AVX2(NAME, T, LOAD8, CONV1)                                                       \
    TA2 static float NAME(const void *row, const float *x, int64_t n) {                            \
        const T *w = row;                                                                          \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                \
        int64_t c = 0;                                                                             \
        for (; c + 32 <= n; c += 32) {                                                             \
            a0 = _mm256_fmadd_ps(LOAD8(w + c), _mm256_loadu_ps(x + c), a0);                        \
            a1 = _mm256_fmadd_ps(LOAD8(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);                \
            a2 = _mm256_fmadd_ps(LOAD8(w + c + 16), _mm256_loadu_ps(x + c + 16), a2);              \
            a3 = _mm256_fmadd_ps(LOAD8(w + c + 24), _mm256_loadu_ps(x + c + 24), a3);              \
        }                                                                                          \
        for (; c + 8 <= n; c += 8) a0 = _mm256_fmadd_ps(LOAD8(w + c), _mm256_loadu_ps(x + c), a0); \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));            \
        for (; c < n; c++) s += CONV1(w[c]) * x[c];                                                \
        return s;                                                                                  \
    }

#define ID1(v) (v)
DOT_FLOAT_AVX2(dot_f32_avx2, float, _mm256_loadu_ps, ID1)
DOT_FLOAT_AVX2(dot_f16_avx2, uint16_t, ld_f16x8, f16_1)
DOT_FLOAT_AVX2(dot_bf16_avx2, uint16_t, ld_bf16x8, bf16_1)

TA2 static inline __m256 i8x8_ps(const int8_t *q) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
}

TA2 static float dot_q8_0_avx2(const void *row, const float *x, int64_t n) {
    const zm_block_q8_0 *b = row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        const int8_t *q = b[i].qs;
        __m256 s0 = _mm256_mul_ps(i8x8_ps(q), _mm256_loadu_ps(x));
        __m256 s1 = _mm256_mul_ps(i8x8_ps(q + 8), _mm256_loadu_ps(x + 8));
        s0 = _mm256_fmadd_ps(i8x8_ps(q + 16), _mm256_loadu_ps(x + 16), s0);
        s1 = _mm256_fmadd_ps(i8x8_ps(q + 24), _mm256_loadu_ps(x + 24), s1);
        __m256 d = _mm256_set1_ps(f16_1(b[i].d));
        acc0 = _mm256_fmadd_ps(d, s0, acc0);
        acc1 = _mm256_fmadd_ps(d, s1, acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

TA2 static inline __m256 u8x8_ps_m8(__m128i v) { /* 8 low bytes -> f32, minus 8 */
    return _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), _mm256_set1_ps(8.0f));
}

TA2 static float dot_q4_0_avx2(const void *row, const float *x, int64_t n) {
    const zm_block_q4_0 *b = row;
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m128i v = _mm_loadu_si128((const __m128i *)b[i].qs);
        __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        __m256 s0 = _mm256_mul_ps(u8x8_ps_m8(lo), _mm256_loadu_ps(x));
        __m256 s1 = _mm256_mul_ps(u8x8_ps_m8(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8));
        s0 = _mm256_fmadd_ps(u8x8_ps_m8(hi), _mm256_loadu_ps(x + 16), s0);
        s1 = _mm256_fmadd_ps(u8x8_ps_m8(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s1);
        __m256 d = _mm256_set1_ps(f16_1(b[i].d));
        acc0 = _mm256_fmadd_ps(d, s0, acc0);
        acc1 = _mm256_fmadd_ps(d, s1, acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

/* q8 mode, 32 int8 x 32 int8 -> 8 int32 partial sums. maddubs wants u8 x s8:
 * |w| x (x * sign(w)); pair sums stay below 2 * 128 * 127 < 32767. */
TA2 static inline __m256i dot_i8x32_avx2(__m256i w, __m256i x) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}
/* unsigned nibbles (<= 15) x s8: no sign trick needed. */
TA2 static inline __m256i dot_u4x32_avx2(__m256i n, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(n, x), _mm256_set1_epi16(1));
}
TA2 static inline __m256i q4_unpack_avx2(const uint8_t *qs) { /* elements 0..15 low, 16..31 high */
    __m128i v = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
}

TA2 static float dotq_q8_0_avx2(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q8_0 *b = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i p = dot_i8x32_avx2(_mm256_loadu_si256((const __m256i *)b[i].qs),
                                   _mm256_loadu_si256((const __m256i *)xq[i].q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_1(b[i].d) * xq[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum256(acc);
}

TA2 static float dotq_q4_0_avx2(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q4_0 *b = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i p = dot_u4x32_avx2(q4_unpack_avx2(b[i].qs), _mm256_loadu_si256((const __m256i *)xq[i].q));
        /* minus 8 * s spread as s over the 8 lanes: exact, and no serial float chain */
        p = _mm256_sub_epi32(p, _mm256_set1_epi32(xq[i].s));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_1(b[i].d) * xq[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum256(acc);
}

/* ggml's AVX2 quantize_row_q8_0: same rounding as quantize_x_scalar. */
TA2 static void quantize_x_avx2(zm__q8x *out, const float *x, int64_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4), id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], _mm256_set1_ps(id)),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* sum of q, then pack 32 int32 -> 32 int8 in order */
        __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        /* packs work per 128-bit lane: restore element order */
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[i].q, p8);
        out[i].s = _mm_cvtsi128_si32(s4);
        out[i].d = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
    }
}

void zm__matvec_table_avx2(zm__mv_table *t) {
    t->quantize_x = quantize_x_avx2;
    t->f32[ZM_F32] = dot_f32_avx2;
    t->f32[ZM_F16] = dot_f16_avx2;
    t->f32[ZM_BF16] = dot_bf16_avx2;
    t->f32[ZM_Q8_0] = dot_q8_0_avx2;
    t->f32[ZM_Q4_0] = dot_q4_0_avx2;
    t->q8[ZM_Q8_0] = dotq_q8_0_avx2;
    t->q8[ZM_Q4_0] = dotq_q4_0_avx2;
}

// ---------------------------------------------------------------------------
// AVX-512

TA5 static inline __m512 ld_f16x16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
TA5 static inline __m512 ld_bf16x16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
TA5 static inline __m512 ld_f16x16_m(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
TA5 static inline __m512 ld_bf16x16_m(const uint16_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
TA5 static inline __m512 ld_f32x16_m(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }

/* The tail (< 16 elements) is done with masked loads, so no scalar loop. */
#define DOT_FLOAT_AVX512(NAME, T, LOAD16, LOAD16M)                                                  \
    TA5 static float NAME(const void *row, const float *x, int64_t n) {                            \
        const T *w = row;                                                                          \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                \
        int64_t c = 0;                                                                             \
        for (; c + 64 <= n; c += 64) {                                                             \
            a0 = _mm512_fmadd_ps(LOAD16(w + c), _mm512_loadu_ps(x + c), a0);                       \
            a1 = _mm512_fmadd_ps(LOAD16(w + c + 16), _mm512_loadu_ps(x + c + 16), a1);             \
            a2 = _mm512_fmadd_ps(LOAD16(w + c + 32), _mm512_loadu_ps(x + c + 32), a2);             \
            a3 = _mm512_fmadd_ps(LOAD16(w + c + 48), _mm512_loadu_ps(x + c + 48), a3);             \
        }                                                                                          \
        for (; c + 16 <= n; c += 16) a0 = _mm512_fmadd_ps(LOAD16(w + c), _mm512_loadu_ps(x + c), a0); \
        if (c < n) {                                                                               \
            __mmask16 m = (__mmask16)((1u << (n - c)) - 1);                                        \
            a1 = _mm512_fmadd_ps(LOAD16M(w + c, m), _mm512_maskz_loadu_ps(m, x + c), a1);          \
        }                                                                                          \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));  \
    }

DOT_FLOAT_AVX512(dot_f32_avx512, float, _mm512_loadu_ps, ld_f32x16_m)
DOT_FLOAT_AVX512(dot_f16_avx512, uint16_t, ld_f16x16, ld_f16x16_m)
DOT_FLOAT_AVX512(dot_bf16_avx512, uint16_t, ld_bf16x16, ld_bf16x16_m)

TA5 static inline __m512 i8x16_ps(const int8_t *q) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
}

TA5 static float dot_q8_0_avx512(const void *row, const float *x, int64_t n) {
    const zm_block_q8_0 *b = row;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m512 d = _mm512_set1_ps(_cvtsh_ss(b[i].d));
        acc0 = _mm512_fmadd_ps(_mm512_mul_ps(d, i8x16_ps(b[i].qs)), _mm512_loadu_ps(x), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_mul_ps(d, i8x16_ps(b[i].qs + 16)), _mm512_loadu_ps(x + 16), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

TA5 static float dot_q4_0_avx512(const void *row, const float *x, int64_t n) {
    const zm_block_q4_0 *b = row;
    const __m128i m4 = _mm_set1_epi8(15);
    const __m512 eight = _mm512_set1_ps(8.0f);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m128i v = _mm_loadu_si128((const __m128i *)b[i].qs);
        __m512 lo = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(v, m4))), eight);
        __m512 hi = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), m4))), eight);
        __m512 d = _mm512_set1_ps(_cvtsh_ss(b[i].d));
        acc0 = _mm512_fmadd_ps(_mm512_mul_ps(d, lo), _mm512_loadu_ps(x), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_mul_ps(d, hi), _mm512_loadu_ps(x + 16), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* q8 mode on 512 bits: two blocks per step (block i in the low 256 bits,
 * block i+1 in the high); the per-lane scale vector follows the same split. */
TA5 static inline __m512i pair256(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}
TA5 static inline __m512 scale2(float d0, float d1) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d0)), _mm256_set1_ps(d1), 1);
}
TA5 static inline __m512i s2(int32_t s0, int32_t s1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(s0)), _mm256_set1_epi32(s1), 1);
}
TA5 static inline __m512i q4_unpack2(const uint8_t *a, const uint8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(q4_unpack_avx2(a)), q4_unpack_avx2(b), 1);
}
/* s8 x s8 -> int32 via u8 x s8: |w| and x with w's sign (AVX-512 has no sign_epi8). */
TA5 static inline __m512i sign_split(__m512i w, __m512i x, __m512i *aw) {
    *aw = _mm512_abs_epi8(w);
    return _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
}

TA5 static float dotq_q8_0_avx512(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q8_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i aw, sx = sign_split(pair256(b[i].qs, b[i + 1].qs), pair256(xq[i].q, xq[i + 1].q), &aw);
        __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), ones);
        acc = _mm512_fmadd_ps(scale2(_cvtsh_ss(b[i].d) * xq[i].d, _cvtsh_ss(b[i + 1].d) * xq[i + 1].d),
                              _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += dotq_q8_0_avx2(b + i, xq + i, 1);
    return s;
}

TA5 static float dotq_q4_0_avx512(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q4_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(q4_unpack2(b[i].qs, b[i + 1].qs),
                                                           pair256(xq[i].q, xq[i + 1].q)), ones);
        p = _mm512_sub_epi32(p, s2(xq[i].s, xq[i + 1].s)); /* 8 * s over 8 lanes per block */
        acc = _mm512_fmadd_ps(scale2(_cvtsh_ss(b[i].d) * xq[i].d, _cvtsh_ss(b[i + 1].d) * xq[i + 1].d),
                              _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += dotq_q4_0_avx2(b + i, xq + i, 1);
    return s;
}

void zm__matvec_table_avx512(zm__mv_table *t) {
    t->f32[ZM_F32] = dot_f32_avx512;
    t->f32[ZM_F16] = dot_f16_avx512;
    t->f32[ZM_BF16] = dot_bf16_avx512;
    t->f32[ZM_Q8_0] = dot_q8_0_avx512;
    t->f32[ZM_Q4_0] = dot_q4_0_avx512;
    t->q8[ZM_Q8_0] = dotq_q8_0_avx512;
    t->q8[ZM_Q4_0] = dotq_q4_0_avx512;
}

// ---------------------------------------------------------------------------
// AVX-512 VNNI: vpdpbusd does u8 x s8 -> int32 in one instruction (no int16
// saturation, no second madd). f32 mode stays on the AVX-512 kernels.

TAV static float dotq_q8_0_vnni(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q8_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i aw, sx = sign_split(pair256(b[i].qs, b[i + 1].qs), pair256(xq[i].q, xq[i + 1].q), &aw);
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx);
        acc = _mm512_fmadd_ps(scale2(_cvtsh_ss(b[i].d) * xq[i].d, _cvtsh_ss(b[i + 1].d) * xq[i + 1].d),
                              _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += dotq_q8_0_avx2(b + i, xq + i, 1);
    return s;
}

TAV static float dotq_q4_0_vnni(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q4_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q4_unpack2(b[i].qs, b[i + 1].qs),
                                        pair256(xq[i].q, xq[i + 1].q));
        p = _mm512_sub_epi32(p, s2(xq[i].s, xq[i + 1].s)); /* 8 * s over 8 lanes per block */
        acc = _mm512_fmadd_ps(scale2(_cvtsh_ss(b[i].d) * xq[i].d, _cvtsh_ss(b[i + 1].d) * xq[i + 1].d),
                              _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) s += dotq_q4_0_avx2(b + i, xq + i, 1);
    return s;
}

void zm__matvec_table_vnni(zm__mv_table *t) {
    t->q8[ZM_Q8_0] = dotq_q8_0_vnni;
    t->q8[ZM_Q4_0] = dotq_q4_0_vnni;
}

#else /* not x86-64: only the scalar path exists */
void zm__matvec_table_avx2(zm__mv_table *t) { (void)t; }
void zm__matvec_table_avx512(zm__mv_table *t) { (void)t; }
void zm__matvec_table_vnni(zm__mv_table *t) { (void)t; }
#endif
