/* Patching: rewrite a model's stock graph so MoE gating, expert matmuls +
 * SwiGLU, combine and norms run as fused kernels, with greedy output
 * token-identical to the stock graph.
 *
 *   zm_patch_result r;
 *   zm_patch(model, NULL, &r);          // family defaults minus the safety table
 *   zm_session_new(&s, model);          // sessions created now run patched
 *
 * Pattern selection, in order: opts->patterns (explicit: the safety table is
 * NOT applied, the user asked), else $ZMLX_PATTERNS, else the family's
 * default set minus the safety table; then opts->exclude and $ZMLX_EXCLUDE
 * are removed; $ZMLX_NO_FUSION=1 turns every pattern off. Lists are comma
 * separated; "none" is the empty list, "all" every pattern. Unknown names are
 * ZM_ERR_NOT_FOUND naming the pattern. Patterns match nodes by op and data
 * flow (never by names) and check single use of intermediates, shapes and
 * dtypes. Tested by tests/test_patch.c. */
#ifndef ZMLX_PATCH_H
#define ZMLX_PATCH_H

#include "zmlx/core.h"
#include "zmlx/model.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZM_PATCH_MAX 16

typedef struct zm_patch_opts {
    const char *patterns; /* comma-separated; NULL = default selection (see above) */
    const char *exclude;  /* comma-separated; NULL = none */
    int no_env;           /* ignore ZMLX_PATTERNS, ZMLX_EXCLUDE, ZMLX_NO_FUSION */
} zm_patch_opts;

typedef struct zm_patch_result {
    char family[32];
    int n_applied;
    struct { char name[32]; int sites; } applied[ZM_PATCH_MAX]; /* sites in the decode graph */
    int n_skipped;
    struct { char name[32]; char reason[192]; } skipped[ZM_PATCH_MAX]; /* by the safety table */
    char note[256];       /* e.g. "family 'x' has no patterns: patch is a no-op" */
    uint32_t mask;        /* bit i = pattern i applied */
} zm_patch_result;

/* Patch every session created from now on (existing sessions keep their
 * graphs). res may be NULL. */
zm_status zm_patch(zm_model *m, const zm_patch_opts *opts, zm_patch_result *res);
/* Back to the stock graph for new sessions. */
void zm_unpatch(zm_model *m);
/* Comma-separated names of a mask ("none" if empty) into buf. */
void zm_patch_mask_names(uint32_t mask, char *buf, size_t len);

/* Smart patch: decode `sample` (n_sample prompt ids, then n_decode greedy
 * tokens) with the stock graph and with each candidate pattern alone (the
 * selection zm_patch would make), `reps` timed runs each after a warm-up;
 * keep the candidates whose tokens are identical to stock and whose median
 * decode time beats stock's by more than stock's run-to-run spread
 * (max - min). Then patches m with the kept set. res may be NULL. */
typedef struct zm_smart_result {
    double stock_ms, stock_spread_ms;
    int n;
    struct { char name[32]; double ms; int identical; int kept; } cand[ZM_PATCH_MAX];
} zm_smart_result;
zm_status zm_smart_patch(zm_model *m, const int32_t *sample, int n_sample, int n_decode, int reps,
                         const zm_patch_opts *opts, zm_patch_result *res, zm_smart_result *smart);

/* The registry, for `zmlx patterns`. */
int zm_pattern_count(void);
const char *zm_pattern_name(int i);
const char *zm_pattern_desc(int i);
int zm_pattern_find(const char *name); /* -1 if unknown */
/* Family of an architecture ("qwen3moe" -> "qwen3"), "unknown" if none. */
const char *zm_family_of_arch(const char *arch);
int zm_family_count(void);
const char *zm_family_name(int i);
const char *zm_family_archs(int i);       /* GGUF architectures of the family */
uint32_t zm_family_defaults(int i);       /* default pattern mask */
int zm_safety_count(void);
/* Entry i of the safety table: pattern, family, reason. */
void zm_safety_entry(int i, const char **pattern, const char **family, const char **reason);

#ifdef __cplusplus
}
#endif
#endif
