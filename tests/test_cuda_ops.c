/* Every CUDA kernel of src/kernels/cuda/ against a scalar float64 reference
 * written here: fresh random inputs, outputs poisoned with NaN, awkward
 * sizes; fused kernels also against the chain of stock kernels they replace
 * (bit-identical, which is what keeps stock and patched decode token-equal).
 * Skipped where no GPU answers. Run: build/tests/test_cuda_ops */
#include "core/cuda.h"
#include "harness.h"
#include "kernels/cuda/ops_cuda.h"
#include "zmlx/core.h"
#include <stdlib.h>
#include <string.h>

#define NEED_GPU()                                                                                 \
    do {                                                                                           \
        if (!zm_cuda_available()) { zt_skip("no GPU"); return; }                                   \
    } while (0)

// ---------------------------------------------------------------------------
// Device helpers
static void *dup_h2d(const void *h, size_t n) {
    void *d = NULL;
    if (zm_cuda_malloc(&d, n ? n : 4) != ZM_OK) return NULL;
    if (h && n) zm_cuda_memcpy_h2d(d, h, n);
    return d;
}
static float *dev_f32(const float *h, int64_t n) { return dup_h2d(h, (size_t)n * 4); }
static float *dev_poison(int64_t n) {
    float *h = malloc((size_t)n * 4);
    zt_poison_f32(h, n);
    float *d = dev_f32(h, n);
    free(h);
    return d;
}
static float *get_f32(const float *d, int64_t n) {
    float *h = malloc((size_t)n * 4);
    ZT_OK(zm_cuda_sync());
    ZT_OK(zm_cuda_memcpy_d2h(h, d, (size_t)n * 4));
    return h;
}
static float *rnd(int64_t n, double scale) {
    float *x = malloc((size_t)n * 4);
    zt_fill_normal(x, n, scale);
    return x;
}
static int check_l2(const char *what, const float *out, const double *ref, int64_t n, double tol) {
    double e = zt_rel_l2(out, ref, n);
    if (!(e < tol)) {
        for (int64_t i = 0; i < n; i++)
            if (!(fabs(out[i] - ref[i]) <= 10 * tol * (fabs(ref[i]) + 1e-3))) {
                ZT_CHECK(0, "%s: rel l2 %g >= %g; first bad [%lld] got %.8g want %.8g", what, e, tol, (long long)i, out[i], ref[i]);
                return 0;
            }
        ZT_CHECK(0, "%s: rel l2 %g >= %g", what, e, tol);
        return 0;
    }
    return 1;
}
static int same_bits(const char *what, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4)) {
            ZT_CHECK(0, "%s: [%lld] fused %.9g stock %.9g differ", what, (long long)i, a[i], b[i]);
            return 0;
        }
    return 1;
}

// ---------------------------------------------------------------------------
// Random weights in ggml layout + their exact values in double
typedef struct { zm_dtype t; int64_t n_mat, rows, cols; void *host; double *val; zm_gpu_mat dev; } wmat;

static void wmat_make(wmat *w, zm_dtype t, int64_t n_mat, int64_t rows, int64_t cols) {
    memset(w, 0, sizeof *w);
    w->t = t; w->n_mat = n_mat; w->rows = rows; w->cols = cols;
    int64_t n = n_mat * rows * cols;
    w->val = malloc((size_t)n * 8);
    double sc = 1.0 / sqrt((double)cols);
    if (t == ZM_Q4_0 || t == ZM_Q8_0) {
        int64_t nb = n / 32, bb = t == ZM_Q4_0 ? 18 : 34;
        uint8_t *h = malloc((size_t)(nb * bb));
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = h + b * bb;
            uint16_t d = zm_f32_to_f16((float)(zt_uniform(0.5, 1.5) * sc / (t == ZM_Q4_0 ? 4 : 64)));
            memcpy(blk, &d, 2);
            double dv = zm_f16_to_f32(d);
            for (int e = 0; e < 32; e++) {
                if (t == ZM_Q4_0) {
                    int q = (int)(zt_rand_u64() % 16);
                    uint8_t *byte = blk + 2 + (e & 15);
                    if (e < 16) *byte = (uint8_t)((*byte & 0xF0) | q);
                    else *byte = (uint8_t)((*byte & 0x0F) | (q << 4));
                    w->val[b * 32 + e] = (q - 8) * dv;
                } else {
                    int q = (int)(zt_rand_u64() % 255) - 127;
                    blk[2 + e] = (uint8_t)(int8_t)q;
                    w->val[b * 32 + e] = q * dv;
                }
            }
        }
        w->host = h;
    } else {
        size_t es = t == ZM_F32 ? 4 : 2;
        uint8_t *h = malloc((size_t)n * es);
        for (int64_t i = 0; i < n; i++) {
            float f = (float)(zt_normal() * sc);
            if (t == ZM_F32) { memcpy(h + i * 4, &f, 4); w->val[i] = f; }
            else if (t == ZM_F16) { uint16_t v = zm_f32_to_f16(f); memcpy(h + i * 2, &v, 2); w->val[i] = zm_f16_to_f32(v); }
            else { uint16_t v = zm_f32_to_bf16(f); memcpy(h + i * 2, &v, 2); w->val[i] = zm_bf16_to_f32(v); }
        }
        w->host = h;
    }
    ZT_OK(zm_gpu_mat_upload(&w->dev, t, w->host, n_mat, rows, cols));
}
static void wmat_free(wmat *w) { free(w->host); free(w->val); zm_gpu_mat_free(&w->dev); }
static double wdot(const wmat *w, int64_t mat, int64_t r, const double *x) {
    const double *row = w->val + (mat * w->rows + r) * w->cols;
    double s = 0;
    for (int64_t c = 0; c < w->cols; c++) s += row[c] * x[c];
    return s;
}
static void ref_rmsnorm(const float *x, const float *g, int64_t n, double eps, double *out) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double sc = 1.0 / sqrt(s / n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * sc * (g ? g[i] : 1.0);
}

static const zm_dtype all_dt[] = {ZM_F32, ZM_F16, ZM_BF16, ZM_Q8_0, ZM_Q4_0};

// ---------------------------------------------------------------------------
static void test_matvec(void) {
    NEED_GPU();
    const int64_t shapes[][2] = {{1, 32}, {7, 96}, {33, 768}, {130, 2048}, {300, 4096}, {5, 1056}};
    for (int di = 0; di < 5; di++)
        for (int si = 0; si < 6; si++) {
            zm_dtype t = all_dt[di];
            int64_t rows = shapes[si][0], cols = shapes[si][1];
            wmat w;
            wmat_make(&w, t, 2, rows, cols);
            float *x = rnd(cols, 1.0), *g = rnd(cols, 0.3), *res = rnd(rows, 1.0);
            for (int64_t i = 0; i < cols; i++) g[i] += 1.0f;
            float *dx = dev_f32(x, cols), *dg = dev_f32(g, cols), *dres = dev_f32(res, rows);
            for (int fused = 0; fused < 2; fused++) {
                float *dy = dev_poison(rows);
                ZT_OK(zm_gpu_matvec(&w.dev, 1, dx, fused ? dg : NULL, 1e-6f, fused ? dres : NULL, dy, NULL));
                float *y = get_f32(dy, rows);
                double *xn = malloc((size_t)cols * 8), *ref = malloc((size_t)rows * 8);
                if (fused) ref_rmsnorm(x, g, cols, 1e-6, xn);
                else for (int64_t i = 0; i < cols; i++) xn[i] = x[i];
                for (int64_t r = 0; r < rows; r++) ref[r] = wdot(&w, 1, r, xn) + (fused ? res[r] : 0);
                char what[96];
                snprintf(what, sizeof what, "matvec %s %lldx%lld%s", zm_dtype_name(t), (long long)rows, (long long)cols, fused ? " norm+res" : "");
                /* per row, the float32 summation bound: |err| <= n u sum|w x|
                 * (u = 2^-24, n = cols + 1 adds, x4 slack for the folded
                 * norm's rounding): a short row whose terms cancel has a tiny
                 * result, so a relative error over the rows would flake */
                for (int64_t r = 0; r < rows; r++) {
                    const double *wr = w.val + ((int64_t)1 * rows + r) * cols;
                    double sa = fused ? fabs(res[r]) : 0;
                    for (int64_t c = 0; c < cols; c++) sa += fabs(wr[c] * xn[c]);
                    const double bound = 4.0 * (double)(cols + 2) * 5.96e-8 * sa + 1e-30;
                    if (!(fabs(y[r] - ref[r]) <= bound)) {
                        ZT_CHECK(0, "%s: row %lld got %.9g want %.9g (bound %.3g)", what, (long long)r, y[r], ref[r], bound);
                        break;
                    }
                }
                free(y); free(xn); free(ref);
                zm_cuda_free(dy);
            }
            zm_cuda_free(dx); zm_cuda_free(dg); zm_cuda_free(dres);
            free(x); free(g); free(res);
            wmat_free(&w);
            if (zt_failed_now()) return;
        }
}

/* Fused input norm must equal rmsnorm kernel then matvec, bit for bit. */
static void test_matvec_multi_and_norm_bits(void) {
    NEED_GPU();
    const int64_t cols = 512, rows[3] = {96, 32, 32};
    wmat w[3];
    for (int i = 0; i < 3; i++) wmat_make(&w[i], ZM_Q8_0, 1, rows[i], cols);
    float *x = rnd(cols, 2.0), *g = rnd(cols, 0.2);
    float *dx = dev_f32(x, cols), *dg = dev_f32(g, cols), *dxn = dev_poison(cols);
    float *dy[3], *ds[3];
    for (int i = 0; i < 3; i++) { dy[i] = dev_poison(rows[i]); ds[i] = dev_poison(rows[i]); }
    const zm_gpu_mat *W[3] = {&w[0].dev, &w[1].dev, &w[2].dev};
    ZT_OK(zm_gpu_matvec_multi(3, W, dx, dg, 1e-5f, dy, NULL));
    ZT_OK(zm_gpu_rmsnorm(dx, dg, 1, cols, 1e-5f, dxn, NULL));
    for (int i = 0; i < 3; i++) ZT_OK(zm_gpu_matvec(W[i], 0, dxn, NULL, 0, NULL, ds[i], NULL));
    double *xn = malloc(cols * 8);
    ref_rmsnorm(x, g, cols, 1e-5, xn);
    for (int i = 0; i < 3; i++) {
        float *a = get_f32(dy[i], rows[i]), *b = get_f32(ds[i], rows[i]);
        double *ref = malloc(rows[i] * 8);
        for (int64_t r = 0; r < rows[i]; r++) ref[r] = wdot(&w[i], 0, r, xn);
        check_l2("matvec_multi", a, ref, rows[i], 2e-5);
        same_bits("matvec norm fused vs rmsnorm+matvec", a, b, rows[i]);
        free(a); free(b); free(ref);
        zm_cuda_free(dy[i]); zm_cuda_free(ds[i]);
        wmat_free(&w[i]);
    }
    zm_cuda_free(dx); zm_cuda_free(dg); zm_cuda_free(dxn);
    free(x); free(g); free(xn);
}

/* The dense matvec's wide kernel (tall single matrices: the output head)
 * against k_matvec, bit for bit, on the same inputs: cols 1024 and 2048,
 * ragged row counts, with and without the folded norm and residual
 * (ZMLX_CUDA_WIDE_MIN lowered so small shapes take it). Each wide run must
 * take the kernel (counted: a silent fallback fails). */
