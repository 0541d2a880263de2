/* Kernels on CUDA. Without a GPU (but built with CUDA) every emitted CUDA
 * variant is still compiled by NVRTC for sm_90, so emitter bugs show on any
 * machine. With a GPU: the 36 expressions on f32/f16/bf16 (grid-stride and
 * 4-wide vector paths), broadcasting, gradients, the five row-wise ops at
 * widths 1, 7, 4096 and 151936, an async call on a stream, and the CUBIN
 * disk cache (hit in a second kernel object, corrupted entry rebuilt), a
 * kernel built and launched from fresh threads, all against float64
 * references. GPU tests count as skipped where no GPU
 * answers. Run: build/tests/test_kernel_cuda */
#include "core/cuda.h"
#include "harness.h"
#include "jit/jit.h"
#include "kernel_cases.h"
#include "kernel_util.h"
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const zm_dtype dtypes[3] = {ZM_F32, ZM_F16, ZM_BF16};

/* Host float data -> CUDA tensor of dtype dt (vals rounded in place). */
static zm_tensor *dev_make(zm_dtype dt, int ndim, const int64_t *shape, float *vals) {
    zm_tensor *h = kt_make(dt, ndim, shape, vals), *d = NULL;
    if (h && zm_tensor_to(&d, h, ZM_CUDA) != ZM_OK) d = NULL;
    zm_tensor_free(h);
    return d;
}
static zm_tensor *dev_out(zm_dtype dt, int ndim, const int64_t *shape) {
    zm_tensor *d = NULL;
    if (zm_tensor_new(&d, dt, ZM_CUDA, ndim, shape) != ZM_OK) return NULL;
    zm_tensor_fill(d, NAN); /* poison */
    return d;
}
static float *dev_read(const zm_tensor *d) {
    zm_tensor *h = NULL;
    if (zm_tensor_to(&h, d, ZM_CPU) != ZM_OK) return NULL;
    float *v = kt_read(h);
    zm_tensor_free(h);
    return v;
}

// ---------------------------------------------------------------------------
/* No GPU needed: every variant's CUDA C must compile. */
static void test_nvrtc_compiles_all_variants(void) {
#ifndef ZM_HAVE_CUDA
    zt_skip("built without CUDA");
    return;
#else
    int n_checked = 0;
    for (int ci = 0; ci < N_CASES; ci++) {
        zm_kernel_opts o;
        memset(&o, 0, sizeof o);
        o.force_interpreter = 1; /* only the CUDA side matters here */
        zm_kernel *k = NULL;
        ZT_OK(zm_elementwise(&k, "v", cases[ci].expr, &o));
        if (!k) continue;
        /* one variant per case, rotating dtypes and broadcast modes */
        zm__sig sig;
        memset(&sig, 0, sizeof sig);
        for (int q = 0; q < k->n_in; q++) {
            sig.in_dtype[q] = (int8_t)dtypes[(ci + q) % 3];
            sig.in_mode[q] = (int8_t)((ci + q) % 3);
        }
        sig.out_dtype = (int8_t)dtypes[(ci / 3) % 3];
        char *src = NULL;
        ZT_OK(zm__emit_cuda(k, &sig, &src));
        if (src) {
            zm_status s = zm__nvrtc_check(src, "v", 90);
            ZT_CHECK(s == ZM_OK, "%s: %s", cases[ci].expr, zm_last_error());
            n_checked++;
        }
        free(src);
        zm_kernel_free(k);
    }
    /* a row-wise kernel with weight and bias, f16 in, bf16 out */
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    o.force_interpreter = 1;
    o.inputs[0] = "x"; o.inputs[1] = "w"; o.inputs[2] = "b";
    o.params[0] = "eps"; o.param_values[0] = 1e-5f;
    zm_reduction r[2] = {{ZM_RED_MEAN, "x"}, {ZM_RED_MEAN, "(x - r0) ** 2"}};
    zm_kernel *k = NULL;
    ZT_OK(zm_map_reduce(&k, "ln", r, 2, "(x - r0) * rsqrt(r1 + eps) * w + b", &o));
    if (k) {
        zm__sig sig = {{ZM_F16, ZM_F32, ZM_BF16}, {ZM__MODE_FULL, ZM__MODE_ROW, ZM__MODE_ROW}, ZM_BF16};
        char *src = NULL;
        ZT_OK(zm__emit_cuda(k, &sig, &src));
        if (src) ZT_CHECK(zm__nvrtc_check(src, "ln", 90) == ZM_OK, "layernorm: %s", zm_last_error());
        free(src);
        zm_kernel_free(k);
        n_checked++;
    }
    ZT_CHECK(n_checked == N_CASES + 1, "checked %d sources", n_checked);
#endif
}

