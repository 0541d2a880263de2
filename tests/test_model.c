/* The qwen3moe model end to end on the CPU:
 *  - the stock graph against the naive float64 reference forward
 *    (src/models/reference.c) on `zmlx synth --preset tiny` files in F32,
 *    F16, Q8_0 and Q4_0: logits within 1e-4 relative (max-norm; the
 *    reference dequantizes weights exactly as the kernels do, so quantized
 *    files meet the F32 bound too) and top-1 identical over 64 greedy steps;
 *  - decoding with the KV cache equals recomputing the whole prefix, and a
 *    prompt in one prefill equals the same prompt in pieces;
 *  - the planner's buffer reuse is safe: the poison mode (NaN-filled freed
 *    buffers) changes no bit of the logits, and zm_plan_check holds on the
 *    real decode and prefill graphs;
 *  - bad files (missing tensor, wrong shape, unknown architecture, missing
 *    file, truncated file) give a status and a message naming the cause,
 *    and run clean under valgrind (no leak, no invalid access).
 * Run: make && build/tests/test_model */
#include "graph/graph.h"
#include "harness.h"
#include "models/model_priv.h"
#include "models/reference.h"
#include "qwen3moe_tiny.h"
#include "zmlx/synth.h"
#include "zmlx/zmlx.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
static char *synth_tiny(zm_dtype t, uint64_t seed) {
    static char path[256];
    const char *d = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/zt_model_%s_%d.gguf", d && *d ? d : "/tmp", zm_dtype_name(t), (int)getpid());
    zm_synth_opts o = {0};
    o.preset = "tiny";
    o.type = t;
    o.seed = seed;
    ZT_OK(zm_synth_write(path, &o));
    return path;
}

