/* CPU matrix-vector kernels (src/kernels/cpu_matvec.c, cpu_matvec_x86.c):
 * every weight type x every ISA path this CPU has x both activation modes,
 * against a float64 reference on weights dequantized here from the ggml
 * block layout (independently of the kernels), at awkward sizes, with
 * poisoned outputs and guard cells; the paths must also agree with the
 * scalar one; batch and expert variants; bad arguments; $ZMLX_CPU_ISA.
 * Run: build/tests/test_matvec */
#include "harness.h"
#include "kernels/cpu_matvec.h"
#include "zmlx/core.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const zm_dtype types[] = {ZM_F32, ZM_F16, ZM_BF16, ZM_Q8_0, ZM_Q4_0};
static zm_pool *pool2;

// ---------------------------------------------------------------------------
// random weights and their float64 dequantization (ggml layouts, written out
// by hand: Q8_0 = f16 d + 32 int8; Q4_0 = f16 d + 16 bytes, low nibbles are
// elements 0..15, high nibbles 16..31, value (q - 8) * d)

static void *rand_weights(zm_dtype t, int64_t rows, int64_t cols) {
    int64_t rb = zm_matvec_row_bytes(t, cols), n = rows * cols;
    uint8_t *w = malloc((size_t)(rows * rb));
    if (t == ZM_F32) zt_fill_normal((float *)w, n, 1.0);
    else if (t == ZM_F16 || t == ZM_BF16) {
        for (int64_t i = 0; i < n; i++) {
            float f = (float)zt_normal();
            ((uint16_t *)w)[i] = t == ZM_F16 ? zm_f32_to_f16(f) : zm_f32_to_bf16(f);
        }
    } else {
        int64_t bb = t == ZM_Q8_0 ? 34 : 18;
        for (int64_t b = 0; b < rows * cols / 32; b++) {
            uint8_t *p = w + b * bb;
            uint16_t d = zm_f32_to_f16((float)zt_uniform(0.001, 0.05));
            memcpy(p, &d, 2);
            for (int j = 2; j < bb; j++) p[j] = (uint8_t)zt_rand_u64(); /* full range, -128 included */
        }
    }
    return w;
}

static double *dequant(zm_dtype t, const void *w, int64_t rows, int64_t cols) {
    double *o = malloc((size_t)(rows * cols) * sizeof *o);
    const uint8_t *p = w;
    for (int64_t i = 0; i < rows * cols; i++) {
        if (t == ZM_F32) o[i] = ((const float *)w)[i];
        else if (t == ZM_F16) o[i] = zm_f16_to_f32(((const uint16_t *)w)[i]);
        else if (t == ZM_BF16) o[i] = zm_bf16_to_f32(((const uint16_t *)w)[i]);
        else {
            int64_t b = i / 32, j = i % 32;
            const uint8_t *blk = p + b * (t == ZM_Q8_0 ? 34 : 18);
            uint16_t dh;
            memcpy(&dh, blk, 2);
            double d = zm_f16_to_f32(dh);
            if (t == ZM_Q8_0) o[i] = d * (int8_t)blk[2 + j];
            else o[i] = d * ((j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4)) - 8);
        }
    }
    return o;
}

/* x quantized as the q8 mode does it (ggml's x86 quantize_row_q8_0: scale
 * f16(amax/127), q = round-half-even(x * 127/amax)), back to double: the
 * reference for that mode is exact math on this x. */
static void q8_round_x(double *xo, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        float d = zm_f16_to_f32(zm_f32_to_f16(amax / 127.0f)), id = amax != 0 ? 127.0f / amax : 0;
        for (int j = 0; j < 32; j++) xo[b * 32 + j] = (double)d * (double)nearbyintf(x[b * 32 + j] * id);
    }
}

/* y = W x in float64; mag[r] = sum |W[r,c] x[c]| (NULL: not wanted), the
 * scale an f32 sum's rounding error is proportional to. */
static void ref_mv(double *y, double *mag, const double *w, const double *x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0, m = 0;
        for (int64_t c = 0; c < cols; c++) s += w[r * cols + c] * x[c], m += fabs(w[r * cols + c] * x[c]);
        y[r] = s;
        if (mag) mag[r] = m;
    }
}

