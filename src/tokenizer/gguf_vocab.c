/* Reads a tokenizer from GGUF metadata (llama.cpp's keys): tokenizer.ggml.
 * {model, pre, tokens, scores, token_type, merges, bos/eos/eot/eom/unknown/
 * padding_token_id, add_bos_token, add_eos_token, add_space_prefix},
 * tokenizer.chat_template and general.architecture. Every array length is
 * checked against the token count; the strings are copied by
 * zm_tokenizer_new, so the GGUF may be closed afterwards.
 * Checked by tests/test_tokenizer.c (test_gguf_load) and tests/test_tok_o200k.c;
 * hostile files by fuzz/fuzz_tokenizer.c. */
#include "tokenizer/tok.h"
#include <string.h>

static char *dup_str(const zm_gguf *g, const char *key, zm_status *st) {
    const char *s;
    uint64_t n;
    *st = zm_gguf_get_str(g, key, &s, &n);
    if (*st != ZM_OK) return NULL;
    char *o = malloc(n + 1);
    if (!o) { *st = zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %s", key); return NULL; }
    memcpy(o, s, n);
    o[n] = 0;
    return o;
}

/* optional string: absent is fine (NULL), anything else wrong is an error */
static zm_status opt_str(const zm_gguf *g, const char *key, char **out) {
    *out = NULL;
    if (zm_gguf_find_key(g, key) < 0) return ZM_OK;
    zm_status st;
    *out = dup_str(g, key, &st);
    return st;
}

static zm_status opt_id(const zm_gguf *g, const char *key, int32_t *out) {
    *out = -1;
    if (zm_gguf_find_key(g, key) < 0) return ZM_OK;
    int64_t v;
    ZM_TRY(zm_gguf_get_i64(g, key, &v));
    /* llama.cpp writes -1 / UINT32_MAX for "none" in some converters */
    if (v == -1 || v == (int64_t)UINT32_MAX) return ZM_OK;
    if (v < 0 || v > INT32_MAX) return zm__err(ZM_ERR_FORMAT, "tokenizer: %s = %lld is not a token id", key, (long long)v);
    *out = (int32_t)v;
    return ZM_OK;
}

static zm_status opt_bool(const zm_gguf *g, const char *key, int *out) {
    *out = -1;
    if (zm_gguf_find_key(g, key) < 0) return ZM_OK;
    return zm_gguf_get_bool(g, key, out);
}

/* string array: pointers into the mapping plus lengths */
static zm_status str_array(const zm_gguf *g, const char *key, int64_t *n, const char ***s, uint32_t **lens) {
    zm_gguf_type et;
    uint64_t cnt;
    ZM_TRY(zm_gguf_get_arr(g, key, &et, &cnt));
    if (et != ZM_GGUF_STRING) return zm__err(ZM_ERR_FORMAT, "tokenizer: %s is an array of %s, expected strings", key, zm_gguf_type_name(et));
    if (cnt >= (uint64_t)INT32_MAX / 2) return zm__err(ZM_ERR_FORMAT, "tokenizer: %s has %llu entries", key, (unsigned long long)cnt);
    *s = malloc(sizeof **s * (cnt + 1));
    *lens = malloc(sizeof **lens * (cnt + 1));
    if (!*s || !*lens) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %s", key);
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t l;
        ZM_TRY(zm_gguf_get_arr_str(g, key, i, &(*s)[i], &l));
        if (l > UINT32_MAX / 4) return zm__err(ZM_ERR_FORMAT, "tokenizer: %s[%llu] is %llu bytes long", key, (unsigned long long)i, (unsigned long long)l);
        (*lens)[i] = (uint32_t)l;
    }
    *n = (int64_t)cnt;
    return ZM_OK;
}

typedef struct {
    zm_vocab_desc d;
    char *model, *pre, *tmpl, *arch;
    const char **tokens, **merges;
    uint32_t *tlen, *mlen;
    float *scores;
    int32_t *types;
} loader;

