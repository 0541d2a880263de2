/* Independent cross-check of the catalog's image kernels (written apart from
 * image.c and test_catalog_image.c, from ops.h alone): resize_bilinear (half-pixel and corner-aligned,
 * up- and down-sampling, 1-pixel edges) and depthwise_conv3x3 (with and
 * without bias, borders) on NHWC f32 against float64 references, CPU and
 * CUDA; identity cases exact; bad shapes give statuses.
 * Run: build/tests/test_catalog_ximage. */
#include "catalog_test.h"
#include "catalog_close.h"

static void src_ref(int64_t o, int64_t in, int64_t out, int align, int64_t *i0, int64_t *i1, double *l) {
    double s = align ? (out > 1 ? (double)o * (in - 1) / (out - 1) : 0) : (o + 0.5) * in / out - 0.5;
    if (s < 0) s = 0;
    int64_t a = (int64_t)floor(s);
    if (a > in - 1) a = in - 1;
    *i0 = a; *i1 = a < in - 1 ? a + 1 : a; *l = s - a;
}

static void t_resize(zm_device dev) {
    /* {N, H, W, C, Ho, Wo} */
    const int64_t cases[][6] = {{1, 1, 1, 1, 1, 1}, {2, 5, 7, 3, 11, 4}, {1, 8, 8, 33, 3, 17}, {3, 1, 9, 5, 4, 1},
                                {1, 13, 6, 64, 26, 12}, {2, 31, 17, 7, 31, 17}, {1, 4, 4, 1, 100, 1}};
    for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++)
        for (int align = 0; align < 2; align++) {
            const int64_t *c = cases[ci];
            int64_t N = c[0], H = c[1], W = c[2], C = c[3], Ho = c[4], Wo = c[5];
            int64_t sx[4] = {N, H, W, C}, so[4] = {N, Ho, Wo, C}, nx = N * H * W * C, no = N * Ho * Wo * C;
            float *x = zc_f(nx), *o = zc_f(no);
            double *ref = zc_d(no), *mag = zc_d(no);
            zt_fill_normal(x, nx, 1.0);
            for (int64_t n = 0; n < N; n++)
                for (int64_t yo = 0; yo < Ho; yo++)
                    for (int64_t xo = 0; xo < Wo; xo++) {
                        int64_t y0, y1, x0, x1;
                        double ly, lx;
                        src_ref(yo, H, Ho, align, &y0, &y1, &ly);
                        src_ref(xo, W, Wo, align, &x0, &x1, &lx);
                        for (int64_t ch = 0; ch < C; ch++) {
#define X(y, xx) (double)x[((n * H + (y)) * W + (xx)) * C + ch]
                            ref[((n * Ho + yo) * Wo + xo) * C + ch] = (1 - ly) * ((1 - lx) * X(y0, x0) + lx * X(y0, x1)) +
                                                                      ly * ((1 - lx) * X(y1, x0) + lx * X(y1, x1));
                            mag[((n * Ho + yo) * Wo + xo) * C + ch] = fabs(X(y0, x0)) + fabs(X(y0, x1)) + fabs(X(y1, x0)) + fabs(X(y1, x1));
#undef X
                        }
                    }
            zm_tensor *tx = zc_newf(dev, ZM_F32, 4, sx, x), *to = zc_out(dev, ZM_F32, 4, so);
            ZT_OK(zm_op_resize_bilinear(to, tx, align));
            zc_getf(o, to);
            char what[96];
            snprintf(what, sizeof what, "resize %lldx%lldx%lld -> %lldx%lld align %d", (long long)H, (long long)W,
                     (long long)C, (long long)Ho, (long long)Wo, align);
            ZT_CHECK(zc_close_mag(what, o, ref, mag, no, 1e-5), "%s", what);
            if (H == Ho && W == Wo) /* same size: every sample lands on a pixel centre */
                ZT_CHECK(!memcmp(o, x, sizeof(float) * (size_t)nx), "%s: identity resize not exact", what);
            zm_tensor *tt[] = {tx, to};
            zc_free(2, tt);
            free(x); free(o); free(ref); free(mag);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_resize)

