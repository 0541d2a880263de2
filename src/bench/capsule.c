/* Repro capsules to and from JSON (cJSON). Every field the reader takes is
 * type-checked and length-checked; unknown extra fields are ignored so newer
 * capsules stay readable. Checked by tests/test_capsule.c. */
#include "core/cuda.h"
#include "core/internal.h"
#include "zm_commit.h"
#include "zmlx/capsule.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
static void zm__cpu_name(char *buf, size_t len) {
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, len, "%s (%ld cores)", p, sysconf(_SC_NPROCESSORS_ONLN));
            }
            break;
        }
    }
    fclose(f);
}

void zm_capsule_fill_env(zm_capsule *c) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(c->date, sizeof c->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (gethostname(c->host, sizeof c->host) != 0) snprintf(c->host, sizeof c->host, "unknown");
    c->host[sizeof c->host - 1] = 0;
    zm__cpu_name(c->cpu, sizeof c->cpu);
    snprintf(c->gpu, sizeof c->gpu, "none");
    snprintf(c->driver, sizeof c->driver, "none");
    if (zm_cuda_available()) {
        char name[128] = "";
        size_t mem = 0;
        int cc = 0;
        zm_cuda_device_info(name, sizeof name, &cc, NULL, &mem);
        snprintf(c->gpu, sizeof c->gpu, "%s (sm_%d, %zu MiB)", name, cc, mem >> 20);
        int v = zm_cuda_driver_version();
        snprintf(c->driver, sizeof c->driver, "CUDA driver %d.%d", v / 1000, (v % 1000) / 10);
    }
#if defined(__clang__)
    snprintf(c->compiler, sizeof c->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(c->compiler, sizeof c->compiler, "gcc %s", __VERSION__);
#endif
    snprintf(c->version, sizeof c->version, "%s", ZM_VERSION);
    snprintf(c->commit, sizeof c->commit, "%s", ZM_GIT_COMMIT);
}

// ---------------------------------------------------------------------------
static void zm__num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

zm_status zm_capsule_write(const zm_capsule *c, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return zm__err(ZM_ERR_NOMEM, "capsule: out of memory");
    zm__num(root, "zmlx_capsule", ZM_CAPSULE_VERSION);
    cJSON *env = cJSON_AddObjectToObject(root, "env");
    cJSON_AddStringToObject(env, "date", c->date);
    cJSON_AddStringToObject(env, "host", c->host);
    cJSON_AddStringToObject(env, "cpu", c->cpu);
    cJSON_AddStringToObject(env, "gpu", c->gpu);
    cJSON_AddStringToObject(env, "driver", c->driver);
    cJSON_AddStringToObject(env, "compiler", c->compiler);
    cJSON_AddStringToObject(env, "zmlx_version", c->version);
    cJSON_AddStringToObject(env, "git_commit", c->commit);
    cJSON_AddStringToObject(env, "command", c->command);
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "file", c->model_file);
    zm__num(m, "size_bytes", (double)c->model_size);
    cJSON_AddStringToObject(m, "architecture", c->arch);
    cJSON_AddStringToObject(m, "type", c->model_type);
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddStringToObject(cfg, "device", c->device);
    cJSON_AddStringToObject(cfg, "patterns", c->patterns);
    zm__num(cfg, "max_tokens", c->max_tokens);
    zm__num(cfg, "runs", c->runs);
    zm__num(cfg, "threads", c->threads);
    zm__num(cfg, "prompt_tokens", c->prompt_tokens);
    cJSON *runs = cJSON_AddArrayToObject(root, "runs");
    for (int i = 0; i < c->n_runs && i < ZM_CAPSULE_MAX_RUNS; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "variant", c->run[i].variant);
        zm__num(r, "prefill_tok_s", c->run[i].prefill_tok_s);
        zm__num(r, "decode_tok_s", c->run[i].decode_tok_s);
        zm__num(r, "peak_mem_bytes", (double)c->run[i].peak_mem);
        cJSON_AddItemToArray(runs, r);
    }
    cJSON *s = cJSON_AddObjectToObject(root, "summary");
    zm__num(s, "stock_decode_tok_s", c->stock_decode);
    zm__num(s, "stock_decode_min", c->stock_decode_min);
    zm__num(s, "stock_decode_max", c->stock_decode_max);
    zm__num(s, "patched_decode_tok_s", c->patched_decode);
    zm__num(s, "patched_decode_min", c->patched_decode_min);
    zm__num(s, "patched_decode_max", c->patched_decode_max);
    zm__num(s, "stock_prefill_tok_s", c->stock_prefill);
    zm__num(s, "patched_prefill_tok_s", c->patched_prefill);
    zm__num(s, "decode_speedup", c->speedup);
    cJSON_AddStringToObject(s, "fidelity", c->fidelity_pass ? "PASS" : "FAIL");
    zm__num(s, "matched", c->matched);
    zm__num(s, "total", c->total);
    zm__num(s, "first_divergence", c->first_divergence);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return zm__err(ZM_ERR_NOMEM, "capsule: out of memory");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) { free(txt); return zm__err(ZM_ERR_IO, "capsule: cannot write %s", tmp); }
    size_t n = strlen(txt);
    int ok = fwrite(txt, 1, n, f) == n && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    free(txt);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return zm__err(ZM_ERR_IO, "capsule: cannot write %s", path);
    }
    return ZM_OK;
}

