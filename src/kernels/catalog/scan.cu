// Row scans on CUDA: one block per row; each thread owns a contiguous chunk,
// sums it, the block scans the chunk totals in shared memory, then each
// thread rescans its chunk from its offset (two reads of the row, the second
// from L1/L2). Checked by tests/test_catalog_scan.c.
#include "kernels/catalog/cu_common.cuh"

#define SCAN_BLOCK 256

// ---- kernels ----------------------------------------------------------------
// The block's chunk totals (this thread's is acc) scanned in shared memory
// (Hillis-Steele, inclusive); returns what precedes this thread's chunk.
template <bool PROD>
__device__ __forceinline__ float chunk_offset(float *tot, float acc) {
    tot[threadIdx.x] = acc;
    __syncthreads();
    for (int s = 1; s < SCAN_BLOCK; s <<= 1) {
        float a = threadIdx.x >= s ? tot[threadIdx.x - s] : (PROD ? 1.f : 0.f);
        __syncthreads();
        tot[threadIdx.x] = PROD ? tot[threadIdx.x] * a : tot[threadIdx.x] + a;
        __syncthreads();
    }
    return threadIdx.x ? tot[threadIdx.x - 1] : (PROD ? 1.f : 0.f);
}

template <bool PROD>
__global__ void k_scan(float *out, const float *x, int64_t cols, int excl, int rev) {
    __shared__ float tot[SCAN_BLOCK];
    int64_t r = blockIdx.x;
    const float *row = x + r * cols;
    float *o = out + r * cols;
    int64_t chunk = (cols + SCAN_BLOCK - 1) / SCAN_BLOCK;
    int64_t j0 = threadIdx.x * chunk, j1 = min(cols, j0 + chunk);
    float acc = PROD ? 1.f : 0.f;
    for (int64_t j = j0; j < j1; j++) {
        float v = row[rev ? cols - 1 - j : j];
        acc = PROD ? acc * v : acc + v;
    }
    acc = chunk_offset<PROD>(tot, acc);
    for (int64_t j = j0; j < j1; j++) {
        int64_t i = rev ? cols - 1 - j : j;
        float v = row[i];
        if (excl) { o[i] = acc; acc += v; }
        else { acc = PROD ? acc * v : acc + v; o[i] = acc; }
    }
}

// Rows up to SCAN_SMEM floats: staged through shared memory so global reads
// and writes are coalesced; the chunked scan then runs on shared memory.
#define SCAN_SMEM 8192
template <bool PROD>
__global__ void k_scan_smem(float *out, const float *x, int64_t cols, int excl, int rev) {
    __shared__ float buf[SCAN_SMEM];
    __shared__ float tot[SCAN_BLOCK];
    int64_t r = blockIdx.x;
    const float *row = x + r * cols;
    float *o = out + r * cols;
    for (int64_t i = threadIdx.x; i < cols; i += SCAN_BLOCK) buf[rev ? cols - 1 - i : i] = row[i];
    __syncthreads();
    int64_t chunk = (cols + SCAN_BLOCK - 1) / SCAN_BLOCK;
    int64_t j0 = threadIdx.x * chunk, j1 = min(cols, j0 + chunk);
    float acc = PROD ? 1.f : 0.f;
    for (int64_t j = j0; j < j1; j++) acc = PROD ? acc * buf[j] : acc + buf[j];
    acc = chunk_offset<PROD>(tot, acc);
    for (int64_t j = j0; j < j1; j++) {
        float v = buf[j];
        if (excl) { buf[j] = acc; acc += v; }
        else { acc = PROD ? acc * v : acc + v; buf[j] = acc; }
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < cols; i += SCAN_BLOCK) o[i] = buf[rev ? cols - 1 - i : i];
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_cumsum(float *out, const float *x, int64_t rows, int64_t cols, int excl, int rev) {
    if (rows == 0 || cols == 0) return ZM_OK;
    if (cols <= SCAN_SMEM) k_scan_smem<false><<<(unsigned)rows, SCAN_BLOCK>>>(out, x, cols, excl, rev);
    else k_scan<false><<<(unsigned)rows, SCAN_BLOCK>>>(out, x, cols, excl, rev);
    return zm_cuda_check_launch("k_scan");
}
extern "C" zm_status zm_cuda_cumprod(float *out, const float *x, int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return ZM_OK;
    if (cols <= SCAN_SMEM) k_scan_smem<true><<<(unsigned)rows, SCAN_BLOCK>>>(out, x, cols, 0, 0);
    else k_scan<true><<<(unsigned)rows, SCAN_BLOCK>>>(out, x, cols, 0, 0);
    return zm_cuda_check_launch("k_scan");
}
