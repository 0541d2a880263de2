/* The CUDA JIT: NVRTC compiles the emitted CUDA C to a CUBIN for the card's
 * own SM (sm_<major><minor> from zm_cuda_device_info), cached on disk like
 * the CPU objects (key: source + SM + NVRTC version; checksummed, atomic);
 * the driver API (zm__cuda_driver, dlopen'ed) loads and launches it. Also
 * the CUDA runner: picks or builds the variant for a call's signature and
 * launches k_ew / k_ew4 / k_row. Built without CUDA every entry says
 * ZM_ERR_NO_DEVICE. Checked on the GPU by tests/test_kernel_cuda.c. */
#include "jit/jit.h"
#include "core/cuda.h"
#include <stdio.h>
#include <string.h>

#ifdef ZM_HAVE_CUDA
#include <nvrtc.h>

// ---------------------------------------------------------------------------
static zm_status zm__cu(int rc, const char *what) {
    if (rc == 0) return ZM_OK;
    const zm_cuda_driver *d = zm__cuda_driver();
    const char *msg = NULL;
    if (d && d->cuGetErrorString) d->cuGetErrorString(rc, &msg);
    return zm__err(ZM_ERR_CUDA, "%s: CUDA driver error %d (%s)", what, rc, msg ? msg : "?");
}

static int zm__sm(void) {
    int cc = 0;
    if (zm_cuda_device_info(NULL, 0, &cc, NULL, NULL) != ZM_OK) return 0;
    return cc;
}

int zm__cuda_sm_count(void) {
    int sms = 0;
    if (zm_cuda_device_info(NULL, 0, NULL, &sms, NULL) != ZM_OK || sms < 1) return 80;
    return sms;
}

static zm_status zm__nvrtc_compile(const char *src, const char *name, int sm, void **cubin, size_t *len) {
    *cubin = NULL;
    *len = 0;
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, src, name, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS) return zm__err(ZM_ERR_COMPILE, "nvrtc: create %s: %s", name, nvrtcGetErrorString(r));
    char arch[64];
    snprintf(arch, sizeof arch, "--gpu-architecture=sm_%d", sm);
    const char *opts[] = {arch, "-std=c++17"};
    r = nvrtcCompileProgram(prog, 2, opts);
    if (r != NVRTC_SUCCESS) {
        size_t ln = 0;
        nvrtcGetProgramLogSize(prog, &ln);
        char *log = malloc(ln + 1);
        if (log) { log[0] = 0; nvrtcGetProgramLog(prog, log); log[ln] = 0; if (ln > 800) strcpy(log + 800, " ..."); }
        zm_status s = zm__err(ZM_ERR_COMPILE, "nvrtc: %s for sm_%d: %s: %s", name, sm, nvrtcGetErrorString(r), log ? log : "");
        free(log);
        nvrtcDestroyProgram(&prog);
        return s;
    }
    size_t n = 0;
    r = nvrtcGetCUBINSize(prog, &n);
    void *buf = r == NVRTC_SUCCESS && n ? malloc(n) : NULL;
    if (buf) r = nvrtcGetCUBIN(prog, buf);
    nvrtcDestroyProgram(&prog);
    if (!buf || r != NVRTC_SUCCESS) {
        free(buf);
        return zm__err(ZM_ERR_COMPILE, "nvrtc: no CUBIN for %s (%s)", name, nvrtcGetErrorString(r));
    }
    *cubin = buf;
    *len = n;
    return ZM_OK;
}

zm_status zm__nvrtc_check(const char *src, const char *name, int sm) {
    void *cubin = NULL;
    size_t len = 0;
    zm_status s = zm__nvrtc_compile(src, name, sm, &cubin, &len);
    free(cubin);
    return s;
}

