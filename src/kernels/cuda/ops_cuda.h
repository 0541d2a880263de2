/* CUDA kernels for MoE decode: the private C entry points (no CUDA type
 * leaks: streams are void*, device pointers are plain pointers).
 * Entry points are zm_gpu_<op> (named apart from the catalog's zm_cuda_<op>
 * family in src/kernels/catalog, which serves `zmlx kernel`, not decode).
 * Every entry enqueues work on `stream` (NULL = legacy default stream),
 * checks the launch and returns a zm_status; none synchronises.
 * Activations are f32; weights are zm_gpu_mat (repacked once at upload).
 * Checked op by op against scalar float64 references in tests/test_cuda_ops.c
 * (run on a GPU machine: build/tests/test_cuda_ops; skipped without a GPU). */
#ifndef ZM_KERNELS_OPS_CUDA_H
#define ZM_KERNELS_OPS_CUDA_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read device properties the launchers need (SM count) outside any stream
 * capture; call once after zm_cuda_init(). */
zm_status zm_gpu_kernels_init(void);

/* ---- weights --------------------------------------------------------------
 * A stack of n_mat matrices of rows x cols (ggml order: each row holds cols
 * values). Quantized types are repacked at upload into structure-of-arrays
 * form so every load is aligned: for Q4_0 the 16 quant bytes of each block
 * sit contiguous (q + blk*16, blk counted over all rows of all matrices) and
 * the f16 scales apart (d + blk); Q8_0 likewise with 32 bytes per block.
 * F32/F16/BF16 stay as rows of values in q (d unused). */
typedef struct zm_gpu_mat {
    zm_dtype dtype;  /* ZM_F32, ZM_F16, ZM_BF16, ZM_Q8_0, ZM_Q4_0 */
    int64_t rows, cols, n_mat;
    void *q;         /* device: quants or plain values */
    uint16_t *d;     /* device: f16 scales (quantized types) or NULL */
} zm_gpu_mat;

/* Bytes the matrix occupies on the device (quants + scales). */
int64_t zm_gpu_mat_bytes(const zm_gpu_mat *m);
/* Bytes one row of one matrix occupies (what a matvec must read per row). */
int64_t zm_gpu_mat_row_bytes(const zm_gpu_mat *m);
/* Upload ggml-layout host data (n_mat*rows rows of cols, any supported
 * dtype) into a new device matrix, repacking quantized blocks. cols must be a
 * multiple of 32 for quantized types. Free with zm_gpu_mat_free. */
zm_status zm_gpu_mat_upload(zm_gpu_mat *out, zm_dtype t, const void *host, int64_t n_mat,
                             int64_t rows, int64_t cols);
void zm_gpu_mat_free(zm_gpu_mat *m); /* frees device memory, zeroes *m; NULL-safe */

/* ---- matrix-vector products ------------------------------------------------
 * y[r] = sum_c W[mat][r][c] * xn[c] (+ res[r]) for r in [0, rows), where
 * xn = x, or, when norm_w != NULL, xn = x * rsqrt(mean(x^2) + eps) * norm_w
 * (RMSNorm fused into the input read). res may be NULL; res may equal y.
 * x: [cols]  norm_w: [cols]  y, res: [rows]. */
zm_status zm_gpu_matvec(const zm_gpu_mat *W, int64_t mat, const float *x, const float *norm_w,
                         float eps, const float *res, float *y, void *stream);
/* Up to 3 matrices sharing one input in one launch (Q, K, V projections). */
zm_status zm_gpu_matvec_multi(int n, const zm_gpu_mat *const *W, const float *x,
                               const float *norm_w, float eps, float *const *y, void *stream);
/* Batched input (prefill, the stock graph's per-token matmul): for t in
 * [0, n_tok): y[t][r] = W[mat] . x[t] (+ res[t][r]). x: [n_tok][cols]. */
zm_status zm_gpu_matmul(const zm_gpu_mat *W, int64_t mat, int64_t n_tok, const float *x,
                         const float *res, float *y, void *stream);

