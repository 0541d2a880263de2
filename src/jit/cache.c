/* The on-disk kernel cache: $ZMLX_CACHE (default ~/.cache/zmlx, "off"
 * disables it). An entry is the compiled payload (.so or .cubin) followed by
 * a 64-byte trailer {magic, payload length, FNV-1a 64 of the payload, key}.
 * Entries are written to a temp file in the same folder and renamed into
 * place, so a reader sees either nothing or a whole entry, whatever other
 * processes do at the same time; an entry whose trailer, length or checksum
 * does not match is removed and rebuilt, never loaded (dlopen only ever
 * sees verified files). Checked by tests/test_kernel_cache.c. */
#include "jit/jit.h"
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZM__TRAILER 64
static const char zm__magic[8] = {'Z', 'M', 'L', 'X', 'C', 'A', '0', '1'};

typedef struct {
    char magic[8];
    uint64_t len;
    uint64_t sum;
    uint64_t sum2;
    char key[32];
} zm__trailer;
_Static_assert(sizeof(zm__trailer) == ZM__TRAILER, "cache trailer is 64 bytes");

static _Atomic int zm__n_compiles, zm__n_hits, zm__n_corrupt;

// ---------------------------------------------------------------------------
uint64_t zm__fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ull; }
    return h;
}
/* A second, word-wise checksum (different mixing than FNV) so a corruption
 * must fool two unrelated functions. */
static uint64_t zm__mix64(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < n; i++) h = (h ^ s[i]) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

void zm__cache_key(char key[33], const char *src, const char *target, const char *compiler) {
    uint64_t h1 = ZM__FNV_SEED, h2 = 0x84222325cbf29ce4ull;
    const char *parts[3] = {src, target, compiler};
    for (int i = 0; i < 3; i++) {
        const char *s = parts[i] ? parts[i] : "";
        h1 = zm__fnv1a(s, strlen(s) + 1, h1); /* the NUL separates the parts */
        h2 = zm__fnv1a(s, strlen(s) + 1, h2);
    }
    snprintf(key, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

void zm__cache_count(int compile, int hit, int corrupt) {
    if (compile) atomic_fetch_add(&zm__n_compiles, compile);
    if (hit) atomic_fetch_add(&zm__n_hits, hit);
    if (corrupt) atomic_fetch_add(&zm__n_corrupt, corrupt);
}

zm_cache_stats zm_cache_get_stats(void) {
    zm_cache_stats s = {atomic_load(&zm__n_compiles), atomic_load(&zm__n_hits), atomic_load(&zm__n_corrupt)};
    return s;
}

// ---------------------------------------------------------------------------
static pthread_mutex_t zm__dir_mu = PTHREAD_MUTEX_INITIALIZER;
static char zm__dir[4096];

static int zm__mkdirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
    struct stat st;
    return (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && access(path, W_OK) == 0) ? 0 : -1;
}

/* Resolved on every call: tests and tools change $ZMLX_CACHE at run time. */
const char *zm__cache_folder(void) {
    const char *env = getenv("ZMLX_CACHE");
    char want[4096];
    if (env && !strcmp(env, "off")) return NULL;
    if (env && *env) snprintf(want, sizeof want, "%s", env);
    else {
        const char *home = getenv("HOME");
        if (home && *home) snprintf(want, sizeof want, "%s/.cache/zmlx", home);
        else snprintf(want, sizeof want, "/tmp/zmlx-cache-%d", (int)getuid());
    }
    size_t L = strlen(want);
    while (L > 1 && want[L - 1] == '/') want[--L] = 0;
    pthread_mutex_lock(&zm__dir_mu);
    if (strcmp(want, zm__dir) != 0) {
        char tmp[4096];
        memcpy(tmp, want, L + 1);
        if (zm__mkdirs(tmp) != 0) {
            zm__log("zmlx cache: cannot use %s (%s); caching disabled", want, strerror(errno));
            zm__dir[0] = 0;
            pthread_mutex_unlock(&zm__dir_mu);
            return NULL;
        }
        memcpy(zm__dir, want, L + 1);
    }
    pthread_mutex_unlock(&zm__dir_mu);
    return zm__dir;
}

const char *zm_cache_dir(void) {
    const char *d = zm__cache_folder();
    return d ? d : "";
}

void zm__cache_tmpname(char *buf, size_t n, const char *dir, const char *key, const char *ext) {
    static _Atomic unsigned seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, n, "%s/.tmp-%.16s-%d-%u-%ld%s", dir, key, (int)getpid(), atomic_fetch_add(&seq, 1),
             (long)ts.tv_nsec, ext);
}