zm_status zm__nvrtc_build(const char *src, const char *name, void **module, const char *entry, void **fn,
                          const char *entry4, void **fn4) {
    *module = NULL;
    *fn = NULL;
    if (fn4) *fn4 = NULL;
    const zm_cuda_driver *d = zm__cuda_driver();
    if (!d) return zm__err(ZM_ERR_NO_DEVICE, "kernel %s: no CUDA driver/device", name);
    int sm = zm__sm();
    if (!sm) return zm__err(ZM_ERR_NO_DEVICE, "kernel %s: cannot query the GPU", name);
    int maj = 0, min = 0;
    nvrtcVersion(&maj, &min);
    char target[64], comp[64], key[33], file[4300];
    snprintf(target, sizeof target, "cubin sm_%d", sm);
    snprintf(comp, sizeof comp, "nvrtc %d.%d", maj, min);
    zm__cache_key(key, src, target, comp);
    const char *dir = zm__cache_folder();
    void *cubin = NULL;
    size_t len = 0;
    zm_status s = ZM_ERR_NOT_FOUND;
    if (dir) {
        char sname[32];
        size_t j = 0;
        for (size_t i = 0; name[i] && j < 24; i++) {
            char c = name[i];
            sname[j++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
        }
        sname[j] = 0;
        snprintf(file, sizeof file, "%s/%s-%s.cubin", dir, j ? sname : "k", key);
        s = zm__cache_read(file, key, &cubin, &len);
        if (s == ZM_OK) zm__cache_count(0, 1, 0);
    }
    if (s != ZM_OK) {
        ZM_TRY(zm__nvrtc_compile(src, name, sm, &cubin, &len));
        zm__cache_count(1, 0, 0);
        if (dir && zm__cache_write(file, key, cubin, len) != ZM_OK)
            zm__log("zmlx cache: %s (CUBIN kept in memory only)", zm_last_error());
    }
    s = zm__cu(d->cuModuleLoadData(module, cubin), "cuModuleLoadData");
    free(cubin);
    if (s != ZM_OK) { *module = NULL; return s; }
    s = zm__cu(d->cuModuleGetFunction(fn, *module, entry), entry);
    if (s == ZM_OK && entry4 && fn4) s = zm__cu(d->cuModuleGetFunction(fn4, *module, entry4), entry4);
    if (s != ZM_OK) { d->cuModuleUnload(*module); *module = NULL; *fn = NULL; }
    return s;
}

zm_status zm__cuda_launch(void *fn, unsigned grid, unsigned block, void *stream, void **args) {
    const zm_cuda_driver *d = zm__cuda_driver();
    if (!d) return zm__err(ZM_ERR_NO_DEVICE, "no CUDA driver");
    return zm__cu(d->cuLaunchKernel(fn, grid, 1, 1, block, 1, 1, 0, stream, args, NULL), "cuLaunchKernel");
}

void zm__cuda_unload(void *module) {
    if (!module) return;
    const zm_cuda_driver *d = zm__cuda_driver();
    if (d) d->cuModuleUnload(module);
}

// ---------------------------------------------------------------------------
static zm_status zm__variant(zm_kernel *k, const zm__sig *sig, zm__cuda_variant **out) {
    *out = NULL;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->n_cuda; i++)
        if (!memcmp(&k->cuda[i].sig, sig, sizeof *sig)) {
            *out = &k->cuda[i];
            pthread_mutex_unlock(&k->mu);
            return ZM_OK;
        }
    zm_status s = ZM_OK;
    if (k->n_cuda == ZM__MAX_CUDA_VARIANTS)
        s = zm__err(ZM_ERR_RANGE, "kernel %s: more than %d dtype/broadcast variants on CUDA", k->name, ZM__MAX_CUDA_VARIANTS);
    char *src = NULL;
    if (s == ZM_OK) s = zm__emit_cuda(k, sig, &src);
    zm__cuda_variant v;
    memset(&v, 0, sizeof v);
    v.sig = *sig;
    if (s == ZM_OK) {
        int ew = k->kind == ZM__KIND_EW;
        s = zm__nvrtc_build(src, k->name, &v.module, ew ? "k_ew" : "k_row", &v.fn, ew ? "k_ew4" : NULL, ew ? &v.fn4 : NULL);
    }
    free(src);
    if (s == ZM_OK) {
        k->cuda[k->n_cuda] = v;
        *out = &k->cuda[k->n_cuda++];
    }
    pthread_mutex_unlock(&k->mu);
    return s;
}

zm_status zm__run_cuda(const zm__job *job, void *stream) {
    zm_kernel *k = job->k;
    zm__cuda_variant *v;
    ZM_TRY(zm__variant(k, &job->sig, &v));
    struct { float p[8]; } prm;
    memcpy(prm.p, job->params, sizeof prm.p);
    long long n = job->n, cols = job->cols;
    void *ptrs[ZM_MAX_INPUTS + 1];
    void *args[ZM_MAX_INPUTS + 4];
    int na = 0;
    args[na++] = &n;
    args[na++] = &cols;
    for (int q = 0; q < job->n_in; q++) { ptrs[q] = (void *)job->in[q]; args[na++] = &ptrs[q]; }
    ptrs[job->n_in] = job->out;
    args[na++] = &ptrs[job->n_in];
    args[na++] = &prm;
    long long sms = zm__cuda_sm_count();
    if (k->kind == ZM__KIND_EW) {
        /* 4 per thread when every vector access is aligned */
        int vec = v->fn4 && n % 4 == 0 && (!job->has_row || cols % 4 == 0);
        for (int q = 0; vec && q <= job->n_in; q++) {
            int dt = q < job->n_in ? job->sig.in_dtype[q] : job->sig.out_dtype;
            if (q < job->n_in && job->sig.in_mode[q] == ZM__MODE_SCALAR) continue;
            vec = ((uintptr_t)ptrs[q] % (dt == ZM_F32 ? 16 : 8)) == 0;
        }
        long long m = vec ? n / 4 : n, n4 = n / 4;
        if (vec) args[0] = &n4;
        long long grid = (m + 255) / 256;
        if (grid > sms * 32) grid = sms * 32;
        if (grid < 1) grid = 1;
        return zm__cuda_launch(vec ? v->fn4 : v->fn, (unsigned)grid, 256, stream, args);
    }
    unsigned block = 32;
    while (block < 1024 && (long long)block < cols) block *= 2;
    long long grid = n < (1 << 20) ? n : (1 << 20);
    if (grid < 1) grid = 1;
    return zm__cuda_launch(v->fn, (unsigned)grid, block, stream, args);
}

#else /* !ZM_HAVE_CUDA */
// ---------------------------------------------------------------------------
zm_status zm__nvrtc_check(const char *src, const char *name, int sm) {
    return zm__err(ZM_ERR_NO_DEVICE, "kernel %s: zmlx was built without CUDA (no NVRTC)", name);
}
zm_status zm__nvrtc_build(const char *src, const char *name, void **module, const char *entry, void **fn,
                          const char *entry4, void **fn4) {
    *module = NULL;
    *fn = NULL;
    if (fn4) *fn4 = NULL;
    return zm__err(ZM_ERR_NO_DEVICE, "kernel %s: zmlx was built without CUDA", name);
}
zm_status zm__cuda_launch(void *fn, unsigned grid, unsigned block, void *stream, void **args) {
    return zm__err(ZM_ERR_NO_DEVICE, "zmlx was built without CUDA");
}
void zm__cuda_unload(void *module) { (void)module; }
int zm__cuda_sm_count(void) { return 0; }
zm_status zm__run_cuda(const zm__job *job, void *stream) {
    return zm__err(ZM_ERR_NO_DEVICE, "kernel %s: zmlx was built without CUDA", job->k->name);
}
#endif
