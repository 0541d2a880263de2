/* RMSNorm, add+RMSNorm, NeoX RoPE, the fused per-head Q/K norm + RoPE (+ KV
 * cache store), embedding lookup, argmax, and the small elementwise ops the
 * stock graph needs. Positions and token ids are read from device memory so
 * a captured decode graph replays unchanged.
 * Checked against float64 references in tests/test_cuda_ops.c. */
#include "kernels/cuda/common.cuh"
#include <string.h>

// ---------------------------------------------------------------------------
// Device routines shared by the stock and the fused kernels

// ---------------------------------------------------------------------------
// Kernels
__global__ void __launch_bounds__(ZM_BLOCK) k_rmsnorm(const float *x, const float *w, int64_t n,
                                                      float eps, float *y) {
    ZM_PDL_ENTRY();
    __shared__ float red[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    const float scale = block_rms_scale(xr, n, eps, red);
    for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) yr[i] = norm_apply(xr[i], scale, w[i]);
}

__global__ void __launch_bounds__(ZM_BLOCK) k_add_rmsnorm(const float *a, const float *b,
                                                          const float *w, int64_t n, float eps,
                                                          float *sum, float *y) {
    ZM_PDL_ENTRY();
    __shared__ float red[32];
    a += blockIdx.x * n;
    b += blockIdx.x * n;
    sum += blockIdx.x * n;
    y += blockIdx.x * n;
    for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) sum[i] = __fadd_rn(a[i], b[i]);
    __syncthreads(); /* block_rms_scale reads float4s other threads wrote */
    const float scale = block_rms_scale(sum, n, eps, red);
    for (int64_t i = threadIdx.x; i < n; i += ZM_BLOCK) y[i] = norm_apply(sum[i], scale, w[i]);
}

/* Block per (token, head); x, y: [n_tok][n_head][d]; y may alias x. */
__global__ void k_rope(const float *x, int n_head, int d, int n_rot, const int32_t *pos,
                       const float *inv_freq, float *y) {
    ZM_PDL_ENTRY();
    __shared__ float xh[1024];
    const int64_t t = blockIdx.x / n_head;
    const float *xr = x + (int64_t)blockIdx.x * d;
    float *yr = y + (int64_t)blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) xh[i] = xr[i];
    __syncthreads();
    const float p = (float)pos[t];
    for (int i = threadIdx.x; i < n_rot / 2; i += blockDim.x) rope_pair(xh, i, n_rot / 2, p, inv_freq);
    __syncthreads();
    for (int i = threadIdx.x; i < d; i += blockDim.x) yr[i] = xh[i];
}

/* Block per (token, head): RMSNorm over the head (same block reduction as
 * k_rmsnorm) then RoPE; optionally also stored into the cache at row pos[t]. */
__global__ void __launch_bounds__(ZM_BLOCK)
    k_qk_norm_rope(const float *x, const float *w, int n_head, int d, int n_rot, float eps,
                   const int32_t *pos, const float *inv_freq, float *y, float *cache) {
    ZM_PDL_ENTRY();
    __shared__ float red[32];
    __shared__ float xh[1024];
    const int64_t t = blockIdx.x / n_head, h = blockIdx.x % n_head;
    const float *xr = x + (int64_t)blockIdx.x * d;
    const float scale = block_rms_scale(xr, d, eps, red);
    for (int i = threadIdx.x; i < d; i += ZM_BLOCK) xh[i] = norm_apply(xr[i], scale, w[i]);
    __syncthreads();
    const int p = pos[t];
    for (int i = threadIdx.x; i < n_rot / 2; i += ZM_BLOCK) rope_pair(xh, i, n_rot / 2, (float)p, inv_freq);
    __syncthreads();
    float *yr = y + (int64_t)blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += ZM_BLOCK) {
        yr[i] = xh[i];
        if (cache) cache[((int64_t)p * n_head + h) * d + i] = xh[i];
    }
}

/* One token's q and k heads (norm + rope, k also into its cache) and the v
 * heads' cache store in one launch: blocks [0, hq) q, [hq, hq+hk) k,
 * [hq+hk, hq+2hk) v. Same arithmetic as k_qk_norm_rope. */
