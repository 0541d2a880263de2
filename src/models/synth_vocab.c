/* A valid byte-level BPE vocabulary for synthetic models, in the form
 * llama.cpp reads (tokenizer.ggml.model = "gpt2"): the 256 byte tokens
 * spelled with GPT-2's byte-to-unicode map, then merges learned by real BPE
 * training on a small built-in English text (so common words become single
 * tokens and tokenizer tests read naturally), then, for large vocabularies,
 * seeded synthetic merges of existing tokens until the size is reached, then
 * the special tokens. Every merge "A B" has A and B in the vocabulary and
 * A+B is the next token, so the merge list and the token list agree.
 * Checked by tests/test_synth.c and by llama.cpp loading the file
 * (tests/crosscheck/llama.sh). */
#include "models/synth_vocab.h"
#include "core/internal.h"
#include <stdio.h>
#include <string.h>

static const char zm__corpus[] =
    "The quick brown fox jumps over the lazy dog. A model reads the text as tokens, and each token "
    "is a number. The model then predicts the next token, one at a time, and the tokens become text "
    "again. In the beginning there were bytes; then the bytes were merged into pairs, and the pairs "
    "into words. This is how a byte pair encoding works: the most frequent pair of symbols is merged "
    "first, then the next, until the vocabulary is full. Hello world! Hello, world. hello there, "
    "what is the time? It is 10:30 in the morning, and the date is 2026-11-27. We will write the "
    "code in C, with tests for every kernel, and we will run it on the CPU and on the GPU. "
    "The mixture of experts layer sends each token to the best experts; the router chooses them, "
    "and their outputs are added with the weights of the router. Numbers: 0 1 2 3 4 5 6 7 8 9 10 "
    "100 1000 3.14159 42. Questions and answers: who, what, where, when, why and how? "
    "The user said: please tell me a story about a cat and a dog who were friends. The assistant "
    "said: once upon a time, there was a small cat that lived in a house with a big dog. "
    "int main(void) { return 0; } for (int i = 0; i < n; i++) x[i] = y[i] * 2;\n"
    "def f(x):\n    return x + 1\n\n# comment\n";

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others
 * to 256 + k in byte order. order[i] is the byte of token id i. */
static void zm__byte_map(int order[256], unsigned cp[256]) {
    int n = 0, k = 0, used[256] = {0};
    for (int b = 33; b <= 126; b++) order[n++] = b;
    for (int b = 161; b <= 172; b++) order[n++] = b;
    for (int b = 174; b <= 255; b++) order[n++] = b;
    for (int i = 0; i < n; i++) { used[order[i]] = 1; cp[order[i]] = (unsigned)order[i]; }
    for (int b = 0; b < 256; b++)
        if (!used[b]) { order[n++] = b; cp[b] = 256u + (unsigned)k++; }
}

static int zm__utf8(unsigned c, char *o) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    o[0] = (char)(0xc0 | (c >> 6));
    o[1] = (char)(0x80 | (c & 0x3f));
    return 2; /* all code points here are < 0x800 */
}

// ---------------------------------------------------------------------------
// string set (open addressing)

typedef struct {
    char **v;    /* token strings by id */
    int n;
    int32_t *slot; /* id + 1, 0 empty */
    uint64_t cap;
} zm__sset;

static uint64_t zm__h(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}
static int zm__find(const zm__sset *s, const char *k) {
    for (uint64_t h = zm__h(k) & (s->cap - 1);; h = (h + 1) & (s->cap - 1)) {
        if (!s->slot[h]) return -1;
        if (!strcmp(s->v[s->slot[h] - 1], k)) return s->slot[h] - 1;
    }
}
static void zm__insert(zm__sset *s, char *k) { /* k not present; capacity > 2n */
    uint64_t h = zm__h(k) & (s->cap - 1);
    while (s->slot[h]) h = (h + 1) & (s->cap - 1);
    s->v[s->n] = k;
    s->slot[h] = ++s->n;
}

