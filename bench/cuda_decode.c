/* GPU decode benchmark (run by bench/gpu.sh on the device machine):
 *   build/bench/cuda_decode -m FILE [-n 256] [--prefill 512] [--ctx 2048]
 *                           [--device cuda|cpu] [--profile 8] [--fused-only]
 *                           [--ab "VAR=V,VAR2=W;VAR=U;-"]
 * Loads the model once; runs the stock graph and the patched graph
 * (zm_patch, family defaults) in two sessions sharing the uploaded weights; greedy
 * decode of n tokens after a short prompt, each token timed on the host
 * (the sampled id is read back every token, so this is end-to-end latency);
 * prints median and spread of ms/token, tok/s, GB/s over the bytes a token
 * must read (active experts only) and % of a same-run device copy bandwidth;
 * fidelity = token ids identical between the two graphs; prefill tok/s of a
 * --prefill-token prompt; with --profile N, per-launch CUDA-event times of N
 * fused decode tokens; with --ab, one more patched session per variant (its
 * variables set while it is built and run, "-" = none), each decoded and
 * compared with the first patched run (same process, same card: knob A/B).
 * One line per model at the end starts with "RESULT". */
#include "core/cuda.h"
#include "core/internal.h"
#include "graph/exec_cuda.h"
#include "kernels/cuda/ops_cuda.h"
#include "models/model_priv.h"
#include "zmlx/model.h"
#include "zmlx/patch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Device copy bandwidth: bytes read + written per second, median of 10. */
static double copy_bw(void) {
    const size_t n = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    if (zm_cuda_malloc(&a, n) != ZM_OK || zm_cuda_malloc(&b, n) != ZM_OK) { zm_cuda_free(a); return 0; }
    zm_cuda_memset(a, 1, n);
    double t[10];
    for (int i = 0; i < 12; i++) {
        zm_cuda_sync();
        double t0 = zm__now();
        zm_cuda_memcpy_d2d(b, a, n);
        zm_cuda_sync();
        if (i >= 2) t[i - 2] = zm__now() - t0;
    }
    qsort(t, 10, sizeof t[0], cmp_d);
    zm_cuda_free(a);
    zm_cuda_free(b);
    return 2.0 * (double)n / t[5];
}

typedef struct {
    double med_ms, p10_ms, p90_ms, tps;
    int32_t *ids;
} dec_result;

static zm_status decode_run(zm_session *s, int n, dec_result *r) {
    const int32_t prompt[4] = {1, 17, 42, 99};
    int32_t next = 0;
    double *t = malloc(sizeof(double) * (size_t)n);
    r->ids = malloc(sizeof(int32_t) * (size_t)n);
    if (!t || !r->ids) { free(t); return zm__err(ZM_ERR_NOMEM, "bench: out of memory"); }
    ZM_TRY(zm_session_reset(s));
    ZM_TRY(zm_session_prefill(s, prompt, 4, NULL, &next));
    double total0 = zm__now();
    for (int i = 0; i < n; i++) {
        r->ids[i] = next;
        double t0 = zm__now();
        zm_status st = zm_session_decode(s, next, NULL, &next);
        t[i] = zm__now() - t0;
        if (st != ZM_OK) { free(t); return st; }
    }
    double total = zm__now() - total0;
    /* the first tokens include graph capture: drop them from the stats */
    int skip = n > 16 ? 4 : 0;
    qsort(t + skip, (size_t)(n - skip), sizeof *t, cmp_d);
    int m = n - skip;
    r->med_ms = 1e3 * t[skip + m / 2];
    r->p10_ms = 1e3 * t[skip + m / 10];
    r->p90_ms = 1e3 * t[skip + (9 * m) / 10];
    r->tps = 1e3 / r->med_ms;
    (void)total;
    free(t);
    return ZM_OK;
}

