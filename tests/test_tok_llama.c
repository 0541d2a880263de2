/* Cross-check of the tokenizer against llama.cpp 0.5.0 (the system users of
 * GGUF files already trust): the vocabulary `zmlx synth --preset small`
 * writes (4096 byte-level BPE tokens, trained merges, ChatML specials) is
 * written into vocabulary-only GGUFs with the pre-tokenizer set to qwen2,
 * llama-bpe and gpt-4o, plus a SentencePiece (`llama` model) vocabulary
 * derived from it (scores, <0xXX> byte fallback, ▁). llama.cpp loads each
 * (vocab_only) and tokenizes a varied corpus through llama_tokenize; zmlx
 * must give identical ids, with and without special-token parsing and BOS.
 * tests/crosscheck/llama_tok/run.sh fetches llama.cpp from npm (cached in
 * build/llama, shared with tests/crosscheck/llama.sh); SKIPPED when npm does
 * not answer. Run: make && build/tests/test_tok_llama  ($ZMLX_BUILD) */
#include "harness.h"
#include "zmlx/gguf.h"
#include "zmlx/synth.h"
#include "zmlx/tokenizer.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *B;
static char L[512];

typedef struct {
    char **tok;
    int32_t *type;
    float *score;
    int n;
    char **merge;
    int nm;
    int32_t bos, eos;
} vocab;

static void vocab_free(vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->tok[i]);
    for (int i = 0; i < v->nm; i++) free(v->merge[i]);
    free(v->tok); free(v->type); free(v->score); free(v->merge);
    memset(v, 0, sizeof *v);
}

/* the tokenizer arrays of a GGUF written by zmlx synth */
static int read_vocab(const char *path, vocab *v) {
    zm_gguf *g = NULL;
    ZT_OK(zm_gguf_open(&g, path));
    if (!g) return 0;
    zm_gguf_type et;
    uint64_t n = 0, nm = 0;
    ZT_OK(zm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n));
    ZT_OK(zm_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &nm));
    v->n = (int)n;
    v->nm = (int)nm;
    v->tok = calloc(n, sizeof *v->tok);
    v->type = calloc(n, sizeof *v->type);
    v->merge = calloc(nm + 1, sizeof *v->merge);
    int64_t *ty = calloc(n, sizeof *ty);
    ZT_OK(zm_gguf_get_arr_i64(g, "tokenizer.ggml.token_type", 0, n, ty));
    for (uint64_t i = 0; i < n; i++) {
        const char *s;
        uint64_t l;
        ZT_OK(zm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s, &l));
        v->tok[i] = strndup(s, l);
        v->type[i] = (int32_t)ty[i];
    }
    for (uint64_t i = 0; i < nm; i++) {
        const char *s;
        uint64_t l;
        ZT_OK(zm_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &l));
        v->merge[i] = strndup(s, l);
    }
    uint32_t b = 0, e = 0;
    ZT_OK(zm_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &b));
    ZT_OK(zm_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &e));
    v->bos = (int32_t)b;
    v->eos = (int32_t)e;
    free(ty);
    zm_gguf_free(g);
    return !zt_failed_now();
}

/* vocabulary-only GGUF that llama.cpp loads with vocab_only (arch "llama"
 * with minimal hyper-parameters; the tokenizer does not depend on them) */