// ---------------------------------------------------------------------------
static zm_status zm__read_all(const char *file, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? ZM_ERR_NOT_FOUND : zm__err(ZM_ERR_IO, "cache: open %s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)1 << 30) {
        close(fd);
        return zm__err(ZM_ERR_FORMAT, "cache: %s is not a plausible entry", file);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) { close(fd); return zm__err(ZM_ERR_NOMEM, "cache: out of memory reading %s", file); }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = got;
    return ZM_OK;
}

static int zm__trailer_ok(const unsigned char *b, size_t n, const char *key) {
    if (n < ZM__TRAILER) return 0;
    zm__trailer t;
    memcpy(&t, b + n - ZM__TRAILER, sizeof t);
    size_t plen = n - ZM__TRAILER;
    return !memcmp(t.magic, zm__magic, 8) && t.len == plen && !memcmp(t.key, key, 32) &&
           t.sum == zm__fnv1a(b, plen, ZM__FNV_SEED) && t.sum2 == zm__mix64(b, plen);
}

zm_status zm__cache_read(const char *file, const char *key, void **payload, size_t *len) {
    if (payload) *payload = NULL;
    if (len) *len = 0;
    unsigned char *b;
    size_t n;
    zm_status s = zm__read_all(file, &b, &n);
    if (s != ZM_OK) return s;
    if (!zm__trailer_ok(b, n, key)) {
        free(b);
        unlink(file); /* a whole new entry will be renamed over it */
        zm__cache_count(0, 0, 1);
        return zm__err(ZM_ERR_FORMAT, "cache: entry %s is truncated or corrupt; rebuilding", file);
    }
    if (payload) {
        *payload = b;
        *len = n - ZM__TRAILER;
    } else free(b);
    return ZM_OK;
}

zm_status zm__cache_verify(const char *file, const char *key) { return zm__cache_read(file, key, NULL, NULL); }

static zm_status zm__write_full(int fd, const void *p, size_t n, const char *file) {
    const unsigned char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return zm__err(ZM_ERR_IO, "cache: write %s: %s", file, w < 0 ? strerror(errno) : "short write");
        s += w;
        n -= (size_t)w;
    }
    return ZM_OK;
}

static zm_status zm__finish(const char *tmp, const char *file, const char *key, const void *payload, size_t len,
                            int append_only) {
    int fd = open(tmp, append_only ? (O_WRONLY | O_APPEND | O_CLOEXEC) : (O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC), 0644);
    if (fd < 0) return zm__err(ZM_ERR_IO, "cache: create %s: %s", tmp, strerror(errno));
    zm__trailer t;
    memset(&t, 0, sizeof t);
    memcpy(t.magic, zm__magic, 8);
    t.len = len;
    t.sum = zm__fnv1a(payload, len, ZM__FNV_SEED);
    t.sum2 = zm__mix64(payload, len);
    memcpy(t.key, key, 32);
    zm_status s = ZM_OK;
    if (!append_only) s = zm__write_full(fd, payload, len, tmp);
    if (s == ZM_OK) s = zm__write_full(fd, &t, sizeof t, tmp);
    if (close(fd) != 0 && s == ZM_OK) s = zm__err(ZM_ERR_IO, "cache: close %s: %s", tmp, strerror(errno));
    if (s == ZM_OK && rename(tmp, file) != 0) s = zm__err(ZM_ERR_IO, "cache: rename to %s: %s", file, strerror(errno));
    if (s != ZM_OK) unlink(tmp);
    return s;
}

zm_status zm__cache_write(const char *file, const char *key, const void *payload, size_t len) {
    char tmp[4200];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    zm__cache_tmpname(tmp, sizeof tmp, dir, key, ".part");
    return zm__finish(tmp, file, key, payload, len, 0);
}

zm_status zm__cache_seal(const char *tmp, const char *file, const char *key) {
    unsigned char *b;
    size_t n;
    zm_status s = zm__read_all(tmp, &b, &n);
    if (s == ZM_ERR_NOT_FOUND) return zm__err(ZM_ERR_IO, "cache: %s vanished", tmp);
    if (s != ZM_OK) return s;
    s = zm__finish(tmp, file, key, b, n, 1);
    free(b);
    return s;
}