static void set_knob(const char *var, const char *v) {
    if (v) setenv(var, v, 1);
    else unsetenv(var);
}
static void test_matvec_wide(void) {
    NEED_GPU();
    static const zm_dtype dts[2] = {ZM_Q4_0, ZM_Q8_0};
    static const int64_t shapes[][2] = {{1000, 2048}, {777, 1024}, {40000, 2048}, {3, 2048}};
    for (int di = 0; di < 2; di++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int fused = 0; fused < 2; fused++) {
                const int64_t rows = shapes[si][0], cols = shapes[si][1];
                wmat w;
                wmat_make(&w, dts[di], 2, rows, cols);
                float *x = rnd(cols, 1.0), *g = rnd(cols, 0.3), *res = rnd(rows, 1.0);
                for (int64_t i = 0; i < cols; i++) g[i] += 1.0f;
                float *dx = dev_f32(x, cols), *dg = dev_f32(g, cols), *dres = dev_f32(res, rows), *y0 = NULL;
                set_knob("ZMLX_CUDA_WIDE_MIN", "1");
                for (int run = 0; run < 2; run++) {
                    set_knob("ZMLX_CUDA_WIDE", run ? NULL : "0");
                    float *dy = dev_poison(rows);
                    const int before = zm_gpu_wide_launches();
                    ZT_OK(zm_gpu_matvec(&w.dev, 1, dx, fused ? dg : NULL, 1e-6f, fused ? dres : NULL, dy, NULL));
                    char what[96];
                    snprintf(what, sizeof what, "matvec wide %s %lldx%lld%s", zm_dtype_name(dts[di]), (long long)rows,
                             (long long)cols, fused ? " norm+res" : "");
                    ZT_CHECK(zm_gpu_wide_launches() - before == run, "%s: %d wide launches, expected %d", what,
                             zm_gpu_wide_launches() - before, run);
                    float *y = get_f32(dy, rows);
                    if (!run) y0 = y;
                    else {
                        same_bits(what, y, y0, rows);
                        free(y);
                    }
                    zm_cuda_free(dy);
                }
                set_knob("ZMLX_CUDA_WIDE", NULL);
                set_knob("ZMLX_CUDA_WIDE_MIN", NULL);
                free(y0); free(x); free(g); free(res);
                zm_cuda_free(dx); zm_cuda_free(dg); zm_cuda_free(dres);
                wmat_free(&w);
                if (zt_failed_now()) return;
            }
}

/* The dense matvec's fixed-shape instances (2048 and 4096 Q4_0 columns:
 * the layers' QKV and o_proj) against the general k_matvec, bit for bit:
 * three segments with the folded norm (QKV), one with norm and residual,
 * ragged row counts; counted (ZMLX_CUDA_MV_FIXED; Q8_0 must not take it). */
static void test_matvec_fixed(void) {
    NEED_GPU();
    static const zm_dtype dts[2] = {ZM_Q4_0, ZM_Q8_0};
    static const int64_t cases[][4] = {{3, 4096, 512, 2048}, {3, 40, 8, 2048}, {1, 2048, 0, 4096}, {1, 77, 0, 4096}};
    for (int di = 0; di < 2; di++)
        for (int ci = 0; ci < 4; ci++) {
            const int n = (int)cases[ci][0];
            const int64_t cols = cases[ci][3], rows[3] = {cases[ci][1], cases[ci][2], cases[ci][2]};
            wmat w[3];
            const zm_gpu_mat *W[3];
            for (int i = 0; i < n; i++) {
                wmat_make(&w[i], dts[di], 1, rows[i], cols);
                W[i] = &w[i].dev;
            }
            float *x = rnd(cols, 1.0), *g = rnd(cols, 0.3), *res = rnd(rows[0], 1.0);
            for (int64_t i = 0; i < cols; i++) g[i] += 1.0f;
            float *dx = dev_f32(x, cols), *dg = dev_f32(g, cols), *dres = dev_f32(res, rows[0]);
            float *y0[3] = {NULL, NULL, NULL};
            char what[96];
            snprintf(what, sizeof what, "matvec fixed %s %d seg %lldx%lld", zm_dtype_name(dts[di]), n, (long long)rows[0], (long long)cols);
            for (int run = 0; run < 2; run++) {
                set_knob("ZMLX_CUDA_MV_FIXED", run ? NULL : "0");
                float *dy[3];
                for (int i = 0; i < n; i++) dy[i] = dev_poison(rows[i]);
                const int before = zm_gpu_fixed_launches();
                if (n == 1) ZT_OK(zm_gpu_matvec(W[0], 0, dx, dg, 1e-6f, dres, dy[0], NULL));
                else ZT_OK(zm_gpu_matvec_multi(n, W, dx, dg, 1e-6f, dy, NULL));
                const int want = run && dts[di] == ZM_Q4_0; /* Q8_0 keeps the general kernel */
                ZT_CHECK(zm_gpu_fixed_launches() - before == want, "%s: %d fixed launches, expected %d", what,
                         zm_gpu_fixed_launches() - before, want);
                for (int i = 0; i < n; i++) {
                    float *y = get_f32(dy[i], rows[i]);
                    if (!run) y0[i] = y;
                    else {
                        same_bits(what, y, y0[i], rows[i]);
                        free(y);
                    }
                    zm_cuda_free(dy[i]);
                }
            }
            set_knob("ZMLX_CUDA_MV_FIXED", NULL);
            for (int i = 0; i < n; i++) { free(y0[i]); wmat_free(&w[i]); }
            zm_cuda_free(dx); zm_cuda_free(dg); zm_cuda_free(dres);
            free(x); free(g); free(res);
            if (zt_failed_now()) return;
        }
}

static void test_matmul(void) {
    NEED_GPU();
    for (int di = 0; di < 5; di++) {
        const int64_t rows = 70, cols = 320, nt = 5;
        wmat w;
        wmat_make(&w, all_dt[di], 1, rows, cols);
        float *x = rnd(nt * cols, 1.0), *res = rnd(nt * rows, 1.0);
        float *dx = dev_f32(x, nt * cols), *dres = dev_f32(res, nt * rows), *dy = dev_poison(nt * rows);
        ZT_OK(zm_gpu_matmul(&w.dev, 0, nt, dx, dres, dy, NULL));
        float *y = get_f32(dy, nt * rows);
        double *ref = malloc(nt * rows * 8), *xt = malloc(cols * 8);
        for (int64_t t = 0; t < nt; t++) {
            for (int64_t c = 0; c < cols; c++) xt[c] = x[t * cols + c];
            for (int64_t r = 0; r < rows; r++) ref[t * rows + r] = wdot(&w, 0, r, xt) + res[t * rows + r];
        }
        check_l2("matmul", y, ref, nt * rows, 2e-5);
        free(y); free(ref); free(xt); free(x); free(res);
        zm_cuda_free(dx); zm_cuda_free(dres); zm_cuda_free(dy);
        wmat_free(&w);
    }
}

// ---------------------------------------------------------------------------
/* The bulk-staged combine (ZMLX_CUDA_BULK) against k_combine, bit for bit,
 * on the same inputs: the default 4 rows a block; 5 (the last block short)
 * and 1; early and not. Each bulk run must take the bulk kernel where the
 * shape allows it (Q4_0 / Q8_0, scale rows a multiple of 16 bytes):
 * counted, so a silent fallback fails. */
static void combine_bulk_same(const wmat *D, const int32_t *dids, int64_t T, int k, const float *dh, const float *dw,
                              const float *dres) {
    const int64_t nd = D->dev.rows, nf = D->dev.cols;
    const zm_dtype t = D->dev.dtype;
    char name[64];
    int cc = 0, sms = 0;
    size_t mem = 0;
    ZT_OK(zm_cuda_device_info(name, sizeof name, &cc, &sms, &mem));
    const int want = cc >= 90 && (t == ZM_Q4_0 || t == ZM_Q8_0) && (nf / 32) % 8 == 0; /* bulk copies: sm_90 */
    static const char *const runs[][2] = {{"0", NULL}, {NULL, NULL}, {NULL, "5"}, {"1", "1"}};
    float *y0 = NULL;
    for (int ri = 0; ri < 4; ri++) {
        if (runs[ri][0]) setenv("ZMLX_CUDA_BULK", runs[ri][0], 1);
        else unsetenv("ZMLX_CUDA_BULK");
        if (runs[ri][1]) setenv("ZMLX_CUDA_BULK_ROWS", runs[ri][1], 1);
        else unsetenv("ZMLX_CUDA_BULK_ROWS");
        float *dy = dev_poison(T * nd);
        const int before = zm_gpu_bulk_launches();
        ZT_OK(zm_gpu_gather_qmm_combine(&D->dev, dids, dw, T, k, dh, dres, dy, ri & 1, NULL));
        const int took = zm_gpu_bulk_launches() - before, expect = ri ? want : 0;
        float *y = get_f32(dy, T * nd);
        char what[96];
        snprintf(what, sizeof what, "combine bulk run %d %s %lldx%lld", ri, zm_dtype_name(t), (long long)nd, (long long)nf);
        ZT_CHECK(took == expect, "%s: %d bulk launches, expected %d", what, took, expect);
        if (ri == 0) y0 = y;
        else {
            same_bits(what, y, y0, T * nd);
            free(y);
        }
        zm_cuda_free(dy);
    }
    unsetenv("ZMLX_CUDA_BULK");
    unsetenv("ZMLX_CUDA_BULK_ROWS");
    free(y0);
}

/* gather_qmm_swiglu and gather_qmm_combine vs float64 (T tokens), and vs the
 * stock chain (rmsnorm, expert_matvec, silu, mul / expert_matvec per slot,
 * scale, sum, add) bit for bit. */
