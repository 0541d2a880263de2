/* CUDA device layer: the runtime API behind zm_status, and the driver API
 * dlopen'ed for NVRTC modules. Without ZM_HAVE_CUDA every entry point says
 * ZM_ERR_NO_DEVICE. The device is picked once per process, but made current
 * on every thread that calls in (the driver API used for NVRTC modules sees
 * only the calling thread's context). GPU behaviour is checked by
 * tests/test_cuda_ops.c and tests/test_kernel_cuda.c (a kernel built and
 * launched from fresh threads) on the device machine; on CPU-only machines
 * those tests count as skipped. */
#include "core/cuda.h"
#include "core/internal.h"
#include <stdio.h>
#include <string.h>

#ifdef ZM_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>

// ---------------------------------------------------------------------------
static int zm__cuda_state; /* 0 unknown, 1 ok, -1 none */
static int zm__cuda_dev;   /* the device picked by the probe */
static char zm__cuda_why[256];
static pthread_once_t zm__cuda_once = PTHREAD_ONCE_INIT;
/* Set once this thread has the primary context of zm__cuda_dev current. The
 * runtime API would bind a context lazily on its own (but to device 0 unless
 * this thread chose another); the driver API (cuModuleLoadData,
 * cuLaunchKernel) never does and fails with "invalid device context" on a
 * thread where only some other thread ran cudaSetDevice. */
static _Thread_local int zm__cuda_bound;

static void zm__cuda_probe(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        snprintf(zm__cuda_why, sizeof zm__cuda_why, "no CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        cudaGetLastError();
        zm__cuda_state = -1;
        return;
    }
    int dev = 0;
    const char *env = getenv("ZMLX_CUDA_DEVICE");
    if (env) dev = atoi(env);
    if (dev < 0 || dev >= n) dev = 0;
    e = cudaSetDevice(dev);
    if (e == cudaSuccess) e = cudaFree(0); /* create the primary context now */
    if (e != cudaSuccess) {
        snprintf(zm__cuda_why, sizeof zm__cuda_why, "cudaSetDevice(%d): %s", dev, cudaGetErrorString(e));
        zm__cuda_state = -1;
        return;
    }
    zm__cuda_dev = dev;
    zm__cuda_bound = 1; /* the probing thread is bound by the calls above */
    zm__cuda_state = 1;
}

zm_status zm_cuda_init(void) {
    pthread_once(&zm__cuda_once, zm__cuda_probe);
    if (zm__cuda_state != 1) return zm__err(ZM_ERR_NO_DEVICE, "%s", zm__cuda_why);
    if (!zm__cuda_bound) {
        /* cudaSetDevice makes the primary context current (cuCtxSetCurrent);
         * cudaFree(0) makes sure it is initialised, as in the probe. */
        cudaError_t e = cudaSetDevice(zm__cuda_dev);
        if (e == cudaSuccess) e = cudaFree(0);
        if (e != cudaSuccess)
            return zm__err(ZM_ERR_CUDA, "cudaSetDevice(%d) on a new thread: %s", zm__cuda_dev, cudaGetErrorString(e));
        zm__cuda_bound = 1;
    }
    return ZM_OK;
}

int zm_cuda_available(void) { return zm_cuda_init() == ZM_OK; }