static char *zm__cat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 1);
    if (r) { memcpy(r, a, la); memcpy(r + la, b, lb + 1); }
    return r;
}
static char *zm__merge_str(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 2);
    if (r) { memcpy(r, a, la); r[la] = ' '; memcpy(r + la + 1, b, lb + 1); }
    return r;
}

// ---------------------------------------------------------------------------
// BPE training on the corpus

typedef struct { int *ids; int len, count; } zm__word;

static int zm__cls(unsigned char c) {
    if ((c | 32) >= 'a' && (c | 32) <= 'z') return 1;
    if (c >= '0' && c <= '9') return 2;
    if (c == ' ') return 3;
    if (c == '\n') return 4;
    return 5;
}

/* Words GPT-2 style: an optional leading space then a run of one class. */
static int zm__words(zm__word *w, int maxw, const int id_of_byte[256]) {
    const unsigned char *s = (const unsigned char *)zm__corpus;
    size_t n = strlen(zm__corpus), i = 0;
    int nw = 0;
    while (i < n) {
        size_t st = i;
        if (s[i] == ' ' && i + 1 < n && zm__cls(s[i + 1]) != 3) i++;
        int c = zm__cls(s[i]);
        while (i < n && zm__cls(s[i]) == c && (c != 5 || i == st || i == st + 1)) i++;
        int len = (int)(i - st), found = -1;
        for (int k = 0; k < nw && found < 0; k++) {
            if (w[k].len != len) continue;
            int eq = 1;
            for (int j = 0; j < len && eq; j++) eq = w[k].ids[j] == id_of_byte[s[st + j]];
            if (eq) found = k;
        }
        if (found >= 0) { w[found].count++; continue; }
        if (nw == maxw) break;
        w[nw].ids = malloc(sizeof(int) * (size_t)len);
        if (!w[nw].ids) return -1;
        for (int j = 0; j < len; j++) w[nw].ids[j] = id_of_byte[s[st + j]];
        w[nw].len = len;
        w[nw].count = 1;
        nw++;
    }
    return nw;
}

/* One BPE step: the most frequent adjacent pair (ties: smallest ids) with
 * count >= 2; returns 0 when none is left. tab/keys: scratch of cap slots. */
static int zm__best_pair(const zm__word *w, int nw, int *ba, int *bb, uint64_t *keys, int *cnt, uint64_t cap) {
    memset(cnt, 0, sizeof(int) * cap);
    for (int k = 0; k < nw; k++)
        for (int j = 0; j + 1 < w[k].len; j++) {
            uint64_t key = ((uint64_t)(uint32_t)w[k].ids[j] << 32) | (uint32_t)w[k].ids[j + 1];
            uint64_t h = (key * 0x9e3779b97f4a7c15ull) >> 40 & (cap - 1);
            while (cnt[h] && keys[h] != key) h = (h + 1) & (cap - 1);
            keys[h] = key;
            cnt[h] += w[k].count;
        }
    int best = 1;
    uint64_t bk = 0;
    for (uint64_t h = 0; h < cap; h++)
        if (cnt[h] > best || (cnt[h] == best && best > 1 && keys[h] < bk)) { best = cnt[h]; bk = keys[h]; }
    *ba = (int)(bk >> 32);
    *bb = (int)(bk & 0xffffffffu);
    return best > 1;
}

static void zm__apply(zm__word *w, int nw, int a, int b, int id) {
    for (int k = 0; k < nw; k++) {
        int o = 0;
        for (int j = 0; j < w[k].len; j++) {
            if (j + 1 < w[k].len && w[k].ids[j] == a && w[k].ids[j + 1] == b) { w[k].ids[o++] = id; j++; }
            else w[k].ids[o++] = w[k].ids[j];
        }
        w[k].len = o;
    }
}

// ---------------------------------------------------------------------------

void zm__synth_vocab_free(zm__synth_vocab *v) {
    if (!v) return;
    if (v->tokens) for (int i = 0; i < v->n_vocab; i++) free(v->tokens[i]);
    if (v->merges) for (int i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->merges);
    free(v->types);
    memset(v, 0, sizeof *v);
}

