/* Image kernels on NHWC f32 tensors: bilinear resize (half-pixel centres as
 * PyTorch's align_corners=False / OpenCV, or corner-aligned) and a 3x3
 * depthwise convolution (stride 1, zero padding 1, optional bias). Channels
 * are innermost, so every output pixel reads C contiguous floats per tap.
 * CUDA in image.cu. Checked against float64 references by
 * tests/test_catalog_image.c (run: build/tests/test_catalog_image). */
#include "kernels/catalog/common.h"

/* Source coordinate of output index o along an axis of in -> out samples:
 * the lower tap, the upper tap and the weight of the upper one. */
static inline void zm__bl_src(int64_t o, int64_t in, int64_t out, int align, int64_t *i0, int64_t *i1, float *l) {
    float s;
    if (align) s = out > 1 ? (float)o * (float)(in - 1) / (float)(out - 1) : 0.0f;
    else {
        s = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
        if (s < 0) s = 0; /* PyTorch clamps the left border instead of extrapolating */
    }
    int64_t a = (int64_t)s;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l = s - (float)a;
}

typedef struct { float *out; const float *x; int64_t H, W, C, Ho, Wo; int align; } zm__resize_ctx;

static void zm__resize_rows(void *cv, int64_t r0, int64_t r1) { /* one row = one (n, yo) */
    const zm__resize_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / c->Ho, yo = r % c->Ho, y0, y1;
        float ly;
        zm__bl_src(yo, c->H, c->Ho, c->align, &y0, &y1, &ly);
        const float *img = c->x + n * c->H * c->W * c->C;
        for (int64_t xo = 0; xo < c->Wo; xo++) {
            int64_t x0, x1;
            float lx;
            zm__bl_src(xo, c->W, c->Wo, c->align, &x0, &x1, &lx);
            const float *a = img + (y0 * c->W + x0) * c->C, *b = img + (y0 * c->W + x1) * c->C,
                        *d = img + (y1 * c->W + x0) * c->C, *e = img + (y1 * c->W + x1) * c->C;
            float *o = c->out + (r * c->Wo + xo) * c->C;
            for (int64_t ch = 0; ch < c->C; ch++) {
                float top = a[ch] + lx * (b[ch] - a[ch]), bot = d[ch] + lx * (e[ch] - d[ch]);
                o[ch] = top + ly * (bot - top);
            }
        }
    }
}

zm_status zm_op_resize_bilinear(zm_tensor *out, const zm_tensor *x, int align_corners) {
    const char *n = "resize_bilinear";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    if (x->ndim != 4 || out->ndim != 4)
        return zm__err(ZM_ERR_SHAPE, "%s: x and out must be NHWC (4 dims), have %d and %d", n, x->ndim, out->ndim);
    int64_t N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3], Ho = out->shape[1], Wo = out->shape[2];
    if (out->shape[0] != N || out->shape[3] != C)
        return zm__err(ZM_ERR_SHAPE, "%s: out is [%lld, ., ., %lld], x is [%lld, ., ., %lld]", n,
                       (long long)out->shape[0], (long long)out->shape[3], (long long)N, (long long)C);
    if ((H == 0 || W == 0) && Ho * Wo > 0)
        return zm__err(ZM_ERR_SHAPE, "%s: x is empty (%lld x %lld) but out is not", n, (long long)H, (long long)W);
    if (N * Ho * Wo * C == 0) return ZM_OK;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_resize_bilinear(out->data, x->data, N, H, W, C, Ho, Wo, align_corners != 0));
    zm__resize_ctx c = {out->data, x->data, H, W, C, Ho, Wo, align_corners != 0};
    zm__par(N * Ho, Wo * C, zm__resize_rows, &c);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
typedef struct { float *out; const float *x, *w, *b; int64_t H, W, C; } zm__dw_ctx;

static void zm__dw_rows(void *cv, int64_t r0, int64_t r1) { /* one row = one (n, y) */
    const zm__dw_ctx *c = cv;
    int64_t H = c->H, W = c->W, C = c->C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / H, y = r % H;
        for (int64_t xx = 0; xx < W; xx++) {
            float *o = c->out + (r * W + xx) * C;
            for (int64_t ch = 0; ch < C; ch++) o[ch] = c->b ? c->b[ch] : 0.0f;
            for (int dy = 0; dy < 3; dy++) {
                int64_t yy = y + dy - 1;
                if (yy < 0 || yy >= H) continue;
                for (int dx = 0; dx < 3; dx++) {
                    int64_t xs = xx + dx - 1;
                    if (xs < 0 || xs >= W) continue;
                    const float *src = c->x + ((n * H + yy) * W + xs) * C, *wt = c->w + (dy * 3 + dx) * C;
                    for (int64_t ch = 0; ch < C; ch++) o[ch] += src[ch] * wt[ch];
                }
            }
        }
    }
}

zm_status zm_op_depthwise_conv3x3(zm_tensor *out, const zm_tensor *x, const zm_tensor *w, const zm_tensor *bias) {
    const char *n = "depthwise_conv3x3";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "w", w, ZM_DT(ZM_F32), d));
    if (x->ndim != 4) return zm__err(ZM_ERR_SHAPE, "%s: x must be NHWC (4 dims), has %d", n, x->ndim);
    int64_t N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    if (out->ndim != 4 || out->shape[0] != N || out->shape[1] != H || out->shape[2] != W || out->shape[3] != C)
        return zm__err(ZM_ERR_SHAPE, "%s: out must have x's shape [%lld, %lld, %lld, %lld]", n, (long long)N,
                       (long long)H, (long long)W, (long long)C);
    if (w->ndim != 3 || w->shape[0] != 3 || w->shape[1] != 3 || w->shape[2] != C)
        return zm__err(ZM_ERR_SHAPE, "%s: w must be [3, 3, %lld]", n, (long long)C);
    if (bias) {
        ZM_TRY(zm__arg(n, "bias", bias, ZM_DT(ZM_F32), d));
        ZM_TRY(zm__numel(n, "bias", bias, C));
    }
    if (N * H * W * C == 0) return ZM_OK;
    const float *b = bias ? bias->data : NULL;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_depthwise_conv3x3(out->data, x->data, w->data, b, N, H, W, C));
    zm__dw_ctx c = {out->data, x->data, w->data, b, H, W, C};
    zm__par(N * H, W * C * 9, zm__dw_rows, &c);
    return ZM_OK;
}
