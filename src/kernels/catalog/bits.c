/* Bits and indexing: pack_bits / unpack_bits (LSB first, one bit per
 * nonzero byte), gather_add (embedding-bag sum of table rows; indices
 * outside [0, V) are padding), scatter_add (row accumulation; CUDA uses
 * atomics, so the order of float additions differs from the CPU's).
 * CUDA in bits.cu. Checked by tests/test_catalog_bits.c. */
#include "kernels/catalog/common.h"

static zm_status zm__bits(const char *n, zm_tensor *packed, zm_tensor *x, int unpack) {
    if (!x || !packed) return zm__err(ZM_ERR_INVALID, "%s: NULL tensor", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_U8), d));
    ZM_TRY(zm__arg(n, "packed", packed, ZM_DT(ZM_U8), d));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x), PB = (C + 7) / 8;
    ZM_TRY(zm__rows_cols(n, "packed", packed, R, PB));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_pack_bits(packed->data, x->data, R, C, unpack));
    uint8_t *p = packed->data, *xp = x->data;
    for (int64_t r = 0; r < R; r++) {
        if (unpack) for (int64_t i = 0; i < C; i++) xp[r * C + i] = (p[r * PB + i / 8] >> (i % 8)) & 1;
        else
            for (int64_t j = 0; j < PB; j++) {
                uint8_t bv = 0;
                for (int i = 0; i < 8 && j * 8 + i < C; i++) bv |= (uint8_t)((xp[r * C + j * 8 + i] != 0) << i);
                p[r * PB + j] = bv;
            }
    }
    return ZM_OK;
}
zm_status zm_op_pack_bits(zm_tensor *packed, const zm_tensor *x) { return zm__bits("pack_bits", packed, (zm_tensor *)x, 0); }
zm_status zm_op_unpack_bits(zm_tensor *x, const zm_tensor *packed) { return zm__bits("unpack_bits", (zm_tensor *)packed, x, 1); }

zm_status zm_op_gather_add(zm_tensor *out, const zm_tensor *table, const zm_tensor *idx) {
    const char *n = "gather_add";
    if (!table) return zm__err(ZM_ERR_INVALID, "%s: table is NULL", n);
    zm_device d = table->device;
    ZM_TRY(zm__arg(n, "table", table, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "idx", idx, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    int64_t D = table->shape[table->ndim - 1], V = zm_tensor_rows(table), K = idx->shape[idx->ndim - 1], N = zm_tensor_rows(idx);
    ZM_TRY(zm__rows_cols(n, "out", out, N, D));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_gather_add(out->data, table->data, idx->data, N, K, D, V));
    const int32_t *ix = idx->data;
    const float *t = table->data;
    float *o = out->data;
    for (int64_t r = 0; r < N; r++)
        for (int64_t i = 0; i < D; i++) {
            float s = 0;
            for (int64_t j = 0; j < K; j++) { int32_t e = ix[r * K + j]; if (e >= 0 && e < V) s += t[e * D + i]; }
            o[r * D + i] = s;
        }
    return ZM_OK;
}

zm_status zm_op_scatter_add(zm_tensor *out, const zm_tensor *src, const zm_tensor *idx) {
    const char *n = "scatter_add";
    if (!src) return zm__err(ZM_ERR_INVALID, "%s: src is NULL", n);
    zm_device d = src->device;
    ZM_TRY(zm__arg(n, "src", src, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "idx", idx, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    int64_t D = src->shape[src->ndim - 1], N = zm_tensor_rows(src), V = zm_tensor_rows(out);
    if (out->shape[out->ndim - 1] != D) return zm__err(ZM_ERR_SHAPE, "%s: out rows of %lld, src rows of %lld", n, (long long)out->shape[out->ndim - 1], (long long)D);
    ZM_TRY(zm__numel(n, "idx", idx, N));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_scatter_add(out->data, src->data, idx->data, N, D, V));
    const int32_t *ix = idx->data;
    for (int64_t r = 0; r < N; r++) {
        if (ix[r] < 0 || ix[r] >= V) continue;
        for (int64_t i = 0; i < D; i++) ((float *)out->data)[ix[r] * D + i] += ((const float *)src->data)[r * D + i];
    }
    return ZM_OK;
}
