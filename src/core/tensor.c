/* zm_tensor: shape, byte strides, owned or borrowed memory, on CPU or CUDA.
 * Checked by tests/test_core.c. */
#include "core/cuda.h"
#include "core/internal.h"
#include <string.h>

// ---------------------------------------------------------------------------
static zm_status zm__check_shape(zm_dtype t, int ndim, const int64_t *shape, int64_t *nbytes) {
    if ((int)t < 0 || t >= ZM_DTYPE_COUNT) return zm__err(ZM_ERR_DTYPE, "tensor: bad dtype %d", (int)t);
    if (ndim < 1 || ndim > ZM_MAX_DIMS)
        return zm__err(ZM_ERR_SHAPE, "tensor: %d dims (1..%d allowed)", ndim, ZM_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return zm__err(ZM_ERR_SHAPE, "tensor: negative dim %d", i);
        if (!zm__mul_i64(n, shape[i], &n)) return zm__err(ZM_ERR_RANGE, "tensor: element count overflows");
    }
    int64_t bs = zm_dtype_block_size(t);
    if (shape[ndim - 1] % bs)
        return zm__err(ZM_ERR_SHAPE, "tensor: last dim %lld not a multiple of %s block %lld",
                       (long long)shape[ndim - 1], zm_dtype_name(t), (long long)bs);
    if (!zm__mul_i64(n / bs, zm_dtype_block_bytes(t), nbytes))
        return zm__err(ZM_ERR_RANGE, "tensor: byte size overflows");
    return ZM_OK;
}

static void zm__contig_strides(zm_tensor *t) {
    int64_t s = zm_dtype_block_bytes(t->dtype) / zm_dtype_block_size(t->dtype);
    /* quantized: the row stride is whole blocks */
    int64_t row = t->shape[t->ndim - 1] / zm_dtype_block_size(t->dtype) * zm_dtype_block_bytes(t->dtype);
    t->stride[t->ndim - 1] = zm_dtype_is_quant(t->dtype) ? 0 : s;
    int64_t acc = row;
    for (int i = t->ndim - 2; i >= 0; i--) {
        t->stride[i] = acc;
        acc *= t->shape[i];
    }
    for (int i = t->ndim; i < ZM_MAX_DIMS; i++) { t->shape[i] = 1; t->stride[i] = 0; }
}

zm_status zm_tensor_new(zm_tensor **out, zm_dtype dt, zm_device d, int ndim, const int64_t *shape) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_tensor_new: out is NULL");
    *out = NULL;
    int64_t nbytes;
    ZM_TRY(zm__check_shape(dt, ndim, shape, &nbytes));
    zm_tensor *t = calloc(1, sizeof *t);
    if (!t) return zm__err(ZM_ERR_NOMEM, "tensor: out of memory");
    t->dtype = dt; t->device = d; t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    zm__contig_strides(t);
    t->owns_data = 1;
    if (d == ZM_CPU) {
        t->data = zm__alloc_aligned((size_t)nbytes);
        if (!t->data) { free(t); return zm__err(ZM_ERR_NOMEM, "tensor: cannot allocate %lld bytes", (long long)nbytes); }
    } else if (d == ZM_CUDA) {
        zm_status s = zm_cuda_malloc(&t->data, (size_t)(nbytes ? nbytes : 1));
        if (s) { free(t); return s; }
    } else {
        free(t);
        return zm__err(ZM_ERR_INVALID, "tensor: bad device %d", (int)d);
    }
    *out = t;
    return ZM_OK;
}

zm_status zm_tensor_wrap(zm_tensor **out, void *data, zm_dtype dt, zm_device d, int ndim,
                         const int64_t *shape, const int64_t *stride) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_tensor_wrap: out is NULL");
    *out = NULL;
    int64_t nbytes;
    ZM_TRY(zm__check_shape(dt, ndim, shape, &nbytes));
    zm_tensor *t = calloc(1, sizeof *t);
    if (!t) return zm__err(ZM_ERR_NOMEM, "tensor: out of memory");
    t->dtype = dt; t->device = d; t->ndim = ndim; t->data = data;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    zm__contig_strides(t);
    if (stride) memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
    *out = t;
    return ZM_OK;
}

zm_status zm_tensor_view(zm_tensor **out, const zm_tensor *b, int ndim, const int64_t *shape,
                         const int64_t *stride, int64_t offset) {
    if (!b) return zm__err(ZM_ERR_INVALID, "zm_tensor_view: base is NULL");
    if (offset < 0) return zm__err(ZM_ERR_RANGE, "zm_tensor_view: negative offset");
    return zm_tensor_wrap(out, (char *)b->data + offset, b->dtype, b->device, ndim, shape, stride);
}

