/* Element-wise kernels from expressions, on the CPU: 36 expressions (every
 * DSL function at least once) on f32, f16 and bf16 against float64
 * references, through the C JIT and the interpreter (which must agree),
 * gradients (VJP kernels) against central finite differences in float64,
 * broadcasting (scalar, last-axis vector), parameters, emitted sources, and
 * bad input that must give a status, never a crash.
 * Run: build/tests/test_kernel (uses $ZMLX_CACHE / ~/.cache/zmlx). */
#include "harness.h"
#include "kernel_util.h"
#include "kernel_cases.h"
#include "zmlx/kernel.h"
#include <math.h>
#include <stdio.h>
#include <string.h>


static const zm_dtype dtypes[3] = {ZM_F32, ZM_F16, ZM_BF16};

/* Run kernel k on nin fresh inputs in [lo, hi] of dtype dt; out dtype odt.
 * ref = float64 reference on the rounded inputs; *outp gets the output. */
static int run_case(zm_kernel *k, const ecase *c, zm_dtype dt, zm_dtype odt, int64_t n, float **outp, double **refp,
                    float **inp) {
    zm_tensor *in[3] = {0}, *out;
    float *x = malloc(sizeof(float) * (size_t)n * 3);
    double *ref = malloc(sizeof(double) * (size_t)n);
    int ok = x && ref;
    for (int q = 0; ok && q < c->nin; q++) {
        zt_fill_uniform(x + q * n, n, c->lo, c->hi);
        in[q] = kt_make(dt, 1, &n, x + q * n);
        ok = in[q] != NULL;
    }
    out = kt_out(odt, 1, &n);
    ok = ok && out;
    if (ok) ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, c->nin));
    for (int64_t i = 0; ok && i < n; i++) {
        double v[3] = {x[i], c->nin > 1 ? x[n + i] : 0, c->nin > 2 ? x[2 * n + i] : 0};
        ref[i] = c->ref(v);
    }
    *outp = ok ? kt_read(out) : NULL;
    *refp = ref;
    *inp = x;
    for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
    zm_tensor_free(out);
    return ok && *outp;
}

/* Every expression x every dtype, JIT and interpreter, against float64; and
 * JIT == interpreter to a few ulp. */
static void test_expressions(void) {
    int64_t n = 3001; /* several blocks plus a ragged tail */
    for (int ci = 0; ci < N_CASES; ci++) {
        const ecase *c = &cases[ci];
        zm_kernel *kj = NULL, *ki = NULL;
        zm_kernel_opts o;
        memset(&o, 0, sizeof o);
        ZT_OK(zm_elementwise(&kj, "t", c->expr, NULL));
        o.force_interpreter = 1;
        ZT_OK(zm_elementwise(&ki, "t", c->expr, &o));
        if (!kj || !ki) { zm_kernel_free(kj); zm_kernel_free(ki); continue; }
        ZT_CHECK(!strcmp(zm_kernel_cpu_mode(kj), "jit"), "%s: cpu mode %s (want jit)", c->expr, zm_kernel_cpu_mode(kj));
        ZT_CHECK(!strcmp(zm_kernel_cpu_mode(ki), "interp"), "%s: forced interpreter not used", c->expr);
        ZT_CHECK(zm_kernel_n_inputs(kj) == c->nin, "%s: %d inputs, want %d", c->expr, zm_kernel_n_inputs(kj), c->nin);
        for (int d = 0; d < 3; d++) {
            zm_dtype dt = dtypes[d];
            char what[160];
            float *oj = NULL, *oi = NULL, *xin = NULL;
            double *ref = NULL;
            uint64_t seed_state = zt_rand_u64();
            (void)seed_state;
            if (run_case(kj, c, dt, dt, n, &oj, &ref, &xin)) {
                snprintf(what, sizeof what, "jit %s %s", zm_dtype_name(dt), c->expr);
                kt_close(what, oj, ref, n, kt_tol(dt), case_floor(c));
                /* interpreter on the very same inputs */
                zm_tensor *in[3] = {0}, *out = kt_out(dt, 1, &n);
                for (int q = 0; q < c->nin; q++) in[q] = kt_make(dt, 1, &n, xin + q * n);
                ZT_OK(zm_kernel_call(ki, &out, 1, (const zm_tensor *const *)in, c->nin));
                oi = kt_read(out);
                snprintf(what, sizeof what, "interp %s %s", zm_dtype_name(dt), c->expr);
                kt_close(what, oi, ref, n, kt_tol(dt), case_floor(c));
                double *dj = malloc(sizeof(double) * (size_t)n);
                for (int64_t i = 0; i < n; i++) dj[i] = oj[i];
                snprintf(what, sizeof what, "interp vs jit %s %s", zm_dtype_name(dt), c->expr);
                /* same formulas; libm vs libmvec differ by a few ulp, which
                 * f16/bf16 output rounding can turn into one unit */
                kt_close(what, oi, dj, n, dt == ZM_F32 ? 1e-5 : kt_tol(dt), 5e-2);
                free(dj);
                for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
                zm_tensor_free(out);
            }
            free(oj);
            free(oi);
            free(ref);
            free(xin);
        }
        zm_kernel_free(kj);
        zm_kernel_free(ki);
    }
}