/* ---- mixture of experts ----------------------------------------------------
 * n_tok tokens, each with k expert ids in device memory (ids: [n_tok][k]
 * int32, read at run time).
 * Per-expert matmul (stock graph): y[t][j][r] = W[ids[t][j]][r] . x[t][xi(j)],
 * xi(j) = 0 if x_per_slot == 0 else j; with norm_w (shared x only) the input
 * is RMS-normalised as in zm_gpu_matvec.  x: [n_tok][1 or k][cols]
 * y: [n_tok][k][rows]. */
zm_status zm_gpu_expert_matvec(const zm_gpu_mat *W, const int32_t *ids, int64_t n_tok, int k,
                                const float *x, int x_per_slot, const float *norm_w, float eps,
                                float *y, void *stream);
/* gather_qmm_swiglu: h[t][j][r] = silu(G[id][r] . xn[t]) * (U[id][r] . xn[t]),
 * id = ids[t][j], xn = x or RMSNorm(x) * norm_w as in zm_gpu_matvec.
 * x: [n_tok][cols]  h: [n_tok][k][rows]. */
zm_status zm_gpu_gather_qmm_swiglu(const zm_gpu_mat *G, const zm_gpu_mat *U, const int32_t *ids,
                                    int64_t n_tok, int k, const float *x, const float *norm_w,
                                    float eps, float *h, void *stream);
/* gather_qmm_combine: y[t][r] = res[t][r] + sum_j w[t][j] * (D[ids[t][j]][r] . h[t][j]),
 * the sum taken in slot order from 0 (bit-identical to the stock chain).
 * h: [n_tok][k][cols]  w: [n_tok][k]  res (may be NULL or equal y), y: [n_tok][rows].
 * early: the caller promises that the previous launch on the stream does
 * not write ids or w, so the kernel reads them (and its first weights)
 * before its dependency wait: every zmlx kernel releases its dependents
 * only after its own wait, so what the launches before that one wrote is
 * complete. 0 is always safe; the result is the same either way. */
zm_status zm_gpu_gather_qmm_combine(const zm_gpu_mat *D, const int32_t *ids, const float *w,
                                     int64_t n_tok, int k, const float *h, const float *res,
                                     float *y, int early, void *stream);
/* Measuring (ZMLX_ATT_TRACE=1 when the graph was captured): the mean time of
 * each phase of one attention block over the last launches, printed to
 * file (a FILE *); nothing without a device. */
void zm_gpu_att_trace_dump(void *file);
/* How many decode attention launches so far took the cluster kernel that
 * pushes its partials (ZMLX_ATT_PUSH): tests check the path they compare
 * was run. */
int zm_gpu_att_push_launches(void);
/* How many combine launches so far took the bulk-staged kernel
 * (ZMLX_CUDA_BULK): tests check the path they compare was run. */
int zm_gpu_bulk_launches(void);
/* Launches of the dense matvec's wide kernel (a tall single matrix: the
 * output head): tests check the path they compare was run. */
int zm_gpu_wide_launches(void);
/* Launches that took a fixed-shape instance: the Q4_0 dense matvec of
 * 2048 or 4096 columns (ZMLX_CUDA_MV_FIXED); Q4_0 / Q8_0 gate/up of 2048
 * and the bulk combine of 768 with 8 lanes a row (ZMLX_CUDA_EX_FIXED /
 * _CB_FIXED); the F32 router of 2048 (ZMLX_CUDA_RT_FIXED). */
int zm_gpu_fixed_launches(void);
/* Router matvec (one token, optional folded RMSNorm) and topk_gating_softmax
 * in one launch: logits (written to `logits`) bit-identical to
 * zm_gpu_matvec, ids/weights to zm_gpu_topk_gating_softmax on them.
 * counter: one device int, zero, left zero. */
