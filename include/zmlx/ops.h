/* The kernel catalog: zm_op_* entry points on zm_tensor, CPU and CUDA.
 *
 * Every op runs on the device its tensors live on (all on the same device;
 * ZM_ERR_INVALID otherwise), checks shapes and dtypes (ZM_ERR_SHAPE /
 * ZM_ERR_DTYPE with a message naming the argument) and never allocates the
 * outputs: the caller passes them, contiguous, already shaped. "Row" means
 * the last axis; "[..., C]" any leading dims. Arithmetic is float32 unless
 * said otherwise. CUDA ops are asynchronous on the legacy default stream.
 * The registry (zm_op_count / zm_op_get / zm_op_find) lists every catalog
 * kernel with its family, backends, dtypes and gradient; `zmlx kernels`
 * prints it, docs/KERNELS.md describes it. Element-wise and row-wise
 * families built from the expression language (activations, softmax) are
 * reached through zm_op_dsl (see below).
 * Tested by tests/test_catalog_<family>.c against float64 references. */
#ifndef ZMLX_OPS_H
#define ZMLX_OPS_H

#include "zmlx/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- registry ------------------------------------------------------------ */
enum { ZM_OP_CPU = 1, ZM_OP_CUDA = 2 };
typedef struct zm_op_info {
    const char *name;    /* "rmsnorm" */
    const char *family;  /* "norms" */
    const char *summary; /* one line of semantics */
    unsigned backends;   /* ZM_OP_CPU | ZM_OP_CUDA */
    const char *dtypes;  /* "f32,f16,bf16" */
    const char *grad;    /* how its gradient is had: "" none, or the kernel / note */
    int dsl;             /* 1: defined through the expression language */
} zm_op_info;
int zm_op_count(void);
const zm_op_info *zm_op_get(int i);              /* NULL if out of range */
const zm_op_info *zm_op_find(const char *name);  /* NULL if unknown */

/* ---- reductions over the last axis: x [..., C] -> out [...] ------------- */
/* x f32/f16/bf16; out f32 (argmax/argmin: i32). C >= 1. */
zm_status zm_op_sum(zm_tensor *out, const zm_tensor *x, int kahan);
zm_status zm_op_mean(zm_tensor *out, const zm_tensor *x);
zm_status zm_op_max(zm_tensor *out, const zm_tensor *x);
zm_status zm_op_min(zm_tensor *out, const zm_tensor *x);
zm_status zm_op_var(zm_tensor *out, const zm_tensor *x, int ddof); /* two-pass, ddof 0 or 1 */
zm_status zm_op_std(zm_tensor *out, const zm_tensor *x, int ddof);
zm_status zm_op_argmax(zm_tensor *out, const zm_tensor *x); /* first index on ties */
zm_status zm_op_argmin(zm_tensor *out, const zm_tensor *x);
/* values [..., k] f32 and indices [..., k] i32, k <= 64, descending, ties to
 * the lower index. NaN entries are never selected. */
zm_status zm_op_topk(zm_tensor *values, zm_tensor *indices, const zm_tensor *x);

/* ---- scan over the last axis (f32) ----------------------------------------- */
zm_status zm_op_cumsum(zm_tensor *out, const zm_tensor *x, int exclusive);
/* dx = reverse cumulative sum of g (the VJP of cumsum with the same flag) */
zm_status zm_op_cumsum_grad(zm_tensor *dx, const zm_tensor *g, int exclusive);
zm_status zm_op_cumprod(zm_tensor *out, const zm_tensor *x);

/* ---- loss ------------------------------------------------------------------ */
/* loss [R] = logsumexp(logits[r]) - logits[r, target[r]]; rows whose target
 * equals ignore_index give 0. logits [R, V] f32, targets [R] i32. A target
 * outside [0, V) (and not ignore_index) gives NaN for that row. */
zm_status zm_op_softmax_cross_entropy(zm_tensor *loss, const zm_tensor *logits,
                                      const zm_tensor *targets, int ignore_index);
/* dlogits [R, V] = dloss[r] * (softmax(logits[r]) - onehot(target[r])), 0 on
 * ignored rows; dloss [R] f32 or NULL (ones). */