static zm_status load(loader *L, const zm_gguf *g) {
    zm_vocab_desc *d = &L->d;
    zm_vocab_desc_init(d);
    if (zm_gguf_find_key(g, "tokenizer.ggml.model") < 0)
        return zm__err(ZM_ERR_NOT_FOUND, "tokenizer: the file has no tokenizer (tokenizer.ggml.model is missing)");
    zm_status st;
    L->model = dup_str(g, "tokenizer.ggml.model", &st);
    ZM_TRY(st);
    ZM_TRY(opt_str(g, "tokenizer.ggml.pre", &L->pre));
    ZM_TRY(opt_str(g, "tokenizer.chat_template", &L->tmpl));
    ZM_TRY(opt_str(g, "general.architecture", &L->arch));
    d->model = L->model;
    d->pre = L->pre;
    d->chat_template = L->tmpl;
    d->arch = L->arch;
    ZM_TRY(str_array(g, "tokenizer.ggml.tokens", &d->n_tokens, &L->tokens, &L->tlen));
    d->tokens = L->tokens;
    d->token_lens = L->tlen;
    uint64_t n = (uint64_t)d->n_tokens, cnt;
    zm_gguf_type et;
    if (zm_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        ZM_TRY(zm_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &cnt));
        if (cnt != n) return zm__err(ZM_ERR_FORMAT, "tokenizer: %llu scores for %llu tokens", (unsigned long long)cnt, (unsigned long long)n);
        double *tmp = malloc(sizeof *tmp * (n + 1));
        L->scores = malloc(sizeof *L->scores * (n + 1));
        if (!tmp || !L->scores) { free(tmp); return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for scores"); }
        st = zm_gguf_get_arr_f64(g, "tokenizer.ggml.scores", 0, n, tmp);
        for (uint64_t i = 0; st == ZM_OK && i < n; i++) L->scores[i] = (float)tmp[i];
        free(tmp);
        ZM_TRY(st);
        d->scores = L->scores;
    }
    if (zm_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        ZM_TRY(zm_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &cnt));
        if (cnt != n) return zm__err(ZM_ERR_FORMAT, "tokenizer: %llu token types for %llu tokens", (unsigned long long)cnt, (unsigned long long)n);
        int64_t *tmp = malloc(sizeof *tmp * (n + 1));
        L->types = malloc(sizeof *L->types * (n + 1));
        if (!tmp || !L->types) { free(tmp); return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for token types"); }
        st = zm_gguf_get_arr_i64(g, "tokenizer.ggml.token_type", 0, n, tmp);
        for (uint64_t i = 0; st == ZM_OK && i < n; i++) L->types[i] = tmp[i] >= 0 && tmp[i] < ZM_TOKEN_TYPE_COUNT ? (int32_t)tmp[i] : 1;
        free(tmp);
        ZM_TRY(st);
        d->token_types = L->types;
    }
    if (zm_gguf_find_key(g, "tokenizer.ggml.merges") >= 0) {
        ZM_TRY(str_array(g, "tokenizer.ggml.merges", &d->n_merges, &L->merges, &L->mlen));
        d->merges = L->merges;
        d->merge_lens = L->mlen;
    }
    ZM_TRY(opt_id(g, "tokenizer.ggml.bos_token_id", &d->bos));
    ZM_TRY(opt_id(g, "tokenizer.ggml.eos_token_id", &d->eos));
    ZM_TRY(opt_id(g, "tokenizer.ggml.eot_token_id", &d->eot));
    ZM_TRY(opt_id(g, "tokenizer.ggml.eom_token_id", &d->eom));
    ZM_TRY(opt_id(g, "tokenizer.ggml.unknown_token_id", &d->unk));
    ZM_TRY(opt_id(g, "tokenizer.ggml.padding_token_id", &d->pad));
    ZM_TRY(opt_bool(g, "tokenizer.ggml.add_bos_token", &d->add_bos));
    ZM_TRY(opt_bool(g, "tokenizer.ggml.add_eos_token", &d->add_eos));
    ZM_TRY(opt_bool(g, "tokenizer.ggml.add_space_prefix", &d->add_space_prefix));
    return ZM_OK;
}

zm_status zm_tokenizer_load(zm_tokenizer **out, const zm_gguf *g) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_load: out is NULL");
    *out = NULL;
    if (!g) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_load: gguf is NULL");
    loader L;
    memset(&L, 0, sizeof L);
    zm_status st = load(&L, g);
    if (st == ZM_OK) st = zm_tokenizer_new(out, &L.d);
    free(L.model); free(L.pre); free(L.tmpl); free(L.arch);
    free(L.tokens); free(L.merges); free(L.tlen); free(L.mlen); free(L.scores); free(L.types);
    return st;
}

zm_status zm_tokenizer_open(zm_tokenizer **out, const char *path) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_open: out is NULL");
    *out = NULL;
    zm_gguf *g = NULL;
    zm_status st = zm_gguf_open(&g, path);
    if (st != ZM_OK) return st;
    st = zm_tokenizer_load(out, g);
    zm_gguf_free(g);
    if (st != ZM_OK) zm__err_ctx(st, "%s", path);
    return st;
}
