// Image ops on CUDA, NHWC: one thread per output element (channels fastest,
// so neighbouring threads read neighbouring channels). Checked by
// tests/test_catalog_image.c.
#include "kernels/catalog/cu_common.cuh"

__device__ __forceinline__ void src_coord(int64_t o, int64_t in, int64_t out, int align, int64_t *i0, int64_t *i1, float *w) {
    float s = align ? (out > 1 ? __fdiv_rn(__fmul_rn((float)o, (float)(in - 1)), (float)(out - 1)) : 0.0f)
                    : __fsub_rn(__fmul_rn(__fadd_rn((float)o, 0.5f), __fdiv_rn((float)in, (float)out)), 0.5f);
    if (s < 0) s = 0;
    int64_t a = (int64_t)s;
    if (a > in - 1) a = in - 1;
    *i0 = a; *i1 = a + 1 < in ? a + 1 : in - 1; *w = s - (float)a;
}

// I: the index type; 32-bit when the tensors are small enough (integer
// division by C, W, H dominates these kernels otherwise)
template <typename I>
__global__ void k_resize_bilinear(float *out, const float *x, I N, I H, I W, I C, I Ho, I Wo, int align) {
    I n = N * Ho * Wo * C;
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (I)gridDim.x * blockDim.x) {
        I q = t / C, ch = t - q * C, xx = q % Wo, q2 = q / Wo, y = q2 % Ho, b = q2 / Ho;
        int64_t y0, y1, x0, x1;
        float wy, wx;
        src_coord(y, H, Ho, align, &y0, &y1, &wy);
        src_coord(xx, W, Wo, align, &x0, &x1, &wx);
        float a = x[((b * H + y0) * W + x0) * C + ch], bq = x[((b * H + y0) * W + x1) * C + ch];
        float c = x[((b * H + y1) * W + x0) * C + ch], d = x[((b * H + y1) * W + x1) * C + ch];
        float top = a + (bq - a) * wx, bot = c + (d - c) * wx;
        out[t] = top + (bot - top) * wy;
    }
}

template <typename I>
__global__ void k_dwconv3x3(float *out, const float *x, const float *w, const float *bias, I N, I H, I W, I C) {
    I n = N * H * W * C;
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (I)gridDim.x * blockDim.x) {
        I q = t / C, ch = t - q * C, xx = q % W, q2 = q / W, y = q2 % H, b = q2 / H;
        float s = bias ? bias[ch] : 0.f;
#pragma unroll
        for (int dy = 0; dy < 3; dy++)
#pragma unroll
            for (int dx = 0; dx < 3; dx++) {
                I yy = y + dy - 1, xs = xx + dx - 1;
                if (yy < 0 || yy >= H || xs < 0 || xs >= W) continue;
                s += x[((b * H + yy) * W + xs) * C + ch] * w[(dy * 3 + dx) * C + ch];
            }
        out[t] = s;
    }
}

static unsigned g1d(int64_t n) { unsigned g = zm_grid(n, 256); return g > 65536 ? 65536 : g; }
extern "C" zm_status zm_cuda_resize_bilinear(float *out, const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t Ho,
                                             int64_t Wo, int align) {
    if (!N || !Ho || !Wo || !C) return ZM_OK;
    if (N * Ho * Wo * C < 2147483647 && N * H * W * C < 2147483647)
        k_resize_bilinear<int><<<g1d(N * Ho * Wo * C), 256>>>(out, x, (int)N, (int)H, (int)W, (int)C, (int)Ho, (int)Wo, align);
    else k_resize_bilinear<int64_t><<<g1d(N * Ho * Wo * C), 256>>>(out, x, N, H, W, C, Ho, Wo, align);
    return zm_cuda_check_launch("k_resize_bilinear");
}
extern "C" zm_status zm_cuda_dwconv3x3(float *out, const float *x, const float *w, const float *b, int64_t N, int64_t H, int64_t W,
                                       int64_t C) {
    if (!N || !H || !W || !C) return ZM_OK;
    if (N * H * W * C < 2147483647) k_dwconv3x3<int><<<g1d(N * H * W * C), 256>>>(out, x, w, b, (int)N, (int)H, (int)W, (int)C);
    else k_dwconv3x3<int64_t><<<g1d(N * H * W * C), 256>>>(out, x, w, b, N, H, W, C);
    return zm_cuda_check_launch("k_dwconv3x3");
}