/* f16 and bf16 inputs with an f32 output (and the reverse). */
static void test_mixed_dtypes(void) {
    const ecase *c = &cases[0]; /* mish */
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "mish", c->expr, NULL));
    if (!k) return;
    int64_t n = 2500;
    zm_dtype pairs[4][2] = {{ZM_F16, ZM_F32}, {ZM_BF16, ZM_F32}, {ZM_F32, ZM_F16}, {ZM_F32, ZM_BF16}};
    for (int p = 0; p < 4; p++) {
        float *o, *x;
        double *ref;
        if (run_case(k, c, pairs[p][0], pairs[p][1], n, &o, &ref, &x)) {
            char what[64];
            snprintf(what, sizeof what, "mish %s->%s", zm_dtype_name(pairs[p][0]), zm_dtype_name(pairs[p][1]));
            kt_close(what, o, ref, n, kt_tol(pairs[p][1]), 1e-2);
        }
        free(o);
        free(ref);
        free(x);
    }
    zm_kernel_free(k);
}

/* d f / d input through the VJP kernel vs central differences of the
 * float64 reference; points where the difference quotient is unstable
 * (kinks of abs, relu, min, clamp, floor ...) are skipped. */
static void test_gradients(void) {
    int64_t n = 257;
    int checked_total = 0;
    for (int ci = 0; ci < N_CASES; ci++) {
        const ecase *c = &cases[ci];
        zm_kernel *k = NULL;
        ZT_OK(zm_elementwise(&k, "f", c->expr, NULL));
        if (!k) continue;
        for (int wrt = 0; wrt < c->nin; wrt++) {
            zm_kernel *g = NULL;
            ZT_OK(zm_kernel_grad(&g, k, wrt));
            if (!g) continue;
            ZT_CHECK(zm_kernel_n_inputs(g) == c->nin + 1, "grad of %s: %d inputs", c->expr, zm_kernel_n_inputs(g));
            float *x = malloc(sizeof(float) * (size_t)n * 4);
            zm_tensor *in[4] = {0}, *out = kt_out(ZM_F32, 1, &n);
            for (int q = 0; q < c->nin; q++) {
                zt_fill_uniform(x + q * n, n, c->lo, c->hi);
                in[q] = kt_make(ZM_F32, 1, &n, x + q * n);
            }
            zt_fill_uniform(x + c->nin * n, n, 0.5, 2.0); /* upstream gradient g */
            in[c->nin] = kt_make(ZM_F32, 1, &n, x + c->nin * n);
            ZT_OK(zm_kernel_call(g, &out, 1, (const zm_tensor *const *)in, c->nin + 1));
            float *o = kt_read(out);
            int bad = 0, checked = 0;
            for (int64_t i = 0; i < n && o; i++) {
                double v[3] = {0, 0, 0};
                for (int q = 0; q < c->nin; q++) v[q] = x[q * n + i];
                double x0 = v[wrt], fd[2];
                for (int s = 0; s < 2; s++) {
                    double h = (s ? 2e-5 : 1e-5) * fmax(1.0, fabs(x0));
                    v[wrt] = x0 + h;
                    double fp = c->ref(v);
                    v[wrt] = x0 - h;
                    double fm = c->ref(v);
                    fd[s] = (fp - fm) / (2 * h);
                }
                v[wrt] = x0;
                if (!isfinite(fd[0]) || fabs(fd[0] - fd[1]) > 1e-5 * fmax(1.0, fabs(fd[0]))) continue; /* a kink */
                double want = fd[0] * x[c->nin * n + i];
                checked++;
                if (!(fabs(o[i] - want) <= 2e-4 * fmax(1.0, fabs(want))) && bad++ < 3)
                    ZT_CHECK(0, "d(%s)/d%s at %g: got %.8g want %.8g", c->expr, zm_kernel_input_name(k, wrt), x0, o[i], want);
            }
            ZT_CHECK(checked > n / 2, "d(%s)/d%s: only %d of %lld points checked", c->expr, zm_kernel_input_name(k, wrt), checked, (long long)n);
            checked_total += checked;
            free(o);
            free(x);
            for (int q = 0; q < 4; q++) zm_tensor_free(in[q]);
            zm_tensor_free(out);
            zm_kernel_free(g);
        }
        zm_kernel_free(k);
    }
    ZT_CHECK(checked_total > 1000, "only %d gradient points checked", checked_total);
}

