/* Attention over the KV cache. Decode: flash-decoding, one block per
 * (kv head, split of the sequence, group of 4 q heads), a warp per q head;
 * partial (max, sum, acc) per split go to a workspace and the last block of
 * a (kv head, head group) to finish (atomic counter, reset by that block)
 * merges them. The split plan is fixed at launch (so a
 * captured graph replays) and the range per split is derived from the
 * position read on the device. On sm_90 the splits of a (kv head, head
 * group) run as one thread-block cluster and merge through distributed
 * shared memory instead (no workspace, fence or atomic; the same bits;
 * ZMLX_ATT_CLUSTER=0: the workspace). Prefill: a block per (query, head).
 * Cache layout: [ctx][n_kv][head_dim] f32.
 * Checked against a float64 reference in tests/test_cuda_ops.c. */
#include "kernels/cuda/attn_decode.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZM_ATT_WARPS 4 /* prefill: warps per block */

// ---------------------------------------------------------------------------
// Kernels
/* One item per block (attn_decode.cuh): block (kv head, split, head group);
 * CL: the grid's splits are a cluster (1, n_split, 1). */
#define ZM_ATT_TRN 64 /* TR: the last launches' stamps kept */
__device__ unsigned long long zm_att_tr[ZM_ATT_TRN][32];
__device__ unsigned zm_att_trn;
/* MODE bits: 1 TR (ZMLX_ATT_TRACE, measuring: block (0,0,0) stamps its
 * phases), 2 PU (CL, head_dim <= 128: partials pushed to the merging
 * blocks by st.async; attn_decode_item). */
template <int DPL, bool CL, int MODE = 0>
__global__ void __launch_bounds__(32 * ZM_ATT_HPB)
    k_attn_decode(const float *q, const float *kc, const float *vc, int n_head, int n_kv, int d,
                  int n_split, float scale, const int32_t *pos, float *pm, float *pl, float *pacc,
                  int *counter, float *out, zm_gpu_qkn qkn, int minr, int early) {
    constexpr bool TR = MODE & 1, PU = CL && (MODE & 2) && DPL <= 4;
    unsigned long long *ts = nullptr;
    if (TR && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && threadIdx.x == 0)
        ts = zm_att_tr[atomicAdd(&zm_att_trn, 1u) % ZM_ATT_TRN];
    att_stamp(ts, 0);
    __shared__ AttnSmem S;
    AttnPart<DPL> *X = nullptr;
    AttnPush *Y = nullptr;
    if constexpr (PU) {
        __shared__ AttnPush push;
        Y = &push;
    } else if constexpr (CL) {
        __shared__ AttnPart<DPL> part;
        X = &part;
    }
    /* the cache rows before p are static: read them before waiting on the
     * kernel that produces q, k and v (ZMLX_ATT_EARLY=0: after) */
    AttnPre<DPL> P;
    if (early) {
        attn_preload<DPL>(P, kc, vc, n_kv, d, n_split, pos, blockIdx.x, blockIdx.y, minr);
        if (PU) attn_push_arm(Y, P.n_act, n_head / n_kv, d, DPL);
        if (PU) attn_cluster_start(P.n_act);
        /* an idle split (short context) leaves without waiting: at least
         * one split of every head group waits, so this grid still
         * completes after its predecessor */
        if ((int)blockIdx.y >= P.n_act) {
            /* CL: its peers still meet it at the cluster barriers; it lets
             * the successor launch as an exit would */
            if (CL) {
                pdl_launch();
                if (!PU) attn_cluster_idle(P.n_act);
            }
            return;
        }
    }
    ZM_PDL_ENTRY();
    att_stamp(ts, 1);
    if (!early) {
        attn_preload<DPL>(P, kc, vc, n_kv, d, n_split, pos, blockIdx.x, blockIdx.y, minr);
        if (PU) attn_push_arm(Y, P.n_act, n_head / n_kv, d, DPL);
        if (PU) attn_cluster_start(P.n_act);
    }
    attn_decode_item<DPL, CL, PU>(q, kc, vc, n_head, n_kv, d, n_split, scale, pm, pl, pacc, counter, out, qkn,
                                  blockIdx.x, blockIdx.y, blockIdx.z, gridDim.z, threadIdx.x >> 5, 1, S, P, X, ts, Y);
}

