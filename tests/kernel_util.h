/* Helpers shared by tests/test_kernel*.c (header-only): tensors from float
 * data in any dtype (values rounded to the dtype, read back so references
 * see exactly what the kernel sees), read-back, and a relative-error check
 * with a floor that fits functions crossing zero. */
#ifndef ZT_KERNEL_UTIL_H
#define ZT_KERNEL_UTIL_H

#include "harness.h"
#include "zmlx/kernel.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Owned CPU tensor of dtype dt holding vals (rounded); vals is updated to the
 * rounded values. */
static inline zm_tensor *kt_make(zm_dtype dt, int ndim, const int64_t *shape, float *vals) {
    zm_tensor *t = NULL;
    if (zm_tensor_new(&t, dt, ZM_CPU, ndim, shape) != ZM_OK) return NULL;
    int64_t n = zm_tensor_numel(t);
    if (vals) {
        zm_convert_from_f32(t->data, dt, vals, n);
        zm_convert_to_f32(vals, t->data, dt, n);
    }
    return t;
}
/* Output tensor poisoned with NaN. */
static inline zm_tensor *kt_out(zm_dtype dt, int ndim, const int64_t *shape) {
    zm_tensor *t = kt_make(dt, ndim, shape, NULL);
    if (t) zm_tensor_fill(t, NAN);
    return t;
}
static inline float *kt_read(const zm_tensor *t) {
    int64_t n = zm_tensor_numel(t);
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (v) zm_convert_to_f32(v, t->data, t->dtype, n);
    return v;
}
static inline double kt_tol(zm_dtype dt) { return dt == ZM_F32 ? 2e-5 : dt == ZM_F16 ? 2.5e-3 : 1.6e-2; }

/* |out - ref| <= tol * max(|ref|, floor * max|ref|, 1e-6); NaN/Inf must match.
 * Prints the first mismatches. Returns 1 when all are close. */
static inline int kt_close(const char *what, const float *out, const double *ref, int64_t n, double tol, double floor) {
    double scale = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(ref[i]) && fabs(ref[i]) > scale) scale = fabs(ref[i]);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double o = out[i], r = ref[i];
        int ok;
        if (isnan(r)) ok = isnan(o);
        else if (isinf(r)) ok = o == r;
        else ok = isfinite(o) && (fabs(o - r) <= tol * fmax(fmax(fabs(r), floor * scale), 1e-6) ||
                                  fabs(o - r) <= 8 * FLT_EPSILON * scale); /* a few ulps of the scale */
        if (!ok && bad++ < 4) ZT_CHECK(0, "%s[%lld]: got %.9g want %.9g (tol %g)", what, (long long)i, o, r, tol);
    }
    return bad == 0;
}

#endif