static void test_experts(void) {
    NEED_GPU();
    const zm_dtype types[] = {ZM_Q4_0, ZM_Q8_0, ZM_F16, ZM_F32};
    const int64_t dims[][2] = {{256, 96}, {2048, 768}, {64, 32}, {512, 256}};
    for (int ti = 0; ti < 4; ti++)
        for (int si = 0; si < 4; si++) {
            zm_dtype t = types[ti];
            const int64_t nd = dims[si][0], nf = dims[si][1], ne = 9, T = si == 1 ? 1 : 3;
            const int k = si == 2 ? 2 : 8;
            if ((t == ZM_F32 && si == 1) || (t != ZM_Q4_0 && t != ZM_Q8_0 && si == 3)) continue; /* keep the test fast */
            wmat G, U, D;
            wmat_make(&G, t, ne, nf, nd);
            wmat_make(&U, t, ne, nf, nd);
            wmat_make(&D, t, ne, nd, nf);
            int32_t ids[3 * 8];
            for (int64_t tt = 0; tt < T; tt++)
                for (int j = 0; j < k; j++) { /* distinct ids per token in random order */
                    int ok;
                    int32_t *id = ids + tt * k;
                    do { id[j] = (int32_t)(zt_rand_u64() % ne); ok = 1; for (int i = 0; i < j; i++) ok &= id[i] != id[j]; } while (!ok);
                }
            float *x = rnd(T * nd, 1.0), *g = rnd(nd, 0.2), *wt = malloc(T * k * 4), *res = rnd(T * nd, 1.0);
            for (int j = 0; j < T * k; j++) wt[j] = (float)zt_uniform(0.05, 1.0);
            int32_t *dids = dup_h2d(ids, T * k * 4);
            float *dx = dev_f32(x, T * nd), *dg = dev_f32(g, nd), *dw = dev_f32(wt, T * k), *dres = dev_f32(res, T * nd);
            float *dh = dev_poison(T * k * nf), *dy = dev_poison(T * nd);
            const int early = (ti + si) & 1; /* inputs come from copies: either is allowed */
            ZT_OK(zm_gpu_gather_qmm_swiglu(&G.dev, &U.dev, dids, T, k, dx, dg, 1e-6f, dh, NULL));
            ZT_OK(zm_gpu_gather_qmm_combine(&D.dev, dids, dw, T, k, dh, dres, dy, early, NULL));
            float *h = get_f32(dh, T * k * nf), *y = get_f32(dy, T * nd);
            { /* reading ahead of the dependency wait or not: the same bits */
                float *dy2 = dev_poison(T * nd);
                ZT_OK(zm_gpu_gather_qmm_combine(&D.dev, dids, dw, T, k, dh, dres, dy2, !early, NULL));
                float *y2 = get_f32(dy2, T * nd);
                same_bits("combine early vs not", y, y2, T * nd);
                free(y2);
                zm_cuda_free(dy2);
            }
            { /* the general instances (the fixed-shape ones take Q4_0 gate/up of
               * 2048 columns and its bulk combine of 768): the same bits */
                set_knob("ZMLX_CUDA_EX_FIXED", "0");
                set_knob("ZMLX_CUDA_CB_FIXED", "0");
                float *dh2 = dev_poison(T * k * nf), *dy2 = dev_poison(T * nd);
                const int before = zm_gpu_fixed_launches();
                ZT_OK(zm_gpu_gather_qmm_swiglu(&G.dev, &U.dev, dids, T, k, dx, dg, 1e-6f, dh2, NULL));
                ZT_OK(zm_gpu_gather_qmm_combine(&D.dev, dids, dw, T, k, dh, dres, dy2, early, NULL));
                set_knob("ZMLX_CUDA_EX_FIXED", NULL);
                set_knob("ZMLX_CUDA_CB_FIXED", NULL);
                ZT_CHECK(zm_gpu_fixed_launches() == before, "experts: a fixed-shape launch while turned off");
                float *h2 = get_f32(dh2, T * k * nf), *y2 = get_f32(dy2, T * nd);
                same_bits("gate/up fixed shape vs general", h, h2, T * k * nf);
                same_bits("combine fixed shape vs general", y, y2, T * nd);
                free(h2); free(y2);
                zm_cuda_free(dh2); zm_cuda_free(dy2);
                if ((t == ZM_Q4_0 || t == ZM_Q8_0) && nd == 2048 && nf == 768) { /* the default run above took both */
                    float *dh3 = dev_poison(T * k * nf);
                    const int b3 = zm_gpu_fixed_launches();
                    ZT_OK(zm_gpu_gather_qmm_swiglu(&G.dev, &U.dev, dids, T, k, dx, dg, 1e-6f, dh3, NULL));
                    ZT_CHECK(zm_gpu_fixed_launches() - b3 == 1, "gate/up %s 2048: the fixed-shape instance not taken", zm_dtype_name(t));
                    zm_cuda_free(dh3);
                }
            }
            double *xn = malloc(nd * 8), *href = malloc(T * k * nf * 8), *yref = malloc(T * nd * 8), *hd = malloc(nf * 8);
            for (int64_t tt = 0; tt < T; tt++) {
                const int32_t *id = ids + tt * k;
                ref_rmsnorm(x + tt * nd, g, nd, 1e-6, xn);
                for (int j = 0; j < k; j++)
                    for (int64_t r = 0; r < nf; r++) {
                        double a = wdot(&G, id[j], r, xn), b = wdot(&U, id[j], r, xn);
                        href[(tt * k + j) * nf + r] = a / (1 + exp(-a)) * b;
                    }
                for (int64_t r = 0; r < nd; r++) yref[tt * nd + r] = res[tt * nd + r];
                for (int j = 0; j < k; j++) {
                    for (int64_t c = 0; c < nf; c++) hd[c] = h[(tt * k + j) * nf + c]; /* chain from the GPU's h */
                    for (int64_t r = 0; r < nd; r++) yref[tt * nd + r] += wt[tt * k + j] * wdot(&D, id[j], r, hd);
                }
            }
            char what[80];
            snprintf(what, sizeof what, "gather_qmm_swiglu %s %lldx%lld", zm_dtype_name(t), (long long)nf, (long long)nd);
            check_l2(what, h, href, T * k * nf, 5e-5);
            snprintf(what, sizeof what, "gather_qmm_combine %s %lldx%lld", zm_dtype_name(t), (long long)nd, (long long)nf);
            check_l2(what, y, yref, T * nd, 5e-5);
            /* stock chain */
            float *dxn = dev_poison(T * nd), *dga = dev_poison(T * k * nf), *dup = dev_poison(T * k * nf), *dsl = dev_poison(T * k * nf);
            float *dhs = dev_poison(T * k * nf), *dd = dev_poison(T * k * nd), *dsc = dev_poison(T * k * nd), *dsum = dev_poison(T * nd), *dys = dev_poison(T * nd);
            ZT_OK(zm_gpu_rmsnorm(dx, dg, T, nd, 1e-6f, dxn, NULL));
            ZT_OK(zm_gpu_expert_matvec(&G.dev, dids, T, k, dxn, 0, NULL, 0, dga, NULL));
            ZT_OK(zm_gpu_expert_matvec(&U.dev, dids, T, k, dx, 0, dg, 1e-6f, dup, NULL));
            ZT_OK(zm_gpu_unary(0, dga, T * k * nf, 1.0f, dsl, NULL));
            ZT_OK(zm_gpu_binary(1, dsl, dup, T * k * nf, T * k * nf, 0, dhs, NULL));
            ZT_OK(zm_gpu_expert_matvec(&D.dev, dids, T, k, dhs, 1, NULL, 0, dd, NULL));
            const int64_t sa[4] = {1, T, k, nd}, sb[4] = {1, T, k, 1};
            ZT_OK(zm_gpu_binary_nd(1, dd, sa, dw, sb, dsc, NULL));
            ZT_OK(zm_gpu_sum_axis(dsc, T, k, nd, dsum, NULL));
            ZT_OK(zm_gpu_binary(0, dsum, dres, T * nd, T * nd, 0, dys, NULL));
            float *hs = get_f32(dhs, T * k * nf), *ys = get_f32(dys, T * nd);
            same_bits("swiglu fused vs stock", h, hs, T * k * nf);
            same_bits("combine fused vs stock", y, ys, T * nd);
            combine_bulk_same(&D, dids, T, k, dh, dw, dres);
            /* swiglu and moe_combine fused ops vs the same chain */
            float *dsw = dev_poison(T * k * nf), *dmc = dev_poison(T * nd);
            ZT_OK(zm_gpu_swiglu(dga, dup, T * k * nf, dsw, NULL));
            ZT_OK(zm_gpu_moe_combine(dd, dw, T, k, nd, NULL, dmc, NULL));
            float *sw = get_f32(dsw, T * k * nf), *mc = get_f32(dmc, T * nd), *sm = get_f32(dsum, T * nd);
            same_bits("swiglu op vs silu+mul", sw, hs, T * k * nf);
            same_bits("moe_combine op vs mul+sum", mc, sm, T * nd);
            free(sw); free(mc); free(sm); zm_cuda_free(dsw); zm_cuda_free(dmc);
            free(hs); free(ys);
            zm_cuda_free(dxn); zm_cuda_free(dga); zm_cuda_free(dup); zm_cuda_free(dsl); zm_cuda_free(dhs);
            zm_cuda_free(dd); zm_cuda_free(dsc); zm_cuda_free(dsum); zm_cuda_free(dys);
            free(h); free(y); free(xn); free(href); free(yref); free(hd);
            free(x); free(g); free(wt); free(res);
            zm_cuda_free(dids); zm_cuda_free(dx); zm_cuda_free(dg); zm_cuda_free(dw); zm_cuda_free(dres);
            zm_cuda_free(dh); zm_cuda_free(dy);
            wmat_free(&G); wmat_free(&U); wmat_free(&D);
            if (zt_failed_now()) return;
        }
}

// ---------------------------------------------------------------------------
static void test_routing(void) {
    NEED_GPU();
    const int ns[] = {8, 60, 128, 1024};
    const int ks[] = {2, 4, 8, 32};
    for (int ci = 0; ci < 4; ci++) {
        int n = ns[ci], k = ks[ci];
        float *l = rnd(n, 3.0);
        float *dl = dev_f32(l, n), *dw = dev_poison(k), *dp = dev_poison(n), *dv = dev_poison(k), *dw2 = dev_poison(k);
        int32_t *di = dup_h2d(NULL, k * 4), *di2 = dup_h2d(NULL, k * 4);
        ZT_OK(zm_gpu_topk_gating_softmax(dl, 1, n, k, 1, di, dw, NULL));
        ZT_OK(zm_gpu_softmax(dl, 1, n, dp, NULL));
        ZT_OK(zm_gpu_topk_rows(dp, 1, n, k, dv, di2, NULL));
        ZT_OK(zm_gpu_normalize_sum(dv, 1, k, dw2, NULL));
        float *w = get_f32(dw, k), *p = get_f32(dp, n), *w2 = get_f32(dw2, k);
        int32_t ids[32], ids2[32];
        ZT_OK(zm_cuda_memcpy_d2h(ids, di, k * 4));
        ZT_OK(zm_cuda_memcpy_d2h(ids2, di2, k * 4));
        /* reference */
        double m = -1e300, s = 0, *pr = malloc(n * 8), wr[32];
        for (int i = 0; i < n; i++) m = fmax(m, l[i]);
        for (int i = 0; i < n; i++) s += exp(l[i] - m);
        for (int i = 0; i < n; i++) pr[i] = exp(l[i] - m) / s;
        check_l2("softmax", p, pr, n, 1e-6);
        int used[1024] = {0};
        double ws = 0;
        int rid[32];
        for (int j = 0; j < k; j++) {
            int b = -1;
            for (int i = 0; i < n; i++) if (!used[i] && (b < 0 || pr[i] > pr[b])) b = i;
            used[b] = 1; rid[j] = b; ws += pr[b];
        }
        for (int j = 0; j < k; j++) {
            wr[j] = pr[rid[j]] / ws;
            ZT_CHECK(ids[j] == rid[j], "topk_gating n=%d k=%d slot %d: id %d want %d", n, k, j, ids[j], rid[j]);
            ZT_CHECK(ids2[j] == rid[j], "topk n=%d k=%d slot %d: id %d want %d", n, k, j, ids2[j], rid[j]);
        }
        check_l2("topk_gating weights", w, wr, k, 1e-6);
        same_bits("topk_gating fused vs softmax+topk+normalize", w, w2, k);
        free(l); free(w); free(p); free(w2); free(pr);
        zm_cuda_free(dl); zm_cuda_free(dw); zm_cuda_free(dp); zm_cuda_free(dv); zm_cuda_free(dw2);
        zm_cuda_free(di); zm_cuda_free(di2);
    }
    /* ties: equal logits pick the lower index */
    float l[16] = {0};
    l[3] = l[9] = l[12] = 1.0f;
    float *dl = dev_f32(l, 16), *dw = dev_poison(2);
    int32_t *di = dup_h2d(NULL, 8), ids[2];
    ZT_OK(zm_gpu_topk_gating_softmax(dl, 1, 16, 2, 1, di, dw, NULL));
    ZT_OK(zm_cuda_sync());
    ZT_OK(zm_cuda_memcpy_d2h(ids, di, 8));
    ZT_CHECK(ids[0] == 3 && ids[1] == 9, "ties: got %d %d want 3 9", ids[0], ids[1]);
    zm_cuda_free(dl); zm_cuda_free(dw); zm_cuda_free(di);
    /* bad input is a status, not a crash */
    ZT_CHECK(zm_gpu_topk_gating_softmax(NULL, 1, 2000, 2, 1, NULL, NULL, NULL) == ZM_ERR_RANGE, "n > 1024 refused");
    ZT_CHECK(zm_gpu_topk_gating_softmax(NULL, 1, 8, 9, 1, NULL, NULL, NULL) == ZM_ERR_RANGE, "k > n refused");
}