/* Prefill: block per (token t, head h); query at position pos[0]+t attends
 * rows 0..pos[0]+t. Warps split the rows, merge in shared memory. */
template <int DPL>
__global__ void __launch_bounds__(32 * ZM_ATT_WARPS)
    k_attn_prefill(const float *q, const float *kc, const float *vc, int n_head, int n_kv, int d,
                   float scale, const int32_t *pos, float *out) {
    ZM_PDL_ENTRY();
    const int h = blockIdx.x, kvh = h / (n_head / n_kv);
    const int64_t t = blockIdx.y, L = (int64_t)pos[t] + 1;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __shared__ float sm[ZM_ATT_WARPS], sl[ZM_ATT_WARPS], sacc[ZM_ATT_WARPS][32 * DPL];
    float qr[DPL], acc[DPL], m = -INFINITY, l = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int c = lane + 32 * i;
        qr[i] = c < d ? q[(t * n_head + h) * d + c] : 0.f;
        acc[i] = 0.f;
    }
    for (int64_t r = warp; r < L; r += ZM_ATT_WARPS) {
        const int64_t base = (r * n_kv + kvh) * d;
        float s = 0.f, vr[DPL];
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            s = fmaf(qr[i], c < d ? kc[base + c] : 0.f, s);
            vr[i] = c < d ? vc[base + c] : 0.f;
        }
        s = warp_sum(s) * scale;
        const float mn = fmaxf(m, s), corr = expf(m - mn), p = expf(s - mn);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < DPL; i++) acc[i] = acc[i] * corr + p * vr[i];
        m = mn;
    }
    if (lane == 0) { sm[warp] = m; sl[warp] = l; }
#pragma unroll
    for (int i = 0; i < DPL; i++) sacc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        float M = -INFINITY;
        for (int w = 0; w < ZM_ATT_WARPS; w++) M = fmaxf(M, sm[w]);
        float Ls = 0.f, A = 0.f;
        for (int w = 0; w < ZM_ATT_WARPS; w++) {
            const float f = sm[w] == -INFINITY ? 0.f : expf(sm[w] - M);
            Ls += sl[w] * f;
            A += sacc[w][c] * f;
        }
        out[(t * n_head + h) * d + c] = A / Ls;
    }
}

// ---------------------------------------------------------------------------
// Launchers
static int attn_splits(int n_kv, int64_t max_ctx) {
    /* splits per kv head (ZMLX_ATT_SPLITS overrides); never more than
     * max_ctx / 32 */
    long long env = zm__env_ll("ZMLX_ATT_SPLITS", 0);
    if (env < 0) env = 0;
    if (env > ZM_ATT_SMAX) env = ZM_ATT_SMAX;
    /* default: blocks for half the SMs per head group (more splits only
     * add idle blocks at short contexts: 33 per kv head measured 3 % slower
     * than 8 or 16 end to end on the H100) */
    int s = env ? (int)env : (zm__sm_count() + 2 * n_kv - 1) / (2 * n_kv);
    if (!env && s > ZM_ATT_CLMAX) s = ZM_ATT_CLMAX; /* one cluster (16 vs 17 splits: 441.6 vs 442.3 tok/s, the same) */
    int64_t by_len = (max_ctx + 31) / 32;
    if (s > by_len) s = (int)by_len;
    if (s > ZM_ATT_SMAX) s = ZM_ATT_SMAX;
    return s < 1 ? 1 : s;
}

