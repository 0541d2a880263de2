/* Benchmark (not a test): the output head's matrix-vector product alone,
 * k_matvec against the wide kernel (ZMLX_CUDA_WIDE=0 / 1), on a random
 * Q4_0 or Q8_0 matrix of the head's shape (151936 x 2048 by default), and
 * a device-to-device copy of its quants (the bytes less the scales) in the
 * same run. Each sample times `batch` back-to-back launches between syncs
 * (wall clock); samples interleave the variants. Prints the median and
 * range in µs a launch and GB/s of weight bytes read.
 *   build/bench/head_bench [--rows R] [--cols C] [--type q4_0|q8_0] [--runs N]
 * Results: docs/BENCHMARKS.md. */
#include "core/cuda.h"
#include "core/internal.h"
#include "kernels/cuda/ops_cuda.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int64_t rows = 151936, cols = 2048;
    int runs = 15, batch = 20;
    zm_dtype t = ZM_Q4_0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc) cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "q8_0")) t = ZM_Q8_0;
            else if (strcmp(v, "q4_0")) { fprintf(stderr, "head_bench: type %s (q4_0|q8_0)\n", v); return 2; }
        } else { fprintf(stderr, "usage: head_bench [--rows R] [--cols C] [--type q4_0|q8_0] [--runs N]\n"); return 2; }
    }
    if (rows < 1 || cols < 32 || cols % 32 || runs < 1 || runs > 1000) { fprintf(stderr, "head_bench: bad shape or runs\n"); return 2; }
    if (zm_cuda_init() != ZM_OK) { fprintf(stderr, "head_bench: %s\n", zm_last_error()); return 1; }
    const size_t bb = t == ZM_Q4_0 ? 18 : 34, nblk = (size_t)rows * (size_t)(cols / 32), bytes = nblk * bb;
    unsigned char *h = malloc(bytes);
    float *x = malloc((size_t)cols * 4);
    if (!h || !x) { fprintf(stderr, "head_bench: out of memory\n"); return 1; }
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < bytes; i++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; h[i] = (unsigned char)r; }
    const uint16_t d = 0x2000; /* f16 ~0.0078: a sane scale in every block */
    for (size_t b = 0; b < nblk; b++) memcpy(h + b * bb, &d, 2);
    for (int64_t i = 0; i < cols; i++) x[i] = (float)((i * 37 % 101) - 50) / 50.f;
    zm_gpu_mat m = {0};
    float *dx = NULL, *dy = NULL;
    void *cp = NULL;
    zm_status st = zm_gpu_mat_upload(&m, t, h, 1, rows, cols);
    if (st == ZM_OK) st = zm_cuda_malloc((void **)&dx, (size_t)cols * 4);
    if (st == ZM_OK) st = zm_cuda_malloc((void **)&dy, (size_t)rows * 4);
    if (st == ZM_OK) st = zm_cuda_malloc(&cp, bytes);
    if (st == ZM_OK) st = zm_cuda_memcpy_h2d(dx, x, (size_t)cols * 4);
    if (st != ZM_OK) { fprintf(stderr, "head_bench: %s\n", zm_last_error()); return 1; }
    char card[128] = "";
    zm_cuda_device_info(card, sizeof card, NULL, NULL, NULL);
    printf("%s: %s %lld x %lld, %.1f MB\n", card, zm_dtype_name(t), (long long)rows, (long long)cols, bytes / 1e6);
    static const char *const name[3] = {"k_matvec (ZMLX_CUDA_WIDE=0)", "k_matvec_wide", "copy of its quants"};
    double *us[3];
    for (int v = 0; v < 3; v++) us[v] = malloc(sizeof(double) * (size_t)runs);
    for (int s = -2; s < runs && st == ZM_OK; s++) /* two untimed rounds */
        for (int v = 0; v < 3 && st == ZM_OK; v++) {
            setenv("ZMLX_CUDA_WIDE", v == 1 ? "1" : "0", 1);
            st = zm_cuda_sync();
            const double t0 = zm__now();
            for (int b = 0; b < batch && st == ZM_OK; b++)
                st = v < 2 ? zm_gpu_matvec(&m, 0, dx, NULL, 0.f, NULL, dy, NULL) : zm_cuda_memcpy_d2d(cp, m.q, bytes - nblk * 2);
            if (st == ZM_OK) st = zm_cuda_sync();
            if (s >= 0) us[v][s] = (zm__now() - t0) * 1e6 / batch;
        }
    if (st != ZM_OK) { fprintf(stderr, "head_bench: %s\n", zm_last_error()); return 1; }
    for (int v = 0; v < 3; v++) {
        qsort(us[v], (size_t)runs, sizeof(double), cmp_d);
        const double med = us[v][runs / 2], moved = v < 2 ? (double)bytes : 2.0 * (double)(bytes - nblk * 2);
        printf("%-28s %8.1f us [%.1f..%.1f]  %7.1f GB/s%s\n", name[v], med, us[v][0], us[v][runs - 1], moved / med / 1e3,
               v < 2 ? " (weights read)" : " (read + write)");
        free(us[v]);
    }
    zm_gpu_mat_free(&m);
    zm_cuda_free(dx); zm_cuda_free(dy); zm_cuda_free(cp);
    free(h); free(x);
    return 0;
}
