/* Sampling: exact kept sets of top-k / top-p / min-p on hand-made logits
 * (probabilities 1/2, 1/4, 1/8, 1/16, 1/16, so every boundary is derived by
 * hand), the same sets against a naive full-sort reference on random
 * 50k-entry rows, greedy tie rules, seeded reproducibility, and the drawn
 * frequencies against the exact distribution.
 * Run: make && build/tests/test_sample */
#include "harness.h"
#include "zmlx/sample.h"
#include <stdlib.h>
#include <string.h>

static const double P5[5] = {0.5, 0.25, 0.125, 0.0625, 0.0625};

/* logits ln(p) placed at scattered ids so order != id order */
static void make5(float *l, int32_t *where) {
    static const int32_t ids[5] = {3, 0, 4, 1, 2};
    for (int i = 0; i < 5; i++) { l[ids[i]] = (float)log(P5[i]) + 7.0f; where[i] = ids[i]; }
}

static int64_t kept_set(zm_sampler_params p, const float *l, int64_t n, int32_t *ids, float *pr) {
    zm_sampler *s = NULL;
    int64_t k = -1;
    ZT_OK(zm_sampler_new(&s, &p));
    if (!s) return -1;
    ZT_OK(zm_sampler_candidates(s, l, n, ids, pr, &k));
    zm_sampler_free(s);
    return k;
}

static void expect_prefix(const char *what, zm_sampler_params p, int64_t want) {
    float l[5], pr[5];
    int32_t where[5], ids[5];
    make5(l, where);
    int64_t k = kept_set(p, l, 5, ids, pr);
    ZT_CHECK(k == want, "%s: kept %lld tokens, want %lld", what, (long long)k, (long long)want);
    for (int64_t i = 0; i < k && i < want; i++) ZT_CHECK(ids[i] == where[i], "%s: rank %lld is id %d, want %d", what, (long long)i, ids[i], where[i]);
    double sum = 0;
    for (int64_t i = 0; i < k; i++) sum += pr[i];
    ZT_CHECK(k <= 0 || fabs(sum - 1) < 1e-5, "%s: probabilities sum to %g", what, sum);
}

static zm_sampler_params P(float temp, int k, float top_p, float min_p) {
    zm_sampler_params p = zm_sampler_default_params();
    p.temp = temp; p.top_k = k; p.top_p = top_p; p.min_p = min_p; p.seed = 7;
    return p;
}

static void test_filters_by_hand(void) {
    expect_prefix("no filter", P(1, 0, 1, 0), 5);
    expect_prefix("top-k 3", P(1, 3, 1, 0), 3);
    expect_prefix("top-k 9 > n", P(1, 9, 1, 0), 5);
    expect_prefix("top-p 0.3", P(1, 0, 0.3f, 0), 1);   /* 0.5 >= 0.3 */
    expect_prefix("top-p 0.7", P(1, 0, 0.7f, 0), 2);   /* 0.75 */
    expect_prefix("top-p 0.8", P(1, 0, 0.8f, 0), 3);   /* 0.875 */
    expect_prefix("top-p 0.9", P(1, 0, 0.9f, 0), 4);   /* 0.9375 */
    expect_prefix("top-p 0", P(1, 0, 0.0f, 0), 1);
    expect_prefix("min-p 0.2", P(1, 0, 1, 0.2f), 3);   /* p >= 0.1 */
    expect_prefix("min-p 0.3", P(1, 0, 1, 0.3f), 2);   /* p >= 0.15 */
    expect_prefix("min-p 0.1", P(1, 0, 1, 0.1f), 5);   /* p >= 0.05 */
    expect_prefix("min-p 1", P(1, 0, 1, 1.0f), 1);
    /* top-p measures mass on the top-k survivors: within the best 4 the
     * shares are 8/15, 4/15, 2/15, 1/15, so 0.9 is reached at 3 (14/15) */
    expect_prefix("top-k 4 then top-p 0.9", P(1, 4, 0.9f, 0), 3);
    expect_prefix("top-p 0.9 then min-p 0.3", P(1, 0, 0.9f, 0.3f), 2);
    expect_prefix("top-k 2 then min-p 0.1", P(1, 2, 1, 0.1f), 2);
    expect_prefix("greedy candidates", P(0, 0, 1, 0), 1);

    /* temperature reshapes the survivors: at T = 2 the kept three weigh
     * sqrt(4):sqrt(2):sqrt(1) */
    float l[5], pr[5];
    int32_t where[5], ids[5];
    make5(l, where);
    int64_t k = kept_set(P(2, 3, 1, 0), l, 5, ids, pr);
    double w[3] = {2, sqrt(2.0), 1}, z = w[0] + w[1] + w[2];
    ZT_CHECK(k == 3, "T=2 top-k 3 kept %lld", (long long)k);
    for (int i = 0; i < 3 && k == 3; i++) ZT_CHECK(fabs(pr[i] - w[i] / z) < 1e-6, "T=2 p[%d] %g want %g", i, pr[i], w[i] / z);
}