/* Rows per split at least (ZMLX_ATT_MINROWS, default 8: one 8-row group
 * per split at short contexts, the splits in parallel; 32 measured 6 %
 * slower end to end on the H100). */
static int attn_minrows(void) {
    const long long v = zm__env_ll("ZMLX_ATT_MINROWS", 8);
    return v < 1 || v > 4096 ? 8 : (int)v;
}

/* The first K/V rows read before the dependency wait (ZMLX_ATT_EARLY=0:
 * after it, for A/B). */
static int attn_early(void) {
    return zm__env_ll("ZMLX_ATT_EARLY", 1) != 0;
}

/* Whether this GPU runs clusters of c blocks of the decode kernel (sm_90
 * and an SM group with room for c blocks); asked once per size. */
static bool attn_cluster_ok(int c) {
    static signed char ok[ZM_ATT_CLMAX + 1];
    if (!ok[c]) {
        int n = 0;
        bool yes = zm__sm90();
        if (yes) {
            auto kern = k_attn_decode<4, true>;
            if (c > 8) cudaFuncSetAttribute(kern, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
            cudaLaunchConfig_t cfg = {};
            cudaLaunchAttribute at[1];
            cfg.gridDim = dim3(1, c, 1);
            cfg.blockDim = dim3(32 * ZM_ATT_HPB);
            at[0].id = cudaLaunchAttributeClusterDimension;
            at[0].val.clusterDim.x = 1;
            at[0].val.clusterDim.y = c;
            at[0].val.clusterDim.z = 1;
            cfg.attrs = at;
            cfg.numAttrs = 1;
            yes = cudaOccupancyMaxActiveClusters(&n, kern, &cfg) == cudaSuccess && n > 0;
        }
        (void)cudaGetLastError();
        ok[c] = yes ? 1 : -1;
    }
    return ok[c] > 0;
}

/* The decode launchers run the splits of a (kv head, head group) as one
 * thread-block cluster (c = the plan's splits, 2..16), merging through
 * distributed shared memory instead of the workspace: no fence, atomic or
 * L2 round trip, the same bits (H100, Q4_0, 256 tokens, same process:
 * device loop 446.0 vs 441.6 tok/s with the same 16 splits merged through
 * the workspace). ZMLX_ATT_CLUSTER=0: off; =C (2..16): C splits as one
 * cluster whatever the plan. */
static zm_status attn_cluster(int S, int *c) {
    const long long v = zm__env_ll("ZMLX_ATT_CLUSTER", -1);
    if (v > 0 && (v < 2 || v > ZM_ATT_CLMAX)) return zm__err(ZM_ERR_UNSUPPORTED, "ZMLX_ATT_CLUSTER=%lld (0, or 2..%d)", v, ZM_ATT_CLMAX);
    *c = v > 0 ? (int)v : v == 0 || S < 2 || S > ZM_ATT_CLMAX || !attn_cluster_ok(S) ? 0 : S;
    return ZM_OK;
}

static zm_status attn_check(int n_head, int n_kv, int d) {
    if (n_head < 1 || n_kv < 1 || n_head % n_kv) return zm__err(ZM_ERR_SHAPE, "attention: %d heads over %d kv heads", n_head, n_kv);
    if (d < 1 || d > 256) return zm__err(ZM_ERR_UNSUPPORTED, "attention: head_dim %d (1..256)", d);
    return ZM_OK;
}

extern "C" int64_t zm_gpu_attention_ws_bytes(int n_head, int n_kv, int head_dim, int64_t max_ctx) {
    if (n_kv < 1) return 0;
    int64_t s = attn_splits(n_kv, max_ctx);
    return 256 + (int64_t)n_head * s * (head_dim + 2) * 4;
}

#define ZM_ATT_DPL(d, ...)                                                                         \
    if (d > 128) { constexpr int DPL = 8; __VA_ARGS__; }                                             \
    else ZM_ATT_DPL128(d, __VA_ARGS__)

/* The split plan and workspace layout every decode attention uses. */
struct AttnPlan {
    int S, Z; /* splits per kv head, head groups */
    int *counter;
    float *pm, *pl, *pacc;
};
static zm_status attn_plan(int n_head, int n_kv, int head_dim, int64_t max_ctx, void *ws, AttnPlan *p) {
    ZM_TRY(attn_check(n_head, n_kv, head_dim));
    if (n_kv > 64) return zm__err(ZM_ERR_UNSUPPORTED, "attention: %d kv heads (max 64)", n_kv);
    if (max_ctx < 1) return zm__err(ZM_ERR_RANGE, "attention: max_ctx %lld", (long long)max_ctx);
    if (!ws) return zm__err(ZM_ERR_INVALID, "attention: no workspace");
    p->S = attn_splits(n_kv, max_ctx);
    p->counter = (int *)ws;
    p->pm = (float *)((char *)ws + 256);
    p->pl = p->pm + (int64_t)n_head * p->S;
    p->pacc = p->pl + (int64_t)n_head * p->S;
    p->Z = (n_head / n_kv + ZM_ATT_HPB - 1) / ZM_ATT_HPB;
    if (n_kv * p->Z > 64) return zm__err(ZM_ERR_UNSUPPORTED, "attention: %d kv heads x %d head groups (max 64)", n_kv, p->Z);
    return ZM_OK;
}
/* The one-op decode launch: plain, or with cl > 0 as clusters of the
 * grid's cl splits (the plan's n_split must be cl; no workspace used). */
template <int DPL, int MODE, typename... Args>
static void attn_decode_launch_m(int cl, dim3 grid, cudaStream_t st, Args... args) {
    if (cl) zm__launch_cluster(k_attn_decode<DPL, true, MODE>, dim3(1, cl, 1), grid, 32 * ZM_ATT_HPB, 0, st, args...);
    else zm__launch(k_attn_decode<DPL, false, MODE & 1>, grid, 32 * ZM_ATT_HPB, 0, st, args...); /* PU: clusters only */
}
/* The kernel variant: ZMLX_ATT_TRACE, ZMLX_ATT_PUSH (clusters, head_dim <= 128). */
static int attn_mode(int d) {
    return (zm__env_ll("ZMLX_ATT_TRACE", 0) ? 1 : 0) | (d <= 128 && zm__env_ll("ZMLX_ATT_PUSH", 1) ? 2 : 0);
}
static int att_push_launches; /* zm_gpu_att_push_launches */
extern "C" int zm_gpu_att_push_launches(void) { return att_push_launches; }
template <int DPL, typename... Args>
static void attn_decode_launch(int cl, dim3 grid, cudaStream_t st, int d, Args... args) {
    const int mode = DPL > 4 ? 0 : attn_mode(d);
    att_push_launches += cl && (mode & 2);
    if constexpr (DPL > 4) attn_decode_launch_m<DPL, 0>(cl, grid, st, args...);
    else switch (mode) {
    case 1: attn_decode_launch_m<DPL, 1>(cl, grid, st, args...); break;
    case 2: attn_decode_launch_m<DPL, 2>(cl, grid, st, args...); break;
    case 3: attn_decode_launch_m<DPL, 3>(cl, grid, st, args...); break;
    default: attn_decode_launch_m<DPL, 0>(cl, grid, st, args...);
    }
}

/* ZMLX_ATT_TRACE=1 when the graph is captured (measuring): the decode
 * kernel's block (0,0,0) stamps its phases (entry, the dependency wait's
 * return, q/k norm + rope, the first row group's scores and end, the rows' end, the merge
 * barrier, the merge's inputs, the merge, exit) with globaltimer and the
 * SM clock; this prints the mean of each phase over the last launches (up
 * to 64; those where one split was active are left out) to f (a FILE *). */
extern "C" void zm_gpu_att_trace_dump(void *f) {
    static unsigned long long t[ZM_ATT_TRN][32];
    unsigned n = 0;
    int dev = 0, khz = 0;
    if (cudaDeviceSynchronize() != cudaSuccess || cudaMemcpyFromSymbol(&n, zm_att_trn, sizeof n) != cudaSuccess ||
        cudaMemcpyFromSymbol(t, zm_att_tr, sizeof t) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
    }
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev);
    enum { NP = 9 }; /* stamps in time order (attn_decode_item) */
    static const int at[NP + 1] = {0, 1, 2, 9, 3, 4, 5, 6, 7, 8};
    static const char *const ph[NP] = {"entry -> wait returns", "-> q/k norm + rope done", "-> first group's scores",
                                       "-> first group done", "-> rows done, partials out", "-> cluster barrier passed",
                                       "-> merge inputs in", "-> merged", "-> stored, exit"};
    double ns[NP] = {0}, cy[NP] = {0};
    int m = 0;
    for (unsigned i = 0; i < (n < ZM_ATT_TRN ? n : ZM_ATT_TRN); i++) {
        int ok = 1;
        for (int j = 1; j <= NP; j++) {
            const int a = at[j - 1], b = at[j];
            ok &= t[i][a] && t[i][b] >= t[i][a] && t[i][16 + b] >= t[i][16 + a];
        }
        if (!ok) continue;
        for (int j = 0; j < NP; j++) {
            ns[j] += (double)(t[i][at[j + 1]] - t[i][at[j]]);
            cy[j] += (double)(t[i][16 + at[j + 1]] - t[i][16 + at[j]]);
        }
        m++;
    }
    fprintf((FILE *)f, "attention trace: block (0,0,0), mean of %d of the last launches (clock %.0f MHz nominal)\n", m, khz / 1e3);
    for (int j = 0; j < NP && m; j++)
        fprintf((FILE *)f, "  %-32s %8.3f us  %9.0f cycles\n", ph[j], ns[j] / m / 1e3, cy[j] / m);
}

