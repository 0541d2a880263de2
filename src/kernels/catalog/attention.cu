// Decode attention on CUDA: one block of 8 warps per (sequence, query head).
// Each warp walks every 8th position with an online softmax (running max,
// sum, and a D-vector accumulator spread over its lanes, <= 8 values each),
// the warps merge in shared memory, and the sink logit joins the
// denominator. Lengths are clamped to the capacity and page ids outside
// [0, n_pages) skip their positions on the
// device (the C side rejects both on the CPU path). Checked by
// tests/test_catalog_attention.c.
#include "kernels/catalog/cu_common.cuh"

#define ATT_WARPS 8

// ---- kernels ----------------------------------------------------------------
__global__ void k_decode_attention(float *out, const float *q, const float *k, const float *v, const int32_t *lens,
                                   const int32_t *bt, int64_t mp, int64_t page, int64_t P, int64_t Hq, int64_t Hkv, int64_t D,
                                   int64_t S, float scale, int window, const float *sinks) {
    __shared__ float sm[ATT_WARPS], sl[ATT_WARPS], sacc[ATT_WARPS][256];
    int64_t r = blockIdx.x, b = r / Hq, hq = r % Hq, h = hq / (Hq / Hkv);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int64_t L = lens[b];
    if (L > S) L = S;
    int64_t st = window > 0 && L > window ? L - window : 0;
    float qr[8], acc[8];
    for (int j = 0; j < 8; j++) { int64_t d = lane + 32 * j; qr[j] = d < D ? q[r * D + d] : 0.f; acc[j] = 0.f; }
    float m = -INFINITY, l = 0.f;
    for (int64_t i = st + w; i < L; i += ATT_WARPS) {
        int64_t row;
        if (bt) {
            int64_t pg = bt[b * mp + i / page];
            if (pg < 0 || pg >= P) continue; // a hostile table must not make the kernel read outside the pages
            row = pg * page + i % page;
        } else row = b * S + i;
        const float *kr = k + (row * Hkv + h) * D, *vr = v + (row * Hkv + h) * D;
        float s = 0;
        for (int j = 0; j < 8; j++) { int64_t d = lane + 32 * j; if (d < D) s += qr[j] * kr[d]; }
        s = warp_sum(s) * scale;
        float mn = fmaxf(m, s), c = expf(m - mn), p = expf(s - mn);
        l = l * c + p;
        for (int j = 0; j < 8; j++) { int64_t d = lane + 32 * j; acc[j] = acc[j] * c + (d < D ? p * vr[d] : 0.f); }
        m = mn;
    }
    if (lane == 0) { sm[w] = m; sl[w] = l; }
    for (int j = 0; j < 8; j++) { int64_t d = lane + 32 * j; if (d < D) sacc[w][d] = acc[j]; }
    __syncthreads();
    float M = sinks ? sinks[hq] : -INFINITY;
    for (int i = 0; i < ATT_WARPS; i++) M = fmaxf(M, sm[i]);
    float den = sinks ? expf(sinks[hq] - M) : 0.f;
    for (int i = 0; i < ATT_WARPS; i++) den += sm[i] == -INFINITY ? 0.f : sl[i] * expf(sm[i] - M);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0;
        for (int i = 0; i < ATT_WARPS; i++) if (sm[i] != -INFINITY) o += sacc[i][d] * expf(sm[i] - M);
        out[r * D + d] = den > 0.f ? o / den : 0.f; // nothing attended (length 0 after the clamp): zeros, not NaN
    }
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_decode_attention(float *out, const float *q, const float *k, const float *v, const int32_t *lens,
                                              const int32_t *bt, int64_t mp, int64_t page, int64_t P, int64_t B, int64_t Hq, int64_t Hkv,
                                              int64_t D, int64_t S, float scale, int window, const float *sinks) {
    if (!B) return ZM_OK;
    k_decode_attention<<<(unsigned)(B * Hq), 32 * ATT_WARPS>>>(out, q, k, v, lens, bt, mp, page, P, Hq, Hkv, D, S, scale, window, sinks);
    return zm_cuda_check_launch("k_decode_attention");
}
