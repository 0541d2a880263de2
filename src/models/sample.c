/* Sampling: greedy, temperature, top-k, top-p, min-p over one row of logits,
 * drawn with xoshiro256** so a seed gives the same ids on every run.
 * The three filters keep prefixes of the same order (logit desc, id asc), so
 * the kept set is the shortest of the three prefixes; top-p's mass is
 * measured on the top-k survivors (llama.cpp's chain: top-k, top-p, min-p,
 * then temperature). Only what is needed gets sorted: top-k selects first,
 * min-p partitions first, top-p sorts the best 1024 and falls back to a full
 * sort only when they do not reach the mass.
 * Checked by tests/test_sample.c (exact kept sets, reproducibility, the
 * empirical distribution against the exact one). */
#include "zmlx/sample.h"
#include "core/internal.h"
#include <float.h>
#include <math.h>
#include <string.h>

// ---- generator -------------------------------------------------------------
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void zm_rng_seed(zm_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t zm_rng_u64(zm_rng *r) {
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double zm_rng_uniform(zm_rng *r) { return (double)(zm_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

// ---- sampler ---------------------------------------------------------------
typedef struct { float l; int32_t id; } cand;

struct zm_sampler {
    zm_sampler_params p;
    zm_rng rng;
    cand *buf;
    int64_t cap;
};

zm_sampler_params zm_sampler_default_params(void) {
    return (zm_sampler_params){.temp = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 0};
}

zm_status zm_sampler_new(zm_sampler **out, const zm_sampler_params *p) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_sampler_new: out is NULL");
    *out = NULL;
    if (!p) return zm__err(ZM_ERR_INVALID, "zm_sampler_new: params is NULL");
    if (p->temp != p->temp || p->top_p != p->top_p || p->min_p != p->min_p)
        return zm__err(ZM_ERR_INVALID, "zm_sampler_new: NaN parameter (temp %g, top_p %g, min_p %g)",
                       (double)p->temp, (double)p->top_p, (double)p->min_p);
    zm_sampler *s = calloc(1, sizeof *s);
    if (!s) return zm__err(ZM_ERR_NOMEM, "zm_sampler_new: out of memory");
    s->p = *p;
    zm_rng_seed(&s->rng, p->seed);
    *out = s;
    return ZM_OK;
}

void zm_sampler_free(zm_sampler *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

int32_t zm_argmax(const float *x, int64_t n) {
    int32_t best = -1;
    float bv = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > bv || (best < 0 && x[i] == INFINITY)) { bv = x[i]; best = (int32_t)i; }
    return best;
}

static int better(cand a, cand b) { return a.l > b.l || (a.l == b.l && a.id < b.id); }
static int cmp_cand(const void *x, const void *y) {
    cand a = *(const cand *)x, b = *(const cand *)y;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Reorder c[0..n) so its k best come first (in any order). Elements are
 * distinct under better() (ids differ), so the partition always shrinks. */
static void select_top(cand *c, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        /* median of three as the pivot, moved to hi */
        if (better(c[mid], c[lo])) { cand t = c[mid]; c[mid] = c[lo]; c[lo] = t; }
        if (better(c[hi], c[lo])) { cand t = c[hi]; c[hi] = c[lo]; c[lo] = t; }
        if (better(c[mid], c[hi])) { cand t = c[mid]; c[mid] = c[hi]; c[hi] = t; }
        cand piv = c[hi];
        int64_t st = lo;
        for (int64_t i = lo; i < hi; i++)
            if (better(c[i], piv)) { cand t = c[i]; c[i] = c[st]; c[st] = t; st++; }
        cand t = c[st]; c[st] = c[hi]; c[hi] = t;
        if (st == k - 1 || st == k) return;
        if (st < k) lo = st + 1;
        else hi = st - 1;
    }
}

/* Fill s->buf with the kept candidates; *sorted says whether they are in
 * best-first order. Returns ZM_OK or ZM_ERR_INVALID (no finite logit). */
static zm_status filter(zm_sampler *s, const float *logits, int64_t n, int64_t *kept, int *sorted, double *maxl) {
    if (n <= 0 || !logits) return zm__err(ZM_ERR_INVALID, "sampler: %lld logits", (long long)n);
    if (n > INT32_MAX) return zm__err(ZM_ERR_RANGE, "sampler: %lld logits is too many", (long long)n);
    if (n > s->cap) {
        cand *b = realloc(s->buf, sizeof *b * (size_t)n);
        if (!b) return zm__err(ZM_ERR_NOMEM, "sampler: out of memory for %lld candidates", (long long)n);
        s->buf = b;
        s->cap = n;
    }
    cand *c = s->buf;
    int64_t m = 0;
    float M = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float l = logits[i];
        if (!(l > -INFINITY)) continue; /* NaN, -inf: never drawn */
        if (l > FLT_MAX) l = FLT_MAX;
        c[m++] = (cand){l, (int32_t)i};
        if (l > M) M = l;
    }
    if (!m) return zm__err(ZM_ERR_INVALID, "sampler: no finite logit among %lld", (long long)n);
    *maxl = M;
    *sorted = 0;
    const zm_sampler_params *p = &s->p;
    if (p->top_k > 0 && p->top_k < m) {
        select_top(c, m, p->top_k);
        m = p->top_k;
        qsort(c, (size_t)m, sizeof *c, cmp_cand);
        *sorted = 1;
    }
    double Z = 0; /* top-p's mass is over the top-k survivors */
    if (p->top_p < 1.0f)
        for (int64_t i = 0; i < m; i++) Z += exp((double)c[i].l - M);
    if (p->min_p > 0.0f) { /* p_i >= min_p * p_max  <=>  exp(l_i - M) >= min_p */
        int64_t k = 0;
        for (int64_t i = 0; i < m; i++)
            if (exp((double)c[i].l - M) >= (double)p->min_p) c[k++] = c[i];
        m = k; /* partitioning in order keeps a sorted prefix sorted */
    }
    if (p->top_p < 1.0f) {
        double need = (double)p->top_p * Z, cum = 0;
        if (!*sorted && m > 1024) {
            select_top(c, m, 1024);
            qsort(c, 1024, sizeof *c, cmp_cand);
            for (int64_t i = 0; i < 1024; i++) {
                cum += exp((double)c[i].l - M);
                if (cum >= need) { *kept = i + 1; *sorted = 1; return ZM_OK; }
            }
            cum = 0; /* not enough mass in the best 1024: sort everything */
        }
        if (!*sorted) qsort(c, (size_t)m, sizeof *c, cmp_cand);
        *sorted = 1;
        for (int64_t i = 0; i < m; i++) {
            cum += exp((double)c[i].l - M);
            if (cum >= need) { m = i + 1; break; }
        }
    }
    *kept = m;
    return ZM_OK;
}

zm_status zm_sampler_sample(zm_sampler *s, const float *logits, int64_t n, int32_t *out) {
    if (!s || !out) return zm__err(ZM_ERR_INVALID, "zm_sampler_sample: NULL argument");
    *out = -1;
    if (s->p.temp <= 0.0f || s->p.top_k == 1) {
        int32_t id = logits && n > 0 ? zm_argmax(logits, n) : -1;
        if (id < 0) return zm__err(ZM_ERR_INVALID, "sampler: no finite logit among %lld", (long long)n);
        *out = id;
        return ZM_OK;
    }
    int64_t m;
    int sorted;
    double M;
    ZM_TRY(filter(s, logits, n, &m, &sorted, &M));
    const cand *c = s->buf;
    double inv_t = 1.0 / (double)s->p.temp, W = 0;
    for (int64_t i = 0; i < m; i++) W += exp(((double)c[i].l - M) * inv_t);
    double u = zm_rng_uniform(&s->rng) * W, cum = 0;
    int64_t pick = m - 1; /* rounding can leave u just above the last sum */
    for (int64_t i = 0; i < m; i++) {
        cum += exp(((double)c[i].l - M) * inv_t);
        if (u < cum) { pick = i; break; }
    }
    *out = c[pick].id;
    return ZM_OK;
}

zm_status zm_sampler_candidates(zm_sampler *s, const float *logits, int64_t n, int32_t *ids, float *probs,
                                int64_t *kept) {
    if (!s || !ids || !probs || !kept) return zm__err(ZM_ERR_INVALID, "zm_sampler_candidates: NULL argument");
    *kept = 0;
    int64_t m;
    int sorted;
    double M;
    ZM_TRY(filter(s, logits, n, &m, &sorted, &M));
    cand *c = s->buf;
    if (!sorted) qsort(c, (size_t)m, sizeof *c, cmp_cand);
    if (s->p.temp <= 0.0f) m = 1; /* greedy keeps the best alone */
    double inv_t = s->p.temp > 0.0f ? 1.0 / (double)s->p.temp : 1.0, W = 0;
    for (int64_t i = 0; i < m; i++) W += exp(((double)c[i].l - M) * inv_t);
    for (int64_t i = 0; i < m; i++) {
        ids[i] = c[i].id;
        probs[i] = (float)(exp(((double)c[i].l - M) * inv_t) / W);
    }
    *kept = m;
    return ZM_OK;
}