static zm_status qkn_check(const zm_gpu_qkn *qkn, int head_dim) {
    if (!qkn->xq || !qkn->wq || !qkn->xk || !qkn->wk || !qkn->xv || !qkn->k_cache || !qkn->v_cache || !qkn->inv_freq)
        return zm__err(ZM_ERR_INVALID, "attention_qkn: missing input");
    if (head_dim > 128 || head_dim % 4) return zm__err(ZM_ERR_UNSUPPORTED, "attention_qkn: head_dim %d (<= 128, multiple of 4)", head_dim);
    if (qkn->n_rot < 2 || qkn->n_rot > head_dim || qkn->n_rot % 2) return zm__err(ZM_ERR_SHAPE, "attention_qkn: n_rot %d", qkn->n_rot);
    return ZM_OK;
}

extern "C" zm_status zm_gpu_attention_decode(const float *q, const float *k_cache,
                                              const float *v_cache, int n_head, int n_kv,
                                              int head_dim, int64_t max_ctx, float scale,
                                              const int32_t *pos, void *ws, float *out,
                                              void *stream) {
    AttnPlan P = {};
    ZM_TRY(attn_plan(n_head, n_kv, head_dim, max_ctx, ws, &P));
    int cl = 0;
    ZM_TRY(attn_cluster(P.S, &cl));
    if (cl) P.S = cl;
    dim3 grid(n_kv, P.S, P.Z);
    cudaStream_t st = (cudaStream_t)stream;
    zm_gpu_qkn none = {};
    ZM_ATT_DPL(head_dim, attn_decode_launch<DPL>(cl, grid, st, head_dim, q, k_cache, v_cache, n_head, n_kv, head_dim, P.S, scale, pos, P.pm, P.pl, P.pacc, P.counter, out, none, attn_minrows(), attn_early()));
    return zm__cuda_ck("k_attn_decode");
}

