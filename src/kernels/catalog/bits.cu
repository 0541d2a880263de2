// Bits and indexing on CUDA: one thread per packed byte / unpacked flag;
// gather_add one thread per output element looping over the K ids (the ids
// row is shared by the warp through L1); scatter_add one thread per source
// element with a float atomicAdd (order of the sums is not fixed, so results
// may differ from the CPU's in the last bits). Checked by
// tests/test_catalog_bits.c (run: build/tests/test_catalog_bits).
#include "kernels/catalog/cu_common.cuh"

// ---- kernels ----------------------------------------------------------------
__global__ void k_pack_bits(uint8_t *pk, const uint8_t *x, int64_t R, int64_t C, int64_t nb) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < R * nb; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / nb, b = i % nb;
        const uint8_t *row = x + r * C + b * 8;
        unsigned v = 0;
        for (int j = 0; j < 8 && b * 8 + j < C; j++) v |= (unsigned)(row[j] != 0) << j;
        pk[i] = (uint8_t)v;
    }
}
__global__ void k_unpack_bits(const uint8_t *pk, uint8_t *x, int64_t R, int64_t C, int64_t nb) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < R * C; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / C, c = i % C;
        x[i] = (pk[r * nb + c / 8] >> (c % 8)) & 1;
    }
}

template <typename T>
__global__ void k_gather_add(T *out, const T *tab, const int32_t *idx, int64_t V, int64_t D, int64_t N, int64_t K) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < N * D; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / D, j = i % D;
        float s = 0.f;
        for (int64_t k = 0; k < K; k++) {
            int64_t id = idx[r * K + k];
            if (id >= 0 && id < V) s += ld(tab, id * D + j);
        }
        st(out, i, s);
    }
}

__global__ void k_scatter_add(float *out, const float *src, const int32_t *idx, int64_t V, int64_t D, int64_t N) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < N * D; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t id = idx[i / D];
        if (id >= 0 && id < V) atomicAdd(out + id * D + i % D, src[i]);
    }
}

// ---- entry points -----------------------------------------------------------
static unsigned bits_grid(int64_t n) {
    unsigned g = zm_grid(n, 256);
    return g > 65536 ? 65536 : g;
}

extern "C" zm_status zm_cuda_bits(int unpack, uint8_t *pk, uint8_t *x, int64_t R, int64_t C) {
    int64_t nb = (C + 7) / 8;
    if (R * nb == 0) return ZM_OK;
    if (unpack) k_unpack_bits<<<bits_grid(R * C), 256>>>(pk, x, R, C, nb);
    else k_pack_bits<<<bits_grid(R * nb), 256>>>(pk, x, R, C, nb);
    return zm_cuda_check_launch(unpack ? "k_unpack_bits" : "k_pack_bits");
}

extern "C" zm_status zm_cuda_gather_add(void *out, const void *tab, const int32_t *idx, int dt, int64_t V, int64_t D,
                                        int64_t N, int64_t K) {
    if (N * D == 0) return ZM_OK;
    ZM_DISPATCH_FLOAT(dt, k_gather_add<T><<<bits_grid(N * D), 256>>>((T *)out, (const T *)tab, idx, V, D, N, K));
    return zm_cuda_check_launch("k_gather_add");
}

extern "C" zm_status zm_cuda_scatter_add(float *out, const float *src, const int32_t *idx, int64_t V, int64_t D,
                                         int64_t N) {
    if (N * D == 0) return ZM_OK;
    k_scatter_add<<<bits_grid(N * D), 256>>>(out, src, idx, V, D, N);
    return zm_cuda_check_launch("k_scatter_add");
}
