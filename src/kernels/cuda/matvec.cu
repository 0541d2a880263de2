/* Matrix-vector products on repacked weights (Q4_0, Q8_0, F32, F16, BF16):
 * dense (optionally with the input RMSNorm and the residual add fused), up to
 * three matrices per launch (Q/K/V), batched over tokens, per-expert
 * (gather by device-resident expert ids), gate+up+SwiGLU and
 * down+weighted-sum+residual. Layout: a group of `lpr` lanes owns a row, each
 * lane walks 32-element blocks sub, sub+lpr, ... with 16-byte loads; the input
 * vector sits in swizzled shared memory (common.cuh).
 * Checked against float64 references in tests/test_cuda_ops.c. */
#include "kernels/cuda/rows.cuh"
#include <stdlib.h>
#include <string.h>

/* Measuring aid (ZMLX_CUDA_DBG, read by zm_gpu_kernels_init; outputs are
 * wrong while it is set): 1 = every kernel here returns right after its
 * dependency wait (what its grid costs empty), 2 = after building x in
 * shared memory (plus the input load and norm), 3 = at once (not even the
 * dense kernels' L2 prefetch before the wait). */
static __constant__ int zm_dbg;
/* ZMLX_CUDA_PRE, a bit mask (default 7; every setting gives the same
 * bits): for the combine when the caller says its expert ids are ready,
 * 1 = it reads the ids and weights and asks L2 for its rows before its
 * dependency wait; 2 = with 1, it also loads its first weights into
 * registers there; 4 = the router loads the first blocks of its rows
 * into registers before its wait (a kernel of its own: 138 registers;
 * H100, same process, device loop Q4_0 453.4 vs 445.0 tok/s, Q8_0 362.3
 * vs 357.2). Measured and not kept (H100, docs/BENCHMARKS.md): the
 * dense matvecs loading their first weights into registers before the
 * wait (345 vs 400 tok/s, but that build also lost a block per SM: 102
 * registers instead of 80), the gate/up kernel normalising its x before
 * the wait (+0.5 %, within noise), the router ranking the experts with the
 * whole block instead of k warp rounds (409 vs 416), four Q4_0 rows a warp
 * pass in the output head (413.6 vs 413.5). */
static __constant__ int zm_pre;
static int pre_mask(void) { return (int)zm__env_ll("ZMLX_CUDA_PRE", 7); }
/* Rows of its chunk a dense matvec block asks L2 for before its wait
 * (ZMLX_CUDA_PF_ROWS, default 16: every row of the layers' 16-row chunks;
 * the output head's ~400-row chunks, 175 MB in all, would not stay in L2:
 * asking for all of them measured 1-2 % slower end to end on the H100). */
static __constant__ int64_t zm_pf_rows;
/* Whether gate/up asks L2 for its chunk of the chosen experts' rows once it
 * has the ids, before building x (ZMLX_CUDA_EX_PF=1; default 0: on the
 * H100, same process, Q4_0 412.9 without vs 407.9 / 402.7 with, Q8_0 339.0
 * vs 340.1 / 341.1), and the combine for its rows (ZMLX_CUDA_CB_PF,
 * default 1). Asking L2 for what a kernel loads anyway soon after has not
 * paid here: it sits in the same queues as the loads. */
static __constant__ int zm_ex_pf, zm_cb_pf;
template <int DT> struct PreOk { static constexpr bool v = DT == ZM_Q4_0 || DT == ZM_Q8_0; };

// ---------------------------------------------------------------------------
// Kernels (the row bodies are in rows.cuh, shared with persist.cu)

/* Dense: rows of all segments laid end to end; x shared (optionally normed).
 * Block b owns rows [b*chunk, b*chunk+chunk): it first asks L2 for all of its
 * weight bytes (one bulk prefetch per segment), then builds x in shared
 * memory while those loads fly, then computes from L2. */
template <int DT, int NB = 0> /* NB > 0: nb == NB, lpr == 32 (ZMLX_CUDA_MV_FIXED) */
__global__ void __launch_bounds__(ZM_BLOCK) k_matvec(MvSeg s, int nb, int lpr, const float *x,
                                                     const float *nw, float eps, int64_t total,
                                                     int64_t chunk) {
    extern __shared__ float4 xs[];
    __shared__ float red[32];
    const int64_t start = (int64_t)blockIdx.x * chunk, end = min(start + chunk, total);
    if (zm_dbg == 3) { ZM_PDL_ENTRY(); return; }
    /* the weights are static: ask for them before waiting on the
     * predecessor (PDL), so their fetch overlaps its tail */
    /* a long chunk (the output head: ~400 KB a block, 175 MB in all)
     * would not stay in L2: ask for its first zm_pf_rows rows only */
    mv_prefetch<DT>(s, nb, start, min(end, start + zm_pf_rows), threadIdx.x);
    ZM_PDL_ENTRY();
    if (zm_dbg & 1) return;
    load_x_swz(xs, x, nb * 32, nw, eps, red);
    __syncthreads();
    if (zm_dbg == 2) return;
    mv_rows<DT, NB>(s, nb, lpr, xs, start, end);
}

/* Dense, one tall matrix (the output head: 151936 rows), ZMLX_CUDA_WIDE
 * (default on for rows >= ZMLX_CUDA_WIDE_MIN, 65536): a bandwidth-bound
 * stream, not a latency chain. Rows of NBL*32 blocks (cols 1024 or 2048),
 * a warp per R rows a pass, a lane's share of x (NBL blocks) held in
 * registers for the whole kernel (k_matvec reads it from shared memory for
 * every row), the next pass's rows loaded while this pass's sums reduce,
 * the first pass's before the dependency wait (weights are static). Each
 * row is row_dot's sum in row_dot's order: the same bits as k_matvec
 * (tested). */
