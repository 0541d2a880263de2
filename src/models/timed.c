/* Greedy decode with wall-clock timing (see timed.h), through
 * zm_session_decode_greedy: on CUDA the steps run back to back on the
 * device and the ids come back at the end, so the host clock brackets
 * finished work. */
#include "models/timed.h"
#include "core/internal.h"

zm_status zm__generate_timed(zm_session *s, const int32_t *prompt, int64_t n_prompt, int64_t n_gen, int32_t *tokens,
                             double *prefill_s, double *decode_s) {
    if (!s || !prompt || n_prompt < 1 || n_gen < 1 || !tokens)
        return zm__err(ZM_ERR_INVALID, "generate: bad arguments (%lld prompt ids, %lld tokens)", (long long)n_prompt,
                       (long long)n_gen);
    ZM_TRY(zm_session_reset(s));
    double t0 = zm__now();
    int32_t next;
    ZM_TRY(zm_session_prefill(s, prompt, n_prompt, NULL, &next));
    double t1 = zm__now();
    tokens[0] = next;
    if (n_gen > 1) ZM_TRY(zm_session_decode_greedy(s, next, n_gen - 1, tokens + 1));
    double t2 = zm__now();
    if (prefill_s) *prefill_s = t1 - t0;
    if (decode_s) *decode_s = t2 - t1;
    return ZM_OK;
}