// ---------------------------------------------------------------------------
typedef struct { const cJSON *obj; const char *where; } zm__jctx;

static zm_status zm__get(zm__jctx c, const char *k, const cJSON **out) {
    *out = cJSON_GetObjectItemCaseSensitive(c.obj, k);
    if (!*out) return zm__err(ZM_ERR_FORMAT, "capsule: missing field %s.%s", c.where, k);
    return ZM_OK;
}
static zm_status zm__str(zm__jctx c, const char *k, char *dst, size_t len) {
    const cJSON *v;
    ZM_TRY(zm__get(c, k, &v));
    if (!cJSON_IsString(v)) return zm__err(ZM_ERR_FORMAT, "capsule: %s.%s must be a string", c.where, k);
    if (strlen(v->valuestring) >= len)
        return zm__err(ZM_ERR_FORMAT, "capsule: %s.%s longer than %zu bytes", c.where, k, len - 1);
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return ZM_OK;
}
static zm_status zm__dbl(zm__jctx c, const char *k, double *dst) {
    const cJSON *v;
    ZM_TRY(zm__get(c, k, &v));
    if (!cJSON_IsNumber(v)) return zm__err(ZM_ERR_FORMAT, "capsule: %s.%s must be a number", c.where, k);
    *dst = v->valuedouble;
    return ZM_OK;
}
static zm_status zm__int(zm__jctx c, const char *k, int *dst) {
    double d = 0;
    ZM_TRY(zm__dbl(c, k, &d));
    if (d != (double)(int)d) return zm__err(ZM_ERR_FORMAT, "capsule: %s.%s must be an integer", c.where, k);
    *dst = (int)d;
    return ZM_OK;
}
static zm_status zm__u64(zm__jctx c, const char *k, uint64_t *dst) {
    double d = 0;
    ZM_TRY(zm__dbl(c, k, &d));
    if (!(d >= 0 && d < 1.8e19)) return zm__err(ZM_ERR_FORMAT, "capsule: %s.%s out of range", c.where, k);
    *dst = (uint64_t)d;
    return ZM_OK;
}
static zm_status zm__objf(zm__jctx c, const char *k, zm__jctx *out) {
    const cJSON *v;
    ZM_TRY(zm__get(c, k, &v));
    if (!cJSON_IsObject(v)) return zm__err(ZM_ERR_FORMAT, "capsule: %s.%s must be an object", c.where, k);
    out->obj = v;
    out->where = k;
    return ZM_OK;
}

