/* Shared device helpers for the CUDA kernels: error checks, warp/block
 * reductions, the swizzled shared-memory layout of activation vectors and the
 * per-dtype 32-element block dot products the matrix-vector kernels use.
 * Numerics are shared on purpose: the stock and the fused paths call the
 * same helpers in the same order so greedy decode stays token-identical. */
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "core/internal.h"
}
#include "kernels/cuda/ops_cuda.h"

#define ZM_BLOCK 256 /* threads per block of every row kernel */

static inline zm_status zm__cuda_ck(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return zm__err(ZM_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
    return ZM_OK;
}

/* A host knob: the integer in environment variable var, else dflt. */
static inline long long zm__env_ll(const char *var, long long dflt) {
    const char *e = getenv(var);
    return e && *e ? atoll(e) : dflt;
}

static inline int zm__sm_count(void) {
    static int n = 0;
    if (!n) {
        int dev = 0, v = 0;
        cudaGetDevice(&dev);
        if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v < 1) v = 132;
        n = v;
    }
    return n;
}

/* Whether the current device is sm_90 or later (clusters, bulk copies,
 * mbarriers); asked once. */
static inline bool zm__sm90(void) {
    static int v = -1;
    if (v < 0) {
        int dev = 0, major = 0;
        cudaGetDevice(&dev);
        v = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
    }
    return v > 0;
}

// ---------------------------------------------------------------------------
// Reductions
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* Sum over aligned groups of `lpr` lanes (lpr a power of two <= 32). */
__device__ __forceinline__ float group_sum(float v, int lpr) {
    for (int o = lpr >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* Block-wide sum for ZM_BLOCK threads; every thread gets the result.
 * `red` is 32 floats of shared memory. Fixed order: per-warp butterflies,
 * then warp 0 sums the 8 warp totals the same way. */
__device__ __forceinline__ float block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = lane < (ZM_BLOCK / 32) ? red[lane] : 0.f;
    t = warp_sum(t);
    return t;
}

/* The RMSNorm scale rsqrt(mean(x^2) + eps) of x[0..n), computed by the whole
 * block (ZM_BLOCK threads, thread i takes elements i, i+256, ...). Every
 * kernel that normalises uses this, so fused and unfused norms agree bit
 * for bit. */
__device__ __forceinline__ float sumsq4(float4 v, float s) {
    s = __fmaf_rn(v.x, v.x, s);
    s = __fmaf_rn(v.y, v.y, s);
    s = __fmaf_rn(v.z, v.z, s);
    return __fmaf_rn(v.w, v.w, s);
}
/* The sum of squares order every norm uses: with n % 4 == 0 (and x 16-byte
 * aligned) thread t takes float4 t, t+256, ... (four fmas each, in order),
 * else element t, t+256, ...; then block_sum. load_x_swz repeats the float4
 * order from registers, so a fused norm equals the standalone one. */
__device__ __forceinline__ float block_rms_scale(const float *x, int64_t n, float eps, float *red) {
    float s = 0.f;
    if (n % 4 == 0 && ((uintptr_t)x & 15) == 0) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        const int64_t n4 = n / 4;
        int64_t i = threadIdx.x;
        for (; i + 3 * ZM_BLOCK < n4; i += 4 * ZM_BLOCK) { /* four loads in flight */
            float4 v[4];
#pragma unroll
            for (int j = 0; j < 4; j++) v[j] = x4[i + j * ZM_BLOCK];
#pragma unroll
            for (int j = 0; j < 4; j++) s = sumsq4(v[j], s);
        }
        for (; i < n4; i += ZM_BLOCK) s = sumsq4(x4[i], s);
    } else {
        for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) s = __fmaf_rn(x[i], x[i], s);
    }
    s = block_sum(s, red);
    return rsqrtf(s / (float)n + eps);
}
__device__ __forceinline__ float norm_apply(float x, float scale, float w) {
    return __fmul_rn(__fmul_rn(x, scale), w);
}

__device__ __forceinline__ float silu_f(float x) { return __fdiv_rn(x, 1.0f + expf(-x)); }

/* NeoX RoPE of pair (i, i + half) of x in place with frequency f =
 * inv_freq[i] (every rope uses this). */
