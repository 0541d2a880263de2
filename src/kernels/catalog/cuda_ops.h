/* The catalog's CUDA entry points (defined in src/kernels/catalog/<family>.cu,
 * extern "C", plain C types only; pointers are device pointers). Each
 * launches on the legacy default stream and returns the launch status. The C
 * side (<family>.c) checks every argument before calling them. Not installed. */
#ifndef ZM_CATALOG_CUDA_OPS_H
#define ZM_CATALOG_CUDA_OPS_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* reductions */
enum { ZM__R_SUM = 0, ZM__R_SUM_KAHAN, ZM__R_MEAN, ZM__R_MAX, ZM__R_MIN, ZM__R_VAR, ZM__R_STD,
       ZM__R_ARGMAX, ZM__R_ARGMIN };
zm_status zm_cuda_reduce(int op, void *out, const void *x, int dt, int64_t rows, int64_t cols, int ddof);
zm_status zm_cuda_topk(float *vals, int32_t *idx, const void *x, int dt, int64_t rows, int64_t cols, int k);

/* scan */
zm_status zm_cuda_cumsum(float *out, const float *x, int64_t rows, int64_t cols, int exclusive, int reverse);
zm_status zm_cuda_cumprod(float *out, const float *x, int64_t rows, int64_t cols);

/* loss */
zm_status zm_cuda_softmax_xent(float *loss, float *dlogits, const float *logits, const int32_t *tgt,
                               const float *dloss, int64_t rows, int64_t v, int ignore_index);

/* norms: kind 0 rms, 1 layer; x/res/out/sum of dtype dt; w, b f32 or NULL */
zm_status zm_cuda_norm(int kind, void *out, void *sum_out, const void *x, const void *res,
                       const float *w, const float *b, int dt, int64_t rows, int64_t cols, float eps,
                       float p, uint64_t seed);
zm_status zm_cuda_norm_grad(int kind, float *dx, float *dw, float *db, const float *x, const float *w,
                            const float *g, int64_t rows, int64_t cols, float eps, float *scratch);

/* transformer: act 0 silu, 1 gelu; row strides in elements */
zm_status zm_cuda_glu(void *out, int64_t out_rs, const void *gate, int64_t gate_rs, const void *up,
                      int64_t up_rs, const float *bias_g, const float *bias_u, const void *res, int dt,
                      int64_t rows, int64_t f, int act);
zm_status zm_cuda_glu_grad(void *dgate, int64_t dg_rs, void *dup, int64_t du_rs, const void *gate,
                           int64_t gate_rs, const void *up, int64_t up_rs, const void *g, int dt,
                           int64_t rows, int64_t f, int act);
zm_status zm_cuda_dropout(void *out, const void *x, int dt, int64_t n, float p, uint64_t seed);

/* quant: dir 0 = quantize (x -> q), 1 = dequantize (q -> x) */
zm_status zm_cuda_quantize_block(int dt, void *q, const float *x, int64_t nblocks);
zm_status zm_cuda_dequantize_block(int dt, float *x, const void *q, int64_t n, int silu);
zm_status zm_cuda_int8_row(int dir, int8_t *q, float *scale, float *x, int64_t rows, int64_t cols);
zm_status zm_cuda_int4_group(int dir, uint8_t *q, float *scale, float *zero, float *x, int64_t rows, int64_t cols, int group);
zm_status zm_cuda_fp8(int dir, uint8_t *q, float *x, int64_t n, float scale, int kind);
zm_status zm_cuda_nf4(int dir, uint8_t *q, float *absmax, float *x, int64_t rows, int64_t cols);

/* moe: router kind 0 softmax top-k, 1 top-2 (softmax over the two), 2 DeepSeek sigmoid groups */
zm_status zm_cuda_moe_route(int kind, float *w, int32_t *ids, const void *logits, int dt, const float *bias,
                            int64_t T, int E, int k, int renorm, int n_group, int topk_group, float scale);
zm_status zm_cuda_moe_dispatch(float *xs, int32_t *perm, int32_t *offsets, const float *x, const int32_t *ids,
                               int64_t T, int k, int64_t D, int E);
zm_status zm_cuda_moe_combine(void *out, const void *y, const float *w, const void *res, int dt, int64_t T, int k,
                              int64_t D, int exact);
zm_status zm_cuda_gather_qmm_swiglu(float *h, const float *x, const void *wg, const void *wu, int wdt,
                                    const int32_t *ids, int64_t T, int k, int64_t F, int64_t D, int E);
zm_status zm_cuda_gather_qmm_combine(float *out, const float *h, const void *wd, int wdt, const int32_t *ids,
                                     const float *w, const float *res, int64_t T, int k, int64_t D, int64_t F, int E);

/* rope: angles in double (freq = base^(-2i/rot)), see rope.c */
typedef struct zm__rope_p {
    int rot, interleaved, yarn;
    double base, freq_scale, corr0, corr1, mscale;
} zm__rope_p;
/* x [T, H, D] -> out; kcache/vcache (S rows of H*D) get head rows when non-NULL (k and v given). */
zm_status zm_cuda_rope(float *out, const float *x, const int32_t *pos, int64_t T, int64_t H, int64_t D, zm__rope_p p,
                       float *k_out, const float *k, int64_t Hk, float *v_cache, const float *v, int64_t S);

/* attention: block_table NULL = contiguous caches [B, S, Hkv, D]; else pages [P, page, Hkv, D] */
zm_status zm_cuda_decode_attention(float *out, const float *q, const float *k, const float *v, const int32_t *lens,
                                   const int32_t *block_table, int64_t max_pages, int64_t page, int64_t n_pages, int64_t B, int64_t Hq,
                                   int64_t Hkv, int64_t D, int64_t S, float scale, int window, const float *sinks);

/* bits, indexing */
zm_status zm_cuda_pack_bits(uint8_t *packed, const uint8_t *x, int64_t rows, int64_t cols, int unpack);
zm_status zm_cuda_gather_add(float *out, const float *table, const int32_t *idx, int64_t N, int64_t K, int64_t D, int64_t V);
zm_status zm_cuda_scatter_add(float *out, const float *src, const int32_t *idx, int64_t N, int64_t D, int64_t V);

/* optimizer: bias corrections c1 = 1 - beta1^t, c2 = 1 - beta2^t */
zm_status zm_cuda_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1, float b2, float eps,
                        float wd, float c1, float c2);

/* image */
zm_status zm_cuda_resize_bilinear(float *out, const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int64_t Ho,
                                  int64_t Wo, int align);
zm_status zm_cuda_dwconv3x3(float *out, const float *x, const float *w, const float *b, int64_t N, int64_t H, int64_t W,
                            int64_t C);

#ifdef __cplusplus
}
#endif
#endif
