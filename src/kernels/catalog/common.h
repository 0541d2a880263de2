/* Private helpers of the catalog families (src/kernels/catalog/ *.c): argument
 * checks that name the op and the argument, dtype load/store of one element,
 * a row-parallel loop on the default thread pool, and the CUDA entry points
 * (cuda_ops.h). Not installed. */
#ifndef ZM_CATALOG_COMMON_H
#define ZM_CATALOG_COMMON_H

#include "core/cuda.h"
#include "core/internal.h"
#include "kernels/catalog/cuda_ops.h"
#include "zmlx/ops.h"
#include <math.h>
#include <string.h>

#define ZM_DT(t) (1u << (t))
#define ZM_DT_FLOAT (ZM_DT(ZM_F32) | ZM_DT(ZM_F16) | ZM_DT(ZM_BF16))

/* t must be non-NULL, contiguous, of a dtype in mask, on device dev. */
zm_status zm__arg(const char *op, const char *what, const zm_tensor *t, unsigned mask, zm_device dev);
/* a and b have the same shape. */
zm_status zm__same_shape(const char *op, const char *an, const zm_tensor *a, const char *bn,
                         const zm_tensor *b);
/* t is [..., n] with the given number of rows overall; a shape message otherwise. */
zm_status zm__rows_cols(const char *op, const char *what, const zm_tensor *t, int64_t rows, int64_t cols);
/* t has exactly numel elements. */
zm_status zm__numel(const char *op, const char *what, const zm_tensor *t, int64_t n);
/* The CUDA path: ZM_ERR_NO_DEVICE when built without it. */
zm_status zm__no_cuda(const char *op);

#ifdef ZM_HAVE_CUDA
/* zm_cuda_init first: it makes the library's device current on this thread,
 * so a <<<>>> launch from a fresh thread runs on that device, not on the
 * runtime's default device 0. */
#define ZM_CUDA_CALL(op, call) \
    do { ZM_TRY(zm_cuda_init()); return (call); } while (0)
#else
#define ZM_CUDA_CALL(op, call) return zm__no_cuda(op)
#endif

static inline float zm__ld(const void *p, zm_dtype t, int64_t i) {
    switch (t) {
    case ZM_F16: return zm_f16_to_f32(((const uint16_t *)p)[i]);
    case ZM_BF16: return zm_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}
static inline void zm__st(void *p, zm_dtype t, int64_t i, float v) {
    switch (t) {
    case ZM_F16: ((uint16_t *)p)[i] = zm_f32_to_f16(v); break;
    case ZM_BF16: ((uint16_t *)p)[i] = zm_f32_to_bf16(v); break;
    default: ((float *)p)[i] = v;
    }
}
/* round a float to the dtype and back (the stock graph's per-op rounding) */
static inline float zm__rnd(zm_dtype t, float v) {
    if (t == ZM_F16) return zm_f16_to_f32(zm_f32_to_f16(v));
    if (t == ZM_BF16) return zm_bf16_to_f32(zm_f32_to_bf16(v));
    return v;
}

/* fn(ctx, r0, r1) over [0, n) split across the default pool (serial when
 * the work is small: a pool wake costs more than a tiny job). */
typedef void (*zm__range_fn)(void *ctx, int64_t r0, int64_t r1);
void zm__par(int64_t n, int64_t work_per_item, zm__range_fn fn, void *ctx);

static inline float zm__silu(float x) { return x / (1.0f + expf(-x)); }
static inline float zm__gelu(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); /* erfc: no cancellation for x << 0 */ }

/* Philox4x32-10 (Salmon et al. 2011), as in curand and jax. */
static inline void zm__philox(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[1] = (uint32_t)p1; c[3] = (uint32_t)p0; c[0] = n0; c[2] = n2;
        /* note: outputs are (hi1^c1^k0, lo1, hi0^c3^k1, lo0) */
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
}
static inline float zm__philox_u01(uint64_t seed, uint64_t i) {
    uint64_t blk = i >> 2;
    uint32_t c[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 0, 0};
    zm__philox(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    return (float)(c[i & 3] >> 8) * (1.0f / 16777216.0f);
}

#endif
