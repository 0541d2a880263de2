/* SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), as
 * llama.cpp's llm_tokenizer_spm: spaces become U+2581 "▁", the text is split
 * into UTF-8 characters, then the adjacent pair whose concatenation is a
 * token with the highest score is merged, leftmost first on ties, until no
 * pair is a token. A character that is no token falls back to its bytes
 * (<0xXX> tokens), or <unk>.
 * Checked by tests/test_tokenizer.c (hand-built scores). */
#include "tokenizer/tok.h"
#include <string.h>

typedef struct { uint32_t start, len; int32_t prev, next; } sym;
static void try_pair(const zm_tokenizer *t, const char *x, const sym *s, int32_t pos, zm__tok_cand *h, int64_t *nh) {
    if (pos < 0 || s[pos].next < 0) return;
    uint32_t len = s[pos].len + s[s[pos].next].len;
    int32_t id = zm_tokenizer_find(t, x + s[pos].start, len);
    if (id >= 0) zm__tok_heap_push(h, nh, (zm__tok_cand){-(double)t->score[id], pos, len}); /* best score first */
}

zm_status zm__spm_encode(const zm_tokenizer *t, const char *text, size_t n, zm__ids *out) {
    if (!n) return ZM_OK;
    if (n > UINT32_MAX / 4) return zm__err(ZM_ERR_RANGE, "tokenizer: %zu bytes of text is too long", n);
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += text[i] == ' ';
    size_t xn = n + 2 * spaces;
    char *x = malloc(xn);
    sym *s = malloc(sizeof *s * xn);
    zm__tok_cand *h = malloc(sizeof *h * (xn * 3 + 1));
    if (!x || !s || !h) { free(x); free(s); free(h); return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", n); }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') { memcpy(x + k, "\xe2\x96\x81", 3); k += 3; }
        else x[k++] = text[i];
    }
    int32_t ns = 0;
    for (size_t i = 0; i < xn;) {
        uint32_t cp;
        int l = zm__utf8_next(x + i, xn - i, &cp);
        s[ns] = (sym){(uint32_t)i, (uint32_t)l, ns - 1, -1};
        if (ns) s[ns - 1].next = ns;
        ns++;
        i += (size_t)l;
    }
    int64_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) try_pair(t, x, s, i, h, &nh);
    while (nh) {
        zm__tok_cand c = zm__tok_heap_pop(h, &nh);
        sym *a = &s[c.pos];
        if (!a->len || a->next < 0 || a->len + s[a->next].len != c.aux) continue; /* stale */
        sym *b = &s[a->next];
        a->len += b->len;
        a->next = b->next;
        if (b->next >= 0) s[b->next].prev = c.pos;
        b->len = 0;
        try_pair(t, x, s, a->prev, h, &nh);
        try_pair(t, x, s, c.pos, h, &nh);
    }
    zm_status st = ZM_OK;
    for (int32_t i = 0; ns && i >= 0 && st == ZM_OK; i = s[i].next) {
        int32_t id = zm_tokenizer_find(t, x + s[i].start, s[i].len);
        if (id >= 0) { st = zm__ids_push(out, id); continue; }
        for (uint32_t j = 0; j < s[i].len && st == ZM_OK; j++) { /* byte fallback */
            uint8_t byte = (uint8_t)x[s[i].start + j];
            int32_t b = t->byte_tok[byte] >= 0 ? t->byte_tok[byte] : t->unk;
            if (b < 0) st = zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: byte 0x%02x has no <0x..> token and there is no <unk>", byte);
            else st = zm__ids_push(out, b);
        }
    }
    free(x);
    free(s);
    free(h);
    return st;
}