static int write_variant(const char *path, const char *model, const char *pre, const vocab *v, int add_bos) {
    zm_gguf_writer *w = NULL;
    ZT_OK(zm_gguf_writer_new(&w));
    if (!w) return 0;
    ZT_OK(zm_gguf_set_str(w, "general.architecture", "llama"));
    ZT_OK(zm_gguf_set_u32(w, "llama.context_length", 512));
    ZT_OK(zm_gguf_set_u32(w, "llama.embedding_length", 64));
    ZT_OK(zm_gguf_set_u32(w, "llama.block_count", 1));
    ZT_OK(zm_gguf_set_u32(w, "llama.feed_forward_length", 128));
    ZT_OK(zm_gguf_set_u32(w, "llama.attention.head_count", 4));
    ZT_OK(zm_gguf_set_u32(w, "llama.attention.head_count_kv", 4));
    ZT_OK(zm_gguf_set_u32(w, "llama.rope.dimension_count", 16));
    ZT_OK(zm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f));
    ZT_OK(zm_gguf_set_str(w, "tokenizer.ggml.model", model));
    if (pre) ZT_OK(zm_gguf_set_str(w, "tokenizer.ggml.pre", pre));
    ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, (uint64_t)v->n));
    ZT_OK(zm_gguf_set_arr(w, "tokenizer.ggml.token_type", ZM_GGUF_I32, v->type, (uint64_t)v->n));
    if (v->score) ZT_OK(zm_gguf_set_arr(w, "tokenizer.ggml.scores", ZM_GGUF_F32, v->score, (uint64_t)v->n));
    if (v->nm) ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merge, (uint64_t)v->nm));
    ZT_OK(zm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos));
    ZT_OK(zm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos));
    ZT_OK(zm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos));
    ZT_OK(zm_gguf_write(w, path, NULL, NULL, NULL));
    zm_gguf_writer_free(w);
    return !zt_failed_now();
}

/* SentencePiece vocabulary from the BPE one: <unk> <s> </s>, 256 byte
 * tokens, then every BPE token whose bytes are valid UTF-8 as a piece (space
 * -> ▁) scored by merge order, then the control tokens */
static void make_spm(const vocab *bpe, zm_tokenizer *bt, vocab *v) {
    memset(v, 0, sizeof *v);
    int cap = bpe->n + 300;
    v->tok = calloc((size_t)cap, sizeof *v->tok);
    v->type = calloc((size_t)cap, sizeof *v->type);
    v->score = calloc((size_t)cap, sizeof *v->score);
    v->merge = calloc(1, sizeof *v->merge);
    const char *head[3] = {"<unk>", "<s>", "</s>"};
    int hty[3] = {ZM_TOKEN_UNKNOWN, ZM_TOKEN_CONTROL, ZM_TOKEN_CONTROL};
    for (int i = 0; i < 3; i++) { v->tok[v->n] = strdup(head[i]); v->type[v->n++] = hty[i]; }
    for (int b = 0; b < 256; b++) {
        v->tok[v->n] = malloc(8);
        snprintf(v->tok[v->n], 8, "<0x%02X>", b);
        v->type[v->n++] = ZM_TOKEN_BYTE;
    }
    for (int i = 0; i < bpe->n; i++) {
        if (bpe->type[i] != ZM_TOKEN_NORMAL) continue;
        char *s = NULL;
        size_t l = 0;
        zm_tokenizer_decode(bt, &i, 1, ZM_DEC_SPECIAL, &s, &l);
        if (s && l && zm_utf8_valid_prefix(s, l) == l) {
            char *p = malloc(l * 3 + 1), *q = p;
            for (size_t k = 0; k < l; k++) {
                if (s[k] == ' ') { memcpy(q, "\xe2\x96\x81", 3); q += 3; }
                else *q++ = s[k];
            }
            *q = 0;
            int dup = 0;
            for (int j = 259; j < v->n && !dup; j++) dup = !strcmp(v->tok[j], p);
            if (!dup) { v->tok[v->n] = p; v->score[v->n] = -(float)i; v->type[v->n++] = ZM_TOKEN_NORMAL; }
            else free(p);
        }
        free(s);
    }
    for (int i = 0; i < bpe->n; i++)
        if (bpe->type[i] == ZM_TOKEN_CONTROL && strcmp(bpe->tok[i], "<s>") && strcmp(bpe->tok[i], "</s>")) {
            v->tok[v->n] = strdup(bpe->tok[i]);
            v->type[v->n++] = ZM_TOKEN_CONTROL;
        }
    v->bos = 1;
    v->eos = 2;
}