zm_status zm_gpu_router_gate(const zm_gpu_mat *W, const float *x, const float *norm_w, float eps,
                             float *logits, int *counter, int k, int renorm, int32_t *ids, float *w,
                             void *stream);
/* topk_gating_softmax, one warp per row of n logits: p = softmax(row); the
 * k largest (ties: lower index first); w = p of those, renormalised to sum 1
 * when renorm. n <= 1024, k <= 32. ids, w: [rows][k]. */
zm_status zm_gpu_topk_gating_softmax(const float *logits, int64_t rows, int n, int k, int renorm,
                                      int32_t *ids, float *w, void *stream);
/* moe_combine: y[t][c] = res[t][c] + sum_j w[t][j] * e[t][j][c] (slot order
 * from 0). e: [n_tok][k][n]. res may be NULL. */
zm_status zm_gpu_moe_combine(const float *e, const float *w, int64_t n_tok, int k, int64_t n,
                              const float *res, float *y, void *stream);
/* swiglu: y[i] = silu(g[i]) * u[i]. */
zm_status zm_gpu_swiglu(const float *g, const float *u, int64_t n, float *y, void *stream);

/* ---- norms, rope, attention ------------------------------------------------ */
/* y[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * w, rows of n. */
zm_status zm_gpu_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n, float eps,
                          float *y, void *stream);
/* s = a + b (written to sum, may alias a), y = rmsnorm(s) * w; rows of n. */
zm_status zm_gpu_add_rmsnorm(const float *a, const float *b, const float *w, int64_t rows,
                              int64_t n, float eps, float *sum, float *y, void *stream);
/* NeoX RoPE from x into y (may alias): [n_tok][n_head][head_dim]; pairs
 * (i, i + n_rot/2) for i < n_rot/2, dims past n_rot copied; angle
 * pos[t] * inv_freq[i], pos: [n_tok] int32 read from device memory.
 * inv_freq: [n_rot/2] device f32 (base^(-2i/n_rot), computed on the host). */
zm_status zm_gpu_rope(const float *x, int64_t n_tok, int n_head, int head_dim, int n_rot,
                       const int32_t *pos, const float *inv_freq, float *y, void *stream);
/* qk_norm_rope: per-head RMSNorm (weights w: [head_dim]) then the RoPE above,
 * bit-identical to zm_gpu_rmsnorm over rows of head_dim then zm_gpu_rope.
 * When cache != NULL the result of token t is also stored at row pos[t] of
 * cache ([ctx][n_head][head_dim]). */
zm_status zm_gpu_qk_norm_rope(const float *x, const float *w, int64_t n_tok, int n_head,
                               int head_dim, int n_rot, float eps, const int32_t *pos,
                               const float *inv_freq, float *y, float *cache, void *stream);
/* One token: qk_norm_rope of q ([hq][d], weights wq) and of k ([hk][d], wk,
 * also stored at row pos[0] of k_cache when not NULL) and, when v_cache is
 * not NULL, v ([hk][d]) stored at row pos[0] of v_cache: one launch, same
 * arithmetic as zm_gpu_qk_norm_rope. */
zm_status zm_gpu_qkv_norm_rope(const float *xq, const float *wq, float *yq, int hq, const float *xk,
                               const float *wk, float *yk, float *k_cache, int hk, const float *v,
                               float *v_cache, int head_dim, int n_rot, float eps,
                               const int32_t *pos, const float *inv_freq, void *stream);
/* Store n_tok rows of x ([n_tok][row_len]) at rows pos[t] of cache. */
zm_status zm_gpu_kv_store(const float *x, int64_t n_tok, int64_t row_len, const int32_t *pos,
                           float *cache, void *stream);
/* Flash-decoding attention for one query token at position pos[0] over cache
 * rows 0..pos[0] (GQA: q head h reads kv head h / (n_head / n_kv)), scores
 * multiplied by scale. q: [n_head][d]  out: [n_head][d]. ws: workspace of
 * zm_gpu_attention_ws_bytes() bytes (zeroed once before first use; the
 * kernel leaves it reusable). max_ctx bounds the split plan. */