static void test_moe_combine_small_ops(void) {
    NEED_GPU();
    const int k = 3;
    const int64_t n = 1000;
    float *e = rnd(k * n, 1.0), *w = rnd(k, 1.0), *res = rnd(n, 1.0);
    float *de = dev_f32(e, k * n), *dw = dev_f32(w, k), *dres = dev_f32(res, n), *dy = dev_poison(n);
    ZT_OK(zm_gpu_moe_combine(de, dw, 1, k, n, dres, dy, NULL));
    float *y = get_f32(dy, n);
    double *ref = malloc(n * 8);
    for (int64_t c = 0; c < n; c++) { ref[c] = res[c]; for (int j = 0; j < k; j++) ref[c] += (double)w[j] * e[j * n + c]; }
    check_l2("moe_combine", y, ref, n, 1e-6);
    /* binary ops in both broadcast modes, unary ops, sum_rows, gather_rows */
    float *a = rnd(k * n, 1.0), *da = dev_f32(a, k * n), *dz = dev_poison(k * n);
    for (int op = 0; op < 4; op++)
        for (int mode = 0; mode < 2; mode++) {
            const float *b = mode == 0 ? res : w;
            const float *db = mode == 0 ? dres : dw;
            int64_t nb = mode == 0 ? n : k;
            ZT_OK(zm_gpu_binary(op, da, db, k * n, nb, mode, dz, NULL));
            float *z = get_f32(dz, k * n);
            double *zr = malloc(k * n * 8);
            for (int64_t i = 0; i < k * n; i++) {
                double x = a[i], bb = b[mode == 0 ? i % n : i / n];
                zr[i] = op == 0 ? x + bb : op == 1 ? x * bb : op == 2 ? x - bb : x / bb;
            }
            char what[40];
            snprintf(what, sizeof what, "binary op %d mode %d", op, mode);
            check_l2(what, z, zr, k * n, 1e-6);
            free(z); free(zr);
        }
    for (int op = 0; op < 7; op++) {
        float *pa = malloc(k * n * 4);
        for (int64_t i = 0; i < k * n; i++) pa[i] = op == 3 || op == 4 ? fabsf(a[i]) + 0.1f : a[i];
        float *dpa = dev_f32(pa, k * n);
        ZT_OK(zm_gpu_unary(op, dpa, k * n, 0.5f, dz, NULL));
        float *z = get_f32(dz, k * n);
        double *zr = malloc(k * n * 8);
        for (int64_t i = 0; i < k * n; i++) {
            double x = pa[i], r;
            switch (op) {
            case 0: r = x / (1 + exp(-x)); break;
            case 1: r = exp(x); break;
            case 2: r = -x; break;
            case 3: r = sqrt(x); break;
            case 4: r = 1 / sqrt(x); break;
            case 5: r = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); break;
            default: r = x;
            }
            zr[i] = 0.5 * r;
        }
        char what[40];
        snprintf(what, sizeof what, "unary op %d", op);
        check_l2(what, z, zr, k * n, 2e-6);
        free(z); free(zr); free(pa);
        zm_cuda_free(dpa);
    }
    ZT_OK(zm_gpu_sum_rows(da, k, n, dy, NULL));
    float *sr = get_f32(dy, n);
    for (int64_t c = 0; c < n; c++) { ref[c] = 0; for (int j = 0; j < k; j++) ref[c] += a[j * n + c]; }
    check_l2("sum_rows", sr, ref, n, 1e-6);
    int32_t idx[4] = {2, 0, 2, 1};
    int32_t *didx = dup_h2d(idx, 16);
    float *dgr = dev_poison(4 * n);
    ZT_OK(zm_gpu_gather_rows(da, n, didx, 4, dgr, NULL));
    float *gr = get_f32(dgr, 4 * n);
    int bad = 0;
    for (int j = 0; j < 4; j++) for (int64_t c = 0; c < n; c++) bad += gr[j * n + c] != a[idx[j] * n + c];
    ZT_CHECK(bad == 0, "gather_rows: %d wrong", bad);
    free(gr); free(sr); zm_cuda_free(didx); zm_cuda_free(dgr);
    /* take along the last axis: [k][n] rows, 2 ids each */
    int32_t tid[6] = {5, 0, n - 1, 7, 3, 3};
    int32_t *dtid = dup_h2d(tid, sizeof tid);
    float *dtk = dev_poison(6);
    ZT_OK(zm_gpu_take(da, k, n, dtid, 2, dtk, NULL));
    float *tk = get_f32(dtk, 6);
    for (int i = 0; i < 6; i++) ZT_CHECK(tk[i] == a[(i / 2) * n + tid[i]], "take [%d]", i);
    free(tk); zm_cuda_free(dtid); zm_cuda_free(dtk);
    /* sum over the middle axis of [k][n/8][8] and a 4-d broadcast */
    float *dsa = dev_poison(k * 8);
    ZT_OK(zm_gpu_sum_axis(da, k, n / 8, 8, dsa, NULL));
    float *sa = get_f32(dsa, k * 8);
    double sref[24];
    for (int o = 0; o < k; o++) for (int c = 0; c < 8; c++) { sref[o * 8 + c] = 0; for (int r = 0; r < n / 8; r++) sref[o * 8 + c] += a[(o * (n / 8) + r) * 8 + c]; }
    check_l2("sum_axis", sa, sref, k * 8, 1e-6);
    free(sa); zm_cuda_free(dsa);
    const int64_t as[4] = {1, k, n / 8, 8}, bs[4] = {1, k, 1, 8};
    float *bb = rnd(k * 8, 1.0), *dbb = dev_f32(bb, k * 8);
    ZT_OK(zm_gpu_binary_nd(3, da, as, dbb, bs, dz, NULL));
    float *z = get_f32(dz, k * n);
    double *zr = malloc(k * n * 8);
    for (int64_t i = 0; i < k * n; i++) zr[i] = (double)a[i] / bb[(i / n) * 8 + i % 8];
    check_l2("binary_nd div", z, zr, k * n, 1e-6);
    free(z); free(zr); free(bb); zm_cuda_free(dbb);
    free(a); zm_cuda_free(da); zm_cuda_free(dz);
    free(e); free(w); free(res); free(y); free(ref);
    zm_cuda_free(de); zm_cuda_free(dw); zm_cuda_free(dres); zm_cuda_free(dy);
}

// ---------------------------------------------------------------------------
static void test_norms(void) {
    NEED_GPU();
    const int64_t sizes[] = {1, 64, 100, 2048, 5000};
    for (int si = 0; si < 5; si++) {
        int64_t n = sizes[si], rows = 3;
        float *x = rnd(rows * n, 2.0), *b = rnd(n, 1.0), *g = rnd(n, 1.0);
        float *dx = dev_f32(x, rows * n), *db = dev_f32(b, n), *dg = dev_f32(g, n), *dy = dev_poison(rows * n), *ds = dev_poison(n);
        ZT_OK(zm_gpu_rmsnorm(dx, dg, rows, n, 1e-6f, dy, NULL));
        float *y = get_f32(dy, rows * n);
        double *ref = malloc(rows * n * 8);
        for (int64_t r = 0; r < rows; r++) ref_rmsnorm(x + r * n, g, n, 1e-6, ref + r * n);
        check_l2("rmsnorm", y, ref, rows * n, 2e-6);
        ZT_OK(zm_gpu_add_rmsnorm(dx, db, dg, 1, n, 1e-6f, ds, dy, NULL));
        float *s = get_f32(ds, n), *y2 = get_f32(dy, n);
        float *sf = malloc(n * 4);
        double *sref = malloc(n * 8);
        for (int64_t i = 0; i < n; i++) { sf[i] = x[i] + b[i]; sref[i] = sf[i]; }
        ref_rmsnorm(sf, g, n, 1e-6, ref);
        check_l2("add_rmsnorm sum", s, sref, n, 1e-7);
        check_l2("add_rmsnorm out", y2, ref, n, 2e-6);
        free(x); free(b); free(g); free(y); free(ref); free(s); free(y2); free(sf); free(sref);
        zm_cuda_free(dx); zm_cuda_free(db); zm_cuda_free(dg); zm_cuda_free(dy); zm_cuda_free(ds);
    }
}

static void ref_rope(double *x, int n_rot, double pos, double base) {
    for (int i = 0; i < n_rot / 2; i++) {
        double th = pos * pow(base, -2.0 * i / n_rot), c = cos(th), s = sin(th);
        double a = x[i], b = x[i + n_rot / 2];
        x[i] = a * c - b * s;
        x[i + n_rot / 2] = a * s + b * c;
    }
}

/* qk_norm_rope for 2 tokens (with and without the cache store), partial
 * rotation, vs float64; vs rmsnorm + rope bit for bit; kv_store. */
