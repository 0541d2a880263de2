// Device helpers shared by the catalog's .cu files: dtype load/store, warp and
// block reductions, launch checking, Philox. Each is the twin of a CPU helper
// in common.h, so both backends round the same way.
#pragma once
#include "kernels/catalog/cuda_ops.h"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" zm_status zm_cuda_check_launch(const char *what);

__device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(__nv_bfloat16 *p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
template <typename T> __device__ __forceinline__ float rnd(float v) { T t[1]; st(t, 0, v); return ld(t, 0); }

// Run BODY with T bound to the element type of zm_dtype `dt`.
#define ZM_DISPATCH_FLOAT(dt, ...)                                                                 \
    do {                                                                                           \
        if ((dt) == ZM_F16) { typedef __half T; __VA_ARGS__; }                                     \
        else if ((dt) == ZM_BF16) { typedef __nv_bfloat16 T; __VA_ARGS__; }                        \
        else { typedef float T; __VA_ARGS__; }                                                     \
    } while (0)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_min(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Block-wide reductions (blockDim.x a multiple of 32, <= 1024); every thread
// gets the result. `sh` is 32 floats of shared memory; safe to call again.
__device__ __forceinline__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.f;
    return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(v);
}

static inline unsigned zm_grid(int64_t n, int block) {
    int64_t g = (n + block - 1) / block;
    return (unsigned)(g > 2147483647 ? 2147483647 : (g < 1 ? 1 : g));
}

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }

// Philox4x32-10 (Salmon et al. 2011): the 4 words of counter block `blk`
// (counter {blk lo, blk hi, 0, 0}) under key `seed`. The one copy of the
// rounds on the GPU; the twin of zm__philox in common.h, bit for bit.
__device__ __forceinline__ uint4 philox_block(uint64_t seed, uint64_t blk) {
    uint32_t c0 = (uint32_t)blk, c1 = (uint32_t)(blk >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; r++) {
        uint32_t lo0 = 0xD2511F53u * c0, hi0 = __umulhi(0xD2511F53u, c0);
        uint32_t lo1 = 0xCD9E8D57u * c2, hi1 = __umulhi(0xCD9E8D57u, c2);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c1 = lo1; c3 = lo0; c0 = n0; c2 = n2;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    return make_uint4(c0, c1, c2, c3);
}
// A word's top 24 bits as a uniform in [0, 1), exact in float.
__device__ __forceinline__ float philox_word_u01(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

// Uniform number i of the stream; same as zm__philox_u01 in common.h.
__device__ __forceinline__ float philox_u01(uint64_t seed, uint64_t i) {
    uint4 c = philox_block(seed, i >> 2);
    uint32_t even = i & 2 ? c.z : c.x, odd = i & 2 ? c.w : c.y; // selects, not branches: i & 3 differs across a warp
    return philox_word_u01(i & 1 ? odd : even);
}
// Uniforms 4q..4q+3 from one block: a quarter of the work of 4 philox_u01.
__device__ __forceinline__ void philox_u01x4(uint64_t seed, uint64_t q, float u[4]) {
    uint4 c = philox_block(seed, q);
    u[0] = philox_word_u01(c.x); u[1] = philox_word_u01(c.y);
    u[2] = philox_word_u01(c.z); u[3] = philox_word_u01(c.w);
}
