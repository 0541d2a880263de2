/* The CPU JIT: writes emitted C to a temp file, runs $CC (default cc) with
 * -O3 -march=native -shared -fPIC into a temp .so, seals it into the disk
 * cache (cache.c: trailer + atomic rename) and dlopens the verified entry.
 * The cache key covers the source, the flags and `$CC --version`'s first
 * line, so a compiler upgrade or another CC never reuses old objects.
 * Checked by tests/test_kernel.c and tests/test_kernel_cache.c. */
#include "jit/jit.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ZM__CC_FLAGS "-O3 -march=native -fno-math-errno -fno-trapping-math -shared -fPIC -w"

// ---------------------------------------------------------------------------
/* Split $CC ("ccache gcc -m64" is legal) into argv; returns argc or -1. */
static int zm__cc_argv(char *buf, size_t n, char **argv, int max) {
    const char *cc = getenv("CC");
    if (!cc || !*cc) cc = "cc";
    snprintf(buf, n, "%s", cc);
    int argc = 0;
    for (char *p = strtok(buf, " \t"); p && argc < max - 1; p = strtok(NULL, " \t")) argv[argc++] = p;
    argv[argc] = NULL;
    return argc ? argc : -1;
}

/* Run argv with stdout+stderr into out (NUL-terminated, truncated); returns
 * the exit status, 127 if it could not start, -1 on a signal. */
static int zm__run(char *const *argv, char *out, size_t out_len) {
    int pfd[2];
    if (pipe(pfd) != 0) return 127;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    size_t got = 0;
    if (out_len) out[0] = 0;
    if (rc != 0) { close(pfd[0]); return 127; }
    char tmp[4096];
    for (;;) {
        ssize_t r = read(pfd[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t take = (size_t)r;
        if (got + take >= out_len) take = out_len > got + 1 ? out_len - got - 1 : 0;
        memcpy(out + got, tmp, take);
        got += take;
    }
    if (out_len) out[got] = 0;
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pthread_mutex_t zm__cc_mu = PTHREAD_MUTEX_INITIALIZER;
static char zm__cc_seen[1024];  /* the $CC the identity belongs to */
static char zm__cc_id[3200];
static int zm__cc_mvec = -1;    /* libmvec links: -1 unknown, 0 no, 1 yes */

const char *zm__cc_identity(void) {
    char buf[1024], *argv[34];
    const char *cc = getenv("CC");
    pthread_mutex_lock(&zm__cc_mu);
    if (strcmp(zm__cc_seen, cc && *cc ? cc : "cc") != 0 || !zm__cc_id[0]) {
        snprintf(zm__cc_seen, sizeof zm__cc_seen, "%s", cc && *cc ? cc : "cc");
        zm__cc_id[0] = 0;
        zm__cc_mvec = -1;
        int argc = zm__cc_argv(buf, sizeof buf, argv, 32);
        if (argc > 0) {
            argv[argc] = "--version";
            argv[argc + 1] = NULL;
            char out[2048];
            if (zm__run(argv, out, sizeof out) == 0) {
                char *nl = strchr(out, '\n');
                if (nl) *nl = 0;
                snprintf(zm__cc_id, sizeof zm__cc_id, "%s | %s", zm__cc_seen, out);
            }
        }
    }
    pthread_mutex_unlock(&zm__cc_mu);
    return zm__cc_id;
}

// ---------------------------------------------------------------------------
static zm_status zm__write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return zm__err(ZM_ERR_IO, "jit: create %s: %s", path, strerror(errno));
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { close(fd); unlink(path); return zm__err(ZM_ERR_IO, "jit: write %s: %s", path, strerror(errno)); }
        off += (size_t)w;
    }
    if (close(fd) != 0) { unlink(path); return zm__err(ZM_ERR_IO, "jit: close %s: %s", path, strerror(errno)); }
    return ZM_OK;
}

/* $CC FLAGS [-DZM_LIBMVEC] -o so c [-lmvec] -lm */
static zm_status zm__compile(const char *csrc, const char *so, const char *name) {
    char buf[1024], *argv[64], flags[] = ZM__CC_FLAGS;
    int argc = zm__cc_argv(buf, sizeof buf, argv, 32);
    if (argc < 0) return zm__err(ZM_ERR_UNSUPPORTED, "jit: no C compiler ($CC is empty)");
    for (char *p = strtok(flags, " "); p && argc < 50; p = strtok(NULL, " ")) argv[argc++] = p;
    for (int attempt = 0; attempt < 2; attempt++) {
        int mvec = zm__cc_mvec != 0 && attempt == 0;
        int n = argc;
        if (mvec) argv[n++] = "-DZM_LIBMVEC";
        argv[n++] = "-o";
        argv[n++] = (char *)so;
        argv[n++] = (char *)csrc;
        if (mvec) argv[n++] = "-lmvec";
        argv[n++] = "-lm";
        argv[n] = NULL;
        char out[4096];
        int rc = zm__run(argv, out, sizeof out);
        if (rc == 0) {
            if (mvec) zm__cc_mvec = 1;
            return ZM_OK;
        }
        if (rc == 127) return zm__err(ZM_ERR_UNSUPPORTED, "jit: C compiler '%s' did not start", argv[0]);
        if (!mvec) {
            if (strlen(out) > 600) strcpy(out + 600, " ...");
            return zm__err(ZM_ERR_COMPILE, "jit: %s failed compiling kernel %s (exit %d): %s", argv[0], name, rc, out);
        }
        zm__cc_mvec = 0; /* retry once without libmvec */
    }
    return zm__err(ZM_ERR_COMPILE, "jit: compile of %s failed", name);
}

static void zm__safe_name(char *dst, size_t n, const char *name) {
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < n && j < 24; i++) {
        char c = name[i];
        dst[j++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') ? c : '_';
    }
    dst[j] = 0;
    if (!j) snprintf(dst, n, "k");
}

static zm_status zm__dlopen(const char *path, void **handle) {
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*handle) {
        const char *e = dlerror();
        return zm__err(ZM_ERR_COMPILE, "jit: dlopen %s: %s", path, e ? e : "?");
    }
    return ZM_OK;
}

