/* Attention over the KV cache. Decode: flash-decoding, one block per
 * (kv head, split of the sequence, group of 4 q heads), a warp per q head;
 * partial (max, sum, acc) per split go to a workspace and the last block of
 * a (kv head, head group) to finish (atomic counter, reset by that block)
 * merges them. The split plan is fixed at launch (so a
 * captured graph replays) and the range per split is derived from the
 * position read on the device. Prefill: a block per (query, head).
 * Cache layout: [ctx][n_kv][head_dim] f32.
 * Checked against a float64 reference in tests/test_cuda_ops.c. */
#include "kernels/cuda/common.cuh"
#include <stdlib.h>

#define ZM_ATT_WARPS 4 /* prefill: warps per block */
#define ZM_ATT_HPB 4   /* decode: q heads (warps) per block */
#define ZM_ATT_SMAX 320 /* splits per kv head at most */

// ---------------------------------------------------------------------------
// Kernels
/* One warp per q head: block (kv head, split, head group) has ZM_ATT_HPB
 * warps, warp w serving q head z*HPB + w of the kv head's GQA group over the
 * split's rows (the block's warps read the same K/V rows, through L1). No
 * warp merges with another, so a short context is a short chain per warp.
 * With qkn.xq the q/k RMSNorm + RoPE and the k/v store of the new row p are
 * done here: one warp per head, whose warp_sum equals block_rms_scale's
 * block_sum when only 32 threads hold data, so every bit matches
 * k_qkv_norm_rope; row p's k and v are used from registers/shared memory
 * (the blocks of the owning split each compute them; head group 0 stores
 * them). One active split writes the output; else the last block of a
 * (kv head, head group) to finish merges the splits' partials. */