static void test_rope_qknorm(void) {
    NEED_GPU();
    const int cfg[][3] = {{4, 16, 16}, {32, 128, 128}, {6, 64, 32}};
    for (int ci = 0; ci < 3; ci++) {
        const int nh = cfg[ci][0], d = cfg[ci][1], nr = cfg[ci][2], T = 2, ctx = 40;
        const int32_t pos[2] = {37, 5};
        const double base = ci == 1 ? 1e6 : 1e4;
        const int64_t n = (int64_t)T * nh * d, cn = (int64_t)ctx * nh * d;
        float *inv = malloc(nr / 2 * 4);
        for (int i = 0; i < nr / 2; i++) inv[i] = (float)pow(base, -2.0 * i / nr);
        float *x = rnd(n, 1.0), *w = rnd(d, 0.2);
        for (int i = 0; i < d; i++) w[i] += 1;
        float *dinv = dev_f32(inv, nr / 2), *dx = dev_f32(x, n), *dw = dev_f32(w, d), *dy = dev_poison(n), *dc = dev_poison(cn);
        int32_t *dpos = dup_h2d(pos, 8);
        ZT_OK(zm_gpu_qk_norm_rope(dx, dw, T, nh, d, nr, 1e-6f, dpos, dinv, dy, dc, NULL));
        float *y = get_f32(dy, n), *c = get_f32(dc, cn);
        double *ref = malloc(n * 8);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++) {
                double *r = ref + ((int64_t)t * nh + h) * d;
                ref_rmsnorm(x + ((int64_t)t * nh + h) * d, w, d, 1e-6, r);
                ref_rope(r, nr, pos[t], base);
            }
        check_l2("qk_norm_rope", y, ref, n, 2e-6);
        for (int t = 0; t < T; t++) same_bits("qk_norm_rope cache row", c + (int64_t)pos[t] * nh * d, y + (int64_t)t * nh * d, nh * d);
        ZT_CHECK(isnan(c[0]) && isnan(c[(int64_t)38 * nh * d]), "cache rows other than pos untouched");
        /* stock chain: rmsnorm rows + rope, bit-identical */
        float *dn = dev_poison(n), *dr = dev_poison(n);
        ZT_OK(zm_gpu_rmsnorm(dx, dw, (int64_t)T * nh, d, 1e-6f, dn, NULL));
        ZT_OK(zm_gpu_rope(dn, T, nh, d, nr, dpos, dinv, dr, NULL));
        float *r2 = get_f32(dr, n);
        same_bits("qk_norm_rope fused vs rmsnorm+rope", y, r2, n);
        /* rope alone vs float64, in place */
        ZT_OK(zm_gpu_rope(dx, T, nh, d, nr, dpos, dinv, dx, NULL));
        float *xr = get_f32(dx, n);
        for (int64_t i = 0; i < n; i++) ref[i] = x[i];
        for (int t = 0; t < T; t++) for (int h = 0; h < nh; h++) ref_rope(ref + ((int64_t)t * nh + h) * d, nr, pos[t], base);
        check_l2("rope", xr, ref, n, 2e-6);
        /* kv_store */
        float *dk = dev_poison(cn);
        ZT_OK(zm_gpu_kv_store(dy, T, (int64_t)nh * d, dpos, dk, NULL));
        float *k2 = get_f32(dk, cn);
        for (int t = 0; t < T; t++) same_bits("kv_store", k2 + (int64_t)pos[t] * nh * d, y + (int64_t)t * nh * d, nh * d);
        free(k2); zm_cuda_free(dk);
        free(r2); free(xr); zm_cuda_free(dn); zm_cuda_free(dr);
        free(inv); free(x); free(w); free(y); free(c); free(ref);
        zm_cuda_free(dinv); zm_cuda_free(dx); zm_cuda_free(dw); zm_cuda_free(dy); zm_cuda_free(dc); zm_cuda_free(dpos);
        if (zt_failed_now()) return;
    }
}

static void ref_attn(const float *q, const float *kc, const float *vc, int nh, int nkv, int d, int L, double *out) {
    double *s = malloc(L * 8);
    for (int h = 0; h < nh; h++) {
        int kh = h / (nh / nkv);
        double m = -1e300, sum = 0;
        for (int t = 0; t < L; t++) {
            double a = 0;
            for (int c = 0; c < d; c++) a += (double)q[h * d + c] * kc[((int64_t)t * nkv + kh) * d + c];
            s[t] = a / sqrt((double)d);
            m = fmax(m, s[t]);
        }
        for (int t = 0; t < L; t++) { s[t] = exp(s[t] - m); sum += s[t]; }
        for (int c = 0; c < d; c++) {
            double a = 0;
            for (int t = 0; t < L; t++) a += s[t] * vc[((int64_t)t * nkv + kh) * d + c];
            out[h * d + c] = a / sum;
        }
    }
    free(s);
}

static void test_attention(void) {
    NEED_GPU();
    const int cfg[][4] = {{32, 4, 128, 600}, {4, 2, 16, 50}, {8, 8, 64, 33}, {6, 2, 80, 2000}, {4, 2, 256, 90}};
    for (int ci = 0; ci < 5; ci++) { /* the last: head_dim > 128 (8 dims a lane, no early K/V reads) */
        const int nh = cfg[ci][0], nkv = cfg[ci][1], d = cfg[ci][2], ctx = cfg[ci][3];
        float *kc = rnd((int64_t)ctx * nkv * d, 1.0), *vc = rnd((int64_t)ctx * nkv * d, 1.0);
        float *dkc = dev_f32(kc, (int64_t)ctx * nkv * d), *dvc = dev_f32(vc, (int64_t)ctx * nkv * d);
        int64_t wsb = zm_gpu_attention_ws_bytes(nh, nkv, d, ctx);
        void *ws = dup_h2d(NULL, (size_t)wsb);
        ZT_OK(zm_cuda_memset(ws, 0, (size_t)wsb));
        const int poss[] = {0, 1, 31, ctx / 2, ctx - 1};
        int32_t *dpos = dup_h2d(NULL, 4);
        for (int pi = 0; pi < 5; pi++) { /* the same workspace across calls: counters must reset */
            int p = poss[pi];
            float *q = rnd(nh * d, 1.0), *dq = dev_f32(q, nh * d), *dout = dev_poison(nh * d);
            ZT_OK(zm_cuda_memcpy_h2d(dpos, &p, 4));
            ZT_OK(zm_gpu_attention_decode(dq, dkc, dvc, nh, nkv, d, ctx, (float)(1.0 / sqrt(d)), dpos, ws, dout, NULL));
            float *out = get_f32(dout, nh * d);
            double *ref = malloc(nh * d * 8);
            ref_attn(q, kc, vc, nh, nkv, d, p + 1, ref);
            char what[80];
            snprintf(what, sizeof what, "attention_decode h%d kv%d d%d pos %d", nh, nkv, d, p);
            check_l2(what, out, ref, nh * d, 1e-5);
            free(q); free(out); free(ref); zm_cuda_free(dq); zm_cuda_free(dout);
        }
        /* prefill: n_tok queries starting at pos 3 */
        const int nt = 7, p0 = 3;
        int32_t pp[7];
        for (int t = 0; t < nt; t++) pp[t] = p0 + t;
        int32_t *dpp = dup_h2d(pp, sizeof pp);
        float *q = rnd((int64_t)nt * nh * d, 1.0), *dq = dev_f32(q, (int64_t)nt * nh * d), *dout = dev_poison((int64_t)nt * nh * d);
        ZT_OK(zm_gpu_attention_prefill(dq, dkc, dvc, nt, nh, nkv, d, (float)(1.0 / sqrt(d)), dpp, dout, NULL));
        zm_cuda_free(dpp);
        float *out = get_f32(dout, (int64_t)nt * nh * d);
        double *ref = malloc((int64_t)nt * nh * d * 8);
        for (int t = 0; t < nt; t++) ref_attn(q + (int64_t)t * nh * d, kc, vc, nh, nkv, d, p0 + t + 1, ref + (int64_t)t * nh * d);
        check_l2("attention_prefill", out, ref, (int64_t)nt * nh * d, 1e-5);
        free(q); free(out); free(ref); zm_cuda_free(dq); zm_cuda_free(dout);
        free(kc); free(vc); zm_cuda_free(dkc); zm_cuda_free(dvc); zm_cuda_free(ws); zm_cuda_free(dpos);
        if (zt_failed_now()) return;
    }
    ZT_CHECK(zm_gpu_attention_decode(NULL, NULL, NULL, 6, 4, 64, 10, 1.0f, NULL, NULL, NULL, NULL) == ZM_ERR_SHAPE, "6 heads over 4 kv refused");
}

/* Attention with q/k norm + rope + cache stores folded in must equal
 * qkv_norm_rope (into the caches) then attention_decode, bit for bit: the
 * output and both whole caches, over single- and multi-split positions
 * with one workspace (its counters must reset). */
static void test_attention_qkn(void) {
    NEED_GPU();
    const int cfg[][5] = {{32, 4, 128, 700, 128}, {16, 2, 64, 90, 64}, {8, 8, 128, 40, 64}, {4, 1, 32, 300, 32}};
    for (int ci = 0; ci < 4; ci++) {
        const int nh = cfg[ci][0], nkv = cfg[ci][1], d = cfg[ci][2], ctx = cfg[ci][3], nrot = cfg[ci][4];
        const int64_t cn = (int64_t)ctx * nkv * d;
        float *kc = rnd(cn, 1.0), *vc = rnd(cn, 1.0), *wq = rnd(d, 0.3), *wk = rnd(d, 0.3), tab[64];
        for (int k = 0; k < nrot / 2; k++) tab[k] = (float)pow(1e6, -2.0 * k / nrot);
        float *dk1 = dev_f32(kc, cn), *dv1 = dev_f32(vc, cn), *dk2 = dev_f32(kc, cn), *dv2 = dev_f32(vc, cn);
        float *dwq = dev_f32(wq, d), *dwk = dev_f32(wk, d), *dtab = dev_f32(tab, nrot / 2);
        int64_t wsb = zm_gpu_attention_ws_bytes(nh, nkv, d, ctx);
        void *ws1 = dup_h2d(NULL, (size_t)wsb), *ws2 = dup_h2d(NULL, (size_t)wsb);
        ZT_OK(zm_cuda_memset(ws1, 0, (size_t)wsb));
        ZT_OK(zm_cuda_memset(ws2, 0, (size_t)wsb));
        int32_t *dpos = dup_h2d(NULL, 4);
        const int poss[] = {0, 1, 31, ctx / 2, ctx - 1, 5};
        for (int pi = 0; pi < 6; pi++) {
            const int p = poss[pi];
            ZT_OK(zm_cuda_memcpy_h2d(dpos, &p, 4));
            float *xq = rnd(nh * d, 2.0), *xk = rnd(nkv * d, 2.0), *xv = rnd(nkv * d, 1.0);
            float *dxq = dev_f32(xq, nh * d), *dxk = dev_f32(xk, nkv * d), *dxv = dev_f32(xv, nkv * d);
            float *dyq = dev_poison(nh * d), *dyk = dev_poison(nkv * d), *do1 = dev_poison(nh * d), *do2 = dev_poison(nh * d);
            const float scale = (float)(1.0 / sqrt(d)), eps = 1e-6f;
            ZT_OK(zm_gpu_qkv_norm_rope(dxq, dwq, dyq, nh, dxk, dwk, dyk, dk1, nkv, dxv, dv1, d, nrot, eps, dpos, dtab, NULL));
            ZT_OK(zm_gpu_attention_decode(dyq, dk1, dv1, nh, nkv, d, ctx, scale, dpos, ws1, do1, NULL));
            zm_gpu_qkn qkn = {dxq, dwq, dxk, dwk, dxv, dk2, dv2, eps, nrot, dtab};
            ZT_OK(zm_gpu_attention_decode_qkn(&qkn, nh, nkv, d, ctx, scale, dpos, ws2, do2, NULL));
            float *o1 = get_f32(do1, nh * d), *o2 = get_f32(do2, nh * d);
            float *k1 = get_f32(dk1, cn), *k2 = get_f32(dk2, cn), *v1 = get_f32(dv1, cn), *v2 = get_f32(dv2, cn);
            char what[96];
            snprintf(what, sizeof what, "attention_qkn h%d kv%d d%d rot%d pos %d: out", nh, nkv, d, nrot, p);
            same_bits(what, o1, o2, nh * d);
            same_bits("attention_qkn: k cache", k1, k2, cn);
            same_bits("attention_qkn: v cache", v1, v2, cn);
            free(xq); free(xk); free(xv); free(o1); free(o2); free(k1); free(k2); free(v1); free(v2);
            zm_cuda_free(dxq); zm_cuda_free(dxk); zm_cuda_free(dxv); zm_cuda_free(dyq); zm_cuda_free(dyk);
            zm_cuda_free(do1); zm_cuda_free(do2);
            if (zt_failed_now()) break;
        }
        free(kc); free(vc); free(wq); free(wk);
        zm_cuda_free(dk1); zm_cuda_free(dv1); zm_cuda_free(dk2); zm_cuda_free(dv2); zm_cuda_free(dwq); zm_cuda_free(dwk);
        zm_cuda_free(dtab); zm_cuda_free(ws1); zm_cuda_free(ws2); zm_cuda_free(dpos);
        if (zt_failed_now()) return;
    }
    zm_gpu_qkn bad = {0};
    ZT_CHECK(zm_gpu_attention_decode_qkn(&bad, 8, 2, 64, 10, 1.0f, NULL, NULL, NULL, NULL) == ZM_ERR_INVALID, "missing inputs refused");
}