static zm_status zm__parse_tree(zm_capsule *c, const cJSON *root) {
    if (!cJSON_IsObject(root)) return zm__err(ZM_ERR_FORMAT, "capsule: top level must be an object");
    zm__jctx r = {root, "capsule"}, env, m, cfg, s;
    int ver = 0;
    ZM_TRY(zm__int(r, "zmlx_capsule", &ver));
    if (ver != ZM_CAPSULE_VERSION) return zm__err(ZM_ERR_FORMAT, "capsule: version %d (expected %d)", ver, ZM_CAPSULE_VERSION);
    ZM_TRY(zm__objf(r, "env", &env));
    ZM_TRY(zm__str(env, "date", c->date, sizeof c->date));
    ZM_TRY(zm__str(env, "host", c->host, sizeof c->host));
    ZM_TRY(zm__str(env, "cpu", c->cpu, sizeof c->cpu));
    ZM_TRY(zm__str(env, "gpu", c->gpu, sizeof c->gpu));
    ZM_TRY(zm__str(env, "driver", c->driver, sizeof c->driver));
    ZM_TRY(zm__str(env, "compiler", c->compiler, sizeof c->compiler));
    ZM_TRY(zm__str(env, "zmlx_version", c->version, sizeof c->version));
    ZM_TRY(zm__str(env, "git_commit", c->commit, sizeof c->commit));
    ZM_TRY(zm__str(env, "command", c->command, sizeof c->command));
    ZM_TRY(zm__objf(r, "model", &m));
    ZM_TRY(zm__str(m, "file", c->model_file, sizeof c->model_file));
    ZM_TRY(zm__u64(m, "size_bytes", &c->model_size));
    ZM_TRY(zm__str(m, "architecture", c->arch, sizeof c->arch));
    ZM_TRY(zm__str(m, "type", c->model_type, sizeof c->model_type));
    ZM_TRY(zm__objf(r, "config", &cfg));
    ZM_TRY(zm__str(cfg, "device", c->device, sizeof c->device));
    ZM_TRY(zm__str(cfg, "patterns", c->patterns, sizeof c->patterns));
    ZM_TRY(zm__int(cfg, "max_tokens", &c->max_tokens));
    ZM_TRY(zm__int(cfg, "runs", &c->runs));
    ZM_TRY(zm__int(cfg, "threads", &c->threads));
    ZM_TRY(zm__int(cfg, "prompt_tokens", &c->prompt_tokens));
    const cJSON *runs;
    ZM_TRY(zm__get(r, "runs", &runs));
    if (!cJSON_IsArray(runs)) return zm__err(ZM_ERR_FORMAT, "capsule: runs must be an array");
    int n = cJSON_GetArraySize(runs);
    if (n > ZM_CAPSULE_MAX_RUNS) return zm__err(ZM_ERR_FORMAT, "capsule: %d runs (at most %d)", n, ZM_CAPSULE_MAX_RUNS);
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, runs) {
        if (!cJSON_IsObject(it)) return zm__err(ZM_ERR_FORMAT, "capsule: runs[%d] must be an object", i);
        zm__jctx rc = {it, "runs[]"};
        zm_capsule_run *cr = &c->run[i];
        ZM_TRY(zm__str(rc, "variant", cr->variant, sizeof cr->variant));
        ZM_TRY(zm__dbl(rc, "prefill_tok_s", &cr->prefill_tok_s));
        ZM_TRY(zm__dbl(rc, "decode_tok_s", &cr->decode_tok_s));
        ZM_TRY(zm__u64(rc, "peak_mem_bytes", &cr->peak_mem));
        i++;
    }
    c->n_runs = i;
    ZM_TRY(zm__objf(r, "summary", &s));
    ZM_TRY(zm__dbl(s, "stock_decode_tok_s", &c->stock_decode));
    ZM_TRY(zm__dbl(s, "stock_decode_min", &c->stock_decode_min));
    ZM_TRY(zm__dbl(s, "stock_decode_max", &c->stock_decode_max));
    ZM_TRY(zm__dbl(s, "patched_decode_tok_s", &c->patched_decode));
    ZM_TRY(zm__dbl(s, "patched_decode_min", &c->patched_decode_min));
    ZM_TRY(zm__dbl(s, "patched_decode_max", &c->patched_decode_max));
    ZM_TRY(zm__dbl(s, "stock_prefill_tok_s", &c->stock_prefill));
    ZM_TRY(zm__dbl(s, "patched_prefill_tok_s", &c->patched_prefill));
    ZM_TRY(zm__dbl(s, "decode_speedup", &c->speedup));
    char fid[8];
    ZM_TRY(zm__str(s, "fidelity", fid, sizeof fid));
    if (strcmp(fid, "PASS") && strcmp(fid, "FAIL")) return zm__err(ZM_ERR_FORMAT, "capsule: summary.fidelity must be PASS or FAIL");
    c->fidelity_pass = !strcmp(fid, "PASS");
    ZM_TRY(zm__int(s, "matched", &c->matched));
    ZM_TRY(zm__int(s, "total", &c->total));
    ZM_TRY(zm__int(s, "first_divergence", &c->first_divergence));
    if (c->matched < 0 || c->total < 0 || c->matched > c->total)
        return zm__err(ZM_ERR_FORMAT, "capsule: summary.matched/total inconsistent (%d/%d)", c->matched, c->total);
    return ZM_OK;
}

zm_status zm_capsule_parse(zm_capsule *c, const char *json, size_t len) {
    if (!c || !json) return zm__err(ZM_ERR_INVALID, "capsule: NULL argument");
    memset(c, 0, sizeof *c);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - json) : 0;
        return zm__err(ZM_ERR_FORMAT, "capsule: not JSON (error near byte %zu)", off);
    }
    zm_status st = zm__parse_tree(c, root);
    cJSON_Delete(root);
    return st;
}

zm_status zm_capsule_read(zm_capsule *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return zm__err(ZM_ERR_IO, "capsule: cannot open %s", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            if (cap > (16u << 20)) { free(buf); fclose(f); return zm__err(ZM_ERR_FORMAT, "capsule: %s larger than 16 MiB", path); }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return zm__err(ZM_ERR_NOMEM, "capsule: out of memory"); }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    zm_status s = zm_capsule_parse(c, buf ? buf : "", len);
    free(buf);
    if (s) zm__err_ctx(s, "%s", path);
    return s;
}
