/* Vocabulary construction: token strings, the string -> id hash, merge ranks,
 * per-token decoded bytes, the special-token index, BOS/EOS/EOG, flags.
 * Follows llama.cpp's llama-vocab.cpp semantics (defaults per model and
 * pre-tokenizer). Checked by tests/test_tokenizer.c and tests/test_tok_o200k.c. */
#include "tokenizer/tok.h"
#include <stdio.h>
#include <string.h>

// ---- small helpers ---------------------------------------------------------
uint64_t zm__tok_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t zm__b2u(uint8_t b) {
    /* GPT-2 keeps printable Latin-1 as itself and moves the other 68 bytes
     * to U+0100.. in byte order, so every byte is a visible character. */
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    uint32_t k = 0;
    for (uint32_t c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) k++;
    return 256 + k;
}

int zm__u2b(uint32_t cp) {
    static int16_t inv[324];
    static int ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        int16_t tmp[324];
        for (int i = 0; i < 324; i++) tmp[i] = -1;
        for (int b = 0; b < 256; b++) tmp[zm__b2u((uint8_t)b)] = (int16_t)b;
        memcpy(inv, tmp, sizeof inv); /* identical bytes from any racing thread */
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return cp < 324 ? inv[cp] : -1;
}

int zm__utf8_next(const char *s, size_t n, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    uint8_t c = u[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; min = 0x10000; }
    else { *cp = 0xfffd; return 1; }
    if ((size_t)len > n) { *cp = 0xfffd; return 1; }
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80) { *cp = 0xfffd; return 1; }
        v = (v << 6) | (u[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) { *cp = 0xfffd; return 1; }
    *cp = v;
    return len;
}

int zm__utf8_put(char *o, uint32_t cp) {
    uint8_t *u = (uint8_t *)o;
    if (cp < 0x80) { u[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { u[0] = (uint8_t)(0xc0 | (cp >> 6)); u[1] = (uint8_t)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | (cp >> 12)); u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    u[0] = (uint8_t)(0xf0 | (cp >> 18)); u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

zm_status zm__ids_push(zm__ids *a, int32_t id) {
    if (a->n == a->cap) {
        int64_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, sizeof *v * (size_t)nc);
        if (!v) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %lld ids", (long long)nc);
        a->v = v;
        a->cap = nc;
    }
    a->v[a->n++] = id;
    return ZM_OK;
}

// ---- lookups ---------------------------------------------------------------
int32_t zm_tokenizer_find(const zm_tokenizer *t, const char *s, size_t len) {
    if (!t || (!s && len)) return -1;
    for (uint64_t i = zm__tok_hash(s, len) & t->hmask;; i = (i + 1) & t->hmask) {
        uint32_t v = t->hmap[i];
        if (!v) return -1;
        size_t l;
        const char *p = zm__tok_str(t, (int32_t)(v - 1), &l);
        if (l == len && !memcmp(p, s, len)) return (int32_t)(v - 1);
    }
}

uint32_t zm__tok_merge_find(const zm_tokenizer *t, int32_t l, int32_t r, int32_t *result) {
    if (!t->merge) return UINT32_MAX;
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    for (uint64_t i = mix64(key) & t->mmask;; i = (i + 1) & t->mmask) {
        const zm__merge_slot *m = &t->merge[i];
        if (m->key == UINT64_MAX) return UINT32_MAX;
        if (m->key == key) { *result = m->result; return m->rank; }
    }
}

// ---- construction ----------------------------------------------------------
void zm_vocab_desc_init(zm_vocab_desc *d) {
    memset(d, 0, sizeof *d);
    d->bos = d->eos = d->eot = d->eom = d->unk = d->pad = -1;
    d->add_bos = d->add_eos = d->add_space_prefix = -1;
}

static int pretok_parse(const char *s) {
    static const struct { const char *name; zm_pretok p; } tab[] = {
        {"default", ZM_PRETOK_GPT2}, {"gpt2", ZM_PRETOK_GPT2},
        {"llama-bpe", ZM_PRETOK_LLAMA3}, {"llama3", ZM_PRETOK_LLAMA3}, {"llama-v3", ZM_PRETOK_LLAMA3},
        {"qwen2", ZM_PRETOK_QWEN2}, {"deepseek-r1-qwen", ZM_PRETOK_QWEN2},
        {"gpt-4o", ZM_PRETOK_O200K}, {"o200k", ZM_PRETOK_O200K}, {"gpt-oss", ZM_PRETOK_O200K},
        {"llama4", ZM_PRETOK_O200K}, {"lfm2", ZM_PRETOK_LLAMA3}, {"qwen35", ZM_PRETOK_QWEN35},
        {"glm4", ZM_PRETOK_GLM4}, {"chatglm-bpe", ZM_PRETOK_GLM4},
    };
    if (!s) return ZM_PRETOK_GPT2;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(s, tab[i].name)) return (int)tab[i].p;
    return -1;
}

const char *zm_pretok_name(zm_pretok p) {
    static const char *n[] = {"none", "gpt2", "llama3", "qwen2", "o200k", "qwen35", "glm4"};
    return (unsigned)p < ZM_PRETOK_COUNT ? n[p] : "?";
}

/* Decoded bytes of token id into o (capacity >= 4 * stored length + 4). */
static size_t decode_token(const zm_tokenizer *t, int32_t id, char *o) {
    size_t n;
    const char *s = zm__tok_str(t, id, &n);
    int ty = t->type[id];
    if (ty == ZM_TOKEN_CONTROL || ty == ZM_TOKEN_USER_DEFINED || ty == ZM_TOKEN_UNKNOWN) {
        memcpy(o, s, n);
        return n;
    }
    size_t k = 0;
    if (t->model == ZM_TOKMODEL_SPM) {
        unsigned b;
        char tail;
        if (ty == ZM_TOKEN_BYTE && n == 6 && sscanf(s, "<0x%2X%c", &b, &tail) == 2 && tail == '>') {
            o[0] = (char)b;
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) { o[k++] = ' '; i += 3; }
            else o[k++] = s[i++];
        }
        return k;
    }
    for (size_t i = 0; i < n;) { /* byte-level BPE: undo the GPT-2 mapping */
        uint32_t cp;
        int l = zm__utf8_next(s + i, n - i, &cp);
        int b = l > 1 || (uint8_t)s[i] < 0x80 ? zm__u2b(cp) : -1;
        if (b >= 0) o[k++] = (char)b;
        else { memcpy(o + k, s + i, (size_t)l); k += (size_t)l; }
        i += (size_t)l;
    }
    return k;
}

