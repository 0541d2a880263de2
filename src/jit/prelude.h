/* The float semantics of every IR op that is not a plain C operator or libm
 * call, written ONCE: expanded as code into the library (the interpreter,
 * src/jit/interp.c) and as text into every emitted kernel (C and CUDA C), so
 * the interpreter and the compiled kernels compute the same function.
 * ZM_FN is "static inline" in C and "static __device__ __forceinline__" in
 * CUDA. Branches are written as selects so loops over them auto-vectorise.
 * Checked by tests/test_kernel.c (JIT vs interpreter vs float64). */
#ifndef ZM_JIT_PRELUDE_H
#define ZM_JIT_PRELUDE_H

#define ZM__PRELUDE(M)                                                                             \
    M(ZM_FN float zm_sign(float a) { return a > 0.0f ? 1.0f : (a < 0.0f ? -1.0f : a); }           \
      /* fmin/fmax semantics (a NaN operand loses), as selects */                                 \
      ZM_FN float zm_min(float a, float b) { return (b < a || a != a) ? b : a; }                  \
      ZM_FN float zm_max(float a, float b) { return (b > a || a != a) ? b : a; }                  \
      ZM_FN float zm_relu(float a) { return a > 0.0f ? a : 0.0f; } /* fmaxf(a, 0): NaN -> 0 */                            \
      ZM_FN float zm_rsqrt(float a) { return 1.0f / sqrtf(a); }                                   \
      ZM_FN float zm_sigmoid(float a) { return 1.0f / (1.0f + zm_exp(-a)); }                        \
      ZM_FN float zm_silu(float a) { return a / (1.0f + zm_exp(-a)); }                              \
      /* as src/dsl/ir.h: identity above 20, where log1p(e^a) == a in float */                    \
      ZM_FN float zm_softplus(float a) { return a > 20.0f ? a : log1pf(zm_exp(a)); }                \
      ZM_FN float zm_gelu(float a) { return 0.5f * a * (1.0f + erff(a * 0.70710678118654752f)); } \
      ZM_FN float zm_gelu_tanh(float a) {                                                          \
          return 0.5f * a * (1.0f + tanhf(0.79788456080286536f * (a + 0.044715f * a * a * a)));   \
      }                                                                                            \
      ZM_FN float zm_where(float c, float a, float b) { return c != 0.0f ? a : b; }               \
      /* tanh(log(1 + e^a)) = n / (n + 2) with n = e^a (e^a + 2), exactly; one exp instead \
       * of exp, log1p and tanh (the emitter's peephole for mish-like chains) */          \
      ZM_FN float zm_tanh_softplus(float a) {                                                      \
          const float e = zm_exp(a), n = e * (e + 2.0f);                                            \
          return a > 15.0f ? 1.0f : n / (n + 2.0f);                                                \
      })

/* e^a on the C side, inline so the vectoriser keeps it in registers: on the
 * 2-core EPYC VM it ran 30 % faster than libmvec's AVX-512 expf (one thread,
 * in cache) and took mish at 2^28 elements from ~70 % to ~90 % of memcpy
 * (docs/BENCHMARKS.md). a = n ln2 + r with |r| <= ln2/2 (n rounded by adding
 * 1.5 * 2^23; ln2 in two parts, Cody-Waite), e^r by a degree-5 minimax
 * polynomial, then 2^n as two power-of-two factors, so results from the
 * subnormals up to FLT_MAX are plain scalings. Checked over every float:
 * at most 2.2 ulp with FMA contraction (the JIT), 2.4 ulp without (the
 * interpreter); NaN -> NaN, -inf -> 0, +inf -> inf (tests/test_kernel.c
 * test_exp_ulps samples it). CUDA defines zm_exp as its own expf. */
#define ZM__PRELUDE_EXP(M)                                                                         \
    M(ZM_FN float zm_exp(float a) {                                                                \
        float x = a < -104.0f ? -104.0f : a; /* the clamps keep NaN */                             \
        x = x > 89.0f ? 89.0f : x;                                                                 \
        const float t = x * 1.44269504088896341f + 12582912.0f, n = t - 12582912.0f;               \
        const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;              \
        float p = 8.312525050e-03f;                                                                \
        p = p * r + 4.189011343e-02f;                                                              \
        p = p * r + 1.666711446e-01f;                                                              \
        p = p * r + 4.999923179e-01f;                                                              \
        p = p * r + 1.0f;                                                                          \
        p = p * r + 1.0f;                                                                          \
        /* the low bits of t hold n; m = n + 256 > 0, h = floor(n / 2) + 128 */                    \
        union { float f; uint32_t u; } b = {t}, s1, s2;                                            \
        const uint32_t m = b.u - 0x4B3FFF00u, h = m >> 1;                                          \
        s1.u = (h - 1u) << 23; /* 2^floor(n/2) */                                                  \
        s2.u = (m - h - 1u) << 23; /* 2^(n - floor(n/2)) */                                        \
        return p * s1.f * s2.f;                                                                    \
    })

#define ZM__PRELUDE_CODE(...) __VA_ARGS__
#define ZM__PRELUDE_TEXT(...) #__VA_ARGS__

#endif
