/* zmlx bench kernels [--device cpu|cuda] [--filter SUBSTR] [--mb N] [--reps N]
 * Times every catalog kernel at a large size on one device and prints, per
 * kernel: median time, the bytes it must move (every input read once, every
 * output written once, in-place tensors twice), GB/s, and % of the copy
 * bandwidth measured in the same run (memcpy / cudaMemcpy device-to-device,
 * counting read + write). Benchmarks are not tests: numbers go to
 * docs/BENCHMARKS.md with the card, date and command. */
#include "core/cuda.h"
#include "core/internal.h"
#include "tools/cli.h"
#include "zmlx/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bk {
    zm_device dev;
    int setup;
    int64_t M;            /* elements of the main f32 tensor */
    zm_tensor *t[12];
    int mult[12];         /* bytes counted per tensor: 0 output-only/input (1x), 2 in-place */
    const char *bound;    /* why it is not memory-bound (NULL: it should reach ~80 % of copy) */
    unsigned use;         /* tensors the op touches (bit i = t[i]); 0 = all allocated */
} bk;
typedef zm_status (*bk_fn)(bk *);

static float *g_rand;     /* one host buffer of random floats, reused for every tensor */
static int64_t g_rand_n;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static zm_status dsync(zm_device d) { return d == ZM_CUDA ? zm_cuda_sync() : ZM_OK; }

/* kind: 'f' random floats / raw random bytes, 'o' output, 'i' int32 in [0, hi), 'p' in-place (random, counted twice) */
static zm_status bt(bk *b, int i, zm_dtype dt, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int kind, int64_t hi) {
    int64_t sh[4] = {d0, d1, d2, d3};
    ZM_TRY(zm_tensor_new(&b->t[i], dt, b->dev, nd, sh));
    b->mult[i] = kind == 'p' ? 2 : 1;
    if (kind == 'o') return ZM_OK;
    size_t nb = (size_t)zm_tensor_nbytes(b->t[i]);
    int64_t n = zm_tensor_numel(b->t[i]);
    void *h = NULL;
    if (kind == 'i' || kind == 'c') {
        int32_t *ip = malloc(sizeof(int32_t) * (size_t)n + 4);
        if (!ip) return ZM_ERR_NOMEM;
        uint64_t s = 88172645463325252ull + (uint64_t)i;
        for (int64_t k = 0; k < n; k++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ip[k] = kind == 'c' ? (int32_t)hi : (int32_t)(s % (uint64_t)hi); }
        h = ip;
    } else if (dt == ZM_F16 || dt == ZM_BF16) {
        h = malloc(nb + 4);
        if (h) zm_convert_from_f32(h, dt, g_rand, n);
    } else if ((int64_t)(nb / 4) > g_rand_n) return ZM_ERR_RANGE;
    zm_tensor *w = NULL;
    zm_status s = zm_tensor_wrap(&w, h ? h : g_rand, dt, ZM_CPU, nd, sh, NULL);
    if (!s) s = zm_tensor_copy(b->t[i], w);
    zm_tensor_free(w);
    free(h);
    return s;
}
#define F(i, ...) ZM_TRY(bt(b, i, ZM_F32, __VA_ARGS__, 'f', 0))
#define O(i, ...) ZM_TRY(bt(b, i, ZM_F32, __VA_ARGS__, 'o', 0))
#define T(i) (b->t[i])
#define CASE(nm) static zm_status bc_##nm(bk *b)
#define R_ (b->M / 4096)
#define TWO(a, c) 2, a, c, 1, 1
#define ONE(a) 1, a, 1, 1, 1

/* ---- cases: a large size per kernel ---------------------------------------- */
#define RED(nm, call)                                                                              \
    CASE(nm) { if (b->setup) { F(0, TWO(R_, 4096)); O(1, ONE(R_)); return 0; } return call; }