static void test_ties_and_bad_logits(void) {
    float l[6] = {1, 5, NAN, 5, -INFINITY, 2};
    ZT_CHECK(zm_argmax(l, 6) == 1, "argmax tie goes to lower id, got %d", zm_argmax(l, 6));
    int32_t ids[6];
    float pr[6];
    int64_t k = kept_set(P(1, 2, 1, 0), l, 6, ids, pr);
    ZT_CHECK(k == 2 && ids[0] == 1 && ids[1] == 3, "top-k 2 over a tie: %lld [%d %d]", (long long)k, ids[0], ids[1]);
    k = kept_set(P(1, 0, 1, 0), l, 6, ids, pr);
    ZT_CHECK(k == 4, "NaN and -inf are never candidates: kept %lld", (long long)k);
    zm_sampler *s = NULL;
    zm_sampler_params p = P(0.8f, 0, 1, 0);
    ZT_OK(zm_sampler_new(&s, &p));
    float bad[3] = {NAN, -INFINITY, NAN};
    int32_t id = 5;
    ZT_CHECK(zm_sampler_sample(s, bad, 3, &id) == ZM_ERR_INVALID && id == -1, "no finite logit must fail");
    ZT_CHECK(zm_sampler_sample(s, l, 0, &id) == ZM_ERR_INVALID, "zero logits must fail");
    zm_sampler_free(s);
    p.temp = NAN;
    ZT_CHECK(zm_sampler_new(&s, &p) == ZM_ERR_INVALID && !s, "NaN temperature must be refused");
    zm_sampler_free(NULL);
}

/* Naive reference: full sort, then the three rules literally. */
typedef struct { float l; int32_t id; } rc;
static int rc_cmp(const void *a, const void *b) {
    const rc *x = a, *y = b;
    if (x->l != y->l) return x->l > y->l ? -1 : 1;
    return x->id - y->id;
}

static int64_t ref_kept(const float *l, int64_t n, zm_sampler_params p, int32_t *ids) {
    rc *c = malloc(sizeof *c * (size_t)n);
    for (int64_t i = 0; i < n; i++) c[i] = (rc){l[i], (int32_t)i};
    qsort(c, (size_t)n, sizeof *c, rc_cmp);
    int64_t m = n;
    if (p.top_k > 0 && p.top_k < m) m = p.top_k;
    double z = 0, mx = c[0].l;
    for (int64_t i = 0; i < m; i++) z += exp(c[i].l - mx);
    if (p.top_p < 1) {
        double cum = 0;
        for (int64_t i = 0; i < m; i++) {
            cum += exp(c[i].l - mx) / z;
            if (cum >= p.top_p) { m = i + 1; break; }
        }
    }
    if (p.min_p > 0) {
        int64_t j = 0;
        while (j < m && exp(c[j].l - mx) >= p.min_p) j++;
        m = j;
    }
    for (int64_t i = 0; i < m; i++) ids[i] = c[i].id;
    free(c);
    return m;
}