static zm_status build_maps(zm_tokenizer *t) {
    uint64_t cap = 16;
    while (cap < (uint64_t)t->n * 2) cap <<= 1;
    t->hmap = calloc(cap, sizeof *t->hmap);
    if (!t->hmap) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for the token hash");
    t->hmask = cap - 1;
    for (int32_t id = 0; id < t->n; id++) {
        size_t l;
        const char *s = zm__tok_str(t, id, &l);
        uint64_t i = zm__tok_hash(s, l) & t->hmask;
        for (;; i = (i + 1) & t->hmask) {
            uint32_t v = t->hmap[i];
            if (!v) { t->hmap[i] = (uint32_t)id + 1; break; }
            size_t l2;
            const char *p = zm__tok_str(t, (int32_t)(v - 1), &l2);
            if (l2 == l && !memcmp(p, s, l)) break; /* duplicate string: the lower id wins */
        }
    }
    /* decoded bytes */
    uint64_t total = 0;
    for (int32_t id = 0; id < t->n; id++) total += (t->off[id + 1] - t->off[id]) * 2 + 1;
    t->dec = malloc(total + 8);
    t->dec_off = malloc(sizeof *t->dec_off * ((size_t)t->n + 1));
    if (!t->dec || !t->dec_off) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for decoded pieces");
    uint64_t k = 0;
    for (int32_t id = 0; id < t->n; id++) {
        t->dec_off[id] = k;
        k += decode_token(t, id, t->dec + k); /* never longer than the stored string */
    }
    t->dec_off[t->n] = k;
    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t l;
        if (t->model == ZM_TOKMODEL_BPE) l = (size_t)zm__utf8_put(buf, zm__b2u((uint8_t)b));
        else l = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
        t->byte_tok[b] = zm_tokenizer_find(t, buf, l);
    }
    return ZM_OK;
}

