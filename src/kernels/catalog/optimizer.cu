// AdamW on CUDA: one thread per element, float4 loads where the four
// arrays allow it (the step is memory bound: 4 reads, 3 writes per element).
// Same arithmetic as optimizer.c. Checked by tests/test_catalog_optimizer.c.
#include "kernels/catalog/cu_common.cuh"

struct adamw_k { float lr, b1, b2, eps, wd, c1, c2; };

// ---- kernels ----------------------------------------------------------------
__device__ __forceinline__ void adamw_one(float &p, float &m, float &v, float g, const adamw_k &k) {
    m = k.b1 * m + (1.f - k.b1) * g;
    v = k.b2 * v + (1.f - k.b2) * g * g;
    p = p * (1.f - k.lr * k.wd) - k.lr * (m / k.c1) / (sqrtf(v / k.c2) + k.eps);
}

__global__ void k_adamw(float *p, float *m, float *v, const float *g, int64_t n, adamw_k k) {
    int64_t n4 = n / 4, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
        float4 P = ((float4 *)p)[i], M = ((float4 *)m)[i], V = ((float4 *)v)[i], G = ((const float4 *)g)[i];
        adamw_one(P.x, M.x, V.x, G.x, k); adamw_one(P.y, M.y, V.y, G.y, k);
        adamw_one(P.z, M.z, V.z, G.z, k); adamw_one(P.w, M.w, V.w, G.w, k);
        ((float4 *)p)[i] = P; ((float4 *)m)[i] = M; ((float4 *)v)[i] = V;
    }
    for (int64_t i = n4 * 4 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        adamw_one(p[i], m[i], v[i], g[i], k);
}

__global__ void k_adamw_scalar(float *p, float *m, float *v, const float *g, int64_t n, adamw_k k) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        adamw_one(p[i], m[i], v[i], g[i], k);
}

// ---- entry point ------------------------------------------------------------
extern "C" zm_status zm_cuda_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1, float b2,
                                   float eps, float wd, float c1, float c2) {
    if (n == 0) return ZM_OK;
    adamw_k k = {lr, b1, b2, eps, wd, c1, c2};
    int aligned = (((uintptr_t)p | (uintptr_t)m | (uintptr_t)v | (uintptr_t)g) & 15) == 0;
    unsigned grid = zm_grid(aligned ? (n + 3) / 4 : n, 256);
    if (grid > 8192) grid = 8192;
    if (aligned) k_adamw<<<grid, 256>>>(p, m, v, g, n, k);
    else k_adamw_scalar<<<grid, 256>>>(p, m, v, g, n, k);
    return zm_cuda_check_launch("k_adamw");
}
