/* Tokenizer: known encodings of tricky text on hand-built vocabularies whose
 * ids follow from the merge list by hand (digits, runs of spaces and
 * newlines, contractions, CJK, emoji, combining marks, case splits), for the
 * qwen2, llama3 and o200k pre-tokenizers and the SentencePiece model; special
 * tokens, BOS/EOS; encode/decode round trips on random tricky text; invalid
 * UTF-8 (no crash, bytes round-trip); the streaming decoder (never a partial
 * character, always valid UTF-8); chat templates (exact strings); loading
 * from a GGUF written with the writer API; bad vocabularies.
 * The GPT-2 byte mapping is re-derived here the way the original Python
 * does it, independently of src/tokenizer.
 * Run: make && build/tests/test_tokenizer */
#include "harness.h"
#include "zmlx/tokenizer.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---- a hand-built byte-level vocabulary ---------------------------------------
enum { MAXTOK = 600, MAXM = 64 };
typedef struct {
    char *tok[MAXTOK];
    int32_t type[MAXTOK];
    float score[MAXTOK];
    int n;
    char *merge[MAXM];
    int nm;
} tv;

/* bytes_to_unicode() from GPT-2's encoder.py, transcribed */
static uint32_t b2u(uint8_t b) {
    int bs[256], cs[256], nb = 0, n = 0;
    for (int c = '!'; c <= '~'; c++) { bs[nb] = c; cs[nb++] = c; }
    for (int c = 0xa1; c <= 0xac; c++) { bs[nb] = c; cs[nb++] = c; }
    for (int c = 0xae; c <= 0xff; c++) { bs[nb] = c; cs[nb++] = c; }
    for (int c = 0; c < 256; c++) {
        int found = 0;
        for (int i = 0; i < nb && !found; i++) found = bs[i] == c;
        if (!found) { bs[nb] = c; cs[nb++] = 256 + n++; }
    }
    for (int i = 0; i < 256; i++)
        if (bs[i] == b) return (uint32_t)cs[i];
    return 0;
}

static char *mapped(const char *bytes, size_t n) {
    char *o = malloc(n * 2 + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = b2u((uint8_t)bytes[i]);
        if (c < 0x80) *p++ = (char)c;
        else { *p++ = (char)(0xc0 | (c >> 6)); *p++ = (char)(0x80 | (c & 0x3f)); }
    }
    *p = 0;
    return o;
}

static int add_raw(tv *v, const char *s, int type) {
    v->tok[v->n] = strdup(s);
    v->type[v->n] = type;
    v->score[v->n] = 0;
    return v->n++;
}

/* merge of two byte strings: adds the token a+b and the merge line */
static int M(tv *v, const char *a, const char *b) {
    char *ma = mapped(a, strlen(a)), *mb = mapped(b, strlen(b));
    size_t la = strlen(ma), lb = strlen(mb);
    char *line = malloc(la + lb + 2), *cat = malloc(la + lb + 1);
    sprintf(line, "%s %s", ma, mb);
    sprintf(cat, "%s%s", ma, mb);
    v->merge[v->nm++] = line;
    v->tok[v->n] = cat;
    v->type[v->n] = ZM_TOKEN_NORMAL;
    free(ma); free(mb);
    return v->n++;
}

static void tv_free(tv *v) {
    for (int i = 0; i < v->n; i++) free(v->tok[i]);
    for (int i = 0; i < v->nm; i++) free(v->merge[i]);
}

/* ids of the merged tokens, filled by bpe_vocab */
static int T_t, T_he, T_the, T_in, T_Gin, T_12, T_123, T_GG, T_NN, T_s, T_E4B8, T_shi, T_acute, T_eacute, T_oW,
    T_xyz, T_eot, T_ims, T_ime, T_tool, T_Gt;

