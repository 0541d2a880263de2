// Rotary embeddings on CUDA: one block per (token, head) over q heads then k
// heads, one thread per rotated pair; angles in double as on the CPU side
// (rope.c), so positions in the tens of thousands stay exact to float.
// The KV-cache variant writes rotated k and copied v at row pos[t].
// Checked by tests/test_catalog_rope.c.
#include "kernels/catalog/cu_common.cuh"

__device__ __forceinline__ void rope_cs(const zm__rope_p &p, int64_t pos, int i, float *c, float *s) {
    double fr = pow(p.base, -2.0 * i / p.rot), ext = (double)pos * fr, th = ext * p.freq_scale;
    if (p.yarn) {
        double y = (i - p.corr0) / fmax(0.001, p.corr1 - p.corr0), ramp = 1 - fmin(1.0, fmax(0.0, y));
        th = th * (1 - ramp) + ext * ramp;
    }
    double sn, cs;
    sincos(th, &sn, &cs);
    *c = (float)(cs * p.mscale);
    *s = (float)(sn * p.mscale);
}

// ---- kernels ----------------------------------------------------------------
// One block per token: each thread owns rotated pairs i, computes their angle
// once (double) and applies it to every q head and k head of the token.
__global__ void k_rope(float *qo, const float *q, const int32_t *pos, int64_t Hq, int64_t D, zm__rope_p p, float *ko,
                       const float *k, int64_t Hk, float *vc, const float *v, int64_t S) {
    int64_t t = blockIdx.x, ps = pos[t], row = S ? ps : t;
    bool kw = k && !(S && (row < 0 || row >= S));
    if (S && k) { // tokens sharing a position: the last one writes the cache row (as the CPU loop does)
        int later = 0;
        for (int64_t j = t + 1 + threadIdx.x; j < gridDim.x; j += blockDim.x) later |= pos[j] == ps;
        if (__syncthreads_or(later)) kw = false;
    }
    int half = p.rot / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float c, s;
        rope_cs(p, ps, i, &c, &s);
        int a = p.interleaved ? 2 * i : i, b = p.interleaved ? 2 * i + 1 : i + half;
        for (int64_t h = 0; h < Hq; h++) {
            const float *x = q + (t * Hq + h) * D;
            float *o = qo + (t * Hq + h) * D, x0 = x[a], x1 = x[b];
            o[a] = x0 * c - x1 * s;
            o[b] = x0 * s + x1 * c;
        }
        if (kw)
            for (int64_t h = 0; h < Hk; h++) {
                const float *x = k + (t * Hk + h) * D;
                float *o = ko + (row * Hk + h) * D, x0 = x[a], x1 = x[b];
                o[a] = x0 * c - x1 * s;
                o[b] = x0 * s + x1 * c;
            }
    }
    // pass-through dims and the v copy
    for (int64_t h = 0; h < Hq; h++)
        for (int64_t i = p.rot + threadIdx.x; i < D; i += blockDim.x) qo[(t * Hq + h) * D + i] = q[(t * Hq + h) * D + i];
    if (kw)
        for (int64_t h = 0; h < Hk; h++) {
            for (int64_t i = p.rot + threadIdx.x; i < D; i += blockDim.x) ko[(row * Hk + h) * D + i] = k[(t * Hk + h) * D + i];
            if (vc) for (int64_t i = threadIdx.x; i < D; i += blockDim.x) vc[(row * Hk + h) * D + i] = v[(t * Hk + h) * D + i];
        }
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_rope(float *qo, const float *q, const int32_t *pos, int64_t T, int64_t Hq, int64_t D, zm__rope_p p,
                                  float *ko, const float *k, int64_t Hk, float *vc, const float *v, int64_t S) {
    if (!T) return ZM_OK;
    for (int64_t t0 = 0; t0 < T; t0 += 2147483647) {
        int64_t n = T - t0 < 2147483647 ? T - t0 : 2147483647;
        int threads = p.rot / 2 >= 64 ? 64 : 32;
        // with a cache, k rows are addressed by position, so only q/k/v/pos shift
        k_rope<<<(unsigned)n, threads>>>(qo + t0 * Hq * D, q + t0 * Hq * D, pos + t0, Hq, D, p,
                                                           ko ? ko + (S ? 0 : t0 * Hk * D) : NULL, k ? k + t0 * Hk * D : NULL, Hk,
                                                           vc, v ? v + t0 * Hk * D : NULL, S);
        zm_status s = zm_cuda_check_launch("k_rope");
        if (s) return s;
    }
    return ZM_OK;
}
