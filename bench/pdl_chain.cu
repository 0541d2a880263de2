/* What a chain of dependent kernels costs on this GPU, apart from the
 * decode: n launches captured in a CUDA graph with programmatic dependent
 * launch (as the decode graph), replayed; per launch, for several grid
 * shapes (blocks x threads) and bodies:
 *   empty  - wait, release, return
 *   chain  - wait, read the 8 KB vector the previous launch wrote (through
 *            L2), a block sum, 16 rows of 2048 floats per block from L2
 *            (static, in L2 after the first replay) dotted with it, each
 *            block writes its rows: the skeleton of a decode matvec.
 *   chain8 - chain, x written in 8 copies; static - chain with a static x
 *   flag   - chain, but each launch waits for its predecessor by spinning
 *            on the predecessor's block counter (release/acquire) instead
 *            of griddepcontrol.wait, releases its dependents after the spin
 *            and waits on the grid only at its end (completion order kept)
 *   flagem - the same with an empty body
 *   q8     - chain with x quantized to int8 blocks in shared memory and
 *            dp4a dots (llama.cpp's activation mode) instead of float
 * Built by make (with CUDA) as build/bench/pdl_chain.
 * Usage: build/bench/pdl_chain [launches [body: 0-6, 9 = empty, chain, flag*]] */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define COLS 2048

__device__ __forceinline__ void wait_release() {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

__global__ void k_empty() { wait_release(); }

/* The flag protocol: launch i's blocks each add 1 to cnt[i] once their
 * writes are done (release); launch i+1 spins until cnt[i] reaches
 * (epoch + 1) * grid (acquire). epoch: replays so far, advanced by the
 * graph's last node (k_epoch), which waits on the grid as usual. */
__device__ __forceinline__ unsigned ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void flag_wait(const unsigned *prev, const unsigned *ep) {
    if (prev) {
        if (threadIdx.x == 0) {
            const unsigned tgt = (*(volatile const unsigned *)ep + 1) * gridDim.x; /* same grid in the chain */
            while (ld_acquire(prev) < tgt) {}
        }
        __syncthreads();
    } else asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}
__device__ __forceinline__ void flag_done(unsigned *self) {
    __syncthreads();
    if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(self) : "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
}
__global__ void k_flag_empty(const unsigned *prev, unsigned *self, const unsigned *ep) {
    flag_wait(prev, ep);
    flag_done(self);
}
__global__ void k_epoch(unsigned *ep) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    if (threadIdx.x == 0) *ep += 1;
}

/* One lane's part of a Q4_0-like row (1 KB: blocks lane and lane + 32, 16
 * bytes of nibbles each) against float x, decoded with the exponent trick;
 * xs is laid out (4i+m)*64 + lane + 32j, so lane l's reads are
 * conflict-free. */
__device__ __forceinline__ float dot_f32x(const uint4 w[2], int lane, const float *xs) {
    float a = 0.f;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const unsigned q[4] = {w[j].x, w[j].y, w[j].z, w[j].w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const unsigned lo = q[i] & 0x0F0F0F0Fu, hi = (q[i] >> 4) & 0x0F0F0F0Fu;
#pragma unroll
            for (int m = 0; m < 4; m++) {
                a = __fmaf_rn(__int_as_float((int)__byte_perm(lo, 0x4B000000u, 0x7540 + m)) - 8388616.f, xs[(4 * i + m) * 64 + lane + 32 * j], a);
                a = __fmaf_rn(__int_as_float((int)__byte_perm(hi, 0x4B000000u, 0x7540 + m)) - 8388616.f, xs[(16 + 4 * i + m) * 64 + lane + 32 * j], a);
            }
        }
    }
    return a;
}
/* The same against x as int8 blocks (xq: 8 ints of 4 a block, xd: the
 * block scales), dp4a dots; elements 0..15 low nibbles, 16..31 high. */
__device__ __forceinline__ float dot_q8x(const uint4 w[2], int lane, const int *xq, const float *xd) {
    float a = 0.f;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const int b = lane + 32 * j;
        const int4 *x4 = reinterpret_cast<const int4 *>(xq + b * 8);
        const int4 xa = x4[0], xb = x4[1];
        const int xl[4] = {xa.x, xa.y, xa.z, xa.w}, xh[4] = {xb.x, xb.y, xb.z, xb.w};
        const unsigned q[4] = {w[j].x, w[j].y, w[j].z, w[j].w};
        int acc = 0, sx = 0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            acc = __dp4a((int)(q[i] & 0x0F0F0F0Fu), xl[i], acc);
            acc = __dp4a((int)((q[i] >> 4) & 0x0F0F0F0Fu), xh[i], acc);
            sx = __dp4a(0x01010101, xl[i], sx);
            sx = __dp4a(0x01010101, xh[i], sx);
        }
        a = __fmaf_rn((float)(acc - 8 * sx), xd[b], a);
    }
    return a;
}

