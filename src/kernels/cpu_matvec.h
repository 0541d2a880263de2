/* CPU matrix-vector products for decode: y[r] = sum_c W[r,c] * x[c] with W in
 * F32, F16, BF16, Q8_0 or Q4_0 (rows of ggml blocks), x and y f32, rows split
 * over the thread pool. One scalar path plus AVX2+FMA, AVX-512 and AVX-512
 * VNNI paths, chosen at run time (__builtin_cpu_supports) and forcible with
 * $ZMLX_CPU_ISA=scalar|avx2|avx512|vnni (capped to what the CPU has).
 *
 * Two activation modes:
 *  - f32 (default): weights are dequantized in registers and multiplied by
 *    the f32 activations, accumulating in f32. Only f32 rounding separates it
 *    from the float64 reference (relative error ~1e-6 at 2048 columns).
 *  - q8 (opts->act_q8, or $ZMLX_CPU_ACT=q8): for Q8_0/Q4_0 weights, x is first
 *    quantized once to 32-element blocks (f32 scale amax/127, int8 round to
 *    nearest, as ggml's quantize_row_q8_0 but with an f32 scale) and the dot
 *    products are integer (AVX2 maddubs, AVX-512BW maddubs, VNNI vpdpbusd).
 *    This is what llama.cpp does. Its error against the f32 path is set by
 *    the rounding of x: per element at most amax_block/254; measured
 *    6e-3..8e-3 relative (L2 over 33+ rows) on normal random x and weights
 *    (tests/test_matvec.c prints the worst case each run).
 *    F32/F16/BF16 weights always use the f32 mode.
 *
 * Layout: row r of W starts at (const char *)W + r * zm_matvec_row_bytes(wt,
 * cols); cols must be a multiple of the block size (32) for Q8_0/Q4_0.
 * Expert tensors (ggml ne = [cols, rows, n_expert]) hold expert e at
 * W + e * expert_stride bytes.
 * Checked by tests/test_matvec.c (every dtype x every ISA available vs a
 * float64 reference); speed: bench/cpu_matvec.c (make bench). */
#ifndef ZM_KERNELS_CPU_MATVEC_H
#define ZM_KERNELS_CPU_MATVEC_H

#include "zmlx/core.h"
#include <stdint.h>

typedef enum {
    ZM_ISA_AUTO = 0, /* the process default: $ZMLX_CPU_ISA or the best available */
    ZM_ISA_SCALAR,
    ZM_ISA_AVX2,     /* AVX2 + FMA + F16C */
    ZM_ISA_AVX512,   /* AVX-512 F/BW/VL/DQ */
    ZM_ISA_VNNI,     /* AVX-512 + VNNI (used by the q8-activation mode; f32 mode = AVX512) */
    ZM_ISA_COUNT
} zm_cpu_isa;

const char *zm_cpu_isa_name(zm_cpu_isa isa); /* "auto", "scalar", "avx2", "avx512", "vnni" */
/* 1 if this CPU (and OS) can run the path; AUTO and SCALAR always 1. */
int zm_cpu_isa_supported(zm_cpu_isa isa);
/* The best supported path, or $ZMLX_CPU_ISA (lowered to the best supported
 * one at or below it) when set. Read once per process. */
zm_cpu_isa zm_cpu_isa_default(void);

typedef struct zm_matvec_opts {
    zm_cpu_isa isa; /* ZM_ISA_AUTO = zm_cpu_isa_default(); an unsupported one is lowered */
    int act_q8;     /* -1 = $ZMLX_CPU_ACT (default f32), 0 = f32, 1 = q8 activations */
} zm_matvec_opts;
/* Passing NULL opts means {ZM_ISA_AUTO, -1}. */

/* Bytes of one row of cols elements of wt; 0 if cols does not fit the block
 * size or wt is not one of F32, F16, BF16, Q8_0, Q4_0. */
int64_t zm_matvec_row_bytes(zm_dtype wt, int64_t cols);

/* y[r] = W[r,:] . x for r in [0, rows).
 *   w: [rows, cols] of wt     x: [cols]     y: [rows]
 * pool NULL = run on the calling thread. ZM_ERR_INVALID / ZM_ERR_DTYPE /
 * ZM_ERR_SHAPE on bad arguments (y untouched then). */
zm_status zm_matvec(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                    int64_t rows, int64_t cols, const float *x, float *y);

/* n vectors at once (prefill): y[j*ldy + r] = W[r,:] . x[j*ldx + :].
 *   x: [n, ldx >= cols]   y: [n, ldy >= rows]
 * Each weight row is read once for all n vectors. */
zm_status zm_matvec_batch(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                          int64_t rows, int64_t cols, int64_t n, const float *x, int64_t ldx,
                          float *y, int64_t ldy);

/* MoE: for k in [0, n_ids): y[k*ldy + r] = W_{ids[k]}[r,:] . x[k*ldx + :],
 * W_e = (const char *)w + e * expert_stride (bytes). ldx = 0 shares one x
 * between all k (gate/up projections of one token); ldx = cols gives each k
 * its own (down projection). All n_ids * rows rows go over the pool in one
 * job. ids outside [0, n_expert) give ZM_ERR_RANGE (nothing computed). */
zm_status zm_matvec_experts(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                            int64_t rows, int64_t cols, int64_t expert_stride, int64_t n_expert,
                            const int32_t *ids, int64_t n_ids, const float *x, int64_t ldx,
                            float *y, int64_t ldy);

/* MoE prefill: n_tok tokens with k experts each, in one call. Pair
 * p = t * k + j (token t, its j-th expert ids[p]) computes
 *   y[p*ldy + r] = W_{ids[p]}[r,:] . x_p,  x_p = x + t * ldx_tok + j * ldx_pair
 * ldx_pair = 0: the k experts of a token share its x (gate/up projections,
 * ldx_tok >= cols); ldx_pair >= cols: each pair has its own x (down
 * projection, e.g. ldx_pair = cols, ldx_tok = k * cols). Pairs are grouped
 * by expert, so each expert's weights are read once per call however many
 * tokens chose it (per-token zm_matvec_experts reads them once per token).
 * Same results as n_tok calls of zm_matvec_experts; errors as there. */
zm_status zm_matvec_experts_tokens(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                                   int64_t rows, int64_t cols, int64_t expert_stride, int64_t n_expert,
                                   const int32_t *ids, int64_t n_tok, int64_t k, const float *x,
                                   int64_t ldx_tok, int64_t ldx_pair, float *y, int64_t ldy);

#endif
