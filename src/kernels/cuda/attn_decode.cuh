/* Decode attention over the KV cache, one work item: (kv head, split of
 * the sequence, group of ZM_ATT_HPB q heads), served by ZM_ATT_HPB warps.
 * The one-op kernel (attention.cu) runs one item per block; the persistent
 * decode kernel (persist.cu) runs two per block, each on its own named
 * barriers and shared memory, so both compute every bit the same way.
 * The one-op kernel may also run a (kv head, head group)'s splits as one
 * thread-block cluster (CL) that merges through distributed shared memory.
 * Cache layout: [ctx][n_kv][head_dim] f32. */
#pragma once
#include "kernels/cuda/common.cuh"

#define ZM_ATT_HPB 4    /* q heads (warps) per item */
#define ZM_ATT_SMAX 320 /* splits per kv head at most */

struct __align__(16) AttnSmem { /* one item's shared memory (float4 stores: 16-byte aligned) */
    float qh[ZM_ATT_HPB][128], kh[128];
    float sf[ZM_ATT_HPB][ZM_ATT_SMAX];
    int last;
};

/* A cluster block's partials per head warp, read by its peers (CL). */
template <int DPL> struct AttnPart {
    float acc[ZM_ATT_HPB][32 * DPL];
    float m[ZM_ATT_HPB], l[ZM_ATT_HPB];
};
#define ZM_ATT_CLMAX 16 /* blocks (splits) per cluster at most */
/* PU (ZMLX_ATT_PUSH, the default): the partials pushed into the merging
 * blocks' shared memory instead (st.async onto their mbarrier mb). Rank r
 * merges the 32-dim slices i with i % n_act == r; split sp's slice i lands
 * at acc[(i / n_act) * n_act + sp] (< 16 for every n_act >= 2 and DPL <=
 * 4), its maximum and sum at m[sp], l[sp]. */
struct AttnPush {
    uint64_t mb; /* completes when every push into this block has landed */
    float acc[ZM_ATT_CLMAX][ZM_ATT_HPB][32];
    float m[ZM_ATT_CLMAX][ZM_ATT_HPB], l[ZM_ATT_CLMAX][ZM_ATT_HPB];
};

#define ZM_ATT_RG 8 /* K/V rows per group: loads first, one softmax step per group */
#define ZM_ATT_MG 20 /* splits' partials a merging warp loads at once */

/* What an item reads before its inputs exist: the position (a graph
 * input) and its first group of K/V rows, except row p (the new one,
 * written by this launch or, unfused, by the one before). The one-op
 * kernel loads it before its dependency wait, so those loads overlap the
 * previous kernel; the persistent kernel right before the item. */
template <int DPL> struct AttnPre {
    static constexpr int R = DPL <= 4 ? ZM_ATT_RG : 1; /* head_dim > 128: no preload (registers) */
    int64_t L, t0, t1; /* length, this split's rows [t0, t1) */
    int n_act;         /* splits with rows at this length */
    float k[R][DPL], v[R][DPL];
};
template <int DPL>
__device__ __forceinline__ void attn_preload(AttnPre<DPL> &P, const float *kc, const float *vc, int n_kv, int d, int n_split,
                                             const int32_t *pos, int kvh, int split, int minr) {
    const int lane = threadIdx.x & 31;
    P.L = (int64_t)pos[0] + 1;
    /* at least minr rows per split: short contexts use few splits */
    const int64_t chunk = max((P.L + n_split - 1) / n_split, (int64_t)minr);
    P.n_act = (int)((P.L + chunk - 1) / chunk);
    P.t0 = (int64_t)split * chunk;
    P.t1 = min(P.L, P.t0 + chunk);
#pragma unroll
    for (int r = 0; r < AttnPre<DPL>::R; r++) {
        const int64_t t = P.t0 + r, base = (t * n_kv + kvh) * d;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            const bool ok = AttnPre<DPL>::R == ZM_ATT_RG && split < P.n_act && t < P.t1 && t < P.L - 1 && c < d;
            P.k[r][i] = ok ? kc[base + c] : 0.f;
            P.v[r][i] = ok ? vc[base + c] : 0.f;
        }
    }
}

/* Run the statements with constexpr DPL (dims per lane) for head_dim d <= 128. */
#define ZM_ATT_DPL128(d, ...)                                                                      \
    if (d <= 32) { constexpr int DPL = 1; __VA_ARGS__; }                                             \
    else if (d <= 64) { constexpr int DPL = 2; __VA_ARGS__; }                                        \
    else { constexpr int DPL = 4; __VA_ARGS__; }