static uint64_t zm__rng(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

zm_status zm__synth_vocab_build(zm__synth_vocab *v, int n_vocab, int n_special, uint64_t seed) {
    memset(v, 0, sizeof *v);
    int n_text = n_vocab - n_special;
    if (n_special < 3 || n_text < 256)
        return zm__err(ZM_ERR_INVALID, "synth vocab: %d tokens with %d specials leaves fewer than 256 byte tokens", n_vocab, n_special);
    zm__sset s = {0};
    s.cap = 16;
    while (s.cap < 2 * (uint64_t)n_vocab + 2) s.cap <<= 1;
    s.v = calloc((size_t)n_vocab, sizeof(char *));
    s.slot = calloc(s.cap, sizeof(int32_t));
    v->merges = calloc((size_t)n_text, sizeof(char *));
    v->types = malloc(sizeof(int32_t) * (size_t)n_vocab);
    zm__word w[512];
    int nw = 0;
    zm_status st = ZM_OK;
    if (!s.v || !s.slot || !v->merges || !v->types) { st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
    int order[256], id_of_byte[256];
    unsigned cp[256];
    zm__byte_map(order, cp);
    for (int i = 0; i < 256; i++) {
        char *t = malloc(3);
        if (!t) { st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
        t[zm__utf8(cp[order[i]], t)] = 0;
        id_of_byte[order[i]] = i;
        zm__insert(&s, t);
    }
    nw = zm__words(w, 512, id_of_byte);
    if (nw < 0) { nw = 0; st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
    /* phase 1: real BPE merges on the corpus */
    int a = 0, b = 0;
    enum { PCAP = 16384 }; /* > 2x the corpus length: every pair fits */
    uint64_t *pkeys = malloc(sizeof(uint64_t) * PCAP);
    int *pcnt = malloc(sizeof(int) * PCAP);
    if (!pkeys || !pcnt) { free(pkeys); free(pcnt); st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
    while (s.n < n_text && zm__best_pair(w, nw, &a, &b, pkeys, pcnt, PCAP)) {
        char *t = zm__cat(s.v[a], s.v[b]), *m = zm__merge_str(s.v[a], s.v[b]);
        if (!t || !m) { free(t); free(m); free(pkeys); free(pcnt); st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
        v->merges[v->n_merges++] = m;
        int id = zm__find(&s, t);
        if (id < 0) { id = s.n; zm__insert(&s, t); }
        else free(t);
        zm__apply(w, nw, a, b, id);
    }
    free(pkeys);
    free(pcnt);
    /* phase 2: seeded synthetic merges of existing tokens (short ones) */
    uint64_t rs = seed ^ 0x5eed5eed5eedull;
    while (s.n < n_text) {
        int x = (int)(zm__rng(&rs) % (uint64_t)s.n), y = (int)(zm__rng(&rs) % (uint64_t)s.n);
        if (strlen(s.v[x]) + strlen(s.v[y]) > 24) continue;
        char *t = zm__cat(s.v[x], s.v[y]);
        if (!t) { st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
        if (zm__find(&s, t) >= 0) { free(t); continue; }
        char *m = zm__merge_str(s.v[x], s.v[y]);
        if (!m) { free(t); st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
        v->merges[v->n_merges++] = m;
        zm__insert(&s, t);
    }
    for (int i = 0; i < n_text; i++) v->types[i] = 1;
    static const char *const named[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < n_special; i++) {
        char buf[32];
        if (i < 3) snprintf(buf, sizeof buf, "%s", named[i]);
        else snprintf(buf, sizeof buf, "[PAD%d]", n_text + i);
        char *t = strdup(buf);
        if (!t) { st = zm__err(ZM_ERR_NOMEM, "synth vocab"); goto out; }
        s.v[s.n++] = t; /* specials need no lookup */
        v->types[n_text + i] = 3;
    }
out:
    for (int k = 0; k < nw; k++) free(w[k].ids);
    free(s.slot);
    v->tokens = s.v;
    v->n_vocab = s.n;
    if (st != ZM_OK) zm__synth_vocab_free(v);
    return st;
}