RED(sum, zm_op_sum(T(1), T(0), 0))
RED(mean, zm_op_mean(T(1), T(0)))
RED(max, zm_op_max(T(1), T(0)))
RED(min, zm_op_min(T(1), T(0)))
RED(var, zm_op_var(T(1), T(0), 0))
RED(std, zm_op_std(T(1), T(0), 1))
CASE(argmax) { if (b->setup) { F(0, TWO(R_, 4096)); ZM_TRY(bt(b, 1, ZM_I32, ONE(R_), 'o', 0)); return 0; } return zm_op_argmax(T(1), T(0)); }
CASE(argmin) { if (b->setup) { F(0, TWO(R_, 4096)); ZM_TRY(bt(b, 1, ZM_I32, ONE(R_), 'o', 0)); return 0; } return zm_op_argmin(T(1), T(0)); }
CASE(topk) {
    if (b->setup) { b->bound = "k=8 passes over each row"; F(0, TWO(R_, 4096)); O(1, TWO(R_, 8)); ZM_TRY(bt(b, 2, ZM_I32, TWO(R_, 8), 'o', 0)); return 0; }
    return zm_op_topk(T(1), T(2), T(0));
}
#define ROWOP(nm, call) CASE(nm) { if (b->setup) { F(0, TWO(R_, 4096)); O(1, TWO(R_, 4096)); return 0; } return call; }
ROWOP(cumsum, zm_op_cumsum(T(1), T(0), 0))
ROWOP(cumsum_grad, zm_op_cumsum_grad(T(1), T(0), 0))
ROWOP(cumprod, zm_op_cumprod(T(1), T(0)))
CASE(softmax_cross_entropy) {
    if (b->setup) { F(0, TWO(R_ / 8, 32768)); ZM_TRY(bt(b, 1, ZM_I32, ONE(R_ / 8), 'i', 32768)); O(2, ONE(R_ / 8)); return 0; }
    return zm_op_softmax_cross_entropy(T(2), T(0), T(1), -100);
}
CASE(softmax_cross_entropy_grad) {
    if (b->setup) { F(0, TWO(R_ / 8, 32768)); ZM_TRY(bt(b, 1, ZM_I32, ONE(R_ / 8), 'i', 32768)); O(2, TWO(R_ / 8, 32768)); return 0; }
    return zm_op_softmax_cross_entropy_grad(T(2), T(0), T(1), NULL, -100);
}
#define NORM(nm, use_, call, extra)                                                                \
    CASE(nm) { if (b->setup) { b->use = use_; F(0, TWO(R_, 4096)); O(1, TWO(R_, 4096)); F(2, ONE(4096)); F(3, ONE(4096)); extra; return 0; } return call; }
