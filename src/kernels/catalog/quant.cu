// Quantization family on CUDA. Block formats: one warp per 32-element block
// (lane j owns element j; amax by shuffles; products written with __fmul_rn /
// __fadd_rn so no FMA contraction changes a rounding and the bytes equal the
// CPU reference). Groups (int4, NF4): one warp per group. Per-row int8: one
// block per row. fp8: one thread per element (quant_fmt.h, shared with C).
// Checked by tests/test_catalog_quant.c.
#include "kernels/catalog/cu_quant.cuh"
#include "kernels/catalog/quant_fmt.h"

// ---- kernels ----------------------------------------------------------------
__global__ void k_quantize_block(int dt, uint8_t *q, const float *x, int64_t nblocks) {
    int lane = threadIdx.x & 31;
    int64_t b = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (b >= nblocks) return;
    float v = x[b * 32 + lane], a = fabsf(v);
    // max |x| and the first lane holding it (Q4_0 keeps that value's sign)
    float am = a;
    int al = lane;
    for (int o = 16; o > 0; o >>= 1) {
        float oa = __shfl_xor_sync(0xffffffffu, am, o);
        int ol = __shfl_xor_sync(0xffffffffu, al, o);
        if (oa > am || (oa == am && ol < al)) { am = oa; al = ol; }
    }
    if (dt == ZM_Q8_0) {
        float d = am / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t *p = q + b * 34;
        unsigned short hs = __half_as_ushort(__float2half_rn(d));
        int qv = (int)roundf(__fmul_rn(v, id));
        __syncwarp();
        // every lane stores exactly one byte: lanes 0/1 the scale, all lanes their weight
        if (lane < 2) p[lane] = (uint8_t)(lane ? hs >> 8 : hs & 255);
        p[2 + lane] = (uint8_t)(int8_t)qv;
    } else if (dt == ZM_Q4_0) {
        float mx = __shfl_sync(0xffffffffu, v, al);
        float d = mx / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int qi = (int)(int8_t)__fadd_rn(__fmul_rn(v, id), 8.5f);
        if (qi > 15) qi = 15;
        int hi = __shfl_down_sync(0xffffffffu, qi, 16);
        uint8_t *p = q + b * 18;
        unsigned short hs = __half_as_ushort(__float2half_rn(d));
        if (lane < 2) p[lane] = (uint8_t)(lane ? hs >> 8 : hs & 255);
        if (lane < 16) p[2 + lane] = (uint8_t)(qi | (hi << 4));
    } else { // MXFP4
        int ex = 0;
        if (am > 0) { frexpf(am, &ex); ex = ex - 1 - 2 + 127; }
        if (ex < 0) ex = 0;
        float d = ldexpf(1.0f, ex - 128);
        const int8_t vals[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
        float best = fabsf(__fmul_rn((float)vals[0], d) - v);
        int bi = 0;
        for (int i = 1; i < 16; i++) {
            float e = fabsf(__fmul_rn((float)vals[i], d) - v);
            if (e < best) { best = e; bi = i; }
        }
        int hi = __shfl_down_sync(0xffffffffu, bi, 16);
        uint8_t *p = q + b * 17;
        if (lane == 0) p[0] = (uint8_t)ex;
        if (lane < 16) p[1 + lane] = (uint8_t)(bi | (hi << 4));
    }
}

__global__ void k_dequantize_block(int dt, float *x, const uint8_t *q, int64_t n, int silu) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = dq_elem(dt, q, i >> 5, (int)(i & 31));
        x[i] = silu ? silu_f(v) : v;
    }
}

__global__ void k_int8_row(int dir, int8_t *q, float *scale, float *x, int64_t C) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    if (dir == 1) {
        float s = scale[r];
        for (int64_t i = threadIdx.x; i < C; i += blockDim.x) x[r * C + i] = (float)q[r * C + i] * s;
        return;
    }
    float a = 0;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) a = fmaxf(a, fabsf(x[r * C + i]));
    a = block_max(a, sh);
    float s = a / 127.0f, inv = s > 0 ? 1.0f / s : 0.0f;
    if (threadIdx.x == 0) scale[r] = s;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x)
        q[r * C + i] = (int8_t)fmaxf(-127.f, fminf(127.f, rintf(__fmul_rn(x[r * C + i], inv))));
}

