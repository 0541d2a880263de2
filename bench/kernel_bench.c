/* Benchmark (not a test): a large f32 element-wise kernel from one line of
 * DSL against a same-run copy of the same bytes. 2^28 elements by default
 * (1 GiB per input and output; halved until the host buffers fit in 70 % of
 * RAM). CPU: every thread of zm_pool_default() vs memcpy split over the same
 * pool; CUDA: vs cudaMemcpy device-to-device. Every buffer is written before
 * timing and two untimed rounds run first, so no page fault is timed.
 * Bandwidth counts bytes read + written (kernel: (inputs+1) x 4 x n; copy:
 * 2 x 4 x n). Samples interleave kernel and copy; each CUDA sample times 10
 * back-to-back launches between syncs. Prints median [min..max] and, on the
 * CPU, the load average before and after (the machines are shared).
 *   build/bench/kernel_bench [--device cpu|cuda|all] [--n N] [--runs R] [--expr E]
 * Results and conventions: docs/BENCHMARKS.md. */
#include "core/cuda.h"
#include "core/internal.h"
#include "zmlx/kernel.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct { char *dst; const char *src; size_t n; } cp_job;
static void cp_thread(void *ctx, int ith, int nth) {
    cp_job *j = ctx;
    size_t per = (j->n / (size_t)nth + 4095) & ~(size_t)4095, a = per * (size_t)ith, b = a + per;
    if (b > j->n) b = j->n;
    if (a < b) memcpy(j->dst + a, j->src + a, b - a);
}