// Attention as thread-block clusters (ZMLX_ATT_CLUSTER)
static void att_env_off(void) {
    set_knob("ZMLX_ATT_CLUSTER", NULL);
    set_knob("ZMLX_ATT_SPLITS", NULL);
    set_knob("ZMLX_ATT_EARLY", NULL);
    set_knob("ZMLX_ATT_PUSH", NULL);
}
/* The reference run: the workspace merge; the run under test: clusters of
 * c with the partials pulled by (push 0) or pushed to (1: st.async onto
 * their mbarrier) the merging blocks. */
static void att_ref(void) {
    set_knob("ZMLX_ATT_CLUSTER", "0");
    set_knob("ZMLX_ATT_PUSH", "0");
}
static void att_mode(const char *c, int push) {
    set_knob("ZMLX_ATT_CLUSTER", c);
    set_knob("ZMLX_ATT_PUSH", push ? "1" : "0");
}
static void poison_dev(float *d, int64_t n) {
    float *h = malloc((size_t)n * 4);
    zt_poison_f32(h, n);
    ZT_OK(zm_cuda_memcpy_h2d(d, h, (size_t)n * 4));
    free(h);
}
static int ws_untouched(const char *what, const void *ws, const unsigned char *pat, int64_t n) {
    unsigned char *h = malloc((size_t)n);
    ZT_OK(zm_cuda_sync());
    ZT_OK(zm_cuda_memcpy_d2h(h, ws, (size_t)n));
    const int ok = memcmp(h, pat, (size_t)n) == 0;
    ZT_CHECK(ok, "%s: the cluster run wrote its workspace", what);
    free(h);
    return ok;
}

/* Both runs' outputs start as the same NaN: the reference must have
 * written every element for equal bits to mean anything. */
static int all_written(const char *what, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            ZT_CHECK(0, "%s: [%lld] = %g not written", what, (long long)i, x[i]);
            return 0;
        }
    return 1;
}

/* ZMLX_ATT_CLUSTER=C runs a (kv head, head group)'s C splits as one
 * thread-block cluster merging through distributed shared memory: it must
 * give the bits of the workspace merge over as many splits
 * (ZMLX_ATT_SPLITS=C with ZMLX_ATT_CLUSTER=0, the merge the default takes
 * when the plan cannot be one cluster), for both entries (qkn: the new
 * cache row too), with and without the early K/V reads, at one active split, fewer than
 * C, all C, and lengths off the rows-per-split grid (checked as met), with
 * the partials pulled from the peers or pushed to the merging blocks
 * (ZMLX_ATT_PUSH, the default; its launches counted, so a silent
 * fallback fails), against the workspace merge. Its
 * workspace, filled with a pattern, must come back untouched: the cluster
 * path ran, not the fence + atomic one. */
static void test_attention_cluster(void) {
    NEED_GPU();
    att_env_off();
    set_knob("ZMLX_ATT_MINROWS", NULL); /* the rows-per-split floor (8) the coverage count below assumes */
    /* nh, nkv, head_dim, ctx, n_rot (0: no qkn entry, head_dim > 128) */
    const int cfg[][5] = {{32, 4, 128, 1100, 128}, {6, 2, 80, 600, 64}, {8, 2, 64, 700, 64}, {4, 1, 32, 600, 32}, {4, 2, 256, 600, 0}};
    const char *cls[] = {"2", "8", "16"};
    int seen[4] = {0}; /* n_act == 1, 1 < n_act < C, n_act == C, last split short */
    for (int ci = 0; ci < 5; ci++) {
        const int nh = cfg[ci][0], nkv = cfg[ci][1], d = cfg[ci][2], ctx = cfg[ci][3], nrot = cfg[ci][4];
        const int64_t cn = (int64_t)ctx * nkv * d, rown = (int64_t)nkv * d;
        const float scale = (float)(1.0 / sqrt(d)), eps = 1e-6f;
        float *kc = rnd(cn, 1.0), *vc = rnd(cn, 1.0), *wq = rnd(d, 0.3), *wk = rnd(d, 0.3), tab[64] = {0};
        for (int k = 0; k < nrot / 2; k++) tab[k] = (float)pow(1e6, -2.0 * k / nrot);
        float *dk1 = dev_f32(kc, cn), *dv1 = dev_f32(vc, cn), *dk2 = dev_f32(kc, cn), *dv2 = dev_f32(vc, cn);
        float *dwq = dev_f32(wq, d), *dwk = dev_f32(wk, d), *dtab = dev_f32(tab, 64);
        set_knob("ZMLX_ATT_SPLITS", "16"); /* the largest plan: room for every C */
        const int64_t wsb = zm_gpu_attention_ws_bytes(nh, nkv, d, ctx);
        void *ws1 = dup_h2d(NULL, (size_t)wsb), *ws2 = dup_h2d(NULL, (size_t)wsb);
        unsigned char *pat = malloc((size_t)wsb);
        memset(pat, 0xA5, (size_t)wsb);
        ZT_OK(zm_cuda_memset(ws1, 0, (size_t)wsb));
        ZT_OK(zm_cuda_memcpy_h2d(ws2, pat, (size_t)wsb));
        float *do1 = dev_poison(nh * d), *do2 = dev_poison(nh * d);
        int32_t *dpos = dup_h2d(NULL, 4);
        const int poss[] = {0, 5, 20, 100, 517, ctx - 1};
        for (int cc = 0; cc < 3 && !zt_failed_now(); cc++)
            for (int early = 1; early >= 0 && !zt_failed_now(); early--)
                for (int pi = 0; pi < 6 * 2 && !zt_failed_now(); pi++) {
                    const int push = pi / 6, C = atoi(cls[cc]), p = poss[pi % 6], L = p + 1;
                    const int chunk = (L + C - 1) / C > 8 ? (L + C - 1) / C : 8, n_act = (L + chunk - 1) / chunk;
                    seen[0] += n_act == 1;
                    seen[1] += n_act > 1 && n_act < C;
                    seen[2] += n_act == C;
                    seen[3] += n_act > 1 && L % chunk != 0;
                    set_knob("ZMLX_ATT_SPLITS", cls[cc]);
                    set_knob("ZMLX_ATT_EARLY", early ? NULL : "0");
                    ZT_OK(zm_cuda_memcpy_h2d(dpos, &p, 4));
                    char what[160];
                    snprintf(what, sizeof what, "attention cluster %d h%d kv%d d%d early %d push %d pos %d (%d of %d splits)",
                             C, nh, nkv, d, early, push, p, n_act, C);
                    /* decode: the workspace merge, then the cluster */
                    float *q = rnd(nh * d, 1.0), *dq = dev_f32(q, nh * d);
                    poison_dev(do1, nh * d);
                    poison_dev(do2, nh * d);
                    att_ref();
                    ZT_OK(zm_gpu_attention_decode(dq, dk1, dv1, nh, nkv, d, ctx, scale, dpos, ws1, do1, NULL));
                    att_mode(cls[cc], push);
                    const int pl0 = zm_gpu_att_push_launches();
                    ZT_OK(zm_gpu_attention_decode(dq, dk1, dv1, nh, nkv, d, ctx, scale, dpos, ws2, do2, NULL));
                    /* the push kernel ran exactly when asked for and possible (head_dim <= 128) */
                    ZT_CHECK(zm_gpu_att_push_launches() - pl0 == (push && d <= 128), "%s: push launches %d", what,
                             zm_gpu_att_push_launches() - pl0);
                    float *o1 = get_f32(do1, nh * d), *o2 = get_f32(do2, nh * d);
                    all_written(what, o1, nh * d);
                    same_bits(what, o2, o1, nh * d);
                    ws_untouched(what, ws2, pat, wsb);
                    free(q); free(o1); free(o2); zm_cuda_free(dq);
                    if (!nrot) continue;
                    /* qkn: each cache pair gets row p; the same bits in both */
                    float *xq = rnd(nh * d, 2.0), *xk = rnd(nkv * d, 2.0), *xv = rnd(nkv * d, 1.0);
                    float *dxq = dev_f32(xq, nh * d), *dxk = dev_f32(xk, nkv * d), *dxv = dev_f32(xv, nkv * d);
                    zm_gpu_qkn q1 = {dxq, dwq, dxk, dwk, dxv, dk1, dv1, eps, nrot, dtab}, q2 = q1;
                    q2.k_cache = dk2;
                    q2.v_cache = dv2;
                    poison_dev(do1, nh * d);
                    poison_dev(do2, nh * d);
                    att_ref();
                    ZT_OK(zm_gpu_attention_decode_qkn(&q1, nh, nkv, d, ctx, scale, dpos, ws1, do1, NULL));
                    att_mode(cls[cc], push);
                    ZT_OK(zm_gpu_attention_decode_qkn(&q2, nh, nkv, d, ctx, scale, dpos, ws2, do2, NULL));
                    o1 = get_f32(do1, nh * d);
                    o2 = get_f32(do2, nh * d);
                    float *k1 = get_f32(dk1 + p * rown, rown), *k2 = get_f32(dk2 + p * rown, rown);
                    float *v1 = get_f32(dv1 + p * rown, rown), *v2 = get_f32(dv2 + p * rown, rown);
                    snprintf(what, sizeof what, "attention_qkn cluster %d h%d kv%d d%d early %d push %d pos %d (%d of %d splits)",
                             C, nh, nkv, d, early, push, p, n_act, C);
                    all_written(what, o1, nh * d);
                    same_bits(what, o2, o1, nh * d);
                    same_bits("attention_qkn cluster: k row", k2, k1, rown);
                    same_bits("attention_qkn cluster: v row", v2, v1, rown);
                    ws_untouched(what, ws2, pat, wsb);
                    free(xq); free(xk); free(xv); free(o1); free(o2); free(k1); free(k2); free(v1); free(v2);
                    zm_cuda_free(dxq); zm_cuda_free(dxk); zm_cuda_free(dxv);
                }
        /* a cluster size the hardware cannot run is refused, not ignored */
        set_knob("ZMLX_ATT_CLUSTER", "17");
        ZT_CHECK(zm_gpu_attention_decode(do2, dk1, dv1, nh, nkv, d, ctx, scale, dpos, ws1, do1, NULL) == ZM_ERR_UNSUPPORTED,
                 "ZMLX_ATT_CLUSTER=17 refused");
        att_env_off();
        free(kc); free(vc); free(wq); free(wk); free(pat);
        zm_cuda_free(dk1); zm_cuda_free(dv1); zm_cuda_free(dk2); zm_cuda_free(dv2); zm_cuda_free(dwq); zm_cuda_free(dwk);
        zm_cuda_free(dtab); zm_cuda_free(ws1); zm_cuda_free(ws2); zm_cuda_free(do1); zm_cuda_free(do2); zm_cuda_free(dpos);
        if (zt_failed_now()) return;
    }
    ZT_CHECK(seen[0] && seen[1] && seen[2] && seen[3], "cluster cases met: one split %d, fewer %d, all %d, short last %d", seen[0],
             seen[1], seen[2], seen[3]);
}

