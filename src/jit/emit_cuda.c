/* The CUDA C emitter, one source per call signature (input dtypes and
 * broadcast modes, output dtype are compiled in). Element-wise: k_ew, a
 * grid-stride loop, and k_ew4, the same with 4 elements per thread through
 * 16-byte (f32) or 8-byte (f16/bf16) loads and stores, used when sizes and
 * pointers are aligned. Row-wise: k_row, one block per row, each reduction a
 * thread-strided pass plus a warp-shuffle tree, then the per-element write.
 * No headers are included: f16 goes through cvt PTX, bf16 through bit
 * operations, so NVRTC needs no include path. Checked on the GPU by
 * tests/test_kernel_cuda.c; the text itself by tests/test_kernel.c. */
#include "jit/jit.h"
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------
static const char *zm__ctype(int dt) { return dt == ZM_F32 ? "float" : "unsigned short"; }
static const char *zm__ld(int dt) { return dt == ZM_F32 ? "zm_ld_f32" : dt == ZM_F16 ? "zm_ld_f16" : "zm_ld_bf16"; }
static const char *zm__st(int dt) { return dt == ZM_F32 ? "zm_st_f32" : dt == ZM_F16 ? "zm_st_f16" : "zm_st_bf16"; }

static const char zm__cuda_head[] =
    "#define ZM_FN static __device__ __forceinline__\n"
    "#define ZM_INF __int_as_float(0x7f800000)\n#define ZM_NAN __int_as_float(0x7fffffff)\n"
    "typedef long long i64;\n"
    "ZM_FN float zm_exp(float a) { return expf(a); }\n"
    "struct zm_prm { float p[8]; };\n"
    "ZM_FN float zm_ld_f32(float x) { return x; }\n"
    "ZM_FN float zm_ld_f16(unsigned short h) { float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h)); return f; }\n"
    "ZM_FN float zm_ld_bf16(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }\n"
    "ZM_FN float zm_st_f32(float f) { return f; }\n"
    "ZM_FN unsigned short zm_st_f16(float f) { unsigned short h; asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(f)); return h; }\n"
    "/* round to nearest even; NaN stays a quiet NaN */\n"
    "ZM_FN unsigned short zm_st_bf16(float f) {\n"
    "    unsigned u = __float_as_uint(f);\n"
    "    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);\n"
    "    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);\n"
    "}\n";

/* Device function `fname`(a0.., rv, P) computing the cone of root. */
static void zm__emit_fn(zm__sb *b, const zm_kernel *k, const char *fname, int32_t root) {
    zm__sb_printf(b, "ZM_FN float %s(", fname);
    for (int q = 0; q < k->n_in; q++) zm__sb_printf(b, "float a%d, ", q);
    zm__sb_puts(b, "const float *rv, const zm_prm &P) {\n");
    for (int q = 0; q < k->n_params; q++) zm__sb_printf(b, "    const float p%d = P.p[%d];\n", q, q);
    for (int q = 0; q < k->n_reds; q++) zm__sb_printf(b, "    const float r%d = rv[%d];\n", q, q);
    uint8_t *mark = calloc((size_t)k->ir.n + 1, 1);
    if (!mark) { b->oom = 1; return; }
    zm__emit_mark(&k->ir, root, mark);
    for (int32_t i = 0; i <= root; i++) {
        if (!mark[i]) continue;
        zm__sb_printf(b, "    const float t%d = ", i);
        zm__emit_node(b, &k->ir, i, 1);
        zm__sb_puts(b, ";\n");
    }
    free(mark);
    zm__sb_printf(b, "    return t%d;\n}\n", root);
}

static void zm__emit_params(zm__sb *b, const zm_kernel *k, const zm__sig *sig) {
    for (int q = 0; q < k->n_in; q++)
        zm__sb_printf(b, "const %s *__restrict__ in%d, ", zm__ctype(sig->in_dtype[q]), q);
    zm__sb_printf(b, "%s *__restrict__ out, zm_prm P)", zm__ctype(sig->out_dtype));
}

/* Argument list "(loads..., rv, P)" with element index expressions. */
static void zm__emit_call(zm__sb *b, const zm_kernel *k, const zm__sig *sig, const char *fname, const char *full,
                          const char *row) {
    zm__sb_printf(b, "%s(", fname);
    for (int q = 0; q < k->n_in; q++) {
        int m = sig->in_mode[q];
        if (m == ZM__MODE_SCALAR) zm__sb_printf(b, "s%d, ", q);
        else zm__sb_printf(b, "%s(in%d[%s]), ", zm__ld(sig->in_dtype[q]), q, m == ZM__MODE_ROW ? row : full);
    }
    zm__sb_puts(b, "rv, P)");
}

