/* libFuzzer target for the tokenizer. The first byte picks what is hostile:
 *   0-3  text through byte-level BPE (gpt2, qwen2, llama3, o200k regexes):
 *        must round-trip exactly; the streaming decoder must emit valid UTF-8
 *   4    text through SentencePiece (byte fallback)
 *   5    the rest is a GGUF file: zm_gguf_open_mem + zm_tokenizer_load, then
 *        encode/decode with whatever vocabulary it holds
 *   6    the rest is a vocabulary: lines are tokens (first half) and merges
 *        (second half), with random types; then it encodes itself
 * Any crash, leak, sanitizer report or broken invariant (trap) is a bug.
 * Run: make fuzz (or build/fuzz/fuzz_tokenizer -max_total_time=60). */
#include "zmlx/gguf.h"
#include "zmlx/tokenizer.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static zm_tokenizer *tk[5];

static char *mapped1(int b) { /* GPT-2 byte -> its visible character */
    int n = 0, c;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) c = b;
    else {
        for (int x = 0; x < b; x++) n += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
        c = 256 + n;
    }
    char *o = malloc(3);
    if (c < 0x80) { o[0] = (char)c; o[1] = 0; }
    else { o[0] = (char)(0xc0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3f)); o[2] = 0; }
    return o;
}

static void build(void) {
    static const char *pres[4] = {"gpt2", "qwen2", "llama3", "gpt-4o"};
    char *tok[300];
    int32_t type[300];
    int n = 0;
    for (int b = 0; b < 256; b++) { tok[n] = mapped1(b); type[n++] = ZM_TOKEN_NORMAL; }
    const char *extra[] = {"Ġt", "he", "Ġthe", "in", "ĠĠ", "ĊĊ", "12", "123", "<|im_end|>", "<tool>"};
    const char *merges[] = {"Ġ t", "h e", "Ġt he", "i n", "Ġ Ġ", "Ċ Ċ", "1 2", "12 3", "ĠĠ ĠĠ"};
    for (int i = 0; i < 10; i++) { tok[n] = strdup(extra[i]); type[n++] = i == 8 ? ZM_TOKEN_CONTROL : i == 9 ? ZM_TOKEN_USER_DEFINED : ZM_TOKEN_NORMAL; }
    zm_vocab_desc d;
    for (int p = 0; p < 4; p++) {
        zm_vocab_desc_init(&d);
        d.model = "gpt2";
        d.pre = pres[p];
        d.n_tokens = n;
        d.tokens = (const char *const *)tok;
        d.token_types = type;
        d.n_merges = 9;
        d.merges = merges;
        d.eos = n - 2;
        if (zm_tokenizer_new(&tk[p], &d)) abort();
    }
    for (int i = 0; i < n; i++) free(tok[i]);
    /* SentencePiece: <unk>, <s>, </s>, bytes, a few pieces */
    const char *sp[300];
    char bytes[256][8];
    float score[300];
    int32_t st[300];
    int m = 0;
    sp[m] = "<unk>"; st[m] = ZM_TOKEN_UNKNOWN; score[m++] = 0;
    sp[m] = "<s>"; st[m] = ZM_TOKEN_CONTROL; score[m++] = 0;
    sp[m] = "</s>"; st[m] = ZM_TOKEN_CONTROL; score[m++] = 0;
    for (int b = 0; b < 256; b++) { snprintf(bytes[b], 8, "<0x%02X>", b); sp[m] = bytes[b]; st[m] = ZM_TOKEN_BYTE; score[m++] = 0; }
    const char *pcs[] = {"\xe2\x96\x81", "\xe2\x96\x81t", "he", "\xe2\x96\x81the", "a", "b", "ab", "\xe4\xb8\x96"};
    for (int i = 0; i < 8; i++) { sp[m] = pcs[i]; st[m] = ZM_TOKEN_NORMAL; score[m++] = -(float)i; }
    zm_vocab_desc_init(&d);
    d.model = "llama";
    d.n_tokens = m;
    d.tokens = sp;
    d.token_types = st;
    d.scores = score;
    d.unk = 0; d.bos = 1; d.eos = 2;
    if (zm_tokenizer_new(&tk[4], &d)) abort();
}