__global__ void __launch_bounds__(ZM_BLOCK)
    k_qkv_norm_rope(const float *xq, const float *wq, float *yq, int hq, const float *xk, const float *wk,
                    float *yk, float *kc, int hk, const float *v, float *vc, int d, int n_rot, float eps,
                    const int32_t *pos, const float *inv_freq) {
    ZM_PDL_ENTRY();
    __shared__ float red[32];
    __shared__ float xh[1024];
    const int b = blockIdx.x, p = pos[0];
    if (b >= hq + hk) {
        const int h = b - hq - hk;
        for (int i = threadIdx.x; i < d; i += ZM_BLOCK) vc[((int64_t)p * hk + h) * d + i] = v[(int64_t)h * d + i];
        return;
    }
    const bool is_q = b < hq;
    const int h = is_q ? b : b - hq;
    const float *xr = (is_q ? xq : xk) + (int64_t)h * d;
    const float *w = is_q ? wq : wk;
    const float scale = block_rms_scale(xr, d, eps, red);
    for (int i = threadIdx.x; i < d; i += ZM_BLOCK) xh[i] = norm_apply(xr[i], scale, w[i]);
    __syncthreads();
    for (int i = threadIdx.x; i < n_rot / 2; i += ZM_BLOCK) rope_pair(xh, i, n_rot / 2, (float)p, inv_freq);
    __syncthreads();
    float *yr = (is_q ? yq : yk) + (int64_t)h * d;
    for (int i = threadIdx.x; i < d; i += ZM_BLOCK) {
        yr[i] = xh[i];
        if (!is_q && kc) kc[((int64_t)p * hk + h) * d + i] = xh[i];
    }
}

__global__ void k_kv_store(const float *x, int64_t n_tok, int64_t row_len, const int32_t *pos,
                           float *cache) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_tok * row_len) return;
    const int64_t t = i / row_len, c = i % row_len;
    cache[(int64_t)pos[t] * row_len + c] = x[i];
}

/* Thread per element of [n][cols]; E repacked (ops_cuda.h). */
template <int DT>
__global__ void k_embedding(const void *q, const uint16_t *d, int64_t cols, const int32_t *ids,
                            int64_t n, float *out) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * cols) return;
    out[i] = embed_value<DT>(q, d, cols, ids[i / cols], i % cols);
}

/* Block per row; thread t takes its float4s in increasing order (four in
 * flight), so am_take's "first max" holds within the thread. */
__global__ void __launch_bounds__(1024) k_argmax(const float *x, int64_t n, int32_t *idx) {
    ZM_PDL_ENTRY();
    __shared__ float sv[32];
    __shared__ int si[32];
    float bv = -INFINITY;
    int bi = ZM_AM_NONE;
    argmax_range(x + blockIdx.x * n, 0, n, false, bv, bi);
    argmax_block(bv, bi, sv, si);
    if (threadIdx.x == 0) idx[blockIdx.x] = bi == ZM_AM_NONE ? 0 : bi;
}

/* One row over several blocks (zm_gpu_argmax with a workspace): block b
 * takes elements [b*chunk, b*chunk+chunk) in argmax_range's order, leaves
 * its candidate in the workspace, and the last block to finish (counter,
 * reset by it) merges them: the first maximum, as k_argmax finds it. */