/* Named barrier `id` over n threads (the item's warps). */
__device__ __forceinline__ void named_bar(int id, int n) { asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(n) : "memory"); }

/* Cluster barrier halves (not .aligned: the idle and the merging warps
 * reach them from different code). Every thread of every block of the
 * cluster arrives once a phase and waits before it arrives again. */
__device__ __forceinline__ void cluster_arrive() { asm volatile("barrier.cluster.arrive.release;" ::: "memory"); }
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.acquire;" ::: "memory"); }
/* ZMLX_ATT_TRACE: stamps of one block's phases (globaltimer ns at ts[i],
 * the SM clock at ts[16 + i]); ts is NULL in every other block and kernel. */
__device__ __forceinline__ void att_stamp(unsigned long long *ts, int i) {
    if (!ts) return;
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    ts[i] = t;
    ts[16 + i] = clock64();
}

/* Both phases of a cluster block with nothing to give or merge (the pull
 * merge); none when one split is active (n_act is the same in every
 * block: no exchange). */
__device__ __forceinline__ void attn_cluster_idle(int n_act) {
    if (n_act == 1) return;
    cluster_arrive();
    cluster_wait();
    cluster_arrive();
    cluster_wait();
}
/* PU: the cluster barrier's one phase, arrived at the kernel's entry; a
 * block waits on it before its first store into a peer (every block of the
 * cluster has started and armed its mbarrier, as distributed shared memory
 * requires); a block that pushes nothing never waits. */
__device__ __forceinline__ void attn_cluster_start(int n_act) {
    if (n_act > 1) asm volatile("barrier.cluster.arrive.relaxed;" ::: "memory");
}
/* The address of p in the shared memory of the cluster's block `rank`;
 * the float there (volatile: never moved across the cluster barriers). */
__device__ __forceinline__ uint32_t peer_addr(const void *p, int rank) {
    uint32_t r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"((uint32_t)__cvta_generic_to_shared(p)), "r"(rank));
    return r;
}
/* PU: a float into a peer's shared memory whose arrival completes bytes of
 * the peer's mbarrier at mb (no fence, no cluster barrier). */
__device__ __forceinline__ void st_async_peer(uint32_t a, float v, uint32_t mb) {
    asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];" ::"r"(a), "r"(__float_as_uint(v)),
                 "r"(mb)
                 : "memory");
}
/* PU: the bytes merging rank r receives: from each of n_act splits and nw
 * head warps, its slices (i % n_act == r, lanes with c < d) and m, l. */
__device__ __forceinline__ uint32_t attn_push_bytes(int r, int n_act, int nw, int d, int dpl) {
    uint32_t b = 8;
    for (int i = r; i < dpl; i += n_act) b += 4 * (uint32_t)max(0, min(32, d - 32 * i));
    return b * (uint32_t)(n_act * nw);
}
/* PU, at the kernel's entry, before the cluster barrier's arrival: a
 * merging block's thread 0 initialises its mbarrier, makes that visible to
 * the cluster and arms it with the bytes to come (one arrival: the phase
 * completes when they have all landed, whichever comes first). */
__device__ __forceinline__ void attn_push_arm(AttnPush *Y, int n_act, int G, int d, int dpl) {
    const int split = (int)blockIdx.y;
    if (n_act < 2 || split >= min(n_act, (d + 31) / 32) || threadIdx.x) return;
    mbar_init(&Y->mb, 1);
    mbar_fence_init();
    mbar_expect(&Y->mb, attn_push_bytes(split, n_act, min(ZM_ATT_HPB, G - (int)blockIdx.z * ZM_ATT_HPB), d, dpl));
}
__device__ __forceinline__ float ld_peer(uint32_t a) {
    float v;
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(a));
    return v;
}