/* x [rows, cols] * w [cols] + b [1]; also parameters and set_param. */
static void test_broadcast_params(void) {
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    o.inputs[0] = "x"; o.inputs[1] = "w"; o.inputs[2] = "b";
    o.params[0] = "alpha"; o.param_values[0] = 0.5f;
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "affine", "alpha * x * w + b", &o));
    if (!k) return;
    for (int d = 0; d < 3; d++) {
        zm_dtype dt = dtypes[d];
        int64_t shape[2] = {37, 1029}, cols = 1029, one = 1, n = 37 * 1029;
        float *x = malloc(sizeof(float) * (size_t)n), w[1029], b[1];
        zt_fill_uniform(x, n, -2, 2);
        zt_fill_uniform(w, cols, -2, 2);
        b[0] = 0.75f;
        zm_tensor *in[3] = {kt_make(dt, 2, shape, x), kt_make(dt, 1, &cols, w), kt_make(dt, 1, &one, b)};
        zm_tensor *out = kt_out(dt, 2, shape);
        for (int pass = 0; pass < 2; pass++) {
            float alpha = pass ? -1.25f : 0.5f;
            if (pass) ZT_OK(zm_kernel_set_param(k, "alpha", alpha));
            ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, 3));
            float *y = kt_read(out);
            double *ref = malloc(sizeof(double) * (size_t)n);
            for (int64_t i = 0; i < n; i++) ref[i] = (double)alpha * x[i] * w[i % cols] + b[0];
            kt_close(dt == ZM_F32 ? "affine f32" : dt == ZM_F16 ? "affine f16" : "affine bf16", y, ref, n, kt_tol(dt), 1e-2);
            free(y);
            free(ref);
        }
        ZT_OK(zm_kernel_set_param(k, "alpha", 0.5f));
        for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
        zm_tensor_free(out);
        free(x);
    }
    ZT_CHECK(zm_kernel_set_param(k, "beta", 1) == ZM_ERR_NOT_FOUND, "unknown parameter accepted");
    zm_kernel_free(k);
}

/* A large call goes over the thread pool; compare against the reference. */
static void test_large_threaded(void) {
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "mish", cases[0].expr, NULL));
    if (!k) return;
    float *o, *x;
    double *ref;
    if (run_case(k, &cases[0], ZM_F32, ZM_F32, 300007, &o, &ref, &x)) kt_close("mish 300007", o, ref, 300007, 2e-5, 1e-2);
    free(o);
    free(ref);
    free(x);
    zm_kernel_free(k);
}