// ---- corpus ---------------------------------------------------------------------
static const char *fixed[] = {
    "Hello world", " leading space", "trailing space ", "  two  spaces  ", "a   b    c", "tabs\tand\t\ttabs",
    "line\nbreaks\n\n\nmany", "crlf\r\nline\r\n", "\n\n\n", "   \n   \n", "it's I'm we're they've he'd you'll",
    "IT'S DON'T Don'T", "12345 1234567890 3.14159 1,000,000 -42", "HelloWorld camelCase snake_case XMLHttpRequest",
    "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!", "caf\xc3\xa9 na\xc3\xafve", "cafe\xcc\x81 nai\xcc\x88ve",
    "\xf0\x9f\x99\x82 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7",
    "def f(x):\n    return x * 2  # double\n", "{\"key\": [1, 2, 3], \"n\": null}", "https://example.com/a?b=1&c=2",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", "a<|endoftext|>b", "<|im_end|> <|im_end|>x",
    "mixed\xc2\xa0nbsp\xe2\x80\x89thin\xe3\x80\x80ideo", "!!!???...", "((()))[[[]]]", "x", "",
};

static const char *pieces[] = {"the", " the", "  ", "   ", "\n", "\n\n", "\r\n", "\t", "it's", "I'LL", "123", "45678",
    "\xe4\xb8\x96\xe7\x95\x8c", "\xe3\x81\x93\xe3\x82\x93", "\xf0\x9f\x99\x82", "e\xcc\x81", "\xc3\xa9", "HelloWorld", "x",
    "<|im_end|>", "<|im_start|>", "!/", "\xd9\x85\xd8\xb1", " \xe2\x80\x94 ", "ABC", "_", "world", " of", "ing", ",", ".",
    "\xc2\xa0", "\xce\xb1\xce\xb2", " 2025", "?!", "'s", "'S"};

typedef struct { char *text; size_t len; } item;

static int corpus(item **out) {
    int n = 0, cap = 2000;
    item *c = calloc((size_t)cap, sizeof *c);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) { c[n].text = strdup(fixed[i]); c[n].len = strlen(fixed[i]); n++; }
    uint64_t s = 99;
    while (n < 500) {
        char buf[400];
        size_t l = 0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int k = 1 + (int)((s >> 33) % 24);
        for (int i = 0; i < k; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = pieces[(s >> 33) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (l + pl < sizeof buf) { memcpy(buf + l, p, pl); l += pl; }
        }
        c[n].text = strndup(buf, l);
        c[n].len = l;
        n++;
    }
    *out = c;
    return n;
}

/* run llama_tokenize on every text with flags; results[i] = "ids" line */
static char **llama_ids(const char *gguf, const item *c, int n, int flags) {
    char in[700], outp[700], cmd[4096];
    snprintf(in, sizeof in, "%s/tok_cases.txt", L);
    snprintf(outp, sizeof outp, "%s/tok_out.txt", L);
    FILE *f = fopen(in, "w");
    if (!f) return NULL;
    for (int i = 0; i < n; i++) {
        fprintf(f, "%d ", flags);
        for (size_t k = 0; k < c[i].len; k++) fprintf(f, "%02x", (unsigned char)c[i].text[k]);
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s/llama_tokenize' -m '%s' --libdir '%s/lib' < '%s' > '%s'", L, gguf, L, in, outp);
    int rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc)) return NULL;
    f = fopen(outp, "r");
    if (!f) return NULL;
    char **r = calloc((size_t)n, sizeof *r);
    char *line = malloc(1 << 20);
    int i = 0;
    while (i < n && fgets(line, 1 << 20, f)) {
        if (!strncmp(line, "n_vocab:", 8)) continue;
        line[strcspn(line, "\n")] = 0;
        r[i++] = strdup(line);
    }
    free(line);
    fclose(f);
    return r;
}

