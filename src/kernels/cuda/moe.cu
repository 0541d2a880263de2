/* MoE routing on the GPU: softmax over expert logits, top-k, renormalisation,
 * and the fused topk_gating_softmax (all three in one warp), plus
 * moe_combine (weighted sum of expert outputs + residual). The stock kernels
 * (softmax, topk, normalize_sum) and the fused one share the warp routines
 * below, so their probabilities and weights agree bit for bit.
 * Checked against float64 references in tests/test_cuda_ops.c. */
#include "kernels/cuda/gating.cuh"

// ---------------------------------------------------------------------------
// Kernels
template <int NPL>
__global__ void k_topk_gating_softmax(const float *logits, int n, int k, int renorm, int32_t *ids,
                                      float *w) {
    ZM_PDL_ENTRY();
    gate_row<NPL, false>(logits + (int64_t)blockIdx.x * n, n, k, renorm, ids + (int64_t)blockIdx.x * k,
                         w + (int64_t)blockIdx.x * k);
}

/* Row softmax: warp per row when n <= 1024 (same routine as the fused
 * gating), else a block per row. */
template <int NPL>
__global__ void k_softmax_warp(const float *x, int64_t rows, int n, float *y) {
    ZM_PDL_ENTRY();
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (r >= rows) return;
    float v[NPL];
    warp_softmax<NPL>(x + r * n, n, v);
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < NPL; i++)
        if (lane + 32 * i < n) y[r * n + lane + 32 * i] = v[i];
}
__global__ void k_softmax_block(const float *x, int64_t n, float *y) {
    ZM_PDL_ENTRY();
    __shared__ float red[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) m = fmaxf(m, xr[i]);
    m = warp_max(m);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int i = 0; i < ZM_BLOCK / 32; i++) m = fmaxf(m, red[i]);
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) s += expf(xr[i] - m);
    s = block_sum(s, red);
    for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) yr[i] = __fdiv_rn(expf(xr[i] - m), s);
}

template <int NPL>
__global__ void k_topk(const float *x, int64_t rows, int n, int k, float *val, int32_t *idx) {
    ZM_PDL_ENTRY();
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    float v[NPL];
    int32_t ids[32];
    float vals[32];
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        int c = lane + 32 * i;
        v[i] = c < n ? x[r * n + c] : -INFINITY;
    }
    warp_topk<NPL>(v, k, ids, vals);
    if (lane == 0)
        for (int j = 0; j < k; j++) { val[r * k + j] = vals[j]; idx[r * k + j] = ids[j]; }
}

__global__ void k_normalize_sum(const float *x, int64_t rows, int n, float *y) {
    ZM_PDL_ENTRY();
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r < rows) renorm_seq(x + r * n, n, y + r * n);
}

__global__ void k_moe_combine(const float *e, const float *w, int k, int64_t n, const float *res,
                              float *y) {
    ZM_PDL_ENTRY();
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (c >= n) return;
    e += t * k * n;
    w += t * k;
    y += t * n;
    if (res) res += t * n;
    float acc = 0.f;
    for (int j = 0; j < k; j++) acc = __fadd_rn(acc, __fmul_rn(w[j], e[(int64_t)j * n + c]));
    y[c] = res ? __fadd_rn(res[c], acc) : acc;
}

// ---------------------------------------------------------------------------
// Entry points

extern "C" zm_status zm_gpu_topk_gating_softmax(const float *logits, int64_t rows, int n, int k,
                                                 int renorm, int32_t *ids, float *w, void *stream) {
    if (rows < 1 || rows > 65535) return zm__err(ZM_ERR_RANGE, "topk_gating_softmax: %lld rows", (long long)rows);
    if (n < 1 || n > 32 * ZM_WMAX) return zm__err(ZM_ERR_RANGE, "topk_gating_softmax: %d experts (1..1024)", n);
    if (k < 1 || k > 32 || k > n) return zm__err(ZM_ERR_RANGE, "topk_gating_softmax: k = %d of %d", k, n);
    ZM_NPL(n, zm__launch(k_topk_gating_softmax<NPL>, (unsigned)rows, 32, 0, (cudaStream_t)stream, logits, n, k, renorm, ids, w));
    return zm__cuda_ck("k_topk_gating_softmax");
}

