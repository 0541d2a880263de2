/* Text <-> ids: special tokens are cut out of the text first (leftmost,
 * longest), each raw fragment then goes through BPE or SentencePiece; BOS /
 * EOS are added as the vocabulary's flags say. Decoding concatenates each
 * token's precomputed bytes; the streaming decoder holds back incomplete
 * UTF-8 and replaces impossible bytes with U+FFFD.
 * Checked by tests/test_tokenizer.c; fuzzed by fuzz/fuzz_tokenizer.c. */
#include "tokenizer/tok.h"
#include <string.h>

// ---- encode ----------------------------------------------------------------
/* Special token starting at s (n bytes left), -1 if none. */
static int32_t match_special(const zm_tokenizer *t, const char *s, size_t n, int parse_special) {
    uint8_t c = (uint8_t)s[0];
    for (uint32_t k = t->spec_start[c]; k < t->spec_start[c + 1]; k++) {
        int32_t id = t->spec[k];
        if (!parse_special && t->type[id] != ZM_TOKEN_USER_DEFINED) continue;
        size_t l;
        const char *p = zm__tok_str(t, id, &l);
        if (l <= n && !memcmp(p, s, l)) return id;
    }
    return -1;
}

static zm_status encode_raw(const zm_tokenizer *t, const char *s, size_t n, int prefix_space, zm__ids *out) {
    if (t->model == ZM_TOKMODEL_BPE) return zm__bpe_encode(t, s, n, out);
    if (!prefix_space) return zm__spm_encode(t, s, n, out);
    char *x = malloc(n + 1);
    if (!x) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", n);
    x[0] = ' ';
    memcpy(x + 1, s, n);
    zm_status st = zm__spm_encode(t, x, n + 1, out);
    free(x);
    return st;
}

zm_status zm_tokenizer_encode(const zm_tokenizer *t, const char *text, size_t len, int flags,
                              int32_t **ids, int64_t *n) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !ids || !n || (!text && len)) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_encode: NULL argument");
    zm__ids a = {0};
    zm_status st = zm__ids_push(&a, 0); /* make sure *ids is never NULL */
    a.n = 0;
    int special = (flags & ZM_ENC_PARSE_SPECIAL) != 0;
    /* SentencePiece prefixes a space to text at the start or after a special
     * token (llama.cpp's is_prev_special). */
    int prev_special = 1;
    if (st == ZM_OK && (flags & ZM_ENC_ADD_SPECIAL) && t->add_bos && t->bos >= 0) st = zm__ids_push(&a, t->bos);
    size_t start = 0;
    for (size_t i = 0; i < len && st == ZM_OK;) {
        int32_t sp = t->spec_start[256] ? match_special(t, text + i, len - i, special) : -1;
        if (sp < 0) { i++; continue; }
        if (i > start) {
            st = encode_raw(t, text + start, i - start, t->add_space_prefix && prev_special, &a);
            prev_special = 0;
        }
        if (st == ZM_OK) st = zm__ids_push(&a, sp);
        prev_special = 1;
        i += (size_t)(t->off[sp + 1] - t->off[sp]);
        start = i;
    }
    if (st == ZM_OK && len > start) st = encode_raw(t, text + start, len - start, t->add_space_prefix && prev_special, &a);
    if (st == ZM_OK && (flags & ZM_ENC_ADD_SPECIAL) && t->add_eos && t->eos >= 0) st = zm__ids_push(&a, t->eos);
    if (st != ZM_OK) { free(a.v); return st; }
    *ids = a.v;
    *n = a.n;
    return ZM_OK;
}

// ---- decode ----------------------------------------------------------------
/* Bytes of one token for output (empty for a control token unless asked). */
static const char *piece(const zm_tokenizer *t, int32_t id, int flags, size_t *len) {
    int ty = t->type[id];
    if (ty == ZM_TOKEN_CONTROL && !(flags & ZM_DEC_SPECIAL)) { *len = 0; return ""; }
    *len = (size_t)(t->dec_off[id + 1] - t->dec_off[id]);
    return t->dec + t->dec_off[id];
}

static int strips_space(const zm_tokenizer *t, int flags) {
    return t->model == ZM_TOKMODEL_SPM && t->add_space_prefix && !(flags & ZM_DEC_KEEP_SPACE);
}

