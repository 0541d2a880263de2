/* Private interface of the JIT (src/jit): the kernel object, the emitters,
 * the disk cache, the C compiler driver, NVRTC, and the block interpreter.
 * Public API: include/zmlx/kernel.h. Tested by tests/test_kernel*.c. */
#ifndef ZM_JIT_H
#define ZM_JIT_H

#include "core/internal.h"
#include "dsl/ir.h"
#include "zmlx/kernel.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

// ---- string builder --------------------------------------------------------
typedef struct zm__sb { char *p; size_t n, cap; int oom; } zm__sb;
void zm__sb_printf(zm__sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void zm__sb_puts(zm__sb *b, const char *s);
void zm__sb_free(zm__sb *b);

// ---- the kernel ------------------------------------------------------------
/* CPU block functions exported by a compiled kernel (and mirrored by the
 * interpreter). `a` holds n_in pointers to len f32 values each (inputs
 * already converted and broadcast), p the parameters, r the row reductions.
 *   ew:   o[k] = f(a[.][k])                    element-wise body / post
 *   red:  acc[k & 15] = acc[k & 15] (op) e(k)   one reduction stage
 *   row:  return post()                         post with no input (per row) */
typedef void (*zm__ew_fn)(int64_t len, float *o, const float *const *a, const float *p, const float *r);
typedef void (*zm__red_fn)(int64_t len, float *acc, const float *const *a, const float *p, const float *r);
typedef float (*zm__row_fn)(const float *p, const float *r);

#define ZM__BLK 1024 /* elements per block: 4 KiB per f32 input, stays in L1 */
#define ZM__MAX_CUDA_VARIANTS 32

typedef enum { ZM__MODE_FULL = 0, ZM__MODE_SCALAR = 1, ZM__MODE_ROW = 2 } zm__mode;

/* What a call looks like: fixes the CUDA source (dtypes and broadcasting
 * are compiled in there; the CPU side converts blocks at run time). */
typedef struct zm__sig {
    int8_t in_dtype[ZM_MAX_INPUTS], in_mode[ZM_MAX_INPUTS];
    int8_t out_dtype;
} zm__sig;

typedef struct zm__cuda_variant {
    zm__sig sig;
    void *module, *fn, *fn4; /* fn4: vectorised (4 per thread) element-wise */
} zm__cuda_variant;

enum { ZM__KIND_EW = 0, ZM__KIND_ROW = 1 };

struct zm_kernel {
    char *name;
    char *text; /* the expression(s), for messages and --emit headers */
    int kind;
    zm_ir ir;
    int n_in;
    char in_names[ZM_MAX_INPUTS][32];
    int n_params;
    char param_names[ZM_MAX_PARAMS][32];
    float params[ZM_MAX_PARAMS];
    int n_reds;
    zm_red_op red_op[ZM_MAX_REDUCTIONS];
    int32_t red_root[ZM_MAX_REDUCTIONS];
    int32_t root;   /* element-wise body, or the post expression */
    int per_row;    /* ROW kind and post uses no input: one value per row */
    int force_interp;
    char *src_c;    /* generated C (whole kernel) */
    char *src_cuda; /* generated CUDA C for all-f32, full-shape inputs */
    /* CPU */
    int cpu_jit;    /* 1: compiled .so in use, 0: interpreter */
    void *dl;
    zm__ew_fn ew;
    zm__red_fn red[ZM_MAX_REDUCTIONS];
    zm__row_fn row;
    char cpu_note[256]; /* why the interpreter is used, if it is */
    /* CUDA */
    pthread_mutex_t mu;
    int n_cuda;
    zm__cuda_variant cuda[ZM__MAX_CUDA_VARIANTS];
};

/* One validated call (kernel.c): shapes resolved into elements or rows. */
typedef struct zm__job {
    zm_kernel *k;
    int64_t n;    /* element-wise: elements; row-wise: rows */
    int64_t cols; /* row length (element-wise: the output's last axis) */
    int has_row;  /* an input is a last-axis vector */
    int n_in;
    const char *in[ZM_MAX_INPUTS];
    zm__sig sig;
    char *out;
    float params[ZM_MAX_PARAMS];
} zm__job;

/* CPU and CUDA runners. */
zm_status zm__run_cpu(const zm__job *job);
zm_status zm__run_cuda(const zm__job *job, void *stream);

// ---- emitters --------------------------------------------------------------
/* The op semantics in float, as C text for the emitted code (also compiled
 * into the library for the interpreter: see prelude.h). */
extern const char zm__prelude_src[];
extern const char zm__prelude_exp_c[]; /* zm_exp for C (CUDA uses expf) */
void zm__sb_puts_prelude(zm__sb *b, const char *s);
/* zm__ir_mark minus the operands fused away by emitter peepholes. */
void zm__emit_mark(const zm_ir *ir, int32_t root, uint8_t *mark);
/* C for the CPU: exports zm_ew / zm_red0.. / zm_row (see typedefs above). */
zm_status zm__emit_c(const zm_kernel *k, char **out);
/* CUDA C for one call signature: k_ew + k_ew4 (element-wise) or k_row. */
zm_status zm__emit_cuda(const zm_kernel *k, const zm__sig *sig, char **out);
/* Shared: the expression of node i in terms of t<operand> names. */
void zm__emit_node(zm__sb *b, const zm_ir *ir, int32_t i, int cuda);
/* Marks nodes reachable from root (mark[] has ir->n entries, ORed with 1). */
void zm__ir_mark(const zm_ir *ir, int32_t root, uint8_t *mark);

// ---- cache -----------------------------------------------------------------
uint64_t zm__fnv1a(const void *p, size_t n, uint64_t h);
#define ZM__FNV_SEED 0xcbf29ce484222325ull
/* Key of an entry: hash of (source, target, compiler identity) as 32 hex. */
void zm__cache_key(char key[33], const char *src, const char *target, const char *compiler);
/* Folder in use, created on first use; NULL when disabled ("off") or when
 * it cannot be created (then *why says so). */
const char *zm__cache_folder(void);
/* Read and verify entry `file` (a full path). On success *payload is the
 * payload (malloc'ed, caller frees) and *len its size. ZM_ERR_NOT_FOUND if
 * absent, ZM_ERR_FORMAT if truncated/corrupt (counted, file removed). */
zm_status zm__cache_read(const char *file, const char *key, void **payload, size_t *len);
/* Verify only (no payload kept). */
zm_status zm__cache_verify(const char *file, const char *key);
/* Atomically publish payload (+ trailer) as `file`. */
zm_status zm__cache_write(const char *file, const char *key, const void *payload, size_t len);
/* Append the trailer to an existing temp file, then rename it to `file`. */
zm_status zm__cache_seal(const char *tmp, const char *file, const char *key);
void zm__cache_count(int compile, int hit, int corrupt);
/* A unique temp path beside `file` (same folder: rename stays atomic). */
void zm__cache_tmpname(char *buf, size_t n, const char *dir, const char *key, const char *ext);

// ---- CPU compiler ------------------------------------------------------------
/* Compile C source to a shared object and dlopen it (through the cache).
 * *handle is the dlopen handle. ZM_ERR_COMPILE with the compiler's message
 * when it fails; ZM_ERR_UNSUPPORTED when no compiler works at all. */
zm_status zm__cc_build(const char *src, const char *name, void **handle);
const char *zm__cc_identity(void); /* "" when no compiler answers */

// ---- interpreter -------------------------------------------------------------
/* Scratch floats needed by zm__interp_* for one block. */
size_t zm__interp_scratch(const zm_kernel *k);
void zm__interp_ew(const zm_kernel *k, int32_t root, int64_t len, float *o, const float *const *a,
                   const float *p, const float *r, float *scratch);
void zm__interp_red(const zm_kernel *k, int stage, int64_t len, float *acc, const float *const *a,
                    const float *p, const float *r, float *scratch);
float zm__interp_row(const zm_kernel *k, const float *p, const float *r);

// ---- CUDA ----------------------------------------------------------------------
/* Compile (NVRTC, cached CUBIN) and load; *fn = entry `entry`, *fn4 = `entry4` if present. */
zm_status zm__nvrtc_build(const char *src, const char *name, void **module, const char *entry,
                          void **fn, const char *entry4, void **fn4);
zm_status zm__cuda_launch(void *fn, unsigned grid, unsigned block, void *stream, void **args);
void zm__cuda_unload(void *module);
/* Compile only (no GPU needed): NVRTC for sm_<sm>; tests use it to check
 * every emitted variant on machines without a GPU. */
zm_status zm__nvrtc_check(const char *src, const char *name, int sm);
int zm__cuda_sm_count(void);

#endif
