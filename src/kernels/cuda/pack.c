/* Weight upload for the CUDA kernels: ggml blocks (Q4_0 {f16 d; u8 qs[16]},
 * Q8_0 {f16 d; i8 qs[32]}, 2-byte aligned) are split once into an aligned
 * structure of arrays (all quants, then all scales) so the kernels can use
 * 16-byte loads. Plain types are copied as they are. The repack is streamed
 * through a bounded host buffer so multi-GB models need little host memory.
 * Checked by tests/test_cuda_ops.c (every matvec reads repacked weights). */
#include "core/cuda.h"
#include "core/internal.h"
#include "kernels/cuda/ops_cuda.h"
#include <string.h>

#define ZM__PAD 256 /* tail padding: bulk L2 prefetches round out to 16 bytes */

static int64_t qbytes_per_block(zm_dtype t) {
    switch (t) {
    case ZM_Q4_0: return 16;
    case ZM_Q8_0: return 32;
    default: return 0;
    }
}

int64_t zm_gpu_mat_row_bytes(const zm_gpu_mat *m) {
    if (!m) return 0;
    if (m->dtype == ZM_Q4_0 || m->dtype == ZM_Q8_0) return m->cols / 32 * (qbytes_per_block(m->dtype) + 2);
    return m->cols * (m->dtype == ZM_F32 ? 4 : 2);
}

int64_t zm_gpu_mat_bytes(const zm_gpu_mat *m) {
    return m ? zm_gpu_mat_row_bytes(m) * m->rows * m->n_mat : 0;
}

void zm_gpu_mat_free(zm_gpu_mat *m) {
    if (!m) return;
    zm_cuda_free(m->q);
    zm_cuda_free(m->d);
    memset(m, 0, sizeof *m);
}

zm_status zm_gpu_mat_upload(zm_gpu_mat *out, zm_dtype t, const void *host, int64_t n_mat,
                             int64_t rows, int64_t cols) {
    memset(out, 0, sizeof *out);
    if (!host || n_mat < 1 || rows < 1 || cols < 1)
        return zm__err(ZM_ERR_INVALID, "zm_gpu_mat_upload: empty matrix (%lld x %lld x %lld)",
                       (long long)n_mat, (long long)rows, (long long)cols);
    if (t != ZM_F32 && t != ZM_F16 && t != ZM_BF16 && t != ZM_Q4_0 && t != ZM_Q8_0)
        return zm__err(ZM_ERR_DTYPE, "zm_gpu_mat_upload: dtype %s not supported on CUDA", zm_dtype_name(t));
    int64_t nrows;
    if (!zm__mul_i64(n_mat, rows, &nrows) || nrows > ((int64_t)1 << 40))
        return zm__err(ZM_ERR_RANGE, "zm_gpu_mat_upload: too many rows");
    out->dtype = t;
    out->rows = rows;
    out->cols = cols;
    out->n_mat = n_mat;
    int64_t qb = qbytes_per_block(t);
    if (!qb) { /* plain: straight copy */
        int64_t n = nrows * cols * (t == ZM_F32 ? 4 : 2);
        ZM_TRY(zm_cuda_malloc(&out->q, (size_t)n + ZM__PAD));
        zm_status s = zm_cuda_memcpy_h2d(out->q, host, (size_t)n);
        if (s == ZM_OK) s = zm_cuda_memset((char *)out->q + n, 0, ZM__PAD);
        if (s != ZM_OK) zm_gpu_mat_free(out);
        return s;
    }
    if (cols % 32) {
        memset(out, 0, sizeof *out);
        return zm__err(ZM_ERR_SHAPE, "zm_gpu_mat_upload: %s rows of %lld not a multiple of 32",
                       zm_dtype_name(t), (long long)cols);
    }
    int64_t nblk = nrows * (cols / 32);
    zm_status s = zm_cuda_malloc(&out->q, (size_t)(nblk * qb) + ZM__PAD);
    if (s == ZM_OK) s = zm_cuda_malloc((void **)&out->d, (size_t)(nblk * 2) + ZM__PAD);
    if (s != ZM_OK) { zm_gpu_mat_free(out); return s; }
    /* Stream in chunks of up to 1M blocks through one host staging buffer. */
    const int64_t chunk = (int64_t)1 << 20, bb = qb + 2;
    int64_t cap = nblk < chunk ? nblk : chunk;
    uint8_t *sq = zm__alloc_aligned((size_t)(cap * qb));
    uint16_t *sd = zm__alloc_aligned((size_t)(cap * 2));
    if (!sq || !sd) { zm__free_aligned(sq); zm__free_aligned(sd); zm_gpu_mat_free(out); return zm__err(ZM_ERR_NOMEM, "zm_gpu_mat_upload: staging buffer"); }
    const uint8_t *src = host;
    for (int64_t b0 = 0; b0 < nblk && s == ZM_OK; b0 += chunk) {
        int64_t n = nblk - b0 < chunk ? nblk - b0 : chunk;
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *blk = src + (b0 + i) * bb;
            memcpy(&sd[i], blk, 2);
            memcpy(sq + i * qb, blk + 2, (size_t)qb);
        }
        s = zm_cuda_memcpy_h2d((uint8_t *)out->q + b0 * qb, sq, (size_t)(n * qb));
        if (s == ZM_OK) s = zm_cuda_memcpy_h2d(out->d + b0, sd, (size_t)(n * 2));
    }
    if (s == ZM_OK) s = zm_cuda_memset((uint8_t *)out->q + nblk * qb, 0, ZM__PAD);
    if (s == ZM_OK) s = zm_cuda_memset((uint8_t *)out->d + nblk * 2, 0, ZM__PAD);
    zm__free_aligned(sq);
    zm__free_aligned(sd);
    if (s != ZM_OK) zm_gpu_mat_free(out);
    return s;
}
