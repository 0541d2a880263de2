/* The disk cache across processes. This binary re-executes itself as a child
 * ("--child EXPR") that builds a kernel under $ZMLX_CACHE (a fresh temp
 * folder), runs it, and prints what the cache did. Shown here: a second
 * process does not compile (cold vs warm ms printed); a truncated, a
 * corrupted and a garbage entry are detected and rebuilt; four processes
 * compiling the same kernel at once leave one valid entry and no temp files;
 * ZMLX_CACHE=off compiles every time and writes nothing; without a C
 * compiler the interpreter answers. Run: build/tests/test_kernel_cache */
#include "harness.h"
#include "kernel_util.h"
#include "zmlx/kernel.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char exe[4096], dir[256];

typedef struct { char mode[16]; int compiles, hits, corrupt; double ms, value; int ok; } child_res;

/* Child: build "EXPR" (inputs x), evaluate at x = 0.5, print the stats. */
static int child_main(const char *expr) {
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    zm_kernel *k = NULL;
    zm_status s = zm_elementwise(&k, "cachetest", expr, NULL);
    gettimeofday(&t1, NULL);
    if (s != ZM_OK) { printf("error %s\n", zm_last_error()); return 1; }
    int64_t one = 1;
    float xv = 0.5f;
    zm_tensor *x = kt_make(ZM_F32, 1, &one, &xv), *y = kt_out(ZM_F32, 1, &one);
    s = zm_kernel_call(k, &y, 1, (const zm_tensor *const *)&x, 1);
    zm_cache_stats st = zm_cache_get_stats();
    printf("mode=%s compiles=%d hits=%d corrupt=%d ms=%.2f value=%.9g\n", zm_kernel_cpu_mode(k), st.compiles, st.hits,
           st.rebuilt_corrupt, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_usec - t0.tv_usec) / 1e3,
           s == ZM_OK ? (double)*(float *)y->data : NAN);
    zm_tensor_free(x);
    zm_tensor_free(y);
    zm_kernel_free(k);
    return 0;
}

static FILE *spawn(const char *expr) {
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' --child '%s'", exe, expr);
    return popen(cmd, "r");
}
static child_res reap(FILE *f) {
    child_res r;
    memset(&r, 0, sizeof r);
    char line[512] = "";
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        pclose(f);
    }
    r.ok = sscanf(line, "mode=%15s compiles=%d hits=%d corrupt=%d ms=%lf value=%lf", r.mode, &r.compiles, &r.hits,
                  &r.corrupt, &r.ms, &r.value) == 6;
    if (!r.ok) ZT_CHECK(0, "child said: %s", line);
    return r;
}
static child_res run_child(const char *expr) { return reap(spawn(expr)); }

/* The one cache file (ext ".so") whose name starts with "cachetest-"; n = count. */
static int find_entry(char *path, size_t len, int *n_tmp) {
    DIR *d = opendir(dir);
    int n = 0;
    if (n_tmp) *n_tmp = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, ".tmp-", 5) && n_tmp) (*n_tmp)++;
        if (strncmp(e->d_name, "cachetest-", 10) || !strstr(e->d_name, ".so")) continue;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}
static void clear_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4400];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || !strncmp(e->d_name, ".tmp-", 5)) { snprintf(p, sizeof p, "%s/%s", dir, e->d_name); unlink(p); }
    closedir(d);
}

static double want_value(double c) { return 0.5 * 1.5 + c; } /* expr "x * 1.5 + c" at 0.5 */
static void unique_expr(char *buf, size_t n, double *c) {
    *c = (double)(zt_rand_u64() % 1000000) / 1024.0; /* exact in float: fresh source, fresh key */
    snprintf(buf, n, "x * 1.5 + %.10g", *c);
}

static void test_second_process_hits(void) {
    clear_dir();
    char e[128];
    double c;
    unique_expr(e, sizeof e, &c);
    child_res a = run_child(e), b = run_child(e);
    ZT_CHECK(a.ok && !strcmp(a.mode, "jit") && a.compiles == 1 && a.hits == 0, "cold: mode %s compiles %d hits %d", a.mode, a.compiles, a.hits);
    ZT_CHECK(b.ok && !strcmp(b.mode, "jit") && b.compiles == 0 && b.hits == 1, "warm: compiles %d hits %d (a second process must not compile)", b.compiles, b.hits);
    ZT_CHECK(fabs(a.value - want_value(c)) < 1e-4 && fabs(b.value - want_value(c)) < 1e-4, "values %g %g want %g", a.value, b.value, want_value(c));
    printf("  cache: cold build %.1f ms (compiled), warm build %.1f ms (second process, cache hit)\n", a.ms, b.ms);
}

