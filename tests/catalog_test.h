/* Shared by tests/test_catalog_*.c (header-only): tensors made from host
 * arrays on a chosen device, read back to host, NaN-poisoned outputs, and a
 * loop over the devices present (CUDA counted as skipped without a GPU).
 * Each catalog test runs the same float64 reference against both backends. */
#ifndef ZT_CATALOG_TEST_H
#define ZT_CATALOG_TEST_H

#include "harness.h"
#include "zmlx/ops.h"
#include <stdlib.h>
#include <string.h>

#define ZC_U __attribute__((unused))

/* A tensor on dev holding a copy of host data (NULL: left uninitialised). */
ZC_U static zm_tensor *zc_new(zm_device dev, zm_dtype dt, int nd, const int64_t *shape, const void *host) {
    zm_tensor *t = NULL, *h = NULL;
    if (zm_tensor_new(&t, dt, dev, nd, shape)) return NULL;
    if (host) {
        zm_tensor_wrap(&h, (void *)host, dt, ZM_CPU, nd, shape, NULL);
        if (!h || zm_tensor_copy(t, h)) { zm_tensor_free(h); zm_tensor_free(t); return NULL; }
        zm_tensor_free(h);
    }
    return t;
}
/* f32 tensor from host floats, in dtype dt (f16/bf16 rounded). */
ZC_U static zm_tensor *zc_newf(zm_device dev, zm_dtype dt, int nd, const int64_t *shape, const float *host) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (dt == ZM_F32) return zc_new(dev, dt, nd, shape, host);
    void *tmp = malloc((size_t)(n * 2 + 2));
    zm_convert_from_f32(tmp, dt, host, n);
    zm_tensor *t = zc_new(dev, dt, nd, shape, tmp);
    free(tmp);
    return t;
}
/* Output tensor filled with NaN (f32/f16/bf16) or 0xAB bytes (others). */
ZC_U static zm_tensor *zc_out(zm_device dev, zm_dtype dt, int nd, const int64_t *shape) {
    zm_tensor *t = zc_new(dev, dt, nd, shape, NULL);
    if (!t) return NULL;
    if (zm_dtype_is_float(dt)) zm_tensor_fill(t, NAN);
    else {
        size_t n = (size_t)zm_tensor_nbytes(t);
        unsigned char *b = malloc(n + 1);
        memset(b, 0xAB, n);
        zm_tensor *h = NULL;
        zm_tensor_wrap(&h, b, dt, ZM_CPU, nd, shape, NULL);
        zm_tensor_copy(t, h);
        zm_tensor_free(h);
        free(b);
    }
    return t;
}
/* Copy t to host memory (raw bytes). */
ZC_U static void zc_get(void *host, const zm_tensor *t) {
    zm_tensor *h = NULL;
    zm_tensor_wrap(&h, host, t->dtype, ZM_CPU, t->ndim, t->shape, NULL);
    if (h) zm_tensor_copy(h, t);
    zm_tensor_free(h);
}
/* Read back as floats (f32/f16/bf16). */
ZC_U static void zc_getf(float *host, const zm_tensor *t) {
    int64_t n = zm_tensor_numel(t);
    if (t->dtype == ZM_F32) { zc_get(host, t); return; }
    void *tmp = malloc((size_t)(n * 2 + 2));
    zc_get(tmp, t);
    zm_convert_to_f32(host, tmp, t->dtype, n);
    free(tmp);
}
ZC_U static void zc_free(int n, zm_tensor **ts) { for (int i = 0; i < n; i++) zm_tensor_free(ts[i]); }

/* Round host floats through a dtype (inputs as the kernel will see them). */
ZC_U static void zc_round(float *x, int64_t n, zm_dtype dt) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == ZM_F16) x[i] = zm_f16_to_f32(zm_f32_to_f16(x[i]));
        else if (dt == ZM_BF16) x[i] = zm_bf16_to_f32(zm_f32_to_bf16(x[i]));
    }
}
/* Relative tolerance that fits an output dtype. */
ZC_U static double zc_tol(zm_dtype dt) { return dt == ZM_F16 ? 2e-3 : dt == ZM_BF16 ? 1.6e-2 : 2e-5; }

ZC_U static float *zc_f(int64_t n) { return malloc(sizeof(float) * (size_t)n + 64); }
ZC_U static double *zc_d(int64_t n) { return calloc((size_t)n + 8, sizeof(double)); }

/* Run body once per device: CPU, then CUDA when a GPU answers. On a machine
 * without one, a test named *_cuda counts as skipped. */
#define ZC_DEVICES(test)                                                                           \
    static void test##_cpu(void) { test(ZM_CPU); }                                                  \
    static void test##_cuda(void) {                                                                 \
        if (!zm_cuda_available()) { zt_skip("no GPU"); return; }                                  \
        test(ZM_CUDA);                                                                             \
    }
#define ZC_RUN(test) do { ZT_RUN(test##_cpu); ZT_RUN(test##_cuda); } while (0)

/* Awkward sizes: primes, 1, a warp plus one, beyond a block. */
ZC_U static const int64_t zc_cols[] = {1, 7, 33, 127, 1000, 4099};
#define ZC_NCOLS ((int)(sizeof zc_cols / sizeof zc_cols[0]))

#endif