static zm_status build_merges(zm_tokenizer *t, const zm_vocab_desc *d) {
    if (d->n_merges <= 0 || t->model != ZM_TOKMODEL_BPE) return ZM_OK;
    if (!d->merges) return zm__err(ZM_ERR_INVALID, "tokenizer: %lld merges but no merge strings", (long long)d->n_merges);
    if (d->n_merges >= (int64_t)UINT32_MAX / 4)
        return zm__err(ZM_ERR_FORMAT, "tokenizer: %lld merges is too many", (long long)d->n_merges);
    uint64_t cap = 16;
    while (cap < (uint64_t)d->n_merges * 2) cap <<= 1;
    t->merge = malloc(sizeof *t->merge * cap);
    if (!t->merge) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %lld merges", (long long)d->n_merges);
    for (uint64_t i = 0; i < cap; i++) t->merge[i].key = UINT64_MAX;
    t->mmask = cap - 1;
    char *cat = NULL;
    size_t catcap = 0;
    for (int64_t r = 0; r < d->n_merges; r++) {
        const char *m = d->merges[r];
        if (!m) continue;
        size_t len = d->merge_lens ? d->merge_lens[r] : strlen(m);
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
        if (!sp) continue;
        size_t ll = (size_t)(sp - m), rl = len - ll - 1;
        int32_t a = zm_tokenizer_find(t, m, ll), b = zm_tokenizer_find(t, sp + 1, rl);
        if (a < 0 || b < 0) continue;
        if (ll + rl > catcap) {
            catcap = (ll + rl) * 2;
            char *nc = realloc(cat, catcap);
            if (!nc) { free(cat); return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory"); }
            cat = nc;
        }
        memcpy(cat, m, ll);
        memcpy(cat + ll, sp + 1, rl);
        int32_t res = zm_tokenizer_find(t, cat, ll + rl);
        if (res < 0) continue; /* a merge whose result is no token can never apply */
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        for (uint64_t i = mix64(key) & t->mmask;; i = (i + 1) & t->mmask) {
            zm__merge_slot *s = &t->merge[i];
            if (s->key == key) break; /* repeated merge: the first (higher priority) stays */
            if (s->key == UINT64_MAX) {
                s->key = key; s->rank = (uint32_t)r; s->result = res;
                t->n_merges++;
                break;
            }
        }
    }
    free(cat);
    return ZM_OK;
}

static int cmp_spec_len_desc(const void *a, const void *b, void *ctx) {
    const zm_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint64_t lx = t->off[x + 1] - t->off[x], ly = t->off[y + 1] - t->off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static zm_status build_specials(zm_tokenizer *t) {
    uint32_t count[256] = {0};
    for (int32_t id = 0; id < t->n; id++) {
        int ty = t->type[id];
        if ((ty == ZM_TOKEN_CONTROL || ty == ZM_TOKEN_USER_DEFINED || ty == ZM_TOKEN_UNKNOWN) &&
            t->off[id + 1] > t->off[id])
            count[(uint8_t)t->arena[t->off[id]]]++;
    }
    uint32_t total = 0;
    for (int c = 0; c < 256; c++) { t->spec_start[c] = total; total += count[c]; }
    t->spec_start[256] = total;
    t->spec = malloc(sizeof *t->spec * (total + 1));
    if (!t->spec) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for special tokens");
    uint32_t fill[256];
    memcpy(fill, t->spec_start, sizeof fill);
    for (int32_t id = 0; id < t->n; id++) {
        int ty = t->type[id];
        if ((ty == ZM_TOKEN_CONTROL || ty == ZM_TOKEN_USER_DEFINED || ty == ZM_TOKEN_UNKNOWN) &&
            t->off[id + 1] > t->off[id])
            t->spec[fill[(uint8_t)t->arena[t->off[id]]]++] = id;
    }
    for (int c = 0; c < 256; c++) /* longest first: "<|im_start|>" before "<|im" */
        if (count[c] > 1) qsort_r(t->spec + t->spec_start[c], count[c], sizeof *t->spec, cmp_spec_len_desc, t);
    return ZM_OK;
}

static void add_eog(zm_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n || t->n_eog >= (int)(sizeof t->eog / sizeof t->eog[0])) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    t->eog[t->n_eog++] = id;
}

static void build_eog(zm_tokenizer *t) {
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);
    static const char *names[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|return|>",
                                  "<|call|>", "<end_of_turn>", "<|end_of_text|>", "</s>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = zm_tokenizer_find(t, names[i], strlen(names[i]));
        if (id >= 0 && t->type[id] == ZM_TOKEN_CONTROL) add_eog(t, id);
    }
    /* gpt-oss ends a message with <|end|> and the whole answer with
     * <|return|>; only where there is no <|return|> does <|end|> end it. */
    int32_t end = zm_tokenizer_find(t, "<|end|>", 7);
    if (end >= 0 && t->type[end] == ZM_TOKEN_CONTROL && zm_tokenizer_find(t, "<|return|>", 10) < 0) add_eog(t, end);
}