void zm_tensor_free(zm_tensor *t) {
    if (!t) return;
    if (t->owns_data) {
        if (t->device == ZM_CUDA) zm_cuda_free(t->data);
        else zm__free_aligned(t->data);
    }
    free(t);
}

int64_t zm_tensor_numel(const zm_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}
int64_t zm_tensor_rows(const zm_tensor *t) {
    return t->shape[t->ndim - 1] ? zm_tensor_numel(t) / t->shape[t->ndim - 1] : 0;
}
int64_t zm_tensor_nbytes(const zm_tensor *t) {
    return zm_tensor_numel(t) / zm_dtype_block_size(t->dtype) * zm_dtype_block_bytes(t->dtype);
}

int zm_tensor_is_contiguous(const zm_tensor *t) {
    zm_tensor c = *t;
    zm__contig_strides(&c);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > 1 && t->stride[i] != c.stride[i] && !(i == t->ndim - 1 && zm_dtype_is_quant(t->dtype)))
            return 0;
    return 1;
}

// ---------------------------------------------------------------------------
zm_status zm_tensor_copy(zm_tensor *dst, const zm_tensor *src) {
    if (!dst || !src) return zm__err(ZM_ERR_INVALID, "zm_tensor_copy: NULL tensor");
    if (dst->dtype != src->dtype) return zm__err(ZM_ERR_DTYPE, "zm_tensor_copy: %s vs %s", zm_dtype_name(dst->dtype), zm_dtype_name(src->dtype));
    if (zm_tensor_numel(dst) != zm_tensor_numel(src)) return zm__err(ZM_ERR_SHAPE, "zm_tensor_copy: element counts differ");
    if (!zm_tensor_is_contiguous(dst) || !zm_tensor_is_contiguous(src))
        return zm__err(ZM_ERR_UNSUPPORTED, "zm_tensor_copy: non-contiguous tensors");
    size_t n = (size_t)zm_tensor_nbytes(src);
    if (dst->device == ZM_CPU && src->device == ZM_CPU) { memmove(dst->data, src->data, n); return ZM_OK; }
    if (dst->device == ZM_CUDA && src->device == ZM_CPU) return zm_cuda_memcpy_h2d(dst->data, src->data, n);
    if (dst->device == ZM_CPU && src->device == ZM_CUDA) return zm_cuda_memcpy_d2h(dst->data, src->data, n);
    return zm_cuda_memcpy_d2d(dst->data, src->data, n);
}

zm_status zm_tensor_to(zm_tensor **out, const zm_tensor *t, zm_device d) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_tensor_to: out is NULL");
    *out = NULL;
    if (!t) return zm__err(ZM_ERR_INVALID, "zm_tensor_to: NULL tensor");
    zm_tensor *r;
    ZM_TRY(zm_tensor_new(&r, t->dtype, d, t->ndim, t->shape));
    zm_status s = zm_tensor_copy(r, t);
    if (s) { zm_tensor_free(r); return s; }
    *out = r;
    return ZM_OK;
}

zm_status zm_tensor_fill(zm_tensor *t, float v) {
    if (!t) return zm__err(ZM_ERR_INVALID, "zm_tensor_fill: NULL tensor");
    if (zm_dtype_is_quant(t->dtype)) return zm__err(ZM_ERR_DTYPE, "zm_tensor_fill: quantized dtype");
    if (!zm_tensor_is_contiguous(t)) return zm__err(ZM_ERR_UNSUPPORTED, "zm_tensor_fill: non-contiguous");
    int64_t n = zm_tensor_numel(t), es = zm_dtype_block_bytes(t->dtype);
    unsigned char one[8];
    zm_convert_from_f32(one, t->dtype, &v, 1);
    unsigned char *h = t->device == ZM_CPU ? t->data : malloc((size_t)(n * es) + 1);
    if (!h) return zm__err(ZM_ERR_NOMEM, "zm_tensor_fill: out of memory");
    for (int64_t i = 0; i < n; i++) memcpy(h + i * es, one, (size_t)es);
    zm_status s = ZM_OK;
    if (t->device == ZM_CUDA) { s = zm_cuda_memcpy_h2d(t->data, h, (size_t)(n * es)); free(h); }
    return s;
}