#define ZM_AM_MAXB 256
__global__ void __launch_bounds__(256) k_argmax_wide(const float *x, int64_t n, int64_t chunk, int32_t *idx,
                                                     unsigned *count, float *cv, int *ci) {
    ZM_PDL_ENTRY();
    __shared__ float sv[32];
    __shared__ int si[32];
    __shared__ int last;
    float bv = -INFINITY;
    int bi = ZM_AM_NONE;
    const int64_t lo = (int64_t)blockIdx.x * chunk;
    argmax_range(x, lo, min(n, lo + chunk), false, bv, bi);
    argmax_block(bv, bi, sv, si);
    if (threadIdx.x == 0) {
        cv[blockIdx.x] = bv;
        ci[blockIdx.x] = bi;
        __threadfence();
        last = atomicAdd(count, 1u) == gridDim.x - 1;
        if (last) *count = 0; /* ready for the next launch */
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    bv = threadIdx.x < gridDim.x ? __ldcg(cv + threadIdx.x) : -INFINITY;
    bi = threadIdx.x < gridDim.x ? __ldcg(ci + threadIdx.x) : ZM_AM_NONE;
    argmax_block(bv, bi, sv, si);
    if (threadIdx.x == 0) idx[0] = bi == ZM_AM_NONE ? 0 : bi;
}

/* The greedy loop's step between two runs of a decode graph: the id just
 * chosen becomes the next token, one position on; ring[0] counts the ids
 * kept in ring[1..cap]. */
__global__ void k_greedy_advance(int32_t *tok, int32_t *pos, const int32_t *next, int32_t *ring, int cap) {
    const int32_t id = *next, i = ring[0];
    if (i < cap) ring[1 + i] = id;
    ring[0] = i + 1;
    *tok = id;
    *pos += 1;
}

__global__ void k_binary(int op, const float *a, const float *b, int64_t n, int64_t nb, int mode,
                         float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float x = a[i], z = b[mode == 0 ? i % nb : i / (n / nb)];
    float r;
    switch (op) {
    case 0: r = __fadd_rn(x, z); break;
    case 1: r = __fmul_rn(x, z); break;
    case 2: r = __fsub_rn(x, z); break;
    default: r = __fdiv_rn(x, z); break;
    }
    y[i] = r;
}

__global__ void k_unary(int op, const float *x, int64_t n, float scale, float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = x[i];
    float r;
    switch (op) {
    case 0: r = silu_f(v); break;
    case 1: r = expf(v); break;
    case 2: r = -v; break;
    case 3: r = sqrtf(v); break;
    case 4: r = rsqrtf(v); break;
    case 5: r = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))); break;
    default: r = v; break;
    }
    y[i] = scale == 1.f ? r : __fmul_rn(r, scale);
}

/* Sum over the middle axis of [outer][n][inner] in order (0 + x0 + x1 + ...),
 * like the fused combine and the routing renormalisation. */
__global__ void k_sum_axis(const float *x, int64_t outer, int64_t n, int64_t inner, float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= outer * inner) return;
    const int64_t o = i / inner, c = i % inner;
    const float *xo = x + o * n * inner + c;
    float s = 0.f;
    for (int64_t r = 0; r < n; r++) s = __fadd_rn(s, xo[r * inner]);
    y[i] = s;
}

struct Shape4 { int64_t a[4], bs[4]; };
__global__ void k_binary_nd(int op, const float *a, Shape4 sh, const float *b, int64_t n, float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int64_t rem = i, bi = 0;
    for (int d = 3; d >= 0; d--) {
        const int64_t c = rem % sh.a[d];
        rem /= sh.a[d];
        bi += c * sh.bs[d];
    }
    const float x = a[i], z = b[bi];
    float r;
    switch (op) {
    case 0: r = __fadd_rn(x, z); break;
    case 1: r = __fmul_rn(x, z); break;
    case 2: r = __fsub_rn(x, z); break;
    default: r = __fdiv_rn(x, z); break;
    }
    y[i] = r;
}

__global__ void k_gather_rows(const float *x, int64_t n, const int32_t *idx, int k, float *y) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)k * n) return;
    const int64_t j = i / n, c = i % n;
    y[i] = x[(int64_t)idx[j] * n + c];
}

__global__ void k_add_i32(int32_t *p, int by) {
    ZM_PDL_ENTRY(); p[0] += by; }
__global__ void k_copy_i32(int32_t *d, const int32_t *s, int64_t n) {
    ZM_PDL_ENTRY();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) d[i] = s[i];
}

// ---------------------------------------------------------------------------
// Entry points
static unsigned blocks_for(int64_t n, int t) { return (unsigned)((n + t - 1) / t); }

extern "C" zm_status zm_gpu_rmsnorm(const float *x, const float *w, int64_t rows, int64_t n,
                                     float eps, float *y, void *stream) {
    if (rows < 1 || n < 1) return zm__err(ZM_ERR_SHAPE, "rmsnorm: empty");
    zm__launch(k_rmsnorm, (unsigned)rows, ZM_BLOCK, 0, (cudaStream_t)stream, x, w, n, eps, y);
    return zm__cuda_ck("k_rmsnorm");
}