extern "C" zm_status zm_gpu_softmax(const float *x, int64_t rows, int64_t n, float *y, void *stream) {
    if (rows < 1 || n < 1) return zm__err(ZM_ERR_SHAPE, "softmax: empty");
    cudaStream_t st = (cudaStream_t)stream;
    if (n <= 32 * ZM_WMAX) { ZM_NPL(n, zm__launch(k_softmax_warp<NPL>, (unsigned)((rows + 7) / 8), 256, 0, st, x, rows, (int)n, y)); }
    else zm__launch(k_softmax_block, (unsigned)rows, ZM_BLOCK, 0, st, x, n, y);
    return zm__cuda_ck("k_softmax");
}

extern "C" zm_status zm_gpu_topk_rows(const float *x, int64_t rows, int64_t n, int k, float *val,
                                  int32_t *idx, void *stream) {
    if (rows < 1 || n < 1 || n > 32 * ZM_WMAX) return zm__err(ZM_ERR_RANGE, "topk: rows of %lld (1..1024)", (long long)n);
    if (k < 1 || k > 32 || k > n) return zm__err(ZM_ERR_RANGE, "topk: k = %d of %lld", k, (long long)n);
    ZM_NPL(n, zm__launch(k_topk<NPL>, (unsigned)((rows + 7) / 8), 256, 0, (cudaStream_t)stream, x, rows, (int)n, k, val, idx));
    return zm__cuda_ck("k_topk");
}

extern "C" zm_status zm_gpu_normalize_sum(const float *x, int64_t rows, int64_t n, float *y, void *stream) {
    if (rows < 1 || n < 1) return zm__err(ZM_ERR_SHAPE, "normalize_sum: empty");
    zm__launch(k_normalize_sum, (unsigned)((rows + 127) / 128), 128, 0, (cudaStream_t)stream, x, rows, (int)n, y);
    return zm__cuda_ck("k_normalize_sum");
}

extern "C" zm_status zm_gpu_moe_combine(const float *e, const float *w, int64_t n_tok, int k,
                                         int64_t n, const float *res, float *y, void *stream) {
    if (k < 1 || n < 1 || n_tok < 1 || n_tok > 65535) return zm__err(ZM_ERR_SHAPE, "moe_combine: empty");
    zm__launch(k_moe_combine, dim3((unsigned)((n + 255) / 256), (unsigned)n_tok), 256, 0, (cudaStream_t)stream, e, w, k, n, res, y);
    return zm__cuda_ck("k_moe_combine");
}

__global__ void k_swiglu(const float *g, const float *u, int64_t n, float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __fmul_rn(silu_f(g[i]), u[i]);
}
extern "C" zm_status zm_gpu_swiglu(const float *g, const float *u, int64_t n, float *y, void *stream) {
    if (n < 1) return zm__err(ZM_ERR_SHAPE, "swiglu: empty");
    zm__launch(k_swiglu, (unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream, g, u, n, y);
    return zm__cuda_ck("k_swiglu");
}

__global__ void k_take(const float *x, int64_t rows, int64_t n, const int32_t *ids, int k, float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * k) return;
    const int64_t r = i / k;
    y[i] = x[r * n + ids[i]];
}
extern "C" zm_status zm_gpu_take(const float *x, int64_t rows, int64_t n, const int32_t *ids, int k,
                                  float *y, void *stream) {
    if (rows < 1 || n < 1 || k < 1) return zm__err(ZM_ERR_SHAPE, "take: empty");
    zm__launch(k_take, (unsigned)((rows * k + 255) / 256), 256, 0, (cudaStream_t)stream, x, rows, n, ids, k, y);
    return zm__cuda_ck("k_take");
}