NORM(rmsnorm, 0x7, zm_op_rmsnorm(T(1), T(0), T(2), 1e-6f), )
NORM(rms_norm_no_weight, 0x3, zm_op_rmsnorm(T(1), T(0), NULL, 1e-6f), )
NORM(layernorm, 0xf, zm_op_layernorm(T(1), T(0), T(2), T(3), 1e-5f), )
NORM(layer_norm_no_weight, 0x3, zm_op_layernorm(T(1), T(0), NULL, NULL, 1e-5f), )
NORM(add_rmsnorm, 0x37, zm_op_add_rmsnorm(T(1), T(4), T(0), T(5), T(2), 1e-6f), O(4, TWO(R_, 4096)); F(5, TWO(R_, 4096)))
NORM(add_layernorm, 0x3f, zm_op_add_layernorm(T(1), T(4), T(0), T(5), T(2), T(3), 1e-5f), O(4, TWO(R_, 4096)); F(5, TWO(R_, 4096)))
NORM(rms_norm_dropout, 0x37, zm_op_rmsnorm_dropout(T(1), T(4), T(0), T(5), T(2), 0.1f, 7, 1e-6f), O(4, TWO(R_, 4096)); F(5, TWO(R_, 4096)))
NORM(layer_norm_dropout, 0x3f, zm_op_layernorm_dropout(T(1), T(4), T(0), T(5), T(2), T(3), 0.1f, 7, 1e-5f), O(4, TWO(R_, 4096)); F(5, TWO(R_, 4096)))
NORM(rmsnorm_grad, 0x37, zm_op_rmsnorm_grad(T(1), T(4), T(0), T(2), T(5), 1e-6f), O(4, ONE(4096)); F(5, TWO(R_, 4096)))
NORM(layernorm_grad, 0x77, zm_op_layernorm_grad(T(1), T(4), T(6), T(0), T(2), T(5), 1e-5f), O(4, ONE(4096)); F(5, TWO(R_, 4096)); O(6, ONE(4096)))
#define GLU2(nm, use_, call) CASE(nm) { if (b->setup) { b->use = use_; F(0, TWO(R_ / 2, 4096)); F(1, TWO(R_ / 2, 4096)); O(2, TWO(R_ / 2, 4096)); F(3, TWO(R_ / 2, 4096)); O(4, TWO(R_ / 2, 4096)); return 0; } return call; }
GLU2(swiglu, 0x7, zm_op_glu(T(2), T(0), T(1), ZM_GLU_SWIGLU))
GLU2(geglu, 0x7, zm_op_glu(T(2), T(0), T(1), ZM_GLU_GEGLU))
GLU2(swiglu_grad, 0x1f, zm_op_glu_grad(T(2), T(4), T(0), T(1), T(3), ZM_GLU_SWIGLU))
GLU2(geglu_grad, 0x1f, zm_op_glu_grad(T(2), T(4), T(0), T(1), T(3), ZM_GLU_GEGLU))
GLU2(silu_mul_residual, 0xf, zm_op_silu_mul_residual(T(2), T(0), T(1), T(3)))
#define GLUS(nm, use_, call) CASE(nm) { if (b->setup) { b->use = use_; F(0, TWO(R_ / 2, 8192)); O(1, TWO(R_ / 2, 4096)); F(2, ONE(8192)); F(3, TWO(R_ / 2, 4096)); O(4, TWO(R_ / 2, 8192)); return 0; } return call; }
GLUS(swiglu_split, 0x3, zm_op_glu_split(T(1), T(0), NULL, ZM_GLU_SWIGLU))
GLUS(geglu_split, 0x3, zm_op_glu_split(T(1), T(0), NULL, ZM_GLU_GEGLU))
GLUS(bias_swiglu, 0x7, zm_op_glu_split(T(1), T(0), T(2), ZM_GLU_SWIGLU))
GLUS(bias_geglu, 0x7, zm_op_glu_split(T(1), T(0), T(2), ZM_GLU_GEGLU))
GLUS(swiglu_split_grad, 0x19, zm_op_glu_split_grad(T(4), T(0), T(3), ZM_GLU_SWIGLU))
GLUS(geglu_split_grad, 0x19, zm_op_glu_split_grad(T(4), T(0), T(3), ZM_GLU_GEGLU))
ROWOP(dropout, zm_op_dropout(T(1), T(0), 0.1f, 42))
/* quant */
#define QB(nm, dt, call)                                                                           \
    CASE(nm) { if (b->setup) { F(0, TWO(R_, 4096)); ZM_TRY(bt(b, 1, dt, TWO(R_, 4096), 'f', 0)); return 0; } return call; }
QB(quantize_q8_0, ZM_Q8_0, zm_op_quantize(T(1), T(0)))
QB(dequantize_q8_0, ZM_Q8_0, zm_op_dequantize(T(0), T(1)))
QB(quantize_q4_0, ZM_Q4_0, zm_op_quantize(T(1), T(0)))
QB(dequantize_q4_0, ZM_Q4_0, zm_op_dequantize(T(0), T(1)))
QB(quantize_mxfp4, ZM_MXFP4, zm_op_quantize(T(1), T(0)))
QB(dequantize_mxfp4, ZM_MXFP4, zm_op_dequantize(T(0), T(1)))
QB(dequantize_silu, ZM_Q4_0, zm_op_dequantize_silu(T(0), T(1)))
#define QX(nm, setup2, call) CASE(nm) { if (b->setup) { F(0, TWO(R_, 4096)); setup2; return 0; } return call; }
QX(quantize_int8_row, ZM_TRY(bt(b, 1, ZM_I8, TWO(R_, 4096), 'o', 0)); O(2, ONE(R_)), zm_op_quantize_int8_row(T(1), T(2), T(0)))
QX(dequantize_int8_row, ZM_TRY(bt(b, 1, ZM_I8, TWO(R_, 4096), 'f', 0)); F(2, ONE(R_)), zm_op_dequantize_int8_row(T(0), T(1), T(2)))
QX(quantize_int4_group, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 2048), 'o', 0)); O(2, TWO(R_, 64)); O(3, TWO(R_, 64)),
   zm_op_quantize_int4_group(T(1), T(2), T(3), T(0), 64))
QX(dequantize_int4_group, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 2048), 'f', 0)); F(2, TWO(R_, 64)); F(3, TWO(R_, 64)),
   zm_op_dequantize_int4_group(T(0), T(1), T(2), T(3), 64))