/* x_in: COLS floats from the previous launch; W: rows x COLS; y_out: the
 * first COLS rows' outputs (the next launch's x). */
template <int MODE> /* 0: griddepcontrol, 1: flags, 2: q8 activations */
__global__ void k_chain(const float *x_in, const float *W, float *y_out, int rows_per_block, int total_rows, int rep,
                        const unsigned *prev, unsigned *self, const unsigned *ep) {
    extern __shared__ float xs[];
    __shared__ float red[32];
    __shared__ int xq[COLS / 4];
    __shared__ float xd[COLS / 32];
    if (MODE == 1) flag_wait(prev, ep);
    else wait_release();
    const int t = threadIdx.x, nt = blockDim.x, lane = t & 31, warp = t >> 5, nw = nt >> 5;
    float s = 0.f;
    for (int i = t; i < COLS; i += nt) {
        float v = __ldcg(x_in + (blockIdx.x % rep) * COLS + i);
        xs[i] = v;
        s += v * v;
    }
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(~0u, s, o);
    if (lane == 0) red[warp] = s;
    __syncthreads();
    float tot = lane < nw ? red[lane] : 0.f;
    for (int o = 16; o; o >>= 1) tot += __shfl_xor_sync(~0u, tot, o);
    const float scale = rsqrtf(tot / COLS + 1e-6f);
    const int r0 = blockIdx.x * rows_per_block;
    if (MODE == 2) { /* quantize x: warp w takes 32-blocks w, w+nw, ..., lane l element l
                        (the barrier as measured; the one above already orders xs) */
        __syncthreads();
        for (int b = warp; b < COLS / 32; b += nw) {
            const float v = xs[b * 32 + lane];
            float a = fabsf(v);
            for (int o = 16; o; o >>= 1) a = fmaxf(a, __shfl_xor_sync(~0u, a, o));
            const float d = a / 127.f, id = d > 0.f ? 1.f / d : 0.f;
            const int q = __float2int_rn(v * id) & 0xff;
            const int q1 = __shfl_down_sync(~0u, q, 1), q2 = __shfl_down_sync(~0u, q, 2), q3 = __shfl_down_sync(~0u, q, 3);
            if ((lane & 3) == 0) xq[b * 8 + (lane >> 2)] = q | (q1 << 8) | (q2 << 16) | (q3 << 24);
            if (lane == 0) xd[b] = d;
        }
        __syncthreads();
    }
    for (int r = r0 + warp; r < r0 + rows_per_block && r < total_rows; r += nw) {
        const uint4 *w4 = reinterpret_cast<const uint4 *>(W) + (size_t)r * 64;
        uint4 w[2];
        w[0] = __ldg(w4 + lane);
        w[1] = __ldg(w4 + lane + 32);
        float a = MODE == 2 ? dot_q8x(w, lane, xq, xd) : dot_f32x(w, lane, xs);
        for (int o = 16; o; o >>= 1) a += __shfl_xor_sync(~0u, a, o);
        if (lane == 0 && r < COLS)
            for (int c = 0; c < rep; c++) y_out[c * COLS + r] = a * scale * 1e-3f;
    }
    if (MODE == 1) flag_done(self);
}

