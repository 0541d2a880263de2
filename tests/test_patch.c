/* Patching: each pattern fires where it should (site counts on the tiny
 * qwen3moe graph) and not where it must not (an intermediate used twice, a
 * shape mismatch, a different op order — each next to a positive control);
 * each fused graph equals the stock chain (logits on the CPU); validate
 * PASSes for every default pattern alone and all together; pattern lists,
 * environment overrides, the safety table and unknown names; smart patch
 * drops a pattern made slower on purpose. Run: build/tests/test_patch */
#include "harness.h"
#include "models/model_priv.h"
#include "patch/patch_priv.h"
#include "zmlx/patch.h"
#include "zmlx/synth.h"
#include "zmlx/validate.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256], f32_path[300], q8_path[300], q4_path[300];
static const zm_synth_preset tiny = ZM_SYNTH_TINY;

static int mask_of(const char *name) { return 1 << zm_pattern_find(name); }

static int count_op(const zm_graph *g, zm_op op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
    return n;
}

// ---------------------------------------------------------------------------
static void test_sites_on_tiny(void) {
    zm_model *m;
    ZT_OK(zm_model_load(&m, q8_path, NULL));
    if (!m) return;
    const int L = tiny.n_layer;
    struct { const char *name; int sites; zm_op gone; } want[] = {
        {"moe_gating", L, ZM_OP_SOFTMAX},      {"qk_norm_rope", 2 * L, ZM_OP_ROPE},
        {"add_rmsnorm", 2 * L, ZM_OP_ADD},     {"gather_qmm_swiglu", L, ZM_OP_MATMUL_ID},
        {"swiglu", L, ZM_OP_SILU},             {"gather_qmm_combine", L, ZM_OP_MATMUL_ID},
        {"moe_combine", L, ZM_OP_SUM},
    };
    zm_graph *stock;
    ZT_OK(zm__model_build_graph(m, 1, 0, 0, &stock));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        zm_patch_opts po = {want[i].name, NULL, 1};
        zm_patch_result r;
        ZT_OK(zm_patch(m, &po, &r));
        ZT_CHECK(r.n_applied == 1 && r.applied[0].sites == want[i].sites, "%s: %d sites, want %d", want[i].name,
                 r.n_applied ? r.applied[0].sites : -1, want[i].sites);
        zm_graph *g;
        ZT_OK(zm__model_build_graph(m, 1, 0, 1, &g));
        if (!g) continue;
        ZT_CHECK(count_op(g, want[i].gone) < count_op(stock, want[i].gone), "%s: %s nodes remain (%d)", want[i].name,
                 zm_op_name(want[i].gone), count_op(g, want[i].gone));
        zm_graph_free(g);
    }
    /* all together: the large fusions absorb swiglu and moe_combine */
    zm_patch_opts all = {"all", NULL, 1};
    zm_patch_result r;
    ZT_OK(zm_patch(m, &all, &r));
    zm_graph *g;
    ZT_OK(zm__model_build_graph(m, 1, 0, 1, &g));
    if (g) {
        for (zm_op op = ZM_OP_SOFTMAX; op <= ZM_OP_GATHER; op++) ZT_CHECK(count_op(g, op) == 0, "all: %s left", zm_op_name(op));
        ZT_CHECK(count_op(g, ZM_OP_MATMUL_ID) == 0 && count_op(g, ZM_OP_SILU) == 0 && count_op(g, ZM_OP_RMS_NORM) == 1,
                 "all: primitive MoE/norm ops left (only layer 0's attn_norm, fed by the embedding, stays)");
        ZT_CHECK(count_op(g, ZM_OP_GATHER_QMM_SWIGLU) == L && count_op(g, ZM_OP_GATHER_QMM_COMBINE) == L, "all: fused counts");
        zm_graph_free(g);
    }
    zm_graph_free(stock);
    zm_model_free(m);
}