static void compare(const char *name, const char *gguf, const item *c, int n) {
    zm_tokenizer *t = NULL;
    ZT_OK(zm_tokenizer_open(&t, gguf));
    if (!t) return;
    int bad = 0, total = 0;
    for (int flags = 0; flags <= 3; flags += 3) {
        char **ref = llama_ids(gguf, c, n, flags);
        ZT_CHECK(ref != NULL, "%s: llama_tokenize failed on %s", name, gguf);
        if (!ref) break;
        for (int i = 0; i < n; i++) {
            int32_t *ids = NULL;
            int64_t k = 0;
            int zf = (flags & 1 ? ZM_ENC_PARSE_SPECIAL : 0) | (flags & 2 ? ZM_ENC_ADD_SPECIAL : 0);
            ZT_OK(zm_tokenizer_encode(t, c[i].text, c[i].len, zf, &ids, &k));
            char *mine = malloc((size_t)k * 12 + 2), *p = mine;
            p += sprintf(p, "%s", k ? "" : "-");
            for (int64_t j = 0; j < k; j++) p += sprintf(p, "%s%d", j ? "," : "", ids[j]);
            total++;
            if (!ref[i] || strcmp(ref[i], mine)) {
                if (++bad <= 6)
                    ZT_CHECK(0, "%s flags %d: '%.50s'\n      zmlx      %.160s\n      llama.cpp %.160s", name, flags, c[i].text, mine,
                             ref[i] ? ref[i] : "(none)");
            }
            free(mine);
            free(ids);
            free(ref[i]);
        }
        free(ref);
    }
    ZT_CHECK(bad == 0, "%s: %d of %d encodings differ from llama.cpp", name, bad, total);
    printf("llama.cpp %-10s %d encodings, %d identical\n", name, total, total - bad);
    zm_tokenizer_free(t);
}

static void test_vs_llama_cpp(void) {
    B = getenv("ZMLX_BUILD") ? getenv("ZMLX_BUILD") : "build";
    if (access("tests/crosscheck/llama_tok/run.sh", R_OK)) { zt_skip("not run from the repository root"); return; }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "sh tests/crosscheck/llama_tok/run.sh '%s'", B);
    int rc = system(cmd);
    rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
    if (rc == 77) { zt_skip("llama.cpp from npm unavailable"); return; }
    ZT_CHECK(rc == 0, "llama_tok/run.sh failed (%d)", rc);
    if (rc) return;
    snprintf(L, sizeof L, "%s/llama", B);
    char src[700], path[700];
    snprintf(src, sizeof src, "%s/synth_small_tok.gguf", L);
    zm_synth_opts so = {.preset = "small", .type = ZM_Q4_0, .seed = 1, .n_layer = 1};
    ZT_OK(zm_synth_write(src, &so));
    vocab v = {0}, spm = {0};
    if (!read_vocab(src, &v)) { vocab_free(&v); return; }
    item *c = NULL;
    int n = corpus(&c);
    const char *pres[6] = {"qwen2", "llama-bpe", "gpt-4o", "qwen35", "glm4", "lfm2"};
    zm_tokenizer *bt = NULL;
    for (int i = 0; i < 6 && !zt_failed_now(); i++) {
        snprintf(path, sizeof path, "%s/tok_%s.gguf", L, pres[i]);
        if (write_variant(path, "gpt2", pres[i], &v, i == 1 || i == 5)) compare(pres[i], path, c, n);
        if (i == 0) zm_tokenizer_open(&bt, path);
    }
    if (bt && !zt_failed_now()) {
        make_spm(&v, bt, &spm);
        snprintf(path, sizeof path, "%s/tok_spm.gguf", L);
        if (write_variant(path, "llama", NULL, &spm, 1)) compare("spm", path, c, n);
    }
    zm_tokenizer_free(bt);
    for (int i = 0; i < n; i++) free(c[i].text);
    free(c);
    vocab_free(&v);
    vocab_free(&spm);
}

int main(void) {
    ZT_RUN(test_vs_llama_cpp);
    return zt_finish();
}
