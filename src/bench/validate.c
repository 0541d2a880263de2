/* validate: stock vs patched greedy decode, fidelity and throughput, into a
 * repro capsule. Checked by tests/test_patch.c (PASS for every default
 * pattern alone and all together on the tiny preset). */
#include "core/cuda.h"
#include "core/internal.h"
#include "models/timed.h"
#include "zmlx/synth.h"
#include "zmlx/validate.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
static zm_status mkdirs(char *p) {
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        int r = mkdir(p, 0755);
        *s = '/';
        if (r && errno != EEXIST) return zm__err(ZM_ERR_IO, "validate: cannot create %s", p);
    }
    return ZM_OK;
}

zm_status zm_validate_default_model(char *path, size_t len) {
    const char *c = getenv("ZMLX_CACHE"), *home = getenv("HOME");
    char dir[1024];
    if (c && *c && strcmp(c, "off")) snprintf(dir, sizeof dir, "%s", c);
    else if (home && *home && !(c && !strcmp(c, "off"))) snprintf(dir, sizeof dir, "%s/.cache/zmlx", home);
    else snprintf(dir, sizeof dir, "/tmp/zmlx-%d", (int)getuid());
    if ((size_t)snprintf(path, len, "%s/models/tiny-q8_0-seed1.gguf", dir) >= len)
        return zm__err(ZM_ERR_RANGE, "validate: cache path too long");
    ZM_TRY(mkdirs(path));
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0) return ZM_OK;
    zm_synth_opts so = {0};
    so.preset = "tiny";
    so.type = ZM_Q8_0;
    so.seed = 1;
    return zm_synth_write(path, &so);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n ? v[n / 2] : 0;
}

