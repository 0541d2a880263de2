/* The persistent decode kernel (ops_cuda.h: zm_gpu_step, zm_gpu_persist).
 * One launch runs a list of steps: all blocks resident (grid sized by
 * occupancy), a grid barrier between steps, each step spread over every
 * block with the row bodies the one-op kernels use (rows.cuh,
 * attn_decode.cuh), so each output is computed by the same code in the same
 * order as launching those kernels one by one: bit-identical.
 * What it was built to save: a launch's ramp-up and tail per op. Measured
 * on the H100 it is slower than the one-op kernels (303 vs 396 tok/s: each
 * step's own latency chain remains and one block per SM hides less of it),
 * so the executor uses it only with ZMLX_CUDA_PERSIST=1. Also measured and
 * removed (docs/BENCHMARKS.md): two blocks of 128 registers per SM (the
 * attention body spills) and an L2 prefetch plan for the steps ahead (the
 * prefetches queue ahead of the running step's own loads).
 * Memory visibility: a step reads what other blocks wrote before the
 * barrier; the barrier is release (fence + relaxed add) / acquire
 * (ld.acquire spin) by thread 0 between two block barriers, the same protocol as a
 * cooperative-groups grid sync, and data written inside the kernel is never
 * read through the non-coherent path (__ldg is for weights only).
 * ZMLX_CUDA_PS_TRACE=1 prints the per-step times of the last run when the
 * kernel is freed.
 * Checked in tests/test_cuda_ops.c (each step kind against its kernel, bit
 * for bit) and tests/test_cuda_graph.c (whole decode graphs, persistent vs
 * one launch per op, bit for bit). */
#include "kernels/cuda/attn_decode.cuh"
#include "kernels/cuda/rows.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct __align__(16) PsShared {
    zm_gpu_step st[2]; /* this step, and the next one in flight */
    float red[32];
    int32_t sid[64], gid[64]; /* expert ids: loaded / from this block's last gate */
    float sw[64], gw[64];
    float part[64][ZM_COMBINE_ROWS];
    AttnSmem att[2]; /* two attention items per block (warps 0-3, 4-7) */
    float amv[32];
    int ami[32];
    int last;
};

#define PS_DT(dt, ...) ZM_SWITCH_DT(dt, break, __VA_ARGS__) /* zm_gpu_persist_new checked dt */

/* Block vb's share [start, end) of total items (chunks a multiple of al). */
__device__ __forceinline__ void ps_chunk(int64_t total, int64_t al, int vb, int nvb, int64_t &start, int64_t &end) {
    int64_t c = (total + nvb - 1) / nvb;
    c = (c + al - 1) / al * al;
    start = min((int64_t)vb * c, total);
    end = min(start + c, total);
}

/* Step src into shared memory without waiting for it (cp.async, 8 bytes
 * per thread); ps_copy_wait() before the next block barrier completes it. */
__device__ __forceinline__ void ps_copy_step(zm_gpu_step *dst, const zm_gpu_step *src) {
    static_assert(sizeof(zm_gpu_step) % 8 == 0, "step size");
    const int n = (int)(sizeof(zm_gpu_step) / 8);
    if (threadIdx.x < n) {
        const unsigned d = (unsigned)__cvta_generic_to_shared(reinterpret_cast<char *>(dst) + 8 * threadIdx.x);
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(d), "l"(reinterpret_cast<const char *>(src) + 8 * threadIdx.x)
                     : "memory");
    }
}
__device__ __forceinline__ void ps_copy_wait() { asm volatile("cp.async.wait_all;" ::: "memory"); }

/* All blocks meet; writes before it are visible to every block after it:
 * fence + relaxed add (no round trip) by thread 0, an acquire spin, and
 * block barriers around. trace (thread 0 of each block): the latest
 * arrival time per barrier (atomicMax), and block 0's exit time. */
