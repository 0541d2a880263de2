/* Image ops on NHWC f32: bilinear resize (half-pixel centres like
 * PyTorch align_corners=False, or corner-aligned) and depthwise 3x3
 * convolution (stride 1, zero padding 1, optional bias). CUDA in image.cu.
 * Checked against float64 references by tests/test_catalog_image.c. */
#include "kernels/catalog/common.h"

static void zm__src_coord(int64_t o, int64_t in, int64_t out, int align, int64_t *i0, int64_t *i1, float *w) {
    float s = align ? (out > 1 ? (float)o * (float)(in - 1) / (float)(out - 1) : 0.0f)
                    : ((float)o + 0.5f) * ((float)in / (float)out) - 0.5f;
    if (s < 0) s = 0;
    int64_t a = (int64_t)s;
    if (a > in - 1) a = in - 1;
    *i0 = a; *i1 = a + 1 < in ? a + 1 : in - 1; *w = s - (float)a;
}

zm_status zm_op_resize_bilinear(zm_tensor *out, const zm_tensor *x, int align) {
    const char *n = "resize_bilinear";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    if (x->ndim != 4 || out->ndim != 4 || out->shape[0] != x->shape[0] || out->shape[3] != x->shape[3])
        return zm__err(ZM_ERR_SHAPE, "%s: x and out must be [N, H, W, C] with equal N and C", n);
    int64_t N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3], Ho = out->shape[1], Wo = out->shape[2];
    if (H < 1 || W < 1) return zm__err(ZM_ERR_SHAPE, "%s: empty input image", n);
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_resize_bilinear(out->data, x->data, N, H, W, C, Ho, Wo, align != 0));
    const float *xp = x->data;
    float *op = out->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t y = 0; y < Ho; y++) {
            int64_t y0, y1, x0, x1;
            float wy, wx;
            zm__src_coord(y, H, Ho, align, &y0, &y1, &wy);
            for (int64_t xx = 0; xx < Wo; xx++) {
                zm__src_coord(xx, W, Wo, align, &x0, &x1, &wx);
                const float *a = xp + ((b * H + y0) * W + x0) * C, *bq = xp + ((b * H + y0) * W + x1) * C,
                            *c = xp + ((b * H + y1) * W + x0) * C, *dq = xp + ((b * H + y1) * W + x1) * C;
                float *o = op + ((b * Ho + y) * Wo + xx) * C;
                for (int64_t ch = 0; ch < C; ch++) {
                    float top = a[ch] + (bq[ch] - a[ch]) * wx, bot = c[ch] + (dq[ch] - c[ch]) * wx;
                    o[ch] = top + (bot - top) * wy;
                }
            }
        }
    return ZM_OK;
}

zm_status zm_op_depthwise_conv3x3(zm_tensor *out, const zm_tensor *x, const zm_tensor *w, const zm_tensor *bias) {
    const char *n = "depthwise_conv3x3";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "w", w, ZM_DT(ZM_F32), d));
    if (x->ndim != 4) return zm__err(ZM_ERR_SHAPE, "%s: x must be [N, H, W, C]", n);
    ZM_TRY(zm__same_shape(n, "out", out, "x", x));
    int64_t N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    ZM_TRY(zm__numel(n, "w", w, 9 * C));
    if (bias) { ZM_TRY(zm__arg(n, "bias", bias, ZM_DT(ZM_F32), d)); ZM_TRY(zm__numel(n, "bias", bias, C)); }
    const float *bp = bias ? bias->data : NULL;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_dwconv3x3(out->data, x->data, w->data, bp, N, H, W, C));
    const float *xp = x->data, *wp = w->data;
    float *op = out->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t xx = 0; xx < W; xx++)
                for (int64_t ch = 0; ch < C; ch++) {
                    float s = bp ? bp[ch] : 0.0f;
                    for (int dy = 0; dy < 3; dy++)
                        for (int dx = 0; dx < 3; dx++) {
                            int64_t yy = y + dy - 1, xs = xx + dx - 1;
                            if (yy < 0 || yy >= H || xs < 0 || xs >= W) continue;
                            s += xp[((b * H + yy) * W + xs) * C + ch] * wp[(dy * 3 + dx) * C + ch];
                        }
                    op[((b * H + y) * W + xx) * C + ch] = s;
                }
    return ZM_OK;
}