static void t_dwconv(zm_device dev) {
    const int64_t cases[][4] = {{1, 1, 1, 1}, {2, 5, 7, 3}, {1, 9, 4, 33}, {3, 2, 1, 64}, {1, 17, 23, 129}};
    for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++)
        for (int hb = 0; hb < 2; hb++) {
            int64_t N = cases[ci][0], H = cases[ci][1], W = cases[ci][2], C = cases[ci][3];
            int64_t sx[4] = {N, H, W, C}, sw[3] = {3, 3, C}, nx = N * H * W * C;
            float *x = zc_f(nx), *w = zc_f(9 * C), *b = zc_f(C), *o = zc_f(nx);
            double *ref = zc_d(nx), *mag = zc_d(nx);
            zt_fill_normal(x, nx, 1.0); zt_fill_normal(w, 9 * C, 0.5); zt_fill_normal(b, C, 1.0);
            for (int64_t n = 0; n < N; n++)
                for (int64_t y = 0; y < H; y++)
                    for (int64_t xx = 0; xx < W; xx++)
                        for (int64_t ch = 0; ch < C; ch++) {
                            double s = hb ? b[ch] : 0, a = fabs(s);
                            for (int dy = -1; dy <= 1; dy++)
                                for (int dx = -1; dx <= 1; dx++) {
                                    int64_t yy = y + dy, xs = xx + dx;
                                    if (yy < 0 || yy >= H || xs < 0 || xs >= W) continue;
                                    double t = (double)x[((n * H + yy) * W + xs) * C + ch] * w[((dy + 1) * 3 + dx + 1) * C + ch];
                                    s += t; a += fabs(t);
                                }
                            ref[((n * H + y) * W + xx) * C + ch] = s;
                            mag[((n * H + y) * W + xx) * C + ch] = a;
                        }
            zm_tensor *tx = zc_newf(dev, ZM_F32, 4, sx, x), *tw = zc_newf(dev, ZM_F32, 3, sw, w),
                      *tb = zc_newf(dev, ZM_F32, 1, &C, b), *to = zc_out(dev, ZM_F32, 4, sx);
            ZT_OK(zm_op_depthwise_conv3x3(to, tx, tw, hb ? tb : NULL));
            zc_getf(o, to);
            char what[80];
            snprintf(what, sizeof what, "dwconv3x3 %lldx%lldx%lldx%lld bias %d", (long long)N, (long long)H, (long long)W,
                     (long long)C, hb);
            ZT_CHECK(zc_close_mag(what, o, ref, mag, nx, 2e-6), "%s", what);
            zm_tensor *tt[] = {tx, tw, tb, to};
            zc_free(4, tt);
            free(x); free(w); free(b); free(o); free(ref); free(mag);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_dwconv)

static void t_bad(void) {
    int64_t s4[4] = {1, 4, 4, 3}, s4b[4] = {2, 4, 4, 3}, s3[3] = {4, 4, 3}, sw[3] = {3, 3, 2};
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 4, s4), *o2 = zc_out(ZM_CPU, ZM_F32, 4, s4b), *x3 = zc_out(ZM_CPU, ZM_F32, 3, s3),
              *w = zc_out(ZM_CPU, ZM_F32, 3, sw), *xi = zc_out(ZM_CPU, ZM_I32, 4, s4);
    ZT_CHECK(zm_op_resize_bilinear(o2, x, 0) == ZM_ERR_SHAPE, "batch mismatch");
    ZT_CHECK(zm_op_resize_bilinear(x, x3, 0) == ZM_ERR_SHAPE, "3-d input");
    ZT_CHECK(zm_op_resize_bilinear(x, xi, 0) == ZM_ERR_DTYPE, "i32 input");
    ZT_CHECK(zm_op_depthwise_conv3x3(x, x, w, NULL) == ZM_ERR_SHAPE, "weight channels");
    ZT_CHECK(zm_op_depthwise_conv3x3(o2, x, w, NULL) == ZM_ERR_SHAPE, "out shape");
    ZT_CHECK(zm_op_depthwise_conv3x3(x, NULL, w, NULL) == ZM_ERR_INVALID, "NULL x");
    zm_tensor *tt[] = {x, o2, x3, w, xi};
    zc_free(5, tt);
}

int main(void) {
    ZC_RUN(t_resize);
    ZC_RUN(t_dwconv);
    ZT_RUN(t_bad);
    return zt_finish();
}