/* |y - ref| <= tol * sqrt(cols) * mag per row: f32 summation error grows like
 * sqrt(cols) * eps * sum|terms|. tol = 8 * 2^-24 leaves room for 8x the
 * typical error yet catches one wrong term of average size at 2048 columns. */
#define F32_TOL (8.0 / 16777216.0)
static int close_mag(const char *what, const float *y, const double *ref, const double *mag, int64_t n,
                     int64_t cols, double tol) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double lim = tol * sqrt((double)cols) * mag[i] + 1e-30;
        if (!(fabs((double)y[i] - ref[i]) <= lim)) {
            if (bad < 4) ZT_CHECK(0, "%s[%lld]: got %.9g want %.9g (|err| %.3g > %.3g)", what, (long long)i, y[i],
                                  ref[i], fabs((double)y[i] - ref[i]), lim);
            bad++;
        }
    }
    return bad == 0;
}

// ---------------------------------------------------------------------------

static double worst_q8_err; /* q8 mode vs the f32 reference, rel L2 over >= 33 rows */

static void check_case(zm_dtype t, int64_t rows, int64_t cols) {
    void *w = rand_weights(t, rows, cols);
    double *wd = dequant(t, w, rows, cols);
    float *x = malloc((size_t)cols * sizeof *x);
    double *xd = malloc((size_t)cols * sizeof *xd), *ref = malloc((size_t)rows * sizeof *ref);
    double *refq = malloc((size_t)rows * sizeof *refq), *mag = malloc((size_t)rows * sizeof *mag);
    double *magq = malloc((size_t)rows * sizeof *magq);
    int fails0 = zt_failed_now();
    float *y = malloc((size_t)(rows + 1) * sizeof *y), *ys = malloc((size_t)rows * sizeof *ys);
    zt_fill_normal(x, cols, 1.0);
    for (int64_t c = 0; c < cols; c++) xd[c] = x[c];
    ref_mv(ref, mag, wd, xd, rows, cols);
    int quant = t == ZM_Q8_0 || t == ZM_Q4_0;
    if (quant) {
        q8_round_x(xd, x, cols);
        ref_mv(refq, magq, wd, xd, rows, cols);
    }
    char what[96];
    for (int act = 0; act <= quant; act++) {
        for (int isa = ZM_ISA_SCALAR; isa < ZM_ISA_COUNT; isa++) {
            if (!zm_cpu_isa_supported((zm_cpu_isa)isa)) continue;
            zm_matvec_opts o = {(zm_cpu_isa)isa, act};
            zm_pool *pools[2] = {NULL, pool2};
            for (int pi = 0; pi < 2; pi++) {
                zt_poison_f32(y, rows);
                y[rows] = 12345.0f; /* guard: must stay */
                ZT_OK(zm_matvec(pools[pi], &o, t, w, rows, cols, x, y));
                snprintf(what, sizeof what, "%s %s %s %lldx%lld %s", zm_dtype_name(t), zm_cpu_isa_name(o.isa),
                         act ? "q8act" : "f32act", (long long)rows, (long long)cols, pi ? "2 threads" : "1 thread");
                /* f32 mode: only f32 rounding in the sum; q8 mode: exact int
                 * dot, then f32 scaling, against math on the rounded x. */
                close_mag(what, y, act ? refq : ref, act ? magq : mag, rows, cols, F32_TOL);
                ZT_CHECK(y[rows] == 12345.0f, "%s: wrote past the last row", what);
                if (isa == ZM_ISA_SCALAR && pi == 0) memcpy(ys, y, (size_t)rows * sizeof *y);
                else {
                    double *ysd = malloc((size_t)rows * sizeof *ysd);
                    for (int64_t r = 0; r < rows; r++) ysd[r] = ys[r];
                    snprintf(what + strlen(what), sizeof what - strlen(what), " vs scalar");
                    close_mag(what, y, ysd, act ? magq : mag, rows, cols, 2 * F32_TOL);
                    free(ysd);
                }
                if (act && rows >= 33) { /* a single dot may cancel to ~0: judge over many rows */
                    double e = zt_rel_l2(y, ref, rows);
                    if (e > worst_q8_err) worst_q8_err = e;
                    ZT_CHECK(e < 2e-2, "%s: q8 activations off the f32 reference by %g (rel L2)", what, e);
                }
                if (zt_failed_now() > fails0) goto done;
            }
        }
    }
done:
    free(w), free(wd), free(x), free(xd), free(ref), free(refq), free(mag), free(magq), free(y), free(ys);
}