/* The same n steps as decode_run through zm_session_decode_greedy (on CUDA:
 * back to back on the device, no host round trip between tokens), after a
 * short warm-up call that captures its graph; tok/s over the whole call,
 * and how many ids equal decode_run's (ref[i + 1] is the id after step i). */
static double loop_run(zm_session *s, int n, const int32_t *ref, int *same) {
    const int32_t prompt[4] = {1, 17, 42, 99};
    int32_t next = 0, *ids = malloc(sizeof(int32_t) * (size_t)(n + 4));
    *same = 0;
    if (!ids) return 0;
    double dt = 0;
    for (int rep = 0; rep < 2; rep++) {
        if (zm_session_reset(s) != ZM_OK || zm_session_prefill(s, prompt, 4, NULL, &next) != ZM_OK) { free(ids); return 0; }
        double t0 = zm__now();
        if (zm_session_decode_greedy(s, next, rep ? n : 4, ids) != ZM_OK) {
            fprintf(stderr, "greedy loop: %s\n", zm_last_error());
            free(ids);
            return 0;
        }
        dt = zm__now() - t0;
    }
    for (int i = 0; i + 1 < n; i++) *same += ids[i] == ref[i + 1];
    free(ids);
    return n / dt;
}

/* Prompt processing of n tokens, fed one by one through the captured decode
 * graph (the batched P-token graph runs too, but without a grouped GEMM its
 * expert products re-read weights per token and lose to this). */
