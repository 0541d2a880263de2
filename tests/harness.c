/* Implementation of tests/harness.h. */
#include "harness.h"
#include "zmlx/core.h"
#include <float.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int zt_pass, zt_fail, zt_skipped, zt_cur_fail, zt_cur_skip;
static const char *zt_cur;
static uint64_t zt_state, zt_seed0;

uint64_t zt_seed(void) {
    if (!zt_seed0) {
        const char *e = getenv("ZT_SEED");
        zt_seed0 = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
        if (!zt_seed0) zt_seed0 = 1;
        zt_state = zt_seed0;
    }
    return zt_seed0;
}

uint64_t zt_rand_u64(void) { /* splitmix64 */
    zt_seed();
    uint64_t z = (zt_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
double zt_uniform(double lo, double hi) { return lo + (hi - lo) * ((double)(zt_rand_u64() >> 11) / 9007199254740992.0); }
double zt_normal(void) {
    double u = zt_uniform(1e-12, 1.0), v = zt_uniform(0.0, 1.0);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
void zt_fill_uniform(float *x, int64_t n, double lo, double hi) { for (int64_t i = 0; i < n; i++) x[i] = (float)zt_uniform(lo, hi); }
void zt_fill_normal(float *x, int64_t n, double s) { for (int64_t i = 0; i < n; i++) x[i] = (float)(s * zt_normal()); }
void zt_poison_f32(float *x, int64_t n) { for (int64_t i = 0; i < n; i++) x[i] = NAN; }

void zt__fail(const char *file, int line, const char *fmt, ...) {
    zt_cur_fail++;
    if (zt_cur_fail > 8) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "  FAIL %s (%s:%d, seed %llu): ", zt_cur ? zt_cur : "?", file, line, (unsigned long long)zt_seed());
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}
int zt_failed_now(void) { return zt_cur_fail; }
void zt_skip(const char *why) { zt_cur_skip = 1; printf("  skip %s: %s\n", zt_cur, why); }

void zt__run(const char *name, void (*fn)(void)) {
    zt_seed();
    zt_cur = name; zt_cur_fail = 0; zt_cur_skip = 0;
    fn();
    if (zt_cur_fail) { zt_fail++; printf("FAIL %s\n", name); }
    else if (zt_cur_skip) zt_skipped++;
    else { zt_pass++; printf("ok   %s\n", name); }
    fflush(stdout);
    zt_cur = NULL;
}

int zt_finish(void) {
    printf("RESULT %d %d %d\n", zt_pass, zt_fail, zt_skipped);
    return zt_fail ? 1 : 0;
}

int zt_close(const char *what, const float *out, const double *ref, int64_t n, double tol) {
    double scale = 0;
    for (int64_t i = 0; i < n; i++) if (fabs(ref[i]) > scale && isfinite(ref[i])) scale = fabs(ref[i]);
    if (scale < 1e-30) scale = 1e-30;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double o = out[i], r = ref[i];
        int ok;
        if (isnan(r)) ok = isnan(o);
        else if (isinf(r)) ok = (o == r);
        /* float32 results carry rounding of the largest magnitudes they were
         * computed from: a few ulps of the array's scale is always allowed,
         * else a value born of cancellation (a sum near 0) fails at random */
        else ok = isfinite(o) && (fabs(o - r) <= tol * fmax(fabs(r), scale * 1e-3) + 1e-30 ||
                                  fabs(o - r) <= 8 * FLT_EPSILON * scale);
        if (!ok) {
            if (bad < 5) zt__fail(__FILE__, __LINE__, "%s[%lld]: got %.9g want %.9g (tol %g)", what, (long long)i, o, r, tol);
            bad++;
        }
    }
    if (bad > 5) printf("  ... %d mismatches in %s\n", bad, what);
    return bad == 0;
}

double zt_rel_l2(const float *out, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) { double d = out[i] - ref[i]; num += d * d; den += ref[i] * ref[i]; }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}
