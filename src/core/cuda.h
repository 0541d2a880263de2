/* The CUDA device layer: every call checked and turned into a zm_status.
 * Built with CUDA (ZM_HAVE_CUDA) these wrap the runtime API; built without,
 * each returns ZM_ERR_NO_DEVICE. The driver API (for NVRTC modules) is reached
 * through zm__cuda_driver(), dlopen'ed on first use so binaries start on
 * machines with no driver. Not installed: no CUDA type leaks out of here. */
#ifndef ZM_CORE_CUDA_H
#define ZM_CORE_CUDA_H

#include "zmlx/core.h"
#include <stddef.h>

typedef void *zm_stream; /* cudaStream_t; NULL is the legacy default stream */

/* Picks device 0 (or $ZMLX_CUDA_DEVICE) once per process and makes its primary
 * context current on the calling thread (once per thread). Every entry point
 * below calls it; code that reaches CUDA some other way (a <<<>>> launch, the
 * driver table) must call it first on that thread. */
zm_status zm_cuda_init(void);
zm_status zm_cuda_malloc(void **p, size_t n);
void zm_cuda_free(void *p);                     /* NULL-safe */
zm_status zm_cuda_memcpy_h2d(void *dst, const void *src, size_t n);
zm_status zm_cuda_memcpy_d2h(void *dst, const void *src, size_t n);
zm_status zm_cuda_memcpy_d2d(void *dst, const void *src, size_t n);
zm_status zm_cuda_memcpy_h2d_async(void *dst, const void *src, size_t n, zm_stream s);
zm_status zm_cuda_memcpy_d2h_async(void *dst, const void *src, size_t n, zm_stream s);
zm_status zm_cuda_memset(void *p, int v, size_t n);
zm_status zm_cuda_stream_new(zm_stream *s);
void zm_cuda_stream_free(zm_stream s);
zm_status zm_cuda_stream_sync(zm_stream s);
zm_status zm_cuda_sync(void);
/* Checks cudaGetLastError after a launch; `what` names the kernel. */
zm_status zm_cuda_check_launch(const char *what);
/* Name, compute capability (major*10+minor), SM count; memory in bytes. */
zm_status zm_cuda_device_info(char *name, size_t name_len, int *cc, int *sms, size_t *mem_total);
zm_status zm_cuda_mem_info(size_t *free_b, size_t *total_b);
/* Driver version as CUDA reports it (e.g. 13000), 0 if unknown. */
int zm_cuda_driver_version(void);

/* Driver API entry points, resolved with dlopen("libcuda.so.1"). Signatures
 * use plain C types (CUresult == int, handles == void*). NULL if no driver. */
typedef struct zm_cuda_driver {
    int (*cuModuleLoadData)(void **module, const void *image);
    int (*cuModuleUnload)(void *module);
    int (*cuModuleGetFunction)(void **fn, void *module, const char *name);
    int (*cuLaunchKernel)(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                          unsigned by, unsigned bz, unsigned shmem, void *stream, void **params,
                          void **extra);
    int (*cuFuncSetAttribute)(void *fn, int attrib, int value);
    int (*cuGetErrorString)(int err, const char **str);
} zm_cuda_driver;
const zm_cuda_driver *zm__cuda_driver(void);

#endif
