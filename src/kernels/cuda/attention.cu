/* Attention over the KV cache. Decode: flash-decoding, one block per
 * (kv head, split of the sequence); the block serves all q heads of its GQA
 * group so each K/V row is read once; partial (max, sum, acc) per split go to
 * a workspace and the last block of a kv head to finish (atomic counter,
 * reset by that block) merges them. The split plan is fixed at launch (so a
 * captured graph replays) and the range per split is derived from the
 * position read on the device. Prefill: a block per (query, head).
 * Cache layout: [ctx][n_kv][head_dim] f32.
 * Checked against a float64 reference in tests/test_cuda_ops.c. */
#include "kernels/cuda/common.cuh"
#include <stdlib.h>

#define ZM_ATT_WARPS 4
#define ZM_ATT_GMAX 8 /* q heads per kv head */
#define ZM_ATT_SMAX 320 /* splits per kv head at most */

// ---------------------------------------------------------------------------
// Kernels
template <int DPL> /* dims per lane: head_dim <= 32 * DPL */
__global__ void __launch_bounds__(32 * ZM_ATT_WARPS)
    k_attn_decode(const float *q, const float *kc, const float *vc, int n_head, int n_kv, int d,
                  int n_split, float scale, const int32_t *pos, float *pm, float *pl, float *pacc,
                  int *counter, float *out, zm_gpu_qkn qkn) {
    ZM_PDL_ENTRY();
    const int kvh = blockIdx.x, split = blockIdx.y, G = n_head / n_kv;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t L = (int64_t)pos[0] + 1;
    /* at least 32 rows per split: short contexts use few splits, so the
     * merge below reads few partials */
    const int64_t chunk = max((L + n_split - 1) / n_split, (int64_t)32);
    const int n_act = (int)((L + chunk - 1) / chunk);
    const int64_t t0 = (int64_t)split * chunk, t1 = min(L, t0 + chunk);
    if (split >= n_act) return; /* idle split: not counted below either */
    __shared__ float sm[ZM_ATT_WARPS][ZM_ATT_GMAX], sl[ZM_ATT_WARPS][ZM_ATT_GMAX];
    __shared__ float sacc[ZM_ATT_WARPS][ZM_ATT_GMAX][32 * DPL];
    __shared__ int last;
    __shared__ float sf[ZM_ATT_GMAX][ZM_ATT_SMAX], sL[ZM_ATT_GMAX];

    __shared__ float qh[ZM_ATT_GMAX + 1][128]; /* normed + roped q heads, then k */
    if (qkn.xq) {
        /* q/k norm + rope folded in (d <= 128, d % 4 == 0): warp w takes
         * items w, w+4, ...: q heads of this kv head, then (in the split that
         * holds the new row only) its k head, normalised and roped into
         * shared memory; that split also stores k and v at row p. One warp
         * per head: its warp_sum equals block_rms_scale's block_sum when
         * only the first 32 threads hold data, so every bit matches
         * k_qkv_norm_rope. */
        const int p = (int)(L - 1);
        const bool owner = p >= t0 && p < t1;
        for (int it = warp; it <= G; it += ZM_ATT_WARPS) {
            const bool isk = it == G;
            if (isk && !owner) continue;
            const float *xr = isk ? qkn.xk + (int64_t)kvh * d : qkn.xq + (int64_t)(kvh * G + it) * d;
            const float *w = isk ? qkn.wk : qkn.wq;
            float s = lane < d / 4 ? sumsq4(reinterpret_cast<const float4 *>(xr)[lane], 0.f) : 0.f;
            s = warp_sum(s);
            const float sc = rsqrtf(s / (float)d + qkn.eps);
            float *h = qh[it];
            for (int i = lane; i < d; i += 32) h[i] = norm_apply(xr[i], sc, w[i]);
            __syncwarp();
            for (int i = lane; i < qkn.n_rot / 2; i += 32) rope_pair(h, i, qkn.n_rot / 2, (float)p, qkn.inv_freq);
            __syncwarp();
            if (isk)
                for (int i = lane; i < d; i += 32) {
                    qkn.k_cache[((int64_t)p * n_kv + kvh) * d + i] = h[i];
                    qkn.v_cache[((int64_t)p * n_kv + kvh) * d + i] = qkn.xv[(int64_t)kvh * d + i];
                }
        }
        __syncthreads(); /* the q heads, and row p of the caches, for every warp */
    }
    const float *qb = qkn.xq ? &qh[0][0] : q + (int64_t)kvh * G * d; /* head g at qb + g * qstride */
    float qr[ZM_ATT_GMAX][DPL], acc[ZM_ATT_GMAX][DPL], m[ZM_ATT_GMAX], l[ZM_ATT_GMAX];
    const int qstride = qkn.xq ? 128 : d;
#pragma unroll
    for (int g = 0; g < ZM_ATT_GMAX; g++) {
        m[g] = -INFINITY;
        l[g] = 0.f;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            qr[g][i] = (g < G && c < d) ? qb[g * qstride + c] : 0.f;
            acc[g][i] = 0.f;
        }
    }
    /* rows in groups of RG per warp: the group's K/V loads are issued
     * together, the RG x GMAX partial scores reduced in one interleaved
     * butterfly (no serial shuffle chain per head), then one online-softmax
     * step per head for the whole group (max over the group first) */
    constexpr int RG = DPL <= 4 ? 4 : 2;
    for (int64_t tg = t0 + warp; tg < t1; tg += RG * ZM_ATT_WARPS) {
        float kr[RG][DPL], vr[RG][DPL], sc[RG][ZM_ATT_GMAX];
#pragma unroll
        for (int r = 0; r < RG; r++) {
            const int64_t t = tg + (int64_t)r * ZM_ATT_WARPS;
            const int64_t base = (t * n_kv + kvh) * d;
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                kr[r][i] = (t < t1 && c < d) ? kc[base + c] : 0.f;
                vr[r][i] = (t < t1 && c < d) ? vc[base + c] : 0.f;
            }
        }