/* exp is the prelude's own polynomial (src/jit/prelude.h), not libm: its
 * error in ulps over the whole float range, JIT and interpreter, with the
 * ends where 2^n is split (subnormal results, the last finite values). */
static void test_exp_ulps(void) {
    float *x = malloc(sizeof(float) * 700000);
    int64_t n = 0;
    if (!x) return;
    for (uint32_t u = 0; u <= 0x42D10000u; u += 4093) { /* -0 .. -104.5 */
        union { uint32_t u; float f; } v = {u | 0x80000000u};
        x[n++] = v.f;
    }
    for (uint32_t u = 0; u <= 0x42B20000u; u += 4093) { /* 0 .. 89 */
        union { uint32_t u; float f; } v = {u};
        x[n++] = v.f;
    }
    const float edge[] = {-87.3365f, -103.2789f, 88.7228317f, 88.7228394f, 88.72f, 1.0f, -INFINITY, INFINITY, NAN};
    for (int i = 0; i < (int)(sizeof edge / sizeof edge[0]); i++) x[n++] = edge[i];
    for (int interp = 0; interp < 2; interp++) {
        zm_kernel *k = NULL;
        zm_kernel_opts o;
        memset(&o, 0, sizeof o);
        o.force_interpreter = interp;
        ZT_OK(zm_elementwise(&k, "exp", "exp(x)", &o));
        zm_tensor *in = kt_make(ZM_F32, 1, &n, x), *out = kt_out(ZM_F32, 1, &n);
        float *y = NULL;
        if (k && in && out && zm_kernel_call(k, &out, 1, (const zm_tensor *const *)&in, 1) == ZM_OK) y = kt_read(out);
        ZT_CHECK(y != NULL, "exp: call failed");
        double worst = 0;
        int64_t wi = 0;
        for (int64_t i = 0; y && i < n; i++) {
            double ref = exp((double)x[i]);
            float rf = (float)ref;
            if (isnan(x[i]) || isinf(rf) || rf == 0) { /* NaN, overflow, underflow: exactly */
                ZT_CHECK(isnan(x[i]) ? isnan(y[i]) : y[i] == rf, "exp(%.9g) = %.9g, want %.9g", (double)x[i], (double)y[i], (double)rf);
                continue;
            }
            double ulp = fabs((double)nextafterf(rf, INFINITY) - (double)rf), e = fabs((double)y[i] - ref) / ulp;
            if (e > worst) worst = e, wi = i;
        }
        ZT_CHECK(worst <= 3.0, "exp (%s) %.2f ulp at x = %.9g", interp ? "interpreter" : "jit", worst, (double)x[wi]);
        printf("  exp (%s): %lld values, max error %.2f ulp at x = %.9g\n", interp ? "interpreter" : "jit", (long long)n, worst,
               (double)x[wi]);
        free(y);
        zm_tensor_free(in);
        zm_tensor_free(out);
        zm_kernel_free(k);
    }
    free(x);
}

/* Strided views on the CPU: every other column in, a transposed view out. */
static void test_strided_views(void) {
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "sv", "x * 2 + y", NULL));
    if (!k) return;
    int64_t bshape[2] = {8, 10}, vshape[2] = {8, 5}, vstride[2] = {40, 8};
    float bx[80], by[40];
    zt_fill_uniform(bx, 80, -1, 1);
    zt_fill_uniform(by, 40, -1, 1);
    zm_tensor *xb = kt_make(ZM_F32, 2, bshape, bx), *y = kt_make(ZM_F32, 2, vshape, by), *xv = NULL, *ob = NULL, *ov = NULL;
    ZT_OK(zm_tensor_view(&xv, xb, 2, vshape, vstride, 0));
    int64_t oshape[2] = {5, 8}, ostride[2] = {4, 32}; /* out[i][j] lives at ob[j][i] */
    ob = kt_out(ZM_F32, 2, oshape);
    ZT_OK(zm_tensor_view(&ov, ob, 2, vshape, ostride, 0));
    const zm_tensor *in[2] = {xv, y};
    ZT_OK(zm_kernel_call(k, &ov, 1, in, 2));
    const float *o = ob->data;
    double ref[40];
    float got[40];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 5; j++) {
            ref[i * 5 + j] = 2.0 * bx[i * 10 + 2 * j] + by[i * 5 + j];
            got[i * 5 + j] = o[j * 8 + i];
        }
    kt_close("strided views", got, ref, 40, 1e-6, 1e-2);
    zm_tensor_free(xv); zm_tensor_free(ov); zm_tensor_free(xb); zm_tensor_free(y); zm_tensor_free(ob);
    zm_kernel_free(k);
}