__global__ void k_int4_group(int dir, uint8_t *q, float *scale, float *zero, float *x, int64_t ngroups, int group) {
    int lane = threadIdx.x & 31;
    int64_t g = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (g >= ngroups) return;
    float *v = x + g * group;
    uint8_t *qp = q + g * group / 2;
    if (dir == 1) {
        float s = scale[g], z = zero[g];
        for (int i = lane; i < group; i += 32) v[i] = s * ((float)((qp[i / 2] >> (4 * (i & 1))) & 15) - z);
        return;
    }
    float lo = 0, hi = 0;
    for (int i = lane; i < group; i += 32) { lo = fminf(lo, v[i]); hi = fmaxf(hi, v[i]); }
    lo = warp_min(lo); hi = warp_max(hi);
    float s = (hi - lo) / 15.0f, inv = s > 0 ? 1.0f / s : 0.0f, z = rintf(__fmul_rn(-lo, inv));
    if (lane == 0) { scale[g] = s; zero[g] = z; }
    for (int i = 2 * lane; i < group; i += 64) {
        float a = fminf(15.f, fmaxf(0.f, rintf(__fmul_rn(v[i], inv)) + z));
        float b = fminf(15.f, fmaxf(0.f, rintf(__fmul_rn(v[i + 1], inv)) + z));
        qp[i / 2] = (uint8_t)((int)a | ((int)b << 4));
    }
}

__global__ void k_fp8(int dir, uint8_t *q, float *x, int64_t n, float scale, int kind) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        if (dir == 0) q[i] = zm__fp8_enc(x[i] / scale, kind);
        else x[i] = zm__fp8_dec(q[i], kind) * scale;
    }
}

__constant__ float c_nf4[16] = ZM_NF4_LEVELS;
__global__ void k_nf4(int dir, uint8_t *q, float *am, float *x, int64_t ngroups) {
    int lane = threadIdx.x & 31;
    int64_t g = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (g >= ngroups) return;
    float *v = x + g * 64;
    if (dir == 1) {
        float a = am[g];
        uint8_t b = q[g * 32 + lane];
        v[2 * lane] = c_nf4[b & 15] * a;
        v[2 * lane + 1] = c_nf4[b >> 4] * a;
        return;
    }
    float v0 = v[2 * lane], v1 = v[2 * lane + 1];
    float a = warp_max(fmaxf(fabsf(v0), fabsf(v1))), inv = a > 0 ? 1.0f / a : 0.0f;
    if (lane == 0) am[g] = a;
    int c[2];
    float in[2] = {__fmul_rn(v0, inv), __fmul_rn(v1, inv)};
    for (int h = 0; h < 2; h++) {
        int bi = 0;
        float best = fabsf(in[h] - c_nf4[0]);
        for (int i = 1; i < 16; i++) { float e = fabsf(in[h] - c_nf4[i]); if (e < best) { best = e; bi = i; } }
        c[h] = bi;
    }
    q[g * 32 + lane] = (uint8_t)(c[0] | (c[1] << 4));
}

// ---- entry points -----------------------------------------------------------
static unsigned warps_grid(int64_t nwarps) { return zm_grid(nwarps * 32, 256); }

extern "C" zm_status zm_cuda_quantize_block(int dt, void *q, const float *x, int64_t nblocks) {
    if (!nblocks) return ZM_OK;
    k_quantize_block<<<warps_grid(nblocks), 256>>>(dt, (uint8_t *)q, x, nblocks);
    return zm_cuda_check_launch("k_quantize_block");
}
extern "C" zm_status zm_cuda_dequantize_block(int dt, float *x, const void *q, int64_t n, int silu) {
    if (!n) return ZM_OK;
    unsigned g = zm_grid(n, 256);
    k_dequantize_block<<<g > 65536 ? 65536 : g, 256>>>(dt, x, (const uint8_t *)q, n, silu);
    return zm_cuda_check_launch("k_dequantize_block");
}
extern "C" zm_status zm_cuda_int8_row(int dir, int8_t *q, float *scale, float *x, int64_t rows, int64_t cols) {
    if (!rows) return ZM_OK;
    k_int8_row<<<(unsigned)rows, cols >= 1024 ? 512 : 128>>>(dir, q, scale, x, cols);
    return zm_cuda_check_launch("k_int8_row");
}
extern "C" zm_status zm_cuda_int4_group(int dir, uint8_t *q, float *scale, float *zero, float *x, int64_t rows, int64_t cols, int group) {
    int64_t ng = rows * cols / group;
    if (!ng) return ZM_OK;
    k_int4_group<<<warps_grid(ng), 256>>>(dir, q, scale, zero, x, ng, group);
    return zm_cuda_check_launch("k_int4_group");
}
extern "C" zm_status zm_cuda_fp8(int dir, uint8_t *q, float *x, int64_t n, float scale, int kind) {
    if (!n) return ZM_OK;
    unsigned g = zm_grid(n, 256);
    k_fp8<<<g > 65536 ? 65536 : g, 256>>>(dir, q, x, n, scale, kind);
    return zm_cuda_check_launch("k_fp8");
}
extern "C" zm_status zm_cuda_nf4(int dir, uint8_t *q, float *absmax, float *x, int64_t rows, int64_t cols) {
    int64_t ng = rows * cols / 64;
    if (!ng) return ZM_OK;
    k_nf4<<<warps_grid(ng), 256>>>(dir, q, absmax, x, ng);
    return zm_cuda_check_launch("k_nf4");
}