#pragma unroll
        for (int r = 0; r < RG; r++)
#pragma unroll
            for (int g = 0; g < ZM_ATT_GMAX; g++) {
                float s = 0.f;
#pragma unroll
                for (int i = 0; i < DPL; i++) s = fmaf(qr[g][i], kr[r][i], s);
                sc[r][g] = s;
            }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int r = 0; r < RG; r++)
#pragma unroll
                for (int g = 0; g < ZM_ATT_GMAX; g++) sc[r][g] += __shfl_xor_sync(0xffffffffu, sc[r][g], o);
        const int nr = (int)min((int64_t)RG, (t1 - tg + ZM_ATT_WARPS - 1) / ZM_ATT_WARPS);
#pragma unroll
        for (int g = 0; g < ZM_ATT_GMAX; g++) {
            if (g >= G) break;
            float mn = m[g];
#pragma unroll
            for (int r = 0; r < RG; r++)
                if (r < nr) mn = fmaxf(mn, sc[r][g] * scale);
            const float corr = expf(m[g] - mn);
            l[g] *= corr;
#pragma unroll
            for (int i = 0; i < DPL; i++) acc[g][i] *= corr;
#pragma unroll
            for (int r = 0; r < RG; r++) {
                if (r >= nr) break;
                const float p = expf(sc[r][g] * scale - mn);
                l[g] += p;
#pragma unroll
                for (int i = 0; i < DPL; i++) acc[g][i] = fmaf(p, vr[r][i], acc[g][i]);
            }
            m[g] = mn;
        }
    }
