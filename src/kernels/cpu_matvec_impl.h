/* Private to src/kernels/cpu_matvec*.c: the row-dot function types, the
 * q8 activation block and the per-ISA kernel tables. */
#ifndef ZM_KERNELS_CPU_MATVEC_IMPL_H
#define ZM_KERNELS_CPU_MATVEC_IMPL_H

#include "kernels/cpu_matvec.h"
#include "gguf/quant.h"
#include <stdint.h>

/* x quantized for the q8-activation mode: one per 32 elements, as ggml's
 * block_q8_0 (d holds the f16-rounded scale, widened to f32 once here); s =
 * sum of q, used by Q4_0 (sum((n-8)*q) = sum(n*q) - 8*s, so the nibbles stay
 * unsigned). */
typedef struct zm__q8x {
    float d;
    int32_t s;
    int8_t q[32];
} zm__q8x;

/* f32 mode: dot of one weight row with x (cols elements). */
typedef float (*zm__dot_f32_fn)(const void *row, const float *x, int64_t cols);
/* q8 mode: dot of one Q8_0/Q4_0 row with nb quantized blocks of x. */
typedef float (*zm__dot_q8_fn)(const void *row, const zm__q8x *xq, int64_t nb);

/* Kernel tables indexed by zm_dtype (F32, F16, BF16, Q8_0, Q4_0; others NULL).
 * Filled by zm__matvec_x86_tables (NULL entries where a path lacks a kernel). */
typedef struct zm__mv_table {
    zm__dot_f32_fn f32[ZM_DTYPE_COUNT];
    zm__dot_q8_fn q8[ZM_DTYPE_COUNT];
    void (*quantize_x)(zm__q8x *out, const float *x, int64_t n); /* n % 32 == 0 */
} zm__mv_table;

void zm__matvec_table_avx2(zm__mv_table *t);
void zm__matvec_table_avx512(zm__mv_table *t);
void zm__matvec_table_vnni(zm__mv_table *t);

#endif
