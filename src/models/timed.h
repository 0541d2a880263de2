/* Greedy decode with timing, shared by smart patch (src/patch) and validate
 * (src/bench). Private. */
#ifndef ZM_MODELS_TIMED_H
#define ZM_MODELS_TIMED_H
#include "zmlx/model.h"

/* Reset the session, prefill prompt[0..n_prompt), then greedy-decode so
 * that tokens[0..n_gen) receives n_gen generated ids (the first comes from
 * the prefill). prefill_s / decode_s (may be NULL) receive the wall time of
 * the prefill and of the n_gen - 1 decode steps. */
zm_status zm__generate_timed(zm_session *s, const int32_t *prompt, int64_t n_prompt, int64_t n_gen, int32_t *tokens,
                             double *prefill_s, double *decode_s);
#endif
