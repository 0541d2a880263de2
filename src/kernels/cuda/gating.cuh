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

/* k rounds of warp argmax (ties: lower index); chosen entries become -inf.
 * Every lane ends with the same ids/vals. Entries past n must be -inf. */
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
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
        }
        ids[j] = bi;
        vals[j] = bv;
#pragma unroll
        for (int i = 0; i < NPL; i++)
            if (lane + 32 * i == bi) v[i] = -INFINITY;
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