static uint64_t peak_mem(zm_device d) {
    if (d == ZM_CUDA) {
        size_t f = 0, t = 0;
        if (zm_cuda_mem_info(&f, &t) == ZM_OK) return (uint64_t)(t - f);
        return 0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024u;
}

/* One variant: warm-up + runs timed runs; tokens of the warm-up. */
static zm_status variant(zm_model *m, const zm_validate_opts *o, const int32_t *prompt, int n_prompt, int n_gen,
                         const char *name, zm_capsule *c, int32_t *tokens, double *pre, double *dec) {
    zm_session *s;
    ZM_TRY(zm_session_new(&s, m));
    zm_status st = zm__generate_timed(s, prompt, n_prompt, n_gen, tokens, NULL, NULL);
    int32_t *again = malloc(sizeof(int32_t) * (size_t)n_gen);
    if (!again) st = zm__err(ZM_ERR_NOMEM, "validate: out of memory");
    for (int r = 0; r < o->runs && st == ZM_OK; r++) {
        double ps, ds;
        st = zm__generate_timed(s, prompt, n_prompt, n_gen, again, &ps, &ds);
        if (st) break;
        if (memcmp(again, tokens, sizeof(int32_t) * (size_t)n_gen))
            st = zm__err(ZM_ERR_INVALID, "validate: %s decode differs between runs (not deterministic)", name);
        pre[r] = n_prompt / ps;
        dec[r] = n_gen > 1 ? (n_gen - 1) / ds : 0;
        if (c->n_runs < ZM_CAPSULE_MAX_RUNS) {
            zm_capsule_run *cr = &c->run[c->n_runs++];
            snprintf(cr->variant, sizeof cr->variant, "%s", name);
            cr->prefill_tok_s = pre[r];
            cr->decode_tok_s = dec[r];
            cr->peak_mem = peak_mem(o->device);
        }
    }
    free(again);
    zm_session_free(s);
    return st;
}

zm_status zm_validate(const zm_validate_opts *oin, zm_capsule *cap, zm_patch_result *patch) {
    zm_validate_opts o = *oin;
    if (o.max_tokens <= 0) o.max_tokens = 200;
    if (o.runs <= 0) o.runs = 3;
    if (o.runs > ZM_CAPSULE_MAX_RUNS / 2) return zm__err(ZM_ERR_RANGE, "validate: at most %d runs", ZM_CAPSULE_MAX_RUNS / 2);
    char path[1200];
    if (!o.model) {
        ZM_TRY(zm_validate_default_model(path, sizeof path));
        o.model = path;
    }
    zm_model_opts mo = {0};
    mo.device = o.device;
    mo.n_threads = o.threads;
    zm_model *m;
    ZM_TRY(zm_model_load(&m, o.model, &mo));
    int32_t defp[16];
    const int32_t *prompt = o.prompt;
    int n_prompt = o.n_prompt;
    if (!prompt) {
        int64_t V = zm_model_n_vocab(m);
        for (int i = 0; i < 16; i++) defp[i] = (int32_t)((i * 7919 + 11) % (V > 16 ? V - 16 : V));
        prompt = defp;
        n_prompt = 16;
    }
    if (n_prompt + o.max_tokens > zm_model_n_ctx(m)) {
        zm_model_free(m);
        return zm__err(ZM_ERR_RANGE, "validate: %d prompt + %d tokens exceed the context of %lld", n_prompt, o.max_tokens,
                       (long long)zm_model_n_ctx(m));
    }
    zm_capsule *c = calloc(1, sizeof *c);
    int32_t *ts = malloc(sizeof(int32_t) * (size_t)o.max_tokens), *tp = malloc(sizeof(int32_t) * (size_t)o.max_tokens);
    double *sp = calloc((size_t)o.runs * 4, sizeof(double));
    zm_status st = c && ts && tp && sp ? ZM_OK : zm__err(ZM_ERR_NOMEM, "validate: out of memory");
    zm_patch_result pr;
    memset(&pr, 0, sizeof pr);
    if (st == ZM_OK) {
        zm_capsule_fill_env(c);
        snprintf(c->command, sizeof c->command, "%.*s", (int)sizeof c->command - 1, o.command ? o.command : "");
        snprintf(c->model_file, sizeof c->model_file, "%.*s", (int)sizeof c->model_file - 1, o.model);
        snprintf(c->arch, sizeof c->arch, "%s", zm_model_arch(m));
        snprintf(c->model_type, sizeof c->model_type, "%s", zm_dtype_name(zm_model_weight_type(m)));
        FILE *f = fopen(o.model, "rb");
        if (f) { fseek(f, 0, SEEK_END); c->model_size = (uint64_t)ftell(f); fclose(f); }
        snprintf(c->device, sizeof c->device, "%s", zm_device_name(o.device));
        c->max_tokens = o.max_tokens;
        c->runs = o.runs;
        c->threads = o.threads ? o.threads : zm_pool_size(zm_pool_default());
        c->prompt_tokens = n_prompt;
        zm_unpatch(m);
        st = variant(m, &o, prompt, n_prompt, o.max_tokens, "stock", c, ts, sp, sp + o.runs);
    }
    if (st == ZM_OK) {
        zm_patch_opts po = {o.patterns, o.exclude, 0};
        st = zm_patch(m, &po, &pr);
    }
    if (st == ZM_OK) {
        zm_patch_mask_names(pr.mask, c->patterns, sizeof c->patterns);
        st = variant(m, &o, prompt, n_prompt, o.max_tokens, "patched", c, tp, sp + 2 * o.runs, sp + 3 * o.runs);
    }
    if (st == ZM_OK) {
        double *s_pre = sp, *s_dec = sp + o.runs, *p_pre = sp + 2 * o.runs, *p_dec = sp + 3 * o.runs;
        c->stock_prefill = median(s_pre, o.runs);
        c->patched_prefill = median(p_pre, o.runs);
        c->stock_decode = median(s_dec, o.runs);
        c->patched_decode = median(p_dec, o.runs);
        c->stock_decode_min = s_dec[0], c->stock_decode_max = s_dec[o.runs - 1];
        c->patched_decode_min = p_dec[0], c->patched_decode_max = p_dec[o.runs - 1];
        c->speedup = c->stock_decode > 0 ? c->patched_decode / c->stock_decode : 0;
        c->total = o.max_tokens;
        c->first_divergence = -1;
        c->matched = 0;
        for (int i = 0; i < o.max_tokens; i++) {
            if (ts[i] != tp[i]) { c->first_divergence = i; break; }
            c->matched++;
        }
        c->fidelity_pass = c->first_divergence < 0;
        if (cap) *cap = *c;
        if (patch) *patch = pr;
    }
    zm_unpatch(m);
    free(c);
    free(ts);
    free(tp);
    free(sp);
    zm_model_free(m);
    return st;
}
