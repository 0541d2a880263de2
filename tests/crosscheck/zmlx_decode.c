/* zmlx side of the llama.cpp cross-check: the same interface and output as
 * llama_decode.c (prefill the ids, greedy-decode N tokens, print
 * "ids: a,b,..", tok/s), through the public model API. With --ref-logits
 * FILE (llama.cpp's N x V float32 logits) it also prints the largest
 * relative logit difference, max_i |z_i - r_i| / max_i |r_i|, over the steps
 * whose prefix agrees (up to and including the first step where the greedy
 * tokens differ, since later steps see different inputs).
 * Built and run by tests/crosscheck/llama.sh against build/libzmlx.so. */
#include "zmlx/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int argmax(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return (int)b;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = "1,2,3,4", *ref_path = NULL;
    int n_gen = 32, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--prompt-ids") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ref-logits") && i + 1 < argc) ref_path = argv[++i];
        else { fprintf(stderr, "usage: zmlx_decode -m FILE [--prompt-ids 1,2,3] [-n N] [--threads T] [--ref-logits FILE]\n"); return 2; }
    }
    if (!model_path || n_gen < 1 || threads < 1) { fprintf(stderr, "zmlx_decode: -m is required\n"); return 2; }
    int32_t ids[4096];
    int np = 0;
    for (const char *p = prompt; *p && np < 4096;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) { fprintf(stderr, "zmlx_decode: bad --prompt-ids\n"); return 2; }
        ids[np++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    zm_model_opts mo = {ZM_CPU, threads, np + n_gen + 16, 0};
    zm_model *m = NULL;
    zm_session *s = NULL;
    zm_status st = zm_model_load(&m, model_path, &mo);
    if (st) { printf("LOAD FAILED: %s: %s\n", zm_status_str(st), zm_last_error()); return 3; }
    if ((st = zm_session_new(&s, m))) { printf("SESSION FAILED: %s\n", zm_last_error()); return 3; }
    const int64_t nv = zm_model_n_vocab(m);
    float *lg = malloc(sizeof(float) * (size_t)nv), *ref = malloc(sizeof(float) * (size_t)nv);
    int *out = malloc(sizeof(int) * (size_t)n_gen);
    FILE *rf = ref_path ? fopen(ref_path, "rb") : NULL;
    if (ref_path && !rf) { fprintf(stderr, "zmlx_decode: cannot open %s\n", ref_path); return 2; }
    double worst = 0;
    int compared = 0, diverged = 0;
    int32_t next;
    double t0 = now();
    if ((st = zm_session_prefill(s, ids, np, lg, &next))) { printf("PREFILL FAILED: %s\n", zm_last_error()); return 3; }
    double t1 = now(), tdec = 0;
    for (int k = 0; k < n_gen; k++) {
        out[k] = argmax(lg, nv);
        if (rf && !diverged && fread(ref, sizeof(float), (size_t)nv, rf) == (size_t)nv) {
            double num = 0, den = 0;
            for (int64_t i = 0; i < nv; i++) {
                num = fmax(num, fabs((double)lg[i] - ref[i]));
                den = fmax(den, fabs((double)ref[i]));
            }
            worst = fmax(worst, den > 0 ? num / den : num);
            compared++;
            if (argmax(ref, nv) != out[k]) diverged = 1;
        }
        if (k + 1 < n_gen) {
            double a = now();
            if ((st = zm_session_decode(s, out[k], lg, &next))) { printf("DECODE FAILED (step %d): %s\n", k, zm_last_error()); return 3; }
            tdec += now() - a;
        }
    }
    printf("ids: ");
    for (int k = 0; k < n_gen; k++) printf("%s%d", k ? "," : "", out[k]);
    printf("\nn_vocab: %lld\nprefill_tok_s: %.1f  decode_tok_s: %.1f\n", (long long)nv, np / (t1 - t0),
           n_gen > 1 ? (n_gen - 1) / tdec : 0.0);
    printf("decode_bytes_per_token: %llu\n", (unsigned long long)zm_model_decode_bytes(m));
    if (rf) printf("logit_rel_err: %.3g over %d steps\n", worst, compared);
    if (rf) fclose(rf);
    free(lg); free(ref); free(out);
    zm_session_free(s);
    zm_model_free(m);
    return 0;
}