static void test_all_types_isas_sizes(void) {
    const int64_t rows[] = {1, 7, 33}, cols[] = {32, 96, 2048};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
        for (int ri = 0; ri < 3; ri++)
            for (int ci = 0; ci < 3; ci++) check_case(types[ti], rows[ri], cols[ci]);
    /* float types take any length: tails of 1..15 after the SIMD body */
    const int64_t odd[] = {1, 5, 37, 100, 1027};
    for (int ti = 0; ti < 3; ti++)
        for (int ci = 0; ci < 5; ci++) check_case(types[ti], 5, odd[ci]);
    printf("  q8 activations vs f32 reference: worst rel L2 %.2e\n", worst_q8_err);
    ZT_CHECK(worst_q8_err > 0, "q8 mode never differed from f32: was it run?");
}

static void test_batch(void) {
    const int64_t rows = 19, cols = 96, n = 3, ldx = 100, ldy = 23;
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        zm_dtype t = types[ti];
        void *w = rand_weights(t, rows, cols);
        double *wd = dequant(t, w, rows, cols), xd[96], ref[19], mag[19];
        float x[3 * 100], y[3 * 23];
        zt_fill_normal(x, n * ldx, 1.0);
        for (int isa = ZM_ISA_SCALAR; isa < ZM_ISA_COUNT; isa++) {
            if (!zm_cpu_isa_supported((zm_cpu_isa)isa)) continue;
            zm_matvec_opts o = {(zm_cpu_isa)isa, 0};
            for (int i = 0; i < n * ldy; i++) y[i] = 777.0f; /* padding must stay */
            for (int64_t j = 0; j < n; j++) zt_poison_f32(y + j * ldy, rows);
            ZT_OK(zm_matvec_batch(pool2, &o, t, w, rows, cols, n, x, ldx, y, ldy));
            for (int64_t j = 0; j < n; j++) {
                for (int64_t c = 0; c < cols; c++) xd[c] = x[j * ldx + c];
                ref_mv(ref, mag, wd, xd, rows, cols);
                char what[64];
                snprintf(what, sizeof what, "batch %s %s vec %lld", zm_dtype_name(t), zm_cpu_isa_name(o.isa), (long long)j);
                close_mag(what, y + j * ldy, ref, mag, rows, cols, F32_TOL);
                for (int64_t r = rows; r < ldy; r++) ZT_CHECK(y[j * ldy + r] == 777.0f, "%s: padding written", what);
            }
        }
        free(w), free(wd);
    }
}

static void test_experts(void) {
    const int64_t rows = 24, cols = 64, ne = 5, k = 3;
    const int32_t ids[3] = {4, 0, 4};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        zm_dtype t = types[ti];
        int64_t stride = rows * zm_matvec_row_bytes(t, cols);
        uint8_t *w = rand_weights(t, rows * ne, cols);
        double *wd = dequant(t, w, rows * ne, cols), xd[64], ref[24], mag[24];
        float x[3 * 64], y[3 * 24];
        zt_fill_normal(x, k * cols, 1.0);
        for (int shared = 0; shared <= 1; shared++)
            for (int act = 0; act <= 1; act++) {
                zm_matvec_opts o = {ZM_ISA_AUTO, act};
                zt_poison_f32(y, k * rows);
                ZT_OK(zm_matvec_experts(pool2, &o, t, w, rows, cols, stride, ne, ids, k, x, shared ? 0 : cols, y, rows));
                for (int64_t j = 0; j < k; j++) {
                    const float *xj = x + (shared ? 0 : j * cols);
                    for (int64_t c = 0; c < cols; c++) xd[c] = xj[c];
                    if (act && (t == ZM_Q8_0 || t == ZM_Q4_0)) q8_round_x(xd, xj, cols);
                    ref_mv(ref, mag, wd + ids[j] * rows * cols, xd, rows, cols);
                    char what[64];
                    snprintf(what, sizeof what, "experts %s k=%lld shared=%d act_q8=%d", zm_dtype_name(t), (long long)j, shared, act);
                    close_mag(what, y + j * rows, ref, mag, rows, cols, F32_TOL);
                }
            }
        free(w), free(wd);
    }
}