static void zm__emit_scalars(zm__sb *b, const zm_kernel *k, const zm__sig *sig) {
    for (int q = 0; q < k->n_in; q++)
        if (sig->in_mode[q] == ZM__MODE_SCALAR)
            zm__sb_printf(b, "    const float s%d = %s(in%d[0]);\n", q, zm__ld(sig->in_dtype[q]), q);
}

// ---------------------------------------------------------------------------
static void zm__emit_ew(zm__sb *b, const zm_kernel *k, const zm__sig *sig) {
    zm__emit_fn(b, k, "zm_f", k->root);
    zm__sb_puts(b, "\n/* grid-stride loop, one element per step */\nextern \"C\" __global__ void k_ew(i64 n, i64 cols, ");
    zm__emit_params(b, k, sig);
    zm__sb_puts(b, " {\n    const float *rv = 0;\n");
    zm__emit_scalars(b, k, sig);
    zm__sb_puts(b, "    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x)\n        out[i] = ");
    zm__sb_printf(b, "%s(", zm__st(sig->out_dtype));
    zm__emit_call(b, k, sig, "zm_f", "i", "i % cols");
    zm__sb_puts(b, ");\n}\n\n");

    /* 4 per thread: float4 / uint2 loads and stores (caller checks alignment) */
    zm__sb_puts(b, "/* 4 elements per step with vector loads; n, cols multiples of 4, pointers aligned */\n"
                   "extern \"C\" __global__ void k_ew4(i64 n4, i64 cols, ");
    zm__emit_params(b, k, sig);
    zm__sb_puts(b, " {\n    const float *rv = 0;\n");
    zm__emit_scalars(b, k, sig);
    zm__sb_puts(b, "    for (i64 v = (i64)blockIdx.x * blockDim.x + threadIdx.x; v < n4; v += (i64)blockDim.x * gridDim.x) {\n");
    for (int q = 0; q < k->n_in; q++) {
        int m = sig->in_mode[q], dt = sig->in_dtype[q];
        if (m == ZM__MODE_SCALAR) {
            zm__sb_printf(b, "        float x%d[4] = {s%d, s%d, s%d, s%d};\n", q, q, q, q, q);
            continue;
        }
        const char *idx = m == ZM__MODE_ROW ? "((v * 4) % cols) / 4" : "v";
        if (dt == ZM_F32)
            zm__sb_printf(b, "        const float4 u%d = ((const float4 *)in%d)[%s];\n"
                             "        float x%d[4] = {u%d.x, u%d.y, u%d.z, u%d.w};\n", q, q, idx, q, q, q, q, q);
        else
            zm__sb_printf(b, "        const uint2 u%d = ((const uint2 *)in%d)[%s];\n"
                             "        float x%d[4] = {%s((unsigned short)(u%d.x & 0xffffu)), %s((unsigned short)(u%d.x >> 16)),"
                             " %s((unsigned short)(u%d.y & 0xffffu)), %s((unsigned short)(u%d.y >> 16))};\n",
                          q, q, idx, q, zm__ld(dt), q, zm__ld(dt), q, zm__ld(dt), q, zm__ld(dt), q);
    }
    zm__sb_puts(b, "        float y[4];\n#pragma unroll\n        for (int e = 0; e < 4; e++) y[e] = zm_f(");
    for (int q = 0; q < k->n_in; q++) zm__sb_printf(b, "x%d[e], ", q);
    zm__sb_puts(b, "rv, P);\n");
    if (sig->out_dtype == ZM_F32)
        zm__sb_puts(b, "        ((float4 *)out)[v] = make_float4(y[0], y[1], y[2], y[3]);\n");
    else
        zm__sb_printf(b, "        uint2 w;\n        w.x = (unsigned)%s(y[0]) | ((unsigned)%s(y[1]) << 16);\n"
                         "        w.y = (unsigned)%s(y[2]) | ((unsigned)%s(y[3]) << 16);\n        ((uint2 *)out)[v] = w;\n",
                      zm__st(sig->out_dtype), zm__st(sig->out_dtype), zm__st(sig->out_dtype), zm__st(sig->out_dtype));
    zm__sb_puts(b, "    }\n}\n");
}

static const char *zm__comb(zm_red_op op) {
    return op == ZM_RED_MAX ? "zm_cmax" : op == ZM_RED_MIN ? "zm_cmin" : "zm_cadd";
}

