/* The merge-candidate heap shared by the BPE and SentencePiece loops: a
 * binary min-heap ordered by key, then position (the leftmost pair first on
 * ties). BPE keys are merge ranks, SentencePiece keys are negated piece
 * scores (both exact in a double). Checked through tests/test_tokenizer.c
 * and the cross-checks against npm gpt-tokenizer and llama.cpp. */
#include "tokenizer/tok.h"

static int cand_less(zm__tok_cand a, zm__tok_cand b) { return a.key < b.key || (a.key == b.key && a.pos < b.pos); }

void zm__tok_heap_push(zm__tok_cand *h, int64_t *n, zm__tok_cand c) {
    int64_t i = (*n)++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!cand_less(c, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

zm__tok_cand zm__tok_heap_pop(zm__tok_cand *h, int64_t *n) {
    zm__tok_cand top = h[0], last = h[--*n];
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, m = i;
        zm__tok_cand best = last;
        if (l < *n && cand_less(h[l], best)) { m = l; best = h[l]; }
        if (l + 1 < *n && cand_less(h[l + 1], best)) m = l + 1;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}