/* Damage the entry in three ways; each must be detected, rebuilt, and work. */
static void test_damaged_entries(void) {
    clear_dir();
    char e[128], path[4400];
    double c;
    unique_expr(e, sizeof e, &c);
    child_res a = run_child(e);
    ZT_CHECK(a.ok && a.compiles == 1, "first build did not compile");
    const char *how[3] = {"truncated", "one byte flipped", "garbage"};
    for (int h = 0; h < 3; h++) {
        if (find_entry(path, sizeof path, NULL) != 1) { ZT_CHECK(0, "no single cache entry in %s", dir); return; }
        struct stat st;
        stat(path, &st);
        if (h == 0) ZT_CHECK(truncate(path, st.st_size / 2) == 0, "truncate");
        else {
            FILE *f = fopen(path, "r+b");
            if (!f) { ZT_CHECK(0, "open %s", path); return; }
            if (h == 1) { /* flip one byte in the middle of the code */
                fseek(f, st.st_size / 3, SEEK_SET);
                int ch = fgetc(f);
                fseek(f, st.st_size / 3, SEEK_SET);
                fputc(ch ^ 0x5a, f);
            } else { /* a plausible-size file of zeros */
                char z[256] = {0};
                for (off_t i = 0; i < st.st_size; i += (off_t)sizeof z) fwrite(z, 1, sizeof z, f);
            }
            fclose(f);
        }
        child_res b = run_child(e);
        ZT_CHECK(b.ok && b.corrupt == 1 && b.compiles == 1 && b.hits == 0 && !strcmp(b.mode, "jit"),
                 "%s entry: corrupt %d compiles %d hits %d mode %s", how[h], b.corrupt, b.compiles, b.hits, b.mode);
        ZT_CHECK(fabs(b.value - want_value(c)) < 1e-4, "%s entry: value %g want %g", how[h], b.value, want_value(c));
        child_res d = run_child(e);
        ZT_CHECK(d.ok && d.hits == 1 && d.compiles == 0 && d.corrupt == 0, "after rebuilding the %s entry: hits %d compiles %d", how[h], d.hits, d.compiles);
    }
}

static void test_concurrent_builders(void) {
    clear_dir();
    char e[128], path[4400];
    double c;
    unique_expr(e, sizeof e, &c);
    FILE *f[4];
    for (int i = 0; i < 4; i++) f[i] = spawn(e);
    int compiled = 0;
    for (int i = 0; i < 4; i++) {
        child_res r = reap(f[i]);
        ZT_CHECK(r.ok && !strcmp(r.mode, "jit") && fabs(r.value - want_value(c)) < 1e-4, "process %d: mode %s value %g", i, r.mode, r.value);
        compiled += r.compiles;
    }
    int tmp = 0;
    ZT_CHECK(find_entry(path, sizeof path, &tmp) == 1, "want exactly one entry after 4 concurrent builds");
    ZT_CHECK(tmp == 0, "%d temp files left behind", tmp);
    child_res after = run_child(e);
    ZT_CHECK(after.ok && after.hits == 1 && after.compiles == 0 && after.corrupt == 0, "entry left by 4 builders is not valid: hits %d compiles %d corrupt %d", after.hits, after.compiles, after.corrupt);
    printf("  cache: 4 concurrent processes compiled %d time(s) in total; entry valid afterwards\n", compiled);
}

static void test_cache_off(void) {
    clear_dir();
    char e[128], path[4400];
    double c;
    unique_expr(e, sizeof e, &c);
    setenv("ZMLX_CACHE", "off", 1);
    child_res a = run_child(e), b = run_child(e);
    setenv("ZMLX_CACHE", dir, 1);
    ZT_CHECK(a.ok && b.ok && a.compiles == 1 && b.compiles == 1 && a.hits + b.hits == 0, "off: compiles %d %d hits %d %d", a.compiles, b.compiles, a.hits, b.hits);
    ZT_CHECK(fabs(b.value - want_value(c)) < 1e-4, "off: value %g", b.value);
    ZT_CHECK(find_entry(path, sizeof path, NULL) == 0, "ZMLX_CACHE=off wrote %s", path);
}

static void test_no_compiler(void) {
    char e[128];
    double c;
    unique_expr(e, sizeof e, &c);
    const char *old = getenv("CC");
    char keep[1024] = "";
    if (old) snprintf(keep, sizeof keep, "%s", old);
    setenv("CC", "/nonexistent/cc", 1);
    child_res a = run_child(e);
    if (old) setenv("CC", keep, 1); else unsetenv("CC");
    ZT_CHECK(a.ok && !strcmp(a.mode, "interp") && a.compiles == 0, "no compiler: mode %s compiles %d", a.mode, a.compiles);
    ZT_CHECK(fabs(a.value - want_value(c)) < 1e-4, "interpreter value %g want %g", a.value, want_value(c));
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--child")) return child_main(argv[2]);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) snprintf(exe, sizeof exe, "%s", argv[0]);
    else exe[n] = 0;
    const char *td = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/zmlx-cache-test-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(dir)) { printf("cannot create a temp folder\n"); return 1; }
    setenv("ZMLX_CACHE", dir, 1);
    ZT_RUN(test_second_process_hits);
    ZT_RUN(test_damaged_entries);
    ZT_RUN(test_concurrent_builders);
    ZT_RUN(test_cache_off);
    ZT_RUN(test_no_compiler);
    clear_dir();
    rmdir(dir);
    return zt_finish();
}
