/* `zmlx kernel "<expr>"`: print the generated C or CUDA source, evaluate the
 * compiled kernel at given values (a calculator that runs the real path,
 * gradients included), or benchmark it on random data against a same-run
 * memcpy. Every argument is checked; bad input gives a message and exit 1/2.
 * Exercised by scripts/demo.sh and tests/test_kernel_cache.c. */
#include "core/cuda.h"
#include "core/internal.h"
#include "tools/cli.h"
#include "zmlx/kernel.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: zmlx kernel \"<expr>\" [--emit c|cuda] [--grad NAME] [--device cpu|cuda]\n"
            "                   [--eval x=0.5,y=2] [--bench] [--n N] [--interp]\n"
            "  (no option)   print the generated C (--emit cuda: CUDA C)\n"
            "  --eval        run the compiled kernel on 1-element tensors, print the value\n"
            "                (with --grad NAME also d/dNAME, through the VJP kernel)\n"
            "  --bench       random f32 data (N elements: 2^24 on cpu, 2^28 on cuda), print\n"
            "                time, GB/s and %% of a same-run memcpy\n"
            "  --interp      CPU: use the IR interpreter instead of the C compiler\n"
            "inputs are the expression's free names (x, y, z first); functions: exp exp2 log\n"
            "log2 log1p expm1 sqrt rsqrt abs sign min max pow clamp sin cos tanh sigmoid silu\n"
            "gelu gelu_tanh softplus relu erf floor ceil where\n");
}

/* "x=0.5,y=2" -> values by input name; every input must get one. */
static int parse_eval(const char *s, const zm_kernel *k, const char names[][32], int n_in, float *vals) {
    int seen[ZM_MAX_INPUTS] = {0};
    const char *p = s;
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end || eq == p) {
            fprintf(stderr, "zmlx kernel: --eval expects name=value[,name=value...], got '%s'\n", s);
            return 0;
        }
        int q = -1;
        for (int i = 0; i < n_in; i++)
            if ((size_t)(eq - p) == strlen(names[i]) && !strncmp(p, names[i], (size_t)(eq - p))) q = i;
        if (q < 0) {
            fprintf(stderr, "zmlx kernel: --eval: '%.*s' is not an input of the expression (inputs:", (int)(eq - p), p);
            for (int i = 0; i < n_in; i++) fprintf(stderr, " %s", names[i]);
            fprintf(stderr, ")\n");
            return 0;
        }
        char num[64];
        size_t L = (size_t)(end - eq - 1);
        if (L == 0 || L >= sizeof num) { fprintf(stderr, "zmlx kernel: --eval: bad value for %s\n", names[q]); return 0; }
        memcpy(num, eq + 1, L);
        num[L] = 0;
        double v;
        if (!zm_cli_float("kernel", "--eval", num, &v)) return 0;
        vals[q] = (float)v;
        seen[q] = 1;
        p = *end ? end + 1 : end;
    }
    for (int i = 0; i < n_in; i++)
        if (!seen[i]) { fprintf(stderr, "zmlx kernel: --eval: no value for input '%s'\n", names[i]); return 0; }
    (void)k;
    return 1;
}