/* max |out - ref| / max |ref| */
static double rel_inf(const float *out, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)out[i] - ref[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

static int argmax_d(const double *x, int64_t n) {
    int b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = (int)i;
    return b;
}

/* Graph vs reference: prompt through one prefill (the P-token graph), then
 * 64 greedy steps through the decode graph, both sides fed the same ids. */
static void vs_reference(zm_dtype t, double tol) {
    char *path = synth_tiny(t, zt_rand_u64());
    zm_model *m = NULL;
    zm_session *s = NULL;
    zm_gguf *g = NULL;
    zm_ref *ref = NULL;
    zm_model_opts mo = {0};
    mo.n_threads = 2;
    mo.n_ctx = 128;
    ZT_OK(zm_model_load(&m, path, &mo));
    ZT_OK(zm_gguf_open(&g, path));
    if (!m || !g) goto done;
    ZT_OK(zm_session_new(&s, m));
    ZT_OK(zm_ref_new(&ref, g, 128));
    if (!s || !ref) goto done;
    const int64_t V = zm_model_n_vocab(m);
    float *lg = malloc(sizeof(float) * (size_t)V);
    double *rl = malloc(sizeof(double) * (size_t)V);
    int32_t prompt[7];
    for (int i = 0; i < 7; i++) prompt[i] = (int32_t)(zt_rand_u64() % (uint64_t)V);
    int32_t next = -1;
    ZT_OK(zm_session_prefill(s, prompt, 7, lg, &next));
    for (int i = 0; i < 7; i++) ZT_OK(zm_ref_forward(ref, prompt[i], i, rl));
    double worst = 0;
    int mism = 0;
    for (int step = 0; step < 64 && !zt_failed_now(); step++) {
        double e = rel_inf(lg, rl, V);
        if (!(e <= worst)) worst = e;
        int rtop = argmax_d(rl, V);
        if (rtop != next) mism++;
        ZT_CHECK(e <= tol, "%s step %d: logits rel error %.3g > %.3g", zm_dtype_name(t), step, e, tol);
        ZT_CHECK(rtop == next, "%s step %d: graph top-1 %d, reference %d", zm_dtype_name(t), step, next, rtop);
        int32_t id = next;
        ZT_OK(zm_session_decode(s, id, lg, &next));
        ZT_OK(zm_ref_forward(ref, id, 7 + step, rl));
    }
    printf("  %s: 64 greedy steps, worst logits rel error %.3g, top-1 mismatches %d\n", zm_dtype_name(t), worst, mism);
    free(lg);
    free(rl);
done:
    zm_ref_free(ref);
    zm_gguf_free(g);
    zm_session_free(s);
    zm_model_free(m);
    unlink(path);
}

static void test_vs_reference_f32(void) { vs_reference(ZM_F32, 1e-4); }
static void test_vs_reference_f16(void) { vs_reference(ZM_F16, 1e-4); }
static void test_vs_reference_q8_0(void) { vs_reference(ZM_Q8_0, 1e-4); }
static void test_vs_reference_q4_0(void) { vs_reference(ZM_Q4_0, 1e-4); }

// ---------------------------------------------------------------------------
static void test_kv_cache_vs_recompute(void) {
    char *path = synth_tiny(ZM_Q8_0, zt_rand_u64());
    zm_model *m = NULL;
    zm_session *s = NULL;
    zm_model_opts mo = {0};
    mo.n_threads = 2;
    mo.n_ctx = 64;
    ZT_OK(zm_model_load(&m, path, &mo));
    if (m) ZT_OK(zm_session_new(&s, m));
    if (!s) goto done;
    const int64_t V = zm_model_n_vocab(m);
    float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    int32_t seq[40];
    for (int i = 0; i < 5; i++) seq[i] = (int32_t)(zt_rand_u64() % (uint64_t)V);
    int32_t next;
    /* incremental: prefill 5, then 34 decode steps */
    ZT_OK(zm_session_prefill(s, seq, 5, NULL, &next));
    for (int i = 5; i < 40; i++) {
        seq[i] = next;
        ZT_OK(zm_session_decode(s, seq[i], i == 39 ? a : NULL, &next));
    }
    int32_t inc_next = next;
    ZT_CHECK(zm_session_pos(s) == 40, "pos %lld", (long long)zm_session_pos(s));
    /* recompute: the whole prefix in one prefill from an empty cache */
    ZT_OK(zm_session_reset(s));
    ZT_OK(zm_session_prefill(s, seq, 40, b, &next));
    double e = 0, den = 0;
    for (int64_t i = 0; i < V; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    ZT_CHECK(e <= 1e-5 * den, "KV-cache decode vs recompute: max diff %.3g (scale %.3g)", e, den);
    ZT_CHECK(next == inc_next, "greedy id %d vs %d", inc_next, next);
    /* the same prompt in pieces of 13 + 27 tokens */
    ZT_OK(zm_session_reset(s));
    ZT_OK(zm_session_prefill(s, seq, 13, NULL, NULL));
    ZT_OK(zm_session_prefill(s, seq + 13, 27, a, &next));
    e = 0;
    for (int64_t i = 0; i < V; i++) e = fmax(e, fabs((double)a[i] - b[i]));
    ZT_CHECK(e <= 1e-5 * den, "prefill in pieces vs whole: max diff %.3g", e);
    /* overflow and bad ids are refused, the session unchanged */
    int32_t bad = (int32_t)V;
    ZT_CHECK(zm_session_decode(s, bad, NULL, NULL) == ZM_ERR_RANGE, "id outside the vocabulary");
    ZT_CHECK(strstr(zm_last_error(), "vocabulary") != NULL, "message: %s", zm_last_error());
    ZT_CHECK(zm_session_pos(s) == 40, "unchanged after a refused id");
    ZT_CHECK(zm_session_prefill(s, seq, 25, NULL, NULL) == ZM_ERR_RANGE, "cache overflow refused");
    ZT_CHECK(strstr(zm_last_error(), "overflow") != NULL, "message: %s", zm_last_error());
    /* greedy steps in one call: the ids of the step-by-step loop above */
    int32_t g[34];
    ZT_OK(zm_session_reset(s));
    ZT_OK(zm_session_prefill(s, seq, 5, NULL, &next));
    ZT_CHECK(next == seq[5], "prefill of 5 gives %d, before %d", next, seq[5]);
    ZT_OK(zm_session_decode_greedy(s, next, 34, g));
    for (int i = 0; i < 34; i++) ZT_CHECK(g[i] == seq[6 + i], "greedy step %d: %d vs %d", i, g[i], seq[6 + i]);
    ZT_CHECK(zm_session_pos(s) == 39, "pos %lld after 5 + 34", (long long)zm_session_pos(s));
    ZT_CHECK(zm_session_decode_greedy(s, next, 26, g) == ZM_ERR_RANGE, "greedy cache overflow refused");
    ZT_CHECK(zm_session_decode_greedy(s, bad, 1, g) == ZM_ERR_RANGE, "greedy: id outside the vocabulary");
    ZT_CHECK(zm_session_decode_greedy(s, next, 0, g) == ZM_ERR_INVALID, "greedy: 0 steps");
    ZT_CHECK(zm_session_pos(s) == 39, "unchanged after refused greedy calls");
    free(a);
    free(b);
done:
    zm_session_free(s);
    zm_model_free(m);
    unlink(path);
}

/* Poisoned freed buffers must not change a single bit of the logits. */
static void test_planner_reuse_is_safe(void) {
    char *path = synth_tiny(ZM_F32, zt_rand_u64());
    zm_model *m[2] = {0};
    zm_session *s[2] = {0};
    float *lg[2] = {0};
    for (int k = 0; k < 2; k++) {
        zm_model_opts mo = {0};
        mo.n_threads = 2;
        mo.n_ctx = 32;
        mo.poison = k;
        ZT_OK(zm_model_load(&m[k], path, &mo));
        if (m[k]) ZT_OK(zm_session_new(&s[k], m[k]));
    }
    if (!s[0] || !s[1]) goto done;
    const int64_t V = zm_model_n_vocab(m[0]);
    int32_t prompt[6] = {1, 2, 3, 4, 5, 6}, nx[2];
    for (int k = 0; k < 2; k++) {
        lg[k] = malloc(sizeof(float) * (size_t)V);
        ZT_OK(zm_session_prefill(s[k], prompt, 6, lg[k], &nx[k]));
    }
    ZT_CHECK(!memcmp(lg[0], lg[1], sizeof(float) * (size_t)V), "prefill logits differ under poison");
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 2; k++) ZT_OK(zm_session_decode(s[k], nx[k], lg[k], &nx[k]));
    ZT_CHECK(!memcmp(lg[0], lg[1], sizeof(float) * (size_t)V), "decode logits differ under poison");
    /* the planner on the real graphs: no overlap of live buffers, and reuse pays */
    for (int P = 1; P <= 16; P += 15) {
        zm_graph *g = NULL;
        zm_plan *p = NULL;
        ZT_OK(zm__model_build_graph(m[0], P, 0, 0, &g));
        if (g) ZT_OK(zm_plan_new(&p, g, 64, 1));
        if (p) {
            ZT_OK(zm_plan_check(p, g));
            ZT_CHECK(p->arena_bytes * 4 < p->total_bytes, "P=%d: peak %lld not well below total %lld", P,
                     (long long)p->arena_bytes, (long long)p->total_bytes);
            printf("  P=%d: %d nodes, planned peak %.1f KB of %.1f KB of intermediates\n", P, g->n_nodes,
                   p->arena_bytes / 1e3, p->total_bytes / 1e3);
        }
        zm_plan_free(p);
        zm_graph_free(g);
    }
done:
    for (int k = 0; k < 2; k++) {
        free(lg[k]);
        zm_session_free(s[k]);
        zm_model_free(m[k]);
    }
    unlink(path);
}

// ---------------------------------------------------------------------------
static void expect_load_error(const tiny_spec *sp, zm_status want, const char *needle, const char *what) {
    char path[256];
    tiny_path(path, sizeof path, "model_bad");
    ZT_OK(tiny_write(path, sp));
    zm_model *m = (zm_model *)1;
    zm_status st = zm_model_load(&m, path, NULL);
    ZT_CHECK(st == want, "%s: status %d (%s), want %d", what, st, zm_last_error(), want);
    ZT_CHECK(m == NULL, "%s: *out set to NULL", what);
    ZT_CHECK(strstr(zm_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, zm_last_error(), needle);
    unlink(path);
}

static void test_bad_files(void) {
    tiny_spec sp = tiny_default();
    sp.omit_tensor = "blk.1.ffn_up_exps.weight";
    expect_load_error(&sp, ZM_ERR_NOT_FOUND, "blk.1.ffn_up_exps.weight", "missing tensor");
    sp = tiny_default();
    sp.bad_tensor = "blk.0.attn_q.weight";
    expect_load_error(&sp, ZM_ERR_SHAPE, "blk.0.attn_q.weight", "wrong shape");
    sp = tiny_default();
    sp.arch = "mamba9";
    expect_load_error(&sp, ZM_ERR_UNSUPPORTED, "mamba9", "unknown architecture");
    sp = tiny_default();
    sp.n_head_kv = 3; /* 4 % 3 != 0 */
    expect_load_error(&sp, ZM_ERR_FORMAT, "n_head_kv", "inconsistent hyper-parameters");
    zm_model *m = NULL;
    ZT_CHECK(zm_model_load(&m, "/nonexistent/zt.gguf", NULL) == ZM_ERR_IO, "missing file");
    ZT_CHECK(strstr(zm_last_error(), "/nonexistent/zt.gguf") != NULL, "message names the path: %s", zm_last_error());
    /* truncated: a valid file cut in half */
    char *path = synth_tiny(ZM_Q4_0, 1);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    ZT_CHECK(truncate(path, n / 2) == 0, "truncate");
    fclose(f);
    ZT_CHECK(zm_model_load(&m, path, NULL) == ZM_ERR_FORMAT, "truncated file: %s", zm_last_error());
    unlink(path);
    ZT_CHECK(zm_session_new(NULL, NULL) == ZM_ERR_INVALID, "NULL args");
    zm_session_free(NULL);
    zm_model_free(NULL);
}

/* The bad-file cases again under valgrind: no leak, no invalid access on
 * any error path. Skipped where valgrind is not installed. */
static const char *self_path;
static void test_bad_files_valgrind(void) {
    if (getenv("ZT_IN_VALGRIND")) return;
    if (system("command -v valgrind >/dev/null 2>&1") != 0) { zt_skip("valgrind not installed"); return; }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ZT_IN_VALGRIND=1 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect "
             "--error-exitcode=9 %s --bad-files >/dev/null 2>&1", self_path);
    int rc = system(cmd);
    ZT_CHECK(rc == 0, "valgrind on the bad-file cases: exit status %d (run: %s)", rc, cmd);
}

static void test_decode_bytes(void) {
    char *path = synth_tiny(ZM_Q8_0, 3);
    zm_model *m = NULL;
    ZT_OK(zm_model_load(&m, path, NULL));
    if (m) {
        /* active experts only: less than all weights, more than the non-expert part */
        uint64_t db = zm_model_decode_bytes(m), wb = zm_model_weight_bytes(m);
        ZT_CHECK(db > 0 && db < wb, "decode bytes %llu vs all %llu", (unsigned long long)db, (unsigned long long)wb);
        ZT_CHECK(!strcmp(zm_model_arch(m), "qwen3moe") && zm_model_n_layer(m) == 2 && zm_model_weight_type(m) == ZM_Q8_0,
                 "accessors");
    }
    zm_model_free(m);
    unlink(path);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc > 1 && !strcmp(argv[1], "--bad-files")) {
        ZT_RUN(test_bad_files);
        return zt_finish();
    }
    ZT_RUN(test_vs_reference_f32);
    ZT_RUN(test_vs_reference_f16);
    ZT_RUN(test_vs_reference_q8_0);
    ZT_RUN(test_vs_reference_q4_0);
    ZT_RUN(test_kv_cache_vs_recompute);
    ZT_RUN(test_planner_reuse_is_safe);
    ZT_RUN(test_bad_files);
    ZT_RUN(test_bad_files_valgrind);
    ZT_RUN(test_decode_bytes);
    return zt_finish();
}