static void test_embedding_argmax(void) {
    NEED_GPU();
    for (int di = 0; di < 5; di++) {
        const int64_t vocab = 300, cols = 96, n = 4;
        wmat E;
        wmat_make(&E, all_dt[di], 1, vocab, cols);
        int32_t ids[4] = {0, 299, 17, 17};
        int32_t *dids = dup_h2d(ids, 16);
        float *dout = dev_poison(n * cols);
        ZT_OK(zm_gpu_embedding(&E.dev, dids, n, dout, NULL));
        float *out = get_f32(dout, n * cols);
        double *ref = malloc(n * cols * 8);
        for (int t = 0; t < n; t++) for (int64_t c = 0; c < cols; c++) ref[t * cols + c] = E.val[ids[t] * cols + c];
        check_l2("embedding", out, ref, n * cols, 1e-7);
        free(out); free(ref); zm_cuda_free(dids); zm_cuda_free(dout); wmat_free(&E);
    }
    const int64_t sizes[] = {1, 100, 151936};
    for (int si = 0; si < 3; si++) {
        int64_t n = sizes[si];
        float *x = rnd(2 * n, 1.0);
        int64_t want0 = (int64_t)(zt_rand_u64() % n);
        x[want0] = 100.0f;
        x[n + n - 1] = 50.0f; /* ties: the first maximum wins */
        x[n + n / 2] = 50.0f;
        float *dx = dev_f32(x, 2 * n);
        int32_t *didx = dup_h2d(NULL, 8), idx[2];
        ZT_OK(zm_gpu_argmax(dx, 2, n, didx, NULL, NULL));
        ZT_OK(zm_cuda_sync());
        ZT_OK(zm_cuda_memcpy_d2h(idx, didx, 8));
        ZT_CHECK(idx[0] == want0, "argmax n=%lld: %d want %lld", (long long)n, idx[0], (long long)want0);
        ZT_CHECK(idx[1] == n / 2, "argmax tie n=%lld: %d want %lld", (long long)n, idx[1], (long long)(n / 2));
        /* one row over many blocks (workspace): the same answers, twice
         * (the counter must be left at zero), then with NaN and -inf */
        void *ws = dup_h2d(NULL, (size_t)zm_gpu_argmax_ws_bytes());
        ZT_OK(zm_cuda_memset(ws, 0, (size_t)zm_gpu_argmax_ws_bytes()));
        for (int rep = 0; rep < 2; rep++) {
            int32_t w2[2] = {-1, -1};
            ZT_OK(zm_gpu_argmax(dx, 1, n, didx, ws, NULL));
            ZT_OK(zm_gpu_argmax(dx + n, 1, n, didx + 1, ws, NULL));
            ZT_OK(zm_cuda_sync());
            ZT_OK(zm_cuda_memcpy_d2h(w2, didx, 8));
            ZT_CHECK(w2[0] == want0 && w2[1] == n / 2, "argmax ws n=%lld: %d %d want %lld %lld", (long long)n, w2[0], w2[1],
                     (long long)want0, (long long)(n / 2));
        }
        if (n > 1000) {
            for (int64_t i = 0; i < n; i++) x[i] = i % 3 ? NAN : -INFINITY;
            x[n - 5] = -1e30f;
            x[7] = NAN;
            float *dz = dev_f32(x, n);
            int32_t a = -1, b = -1;
            ZT_OK(zm_gpu_argmax(dz, 1, n, didx, NULL, NULL));
            ZT_OK(zm_gpu_argmax(dz, 1, n, didx + 1, ws, NULL));
            ZT_OK(zm_cuda_sync());
            ZT_OK(zm_cuda_memcpy_d2h(&a, didx, 4));
            ZT_OK(zm_cuda_memcpy_d2h(&b, didx + 1, 4));
            ZT_CHECK(a == n - 5 && b == n - 5, "argmax NaN/-inf n=%lld: %d and %d want %lld", (long long)n, a, b, (long long)(n - 5));
            zm_cuda_free(dz);
        }
        free(x); zm_cuda_free(dx); zm_cuda_free(didx); zm_cuda_free(ws);
    }
}

/* Router matvec + gating in one launch: logits, ids and weights must equal
 * zm_gpu_matvec then zm_gpu_topk_gating_softmax bit for bit, and the
 * counter must be left at zero (run twice). */
static void test_router_gate(void) {
    NEED_GPU();
    const int shapes[][3] = {{128, 2048, 8}, {8, 64, 2}, {60, 1056, 4}, {256, 512, 8}, {1024, 256, 32}, {40, 4096, 4}};
    for (int di = 0; di < 5; di++)
        for (int si = 0; si < 6; si++) {
            zm_dtype t = all_dt[di];
            const int n = shapes[si][0], cols = shapes[si][1], k = shapes[si][2];
            wmat w;
            wmat_make(&w, t, 1, n, cols);
            float *x = rnd(cols, 1.0), *g = rnd(cols, 0.3);
            for (int i = 0; i < cols; i++) g[i] += 1.0f;
            float *dx = dev_f32(x, cols), *dg = dev_f32(g, cols), *dl = dev_poison(n), *dl2 = dev_poison(n);
            float *dw = dev_poison(k), *dw2 = dev_poison(k);
            int32_t *di_ = dup_h2d(NULL, k * 4), *di2 = dup_h2d(NULL, k * 4), zero = 0;
            int *dc = (int *)dup_h2d(&zero, 4);
            const int fb = zm_gpu_fixed_launches();
            for (int rep = 0; rep < 2; rep++)
                ZT_OK(zm_gpu_router_gate(&w.dev, dx, dg, 1e-6f, dl, dc, k, 1, di_, dw, NULL));
            /* an F32 router of 2048 columns takes the fixed-shape instance
             * (ZMLX_CUDA_RT_FIXED), compared below with matvec + gating */
            ZT_CHECK(zm_gpu_fixed_launches() - fb == (t == ZM_F32 && cols == 2048 ? 2 : 0), "router_gate %s %dx%d: %d fixed launches",
                     zm_dtype_name(t), n, cols, zm_gpu_fixed_launches() - fb);
            ZT_OK(zm_gpu_matvec(&w.dev, 0, dx, dg, 1e-6f, NULL, dl2, NULL));
            ZT_OK(zm_gpu_topk_gating_softmax(dl2, 1, n, k, 1, di2, dw2, NULL));
            float *l = get_f32(dl, n), *l2 = get_f32(dl2, n), *wa = get_f32(dw, k), *wb = get_f32(dw2, k);
            int32_t ia[32], ib[32];
            int cnt = -1;
            ZT_OK(zm_cuda_memcpy_d2h(ia, di_, k * 4));
            ZT_OK(zm_cuda_memcpy_d2h(ib, di2, k * 4));
            ZT_OK(zm_cuda_memcpy_d2h(&cnt, dc, 4));
            char what[96];
            snprintf(what, sizeof what, "router_gate %s %dx%d k=%d", zm_dtype_name(t), n, cols, k);
            same_bits(what, l, l2, n);
            same_bits(what, wa, wb, k);
            for (int j = 0; j < k; j++) ZT_CHECK(ia[j] == ib[j], "%s: slot %d id %d vs %d", what, j, ia[j], ib[j]);
            ZT_CHECK(cnt == 0, "%s: counter left at %d", what, cnt);
            free(l); free(l2); free(wa); free(wb); free(x); free(g);
            zm_cuda_free(dx); zm_cuda_free(dg); zm_cuda_free(dl); zm_cuda_free(dl2); zm_cuda_free(dw); zm_cuda_free(dw2);
            zm_cuda_free(di_); zm_cuda_free(di2); zm_cuda_free(dc);
            wmat_free(&w);
            if (zt_failed_now()) return;
        }
    ZT_CHECK(zm_gpu_router_gate(NULL, NULL, NULL, 0, NULL, NULL, 2, 1, NULL, NULL, NULL) == ZM_ERR_INVALID, "no matrix refused");
}

/* The persistent kernel against the one-op kernels: a whole MoE layer plus
 * embedding, output head and argmax as steps of one launch (every step
 * kind), and the same chain launched kernel by kernel on copies of the
 * inputs and caches. Every intermediate must agree bit for bit, at several
 * positions (the caches grow in both), with the run repeated so the
 * barrier and the counters are seen to reset. */