// ---------------------------------------------------------------------------
/* Hand-built graphs: F32 leaves are WEIGHT nodes over a scratch buffer. */
static float scratch[4096];
static int leaf(zm_graph *g, int ndim, const int64_t *shape) {
    zm_node n = zm_node_make(ZM_OP_WEIGHT, ZM_F32, ndim, shape);
    n.data = scratch;
    int id = -1;
    ZT_OK(zm_graph_add(g, &n, &id));
    return id;
}
static int node(zm_graph *g, zm_op op, int ndim, const int64_t *shape, int a, int b) {
    zm_node n = zm_node_make(op, ZM_F32, ndim, shape);
    n.n_src = b >= 0 ? 2 : 1;
    n.src[0] = a;
    n.src[1] = b;
    int id = -1;
    ZT_OK(zm_graph_add(g, &n, &id));
    return id;
}
static int sites(zm_graph *g, const char *pattern) {
    int c[32] = {0};
    ZT_OK(zm__patch_graph(g, (uint32_t)mask_of(pattern), c));
    return c[zm_pattern_find(pattern)];
}

/* variant 0: matches; 1: SILU used twice; 2: broadcast up; 3: other order */
static int swiglu_case(int variant) {
    zm_graph *g;
    ZT_OK(zm_graph_new(&g));
    const int64_t s[2] = {2, 8}, s1[2] = {1, 8};
    int gate = leaf(g, 2, s), up = leaf(g, 2, variant == 2 ? s1 : s), out;
    if (variant == 3) {
        int m = node(g, ZM_OP_MUL, 2, s, gate, up);
        out = node(g, ZM_OP_SILU, 2, s, m, -1);
    } else {
        int si = node(g, ZM_OP_SILU, 2, s, gate, -1);
        out = node(g, ZM_OP_MUL, 2, s, si, up);
        if (variant == 1) ZT_OK(zm_graph_set_output(g, node(g, ZM_OP_ADD, 2, s, si, out)));
    }
    ZT_OK(zm_graph_set_output(g, out));
    int n = sites(g, "swiglu");
    zm_graph_free(g);
    return n;
}

/* variant 0: matches; 1: norm used twice; 2: a norm without weight */
static int qk_case(int variant) {
    zm_graph *g;
    ZT_OK(zm_graph_new(&g));
    const int64_t s[3] = {1, 4, 16};
    int x = leaf(g, 3, s), w = leaf(g, 1, (int64_t[]){16});
    zm_node in = zm_node_make(ZM_OP_INPUT, ZM_I32, 1, (int64_t[]){1});
    in.ip[0] = ZM_INPUT_POS;
    int pos;
    ZT_OK(zm_graph_add(g, &in, &pos));
    zm_node nn = zm_node_make(ZM_OP_RMS_NORM, ZM_F32, 3, s);
    nn.n_src = variant == 2 ? 1 : 2, nn.src[0] = x, nn.src[1] = w, nn.fp[0] = 1e-6f;
    int nm;
    ZT_OK(zm_graph_add(g, &nn, &nm));
    zm_node rn = zm_node_make(ZM_OP_ROPE, ZM_F32, 3, s);
    rn.n_src = 2, rn.src[0] = nm, rn.src[1] = pos, rn.fp[0] = 10000, rn.ip[0] = ZM_ROPE_NEOX, rn.ip[1] = 16;
    int ro;
    ZT_OK(zm_graph_add(g, &rn, &ro));
    ZT_OK(zm_graph_set_output(g, ro));
    if (variant == 1) ZT_OK(zm_graph_set_output(g, nm));
    int n = sites(g, "qk_norm_rope");
    zm_graph_free(g);
    return n;
}

/* variant 0: matches; 1: broadcast add */
static int add_norm_case(int variant) {
    zm_graph *g;
    ZT_OK(zm_graph_new(&g));
    const int64_t s[2] = {2, 8};
    int a = leaf(g, 2, s), b = leaf(g, 2, variant == 1 ? (int64_t[]){1, 8} : s), w = leaf(g, 1, (int64_t[]){8});
    int ad = node(g, ZM_OP_ADD, 2, s, a, b);
    zm_node nn = zm_node_make(ZM_OP_RMS_NORM, ZM_F32, 2, s);
    nn.n_src = 2, nn.src[0] = ad, nn.src[1] = w, nn.fp[0] = 1e-6f;
    int nm;
    ZT_OK(zm_graph_add(g, &nn, &nm));
    ZT_OK(zm_graph_set_output(g, node(g, ZM_OP_ADD, 2, s, nm, ad)));
    int n = sites(g, "add_rmsnorm");
    zm_graph_free(g);
    return n;
}