template <int DPL> /* dims per lane: head_dim <= 32 * DPL */
__global__ void __launch_bounds__(32 * ZM_ATT_HPB)
    k_attn_decode(const float *q, const float *kc, const float *vc, int n_head, int n_kv, int d,
                  int n_split, float scale, const int32_t *pos, float *pm, float *pl, float *pacc,
                  int *counter, float *out, zm_gpu_qkn qkn) {
    ZM_PDL_ENTRY();
    const int kvh = blockIdx.x, split = blockIdx.y, G = n_head / n_kv;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = blockIdx.z * ZM_ATT_HPB + warp, h = kvh * G + g;
    const bool hv = g < G; /* this warp has a head */
    const int64_t L = (int64_t)pos[0] + 1;
    /* at least 32 rows per split: short contexts use few splits */
    const int64_t chunk = max((L + n_split - 1) / n_split, (int64_t)32);
    const int n_act = (int)((L + chunk - 1) / chunk);
    const int64_t t0 = (int64_t)split * chunk, t1 = min(L, t0 + chunk);
    if (split >= n_act) return; /* idle split: not counted below either */
    const int p = (int)(L - 1);
    const bool fused = qkn.xq != nullptr, owner = fused && p >= t0 && p < t1;
    __shared__ float qh[ZM_ATT_HPB][128], kh[128];
    __shared__ float sf[ZM_ATT_HPB][ZM_ATT_SMAX];
    __shared__ int last;
    float qr[DPL], kp[DPL], vp[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) kp[i] = vp[i] = 0.f;
    if (fused) {
        /* item 0..HPB-1: this warp's q head; item HPB (warp 0, owner): k */
        const float4 *x4[2] = {hv ? reinterpret_cast<const float4 *>(qkn.xq + (int64_t)h * d) : nullptr,
                               owner && warp == 0 ? reinterpret_cast<const float4 *>(qkn.xk + (int64_t)kvh * d) : nullptr};
        const float4 *w4[2] = {reinterpret_cast<const float4 *>(qkn.wq), reinterpret_cast<const float4 *>(qkn.wk)};
        float *dst[2] = {qh[warp], kh};
        float4 xv4[2], wv4[2];
#pragma unroll
        for (int it = 0; it < 2; it++) /* all loads first */
            if (x4[it] && lane < d / 4) { xv4[it] = x4[it][lane]; wv4[it] = w4[it][lane]; }
#pragma unroll
        for (int it = 0; it < 2; it++) {
            if (!x4[it]) continue;
            float s = lane < d / 4 ? sumsq4(xv4[it], 0.f) : 0.f;
            s = warp_sum(s);
            const float sc = rsqrtf(s / (float)d + qkn.eps);
            if (lane < d / 4) {
                norm4(xv4[it], wv4[it], sc);
                reinterpret_cast<float4 *>(dst[it])[lane] = xv4[it];
            }
        }
        __syncwarp();
        for (int i = lane; i < qkn.n_rot / 2; i += 32) {
            if (x4[0]) rope_pair(dst[0], i, qkn.n_rot / 2, (float)p, qkn.inv_freq);
            if (x4[1]) rope_pair(dst[1], i, qkn.n_rot / 2, (float)p, qkn.inv_freq);
        }
        __syncthreads(); /* kh for every warp */
        if (owner) {
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                kp[i] = c < d ? kh[c] : 0.f;
                vp[i] = c < d ? qkn.xv[(int64_t)kvh * d + c] : 0.f;
                if (blockIdx.z == 0 && warp == 0 && c < d) {
                    qkn.k_cache[((int64_t)p * n_kv + kvh) * d + c] = kp[i];
                    qkn.v_cache[((int64_t)p * n_kv + kvh) * d + c] = vp[i];
                }
            }
        }
    }
    if (!hv) return; /* after the block barrier above */
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int c = lane + 32 * i;
        qr[i] = c < d ? (fused ? qh[warp][c] : q[(int64_t)h * d + c]) : 0.f;
    }
    float m = -INFINITY, l = 0.f, acc[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[i] = 0.f;
    /* rows in groups of RG: loads first, the RG scores reduced in one
     * interleaved butterfly, one online-softmax step per group */
    constexpr int RG = 8;
    for (int64_t tg = t0; tg < t1; tg += RG) {
        float kr[RG][DPL], vr[RG][DPL], sc[RG];
#pragma unroll
        for (int r = 0; r < RG; r++) {
            const int64_t t = tg + r;
            const int64_t base = (t * n_kv + kvh) * d;
            const bool newrow = owner && t == p;
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                const bool ok = t < t1 && c < d;
                kr[r][i] = newrow ? kp[i] : ok ? kc[base + c] : 0.f;
                vr[r][i] = newrow ? vp[i] : ok ? vc[base + c] : 0.f;
            }
        }
#pragma unroll
        for (int r = 0; r < RG; r++) {
            float s = 0.f;
#pragma unroll
            for (int i = 0; i < DPL; i++) s = fmaf(qr[i], kr[r][i], s);
            sc[r] = s;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int r = 0; r < RG; r++) sc[r] += __shfl_xor_sync(0xffffffffu, sc[r], o);
        const int nr = (int)min((int64_t)RG, t1 - tg);
        float mn = m;
#pragma unroll
        for (int r = 0; r < RG; r++)
            if (r < nr) mn = fmaxf(mn, sc[r] * scale);
        const float corr = expf(m - mn);
        l *= corr;
#pragma unroll
        for (int i = 0; i < DPL; i++) acc[i] *= corr;
#pragma unroll
        for (int r = 0; r < RG; r++) {
            if (r >= nr) break;
            const float pr = expf(sc[r] * scale - mn);
            l += pr;
#pragma unroll
            for (int i = 0; i < DPL; i++) acc[i] = fmaf(pr, vr[r][i], acc[i]);
        }
        m = mn;
    }
    if (n_act == 1) {
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            if (c < d) out[(int64_t)h * d + c] = acc[i] / l;
        }
        return;
    }
    const int64_t hs = (int64_t)h * n_split + split;
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int c = lane + 32 * i;
        if (c < d) pacc[hs * d + c] = acc[i];
    }
    if (lane == 0) { pm[hs] = m; pl[hs] = l; }
    __threadfence();
    __syncwarp();
    /* the block's head warps meet; the head-less warps have returned */
    const int nw = min(ZM_ATT_HPB, G - (int)blockIdx.z * ZM_ATT_HPB);
    asm volatile("bar.sync 1, %0;" ::"r"(nw * 32) : "memory");
    if (threadIdx.x == 0) {
        int *cnt = &counter[kvh * gridDim.z + blockIdx.z];
        last = atomicAdd(cnt, 1) == n_act - 1;
        if (last) *cnt = 0; /* ready for the next launch */
    }
    asm volatile("bar.sync 1, %0;" ::"r"(nw * 32) : "memory");
    if (!last) return;
    __threadfence();
    /* merge this warp's head over the active splits */
    constexpr int SPL = ZM_ATT_SMAX / 32;
    float ms[SPL], ls[SPL], M = -INFINITY;
