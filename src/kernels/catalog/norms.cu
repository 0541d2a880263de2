// Norms on CUDA: one block per row. The (residual-added, dropped-out) row is
// kept in shared memory when it fits (C <= 12288), so x and the residual are
// read once and out/sum written once; longer rows are recomputed from L2.
// Gradients: one block per row for dx (mean/rstd saved), then one thread per
// column summing down the rows for dw/db (coalesced, deterministic).
// Checked by tests/test_catalog_norms.c.
#include "kernels/catalog/cu_common.cuh"

#define NORM_SMEM_MAX 12288

// ---- kernels ----------------------------------------------------------------
template <typename T>
__device__ __forceinline__ float norm_in(const T *x, const T *res, int64_t o, float p, float keep, uint64_t seed) {
    float v = ld(x, o);
    if (p > 0) v = philox_u01(seed, (uint64_t)o) >= p ? v * keep : 0.f;
    if (res) v = rnd<T>(v + ld(res, o));
    return v;
}

template <typename T>
__global__ void k_norm(int kind, T *out, T *sum, const T *x, const T *res, const float *w, const float *b,
                       int64_t C, float eps, float p, uint64_t seed, int cache) {
    extern __shared__ float row[];
    __shared__ float sh[32];
    int64_t o = (int64_t)blockIdx.x * C;
    float keep = 1.f / (1.f - p), s = 0;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        float v = norm_in(x, res, o + i, p, keep, seed);
        if (cache) row[i] = v;
        if (sum) st(sum, o + i, v);
        s += v;
    }
    float mean = kind ? block_sum(s, sh) / (float)C : 0.f, q = 0;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        float d = (cache ? row[i] : norm_in(x, res, o + i, p, keep, seed)) - mean;
        q += d * d;
    }
    float rstd = rsqrtf(block_sum(q, sh) / (float)C + eps);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        float y = ((cache ? row[i] : norm_in(x, res, o + i, p, keep, seed)) - mean) * rstd;
        if (w) y *= w[i];
        if (b) y += b[i];
        st(out, o + i, y);
    }
}

// f32 rows of 4k floats up to 8192: the row lives in registers (VPT float4 per
// thread, 256 threads), one read of x/residual, one write of out/sum.
template <int VPT>
__global__ void __launch_bounds__(256) k_norm_f32v(int kind, float *out, float *sum, const float *x, const float *res,
                                                   const float *w, const float *b, int64_t C, float eps, float p, uint64_t seed) {
    __shared__ float sh[32];
    int64_t o = (int64_t)blockIdx.x * C, C4 = C / 4;
    float keep = 1.f / (1.f - p), s = 0;
    float4 v[VPT];
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int64_t i = threadIdx.x + (int64_t)j * 256;
        if (i >= C4) { v[j] = make_float4(0.f, 0.f, 0.f, 0.f); continue; }
        float4 a = ((const float4 *)(x + o))[i];
        if (p > 0) { // C % 4 == 0, so elements o + 4i .. +3 are exactly Philox block (o + 4i) / 4
            float u[4];
            philox_u01x4(seed, (uint64_t)(o + 4 * i) >> 2, u);
            a.x = u[0] >= p ? a.x * keep : 0.f;
            a.y = u[1] >= p ? a.y * keep : 0.f;
            a.z = u[2] >= p ? a.z * keep : 0.f;
            a.w = u[3] >= p ? a.w * keep : 0.f;
        }
        if (res) { float4 r = ((const float4 *)(res + o))[i]; a.x += r.x; a.y += r.y; a.z += r.z; a.w += r.w; }
        if (sum) ((float4 *)(sum + o))[i] = a;
        v[j] = a;
        s += (a.x + a.y) + (a.z + a.w);
    }
    float mean = kind ? block_sum(s, sh) / (float)C : 0.f, q = 0;
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int64_t i = threadIdx.x + (int64_t)j * 256;
        if (i < C4) { float4 a = v[j]; q += (a.x - mean) * (a.x - mean) + (a.y - mean) * (a.y - mean) + (a.z - mean) * (a.z - mean) + (a.w - mean) * (a.w - mean); }
    }
    float rstd = rsqrtf(block_sum(q, sh) / (float)C + eps);
#pragma unroll
    for (int j = 0; j < VPT; j++) {
        int64_t i = threadIdx.x + (int64_t)j * 256;
        if (i >= C4) continue;
        float4 a = v[j], y;
        y.x = (a.x - mean) * rstd; y.y = (a.y - mean) * rstd; y.z = (a.z - mean) * rstd; y.w = (a.w - mean) * rstd;
        if (w) { float4 ww = ((const float4 *)w)[i]; y.x *= ww.x; y.y *= ww.y; y.z *= ww.z; y.w *= ww.w; }
        if (b) { float4 bb = ((const float4 *)b)[i]; y.x += bb.x; y.y += bb.y; y.z += bb.z; y.w += bb.w; }
        ((float4 *)(out + o))[i] = y;
    }
}

