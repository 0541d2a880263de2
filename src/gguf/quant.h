/* Quantized weight blocks, bit-identical to ggml's (ggml-common.h), and the
 * reference (scalar, round-to-nearest) quantize / dequantize rows that the
 * fast kernels are tested against. A row of n elements must have n a multiple
 * of the block size (32 for Q8_0/Q4_0/MXFP4, 256 for the K-quants).
 * Checked against hand-computed blocks in tests/test_quant.c
 * (build/tests/test_quant). */
#ifndef ZM_GGUF_QUANT_H
#define ZM_GGUF_QUANT_H

#include "zmlx/core.h"
#include <stdint.h>

#define ZM_QK8_0 32
#define ZM_QK4_0 32
#define ZM_QK_K 256
#define ZM_QK_MXFP4 32

typedef uint16_t zm_half; /* IEEE binary16 bits */

/* value_j = d * qs[j] */
typedef struct {
    zm_half d;
    int8_t qs[ZM_QK8_0];
} zm_block_q8_0;

/* value_j = (q_j - 8) * d; q_j = qs[j] & 15 for j < 16, qs[j-16] >> 4 above */
typedef struct {
    zm_half d;
    uint8_t qs[ZM_QK4_0 / 2];
} zm_block_q4_0;

/* 8 sub-blocks of 32: value = d*sc_s*q - dmin*m_s, 6-bit sc/m packed in scales */
typedef struct {
    zm_half d, dmin;
    uint8_t scales[12];
    uint8_t qs[ZM_QK_K / 2];
} zm_block_q4_k;

/* as Q4_K plus a fifth bit per weight in qh */
typedef struct {
    zm_half d, dmin;
    uint8_t scales[12];
    uint8_t qh[ZM_QK_K / 8];
    uint8_t qs[ZM_QK_K / 2];
} zm_block_q5_k;

/* 16 sub-blocks of 16: value = d * scales_s * (q - 32), q 6 bits (ql low 4, qh high 2) */
typedef struct {
    uint8_t ql[ZM_QK_K / 2];
    uint8_t qh[ZM_QK_K / 4];
    int8_t scales[ZM_QK_K / 16];
    zm_half d;
} zm_block_q6_k;

/* OCP MXFP4: e8m0 shared exponent, 32 E2M1 values (low nibbles 0..15, high 16..31) */
typedef struct {
    uint8_t e;
    uint8_t qs[ZM_QK_MXFP4 / 2];
} zm_block_mxfp4;

_Static_assert(sizeof(zm_block_q8_0) == 34, "Q8_0 block must match ggml");
_Static_assert(sizeof(zm_block_q4_0) == 18, "Q4_0 block must match ggml");
_Static_assert(sizeof(zm_block_q4_k) == 144, "Q4_K block must match ggml");
_Static_assert(sizeof(zm_block_q5_k) == 176, "Q5_K block must match ggml");
_Static_assert(sizeof(zm_block_q6_k) == 210, "Q6_K block must match ggml");
_Static_assert(sizeof(zm_block_mxfp4) == 17, "MXFP4 block must match ggml");

/* Reference quantizers (ggml's quantize_row_*_ref): n % 32 == 0. */
void zm_quantize_row_q8_0(zm_block_q8_0 *y, const float *x, int64_t n);
void zm_quantize_row_q4_0(zm_block_q4_0 *y, const float *x, int64_t n);
/* Reference dequantizers (ggml's dequantize_row_*). */
void zm_dequantize_row_q8_0(float *y, const zm_block_q8_0 *x, int64_t n);
void zm_dequantize_row_q4_0(float *y, const zm_block_q4_0 *x, int64_t n);
void zm_dequantize_row_q4_k(float *y, const zm_block_q4_k *x, int64_t n);
void zm_dequantize_row_q5_k(float *y, const zm_block_q5_k *x, int64_t n);
void zm_dequantize_row_q6_k(float *y, const zm_block_q6_k *x, int64_t n);
void zm_dequantize_row_mxfp4(float *y, const zm_block_mxfp4 *x, int64_t n);

/* Any dtype -> f32 (n elements; quantized: n a multiple of the block).
 * ZM_ERR_SHAPE for a partial block, ZM_ERR_DTYPE for an unknown type. */
zm_status zm_dequantize(float *dst, const void *src, zm_dtype t, int64_t n);
/* f32 -> F32/F16/BF16/Q8_0/Q4_0 (others: ZM_ERR_DTYPE). */
zm_status zm_quantize(void *dst, zm_dtype t, const float *src, int64_t n);

#endif
