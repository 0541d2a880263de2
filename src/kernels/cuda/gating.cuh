/* MoE gating routines shared by the stock kernels (softmax, topk,
 * normalize_sum), the fused topk_gating_softmax and the router matvec with
 * the gating in its last block: one code path, so their probabilities,
 * expert ids and weights agree bit for bit. */
#pragma once
#include "kernels/cuda/common.cuh"

// ---------------------------------------------------------------------------
// Warp routines: lane l holds elements l, l+32, ... (up to 32 each, n <= 1024).
#define ZM_WMAX 32
#define ZM_ROUTE_MAX 1024 /* experts a folded router may rank */
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

// ---------------------------------------------------------------------------
// Routing from folded router logits (the router folded into o_proj,
// zm_gpu_matvec_route): r = (W_r diag(g)) h arrives unscaled; the stock
// logits are l = r * rsqrt(mean(h^2) + eps). A positive scale keeps the
// order, so the expert ids come from ranking r, and only the weights need
// the scale. gate/up and the combine both rank the same r with the same
// code, so they pick the same experts.

/* NaN ranks as -inf, so the ranks stay a permutation (ids in range). */
__device__ __forceinline__ float route_val(float v) { return isnan(v) ? -INFINITY : v; }

/* Block-wide: sid[rank] = e for the k best of ls[0..n) (ties: lower index
 * first, as warp_topk). ls in shared memory, written before a
 * __syncthreads; the caller syncs before reading sid. */
__device__ __forceinline__ void route_rank(const float *ls, int n, int k, int32_t *sid) {
    for (int t = threadIdx.x; t < n; t += ZM_BLOCK) {
        const float v = ls[t];
        int rank = 0, u = 0;
        if ((n & 3) == 0 && ((uintptr_t)ls & 15) == 0) { /* four a shared-memory load */
            const float4 *l4 = reinterpret_cast<const float4 *>(ls);
#pragma unroll 4
            for (; u < n; u += 4) {
                const float4 w = l4[u >> 2];
                rank += (w.x > v) | ((w.x == v) & (u < t));
                rank += (w.y > v) | ((w.y == v) & (u + 1 < t));
                rank += (w.z > v) | ((w.z == v) & (u + 2 < t));
                rank += (w.w > v) | ((w.w == v) & (u + 3 < t));
            }
        }
        for (; u < n; u++) {
            const float w = ls[u];
            rank += (w > v) | ((w == v) & (u < t));
        }
        if (rank < k) sid[rank] = t;
    }
}

/* One warp: the weights of the chosen sid[0..k) from l = ls * scale, as
 * the stock gating defines them: softmax over all n, the chosen ones,
 * renormalised in slot order when renorm (then the sum over all n cancels:
 * exp(l_j - l_0) over the chosen ones only). Lane 0 writes sw. */
__device__ __forceinline__ void route_weights(const float *ls, int n, int k, int renorm, float scale, const int32_t *sid,
                                              float *sw) {
    const int lane = threadIdx.x & 31;
    if (renorm) {
        const float top = __fmul_rn(ls[sid[0]], scale);
        if (lane < k) sw[lane] = expf(__fmul_rn(ls[sid[lane]], scale) - top);
        __syncwarp();
        if (lane == 0) renorm_seq(sw, k, sw);
        return;
    }
    float m = -INFINITY;
    for (int c = lane; c < n; c += 32) m = fmaxf(m, __fmul_rn(ls[c], scale));
    m = warp_max(m);
    float s = 0.f;
    for (int c = lane; c < n; c += 32) s = __fadd_rn(s, expf(__fmul_rn(ls[c], scale) - m));
    s = warp_sum(s);
    if (lane == 0)
        for (int j = 0; j < k; j++) sw[j] = __fdiv_rn(expf(__fmul_rn(ls[sid[j]], scale) - m), s);
}

/* Block-wide: the k expert ids of one token from its folded logits rl (n,
 * read through L2: callable before the dependency wait when rl comes from
 * a launch two back) into sid. ls: n floats of shared memory. Ends synced. */
__device__ __forceinline__ void route_ids(const float *rl, int n, int k, float *ls, int32_t *sid) {
    for (int c = threadIdx.x; c < n; c += ZM_BLOCK) ls[c] = route_val(__ldcg(rl + c));
    __syncthreads();
    route_rank(ls, n, k, sid);
    __syncthreads();
}