__device__ __forceinline__ void rope_pair_f(float *x, int i, int half, float pos, float f) {
    float s, c;
    sincosf(__fmul_rn(pos, f), &s, &c);
    const float x0 = x[i], x1 = x[i + half];
    x[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    x[i + half] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}
__device__ __forceinline__ void rope_pair(float *x, int i, int half, float pos, const float *inv_freq) {
    rope_pair_f(x, i, half, pos, inv_freq[i]);
}

// ---------------------------------------------------------------------------
// Activation vectors in shared memory, swizzled by 32-element blocks: block b
// occupies float4 slots b*8 .. b*8+7 with slot j stored at b*8 + (j ^ (b&7)).
// Lanes reading the same j of different blocks then hit distinct banks.
__device__ __forceinline__ int swz(int b, int j) { return (b << 3) + (j ^ (b & 7)); }

/* Load n (multiple of 32) floats into swizzled shared memory, optionally
 * RMS-normalised with weights nw (scale computed by block_rms_scale). Four
 * float4 loads in flight per thread. */
__device__ __forceinline__ void norm4(float4 &v, float4 w, float scale) {
    v.x = norm_apply(v.x, scale, w.x);
    v.y = norm_apply(v.y, scale, w.y);
    v.z = norm_apply(v.z, scale, w.z);
    v.w = norm_apply(v.w, scale, w.w);
}
__device__ __forceinline__ void load_x_swz(float4 *xs, const float *x, int n, const float *nw,
                                           float eps, float *red) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x), *w4 = reinterpret_cast<const float4 *>(nw);
    const int n4 = n / 4, t = threadIdx.x;
    if (n4 <= 4 * ZM_BLOCK && ((uintptr_t)x & 15) == 0) {
        /* one pass: x (and the norm weights) loaded once, all in flight; the
         * sum of squares in block_rms_scale's float4 order */
        float4 v[4], w[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int i = t + j * ZM_BLOCK;
            if (i < n4) {
                v[j] = x4[i];
                if (nw) w[j] = w4[i];
            }
        }
        if (nw) {
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (t + j * ZM_BLOCK < n4) s = sumsq4(v[j], s);
            s = block_sum(s, red);
            const float scale = rsqrtf(s / (float)n + eps);
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (t + j * ZM_BLOCK < n4) norm4(v[j], w[j], scale);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int i = t + j * ZM_BLOCK;
            if (i < n4) xs[swz(i >> 3, i & 7)] = v[j];
        }
        return;
    }
    float scale = 1.f;
    if (nw) scale = block_rms_scale(x, n, eps, red);
    int i = t;
    for (; i + 3 * ZM_BLOCK < n4; i += 4 * ZM_BLOCK) {
        float4 v[4];
#pragma unroll
        for (int j = 0; j < 4; j++) v[j] = x4[i + j * ZM_BLOCK];
        if (nw) {
#pragma unroll
            for (int j = 0; j < 4; j++) norm4(v[j], w4[i + j * ZM_BLOCK], scale);
        }
#pragma unroll
        for (int j = 0; j < 4; j++) xs[swz((i + j * ZM_BLOCK) >> 3, (i + j * ZM_BLOCK) & 7)] = v[j];
    }
    for (; i < n4; i += ZM_BLOCK) {
        float4 v = x4[i];
        if (nw) norm4(v, w4[i], scale);
        xs[swz(i >> 3, i & 7)] = v;
    }
}
/* k vectors of n floats each, contiguous in x, into k swizzled slots of n/4
 * float4 (slot j at xs + j*n/4) in one pass: all loads of a thread in flight
 * together instead of one slot after another. */
__device__ __forceinline__ void load_slots_swz(float4 *xs, const float *x, int k, int n) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    const int per = n / 4, tot = k * per;
    int i = threadIdx.x;
    for (; i + 3 * ZM_BLOCK < tot; i += 4 * ZM_BLOCK) {
        float4 v[4];
#pragma unroll
        for (int j = 0; j < 4; j++) v[j] = x4[i + j * ZM_BLOCK];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int e = i + j * ZM_BLOCK, s = e / per, c = e - s * per;
            xs[s * per + swz(c >> 3, c & 7)] = v[j];
        }
    }
    for (; i < tot; i += ZM_BLOCK) {
        const int s = i / per, c = i - s * per;
        xs[s * per + swz(c >> 3, c & 7)] = x4[i];
    }
}