// ---------------------------------------------------------------------------
static void test_cuda_expressions(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    const int64_t sizes[2] = {3001, 4096}; /* grid-stride path, then 4-wide */
    for (int ci = 0; ci < N_CASES; ci++) {
        const ecase *c = &cases[ci];
        zm_kernel *k = NULL;
        ZT_OK(zm_elementwise(&k, "t", c->expr, NULL));
        if (!k) continue;
        for (int d = 0; d < 3; d++)
            for (int si = 0; si < 2; si++) {
                zm_dtype dt = dtypes[d];
                int64_t n = sizes[si];
                float *x = malloc(sizeof(float) * (size_t)n * 3);
                zm_tensor *in[3] = {0}, *out = dev_out(dt, 1, &n);
                for (int q = 0; q < c->nin; q++) {
                    zt_fill_uniform(x + q * n, n, c->lo, c->hi);
                    in[q] = dev_make(dt, 1, &n, x + q * n);
                }
                ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, c->nin));
                float *y = dev_read(out);
                double *ref = malloc(sizeof(double) * (size_t)n);
                for (int64_t i = 0; i < n; i++) {
                    double v[3] = {x[i], c->nin > 1 ? x[n + i] : 0, c->nin > 2 ? x[2 * n + i] : 0};
                    ref[i] = c->ref(v);
                }
                char what[160];
                snprintf(what, sizeof what, "cuda %s n=%lld %s", zm_dtype_name(dt), (long long)n, c->expr);
                if (y) kt_close(what, y, ref, n, kt_tol(dt), case_floor(c));
                else ZT_CHECK(0, "%s: read back failed", what);
                free(y); free(ref); free(x);
                for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
                zm_tensor_free(out);
            }
        zm_kernel_free(k);
    }
}

/* x [rows, cols] * w [cols] + b [1], vector path (cols % 4 == 0) and not. */
static void test_cuda_broadcast_grad(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    zm_kernel *k = NULL, *g = NULL;
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    o.inputs[0] = "x"; o.inputs[1] = "w"; o.inputs[2] = "b";
    ZT_OK(zm_elementwise(&k, "affine", "silu(x) * w + b", &o));
    if (!k) return;
    ZT_OK(zm_kernel_grad(&g, k, 0));
    const int64_t colss[2] = {1028, 1029};
    for (int ci = 0; ci < 2; ci++) {
        int64_t cols = colss[ci], rows = 9, n = rows * cols, shape[2] = {rows, cols}, one = 1;
        float *x = malloc(sizeof(float) * (size_t)n), *gv = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)cols), b = 0.5f;
        zt_fill_uniform(x, n, -4, 4);
        zt_fill_uniform(gv, n, -1, 1);
        zt_fill_uniform(w, cols, -2, 2);
        zm_tensor *in[4] = {dev_make(ZM_F32, 2, shape, x), dev_make(ZM_F32, 1, &cols, w), dev_make(ZM_F32, 1, &one, &b),
                            dev_make(ZM_F32, 2, shape, gv)};
        zm_tensor *out = dev_out(ZM_F32, 2, shape);
        double *ref = malloc(sizeof(double) * (size_t)n);
        ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, 3));
        float *y = dev_read(out);
        for (int64_t i = 0; i < n; i++) ref[i] = x[i] / (1 + exp(-(double)x[i])) * w[i % cols] + b;
        if (y) kt_close(cols == 1028 ? "cuda affine cols 1028" : "cuda affine cols 1029", y, ref, n, 2e-5, 1e-2);
        free(y);
        if (g) {
            ZT_OK(zm_kernel_call(g, &out, 1, (const zm_tensor *const *)in, 4));
            y = dev_read(out);
            for (int64_t i = 0; i < n; i++) {
                double s = 1 / (1 + exp(-(double)x[i]));
                ref[i] = gv[i] * w[i % cols] * (s + x[i] * s * (1 - s));
            }
            if (y) kt_close("cuda d(affine)/dx", y, ref, n, 1e-4, 1e-2);
            free(y);
        }
        free(ref); free(x); free(gv); free(w);
        for (int q = 0; q < 4; q++) zm_tensor_free(in[q]);
        zm_tensor_free(out);
    }
    zm_kernel_free(g);
    zm_kernel_free(k);
}

