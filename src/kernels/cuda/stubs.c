/* Stubs of the CUDA kernel entry points for builds without nvcc: each says
 * ZM_ERR_NO_DEVICE, so code and tests that call them link and report the
 * GPU as absent. Generated from ops_cuda.h; the real ones are the .cu files. */
#ifndef ZM_HAVE_CUDA
#include "core/internal.h"
#include "kernels/cuda/ops_cuda.h"

#define ZM__NODEV zm__err(ZM_ERR_NO_DEVICE, "zmlx was built without CUDA")

zm_status zm_gpu_kernels_init(void) { return ZM__NODEV; }
zm_status zm_gpu_matvec(const zm_gpu_mat *W, int64_t mat, const float *x, const float *norm_w, float eps, const float *res, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_matvec_multi(int n, const zm_gpu_mat *const *W, const float *x, const float *norm_w, float eps, float *const *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_matmul(const zm_gpu_mat *W, int64_t mat, int64_t n_tok, const float *x, const float *res, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_expert_matvec(const zm_gpu_mat *W, const int32_t *ids, int64_t n_tok, int k, const float *x, int x_per_slot, const float *norm_w, float eps, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_gather_qmm_swiglu(const zm_gpu_mat *G, const zm_gpu_mat *U, const int32_t *ids, int64_t n_tok, int k, const float *x, const float *norm_w, float eps, float *h, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_gather_qmm_combine(const zm_gpu_mat *D, const int32_t *ids, const float *w, int64_t n_tok, int k, const float *h, const float *res, float *y, int early, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_topk_gating_softmax(const float *logits, int64_t rows, int n, int k, int renorm, int32_t *ids, float *w, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_moe_combine(const float *e, const float *w, int64_t n_tok, int k, int64_t n, const float *res, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_swiglu(const float *g, const float *u, int64_t n, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_add_rmsnorm(const float *a, const float *b, const float *w, int64_t rows, int64_t n, float eps, float *sum, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_rope(const float *x, int64_t n_tok, int n_head, int head_dim, int n_rot, const int32_t *pos, const float *inv_freq, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_qk_norm_rope(const float *x, const float *w, int64_t n_tok, int n_head, int head_dim, int n_rot, float eps, const int32_t *pos, const float *inv_freq, float *y, float *cache, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_kv_store(const float *x, int64_t n_tok, int64_t row_len, const int32_t *pos, float *cache, void *stream) { return ZM__NODEV; }
int64_t zm_gpu_attention_ws_bytes(int n_head, int n_kv, int head_dim, int64_t max_ctx) { return 0; }
zm_status zm_gpu_attention_decode(const float *q, const float *k_cache, const float *v_cache, int n_head, int n_kv, int head_dim, int64_t max_ctx, float scale, const int32_t *pos, void *ws, float *out, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_attention_prefill(const float *q, const float *k_cache, const float *v_cache, int64_t n_tok, int n_head, int n_kv, int head_dim, float scale, const int32_t *pos, float *out, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_embedding(const zm_gpu_mat *E, const int32_t *ids, int64_t n, float *out, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_argmax(const float *x, int64_t rows, int64_t n, int32_t *idx, void *ws, void *stream) { return ZM__NODEV; }
int64_t zm_gpu_argmax_ws_bytes(void) { return 0; }
zm_status zm_gpu_greedy_advance(int32_t *tok, int32_t *pos, const int32_t *next, int32_t *ring, int cap, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_noop(void *stream) { return ZM__NODEV; }
zm_status zm_gpu_softmax(const float *x, int64_t rows, int64_t n, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_topk_rows(const float *x, int64_t rows, int64_t n, int k, float *val, int32_t *idx, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_normalize_sum(const float *x, int64_t rows, int64_t n, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_binary(int op, const float *a, const float *b, int64_t n, int64_t nb, int b_mode, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_unary(int op, const float *x, int64_t n, float scale, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_sum_rows(const float *x, int64_t rows, int64_t n, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_sum_axis(const float *x, int64_t outer, int64_t n, int64_t inner, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_binary_nd(int op, const float *a, const int64_t a_shape[4], const float *b, const int64_t b_shape[4], float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_take(const float *x, int64_t rows, int64_t n, const int32_t *ids, int k, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_gather_rows(const float *x, int64_t n, const int32_t *idx, int k, float *y, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_add_i32(int32_t *p, int by, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_copy_i32(int32_t *dst, const int32_t *src, int64_t n, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_qkv_norm_rope(const float *xq, const float *wq, float *yq, int hq, const float *xk, const float *wk, float *yk, float *k_cache, int hk, const float *v, float *v_cache, int head_dim, int n_rot, float eps, const int32_t *pos, const float *inv_freq, void *stream) { return ZM__NODEV; }
int zm_gpu_bulk_launches(void) { return 0; }
int zm_gpu_wide_launches(void) { return 0; }
int zm_gpu_fixed_launches(void) { return 0; }
void zm_gpu_att_trace_dump(void *file) { (void)file; }
int zm_gpu_att_push_launches(void) { return 0; }
zm_status zm_gpu_router_gate(const zm_gpu_mat *W, const float *x, const float *norm_w, float eps, float *logits, int *counter, int k, int renorm, int32_t *ids, float *w, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_attention_decode_qkn(const zm_gpu_qkn *qkn, int n_head, int n_kv, int head_dim, int64_t max_ctx, float scale, const int32_t *pos, void *ws, float *out, void *stream) { return ZM__NODEV; }
zm_status zm_gpu_step_matvec(zm_gpu_step *s, int n, const zm_gpu_mat *const *W, const float *x, const float *norm_w, float eps, const float *const *res, float *const *y) { return ZM__NODEV; }
zm_status zm_gpu_step_gate(zm_gpu_step *s, const float *logits, int n, int k, int renorm, int32_t *ids, float *w) { return ZM__NODEV; }
zm_status zm_gpu_step_swiglu(zm_gpu_step *s, const zm_gpu_mat *G, const zm_gpu_mat *U, const int32_t *ids, int k, const float *x, const float *norm_w, float eps, float *h) { return ZM__NODEV; }
zm_status zm_gpu_step_combine(zm_gpu_step *s, const zm_gpu_mat *D, const int32_t *ids, const float *w, int k, const float *h, const float *res, float *y) { return ZM__NODEV; }
zm_status zm_gpu_step_attention(zm_gpu_step *s, const zm_gpu_qkn *qkn, const float *q, const float *k_cache, const float *v_cache, int n_head, int n_kv, int head_dim, int64_t max_ctx, float scale, const int32_t *pos, void *ws, float *out) { return ZM__NODEV; }
zm_status zm_gpu_step_embedding(zm_gpu_step *s, const zm_gpu_mat *E, const int32_t *ids, int64_t n, float *out) { return ZM__NODEV; }
zm_status zm_gpu_step_argmax(zm_gpu_step *s, const float *x, int64_t n, int32_t *idx) { return ZM__NODEV; }
zm_status zm_gpu_persist_new(zm_gpu_persist **out, const zm_gpu_step *steps, int n) { if (out) *out = NULL; return ZM__NODEV; }
zm_status zm_gpu_persist_run(zm_gpu_persist *p, void *stream) { return ZM__NODEV; }
void zm_gpu_persist_free(zm_gpu_persist *p) { (void)p; }
#endif
