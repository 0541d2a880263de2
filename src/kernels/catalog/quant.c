/* Quantization family. GGUF block formats (Q8_0, Q4_0, MXFP4: ggml's block
 * structs from src/gguf/quant.h and its round-to-nearest reference rules),
 * dequantize (+ fused SiLU), int8 per row, int4 per group (asymmetric), fp8
 * e4m3/e5m2 (saturating), NF4 (64-element groups). CUDA in quant.cu.
 * Checked by tests/test_catalog_quant.c: block formats bit-for-bit against
 * gguf's reference quantizer, all formats against float64 dequantization and
 * error bounds, CPU and CUDA bit-identical. */
#include "gguf/quant.h"
#include "kernels/catalog/common.h"
#include "kernels/catalog/quant_fmt.h"

static const float zm__nf4[16] = ZM_NF4_LEVELS;
static const int8_t zm__mxv[16] = ZM_MXFP4_VALUES;

// ---------------------------------------------------------------------------
/* MXFP4 as ggml's quantize_row_mxfp4_ref: e = floor(log2(amax)) - 2 + 127,
 * d = 2^(e - 128), each value the nearest of the doubled E2M1 table (first
 * on ties). floor(log2) is taken exactly from the exponent bits. */
static void zm__quant_mxfp4_row(zm_block_mxfp4 *y, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        int ex = 0;
        if (amax > 0) { (void)frexpf(amax, &ex); ex = ex - 1 - 2 + 127; }
        if (ex < 0) ex = 0;
        uint8_t e = (uint8_t)ex;
        float d = ldexpf(1.0f, (int)e - 128);
        y[b].e = e;
        for (int j = 0; j < 16; j++) {
            uint8_t q[2];
            for (int h = 0; h < 2; h++) {
                float v = x[j + 16 * h], best = fabsf((float)zm__mxv[0] * d - v);
                int bi = 0;
                for (int i = 1; i < 16; i++) {
                    float err = fabsf((float)zm__mxv[i] * d - v);
                    if (err < best) { best = err; bi = i; }
                }
                q[h] = (uint8_t)bi;
            }
            y[b].qs[j] = (uint8_t)(q[0] | q[1] << 4);
        }
    }
}

typedef struct { zm_dtype dt; void *q; float *x; int64_t C; int silu; } zm__qb_ctx;
static void zm__qb_rows(void *cv, int64_t r0, int64_t r1) {
    const zm__qb_ctx *c = cv;
    int64_t bpr = c->C / 32, bb = zm_dtype_block_bytes(c->dt);
    for (int64_t r = r0; r < r1; r++) {
        char *q = (char *)c->q + r * bpr * bb;
        float *x = c->x + r * c->C;
        if (c->silu < 0) { /* quantize */
            if (c->dt == ZM_Q8_0) zm_quantize_row_q8_0((zm_block_q8_0 *)q, x, c->C);
            else if (c->dt == ZM_Q4_0) zm_quantize_row_q4_0((zm_block_q4_0 *)q, x, c->C);
            else zm__quant_mxfp4_row((zm_block_mxfp4 *)q, x, c->C);
        } else {
            if (c->dt == ZM_Q8_0) zm_dequantize_row_q8_0(x, (const zm_block_q8_0 *)q, c->C);
            else if (c->dt == ZM_Q4_0) zm_dequantize_row_q4_0(x, (const zm_block_q4_0 *)q, c->C);
            else zm_dequantize_row_mxfp4(x, (const zm_block_mxfp4 *)q, c->C);
            if (c->silu) for (int64_t i = 0; i < c->C; i++) x[i] = zm__silu(x[i]);
        }
    }
}

#define ZM__BLOCKQ (ZM_DT(ZM_Q8_0) | ZM_DT(ZM_Q4_0) | ZM_DT(ZM_MXFP4))
static zm_status zm__qblock(const char *n, zm_tensor *q, zm_tensor *x, int silu) {
    if (!q || !x) return zm__err(ZM_ERR_INVALID, "%s: NULL tensor", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "q", q, ZM__BLOCKQ, d));
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__same_shape(n, "q", q, "x", x));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    if (d == ZM_CUDA) {
        if (silu < 0) ZM_CUDA_CALL(n, zm_cuda_quantize_block(q->dtype, q->data, x->data, R * C / 32));
        ZM_CUDA_CALL(n, zm_cuda_dequantize_block(q->dtype, x->data, q->data, R * C, silu));
    }
    zm__qb_ctx c = {q->dtype, q->data, x->data, C, silu};
    zm__par(R, C, zm__qb_rows, &c);
    return ZM_OK;
}
zm_status zm_op_quantize(zm_tensor *q, const zm_tensor *x) { return zm__qblock("quantize", q, (zm_tensor *)x, -1); }
zm_status zm_op_dequantize(zm_tensor *x, const zm_tensor *q) { return zm__qblock("dequantize", (zm_tensor *)q, x, 0); }
zm_status zm_op_dequantize_silu(zm_tensor *x, const zm_tensor *q) { return zm__qblock("dequantize_silu", (zm_tensor *)q, x, 1); }

