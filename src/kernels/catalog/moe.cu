// MoE routing and data movement on CUDA. Routers: one block per token, the
// row's probabilities and choice scores in shared memory, k rounds of a block
// argmax (larger value, then lower index: the CPU's order). Dispatch: a
// counting sort without scratch: per-expert counts, one scan, per-expert
// stable ranks by ballot prefix sums, then a row copy. Combine: one thread
// per output element. Checked by tests/test_catalog_moe.c.
#include "kernels/catalog/cu_common.cuh"

#define ROUTE_BLOCK 128

// Block argmax over (v, i) pairs, ties to the lower index; all threads get it.
__device__ void block_argmax(float &v, int &i, float *shv, int *shi) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) { shv[w] = v; shi[w] = i; }
    __syncthreads();
    v = lane < nw ? shv[lane] : -INFINITY;
    i = lane < nw ? shi[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
}

// ---- kernels ----------------------------------------------------------------
template <typename T>
__global__ void k_moe_route(int kind, float *w, int32_t *ids, const T *logits, const float *bias, int E, int k,
                            int renorm, int ng, int tg, float scale) {
    extern __shared__ float sm[];
    float *p = sm, *ch = sm + E;
    __shared__ float shv[32], gsc[64];
    __shared__ int shi[32], sel[64];
    __shared__ unsigned char gok[64];
    int64_t t = blockIdx.x;
    float m = -INFINITY;
    for (int e = threadIdx.x; e < E; e += blockDim.x) { p[e] = ld(logits, t * E + e); m = fmaxf(m, p[e]); }
    m = block_max(m, shv);
    if (kind == 0) {
        float s = 0;
        for (int e = threadIdx.x; e < E; e += blockDim.x) { ch[e] = p[e]; p[e] = expf(p[e] - m); s += p[e]; }
        s = block_sum(s, shv);
        for (int e = threadIdx.x; e < E; e += blockDim.x) { p[e] /= s; if (bias) ch[e] = p[e] + bias[e]; }
    } else if (kind == 1) {
        for (int e = threadIdx.x; e < E; e += blockDim.x) ch[e] = p[e];
    } else {
        for (int e = threadIdx.x; e < E; e += blockDim.x) { p[e] = 1.f / (1.f + expf(-p[e])); ch[e] = p[e] + (bias ? bias[e] : 0.f); }
        __syncthreads();
        int gs = E / ng;
        for (int g = threadIdx.x; g < ng; g += blockDim.x) {
            float b0 = -INFINITY, b1 = -INFINITY;
            for (int e = g * gs; e < (g + 1) * gs; e++) {
                if (ch[e] > b0) { b1 = b0; b0 = ch[e]; } else if (ch[e] > b1) b1 = ch[e];
            }
            gsc[g] = gs >= 2 ? b0 + b1 : b0;
            gok[g] = 0;
        }
        __syncthreads();
        if (threadIdx.x == 0) // a handful of groups: pick the best topk_group serially
            for (int r = 0; r < tg; r++) {
                int bi = -1;
                for (int g = 0; g < ng; g++) if (!gok[g] && (bi < 0 || gsc[g] > gsc[bi])) bi = g;
                gok[bi] = 1;
            }
        __syncthreads();
        for (int e = threadIdx.x; e < E; e += blockDim.x) if (!gok[e / gs]) ch[e] = -INFINITY;
    }
    __syncthreads();
    int kk = kind == 1 ? 2 : k;
    for (int j = 0; j < kk; j++) {
        float bv = -INFINITY;
        int bi = 0x7fffffff;
        for (int e = threadIdx.x; e < E; e += blockDim.x)
            if (ch[e] > bv || (ch[e] == bv && e < bi)) { bv = ch[e]; bi = e; }
        block_argmax(bv, bi, shv, shi);
        if (threadIdx.x == 0) sel[j] = bi;
        __syncthreads();
        if (threadIdx.x == 0) ch[bi] = -INFINITY;
        // keep the pair's logits for top-2 before they are masked
        if (kind == 1 && threadIdx.x == 0) gsc[j] = bv;
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (kind == 1) {
            float e1 = expf(gsc[1] - gsc[0]);
            w[t * 2] = 1.f / (1.f + e1); w[t * 2 + 1] = e1 / (1.f + e1);
            ids[t * 2] = sel[0]; ids[t * 2 + 1] = sel[1];
        } else {
            float tot = 0;
            for (int j = 0; j < k; j++) tot += p[sel[j]];
            for (int j = 0; j < k; j++) {
                float v = p[sel[j]];
                if (kind == 0) v = renorm ? v / tot : v;
                else v = (renorm ? v / (tot + 1e-20f) : v) * scale;
                w[t * k + j] = v; ids[t * k + j] = sel[j];
            }
        }
    }
}