/* Run k on 1-element tensors holding vals; *out gets the value. */
static zm_status eval1(zm_kernel *k, zm_device dev, const float *vals, int n, float *out) {
    zm_tensor *t[ZM_MAX_INPUTS + 1] = {0}, *o = NULL, *h = NULL;
    int64_t one = 1;
    zm_status s = ZM_OK;
    for (int i = 0; i < n && s == ZM_OK; i++) {
        s = zm_tensor_new(&t[i], ZM_F32, dev, 1, &one);
        if (s == ZM_OK) s = zm_tensor_fill(t[i], vals[i]);
    }
    if (s == ZM_OK) s = zm_tensor_new(&o, ZM_F32, dev, 1, &one);
    if (s == ZM_OK) s = zm_kernel_call(k, &o, 1, (const zm_tensor *const *)t, n);
    if (s == ZM_OK) s = zm_tensor_to(&h, o, ZM_CPU);
    if (s == ZM_OK) *out = *(float *)h->data;
    for (int i = 0; i < n; i++) zm_tensor_free(t[i]);
    zm_tensor_free(o);
    zm_tensor_free(h);
    return s;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct { char *dst; const char *src; size_t n; } memcpy_job;
static void memcpy_thread(void *ctx, int ith, int nth) {
    memcpy_job *j = ctx;
    size_t per = (j->n / (size_t)nth + 63) & ~(size_t)63, a = per * (size_t)ith, b = a + per;
    if (b > j->n) b = j->n;
    if (a < b) memcpy(j->dst + a, j->src + a, b - a);
}

static int bench(zm_kernel *k, zm_device dev, int64_t n) {
    int nin = zm_kernel_n_inputs(k);
    /* host side: random data, inputs (CPU) or staging, output, copy target */
    double need = (double)(nin + 3) * 4.0 * (double)n, have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (have > 0 && need > 0.7 * have) {
        fprintf(stderr, "zmlx kernel: --bench with %lld elements needs ~%.1f GB of host memory; this machine has %.1f GB\n",
                (long long)n, need / 1e9, have / 1e9);
        return 1;
    }
    zm_tensor *in[ZM_MAX_INPUTS + 1] = {0}, *out = NULL;
    float *host = malloc(sizeof(float) * (size_t)n);
    if (!host) { fprintf(stderr, "zmlx kernel: out of memory for %lld elements\n", (long long)n); return 1; }
    uint64_t st = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < n; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; host[i] = (float)((st >> 40) * (8.0 / 16777216.0) - 4.0); }
    zm_status s = ZM_OK;
    for (int q = 0; q < nin && s == ZM_OK; q++) {
        zm_tensor *h = NULL;
        s = zm_tensor_wrap(&h, host, ZM_F32, ZM_CPU, 1, &n, NULL);
        if (s == ZM_OK) s = zm_tensor_to(&in[q], h, dev);
        zm_tensor_free(h);
    }
    free(host);
    if (s == ZM_OK) s = zm_tensor_new(&out, ZM_F32, dev, 1, &n);
    enum { RUNS = 10 };
    double tk[RUNS], tm[RUNS];
    if (s == ZM_OK) s = zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, nin); /* warm-up */
    for (int r = 0; r < RUNS && s == ZM_OK; r++) {
        double t0 = zm__now();
        s = zm_kernel_call(k, &out, 1, (const zm_tensor *const *)in, nin);
        tk[r] = zm__now() - t0;
    }
    /* the baseline: copy the same number of bytes, same run, all cores */
    zm_tensor *src = nin ? in[0] : out;
    zm_tensor *dst = NULL;
    if (s == ZM_OK) s = zm_tensor_new(&dst, ZM_F32, dev, 1, &n);
    size_t nbytes = (size_t)n * 4;
    memcpy_job mj = {dst ? dst->data : NULL, src->data, nbytes};
    for (int r = -1; r < RUNS && s == ZM_OK; r++) {
        double t0 = zm__now();
        if (dev == ZM_CUDA) { s = zm_cuda_memcpy_d2d(dst->data, src->data, nbytes); if (s == ZM_OK) s = zm_cuda_sync(); }
        else zm_pool_run(zm_pool_default(), memcpy_thread, &mj);
        if (r >= 0) tm[r] = zm__now() - t0;
    }
    if (s != ZM_OK) {
        zm_cli_fail("kernel", "--bench", s);
    } else {
        qsort(tk, RUNS, sizeof *tk, cmp_d);
        qsort(tm, RUNS, sizeof *tm, cmp_d);
        double kb = (double)(nin + 1) * 4.0 * (double)n, mb = 2.0 * 4.0 * (double)n;
        double kgbs = kb / tk[RUNS / 2] / 1e9, mgbs = mb / tm[RUNS / 2] / 1e9;
        printf("kernel %s on %s (%s), %lld f32 elements, %d inputs, %d threads\n", zm_kernel_name(k), zm_device_name(dev),
               dev == ZM_CPU ? zm_kernel_cpu_mode(k) : "nvrtc", (long long)n, nin, dev == ZM_CPU ? zm_pool_size(zm_pool_default()) : 0);
        printf("  kernel : median %.3f ms (min %.3f, max %.3f)  %.1f GB/s (bytes read + written)\n", tk[RUNS / 2] * 1e3,
               tk[0] * 1e3, tk[RUNS - 1] * 1e3, kgbs);
        printf("  memcpy : median %.3f ms  %.1f GB/s (%s, same run)\n", tm[RUNS / 2] * 1e3, mgbs,
               dev == ZM_CUDA ? "cudaMemcpy device-to-device" : "memcpy split over the pool");
        printf("  ratio  : %.1f %% of memcpy bandwidth\n", 100.0 * kgbs / mgbs);
    }
    for (int q = 0; q < nin; q++) zm_tensor_free(in[q]);
    zm_tensor_free(out);
    zm_tensor_free(dst);
    return s == ZM_OK ? 0 : 1;
}

