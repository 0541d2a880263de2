/* The test harness every tests/test_*.c binary links: test registration,
 * checks that print what went wrong, fresh random inputs, NaN poisoning and
 * relative-error comparison against float64 references.
 * Each binary ends by printing "RESULT <passed> <failed> <skipped>"; tests/run.sh
 * adds them up into the final "N passed, N failed, N skipped" line. */
#ifndef ZT_HARNESS_H
#define ZT_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* Run one test function; it passes unless a ZT_CHECK failed or it skipped. */
#define ZT_RUN(fn) zt__run(#fn, fn)
void zt__run(const char *name, void (*fn)(void));
/* Mark the running test skipped (e.g. no GPU); return from the test after it. */
void zt_skip(const char *why);
/* Print the summary line; return the process exit code. */
int zt_finish(void);

void zt__fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define ZT_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) zt__fail(__FILE__, __LINE__, __VA_ARGS__);                                    \
    } while (0)
/* Check a zm_status call is ZM_OK, printing zm_last_error() otherwise. */
#define ZT_OK(expr)                                                                                \
    do {                                                                                           \
        int zt__s = (int)(expr);                                                                   \
        if (zt__s != 0) zt__fail(__FILE__, __LINE__, "%s -> %d: %s", #expr, zt__s, zm_last_error()); \
    } while (0)
int zt_failed_now(void); /* failures so far in the running test */

/* Random numbers: seeded from $ZT_SEED or the clock (printed on failure). */
uint64_t zt_rand_u64(void);
double zt_uniform(double lo, double hi);
double zt_normal(void);
void zt_fill_uniform(float *x, int64_t n, double lo, double hi);
void zt_fill_normal(float *x, int64_t n, double scale);
void zt_poison_f32(float *x, int64_t n); /* NaN */
uint64_t zt_seed(void);

/* max_i |out_i - ref_i| / max(|ref|_inf, tiny); NaN if any out is NaN where ref
 * is not. Prints the first few mismatches above tol with `what`. Returns 1 if ok. */
int zt_close(const char *what, const float *out, const double *ref, int64_t n, double tol);
/* ||out - ref||_2 / ||ref||_2 */
double zt_rel_l2(const float *out, const double *ref, int64_t n);

#endif