static zm_status zm__ck(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return ZM_OK;
    return zm__err(ZM_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}
#define ZM__INIT() ZM_TRY(zm_cuda_init())

zm_status zm_cuda_malloc(void **p, size_t n) {
    *p = NULL;
    ZM__INIT();
    cudaError_t e = cudaMalloc(p, n);
    if (e != cudaSuccess) {
        *p = NULL;
        return zm__err(e == cudaErrorMemoryAllocation ? ZM_ERR_NOMEM : ZM_ERR_CUDA,
                       "cudaMalloc(%zu bytes): %s", n, cudaGetErrorString(e));
    }
    return ZM_OK;
}
/* Freeing needs the owning context current too; a pointer exists only after
 * a successful init, so binding here cannot fail for a new reason. */
void zm_cuda_free(void *p) { if (p && zm_cuda_init() == ZM_OK) cudaFree(p); }
zm_status zm_cuda_memcpy_h2d(void *d, const void *s, size_t n) { ZM__INIT(); return zm__ck(cudaMemcpy(d, s, n, cudaMemcpyHostToDevice), "cudaMemcpy h2d"); }
zm_status zm_cuda_memcpy_d2h(void *d, const void *s, size_t n) { ZM__INIT(); return zm__ck(cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost), "cudaMemcpy d2h"); }
zm_status zm_cuda_memcpy_d2d(void *d, const void *s, size_t n) { ZM__INIT(); return zm__ck(cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice), "cudaMemcpy d2d"); }
zm_status zm_cuda_memcpy_h2d_async(void *d, const void *s, size_t n, zm_stream st) {
    ZM__INIT(); return zm__ck(cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, (cudaStream_t)st), "cudaMemcpyAsync h2d");
}
zm_status zm_cuda_memcpy_d2h_async(void *d, const void *s, size_t n, zm_stream st) {
    ZM__INIT(); return zm__ck(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, (cudaStream_t)st), "cudaMemcpyAsync d2h");
}
zm_status zm_cuda_memset(void *p, int v, size_t n) { ZM__INIT(); return zm__ck(cudaMemset(p, v, n), "cudaMemset"); }
zm_status zm_cuda_stream_new(zm_stream *s) {
    *s = NULL;
    ZM__INIT();
    cudaStream_t st;
    ZM_TRY(zm__ck(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate"));
    *s = st;
    return ZM_OK;
}
void zm_cuda_stream_free(zm_stream s) { if (s && zm_cuda_init() == ZM_OK) cudaStreamDestroy((cudaStream_t)s); }
zm_status zm_cuda_stream_sync(zm_stream s) { ZM__INIT(); return zm__ck(cudaStreamSynchronize((cudaStream_t)s), "cudaStreamSynchronize"); }
zm_status zm_cuda_sync(void) { ZM__INIT(); return zm__ck(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
zm_status zm_cuda_check_launch(const char *what) { return zm__ck(cudaGetLastError(), what); }

zm_status zm_cuda_device_info(char *name, size_t name_len, int *cc, int *sms, size_t *mem_total) {
    ZM__INIT();
    int dev;
    struct cudaDeviceProp p;
    ZM_TRY(zm__ck(cudaGetDevice(&dev), "cudaGetDevice"));
    ZM_TRY(zm__ck(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties"));
    if (name && name_len) snprintf(name, name_len, "%s", p.name);
    if (cc) *cc = p.major * 10 + p.minor;
    if (sms) *sms = p.multiProcessorCount;
    if (mem_total) *mem_total = p.totalGlobalMem;
    return ZM_OK;
}
zm_status zm_cuda_mem_info(size_t *f, size_t *t) { ZM__INIT(); return zm__ck(cudaMemGetInfo(f, t), "cudaMemGetInfo"); }
int zm_cuda_driver_version(void) { int v = 0; return cudaDriverGetVersion(&v) == cudaSuccess ? v : 0; }

// ---------------------------------------------------------------------------
static zm_cuda_driver zm__drv;
static int zm__drv_ok;
static pthread_once_t zm__drv_once = PTHREAD_ONCE_INIT;
static void zm__drv_load(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
#define ZM__SYM(f, name) *(void **)(&zm__drv.f) = dlsym(h, name)
    ZM__SYM(cuModuleLoadData, "cuModuleLoadData");
    ZM__SYM(cuModuleUnload, "cuModuleUnload");
    ZM__SYM(cuModuleGetFunction, "cuModuleGetFunction");
    ZM__SYM(cuLaunchKernel, "cuLaunchKernel");
    ZM__SYM(cuFuncSetAttribute, "cuFuncSetAttribute");
    ZM__SYM(cuGetErrorString, "cuGetErrorString");
#undef ZM__SYM
    zm__drv_ok = zm__drv.cuModuleLoadData && zm__drv.cuModuleGetFunction && zm__drv.cuLaunchKernel &&
                 zm__drv.cuModuleUnload && zm__drv.cuGetErrorString;
}
const zm_cuda_driver *zm__cuda_driver(void) {
    if (zm_cuda_init() != ZM_OK) return NULL;
    pthread_once(&zm__drv_once, zm__drv_load);
    return zm__drv_ok ? &zm__drv : NULL;
}

#else /* !ZM_HAVE_CUDA */
// ---------------------------------------------------------------------------
#define ZM__NODEV() zm__err(ZM_ERR_NO_DEVICE, "zmlx was built without CUDA")
zm_status zm_cuda_init(void) { return ZM__NODEV(); }
int zm_cuda_available(void) { return 0; }
zm_status zm_cuda_malloc(void **p, size_t n) { *p = NULL; return ZM__NODEV(); }
void zm_cuda_free(void *p) { (void)p; }
zm_status zm_cuda_memcpy_h2d(void *d, const void *s, size_t n) { return ZM__NODEV(); }
zm_status zm_cuda_memcpy_d2h(void *d, const void *s, size_t n) { return ZM__NODEV(); }
zm_status zm_cuda_memcpy_d2d(void *d, const void *s, size_t n) { return ZM__NODEV(); }
zm_status zm_cuda_memcpy_h2d_async(void *d, const void *s, size_t n, zm_stream st) { return ZM__NODEV(); }
zm_status zm_cuda_memcpy_d2h_async(void *d, const void *s, size_t n, zm_stream st) { return ZM__NODEV(); }
zm_status zm_cuda_memset(void *p, int v, size_t n) { return ZM__NODEV(); }
zm_status zm_cuda_stream_new(zm_stream *s) { *s = NULL; return ZM__NODEV(); }
void zm_cuda_stream_free(zm_stream s) { (void)s; }
zm_status zm_cuda_stream_sync(zm_stream s) { return ZM__NODEV(); }
zm_status zm_cuda_sync(void) { return ZM__NODEV(); }
zm_status zm_cuda_check_launch(const char *what) { return ZM__NODEV(); }
zm_status zm_cuda_device_info(char *name, size_t name_len, int *cc, int *sms, size_t *mem_total) { return ZM__NODEV(); }
zm_status zm_cuda_mem_info(size_t *f, size_t *t) { return ZM__NODEV(); }
int zm_cuda_driver_version(void) { return 0; }
const zm_cuda_driver *zm__cuda_driver(void) { return NULL; }
#endif
