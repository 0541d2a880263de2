// Softmax cross-entropy on CUDA: one block per row, block max, block sum of
// exp, then the loss (thread 0) or the gradient row. Checked by
// tests/test_catalog_loss.c.
#include "kernels/catalog/cu_common.cuh"

// ---- kernels ----------------------------------------------------------------
__global__ void k_softmax_xent(float *loss, float *dl, const float *logits, const int32_t *tgt,
                               const float *dloss, int64_t V, int ign) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *x = logits + r * V;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) m = fmaxf(m, x[i]);
    m = block_max(m, sh);
    float s = 0;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) s += expf(x[i] - m);
    s = block_sum(s, sh);
    float lse = m + logf(s);
    int t = tgt[r], ig = t == ign;
    if (loss && threadIdx.x == 0) loss[r] = ig ? 0.f : (t >= 0 && t < V) ? lse - x[t] : NAN;
    if (dl) {
        float gs = ig ? 0.f : dloss ? dloss[r] : 1.f;
        float *d = dl + r * V;
        for (int64_t i = threadIdx.x; i < V; i += blockDim.x) d[i] = gs * (expf(x[i] - lse) - (i == t ? 1.f : 0.f));
    }
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_softmax_xent(float *loss, float *dl, const float *logits, const int32_t *tgt,
                                          const float *dloss, int64_t rows, int64_t V, int ign) {
    if (rows == 0) return ZM_OK;
    k_softmax_xent<<<(unsigned)rows, V >= 2048 ? 512 : 128>>>(loss, dl, logits, tgt, dloss, V, ign);
    return zm_cuda_check_launch("k_softmax_xent");
}