template <int DT> struct WideRows { static constexpr int v = DT == ZM_Q4_0 ? 4 : 2; };
template <int DT, int NBL>
__global__ void __launch_bounds__(ZM_BLOCK, 2) k_matvec_wide(const void *q, const uint16_t *d, const float *res, float *y,
                                                             const float *x, const float *nw, float eps, int64_t rows,
                                                             int64_t chunk) {
    constexpr int NB = 32 * NBL, R = WideRows<DT>::v;
    __shared__ float4 xs[NB * 8];
    __shared__ float red[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t end = min((int64_t)(blockIdx.x + 1) * chunk, rows);
    int64_t r0 = (int64_t)blockIdx.x * chunk + warp * R;
    typename Blk<DT>::raw w[R][NBL];
    auto load = [&](int64_t r) {
#pragma unroll
        for (int i = 0; i < R; i++) {
            const int64_t ri = r + i < end ? r + i : r; /* past the end: row r again, not stored */
#pragma unroll
            for (int j = 0; j < NBL; j++) w[i][j] = Blk<DT>::load(q, d, ri * NB + lane + 32 * j);
        }
    };
    if (zm_dbg == 3) { ZM_PDL_ENTRY(); return; }
    if (r0 < end) load(r0);
    ZM_PDL_ENTRY();
    if (zm_dbg & 1) return;
    load_x_swz(xs, x, NB * 32, nw, eps, red);
    __syncthreads();
    if (zm_dbg == 2) return;
    float4 xr[NBL][8];
#pragma unroll
    for (int j = 0; j < NBL; j++)
#pragma unroll
        for (int i = 0; i < 8; i++) xr[j][i] = xs[swz(lane + 32 * j, i)];
    for (; r0 < end; r0 += (ZM_BLOCK / 32) * R) {
        float acc[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            acc[i] = 0.f;
#pragma unroll
            for (int j = 0; j < NBL; j++) acc[i] += Blk<DT>::dotr(w[i][j], xr[j]);
        }
        if (r0 + (ZM_BLOCK / 32) * R < end) load(r0 + (ZM_BLOCK / 32) * R);
#pragma unroll
        for (int i = 0; i < R; i++) {
            const float a = group_sum(acc[i], 32);
            if (lane == 0 && r0 + i < end) y[r0 + i] = res ? res[r0 + i] + a : a;
        }
    }
}

/* Batched: block (bx, t) does token t; x[t] in shared memory. */
template <int DT>
__global__ void __launch_bounds__(ZM_BLOCK) k_matmul(const void *q, const uint16_t *d, int64_t rows,
                                                     int nb, int lpr, const float *x,
                                                     const float *res, float *y) {
    ZM_PDL_ENTRY();
    extern __shared__ float4 xs[];
    const int64_t t = blockIdx.y, cols = (int64_t)nb * 32;
    load_x_swz(xs, x + t * cols, nb * 32, nullptr, 0.f, nullptr);
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int grp = lane / lpr, sub = lane % lpr, gpw = 32 / lpr;
    const int64_t step = (int64_t)gridDim.x * (ZM_BLOCK / 32) * gpw;
    for (int64_t row = ((int64_t)blockIdx.x * (ZM_BLOCK / 32) + warp) * gpw + grp; row - grp < rows;
         row += step) {
        const bool ok = row < rows;
        float acc = ok ? row_dot<DT>(q, d, row * nb, nb, xs, sub, lpr) : 0.f;
        acc = group_sum(acc, lpr);
        if (ok && sub == 0) y[t * rows + row] = res ? res[t * rows + row] + acc : acc;
    }
}

/* Per-expert rows (ex_rows), block (b, t): items [b*chunk, b*chunk+chunk)
 * of token t (asked of L2 first with ZMLX_CUDA_EX_PF=1); x_per_slot: all k
 * inputs in shared memory. */
template <int DT, bool SWIGLU, int NB = 0> /* NB > 0: nb == NB, lpr == 32 (ZMLX_CUDA_EX_FIXED) */
__global__ void __launch_bounds__(ZM_BLOCK)
    k_expert(const void *qg, const uint16_t *dg, const void *qu, const uint16_t *du, int64_t rows,
             int nb, int lpr, const int32_t *ids, int k, const float *x, int x_per_slot,
             const float *nw, float eps, float *y, int64_t chunk) {
    ZM_PDL_ENTRY();
    extern __shared__ float4 xs[];
    __shared__ float red[32];
    __shared__ int32_t sid[64];
    const int cols = nb * 32;
    const int64_t total = (int64_t)k * rows, tok = blockIdx.y;
    ids += tok * k;
    x += tok * (x_per_slot ? k : 1) * (int64_t)cols;
    y += tok * total;
    const int64_t start = (int64_t)blockIdx.x * chunk, end = min(start + chunk, total);
    if (zm_dbg & 1) return;
    if (threadIdx.x < k) {
        const int j = threadIdx.x;
        sid[j] = ids[j];
        if (zm_ex_pf) ex_prefetch<DT, SWIGLU>(qg, dg, qu, du, rows, nb, j, sid[j], start, end);
    }
    if (x_per_slot) {
        load_slots_swz(xs, x, k, cols);
    } else {
        load_x_swz(xs, x, cols, nw, eps, red);
    }
    __syncthreads();
    if (zm_dbg == 2) return;
    ex_rows<DT, SWIGLU, NB>(qg, dg, qu, du, rows, nb, lpr, sid, xs, x_per_slot, y, start, end);
}

/* Down + combine (cb_rows): block (b, t) owns rows [b*crows, b*crows+crows)
 * of every expert of token t, ZM_COMBINE_ROWS at a time. */
template <int DT>
__device__ __forceinline__ void combine_body(const void *q, const uint16_t *d, int64_t rows, int nb, int lpr,
                                             const int32_t *ids, const float *w, int k, const float *h, const float *res,
                                             float *y, int crows, int early) {
    extern __shared__ float4 xs[];
    __shared__ int32_t sid[64];
    __shared__ float sw[64];
    __shared__ float part[64][ZM_COMBINE_ROWS];
    const int cols = nb * 32;
    const int64_t start = (int64_t)blockIdx.x * crows, end = min(start + crows, rows);
    const int64_t tok = blockIdx.y;
    ids += tok * k;
    w += tok * k;
    h += tok * k * (int64_t)cols;
    y += tok * rows;
    if (res) res += tok * rows;
    /* early: the ids and weights were written before the previous launch
     * began (it read them), so this block takes them, asks L2 for its rows
     * and loads its first weights while that launch (gate/up) runs; read
     * through L2, as they come from another grid */
    const bool ahead = early && (zm_pre & 1) && !zm_dbg; /* measuring: the router may not have gated */
    auto take_ids = [&]() { /* ids and weights (from another grid: through L2), the L2 prefetch of their rows */
        if (threadIdx.x < k) {
            const int j = threadIdx.x;
            sid[j] = __ldcg(ids + j);
            sw[j] = __ldcg(w + j);
            if (zm_cb_pf) cb_prefetch<DT>(q, d, rows, nb, sid[j], start, end);
        }
    };
    RowPre<DT> pre;
    if (ahead) {
        take_ids();
        const int warp = threadIdx.x >> 5;
        if constexpr (PreOk<DT>::v)
            if ((zm_pre & 2) && warp < k) cb_pre_load<DT>(pre, q, d, rows, nb, lpr, __ldcg(ids + warp), start, min(start + ZM_COMBINE_ROWS, end));
    }
    ZM_PDL_ENTRY();
    if (zm_dbg & 1) return;
    if (!ahead) take_ids();
    load_slots_swz(xs, h, k, cols);
    __syncthreads();
    if (zm_dbg == 2) return;
    int64_t r = start;
    if constexpr (PreOk<DT>::v)
        if (ahead && (zm_pre & 2) && r < end) {
            cb_rows<DT, true>(q, d, rows, nb, lpr, sid, sw, k, xs, res, y, r, min(r + ZM_COMBINE_ROWS, end), part, &pre);
            r += ZM_COMBINE_ROWS;
        }
    for (; r < end; r += ZM_COMBINE_ROWS)
        cb_rows<DT>(q, d, rows, nb, lpr, sid, sw, k, xs, res, y, r, min(r + ZM_COMBINE_ROWS, end), part);
}
/* Q8_0 capped at 4 blocks an SM (its first weights held ahead would take it
 * to 76 registers, 3 blocks: capped measured ~1.5 % faster); the others
 * uncapped (Q4_0: 61 registers, 4 blocks; ~1 % faster than capped; H100,
 * 256 tokens, alternating builds). */
template <int DT>
__global__ void __launch_bounds__(ZM_BLOCK)
    k_combine(const void *q, const uint16_t *d, int64_t rows, int nb, int lpr, const int32_t *ids, const float *w, int k,
              const float *h, const float *res, float *y, int crows, int early) {
    combine_body<DT>(q, d, rows, nb, lpr, ids, w, k, h, res, y, crows, early);
}
template <int DT>
__global__ void __launch_bounds__(ZM_BLOCK, 4)
    k_combine4(const void *q, const uint16_t *d, int64_t rows, int nb, int lpr, const int32_t *ids, const float *w, int k,
               const float *h, const float *res, float *y, int crows, int early) {
    combine_body<DT>(q, d, rows, nb, lpr, ids, w, k, h, res, y, crows, early);
}

/* Down + combine with the weights staged by bulk copies (ZMLX_CUDA_BULK,
 * Q4_0 and Q8_0): block (b, t) owns rows [b*crows, b*crows+crows) of every
 * slot of token t. One thread issues the k slots' row runs (quants, then
 * scales: one bulk copy each) into shared memory before the dependency
 * wait when early (the ids exist once gate/up has passed its own wait), so
 * the rows stream while gate/up runs without holding registers (32 a
 * thread against k_combine's 61-64: more of its blocks fit beside
 * gate/up's). After the wait, cb_rows's lanes and slot-order sum, each dot
 * row_dot's sum in row_dot's order from shared memory: bit-identical to
 * k_combine (tested). The same staging for gate/up (a ring of row groups
 * after its wait) measured 13 % slower end to end and was not kept. */
template <int DT, int NB = 0, int LPR = 0> /* NB > 0: nb == NB, lpr == LPR (ZMLX_CUDA_CB_FIXED) */
__global__ void __launch_bounds__(ZM_BLOCK)
    k_combine_bulk(const void *q, const uint16_t *d, int64_t rows, int nb, int lpr, const int32_t *ids, const float *w,
                   int k, const float *h, const float *res, float *y, int crows, int early) {
    fixed_shape<NB, LPR>(nb, lpr);
    extern __shared__ __align__(16) unsigned char smb[];
    __shared__ uint64_t full;
    __shared__ int32_t sid[64];
    __shared__ float sw[64];
    const int cols = nb * 32, qrow = nb * BlkBytes<DT>::v, drow = nb * 2, gpw = 32 / lpr;
    const int64_t start = (int64_t)blockIdx.x * crows, tok = blockIdx.y;
    const int n = (int)(min(start + crows, rows) - start);
    ids += tok * k;
    w += tok * k;
    h += tok * k * (int64_t)cols;
    y += tok * rows;
    if (res) res += tok * rows;
    float4 *xs = reinterpret_cast<float4 *>(smb);
    unsigned char *wq = smb + (size_t)k * cols * 4;
    uint16_t *wd = reinterpret_cast<uint16_t *>(wq + (size_t)k * crows * qrow);
    float *part = reinterpret_cast<float *>(wd + (size_t)k * crows * nb);
    const bool ahead = early && (zm_pre & 1) && !zm_dbg; /* as combine_body */
    if (threadIdx.x == 0) {
        mbar_init(&full, 1);
        mbar_fence_init();
    }
    auto take = [&]() { /* ids, weights, and the rows' copies */
        if (threadIdx.x < k) {
            sid[threadIdx.x] = __ldcg(ids + threadIdx.x);
            sw[threadIdx.x] = __ldcg(w + threadIdx.x);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            mbar_expect(&full, (uint32_t)(k * n * (qrow + drow)));
            for (int j = 0; j < k; j++) {
                const int64_t row = (int64_t)sid[j] * rows + start;
                bulk_g2s(wq + (size_t)j * crows * qrow, (const char *)q + row * qrow, (uint32_t)(n * qrow), &full);
                bulk_g2s(reinterpret_cast<unsigned char *>(wd) + (size_t)j * crows * drow, d + row * nb, (uint32_t)(n * drow), &full);
            }
        }
    };
    if (ahead) take();
    ZM_PDL_ENTRY();
    if (zm_dbg & 1) return;
    if (!ahead) take();
    load_slots_swz(xs, h, k, cols);
    __syncthreads();
    mbar_wait(&full, 0);
    if (zm_dbg == 2) return;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, grp = lane / lpr, sub = lane % lpr;
    for (int p0 = warp * gpw; p0 < k * n; p0 += (ZM_BLOCK / 32) * gpw) {
        const int p = p0 + grp, j = p / n, i = p % n;
        const bool ok = p < k * n;
        float acc = 0.f;
        if (ok) {
            const size_t at = (size_t)j * crows + i;
            const float4 *xj = xs + (size_t)j * cols / 4;
            for (int b = sub; b < nb; b += lpr) acc += Blk<DT>::dot(Blk<DT>::lds(wq + at * qrow, wd + at * nb, b), xj, b);
        }
        acc = group_sum(acc, lpr);
        if (ok && sub == 0) part[(size_t)j * crows + i] = acc;
    }
    __syncthreads();
    cb_sum(part, crows, sw, k, n, res, y, start);
}

/* Router + gating in one launch: block b computes logits rows
 * [b*per, b*per+per) exactly as k_matvec does (same lanes per row, same
 * row_dot, same folded norm), writes them, and the last block to finish
 * (atomic counter, reset by that block) gates them with gate_row, reading
 * the logits through L2. */
template <int DT, int NPL, bool PRE, int NB = 0> /* NB > 0: nb == NB, lpr == 32 (ZMLX_CUDA_RT_FIXED) */
__global__ void __launch_bounds__(ZM_BLOCK)
    k_router_gate(const void *q, const uint16_t *d, int rows, int nb, int lpr, int per, const float *x,
                  const float *nw, float eps, float *logits, int *counter, int k, int renorm, int32_t *ids, float *w) {
    fixed_shape<NB>(nb, lpr);
    extern __shared__ float4 xs[];
    __shared__ float red[32];
    __shared__ int last;
    const int gpw = 32 / lpr;
    const int start = blockIdx.x * per, end = min(start + per, rows); /* per <= 8 * gpw */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int grp = lane / lpr, sub = lane % lpr, row = start + warp * gpw + grp;
    if (zm_dbg == 3) { ZM_PDL_ENTRY(); return; }
    if (threadIdx.x == 0 && zm_pf_rows > 0) {
        prefetch_l2((const char *)q + (int64_t)start * nb * BlkBytes<DT>::v, (int64_t)(end - start) * nb * BlkBytes<DT>::v);
        if (d) prefetch_l2(d + (int64_t)start * nb, (int64_t)(end - start) * nb * 2);
    }
    /* PRE (ZMLX_CUDA_PRE & 4): this lane's first blocks of its row into
     * registers while the previous launch (o_proj) runs */
    RowPre<DT> pre;
    const bool ahead = PRE && row < end;
    if (ahead) row_pre_load<DT>(pre, q, d, (int64_t)row * nb, nb, sub, lpr);
    ZM_PDL_ENTRY();
    if (zm_dbg & 1) return;
    load_x_swz(xs, x, nb * 32, nw, eps, red);
    __syncthreads();
    if (zm_dbg == 2) return;
    float acc = ahead ? row_dot_pre<DT>(pre, q, d, (int64_t)row * nb, nb, xs, sub, lpr)
                : row < end ? row_dot<DT>(q, d, (int64_t)row * nb, nb, xs, sub, lpr) : 0.f;
    acc = group_sum(acc, lpr);
    if (row < end && sub == 0) logits[row] = acc;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1) == (int)gridDim.x - 1;
        if (last) *counter = 0; /* ready for the next launch */
    }
    __syncthreads();
    if (!last || warp) return;
    __threadfence();
    gate_row<NPL, true>(logits, rows, k, renorm, ids, w);
}