int zm_cmd_kernel(int argc, char **argv) {
    const char *expr = NULL, *emit = NULL, *grad = NULL, *eval = NULL, *devname = "cpu";
    int do_bench = 0, interp = 0;
    long long n = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--emit")) { if (!(emit = zm_cli_arg("kernel", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--grad")) { if (!(grad = zm_cli_arg("kernel", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--eval")) { if (!(eval = zm_cli_arg("kernel", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--device")) { if (!(devname = zm_cli_arg("kernel", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--n")) {
            const char *v = zm_cli_arg("kernel", argc, argv, &i);
            if (!v || !zm_cli_int("kernel", "--n", v, 1, (long long)1 << 32, &n)) return 2;
        } else if (!strcmp(a, "--bench")) do_bench = 1;
        else if (!strcmp(a, "--interp")) interp = 1;
        else if (a[0] == '-' && a[1] == '-') { fprintf(stderr, "zmlx kernel: unknown option '%s'\n", a); usage(stderr); return 2; }
        else if (!expr) expr = a;
        else { fprintf(stderr, "zmlx kernel: one expression only (got '%s' too); quote it\n", a); return 2; }
    }
    if (!expr) { usage(stderr); return 2; }
    if (emit && strcmp(emit, "c") && strcmp(emit, "cuda")) { fprintf(stderr, "zmlx kernel: --emit expects c or cuda, got '%s'\n", emit); return 2; }
    zm_device dev;
    if (!strcmp(devname, "cpu")) dev = ZM_CPU;
    else if (!strcmp(devname, "cuda")) dev = ZM_CUDA;
    else { fprintf(stderr, "zmlx kernel: --device expects cpu or cuda, got '%s'\n", devname); return 2; }
    if (dev == ZM_CUDA && (eval || do_bench) && !zm_cuda_available()) {
        fprintf(stderr, "zmlx kernel: --device cuda: no CUDA GPU answers here (%s)\n", zm_last_error());
        return 1;
    }
    zm_kernel_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.force_interpreter = interp;
    zm_kernel *k = NULL, *g = NULL;
    zm_status s = zm_elementwise(&k, "expr", expr, &opts);
    if (s != ZM_OK) return zm_cli_fail("kernel", "bad expression", s);
    int nin = zm_kernel_n_inputs(k);
    char names[ZM_MAX_INPUTS][32];
    int rc = 0;
    for (int q = 0; q < nin; q++) snprintf(names[q], 32, "%s", zm_kernel_input_name(k, q));
    if (grad) {
        int wrt = -1;
        for (int q = 0; q < nin; q++) if (!strcmp(names[q], grad)) wrt = q;
        if (wrt < 0) { fprintf(stderr, "zmlx kernel: --grad %s: not an input of the expression\n", grad); zm_kernel_free(k); return 2; }
        s = zm_kernel_grad(&g, k, wrt);
        if (s != ZM_OK) { zm_kernel_free(k); return zm_cli_fail("kernel", "gradient", s); }
    }
    if (eval) {
        float vals[ZM_MAX_INPUTS + 1] = {0}, v, dv;
        if (!parse_eval(eval, k, names, nin, vals)) rc = 2;
        else if ((s = eval1(k, dev, vals, nin, &v)) != ZM_OK) rc = zm_cli_fail("kernel", "evaluate", s);
        else {
            printf("%s = %.9g", expr, (double)v);
            printf("   (");
            for (int q = 0; q < nin; q++) printf("%s%s=%g", q ? ", " : "", names[q], (double)vals[q]);
            printf("; %s %s)\n", zm_device_name(dev), dev == ZM_CPU ? zm_kernel_cpu_mode(k) : "nvrtc");
            if (g) {
                vals[nin] = 1.0f; /* upstream gradient */
                if ((s = eval1(g, dev, vals, nin + 1, &dv)) != ZM_OK) rc = zm_cli_fail("kernel", "evaluate gradient", s);
                else printf("d/d%s = %.9g\n", grad, (double)dv);
            }
        }
    } else if (do_bench) {
        rc = bench(g ? g : k, dev, n > 0 ? n : dev == ZM_CUDA ? (1LL << 28) : (1LL << 24));
    } else {
        const char *src = NULL;
        s = zm_kernel_source(g ? g : k, emit && !strcmp(emit, "cuda") ? ZM_BACKEND_CUDA : ZM_BACKEND_C, &src);
        if (s != ZM_OK) rc = zm_cli_fail("kernel", "source", s);
        else fputs(src, stdout);
    }
    zm_kernel_free(g);
    zm_kernel_free(k);
    return rc;
}