zm_status zm_op_softmax_cross_entropy_grad(zm_tensor *dlogits, const zm_tensor *logits,
                                           const zm_tensor *targets, const zm_tensor *dloss,
                                           int ignore_index);

/* ---- norms (x, residual, outputs: f32/f16/bf16 alike; weight, bias f32) ----- */
/* out = x / sqrt(mean(x^2) + eps) * w; w NULL: no weight. */
zm_status zm_op_rmsnorm(zm_tensor *out, const zm_tensor *x, const zm_tensor *w, float eps);
/* dx [R, C] and dw [C] (dw may be NULL; overwritten, summed over rows); f32. */
zm_status zm_op_rmsnorm_grad(zm_tensor *dx, zm_tensor *dw, const zm_tensor *x,
                             const zm_tensor *w, const zm_tensor *g, float eps);
/* out = (x - mean) / sqrt(var + eps) * w + b; w, b NULL allowed. */
zm_status zm_op_layernorm(zm_tensor *out, const zm_tensor *x, const zm_tensor *w,
                          const zm_tensor *b, float eps);
/* dx, dw, db (dw/db may be NULL); f32. */
zm_status zm_op_layernorm_grad(zm_tensor *dx, zm_tensor *dw, zm_tensor *db, const zm_tensor *x,
                               const zm_tensor *w, const zm_tensor *g, float eps);
/* sum = x + residual (written if sum_out != NULL); out = rmsnorm(sum) * w. */
zm_status zm_op_add_rmsnorm(zm_tensor *out, zm_tensor *sum_out, const zm_tensor *x,
                            const zm_tensor *residual, const zm_tensor *w, float eps);
zm_status zm_op_add_layernorm(zm_tensor *out, zm_tensor *sum_out, const zm_tensor *x,
                              const zm_tensor *residual, const zm_tensor *w, const zm_tensor *b,
                              float eps);
/* sum = residual + dropout(x; p, seed) (see zm_op_dropout); out = norm(sum). */
zm_status zm_op_rmsnorm_dropout(zm_tensor *out, zm_tensor *sum_out, const zm_tensor *x,
                                const zm_tensor *residual, const zm_tensor *w, float p,
                                uint64_t seed, float eps);
zm_status zm_op_layernorm_dropout(zm_tensor *out, zm_tensor *sum_out, const zm_tensor *x,
                                  const zm_tensor *residual, const zm_tensor *w,
                                  const zm_tensor *b, float p, uint64_t seed, float eps);

/* ---- transformer (f32/f16/bf16 alike) ------------------------------------- */
typedef enum { ZM_GLU_SWIGLU = 0, ZM_GLU_GEGLU = 1 } zm_glu_kind; /* silu / gelu(erf) */
/* Two-input: out = act(gate) * up, all [..., F]. */
zm_status zm_op_glu(zm_tensor *out, const zm_tensor *gate, const zm_tensor *up, zm_glu_kind k);
/* Split: x [..., 2F] = [gate | up]; bias [2F] f32 or NULL added first. */
zm_status zm_op_glu_split(zm_tensor *out, const zm_tensor *x, const zm_tensor *bias, zm_glu_kind k);
/* Gradients of the two-input form: dgate, dup [..., F] from gate, up, g. */
zm_status zm_op_glu_grad(zm_tensor *dgate, zm_tensor *dup, const zm_tensor *gate,
                         const zm_tensor *up, const zm_tensor *g, zm_glu_kind k);
/* Gradient of the split form: dx [..., 2F]. */
zm_status zm_op_glu_split_grad(zm_tensor *dx, const zm_tensor *x, const zm_tensor *g, zm_glu_kind k);
/* out = residual + silu(gate) * up */
zm_status zm_op_silu_mul_residual(zm_tensor *out, const zm_tensor *gate, const zm_tensor *up,
                                  const zm_tensor *residual);
/* out[i] = keep(i) ? x[i] / (1 - p) : 0 with keep(i) = u(seed, i) >= p, u from
 * Philox4x32-10 (key = seed, counter = i / 4, lane i % 4) mapped to [0, 1):
 * identical on CPU and CUDA. Its gradient is dropout of g with the same seed. */
