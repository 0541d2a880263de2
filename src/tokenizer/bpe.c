/* Byte-level BPE: the pre-tokenizer regexes (PCRE2, UTF + UCP, so \p{L},
 * \p{N}, \p{Lu}... are Unicode's own tables) and the merge loop.
 * The regexes are llama.cpp's / tiktoken's / gpt-tokenizer's, with \s spelled
 * as Unicode White_Space (PCRE2's \s lacks U+0085, which Rust's regex,
 * tiktoken and llama.cpp count as space). Invalid UTF-8 never matches a
 * regex (PCRE2_MATCH_INVALID_UTF): such bytes become pre-tokens of their own
 * and are encoded byte by byte.
 * Merging: lowest merge rank first, leftmost on ties (a heap over adjacent
 * pairs, so a hostile 1 MB word costs n log n, not n^2).
 * Checked by tests/test_tokenizer.c and tests/test_tok_o200k.c. */
#include "tokenizer/tok.h"
#include <string.h>

// ---- pre-tokenizer patterns -------------------------------------------------
#define WS "\\s\\x{85}" /* White_Space = PCRE2 \s (Z + \t\n\v\f\r) + NEL */
#define CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define CONTRACT2 "'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])"
#define TAIL_WS "|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"

static const char *pat_gpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";
static const char *pat_llama3 =
    CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*" TAIL_WS;
static const char *pat_qwen2 =
    CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*" TAIL_WS;
static const char *pat_qwen35 =
    CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^" WS "\\p{L}\\p{M}\\p{N}]+[\\r\\n]*" TAIL_WS;
static const char *pat_o200k =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:" CONTRACT2 ")?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:" CONTRACT2 ")?"
    "|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*" TAIL_WS;

zm_status zm__pretok_compile(zm_pretok p, pcre2_code **out) {
    *out = NULL;
    const char *pat = p == ZM_PRETOK_GPT2 ? pat_gpt2 : p == ZM_PRETOK_LLAMA3 || p == ZM_PRETOK_GLM4 ? pat_llama3
                    : p == ZM_PRETOK_QWEN2 ? pat_qwen2 : p == ZM_PRETOK_O200K ? pat_o200k
                    : p == ZM_PRETOK_QWEN35 ? pat_qwen35 : NULL;
    if (!pat) return ZM_OK;
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: PCRE2 rejects the %s pattern at %zu: %s",
                       zm_pretok_name(p), (size_t)eoff, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: interpreted if JIT is absent */
    *out = re;
    return ZM_OK;
}

// ---- merges ----------------------------------------------------------------
typedef struct { int32_t id, prev, next; } sym;
static void try_pair(const zm_tokenizer *t, const sym *s, int32_t pos, zm__tok_cand *h, int64_t *nh) {
    if (pos < 0 || s[pos].next < 0) return;
    int32_t res;
    uint32_t r = zm__tok_merge_find(t, s[pos].id, s[s[pos].next].id, &res);
    if (r != UINT32_MAX) zm__tok_heap_push(h, nh, (zm__tok_cand){(double)r, pos, r});
}

/* One pre-token: bytes -> byte tokens -> merges. */
static zm_status bpe_word(const zm_tokenizer *t, const uint8_t *w, size_t n, zm__ids *out) {
    if (t->ignore_merges) {
        char small[512] = {0}, *m = n * 2 <= sizeof small ? small : calloc(n, 2);
        if (!m) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte word", n);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)zm__utf8_put(m + k, zm__b2u(w[i]));
        int32_t id = zm_tokenizer_find(t, m, k);
        if (m != small) free(m);
        if (id >= 0) return zm__ids_push(out, id);
    }
    if (n == 1) {
        int32_t id = t->byte_tok[w[0]] >= 0 ? t->byte_tok[w[0]] : t->unk;
        if (id < 0) return zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: byte 0x%02x has no token and there is no <unk>", w[0]);
        return zm__ids_push(out, id);
    }
    sym *s = malloc(sizeof *s * n);
    zm__tok_cand *h = malloc(sizeof *h * (n * 3 + 1)); /* n - 1 initial pairs + 2 per merge */
    if (!s || !h) { free(s); free(h); return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte word", n); }
    for (size_t i = 0; i < n; i++) {
        s[i].id = t->byte_tok[w[i]] >= 0 ? t->byte_tok[w[i]] : t->unk;
        if (s[i].id < 0) {
            free(s); free(h);
            return zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: byte 0x%02x has no token and there is no <unk>", w[i]);
        }
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    int64_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(t, s, (int32_t)i, h, &nh);
    while (nh) {
        zm__tok_cand c = zm__tok_heap_pop(h, &nh);
        sym *a = &s[c.pos];
        if (a->id < 0 || a->next < 0) continue; /* merged away since */
        int32_t res;
        /* ranks are unique per pair, so an equal rank means the same pair */
        if (zm__tok_merge_find(t, a->id, s[a->next].id, &res) != c.aux) continue;
        sym *b = &s[a->next];
        a->id = res;
        a->next = b->next;
        if (b->next >= 0) s[b->next].prev = c.pos;
        b->id = -1;
        try_pair(t, s, a->prev, h, &nh);
        try_pair(t, s, c.pos, h, &nh);
    }
    zm_status st = ZM_OK;
    for (int32_t i = 0; i >= 0 && st == ZM_OK; i = s[i].next) st = zm__ids_push(out, s[i].id);
    free(s);
    free(h);
    return st;
}

zm_status zm__bpe_encode(const zm_tokenizer *t, const char *text, size_t n, zm__ids *out) {
    if (!n) return ZM_OK;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for PCRE2 match data");
    const uint8_t *u = (const uint8_t *)text;
    size_t pos = 0;
    zm_status st = ZM_OK;
    while (pos < n && st == ZM_OK) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, n, pos, 0, md, NULL);
        size_t ms = n, me = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer failed at byte %zu: %s", pos, (const char *)msg);
            break;
        }
        /* bytes the regex skipped (invalid UTF-8): one pre-token per byte */
        for (size_t i = pos; i < ms && st == ZM_OK; i++) st = bpe_word(t, u + i, 1, out);
        if (st != ZM_OK || ms >= n) break;
        if (me <= ms) { /* no pattern matches empty; guard anyway */
            uint32_t cp;
            me = ms + (size_t)zm__utf8_next(text + ms, n - ms, &cp);
        }
        st = bpe_word(t, u + ms, me - ms, out);
        pos = me;
    }
    pcre2_match_data_free(md);
    return st;
}