static void test_sources(void) {
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "mish", "x * tanh(softplus(x))", NULL));
    if (!k) return;
    const char *c = NULL, *cu = NULL;
    ZT_OK(zm_kernel_source(k, ZM_BACKEND_C, &c));
    ZT_OK(zm_kernel_source(k, ZM_BACKEND_CUDA, &cu));
    ZT_CHECK(c && strstr(c, "void zm_ew(") && strstr(c, "restrict") && strstr(c, "tanhf"), "C source lacks the kernel:\n%s", c ? c : "");
    ZT_CHECK(cu && strstr(cu, "__global__ void k_ew(") && strstr(cu, "k_ew4") && strstr(cu, "float4"), "CUDA source lacks the kernels");
    ZT_CHECK(!strcmp(zm_kernel_name(k), "mish"), "name %s", zm_kernel_name(k));
    ZT_CHECK(zm_kernel_source(k, ZM_BACKEND_COUNT, &c) == ZM_ERR_INVALID, "bad backend accepted");
    zm_kernel_free(k);
}

static void test_bad_input(void) {
    zm_kernel *k = (zm_kernel *)&k;
    const char *bad[] = {"", "(x + 1", "x + )", "foo(x)", "exp(x, y)", "max(x)", "x +* 2", "1e999999", "x $ y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zm_status s = zm_elementwise(&k, "bad", bad[i], NULL);
        ZT_CHECK(s != ZM_OK && k == NULL, "'%s' accepted (%d)", bad[i], s);
        ZT_CHECK(strstr(zm_last_error(), "byte") != NULL || s != ZM_ERR_PARSE, "'%s': message lacks the offset: %s", bad[i], zm_last_error());
    }
    /* 1 MB of nesting: an error, not a stack overflow */
    size_t L = 1 << 20;
    char *deep = malloc(2 * L + 2);
    memset(deep, '(', L);
    deep[L] = 'x';
    memset(deep + L + 1, ')', L);
    deep[2 * L + 1] = 0;
    ZT_CHECK(zm_elementwise(&k, "deep", deep, NULL) != ZM_OK && !k, "1 MB nesting accepted");
    free(deep);
    ZT_CHECK(zm_elementwise(NULL, "x", "x", NULL) == ZM_ERR_INVALID, "NULL out accepted");
    ZT_CHECK(zm_elementwise(&k, "x", NULL, NULL) == ZM_ERR_INVALID, "NULL expr accepted");
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    o.inputs[0] = "1bad";
    ZT_CHECK(zm_elementwise(&k, "x", "x", &o) == ZM_ERR_INVALID, "bad input name accepted");

    ZT_OK(zm_elementwise(&k, "add", "x + y", NULL));
    if (!k) return;
    int64_t s4 = 4, s5 = 5, s3 = 3;
    zm_tensor *a = kt_out(ZM_F32, 1, &s4), *b = kt_out(ZM_F32, 1, &s5), *y = kt_out(ZM_F32, 1, &s4);
    zm_tensor *c3 = kt_out(ZM_F32, 1, &s3), *iy = NULL;
    zm_tensor_new(&iy, ZM_I32, ZM_CPU, 1, &s4);
    const zm_tensor *ab[2] = {a, b}, *aa[2] = {a, a}, *ai[2] = {a, iy};
    ZT_CHECK(zm_kernel_call(k, &y, 1, ab, 2) == ZM_ERR_SHAPE, "shape mismatch accepted");
    ZT_CHECK(zm_kernel_call(k, &y, 1, aa, 1) == ZM_ERR_INVALID, "wrong input count accepted");
    ZT_CHECK(zm_kernel_call(k, &y, 1, ai, 2) == ZM_ERR_DTYPE, "i32 input accepted");
    ZT_CHECK(zm_kernel_call(k, &iy, 1, aa, 2) == ZM_ERR_DTYPE, "i32 output accepted");
    ZT_CHECK(zm_kernel_call(k, &c3, 1, aa, 2) == ZM_ERR_SHAPE, "output shape mismatch accepted");
    ZT_CHECK(zm_kernel_call(NULL, &y, 1, aa, 2) == ZM_ERR_INVALID, "NULL kernel accepted");
    ZT_CHECK(zm_kernel_call(k, NULL, 0, aa, 2) == ZM_ERR_INVALID, "no output accepted");
    zm_kernel *g = NULL;
    ZT_CHECK(zm_kernel_grad(&g, k, 5) == ZM_ERR_RANGE && !g, "grad of input 5 accepted");
    zm_tensor_free(a); zm_tensor_free(b); zm_tensor_free(y); zm_tensor_free(c3); zm_tensor_free(iy);
    zm_kernel_free(k);
    zm_kernel_free(NULL);
}

