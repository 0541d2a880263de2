/* Smart patch: keep only the candidate patterns that stay token-identical
 * to the stock graph and make decode measurably faster (median decode time
 * better than stock's by more than stock's run-to-run spread).
 * Checked by tests/test_patch.c (a pattern slowed on purpose is dropped). */
#include "core/internal.h"
#include "models/model_priv.h"
#include "models/timed.h"
#include "patch/patch_priv.h"
#include "zmlx/patch.h"
#include <stdlib.h>
#include <string.h>

zm_status zm__patch_select(const char *arch, const zm_patch_opts *opts, zm_patch_result *r);

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Decode the sample reps times after one warm-up with the model's current
 * patch; median and spread of the decode time (ms), tokens of the warm-up. */
static zm_status measure(zm_model *m, const int32_t *sample, int n_sample, int n_decode, int reps, int32_t *tokens,
                         double *median_ms, double *spread_ms) {
    zm_session *s;
    ZM_TRY(zm_session_new(&s, m));
    double t[64];
    if (reps > 64) reps = 64;
    zm_status st = zm__generate_timed(s, sample, n_sample, n_decode, tokens, NULL, NULL);
    for (int r = 0; r < reps && st == ZM_OK; r++) {
        double dec;
        int32_t *tmp = malloc(sizeof(int32_t) * (size_t)n_decode);
        if (!tmp) { st = zm__err(ZM_ERR_NOMEM, "smart patch: out of memory"); break; }
        st = zm__generate_timed(s, sample, n_sample, n_decode, tmp, NULL, &dec);
        if (st == ZM_OK && memcmp(tmp, tokens, sizeof(int32_t) * (size_t)n_decode))
            st = zm__err(ZM_ERR_INVALID, "smart patch: decode is not deterministic between runs");
        free(tmp);
        t[r] = dec * 1e3;
    }
    zm_session_free(s);
    ZM_TRY(st);
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    *median_ms = t[reps / 2];
    *spread_ms = t[reps - 1] - t[0];
    return ZM_OK;
}

zm_status zm_smart_patch(zm_model *m, const int32_t *sample, int n_sample, int n_decode, int reps,
                         const zm_patch_opts *opts, zm_patch_result *res, zm_smart_result *smart) {
    if (!m || !sample || n_sample < 1 || n_decode < 2 || reps < 1)
        return zm__err(ZM_ERR_INVALID, "zm_smart_patch: bad arguments");
    zm_patch_result sel;
    ZM_TRY(zm__patch_select(zm_model_arch(m), opts, &sel));
    zm_smart_result sr;
    memset(&sr, 0, sizeof sr);
    int32_t *ref = malloc(sizeof(int32_t) * (size_t)n_decode), *got = malloc(sizeof(int32_t) * (size_t)n_decode);
    zm_status st = ref && got ? ZM_OK : zm__err(ZM_ERR_NOMEM, "smart patch: out of memory");
    if (st == ZM_OK) {
        zm_unpatch(m);
        st = measure(m, sample, n_sample, n_decode, reps, ref, &sr.stock_ms, &sr.stock_spread_ms);
    }
    uint32_t keep = 0;
    for (int i = 0; i < zm_pattern_count() && st == ZM_OK; i++) {
        if (!(sel.mask & (1u << i))) continue;
        zm_patch_opts one = {zm_pattern_name(i), NULL, 1};
        if ((st = zm_patch(m, &one, NULL)) != ZM_OK) break;
        double ms, spread;
        if ((st = measure(m, sample, n_sample, n_decode, reps, got, &ms, &spread)) != ZM_OK) break;
        int same = !memcmp(ref, got, sizeof(int32_t) * (size_t)n_decode);
        int kept = same && ms < sr.stock_ms - sr.stock_spread_ms;
        if (kept) keep |= 1u << i;
        if (sr.n < ZM_PATCH_MAX) {
            snprintf(sr.cand[sr.n].name, sizeof sr.cand[0].name, "%s", zm_pattern_name(i));
            sr.cand[sr.n].ms = ms;
            sr.cand[sr.n].identical = same;
            sr.cand[sr.n].kept = kept;
            sr.n++;
        }
    }
    free(ref);
    free(got);
    if (st != ZM_OK) {
        zm_unpatch(m);
        return st;
    }
    char names[512];
    zm_patch_mask_names(keep, names, sizeof names);
    zm_patch_opts final = {names, NULL, 1};
    ZM_TRY(zm_patch(m, &final, res));
    if (res) res->n_skipped = sel.n_skipped, memcpy(res->skipped, sel.skipped, sizeof sel.skipped);
    if (smart) *smart = sr;
    return ZM_OK;
}