// ---------------------------------------------------------------------------
// Programmatic dependent launch (sm_90). A kernel launched with the PDL
// attribute may start while its predecessor still runs; it must call
// pdl_wait() before it reads anything an earlier kernel wrote or writes
// anything an earlier kernel reads. pdl_wait() returns once the predecessor
// has completed and its writes are visible; pdl_launch() lets the successor
// start. Every decode kernel calls both first thing (after prefetching its
// static weights), so the chain stays ordered: each kernel completes only
// after its own wait, hence after all earlier kernels. Without the attribute
// both are no-ops.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#define ZM_PDL_ENTRY() (pdl_wait(), pdl_launch())

/* Host side: PDL on unless ZMLX_CUDA_PDL=0 (checked once). */
int zm__pdl_enabled(void);
/* Launch a grid of thread-block clusters of cl blocks (cl 1x1x1: plain
 * blocks) with the PDL attribute when enabled; errors are left for
 * cudaGetLastError. Over 8 blocks a cluster is a non-portable size (sm_90:
 * 16), allowed per kernel. */
template <typename... KArgs, typename... Args>
static inline void zm__launch_cluster(void (*kern)(KArgs...), dim3 cl, dim3 grid, dim3 block, size_t smem,
                                      cudaStream_t st, Args... args) {
    const unsigned vol = cl.x * cl.y * cl.z;
    if (vol > 8) (void)cudaFuncSetAttribute(kern, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    unsigned n = 0;
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    if (vol > 1) {
        at[n].id = cudaLaunchAttributeClusterDimension;
        at[n].val.clusterDim.x = cl.x;
        at[n].val.clusterDim.y = cl.y;
        at[n].val.clusterDim.z = cl.z;
        n++;
    }
    if (zm__pdl_enabled()) {
        at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[n].val.programmaticStreamSerializationAllowed = 1;
        n++;
    }
    cfg.attrs = at;
    cfg.numAttrs = n;
    (void)cudaLaunchKernelEx(&cfg, kern, ((KArgs)args)...);
}
/* Launch with the PDL attribute when enabled; same arguments as <<<>>>. */
template <typename... KArgs, typename... Args>
static inline void zm__launch(void (*kern)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                              Args... args) {
    zm__launch_cluster(kern, dim3(1, 1, 1), grid, block, smem, st, args...);
}

// ---------------------------------------------------------------------------
// Argmax pieces (k_argmax and the persistent kernel's argmax step): the
// first index of the largest non-NaN value; -inf counts, all-NaN gives none.
#define ZM_AM_NONE 0x7fffffff
__device__ __forceinline__ void am_take(float v, int64_t i, float &bv, int &bi) {
    if (v > bv || (bi == ZM_AM_NONE && !(v != v))) { bv = v; bi = (int)i; }
}
/* Merge another candidate: larger value, or equal value at a lower index. */
__device__ __forceinline__ void am_merge(float ov, int oi, float &bv, int &bi) {
    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
}
__device__ __forceinline__ void am_warp(float &bv, int &bi) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        am_merge(ov, oi, bv, bi);
    }
}
/* This thread's candidate over x[lo, hi): float4 loads (four in flight)
 * while aligned, then the tail; each thread sees its indices in increasing
 * order. cg: read through L2 (x written by other blocks of this grid). */
__device__ __forceinline__ void argmax_range(const float *x, int64_t lo, int64_t hi, bool cg, float &bv, int &bi) {
    const int64_t B = blockDim.x;
    int64_t tail = lo;
    if (((uintptr_t)(x + lo) & 15) == 0) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x + lo);
        const int64_t n4 = (hi - lo) / 4;
        int64_t i = threadIdx.x;
        for (; i + 3 * B < n4; i += 4 * B) {
            float4 v[4];
#pragma unroll
            for (int j = 0; j < 4; j++) v[j] = cg ? __ldcg(x4 + i + j * B) : __ldg(x4 + i + j * B);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int64_t e = lo + 4 * (i + j * B);
                am_take(v[j].x, e, bv, bi); am_take(v[j].y, e + 1, bv, bi);
                am_take(v[j].z, e + 2, bv, bi); am_take(v[j].w, e + 3, bv, bi);
            }
        }
        for (; i < n4; i += B) {
            const float4 v = cg ? __ldcg(x4 + i) : __ldg(x4 + i);
            const int64_t e = lo + 4 * i;
            am_take(v.x, e, bv, bi); am_take(v.y, e + 1, bv, bi); am_take(v.z, e + 2, bv, bi); am_take(v.w, e + 3, bv, bi);
        }
        tail = lo + 4 * n4;
    }
    for (int64_t i = tail + threadIdx.x; i < hi; i += B) am_take(cg ? __ldcg(x + i) : x[i], i, bv, bi);
}
/* Block-wide merge (blockDim a multiple of 32, <= 1024); thread 0 ends
 * with the block's candidate. sv/si: 32 entries of shared memory. */
