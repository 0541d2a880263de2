/* GGUF v3: the llama.cpp model file format. The reader mmaps the file and
 * treats it as hostile: every count, length, offset and product is checked
 * before use; any violation is ZM_ERR_FORMAT with a message naming the field
 * and byte offset. The writer streams tensor data to disk.
 * Tensor dims are reported in ggml order (ne[0] innermost = row length).
 * Ownership: strings and data pointers from a zm_gguf live until
 * zm_gguf_free. Tested by tests/test_gguf.c; fuzzed by fuzz/fuzz_gguf.c. */
#ifndef ZMLX_GGUF_H
#define ZMLX_GGUF_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZM_GGUF_U8 = 0, ZM_GGUF_I8 = 1, ZM_GGUF_U16 = 2, ZM_GGUF_I16 = 3, ZM_GGUF_U32 = 4,
    ZM_GGUF_I32 = 5, ZM_GGUF_F32 = 6, ZM_GGUF_BOOL = 7, ZM_GGUF_STRING = 8, ZM_GGUF_ARRAY = 9,
    ZM_GGUF_U64 = 10, ZM_GGUF_I64 = 11, ZM_GGUF_F64 = 12, ZM_GGUF_TYPE_COUNT
} zm_gguf_type;

typedef struct zm_gguf zm_gguf;

typedef struct zm_gguf_tensor {
    const char *name;
    zm_dtype dtype;
    int ndim;
    int64_t ne[4];      /* ggml order: ne[0] is the innermost (row) length */
    const void *data;   /* inside the mapping, aligned to the file's alignment */
    uint64_t nbytes;
    uint64_t offset;    /* from the start of the data section */
} zm_gguf_tensor;

/* ---- read ---------------------------------------------------------------- */
zm_status zm_gguf_open(zm_gguf **out, const char *path);
/* Parse from memory (the buffer must outlive the handle); used by the fuzzer. */
zm_status zm_gguf_open_mem(zm_gguf **out, const void *buf, size_t len);
void zm_gguf_free(zm_gguf *g);

uint32_t zm_gguf_version(const zm_gguf *g);
uint64_t zm_gguf_file_size(const zm_gguf *g);
int64_t zm_gguf_n_kv(const zm_gguf *g);
const char *zm_gguf_key(const zm_gguf *g, int64_t i);
int64_t zm_gguf_find_key(const zm_gguf *g, const char *key); /* -1 if absent */
zm_gguf_type zm_gguf_kv_type(const zm_gguf *g, int64_t i);
const char *zm_gguf_type_name(zm_gguf_type t);     /* "u32", "string", ... */
uint32_t zm_gguf_alignment(const zm_gguf *g);       /* general.alignment or 32 */
uint64_t zm_gguf_data_offset(const zm_gguf *g);     /* file offset of the data section */
/* Value of metadata pair i as text (strings quoted, arrays abridged) into
 * buf (always NUL-terminated); returns its length. For `zmlx info`. */
int zm_gguf_kv_to_str(const zm_gguf *g, int64_t i, char *buf, size_t cap);

/* Typed getters by key. Integers convert between integer types when the
 * value fits (else ZM_ERR_RANGE); floats accept F32/F64. Missing key:
 * ZM_ERR_NOT_FOUND; wrong type: ZM_ERR_FORMAT. Messages name the key. */
zm_status zm_gguf_get_u32(const zm_gguf *g, const char *key, uint32_t *out);
zm_status zm_gguf_get_i64(const zm_gguf *g, const char *key, int64_t *out);
zm_status zm_gguf_get_f32(const zm_gguf *g, const char *key, float *out);
zm_status zm_gguf_get_bool(const zm_gguf *g, const char *key, int *out);
/* String: pointer into the mapping, NOT NUL-terminated; use len. */
zm_status zm_gguf_get_str(const zm_gguf *g, const char *key, const char **s, uint64_t *len);
/* Array: element type and count. */
zm_status zm_gguf_get_arr(const zm_gguf *g, const char *key, zm_gguf_type *elem, uint64_t *n);
/* Element i of a string array (not NUL-terminated). O(1). */
zm_status zm_gguf_get_arr_str(const zm_gguf *g, const char *key, uint64_t i, const char **s, uint64_t *len);
/* Numeric array elements i..i+n-1 converted to double / int64. */
zm_status zm_gguf_get_arr_f64(const zm_gguf *g, const char *key, uint64_t i, uint64_t n, double *out);
zm_status zm_gguf_get_arr_i64(const zm_gguf *g, const char *key, uint64_t i, uint64_t n, int64_t *out);

int64_t zm_gguf_n_tensors(const zm_gguf *g);
int64_t zm_gguf_find_tensor(const zm_gguf *g, const char *name); /* -1 if absent */
zm_status zm_gguf_tensor_info(const zm_gguf *g, int64_t i, zm_gguf_tensor *out);
/* Find by name and check dtype-agnostic shape (ggml order, ndim dims);
 * ZM_ERR_NOT_FOUND / ZM_ERR_SHAPE with a message naming the tensor. */
zm_status zm_gguf_expect_tensor(const zm_gguf *g, const char *name, int ndim, const int64_t *ne,
                                zm_gguf_tensor *out);

/* ---- write --------------------------------------------------------------- */
typedef struct zm_gguf_writer zm_gguf_writer;
/* Produces tensor i's bytes into buf (nbytes long) when the writer streams
 * the data section; called once per tensor in order. */
typedef zm_status (*zm_gguf_fill_fn)(void *ctx, int64_t i, void *buf, uint64_t nbytes);

zm_status zm_gguf_writer_new(zm_gguf_writer **out);
void zm_gguf_writer_free(zm_gguf_writer *w);
zm_status zm_gguf_set_u32(zm_gguf_writer *w, const char *key, uint32_t v);
zm_status zm_gguf_set_i32(zm_gguf_writer *w, const char *key, int32_t v);
zm_status zm_gguf_set_u64(zm_gguf_writer *w, const char *key, uint64_t v);
zm_status zm_gguf_set_f32(zm_gguf_writer *w, const char *key, float v);
zm_status zm_gguf_set_bool(zm_gguf_writer *w, const char *key, int v);
zm_status zm_gguf_set_str(zm_gguf_writer *w, const char *key, const char *v);
/* Generic typed value (any scalar type; data points at one value). */
zm_status zm_gguf_set_val(zm_gguf_writer *w, const char *key, zm_gguf_type t, const void *data);
/* Numeric array of n elements of type t (copied). */
zm_status zm_gguf_set_arr(zm_gguf_writer *w, const char *key, zm_gguf_type t, const void *data, uint64_t n);
zm_status zm_gguf_set_arr_str(zm_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* A tensor: data copied now if non-NULL, else produced by fill at write time.
 * ne in ggml order. */
zm_status zm_gguf_add_tensor(zm_gguf_writer *w, const char *name, zm_dtype t, int ndim,
                             const int64_t *ne, const void *data);
/* Write the file (atomically: temp file + rename). fill may be NULL if every
 * tensor had data. progress (may be NULL) is called with bytes written/total. */
zm_status zm_gguf_write(zm_gguf_writer *w, const char *path, zm_gguf_fill_fn fill, void *ctx,
                        void (*progress)(void *ctx, uint64_t done, uint64_t total));

#ifdef __cplusplus
}
#endif
#endif
