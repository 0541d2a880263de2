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

#ifdef __cplusplus
}
#endif
#endif