__device__ __forceinline__ void argmax_block(float &bv, int &bi, float *sv, int *si) {
    am_warp(bv, bi);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
        const int nw = blockDim.x / 32;
        bv = lane < nw ? sv[lane] : -INFINITY;
        bi = lane < nw ? si[lane] : ZM_AM_NONE;
        am_warp(bv, bi);
    }
}

/* Element c of row `row` of an embedding table (ops_cuda.h layout). */
template <int DT>
__device__ __forceinline__ float embed_value(const void *q, const uint16_t *d, int64_t cols, int64_t row, int64_t c) {
    if (DT == ZM_F32) return reinterpret_cast<const float *>(q)[row * cols + c];
    if (DT == ZM_F16) return __half2float(reinterpret_cast<const __half *>(q)[row * cols + c]);
    if (DT == ZM_BF16) return __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(q)[row * cols + c]);
    const int64_t blk = row * (cols / 32) + c / 32;
    const int e = (int)(c % 32);
    const float sc = __half2float(__ushort_as_half(d[blk]));
    if (DT == ZM_Q4_0) {
        const uint8_t b = reinterpret_cast<const uint8_t *>(q)[blk * 16 + (e & 15)];
        return (float)((e < 16 ? (b & 15) : (b >> 4)) - 8) * sc;
    }
    return (float)reinterpret_cast<const int8_t *>(q)[blk * 32 + e] * sc;
}

// ---------------------------------------------------------------------------
// Per-dtype 32-element blocks. raw: what one lane loads for one block (all
// 16-byte loads); dot(raw, xs, b): sum of the 32 products in a fixed order.
// Quant values are decoded with the exponent trick: 0x4B0000XX as a float is
// 2^23 + XX exactly, so subtracting (2^23 + offset) gives XX - offset.
__device__ __forceinline__ float mag(uint32_t w, uint32_t sel) {
    return __int_as_float((int)__byte_perm(w, 0x4B000000u, sel));
}
__device__ __forceinline__ float dot4_bytes(uint32_t w, float4 x, float off) {
    float a = (mag(w, 0x7540) - off) * x.x;
    a = __fmaf_rn(mag(w, 0x7541) - off, x.y, a);
    a = __fmaf_rn(mag(w, 0x7542) - off, x.z, a);
    a = __fmaf_rn(mag(w, 0x7543) - off, x.w, a);
    return a;
}

template <int DT> struct Blk;

template <> struct Blk<ZM_Q4_0> {
    struct raw { uint4 q; float d; };
    static __device__ __forceinline__ raw load(const void *q, const uint16_t *d, int64_t blk) {
        raw r;
        r.q = __ldg(reinterpret_cast<const uint4 *>(q) + blk);
        r.d = __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short *>(d) + blk)));
        return r;
    }
    /* block b of a row staged in shared memory (quants q, scales d) */
    static __device__ __forceinline__ raw lds(const unsigned char *q, const uint16_t *d, int b) {
        raw r;
        r.q = reinterpret_cast<const uint4 *>(q)[b];
        r.d = __half2float(__ushort_as_half(d[b]));
        return r;
    }
    /* SW: x is block b of swizzled shared memory (dot); else the block's 8
     * float4 in registers (dotr, the wide matvec): one arithmetic, the same
     * bits */
    template <bool SW = true> static __device__ __forceinline__ float dot(const raw &r, const float4 *xs, int b) {
        const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 4; i++) { /* word i: elements 4i..4i+3 (low) and 16+4i.. (high) */
            s += dot4_bytes(w[i] & 0x0F0F0F0Fu, xs[SW ? swz(b, i) : i], 8388616.f);
            s += dot4_bytes((w[i] >> 4) & 0x0F0F0F0Fu, xs[SW ? swz(b, i + 4) : i + 4], 8388616.f);
        }
        return s * r.d;
    }
    static __device__ __forceinline__ float dotr(const raw &r, const float4 (&x)[8]) { return dot<false>(r, x, 0); }
};