int64_t zm_gpu_attention_ws_bytes(int n_head, int n_kv, int head_dim, int64_t max_ctx);
zm_status zm_gpu_attention_decode(const float *q, const float *k_cache, const float *v_cache,
                                   int n_head, int n_kv, int head_dim, int64_t max_ctx,
                                   float scale, const int32_t *pos, void *ws, float *out,
                                   void *stream);
/* Decode attention with the q/k RMSNorm + NeoX RoPE and the k/v cache
 * store of the new position folded in: xq [n_head][d], xk and xv [n_kv][d]
 * are the raw projections; the result, the cache rows and every bit equal
 * zm_gpu_qkv_norm_rope (into the caches) followed by zm_gpu_attention_decode.
 * head_dim <= 128 and a multiple of 4. */
typedef struct {
    const float *xq, *wq, *xk, *wk, *xv; /* raw q/k/v, q and k norm weights */
    float *k_cache, *v_cache;             /* written at row pos[0] */
    float eps;
    int n_rot;
    const float *inv_freq;
} zm_gpu_qkn;
zm_status zm_gpu_attention_decode_qkn(const zm_gpu_qkn *qkn, int n_head, int n_kv, int head_dim,
                                      int64_t max_ctx, float scale, const int32_t *pos, void *ws,
                                      float *out, void *stream);
/* Causal attention for n_tok queries (prefill): query t attends to cache rows
 * 0..pos[t]. q/out: [n_tok][n_head][d]. */
zm_status zm_gpu_attention_prefill(const float *q, const float *k_cache, const float *v_cache,
                                    int64_t n_tok, int n_head, int n_kv, int head_dim, float scale,
                                    const int32_t *pos, float *out, void *stream);

/* ---- the persistent decode kernel ------------------------------------------
 * A list of steps (one token's decode graph, or a run of it) in one launch:
 * every block stays resident, a grid barrier separates a step from the next
 * (except after a GATE, see below). Each step computes its outputs with the same row
 * bodies as the one-op kernels above, so the results are bit-identical to
 * launching those kernels one by one. The executor uses it with
 * ZMLX_CUDA_PERSIST=1 (off by default: slower on the H100, see
 * docs/PROFILE.md). Steps are built by zm_gpu_step_* (checked as the
 * matching launcher checks its arguments), then zm_gpu_persist_new uploads
 * them; run replays. */
enum {
    ZM_PS_MATVEC = 1, /* zm_gpu_matvec / _multi: 1-3 segments, norm, residual */
    ZM_PS_GATE,       /* zm_gpu_topk_gating_softmax of one row: every block
                         gates (bit-identical, warp 0) into shared memory,
                         block 0 stores ids/w; no barrier after it, the next
                         SWIGLU/COMBINE reading those ids take them from there */
    ZM_PS_SWIGLU,     /* zm_gpu_gather_qmm_swiglu, one token */
    ZM_PS_COMBINE,    /* zm_gpu_gather_qmm_combine, one token */
    ZM_PS_ATTN,       /* zm_gpu_attention_decode(_qkn) */
    ZM_PS_EMBED,      /* zm_gpu_embedding */
    ZM_PS_ARGMAX      /* zm_gpu_argmax of one row */
};
/* Up to three matrices sharing one input. Arrays of four: with three,
 * nvcc copies the kernel's by-value MvSeg to local memory for the
 * run-time segment index (128-byte stack frame in k_matvec), with four it
 * indexes the parameter bank directly (no stack); on the H100 that alone
 * was +7 % end to end (Q4_0: 436-439 vs 401-411 tok/s, same machine). */