#pragma unroll
    for (int g = 0; g < ZM_ATT_GMAX; g++) {
        if (g >= G) break;
        if (lane == 0) { sm[warp][g] = m[g]; sl[warp][g] = l[g]; }
#pragma unroll
        for (int i = 0; i < DPL; i++) sacc[warp][g][lane + 32 * i] = acc[g][i];
    }
    __syncthreads();
    /* merge the warps: thread handles (g, dim) pairs */
    for (int e = threadIdx.x; e < G * d; e += blockDim.x) {
        const int g = e / d, c = e % d;
        float M = -INFINITY;
        for (int w = 0; w < ZM_ATT_WARPS; w++) M = fmaxf(M, sm[w][g]);
        float Ls = 0.f, A = 0.f;
        for (int w = 0; w < ZM_ATT_WARPS; w++) {
            const float f = sm[w][g] == -INFINITY ? 0.f : expf(sm[w][g] - M);
            Ls += sl[w][g] * f;
            A += sacc[w][g][c] * f;
        }
        if (n_act == 1) { /* the only split: the merge below would give A / Ls exactly */
            out[(int64_t)(kvh * G + g) * d + c] = A / Ls;
            continue;
        }
        const int64_t hs = (int64_t)(kvh * G + g) * n_split + split;
        pacc[hs * d + c] = A;
        if (c == 0) { pm[hs] = M; pl[hs] = Ls; }
    }
    if (n_act == 1) return;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        const int done = atomicAdd(&counter[kvh], 1);
        last = done == n_act - 1;
        if (last) counter[kvh] = 0; /* ready for the next launch */
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    /* per head: the max over active splits, each split's factor, the sum */
    for (int g = warp; g < G; g += ZM_ATT_WARPS) { /* each lane's splits: one round of loads */
        const int64_t h = kvh * G + g;
        constexpr int SPL = ZM_ATT_SMAX / 32;
        float ms[SPL], ls[SPL], M = -INFINITY;
#pragma unroll
        for (int i = 0; i < SPL; i++) {
            const int sp = lane + 32 * i;
            ms[i] = sp < n_act ? __ldcg(pm + h * n_split + sp) : -INFINITY;
            ls[i] = sp < n_act ? __ldcg(pl + h * n_split + sp) : 0.f;
        }
#pragma unroll
        for (int i = 0; i < SPL; i++) M = fmaxf(M, ms[i]);
        M = warp_max(M);
        float Ls = 0.f;
#pragma unroll
        for (int i = 0; i < SPL; i++) {
            const int sp = lane + 32 * i;
            const float f = ms[i] == -INFINITY ? 0.f : expf(ms[i] - M);
            if (sp < n_act) sf[g][sp] = f;
            Ls += ls[i] * f;
        }
        Ls = warp_sum(Ls);
        if (lane == 0) sL[g] = Ls;
    }
    __syncthreads();
    /* thread takes elements e = tid + j*blockDim (j < EPT) of the G x d
     * outputs; the split loop runs outside, four splits of all its
     * elements loaded together (was one dependent L2 load per element) */
    constexpr int EPT = ZM_ATT_GMAX * 32 * DPL / (32 * ZM_ATT_WARPS);
    float A[EPT];
#pragma unroll
    for (int j = 0; j < EPT; j++) A[j] = 0.f;
    for (int sp0 = 0; sp0 < n_act; sp0 += 4) {
        float v[4][EPT];
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int j = 0; j < EPT; j++) {
                const int e = threadIdx.x + j * blockDim.x, g = e / d, c = e % d;
                v[u][j] = (e < G * d && sp0 + u < n_act)
                              ? __ldcg(pacc + ((int64_t)(kvh * G + g) * n_split + sp0 + u) * d + c) : 0.f;
            }
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int j = 0; j < EPT; j++) {
                const int e = threadIdx.x + j * blockDim.x, g = e / d;
                if (e < G * d && sp0 + u < n_act) A[j] += v[u][j] * sf[g][sp0 + u];
            }
    }
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        const int e = threadIdx.x + j * blockDim.x, g = e / d, c = e % d;
        if (e < G * d) out[(int64_t)(kvh * G + g) * d + c] = A[j] / sL[g];
    }
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
    /* enough blocks to cover the SMs once (ZMLX_ATT_SPLITS overrides the
     * splits per kv head), at least 32 rows per split */
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("ZMLX_ATT_SPLITS");
        env = e ? atoi(e) : 0;
        if (env < 0) env = 0;
    }
    int s = env ? env : (zm__sm_count() + n_kv - 1) / n_kv;
    int64_t by_len = (max_ctx + 31) / 32;
    if (s > by_len) s = (int)by_len;
    if (s > ZM_ATT_SMAX) s = ZM_ATT_SMAX;
    return s < 1 ? 1 : s;
}

static zm_status attn_check(int n_head, int n_kv, int d) {
    if (n_head < 1 || n_kv < 1 || n_head % n_kv) return zm__err(ZM_ERR_SHAPE, "attention: %d heads over %d kv heads", n_head, n_kv);
    if (n_head / n_kv > ZM_ATT_GMAX) return zm__err(ZM_ERR_UNSUPPORTED, "attention: GQA group of %d (max %d)", n_head / n_kv, ZM_ATT_GMAX);
    if (d < 1 || d > 256) return zm__err(ZM_ERR_UNSUPPORTED, "attention: head_dim %d (1..256)", d);
    return ZM_OK;
}

