/* The row bodies of the matrix-vector kernels: a block's share of a dense
 * matvec, of the per-expert products (gate+up+SwiGLU or plain) and of the
 * down+combine, each over an item range [start, end) the caller chooses.
 * The one-op kernels (matvec.cu) and the persistent decode kernel
 * (persist.cu) both call these, so every output is computed by the same
 * code in the same order in both: bit-identical by construction. */
#pragma once
#include "kernels/cuda/gating.cuh"

typedef zm_gpu_segs MvSeg;

#define ZM_COMBINE_ROWS 8 /* rows of the down projection per cb_rows call */

// ---------------------------------------------------------------------------
// Dense: rows of all segments laid end to end.

/* Thread i < s.n asks L2 for segment i's part of rows [start, end). */
template <int DT>
__device__ __forceinline__ void mv_prefetch(const MvSeg &s, int nb, int64_t start, int64_t end, int i) {
    if (i >= s.n) return;
    int64_t b0 = 0;
    for (int j = 0; j < i; j++) b0 += s.rows[j];
    const int64_t lo = max(start, b0), hi = min(end, b0 + s.rows[i]);
    if (lo < hi) {
        prefetch_l2((const char *)s.q[i] + (lo - b0) * nb * BlkBytes<DT>::v, (hi - lo) * nb * BlkBytes<DT>::v);
        if (s.d[i]) prefetch_l2(s.d[i] + (lo - b0) * nb, (hi - lo) * nb * 2);
    }
}

/* Rows [start, end) against x in swizzled shared memory; two rows per warp
 * pass (row and row + step), their loads in flight together. NB > 0: the
 * fixed-shape instance (fixed_shape: nb == NB, lpr == 32). */
template <int DT, int NB = 0>
__device__ __forceinline__ void mv_rows(const MvSeg &s, int nb, int lpr, const float4 *xs, int64_t start,
                                        int64_t end) {
    fixed_shape<NB>(nb, lpr);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int grp = lane / lpr, sub = lane % lpr, gpw = 32 / lpr;
    const int64_t step = (ZM_BLOCK / 32) * gpw;
    for (int64_t row = start + warp * gpw + grp; row - grp < end; row += 2 * step) {
        const int64_t row2 = row + step;
        const bool ok = row < end, ok2 = row2 < end;
        int seg = 0, seg2 = 0;
        int64_t r = ok ? row : 0, r2 = ok2 ? row2 : 0;
        while (seg < s.n - 1 && r >= s.rows[seg]) r -= s.rows[seg++];
        while (seg2 < s.n - 1 && r2 >= s.rows[seg2]) r2 -= s.rows[seg2++];
        float acc = 0.f, acc2 = 0.f;
        if (ok2) row_dot2<DT>(s.q[seg], s.d[seg], r * nb, s.q[seg2], s.d[seg2], r2 * nb, nb, xs, xs, sub, lpr, acc, acc2);
        else if (ok) acc = row_dot<DT>(s.q[seg], s.d[seg], r * nb, nb, xs, sub, lpr);
        acc = group_sum(acc, lpr);
        acc2 = group_sum(acc2, lpr);
        if (ok && sub == 0) s.y[seg][r] = s.res[seg] ? s.res[seg][r] + acc : acc;
        if (ok2 && sub == 0) s.y[seg2][r2] = s.res[seg2] ? s.res[seg2][r2] + acc2 : acc2;
    }
}

// ---------------------------------------------------------------------------
// Experts: item o = j*rows + r (slot j, row r of expert ids[j]).

/* Slot j's part of items [start, end) of expert e, asked of L2. */
template <int DT, bool SWIGLU>
__device__ __forceinline__ void ex_prefetch(const void *qg, const uint16_t *dg, const void *qu, const uint16_t *du,
                                            int64_t rows, int nb, int j, int32_t e, int64_t start, int64_t end) {
    const int64_t lo = max(start, (int64_t)j * rows), hi = min(end, (int64_t)(j + 1) * rows);
    if (lo >= hi) return;
    const int64_t rb = ((int64_t)e * rows + (lo - (int64_t)j * rows)) * nb, n = (hi - lo) * nb;
    prefetch_l2((const char *)qg + rb * BlkBytes<DT>::v, n * BlkBytes<DT>::v);
    if (dg) prefetch_l2(dg + rb, n * 2);
    if (SWIGLU) {
        prefetch_l2((const char *)qu + rb * BlkBytes<DT>::v, n * BlkBytes<DT>::v);
        if (du) prefetch_l2(du + rb, n * 2);
    }
}

/* SWIGLU: y[o] = silu(G.x) * (U.x), else y[o] = G.x; sid: the k expert ids
 * (shared memory); x_per_slot: slot j reads its own x at xs + j*cols/4.
 * NB > 0: the fixed-shape instance (as mv_rows). */