// ---------------------------------------------------------------------------
// Launchers
int zm__pdl_enabled(void) {
    static int on = -1;
    if (on < 0) on = zm__env_ll("ZMLX_CUDA_PDL", 1) != 0;
    return on;
}

/* Blocks per SM of the matrix-vector grids (ZMLX_CUDA_BPS, default 4): more
 * blocks, fewer rows per warp, fewer dependent load rounds per thread; the
 * expert grids: ZMLX_CUDA_EX_BPS, default the same. */
static int bps_env(const char *var, int dflt) {
    const long long b = zm__env_ll(var, dflt);
    return b < 1 || b > 16 ? dflt : (int)b;
}
static int blocks_per_sm(void) { return bps_env("ZMLX_CUDA_BPS", 4); }
static int expert_blocks_per_sm(void) { return bps_env("ZMLX_CUDA_EX_BPS", blocks_per_sm()); }

extern "C" zm_status zm_gpu_kernels_init(void) {
    (void)zm__sm_count();
    const int dbg = (int)zm__env_ll("ZMLX_CUDA_DBG", 0), pre = pre_mask();
    const int ex_pf = zm__env_ll("ZMLX_CUDA_EX_PF", 0) == 1, cb_pf = zm__env_ll("ZMLX_CUDA_CB_PF", 1) != 0;
    int64_t pf_rows = zm__env_ll("ZMLX_CUDA_PF_ROWS", 16);
    if (pf_rows < 0) pf_rows = 16;
    cudaMemcpyToSymbol(zm_dbg, &dbg, sizeof dbg);
    cudaMemcpyToSymbol(zm_pre, &pre, sizeof pre);
    cudaMemcpyToSymbol(zm_pf_rows, &pf_rows, sizeof pf_rows);
    cudaMemcpyToSymbol(zm_ex_pf, &ex_pf, sizeof ex_pf);
    cudaMemcpyToSymbol(zm_cb_pf, &cb_pf, sizeof cb_pf);
    return zm__cuda_ck("zm_gpu_kernels_init");
}

