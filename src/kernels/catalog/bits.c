/* Bits and indexing: pack_bits / unpack_bits (u8 flags <-> bytes, LSB first,
 * pad bits zero), gather_add (sum of K table rows per output row: embedding
 * bags, n-gram hashes; out-of-range ids are padding) and scatter_add
 * (accumulate rows into a table; the VJP of a gather). CUDA in bits.cu.
 * Checked by tests/test_catalog_bits.c (run: build/tests/test_catalog_bits):
 * bits exactly, sums against float64 references. */
#include "kernels/catalog/common.h"

typedef struct { uint8_t *pk; uint8_t *x; int64_t C, nb; } zm__bits_ctx;

static void zm__pack_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__bits_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = 0; b < c->nb; b++) {
            unsigned v = 0;
            for (int64_t j = 0; j < 8 && b * 8 + j < c->C; j++) v |= (unsigned)(c->x[r * c->C + b * 8 + j] != 0) << j;
            c->pk[r * c->nb + b] = (uint8_t)v;
        }
}
static void zm__unpack_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__bits_ctx *c = cv;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < c->C; i++) c->x[r * c->C + i] = (c->pk[r * c->nb + i / 8] >> (i % 8)) & 1;
}

static zm_status zm__bits(const char *n, int unpack, zm_tensor *pk, zm_tensor *x) {
    if (!x || !pk) return zm__err(ZM_ERR_INVALID, "%s: %s is NULL", n, x ? "packed" : "x");
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_U8), d));
    ZM_TRY(zm__arg(n, "packed", pk, ZM_DT(ZM_U8), d));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x), nb = (C + 7) / 8;
    ZM_TRY(zm__rows_cols(n, "packed", pk, R, nb));
    if (R * nb == 0) return ZM_OK;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_bits(unpack, pk->data, x->data, R, C));
    zm__bits_ctx c = {pk->data, x->data, C, nb};
    zm__par(R, C, unpack ? zm__unpack_rows : zm__pack_rows, &c);
    return ZM_OK;
}
zm_status zm_op_pack_bits(zm_tensor *packed, const zm_tensor *x) { return zm__bits("pack_bits", 0, packed, (zm_tensor *)x); }
zm_status zm_op_unpack_bits(zm_tensor *x, const zm_tensor *packed) {
    return zm__bits("unpack_bits", 1, (zm_tensor *)packed, x);
}

// ---------------------------------------------------------------------------
typedef struct { void *out; const void *tab; const int32_t *idx; zm_dtype dt; int64_t V, D, K, N; const float *src; } zm__gs_ctx;

static void zm__gather_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__gs_ctx *c = cv;
    float stack[256], *acc = c->D <= 256 ? stack : malloc(sizeof(float) * (size_t)c->D);
    for (int64_t r = r0; r < r1; r++) {
        if (acc) {
            for (int64_t j = 0; j < c->D; j++) acc[j] = 0;
            for (int64_t k = 0; k < c->K; k++) {
                int64_t id = c->idx[r * c->K + k];
                if (id < 0 || id >= c->V) continue;
                for (int64_t j = 0; j < c->D; j++) acc[j] += zm__ld(c->tab, c->dt, id * c->D + j);
            }
            for (int64_t j = 0; j < c->D; j++) zm__st(c->out, c->dt, r * c->D + j, acc[j]);
        } else /* no memory for a row buffer: column by column, same sums */
            for (int64_t j = 0; j < c->D; j++) {
                float s = 0;
                for (int64_t k = 0; k < c->K; k++) {
                    int64_t id = c->idx[r * c->K + k];
                    if (id >= 0 && id < c->V) s += zm__ld(c->tab, c->dt, id * c->D + j);
                }
                zm__st(c->out, c->dt, r * c->D + j, s);
            }
    }
    if (acc != stack) free(acc);
}

zm_status zm_op_gather_add(zm_tensor *out, const zm_tensor *table, const zm_tensor *idx) {
    const char *n = "gather_add";
    if (!table) return zm__err(ZM_ERR_INVALID, "%s: table is NULL", n);
    zm_device d = table->device;
    ZM_TRY(zm__arg(n, "table", table, ZM_DT_FLOAT, d));
    ZM_TRY(zm__arg(n, "idx", idx, ZM_DT(ZM_I32), d));
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(table->dtype), d));
    int64_t D = table->shape[table->ndim - 1], V = zm_tensor_rows(table);
    int64_t K = idx->shape[idx->ndim - 1], N = zm_tensor_rows(idx);
    ZM_TRY(zm__rows_cols(n, "out", out, N, D));
    if (N * D == 0) return ZM_OK;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_gather_add(out->data, table->data, idx->data, table->dtype, V, D, N, K));
    zm__gs_ctx c = {out->data, table->data, idx->data, table->dtype, V, D, K, N, NULL};
    zm__par(N, K * D, zm__gather_rows, &c);
    return ZM_OK;
}

/* Threads own column ranges, so every output element is summed by one thread
 * in source order: deterministic, no atomics. */
static void zm__scatter_cols(void *cv, int64_t c0, int64_t c1) {
    const zm__gs_ctx *c = cv;
    float *out = c->out;
    for (int64_t r = 0; r < c->N; r++) {
        int64_t id = c->idx[r];
        if (id < 0 || id >= c->V) continue;
        for (int64_t j = c0; j < c1; j++) out[id * c->D + j] += c->src[r * c->D + j];
    }
}

zm_status zm_op_scatter_add(zm_tensor *out, const zm_tensor *src, const zm_tensor *idx) {
    const char *n = "scatter_add";
    if (!out) return zm__err(ZM_ERR_INVALID, "%s: out is NULL", n);
    zm_device d = out->device;
    ZM_TRY(zm__arg(n, "out", out, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "src", src, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "idx", idx, ZM_DT(ZM_I32), d));
    int64_t D = out->shape[out->ndim - 1], V = zm_tensor_rows(out), N = zm_tensor_numel(idx);
    ZM_TRY(zm__rows_cols(n, "src", src, N, D));
    if (N * D == 0) return ZM_OK;
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_scatter_add(out->data, src->data, idx->data, V, D, N));
    zm__gs_ctx c = {out->data, NULL, idx->data, ZM_F32, V, D, 1, N, src->data};
    zm__par(D, N, zm__scatter_cols, &c);
    return ZM_OK;
}