/* One warp per q head: block (kv head, split, head group) has ZM_ATT_HPB
 * warps, warp w serving q head z*HPB + w of the kv head's GQA group over the
 * split's rows (the block's warps read the same K/V rows, through L1). No
 * warp merges with another, so a short context is a short chain per warp.
 * With qkn.xq the q/k RMSNorm + RoPE and the k/v store of the new row p are
 * done here: one warp per head, whose warp_sum equals block_rms_scale's
 * block_sum when only 32 threads hold data, so every bit matches
 * k_qkv_norm_rope; row p's k and v are used from registers/shared memory
 * (the blocks of the owning split each compute them; head group 0 stores
 * them). One active split writes the output; else the last item of a
 * (kv head, head group) to finish merges the splits' partials. The item's
 * warps are `warp` 0..HPB-1 of it and sync on named barriers bar, bar+1.
 * CL: the n_split blocks of a (kv head, head group) are one cluster, rank
 * = split; each puts its partials in its shared memory X, and after a
 * cluster barrier rank r's warps merge their head's 32-dim slices i with
 * i % n_act == r from the peers' X, by the same arithmetic in the same
 * order as the workspace merge (same bits); a second barrier keeps X
 * alive until the readers are done. Every thread reaches both barriers
 * unless one split is active (then no block does).
 * PU (the default with clusters): each block instead sends its partials
 * into the merging ranks' shared memory Y by st.async, each arrival
 * counted on the receiver's mbarrier; a merging block waits for its bytes
 * and merges from its own shared memory in the same order (same bits); no
 * block waits for another's reads and none but the mergers waits at all.
 * H100, Q4_0, 256 tokens, same process: 472.2 vs 451.2 tok/s (pull); the
 * same push through a release/acquire cluster barrier (MEMBAR.GPU and a
 * second barrier round in its SASS) measured 467.1-467.4. */