template <> struct Blk<ZM_Q8_0> {
    struct raw { uint4 a, b; float d; };
    static __device__ __forceinline__ raw load(const void *q, const uint16_t *d, int64_t blk) {
        raw r;
        r.a = __ldg(reinterpret_cast<const uint4 *>(q) + 2 * blk);
        r.b = __ldg(reinterpret_cast<const uint4 *>(q) + 2 * blk + 1);
        r.d = __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short *>(d) + blk)));
        return r;
    }
    static __device__ __forceinline__ raw lds(const unsigned char *q, const uint16_t *d, int b) {
        raw r;
        r.a = reinterpret_cast<const uint4 *>(q)[2 * b];
        r.b = reinterpret_cast<const uint4 *>(q)[2 * b + 1];
        r.d = __half2float(__ushort_as_half(d[b]));
        return r;
    }
    template <bool SW = true> static __device__ __forceinline__ float dot(const raw &r, const float4 *xs, int b) { /* as Q4_0 */
        const uint32_t w[8] = {r.a.x, r.a.y, r.a.z, r.a.w, r.b.x, r.b.y, r.b.z, r.b.w};
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) s += dot4_bytes(w[i] ^ 0x80808080u, xs[SW ? swz(b, i) : i], 8388736.f);
        return s * r.d;
    }
    static __device__ __forceinline__ float dotr(const raw &r, const float4 (&x)[8]) { return dot<false>(r, x, 0); }
};

template <> struct Blk<ZM_F32> {
    struct raw { float4 v[8]; };
    static __device__ __forceinline__ raw load(const void *q, const uint16_t *, int64_t blk) {
        raw r;
#pragma unroll
        for (int i = 0; i < 8; i++) r.v[i] = __ldg(reinterpret_cast<const float4 *>(q) + 8 * blk + i);
        return r;
    }
    static __device__ __forceinline__ float dot(const raw &r, const float4 *xs, int b) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            float4 x = xs[swz(b, i)];
            float a = r.v[i].x * x.x;
            a = __fmaf_rn(r.v[i].y, x.y, a);
            a = __fmaf_rn(r.v[i].z, x.z, a);
            a = __fmaf_rn(r.v[i].w, x.w, a);
            s += a;
        }
        return s;
    }
};

template <int DT> struct Blk16 { /* F16 and BF16: 32 halves = 4 x 16 bytes */
    struct raw { uint4 v[4]; };
    static __device__ __forceinline__ raw load(const void *q, const uint16_t *, int64_t blk) {
        raw r;
#pragma unroll
        for (int i = 0; i < 4; i++) r.v[i] = __ldg(reinterpret_cast<const uint4 *>(q) + 4 * blk + i);
        return r;
    }
    static __device__ __forceinline__ float2 cvt(uint32_t w) {
        if (DT == ZM_F16) return __half22float2(*reinterpret_cast<const __half2 *>(&w));
        return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
    }
    static __device__ __forceinline__ float dot(const raw &r, const float4 *xs, int b) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t w[4] = {r.v[i].x, r.v[i].y, r.v[i].z, r.v[i].w};
            float4 x0 = xs[swz(b, 2 * i)], x1 = xs[swz(b, 2 * i + 1)];
            float2 p0 = cvt(w[0]), p1 = cvt(w[1]), p2 = cvt(w[2]), p3 = cvt(w[3]);
            float a = p0.x * x0.x;
            a = __fmaf_rn(p0.y, x0.y, a);
            a = __fmaf_rn(p1.x, x0.z, a);
            a = __fmaf_rn(p1.y, x0.w, a);
            s += a;
            a = p2.x * x1.x;
            a = __fmaf_rn(p2.y, x1.y, a);
            a = __fmaf_rn(p3.x, x1.z, a);
            a = __fmaf_rn(p3.y, x1.w, a);
            s += a;
        }
        return s;
    }
};
template <> struct Blk<ZM_F16> : Blk16<ZM_F16> {};
template <> struct Blk<ZM_BF16> : Blk16<ZM_BF16> {};

/* A fixed-shape kernel instance (NB > 0): the row width in blocks and the
 * lanes a row become compile-time constants, so its row loops unroll with
 * no remainder paths (the same operations in the same order). The
 * launchers pick it only when the run-time values equal them. */
