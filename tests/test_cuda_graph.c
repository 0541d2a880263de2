/* The CUDA graph executor end to end on the tiny synthetic qwen3moe preset:
 * stock and patched (zm_patch, family defaults) graphs token-identical over 200
 * greedy tokens on CUDA; CUDA top-1 identical to the CPU graph over 64
 * tokens (F32, Q8_0, Q4_0 files), F32 logits within 1e-4; captured CUDA
 * graph vs direct launches vs the executor's own fusions off: identical
 * logits; a prefill of P tokens equals P single-token steps; the device
 * greedy loop gives the step-by-step ids.
 * Run: build/tests/test_cuda_graph */
#include "core/cuda.h"
#include "graph/exec_cuda.h"
#include "harness.h"
#include "models/model_priv.h"
#include "zmlx/model.h"
#include "zmlx/patch.h"
#include "zmlx/synth.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];
static char g_path[3][96];
static const zm_dtype g_types[3] = {ZM_F32, ZM_Q8_0, ZM_Q4_0};

static const char *model_path(int t) {
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/zt_cuda_graph_XXXXXX");
        if (!mkdtemp(g_dir)) return NULL;
    }
    if (!g_path[t][0]) {
        snprintf(g_path[t], sizeof g_path[t], "%s/tiny_%s.gguf", g_dir, zm_dtype_name(g_types[t]));
        zm_synth_opts o = {0};
        o.preset = "tiny";
        o.type = g_types[t];
        o.seed = 7;
        if (zm_synth_write(g_path[t], &o) != ZM_OK) { g_path[t][0] = 0; return NULL; }
    }
    return g_path[t];
}

typedef struct {
    zm_model *m;
    zm_session *s;
} runner;

static int open_runner(runner *r, const char *path, zm_device dev, int fused) {
    memset(r, 0, sizeof *r);
    zm_model_opts o = {0};
    o.device = dev;
    o.n_ctx = 512;
    ZT_OK(zm_model_load(&r->m, path, &o));
    if (!r->m) return 0;
    if (fused) ZT_OK(zm_patch(r->m, NULL, NULL)); /* the patcher, family defaults */
    ZT_OK(zm_session_new(&r->s, r->m));
    return r->s != NULL;
}
static void close_runner(runner *r) {
    zm_session_free(r->s);
    zm_model_free(r->m);
}

/* Greedy decode n tokens after a short prompt; ids out, logits of each step
 * into lg (n x V) when non-NULL. */
static void greedy(runner *r, int n, int32_t *out, float *lg) {
    const int32_t prompt[4] = {1, 17, 42, 99};
    int32_t next = -1;
    const int64_t V = zm_model_n_vocab(r->m);
    ZT_OK(zm_session_prefill(r->s, prompt, 4, lg, &next));
    for (int i = 0; i < n; i++) {
        out[i] = next;
        ZT_OK(zm_session_decode(r->s, next, lg ? lg + (int64_t)(i + 1) * V : NULL, &next));
        if (zt_failed_now()) return;
    }
}

// ---------------------------------------------------------------------------
static void test_cuda_stock_vs_fused(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    for (int t = 0; t < 3; t++) {
        const char *path = model_path(t);
        ZT_CHECK(path != NULL, "synth: %s", zm_last_error());
        if (!path) return;
        {
            runner a = {0}, b = {0};
            if (!open_runner(&a, path, ZM_CUDA, 0) || !open_runner(&b, path, ZM_CUDA, 1)) { close_runner(&a); close_runner(&b); return; }
            int32_t ta[200], tb[200];
            greedy(&a, 200, ta, NULL);
            greedy(&b, 200, tb, NULL);
            int same = 0;
            for (int i = 0; i < 200; i++) same += ta[i] == tb[i];
            ZT_CHECK(same == 200, "%s: stock vs patched CUDA graphs agree on %d of 200 tokens", zm_dtype_name(g_types[t]), same);
            close_runner(&a);
            close_runner(&b);
        }
    }
}

static void test_cuda_vs_cpu(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    for (int t = 0; t < 3; t++) {
        const char *path = model_path(t);
        if (!path) { ZT_CHECK(0, "synth: %s", zm_last_error()); return; }
        for (int fused = 0; fused < 2; fused++) {
            runner c = {0}, g = {0};
            if (!open_runner(&c, path, ZM_CPU, fused) || !open_runner(&g, path, ZM_CUDA, fused)) { close_runner(&c); close_runner(&g); return; }
            const int n = 64;
            const int64_t V = zm_model_n_vocab(c.m);
            float *lc = malloc(sizeof(float) * (size_t)((n + 1) * V)), *lg = malloc(sizeof(float) * (size_t)((n + 1) * V));
            int32_t tc[64], tg[64];
            greedy(&c, n, tc, lc);
            greedy(&g, n, tg, lg);
            int same = 0;
            for (int i = 0; i < n; i++) same += tc[i] == tg[i];
            ZT_CHECK(same == n, "%s%s: CUDA top-1 equals CPU on %d of %d tokens", zm_dtype_name(g_types[t]), fused ? " fused" : "", same, n);
            if (g_types[t] == ZM_F32 && same == n) {
                double *ref = malloc(sizeof(double) * (size_t)V), worst = 0;
                for (int i = 0; i <= n; i++) {
                    for (int64_t v = 0; v < V; v++) ref[v] = lc[(int64_t)i * V + v];
                    double e = zt_rel_l2(lg + (int64_t)i * V, ref, V);
                    if (!(e <= worst)) worst = e;
                }
                ZT_CHECK(worst < 1e-4, "F32 logits CUDA vs CPU: worst rel l2 %g", worst);
                free(ref);
            }
            free(lc);
            free(lg);
            close_runner(&c);
            close_runner(&g);
            if (zt_failed_now()) return;
        }
    }
}