template <int DPL, bool CL = false, bool PU = false> /* dims per lane: head_dim <= 32 * DPL; PU: CL, push */
__device__ __forceinline__ void attn_decode_item(const float *q, const float *kc, const float *vc, int n_head, int n_kv,
                                                 int d, int n_split, float scale, float *pm,
                                                 float *pl, float *pacc, int *counter, float *out,
                                                 const zm_gpu_qkn &qkn, int kvh, int split, int z, int Z, int warp,
                                                 int bar, AttnSmem &S, const AttnPre<DPL> &P,
                                                 AttnPart<DPL> *X = nullptr, unsigned long long *ts = nullptr,
                                                 AttnPush *Y = nullptr) {
    static_assert(!PU || (CL && DPL <= 4), "push: clusters, head_dim <= 128");
    const int G = n_head / n_kv;
    const int lane = threadIdx.x & 31;
    const int g = z * ZM_ATT_HPB + warp, h = kvh * G + g;
    const bool hv = g < G; /* this warp has a head */
    const bool fused = qkn.xq != nullptr;
    /* the prologue's inputs are all loaded at once, with the position: this
     * warp's q head and norm weights, k (warp 0), the rope frequencies
     * (n_rot / 2 <= 64: two per lane) and v, whether or not this split
     * turns out to own the new row */
    const int64_t L = P.L, t0 = P.t0, t1 = P.t1;
    const int n_act = P.n_act;
    float4 xv4[2], wv4[2];
    float fr[2] = {0.f, 0.f}, kp[DPL], vp[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) kp[i] = vp[i] = 0.f;
    if (fused) {
        if (hv && lane < d / 4) {
            xv4[0] = reinterpret_cast<const float4 *>(qkn.xq + (int64_t)h * d)[lane];
            wv4[0] = reinterpret_cast<const float4 *>(qkn.wq)[lane];
        }
        if (warp == 0 && lane < d / 4) {
            xv4[1] = reinterpret_cast<const float4 *>(qkn.xk + (int64_t)kvh * d)[lane];
            wv4[1] = reinterpret_cast<const float4 *>(qkn.wk)[lane];
        }
#pragma unroll
        for (int j = 0; j < 2; j++)
            if (lane + 32 * j < qkn.n_rot / 2) fr[j] = qkn.inv_freq[lane + 32 * j];
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            vp[i] = c < d ? qkn.xv[(int64_t)kvh * d + c] : 0.f;
        }
    }
    if (split >= n_act) { /* idle split: not counted below either */
        if (CL && !PU) attn_cluster_idle(n_act);
        return;
    }
    const int p = (int)(L - 1);
    const bool owner = fused && p >= t0 && p < t1;
    float(&qh)[ZM_ATT_HPB][128] = S.qh;
    float(&kh)[128] = S.kh;
    float(&sf)[ZM_ATT_HPB][ZM_ATT_SMAX] = S.sf;
    float qr[DPL];
    if (fused) {
        /* item 0: this warp's q head; item 1 (warp 0, owner): k */
        const bool use[2] = {hv, owner && warp == 0};
        float *dst[2] = {qh[warp], kh};
#pragma unroll
        for (int it = 0; it < 2; it++) {
            if (!use[it]) continue;
            float s = lane < d / 4 ? sumsq4(xv4[it], 0.f) : 0.f;
            s = warp_sum(s);
            const float sc = rsqrtf(s / (float)d + qkn.eps);
            if (lane < d / 4) {
                norm4(xv4[it], wv4[it], sc);
                reinterpret_cast<float4 *>(dst[it])[lane] = xv4[it];
            }
        }
        __syncwarp();
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int i = lane + 32 * j;
            if (i >= qkn.n_rot / 2) break;
            if (use[0]) rope_pair_f(dst[0], i, qkn.n_rot / 2, (float)p, fr[j]);
            if (use[1]) rope_pair_f(dst[1], i, qkn.n_rot / 2, (float)p, fr[j]);
        }
        named_bar(bar, 32 * ZM_ATT_HPB); /* kh for every warp */
        att_stamp(ts, 2);
        if (owner) {
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                kp[i] = c < d ? kh[c] : 0.f;
                if (z == 0 && warp == 0 && c < d) {
                    qkn.k_cache[((int64_t)p * n_kv + kvh) * d + c] = kp[i];
                    qkn.v_cache[((int64_t)p * n_kv + kvh) * d + c] = vp[i];
                }
            }
        }
    }
    if (!hv) { /* after the block barrier above */
        if (CL && !PU) attn_cluster_idle(n_act);
        return;
    }
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int c = lane + 32 * i;
        qr[i] = c < d ? (fused ? qh[warp][c] : q[(int64_t)h * d + c]) : 0.f;
    }
    float m = -INFINITY, l = 0.f, acc[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[i] = 0.f;
    /* rows in groups of RG: loads first (the first group's, but row p,
     * preloaded), the RG scores reduced in one interleaved butterfly, one
     * online-softmax step per group */
    constexpr int RG = ZM_ATT_RG;
    for (int64_t tg = t0; tg < t1; tg += RG) {
        float kr[RG][DPL], vr[RG][DPL], sc[RG];
#pragma unroll
        for (int r = 0; r < RG; r++) {
            const int64_t t = tg + r;
            const int64_t base = (t * n_kv + kvh) * d;
            const bool newrow = owner && t == p, pre = AttnPre<DPL>::R == RG && tg == t0 && t != p;
            const int rp = AttnPre<DPL>::R == RG ? r : 0;
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                const bool ok = t < t1 && c < d;
                kr[r][i] = newrow ? kp[i] : pre ? P.k[rp][i] : ok ? kc[base + c] : 0.f;
                vr[r][i] = newrow ? vp[i] : pre ? P.v[rp][i] : ok ? vc[base + c] : 0.f;
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
        if (ts && tg == t0) { /* measuring: the scores exist */
            asm volatile("" ::"f"(sc[0]), "f"(sc[RG - 1]));
            att_stamp(ts, 9);
        }
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
        if (ts && tg == t0) {
            asm volatile("" ::"f"(acc[0]), "f"(l));
            att_stamp(ts, 3);
        }
    }
    if (n_act == 1) {
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            if (c < d) out[(int64_t)h * d + c] = acc[i] / l;
        }
        return;
    }
    /* CL: rank `split` merges this head's slices i % n_act == split */
    unsigned slices = 0;
#pragma unroll
    for (int i = 0; i < DPL; i++)
        if (CL && i % n_act == split) slices |= 1u << i;
    auto mine = [&](int i) { return !CL || (slices >> i & 1u); };
    if (PU) {
        cluster_wait(); /* every peer has started */
        /* slice i to its merging rank i % n_act; m and l to every merging rank */
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            if (c >= d) continue;
            st_async_peer(peer_addr(&Y->acc[(i / n_act) * n_act + split][warp][lane], i % n_act), acc[i],
                          peer_addr(&Y->mb, i % n_act));
        }
        if (lane < min(n_act, (d + 31) / 32)) {
            const uint32_t mb = peer_addr(&Y->mb, lane);
            st_async_peer(peer_addr(&Y->m[split][warp], lane), m, mb);
            st_async_peer(peer_addr(&Y->l[split][warp], lane), l, mb);
        }
        att_stamp(ts, 4);
        /* no second barrier: a merging block waits for its bytes, the rest leave */
        if (split >= (d + 31) / 32) return;
        mbar_wait(&Y->mb, 0);
        att_stamp(ts, 5);
    } else if (CL) {
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int c = lane + 32 * i;
            if (c < d) X->acc[warp][c] = acc[i];
        }
        if (lane == 0) { X->m[warp] = m; X->l[warp] = l; }
        att_stamp(ts, 4);
        cluster_arrive(); /* release: X to the cluster */
        cluster_wait();
        att_stamp(ts, 5);
        if (split >= (d + 31) / 32) { /* no slice to merge here */
            cluster_arrive();
            cluster_wait();
            return;
        }
    } else {
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
        const int nw = min(ZM_ATT_HPB, G - z * ZM_ATT_HPB);
        named_bar(bar + 1, nw * 32);
        if (warp == 0 && lane == 0) {
            int *cnt = &counter[kvh * Z + z];
            S.last = atomicAdd(cnt, 1) == n_act - 1;
            if (S.last) *cnt = 0; /* ready for the next launch */
        }
        named_bar(bar + 1, nw * 32);
        if (!S.last) return;
        __threadfence();
    }
    /* merge this warp's head over the active splits (CL: n_act <= 16, one
     * split a lane and one round; a lane's further entries only add +0 to
     * Ls, so the bits are the same) */
    constexpr int SPL = CL ? 1 : ZM_ATT_SMAX / 32;
    constexpr int MG = CL ? ZM_ATT_CLMAX : ZM_ATT_MG;
    float ms[SPL], ls[SPL], M = -INFINITY;
    /* the partials of up to ZM_ATT_MG splits load with the maxima and sums
     * (one round: the merge was a chain of rounds of four); longer plans
     * go on ZM_ATT_MG splits a round */
    float v[MG][DPL];
    auto load_mg = [&](int sp0) {
#pragma unroll
        for (int u = 0; u < MG; u++) {
            uint32_t a = 0; /* CL: this lane's dims in the peer's X */
            if (CL && !PU && sp0 + u < n_act) a = peer_addr(&X->acc[warp][lane], sp0 + u);
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                const int c = lane + 32 * i;
                const bool ok = sp0 + u < n_act && c < d && mine(i);
                v[u][i] = !ok  ? 0.f
                          : PU ? Y->acc[(i / n_act) * n_act + sp0 + u][warp][lane]
                          : CL ? ld_peer(a + 128 * i)
                               : __ldcg(pacc + ((int64_t)h * n_split + sp0 + u) * d + c);
            }
        }
    };
    load_mg(0);