// ---------------------------------------------------------------------------
enum { SOFTMAX, LOG_SOFTMAX, RMSNORM, LAYERNORM, LOGSUMEXP, N_OPS };
static zm_status make_op(zm_kernel **k, int op) {
    zm_kernel_opts o;
    memset(&o, 0, sizeof o);
    zm_reduction sm[2] = {{ZM_RED_MAX, "x"}, {ZM_RED_SUM, "exp(x - r0)"}};
    if (op == SOFTMAX) return zm_map_reduce(k, "softmax", sm, 2, "exp(x - r0) / r1", &o);
    if (op == LOG_SOFTMAX) return zm_map_reduce(k, "log_softmax", sm, 2, "x - r0 - log(r1)", &o);
    if (op == LOGSUMEXP) return zm_map_reduce(k, "logsumexp", sm, 2, "r0 + log(r1)", &o);
    o.inputs[0] = "x"; o.inputs[1] = "w"; o.inputs[2] = "b";
    o.params[0] = "eps";
    if (op == RMSNORM) {
        o.inputs[2] = NULL;
        o.param_values[0] = 1e-6f;
        zm_reduction r[1] = {{ZM_RED_MEAN, "x * x"}};
        return zm_map_reduce(k, "rmsnorm", r, 1, "x * rsqrt(r0 + eps) * w", &o);
    }
    o.param_values[0] = 1e-5f;
    zm_reduction r[2] = {{ZM_RED_MEAN, "x"}, {ZM_RED_MEAN, "(x - r0) ** 2"}};
    return zm_map_reduce(k, "layernorm", r, 2, "(x - r0) * rsqrt(r1 + eps) * w + b", &o);
}

static void ref_row(int op, const float *x, const float *w, const float *b, int64_t n, double *y) {
    double mx = -INFINITY, s = 0, mean = 0, var = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, x[i]);
    for (int64_t i = 0; i < n; i++) { s += exp(x[i] - mx); mean += x[i]; ss += (double)x[i] * x[i]; }
    mean /= n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    for (int64_t i = 0; i < (op == LOGSUMEXP ? 1 : n); i++)
        y[i] = op == SOFTMAX ? exp(x[i] - mx) / s : op == LOG_SOFTMAX ? x[i] - mx - log(s)
             : op == RMSNORM ? x[i] / sqrt(ss / n + 1e-6) * w[i]
             : op == LAYERNORM ? (x[i] - mean) / sqrt(var + 1e-5) * w[i] + b[i] : mx + log(s);
}

static void test_cuda_rowwise(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    const int64_t widths[4] = {1, 7, 4096, 151936};
    for (int op = 0; op < N_OPS; op++) {
        zm_kernel *k = NULL;
        ZT_OK(make_op(&k, op));
        if (!k) continue;
        for (int wi = 0; wi < 5; wi++) {
            int64_t cols = widths[wi < 4 ? wi : 2];
            zm_dtype dt = wi < 4 ? ZM_F32 : ZM_F16;
            int64_t rows = cols > 10000 ? 3 : 33, n = rows * cols, shape[2] = {rows, cols};
            float *x = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)cols), *b = malloc(sizeof(float) * (size_t)cols);
            zt_fill_normal(x, n, 3.0);
            zt_fill_uniform(w, cols, 0.5, 1.5);
            zt_fill_uniform(b, cols, -1, 1);
            zm_tensor *in[3] = {dev_make(dt, 2, shape, x), dev_make(dt, 1, &cols, w), dev_make(dt, 1, &cols, b)};
            int nin = op == RMSNORM ? 2 : op == LAYERNORM ? 3 : 1, per_row = op == LOGSUMEXP;
            zm_tensor *out = per_row ? dev_out(dt, 1, &rows) : dev_out(dt, 2, shape);
            ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, nin));
            float *y = dev_read(out);
            int64_t m = per_row ? rows : n;
            double *ref = malloc(sizeof(double) * (size_t)m);
            for (int64_t r = 0; r < rows; r++) ref_row(op, x + r * cols, w, b, cols, ref + (per_row ? r : r * cols));
            char what[96];
            snprintf(what, sizeof what, "cuda %s %s width %lld", zm_kernel_name(k), zm_dtype_name(dt), (long long)cols);
            double tol = dt == ZM_F32 ? (cols > 10000 ? 1e-4 : 3e-5) : kt_tol(dt) * 1.5;
            if (y) kt_close(what, y, ref, m, tol, op == SOFTMAX ? 1e-3 : 1e-2);
            else ZT_CHECK(0, "%s: read back failed", what);
            free(y); free(ref); free(x); free(w); free(b);
            for (int q = 0; q < 3; q++) zm_tensor_free(in[q]);
            zm_tensor_free(out);
        }
        zm_kernel_free(k);
    }
}