QX(quantize_fp8_e4m3, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 4096), 'o', 0)), zm_op_quantize_fp8(T(1), T(0), 1.0f, ZM_FP8_E4M3))
QX(dequantize_fp8_e4m3, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 4096), 'f', 0)), zm_op_dequantize_fp8(T(0), T(1), 1.0f, ZM_FP8_E4M3))
QX(quantize_fp8_e5m2, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 4096), 'o', 0)), zm_op_quantize_fp8(T(1), T(0), 1.0f, ZM_FP8_E5M2))
QX(dequantize_fp8_e5m2, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 4096), 'f', 0)), zm_op_dequantize_fp8(T(0), T(1), 1.0f, ZM_FP8_E5M2))
QX(quantize_nf4, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 2048), 'o', 0)); O(2, TWO(R_, 64)), zm_op_quantize_nf4(T(1), T(2), T(0)))
QX(dequantize_nf4, ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 2048), 'f', 0)); F(2, TWO(R_, 64)), zm_op_dequantize_nf4(T(0), T(1), T(2)))
/* moe: T tokens of E = 128 experts, k = 8 */
#define TOK (b->M / 128)
CASE(topk_gating_softmax) {
    if (b->setup) { F(0, TWO(TOK, 128)); O(1, TWO(TOK, 8)); ZM_TRY(bt(b, 2, ZM_I32, TWO(TOK, 8), 'o', 0)); F(3, ONE(128)); return 0; }
    return zm_op_topk_gating_softmax(T(1), T(2), T(0), NULL, 1);
}
CASE(top2_gating) {
    if (b->setup) { F(0, TWO(TOK, 128)); O(1, TWO(TOK, 2)); ZM_TRY(bt(b, 2, ZM_I32, TWO(TOK, 2), 'o', 0)); return 0; }
    return zm_op_top2_gating(T(1), T(2), T(0));
}
CASE(deepseek_router) {
    if (b->setup) { F(0, TWO(TOK / 2, 256)); O(1, TWO(TOK / 2, 8)); ZM_TRY(bt(b, 2, ZM_I32, TWO(TOK / 2, 8), 'o', 0)); F(3, ONE(256)); return 0; }
    return zm_op_deepseek_router(T(1), T(2), T(0), T(3), 8, 4, 1, 2.5f);
}
#define MT (b->M / 2048 / 8)
CASE(moe_dispatch) {
    if (b->setup) { b->bound = "ids scanned once per expert (E passes)"; F(0, TWO(MT, 2048)); ZM_TRY(bt(b, 1, ZM_I32, TWO(MT, 8), 'i', 128));
        O(2, TWO(MT * 8, 2048)); ZM_TRY(bt(b, 3, ZM_I32, ONE(MT * 8), 'o', 0)); ZM_TRY(bt(b, 4, ZM_I32, ONE(129), 'o', 0)); return 0; }
    return zm_op_moe_dispatch(T(2), T(3), T(4), T(0), T(1));
}
CASE(moe_combine) {
    if (b->setup) { F(0, TWO(MT * 8, 2048)); F(1, TWO(MT, 8)); F(2, TWO(MT, 2048)); O(3, TWO(MT, 2048)); return 0; }
    return zm_op_moe_combine(T(3), T(0), T(1), T(2));
}
CASE(moe_combine_exact) {
    if (b->setup) { ZM_TRY(bt(b, 0, ZM_BF16, TWO(MT * 8, 2048), 'f', 0)); F(1, TWO(MT, 8)); ZM_TRY(bt(b, 2, ZM_BF16, TWO(MT, 2048), 'f', 0));
        ZM_TRY(bt(b, 3, ZM_BF16, TWO(MT, 2048), 'o', 0)); return 0; }
    return zm_op_moe_combine_exact(T(3), T(0), T(1), T(2));
}
/* decode-shaped expert matmuls (Qwen3-30B-A3B: D 2048, F 768, E 128, k 8), one token: weight-bound */
CASE(gather_qmm_swiglu) {
    if (b->setup) { b->bound = "one token: 8 experts' rows, per-warp dot"; F(0, TWO(1, 2048)); ZM_TRY(bt(b, 1, ZM_I32, TWO(1, 8), 'i', 128));
        ZM_TRY(bt(b, 2, ZM_Q4_0, 3, 8, 768, 2048, 1, 'f', 0)); ZM_TRY(bt(b, 3, ZM_Q4_0, 3, 8, 768, 2048, 1, 'f', 0)); O(4, TWO(8, 768)); return 0; }
    return zm_op_gather_qmm_swiglu(T(4), T(0), T(2), T(3), T(1));
}
CASE(gather_qmm_combine) {
    if (b->setup) { b->bound = "one token: 8 experts' rows, per-warp dot"; F(0, TWO(8, 768)); ZM_TRY(bt(b, 1, ZM_I32, TWO(1, 8), 'i', 8));
        ZM_TRY(bt(b, 2, ZM_Q4_0, 3, 8, 2048, 768, 1, 'f', 0)); F(3, TWO(1, 8)); F(4, TWO(1, 2048)); O(5, TWO(1, 2048)); return 0; }
    return zm_op_gather_qmm_combine(T(5), T(0), T(2), T(1), T(3), T(4));
}
/* rope: Tt tokens of 32 q heads, 4 kv heads, head dim 128 */
#define RT (b->M / (32 * 128))
static zm_rope_opts g_rope, g_rope_il = {.interleaved = 1}, g_rope_part = {.rot_dims = 64},
                            g_rope_yarn = {.yarn_factor = 4, .yarn_orig_ctx = 4096, .base = 1e6f};