static void bpe_vocab(tv *v) {
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) { /* id b = byte b */
        char c[2] = {(char)b, 0};
        v->tok[v->n] = mapped(c, 1);
        v->type[v->n++] = ZM_TOKEN_NORMAL;
    }
    T_Gt = M(v, " ", "t");
    T_he = M(v, "h", "e");
    T_the = M(v, " t", "he");
    T_in = M(v, "i", "n");
    T_Gin = M(v, " ", "in");
    T_12 = M(v, "1", "2");
    T_123 = M(v, "12", "3");
    T_GG = M(v, " ", " ");
    T_NN = M(v, "\n", "\n");
    T_s = M(v, "'", "s");
    T_E4B8 = M(v, "\xe4", "\xb8");
    T_shi = M(v, "\xe4\xb8", "\x96"); /* 世 */
    T_acute = M(v, "\xcc", "\x81");   /* U+0301 */
    T_eacute = M(v, "e", "\xcc\x81");
    T_oW = M(v, "o", "W");
    T_t = 't';
    char *x = mapped("xyz", 3);
    T_xyz = add_raw(v, x, ZM_TOKEN_NORMAL); /* reachable only as a whole word */
    free(x);
    T_eot = add_raw(v, "<|endoftext|>", ZM_TOKEN_CONTROL);
    T_ims = add_raw(v, "<|im_start|>", ZM_TOKEN_CONTROL);
    T_ime = add_raw(v, "<|im_end|>", ZM_TOKEN_CONTROL);
    T_tool = add_raw(v, "<tool>", ZM_TOKEN_USER_DEFINED);
}

static zm_tokenizer *make_bpe(tv *v, const char *pre) {
    zm_vocab_desc d;
    zm_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = pre;
    d.n_tokens = v->n;
    d.tokens = (const char *const *)v->tok;
    uint32_t lens[MAXTOK];
    for (int i = 0; i < v->n; i++) lens[i] = (uint32_t)strlen(v->tok[i]);
    d.token_lens = lens;
    d.token_types = v->type;
    d.n_merges = v->nm;
    d.merges = (const char *const *)v->merge;
    d.eos = T_eot;
    d.bos = T_eot;
    zm_tokenizer *t = NULL;
    ZT_OK(zm_tokenizer_new(&t, &d));
    return t;
}