#pragma unroll
    for (int i = 0; i < SPL; i++) {
        const int sp = lane + 32 * i;
        if (PU) {
            ms[i] = sp < n_act ? Y->m[sp][warp] : -INFINITY;
            ls[i] = sp < n_act ? Y->l[sp][warp] : 0.f;
        } else if (CL) {
            ms[i] = sp < n_act ? ld_peer(peer_addr(&X->m[warp], sp)) : -INFINITY;
            ls[i] = sp < n_act ? ld_peer(peer_addr(&X->l[warp], sp)) : 0.f;
        } else {
            ms[i] = sp < n_act ? __ldcg(pm + (int64_t)h * n_split + sp) : -INFINITY;
            ls[i] = sp < n_act ? __ldcg(pl + (int64_t)h * n_split + sp) : 0.f;
        }
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
    att_stamp(ts, 6);
    __syncwarp();
    float A[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) A[i] = 0.f;
    for (int sp0 = 0;;) {
#pragma unroll
        for (int u = 0; u < MG; u++)
            if (sp0 + u < n_act)
#pragma unroll
                for (int i = 0; i < DPL; i++) A[i] += v[u][i] * sf[warp][sp0 + u];
        if (CL || (sp0 += MG) >= n_act) break; /* CL: n_act <= MG */
        load_mg(sp0);
    }
    att_stamp(ts, 7);
    if (CL && !PU) cluster_arrive(); /* done reading the peers */
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int c = lane + 32 * i;
        if (c < d && mine(i)) out[(int64_t)h * d + c] = A[i] / Ls;
    }
    if (CL && !PU) cluster_wait(); /* our X stays until the peers are done */
    att_stamp(ts, 8);
}