// Routers with E <= 256 (kinds 0 and 1): one warp per token, the row in
// registers (8 per lane), k rounds of a shuffle argmax that carries the
// winner's probability along: no shared memory, no block barriers.
template <typename T>
__global__ void k_moe_route_warp(int kind, float *w, int32_t *ids, const T *logits, const float *bias, int64_t ntok, int E,
                                 int k, int renorm) {
    int lane = threadIdx.x & 31;
    int64_t t = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (t >= ntok) return;
    float p[8], c[8], m = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        int e = lane + 32 * j;
        p[j] = e < E ? ld(logits, t * E + e) : -INFINITY;
        m = fmaxf(m, p[j]);
    }
    m = warp_max(m);
    float s = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        int e = lane + 32 * j;
        c[j] = p[j];
        if (kind == 0) { p[j] = e < E ? expf(p[j] - m) : 0.f; s += p[j]; }
    }
    if (kind == 0) {
        s = warp_sum(s);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int e = lane + 32 * j;
            p[j] /= s;
            if (bias && e < E) c[j] = p[j] + bias[e];
        }
    }
    int kk = kind == 1 ? 2 : k;
    float tot = 0, sv[2] = {0, 0};
    for (int r = 0; r < kk; r++) {
        float bv = -INFINITY, bp = 0;
        int bi = 0x7fffffff;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int e = lane + 32 * j;
            if (e < E && (c[j] > bv || (c[j] == bv && e < bi))) { bv = c[j]; bi = e; bp = p[j]; }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o), op = __shfl_xor_sync(0xffffffffu, bp, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; bp = op; }
        }
        if ((bi & 31) == lane) {
#pragma unroll
            for (int j = 0; j < 8; j++) if (lane + 32 * j == bi) c[j] = -INFINITY;
        }
        if (lane == 0) { ids[t * kk + r] = bi; if (kind == 0) w[t * kk + r] = bp; }
        tot += bp;
        if (r < 2) sv[r] = bv;
    }
    if (lane == 0) {
        if (kind == 1) {
            float e1 = expf(sv[1] - sv[0]);
            w[t * 2] = 1.f / (1.f + e1); w[t * 2 + 1] = e1 / (1.f + e1);
        } else if (renorm)
            for (int r = 0; r < k; r++) w[t * k + r] /= tot;
    }
}

// Stable rank of each slot within its expert: block e scans all slots in order.
__global__ void k_dispatch_rank(int32_t *perm, int32_t *offsets, const int32_t *ids, int64_t n, int pass) {
    __shared__ int wsum[32];
    __shared__ int base;
    int e = blockIdx.x, lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (threadIdx.x == 0) base = 0;
    __syncthreads();
    for (int64_t s0 = 0; s0 < n; s0 += blockDim.x) {
        int64_t s = s0 + threadIdx.x;
        bool hit = s < n && ids[s] == e;
        unsigned bal = __ballot_sync(0xffffffffu, hit);
        if (lane == 0) wsum[w] = __popc(bal);
        __syncthreads();
        int before = base;
        for (int i = 0; i < w; i++) before += wsum[i];
        before += __popc(bal & ((1u << lane) - 1));
        if (hit && pass) perm[offsets[e] + before] = (int32_t)s;
        __syncthreads();
        if (threadIdx.x == 0) { int tot = 0; for (int i = 0; i < nw; i++) tot += wsum[i]; base += tot; }
        __syncthreads();
    }
    if (!pass && threadIdx.x == 0) offsets[e + 1] = base;
}

