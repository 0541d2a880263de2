// Image kernels on CUDA (NHWC f32): one thread per output element, channels
// innermost so a warp reads and writes contiguous channel runs of each tap.
// Same source-coordinate rule as image.c. Checked by
// tests/test_catalog_image.c (run: build/tests/test_catalog_image).
#include "kernels/catalog/cu_common.cuh"

// ---- kernels ----------------------------------------------------------------
__device__ __forceinline__ void bl_src(int64_t o, int64_t in, int64_t out, int align, int64_t &i0, int64_t &i1,
                                       float &l) {
    float s;
    if (align) s = out > 1 ? (float)o * (float)(in - 1) / (float)(out - 1) : 0.f;
    else {
        s = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
        if (s < 0) s = 0;
    }
    int64_t a = (int64_t)s;
    if (a > in - 1) a = in - 1;
    i0 = a;
    i1 = a < in - 1 ? a + 1 : a;
    l = s - (float)a;
}

__global__ void k_resize_bilinear(float *out, const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t Ho,
                                  int64_t Wo, int align) {
    int64_t total = N * Ho * Wo * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i % C, p = i / C, xo = p % Wo, q = p / Wo, yo = q % Ho, n = q / Ho, y0, y1, x0, x1;
        float ly, lx;
        bl_src(yo, H, Ho, align, y0, y1, ly);
        bl_src(xo, W, Wo, align, x0, x1, lx);
        const float *img = x + n * H * W * C + ch;
        float a = img[(y0 * W + x0) * C], b = img[(y0 * W + x1) * C], d = img[(y1 * W + x0) * C],
              e = img[(y1 * W + x1) * C];
        float top = a + lx * (b - a), bot = d + lx * (e - d);
        out[i] = top + ly * (bot - top);
    }
}

__global__ void k_depthwise_conv3x3(float *out, const float *x, const float *w, const float *b, int64_t N, int64_t H,
                                    int64_t W, int64_t C) {
    int64_t total = N * H * W * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i % C, p = i / C, xx = p % W, q = p / W, y = q % H, n = q / H;
        float acc = b ? b[ch] : 0.f;
#pragma unroll
        for (int dy = 0; dy < 3; dy++) {
            int64_t yy = y + dy - 1;
            if (yy < 0 || yy >= H) continue;
#pragma unroll
            for (int dx = 0; dx < 3; dx++) {
                int64_t xs = xx + dx - 1;
                if (xs < 0 || xs >= W) continue;
                acc += x[((n * H + yy) * W + xs) * C + ch] * w[(dy * 3 + dx) * C + ch];
            }
        }
        out[i] = acc;
    }
}

// ---- entry points -----------------------------------------------------------
static unsigned img_grid(int64_t n) {
    unsigned g = zm_grid(n, 256);
    return g > 65536 ? 65536 : g;
}

extern "C" zm_status zm_cuda_resize_bilinear(float *out, const float *x, int64_t N, int64_t H, int64_t W, int64_t C,
                                             int64_t Ho, int64_t Wo, int align) {
    int64_t n = N * Ho * Wo * C;
    if (n == 0) return ZM_OK;
    k_resize_bilinear<<<img_grid(n), 256>>>(out, x, N, H, W, C, Ho, Wo, align);
    return zm_cuda_check_launch("k_resize_bilinear");
}

extern "C" zm_status zm_cuda_depthwise_conv3x3(float *out, const float *x, const float *w, const float *b, int64_t N,
                                               int64_t H, int64_t W, int64_t C) {
    int64_t n = N * H * W * C;
    if (n == 0) return ZM_OK;
    k_depthwise_conv3x3<<<img_grid(n), 256>>>(out, x, w, b, N, H, W, C);
    return zm_cuda_check_launch("k_depthwise_conv3x3");
}
