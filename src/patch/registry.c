/* The pattern registry, model families, the safety table and zm_patch.
 * Families pick a default pattern set; the safety table removes patterns
 * that would change a family's output (or have nothing to fuse there), each
 * with its reason; users override with explicit lists or ZMLX_PATTERNS /
 * ZMLX_EXCLUDE / ZMLX_NO_FUSION. Checked by tests/test_patch.c. */
#include "models/model_priv.h"
#include "patch/patch_priv.h"
#include "zmlx/patch.h"
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------
/* Registry order is application order: larger fusions before the smaller
 * ones they contain (gather_qmm_swiglu before swiglu, gather_qmm_combine
 * before moe_combine); each larger one also accepts the smaller's output. */
static const zm__pattern *const pats[] = {
    &zm__pat_moe_gating,         &zm__pat_qk_norm_rope, &zm__pat_add_rmsnorm, &zm__pat_gather_qmm_swiglu,
    &zm__pat_swiglu,             &zm__pat_gather_qmm_combine, &zm__pat_moe_combine,
};
#define N_PATS ((int)(sizeof pats / sizeof pats[0]))

int zm_pattern_count(void) { return N_PATS; }
const char *zm_pattern_name(int i) { return i >= 0 && i < N_PATS ? pats[i]->name : NULL; }
const char *zm_pattern_desc(int i) { return i >= 0 && i < N_PATS ? pats[i]->desc : NULL; }
int zm_pattern_find(const char *name) {
    for (int i = 0; i < N_PATS; i++)
        if (name && !strcmp(pats[i]->name, name)) return i;
    return -1;
}

// ---------------------------------------------------------------------------
#define ALL_PATS ((1u << N_PATS) - 1)
static const struct { const char *name, *archs; const char *defaults; } fams[] = {
    {"qwen3", "qwen3moe", "all"},
    {"gpt_oss", "gpt-oss", "all"},
    {"lfm2", "lfm2moe", "all"},
    {"deepseek2", "deepseek2,glm4moe", "all"},
    {"qwen3next", "qwen3next", "all"},
};
#define N_FAMS ((int)(sizeof fams / sizeof fams[0]))

static const struct { const char *pattern, *family, *reason; } safety[] = {
    {"moe_gating", "gpt_oss", "gpt-oss takes the top-k of the raw router logits and softmaxes over the k chosen; "
                              "a softmax over all experts gives other weights"},
    {"swiglu", "gpt_oss", "gpt-oss's SwiGLU clamps gate and up and uses x*sigmoid(1.702x)*(up+1): another function"},
    {"gather_qmm_swiglu", "gpt_oss", "gpt-oss experts carry biases and the clamped SwiGLU; the fused kernel has neither"},
    {"gather_qmm_combine", "gpt_oss", "gpt-oss down projections carry a per-expert bias the fused kernel does not add"},
    {"qk_norm_rope", "gpt_oss", "gpt-oss has no per-head Q/K RMSNorm: nothing to fuse"},
    {"moe_gating", "lfm2", "LFM2-MoE scores experts with a sigmoid plus a per-expert bias, not a softmax"},
    {"moe_gating", "deepseek2", "DeepSeek-V3 routing is sigmoid scores + correction bias + group-limited top-k "
                                "(the deepseek_router pattern), not a softmax"},
    {"qk_norm_rope", "deepseek2", "MLA attention has no per-head Q/K RMSNorm and rotates a separate 64-dim slice"},
    {"gather_qmm_combine", "deepseek2", "the routed sum is scaled by routed_scaling_factor before the residual; "
                                        "the fused kernel has no scale"},
};
#define N_SAFE ((int)(sizeof safety / sizeof safety[0]))