/* The grouped prefill variant must give exactly what per-token calls give
 * (same kernel on the same vectors), and match float64. */
static void test_experts_tokens(void) {
    enum { T = 5, K = 3, NE = 6, ROWS = 40, COLS = 96 };
    int32_t ids[T * K];
    for (int t = 0; t < T; t++) /* distinct within a token, shared across tokens */
        for (int j = 0; j < K; j++) ids[t * K + j] = (int32_t)((t + 2 * j + (int)(zt_rand_u64() % 2) * (j == K - 1)) % NE);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        zm_dtype t = types[ti];
        int64_t stride = ROWS * zm_matvec_row_bytes(t, COLS);
        uint8_t *w = rand_weights(t, ROWS * NE, COLS);
        double *wd = dequant(t, w, ROWS * NE, COLS), xd[COLS], ref[ROWS], mag[ROWS];
        float *x = malloc(sizeof(float) * T * K * COLS), *y = malloc(sizeof(float) * T * K * ROWS);
        float *y1 = malloc(sizeof(float) * T * K * ROWS);
        zt_fill_normal(x, T * K * COLS, 1.0);
        for (int per_pair = 0; per_pair <= 1; per_pair++)
            for (int act = 0; act <= 1; act++)
                for (int isa = ZM_ISA_SCALAR; isa < ZM_ISA_COUNT; isa++) {
                    if (!zm_cpu_isa_supported((zm_cpu_isa)isa)) continue;
                    zm_matvec_opts o = {(zm_cpu_isa)isa, act};
                    int64_t ldt = per_pair ? K * COLS : COLS, ldp = per_pair ? COLS : 0;
                    zt_poison_f32(y, T * K * ROWS);
                    ZT_OK(zm_matvec_experts_tokens(pool2, &o, t, w, ROWS, COLS, stride, NE, ids, T, K, x, ldt, ldp, y, ROWS));
                    for (int tok = 0; tok < T; tok++)
                        ZT_OK(zm_matvec_experts(NULL, &o, t, w, ROWS, COLS, stride, NE, ids + tok * K, K, x + tok * ldt,
                                                per_pair ? COLS : 0, y1 + tok * K * ROWS, ROWS));
                    ZT_CHECK(memcmp(y, y1, sizeof(float) * T * K * ROWS) == 0, "%s %s act_q8=%d per_pair=%d: grouped != per-token",
                             zm_dtype_name(t), zm_cpu_isa_name(o.isa), act, per_pair);
                    if (act) continue;
                    for (int p = 0; p < T * K; p++) {
                        for (int c = 0; c < COLS; c++) xd[c] = x[(p / K) * ldt + (p % K) * ldp + c];
                        ref_mv(ref, mag, wd + (int64_t)ids[p] * ROWS * COLS, xd, ROWS, COLS);
                        close_mag("experts_tokens", y + p * ROWS, ref, mag, ROWS, COLS, F32_TOL);
                    }
                    if (zt_failed_now()) break;
                }
        free(w), free(wd), free(x), free(y), free(y1);
    }
    float x[96] = {0}, y[40];
    uint8_t w[64];
    int32_t bad[2] = {0, 6};
    ZT_CHECK(zm_matvec_experts_tokens(NULL, NULL, ZM_F32, w, 1, 8, 32, 6, bad, 1, 2, x, 8, 0, y, 1) == ZM_ERR_RANGE &&
                 strstr(zm_last_error(), "ids[1] = 6"), "bad id: %s", zm_last_error());
    ZT_CHECK(zm_matvec_experts_tokens(NULL, NULL, ZM_F32, w, 1, 8, 32, 6, bad, 2, 1, x, 4, 0, y, 1) == ZM_ERR_SHAPE,
             "overlapping token vectors");
}

