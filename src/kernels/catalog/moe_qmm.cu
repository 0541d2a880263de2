// Fused MoE expert matmuls on CUDA: one warp per output row. Each lane walks
// the row's 32-weight blocks (lane, lane + 32, ...), dequantizes a block and
// dots it with the matching 32 activations (from L1/L2), then the warp sums.
// swiglu: gate and up rows share the activation reads. combine: each warp
// owns one output element of one token and loops over the k experts, so the
// weighted sum and residual need no atomics. Checked by
// tests/test_catalog_moe.c.
#include "kernels/catalog/cu_quant.cuh"

#define QMM_WARPS 8

__device__ __forceinline__ float row_dot(int dt, const uint8_t *w, int64_t row, int64_t cols, const float *x, int lane) {
    float s = 0;
    if (dt == ZM_F32) {
        const float *r = (const float *)w + row * cols;
        for (int64_t i = lane; i < cols; i += 32) s += r[i] * x[i];
    } else {
        int64_t nb = cols / 32, bb = dt == ZM_Q8_0 ? 34 : 18;
        const uint8_t *base = w + row * nb * bb;
        for (int64_t b = lane; b < nb; b += 32) {
            const uint8_t *p = base + b * bb;
            float d = h2f_bits(p), acc = 0;
            const float *xb = x + b * 32;
            if (dt == ZM_Q8_0) {
#pragma unroll 8
                for (int j = 0; j < 32; j++) acc += (float)(int8_t)p[2 + j] * xb[j];
            } else {
#pragma unroll 8
                for (int j = 0; j < 16; j++) acc += (float)((p[2 + j] & 15) - 8) * xb[j] + (float)((p[2 + j] >> 4) - 8) * xb[j + 16];
            }
            s += d * acc;
        }
    }
    return warp_sum(s);
}

// ---- kernels ----------------------------------------------------------------
__global__ void k_gather_qmm_swiglu(float *h, const float *x, const uint8_t *wg, const uint8_t *wu, int dt,
                                    const int32_t *ids, int k, int64_t F, int64_t D, int E) {
    int64_t s = blockIdx.y; // (token, slot)
    int lane = threadIdx.x & 31;
    int64_t f = (int64_t)blockIdx.x * QMM_WARPS + (threadIdx.x >> 5);
    if (f >= F) return;
    int e = ids[s];
    if (e < 0 || e >= E) { if (lane == 0) h[s * F + f] = 0.f; return; }
    const float *xr = x + (s / k) * D;
    int64_t row = (int64_t)e * F + f;
    float g = row_dot(dt, wg, row, D, xr, lane), u = row_dot(dt, wu, row, D, xr, lane);
    if (lane == 0) h[s * F + f] = silu_f(g) * u;
}

__global__ void k_gather_qmm_combine(float *out, const float *h, const uint8_t *wd, int dt, const int32_t *ids,
                                     const float *w, const float *res, int k, int64_t D, int64_t F, int E) {
    int64_t t = blockIdx.y;
    int lane = threadIdx.x & 31;
    int64_t dd = (int64_t)blockIdx.x * QMM_WARPS + (threadIdx.x >> 5);
    if (dd >= D) return;
    float acc = res ? res[t * D + dd] : 0.f;
    for (int j = 0; j < k; j++) {
        int e = ids[t * k + j];
        if (e < 0 || e >= E) continue;
        acc += w[t * k + j] * row_dot(dt, wd, (int64_t)e * D + dd, F, h + (t * k + j) * F, lane);
    }
    if (lane == 0) out[t * D + dd] = acc;
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_gather_qmm_swiglu(float *h, const float *x, const void *wg, const void *wu, int dt,
                                               const int32_t *ids, int64_t T, int k, int64_t F, int64_t D, int E) {
    const int64_t chunk = 65535 / k * k; // grid.y limit, whole tokens per launch
    for (int64_t s0 = 0; s0 < T * k; s0 += chunk) {
        int64_t n = T * k - s0 < chunk ? T * k - s0 : chunk;
        dim3 grid((unsigned)((F + QMM_WARPS - 1) / QMM_WARPS), (unsigned)n);
        // shift the (token, slot) origin: ids and h by s0; x is indexed by token = s / k
        k_gather_qmm_swiglu<<<grid, 32 * QMM_WARPS>>>(h + s0 * F, x + (s0 / k) * D, (const uint8_t *)wg, (const uint8_t *)wu,
                                                     dt, ids + s0, k, F, D, E);
        zm_status st = zm_cuda_check_launch("k_gather_qmm_swiglu");
        if (st) return st;
    }
    return ZM_OK;
}

extern "C" zm_status zm_cuda_gather_qmm_combine(float *out, const float *h, const void *wd, int dt, const int32_t *ids,
                                                const float *w, const float *res, int64_t T, int k, int64_t D, int64_t F, int E) {
    for (int64_t t0 = 0; t0 < T; t0 += 65535) {
        int64_t n = T - t0 < 65535 ? T - t0 : 65535;
        dim3 grid((unsigned)((D + QMM_WARPS - 1) / QMM_WARPS), (unsigned)n);
        k_gather_qmm_combine<<<grid, 32 * QMM_WARPS>>>(out + t0 * D, h + t0 * k * F, (const uint8_t *)wd, dt, ids + t0 * k,
                                                      w + t0 * k, res ? res + t0 * D : NULL, k, D, F, E);
        zm_status st = zm_cuda_check_launch("k_gather_qmm_combine");
        if (st) return st;
    }
    return ZM_OK;
}