#define ROPE(nm, o)                                                                                \
    CASE(nm) { if (b->setup) { F(0, 3, RT, 32, 128, 1); O(1, 3, RT, 32, 128, 1); ZM_TRY(bt(b, 2, ZM_I32, ONE(RT), 'i', 32768)); return 0; } \
               return zm_op_rope(T(1), T(0), T(2), &o); }
ROPE(rope_neox, g_rope)
ROPE(rope_interleaved, g_rope_il)
ROPE(rope_partial, g_rope_part)
ROPE(rope_yarn, g_rope_yarn)
CASE(rope_gqa) {
    if (b->setup) { F(0, 3, RT, 32, 128, 1); O(1, 3, RT, 32, 128, 1); ZM_TRY(bt(b, 2, ZM_I32, ONE(RT), 'i', 32768)); F(3, 3, RT, 4, 128, 1);
        O(4, 3, RT, 4, 128, 1); return 0; }
    return zm_op_rope_qk(T(1), T(4), T(0), T(3), T(2), &g_rope);
}
CASE(rope_kv_write) {
    if (b->setup) { F(0, 3, RT, 32, 128, 1); O(1, 3, RT, 32, 128, 1); ZM_TRY(bt(b, 2, ZM_I32, ONE(RT), 'i', RT)); F(3, 3, RT, 4, 128, 1);
        F(4, 3, RT, 4, 128, 1); O(5, 3, RT, 4, 128, 1); O(6, 3, RT, 4, 128, 1); return 0; }
    return zm_op_rope_kv_write(T(1), T(5), T(6), T(0), T(3), T(4), T(2), &g_rope);
}
/* attention: B sequences, 32 q heads over 4 kv heads, D 128, 4096 positions each: KV-bound */
#define AB (b->M / (4096 * 4 * 128) > 0 ? b->M / (4096 * 4 * 128) : 1)
CASE(decode_attention) {
    if (b->setup) { F(0, 3, AB, 32, 128, 1); F(1, 4, AB, 4096, 4, 128); F(2, 4, AB, 4096, 4, 128); O(3, 3, AB, 32, 128, 1);
        ZM_TRY(bt(b, 4, ZM_I32, ONE(AB), 'c', 4096)); return 0; }
    return zm_op_decode_attention(T(3), T(0), T(1), T(2), T(4), NULL);
}
CASE(paged_attention) {
    if (b->setup) { F(0, 3, AB, 32, 128, 1); F(1, 4, AB * 256, 16, 4, 128); F(2, 4, AB * 256, 16, 4, 128); O(3, 3, AB, 32, 128, 1);
        ZM_TRY(bt(b, 4, ZM_I32, ONE(AB), 'c', 4096)); ZM_TRY(bt(b, 5, ZM_I32, TWO(AB, 256), 'i', AB * 256)); return 0; }
    return zm_op_paged_attention(T(3), T(0), T(1), T(2), T(5), T(4), NULL);
}
/* bits, optimizer, image */
CASE(pack_bits) { if (b->setup) { ZM_TRY(bt(b, 0, ZM_U8, TWO(R_, 16384), 'f', 0)); ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 2048), 'o', 0)); return 0; } return zm_op_pack_bits(T(1), T(0)); }
CASE(unpack_bits) { if (b->setup) { ZM_TRY(bt(b, 0, ZM_U8, TWO(R_, 16384), 'o', 0)); ZM_TRY(bt(b, 1, ZM_U8, TWO(R_, 2048), 'f', 0)); return 0; } return zm_op_unpack_bits(T(0), T(1)); }
CASE(gather_add) {
    if (b->setup) { F(0, TWO(b->M / 2048, 1024)); ZM_TRY(bt(b, 1, ZM_I32, TWO(b->M / 1024 / 4, 4), 'i', b->M / 2048)); O(2, TWO(b->M / 1024 / 4, 1024)); b->bound = "reads K=4 table rows per output row"; return 0; }
    return zm_op_gather_add(T(2), T(0), T(1));
}
CASE(scatter_add) {
    if (b->setup) { ZM_TRY(bt(b, 0, ZM_F32, TWO(b->M / 2048, 1024), 'p', 0)); F(1, TWO(b->M / 1024 / 4, 1024)); ZM_TRY(bt(b, 2, ZM_I32, ONE(b->M / 1024 / 4), 'i', b->M / 2048));
        b->bound = "float atomics, 8 sources per table row"; return 0; }
    return zm_op_scatter_add(T(0), T(1), T(2));
}
static zm_adamw_opts g_adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3};
CASE(adamw_step) {
    if (b->setup) { ZM_TRY(bt(b, 0, ZM_F32, ONE(b->M / 2), 'p', 0)); ZM_TRY(bt(b, 1, ZM_F32, ONE(b->M / 2), 'p', 0)); ZM_TRY(bt(b, 2, ZM_F32, ONE(b->M / 2), 'p', 0)); F(3, ONE(b->M / 2)); return 0; }
    return zm_op_adamw_step(T(0), T(1), T(2), T(3), &g_adam);
}
CASE(resize_bilinear) {
    if (b->setup) { F(0, 4, b->M / (512 * 512 * 16) > 0 ? b->M / (512 * 512 * 16) : 1, 512, 512, 16); O(1, 4, T(0)->shape[0], 1024, 1024, 16); return 0; }
    return zm_op_resize_bilinear(T(1), T(0), 0);
}
CASE(depthwise_conv3x3) {
    if (b->setup) { F(0, 4, b->M / (256 * 256 * 64) > 0 ? b->M / (256 * 256 * 64) : 1, 256, 256, 64); O(1, 4, T(0)->shape[0], 256, 256, 64); F(2, 3, 3, 3, 64, 1); F(3, ONE(64)); return 0; }
    return zm_op_depthwise_conv3x3(T(1), T(0), T(2), T(3));
}