/* Async on a stream; CPU/GPU mix refused. */
static void test_cuda_async_and_bad(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "sq", "x * x + 1", NULL));
    if (!k) return;
    int64_t n = 100000;
    float *x = malloc(sizeof(float) * (size_t)n);
    zt_fill_uniform(x, n, -3, 3);
    zm_tensor *in = dev_make(ZM_F32, 1, &n, x), *out = dev_out(ZM_F32, 1, &n), *hin = kt_make(ZM_F32, 1, &n, NULL);
    zm_stream st = NULL;
    ZT_OK(zm_cuda_stream_new(&st));
    ZT_OK(zm_kernel_call_async(k, &out, 1, (const zm_tensor *const *)&in, 1, st));
    ZT_OK(zm_cuda_stream_sync(st));
    float *y = dev_read(out);
    double *ref = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) ref[i] = (double)x[i] * x[i] + 1;
    if (y) kt_close("cuda async x*x+1", y, ref, n, 2e-6, 1e-2);
    ZT_CHECK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)&hin, 1) == ZM_ERR_INVALID, "CPU input with CUDA output accepted");
    zm_cuda_stream_free(st);
    free(y); free(ref); free(x);
    zm_tensor_free(in); zm_tensor_free(out); zm_tensor_free(hin);
    zm_kernel_free(k);
}

/* The CUBIN cache: a second kernel object loads from disk; a corrupted
 * entry is rebuilt. */
static void test_cuda_cache(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/zmlx-cubin-test-XXXXXX");
    if (!mkdtemp(dir)) { ZT_CHECK(0, "mkdtemp"); return; }
    const char *old = getenv("ZMLX_CACHE");
    char keep[4096] = "";
    if (old) snprintf(keep, sizeof keep, "%s", old);
    setenv("ZMLX_CACHE", dir, 1);
    char expr[64];
    snprintf(expr, sizeof expr, "x * 2.5 + %u", (unsigned)(zt_rand_u64() % 100000));
    int64_t n = 64;
    float x[64];
    zt_fill_uniform(x, n, -1, 1);
    zm_tensor *in = dev_make(ZM_F32, 1, &n, x), *out = dev_out(ZM_F32, 1, &n);
    for (int round = 0; round < 3; round++) {
        if (round == 2) { /* flip a byte of the CUBIN entry */
            DIR *d = opendir(dir);
            struct dirent *e;
            char p[4400] = "";
            while (d && (e = readdir(d)))
                if (strstr(e->d_name, ".cubin")) snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (d) closedir(d);
            FILE *f = fopen(p, "r+b");
            ZT_CHECK(f != NULL, "no .cubin entry in %s", dir);
            if (f) { fseek(f, 100, SEEK_SET); int ch = fgetc(f); fseek(f, 100, SEEK_SET); fputc(ch ^ 0xff, f); fclose(f); }
        }
        zm_kernel *k = NULL;
        ZT_OK(zm_elementwise(&k, "cubintest", expr, NULL));
        if (!k) break;
        zm_cache_stats a = zm_cache_get_stats();
        ZT_OK(zm_kernel_call(k, &out, 1, (const zm_tensor *const *)&in, 1));
        zm_cache_stats b = zm_cache_get_stats();
        int dc = b.compiles - a.compiles, dh = b.hits - a.hits, dx = b.rebuilt_corrupt - a.rebuilt_corrupt;
        if (round == 0) ZT_CHECK(dc == 1 && dh == 0, "first CUDA build: compiles %d hits %d", dc, dh);
        if (round == 1) ZT_CHECK(dc == 0 && dh == 1, "second kernel object: compiles %d hits %d (want a cache hit)", dc, dh);
        if (round == 2) ZT_CHECK(dc == 1 && dx == 1, "corrupted CUBIN: compiles %d corrupt %d", dc, dx);
        float *y = dev_read(out);
        double ref[64];
        double cst = atof(strchr(expr, '+') + 1);
        for (int i = 0; i < 64; i++) ref[i] = x[i] * 2.5 + cst;
        if (y) kt_close("cubin cache result", y, ref, n, 1e-6, 1e-2);
        free(y);
        zm_kernel_free(k);
    }
    zm_tensor_free(in);
    zm_tensor_free(out);
    if (old) setenv("ZMLX_CACHE", keep, 1); else unsetenv("ZMLX_CACHE");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", dir);
}

