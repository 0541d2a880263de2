/* CPU matvec bandwidth: GB/s of every weight type x ISA path (x activation
 * mode) of src/kernels/cpu_matvec.c at a size far above the caches, beside
 * memcpy's bandwidth measured in the same run, as a ratio. A matvec reads
 * its weights once, so weight bytes / time is the figure of merit and
 * memcpy (read + write traffic) is the ceiling it is held against.
 *   build/bench/cpu_matvec [--rows R] [--cols C] [--reps N] [--threads T]
 * Defaults: 16384 x 4096 (f32 256 MiB, q4_0 36 MiB), 7 reps, the default
 * pool ($ZMLX_THREADS or all CPUs). Prints a markdown table; median (min-max)
 * over reps; one warm-up call first. Not a test (bench/cpu.sh runs it). */
#include "kernels/cpu_matvec.h"
#include "zmlx/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median, min, max of n samples (sorted in place) */
static void stats(double *v, int n, double *med, double *lo, double *hi) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *lo = v[0], *hi = v[n - 1];
}

/* memcpy split over the pool like the matvec rows are */
typedef struct { char *dst; const char *src; size_t n; } cp_job;
static void cp_worker(void *ctx, int ith, int nth) {
    cp_job *j = ctx;
    size_t per = (j->n / (size_t)nth + 63) & ~(size_t)63, a = per * (size_t)ith;
    if (a >= j->n) return;
    size_t b = a + per < j->n ? a + per : j->n;
    memcpy(j->dst + a, j->src + a, b - a);
}

int main(int argc, char **argv) {
    int64_t rows = 16384, cols = 4096;
    int reps = 7, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--rows")) rows = atoll(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--cols")) cols = atoll(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--rows R] [--cols C (multiple of 32)] [--reps N] [--threads T]\n", argv[0]);
            return 2;
        }
    }
    if (rows < 1 || cols < 32 || cols % 32 || reps < 1 || reps > 1000 || threads < 0) {
        fprintf(stderr, "cpu_matvec: bad size or reps\n");
        return 2;
    }
    zm_pool *pool = NULL;
    if (threads > 0) {
        if (zm_pool_new(&pool, threads) != ZM_OK) { fprintf(stderr, "%s\n", zm_last_error()); return 1; }
    } else {
        pool = zm_pool_default();
    }
    int nth = zm_pool_size(pool);
    size_t maxb = (size_t)rows * (size_t)cols * 4;
    char *w = malloc(maxb), *w2 = malloc(maxb);
    float *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!w || !w2 || !x || !y || !t) { fprintf(stderr, "cpu_matvec: out of memory\n"); return 1; }
    /* valid weights for every type: small random bytes keep f16/bf16 finite
     * (exponent bits stay low) and quant scales small; speed does not depend
     * on the values */
    srand(1);
    for (size_t i = 0; i < maxb; i++) w[i] = (char)(rand() & 0x3f);
    for (int64_t i = 0; i < cols; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;

    /* memcpy ceiling over the same pool, 256 MiB-class buffer */
    cp_job cj = {w2, w, maxb};
    zm_pool_run(pool, cp_worker, &cj);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        zm_pool_run(pool, cp_worker, &cj);
        t[r] = now() - t0;
    }
    double med, lo, hi;
    stats(t, reps, &med, &lo, &hi);
    double cp_gbs = 2.0 * (double)maxb / med / 1e9; /* read + write traffic */
    char cpu[128] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) snprintf(cpu, sizeof cpu, "%s", c + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    printf("CPU matvec, %s, %d threads, W %lld x %lld, median (min-max) of %d\n", cpu, nth, (long long)rows,
           (long long)cols, reps);
    printf("memcpy %.0f MiB: %.2f GB/s traffic (read+write), %.2f GB/s copied (min-max %.2f-%.2f traffic)\n\n",
           (double)maxb / 1048576.0, cp_gbs, cp_gbs / 2, 2.0 * (double)maxb / hi / 1e9, 2.0 * (double)maxb / lo / 1e9);
    printf("| type | path | act | weight MiB | ms | GB/s (weights read) | min-max GB/s | / memcpy traffic |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    const zm_dtype types[] = {ZM_F32, ZM_F16, ZM_BF16, ZM_Q8_0, ZM_Q4_0};
    for (int ti = 0; ti < 5; ti++) {
        zm_dtype wt = types[ti];
        double bytes = (double)rows * (double)zm_matvec_row_bytes(wt, cols);
        int quant = wt == ZM_Q8_0 || wt == ZM_Q4_0;
        for (int act = 0; act <= quant; act++)
            for (int isa = ZM_ISA_SCALAR; isa < ZM_ISA_COUNT; isa++) {
                if (!zm_cpu_isa_supported((zm_cpu_isa)isa)) continue;
                if (isa == ZM_ISA_VNNI && !act) continue; /* f32 mode of vnni = avx512 */
                zm_matvec_opts o = {(zm_cpu_isa)isa, act};
                if (zm_matvec(pool, &o, wt, w, rows, cols, x, y) != ZM_OK) {
                    fprintf(stderr, "%s\n", zm_last_error());
                    return 1;
                }
                /* the scalar path is slow: fewer reps keep the bench short */
                int n = isa == ZM_ISA_SCALAR ? (reps < 3 ? reps : 3) : reps;
                for (int r = 0; r < n; r++) {
                    double t0 = now();
                    zm_matvec(pool, &o, wt, w, rows, cols, x, y);
                    t[r] = now() - t0;
                }
                stats(t, n, &med, &lo, &hi);
                double gbs = bytes / med / 1e9;
                printf("| %s | %s | %s | %.1f | %.2f | %.2f | %.2f-%.2f | %.2f |\n", zm_dtype_name(wt),
                       zm_cpu_isa_name((zm_cpu_isa)isa), act ? "q8" : "f32", bytes / 1048576.0, med * 1e3, gbs,
                       bytes / hi / 1e9, bytes / lo / 1e9, gbs / cp_gbs);
                fflush(stdout);
            }
    }
    if (threads > 0) zm_pool_free(pool);
    free(w), free(w2), free(x), free(y), free(t);
    return 0;
}