int zm_family_count(void) { return N_FAMS; }
const char *zm_family_name(int i) { return i >= 0 && i < N_FAMS ? fams[i].name : NULL; }
const char *zm_family_archs(int i) { return i >= 0 && i < N_FAMS ? fams[i].archs : NULL; }
int zm_safety_count(void) { return N_SAFE; }
void zm_safety_entry(int i, const char **p, const char **f, const char **r) {
    int ok = i >= 0 && i < N_SAFE;
    if (p) *p = ok ? safety[i].pattern : NULL;
    if (f) *f = ok ? safety[i].family : NULL;
    if (r) *r = ok ? safety[i].reason : NULL;
}

/* Parse a comma-separated list ("none", "all" allowed) into a mask. */
static zm_status zm__parse_list(const char *s, uint32_t *mask, const char *what) {
    *mask = 0;
    if (!s) return ZM_OK;
    char buf[1024];
    if (strlen(s) >= sizeof buf) return zm__err(ZM_ERR_INVALID, "%s: list too long", what);
    strcpy(buf, s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (!strcmp(t, "none")) continue;
        if (!strcmp(t, "all")) { *mask |= ALL_PATS; continue; }
        int i = zm_pattern_find(t);
        if (i < 0) return zm__err(ZM_ERR_NOT_FOUND, "%s: unknown pattern '%s' (see 'zmlx patterns')", what, t);
        *mask |= 1u << i;
    }
    return ZM_OK;
}

uint32_t zm_family_defaults(int i) {
    uint32_t m = 0;
    if (i < 0 || i >= N_FAMS) return 0;
    zm__parse_list(fams[i].defaults, &m, "family defaults");
    return m;
}

static int zm__family_index(const char *arch) {
    if (!arch) return -1;
    for (int i = 0; i < N_FAMS; i++) {
        const char *a = fams[i].archs;
        size_t n = strlen(arch);
        while (*a) {
            size_t l = strcspn(a, ",");
            if (l == n && !strncmp(a, arch, n)) return i;
            a += l + (a[l] == ',');
        }
    }
    return -1;
}
const char *zm_family_of_arch(const char *arch) {
    int i = zm__family_index(arch);
    return i < 0 ? "unknown" : fams[i].name;
}

void zm_patch_mask_names(uint32_t mask, char *buf, size_t len) {
    size_t o = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < N_PATS; i++)
        if (mask & (1u << i)) o += (size_t)snprintf(buf + (o < len ? o : len), o < len ? len - o : 0, "%s%s", o ? "," : "", pats[i]->name);
    if (!o) snprintf(buf, len, "none");
}

// ---------------------------------------------------------------------------
/* Test knob ZMLX_PATCH_SLOWDOWN=<pattern>:<n>: every node that pattern
 * produced is computed n more times (dead copies appended to the graph), so
 * the pattern is really slower and still token-identical. tests/test_patch.c
 * uses it to prove that smart patch drops a pattern that loses. */
static zm_status zm__slowdown(zm_graph *g, int i) {
    const char *e = getenv("ZMLX_PATCH_SLOWDOWN");
    size_t l = strlen(pats[i]->name);
    if (!e || strncmp(e, pats[i]->name, l) || e[l] != ':') return ZM_OK;
    int n = atoi(e + l + 1), n0 = g->n_nodes;
    for (int j = 0; j < n0; j++) {
        if (g->nodes[j].op != pats[i]->fused) continue;
        zm_node c = g->nodes[j];
        c.flags &= ~ZM_NODE_OUTPUT;
        for (int k = 0; k < n && k < 100000; k++) ZM_TRY(zm_graph_add(g, &c, NULL));
    }
    return ZM_OK;
}

zm_status zm__patch_graph(zm_graph *g, uint32_t mask, int *counts) {
    for (int i = 0; i < N_PATS; i++) {
        if (!(mask & (1u << i))) continue;
        ZM_TRY(zm__pattern_apply(pats[i], g, counts ? &counts[i] : NULL));
        ZM_TRY(zm__slowdown(g, i));
    }
    return zm_graph_validate(g);
}

static zm_status zm__hook(void *ctx, zm_graph *g) { return zm__patch_graph(g, (uint32_t)(uintptr_t)ctx, NULL); }