/* A thread that makes one zm_kernel_call and keeps its status and message
 * (the last-error text is per thread; checks are made on the main thread). */
typedef struct {
    zm_kernel *k;
    zm_tensor *in, *out;
    zm_status s;
    char err[512];
} thread_call;
static void *thread_call_run(void *arg) {
    thread_call *c = arg;
    c->s = zm_kernel_call(c->k, &c->out, 1, (const zm_tensor *const *)&c->in, 1);
    snprintf(c->err, sizeof c->err, "%s", c->s == ZM_OK ? "" : zm_last_error());
    return NULL;
}

/* The first CUDA work on a fresh thread is a driver-API call: round 0 loads
 * the module there (cuModuleLoadData), round 1 launches the loaded variant
 * from another fresh thread (cuLaunchKernel). Both need the context current on
 * that very thread; before zm_cuda_init bound each thread, both failed with
 * "invalid device context". Tensors are made and read on the main thread. */
static void test_cuda_new_thread(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    zm_kernel *k = NULL;
    ZT_OK(zm_elementwise(&k, "thr", "x * 3 - 0.5", NULL));
    if (!k) return;
    int64_t n = 5000;
    float *x = malloc(sizeof(float) * (size_t)n);
    double *ref = malloc(sizeof(double) * (size_t)n);
    zt_fill_uniform(x, n, -2, 2);
    zm_tensor *in = dev_make(ZM_F32, 1, &n, x);
    for (int64_t i = 0; i < n; i++) ref[i] = (double)x[i] * 3 - 0.5;
    for (int round = 0; round < 2; round++) {
        thread_call c = {k, in, dev_out(ZM_F32, 1, &n), ZM_OK, ""};
        pthread_t th;
        if (!c.in || !c.out || pthread_create(&th, NULL, thread_call_run, &c) != 0) {
            ZT_CHECK(0, "round %d: no device tensors or no thread", round);
            zm_tensor_free(c.out);
            break;
        }
        pthread_join(th, NULL);
        ZT_CHECK(c.s == ZM_OK, "round %d (%s) on a new thread: %s", round, round ? "launch" : "build + launch", c.err);
        ZT_CHECK(k->n_cuda == 1, "round %d: %d CUDA variants (want 1, built once)", round, k->n_cuda);
        float *y = c.s == ZM_OK ? dev_read(c.out) : NULL;
        if (y) kt_close(round ? "new thread, launch only" : "new thread, build + launch", y, ref, n, 2e-6, 1e-2);
        free(y);
        zm_tensor_free(c.out);
    }
    free(x); free(ref);
    zm_tensor_free(in);
    zm_kernel_free(k);
}

int main(void) {
    ZT_RUN(test_nvrtc_compiles_all_variants);
    ZT_RUN(test_cuda_expressions);
    ZT_RUN(test_cuda_broadcast_grad);
    ZT_RUN(test_cuda_rowwise);
    ZT_RUN(test_cuda_async_and_bad);
    ZT_RUN(test_cuda_cache);
    ZT_RUN(test_cuda_new_thread);
    return zt_finish();
}