/* Same logits bit for bit: captured graph, direct launches, executor
 * fusions off, the persistent kernel; and a P-token prefill equals P single steps (tokens). */
static void test_cuda_modes(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    const char *path = model_path(2);
    if (!path) { ZT_CHECK(0, "synth: %s", zm_last_error()); return; }
    const int n = 20;
    float *lg[4];
    int32_t tk[4][20];
    const char *env[4][2] = {{NULL, NULL}, {"ZMLX_CUDA_GRAPH", "0"}, {"ZMLX_CUDA_NOFUSE", "1"}, {"ZMLX_CUDA_PERSIST", "1"}};
    for (int mode = 0; mode < 4; mode++) {
        if (env[mode][0]) setenv(env[mode][0], env[mode][1], 1);
        runner r;
        lg[mode] = NULL;
        if (open_runner(&r, path, ZM_CUDA, mode == 2 ? 0 : 1)) {
            const int64_t V = zm_model_n_vocab(r.m);
            lg[mode] = malloc(sizeof(float) * (size_t)((n + 1) * V));
            greedy(&r, n, tk[mode], lg[mode]);
            if (mode > 0)
                ZT_CHECK(lg[0] && !memcmp(lg[0], lg[mode], sizeof(float) * (size_t)((n + 1) * V)),
                         "mode %d (%s=%s): logits differ from the captured fused graph", mode, env[mode][0], env[mode][1]);
        }
        close_runner(&r);
        if (env[mode][0]) unsetenv(env[mode][0]);
    }
    for (int mode = 0; mode < 4; mode++) free(lg[mode]);
    /* prefill of 12 tokens vs 12 decode steps */
    runner a = {0}, b = {0};
    if (!open_runner(&a, path, ZM_CUDA, 1) || !open_runner(&b, path, ZM_CUDA, 1)) { close_runner(&a); close_runner(&b); return; }
    int32_t ids[12], na = -1, nb = -1;
    for (int i = 0; i < 12; i++) ids[i] = (int32_t)(zt_rand_u64() % zm_model_n_vocab(a.m));
    ZT_OK(zm_session_prefill(a.s, ids, 12, NULL, &na));
    for (int i = 0; i < 12; i++) ZT_OK(zm_session_decode(b.s, ids[i], NULL, &nb));
    ZT_CHECK(na == nb, "prefill of 12 gives %d, 12 steps give %d", na, nb);
    for (int i = 0; i < 30 && na == nb; i++) {
        ZT_OK(zm_session_decode(a.s, na, NULL, &na));
        ZT_OK(zm_session_decode(b.s, nb, NULL, &nb));
        ZT_CHECK(na == nb, "after prefill, step %d: %d vs %d", i, na, nb);
    }
    close_runner(&a);
    close_runner(&b);
}

/* zm_session_decode_greedy on CUDA (the steps back to back on the device)
 * gives the ids of the step-by-step loop: patched with the captured graph
 * over 1100 steps (past the 1024-id ring), stock without the graph. */
static void test_cuda_greedy_loop(void) {
    if (!zm_cuda_available()) { zt_skip("no GPU"); return; }
    for (int mode = 0; mode < 2; mode++) {
        const char *path = model_path(mode ? 0 : 2);
        if (!path) { ZT_CHECK(0, "synth: %s", zm_last_error()); return; }
        const int n = mode ? 40 : 1100;
        if (mode) setenv("ZMLX_CUDA_GRAPH", "0", 1);
        runner a = {0}, b = {0};
        zm_model_opts o = {0};
        o.device = ZM_CUDA;
        o.n_ctx = 2048;
        int ok = 1;
        for (int i = 0; i < 2 && ok; i++) {
            runner *r = i ? &b : &a;
            ZT_OK(zm_model_load(&r->m, path, &o));
            if (r->m && !mode) ZT_OK(zm_patch(r->m, NULL, NULL));
            if (r->m) ZT_OK(zm_session_new(&r->s, r->m));
            ok = r->s != NULL;
        }
        int32_t *ta = malloc(sizeof(int32_t) * (size_t)(n + 1)), *tb = malloc(sizeof(int32_t) * (size_t)n);
        if (ok && ta && tb) {
            greedy(&a, n + 1, ta, NULL); /* ta[0]: after the prompt, ta[i + 1]: after step i */
            const int32_t prompt[4] = {1, 17, 42, 99};
            int32_t next = -1;
            ZT_OK(zm_session_prefill(b.s, prompt, 4, NULL, &next));
            ZT_CHECK(next == ta[0], "prompt: %d vs %d", next, ta[0]);
            ZT_OK(zm_session_decode_greedy(b.s, next, n, tb));
            int same = 0;
            for (int i = 0; i < n; i++) same += tb[i] == ta[i + 1];
            ZT_CHECK(same == n, "%s: device greedy loop agrees with the step-by-step loop on %d of %d ids", mode ? "stock, no graph" : "patched, graph",
                     same, n);
            ZT_CHECK(zm_session_pos(b.s) == 4 + n, "pos %lld", (long long)zm_session_pos(b.s));
        }
        free(ta);
        free(tb);
        close_runner(&a);
        close_runner(&b);
        if (mode) unsetenv("ZMLX_CUDA_GRAPH");
    }
}

int main(void) {
    ZT_RUN(test_cuda_greedy_loop);
    ZT_RUN(test_cuda_stock_vs_fused);
    ZT_RUN(test_cuda_vs_cpu);
    ZT_RUN(test_cuda_modes);
    for (int t = 0; t < 3; t++) if (g_path[t][0]) unlink(g_path[t]);
    if (g_dir[0]) rmdir(g_dir);
    return zt_finish();
}
