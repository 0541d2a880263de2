/* Condition-aware comparison for catalog tests whose outputs are sums that
 * may cancel (interpolation, convolution, attention, scatter): element i
 * passes when |out - ref| <= tol * max(|ref|, mag[i]), mag[i] being the sum
 * of the magnitudes of the terms behind ref[i], so a float32 result is held
 * to a few ulps of what its inputs could give, not of a cancelled total.
 * Prints the first few mismatches; returns 1 if all pass. Header-only. */
#ifndef ZT_CATALOG_CLOSE_H
#define ZT_CATALOG_CLOSE_H

#include "harness.h"

__attribute__((unused)) static int zc_close_mag(const char *what, const float *out, const double *ref,
                                                const double *mag, int64_t n, double tol) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double o = out[i], r = ref[i], m = fabs(r) > mag[i] ? fabs(r) : mag[i];
        if (isfinite(o) && fabs(o - r) <= tol * m + 1e-30) continue;
        if (bad < 5) zt__fail(__FILE__, __LINE__, "%s[%lld]: got %.9g want %.9g (terms %.3g, tol %g)", what, (long long)i, o, r,
                              mag[i], tol);
        bad++;
    }
    if (bad > 5) printf("  ... %d mismatches in %s\n", bad, what);
    return bad == 0;
}

#endif