zm_chat_kind zm__chat_detect(const zm_tokenizer *t, const char *tmpl, const char *arch);

static zm_status check_id(const zm_tokenizer *t, const char *what, int32_t *id) {
    if (*id < -1 || *id >= t->n)
        return zm__err(ZM_ERR_FORMAT, "tokenizer: %s id %d is outside the vocabulary of %d tokens", what, *id, t->n);
    return ZM_OK;
}

static zm_status tokenizer_build(zm_tokenizer *t, const zm_vocab_desc *d) {
    if (!d->model) return zm__err(ZM_ERR_INVALID, "tokenizer: no model name (tokenizer.ggml.model)");
    if (!strcmp(d->model, "gpt2")) t->model = ZM_TOKMODEL_BPE;
    else if (!strcmp(d->model, "llama")) t->model = ZM_TOKMODEL_SPM;
    else return zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: model '%.64s' is not supported (gpt2, llama are)", d->model);
    if (d->n_tokens < 1 || d->n_tokens >= INT32_MAX / 2 || !d->tokens)
        return zm__err(ZM_ERR_FORMAT, "tokenizer: %lld tokens is not a usable vocabulary", (long long)d->n_tokens);
    t->n = (int32_t)d->n_tokens;
    if (t->model == ZM_TOKMODEL_BPE) {
        int p = pretok_parse(d->pre);
        if (p < 0)
            return zm__err(ZM_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer '%.64s' is not supported "
                           "(default, gpt2, qwen2, qwen35, llama-bpe, llama3, lfm2, glm4, gpt-4o, o200k, gpt-oss)", d->pre);
        t->pre = (zm_pretok)p;
    } else t->pre = ZM_PRETOK_NONE;

    uint64_t total = 0;
    for (int32_t i = 0; i < t->n; i++) {
        if (!d->tokens[i]) return zm__err(ZM_ERR_FORMAT, "tokenizer: token %d has no string", i);
        total += d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
    }
    t->arena = malloc(total + 1);
    t->off = malloc(sizeof *t->off * ((size_t)t->n + 1));
    t->score = calloc((size_t)t->n, sizeof *t->score);
    t->type = malloc((size_t)t->n);
    if (!t->arena || !t->off || !t->score || !t->type) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory for %d tokens", t->n);
    uint64_t k = 0;
    for (int32_t i = 0; i < t->n; i++) {
        size_t l = d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
        t->off[i] = k;
        memcpy(t->arena + k, d->tokens[i], l);
        k += l;
        if (d->scores) t->score[i] = d->scores[i] == d->scores[i] ? d->scores[i] : -1e30f;
        int ty = d->token_types ? d->token_types[i] : ZM_TOKEN_NORMAL;
        t->type[i] = (uint8_t)(ty > 0 && ty < ZM_TOKEN_TYPE_COUNT ? ty : ZM_TOKEN_NORMAL);
    }
    t->off[t->n] = k;
    t->arena[k] = 0;

    t->bos = d->bos; t->eos = d->eos; t->eot = d->eot; t->eom = d->eom; t->unk = d->unk; t->pad = d->pad;
    ZM_TRY(check_id(t, "BOS", &t->bos));
    ZM_TRY(check_id(t, "EOS", &t->eos));
    ZM_TRY(check_id(t, "EOT", &t->eot));
    ZM_TRY(check_id(t, "EOM", &t->eom));
    ZM_TRY(check_id(t, "UNK", &t->unk));
    ZM_TRY(check_id(t, "padding", &t->pad));
    if (t->pre == ZM_PRETOK_GLM4) t->bos = -1; /* llama.cpp: GLM-4 has no BOS whatever the file says */
    /* llama.cpp's defaults: SentencePiece adds BOS and a leading space;
     * byte-level BPE adds BOS only for the llama3 family. */
    int spm = t->model == ZM_TOKMODEL_SPM;
    t->add_bos = d->add_bos >= 0 ? !!d->add_bos : (spm || t->pre == ZM_PRETOK_LLAMA3);
    t->add_eos = d->add_eos >= 0 ? !!d->add_eos : 0;
    t->add_space_prefix = spm ? (d->add_space_prefix >= 0 ? !!d->add_space_prefix : 1) : 0;
    /* llama3 (HF ignore_merges) takes a whole pre-token that is itself a
     * token without running the merges, as llama.cpp does. tiktoken does the
     * same for o200k, llama.cpp does not; on the real o200k vocabulary the
     * two agree on every token (tests/test_tok_o200k.c checks all 198k), so
     * we follow llama.cpp there. */
    t->ignore_merges = t->pre == ZM_PRETOK_LLAMA3;

    ZM_TRY(build_maps(t));
    ZM_TRY(build_merges(t, d));
    ZM_TRY(build_specials(t));
    build_eog(t);
    if (t->model == ZM_TOKMODEL_BPE) ZM_TRY(zm__pretok_compile(t->pre, &t->re));
    t->chat = zm__chat_detect(t, d->chat_template, d->arch);
    return ZM_OK;
}