/* variant 0: matches; 1: the probabilities are also a graph output */
static int gating_case(int variant) {
    zm_graph *g;
    ZT_OK(zm_graph_new(&g));
    const int64_t s[2] = {1, 8};
    int lg = leaf(g, 2, s);
    int sm = node(g, ZM_OP_SOFTMAX, 2, s, lg, -1);
    zm_node tk = zm_node_make(ZM_OP_TOPK, ZM_I32, 2, (int64_t[]){1, 2});
    tk.n_src = 1, tk.src[0] = sm, tk.ip[0] = 2;
    int t;
    ZT_OK(zm_graph_add(g, &tk, &t));
    int ga = node(g, ZM_OP_GATHER, 2, (int64_t[]){1, 2}, sm, t);
    ZT_OK(zm_graph_set_output(g, ga));
    ZT_OK(zm_graph_set_output(g, t));
    if (variant == 1) ZT_OK(zm_graph_set_output(g, sm));
    int n = sites(g, "moe_gating");
    zm_graph_free(g);
    return n;
}

static void test_fire_and_not_fire(void) {
    ZT_CHECK(swiglu_case(0) == 1, "swiglu positive control");
    ZT_CHECK(swiglu_case(1) == 0, "swiglu: SILU used twice must not fire");
    ZT_CHECK(swiglu_case(2) == 0, "swiglu: shape mismatch must not fire");
    ZT_CHECK(swiglu_case(3) == 0, "swiglu: SILU(MUL) order must not fire");
    ZT_CHECK(qk_case(0) == 1, "qk_norm_rope positive control");
    ZT_CHECK(qk_case(1) == 0, "qk_norm_rope: norm used twice must not fire");
    ZT_CHECK(qk_case(2) == 0, "qk_norm_rope: norm without weight must not fire");
    ZT_CHECK(add_norm_case(0) == 1, "add_rmsnorm positive control");
    ZT_CHECK(add_norm_case(1) == 0, "add_rmsnorm: broadcast add must not fire");
    ZT_CHECK(gating_case(0) == 1, "moe_gating positive control");
    ZT_CHECK(gating_case(1) == 0, "moe_gating: probabilities used elsewhere must not fire");
}

// ---------------------------------------------------------------------------
/* Patched logits equal stock logits, prefill and decode, for each pattern. */
static void test_fused_equals_chain(void) {
    const char *paths[2] = {f32_path, q4_path};
    for (int p = 0; p < 2; p++) {
        zm_model *m;
        ZT_OK(zm_model_load(&m, paths[p], NULL));
        if (!m) return;
        const int64_t V = zm_model_n_vocab(m);
        float *ref = malloc(sizeof(float) * (size_t)V * 9), *got = malloc(sizeof(float) * (size_t)V * 9);
        int32_t prompt[7];
        for (int i = 0; i < 7; i++) prompt[i] = (int32_t)(zt_rand_u64() % (uint64_t)(V - tiny.n_special));
        for (int pi = -1; pi < zm_pattern_count(); pi++) {
            zm_patch_opts po = {pi < 0 ? "none" : zm_pattern_name(pi), NULL, 1};
            ZT_OK(zm_patch(m, &po, NULL));
            zm_session *s;
            ZT_OK(zm_session_new(&s, m));
            if (!s) break;
            float *out = pi < 0 ? ref : got;
            zt_poison_f32(out, V * 9);
            int32_t next;
            ZT_OK(zm_session_prefill(s, prompt, 7, out, &next));
            for (int t = 1; t < 9; t++) ZT_OK(zm_session_decode(s, next, out + t * V, &next));
            zm_session_free(s);
            if (pi < 0) continue;
            double worst = 0;
            for (int64_t i = 0; i < V * 9; i++) {
                double d = fabs((double)got[i] - ref[i]) / (fabs(ref[i]) + 1e-3);
                if (!(d <= worst)) worst = d; /* NaN-safe */
            }
            ZT_CHECK(worst <= 1e-5, "%s on %s: logits differ from stock by %g (relative)", zm_pattern_name(pi),
                     p ? "q4_0" : "f32", worst);
        }
        free(ref);
        free(got);
        zm_model_free(m);
    }
}

