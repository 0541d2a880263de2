// Device-side reads of ggml block formats by byte offset (Q8_0: f16 d + 32 i8,
// 34 bytes; Q4_0: f16 d + 16 nibble bytes, 18 bytes; MXFP4: e8m0 + 16 bytes,
// 17 bytes), the same layouts as src/gguf/quant.h's structs, which C++ does not
// see. Shared by quant.cu and moe_qmm.cu.
#pragma once
#include "kernels/catalog/cu_common.cuh"

__device__ __forceinline__ float h2f_bits(const uint8_t *p) {
    __half_raw r;
    r.x = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__half(r));
}
__device__ __forceinline__ float e8m0_half(uint8_t e) { return ldexpf(1.0f, (int)e - 128); }

// Element j (0..31) of block b (base points at the first block).
__device__ __forceinline__ float dq_elem(int dt, const uint8_t *base, int64_t b, int j) {
    if (dt == ZM_Q8_0) {
        const uint8_t *p = base + b * 34;
        return (float)(int8_t)p[2 + j] * h2f_bits(p);
    }
    if (dt == ZM_Q4_0) {
        const uint8_t *p = base + b * 18;
        int q = j < 16 ? (p[2 + j] & 15) : (p[2 + j - 16] >> 4);
        return (float)(q - 8) * h2f_bits(p);
    }
    const int8_t vals[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    const uint8_t *p = base + b * 17;
    int q = j < 16 ? (p[1 + j] & 15) : (p[1 + j - 16] >> 4);
    return (float)vals[q] * e8m0_half(p[0]);
}
