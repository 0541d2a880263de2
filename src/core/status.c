/* Status text, the per-thread last-error message, logging, small utilities.
 * Checked by tests/test_core.c. */
#include "core/internal.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

// ---------------------------------------------------------------------------
static _Thread_local char zm__msg[1024];

const char *zm_status_str(zm_status s) {
    switch (s) {
    case ZM_OK: return "ok";
    case ZM_ERR_INVALID: return "invalid argument";
    case ZM_ERR_NOMEM: return "out of memory";
    case ZM_ERR_IO: return "i/o error";
    case ZM_ERR_FORMAT: return "malformed file";
    case ZM_ERR_PARSE: return "parse error";
    case ZM_ERR_SHAPE: return "shape mismatch";
    case ZM_ERR_DTYPE: return "unsupported dtype";
    case ZM_ERR_UNSUPPORTED: return "unsupported";
    case ZM_ERR_NO_DEVICE: return "no CUDA device";
    case ZM_ERR_CUDA: return "CUDA error";
    case ZM_ERR_COMPILE: return "compile error";
    case ZM_ERR_NOT_FOUND: return "not found";
    case ZM_ERR_RANGE: return "out of range";
    default: return "unknown status";
    }
}

const char *zm_last_error(void) { return zm__msg; }
void zm_clear_error(void) { zm__msg[0] = 0; }

zm_status zm__err(zm_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(zm__msg, sizeof zm__msg, fmt, ap);
    va_end(ap);
    return s;
}

zm_status zm__err_ctx(zm_status s, const char *fmt, ...) {
    char old[sizeof zm__msg], pre[256];
    memcpy(old, zm__msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(zm__msg, sizeof zm__msg, "%s: %s", pre, old);
    return s;
}

// ---------------------------------------------------------------------------
void *zm__alloc_aligned(size_t nbytes) {
    void *p = NULL;
    size_t n = (nbytes + 63) & ~(size_t)63;
    if (n < nbytes) return NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}
void zm__free_aligned(void *p) { free(p); }

void zm__log(const char *fmt, ...) {
    static int on = -1;
    if (on < 0) on = getenv("ZMLX_LOG") != NULL;
    if (!on) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("zmlx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double zm__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