/* A root that reaches the input only through zero-derivative ops (sign,
 * floor, ceil, comparisons, where's condition) has the VJP 0 everywhere;
 * one that also reaches it through a smooth path keeps that path's term. */
static void test_grad_zero_paths(void) {
    const char *zero = "floor(x) + ceil(2 * x) + sign(x) * y + (x > y) + where(x < 0, y, 2 * y)";
    zm_kernel *k = NULL, *gx = NULL, *gy = NULL;
    ZT_OK(zm_elementwise(&k, "zp", zero, NULL));
    if (!k) return;
    ZT_OK(zm_kernel_grad(&gx, k, 0));
    ZT_OK(zm_kernel_grad(&gy, k, 1));
    int64_t n = 64;
    float x[64], y[64], g[64];
    zt_fill_uniform(x, n, -3, 3);
    zt_fill_uniform(y, n, -3, 3);
    zt_fill_uniform(g, n, 0.5, 2);
    zm_tensor *in[3] = {kt_make(ZM_F32, 1, &n, x), kt_make(ZM_F32, 1, &n, y), kt_make(ZM_F32, 1, &n, g)};
    zm_tensor *ox = kt_out(ZM_F32, 1, &n), *oy = kt_out(ZM_F32, 1, &n);
    if (gx) ZT_OK(zm_kernel_call(gx, &ox, 1, (const zm_tensor *const *)in, 3));
    if (gy) ZT_OK(zm_kernel_call(gy, &oy, 1, (const zm_tensor *const *)in, 3));
    float *rx = kt_read(ox), *ry = kt_read(oy);
    for (int64_t i = 0; i < n && rx && ry; i++) {
        ZT_CHECK(rx[i] == 0.0f, "d/dx of %s at x=%g: %g, want 0", zero, x[i], rx[i]);
        const double want = g[i] * ((x[i] > 0) - (x[i] < 0) + (x[i] < 0 ? 1 : 2));
        ZT_CHECK(fabs(ry[i] - want) <= 1e-6 * fabs(want) + 1e-6, "d/dy at x=%g: %g, want %g", x[i], ry[i], want);
    }
    free(rx); free(ry);
    for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
    zm_tensor_free(ox); zm_tensor_free(oy);
    zm_kernel_free(gx); zm_kernel_free(gy); zm_kernel_free(k);
}

int main(void) {
    ZT_RUN(test_grad_zero_paths);
    ZT_RUN(test_expressions);
    ZT_RUN(test_mixed_dtypes);
    ZT_RUN(test_gradients);
    ZT_RUN(test_broadcast_params);
    ZT_RUN(test_large_threaded);
    ZT_RUN(test_exp_ulps);
    ZT_RUN(test_strided_views);
    ZT_RUN(test_sources);
    ZT_RUN(test_bad_input);
    return zt_finish();
}