static zm_status check_mat(const zm_gpu_mat *W, const char *what) {
    if (!W || !W->q) return zm__err(ZM_ERR_INVALID, "%s: no matrix", what);
    if (W->cols <= 0 || W->cols % 32) return zm__err(ZM_ERR_SHAPE, "%s: cols %lld not a positive multiple of 32", what, (long long)W->cols);
    if (W->cols > 16384) return zm__err(ZM_ERR_SHAPE, "%s: cols %lld over 16384", what, (long long)W->cols);
    return ZM_OK;
}
/* 1..3 matrices of one dtype and width into segments (res may be NULL). */
static zm_status fill_segs(MvSeg &s, int n, const zm_gpu_mat *const *W, const float *const *res, float *const *y,
                           const char *what) {
    if (n < 1 || n > 3) return zm__err(ZM_ERR_INVALID, "%s: %d matrices (1..3)", what, n);
    s = MvSeg{};
    for (int i = 0; i < n; i++) {
        ZM_TRY(check_mat(W[i], what));
        if (W[i]->dtype != W[0]->dtype || W[i]->cols != W[0]->cols)
            return zm__err(ZM_ERR_SHAPE, "%s: matrix %d differs in dtype or cols", what, i);
        s.q[i] = W[i]->q; s.d[i] = W[i]->d; s.y[i] = y[i]; s.res[i] = res ? res[i] : nullptr; s.rows[i] = W[i]->rows;
    }
    s.n = n;
    return ZM_OK;
}
/* Expert matrices (gate, and up when U) and k slots. */
static zm_status check_experts(const zm_gpu_mat *G, const zm_gpu_mat *U, int k, const char *what) {
    ZM_TRY(check_mat(G, what));
    if (U) {
        ZM_TRY(check_mat(U, what));
        if (U->dtype != G->dtype || U->rows != G->rows || U->cols != G->cols || U->n_mat != G->n_mat)
            return zm__err(ZM_ERR_SHAPE, "%s: gate and up matrices differ", what);
    }
    if (k < 1 || k > 64) return zm__err(ZM_ERR_RANGE, "%s: k = %d (1..64)", what, k);
    return ZM_OK;
}
/* Byte offset of block `blk` in q and its scale pointer. */
static const void *q_at(const zm_gpu_mat *W, int64_t blk) {
    int64_t per = W->dtype == ZM_Q4_0 ? 16 : W->dtype == ZM_Q8_0 ? 32 : 32 * (W->dtype == ZM_F32 ? 4 : 2);
    return (const char *)W->q + blk * per;
}
static const uint16_t *d_at(const zm_gpu_mat *W, int64_t blk) { return W->d ? W->d + blk : nullptr; }