template <int DT, bool SWIGLU, int NB = 0>
__device__ __forceinline__ void ex_rows(const void *qg, const uint16_t *dg, const void *qu, const uint16_t *du,
                                        int64_t rows, int nb, int lpr, const int32_t *sid, const float4 *xs,
                                        int x_per_slot, float *y, int64_t start, int64_t end) {
    fixed_shape<NB>(nb, lpr);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int grp = lane / lpr, sub = lane % lpr, gpw = 32 / lpr, cols = nb * 32;
    for (int64_t o = start + warp * gpw + grp; o - grp < end; o += (ZM_BLOCK / 32) * gpw) {
        const bool ok = o < end;
        const int j = ok ? (int)(o / rows) : 0;
        const int64_t r = ok ? o - (int64_t)j * rows : 0;
        const int64_t rb = ((int64_t)sid[j] * rows + r) * nb;
        const float4 *xj = x_per_slot ? xs + (int64_t)j * cols / 4 : xs;
        float g = 0.f, u = 0.f;
        if (ok) {
            if (SWIGLU) row_dot2<DT>(qg, dg, rb, qu, du, rb, nb, xj, xj, sub, lpr, g, u);
            else g = row_dot<DT>(qg, dg, rb, nb, xj, sub, lpr);
        }
        g = group_sum(g, lpr);
        if (SWIGLU) u = group_sum(u, lpr);
        if (ok && sub == 0) y[o] = SWIGLU ? __fmul_rn(silu_f(g), u) : g;
    }
}

// ---------------------------------------------------------------------------
// Down projection of k experts, weighted sum in slot order, residual:
// y[r] = res[r] + (((0 + w0*d0) + w1*d1) + ...), each d_j a full row dot
// (bit-identical to the stock chain expert_matvec -> mul -> sum -> add).

/* Rows [start, end) of expert e (slot's share), asked of L2. */
template <int DT>
__device__ __forceinline__ void cb_prefetch(const void *q, const uint16_t *d, int64_t rows, int nb, int32_t e,
                                            int64_t start, int64_t end) {
    const int64_t rb = ((int64_t)e * rows + start) * nb, n = (end - start) * nb;
    prefetch_l2((const char *)q + rb * BlkBytes<DT>::v, n * BlkBytes<DT>::v);
    if (d) prefetch_l2(d + rb, n * 2);
}

/* Thread i < n: y[start+i] = res[start+i] + the slot-order sum of
 * sw[j] * part[j*stride + i] (every combine ends here: the same bits). */
__device__ __forceinline__ void cb_sum(const float *part, int stride, const float *sw, int k, int n, const float *res,
                                       float *y, int64_t start) {
    if ((int)threadIdx.x >= n) return;
    const int i = threadIdx.x;
    float acc = 0.f;
    for (int j = 0; j < k; j++) acc = __fadd_rn(acc, __fmul_rn(sw[j], part[(size_t)j * stride + i]));
    y[start + i] = res ? __fadd_rn(res[start + i], acc) : acc;
}

/* The first item of this lane in cb_rows (slot warp, row start + grp),
 * its first four blocks into registers; e: that slot's expert id. */
template <int DT>
__device__ __forceinline__ void cb_pre_load(RowPre<DT> &p, const void *q, const uint16_t *d, int64_t rows, int nb,
                                            int lpr, int32_t e, int64_t start, int64_t end) {
    const int lane = threadIdx.x & 31, grp = lane / lpr, sub = lane % lpr;
    if (grp < ZM_COMBINE_ROWS && start + grp < end) row_pre_load<DT>(p, q, d, ((int64_t)e * rows + start + grp) * nb, nb, sub, lpr);
}

/* Rows [start, end), end - start <= ZM_COMBINE_ROWS, of the combine; the k
 * hidden vectors in swizzled shared memory (slot j at xs + j*cols/4), ids
 * and weights in sid/sw. Warp w takes slots w, w+8, ...; the k dots meet in
 * part and are summed in slot order. Called by the whole block (it syncs);
 * part may be reused once it returns. */
template <int DT, bool PRE = false>
__device__ __forceinline__ void cb_rows(const void *q, const uint16_t *d, int64_t rows, int nb, int lpr,
                                        const int32_t *sid, const float *sw, int k, const float4 *xs,
                                        const float *res, float *y, int64_t start, int64_t end,
                                        float (*part)[ZM_COMBINE_ROWS], const RowPre<DT> *pre = nullptr) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int grp = lane / lpr, sub = lane % lpr, gpw = 32 / lpr, cols = nb * 32;
    float d0 = 0.f; /* PRE: this lane's first item (slot warp, row start + grp) */
    if (PRE && warp < k && grp < ZM_COMBINE_ROWS && start + grp < end)
        d0 = row_dot_pre<DT>(*pre, q, d, ((int64_t)sid[warp] * rows + start + grp) * nb, nb,
                             xs + (int64_t)warp * cols / 4, sub, lpr);
    for (int j = warp; j < k; j += ZM_BLOCK / 32) {
        const float4 *xj = xs + (int64_t)j * cols / 4;
        for (int i = grp; i - grp < ZM_COMBINE_ROWS; i += gpw) {
            const int64_t row = start + i;
            const bool ok = i < ZM_COMBINE_ROWS && row < end;
            float dj = !ok ? 0.f
                       : PRE && j == warp && i == grp ? d0
                                                      : row_dot<DT>(q, d, ((int64_t)sid[j] * rows + row) * nb, nb, xj, sub, lpr);
            dj = group_sum(dj, lpr);
            if (ok && sub == 0) part[j][i] = dj;
        }
    }
    __syncthreads();
    cb_sum(&part[0][0], ZM_COMBINE_ROWS, sw, k, (int)(end - start), res, y, start);
    __syncthreads();
}
