// Transformer element-wise fusions on CUDA: a 2-D grid (rows x column tiles)
// so row strides (split form, gradients into halves of dx) cost nothing;
// dropout over a flat index with the Philox stream of common.h.
// Checked by tests/test_catalog_transformer.c.
#include "kernels/catalog/cu_common.cuh"

__device__ __forceinline__ float act_f(int act, float x) { return act ? gelu_f(x) : silu_f(x); }
__device__ __forceinline__ float dact_f(int act, float x) {
    if (act) return 0.5f * erfcf(-x * 0.70710678118654752f) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
    float s = 1.f / (1.f + expf(-x));
    return s * (1.f + x * (1.f - s));
}

// ---- kernels ----------------------------------------------------------------
template <typename T>
__global__ void k_glu(T *out, int64_t ors, const T *gate, int64_t grs, const T *up, int64_t urs, const float *bg,
                      const float *bu, const T *res, int64_t F, int act) {
    int64_t r = blockIdx.y;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < F; i += (int64_t)gridDim.x * blockDim.x) {
        float a = ld(gate, r * grs + i), u = ld(up, r * urs + i);
        if (bg) { a += bg[i]; u += bu[i]; }
        float y = act_f(act, a) * u;
        if (res) y += ld(res, r * F + i);
        st(out, r * ors + i, y);
    }
}

template <typename T>
__global__ void k_glu_grad(T *dg, int64_t dgrs, T *du, int64_t durs, const T *gate, int64_t grs, const T *up,
                           int64_t urs, const T *g, int64_t F, int act) {
    int64_t r = blockIdx.y;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < F; i += (int64_t)gridDim.x * blockDim.x) {
        float a = ld(gate, r * grs + i), u = ld(up, r * urs + i), gv = ld(g, r * F + i);
        st(dg, r * dgrs + i, gv * u * dact_f(act, a));
        st(du, r * durs + i, gv * act_f(act, a));
    }
}

template <typename T>
__global__ void k_dropout(T *out, const T *x, int64_t n, float p, uint64_t seed) {
    float keep = 1.f / (1.f - p), u[4];
    int64_t nq = (n + 3) / 4; // one Philox block (4 uniforms) per thread and step
    for (int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; q < nq; q += (int64_t)gridDim.x * blockDim.x) {
        philox_u01x4(seed, (uint64_t)q, u);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t i = 4 * q + j;
            if (i < n) st(out, i, u[j] >= p ? ld(x, i) * keep : 0.f);
        }
    }
}

// ---- entry points -----------------------------------------------------------
static dim3 glu_grid(int64_t rows, int64_t F) {
    int64_t gx = (F + 255) / 256;
    return dim3((unsigned)(gx > 1024 ? 1024 : gx), (unsigned)rows);
}

extern "C" zm_status zm_cuda_glu(void *out, int64_t ors, const void *gate, int64_t grs, const void *up, int64_t urs,
                                 const float *bg, const float *bu, const void *res, int dt, int64_t rows, int64_t F, int act) {
    if (rows == 0 || F == 0) return ZM_OK;
    if (rows > 65535) { // grid.y limit: split into chunks of rows
        for (int64_t r0 = 0; r0 < rows; r0 += 65535) {
            int64_t n = rows - r0 < 65535 ? rows - r0 : 65535;
            int64_t es = dt == ZM_F32 ? 4 : 2;
            zm_status s = zm_cuda_glu((char *)out + r0 * ors * es, ors, (const char *)gate + r0 * grs * es, grs,
                                      (const char *)up + r0 * urs * es, urs, bg, bu,
                                      res ? (const char *)res + r0 * F * es : NULL, dt, n, F, act);
            if (s) return s;
        }
        return ZM_OK;
    }
    ZM_DISPATCH_FLOAT(dt, k_glu<T><<<glu_grid(rows, F), 256>>>((T *)out, ors, (const T *)gate, grs, (const T *)up, urs, bg,
                                                               bu, (const T *)res, F, act));
    return zm_cuda_check_launch("k_glu");
}

extern "C" zm_status zm_cuda_glu_grad(void *dg, int64_t dgrs, void *du, int64_t durs, const void *gate, int64_t grs,
                                      const void *up, int64_t urs, const void *g, int dt, int64_t rows, int64_t F, int act) {
    if (rows == 0 || F == 0) return ZM_OK;
    int64_t es = dt == ZM_F32 ? 4 : 2;
    for (int64_t r0 = 0; r0 < rows; r0 += 65535) {
        int64_t n = rows - r0 < 65535 ? rows - r0 : 65535;
        ZM_DISPATCH_FLOAT(dt, k_glu_grad<T><<<glu_grid(n, F), 256>>>(
                                  (T *)((char *)dg + r0 * dgrs * es), dgrs, (T *)((char *)du + r0 * durs * es), durs,
                                  (const T *)((const char *)gate + r0 * grs * es), grs,
                                  (const T *)((const char *)up + r0 * urs * es), urs,
                                  (const T *)((const char *)g + r0 * F * es), F, act));
        zm_status s = zm_cuda_check_launch("k_glu_grad");
        if (s) return s;
    }
    return ZM_OK;
}

extern "C" zm_status zm_cuda_dropout(void *out, const void *x, int dt, int64_t n, float p, uint64_t seed) {
    if (n == 0) return ZM_OK;
    unsigned g = zm_grid((n + 3) / 4, 256);
    if (g > 65536) g = 65536;
    ZM_DISPATCH_FLOAT(dt, k_dropout<T><<<g, 256>>>((T *)out, (const T *)x, n, p, seed));
    return zm_cuda_check_launch("k_dropout");
}