zm_status zm_op_dropout(zm_tensor *out, const zm_tensor *x, float p, uint64_t seed);
/* The uniform number behind element i (exposed for tests and fused kernels). */
float zm_philox_uniform(uint64_t seed, uint64_t i);

/* ---- rope ------------------------------------------------------------------ */
typedef struct zm_rope_opts {
    int interleaved;   /* 0: NeoX halves (i, i + rot/2); 1: GPT-J pairs (2i, 2i+1) */
    int rot_dims;      /* rotated leading dims per head (partial rotary); 0 = all */
    float base;        /* theta base (10000 if 0) */
    float freq_scale;  /* linear position interpolation (1 if 0) */
    /* YaRN (Peng et al. 2023, as llama.cpp applies it): on when yarn_factor > 1 */
    float yarn_factor;     /* context extension factor = 1 / freq_scale */
    int yarn_orig_ctx;     /* original training context */
    float yarn_beta_fast;  /* 32 if 0 */
    float yarn_beta_slow;  /* 1 if 0 */
    float attn_factor;     /* 1 if 0 */
} zm_rope_opts;
/* x, out [T, H, D] f32 (or [T, D] = one head), pos [T] i32. */
zm_status zm_op_rope(zm_tensor *out, const zm_tensor *x, const zm_tensor *pos, const zm_rope_opts *o);
/* Both q [T, Hq, D] and k [T, Hkv, D] (GQA: Hq a multiple of Hkv) in one launch. */
zm_status zm_op_rope_qk(zm_tensor *q_out, zm_tensor *k_out, const zm_tensor *q, const zm_tensor *k,
                        const zm_tensor *pos, const zm_rope_opts *o);
/* Rotate q into q_out, rotate k into k_cache[pos[t]] and copy v into
 * v_cache[pos[t]]; caches [S, Hkv, D] f32. A position outside [0, S) writes
 * nothing to the caches (same on both backends; q is still rotated); tokens
 * sharing a position: the last one's k and v are kept. */
zm_status zm_op_rope_kv_write(zm_tensor *q_out, zm_tensor *k_cache, zm_tensor *v_cache,
                              const zm_tensor *q, const zm_tensor *k, const zm_tensor *v,
                              const zm_tensor *pos, const zm_rope_opts *o);

/* ---- bits and indexing ----------------------------------------------------- */
/* x [R, C] u8 (bit = x != 0) -> packed [R, ceil(C/8)] u8, LSB first. */
zm_status zm_op_pack_bits(zm_tensor *packed, const zm_tensor *x);
zm_status zm_op_unpack_bits(zm_tensor *x, const zm_tensor *packed); /* -> 0/1 */
/* out [N, D] = sum_k table[idx[n, k]] (idx [N, K] i32; indices outside [0, V)
 * are padding and add nothing). */
zm_status zm_op_gather_add(zm_tensor *out, const zm_tensor *table, const zm_tensor *idx);
/* out [V, D] += src[n] at row idx[n] (idx [N] i32; outside [0, V) skipped). */
zm_status zm_op_scatter_add(zm_tensor *out, const zm_tensor *src, const zm_tensor *idx);

/* ---- optimizer ------------------------------------------------------------- */
typedef struct zm_adamw_opts {
    float lr, beta1, beta2, eps, weight_decay;
    int step; /* 1-based, for bias correction */
} zm_adamw_opts;
/* In place on p, m, v (f32, same shape) from g: decoupled weight decay. */
zm_status zm_op_adamw_step(zm_tensor *p, zm_tensor *m, zm_tensor *v, const zm_tensor *g,
                           const zm_adamw_opts *o);

/* ---- image (NHWC, f32) ----------------------------------------------------- */
/* out [N, Ho, Wo, C]; half-pixel centres, or corner-aligned. */
zm_status zm_op_resize_bilinear(zm_tensor *out, const zm_tensor *x, int align_corners);
/* out, x [N, H, W, C]; w [3, 3, C]; bias [C] or NULL; stride 1, zero padding 1. */
zm_status zm_op_depthwise_conv3x3(zm_tensor *out, const zm_tensor *x, const zm_tensor *w,
                                  const zm_tensor *bias);

