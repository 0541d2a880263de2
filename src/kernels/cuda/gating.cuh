/* MoE gating routines shared by the stock kernels (softmax, topk,
 * normalize_sum), the fused topk_gating_softmax and the router matvec with
 * the gating in its last block: one code path, so their probabilities,
 * expert ids and weights agree bit for bit. */
#pragma once
#include "kernels/cuda/common.cuh"

// ---------------------------------------------------------------------------
// Warp routines: lane l holds elements l, l+32, ... (up to 32 each, n <= 1024).
#define ZM_WMAX 32
template <int NPL, bool CG = false> /* elements per lane: n <= 32 * NPL; more slots only add -inf / 0.
                                        CG: read x through L2 (written by other blocks of this grid) */
__device__ __forceinline__ void warp_softmax(const float *x, int n, float v[NPL]) {
    const int lane = threadIdx.x & 31;
    float m = -INFINITY;
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        int c = lane + 32 * i;
        v[i] = c < n ? (CG ? __ldcg(x + c) : x[c]) : -INFINITY;
        m = fmaxf(m, v[i]);
    }
    m = warp_max(m);
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        int c = lane + 32 * i;
        v[i] = c < n ? expf(v[i] - m) : 0.f;
        s = __fadd_rn(s, v[i]);
    }
    s = warp_sum(s);
#pragma unroll
    for (int i = 0; i < NPL; i++) v[i] = __fdiv_rn(v[i], s);
}

/* An order-preserving key of a candidate: larger float, larger key; -0
 * and +0 the same key; NaN and -inf (never chosen) 0, below every other. */
__device__ __forceinline__ uint32_t topk_key(float f) {
    if (!(f > -INFINITY)) return 0u;
    const uint32_t b = f == 0.f ? 0u : __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : b | 0x80000000u;
}

/* k rounds of warp argmax (ties: lower index); chosen entries become -inf.
 * Every lane ends with the same ids/vals. Entries past n must be -inf; NaN
 * and -inf entries are never chosen: once none is left, a round yields id
 * INT32_MAX and -inf. A round: each lane's best (first maximum of its
 * entries), the warp's best key and lowest index of that key by two
 * redux.sync (instead of a five-step shuffle butterfly), the value from
 * the winning lane. */
template <int NPL>
__device__ __forceinline__ void warp_topk(float v[NPL], int k, int32_t *ids, float *vals) {
    const int lane = threadIdx.x & 31;
    for (int j = 0; j < k; j++) {
        float bv = -INFINITY;
        int bi = 0x7fffffff;
#pragma unroll
        for (int i = 0; i < NPL; i++) {
            int c = lane + 32 * i;
            if (v[i] > bv) { bv = v[i]; bi = c; }
        }
        const uint32_t key = topk_key(bv), best = __reduce_max_sync(0xffffffffu, key);
        const int wi = best ? (int)__reduce_min_sync(0xffffffffu, key == best ? (uint32_t)bi : 0xffffffffu) : 0x7fffffff;
        const float wv = __shfl_sync(0xffffffffu, bv, wi & 31);
        ids[j] = wi;
        vals[j] = best ? wv : -INFINITY;
#pragma unroll
        for (int i = 0; i < NPL; i++)
            if (lane + 32 * i == wi) v[i] = -INFINITY;
    }
}

/* Sequential renormalisation in slot order, shared by both paths. */
__device__ __forceinline__ void renorm_seq(const float *in, int k, float *out) {
    float s = 0.f;
    for (int j = 0; j < k; j++) s = __fadd_rn(s, in[j]);
    for (int j = 0; j < k; j++) out[j] = __fdiv_rn(in[j], s);
}

/* One warp gates one row of n logits: softmax, top-k, optional
 * renormalisation; lane 0 writes k ids and weights. */
template <int NPL, bool CG>
__device__ __forceinline__ void gate_row(const float *logits, int n, int k, int renorm, int32_t *ids, float *w) {
    float v[NPL];
    __shared__ int32_t sid[32];
    __shared__ float sv[32];
    warp_softmax<NPL, CG>(logits, n, v);
    warp_topk<NPL>(v, k, sid, sv); /* all lanes write identical values */
    __syncwarp();
    if ((threadIdx.x & 31) == 0) {
        if (renorm) renorm_seq(sv, k, w);
        else for (int j = 0; j < k; j++) w[j] = sv[j];
        for (int j = 0; j < k; j++) ids[j] = sid[j];
    }
}

#define ZM_NPL(n, ...)                                                                             \
    if (n <= 32) { constexpr int NPL = 1; __VA_ARGS__; }                                            \
    else if (n <= 64) { constexpr int NPL = 2; __VA_ARGS__; }                                       \
    else if (n <= 128) { constexpr int NPL = 4; __VA_ARGS__; }                                      \
    else if (n <= 256) { constexpr int NPL = 8; __VA_ARGS__; }                                      \
    else if (n <= 512) { constexpr int NPL = 16; __VA_ARGS__; }                                     \
    else { constexpr int NPL = 32; __VA_ARGS__; }
