/* Catalog image ops: bilinear resize NHWC (up, down, odd sizes, both corner
 * conventions) and depthwise 3x3 convolution (borders, bias), against
 * float64 references. CPU and CUDA. Run: build/tests/test_catalog_image. */
#include "catalog_test.h"

static double sample(const float *x, int64_t H, int64_t W, int64_t C, int64_t b, double sy, double sx, int64_t c) {
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
    if (y0 > H - 1) y0 = H - 1;
    if (x0 > W - 1) x0 = W - 1;
    int64_t y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
    double wy = sy - y0, wx = sx - x0;
#define X(yy, xx) (double)x[((b * H + (yy)) * W + (xx)) * C + c]
    return (1 - wy) * ((1 - wx) * X(y0, x0) + wx * X(y0, x1)) + wy * ((1 - wx) * X(y1, x0) + wx * X(y1, x1));
#undef X
}

static void t_resize(zm_device dev) {
    const int64_t sizes[][4] = {{7, 5, 14, 9}, {16, 16, 5, 3}, {1, 1, 3, 4}, {9, 13, 9, 13}};
    for (int si = 0; si < 4; si++)
        for (int align = 0; align < 2; align++) {
            int64_t N = 2, C = 3, H = sizes[si][0], W = sizes[si][1], Ho = sizes[si][2], Wo = sizes[si][3];
            int64_t shx[4] = {N, H, W, C}, sho[4] = {N, Ho, Wo, C}, no = N * Ho * Wo * C;
            float *x = zc_f(N * H * W * C), *o = zc_f(no);
            double *ref = zc_d(no);
            zt_fill_normal(x, N * H * W * C, 1.0);
            for (int64_t b = 0; b < N; b++)
                for (int64_t y = 0; y < Ho; y++)
                    for (int64_t xx = 0; xx < Wo; xx++)
                        for (int64_t c = 0; c < C; c++) {
                            /* source coordinates as the kernels define them (float), the blend in double */
                            double sy = align ? (Ho > 1 ? (float)y * (float)(H - 1) / (float)(Ho - 1) : 0) : ((float)y + 0.5f) * ((float)H / (float)Ho) - 0.5f;
                            double sx = align ? (Wo > 1 ? (float)xx * (float)(W - 1) / (float)(Wo - 1) : 0) : ((float)xx + 0.5f) * ((float)W / (float)Wo) - 0.5f;
                            ref[((b * Ho + y) * Wo + xx) * C + c] = sample(x, H, W, C, b, sy, sx, c);
                        }
            zm_tensor *tx = zc_newf(dev, ZM_F32, 4, shx, x), *to = zc_out(dev, ZM_F32, 4, sho);
            ZT_OK(zm_op_resize_bilinear(to, tx, align));
            zc_getf(o, to);
            ZT_CHECK(zt_close("resize_bilinear", o, ref, no, 1e-4), "resize %lldx%lld -> %lldx%lld align %d", (long long)H, (long long)W,
                     (long long)Ho, (long long)Wo, align);
            zm_tensor *tt[] = {tx, to};
            zc_free(2, tt);
            free(x); free(o); free(ref);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_resize)

static void t_dwconv(zm_device dev) {
    for (int hb = 0; hb < 2; hb++) {
        int64_t N = 2, H = 9, W = 1 + 6 * hb, C = 35, sh[4] = {N, H, W, C}, n = N * H * W * C, nw = 9 * C;
        float *x = zc_f(n), *w = zc_f(nw), *b = zc_f(C), *o = zc_f(n);
        double *ref = zc_d(n);
        zt_fill_normal(x, n, 1.0); zt_fill_normal(w, nw, 0.5); zt_fill_normal(b, C, 0.5);
        for (int64_t bb = 0; bb < N; bb++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t xx = 0; xx < W; xx++)
                    for (int64_t c = 0; c < C; c++) {
                        double s = hb ? b[c] : 0;
                        for (int dy = -1; dy <= 1; dy++)
                            for (int dx = -1; dx <= 1; dx++)
                                if (y + dy >= 0 && y + dy < H && xx + dx >= 0 && xx + dx < W)
                                    s += (double)x[((bb * H + y + dy) * W + xx + dx) * C + c] * w[((dy + 1) * 3 + dx + 1) * C + c];
                        ref[((bb * H + y) * W + xx) * C + c] = s;
                    }
        int64_t shw[3] = {3, 3, C};
        zm_tensor *tx = zc_newf(dev, ZM_F32, 4, sh, x), *tw = zc_newf(dev, ZM_F32, 3, shw, w), *tb = zc_newf(dev, ZM_F32, 1, &C, b),
                  *to = zc_out(dev, ZM_F32, 4, sh);
        ZT_OK(zm_op_depthwise_conv3x3(to, tx, tw, hb ? tb : NULL));
        zc_getf(o, to);
        ZT_CHECK(zt_close("depthwise_conv3x3", o, ref, n, 1e-4), "dwconv W=%lld bias %d", (long long)W, hb);
        zm_tensor *tt[] = {tx, tw, tb, to};
        zc_free(4, tt);
        free(x); free(w); free(b); free(o); free(ref);
    }
}
ZC_DEVICES(t_dwconv)

int main(void) {
    ZC_RUN(t_resize);
    ZC_RUN(t_dwconv);
    return zt_finish();
}