typedef struct zm_gpu_segs {
    const void *q[4];
    const uint16_t *d[4];
    float *y[4];
    const float *res[4];
    int64_t rows[4];
    int n;
} zm_gpu_segs;
typedef struct zm_gpu_step {
    int op, dt;          /* ZM_PS_*, weight dtype */
    int nb, lpr;         /* 32-blocks per row, lanes per row */
    int k, renorm, n_exp; /* expert slots; GATE: renorm, logits per row */
    int n_split, z;      /* ATTN: splits per kv head, head groups */
    int n_head, n_kv, hd;
    int64_t rows;        /* per expert (SWIGLU/COMBINE); EMBED: cols; ARGMAX: n;
                            ATTN: rows per split at least */
    int64_t total;       /* work items: rows, slots x rows, elements */
    zm_gpu_segs s;       /* MATVEC; SWIGLU: q/d[0] gate, [1] up, y[0] = h;
                            COMBINE: q/d[0], res[0], y[0]; EMBED: q/d[0], y[0] */
    const float *x, *nw; /* input (GATE: logits; COMBINE: h), folded norm weights */
    float eps, scale;
    const int32_t *ids;  /* expert ids (SWIGLU, COMBINE), token ids (EMBED), pos (ATTN) */
    const float *w;      /* COMBINE: expert weights */
    int32_t *ids_out;    /* GATE: ids; ARGMAX: the index */
    float *w_out;        /* GATE: weights */
    float *pm, *pl, *pacc; /* ATTN: split partials */
    int *counter;        /* ATTN: merge counters; ARGMAX: last-block counter */
    float *out;          /* ATTN */
    const float *q, *kc, *vc; /* ATTN without qkn */
    zm_gpu_qkn qkn;      /* ATTN with q/k norm + rope folded (qkn.xq != NULL) */
} zm_gpu_step;

zm_status zm_gpu_step_matvec(zm_gpu_step *s, int n, const zm_gpu_mat *const *W, const float *x,
                             const float *norm_w, float eps, const float *const *res, float *const *y);
zm_status zm_gpu_step_gate(zm_gpu_step *s, const float *logits, int n, int k, int renorm, int32_t *ids,
                           float *w);
zm_status zm_gpu_step_swiglu(zm_gpu_step *s, const zm_gpu_mat *G, const zm_gpu_mat *U, const int32_t *ids,
                             int k, const float *x, const float *norm_w, float eps, float *h);
zm_status zm_gpu_step_combine(zm_gpu_step *s, const zm_gpu_mat *D, const int32_t *ids, const float *w, int k,
                              const float *h, const float *res, float *y);
/* qkn NULL: plain decode attention of q. ws as zm_gpu_attention_decode's. */
zm_status zm_gpu_step_attention(zm_gpu_step *s, const zm_gpu_qkn *qkn, const float *q, const float *k_cache,
                                const float *v_cache, int n_head, int n_kv, int head_dim, int64_t max_ctx,
                                float scale, const int32_t *pos, void *ws, float *out);
zm_status zm_gpu_step_embedding(zm_gpu_step *s, const zm_gpu_mat *E, const int32_t *ids, int64_t n, float *out);
zm_status zm_gpu_step_argmax(zm_gpu_step *s, const float *x, int64_t n, int32_t *idx);

typedef struct zm_gpu_persist zm_gpu_persist;
/* Upload n steps (copied) and size the grid: one block per SM, all
 * resident, so the grid barrier cannot deadlock. */
zm_status zm_gpu_persist_new(zm_gpu_persist **out, const zm_gpu_step *steps, int n);
/* Enqueue one run (a barrier reset and the kernel) on stream; capturable. */
zm_status zm_gpu_persist_run(zm_gpu_persist *p, void *stream);
void zm_gpu_persist_free(zm_gpu_persist *p); /* NULL-safe */

/* ---- small ops ------------------------------------------------------------- */
/* out[t][c] = dequant(E[ids[t]][c]); ids: [n] int32 device. E: rows = vocab. */
zm_status zm_gpu_embedding(const zm_gpu_mat *E, const int32_t *ids, int64_t n, float *out,
                            void *stream);