extern "C" zm_status zm_gpu_add_rmsnorm(const float *a, const float *b, const float *w, int64_t rows,
                                         int64_t n, float eps, float *sum, float *y, void *stream) {
    if (n < 1 || rows < 1) return zm__err(ZM_ERR_SHAPE, "add_rmsnorm: empty");
    zm__launch(k_add_rmsnorm, (unsigned)rows, ZM_BLOCK, 0, (cudaStream_t)stream, a, b, w, n, eps, sum, y);
    return zm__cuda_ck("k_add_rmsnorm");
}

static zm_status rope_check(int64_t n_tok, int n_head, int d, int n_rot, const char *what) {
    if (n_tok < 1 || n_head < 1 || d < 2 || d > 1024 || n_rot < 2 || n_rot % 2 || n_rot > d)
        return zm__err(ZM_ERR_SHAPE, "%s: %lld tokens, %d heads of %d, n_rot %d", what, (long long)n_tok, n_head, d, n_rot);
    return ZM_OK;
}

extern "C" zm_status zm_gpu_rope(const float *x, int64_t n_tok, int n_head, int head_dim, int n_rot,
                                  const int32_t *pos, const float *inv_freq, float *y, void *stream) {
    ZM_TRY(rope_check(n_tok, n_head, head_dim, n_rot, "rope"));
    zm__launch(k_rope, (unsigned)(n_tok * n_head), 64, 0, (cudaStream_t)stream, x, n_head, head_dim, n_rot, pos, inv_freq, y);
    return zm__cuda_ck("k_rope");
}

extern "C" zm_status zm_gpu_qk_norm_rope(const float *x, const float *w, int64_t n_tok, int n_head,
                                          int head_dim, int n_rot, float eps, const int32_t *pos,
                                          const float *inv_freq, float *y, float *cache,
                                          void *stream) {
    ZM_TRY(rope_check(n_tok, n_head, head_dim, n_rot, "qk_norm_rope"));
    zm__launch(k_qk_norm_rope, (unsigned)(n_tok * n_head), ZM_BLOCK, 0, (cudaStream_t)stream, x, w, n_head, head_dim, n_rot, eps, pos, inv_freq, y, cache);
    return zm__cuda_ck("k_qk_norm_rope");
}

extern "C" zm_status zm_gpu_qkv_norm_rope(const float *xq, const float *wq, float *yq, int hq,
                                          const float *xk, const float *wk, float *yk, float *k_cache,
                                          int hk, const float *v, float *v_cache, int head_dim,
                                          int n_rot, float eps, const int32_t *pos,
                                          const float *inv_freq, void *stream) {
    ZM_TRY(rope_check(1, hq, head_dim, n_rot, "qkv_norm_rope"));
    ZM_TRY(rope_check(1, hk, head_dim, n_rot, "qkv_norm_rope"));
    const int nb = hq + hk + (v && v_cache ? hk : 0);
    zm__launch(k_qkv_norm_rope, (unsigned)nb, ZM_BLOCK, 0, (cudaStream_t)stream, xq, wq, yq, hq, xk, wk, yk, k_cache, hk, v, v_cache,
                                                                          head_dim, n_rot, eps, pos, inv_freq);
    return zm__cuda_ck("k_qkv_norm_rope");
}

extern "C" zm_status zm_gpu_kv_store(const float *x, int64_t n_tok, int64_t row_len, const int32_t *pos,
                                      float *cache, void *stream) {
    int64_t n = n_tok * row_len;
    if (n < 1) return zm__err(ZM_ERR_SHAPE, "kv_store: empty");
    zm__launch(k_kv_store, blocks_for(n, 256), 256, 0, (cudaStream_t)stream, x, n_tok, row_len, pos, cache);
    return zm__cuda_ck("k_kv_store");
}