/* A positive integer knob, else 0. */
static int64_t knob(const char *var) {
    const long long v = zm__env_ll(var, 0);
    return v > 0 ? v : 0;
}

/* Contiguous chunks of items per block: at most as many blocks as fit on
 * the SMs at once (occupancy, capped by blocks_per_sm()), and at least
 * min_items per block so no warp idles. force > 0: that many items a block
 * (measuring: ZMLX_CUDA_MV_CHUNK for dense matrices of up to 65536 rows,
 * ZMLX_CUDA_EX_CHUNK for gate/up). */
template <typename K> static void plan_chunks(K kern, size_t smem, int64_t total, int64_t min_items, int *grid,
                                              int64_t *chunk, int cap, int64_t force = 0) {
    if (force > 0) {
        *chunk = force;
        *grid = (int)((total + force - 1) / force);
        return;
    }
    int occ = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, ZM_BLOCK, smem) != cudaSuccess || occ < 1) occ = 1;
    if (occ > cap) occ = cap;
    int64_t g = (int64_t)occ * zm__sm_count();
    int64_t c = (total + g - 1) / g;
    c = (c + min_items - 1) / min_items * min_items;
    if (c < 1) c = 1;
    *chunk = c;
    *grid = (int)((total + c - 1) / c);
}

template <typename K> static zm_status smem_ok(K kern, size_t smem, const char *what) {
    if (smem > 48 * 1024) {
        if (smem > 227 * 1024) return zm__err(ZM_ERR_SHAPE, "%s: %zu bytes of shared memory needed", what, smem);
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    }
    return ZM_OK;
}

/* A dense block's rows are a multiple of ZMLX_CUDA_MV_MIN rows per warp
 * group: default 1 (o_proj's 2048 rows over 256 blocks instead of 128:
 * Q4_0 408.9 vs 392.2 / 394.3 tok/s on the H100, same process; Q8_0 since
 * session 9: device loop 363.0 vs 357.2 with 2); 0: any number. */
static int64_t mv_min_rows(int lpr) {
    const long long m = zm__env_ll("ZMLX_CUDA_MV_MIN", 1);
    return m <= 0 ? 1 : (int64_t)m * (ZM_BLOCK / 32) * (32 / lpr);
}

/* The wide dense path and the fixed-shape one, counted (tests: a silent
 * fallback fails). */
static int wide_launches, fixed_launches;
extern "C" int zm_gpu_wide_launches(void) { return wide_launches; }
extern "C" int zm_gpu_fixed_launches(void) { return fixed_launches; }

static zm_status matvec_segs(MvSeg &s, zm_dtype dt, int64_t cols, const float *x, const float *nw,
                             float eps, cudaStream_t st) {
    int nb = (int)(cols / 32), lpr = zm__lpr(nb);
    int64_t total = 0;
    for (int i = 0; i < s.n; i++) total += s.rows[i];
    int grid;
    int64_t chunk;
    size_t smem = cols * 4;
    if (s.n == 1 && (dt == ZM_Q4_0 || dt == ZM_Q8_0) && (nb == 32 || nb == 64) && zm__env_ll("ZMLX_CUDA_WIDE", 1) &&
        total >= zm__env_ll("ZMLX_CUDA_WIDE_MIN", 65536)) {
        const bool q4 = dt == ZM_Q4_0;
        auto kern = q4 ? (nb == 32 ? k_matvec_wide<ZM_Q4_0, 1> : k_matvec_wide<ZM_Q4_0, 2>)
                       : (nb == 32 ? k_matvec_wide<ZM_Q8_0, 1> : k_matvec_wide<ZM_Q8_0, 2>);
        plan_chunks(kern, 0, total, (ZM_BLOCK / 32) * (q4 ? WideRows<ZM_Q4_0>::v : WideRows<ZM_Q8_0>::v), &grid, &chunk, 2);
        zm__launch(kern, grid, ZM_BLOCK, 0, st, s.q[0], s.d[0], s.res[0], s.y[0], x, nw, eps, total, chunk);
        wide_launches++;
        return zm__cuda_ck("k_matvec_wide");
    }
    ZM_DISPATCH_DT(dt, {
        ZM_TRY(smem_ok(k_matvec<DT>, smem, "matvec"));
        plan_chunks(k_matvec<DT>, smem, total, mv_min_rows(lpr), &grid, &chunk, blocks_per_sm(),
                    total <= 65536 ? knob("ZMLX_CUDA_MV_CHUNK") : 0);
        /* Q4_0: the layers' shapes (2048 and 4096 columns) as compile-time
         * constants, the same bits (ZMLX_CUDA_MV_FIXED=0: the general
         * kernel). H100, same process: 475.0-476.3 vs 472.0-473.5 tok/s;
         * Q8_0 measured 397.8-398.4 vs 397.4-400.0, so it keeps the general */
        constexpr bool fx = DT == ZM_Q4_0;
        auto kern = k_matvec<DT>;
        if (fx && lpr == 32 && (nb == 64 || nb == 128) && zm__env_ll("ZMLX_CUDA_MV_FIXED", 1)) {
            kern = nb == 64 ? k_matvec<DT, fx ? 64 : 0> : k_matvec<DT, fx ? 128 : 0>;
            fixed_launches++;
        }
        zm__launch(kern, grid, ZM_BLOCK, smem, st, s, nb, lpr, x, nw, eps, total, chunk);
    });
    return zm__cuda_ck("k_matvec");
}

