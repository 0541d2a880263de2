/* llama.cpp side of the cross-check: load a GGUF with llama.cpp (CPU
 * backends loaded from a folder at run time, a persistent thread pool
 * attached so timings are meaningful), prefill the given token ids, decode
 * N tokens greedily (argmax, ties to the lowest id) and print
 *   ids: a,b,c,...
 *   n_vocab: V
 *   prefill_tok_s: X  decode_tok_s: Y
 * With --logits FILE, the float32 logits of every generated step (N x V)
 * are written there for a logit comparison. Built and run by
 * tests/crosscheck/llama.sh against headers from llama.cpp's own bundle;
 * never linked into libzmlx. */
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud;
    if (level >= GGML_LOG_LEVEL_ERROR || getenv("ZMLX_LLAMA_LOG")) fputs(text, stderr);
}
static bool no_dots(float progress, void *ud) { (void)progress; (void)ud; return true; }
static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *libdir = NULL, *prompt = "1,2,3,4", *logits_path = NULL;
    int n_gen = 32, threads = 2, kv16 = 0, fa = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--libdir") && i + 1 < argc) libdir = argv[++i];
        else if (!strcmp(argv[i], "--prompt-ids") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--logits") && i + 1 < argc) logits_path = argv[++i];
        else if (!strcmp(argv[i], "--kv-f16")) kv16 = 1;
        else if (!strcmp(argv[i], "--fa")) fa = 1;
        else { fprintf(stderr, "usage: llama_decode -m FILE --libdir DIR [--prompt-ids 1,2,3] [-n N] [--threads T] [--logits FILE] [--kv-f16] [--fa]\n"); return 2; }
    }
    if (!model_path || !libdir || n_gen < 1 || threads < 1) { fprintf(stderr, "llama_decode: -m and --libdir are required\n"); return 2; }
    llama_token ids[4096];
    int np = 0;
    for (const char *p = prompt; *p && np < 4096;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) { fprintf(stderr, "llama_decode: bad --prompt-ids\n"); return 2; }
        ids[np++] = (llama_token)v;
        p = *end == ',' ? end + 1 : end;
    }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(libdir);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = no_dots;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) { printf("LOAD FAILED: %s\n", model_path); return 3; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int nv = llama_vocab_n_tokens(vocab);
    for (int i = 0; i < np; i++)
        if (ids[i] < 0 || ids[i] >= nv) { fprintf(stderr, "llama_decode: prompt id %d out of range\n", ids[i]); return 2; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(np + n_gen + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)(np > 32 ? np : 32);
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    /* Exact F32 attention, as zmlx computes it: llama.cpp's default F16 KV
     * cache moves F32 logits by ~5e-4 relative, and its CPU flash-attention
     * kernel (auto-enabled) by ~7e-4 even with an F32 cache; without both
     * the engines agree to ~4e-7. --kv-f16 / --fa restore the defaults. */
    if (!kv16) cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = fa ? LLAMA_FLASH_ATTN_TYPE_AUTO : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { printf("CONTEXT FAILED\n"); return 3; }
    /* a persistent CPU thread pool, or every decode step would start threads */
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
    struct ggml_threadpool *tp = NULL;
    void (*tp_free)(struct ggml_threadpool *) = NULL;
    if (reg) {
        struct ggml_threadpool *(*tp_new)(struct ggml_threadpool_params *) =
            (struct ggml_threadpool *(*)(struct ggml_threadpool_params *))ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
        tp_free = (void (*)(struct ggml_threadpool *))ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
        if (tp_new) {
            struct ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
            tp = tp_new(&tpp);
            if (tp) llama_attach_threadpool(ctx, tp, tp);
        }
    }
    FILE *lf = logits_path ? fopen(logits_path, "wb") : NULL;
    int *out = malloc(sizeof(int) * (size_t)n_gen);
    double t0 = now();
    if (llama_decode(ctx, llama_batch_get_one(ids, np))) { printf("DECODE FAILED (prefill)\n"); return 3; }
    double t1 = now();
    for (int s = 0; s < n_gen; s++) {
        const float *lg = llama_get_logits_ith(ctx, -1);
        if (!lg) { printf("NO LOGITS\n"); return 3; }
        if (lf) fwrite(lg, sizeof(float), (size_t)nv, lf);
        llama_token t = (llama_token)argmax(lg, nv);
        out[s] = t;
        if (s + 1 < n_gen && llama_decode(ctx, llama_batch_get_one(&t, 1))) { printf("DECODE FAILED (step %d)\n", s); return 3; }
    }
    double t2 = now();
    if (lf) fclose(lf);
    printf("ids: ");
    for (int s = 0; s < n_gen; s++) printf("%s%d", s ? "," : "", out[s]);
    printf("\nn_vocab: %d\nprefill_tok_s: %.1f  decode_tok_s: %.1f\n", nv, np / (t1 - t0),
           n_gen > 1 ? (n_gen - 1) / (t2 - t1) : 0.0);
    free(out);
    llama_free(ctx);
    if (tp && tp_free) tp_free(tp);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