extern "C" zm_status zm_gpu_embedding(const zm_gpu_mat *E, const int32_t *ids, int64_t n,
                                       float *out, void *stream) {
    if (!E || !E->q || n < 1) return zm__err(ZM_ERR_INVALID, "embedding: no table or no ids");
    cudaStream_t st = (cudaStream_t)stream;
    unsigned g = blocks_for(n * E->cols, 256);
    switch (E->dtype) {
    case ZM_F32: zm__launch(k_embedding<ZM_F32>, g, 256, 0, st, E->q, E->d, E->cols, ids, n, out); break;
    case ZM_F16: zm__launch(k_embedding<ZM_F16>, g, 256, 0, st, E->q, E->d, E->cols, ids, n, out); break;
    case ZM_BF16: zm__launch(k_embedding<ZM_BF16>, g, 256, 0, st, E->q, E->d, E->cols, ids, n, out); break;
    case ZM_Q4_0: zm__launch(k_embedding<ZM_Q4_0>, g, 256, 0, st, E->q, E->d, E->cols, ids, n, out); break;
    case ZM_Q8_0: zm__launch(k_embedding<ZM_Q8_0>, g, 256, 0, st, E->q, E->d, E->cols, ids, n, out); break;
    default: return zm__err(ZM_ERR_DTYPE, "embedding: dtype %s", zm_dtype_name(E->dtype));
    }
    return zm__cuda_ck("k_embedding");
}

__global__ void k_noop() { ZM_PDL_ENTRY(); }
extern "C" zm_status zm_gpu_noop(void *stream) {
    zm__launch(k_noop, 1, 32, 0, (cudaStream_t)stream);
    return zm__cuda_ck("k_noop");
}

extern "C" zm_status zm_gpu_greedy_advance(int32_t *tok, int32_t *pos, const int32_t *next, int32_t *ring, int cap,
                                            void *stream) {
    k_greedy_advance<<<1, 1, 0, (cudaStream_t)stream>>>(tok, pos, next, ring, cap);
    return zm__cuda_ck("k_greedy_advance");
}

extern "C" int64_t zm_gpu_argmax_ws_bytes(void) { return 16 + ZM_AM_MAXB * 8; }

extern "C" zm_status zm_gpu_argmax(const float *x, int64_t rows, int64_t n, int32_t *idx, void *ws, void *stream) {
    if (rows < 1 || n < 1) return zm__err(ZM_ERR_SHAPE, "argmax: empty");
    if (ws && rows == 1 && n >= 8192) { /* one float4 a thread, one round of loads */
        int64_t g = (n + 1023) / 1024;
        if (g > ZM_AM_MAXB) g = ZM_AM_MAXB;
        const int64_t chunk = ((n + g - 1) / g + 3) / 4 * 4;
        g = (n + chunk - 1) / chunk;
        float *cv = (float *)((char *)ws + 16);
        zm__launch(k_argmax_wide, (unsigned)g, 256, 0, (cudaStream_t)stream, x, n, chunk, idx, (unsigned *)ws, cv,
                   (int *)(cv + ZM_AM_MAXB));
        return zm__cuda_ck("k_argmax_wide");
    }
    zm__launch(k_argmax, (unsigned)rows, 1024, 0, (cudaStream_t)stream, x, n, idx);
    return zm__cuda_ck("k_argmax");
}

extern "C" zm_status zm_gpu_binary(int op, const float *a, const float *b, int64_t n, int64_t nb,
                                    int b_mode, float *y, void *stream) {
    if (op < 0 || op > 3) return zm__err(ZM_ERR_INVALID, "binary: op %d", op);
    if (n < 1 || nb < 1 || n % nb) return zm__err(ZM_ERR_SHAPE, "binary: %lld elements vs %lld", (long long)n, (long long)nb);
    zm__launch(k_binary, blocks_for(n, 256), 256, 0, (cudaStream_t)stream, op, a, b, n, nb, b_mode, y);
    return zm__cuda_ck("k_binary");
}

extern "C" zm_status zm_gpu_unary(int op, const float *x, int64_t n, float scale, float *y, void *stream) {
    if (op < 0 || op > 6) return zm__err(ZM_ERR_INVALID, "unary: op %d", op);
    if (n < 1) return zm__err(ZM_ERR_SHAPE, "unary: empty");
    zm__launch(k_unary, blocks_for(n, 256), 256, 0, (cudaStream_t)stream, op, x, n, scale, y);
    return zm__cuda_ck("k_unary");
}

extern "C" zm_status zm_gpu_sum_rows(const float *x, int64_t rows, int64_t n, float *y, void *stream) {
    return zm_gpu_sum_axis(x, 1, rows, n, y, stream);
}

