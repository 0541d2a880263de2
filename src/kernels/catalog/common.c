/* Argument checks and the row-parallel loop shared by the catalog families.
 * Exercised by every tests/test_catalog_*.c (bad-argument cases included). */
#include "kernels/catalog/common.h"
#include <stdio.h>

zm_status zm__arg(const char *op, const char *what, const zm_tensor *t, unsigned mask, zm_device dev) {
    if (!t) return zm__err(ZM_ERR_INVALID, "%s: %s is NULL", op, what);
    if ((int)t->dtype < 0 || t->dtype >= ZM_DTYPE_COUNT || !(mask & ZM_DT(t->dtype))) {
        char ok[96] = "";
        for (int d = 0; d < ZM_DTYPE_COUNT; d++)
            if (mask & ZM_DT(d)) {
                size_t l = strlen(ok);
                snprintf(ok + l, sizeof ok - l, "%s%s", l ? "/" : "", zm_dtype_name((zm_dtype)d));
            }
        return zm__err(ZM_ERR_DTYPE, "%s: %s is %s, expected %s", op, what, zm_dtype_name(t->dtype), ok);
    }
    if (t->device != dev)
        return zm__err(ZM_ERR_INVALID, "%s: %s is on %s, the op runs on %s", op, what,
                       zm_device_name(t->device), zm_device_name(dev));
    if (!zm_tensor_is_contiguous(t)) return zm__err(ZM_ERR_UNSUPPORTED, "%s: %s is not contiguous", op, what);
    if (!t->data && zm_tensor_numel(t) > 0) return zm__err(ZM_ERR_INVALID, "%s: %s has no data", op, what);
    return ZM_OK;
}

zm_status zm__same_shape(const char *op, const char *an, const zm_tensor *a, const char *bn, const zm_tensor *b) {
    int same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++) same = a->shape[i] == b->shape[i];
    if (!same) {
        /* leading dims may be laid out differently: same rows x cols is enough */
        if (a->shape[a->ndim - 1] == b->shape[b->ndim - 1] && zm_tensor_numel(a) == zm_tensor_numel(b)) return ZM_OK;
        return zm__err(ZM_ERR_SHAPE, "%s: %s (%lld elements, last dim %lld) and %s (%lld, %lld) differ", op, an,
                       (long long)zm_tensor_numel(a), (long long)a->shape[a->ndim - 1], bn,
                       (long long)zm_tensor_numel(b), (long long)b->shape[b->ndim - 1]);
    }
    return ZM_OK;
}

zm_status zm__rows_cols(const char *op, const char *what, const zm_tensor *t, int64_t rows, int64_t cols) {
    if (t->shape[t->ndim - 1] != cols || zm_tensor_rows(t) != rows)
        return zm__err(ZM_ERR_SHAPE, "%s: %s must be %lld rows of %lld, is %lld rows of %lld", op, what,
                       (long long)rows, (long long)cols, (long long)zm_tensor_rows(t),
                       (long long)t->shape[t->ndim - 1]);
    return ZM_OK;
}

zm_status zm__numel(const char *op, const char *what, const zm_tensor *t, int64_t n) {
    if (zm_tensor_numel(t) != n)
        return zm__err(ZM_ERR_SHAPE, "%s: %s must have %lld elements, has %lld", op, what, (long long)n,
                       (long long)zm_tensor_numel(t));
    return ZM_OK;
}

zm_status zm__no_cuda(const char *op) { return zm__err(ZM_ERR_NO_DEVICE, "%s: zmlx was built without CUDA", op); }

// ---------------------------------------------------------------------------
typedef struct { int64_t n; zm__range_fn fn; void *ctx; } zm__par_job;
static void zm__par_worker(void *c, int ith, int nth) {
    zm__par_job *j = c;
    int64_t per = (j->n + nth - 1) / nth, r0 = per * ith, r1 = r0 + per;
    if (r1 > j->n) r1 = j->n;
    if (r0 < r1) j->fn(j->ctx, r0, r1);
}
void zm__par(int64_t n, int64_t work_per_item, zm__range_fn fn, void *ctx) {
    if (n <= 0) return;
    zm_pool *p = n * (work_per_item > 0 ? work_per_item : 1) >= 32768 ? zm_pool_default() : NULL;
    if (!p || zm_pool_size(p) < 2) { fn(ctx, 0, n); return; }
    zm__par_job j = {n, fn, ctx};
    zm_pool_run(p, zm__par_worker, &j);
}
