// Bits and indexing on CUDA: one thread per packed byte / unpacked element,
// gather_add one thread per output element summing its K rows, scatter_add
// one thread per source element with atomicAdd. Checked by
// tests/test_catalog_bits.c.
#include "kernels/catalog/cu_common.cuh"

// ---- kernels ----------------------------------------------------------------
__global__ void k_pack_bits(uint8_t *p, const uint8_t *x, int64_t R, int64_t C) {
    int64_t PB = (C + 7) / 8, n = R * PB;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / PB, j = t - r * PB;
        uint8_t bv = 0;
        for (int i = 0; i < 8 && j * 8 + i < C; i++) bv |= (uint8_t)((x[r * C + j * 8 + i] != 0) << i);
        p[t] = bv;
    }
}
__global__ void k_unpack_bits(uint8_t *x, const uint8_t *p, int64_t R, int64_t C) {
    int64_t PB = (C + 7) / 8, n = R * C;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / C, i = t - r * C;
        x[t] = (p[r * PB + i / 8] >> (i % 8)) & 1;
    }
}
__global__ void k_gather_add(float *out, const float *tab, const int32_t *idx, int64_t N, int64_t K, int64_t D, int64_t V) {
    int64_t n = N * D;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / D, i = t - r * D;
        float s = 0;
        for (int64_t j = 0; j < K; j++) { int32_t e = idx[r * K + j]; if (e >= 0 && e < V) s += tab[e * D + i]; }
        out[t] = s;
    }
}
__global__ void k_scatter_add(float *out, const float *src, const int32_t *idx, int64_t N, int64_t D, int64_t V) {
    int64_t n = N * D;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / D, i = t - r * D;
        int32_t e = idx[r];
        if (e >= 0 && e < V) atomicAdd(out + e * D + i, src[t]);
    }
}

// ---- entry points -----------------------------------------------------------
static unsigned g1d(int64_t n) { unsigned g = zm_grid(n, 256); return g > 65536 ? 65536 : g; }
extern "C" zm_status zm_cuda_pack_bits(uint8_t *p, const uint8_t *x, int64_t R, int64_t C, int unpack) {
    if (!R || !C) return ZM_OK;
    if (unpack) k_unpack_bits<<<g1d(R * C), 256>>>((uint8_t *)x, p, R, C);
    else k_pack_bits<<<g1d(R * ((C + 7) / 8)), 256>>>(p, x, R, C);
    return zm_cuda_check_launch("k_pack_bits");
}
extern "C" zm_status zm_cuda_gather_add(float *out, const float *tab, const int32_t *idx, int64_t N, int64_t K, int64_t D, int64_t V) {
    if (!N || !D) return ZM_OK;
    k_gather_add<<<g1d(N * D), 256>>>(out, tab, idx, N, K, D, V);
    return zm_cuda_check_launch("k_gather_add");
}
extern "C" zm_status zm_cuda_scatter_add(float *out, const float *src, const int32_t *idx, int64_t N, int64_t D, int64_t V) {
    if (!N || !D) return ZM_OK;
    k_scatter_add<<<g1d(N * D), 256>>>(out, src, idx, N, D, V);
    return zm_cuda_check_launch("k_scatter_add");
}
