/* Token sampling from a row of logits: greedy, temperature, top-k, top-p,
 * min-p, with a seeded generator so a run is reproducible bit for bit.
 * Order (llama.cpp's default chain): top-k, then top-p, then min-p, each on
 * the softmax of the raw logits (temperature 1); then temperature scales the
 * survivors and one is drawn. temp <= 0 (or top_k == 1) is greedy: the
 * highest logit, the lowest id on ties. Ties inside the filters are broken
 * by lower id too, so the kept set is always well defined.
 * Ownership: a zm_sampler owns its scratch; free with zm_sampler_free.
 * Checked by tests/test_sample.c. */
#ifndef ZMLX_SAMPLE_H
#define ZMLX_SAMPLE_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* xoshiro256** seeded through splitmix64: fast, and the same stream on
 * every platform for the same seed. */
typedef struct zm_rng { uint64_t s[4]; } zm_rng;
void zm_rng_seed(zm_rng *r, uint64_t seed);
uint64_t zm_rng_u64(zm_rng *r);
double zm_rng_uniform(zm_rng *r); /* [0, 1), 53 random bits */

typedef struct zm_sampler_params {
    float temp;    /* <= 0: greedy */
    int32_t top_k; /* <= 0: off */
    float top_p;   /* >= 1: off; keeps the fewest best tokens whose mass reaches top_p */
    float min_p;   /* <= 0: off; keeps p >= min_p * p_max */
    uint64_t seed;
} zm_sampler_params;
/* Greedy: temp 0, top_k 0, top_p 1, min_p 0, seed 0. */
zm_sampler_params zm_sampler_default_params(void);

typedef struct zm_sampler zm_sampler;
zm_status zm_sampler_new(zm_sampler **out, const zm_sampler_params *p);
void zm_sampler_free(zm_sampler *s);
/* Draw one id from logits[0..n). NaN logits count as -inf; no finite logit
 * is ZM_ERR_INVALID. */
zm_status zm_sampler_sample(zm_sampler *s, const float *logits, int64_t n, int32_t *out);
/* The tokens that survive the filters, best first (ids[i], and probs[i]
 * after temperature, summing to 1); both arrays hold n entries; *kept is
 * how many. For tests and for users inspecting a distribution. */
zm_status zm_sampler_candidates(zm_sampler *s, const float *logits, int64_t n, int32_t *ids,
                                float *probs, int64_t *kept);
/* Highest logit, lowest id on ties; -1 if n <= 0 or none is finite. */
int32_t zm_argmax(const float *logits, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