__global__ void k_norm_grad_dx(int kind, float *dx, const float *x, const float *w, const float *g, int64_t C,
                               float eps, float *stats) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x, o = r * C;
    float s = 0, q = 0, a = 0, bs = 0;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += x[o + i];
    float mean = kind ? block_sum(s, sh) / (float)C : 0.f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) { float d = x[o + i] - mean; q += d * d; }
    float rstd = rsqrtf(block_sum(q, sh) / (float)C + eps);
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        float gw = g[o + i] * (w ? w[i] : 1.f), xh = (x[o + i] - mean) * rstd;
        a += gw * xh; bs += gw;
    }
    a = block_sum(a, sh) / (float)C;
    bs = block_sum(bs, sh) / (float)C;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        float gw = g[o + i] * (w ? w[i] : 1.f), xh = (x[o + i] - mean) * rstd;
        dx[o + i] = rstd * (gw - (kind ? bs : 0.f) - xh * a);
    }
    if (threadIdx.x == 0) { stats[2 * r] = mean; stats[2 * r + 1] = rstd; }
}

__global__ void k_norm_grad_dw(float *dw, float *db, const float *x, const float *g, int64_t R, int64_t C,
                               const float *stats) {
    int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    // row chunk blockIdx.y of gridDim.y; partials land in dw/db rows [chunk, C]
    int64_t per = (R + gridDim.y - 1) / gridDim.y, r0 = blockIdx.y * per, r1 = min(R, r0 + per);
    float aw = 0, ab = 0;
    dw += (int64_t)blockIdx.y * C;
    db += (int64_t)blockIdx.y * C;
    for (int64_t r = r0; r < r1; r++) {
        float gv = g[r * C + j];
        aw += gv * (x[r * C + j] - stats[2 * r]) * stats[2 * r + 1];
        ab += gv;
    }
    dw[j] = aw;
    db[j] = ab;
}
__global__ void k_norm_grad_dw_sum(float *dw, float *db, const float *part, int64_t C, int chunks) {
    int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    float aw = 0, ab = 0;
    for (int c = 0; c < chunks; c++) { aw += part[(int64_t)c * C + j]; ab += part[(int64_t)(chunks + c) * C + j]; }
    if (dw) dw[j] = aw;
    if (db) db[j] = ab;
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_norm(int kind, void *out, void *sum, const void *x, const void *res, const float *w,
                                  const float *b, int dt, int64_t rows, int64_t cols, float eps, float p, uint64_t seed) {
    if (rows == 0) return ZM_OK;
    if (dt == ZM_F32 && cols % 4 == 0 && cols <= 8192) {
        float *o = (float *)out, *sm = (float *)sum;
        const float *xx = (const float *)x, *rr = (const float *)res;
        if (cols <= 2048) k_norm_f32v<2><<<(unsigned)rows, 256>>>(kind, o, sm, xx, rr, w, b, cols, eps, p, seed);
        else if (cols <= 4096) k_norm_f32v<4><<<(unsigned)rows, 256>>>(kind, o, sm, xx, rr, w, b, cols, eps, p, seed);
        else k_norm_f32v<8><<<(unsigned)rows, 256>>>(kind, o, sm, xx, rr, w, b, cols, eps, p, seed);
        return zm_cuda_check_launch("k_norm_f32v");
    }
    int cache = cols <= NORM_SMEM_MAX;
    int block = cols >= 4096 ? 1024 : cols >= 1024 ? 512 : cols >= 256 ? 128 : 64;
    size_t smem = cache ? sizeof(float) * (size_t)cols : 0;
    ZM_DISPATCH_FLOAT(dt, k_norm<T><<<(unsigned)rows, block, smem>>>(kind, (T *)out, (T *)sum, (const T *)x,
                                                                      (const T *)res, w, b, cols, eps, p, seed, cache));
    return zm_cuda_check_launch("k_norm");
}

extern "C" zm_status zm_cuda_norm_grad(int kind, float *dx, float *dw, float *db, const float *x, const float *w,
                                       const float *g, int64_t rows, int64_t cols, float eps, float *stats) {
    if (rows == 0) {
        if (dw) cudaMemset(dw, 0, sizeof(float) * cols);
        if (db) cudaMemset(db, 0, sizeof(float) * cols);
        return zm_cuda_check_launch("norm_grad memset");
    }
    k_norm_grad_dx<<<(unsigned)rows, cols >= 1024 ? 512 : 128>>>(kind, dx, x, w, g, cols, eps, stats);
    zm_status s = zm_cuda_check_launch("k_norm_grad_dx");
    if (s || (!dw && !db)) return s;
    // stats holds 2 * rows floats, then 2 * chunks * cols of partial sums (norms.c sizes it)
    int chunks = (int)(rows < 64 ? rows : 64);
    float *part = stats + 2 * rows;
    k_norm_grad_dw<<<dim3(zm_grid(cols, 128), (unsigned)chunks), 128>>>(part, part + (int64_t)chunks * cols, x, g, rows, cols, stats);
    k_norm_grad_dw_sum<<<zm_grid(cols, 128), 128>>>(dw, db, part, cols, chunks);
    return zm_cuda_check_launch("k_norm_grad_dw");
}