static void test_validate_pass(void) {
    for (int pi = -1; pi < zm_pattern_count(); pi++) {
        zm_validate_opts o = {0};
        o.model = q8_path;
        o.patterns = pi < 0 ? NULL : zm_pattern_name(pi); /* NULL: the family default, all together */
        o.max_tokens = pi < 0 ? 200 : 64;
        o.runs = 1;
        zm_capsule c;
        zm_patch_result r;
        ZT_OK(zm_validate(&o, &c, &r));
        ZT_CHECK(c.fidelity_pass && c.matched == o.max_tokens && c.total == o.max_tokens, "validate %s: %s %d/%d",
                 pi < 0 ? "defaults" : zm_pattern_name(pi), c.fidelity_pass ? "PASS" : "FAIL", c.matched, c.total);
        ZT_CHECK(r.n_applied >= 1 && c.stock_decode > 0 && c.patched_decode > 0 && c.n_runs == 2, "numbers filled");
        if (pi < 0) ZT_CHECK(r.n_applied == zm_pattern_count(), "defaults apply every qwen3 pattern (%d)", r.n_applied);
    }
}

// ---------------------------------------------------------------------------
zm_status zm__patch_select(const char *arch, const zm_patch_opts *opts, zm_patch_result *r);

static void test_selection(void) {
    zm_patch_result r;
    zm_patch_opts q = {NULL, NULL, 1};
    ZT_OK(zm__patch_select("qwen3moe", &q, &r));
    ZT_CHECK(r.mask == (1u << zm_pattern_count()) - 1 && !strcmp(r.family, "qwen3"), "qwen3 defaults: %x", r.mask);
    ZT_OK(zm__patch_select("gpt-oss", &q, &r));
    ZT_CHECK(!(r.mask & mask_of("moe_gating")) && r.n_skipped >= 1 && strstr(r.skipped[0].reason, "top-k"),
             "gpt-oss safety table: mask %x", r.mask);
    zm_patch_opts ex = {"moe_gating,swiglu", NULL, 1}; /* explicit: the safety table does not apply */
    ZT_OK(zm__patch_select("gpt-oss", &ex, &r));
    ZT_CHECK(r.mask == (uint32_t)(mask_of("moe_gating") | mask_of("swiglu")) && r.n_skipped == 0, "explicit list");
    ZT_OK(zm__patch_select("llama", &q, &r));
    ZT_CHECK(r.mask == 0 && strstr(r.note, "no patterns") && !strcmp(r.family, "unknown"), "no-op family: %s", r.note);
    zm_patch_opts bad = {"moe_gating,warp_drive", NULL, 1};
    ZT_CHECK(zm__patch_select("qwen3moe", &bad, &r) == ZM_ERR_NOT_FOUND && strstr(zm_last_error(), "warp_drive"),
             "unknown name: %s", zm_last_error());
    zm_patch_opts badx = {NULL, "nope", 1};
    ZT_CHECK(zm__patch_select("qwen3moe", &badx, &r) == ZM_ERR_NOT_FOUND && strstr(zm_last_error(), "nope"), "bad exclude");
    /* environment */
    zm_patch_opts envo = {NULL, NULL, 0};
    setenv("ZMLX_PATTERNS", "swiglu,add_rmsnorm", 1);
    setenv("ZMLX_EXCLUDE", "add_rmsnorm", 1);
    ZT_OK(zm__patch_select("qwen3moe", &envo, &r));
    ZT_CHECK(r.mask == (uint32_t)mask_of("swiglu"), "ZMLX_PATTERNS minus ZMLX_EXCLUDE: %x", r.mask);
    setenv("ZMLX_NO_FUSION", "1", 1);
    ZT_OK(zm__patch_select("qwen3moe", &envo, &r));
    ZT_CHECK(r.mask == 0 && strstr(r.note, "ZMLX_NO_FUSION"), "no fusion");
    unsetenv("ZMLX_PATTERNS");
    unsetenv("ZMLX_EXCLUDE");
    unsetenv("ZMLX_NO_FUSION");
    /* the model-level no-op: patch with an empty list leaves the stock graph */
    zm_model *m;
    ZT_OK(zm_model_load(&m, q8_path, NULL));
    zm_patch_opts none = {"none", NULL, 1};
    ZT_OK(zm_patch(m, &none, &r));
    ZT_CHECK(r.n_applied == 0 && r.note[0], "none: nothing applied, says so");
    zm_model_free(m);
}