zm_status zm_tokenizer_new(zm_tokenizer **out, const zm_vocab_desc *d) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_new: out is NULL");
    *out = NULL;
    if (!d) return zm__err(ZM_ERR_INVALID, "zm_tokenizer_new: desc is NULL");
    zm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return zm__err(ZM_ERR_NOMEM, "tokenizer: out of memory");
    zm_status s = tokenizer_build(t, d);
    if (s != ZM_OK) { zm_tokenizer_free(t); return s; }
    *out = t;
    return ZM_OK;
}

void zm_tokenizer_free(zm_tokenizer *t) {
    if (!t) return;
    free(t->arena); free(t->off); free(t->score); free(t->type); free(t->hmap);
    free(t->merge); free(t->dec); free(t->dec_off); free(t->spec);
    if (t->re) pcre2_code_free(t->re);
    free(t);
}

// ---- accessors -------------------------------------------------------------
int32_t zm_tokenizer_n_vocab(const zm_tokenizer *t) { return t ? t->n : 0; }
zm_tok_model zm_tokenizer_model(const zm_tokenizer *t) { return t->model; }
zm_pretok zm_tokenizer_pretok(const zm_tokenizer *t) { return t->pre; }
int32_t zm_tokenizer_bos(const zm_tokenizer *t) { return t ? t->bos : -1; }
int32_t zm_tokenizer_eos(const zm_tokenizer *t) { return t ? t->eos : -1; }
int zm_tokenizer_add_bos(const zm_tokenizer *t) { return t && t->add_bos && t->bos >= 0; }
zm_chat_kind zm_tokenizer_chat_kind(const zm_tokenizer *t) { return t ? t->chat : ZM_CHAT_NONE; }

int zm_tokenizer_is_eog(const zm_tokenizer *t, int32_t id) {
    if (!t || id < 0) return 0;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

zm_token_type zm_tokenizer_token_type(const zm_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n ? (zm_token_type)t->type[id] : ZM_TOKEN_UNDEFINED;
}

const char *zm_tokenizer_token_text(const zm_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n) { if (len) *len = 0; return NULL; }
    size_t l;
    const char *s = zm__tok_str(t, id, &l);
    if (len) *len = l;
    return s;
}