__global__ void k_dispatch_scan(int32_t *offsets, int E) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        offsets[0] = 0;
        for (int e = 0; e < E; e++) offsets[e + 1] += offsets[e];
    }
}

__global__ void k_dispatch_copy(float *xs, const int32_t *perm, const int32_t *offsets, const float *x, int E, int k, int64_t D) {
    int64_t row = blockIdx.x;
    if (row >= offsets[E]) return;
    const float *src = x + (int64_t)(perm[row] / k) * D;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) xs[row * D + i] = src[i];
}

template <typename T>
__global__ void k_moe_combine(T *out, const T *y, const float *w, const T *res, int64_t T_, int k, int64_t D, int exact) {
    int64_t n = T_ * D;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = idx / D, i = idx - t * D;
        float acc = 0;
        for (int j = 0; j < k; j++) {
            float wj = w[t * k + j], yv = ld(y, (t * k + j) * D + i);
            if (exact) {
                float p = rnd<T>(__fmul_rn(rnd<T>(wj), yv));
                acc = j ? rnd<T>(__fadd_rn(acc, p)) : p;
            } else acc = fmaf(wj, yv, acc);
        }
        if (res) acc = __fadd_rn(acc, ld(res, idx));
        st(out, idx, acc);
    }
}

// ---- entry points -----------------------------------------------------------
extern "C" zm_status zm_cuda_moe_route(int kind, float *w, int32_t *ids, const void *logits, int dt, const float *bias,
                                       int64_t ntok, int E, int k, int renorm, int ng, int tg, float scale) {
    if (!ntok) return ZM_OK;
    if (kind != 2 && E <= 256) {
        ZM_DISPATCH_FLOAT(dt, k_moe_route_warp<T><<<zm_grid(ntok * 32, 256), 256>>>(kind, w, ids, (const T *)logits, bias, ntok, E, k, renorm));
        return zm_cuda_check_launch("k_moe_route_warp");
    }
    size_t smem = sizeof(float) * 2 * (size_t)E;
    ZM_DISPATCH_FLOAT(dt, k_moe_route<T><<<(unsigned)ntok, ROUTE_BLOCK, smem>>>(kind, w, ids, (const T *)logits, bias, E, k,
                                                                            renorm, ng, tg, scale));
    return zm_cuda_check_launch("k_moe_route");
}

extern "C" zm_status zm_cuda_moe_dispatch(float *xs, int32_t *perm, int32_t *offsets, const float *x, const int32_t *ids,
                                          int64_t ntok, int k, int64_t D, int E) {
    int64_t n = ntok * k;
    k_dispatch_rank<<<E, 256>>>(perm, offsets, ids, n, 0);
    k_dispatch_scan<<<1, 32>>>(offsets, E);
    k_dispatch_rank<<<E, 256>>>(perm, offsets, ids, n, 1);
    zm_status s = zm_cuda_check_launch("k_dispatch_rank");
    if (s || !n) return s;
    k_dispatch_copy<<<(unsigned)n, D >= 1024 ? 256 : 64>>>(xs, perm, offsets, x, E, k, D);
    return zm_cuda_check_launch("k_dispatch_copy");
}

extern "C" zm_status zm_cuda_moe_combine(void *out, const void *y, const float *w, const void *res, int dt, int64_t ntok, int k,
                                         int64_t D, int exact) {
    if (!ntok || !D) return ZM_OK;
    unsigned g = zm_grid(ntok * D, 256);
    if (g > 65536) g = 65536;
    ZM_DISPATCH_FLOAT(dt, k_moe_combine<T><<<g, 256>>>((T *)out, (const T *)y, w, (const T *)res, ntok, k, D, exact));
    return zm_cuda_check_launch("k_moe_combine");
}
