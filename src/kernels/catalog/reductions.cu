// Reductions over the last axis on CUDA: one block per row, grid-stride over
// columns, float accumulation (Kahan/Neumaier compensated when asked), block
// tree reduce. Checked by tests/test_catalog_reductions.c against the same
// float64 references as the CPU side (reductions.c).
#include "kernels/catalog/cu_common.cuh"

// ---- kernels ----------------------------------------------------------------
template <typename T>
__global__ void k_reduce(int op, void *out, const T *x, int64_t cols, int ddof) {
    __shared__ float sh[32];
    __shared__ int shi[32];
    int64_t r = blockIdx.x;
    const T *row = x + r * cols;
    bool vec = sizeof(T) == 4 && (cols & 3) == 0; // float4 loads: more bytes in flight per thread
    if (op == ZM__R_SUM || op == ZM__R_MEAN || op == ZM__R_VAR || op == ZM__R_STD) {
        float s = 0;
        if (vec) {
            const float4 *r4 = (const float4 *)row;
            for (int64_t i = threadIdx.x; i < cols / 4; i += blockDim.x) { float4 v = r4[i]; s += (v.x + v.y) + (v.z + v.w); }
        } else
            for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += ld(row, i);
        s = block_sum(s, sh);
        float res = s;
        if (op == ZM__R_MEAN) res = s / (float)cols;
        if (op == ZM__R_VAR || op == ZM__R_STD) {
            float mean = s / (float)cols, q = 0;
            if (vec) {
                const float4 *r4 = (const float4 *)row;
                for (int64_t i = threadIdx.x; i < cols / 4; i += blockDim.x) {
                    float4 v = r4[i];
                    q += (v.x - mean) * (v.x - mean) + (v.y - mean) * (v.y - mean) + (v.z - mean) * (v.z - mean) + (v.w - mean) * (v.w - mean);
                }
            } else
                for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) { float d = ld(row, i) - mean; q += d * d; }
            q = block_sum(q, sh);
            res = cols - ddof > 0 ? q / (float)(cols - ddof) : NAN;
            if (op == ZM__R_STD) res = sqrtf(res);
        }
        if (threadIdx.x == 0) ((float *)out)[r] = res;
    } else if (op == ZM__R_SUM_KAHAN) {
        float s = 0, c = 0;
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
            float v = ld(row, i), t = s + v;
            c += fabsf(s) >= fabsf(v) ? (s - t) + v : (v - t) + s;
            s = t;
        }
        // the per-thread partials are few and well-conditioned; sum both parts
        float hi = block_sum(s, sh), lo = block_sum(c, sh);
        if (threadIdx.x == 0) ((float *)out)[r] = hi + lo;
    } else { // max/min/argmax/argmin: NaN skipped, first index on ties
        int mx = op == ZM__R_MAX || op == ZM__R_ARGMAX;
        float best = NAN;
        int bi = 0x7fffffff;
        if (vec) { // each thread's elements in increasing index order, so strict compares keep the first
            const float4 *r4 = (const float4 *)row;
            for (int64_t i = threadIdx.x; i < cols / 4; i += blockDim.x) {
                float4 v4 = r4[i];
                float e[4] = {v4.x, v4.y, v4.z, v4.w};
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    float v = e[j];
                    if (isnan(v)) continue;
                    if (isnan(best) || (mx ? v > best : v < best)) { best = v; bi = (int)(4 * i + j); }
                }
            }
        } else
            for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
                float v = ld(row, i);
                if (isnan(v)) continue;
                if (isnan(best) || (mx ? v > best : v < best)) { best = v; bi = (int)i; }
            }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (!isnan(ov) && (isnan(best) || (mx ? ov > best : ov < best) || (ov == best && oi < bi))) { best = ov; bi = oi; }
        }
        int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
        if (lane == 0) { sh[w] = best; shi[w] = bi; }
        __syncthreads();
        if (w == 0) {
            best = lane < nw ? sh[lane] : NAN;
            bi = lane < nw ? shi[lane] : 0x7fffffff;
            for (int o = 16; o > 0; o >>= 1) {
                float ov = __shfl_xor_sync(0xffffffffu, best, o);
                int oi = __shfl_xor_sync(0xffffffffu, bi, o);
                if (!isnan(ov) && (isnan(best) || (mx ? ov > best : ov < best) || (ov == best && oi < bi))) { best = ov; bi = oi; }
            }
            if (lane == 0) {
                if (op == ZM__R_ARGMAX || op == ZM__R_ARGMIN) ((int32_t *)out)[r] = bi == 0x7fffffff ? 0 : bi;
                else ((float *)out)[r] = best;
            }
        }
    }
}

// Top-k without a sort buffer: round j picks the best element ranked strictly
// after round j-1's pick in (value desc, index asc) order, so the row is read
// k times (from L1/L2 after the first). Fine for the small k routers use.
template <typename T>
__global__ void k_topk(float *vals, int32_t *idx, const T *x, int64_t cols, int k) {
    __shared__ float shv[32];
    __shared__ int shi[32];
    int64_t r = blockIdx.x;
    const T *row = x + r * cols;
    float pv = INFINITY;
    int pi = -1;
    for (int j = 0; j < k; j++) {
        float best = NAN;
        int bi = 0x7fffffff;
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
            float v = ld(row, i);
            if (isnan(v)) continue;
            bool after = v < pv || (v == pv && (int)i > pi);
            if (after && (isnan(best) || v > best)) { best = v; bi = (int)i; }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (!isnan(ov) && (isnan(best) || ov > best || (ov == best && oi < bi))) { best = ov; bi = oi; }
        }
        int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
        __syncthreads();
        if (lane == 0) { shv[w] = best; shi[w] = bi; }
        __syncthreads();
        best = lane < nw ? shv[lane] : NAN;
        bi = lane < nw ? shi[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (!isnan(ov) && (isnan(best) || ov > best || (ov == best && oi < bi))) { best = ov; bi = oi; }
        }
        if (isnan(best)) { best = -INFINITY; bi = -1; }
        if (threadIdx.x == 0) { vals[r * k + j] = best; idx[r * k + j] = bi; }
        pv = best; pi = bi;
        if (bi < 0) pi = 0x7fffffff;
    }
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_reduce(int op, void *out, const void *x, int dt, int64_t rows, int64_t cols, int ddof) {
    if (rows == 0) return ZM_OK;
    int block = cols >= 256 ? 256 : 64;
    ZM_DISPATCH_FLOAT(dt, k_reduce<T><<<(unsigned)rows, block>>>(op, out, (const T *)x, cols, ddof));
    return zm_cuda_check_launch("k_reduce");
}

extern "C" zm_status zm_cuda_topk(float *vals, int32_t *idx, const void *x, int dt, int64_t rows, int64_t cols, int k) {
    if (rows == 0) return ZM_OK;
    int block = cols >= 1024 ? 256 : 64;
    ZM_DISPATCH_FLOAT(dt, k_topk<T><<<(unsigned)rows, block>>>(vals, idx, (const T *)x, cols, k));
    return zm_cuda_check_launch("k_topk");
}