#pragma unroll
    for (int i = 0; i < SPL; i++) {
        const int sp = lane + 32 * i;
        ms[i] = sp < n_act ? __ldcg(pm + (int64_t)h * n_split + sp) : -INFINITY;
        ls[i] = sp < n_act ? __ldcg(pl + (int64_t)h * n_split + sp) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < SPL; i++) M = fmaxf(M, ms[i]);
    M = warp_max(M);
    float Ls = 0.f;
#pragma unroll
    for (int i = 0; i < SPL; i++) {
        const int sp = lane + 32 * i;
        const float f = ms[i] == -INFINITY ? 0.f : expf(ms[i] - M);
        if (sp < n_act) sf[warp][sp] = f;
        Ls += ls[i] * f;
    }
    Ls = warp_sum(Ls);
    __syncwarp();
    float A[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) A[i] = 0.f;
    for (int sp0 = 0; sp0 < n_act; sp0 += 4) { /* four splits' partials in flight */
        float v[4][DPL];
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                v[u][i] = (sp0 + u < n_act && c < d) ? __ldcg(pacc + ((int64_t)h * n_split + sp0 + u) * d + c) : 0.f;
            }
#pragma unroll
        for (int u = 0; u < 4; u++)
            if (sp0 + u < n_act)
#pragma unroll
                for (int i = 0; i < DPL; i++) A[i] += v[u][i] * sf[warp][sp0 + u];
    }
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int c = lane + 32 * i;
        if (c < d) out[(int64_t)h * d + c] = A[i] / Ls;
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
    const int Z = (n_head / n_kv + ZM_ATT_HPB - 1) / ZM_ATT_HPB;
    if (n_kv * Z > 64) return zm__err(ZM_ERR_UNSUPPORTED, "attention: %d kv heads x %d head groups (max 64)", n_kv, Z);
    dim3 grid(n_kv, S, Z);
    cudaStream_t st = (cudaStream_t)stream;
    zm_gpu_qkn none = {};
    ZM_ATT_DPL(head_dim, zm__launch(k_attn_decode<DPL>, grid, 32 * ZM_ATT_HPB, 0, st, q, k_cache, v_cache, n_head, n_kv, head_dim, S, scale, pos, pm, pl, pacc, counter, out, none));
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
    const int Z = (n_head / n_kv + ZM_ATT_HPB - 1) / ZM_ATT_HPB;
    if (n_kv * Z > 64) return zm__err(ZM_ERR_UNSUPPORTED, "attention: %d kv heads x %d head groups (max 64)", n_kv, Z);
    dim3 grid(n_kv, S, Z);
    cudaStream_t st = (cudaStream_t)stream;
    ZM_ATT_DPL(head_dim, zm__launch(k_attn_decode<DPL>, grid, 32 * ZM_ATT_HPB, 0, st, (const float *)nullptr, (const float *)qkn->k_cache,
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