extern "C" zm_status zm_gpu_sum_axis(const float *x, int64_t outer, int64_t n, int64_t inner, float *y,
                                      void *stream) {
    if (outer < 1 || n < 1 || inner < 1) return zm__err(ZM_ERR_SHAPE, "sum_axis: empty");
    zm__launch(k_sum_axis, blocks_for(outer * inner, 256), 256, 0, (cudaStream_t)stream, x, outer, n, inner, y);
    return zm__cuda_ck("k_sum_axis");
}

extern "C" zm_status zm_gpu_binary_nd(int op, const float *a, const int64_t a_shape[4], const float *b,
                                       const int64_t b_shape[4], float *y, void *stream) {
    if (op < 0 || op > 3) return zm__err(ZM_ERR_INVALID, "binary_nd: op %d", op);
    Shape4 sh;
    int64_t n = 1, st = 1;
    for (int d = 3; d >= 0; d--) {
        if (a_shape[d] < 1 || (b_shape[d] != a_shape[d] && b_shape[d] != 1))
            return zm__err(ZM_ERR_SHAPE, "binary_nd: dim %d: %lld vs %lld", d, (long long)a_shape[d], (long long)b_shape[d]);
        sh.a[d] = a_shape[d];
        sh.bs[d] = b_shape[d] == 1 ? 0 : st;
        st *= b_shape[d];
        n *= a_shape[d];
    }
    zm__launch(k_binary_nd, blocks_for(n, 256), 256, 0, (cudaStream_t)stream, op, a, sh, b, n, y);
    return zm__cuda_ck("k_binary_nd");
}

extern "C" zm_status zm_gpu_gather_rows(const float *x, int64_t n, const int32_t *idx, int k,
                                         float *y, void *stream) {
    if (k < 1 || n < 1) return zm__err(ZM_ERR_SHAPE, "gather_rows: empty");
    zm__launch(k_gather_rows, blocks_for((int64_t)k * n, 256), 256, 0, (cudaStream_t)stream, x, n, idx, k, y);
    return zm__cuda_ck("k_gather_rows");
}

extern "C" zm_status zm_gpu_add_i32(int32_t *p, int by, void *stream) {
    zm__launch(k_add_i32, 1, 1, 0, (cudaStream_t)stream, p, by);
    return zm__cuda_ck("k_add_i32");
}

extern "C" zm_status zm_gpu_copy_i32(int32_t *dst, const int32_t *src, int64_t n, void *stream) {
    if (n < 1) return zm__err(ZM_ERR_SHAPE, "copy_i32: empty");
    zm__launch(k_copy_i32, blocks_for(n, 256), 256, 0, (cudaStream_t)stream, dst, src, n);
    return zm__cuda_ck("k_copy_i32");
}

// ---------------------------------------------------------------------------
// Steps of the persistent kernel (persist.cu)
extern "C" zm_status zm_gpu_step_embedding(zm_gpu_step *s, const zm_gpu_mat *E, const int32_t *ids, int64_t n, float *out) {
    if (!E || !E->q || n < 1 || !ids || !out) return zm__err(ZM_ERR_INVALID, "embedding step: no table, ids or output");
    if (E->dtype != ZM_F32 && E->dtype != ZM_F16 && E->dtype != ZM_BF16 && E->dtype != ZM_Q4_0 && E->dtype != ZM_Q8_0)
        return zm__err(ZM_ERR_DTYPE, "embedding step: dtype %s", zm_dtype_name(E->dtype));
    memset(s, 0, sizeof *s);
    s->op = ZM_PS_EMBED;
    s->dt = E->dtype;
    s->s.q[0] = E->q;
    s->s.d[0] = E->d;
    s->s.y[0] = out;
    s->rows = E->cols;
    s->total = n * E->cols;
    s->ids = ids;
    return ZM_OK;
}

extern "C" zm_status zm_gpu_step_argmax(zm_gpu_step *s, const float *x, int64_t n, int32_t *idx) {
    if (n < 1 || n > 0x7ffffffe || !x || !idx) return zm__err(ZM_ERR_SHAPE, "argmax step: %lld values", (long long)n);
    memset(s, 0, sizeof *s);
    s->op = ZM_PS_ARGMAX;
    s->x = x;
    s->rows = n;
    s->total = n;
    s->ids_out = idx;
    return ZM_OK;
}