static void test_bad_args(void) {
    float x[64] = {0}, y[4];
    uint8_t w[4 * 64 * 4] = {0};
    zm_matvec_opts o = {ZM_ISA_AUTO, 0};
    ZT_CHECK(zm_matvec(NULL, &o, ZM_Q4_K, w, 1, 256, x, y) == ZM_ERR_DTYPE, "q4_k: %s", zm_last_error());
    ZT_CHECK(strstr(zm_last_error(), "q4_k"), "message names the type: %s", zm_last_error());
    ZT_CHECK(zm_matvec(NULL, &o, ZM_Q8_0, w, 1, 33, x, y) == ZM_ERR_SHAPE, "33 cols q8_0");
    ZT_CHECK(strstr(zm_last_error(), "33"), "message names cols: %s", zm_last_error());
    ZT_CHECK(zm_matvec(NULL, &o, ZM_F32, w, 0, 4, x, y) == ZM_ERR_SHAPE, "0 rows");
    ZT_CHECK(zm_matvec(NULL, &o, ZM_F32, NULL, 1, 4, x, y) == ZM_ERR_INVALID, "NULL w");
    ZT_CHECK(zm_matvec_batch(NULL, &o, ZM_F32, w, 4, 8, 2, x, 4, y, 4) == ZM_ERR_SHAPE, "ldx < cols");
    int32_t ids[2] = {1, 5};
    zt_poison_f32(y, 4);
    ZT_CHECK(zm_matvec_experts(NULL, &o, ZM_F32, w, 2, 8, 64, 4, ids, 2, x, 0, y, 2) == ZM_ERR_RANGE, "id 5 of 4");
    ZT_CHECK(strstr(zm_last_error(), "ids[1] = 5"), "message names the id: %s", zm_last_error());
    ZT_CHECK(isnan(y[0]) && isnan(y[1]), "nothing computed on error");
    ZT_CHECK(zm_matvec_experts(NULL, &o, ZM_F32, w, 2, 8, 32, 4, ids, 1, x, 0, y, 2) == ZM_ERR_SHAPE, "stride too small");
    o.isa = (zm_cpu_isa)99;
    ZT_CHECK(zm_matvec(NULL, &o, ZM_F32, w, 1, 4, x, y) == ZM_ERR_INVALID, "bad isa");
}

/* $ZMLX_CPU_ISA is read once per process: check it in children. */
static int child_isa(const char *env) {
    pid_t p = fork();
    if (p == 0) {
        setenv("ZMLX_CPU_ISA", env, 1);
        _exit((int)zm_cpu_isa_default());
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_env_force(void) {
    ZT_CHECK(child_isa("scalar") == ZM_ISA_SCALAR, "ZMLX_CPU_ISA=scalar");
    int want = zm_cpu_isa_supported(ZM_ISA_AVX2) ? ZM_ISA_AVX2 : ZM_ISA_SCALAR;
    ZT_CHECK(child_isa("avx2") == want, "ZMLX_CPU_ISA=avx2 -> %d", want);
    int best = child_isa("vnni");
    ZT_CHECK(best >= ZM_ISA_SCALAR && zm_cpu_isa_supported((zm_cpu_isa)best), "vnni lowered to a supported path");
    printf("  paths on this CPU:");
    for (int i = ZM_ISA_SCALAR; i < ZM_ISA_COUNT; i++)
        if (zm_cpu_isa_supported((zm_cpu_isa)i)) printf(" %s", zm_cpu_isa_name((zm_cpu_isa)i));
    printf(" (default %s)\n", zm_cpu_isa_name(zm_cpu_isa_default()));
}

int main(void) {
    ZT_RUN(test_env_force); /* first: before this process reads the env */
    if (zm_pool_new(&pool2, 2) != ZM_OK) return 1;
    ZT_RUN(test_all_types_isas_sizes);
    ZT_RUN(test_batch);
    ZT_RUN(test_experts);
    ZT_RUN(test_experts_tokens);
    ZT_RUN(test_bad_args);
    zm_pool_free(pool2);
    return zt_finish();
}