extern "C" zm_status zm_gpu_matvec(const zm_gpu_mat *W, int64_t mat, const float *x,
                                    const float *norm_w, float eps, const float *res, float *y,
                                    void *stream) {
    ZM_TRY(check_mat(W, "zm_gpu_matvec"));
    if (mat < 0 || mat >= W->n_mat) return zm__err(ZM_ERR_RANGE, "zm_gpu_matvec: matrix %lld of %lld", (long long)mat, (long long)W->n_mat);
    MvSeg s = {};
    int64_t nb = W->cols / 32, blk = mat * W->rows * nb;
    s.q[0] = q_at(W, blk); s.d[0] = d_at(W, blk); s.y[0] = y; s.res[0] = res; s.rows[0] = W->rows; s.n = 1;
    return matvec_segs(s, W->dtype, W->cols, x, norm_w, eps, (cudaStream_t)stream);
}

extern "C" zm_status zm_gpu_matvec_multi(int n, const zm_gpu_mat *const *W, const float *x,
                                          const float *norm_w, float eps, float *const *y,
                                          void *stream) {
    MvSeg s;
    ZM_TRY(fill_segs(s, n, W, nullptr, y, "zm_gpu_matvec_multi"));
    return matvec_segs(s, W[0]->dtype, W[0]->cols, x, norm_w, eps, (cudaStream_t)stream);
}

extern "C" zm_status zm_gpu_matmul(const zm_gpu_mat *W, int64_t mat, int64_t n_tok, const float *x,
                                    const float *res, float *y, void *stream) {
    ZM_TRY(check_mat(W, "zm_gpu_matmul"));
    if (mat < 0 || mat >= W->n_mat) return zm__err(ZM_ERR_RANGE, "zm_gpu_matmul: matrix %lld", (long long)mat);
    if (n_tok < 1 || n_tok > 65535) return zm__err(ZM_ERR_RANGE, "zm_gpu_matmul: %lld tokens", (long long)n_tok);
    int nb = (int)(W->cols / 32), lpr = zm__lpr(nb);
    int64_t blk = mat * W->rows * nb;
    int64_t per = (ZM_BLOCK / 32) * (32 / lpr);
    int64_t gx = (W->rows + per - 1) / per;
    if (gx > 4 * zm__sm_count()) gx = 4 * zm__sm_count();
    dim3 grid((unsigned)gx, (unsigned)n_tok);
    size_t smem = W->cols * 4;
    cudaStream_t st = (cudaStream_t)stream;
    ZM_DISPATCH_DT(W->dtype, {
        ZM_TRY(smem_ok(k_matmul<DT>, smem, "matmul"));
        zm__launch(k_matmul<DT>, grid, ZM_BLOCK, smem, st, q_at(W, blk), d_at(W, blk), W->rows, nb, lpr, x, res, y);
    });
    return zm__cuda_ck("k_matmul");
}

static zm_status expert_launch(const zm_gpu_mat *G, const zm_gpu_mat *U, const int32_t *ids, int64_t n_tok, int k,
                               const float *x, int x_per_slot, const float *nw, float eps, float *y,
                               cudaStream_t st, const char *what) {
    ZM_TRY(check_experts(G, U, k, what));
    if (n_tok < 1 || n_tok > 65535) return zm__err(ZM_ERR_RANGE, "%s: %lld tokens", what, (long long)n_tok);
    int nb = (int)(G->cols / 32), lpr = zm__lpr(nb);
    int gx;
    int64_t chunk;
    size_t smem = (size_t)G->cols * 4 * (x_per_slot ? k : 1);
    const int64_t items = (int64_t)k * G->rows, min_items = (ZM_BLOCK / 32) * (32 / lpr);
    ZM_DISPATCH_DT(G->dtype, {
        if (U) {
            /* Q4_0 / Q8_0 gate/up of 2048 columns: the fixed-shape instance
             * (the same bits; ZMLX_CUDA_EX_FIXED=0: the general one) */
            constexpr bool fx = PreOk<DT>::v;
            auto kern = k_expert<DT, true>;
            if (fx && lpr == 32 && nb == 64 && zm__env_ll("ZMLX_CUDA_EX_FIXED", 1)) {
                kern = k_expert<DT, true, fx ? 64 : 0>;
                fixed_launches++;
            }
            ZM_TRY(smem_ok(kern, smem, what));
            plan_chunks(kern, smem, items, min_items, &gx, &chunk, expert_blocks_per_sm(), knob("ZMLX_CUDA_EX_CHUNK"));
            dim3 grid(gx, (unsigned)n_tok);
            zm__launch(kern, grid, ZM_BLOCK, smem, st, G->q, G->d, U->q, U->d, G->rows, nb, lpr, ids, k, x, x_per_slot, nw, eps, y, chunk);
        } else {
            ZM_TRY(smem_ok(k_expert<DT, false>, smem, what));
            plan_chunks(k_expert<DT, false>, smem, items, min_items, &gx, &chunk, expert_blocks_per_sm());
            dim3 grid(gx, (unsigned)n_tok);
            zm__launch(k_expert<DT, false>, grid, ZM_BLOCK, smem, st, G->q, G->d, nullptr, nullptr, G->rows, nb, lpr, ids, k, x, x_per_slot, nw, eps, y, chunk);
        }
    });
    return zm__cuda_ck(what);
}