extern "C" int64_t zm_gpu_attention_ws_bytes(int n_head, int n_kv, int head_dim, int64_t max_ctx) {
    if (n_kv < 1) return 0;
    int64_t s = attn_splits(n_kv, max_ctx);
    return 256 + (int64_t)n_head * s * (head_dim + 2) * 4;
}

#define ZM_ATT_DPL(d, ...)                                                                         \
    if (d <= 32) { constexpr int DPL = 1; __VA_ARGS__; }                                             \
    else if (d <= 64) { constexpr int DPL = 2; __VA_ARGS__; }                                        \
    else if (d <= 128) { constexpr int DPL = 4; __VA_ARGS__; }                                       \
    else { constexpr int DPL = 8; __VA_ARGS__; }

extern "C" zm_status zm_gpu_attention_decode(const float *q, const float *k_cache,
                                              const float *v_cache, int n_head, int n_kv,
                                              int head_dim, int64_t max_ctx, float scale,
                                              const int32_t *pos, void *ws, float *out,
                                              void *stream) {
    ZM_TRY(attn_check(n_head, n_kv, head_dim));
    if (n_kv > 64) return zm__err(ZM_ERR_UNSUPPORTED, "attention: %d kv heads (max 64)", n_kv);
    if (max_ctx < 1) return zm__err(ZM_ERR_RANGE, "attention: max_ctx %lld", (long long)max_ctx);
    const int S = attn_splits(n_kv, max_ctx);
    int *counter = (int *)ws;
    float *pm = (float *)((char *)ws + 256), *pl = pm + (int64_t)n_head * S, *pacc = pl + (int64_t)n_head * S;
    dim3 grid(n_kv, S);
    cudaStream_t st = (cudaStream_t)stream;
    zm_gpu_qkn none = {};
    ZM_ATT_DPL(head_dim, zm__launch(k_attn_decode<DPL>, grid, 32 * ZM_ATT_WARPS, 0, st, q, k_cache, v_cache, n_head, n_kv, head_dim, S, scale, pos, pm, pl, pacc, counter, out, none));
    return zm__cuda_ck("k_attn_decode");
}

extern "C" zm_status zm_gpu_attention_decode_qkn(const zm_gpu_qkn *qkn, int n_head, int n_kv, int head_dim,
                                                  int64_t max_ctx, float scale, const int32_t *pos, void *ws,
                                                  float *out, void *stream) {
    ZM_TRY(attn_check(n_head, n_kv, head_dim));
    if (!qkn || !qkn->xq || !qkn->wq || !qkn->xk || !qkn->wk || !qkn->xv || !qkn->k_cache || !qkn->v_cache || !qkn->inv_freq)
        return zm__err(ZM_ERR_INVALID, "attention_qkn: missing input");
    if (head_dim > 128 || head_dim % 4) return zm__err(ZM_ERR_UNSUPPORTED, "attention_qkn: head_dim %d (<= 128, multiple of 4)", head_dim);
    if (qkn->n_rot < 2 || qkn->n_rot > head_dim || qkn->n_rot % 2) return zm__err(ZM_ERR_SHAPE, "attention_qkn: n_rot %d", qkn->n_rot);
    if (n_kv > 64) return zm__err(ZM_ERR_UNSUPPORTED, "attention: %d kv heads (max 64)", n_kv);
    if (max_ctx < 1) return zm__err(ZM_ERR_RANGE, "attention: max_ctx %lld", (long long)max_ctx);
    const int S = attn_splits(n_kv, max_ctx);
    int *counter = (int *)ws;
    float *pm = (float *)((char *)ws + 256), *pl = pm + (int64_t)n_head * S, *pacc = pl + (int64_t)n_head * S;
    dim3 grid(n_kv, S);
    cudaStream_t st = (cudaStream_t)stream;
    ZM_ATT_DPL(head_dim, zm__launch(k_attn_decode<DPL>, grid, 32 * ZM_ATT_WARPS, 0, st, (const float *)nullptr, (const float *)qkn->k_cache,
                                    (const float *)qkn->v_cache, n_head, n_kv, head_dim, S, scale, pos, pm, pl, pacc, counter, out, *qkn));
    return zm__cuda_ck("k_attn_decode_qkn");
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