__device__ __forceinline__ void ps_grid_sync(unsigned *bar, unsigned target, unsigned long long *trace, int i) {
    ps_copy_wait();
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long t;
        if (trace) {
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
            atomicMax(trace + 2 * i + 1, t);
        }
        __threadfence();
        asm volatile("red.relaxed.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
        } while (v < target);
        if (trace && blockIdx.x == 0) {
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
            trace[2 * i] = t;
        }
    }
    __syncthreads();
}

template <int DT>
__device__ __forceinline__ void ps_matvec(const zm_gpu_step &s, float4 *xs, float *red, int vb, int nvb) {
    int64_t start, end;
    ps_chunk(s.total, 1, vb, nvb, start, end);
    if (start >= end) return;
    load_x_swz(xs, s.x, s.nb * 32, s.nw, s.eps, red);
    __syncthreads();
    mv_rows<DT>(s.s, s.nb, s.lpr, xs, start, end);
}

template <int DT>
__device__ __forceinline__ void ps_swiglu(const zm_gpu_step &s, const int32_t *ids, float4 *xs, float *red, int vb,
                                          int nvb) {
    int64_t start, end;
    ps_chunk(s.total, 1, vb, nvb, start, end);
    if (start >= end) return;
    load_x_swz(xs, s.x, s.nb * 32, s.nw, s.eps, red);
    __syncthreads();
    ex_rows<DT, true>(s.s.q[0], s.s.d[0], s.s.q[1], s.s.d[1], s.rows, s.nb, s.lpr, ids, xs, 0, s.s.y[0], start, end);
}

template <int DT>
__device__ __forceinline__ void ps_combine(const zm_gpu_step &s, const int32_t *ids, const float *w, float4 *xs,
                                           float (*part)[ZM_COMBINE_ROWS], int vb, int nvb) {
    int64_t start, end;
    ps_chunk(s.total, 1, vb, nvb, start, end);
    if (start >= end) return;
    load_slots_swz(xs, s.x, s.k, s.nb * 32);
    __syncthreads();
    for (int64_t r = start; r < end; r += ZM_COMBINE_ROWS)
        cb_rows<DT>(s.s.q[0], s.s.d[0], s.rows, s.nb, s.lpr, ids, w, s.k, xs, s.s.res[0], s.s.y[0], r,
                    min(r + ZM_COMBINE_ROWS, end), part);
}

template <int DT>
__device__ __forceinline__ void ps_embed(const zm_gpu_step &s, int vb, int nvb) {
    for (int64_t e = (int64_t)vb * ZM_BLOCK + threadIdx.x; e < s.total; e += (int64_t)nvb * ZM_BLOCK)
        s.s.y[0][e] = embed_value<DT>(s.s.q[0], s.s.d[0], s.rows, s.ids[e / s.rows], e % s.rows);
}

__device__ __forceinline__ void ps_attn(const zm_gpu_step &s, PsShared &sh, int vb, int nvb) {
    const int warp = threadIdx.x >> 5, half = warp / ZM_ATT_HPB, wg = warp % ZM_ATT_HPB;
    const int bar = 1 + 2 * half; /* named barriers bar, bar + 1 */
    for (int64_t it = (int64_t)vb * 2 + half; it < s.total; it += (int64_t)nvb * 2) {
        const int z = (int)(it % s.z), kvh = (int)(it / s.z % s.n_kv), split = (int)(it / s.z / s.n_kv);
        named_bar(bar, 32 * ZM_ATT_HPB); /* the previous item's shared memory is free */
        ZM_ATT_DPL128(s.hd, {
            AttnPre<DPL> P;
            attn_preload<DPL>(P, s.kc, s.vc, s.n_kv, s.hd, s.n_split, s.ids, kvh, split, (int)s.rows);
            attn_decode_item<DPL>(s.q, s.kc, s.vc, s.n_head, s.n_kv, s.hd, s.n_split, s.scale, s.pm, s.pl, s.pacc, s.counter,
                                  s.out, s.qkn, kvh, split, z, s.z, wg, bar, sh.att[half], P);
        });
    }
}