extern "C" zm_status zm_gpu_expert_matvec(const zm_gpu_mat *W, const int32_t *ids, int64_t n_tok,
                                           int k, const float *x, int x_per_slot,
                                           const float *norm_w, float eps, float *y, void *stream) {
    if (x_per_slot && norm_w) return zm__err(ZM_ERR_INVALID, "zm_gpu_expert_matvec: a norm needs a shared input");
    return expert_launch(W, nullptr, ids, n_tok, k, x, x_per_slot, norm_w, eps, y, (cudaStream_t)stream, "zm_gpu_expert_matvec");
}

extern "C" zm_status zm_gpu_gather_qmm_swiglu(const zm_gpu_mat *G, const zm_gpu_mat *U,
                                               const int32_t *ids, int64_t n_tok, int k,
                                               const float *x, const float *norm_w, float eps,
                                               float *h, void *stream) {
    if (!U) return zm__err(ZM_ERR_INVALID, "zm_gpu_gather_qmm_swiglu: no up matrix");
    return expert_launch(G, U, ids, n_tok, k, x, 0, norm_w, eps, h, (cudaStream_t)stream, "zm_gpu_gather_qmm_swiglu");
}

/* k_combine_bulk (ZMLX_CUDA_BULK, default 1) where the rows can be
 * bulk-copied: Q4_0 / Q8_0, scale rows a multiple of 16 bytes, aligned
 * bases; rows a block ZMLX_CUDA_BULK_ROWS (default 4: Q4_0 449.8 vs 445.6,
 * Q8_0 380.3 vs 365.8 tok/s against k_combine, H100; 2, 3, 6 and 16 were
 * slower). Counted, so tests can tell the path ran. */
static int bulk_launches;
extern "C" int zm_gpu_bulk_launches(void) { return bulk_launches; }
static bool bulk_rows_ok(const zm_gpu_mat *W) { /* bulk copies and mbarriers need sm_90: elsewhere k_combine */
    return zm__sm90() && (W->dtype == ZM_Q4_0 || W->dtype == ZM_Q8_0) && W->d && (W->cols / 32) % 8 == 0 &&
           ((uintptr_t)W->q & 15) == 0 && ((uintptr_t)W->d & 15) == 0;
}
static int bulk_crows(void) {
    const long long c = zm__env_ll("ZMLX_CUDA_BULK_ROWS", 4);
    return c < 1 || c > 256 ? 4 : (int)c;
}

extern "C" zm_status zm_gpu_gather_qmm_combine(const zm_gpu_mat *D, const int32_t *ids,
                                                const float *w, int64_t n_tok, int k,
                                                const float *h, const float *res, float *y,
                                                int early, void *stream) {
    ZM_TRY(check_experts(D, nullptr, k, "zm_gpu_gather_qmm_combine"));
    if (n_tok < 1 || n_tok > 65535) return zm__err(ZM_ERR_RANGE, "zm_gpu_gather_qmm_combine: %lld tokens", (long long)n_tok);
    int nb = (int)(D->cols / 32), lpr = zm__lpr(nb);
    /* rows per block: ZMLX_CUDA_CB_ROWS (default 4: one pass per warp and
     * twice the blocks of 8, measured 5 % faster end to end on the H100) */
    long long crows = zm__env_ll("ZMLX_CUDA_CB_ROWS", 4);
    if (crows < 1 || crows > 1024) crows = 4;
    int64_t g = (D->rows + crows - 1) / crows;
    size_t smem = (size_t)D->cols * 4 * k;
    cudaStream_t st = (cudaStream_t)stream;
    const int cr = bulk_crows();
    const size_t sm = (size_t)(k * D->cols * 4 + (int64_t)k * cr * (zm_gpu_mat_row_bytes(D) + 4));
    if (zm__env_ll("ZMLX_CUDA_BULK", 1) && bulk_rows_ok(D) && sm <= 227 * 1024) {
        auto kern = D->dtype == ZM_Q4_0 ? k_combine_bulk<ZM_Q4_0> : k_combine_bulk<ZM_Q8_0>;
        /* down rows of 768 columns (8 lanes a row): the fixed-shape
         * instance (the same bits; ZMLX_CUDA_CB_FIXED=0: the general one) */
        if (nb == 24 && lpr == 8 && zm__env_ll("ZMLX_CUDA_CB_FIXED", 1)) {
            kern = D->dtype == ZM_Q4_0 ? k_combine_bulk<ZM_Q4_0, 24, 8> : k_combine_bulk<ZM_Q8_0, 24, 8>;
            fixed_launches++;
        }
        ZM_TRY(smem_ok(kern, sm, "gather_qmm_combine"));
        zm__launch(kern, dim3((unsigned)((D->rows + cr - 1) / cr), (unsigned)n_tok), ZM_BLOCK, sm, st, D->q, D->d, D->rows, nb,
                   lpr, ids, w, k, h, res, y, cr, early);
        bulk_launches++;
        return zm__cuda_ck("k_combine_bulk");
    }
    ZM_DISPATCH_DT(D->dtype, {
        auto kern = DT == ZM_Q8_0 ? k_combine4<DT> : k_combine<DT>;
        ZM_TRY(smem_ok(kern, smem, "gather_qmm_combine"));
        zm__launch(kern, dim3((unsigned)g, (unsigned)n_tok), ZM_BLOCK, smem, st, D->q, D->d, D->rows, nb, lpr, ids, w, k, h, res, y, crows, early);
    });
    return zm__cuda_ck("k_combine");
}