static void expect(zm_tokenizer *t, const char *what, const char *text, int flags, const int *want, int nw) {
    int32_t *ids = NULL;
    int64_t n = -1;
    ZT_OK(zm_tokenizer_encode(t, text, strlen(text), flags, &ids, &n));
    int ok = n == nw;
    for (int i = 0; ok && i < nw; i++) ok = ids[i] == want[i];
    if (!ok) {
        char got[512] = "", exp[512] = "";
        for (int64_t i = 0; i < n && i < 40; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
        for (int i = 0; i < nw; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
        ZT_CHECK(0, "%s (%s): got [%s] want [%s]", what, zm_pretok_name(zm_tokenizer_pretok(t)), got, exp);
    }
    /* and back: byte-level BPE is lossless */
    char *back = NULL;
    size_t bl = 0;
    ZT_OK(zm_tokenizer_decode(t, ids, n, ZM_DEC_SPECIAL, &back, &bl));
    if (!(flags & ZM_ENC_ADD_SPECIAL))
        ZT_CHECK(back && bl == strlen(text) && !memcmp(back, text, bl), "%s: decode gives '%s'", what, back ? back : "(null)");
    free(back);
    free(ids);
}
#define EXPECT(t, what, text, flags, ...)                                                          \
    do {                                                                                           \
        const int w_[] = {__VA_ARGS__};                                                            \
        expect(t, what, text, flags, w_, (int)(sizeof w_ / sizeof w_[0]));                         \
    } while (0)

static void test_bpe_qwen2(void) {
    tv v;
    bpe_vocab(&v);
    zm_tokenizer *t = make_bpe(&v, "qwen2");
    if (!t) { tv_free(&v); return; }
    ZT_CHECK(zm_tokenizer_pretok(t) == ZM_PRETOK_QWEN2, "pre");
    EXPECT(t, "the", "the", 0, 't', T_he);                  /* "t he" is no merge, " t he" is */
    EXPECT(t, "leading space", " the", 0, T_the);
    EXPECT(t, "two words", "the then", 0, 't', T_he, T_the, 'n');
    EXPECT(t, "digits one by one", "12345", 0, '1', '2', '3', '4', '5');
    EXPECT(t, "run of spaces", "a   b", 0, 'a', T_GG, ' ', 'b');  /* "a" "  " " b" */
    EXPECT(t, "trailing spaces", "a  ", 0, 'a', T_GG);
    EXPECT(t, "newlines", "a\n\n\nb", 0, 'a', T_NN, '\n', 'b');
    EXPECT(t, "space before newline", "a \n b", 0, 'a', ' ', '\n', ' ', 'b');
    EXPECT(t, "contraction", "it's", 0, 'i', 't', T_s);
    EXPECT(t, "upper contraction", "IT'S", 0, 'I', 'T', '\'', 'S');
    EXPECT(t, "CJK", "\xe4\xb8\x96\xe7\x95\x8c", 0, T_shi, 0xe7, 0x95, 0x8c); /* 世界 */
    EXPECT(t, "emoji", "\xf0\x9f\x99\x82", 0, 0xf0, 0x9f, 0x99, 0x82);
    EXPECT(t, "space emoji", " \xf0\x9f\x99\x82!", 0, ' ', 0xf0, 0x9f, 0x99, 0x82, '!');
    /* combining acute after "cafe": a mark is no letter here, so it splits */
    EXPECT(t, "combining mark", "cafe\xcc\x81", 0, 'c', 'a', 'f', 'e', T_acute);
    EXPECT(t, "case run", "HelloWorld", 0, 'H', 'e', 'l', 'l', T_oW, 'o', 'r', 'l', 'd');
    EXPECT(t, "whole word not looked up", "xyz", 0, 'x', 'y', 'z');
    EXPECT(t, "in", " in", 0, T_Gin);
    int32_t *ids = NULL;
    int64_t n = -1;
    ZT_OK(zm_tokenizer_encode(t, "", 0, ZM_ENC_ADD_SPECIAL, &ids, &n));
    ZT_CHECK(n == 0 && ids != NULL, "empty text gives no ids (%lld)", (long long)n);
    free(ids);
    tv_free(&v);
    zm_tokenizer_free(t);
}

static void test_bpe_llama3_o200k(void) {
    tv v;
    bpe_vocab(&v);
    zm_tokenizer *l3 = make_bpe(&v, "llama-bpe"), *o = make_bpe(&v, "gpt-4o");
    if (!l3 || !o) { zm_tokenizer_free(l3); zm_tokenizer_free(o); tv_free(&v); return; }
    EXPECT(l3, "digits in threes", "12345", 0, T_123, '4', '5');
    EXPECT(o, "digits in threes", "1231234", 0, T_123, T_123, '4');
    EXPECT(l3, "whole word is a token", "xyz", 0, T_xyz);
    EXPECT(o, "merges only, as llama.cpp", "xyz", 0, 'x', 'y', 'z');
    EXPECT(l3, "case run", "HelloWorld", 0, 'H', 'e', 'l', 'l', T_oW, 'o', 'r', 'l', 'd');
    /* o200k splits before an upper-case letter that follows lower case */
    EXPECT(o, "case split", "HelloWorld", 0, 'H', 'e', 'l', 'l', 'o', 'W', 'o', 'r', 'l', 'd');
    /* o200k keeps marks inside the word */
    EXPECT(o, "combining mark", "cafe\xcc\x81", 0, 'c', 'a', 'f', T_eacute);
    EXPECT(l3, "combining mark", "cafe\xcc\x81", 0, 'c', 'a', 'f', 'e', T_acute);
    EXPECT(o, "contraction attached", "it's", 0, 'i', 't', T_s);
    EXPECT(l3, "contraction apart", "it's", 0, 'i', 't', T_s);
    EXPECT(o, "slash after punctuation", "!/x", 0, '!', '/', 'x');
    EXPECT(o, "newline run", "a\n\nb", 0, 'a', T_NN, 'b');
    EXPECT(l3, "spaces", "a   b", 0, 'a', T_GG, ' ', 'b');
    zm_tokenizer *q35 = make_bpe(&v, "qwen35"), *glm = make_bpe(&v, "glm4");
    if (q35) {
        EXPECT(q35, "qwen35 keeps marks in the word", "cafe\xcc\x81", 0, 'c', 'a', 'f', T_eacute);
        EXPECT(q35, "qwen35 digits one by one", "123", 0, '1', '2', '3');
        EXPECT(q35, "qwen35 lone mark after space", " \xcc\x81x", 0, ' ', T_acute, 'x');
    }
    if (glm) {
        EXPECT(glm, "glm4 digits in threes", "12345", 0, T_123, '4', '5');
        EXPECT(glm, "glm4 runs the merges", "xyz", 0, 'x', 'y', 'z');
        EXPECT(glm, "glm4 has no BOS", "a", ZM_ENC_ADD_SPECIAL, 'a');
    }
    zm_tokenizer_free(q35);
    zm_tokenizer_free(glm);
    zm_tokenizer_free(l3);
    zm_tokenizer_free(o);
    tv_free(&v);
}

static void test_specials(void) {
    tv v;
    bpe_vocab(&v);
    zm_tokenizer *t = make_bpe(&v, "qwen2");
    if (!t) { tv_free(&v); return; }
    EXPECT(t, "chat markers", "<|im_start|>user\nhi<|im_end|>", ZM_ENC_PARSE_SPECIAL, T_ims, 'u', 's', 'e', 'r', '\n',
           'h', 'i', T_ime);
    EXPECT(t, "markers as text", "<|im_end|>", 0, '<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>');
    EXPECT(t, "user-defined always", "a<tool>b", 0, 'a', T_tool, 'b');
    EXPECT(t, "longest special wins", "<|endoftext|><|im_start|>", ZM_ENC_PARSE_SPECIAL, T_eot, T_ims);
    /* BPE keeps BOS off unless the file says otherwise */
    EXPECT(t, "no BOS by default", "a", ZM_ENC_ADD_SPECIAL, 'a');
    ZT_CHECK(zm_tokenizer_is_eog(t, T_eot) && zm_tokenizer_is_eog(t, T_ime) && !zm_tokenizer_is_eog(t, T_ims) &&
             !zm_tokenizer_is_eog(t, 'a'), "end-of-generation set");
    ZT_CHECK(zm_tokenizer_chat_kind(t) == ZM_CHAT_CHATML, "<|im_start|> in the vocab means ChatML");
    /* control tokens are silent unless asked for */
    int32_t ids[3] = {T_ims, 'h', T_ime};
    char *s = NULL;
    size_t l;
    ZT_OK(zm_tokenizer_decode(t, ids, 3, 0, &s, &l));
    ZT_CHECK(s && !strcmp(s, "h"), "silent control tokens: '%s'", s ? s : "");
    free(s);
    ZT_CHECK(zm_tokenizer_decode(t, (int32_t[]){v.n}, 1, 0, &s, &l) == ZM_ERR_RANGE && !s, "id out of range");
    zm_tokenizer_free(t);

    zm_vocab_desc d;
    zm_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = "qwen2";
    d.n_tokens = v.n;
    d.tokens = (const char *const *)v.tok;
    d.token_types = v.type;
    d.n_merges = v.nm;
    d.merges = (const char *const *)v.merge;
    d.bos = T_ims;
    d.eos = T_eot;
    d.add_bos = 1;
    d.add_eos = 1;
    ZT_OK(zm_tokenizer_new(&t, &d));
    if (t) EXPECT(t, "BOS and EOS from flags", "a", ZM_ENC_ADD_SPECIAL, T_ims, 'a', T_eot);
    zm_tokenizer_free(t);
    tv_free(&v);
}

/* random text from tricky pieces, plus random bytes */
static const char *pieces[] = {"the", " the", "  ", "   ", "\n", "\n\n", "\r\n", "\t", "it's", "I'LL", "123", "45678",
    "\xe4\xb8\x96\xe7\x95\x8c", "\xe3\x81\x93\xe3\x82\x93", "\xf0\x9f\x99\x82", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
    "e\xcc\x81", "\xc3\xa9", "HelloWorld", "x", "<|im_end|>", "<tool>", "!/", "\xd9\x85\xd8\xb1", " \xe2\x80\x94 ",
    "\xc2\xa0", "\xe2\x80\xa8", "ABC", "_", "\xef\xbc\x91"};

static size_t rand_text(char *buf, size_t cap, int bytes) {
    size_t n = 0;
    int k = 1 + (int)(zt_rand_u64() % 20);
    for (int i = 0; i < k; i++) {
        if (bytes && zt_rand_u64() % 4 == 0) {
            if (n + 1 < cap) buf[n++] = (char)(zt_rand_u64() & 0xff);
            continue;
        }
        const char *p = pieces[zt_rand_u64() % (sizeof pieces / sizeof pieces[0])];
        size_t l = strlen(p);
        if (n + l < cap) { memcpy(buf + n, p, l); n += l; }
    }
    return n;
}

static int valid_utf8(const char *s, size_t n) { return zm_utf8_valid_prefix(s, n) == n; }

static void roundtrip(zm_tokenizer *t, const char *what, int bytes, int exact) {
    char buf[512];
    for (int it = 0; it < 400 && !zt_failed_now(); it++) {
        size_t n = rand_text(buf, sizeof buf, bytes);
        int32_t *ids = NULL;
        int64_t ni = 0;
        ZT_OK(zm_tokenizer_encode(t, buf, n, ZM_ENC_PARSE_SPECIAL, &ids, &ni));
        char *back = NULL;
        size_t bl = 0;
        ZT_OK(zm_tokenizer_decode(t, ids, ni, ZM_DEC_SPECIAL, &back, &bl));
        if (exact) ZT_CHECK(back && bl == n && !memcmp(back, buf, n), "%s: round trip of %zu bytes gave %zu", what, n, bl);
        /* streaming decode: valid UTF-8 always; equal to the text when it was valid */
        zm_detok *d = NULL;
        ZT_OK(zm_detok_new(&d, t, ZM_DEC_SPECIAL));
        char *st = malloc(n * 3 + 64);
        size_t sl = 0;
        for (int64_t i = 0; i < ni && d; i++) {
            const char *s;
            size_t l;
            ZT_OK(zm_detok_push(d, ids[i], &s, &l));
            ZT_CHECK(valid_utf8(s, l), "%s: streamed piece %lld is not valid UTF-8", what, (long long)i);
            memcpy(st + sl, s, l);
            sl += l;
        }
        const char *s = "";
        size_t l = 0;
        if (d) ZT_OK(zm_detok_flush(d, &s, &l));
        memcpy(st + sl, s, l);
        sl += l;
        ZT_CHECK(valid_utf8(st, sl), "%s: streamed text is not valid UTF-8", what);
        if (valid_utf8(buf, n) && exact) ZT_CHECK(sl == n && !memcmp(st, buf, n), "%s: streamed text differs", what);
        free(st);
        zm_detok_free(d);
        free(back);
        free(ids);
    }
}

static void test_roundtrips(void) {
    tv v;
    bpe_vocab(&v);
    const char *pres[] = {"qwen2", "llama-bpe", "gpt-4o", "default"};
    for (int i = 0; i < 4; i++) {
        zm_tokenizer *t = make_bpe(&v, pres[i]);
        if (!t) continue;
        roundtrip(t, pres[i], 0, 1);
        roundtrip(t, pres[i], 1, 1); /* invalid UTF-8: byte-level BPE still round-trips */
        zm_tokenizer_free(t);
    }
    tv_free(&v);
}

static void test_streaming_decoder(void) {
    tv v;
    bpe_vocab(&v);
    zm_tokenizer *t = make_bpe(&v, "qwen2");
    zm_detok *d = NULL;
    if (t) ZT_OK(zm_detok_new(&d, t, 0));
    if (!d) { zm_tokenizer_free(t); tv_free(&v); return; }
    const char *s;
    size_t l;
    ZT_OK(zm_detok_push(d, 'a', &s, &l));
    ZT_CHECK(l == 1 && s[0] == 'a', "ascii comes out at once");
    ZT_OK(zm_detok_push(d, T_E4B8, &s, &l)); /* first two bytes of 世 */
    ZT_CHECK(l == 0, "half a character must be held back (got %zu bytes)", l);
    ZT_OK(zm_detok_push(d, 0x96, &s, &l));
    ZT_CHECK(l == 3 && !memcmp(s, "\xe4\xb8\x96", 3), "the completed character comes out whole");
    ZT_OK(zm_detok_push(d, 0xff, &s, &l));
    ZT_CHECK(l == 3 && !memcmp(s, "\xef\xbf\xbd", 3), "an impossible byte becomes U+FFFD");
    ZT_OK(zm_detok_push(d, 0xe4, &s, &l));
    ZT_CHECK(l == 0, "lead byte held");
    ZT_OK(zm_detok_push(d, 'b', &s, &l));
    ZT_CHECK(l == 4 && !memcmp(s, "\xef\xbf\xbd" "b", 4), "a broken sequence becomes U+FFFD then the byte");
    ZT_OK(zm_detok_push(d, 0xf0, &s, &l));
    ZT_OK(zm_detok_push(d, 0x9f, &s, &l));
    ZT_CHECK(l == 0, "4-byte prefix held");
    ZT_OK(zm_detok_flush(d, &s, &l));
    ZT_CHECK(l > 0 && valid_utf8(s, l), "flush turns the held prefix into U+FFFD");
    ZT_CHECK(zm_detok_push(d, -1, &s, &l) == ZM_ERR_RANGE, "bad id");
    zm_detok_free(d);
    zm_tokenizer_free(t);
    tv_free(&v);
}

static void test_invalid_utf8_no_crash(void) {
    tv v;
    bpe_vocab(&v);
    const char *pres[] = {"qwen2", "llama-bpe", "gpt-4o", "default"};
    char buf[300];
    for (int i = 0; i < 4; i++) {
        zm_tokenizer *t = make_bpe(&v, pres[i]);
        if (!t) continue;
        for (int it = 0; it < 300; it++) {
            size_t n = zt_rand_u64() % sizeof buf;
            for (size_t k = 0; k < n; k++) buf[k] = (char)(zt_rand_u64() & 0xff);
            int32_t *ids = NULL;
            int64_t ni = 0;
            ZT_OK(zm_tokenizer_encode(t, buf, n, ZM_ENC_PARSE_SPECIAL, &ids, &ni));
            char *back = NULL;
            size_t bl;
            ZT_OK(zm_tokenizer_decode(t, ids, ni, ZM_DEC_SPECIAL, &back, &bl));
            ZT_CHECK(bl == n && !memcmp(back, buf, n), "%s: random bytes do not round-trip", pres[i]);
            free(back);
            free(ids);
            if (zt_failed_now()) break;
        }
        /* truncated sequences at the very end and a lone continuation byte */
        const char *odd[] = {"\xe4\xb8", "a\xf0\x9f\x99", "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
        for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
            int32_t *ids = NULL;
            int64_t ni = 0;
            ZT_OK(zm_tokenizer_encode(t, odd[k], strlen(odd[k]), 0, &ids, &ni));
            ZT_CHECK(ni == (int64_t)strlen(odd[k]), "%s: odd input %zu gave %lld ids", pres[i], k, (long long)ni);
            free(ids);
        }
        zm_tokenizer_free(t);
    }
    tv_free(&v);
}

// ---- SentencePiece ------------------------------------------------------------
static void test_spm(void) {
    tv v;
    memset(&v, 0, sizeof v);
    add_raw(&v, "<unk>", ZM_TOKEN_UNKNOWN);
    int bos = add_raw(&v, "<s>", ZM_TOKEN_CONTROL), eos = add_raw(&v, "</s>", ZM_TOKEN_CONTROL);
    int byte0 = v.n;
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        add_raw(&v, s, ZM_TOKEN_BYTE);
    }
    struct { const char *s; float sc; } pcs[] = {
        {"\xe2\x96\x81", -5}, {"t", -6}, {"h", -6}, {"e", -6}, {"c", -6}, {"a", -6},
        {"\xe2\x96\x81t", -1}, {"he", -2}, {"\xe2\x96\x81the", -0.5f}, {"at", -3}, {"\xe2\x96\x81" "c", -4},
        {"\xe2\x96\x81" "cat", -1.5f}, {"\xe4\xb8\x96", -3}};
    int id[16];
    for (size_t i = 0; i < sizeof pcs / sizeof pcs[0]; i++) {
        id[i] = add_raw(&v, pcs[i].s, ZM_TOKEN_NORMAL);
        v.score[id[i]] = pcs[i].sc;
    }
    zm_vocab_desc d;
    zm_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = v.n;
    d.tokens = (const char *const *)v.tok;
    d.token_types = v.type;
    d.scores = v.score;
    d.bos = bos;
    d.eos = eos;
    d.unk = 0;
    zm_tokenizer *t = NULL;
    ZT_OK(zm_tokenizer_new(&t, &d));
    if (!t) { tv_free(&v); return; }
    ZT_CHECK(zm_tokenizer_add_bos(t), "SentencePiece adds BOS by default");
    /* ▁t(-1) then he(-2) then ▁the(-0.5), at(-3), ▁c(-4), ▁cat(-1.5) */
    int32_t *ids = NULL;
    int64_t n = 0;
    ZT_OK(zm_tokenizer_encode(t, "the cat", 7, ZM_ENC_ADD_SPECIAL, &ids, &n));
    ZT_CHECK(n == 3 && ids[0] == bos && ids[1] == id[8] && ids[2] == id[11], "'the cat' -> %lld ids [%d %d %d]",
             (long long)n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1);
    char *s = NULL;
    size_t l = 0;
    if (n == 3) ZT_OK(zm_tokenizer_decode(t, ids, n, 0, &s, &l));
    ZT_CHECK(s && !strcmp(s, "the cat"), "decode drops BOS and the prefixed space: '%s'", s ? s : "");
    free(s);
    free(ids);
    /* é is no token: byte fallback; 世 is a token */
    ZT_OK(zm_tokenizer_encode(t, "\xc3\xa9\xe4\xb8\x96", 5, 0, &ids, &n));
    ZT_CHECK(n == 4 && ids[0] == id[0] && ids[1] == byte0 + 0xc3 && ids[2] == byte0 + 0xa9 && ids[3] == id[12],
             "byte fallback: %lld ids", (long long)n);
    if (n == 4) {
        ZT_OK(zm_tokenizer_decode(t, ids, n, 0, &s, &l));
        ZT_CHECK(s && !strcmp(s, "\xc3\xa9\xe4\xb8\x96"), "byte fallback decodes back");
        free(s);
    }
    free(ids);
    /* a space after a control token is prefixed again (llama.cpp) */
    ZT_OK(zm_tokenizer_encode(t, "</s>the", 7, ZM_ENC_PARSE_SPECIAL, &ids, &n));
    ZT_CHECK(n == 2 && ids[0] == eos && ids[1] == id[8], "space prefix after a special: %lld ids", (long long)n);
    free(ids);
    /* random text: streaming decode is valid UTF-8 and equals plain decode */
    roundtrip(t, "spm", 1, 0);
    char buf[256];
    for (int it = 0; it < 200 && !zt_failed_now(); it++) {
        size_t bn = rand_text(buf, sizeof buf, 0);
        if (!bn || buf[0] == ' ') continue;
        if (memchr(buf, '<', bn)) continue; /* no specials here */
        ZT_OK(zm_tokenizer_encode(t, buf, bn, 0, &ids, &n));
        ZT_OK(zm_tokenizer_decode(t, ids, n, 0, &s, &l));
        ZT_CHECK(s && l == bn && !memcmp(s, buf, bn), "spm round trip of '%.*s' gave '%s'", (int)bn, buf, s ? s : "");
        free(s);
        free(ids);
    }
    zm_tokenizer_free(t);
    tv_free(&v);
}

// ---- chat templates -----------------------------------------------------------
static void test_chat(void) {
    zm_chat_msg m[3] = {{"system", "Be brief."}, {"user", "Hi!"}, {"assistant", "Hello."}};
    char *s = NULL;
    ZT_OK(zm_chat_format(ZM_CHAT_CHATML, m, 2, 1, &s));
    ZT_CHECK(s && !strcmp(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
                             "<|im_start|>assistant\n"), "chatml: %s", s ? s : "");
    free(s);
    setenv("ZMLX_CHAT_DATE", "2025-08-05", 1);
    ZT_OK(zm_chat_format(ZM_CHAT_HARMONY, m, 3, 1, &s));
    const char *want =
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nBe brief.\n\n<|end|>"
        "<|start|>user<|message|>Hi!<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello.<|end|>"
        "<|start|>assistant";
    ZT_CHECK(s && !strcmp(s, want), "harmony:\n%s", s ? s : "");
    free(s);
    unsetenv("ZMLX_CHAT_DATE");
    ZT_CHECK(zm_chat_format(ZM_CHAT_NONE, m, 1, 1, &s) == ZM_ERR_UNSUPPORTED && !s, "no template");
    zm_chat_msg bad = {"user", NULL};
    ZT_CHECK(zm_chat_format(ZM_CHAT_CHATML, &bad, 1, 1, &s) == ZM_ERR_INVALID, "NULL content");
    ZT_CHECK(zm_chat_kind_parse("harmony") == ZM_CHAT_HARMONY && zm_chat_kind_parse("qwen3") == ZM_CHAT_CHATML &&
             zm_chat_kind_parse("nope") == -1, "kind names");
}

// ---- bad vocabularies ---------------------------------------------------------
static void test_bad_vocab(void) {
    tv v;
    bpe_vocab(&v);
    zm_vocab_desc d;
    zm_vocab_desc_init(&d);
    d.model = "gpt2";
    d.n_tokens = v.n;
    d.tokens = (const char *const *)v.tok;
    zm_tokenizer *t = (zm_tokenizer *)1;
    d.pre = "klingon";
    ZT_CHECK(zm_tokenizer_new(&t, &d) == ZM_ERR_UNSUPPORTED && !t, "unknown pre-tokenizer");
    ZT_CHECK(strstr(zm_last_error(), "klingon") != NULL, "message names it: %s", zm_last_error());
    d.pre = NULL;
    d.model = "wordpiece";
    ZT_CHECK(zm_tokenizer_new(&t, &d) == ZM_ERR_UNSUPPORTED && !t, "unknown model");
    d.model = "gpt2";
    d.eos = v.n + 5;
    ZT_CHECK(zm_tokenizer_new(&t, &d) == ZM_ERR_FORMAT && !t, "EOS out of range");
    d.eos = -1;
    d.n_tokens = 0;
    ZT_CHECK(zm_tokenizer_new(&t, &d) == ZM_ERR_FORMAT && !t, "empty vocabulary");
    /* no byte tokens at all and no <unk>: a clear error, not a crash */
    const char *few[] = {"a", "b"};
    d.n_tokens = 2;
    d.tokens = few;
    ZT_OK(zm_tokenizer_new(&t, &d));
    int32_t *ids = NULL;
    int64_t n;
    if (t) ZT_CHECK(zm_tokenizer_encode(t, "abc", 3, 0, &ids, &n) == ZM_ERR_UNSUPPORTED && !ids, "byte without token");
    zm_tokenizer_free(t);
    tv_free(&v);
}

// ---- GGUF ---------------------------------------------------------------------
static void test_gguf_load(void) {
    tv v;
    bpe_vocab(&v);
    char path[] = "/tmp/zmlx_tok_XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    if (fd < 0) { zt_skip("no temp file"); tv_free(&v); return; }
    close(fd);
    zm_gguf_writer *w = NULL;
    ZT_OK(zm_gguf_writer_new(&w));
    if (!w) { tv_free(&v); return; }
    ZT_OK(zm_gguf_set_str(w, "general.architecture", "qwen3moe"));
    ZT_OK(zm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"));
    ZT_OK(zm_gguf_set_str(w, "tokenizer.ggml.pre", "qwen2"));
    ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, (uint64_t)v.n));
    ZT_OK(zm_gguf_set_arr(w, "tokenizer.ggml.token_type", ZM_GGUF_I32, v.type, (uint64_t)v.n));
    ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merge, (uint64_t)v.nm));
    ZT_OK(zm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)T_ime));
    ZT_OK(zm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)T_eot));
    ZT_OK(zm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    ZT_OK(zm_gguf_write(w, path, NULL, NULL, NULL));
    zm_gguf_writer_free(w);
    zm_tokenizer *t = NULL;
    ZT_OK(zm_tokenizer_open(&t, path));
    if (t) {
        ZT_CHECK(zm_tokenizer_n_vocab(t) == v.n && zm_tokenizer_eos(t) == T_ime && zm_tokenizer_bos(t) == T_eot,
                 "vocab size / ids from the file");
        EXPECT(t, "from GGUF", " the 12 it's<|im_end|>", ZM_ENC_ADD_SPECIAL | ZM_ENC_PARSE_SPECIAL, T_eot, T_the, ' ',
               '1', '2', ' ', 'i', 't', T_s, T_ime);
        ZT_CHECK(zm_tokenizer_chat_kind(t) == ZM_CHAT_CHATML, "qwen3moe -> ChatML");
    }
    zm_tokenizer_free(t);
    ZT_CHECK(zm_tokenizer_open(&t, "/nonexistent/x.gguf") != ZM_OK && !t, "missing file");
    /* a GGUF without a tokenizer */
    ZT_OK(zm_gguf_writer_new(&w));
    if (w) {
        ZT_OK(zm_gguf_set_str(w, "general.architecture", "qwen3moe"));
        ZT_OK(zm_gguf_write(w, path, NULL, NULL, NULL));
        zm_gguf_writer_free(w);
        ZT_CHECK(zm_tokenizer_open(&t, path) == ZM_ERR_NOT_FOUND && !t, "no tokenizer keys: %s", zm_last_error());
    }
    remove(path);
    tv_free(&v);
}

int main(void) {
    ZT_RUN(test_bpe_qwen2);
    ZT_RUN(test_bpe_llama3_o200k);
    ZT_RUN(test_specials);
    ZT_RUN(test_roundtrips);
    ZT_RUN(test_streaming_decoder);
    ZT_RUN(test_invalid_utf8_no_crash);
    ZT_RUN(test_spm);
    ZT_RUN(test_chat);
    ZT_RUN(test_bad_vocab);
    ZT_RUN(test_gguf_load);
    return zt_finish();
}