static void zm__emit_row(zm__sb *b, const zm_kernel *k, const zm__sig *sig) {
    zm__sb_puts(b,
                "ZM_FN float zm_cadd(float a, float b) { return a + b; }\n"
                "ZM_FN float zm_cmax(float a, float b) { return (b > a || b != b) ? b : a; }\n"
                "ZM_FN float zm_cmin(float a, float b) { return (b < a || b != b) ? b : a; }\n");
    for (int s = 0; s < k->n_reds; s++) {
        char fn[16];
        snprintf(fn, sizeof fn, "zm_e%d", s);
        zm__emit_fn(b, k, fn, k->red_root[s]);
        const char *c = zm__comb(k->red_op[s]);
        /* whole-block reduction: shuffle within warps, then across warps */
        zm__sb_printf(b,
                      "__device__ float zm_block%d(float v, float *sh) {\n"
                      "    for (int o = 16; o > 0; o >>= 1) v = %s(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
                      "    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;\n"
                      "    __syncthreads();\n    if (lane == 0) sh[warp] = v;\n    __syncthreads();\n"
                      "    v = lane < nw ? sh[lane] : %s;\n"
                      "    for (int o = 16; o > 0; o >>= 1) v = %s(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
                      "    return v;\n}\n",
                      s, c, k->red_op[s] == ZM_RED_MAX ? "-ZM_INF" : k->red_op[s] == ZM_RED_MIN ? "ZM_INF" : "0.0f", c);
    }
    zm__emit_fn(b, k, "zm_post", k->root);
    zm__sb_puts(b, "\n/* one block per row (grid-stride over rows) */\nextern \"C\" __global__ void k_row(i64 rows, i64 cols, ");
    zm__emit_params(b, k, sig);
    zm__sb_puts(b, " {\n    __shared__ float sh[32];\n");
    zm__emit_scalars(b, k, sig);
    zm__sb_puts(b, "    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {\n"
                   "        const i64 base = row * cols;\n");
    zm__sb_printf(b, "        float rv[%d];\n", k->n_reds);
    for (int s = 0; s < k->n_reds; s++) {
        zm_red_op op = k->red_op[s];
        char fn[16];
        snprintf(fn, sizeof fn, "zm_e%d", s);
        zm__sb_printf(b, "        {\n            float acc = %s;\n", op == ZM_RED_MAX ? "-ZM_INF" : op == ZM_RED_MIN ? "ZM_INF" : "0.0f");
        zm__sb_printf(b, "            for (i64 j = threadIdx.x; j < cols; j += blockDim.x) acc = %s(acc, ", zm__comb(op));
        zm__emit_call(b, k, sig, fn, "base + j", "j");
        zm__sb_printf(b, ");\n            acc = zm_block%d(acc, sh);\n", s);
        zm__sb_printf(b, "            rv[%d] = %s;\n        }\n", s, op == ZM_RED_MEAN ? "acc / (float)cols" : "acc");
    }
    if (k->per_row) {
        zm__sb_printf(b, "        if (threadIdx.x == 0) out[row] = %s(", zm__st(sig->out_dtype));
        zm__sb_puts(b, "zm_post(");
        for (int q = 0; q < k->n_in; q++) zm__sb_puts(b, "0.0f, ");
        zm__sb_puts(b, "rv, P));\n");
    } else {
        zm__sb_printf(b, "        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) out[base + j] = %s(", zm__st(sig->out_dtype));
        zm__emit_call(b, k, sig, "zm_post", "base + j", "j");
        zm__sb_puts(b, ");\n");
    }
    zm__sb_puts(b, "    }\n}\n");
}

zm_status zm__emit_cuda(const zm_kernel *k, const zm__sig *sig, char **out) {
    *out = NULL;
    zm__sb b = {0};
    zm__sb_printf(&b, "/* zmlx kernel \"%s\" (generated CUDA C; inputs", k->name);
    for (int q = 0; q < k->n_in; q++)
        zm__sb_printf(&b, " %s:%s%s", k->in_names[q], zm_dtype_name((zm_dtype)sig->in_dtype[q]),
                      sig->in_mode[q] == ZM__MODE_SCALAR ? "[1]" : sig->in_mode[q] == ZM__MODE_ROW ? "[cols]" : "");
    zm__sb_printf(&b, ", output %s)\n * %s */\n", zm_dtype_name((zm_dtype)sig->out_dtype), k->text);
    zm__sb_puts(&b, zm__cuda_head);
    zm__sb_puts_prelude(&b, zm__prelude_src);
    zm__sb_puts(&b, "\n");
    if (k->kind == ZM__KIND_EW) zm__emit_ew(&b, k, sig);
    else zm__emit_row(&b, k, sig);
    if (b.oom) { zm__sb_free(&b); return zm__err(ZM_ERR_NOMEM, "emit CUDA for %s: out of memory", k->name); }
    *out = b.p;
    return ZM_OK;
}