/* expression-language kernels: the name travels in b->dsl */
static const char *g_dsl_name;
static zm_status bc_unary(bk *b) {
    if (b->setup) { F(0, TWO(R_, 4096)); O(1, TWO(R_, 4096)); return 0; }
    return zm_op_unary(g_dsl_name, T(1), T(0));
}
static zm_status bc_unary_grad(bk *b) {
    if (b->setup) { F(0, TWO(R_ / 2, 4096)); F(2, TWO(R_ / 2, 4096)); O(1, TWO(R_ / 2, 4096)); return 0; }
    return zm_op_unary_grad(g_dsl_name, T(1), T(0), T(2));
}
static zm_status bc_rowwise(bk *b) {
    int two = strstr(g_dsl_name, "backward") || strstr(g_dsl_name, "mask");
    if (b->setup) {
        F(0, TWO(R_ / 2, 4096));
        if (strstr(g_dsl_name, "mask")) F(2, ONE(4096)); else if (two) F(2, TWO(R_ / 2, 4096));
        if (!strcmp(g_dsl_name, "logsumexp")) O(1, ONE(R_ / 2)); else O(1, TWO(R_ / 2, 4096));
        return 0;
    }
    const zm_tensor *ins[2] = {T(0), T(2)};
    return zm_op_rowwise(g_dsl_name, T(1), ins, two ? 2 : 1, 0.5f);
}