template <int NB, int LPR = 32> __device__ __forceinline__ void fixed_shape(int &nb, int &lpr) {
    if constexpr (NB > 0) {
        nb = NB;
        lpr = LPR;
    }
}

/* Lanes per row for rows of nb blocks: the largest power of two <= 32 that
 * leaves no lane idle on the last pass (24 blocks -> 8 lanes x 3). */
static inline int zm__lpr(int64_t nb) {
    if (nb >= 32 && nb % 32 == 0) return 32;
    int best = 1;
    for (int l = 32; l >= 1; l >>= 1) {
        if (nb >= l && nb % l == 0) { best = l; break; }
    }
    if (nb >= 32 && best < 8) best = 32; /* ragged long rows: keep the warp busy */
    return best;
}

/* acc plus the lane's blocks b, b+lpr, ... of a row (first block index
 * row_blk) with swizzled x, in that order. */
template <int DT>
__device__ __forceinline__ float row_dot_from(const void *q, const uint16_t *d, int64_t row_blk, int nb,
                                              const float4 *xs, int b, int lpr, float acc) {
    for (; b + 3 * lpr < nb; b += 4 * lpr) { /* four blocks in flight */
        typename Blk<DT>::raw r[4];
#pragma unroll
        for (int j = 0; j < 4; j++) r[j] = Blk<DT>::load(q, d, row_blk + b + j * lpr);
#pragma unroll
        for (int j = 0; j < 4; j++) acc += Blk<DT>::dot(r[j], xs, b + j * lpr);
    }
    if (b + lpr < nb) { /* then two, then one: the sum order stays b ascending */
        typename Blk<DT>::raw r0 = Blk<DT>::load(q, d, row_blk + b), r1 = Blk<DT>::load(q, d, row_blk + b + lpr);
        acc += Blk<DT>::dot(r0, xs, b);
        acc += Blk<DT>::dot(r1, xs, b + lpr);
        b += 2 * lpr;
    }
    if (b < nb) acc += Blk<DT>::dot(Blk<DT>::load(q, d, row_blk + b), xs, b);
    return acc;
}
/* One lane's partial dot of a row with swizzled x: blocks sub, sub+lpr,
 * ... of nb. */
template <int DT>
__device__ __forceinline__ float row_dot(const void *q, const uint16_t *d, int64_t row_blk, int nb,
                                         const float4 *xs, int sub, int lpr) {
    return row_dot_from<DT>(q, d, row_blk, nb, xs, sub, lpr, 0.f);
}

/* A lane's first (up to) N blocks of a row, loaded ahead (before a
 * kernel's dependency wait: weights are static) and consumed by
 * row_dot_pre, which then goes on as row_dot does: one sum, b ascending,
 * so the result equals row_dot bit for bit. N = 4, 2 for F32 (a block is
 * 32 registers). */
template <int DT> struct RowPre {
    static constexpr int N = DT == ZM_F32 ? 2 : 4;
    typename Blk<DT>::raw r[N];
};
template <int DT>
__device__ __forceinline__ void row_pre_load(RowPre<DT> &p, const void *q, const uint16_t *d, int64_t row_blk,
                                             int nb, int sub, int lpr) {
#pragma unroll
    for (int m = 0; m < RowPre<DT>::N; m++)
        if (sub + m * lpr < nb) p.r[m] = Blk<DT>::load(q, d, row_blk + sub + m * lpr);
}
template <int DT>
__device__ __forceinline__ float row_dot_pre(const RowPre<DT> &p, const void *q, const uint16_t *d, int64_t row_blk,
                                             int nb, const float4 *xs, int sub, int lpr) {
    float acc = 0.f;
#pragma unroll
    for (int m = 0; m < RowPre<DT>::N; m++)
        if (sub + m * lpr < nb) acc += Blk<DT>::dot(p.r[m], xs, sub + m * lpr);
    return row_dot_from<DT>(q, d, row_blk, nb, xs, sub + RowPre<DT>::N * lpr, lpr, acc);
}
/* Two rows at once (gate and up of one expert, or two rows of a dense
 * matvec, possibly of different matrices): all their loads issued before
 * any dot, each accumulator summed in row_dot's order, so ya and yb equal
 * two row_dot calls bit for bit. */