static int bench_one(const char *name, const char *expr, zm_device dev, int64_t n, int runs) {
    zm_kernel *k = NULL;
    zm_status s = zm_elementwise(&k, name, expr, NULL);
    if (s != ZM_OK) { fprintf(stderr, "kernel_bench: %s: %s\n", expr, zm_last_error()); return 1; }
    int nin = zm_kernel_n_inputs(k);
    zm_tensor *in[ZM_MAX_INPUTS] = {0}, *out = NULL, *cp = NULL;
    float *h = malloc(sizeof(float) * (size_t)n);
    if (!h) { fprintf(stderr, "kernel_bench: out of host memory\n"); zm_kernel_free(k); return 1; }
    uint64_t st = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; h[i] = (float)((double)(st >> 11) / 9007199254740992.0 * 8 - 4); }
    for (int q = 0; q < nin && s == ZM_OK; q++) {
        zm_tensor *w = NULL;
        s = zm_tensor_wrap(&w, h, ZM_F32, ZM_CPU, 1, &n, NULL);
        if (s == ZM_OK) s = zm_tensor_to(&in[q], w, dev);
        zm_tensor_free(w);
    }
    free(h);
    if (s == ZM_OK) s = zm_tensor_new(&out, ZM_F32, dev, 1, &n);
    if (s == ZM_OK) s = zm_tensor_new(&cp, ZM_F32, dev, 1, &n);
    if (s == ZM_OK && dev == ZM_CPU) { /* first touch of every page, outside the timing */
        memset(out->data, 0, (size_t)n * 4);
        memset(cp->data, 0, (size_t)n * 4);
    }
    double la0[3] = {0}, la1[3] = {0};
    if (dev == ZM_CPU && getloadavg(la0, 3) != 3) la0[0] = -1;
    const size_t bytes = (size_t)n * 4;
    cp_job cj = {cp ? cp->data : NULL, in[0] ? in[0]->data : NULL, bytes};
    const int batch = dev == ZM_CUDA ? 10 : 1;
    double *tk = calloc((size_t)runs, sizeof(double)), *tc = calloc((size_t)runs, sizeof(double));
    for (int r = -2; r < runs && s == ZM_OK; r++) { /* 2 warm-up rounds */
        double t0 = zm__now();
        for (int b = 0; b < batch && s == ZM_OK; b++) s = zm_kernel_call_async(k, &out, 1, (const zm_tensor *const *)in, nin, NULL);
        if (s == ZM_OK && dev == ZM_CUDA) s = zm_cuda_sync();
        double t1 = zm__now();
        for (int b = 0; b < batch && s == ZM_OK; b++) {
            if (dev == ZM_CUDA) s = zm_cuda_memcpy_d2d(cp->data, in[0]->data, bytes);
            else zm_pool_run(zm_pool_default(), cp_thread, &cj);
        }
        if (s == ZM_OK && dev == ZM_CUDA) s = zm_cuda_sync();
        double t2 = zm__now();
        if (r >= 0) { tk[r] = (t1 - t0) / batch; tc[r] = (t2 - t1) / batch; }
    }
    if (dev == ZM_CPU && getloadavg(la1, 3) != 3) la1[0] = -1;
    if (s == ZM_OK) {
        qsort(tk, (size_t)runs, sizeof *tk, cmp_d);
        qsort(tc, (size_t)runs, sizeof *tc, cmp_d);
        double kb = (double)(nin + 1) * (double)bytes, cb = 2.0 * (double)bytes;
        double kg = kb / tk[runs / 2] / 1e9, cg = cb / tc[runs / 2] / 1e9;
        char card[128] = "";
        if (dev == ZM_CUDA) zm_cuda_device_info(card, sizeof card, NULL, NULL, NULL);
        else snprintf(card, sizeof card, "%d threads", zm_pool_size(zm_pool_default()));
        /* median/median is the headline; best/best tells what a quiet machine does */
        double best = 100.0 * (kb / tk[0]) / (cb / tc[0]);
        printf("%-6s %-5s %-28s n=2^%-2d %s | kernel %8.3f ms [%.3f..%.3f] %7.1f GB/s | copy %8.3f ms [%.3f..%.3f] %7.1f GB/s | %5.1f %% of copy (best/best %5.1f %%)\n",
               name, zm_device_name(dev), expr, __builtin_ctzll((unsigned long long)n) , dev == ZM_CPU ? zm_kernel_cpu_mode(k) : "nvrtc",
               tk[runs / 2] * 1e3, tk[0] * 1e3, tk[runs - 1] * 1e3, kg, tc[runs / 2] * 1e3, tc[0] * 1e3, tc[runs - 1] * 1e3, cg,
               100 * kg / cg, best);
        if (dev == ZM_CPU) printf("       (%s, median of %d; load average %.2f %.2f %.2f before, %.2f %.2f %.2f after)\n", card, runs,
                                  la0[0], la0[1], la0[2], la1[0], la1[1], la1[2]);
        else printf("       (%s, median of %d)\n", card, runs);
    } else fprintf(stderr, "kernel_bench: %s on %s: %s\n", expr, zm_device_name(dev), zm_last_error());
    free(tk);
    free(tc);
    for (int q = 0; q < nin; q++) zm_tensor_free(in[q]);
    zm_tensor_free(out);
    zm_tensor_free(cp);
    zm_kernel_free(k);
    return s == ZM_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *devs = "all", *expr = NULL;
    long long n = 0;
    int runs = 15;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) devs = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--expr") && i + 1 < argc) expr = argv[++i];
        else { fprintf(stderr, "usage: kernel_bench [--device cpu|cuda|all] [--n N] [--runs R] [--expr E]\n"); return 2; }
    }
    if (runs < 3 || runs > 1000 || n < 0 || n > (1LL << 31) || (n & (n - 1))) {
        fprintf(stderr, "kernel_bench: --runs 3..1000, --n a power of two up to 2^31\n");
        return 2;
    }
    int rc = 0, any = 0;
    for (int d = 0; d < 2; d++) {
        zm_device dev = d ? ZM_CUDA : ZM_CPU;
        if (strcmp(devs, "all") && strcmp(devs, zm_device_name(dev))) continue;
        if (dev == ZM_CUDA && !zm_cuda_available()) { printf("cuda: no GPU answers here; skipped\n"); continue; }
        int64_t m = n ? n : 1LL << 28;
        /* host: random data + up to 2 inputs, output and copy target (all on the CPU) */
        double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
        while (!n && ram > 0 && m > 1024 && 5.0 * 4.0 * (double)m > 0.7 * ram) m /= 2;
        any = 1;
        if (expr) rc |= bench_one("user", expr, dev, m, runs);
        else {
            rc |= bench_one("mish", "x * tanh(log1p(exp(x)))", dev, m, runs);
            rc |= bench_one("swiglu", "silu(x) * y", dev, m, runs);
            rc |= bench_one("axpy", "2.5 * x + y", dev, m, runs);
        }
    }
    if (!any) { fprintf(stderr, "kernel_bench: --device expects cpu, cuda or all\n"); return 2; }
    return rc;
}
