/* Private helpers shared by every layer: error reporting, checked integer
 * arithmetic, aligned allocation, logging. Not installed. */
#ifndef ZM_INTERNAL_H
#define ZM_INTERNAL_H

#include "zmlx/core.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Record a failure for zm_last_error() and return s, so callers write
 *   return zm__err(ZM_ERR_FORMAT, "tensor %s: offset %llu past end", ...); */
zm_status zm__err(zm_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current error message: "ctx: <old message>". Returns s. */
zm_status zm__err_ctx(zm_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checked arithmetic: return false on overflow (result untouched then). */
static inline bool zm__mul_u64(uint64_t a, uint64_t b, uint64_t *r) {
    return !__builtin_mul_overflow(a, b, r);
}
static inline bool zm__add_u64(uint64_t a, uint64_t b, uint64_t *r) {
    return !__builtin_add_overflow(a, b, r);
}
static inline bool zm__mul_i64(int64_t a, int64_t b, int64_t *r) {
    return !__builtin_mul_overflow(a, b, r);
}

/* 64-byte aligned host allocation (free with zm__free_aligned). */
void *zm__alloc_aligned(size_t nbytes);
void zm__free_aligned(void *p);

/* Debug logging to stderr, only when $ZMLX_LOG is set (the library never
 * prints otherwise). */
void zm__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock in seconds (monotonic). */
double zm__now(void);

#define ZM_TRY(expr)                                                                               \
    do {                                                                                           \
        zm_status zm__s = (expr);                                                                  \
        if (zm__s != ZM_OK) return zm__s;                                                          \
    } while (0)

#endif
