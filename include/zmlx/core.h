/* zmlx core: status codes, errors, dtypes, tensors, the thread pool.
 *
 * Ownership: every zm_*_new / zm_*_wrap hands out an object the caller frees
 * with the matching zm_*_free (NULL-safe). Constructors set *out = NULL on
 * failure. Strings returned by zm_status_str live forever; zm_last_error()'s
 * text lives until the next failing zmlx call on the same thread.
 * Tested by tests/test_core.c. */
#ifndef ZMLX_CORE_H
#define ZMLX_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ------------------------------------------------------------ */
typedef enum {
    ZM_OK = 0,
    ZM_ERR_INVALID = -1,     /* bad argument */
    ZM_ERR_NOMEM = -2,       /* allocation failed */
    ZM_ERR_IO = -3,          /* file system */
    ZM_ERR_FORMAT = -4,      /* malformed file (GGUF, capsule, cache entry) */
    ZM_ERR_PARSE = -5,       /* malformed expression or text */
    ZM_ERR_SHAPE = -6,       /* shape mismatch */
    ZM_ERR_DTYPE = -7,       /* dtype not supported here */
    ZM_ERR_UNSUPPORTED = -8, /* valid request we do not implement */
    ZM_ERR_NO_DEVICE = -9,   /* no CUDA device (or built without CUDA) */
    ZM_ERR_CUDA = -10,       /* a CUDA call failed */
    ZM_ERR_COMPILE = -11,    /* JIT compile failed */
    ZM_ERR_NOT_FOUND = -12,  /* key, tensor, pattern, kernel missing */
    ZM_ERR_RANGE = -13,      /* value or index out of range, overflow */
    ZM_ERR_STATUS_COUNT = 14
} zm_status;

const char *zm_status_str(zm_status s);
/* Detail of the last failure on this thread ("" if none). */
const char *zm_last_error(void);
void zm_clear_error(void);

/* ---- dtypes -------------------------------------------------------------- */
/* Values of the GGML-compatible types equal ggml's type ids where one exists,
 * so a GGUF tensor's type maps 1:1 (see zm_dtype_from_ggml). */
typedef enum {
    ZM_F32 = 0,
    ZM_F16,
    ZM_BF16,
    ZM_I32,
    ZM_U8,
    ZM_I8,
    ZM_Q8_0,  /* 32 weights: f16 scale + 32 x int8          (34 bytes) */
    ZM_Q4_0,  /* 32 weights: f16 scale + 16 bytes of nibbles (18 bytes) */
    ZM_Q4_K,  /* 256 weights (144 bytes) */
    ZM_Q5_K,  /* 256 weights (176 bytes) */
    ZM_Q6_K,  /* 256 weights (210 bytes) */
    ZM_MXFP4, /* 32 weights: e8m0 scale + 16 bytes of fp4    (17 bytes) */
    ZM_DTYPE_COUNT
} zm_dtype;

const char *zm_dtype_name(zm_dtype t);       /* "f32", "q4_0", ... ; "?" if bad */
int zm_dtype_parse(const char *name);        /* name -> zm_dtype, -1 if unknown */
int64_t zm_dtype_block_size(zm_dtype t);     /* elements per block, 1 for plain types */
int64_t zm_dtype_block_bytes(zm_dtype t);    /* bytes per block */
int zm_dtype_is_quant(zm_dtype t);
int zm_dtype_is_float(zm_dtype t);           /* f32, f16, bf16 */
/* ggml type id <-> zm_dtype; -1 if no match. */
int zm_dtype_from_ggml(uint32_t ggml_type);
int zm_dtype_to_ggml(zm_dtype t);

/* Scalar conversions: round to nearest even; NaN stays NaN (quiet), Inf stays
 * Inf, subnormals are exact where representable. */
uint16_t zm_f32_to_f16(float f);
float zm_f16_to_f32(uint16_t h);
uint16_t zm_f32_to_bf16(float f);
float zm_bf16_to_f32(uint16_t h);
/* Bulk: n elements, src and dst must not overlap. */
void zm_convert_to_f32(float *dst, const void *src, zm_dtype src_type, int64_t n);
void zm_convert_from_f32(void *dst, zm_dtype dst_type, const float *src, int64_t n);

/* ---- devices ------------------------------------------------------------- */
typedef enum { ZM_CPU = 0, ZM_CUDA = 1, ZM_DEVICE_COUNT } zm_device;
const char *zm_device_name(zm_device d);     /* "cpu", "cuda" */
/* 1 if a CUDA GPU answers (built with CUDA, driver present, >= 1 device). */
int zm_cuda_available(void);

/* ---- tensors ------------------------------------------------------------- */
/* Up to 4 dims, numpy order: shape[0] outermost, shape[ndim-1] the last
 * (innermost, "row") axis. Strides are in BYTES (quantized types: the last
 * axis must be contiguous and a multiple of the block size). A tensor owns
 * its memory (zm_tensor_new) or borrows it (zm_tensor_wrap, views): the
 * owner of borrowed memory keeps it alive longer than the tensor. */
#define ZM_MAX_DIMS 4
typedef struct zm_tensor {
    zm_dtype dtype;
    zm_device device;
    int ndim;
    int64_t shape[ZM_MAX_DIMS];
    int64_t stride[ZM_MAX_DIMS]; /* bytes */
    void *data;                  /* first element (CPU or CUDA pointer) */
    int owns_data;
} zm_tensor;

zm_status zm_tensor_new(zm_tensor **out, zm_dtype t, zm_device d, int ndim, const int64_t *shape);
/* stride == NULL: contiguous. */
zm_status zm_tensor_wrap(zm_tensor **out, void *data, zm_dtype t, zm_device d, int ndim,
                         const int64_t *shape, const int64_t *stride);
/* A borrowed view of `base` starting offset bytes in; stride NULL = contiguous. */
zm_status zm_tensor_view(zm_tensor **out, const zm_tensor *base, int ndim, const int64_t *shape,
                         const int64_t *stride, int64_t offset);
void zm_tensor_free(zm_tensor *t);
int64_t zm_tensor_numel(const zm_tensor *t);
int64_t zm_tensor_nbytes(const zm_tensor *t); /* of a contiguous tensor of this shape */
int zm_tensor_is_contiguous(const zm_tensor *t);
int64_t zm_tensor_rows(const zm_tensor *t);   /* numel / shape[ndim-1] */
/* Copy between any devices; both contiguous, same dtype and numel. */
zm_status zm_tensor_copy(zm_tensor *dst, const zm_tensor *src);
/* New owned tensor on device d holding a copy of t. */
zm_status zm_tensor_to(zm_tensor **out, const zm_tensor *t, zm_device d);
/* Fill with float value v (converted to dtype); any device. */
zm_status zm_tensor_fill(zm_tensor *t, float v);

/* ---- thread pool --------------------------------------------------------- */
/* A persistent pool: zm_pool_run calls fn(ctx, i, n) for i in [0, n) on n
 * threads (the caller is thread 0) and returns when all are done. */
typedef struct zm_pool zm_pool;
typedef void (*zm_pool_fn)(void *ctx, int ith, int nth);
zm_status zm_pool_new(zm_pool **out, int nthreads);
void zm_pool_free(zm_pool *p);
int zm_pool_size(const zm_pool *p);
void zm_pool_run(zm_pool *p, zm_pool_fn fn, void *ctx);
/* The process-wide pool: $ZMLX_THREADS or the number of online CPUs. */
zm_pool *zm_pool_default(void);

#ifdef __cplusplus
}
#endif
#endif