static void launch(void (*k)(), int grid, int block, cudaStream_t st) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    cfg.gridDim = grid; cfg.blockDim = block; cfg.stream = st;
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at; cfg.numAttrs = 1;
    cudaLaunchKernelEx(&cfg, k);
}
static void launch_chain(int mode, int grid, int block, cudaStream_t st, const float *x, const float *W, float *y, int rpb,
                         int total, int rep, const unsigned *prev, unsigned *self, const unsigned *ep) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    cfg.gridDim = grid; cfg.blockDim = block; cfg.stream = st; cfg.dynamicSmemBytes = COLS * 4;
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at; cfg.numAttrs = 1;
    if (mode == 1) cudaLaunchKernelEx(&cfg, k_chain<1>, x, W, y, rpb, total, rep, prev, self, ep);
    else if (mode == 2) cudaLaunchKernelEx(&cfg, k_chain<2>, x, W, y, rpb, total, rep, prev, self, ep);
    else cudaLaunchKernelEx(&cfg, k_chain<0>, x, W, y, rpb, total, rep, prev, self, ep);
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 300;
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const int total = 5120; /* QKV-sized: 5120 rows of 2048 */
    float *W, *buf[2];
    cudaMalloc(&W, (size_t)total * 1024);
    cudaMemset(W, 0x11, (size_t)total * 1024);
    float *stat;
    for (int i = 0; i < 2; i++) { cudaMalloc(&buf[i], 8 * COLS * 4); cudaMemset(buf[i], 0, 8 * COLS * 4); }
    cudaMalloc(&stat, 8 * COLS * 4); cudaMemset(stat, 0, 8 * COLS * 4);
    cudaEvent_t a, b;
    cudaEventCreate(&a); cudaEventCreate(&b);
    struct { int mul, threads; } shapes[] = {{4, 256}, {3, 256}, {2, 256}, {1, 256}, {2, 512}, {1, 1024}, {1, 768}, {1, 512}};
    /* body: 0 empty, 1 chain, 2 chain with x written in 8 copies (block b
     * reads copy b % 8), 3 chain reading a static x (not written in the chain) */
    static const char *names[] = {"empty", "chain", "chain8", "static", "flag", "flagem", "q8"};
    unsigned *cnt, *ep;
    cudaMalloc(&cnt, (size_t)(n + 1) * 4);
    cudaMalloc(&ep, 4);
    const int only = argc > 2 ? atoi(argv[2]) : -1; /* one body only */
    for (int body = 0; body < 7; body++) {
        if (only >= 0 && body != only && !(only == 9 && (body == 0 || body == 1 || body >= 4))) continue;
        for (auto sh : shapes) {
            if (body >= 4 && sh.threads != 256) continue;
            cudaMemset(cnt, 0, (size_t)(n + 1) * 4);
            cudaMemset(ep, 0, 4);
            const int grid = sh.mul * sms;
            const int rpb = (total + grid - 1) / grid;
            cudaGraph_t g;
            cudaGraphExec_t ge;
            cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
            for (int i = 0; i < n; i++) {
                const unsigned *prev = i ? cnt + i - 1 : nullptr;
                if (body == 0) launch(k_empty, grid, sh.threads, st);
                else if (body == 5) {
                    cudaLaunchConfig_t cfg = {};
                    cudaLaunchAttribute at[1];
                    cfg.gridDim = grid; cfg.blockDim = sh.threads; cfg.stream = st;
                    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
                    at[0].val.programmaticStreamSerializationAllowed = 1;
                    cfg.attrs = at; cfg.numAttrs = 1;
                    cudaLaunchKernelEx(&cfg, k_flag_empty, prev, cnt + i, (const unsigned *)ep);
                } else if (body == 3) launch_chain(0, grid, sh.threads, st, stat, W, buf[(i + 1) & 1], rpb, total, 1, prev, cnt + i, ep);
                else launch_chain(body == 4 ? 1 : body == 6 ? 2 : 0, grid, sh.threads, st, buf[i & 1], W, buf[(i + 1) & 1], rpb,
                                  total, body == 2 ? 8 : 1, prev, cnt + i, ep);
            }
            if (body == 4 || body == 5) {
                cudaLaunchConfig_t cfg = {};
                cudaLaunchAttribute at[1];
                cfg.gridDim = 1; cfg.blockDim = 32; cfg.stream = st;
                at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
                at[0].val.programmaticStreamSerializationAllowed = 1;
                cfg.attrs = at; cfg.numAttrs = 1;
                cudaLaunchKernelEx(&cfg, k_epoch, ep);
            }
            cudaStreamEndCapture(st, &g);
            if (cudaGraphInstantiate(&ge, g, 0) != cudaSuccess) { printf("instantiate failed\n"); return 1; }
            for (int w = 0; w < 3; w++) cudaGraphLaunch(ge, st);
            cudaEventRecord(a, st);
            const int reps = 20;
            for (int r = 0; r < reps; r++) cudaGraphLaunch(ge, st);
            cudaEventRecord(b, st);
            cudaEventSynchronize(b);
            float ms = 0;
            cudaEventElapsedTime(&ms, a, b);
            cudaError_t e = cudaGetLastError();
            printf("%-6s grid %4d x %4d threads (%d rows a block): %.3f us a launch %s\n", names[body], grid, sh.threads,
                   body ? rpb : 0, ms * 1e3 / reps / n, e == cudaSuccess ? "" : cudaGetErrorString(e));
            cudaGraphExecDestroy(ge);
            cudaGraphDestroy(g);
        }
    }
    return 0;
}