zm_status zm_tokenizer_decode(const zm_tokenizer *t, const int32_t *ids, int64_t n, int flags,
                              char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!t || !text || (!ids && n) || n < 0) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_decode: bad argument");
    size_t total = 1;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n)
            return zm__err(ZM_ERR_RANGE, "tokenizer: id %d at position %lld is outside the vocabulary of %d",
                           ids[i], (long long)i, t->n);
        size_t l;
        piece(t, ids[i], flags, &l);
        total += l;
    }
    char *o = malloc(total);
    if (!o) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes of text", total);
    size_t k = 0;
    int first = strips_space(t, flags);
    for (int64_t i = 0; i < n; i++) {
        size_t l;
        const char *p = piece(t, ids[i], flags, &l);
        if (first && l) {
            if (p[0] == ' ') { p++; l--; }
            first = 0;
        }
        memcpy(o + k, p, l);
        k += l;
    }
    o[k] = 0;
    *text = o;
    if (len) *len = k;
    return ZM_OK;
}

// ---- UTF-8 validity ----------------------------------------------------------
/* 0: s[0..n) is a complete valid character of length return value (>0);
 * -1: invalid lead / sequence (replace one byte); -2: valid so far but cut. */
static int utf8_status(const uint8_t *s, size_t n, int *clen) {
    uint8_t c = s[0];
    int len;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80) { *clen = 1; return 0; }
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) { len = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return -2;
        uint8_t b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) return -1;
    }
    *clen = len;
    return 0;
}

size_t zm_utf8_valid_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int l;
        if (utf8_status((const uint8_t *)s + i, n - i, &l) != 0) break;
        i += (size_t)l;
    }
    return i;
}

// ---- streaming decoder ---------------------------------------------------------
struct zm_detok {
    const zm_tokenizer *t;
    int flags, first;
    char held[4];
    size_t nheld;
    char *out;
    size_t cap;
};

zm_status zm_detok_new(zm_detok **out, const zm_tokenizer *t, int flags) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_detok_new: out is NULL");
    *out = NULL;
    if (!t) return zm__err(ZM_ERR_INVALID, "zm_detok_new: tokenizer is NULL");
    zm_detok *d = calloc(1, sizeof *d);
    if (!d) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory");
    d->t = t;
    d->flags = flags;
    d->first = strips_space(t, flags);
    *out = d;
    return ZM_OK;
}

void zm_detok_free(zm_detok *d) {
    if (!d) return;
    free(d->out);
    free(d);
}

/* Emit the valid part of held + p; keep an incomplete tail (< 4 bytes). */
static zm_status detok_feed(zm_detok *d, const char *p, size_t l, int final, const char **s, size_t *len) {
    size_t need = (d->nheld + l) * 3 + 4; /* every byte may become U+FFFD */
    if (need > d->cap) {
        char *o = realloc(d->out, need);
        if (!o) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", need);
        d->out = o;
        d->cap = need;
    }
    /* held tail + new bytes in one buffer, then scan it */
    char *buf = malloc(d->nheld + l + 1);
    if (!buf) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(buf, d->held, d->nheld);
    if (l) memcpy(buf + d->nheld, p, l);
    size_t n = d->nheld + l, i = 0, k = 0;
    d->nheld = 0;
    while (i < n) {
        int cl;
        int r = utf8_status((const uint8_t *)buf + i, n - i, &cl);
        if (r == 0) { memcpy(d->out + k, buf + i, (size_t)cl); k += (size_t)cl; i += (size_t)cl; }
        else if (r == -2 && !final) { memcpy(d->held, buf + i, n - i); d->nheld = n - i; break; }
        else { memcpy(d->out + k, "\xef\xbf\xbd", 3); k += 3; i++; }
    }
    free(buf);
    *s = d->out;
    *len = k;
    return ZM_OK;
}

zm_status zm_detok_push(zm_detok *d, int32_t id, const char **s, size_t *len) {
    *s = "";
    *len = 0;
    if (!d) return zm__err(ZM_ERR_INVALID, "zm_detok_push: decoder is NULL");
    if (id < 0 || id >= d->t->n) return zm__err(ZM_ERR_RANGE, "tokenizer: id %d is outside the vocabulary of %d", id, d->t->n);
    size_t l;
    const char *p = piece(d->t, id, d->flags, &l);
    if (d->first && l) {
        if (p[0] == ' ') { p++; l--; }
        d->first = 0;
    }
    return detok_feed(d, p, l, 0, s, len);
}

zm_status zm_detok_flush(zm_detok *d, const char **s, size_t *len) {
    *s = "";
    *len = 0;
    if (!d) return zm__err(ZM_ERR_INVALID, "zm_detok_flush: decoder is NULL");
    return detok_feed(d, NULL, 0, 1, s, len);
}