/* The selection zm_patch makes, without touching the model. */
static zm_status zm__select(const char *arch, const zm_patch_opts *opts, zm_patch_result *r) {
    memset(r, 0, sizeof *r);
    int fi = zm__family_index(arch);
    snprintf(r->family, sizeof r->family, "%s", zm_family_of_arch(arch));
    const char *explicit_list = opts ? opts->patterns : NULL;
    const char *excl = opts ? opts->exclude : NULL;
    int use_env = !(opts && opts->no_env);
    if (!explicit_list && use_env) explicit_list = getenv("ZMLX_PATTERNS");
    uint32_t mask;
    if (explicit_list) {
        ZM_TRY(zm__parse_list(explicit_list, &mask, "patterns"));
    } else if (fi < 0) {
        mask = 0;
        snprintf(r->note, sizeof r->note, "family of architecture '%s' has no patterns: patch is a no-op", arch ? arch : "?");
    } else {
        mask = zm_family_defaults(fi);
        for (int s = 0; s < N_SAFE; s++) {
            int p = zm_pattern_find(safety[s].pattern);
            if (strcmp(safety[s].family, fams[fi].name) || p < 0 || !(mask & (1u << p))) continue;
            mask &= ~(1u << p);
            if (r->n_skipped < ZM_PATCH_MAX) {
                snprintf(r->skipped[r->n_skipped].name, sizeof r->skipped[0].name, "%s", safety[s].pattern);
                snprintf(r->skipped[r->n_skipped].reason, sizeof r->skipped[0].reason, "%s", safety[s].reason);
                r->n_skipped++;
            }
        }
    }
    uint32_t ex = 0, ex_env = 0;
    ZM_TRY(zm__parse_list(excl, &ex, "exclude"));
    if (use_env) ZM_TRY(zm__parse_list(getenv("ZMLX_EXCLUDE"), &ex_env, "ZMLX_EXCLUDE"));
    mask &= ~(ex | ex_env);
    const char *nf = use_env ? getenv("ZMLX_NO_FUSION") : NULL;
    if (nf && *nf && strcmp(nf, "0")) {
        mask = 0;
        snprintf(r->note, sizeof r->note, "ZMLX_NO_FUSION is set: every pattern is off");
    }
    r->mask = mask;
    return ZM_OK;
}

zm_status zm_patch(zm_model *m, const zm_patch_opts *opts, zm_patch_result *res) {
    if (!m) return zm__err(ZM_ERR_INVALID, "zm_patch: model is NULL");
    zm_patch_result r;
    ZM_TRY(zm__select(zm_model_arch(m), opts, &r));
    if (r.mask) {
        /* count the sites on the decode graph; a graph the patterns break
         * fails here, before any session uses it */
        zm_graph *g;
        int counts[32] = {0};
        ZM_TRY(zm__model_build_graph(m, 1, 0, 0, &g));
        zm_status st = zm__patch_graph(g, r.mask, counts);
        zm_graph_free(g);
        if (st) return zm__err_ctx(st, "zm_patch");
        for (int i = 0; i < N_PATS; i++) {
            if (!(r.mask & (1u << i))) continue;
            snprintf(r.applied[r.n_applied].name, sizeof r.applied[0].name, "%s", pats[i]->name);
            r.applied[r.n_applied++].sites = counts[i];
        }
    } else if (!r.note[0]) {
        snprintf(r.note, sizeof r.note, "no pattern selected: the stock graph runs");
    }
    zm__model_set_rewrite(m, r.mask ? zm__hook : NULL, (void *)(uintptr_t)r.mask);
    if (res) *res = r;
    return ZM_OK;
}

void zm_unpatch(zm_model *m) {
    if (m) zm__model_set_rewrite(m, NULL, NULL);
}

/* For smart patch: the selection only. */
zm_status zm__patch_select(const char *arch, const zm_patch_opts *opts, zm_patch_result *r);
zm_status zm__patch_select(const char *arch, const zm_patch_opts *opts, zm_patch_result *r) {
    return zm__select(arch, opts, r);
}