static void test_filters_vs_reference(void) {
    const int64_t n = 50000;
    float *l = malloc(sizeof *l * n), *pr = malloc(sizeof *pr * n);
    int32_t *ids = malloc(sizeof *ids * n), *ref = malloc(sizeof *ref * n);
    for (int trial = 0; trial < 24 && !zt_failed_now(); trial++) {
        double scale = trial % 3 == 0 ? 0.3 : trial % 3 == 1 ? 2.0 : 6.0; /* flat .. peaked */
        zt_fill_normal(l, n, scale);
        if (trial % 4 == 3) for (int64_t i = 0; i < n; i += 7) l[i] = l[i / 2]; /* many exact ties */
        zm_sampler_params p = P(1, 0, 1, 0);
        int mode = trial % 6;
        if (mode == 0) p.top_k = 1 + (int)(zt_rand_u64() % 3000);
        if (mode == 1) p.top_p = (float)zt_uniform(0.05, 0.99);
        if (mode == 2) p.min_p = (float)zt_uniform(0.001, 0.5);
        if (mode == 3) { p.top_k = 500; p.top_p = (float)zt_uniform(0.3, 0.99); }
        if (mode == 4) { p.top_p = (float)zt_uniform(0.3, 0.99); p.min_p = (float)zt_uniform(0.0001, 0.05); }
        if (mode == 5) { p.top_k = 4000; p.top_p = 0.95f; p.min_p = 0.01f; }
        int64_t k = kept_set(p, l, n, ids, pr), kr = ref_kept(l, n, p, ref);
        ZT_CHECK(k == kr, "trial %d (k=%d p=%g min_p=%g scale %g): kept %lld, reference %lld", trial, p.top_k,
                 (double)p.top_p, (double)p.min_p, scale, (long long)k, (long long)kr);
        for (int64_t i = 0; i < k && i < kr; i++)
            if (ids[i] != ref[i]) { ZT_CHECK(0, "trial %d: rank %lld id %d, reference %d", trial, (long long)i, ids[i], ref[i]); break; }
    }
    free(l); free(pr); free(ids); free(ref);
}

static void draw(zm_sampler_params p, const float *l, int64_t n, int32_t *out, int count) {
    zm_sampler *s = NULL;
    ZT_OK(zm_sampler_new(&s, &p));
    for (int i = 0; i < count && s; i++) ZT_OK(zm_sampler_sample(s, l, n, &out[i]));
    zm_sampler_free(s);
}

static void test_reproducible(void) {
    enum { N = 2000, C = 500 };
    float l[N];
    zt_fill_normal(l, N, 1.5);
    int32_t a[C], b[C], c[C];
    zm_sampler_params p = P(0.9f, 40, 0.95f, 0.02f);
    p.seed = 1234;
    draw(p, l, N, a, C);
    draw(p, l, N, b, C);
    ZT_CHECK(!memcmp(a, b, sizeof a), "same seed, different ids");
    p.seed = 1235;
    draw(p, l, N, c, C);
    int same = 0;
    for (int i = 0; i < C; i++) same += a[i] == c[i];
    ZT_CHECK(same < C / 2, "another seed gave %d of %d identical ids", same, C);
    /* generator: fixed stream for a fixed seed, values in [0, 1) */
    zm_rng r1, r2;
    zm_rng_seed(&r1, 42);
    zm_rng_seed(&r2, 42);
    for (int i = 0; i < 1000; i++) {
        double u = zm_rng_uniform(&r1);
        ZT_CHECK(u >= 0 && u < 1 && u == zm_rng_uniform(&r2), "rng draw %d: %g", i, u);
        if (zt_failed_now()) break;
    }
    /* greedy ignores the seed */
    float g[4] = {0.1f, 0.3f, 0.2f, 0.3f};
    int32_t gi[8];
    draw(P(0, 0, 1, 0), g, 4, gi, 8);
    for (int i = 0; i < 8; i++) ZT_CHECK(gi[i] == 1, "greedy draw %d gave %d", i, gi[i]);
}

static void test_frequencies(void) {
    /* T = 0.5 squares the weights: 1/2,1/4,1/8 -> 16:4:1 after top-k 3 */
    float l[5];
    int32_t where[5];
    make5(l, where);
    enum { C = 200000 };
    int32_t *out = malloc(sizeof *out * C);
    draw(P(0.5f, 3, 1, 0), l, 5, out, C);
    int cnt[5] = {0};
    for (int i = 0; i < C; i++) cnt[out[i]]++;
    double w[3] = {16.0 / 21, 4.0 / 21, 1.0 / 21};
    for (int i = 0; i < 3; i++) {
        double f = (double)cnt[where[i]] / C, sd = sqrt(w[i] * (1 - w[i]) / C);
        ZT_CHECK(fabs(f - w[i]) < 5 * sd, "id %d drawn %.5f, want %.5f (5 sd = %.5f)", where[i], f, w[i], 5 * sd);
    }
    ZT_CHECK(cnt[where[3]] == 0 && cnt[where[4]] == 0, "top-k 3 drew a filtered id (%d, %d)", cnt[where[3]], cnt[where[4]]);
    free(out);
}

int main(void) {
    ZT_RUN(test_filters_by_hand);
    ZT_RUN(test_ties_and_bad_logits);
    ZT_RUN(test_filters_vs_reference);
    ZT_RUN(test_reproducible);
    ZT_RUN(test_frequencies);
    return zt_finish();
}
