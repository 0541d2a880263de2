// AdamW on CUDA: one thread per parameter, grid-stride. Checked by
// tests/test_catalog_optimizer.c.
#include "kernels/catalog/cu_common.cuh"

__global__ void k_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1, float b2, float eps,
                        float wd, float c1, float c2) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float gi = g[i], mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi; v[i] = vi;
        p[i] = p[i] * (1 - lr * wd) - lr * (mi / c1) / (sqrtf(vi / c2) + eps);
    }
}

extern "C" zm_status zm_cuda_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1, float b2, float eps,
                                   float wd, float c1, float c2) {
    if (!n) return ZM_OK;
    unsigned gr = zm_grid(n, 256);
    k_adamw<<<gr > 65536 ? 65536 : gr, 256>>>(p, m, v, g, n, lr, b1, b2, eps, wd, c1, c2);
    return zm_cuda_check_launch("k_adamw");
}