// ---------------------------------------------------------------------------
/* int8 per row: scale = absmax / 127, q = rint(x * (1 / scale)) */
zm_status zm_op_quantize_int8_row(zm_tensor *q, zm_tensor *scale, const zm_tensor *x) {
    const char *n = "quantize_int8_row";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "q", q, ZM_DT(ZM_I8), d));
    ZM_TRY(zm__arg(n, "scale", scale, ZM_DT(ZM_F32), d));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    ZM_TRY(zm__rows_cols(n, "q", q, R, C));
    ZM_TRY(zm__numel(n, "scale", scale, R));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_int8_row(0, q->data, scale->data, x->data, R, C));
    const float *xp = x->data;
    int8_t *qp = q->data;
    float *sp = scale->data;
    for (int64_t r = 0; r < R; r++) {
        float amax = 0;
        for (int64_t i = 0; i < C; i++) amax = fmaxf(amax, fabsf(xp[r * C + i]));
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0.0f;
        sp[r] = s;
        for (int64_t i = 0; i < C; i++) {
            float v = rintf(xp[r * C + i] * inv);
            qp[r * C + i] = (int8_t)fmaxf(-127.0f, fminf(127.0f, v));
        }
    }
    return ZM_OK;
}
zm_status zm_op_dequantize_int8_row(zm_tensor *x, const zm_tensor *q, const zm_tensor *scale) {
    const char *n = "dequantize_int8_row";
    if (!q) return zm__err(ZM_ERR_INVALID, "%s: q is NULL", n);
    zm_device d = q->device;
    ZM_TRY(zm__arg(n, "q", q, ZM_DT(ZM_I8), d));
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "scale", scale, ZM_DT(ZM_F32), d));
    int64_t C = q->shape[q->ndim - 1], R = zm_tensor_rows(q);
    ZM_TRY(zm__rows_cols(n, "x", x, R, C));
    ZM_TRY(zm__numel(n, "scale", scale, R));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_int8_row(1, q->data, scale->data, x->data, R, C));
    for (int64_t i = 0; i < R * C; i++) ((float *)x->data)[i] = (float)((const int8_t *)q->data)[i] * ((const float *)scale->data)[i / C];
    return ZM_OK;
}

// ---------------------------------------------------------------------------
/* int4 per group: the range [min(x, 0), max(x, 0)] (0 stays exact) over 15
 * steps; zero = rint(-lo / scale) in 0..15; q = clamp(rint(x / scale) + zero). */
static zm_status zm__int4_check(const char *n, const zm_tensor *q, const zm_tensor *s, const zm_tensor *z,
                                const zm_tensor *x, int group, zm_device d, int64_t *R, int64_t *C) {
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "q", q, ZM_DT(ZM_U8), d));
    ZM_TRY(zm__arg(n, "scale", s, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "zero", z, ZM_DT(ZM_F32), d));
    *C = x->shape[x->ndim - 1]; *R = zm_tensor_rows(x);
    if (group < 2 || group % 2 || *C % group)
        return zm__err(ZM_ERR_SHAPE, "%s: group %d must be even and divide the row length %lld", n, group, (long long)*C);
    ZM_TRY(zm__rows_cols(n, "q", q, *R, *C / 2));
    ZM_TRY(zm__rows_cols(n, "scale", s, *R, *C / group));
    return zm__rows_cols(n, "zero", z, *R, *C / group);
}
zm_status zm_op_quantize_int4_group(zm_tensor *q, zm_tensor *scale, zm_tensor *zero, const zm_tensor *x, int group) {
    const char *n = "quantize_int4_group";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    int64_t R, C;
    ZM_TRY(zm__int4_check(n, q, scale, zero, x, group, x->device, &R, &C));
    if (x->device == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_int4_group(0, q->data, scale->data, zero->data, x->data, R, C, group));
    const float *xp = x->data;
    uint8_t *qp = q->data;
    for (int64_t gi = 0; gi < R * C / group; gi++) {
        const float *g = xp + gi * group;
        float lo = 0, hi = 0;
        for (int i = 0; i < group; i++) { lo = fminf(lo, g[i]); hi = fmaxf(hi, g[i]); }
        float s = (hi - lo) / 15.0f, inv = s > 0 ? 1.0f / s : 0.0f, z = rintf(-lo * inv);
        ((float *)scale->data)[gi] = s;
        ((float *)zero->data)[gi] = z;
        for (int i = 0; i < group; i += 2) {
            float a = fminf(15.0f, fmaxf(0.0f, rintf(g[i] * inv) + z)), b = fminf(15.0f, fmaxf(0.0f, rintf(g[i + 1] * inv) + z));
            qp[(gi * group + i) / 2] = (uint8_t)((int)a | (int)b << 4);
        }
    }
    return ZM_OK;
}
zm_status zm_op_dequantize_int4_group(zm_tensor *x, const zm_tensor *q, const zm_tensor *scale, const zm_tensor *zero, int group) {
    const char *n = "dequantize_int4_group";
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    int64_t R, C;
    ZM_TRY(zm__int4_check(n, q, scale, zero, x, group, x->device, &R, &C));
    if (x->device == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_int4_group(1, q->data, scale->data, zero->data, x->data, R, C, group));
    const uint8_t *qp = q->data;
    for (int64_t i = 0; i < R * C; i++) {
        int v = (qp[i / 2] >> (4 * (i & 1))) & 15;
        ((float *)x->data)[i] = ((const float *)scale->data)[i / group] * ((float)v - ((const float *)zero->data)[i / group]);
    }
    return ZM_OK;
}