extern "C" zm_status zm_gpu_attention_decode_qkn(const zm_gpu_qkn *qkn, int n_head, int n_kv, int head_dim,
                                                  int64_t max_ctx, float scale, const int32_t *pos, void *ws,
                                                  float *out, void *stream) {
    if (!qkn) return zm__err(ZM_ERR_INVALID, "attention_qkn: missing input");
    ZM_TRY(qkn_check(qkn, head_dim));
    AttnPlan P = {};
    ZM_TRY(attn_plan(n_head, n_kv, head_dim, max_ctx, ws, &P));
    int cl = 0;
    ZM_TRY(attn_cluster(P.S, &cl));
    if (cl) P.S = cl;
    dim3 grid(n_kv, P.S, P.Z);
    cudaStream_t st = (cudaStream_t)stream;
    ZM_ATT_DPL(head_dim, attn_decode_launch<DPL>(cl, grid, st, head_dim, (const float *)nullptr, (const float *)qkn->k_cache,
                                                 (const float *)qkn->v_cache, n_head, n_kv, head_dim, P.S, scale, pos, P.pm, P.pl, P.pacc, P.counter, out, *qkn, attn_minrows(), attn_early()));
    return zm__cuda_ck("k_attn_decode_qkn");
}

/* The persistent kernel's attention step: the same plan as the launchers. */
extern "C" zm_status zm_gpu_step_attention(zm_gpu_step *s, const zm_gpu_qkn *qkn, const float *q, const float *k_cache,
                                            const float *v_cache, int n_head, int n_kv, int head_dim, int64_t max_ctx,
                                            float scale, const int32_t *pos, void *ws, float *out) {
    if (qkn) ZM_TRY(qkn_check(qkn, head_dim));
    else if (!q || !k_cache || !v_cache) return zm__err(ZM_ERR_INVALID, "attention step: missing input");
    if (head_dim > 128) return zm__err(ZM_ERR_UNSUPPORTED, "attention step: head_dim %d (<= 128)", head_dim);
    AttnPlan P = {};
    ZM_TRY(attn_plan(n_head, n_kv, head_dim, max_ctx, ws, &P));
    memset(s, 0, sizeof *s);
    s->op = ZM_PS_ATTN;
    s->n_head = n_head;
    s->n_kv = n_kv;
    s->hd = head_dim;
    s->n_split = P.S;
    s->z = P.Z;
    s->total = (int64_t)n_kv * P.S * P.Z;
    s->rows = attn_minrows();
    s->scale = scale;
    s->ids = pos;
    s->pm = P.pm;
    s->pl = P.pl;
    s->pacc = P.pacc;
    s->counter = P.counter;
    s->out = out;
    if (qkn) {
        s->qkn = *qkn;
        s->kc = qkn->k_cache;
        s->vc = qkn->v_cache;
    } else {
        s->q = q;
        s->kc = k_cache;
        s->vc = v_cache;
    }
    return ZM_OK;
}

extern "C" zm_status zm_gpu_attention_prefill(const float *q, const float *k_cache,
                                               const float *v_cache, int64_t n_tok, int n_head,
                                               int n_kv, int head_dim, float scale,
                                               const int32_t *pos, float *out, void *stream) {
    ZM_TRY(attn_check(n_head, n_kv, head_dim));
    if (n_tok < 1 || n_tok > 65535) return zm__err(ZM_ERR_RANGE, "attention_prefill: %lld tokens", (long long)n_tok);
    dim3 grid(n_head, (unsigned)n_tok);
    cudaStream_t st = (cudaStream_t)stream;
    ZM_ATT_DPL(head_dim, zm__launch(k_attn_prefill<DPL>, grid, 32 * ZM_ATT_WARPS, 0, st, q, k_cache, v_cache, n_head, n_kv, head_dim, scale, pos, out));
    return zm__cuda_ck("k_attn_prefill");
}