/* idx[r] = argmax over row r of x (first maximum; NaN never wins), rows of
 * n. ws (may be NULL): zm_gpu_argmax_ws_bytes() of zeroed device memory,
 * left zeroed; with it a long single row is spread over many blocks (same
 * result). One ws per stream. */
zm_status zm_gpu_argmax(const float *x, int64_t rows, int64_t n, int32_t *idx, void *ws, void *stream);
int64_t zm_gpu_argmax_ws_bytes(void);
/* Between two greedy decode steps on the device: *tok = *next, *pos += 1,
 * and ring[1 + ring[0]++] = *next while ring[0] < cap (ring: 1 + cap int32,
 * ring[0] zeroed by the caller before the first step). One thread. */
zm_status zm_gpu_greedy_advance(int32_t *tok, int32_t *pos, const int32_t *next, int32_t *ring, int cap, void *stream);
/* An empty kernel (one block; PDL wait and release only): ZMLX_CUDA_NOPS
 * measures what a kernel boundary costs with it. */
zm_status zm_gpu_noop(void *stream);
/* Row-wise softmax over rows of n. y may alias x. */
zm_status zm_gpu_softmax(const float *x, int64_t rows, int64_t n, float *y, void *stream);
/* Row-wise top-k (k <= 32, n <= 4096): values and int32 indices, descending,
 * ties by lower index. */
zm_status zm_gpu_topk_rows(const float *x, int64_t rows, int64_t n, int k, float *val, int32_t *idx,
                       void *stream);
/* y[r] = x[r] / sum(x[r]) over rows of n (routing renormalisation). */
zm_status zm_gpu_normalize_sum(const float *x, int64_t rows, int64_t n, float *y, void *stream);
/* Binary elementwise with broadcast: y[i] = op(a[i], b[bi]) for i < n where
 * bi = i % nb when b_mode == 0 (row broadcast, nb divides n), i / (n / nb)
 * when b_mode == 1 (one b value per row). op: 0 add, 1 mul, 2 sub, 3 div. */
zm_status zm_gpu_binary(int op, const float *a, const float *b, int64_t n, int64_t nb, int b_mode,
                         float *y, void *stream);
/* Unary: 0 silu, 1 exp, 2 neg, 3 sqrt, 4 rsqrt, 5 gelu(tanh), 6 copy;
 * y = op(x) * scale. */
zm_status zm_gpu_unary(int op, const float *x, int64_t n, float scale, float *y, void *stream);
/* y[c] = sum_r x[r][c] (sum over the leading axis, in row order from 0). */
zm_status zm_gpu_sum_rows(const float *x, int64_t rows, int64_t n, float *y, void *stream);
/* x: [outer][n][inner] -> y: [outer][inner], summed over n in order from 0. */
zm_status zm_gpu_sum_axis(const float *x, int64_t outer, int64_t n, int64_t inner, float *y,
                           void *stream);
/* Broadcast binary over numpy shapes of 4 dims (unused leading dims 1): b's
 * dims equal a's or are 1; y has a's shape. op as zm_gpu_binary. */
zm_status zm_gpu_binary_nd(int op, const float *a, const int64_t a_shape[4], const float *b,
                            const int64_t b_shape[4], float *y, void *stream);
/* y[r][j] = x[r][ids[r][j]] (take along the last axis). x: [rows][n]. */
zm_status zm_gpu_take(const float *x, int64_t rows, int64_t n, const int32_t *ids, int k,
                       float *y, void *stream);
/* y[j][c] = x[idx[j]][c] for j < k (gather rows); idx int32 device. */
zm_status zm_gpu_gather_rows(const float *x, int64_t n, const int32_t *idx, int k, float *y,
                              void *stream);
/* *p += by (the position counter of a captured decode graph). */
zm_status zm_gpu_add_i32(int32_t *p, int by, void *stream);
/* dst[0] = src[0] (device int32 copy, e.g. sampled id -> next input id). */
zm_status zm_gpu_copy_i32(int32_t *dst, const int32_t *src, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif
#endif