/* Partial argmax per block, merged by the last block to finish. */
__device__ __forceinline__ void ps_argmax(const zm_gpu_step &s, PsShared &sh, float *amv, int *ami, int *amc, int vb,
                                          int nvb) {
    int64_t start, end;
    ps_chunk(s.total, 4, vb, nvb, start, end);
    float bv = -INFINITY;
    int bi = ZM_AM_NONE;
    if (start < end) argmax_range(s.x, start, end, true, bv, bi);
    argmax_block(bv, bi, sh.amv, sh.ami);
    if (threadIdx.x == 0) {
        amv[vb] = bv;
        ami[vb] = bi;
        __threadfence();
        sh.last = atomicAdd(amc, 1) == nvb - 1;
        if (sh.last) *amc = 0; /* ready for the next run */
    }
    __syncthreads();
    if (!sh.last || threadIdx.x >= 32) return;
    __threadfence();
    float v = -INFINITY;
    int b = ZM_AM_NONE;
    for (int j = threadIdx.x; j < nvb; j += 32) am_merge(__ldcg(amv + j), __ldcg(ami + j), v, b);
    am_warp(v, b);
    if (threadIdx.x == 0) s.ids_out[0] = b == ZM_AM_NONE ? 0 : b;
}

/* One block per SM: 255 registers (at 128 the attention body spills). */
__global__ void __launch_bounds__(ZM_BLOCK, 1)
    k_persist(const zm_gpu_step *steps, int n, unsigned *bar, float *amv, int *ami, int *amc, unsigned long long *trace) {
    extern __shared__ float4 xs[];
    __shared__ PsShared sh;
    const int vb = blockIdx.x, nvb = gridDim.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    ps_copy_step(&sh.st[0], &steps[0]);
    ps_copy_wait();
    __syncthreads();
    const int32_t *gsrc = nullptr; /* the ids this block's last gate wrote (sh.gid holds them) */
    const float *gwsrc = nullptr;
    unsigned nbar = 0;
    for (int i = 0; i < n; i++) {
        const zm_gpu_step &s = sh.st[i & 1];
        if (i + 1 < n) ps_copy_step(&sh.st[(i + 1) & 1], &steps[i + 1]);
        switch (s.op) {
        case ZM_PS_MATVEC: PS_DT(s.dt, ps_matvec<DT>(s, xs, sh.red, vb, nvb)); break;
        case ZM_PS_GATE:
            if (warp == 0) {
                ZM_NPL(s.n_exp, (gate_row<NPL, true>(s.x, s.n_exp, s.k, s.renorm, sh.gid, sh.gw)));
                __syncwarp();
                if (vb == 0 && lane < s.k) {
                    s.ids_out[lane] = sh.gid[lane];
                    s.w_out[lane] = sh.gw[lane];
                }
            }
            gsrc = s.ids_out;
            gwsrc = s.w_out;
            break;
        case ZM_PS_SWIGLU: {
            const bool fg = s.ids == gsrc;
            if (!fg && threadIdx.x < s.k) sh.sid[threadIdx.x] = __ldcg(s.ids + threadIdx.x);
            PS_DT(s.dt, ps_swiglu<DT>(s, fg ? sh.gid : sh.sid, xs, sh.red, vb, nvb));
            break;
        }
        case ZM_PS_COMBINE: {
            const bool fg = s.ids == gsrc, fw = fg && s.w == gwsrc;
            if (!fg && threadIdx.x < s.k) sh.sid[threadIdx.x] = __ldcg(s.ids + threadIdx.x);
            if (!fw && threadIdx.x < s.k) sh.sw[threadIdx.x] = __ldcg(s.w + threadIdx.x);
            PS_DT(s.dt, ps_combine<DT>(s, fg ? sh.gid : sh.sid, fw ? sh.gw : sh.sw, xs, sh.part, vb, nvb));
            break;
        }
        case ZM_PS_ATTN: ps_attn(s, sh, vb, nvb); break;
        case ZM_PS_EMBED: PS_DT(s.dt, ps_embed<DT>(s, vb, nvb)); break;
        case ZM_PS_ARGMAX: ps_argmax(s, sh, amv, ami, amc, vb, nvb); break;
        default: break;
        }
        if (i + 1 < n) {
            if (s.op == ZM_PS_GATE) { /* every block gated for itself */
                ps_copy_wait();
                __syncthreads();
            } else {
                ps_grid_sync(bar, ++nbar * (unsigned)nvb, trace, i);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Host
struct zm_gpu_persist {
    zm_gpu_step *steps; /* device */
    int n, grid;
    size_t smem;
    unsigned *bar;      /* device: barrier count, then the argmax counter */
    float *amv;
    int *ami;
    unsigned long long *trace; /* ZMLX_CUDA_PS_TRACE=1: per-step times, printed at free */
    int *ops;           /* host: step kinds (for the trace summary) */
};

extern "C" zm_status zm_gpu_persist_new(zm_gpu_persist **out, const zm_gpu_step *steps, int n) {
    *out = nullptr;
    if (n < 1 || !steps) return zm__err(ZM_ERR_INVALID, "persist: no steps");
    zm_gpu_step *h = (zm_gpu_step *)malloc(sizeof *h * (size_t)n);
    if (!h) return zm__err(ZM_ERR_NOMEM, "persist: out of memory");
    memcpy(h, steps, sizeof *h * (size_t)n);
    size_t smem = 16;
    for (int i = 0; i < n; i++) {
        zm_gpu_step &s = h[i];
        const bool mat = s.op == ZM_PS_MATVEC || s.op == ZM_PS_SWIGLU || s.op == ZM_PS_COMBINE || s.op == ZM_PS_EMBED;
        if (s.op < ZM_PS_MATVEC || s.op > ZM_PS_ARGMAX) { free(h); return zm__err(ZM_ERR_INVALID, "persist: step %d: kind %d", i, s.op); }
        if (mat && s.dt != ZM_Q4_0 && s.dt != ZM_Q8_0 && s.dt != ZM_F32 && s.dt != ZM_F16 && s.dt != ZM_BF16) {
            free(h);
            return zm__err(ZM_ERR_DTYPE, "persist: step %d: dtype %s", i, zm_dtype_name((zm_dtype)s.dt));
        }
        size_t need = 0;
        if (s.op == ZM_PS_MATVEC || s.op == ZM_PS_SWIGLU) need = (size_t)s.nb * 32 * 4;
        if (s.op == ZM_PS_COMBINE) need = (size_t)s.k * s.nb * 32 * 4;
        if (need > smem) smem = need;
    }
    zm_gpu_persist *p = (zm_gpu_persist *)calloc(1, sizeof *p);
    if (!p) { free(h); return zm__err(ZM_ERR_NOMEM, "persist: out of memory"); }
    p->n = n;
    p->smem = smem;
    void (*kern)(const zm_gpu_step *, int, unsigned *, float *, int *, int *, unsigned long long *) = k_persist;
    zm_status st = ZM_OK;
    if (smem > 48 * 1024 && cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess)
        st = zm__err(ZM_ERR_SHAPE, "persist: %zu bytes of shared memory", smem);
    int occ = 0;
    if (st == ZM_OK && (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, ZM_BLOCK, smem) != cudaSuccess || occ < 1))
        st = zm__err(ZM_ERR_CUDA, "persist: no block fits on an SM (%zu bytes of shared memory)", smem);
    if (st == ZM_OK) {
        p->grid = zm__sm_count(); /* one block per SM (occ >= 1 checked above) */
        if (cudaMalloc((void **)&p->steps, sizeof *h * (size_t)n) != cudaSuccess ||
            cudaMalloc((void **)&p->bar, 256) != cudaSuccess || cudaMalloc((void **)&p->amv, 4 * (size_t)p->grid) != cudaSuccess ||
            cudaMalloc((void **)&p->ami, 4 * (size_t)p->grid) != cudaSuccess)
            st = zm__err(ZM_ERR_NOMEM, "persist: device allocation failed");
    }
    const char *env = getenv("ZMLX_CUDA_PS_TRACE");
    if (st == ZM_OK && env && atoi(env) > 0) {
        p->ops = (int *)malloc(sizeof(int) * (size_t)n);
        if (!p->ops || cudaMalloc((void **)&p->trace, 16 * (size_t)n) != cudaSuccess) st = zm__err(ZM_ERR_NOMEM, "persist: trace buffer");
        else for (int i = 0; i < n; i++) p->ops[i] = h[i].op;
    }
    if (st == ZM_OK && (cudaMemcpy(p->steps, h, sizeof *h * (size_t)n, cudaMemcpyHostToDevice) != cudaSuccess ||
                        cudaMemset(p->bar, 0, 256) != cudaSuccess))
        st = zm__err(ZM_ERR_CUDA, "persist: upload failed");
    free(h);
    if (st != ZM_OK) { cudaGetLastError(); zm_gpu_persist_free(p); return st; }
    *out = p;
    return ZM_OK;
}

extern "C" zm_status zm_gpu_persist_run(zm_gpu_persist *p, void *stream) {
    if (!p) return zm__err(ZM_ERR_INVALID, "persist: no kernel");
    cudaStream_t st = (cudaStream_t)stream;
    cudaMemsetAsync(p->bar, 0, 4, st);
    if (p->trace) cudaMemsetAsync(p->trace, 0, 16 * (size_t)p->n, st);
    /* no PDL attribute: every block must find its SM free of the
     * predecessor, or the grid barrier could wait for a block not resident */
    k_persist<<<p->grid, ZM_BLOCK, p->smem, st>>>(p->steps, p->n, p->bar, p->amv, p->ami, (int *)p->bar + 1, p->trace);
    return zm__cuda_ck("k_persist");
}


/* ZMLX_CUDA_PS_TRACE: the first 12 steps one by one, then per step kind, the time from the previous barrier's
 * exit to the last block's arrival (work) and from there to the exit
 * (barrier), summed over the last run's steps. */
static void trace_dump(zm_gpu_persist *p) {
    unsigned long long *t = (unsigned long long *)malloc(16 * (size_t)p->n);
    if (!t || cudaDeviceSynchronize() != cudaSuccess || cudaMemcpy(t, p->trace, 16 * (size_t)p->n, cudaMemcpyDeviceToHost) != cudaSuccess) {
        free(t);
        return;
    }
    static const char *names[] = {"?", "matvec", "gate", "swiglu", "combine", "attention", "embed", "argmax"};
    double work[8] = {0}, wait[8] = {0};
    int cnt[8] = {0};
    unsigned long long last = t[0]; /* the previous barrier's exit (a gate has none: its
                                        time counts with the step after it) */
    for (int i = 1; i + 1 < p->n; i++) {
        if (!t[2 * i]) continue;
        int o = p->ops[i] >= 0 && p->ops[i] < 8 ? p->ops[i] : 0;
        if (i < 12) fprintf(stderr, "  step %2d %-10s work %.2f us, barrier %.2f us\n", i, names[o], (double)(long long)(t[2 * i + 1] - last) * 1e-3, (double)(long long)(t[2 * i] - t[2 * i + 1]) * 1e-3);
        work[o] += (double)(long long)(t[2 * i + 1] - last) * 1e-3;
        wait[o] += (double)(long long)(t[2 * i] - t[2 * i + 1]) * 1e-3;
        cnt[o]++;
        last = t[2 * i];
    }
    fprintf(stderr, "persist trace (%d steps, %d blocks): step kind, count, work us, barrier us\n", p->n, p->grid);
    for (int o = 1; o < 8; o++)
        if (cnt[o]) fprintf(stderr, "  %-10s %5d %9.1f %9.1f  (%.2f + %.2f us each)\n", names[o], cnt[o], work[o], wait[o], work[o] / cnt[o], wait[o] / cnt[o]);
    free(t);
}

extern "C" void zm_gpu_persist_free(zm_gpu_persist *p) {
    if (!p) return;
    if (p->trace) trace_dump(p);
    cudaFree(p->trace);
    free(p->ops);
    cudaFree(p->steps);
    cudaFree(p->bar);
    cudaFree(p->amv);
    cudaFree(p->ami);
    free(p);
}