static void test_smart_drops_slowed(void) {
    zm_model *m;
    ZT_OK(zm_model_load(&m, q8_path, NULL));
    if (!m) return;
    setenv("ZMLX_PATCH_SLOWDOWN", "swiglu:5000", 1);
    int32_t sample[8];
    for (int i = 0; i < 8; i++) sample[i] = (int32_t)(i * 31 + 5);
    zm_patch_opts po = {"swiglu,moe_combine", NULL, 1};
    zm_patch_result r;
    zm_smart_result sr;
    ZT_OK(zm_smart_patch(m, sample, 8, 24, 3, &po, &r, &sr));
    unsetenv("ZMLX_PATCH_SLOWDOWN");
    int found = 0;
    for (int i = 0; i < sr.n; i++) {
        if (strcmp(sr.cand[i].name, "swiglu")) continue;
        found = 1;
        ZT_CHECK(sr.cand[i].identical && !sr.cand[i].kept, "slowed swiglu: identical %d kept %d", sr.cand[i].identical,
                 sr.cand[i].kept);
        ZT_CHECK(sr.cand[i].ms > sr.stock_ms, "slowed swiglu %.2f ms not slower than stock %.2f ms", sr.cand[i].ms, sr.stock_ms);
    }
    ZT_CHECK(found && sr.n == 2, "candidates measured: %d", sr.n);
    for (int i = 0; i < r.n_applied; i++) ZT_CHECK(strcmp(r.applied[i].name, "swiglu"), "swiglu must not be applied");
    zm_model_free(m);
}

/* zmlx run --patch: the CLI decodes the patched graph (its dump shows the
 * fused ops, the stock dump none) and gives the same greedy ids. */
static int slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return f != NULL;
}
static void test_cli_run_patch(void) {
    static char a[1 << 18], b[1 << 18];
    char cmd[1024], out[300];
    snprintf(out, sizeof out, "%s/cli.txt", dir);
    snprintf(cmd, sizeof cmd, "./build/zmlx run -m %s --device cpu --patch --dump-graph > %s 2>&1", q4_path, out);
    ZT_CHECK(system(cmd) == 0 && slurp(out, a, sizeof a), "run --patch --dump-graph failed: %s", a);
    snprintf(cmd, sizeof cmd, "./build/zmlx run -m %s --device cpu --dump-graph > %s 2>&1", q4_path, out);
    ZT_CHECK(system(cmd) == 0 && slurp(out, b, sizeof b), "run --dump-graph failed: %s", b);
    ZT_CHECK(strstr(a, "gather_qmm_swiglu") && strstr(a, "add_rmsnorm"), "patched dump lacks the fused ops");
    ZT_CHECK(!strstr(b, "gather_qmm_swiglu"), "stock dump has fused ops");
    const char *runs[2] = {"--patch ", ""};
    char *ids[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "./build/zmlx run -m %s --device cpu %s--prompt-ids 1,2,3 -n 12 2>/dev/null > %s", q4_path, runs[k], out);
        ZT_CHECK(system(cmd) == 0 && slurp(out, ids[k], sizeof a), "run %sfailed", runs[k]);
    }
    /* the first line of stdout is the generated ids */
    char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    if (ea) *ea = 0;
    if (eb) *eb = 0;
    ZT_CHECK(a[0] && !strcmp(a, b), "patched ids '%s' vs stock '%s'", a, b);
    snprintf(cmd, sizeof cmd, "./build/zmlx run -m %s --device cpu --patch --bogus > %s 2>&1", q4_path, out);
    ZT_CHECK(system(cmd) != 0, "unknown option accepted");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/zt_patch_%d", (int)getpid());
    snprintf(f32_path, sizeof f32_path, "%s/tiny-f32.gguf", dir);
    snprintf(q8_path, sizeof q8_path, "%s/tiny-q8.gguf", dir);
    snprintf(q4_path, sizeof q4_path, "%s/tiny-q4.gguf", dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd)) return 1;
    const char *paths[3] = {f32_path, q8_path, q4_path};
    zm_dtype types[3] = {ZM_F32, ZM_Q8_0, ZM_Q4_0};
    for (int i = 0; i < 3; i++) {
        zm_synth_opts so = {0};
        so.preset = "tiny";
        so.type = types[i];
        so.seed = zt_rand_u64() % 1000 + 1;
        if (zm_synth_write(paths[i], &so)) { printf("synth: %s\n", zm_last_error()); return 1; }
    }
    ZT_RUN(test_sites_on_tiny);
    ZT_RUN(test_fire_and_not_fire);
    ZT_RUN(test_fused_equals_chain);
    ZT_RUN(test_validate_pass);
    ZT_RUN(test_selection);
    ZT_RUN(test_smart_drops_slowed);
    ZT_RUN(test_cli_run_patch);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return zt_finish();
}