template <int DT>
__device__ __forceinline__ void row_dot2(const void *qa, const uint16_t *da, int64_t ra, const void *qb,
                                         const uint16_t *db, int64_t rb, int nb, const float4 *xa,
                                         const float4 *xb, int sub, int lpr, float &ya, float &yb) {
    float a = 0.f, c = 0.f;
    int b = sub;
    for (; b + lpr < nb; b += 2 * lpr) {
        typename Blk<DT>::raw a0 = Blk<DT>::load(qa, da, ra + b);
        typename Blk<DT>::raw a1 = Blk<DT>::load(qa, da, ra + b + lpr);
        typename Blk<DT>::raw c0 = Blk<DT>::load(qb, db, rb + b);
        typename Blk<DT>::raw c1 = Blk<DT>::load(qb, db, rb + b + lpr);
        a += Blk<DT>::dot(a0, xa, b);
        a += Blk<DT>::dot(a1, xa, b + lpr);
        c += Blk<DT>::dot(c0, xb, b);
        c += Blk<DT>::dot(c1, xb, b + lpr);
    }
    if (b < nb) {
        typename Blk<DT>::raw a0 = Blk<DT>::load(qa, da, ra + b);
        typename Blk<DT>::raw c0 = Blk<DT>::load(qb, db, rb + b);
        a += Blk<DT>::dot(a0, xa, b);
        c += Blk<DT>::dot(c0, xb, b);
    }
    ya = a;
    yb = c;
}

/* Fire-and-forget L2 prefetch of [p, p+bytes) by the calling thread (sm_90
 * bulk prefetch; earlier archs skip it). Rounded out to 16 bytes: device
 * matrices carry 256 bytes of tail padding so the rounding stays inside. */
__device__ __forceinline__ void prefetch_l2(const void *p, int64_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)15, e = ((uintptr_t)p + (uintptr_t)bytes + 15) & ~(uintptr_t)15;
    while (a < e) {
        uint32_t n = (uint32_t)((e - a) > 65536 ? 65536 : (e - a));
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a), "r"(n) : "memory");
        a += n;
    }
#else
    (void)p; (void)bytes;
#endif
}
/* Bulk copies into shared memory (sm_90 TMA, no tensor map): one thread
 * arms an mbarrier with the bytes to come and issues the copies; every
 * thread waits on the barrier's phase. Addresses and sizes are multiples of
 * 16 (the callers check). On earlier archs they compile to nothing: the
 * launchers must not pick the kernels using them there (bulk_rows_ok). */
__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mbar_init(uint64_t *b, int count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
#endif
}
/* After the inits, before any copy: the barriers visible to the async proxy. */
__device__ __forceinline__ void mbar_fence_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_expect(uint64_t *b, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void bulk_g2s(void *dst, const void *src, uint32_t bytes, uint64_t *b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(smem_u32(dst)),
                 "l"(src), "r"(bytes), "r"(smem_u32(b))
                 : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint64_t *b, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uint32_t done = 0;
    while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done)
                     : "r"(smem_u32(b)), "r"(parity)
                     : "memory");
#endif
}
/* Bytes per 32-element block in q for each dtype. */
template <int DT> struct BlkBytes { static constexpr int v = DT == ZM_Q4_0 ? 16 : DT == ZM_Q8_0 ? 32 : DT == ZM_F32 ? 128 : 64; };

/* Run the statements with constexpr DT = dt (the five weight types), or
 * `otherwise` for any other type. */
#define ZM_SWITCH_DT(dt, otherwise, ...)                                                           \
    switch (dt) {                                                                                  \
    case ZM_Q4_0: { constexpr int DT = ZM_Q4_0; __VA_ARGS__; } break;                               \
    case ZM_Q8_0: { constexpr int DT = ZM_Q8_0; __VA_ARGS__; } break;                               \
    case ZM_F32: { constexpr int DT = ZM_F32; __VA_ARGS__; } break;                                 \
    case ZM_F16: { constexpr int DT = ZM_F16; __VA_ARGS__; } break;                                 \
    case ZM_BF16: { constexpr int DT = ZM_BF16; __VA_ARGS__; } break;                               \
    default: otherwise;                                                                            \
    }
#define ZM_DISPATCH_DT(dt, ...) \
    ZM_SWITCH_DT(dt, return zm__err(ZM_ERR_DTYPE, "cuda matvec: dtype %s not supported", zm_dtype_name(dt)), __VA_ARGS__)