/* ---- quant ----------------------------------------------------------------- */
/* Block formats (GGUF): x [..., C] f32 <-> q [..., C] of dtype Q8_0 / Q4_0 /
 * MXFP4 (ggml's round-to-nearest reference rules). */
zm_status zm_op_quantize(zm_tensor *q, const zm_tensor *x);
zm_status zm_op_dequantize(zm_tensor *x, const zm_tensor *q);
/* out = silu(dequantize(q)) */
zm_status zm_op_dequantize_silu(zm_tensor *out, const zm_tensor *q);
/* int8 per row: q [R, C] i8, scale [R] f32 = absmax / 127, q = round(x / scale). */
zm_status zm_op_quantize_int8_row(zm_tensor *q, zm_tensor *scale, const zm_tensor *x);
zm_status zm_op_dequantize_int8_row(zm_tensor *x, const zm_tensor *q, const zm_tensor *scale);
/* int4 per group (asymmetric): q [R, C/2] u8 (low nibble first), scale and
 * zero [R, C/group] f32: x ~ scale * (q - zero); q in 0..15. */
zm_status zm_op_quantize_int4_group(zm_tensor *q, zm_tensor *scale, zm_tensor *zero,
                                    const zm_tensor *x, int group);
zm_status zm_op_dequantize_int4_group(zm_tensor *x, const zm_tensor *q, const zm_tensor *scale,
                                      const zm_tensor *zero, int group);
/* fp8: q [...] u8 codes, e4m3 (OCP FN: no Inf, max 448, saturating) or e5m2
 * (max 57344, saturating), round to nearest even; scale f32 multiplies on the
 * way out (x ~ scale * fp8) and divides on the way in. */
typedef enum { ZM_FP8_E4M3 = 0, ZM_FP8_E5M2 = 1 } zm_fp8_kind;
zm_status zm_op_quantize_fp8(zm_tensor *q, const zm_tensor *x, float scale, zm_fp8_kind k);
zm_status zm_op_dequantize_fp8(zm_tensor *x, const zm_tensor *q, float scale, zm_fp8_kind k);
/* NF4 (QLoRA): groups of 64 share absmax [R, C/64] f32; q [R, C/2] u8 codes of
 * the 16-level normal-float table (nearest level). */
zm_status zm_op_quantize_nf4(zm_tensor *q, zm_tensor *absmax, const zm_tensor *x);
zm_status zm_op_dequantize_nf4(zm_tensor *x, const zm_tensor *q, const zm_tensor *absmax);

/* ---- moe ------------------------------------------------------------------- */
/* probs = softmax(logits [T, E]); experts chosen by probs + bias (bias [E] f32
 * or NULL: it steers the choice only); weights [T, k] = chosen probs,
 * renormalised to sum 1 if renorm; ids [T, k] i32, best first. */
zm_status zm_op_topk_gating_softmax(zm_tensor *weights, zm_tensor *ids, const zm_tensor *logits,
                                    const zm_tensor *bias, int renorm);
/* Mixtral: top-2 of the logits, softmax over the two. */
zm_status zm_op_top2_gating(zm_tensor *weights, zm_tensor *ids, const zm_tensor *logits);
/* DeepSeek-V3: s = sigmoid(logits); choice = s + bias; groups of E/n_group
 * ranked by the sum of their top-2 choices, the best topk_group kept; top-k
 * by choice inside them; weights = s (renormalised if renorm) * scale. */
zm_status zm_op_deepseek_router(zm_tensor *weights, zm_tensor *ids, const zm_tensor *logits,
                                const zm_tensor *bias, int n_group, int topk_group, int renorm,
                                float scale);
/* Group the T*k (token, slot) rows by expert, stably: xs [T*k, D] rows sorted
 * by expert, perm [T*k] i32 = source slot t*k+j of each row, offsets [E+1]
 * i32. Slots with ids outside [0, E) are dropped (offsets[E] counts the rest). */
zm_status zm_op_moe_dispatch(zm_tensor *xs, zm_tensor *perm, zm_tensor *offsets, const zm_tensor *x,
                             const zm_tensor *ids);
