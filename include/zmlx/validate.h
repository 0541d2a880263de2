/* validate: the proof behind every patch. Decodes greedily with the stock
 * graph and with the patched graph (after a warm-up each), compares the
 * token ids exactly and times prefill and decode over several runs; fills a
 * repro capsule (zmlx/capsule.h). `zmlx validate` prints it as a table.
 * Tested by tests/test_patch.c. */
#ifndef ZMLX_VALIDATE_H
#define ZMLX_VALIDATE_H

#include "zmlx/capsule.h"
#include "zmlx/patch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zm_validate_opts {
    const char *model;       /* GGUF path; NULL = synthesize the tiny preset (q8_0, seed 1)
                                into the cache folder ($ZMLX_CACHE or ~/.cache/zmlx) */
    const char *patterns;    /* as zm_patch_opts.patterns (NULL = family defaults) */
    const char *exclude;
    int max_tokens;          /* tokens generated per run (0 = 200) */
    int runs;                /* timed runs per variant, after one warm-up (0 = 3) */
    int threads;             /* CPU threads (0 = default pool) */
    const int32_t *prompt;   /* NULL = a fixed 16-id prompt */
    int n_prompt;
    zm_device device;
    const char *command;     /* recorded in the capsule */
} zm_validate_opts;

/* Runs the comparison; cap and patch (either may be NULL) receive the
 * capsule and the patch report. ZM_OK even when fidelity FAILs: read
 * cap->fidelity_pass. */
zm_status zm_validate(const zm_validate_opts *o, zm_capsule *cap, zm_patch_result *patch);
/* The path validate uses when o->model is NULL (synthesized on demand). */
zm_status zm_validate_default_model(char *path, size_t len);

#ifdef __cplusplus
}
#endif
#endif