/* encode, decode, stream; exact round trip where the model guarantees it */
static void exercise(const zm_tokenizer *t, const char *s, size_t n, int flags, int exact) {
    int32_t *ids = NULL;
    int64_t ni = 0;
    if (zm_tokenizer_encode(t, s, n, flags, &ids, &ni) != ZM_OK) return;
    char *back = NULL;
    size_t bl = 0;
    if (zm_tokenizer_decode(t, ids, ni, ZM_DEC_SPECIAL, &back, &bl) != ZM_OK) __builtin_trap();
    if (exact && !(flags & ZM_ENC_ADD_SPECIAL) && (bl != n || memcmp(back, s, n))) __builtin_trap();
    free(back);
    zm_detok *d = NULL;
    if (zm_detok_new(&d, t, flags & 1 ? ZM_DEC_SPECIAL : 0) != ZM_OK) __builtin_trap();
    for (int64_t i = 0; i < ni; i++) {
        const char *o;
        size_t l;
        if (zm_detok_push(d, ids[i], &o, &l) != ZM_OK) __builtin_trap();
        if (zm_utf8_valid_prefix(o, l) != l) __builtin_trap();
    }
    const char *o;
    size_t l;
    if (zm_detok_flush(d, &o, &l) != ZM_OK || zm_utf8_valid_prefix(o, l) != l) __builtin_trap();
    zm_detok_free(d);
    free(ids);
}

static void hostile_vocab(const uint8_t *data, size_t size) {
    const char *lines[512];
    uint32_t lens[512];
    int32_t types[512];
    int nl = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && nl < 512; i++) {
        if (i == size || data[i] == '\n') {
            lines[nl] = (const char *)data + start;
            lens[nl] = (uint32_t)(i - start);
            types[nl] = (int32_t)(lens[nl] ? data[start] % 8 : 1);
            nl++;
            start = i + 1;
        }
    }
    int nt = (nl + 1) / 2;
    if (nt < 1) return;
    zm_vocab_desc d;
    zm_vocab_desc_init(&d);
    d.model = size && data[0] & 1 ? "llama" : "gpt2";
    d.pre = size > 1 && data[1] & 1 ? "gpt-4o" : "qwen2";
    d.n_tokens = nt;
    d.tokens = lines;
    d.token_lens = lens;
    d.token_types = types;
    d.n_merges = nl - nt;
    d.merges = lines + nt;
    d.merge_lens = lens + nt;
    d.unk = size > 2 ? data[2] % nt : -1;
    zm_tokenizer *t = NULL;
    if (zm_tokenizer_new(&t, &d) != ZM_OK) return;
    exercise(t, (const char *)data, size, ZM_ENC_PARSE_SPECIAL | ZM_ENC_ADD_SPECIAL, 0);
    zm_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tk[0]) build();
    if (size < 2) return 0;
    int mode = data[0] % 7, flags = data[1] & 3;
    const char *s = (const char *)data + 2;
    size_t n = size - 2;
    if (mode < 4) exercise(tk[mode], s, n, flags, 1);
    else if (mode == 4) exercise(tk[4], s, n, flags, 0);
    else if (mode == 5) {
        zm_gguf *g = NULL;
        if (zm_gguf_open_mem(&g, data + 1, size - 1) == ZM_OK) {
            zm_tokenizer *t = NULL;
            if (zm_tokenizer_load(&t, g) == ZM_OK) {
                exercise(t, "Hello world 123 <|im_end|>\n\n", 28, ZM_ENC_PARSE_SPECIAL, 0);
                exercise(t, (const char *)data, size, ZM_ENC_ADD_SPECIAL, 0);
                zm_tokenizer_free(t);
            }
            zm_gguf_free(g);
        }
    } else hostile_vocab(data + 1, size - 1);
    return 0;
}