/* out [T, D] = residual + sum_j weights[t, j] * y[t*k + j] (y [T*k, D]);
 * residual may be NULL. f32 accumulation; y/out/residual f32/f16/bf16. */
zm_status zm_op_moe_combine(zm_tensor *out, const zm_tensor *y, const zm_tensor *weights,
                            const zm_tensor *residual);
/* As moe_combine but with the stock graph's rounding in y's dtype: each
 * product and each partial sum rounded to the dtype, slot order j = 0..k-1,
 * the residual added last. Token-identical to unfused f16/bf16 math. */
zm_status zm_op_moe_combine_exact(zm_tensor *out, const zm_tensor *y, const zm_tensor *weights,
                                  const zm_tensor *residual);
/* h [T, k, F] f32 = silu(x Wg[e]^T) * (x Wu[e]^T), e = ids[t, j]; x [T, D] f32;
 * w_gate, w_up [E, F, D] in F32 / Q8_0 / Q4_0 (same type). */
zm_status zm_op_gather_qmm_swiglu(zm_tensor *h, const zm_tensor *x, const zm_tensor *w_gate,
                                  const zm_tensor *w_up, const zm_tensor *ids);
/* out [T, D] = residual + sum_j weights[t, j] * (Wd[e] h[t, j]); w_down [E, D, F]. */
zm_status zm_op_gather_qmm_combine(zm_tensor *out, const zm_tensor *h, const zm_tensor *w_down,
                                   const zm_tensor *ids, const zm_tensor *weights,
                                   const zm_tensor *residual);

/* ---- attention (f32) ------------------------------------------------------- */
typedef struct zm_attn_opts {
    float scale;          /* 0: 1/sqrt(D) */
    int window;           /* > 0: attend only to the last `window` positions */
    const zm_tensor *sinks; /* [Hq] f32 logits of a virtual sink token, or NULL */
} zm_attn_opts;
/* One query per sequence: q [B, Hq, D], caches [B, S, Hkv, D], lens [B] i32
 * (positions 0..len-1 valid, 1 <= len <= S); out [B, Hq, D]. */
zm_status zm_op_decode_attention(zm_tensor *out, const zm_tensor *q, const zm_tensor *k_cache,
                                 const zm_tensor *v_cache, const zm_tensor *lens,
                                 const zm_attn_opts *o);
/* Paged: pages [P, page, Hkv, D]; block_table [B, max_pages] i32 maps the
 * sequence's page i to a physical page. */
zm_status zm_op_paged_attention(zm_tensor *out, const zm_tensor *q, const zm_tensor *k_pages,
                                const zm_tensor *v_pages, const zm_tensor *block_table,
                                const zm_tensor *lens, const zm_attn_opts *o);

/* ---- activations and the softmax family: defined in the expression language */
/* Element-wise: exp log tanh sigmoid relu relu2 silu gelu gelu_tanh quick_gelu
 * softplus mish elu leaky_relu hardswish. x, out f32/f16/bf16, same shape. */
zm_status zm_op_unary(const char *name, zm_tensor *out, const zm_tensor *x);
/* dx = g * d act(x) / dx: the symbolic VJP of the same expression (zm_kernel_grad). */
zm_status zm_op_unary_grad(const char *name, zm_tensor *dx, const zm_tensor *x, const zm_tensor *g);
/* Row-wise over the last axis: softmax (x), log_softmax (x), logsumexp (x;
 * out [...]), softmax_backward (y, g), log_softmax_backward (y, g),
 * masked_softmax (x, mask: 0 drops; a fully masked row gives 0),
 * scale_mask_softmax (x, additive mask; param = scale). The mask may be a
 * row vector broadcast over the rows. */
zm_status zm_op_rowwise(const char *name, zm_tensor *out, const zm_tensor *const *ins, int n_ins, float param);
/* The compiled kernel behind a DSL catalog name (grad: its VJP), shared and
 * owned by the catalog (never free it; valid until exit). */
struct zm_kernel;
zm_status zm_op_dsl_kernel(const char *name, int grad, struct zm_kernel **out);

#ifdef __cplusplus
}
#endif
#endif