#define E(nm) {#nm, bc_##nm, NULL}
static const struct { const char *name; bk_fn fn; const char *dsl; } cases[] = {
    E(sum), E(mean), E(max), E(min), E(var), E(std), E(argmax), E(argmin), E(topk), E(cumsum), E(cumsum_grad), E(cumprod),
    E(softmax_cross_entropy), E(softmax_cross_entropy_grad), E(rmsnorm), E(rmsnorm_grad), E(rms_norm_no_weight), E(layernorm),
    E(layernorm_grad), E(layer_norm_no_weight), E(add_rmsnorm), E(add_layernorm), E(rms_norm_dropout), E(layer_norm_dropout),
    E(swiglu), E(swiglu_split), E(swiglu_grad), E(swiglu_split_grad), E(geglu), E(geglu_split), E(geglu_grad), E(geglu_split_grad),
    E(bias_swiglu), E(bias_geglu), E(silu_mul_residual), E(dropout), E(quantize_q8_0), E(dequantize_q8_0), E(quantize_q4_0),
    E(dequantize_q4_0), E(quantize_mxfp4), E(dequantize_mxfp4), E(dequantize_silu), E(quantize_int8_row), E(dequantize_int8_row),
    E(quantize_int4_group), E(dequantize_int4_group), E(quantize_fp8_e4m3), E(dequantize_fp8_e4m3), E(quantize_fp8_e5m2),
    E(dequantize_fp8_e5m2), E(quantize_nf4), E(dequantize_nf4), E(topk_gating_softmax), E(top2_gating), E(deepseek_router),
    E(moe_dispatch), E(moe_combine), E(moe_combine_exact), E(gather_qmm_swiglu), E(gather_qmm_combine), E(rope_neox),
    E(rope_interleaved), E(rope_gqa), E(rope_partial), E(rope_yarn), E(rope_kv_write), E(decode_attention), E(paged_attention),
    E(pack_bits), E(unpack_bits), E(gather_add), E(scatter_add), E(adamw_step), E(resize_bilinear), E(depthwise_conv3x3),
#define U(nm) {#nm, bc_unary, #nm}, {#nm "_grad", bc_unary_grad, #nm}
    U(exp), U(log), U(tanh), U(sigmoid), U(relu), U(relu2), U(silu), U(gelu), U(gelu_tanh), U(quick_gelu), U(softplus), U(mish),
    U(elu), U(leaky_relu), U(hardswish),
#undef U
#define W(nm) {#nm, bc_rowwise, #nm}
    W(softmax), W(log_softmax), W(logsumexp), W(softmax_backward), W(log_softmax_backward), W(masked_softmax), W(scale_mask_softmax),
#undef W
};
#undef E

// ---------------------------------------------------------------------------
static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

/* median seconds per call over reps (each rep: iters calls then a sync) */
static zm_status time_fn(bk *b, bk_fn fn, int reps, int iters, double *med, double *spread) {
    double t[64];
    if (reps > 64) reps = 64;
    ZM_TRY(fn(b)); /* warm-up (also a JIT / first-launch cost) */
    ZM_TRY(dsync(b->dev));
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < iters; i++) ZM_TRY(fn(b));
        ZM_TRY(dsync(b->dev));
        t[r] = (now_s() - t0) / iters;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    *med = t[reps / 2];
    *spread = t[reps - 1] - t[0];
    return ZM_OK;
}

static zm_status copy_fn(bk *b) {
    return b->dev == ZM_CUDA ? zm_cuda_memcpy_d2d(b->t[1]->data, b->t[0]->data, (size_t)zm_tensor_nbytes(b->t[0]))
                             : (memcpy(b->t[1]->data, b->t[0]->data, (size_t)zm_tensor_nbytes(b->t[0])), ZM_OK);
}

static void free_bk(bk *b) {
    for (int i = 0; i < 12; i++) { zm_tensor_free(b->t[i]); b->t[i] = NULL; b->mult[i] = 0; }
}