extern "C" zm_status zm_gpu_router_gate(const zm_gpu_mat *W, const float *x, const float *norm_w, float eps,
                                         float *logits, int *counter, int k, int renorm, int32_t *ids, float *w,
                                         void *stream) {
    ZM_TRY(check_mat(W, "zm_gpu_router_gate"));
    const int n = (int)W->rows;
    if (W->rows < 1 || W->rows > 32 * ZM_WMAX) return zm__err(ZM_ERR_RANGE, "zm_gpu_router_gate: %lld experts (1..1024)", (long long)W->rows);
    if (k < 1 || k > 32 || k > n) return zm__err(ZM_ERR_RANGE, "zm_gpu_router_gate: k = %d of %d", k, n);
    /* rows spread over all SMs (a block per row group when there are more
     * SMs than rows): the weights stream through many SMs at once */
    const int nb = (int)(W->cols / 32), lpr = zm__lpr(nb), gpw = 32 / lpr;
    int per = (n + zm__sm_count() - 1) / zm__sm_count();
    per = (per + gpw - 1) / gpw * gpw;
    if (per > (ZM_BLOCK / 32) * gpw) per = (ZM_BLOCK / 32) * gpw;
    const unsigned grid = (unsigned)((n + per - 1) / per);
    const size_t smem = W->cols * 4;
    cudaStream_t st = (cudaStream_t)stream;
    ZM_DISPATCH_DT(W->dtype, {
        ZM_NPL(n, {
            auto kern = pre_mask() & 4 ? k_router_gate<DT, NPL, true> : k_router_gate<DT, NPL, false>;
            /* an F32 router of 2048 columns with its weights held ahead:
             * the fixed-shape instance (the same bits; ZMLX_CUDA_RT_FIXED=0:
             * the general one) */
            if (DT == ZM_F32 && nb == 64 && lpr == 32 && (pre_mask() & 4) && zm__env_ll("ZMLX_CUDA_RT_FIXED", 1)) {
                kern = k_router_gate<DT, NPL, true, DT == ZM_F32 ? 64 : 0>;
                fixed_launches++;
            }
            ZM_TRY(smem_ok(kern, smem, "router_gate"));
            zm__launch(kern, grid, ZM_BLOCK, smem, st, W->q, W->d, n, nb, lpr, per, x, norm_w, eps, logits, counter, k, renorm,
                       ids, w);
        });
    });
    return zm__cuda_ck("k_router_gate");
}

// ---------------------------------------------------------------------------
// Steps of the persistent kernel (persist.cu): the same checks as the
// launchers above, the arguments recorded instead of launched.
extern "C" zm_status zm_gpu_step_matvec(zm_gpu_step *s, int n, const zm_gpu_mat *const *W, const float *x,
                                         const float *norm_w, float eps, const float *const *res, float *const *y) {
    if (!x) return zm__err(ZM_ERR_INVALID, "matvec step: no input");
    memset(s, 0, sizeof *s);
    ZM_TRY(fill_segs(s->s, n, W, res, y, "matvec step"));
    for (int i = 0; i < n; i++) s->total += W[i]->rows;
    s->op = ZM_PS_MATVEC;
    s->dt = W[0]->dtype;
    s->nb = (int)(W[0]->cols / 32);
    s->lpr = zm__lpr(s->nb);
    s->x = x;
    s->nw = norm_w;
    s->eps = eps;
    return ZM_OK;
}

extern "C" zm_status zm_gpu_step_gate(zm_gpu_step *s, const float *logits, int n, int k, int renorm, int32_t *ids,
                                       float *w) {
    if (n < 1 || n > 32 * ZM_WMAX) return zm__err(ZM_ERR_RANGE, "gate step: %d logits (1..1024)", n);
    if (k < 1 || k > 32 || k > n) return zm__err(ZM_ERR_RANGE, "gate step: k = %d of %d", k, n);
    if (!logits || !ids || !w) return zm__err(ZM_ERR_INVALID, "gate step: missing buffer");
    memset(s, 0, sizeof *s);
    s->op = ZM_PS_GATE;
    s->x = logits;
    s->n_exp = n;
    s->k = k;
    s->renorm = renorm;
    s->ids_out = ids;
    s->w_out = w;
    return ZM_OK;
}

extern "C" zm_status zm_gpu_step_swiglu(zm_gpu_step *s, const zm_gpu_mat *G, const zm_gpu_mat *U, const int32_t *ids,
                                         int k, const float *x, const float *norm_w, float eps, float *h) {
    const char *what = "swiglu step";
    if (!U) return zm__err(ZM_ERR_INVALID, "%s: no up matrix", what);
    ZM_TRY(check_experts(G, U, k, what));
    if (!ids || !x || !h) return zm__err(ZM_ERR_INVALID, "%s: missing buffer", what);
    memset(s, 0, sizeof *s);
    s->op = ZM_PS_SWIGLU;
    s->dt = G->dtype;
    s->nb = (int)(G->cols / 32);
    s->lpr = zm__lpr(s->nb);
    s->k = k;
    s->rows = G->rows;
    s->total = (int64_t)k * G->rows;
    s->s.q[0] = G->q; s->s.d[0] = G->d;
    s->s.q[1] = U->q; s->s.d[1] = U->d;
    s->s.y[0] = h;
    s->s.n = 2;
    s->ids = ids;
    s->x = x;
    s->nw = norm_w;
    s->eps = eps;
    return ZM_OK;
}

extern "C" zm_status zm_gpu_step_combine(zm_gpu_step *s, const zm_gpu_mat *D, const int32_t *ids, const float *w, int k,
                                          const float *h, const float *res, float *y) {
    ZM_TRY(check_experts(D, nullptr, k, "combine step"));
    if (!ids || !w || !h || !y) return zm__err(ZM_ERR_INVALID, "combine step: missing buffer");
    if ((size_t)D->cols * 4 * k > 200 * 1024) return zm__err(ZM_ERR_SHAPE, "combine step: %d x %lld inputs exceed shared memory", k, (long long)D->cols);
    memset(s, 0, sizeof *s);
    s->op = ZM_PS_COMBINE;
    s->dt = D->dtype;
    s->nb = (int)(D->cols / 32);
    s->lpr = zm__lpr(s->nb);
    s->k = k;
    s->rows = D->rows;
    s->total = D->rows;
    s->s.q[0] = D->q; s->s.d[0] = D->d;
    s->s.res[0] = res;
    s->s.y[0] = y;
    s->s.n = 1;
    s->ids = ids;
    s->w = w;
    s->x = h;
    return ZM_OK;
}