typedef struct {
    int H, nh, nkv, d, ne, fi, k, V, ctx;
} ps_cfg;
static void ps_one(zm_dtype t, const ps_cfg *c) {
    const int H = c->H, nh = c->nh, nkv = c->nkv, d = c->d, ne = c->ne, fi = c->fi, k = c->k, V = c->V, ctx = c->ctx;
    wmat E, Wq, Wk, Wv, Wo, R, G, U, D, O;
    wmat_make(&E, t, 1, V, H);
    wmat_make(&Wq, t, 1, nh * d, H);
    wmat_make(&Wk, t, 1, nkv * d, H);
    wmat_make(&Wv, t, 1, nkv * d, H);
    wmat_make(&Wo, t, 1, H, nh * d);
    wmat_make(&R, ZM_F32, 1, ne, H);
    wmat_make(&G, t, ne, fi, H);
    wmat_make(&U, t, ne, fi, H);
    wmat_make(&D, t, ne, H, fi);
    wmat_make(&O, t, 1, V, H);
    float *n1 = rnd(H, 0.2), *n2 = rnd(H, 0.2), *n3 = rnd(H, 0.2), *wq = rnd(d, 0.3), *wk = rnd(d, 0.3), tab[64];
    for (int i = 0; i < H; i++) { n1[i] += 1; n2[i] += 1; n3[i] += 1; }
    for (int i = 0; i < 64; i++) tab[i] = (float)pow(1e6, -2.0 * i / d);
    float *dn1 = dev_f32(n1, H), *dn2 = dev_f32(n2, H), *dn3 = dev_f32(n3, H), *dwq = dev_f32(wq, d), *dwk = dev_f32(wk, d);
    float *dtab = dev_f32(tab, d / 2);
    const int64_t cn = (int64_t)ctx * nkv * d;
    const int64_t wsb = zm_gpu_attention_ws_bytes(nh, nkv, d, ctx);
    /* two copies of every buffer: [0] persistent, [1] one launch per op */
    float *x0[2], *q[2], *kk[2], *v[2], *att[2], *x1[2], *lg[2], *gw[2], *h[2], *x2[2], *out[2], *kc[2], *vc[2];
    int32_t *gid[2], *idx[2], *tok, *pos;
    void *ws[2];
    for (int b = 0; b < 2; b++) {
        x0[b] = dev_poison(H); q[b] = dev_poison(nh * d); kk[b] = dev_poison(nkv * d); v[b] = dev_poison(nkv * d);
        att[b] = dev_poison(nh * d); x1[b] = dev_poison(H); lg[b] = dev_poison(ne); gw[b] = dev_poison(k);
        h[b] = dev_poison(k * fi); x2[b] = dev_poison(H); out[b] = dev_poison(V);
        kc[b] = dup_h2d(NULL, (size_t)cn * 4); vc[b] = dup_h2d(NULL, (size_t)cn * 4);
        ZT_OK(zm_cuda_memset(kc[b], 0, (size_t)cn * 4));
        ZT_OK(zm_cuda_memset(vc[b], 0, (size_t)cn * 4));
        gid[b] = dup_h2d(NULL, 4 * (size_t)k); idx[b] = dup_h2d(NULL, 4);
        ws[b] = dup_h2d(NULL, (size_t)wsb);
        ZT_OK(zm_cuda_memset(ws[b], 0, (size_t)wsb));
    }
    tok = dup_h2d(NULL, 4);
    pos = dup_h2d(NULL, 4);
    /* the persistent run */
    zm_gpu_step st[10];
    {
        const zm_gpu_mat *qkv[3] = {&Wq.dev, &Wk.dev, &Wv.dev};
        float *y3[3] = {q[0], kk[0], v[0]};
        const zm_gpu_mat *wo = &Wo.dev, *r = &R.dev, *o = &O.dev;
        const float *res1 = x0[0];
        float *yo = x1[0], *yl = lg[0], *yout = out[0];
        zm_gpu_qkn qkn = {q[0], dwq, kk[0], dwk, v[0], kc[0], vc[0], 1e-6f, d, dtab};
        ZT_OK(zm_gpu_step_embedding(&st[0], &E.dev, tok, 1, x0[0]));
        ZT_OK(zm_gpu_step_matvec(&st[1], 3, qkv, x0[0], dn1, 1e-6f, NULL, y3));
        ZT_OK(zm_gpu_step_attention(&st[2], &qkn, NULL, NULL, NULL, nh, nkv, d, ctx, 0.125f, pos, ws[0], att[0]));
        ZT_OK(zm_gpu_step_matvec(&st[3], 1, &wo, att[0], NULL, 0.f, &res1, &yo));
        ZT_OK(zm_gpu_step_matvec(&st[4], 1, &r, x1[0], dn2, 1e-6f, NULL, &yl));
        ZT_OK(zm_gpu_step_gate(&st[5], lg[0], ne, k, 1, gid[0], gw[0]));
        ZT_OK(zm_gpu_step_swiglu(&st[6], &G.dev, &U.dev, gid[0], k, x1[0], dn2, 1e-6f, h[0]));
        ZT_OK(zm_gpu_step_combine(&st[7], &D.dev, gid[0], gw[0], k, h[0], x1[0], x2[0]));
        ZT_OK(zm_gpu_step_matvec(&st[8], 1, &o, x2[0], dn3, 1e-6f, NULL, &yout));
        ZT_OK(zm_gpu_step_argmax(&st[9], out[0], V, idx[0]));
    }
    zm_gpu_persist *P = NULL;
    ZT_OK(zm_gpu_persist_new(&P, st, 10));
    const int poss[] = {0, 1, 2, 33, 100, ctx - 1};
    for (int pi = 0; pi < 6 && P; pi++) {
        const int p = poss[pi];
        int32_t tk = (int32_t)(zt_rand_u64() % V);
        ZT_OK(zm_cuda_memcpy_h2d(pos, &p, 4));
        ZT_OK(zm_cuda_memcpy_h2d(tok, &tk, 4));
        ZT_OK(zm_gpu_persist_run(P, NULL));
        /* the same chain, one launch per op */
        const zm_gpu_mat *qkv[3] = {&Wq.dev, &Wk.dev, &Wv.dev};
        float *y3[3] = {q[1], kk[1], v[1]};
        zm_gpu_qkn qkn = {q[1], dwq, kk[1], dwk, v[1], kc[1], vc[1], 1e-6f, d, dtab};
        ZT_OK(zm_gpu_embedding(&E.dev, tok, 1, x0[1], NULL));
        ZT_OK(zm_gpu_matvec_multi(3, qkv, x0[1], dn1, 1e-6f, y3, NULL));
        ZT_OK(zm_gpu_attention_decode_qkn(&qkn, nh, nkv, d, ctx, 0.125f, pos, ws[1], att[1], NULL));
        ZT_OK(zm_gpu_matvec(&Wo.dev, 0, att[1], NULL, 0.f, x0[1], x1[1], NULL));
        ZT_OK(zm_gpu_matvec(&R.dev, 0, x1[1], dn2, 1e-6f, NULL, lg[1], NULL));
        ZT_OK(zm_gpu_topk_gating_softmax(lg[1], 1, ne, k, 1, gid[1], gw[1], NULL));
        /* early: the ids come from two launches back, as in the executor */
        ZT_OK(zm_gpu_gather_qmm_swiglu(&G.dev, &U.dev, gid[1], 1, k, x1[1], dn2, 1e-6f, h[1], NULL));
        ZT_OK(zm_gpu_gather_qmm_combine(&D.dev, gid[1], gw[1], 1, k, h[1], x1[1], x2[1], 1, NULL));
        ZT_OK(zm_gpu_matvec(&O.dev, 0, x2[1], dn3, 1e-6f, NULL, out[1], NULL));
        ZT_OK(zm_gpu_argmax(out[1], 1, V, idx[1], NULL, NULL));
        struct { const char *name; float **buf; int64_t n; } cmp[] = {
            {"embedding", x0, H}, {"q", q, nh * d}, {"k", kk, nkv * d}, {"v", v, nkv * d}, {"attention", att, nh * d},
            {"o_proj + residual", x1, H}, {"router logits", lg, ne}, {"gate weights", gw, k}, {"swiglu", h, (int64_t)k * fi},
            {"combine + residual", x2, H}, {"output logits", out, V}, {"k cache", kc, cn}, {"v cache", vc, cn}};
        for (size_t ci = 0; ci < sizeof cmp / sizeof cmp[0]; ci++) {
            float *a = get_f32(cmp[ci].buf[0], cmp[ci].n), *b = get_f32(cmp[ci].buf[1], cmp[ci].n);
            char what[96];
            snprintf(what, sizeof what, "persist %s H%d pos %d: %s", zm_dtype_name(t), H, p, cmp[ci].name);
            same_bits(what, a, b, cmp[ci].n);
            free(a);
            free(b);
        }
        int32_t ia[64], ib[64];
        ZT_OK(zm_cuda_memcpy_d2h(ia, gid[0], 4 * (size_t)k));
        ZT_OK(zm_cuda_memcpy_d2h(ib, gid[1], 4 * (size_t)k));
        for (int j = 0; j < k; j++) ZT_CHECK(ia[j] == ib[j], "persist %s pos %d: expert slot %d: %d vs %d", zm_dtype_name(t), p, j, ia[j], ib[j]);
        ZT_OK(zm_cuda_memcpy_d2h(ia, idx[0], 4));
        ZT_OK(zm_cuda_memcpy_d2h(ib, idx[1], 4));
        ZT_CHECK(ia[0] == ib[0], "persist %s pos %d: argmax %d vs %d", zm_dtype_name(t), p, ia[0], ib[0]);
        if (zt_failed_now()) break;
    }
    zm_gpu_persist_free(P);
    for (int b = 0; b < 2; b++) {
        float *all[] = {x0[b], q[b], kk[b], v[b], att[b], x1[b], lg[b], gw[b], h[b], x2[b], out[b], kc[b], vc[b]};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) zm_cuda_free(all[i]);
        zm_cuda_free(gid[b]); zm_cuda_free(idx[b]); zm_cuda_free(ws[b]);
    }
    zm_cuda_free(tok); zm_cuda_free(pos);
    zm_cuda_free(dn1); zm_cuda_free(dn2); zm_cuda_free(dn3); zm_cuda_free(dwq); zm_cuda_free(dwk); zm_cuda_free(dtab);
    free(n1); free(n2); free(n3); free(wq); free(wk);
    wmat *ws_[] = {&E, &Wq, &Wk, &Wv, &Wo, &R, &G, &U, &D, &O};
    for (size_t i = 0; i < sizeof ws_ / sizeof ws_[0]; i++) wmat_free(ws_[i]);
}

static void test_persist(void) {
    NEED_GPU();
    const ps_cfg small = {256, 8, 2, 64, 16, 96, 4, 1000, 300};
    const ps_cfg wide = {1024, 16, 4, 128, 64, 256, 8, 5000, 600};
    for (int di = 0; di < 5; di++) {
        ps_one(all_dt[di], &small);
        if (zt_failed_now()) return;
    }
    ps_one(ZM_Q4_0, &wide);
    ps_one(ZM_Q8_0, &wide);
    zm_gpu_step s;
    zm_gpu_persist *P = NULL;
    ZT_CHECK(zm_gpu_persist_new(&P, NULL, 0) == ZM_ERR_INVALID && !P, "no steps refused");
    memset(&s, 0, sizeof s);
    s.op = 99;
    ZT_CHECK(zm_gpu_persist_new(&P, &s, 1) == ZM_ERR_INVALID && !P, "unknown step kind refused");
    ZT_CHECK(zm_gpu_step_gate(&s, NULL, 8, 2, 1, NULL, NULL) == ZM_ERR_INVALID, "gate step without buffers refused");
    ZT_CHECK(zm_gpu_step_gate(&s, (const float *)&s, 8, 9, 1, (int32_t *)&s, (float *)&s) == ZM_ERR_RANGE, "gate step k > n refused");
}

static void test_bad_input(void) {
    NEED_GPU();
    zm_gpu_mat m;
    uint8_t junk[64] = {0};
    ZT_CHECK(zm_gpu_mat_upload(&m, ZM_Q4_0, junk, 1, 1, 40) == ZM_ERR_SHAPE, "Q4_0 cols 40 refused");
    ZT_CHECK(zm_gpu_mat_upload(&m, ZM_Q4_K, junk, 1, 1, 256) == ZM_ERR_DTYPE, "Q4_K refused");
    ZT_CHECK(zm_gpu_mat_upload(&m, ZM_F32, NULL, 1, 1, 32) == ZM_ERR_INVALID, "NULL host refused");
    ZT_OK(zm_gpu_mat_upload(&m, ZM_F32, junk, 1, 2, 8));
    ZT_CHECK(zm_gpu_matvec(&m, 0, NULL, NULL, 0, NULL, NULL, NULL) == ZM_ERR_SHAPE, "cols 8 matvec refused");
    zm_gpu_mat_free(&m);
    zm_gpu_mat_free(NULL);
}

int main(void) {
    ZT_RUN(test_matvec);
    ZT_RUN(test_matvec_multi_and_norm_bits);
    ZT_RUN(test_matvec_wide);
    ZT_RUN(test_matvec_fixed);
    ZT_RUN(test_matmul);
    ZT_RUN(test_experts);
    ZT_RUN(test_routing);
    ZT_RUN(test_router_gate);
    ZT_RUN(test_moe_combine_small_ops);
    ZT_RUN(test_norms);
    ZT_RUN(test_rope_qknorm);
    ZT_RUN(test_attention);
    ZT_RUN(test_attention_qkn);
    ZT_RUN(test_attention_cluster);
    ZT_RUN(test_embedding_argmax);
    ZT_RUN(test_persist);
    ZT_RUN(test_bad_input);
    return zt_finish();
}