/* No cache: compile in a private temp folder, load, delete the files. */
static zm_status zm__build_uncached(const char *src, const char *name, void **handle) {
    const char *td = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/zmlx-jit-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(dir)) return zm__err(ZM_ERR_IO, "jit: mkdtemp %s: %s", dir, strerror(errno));
    char c[4200], so[4200];
    snprintf(c, sizeof c, "%s/k.c", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    zm_status s = zm__write_file(c, src);
    if (s == ZM_OK) s = zm__compile(c, so, name);
    if (s == ZM_OK) {
        zm__cache_count(1, 0, 0);
        s = zm__dlopen(so, handle);
    }
    unlink(c);
    unlink(so);
    rmdir(dir);
    return s;
}

zm_status zm__cc_build(const char *src, const char *name, void **handle) {
    *handle = NULL;
    const char *id = zm__cc_identity();
    if (!id[0]) {
        const char *cc = getenv("CC");
        return zm__err(ZM_ERR_UNSUPPORTED, "jit: no working C compiler ('%s --version' failed)", cc && *cc ? cc : "cc");
    }
    const char *dir = zm__cache_folder();
    if (!dir) return zm__build_uncached(src, name, handle);
    char key[33], target[128], sname[32], file[4300];
    snprintf(target, sizeof target, "c-so %s", ZM__CC_FLAGS);
    zm__cache_key(key, src, target, id);
    zm__safe_name(sname, sizeof sname, name);
    snprintf(file, sizeof file, "%s/%s-%s.so", dir, sname, key);
    zm_status s = zm__cache_verify(file, key);
    if (s == ZM_OK) {
        if (zm__dlopen(file, handle) == ZM_OK) {
            zm__cache_count(0, 1, 0);
            return ZM_OK;
        }
        /* verified but not loadable (another machine's object): rebuild */
        unlink(file);
        zm__cache_count(0, 0, 1);
    }
    char c[4300], so[4300];
    zm__cache_tmpname(c, sizeof c, dir, key, ".c");
    zm__cache_tmpname(so, sizeof so, dir, key, ".so");
    s = zm__write_file(c, src);
    if (s != ZM_OK) { /* full disk, read-only folder: still work, uncached */
        zm__log("zmlx cache: %s; compiling without the cache", zm_last_error());
        return zm__build_uncached(src, name, handle);
    }
    s = zm__compile(c, so, name);
    unlink(c);
    if (s != ZM_OK) { unlink(so); return s; }
    zm__cache_count(1, 0, 0);
    s = zm__cache_seal(so, file, key);
    if (s != ZM_OK) {
        zm__log("zmlx cache: %s; loading the object uncached", zm_last_error());
        unlink(so);
        return zm__build_uncached(src, name, handle);
    }
    /* load what is in the cache now (ours, or an identical one another
     * process renamed there a moment later), after verifying it */
    s = zm__cache_verify(file, key);
    if (s != ZM_OK) return zm__build_uncached(src, name, handle);
    return zm__dlopen(file, handle);
}