static double prefill_run(zm_session *s, int n, int64_t V) {
    double best = 1e30;
    for (int rep = 0; rep < 2; rep++) {
        if (zm_session_reset(s) != ZM_OK) break;
        int32_t next = 0;
        double t0 = zm__now();
        for (int i = 0; i < n; i++)
            if (zm_session_decode(s, (int32_t)((i * 7919 + 13) % V), NULL, i == n - 1 ? &next : NULL) != ZM_OK) {
                fprintf(stderr, "prefill: %s\n", zm_last_error());
                return 0;
            }
        double dt = zm__now() - t0;
        if (dt < best) best = dt;
    }
    return best < 1e30 ? n / best : 0;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n = 256, prefill = 512, profile = 0, fused_only = 0;
    const char *ab = NULL;
    long long ctx = 2048;
    zm_device dev = ZM_CUDA;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prefill") && i + 1 < argc) prefill = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctx = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc) profile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) dev = strcmp(argv[++i], "cpu") ? ZM_CUDA : ZM_CPU;
        else if (!strcmp(argv[i], "--fused-only")) fused_only = 1; /* for ncu: no stock kernels */
        else if (!strcmp(argv[i], "--ab") && i + 1 < argc) ab = argv[++i];
        else { fprintf(stderr, "usage: cuda_decode -m FILE [-n N] [--prefill P] [--ctx C] [--device cuda|cpu] [--profile N] [--fused-only] [--ab VARIANTS]\n"); return 2; }
    }
    if (!path || n < 1) { fprintf(stderr, "cuda_decode: -m FILE required\n"); return 2; }
    char gpu[256] = "cpu";
    int cc = 0, sms = 0;
    size_t memt = 0;
    double bw = 0;
    if (dev == ZM_CUDA) {
        if (zm_cuda_device_info(gpu, sizeof gpu, &cc, &sms, &memt) != ZM_OK) { fprintf(stderr, "cuda_decode: %s\n", zm_last_error()); return 1; }
        bw = copy_bw();
        printf("device: %s (sm_%d, %d SMs, %.1f GB); copy bandwidth %.3f TB/s (read+write)\n", gpu, cc, sms, memt / 1e9, bw / 1e12);
    }
    zm_model_opts mo = {0};
    mo.device = dev;
    mo.n_ctx = ctx;
    zm_model *m = NULL;
    double t0 = zm__now();
    if (zm_model_load(&m, path, &mo) != ZM_OK) { fprintf(stderr, "cuda_decode: load: %s\n", zm_last_error()); return 1; }
    const double mb = (double)zm_model_decode_bytes(m) / 1e6;
    printf("model: %s, %s experts, %lld layers, %.1f MB read per decode token (active experts), file %.2f GB\n", path,
           zm_dtype_name(zm_model_weight_type(m)), (long long)zm_model_n_layer(m), mb, zm_model_weight_bytes(m) / 1e9);
    zm_session *ss = NULL, *sf = NULL;
    if (zm_session_new(&ss, m) != ZM_OK) { fprintf(stderr, "cuda_decode: stock session: %s\n", zm_last_error()); return 1; }
    zm_patch_result pr;
    memset(&pr, 0, sizeof pr);
    if (zm_patch(m, NULL, &pr) != ZM_OK) { fprintf(stderr, "cuda_decode: patch: %s\n", zm_last_error()); return 1; }
    printf("patched (zm_patch, family %s):", pr.family);
    for (int i = 0; i < pr.n_applied; i++) printf(" %s x%d", pr.applied[i].name, pr.applied[i].sites);
    printf("\n");
    if (zm_session_new(&sf, m) != ZM_OK) { fprintf(stderr, "cuda_decode: fused session: %s\n", zm_last_error()); return 1; }
    printf("load + upload + 2 sessions: %.1f s\n", zm__now() - t0);
    dec_result rs = {0}, rf = {0};
    if (fused_only) {
        if (decode_run(sf, n, &rf) != ZM_OK) { fprintf(stderr, "cuda_decode: decode: %s\n", zm_last_error()); return 1; }
        int sl = 0;
        const double lt = loop_run(sf, n, rf.ids, &sl);
        printf("fused decode: %.1f tok/s %.3f ms/token | device loop %.1f tok/s, ids %d/%d\n", rf.tps, rf.med_ms, lt, sl, n - 1);
        if (getenv("ZMLX_ATT_TRACE") && dev == ZM_CUDA) zm_gpu_att_trace_dump(stdout);
        free(rf.ids);
        zm_session_free(ss);
        zm_session_free(sf);
        zm_model_free(m);
        return 0;
    }
    if (decode_run(ss, n, &rs) != ZM_OK || decode_run(sf, n, &rf) != ZM_OK) { fprintf(stderr, "cuda_decode: decode: %s\n", zm_last_error()); return 1; }
    int same = 0;
    for (int i = 0; i < n; i++) same += rs.ids[i] == rf.ids[i];
    const char *names[2] = {"stock", "fused"};
    dec_result *rr[2] = {&rs, &rf};
    for (int k = 0; k < 2; k++) {
        double gbs = rr[k]->tps * mb / 1e3;
        printf("%-6s decode: %7.1f tok/s  %6.3f ms/token (p10 %.3f, p90 %.3f)  %7.1f GB/s  %5.1f%% of copy bw\n", names[k],
               rr[k]->tps, rr[k]->med_ms, rr[k]->p10_ms, rr[k]->p90_ms, gbs, bw > 0 ? 100.0 * gbs * 1e9 / bw : 0);
    }
    int lsame = 0;
    const double ltps = loop_run(sf, n, rf.ids, &lsame);
    printf("fused  device loop: %7.1f tok/s  %6.3f ms/token  %7.1f GB/s  %5.1f%% of copy bw (zm_session_decode_greedy; ids = the step loop's on %d of %d)\n",
           ltps, ltps > 0 ? 1e3 / ltps : 0, ltps * mb / 1e3, bw > 0 ? 100.0 * ltps * mb * 1e6 / bw : 0, lsame, n - 1);
    printf("fidelity: stock vs fused token ids identical on %d of %d tokens\n", same, n);
    double pre = prefill > 0 ? prefill_run(sf, prefill, zm_model_n_vocab(m)) : 0;
    if (prefill > 0) printf("prefill (fused decode graph, token by token): %d tokens, %.1f tok/s\n", prefill, pre);
    size_t fr = 0, tot = 0;
    if (dev == ZM_CUDA && zm_cuda_mem_info(&fr, &tot) == ZM_OK)
        printf("gpu memory in use: %.2f GB (weights %.2f GB, 2 sessions' KV caches of %lld positions, arenas)\n", (tot - fr) / 1e9,
               zm__cuda_ctx_weight_bytes(m->be_ctx) / 1e9, ctx);
    printf("RESULT %s %s stock %.1f tok/s %.3f ms | fused %.1f tok/s %.3f ms %.1f GB/s %.1f%% | identical %d/%d | device loop %.1f tok/s"
           " %.1f%% ids %d/%d | prefill %.1f tok/s\n",
           gpu, zm_dtype_name(zm_model_weight_type(m)), rs.tps, rs.med_ms, rf.tps, rf.med_ms, rf.tps * mb / 1e3,
           bw > 0 ? 100.0 * rf.tps * mb * 1e6 / bw : 0, same, n, ltps, bw > 0 ? 100.0 * ltps * mb * 1e6 / bw : 0, lsame, n - 1, pre);
    for (const char *v = ab; v && *v;) {
        char var[512];
        size_t len = strcspn(v, ";");
        if (len >= sizeof var) len = sizeof var - 1;
        memcpy(var, v, len);
        var[len] = 0;
        v += len + (v[len] == ';');
        char label[512];
        memcpy(label, var, len + 1);
        char *names_set[16];
        int nset = 0;
        for (char *tok = strtok(var, ","); tok && nset < 16; tok = strtok(NULL, ",")) {
            char *eq = strchr(tok, '=');
            if (!eq) continue;
            *eq = 0;
            setenv(tok, eq + 1, 1);
            names_set[nset++] = tok;
        }
        zm_session *sv = NULL;
        dec_result rv = {0};
        if (zm_session_new(&sv, m) == ZM_OK && decode_run(sv, n, &rv) == ZM_OK) {
            int eq = 0;
            for (int i = 0; i < n; i++) eq += rv.ids[i] == rf.ids[i];
            int ls = 0;
            const double lv = loop_run(sv, n, rf.ids, &ls);
            printf("AB %-40s %7.1f tok/s %6.3f ms (p10 %.3f, p90 %.3f) %7.1f GB/s %5.1f%% | identical %d/%d | loop %.1f tok/s ids %d/%d\n",
                   label, rv.tps, rv.med_ms, rv.p10_ms, rv.p90_ms, rv.tps * mb / 1e3, bw > 0 ? 100.0 * rv.tps * mb * 1e6 / bw : 0, eq, n,
                   lv, ls, n - 1);
        } else {
            printf("AB variant failed: %s\n", zm_last_error());
        }
        free(rv.ids);
        zm_session_free(sv);
        for (int i = 0; i < nset; i++) unsetenv(names_set[i]);
    }
    if (getenv("ZMLX_ATT_TRACE") && dev == ZM_CUDA) zm_gpu_att_trace_dump(stdout); /* the last decode's attention phases */
    if (profile > 0 && dev == ZM_CUDA) {
        setenv("ZMLX_CUDA_PROFILE", "1", 1);
        zm_session *sp = NULL;
        if (zm_session_new(&sp, m) == ZM_OK) {
            int32_t next = 1;
            zm_session_decode(sp, next, NULL, &next);
            zm__cuda_profile_reset();
            for (int i = 0; i < profile; i++) zm_session_decode(sp, next, NULL, &next);
            printf("profile of %d fused decode tokens (per-launch CUDA events, no graph):\n", profile);
            zm__cuda_profile_dump(stdout);
            zm_session_free(sp);
        }
        unsetenv("ZMLX_CUDA_PROFILE");
    }
    free(rs.ids);
    free(rf.ids);
    zm_session_free(ss);
    zm_session_free(sf);
    zm_model_free(m);
    return same == n && lsame == n - 1 ? 0 : 3;
}