static int bench_kernels(int argc, char **argv) {
    zm_device dev = ZM_CPU;
    const char *filter = NULL;
    long long mb = 0, reps = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--device")) {
            const char *d = zm_cli_arg("bench", argc, argv, &i);
            if (!d) return 2;
            if (!strcmp(d, "cuda")) dev = ZM_CUDA;
            else if (strcmp(d, "cpu")) { fprintf(stderr, "zmlx bench: --device cpu|cuda, got '%s'\n", d); return 2; }
        } else if (!strcmp(argv[i], "--filter")) { if (!(filter = zm_cli_arg("bench", argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "--mb")) { const char *v = zm_cli_arg("bench", argc, argv, &i); if (!v || !zm_cli_int("bench", "--mb", v, 4, 4096, &mb)) return 2; }
        else if (!strcmp(argv[i], "--reps")) { const char *v = zm_cli_arg("bench", argc, argv, &i); if (!v || !zm_cli_int("bench", "--reps", v, 1, 64, &reps)) return 2; }
        else { fprintf(stderr, "zmlx bench kernels: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (dev == ZM_CUDA && !zm_cuda_available()) { fprintf(stderr, "zmlx bench: no CUDA device: %s\n", zm_last_error()); return 1; }
    if (!mb) mb = dev == ZM_CUDA ? 256 : 32;
    if (!reps) reps = dev == ZM_CUDA ? 9 : 3;
    int iters = dev == ZM_CUDA ? 5 : 1;
    bk b = {0};
    b.dev = dev;
    b.M = mb * 1024 * 1024 / 4;
    g_rand_n = b.M * 2 + 1024; /* the largest tensor of any case is 2 M floats */
    g_rand = malloc(sizeof(float) * (size_t)g_rand_n);
    if (!g_rand) { fprintf(stderr, "zmlx bench: out of memory\n"); return 1; }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < g_rand_n; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; g_rand[i] = (float)((int64_t)(s >> 40) - (1 << 23)) / (float)(1 << 23); }
    char card[128] = "cpu";
    if (dev == ZM_CUDA) zm_cuda_device_info(card, sizeof card, NULL, NULL, NULL);
    /* the ceiling: a device-to-device copy of the main tensor size */
    double cmed = 0, csp = 0;
    b.setup = 1;
    zm_status st = bt(&b, 0, ZM_F32, 1, b.M, 1, 1, 1, 'f', 0);
    if (!st) st = bt(&b, 1, ZM_F32, 1, b.M, 1, 1, 1, 'o', 0);
    b.setup = 0;
    if (!st) st = time_fn(&b, copy_fn, (int)reps, iters, &cmed, &csp);
    free_bk(&b);
    if (st) { zm_cli_fail("bench", "copy baseline", st); free(g_rand); return 1; }
    double copy_gbs = 2.0 * b.M * 4 / cmed / 1e9;
    printf("# zmlx bench kernels: device %s (%s), main tensor %lld MB, median of %lld reps x %d calls\n", zm_device_name(dev), card, mb, reps, iters);
    printf("# copy baseline: %.1f GB/s (read + write of %lld MB in %.1f us)\n", copy_gbs, mb, cmed * 1e6);
    printf("%-28s %10s %9s %9s %7s  %s\n", "kernel", "time_us", "MB", "GB/s", "%copy", "note");
    int n = 0, below = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (filter && !strstr(cases[c].name, filter)) continue;
        memset(b.t, 0, sizeof b.t);
        b.bound = NULL;
        b.use = 0;
        b.setup = 1;
        g_dsl_name = cases[c].dsl;
        st = cases[c].fn(&b);
        b.setup = 0;
        double med = 0, sp = 0;
        if (!st) st = time_fn(&b, cases[c].fn, (int)reps, iters, &med, &sp);
        if (st) { printf("%-28s failed: %s: %s\n", cases[c].name, zm_status_str(st), zm_last_error()); free_bk(&b); continue; }
        double bytes = 0;
        for (int i = 0; i < 12; i++)
            if (b.t[i] && (!b.use || (b.use >> i & 1))) bytes += (double)zm_tensor_nbytes(b.t[i]) * b.mult[i];
        double gbs = bytes / med / 1e9, pct = 100 * gbs / copy_gbs;
        const char *note = b.bound ? b.bound : pct >= 80 ? "" : "below 80% of copy";
        if (!b.bound && pct < 80) below++;
        printf("%-28s %10.1f %9.1f %9.1f %6.1f%%  %s\n", cases[c].name, med * 1e6, bytes / 1e6, gbs, pct, note);
        fflush(stdout);
        free_bk(&b);
        n++;
    }
    printf("# %d kernels timed; %d memory-bound kernels below 80%% of copy bandwidth\n", n, below);
    free(g_rand);
    return 0;
}

int zm_cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: zmlx bench kernels [--device cpu|cuda] [--filter SUBSTR] [--mb N] [--reps N]\n"
               "  per catalog kernel at a large size: median time, bytes moved, GB/s, %% of copy bandwidth\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "kernels")) return bench_kernels(argc, argv);
    fprintf(stderr, "zmlx bench: unknown benchmark '%s' (kernels)\n", argv[1]);
    return 2;
}
