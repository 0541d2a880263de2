/* Kernels from one line of math.
 *
 *   zm_kernel *mish;
 *   zm_elementwise(&mish, "mish", "x * tanh(log1p(exp(x)))", NULL);
 *   zm_kernel_call(mish, (zm_tensor *[]){y}, 1, (const zm_tensor *[]){x}, 1);
 *   zm_kernel *dmish;  zm_kernel_grad(&dmish, mish, 0);   // VJP: inputs (x, g)
 *
 * The expression is parsed into an IR (src/dsl), emitted as C or CUDA C
 * (src/jit), compiled and cached on disk under $ZMLX_CACHE (default
 * ~/.cache/zmlx; "off" disables the cache). Without a C compiler the CPU side
 * runs an IR interpreter. Inputs are f32, f16 or bf16; arithmetic is f32;
 * the output dtype is the caller's (the dtype of the output tensor).
 * Broadcasting: an input may be a scalar (numel 1) or a vector of the last
 * axis' length (bias, weight); all others match the output's shape.
 * CPU tensors may be strided views (gathered/scattered through contiguous
 * temporaries); CUDA tensors must be contiguous (ZM_ERR_UNSUPPORTED
 * otherwise). All tensors of a call live on one device.
 * Ownership: kernels are freed with zm_kernel_free (NULL-safe); strings from
 * zm_kernel_source belong to the kernel. Tested by tests/test_kernel*.c. */
#ifndef ZMLX_KERNEL_H
#define ZMLX_KERNEL_H

#include "zmlx/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zm_kernel zm_kernel;

#define ZM_MAX_INPUTS 8
#define ZM_MAX_PARAMS 8
#define ZM_MAX_REDUCTIONS 4

/* Options; NULL means defaults: inputs named x, y, z (as many as the
 * expression uses, in that order), no parameters. */
typedef struct zm_kernel_opts {
    const char *inputs[ZM_MAX_INPUTS]; /* input names, NULL-terminated; {NULL} = default */
    const char *params[ZM_MAX_PARAMS]; /* scalar parameter names, NULL-terminated */
    float param_values[ZM_MAX_PARAMS]; /* default values, changed by zm_kernel_set_param */
    int force_interpreter;             /* CPU: skip the C compiler (tests) */
} zm_kernel_opts;

typedef enum { ZM_RED_SUM = 0, ZM_RED_MAX, ZM_RED_MIN, ZM_RED_MEAN, ZM_RED_COUNT } zm_red_op;

/* One row-wise reduction stage: rK = op over the last axis of expr, where
 * expr may use the inputs, the parameters and the earlier r0..r(K-1). */
typedef struct zm_reduction {
    zm_red_op op;
    const char *expr;
} zm_reduction;

zm_status zm_elementwise(zm_kernel **out, const char *name, const char *expr, const zm_kernel_opts *opts);
/* r0 = op(expr) over the last axis; output has the input's shape minus the last axis. */
zm_status zm_reduce(zm_kernel **out, const char *name, zm_red_op op, const char *expr,
                    const zm_kernel_opts *opts);
/* Row-wise: reductions r0..r(n-1) in order, then `post` per element (may use
 * inputs, params, r*). If post uses no input, the output is one value per row
 * (e.g. logsumexp = "r0 + log(r1)"). Examples in tests/test_kernel_rowwise.c:
 * softmax, log_softmax, rmsnorm with weight, layernorm, logsumexp. */
zm_status zm_map_reduce(zm_kernel **out, const char *name, const zm_reduction *reds, int n_reds,
                        const char *post, const zm_kernel_opts *opts);
/* Vector-Jacobian product of an element-wise kernel w.r.t. input `input`:
 * a new element-wise kernel taking the original inputs then the upstream
 * gradient g, returning g * d(expr)/d(input). */
zm_status zm_kernel_grad(zm_kernel **out, const zm_kernel *k, int input);

/* Run on the tensors' device (all on the same device). outs[0] is written. */
zm_status zm_kernel_call(zm_kernel *k, zm_tensor *const *outs, int n_outs,
                         const zm_tensor *const *ins, int n_ins);
/* As zm_kernel_call on a CUDA stream (zm_stream from src/core/cuda.h, or NULL). */
zm_status zm_kernel_call_async(zm_kernel *k, zm_tensor *const *outs, int n_outs,
                               const zm_tensor *const *ins, int n_ins, void *stream);
zm_status zm_kernel_set_param(zm_kernel *k, const char *param, float value);

typedef enum { ZM_BACKEND_C = 0, ZM_BACKEND_CUDA, ZM_BACKEND_COUNT } zm_backend;
/* Generated source for a backend (valid until zm_kernel_free). */
zm_status zm_kernel_source(const zm_kernel *k, zm_backend b, const char **src);
const char *zm_kernel_name(const zm_kernel *k);
int zm_kernel_n_inputs(const zm_kernel *k);
/* Name of input i (as given or auto-detected: x, y, z first); "" if out of range. */
const char *zm_kernel_input_name(const zm_kernel *k, int i);
/* How the CPU side runs: "jit" (compiled shared object) or "interp". */
const char *zm_kernel_cpu_mode(const zm_kernel *k);
void zm_kernel_free(zm_kernel *k);

/* Cache statistics of this process (compiles done vs cache hits). */
typedef struct zm_cache_stats { int compiles, hits, rebuilt_corrupt; } zm_cache_stats;
zm_cache_stats zm_cache_get_stats(void);
/* The cache folder in use ("" when disabled). */
const char *zm_cache_dir(void);

#ifdef __cplusplus
}
#endif
#endif