// ---------------------------------------------------------------------------
static zm_status zm__fp8(const char *n, int dir, zm_tensor *q, zm_tensor *x, float scale, zm_fp8_kind k) {
    if (!x || !q) return zm__err(ZM_ERR_INVALID, "%s: NULL tensor", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "q", q, ZM_DT(ZM_U8), d));
    ZM_TRY(zm__same_shape(n, "q", q, "x", x));
    if (!(scale > 0) || isinf(scale)) return zm__err(ZM_ERR_RANGE, "%s: scale %g must be positive and finite", n, (double)scale);
    if ((int)k != 0 && (int)k != 1) return zm__err(ZM_ERR_INVALID, "%s: fp8 kind %d", n, (int)k);
    int64_t N = zm_tensor_numel(x);
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_fp8(dir, q->data, x->data, N, scale, (int)k));
    float *xp = x->data;
    uint8_t *qp = q->data;
    for (int64_t i = 0; i < N; i++) {
        if (dir == 0) qp[i] = zm__fp8_enc(xp[i] / scale, (int)k);
        else xp[i] = zm__fp8_dec(qp[i], (int)k) * scale;
    }
    return ZM_OK;
}
zm_status zm_op_quantize_fp8(zm_tensor *q, const zm_tensor *x, float scale, zm_fp8_kind k) {
    return zm__fp8("quantize_fp8", 0, q, (zm_tensor *)x, scale, k);
}
zm_status zm_op_dequantize_fp8(zm_tensor *x, const zm_tensor *q, float scale, zm_fp8_kind k) {
    return zm__fp8("dequantize_fp8", 1, (zm_tensor *)q, x, scale, k);
}

// ---------------------------------------------------------------------------
static int zm__nf4_nearest(float v) { /* nearest level, the lower one on ties */
    int bi = 0;
    float best = fabsf(v - zm__nf4[0]);
    for (int i = 1; i < 16; i++) {
        float e = fabsf(v - zm__nf4[i]);
        if (e < best) { best = e; bi = i; }
    }
    return bi;
}
static zm_status zm__nf4_run(const char *n, int dir, zm_tensor *q, zm_tensor *am, zm_tensor *x) {
    if (!x) return zm__err(ZM_ERR_INVALID, "%s: x is NULL", n);
    zm_device d = x->device;
    ZM_TRY(zm__arg(n, "x", x, ZM_DT(ZM_F32), d));
    ZM_TRY(zm__arg(n, "q", q, ZM_DT(ZM_U8), d));
    ZM_TRY(zm__arg(n, "absmax", am, ZM_DT(ZM_F32), d));
    int64_t C = x->shape[x->ndim - 1], R = zm_tensor_rows(x);
    if (C % 64) return zm__err(ZM_ERR_SHAPE, "%s: row length %lld not a multiple of 64", n, (long long)C);
    ZM_TRY(zm__rows_cols(n, "q", q, R, C / 2));
    ZM_TRY(zm__rows_cols(n, "absmax", am, R, C / 64));
    if (d == ZM_CUDA) ZM_CUDA_CALL(n, zm_cuda_nf4(dir, q->data, am->data, x->data, R, C));
    float *xp = x->data, *ap = am->data;
    uint8_t *qp = q->data;
    for (int64_t g = 0; g < R * C / 64; g++) {
        float *v = xp + g * 64;
        if (dir == 0) {
            float a = 0;
            for (int i = 0; i < 64; i++) a = fmaxf(a, fabsf(v[i]));
            ap[g] = a;
            float inv = a > 0 ? 1.0f / a : 0.0f;
            for (int i = 0; i < 64; i += 2)
                qp[g * 32 + i / 2] = (uint8_t)(zm__nf4_nearest(v[i] * inv) | zm__nf4_nearest(v[i + 1] * inv) << 4);
        } else {
            for (int i = 0; i < 64; i++) v[i] = zm__nf4[(qp[g * 32 + i / 2] >> (4 * (i & 1))) & 15] * ap[g];
        }
    }
    return ZM_OK;
}
zm_status zm_op_quantize_nf4(zm_tensor *q, zm_tensor *absmax, const zm_tensor *x) {
    return zm__nf4_run("quantize_nf4", 0, q, absmax, (zm_tensor *)x);
}
zm_status zm_op_dequantize_nf4(zm_tensor *x, const zm_tensor *q, const zm_tensor *absmax) {
    return zm__nf4_run("dequantize_nf4", 1, (zm_tensor *)q, (zm_tensor *)absmax, x);
}
