/* zmlx synth: the tiny preset's file holds exactly llama.cpp's qwen3moe
 * metadata keys and tensor names/shapes/types; the vocabulary is a valid
 * gpt2-form BPE (GPT-2's famous ids: "!" = 0, "Ġ" = 220, "Ċ" = 198; every
 * merge's parts and result are tokens; specials typed control), also at the
 * real 151936-token size; weights are deterministic per seed, identical in
 * substance across --type, and scaled as documented; bad options fail.
 * Run: build/tests/test_synth */
#include "harness.h"
#include "gguf/quant.h"
#include "models/synth_vocab.h"
#include "zmlx/gguf.h"
#include "zmlx/synth.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char p_f32[64], p_q8[64], p_again[64], p_seed2[64], p_none[64];

static zm_status synth(const char *path, zm_dtype t, uint64_t seed) {
    zm_synth_opts o = {"qwen3moe", "tiny", t, seed, 0, NULL, NULL};
    return zm_synth_write(path, &o);
}

static void test_metadata_and_shapes(void) {
    static const zm_synth_preset P = ZM_SYNTH_TINY;
    zm_gguf *g;
    ZT_OK(zm_gguf_open(&g, p_q8));
    if (!g) return;
    const char *s; uint64_t n;
    ZT_OK(zm_gguf_get_str(g, "general.architecture", &s, &n));
    ZT_CHECK(n == 8 && !memcmp(s, "qwen3moe", 8), "architecture");
    static const struct { const char *k; int v; } ints[] = {
        {"qwen3moe.context_length", P.n_ctx}, {"qwen3moe.embedding_length", P.n_embd},
        {"qwen3moe.block_count", P.n_layer}, {"qwen3moe.feed_forward_length", P.n_ff},
        {"qwen3moe.attention.head_count", P.n_head}, {"qwen3moe.attention.head_count_kv", P.n_head_kv},
        {"qwen3moe.attention.key_length", P.head_dim}, {"qwen3moe.attention.value_length", P.head_dim},
        {"qwen3moe.expert_count", P.n_expert}, {"qwen3moe.expert_used_count", P.n_expert_used},
        {"qwen3moe.expert_feed_forward_length", P.n_ff_exp}, {"general.file_type", 7},
        {"general.quantization_version", 2}, {"tokenizer.ggml.eos_token_id", P.n_vocab - P.n_special + 2},
        {"tokenizer.ggml.bos_token_id", P.n_vocab - P.n_special}, {"tokenizer.ggml.padding_token_id", P.n_vocab - P.n_special}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        uint32_t u = 0;
        ZT_OK(zm_gguf_get_u32(g, ints[i].k, &u));
        ZT_CHECK(u == (uint32_t)ints[i].v, "%s = %u want %d", ints[i].k, u, ints[i].v);
        ZT_CHECK(zm_gguf_kv_type(g, zm_gguf_find_key(g, ints[i].k)) == ZM_GGUF_U32, "%s is u32", ints[i].k);
    }
    float f;
    ZT_OK(zm_gguf_get_f32(g, "qwen3moe.rope.freq_base", &f)); ZT_CHECK(f == 1e6f, "rope base %g", f);
    ZT_OK(zm_gguf_get_f32(g, "qwen3moe.attention.layer_norm_rms_epsilon", &f)); ZT_CHECK(f == 1e-6f, "eps");
    ZT_OK(zm_gguf_get_str(g, "tokenizer.ggml.model", &s, &n)); ZT_CHECK(n == 4 && !memcmp(s, "gpt2", 4), "model");
    ZT_OK(zm_gguf_get_str(g, "tokenizer.ggml.pre", &s, &n)); ZT_CHECK(n == 5 && !memcmp(s, "qwen2", 5), "pre");
    /* tensors: names, ggml-order shapes, types */
    const int64_t E = P.n_embd, Q = P.n_head * P.head_dim, KV = P.n_head_kv * P.head_dim, X = P.n_expert, F = P.n_ff_exp;
    int count = 0;
#define T(name, t, nd, a, b, c)                                                                    \
    do {                                                                                           \
        int64_t ne[3] = {a, b, c};                                                                 \
        zm_gguf_tensor ti;                                                                         \
        ZT_OK(zm_gguf_expect_tensor(g, name, nd, ne, &ti));                                        \
        ZT_CHECK(ti.dtype == t, "%s dtype %s", name, zm_dtype_name(ti.dtype));                     \
        count++;                                                                                   \
    } while (0)
    T("token_embd.weight", ZM_Q8_0, 2, E, P.n_vocab, 1);
    T("output_norm.weight", ZM_F32, 1, E, 1, 1);
    T("output.weight", ZM_Q8_0, 2, E, P.n_vocab, 1);
    for (int l = 0; l < P.n_layer; l++) {
        char nm[64];
#define B(suffix, t, nd, a, b, c) snprintf(nm, sizeof nm, "blk.%d." suffix ".weight", l); T(nm, t, nd, a, b, c)
        B("attn_norm", ZM_F32, 1, E, 1, 1);
        B("attn_q", ZM_Q8_0, 2, E, Q, 1);
        B("attn_k", ZM_Q8_0, 2, E, KV, 1);
        B("attn_v", ZM_Q8_0, 2, E, KV, 1);
        B("attn_output", ZM_Q8_0, 2, Q, E, 1);
        B("attn_q_norm", ZM_F32, 1, P.head_dim, 1, 1);
        B("attn_k_norm", ZM_F32, 1, P.head_dim, 1, 1);
        B("ffn_norm", ZM_F32, 1, E, 1, 1);
        B("ffn_gate_inp", ZM_F32, 2, E, X, 1);
        B("ffn_gate_exps", ZM_Q8_0, 3, E, F, X);
        B("ffn_up_exps", ZM_Q8_0, 3, E, F, X);
        B("ffn_down_exps", ZM_Q8_0, 3, F, E, X);
#undef B
    }
#undef T
    ZT_CHECK(zm_gguf_n_tensors(g) == count, "%lld tensors, expected %d", (long long)zm_gguf_n_tensors(g), count);
    uint64_t total = 0;
    for (int64_t i = 0; i < zm_gguf_n_tensors(g); i++) {
        zm_gguf_tensor t;
        zm_gguf_tensor_info(g, i, &t);
        total += t.nbytes;
    }
    ZT_CHECK(total == zm_synth_data_bytes(&P, ZM_Q8_0, 0), "data bytes %llu vs %llu", (unsigned long long)total,
             (unsigned long long)zm_synth_data_bytes(&P, ZM_Q8_0, 0));
    zm_gguf_free(g);
}

/* Token strings must agree with the merge list: parts and results exist. */
static void check_vocab(char *const *tok, const int32_t *types, int nv, char *const *merges, int nm, int n_special) {
    /* a simple sorted index for membership */
    char **sorted = malloc(sizeof(char *) * (size_t)nv);
    memcpy(sorted, tok, sizeof(char *) * (size_t)nv);
    int cmp(const void *a, const void *b);
    qsort(sorted, (size_t)nv, sizeof(char *), (int (*)(const void *, const void *))cmp);
    for (int i = 1; i < nv; i++) ZT_CHECK(strcmp(sorted[i - 1], sorted[i]) != 0, "duplicated token '%s'", sorted[i]);
    ZT_CHECK(!strcmp(tok[0], "!") && !strcmp(tok[220], "\xc4\xa0") && !strcmp(tok[198], "\xc4\x8a"), "GPT-2 byte ids");
    ZT_CHECK(!strcmp(tok[93], "~") && !strcmp(tok[94], "\xc2\xa1"), "printable order");
    for (int i = 0; i < nm && !zt_failed_now(); i++) {
        const char *sp = strchr(merges[i], ' ');
        ZT_CHECK(sp && sp != merges[i] && sp[1], "merge %d '%s' form", i, merges[i]);
        if (!sp) continue;
        char a[64], b[64], ab[128];
        snprintf(a, sizeof a, "%.*s", (int)(sp - merges[i]), merges[i]);
        snprintf(b, sizeof b, "%s", sp + 1);
        snprintf(ab, sizeof ab, "%s%s", a, b);
        const char *ka = a, *kb = b, *kab = ab;
        ZT_CHECK(bsearch(&ka, sorted, (size_t)nv, sizeof(char *), (int (*)(const void *, const void *))cmp), "merge %d: '%s' not a token", i, a);
        ZT_CHECK(bsearch(&kb, sorted, (size_t)nv, sizeof(char *), (int (*)(const void *, const void *))cmp), "merge %d: '%s' not a token", i, b);
        ZT_CHECK(bsearch(&kab, sorted, (size_t)nv, sizeof(char *), (int (*)(const void *, const void *))cmp), "merge %d: '%s' not a token", i, ab);
    }
    for (int i = 0; i < nv; i++) ZT_CHECK(types[i] == (i < nv - n_special ? 1 : 3), "type of %d", i);
    ZT_CHECK(!strcmp(tok[nv - n_special], "<|endoftext|>") && !strcmp(tok[nv - n_special + 1], "<|im_start|>") &&
             !strcmp(tok[nv - n_special + 2], "<|im_end|>"), "specials");
    free(sorted);
}
int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_vocab_file(void) {
    static const zm_synth_preset P = ZM_SYNTH_TINY;
    zm_gguf *g;
    ZT_OK(zm_gguf_open(&g, p_f32));
    if (!g) return;
    uint64_t nv, nm;
    zm_gguf_type et;
    ZT_OK(zm_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nv));
    ZT_CHECK(nv == (uint64_t)P.n_vocab && et == ZM_GGUF_STRING, "n tokens %llu", (unsigned long long)nv);
    ZT_OK(zm_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &nm));
    ZT_CHECK(nm == (uint64_t)(P.n_vocab - P.n_special - 256), "n merges %llu", (unsigned long long)nm);
    char **tok = calloc(nv, sizeof(char *)), **mer = calloc(nm, sizeof(char *));
    int32_t *types = calloc(nv, sizeof(int32_t));
    int64_t tt[1024];
    ZT_OK(zm_gguf_get_arr_i64(g, "tokenizer.ggml.token_type", 0, nv, tt));
    for (uint64_t i = 0; i < nv; i++) {
        const char *s; uint64_t n;
        zm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s, &n);
        tok[i] = strndup(s, n);
        types[i] = (int32_t)tt[i];
    }
    for (uint64_t i = 0; i < nm; i++) {
        const char *s; uint64_t n;
        zm_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &n);
        mer[i] = strndup(s, n);
    }
    check_vocab(tok, types, (int)nv, mer, (int)nm, P.n_special);
    /* the corpus makes " the" a single token early on */
    int the = 0;
    for (uint64_t i = 256; i < 300 && i < nv; i++) the |= !strcmp(tok[i], "\xc4\xa0the");
    ZT_CHECK(the, "'Ġthe' among the first merges");
    for (uint64_t i = 0; i < nv; i++) free(tok[i]);
    for (uint64_t i = 0; i < nm; i++) free(mer[i]);
    free(tok); free(mer); free(types);
    zm_gguf_free(g);
}

static void test_vocab_real_size(void) {
    static const zm_synth_preset P = ZM_SYNTH_QWEN3_30B_A3B;
    zm__synth_vocab v;
    ZT_OK(zm__synth_vocab_build(&v, P.n_vocab, P.n_special, 1));
    if (!v.tokens) return;
    ZT_CHECK(v.n_vocab == 151936 && v.n_merges == 151643 - 256, "sizes %d %d", v.n_vocab, v.n_merges);
    check_vocab(v.tokens, v.types, v.n_vocab, v.merges, v.n_merges, P.n_special);
    ZT_CHECK(!strcmp(v.tokens[151643], "<|endoftext|>") && !strcmp(v.tokens[151645], "<|im_end|>"), "Qwen's special ids");
    zm__synth_vocab_free(&v);
}

static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca, cb;
    while (same && (ca = fgetc(fa)) != EOF) { cb = fgetc(fb); same = ca == cb; }
    if (same) same = fgetc(fb) == EOF;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void test_weights(void) {
    ZT_CHECK(same_file(p_f32, p_again), "same seed, same bytes");
    ZT_CHECK(!same_file(p_f32, p_seed2), "another seed, other bytes");
    zm_gguf *a, *b;
    ZT_OK(zm_gguf_open(&a, p_f32));
    ZT_OK(zm_gguf_open(&b, p_q8));
    if (!a || !b) { zm_gguf_free(a); zm_gguf_free(b); return; }
    static const zm_synth_preset P = ZM_SYNTH_TINY;
    for (int64_t i = 0; i < zm_gguf_n_tensors(a); i++) {
        zm_gguf_tensor ta, tb;
        zm_gguf_tensor_info(a, i, &ta);
        ZT_OK(zm_gguf_expect_tensor(b, ta.name, ta.ndim, ta.ne, &tb));
        int64_t n = ta.ne[0] * ta.ne[1] * ta.ne[2];
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        double *ref = malloc(sizeof(double) * (size_t)n), mean = 0, var = 0;
        ZT_OK(zm_dequantize(x, ta.data, ta.dtype, n));
        zt_poison_f32(y, n);
        ZT_OK(zm_dequantize(y, tb.data, tb.dtype, n));
        for (int64_t j = 0; j < n; j++) { ref[j] = x[j]; mean += x[j]; }
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++) var += (x[j] - mean) * (x[j] - mean);
        double sd = sqrt(var / (double)n);
        /* the q8_0 file holds the same floats, quantized: rel L2 ~ 0.5 %% */
        ZT_CHECK(zt_rel_l2(y, ref, n) < (tb.dtype == ZM_F32 ? 1e-7 : 0.01), "%s: q8_0 vs f32 rel l2 %g", ta.name, zt_rel_l2(y, ref, n));
        double want_sd = 0, want_mean = 0;
        if (strstr(ta.name, "norm")) { want_mean = 1; want_sd = 0.1; }
        else if (strstr(ta.name, "token_embd")) want_sd = 1;
        else if (strstr(ta.name, "attn_output")) want_sd = 1 / sqrt(P.n_head * P.head_dim);
        else if (!strcmp(ta.name, "output.weight")) want_sd = 2 / sqrt(P.n_embd);
        else if (strstr(ta.name, "down_exps")) want_sd = 1 / sqrt(P.n_ff_exp);
        else want_sd = 1 / sqrt(P.n_embd);
        double tol = 4 * want_sd / sqrt((double)n) + 1e-9; /* a few standard errors */
        ZT_CHECK(fabs(mean - want_mean) < tol * 1.5 && fabs(sd - want_sd) < want_sd * (0.05 + 4 / sqrt((double)n)),
                 "%s: mean %g sd %g, want %g %g", ta.name, mean, sd, want_mean, want_sd);
        free(x); free(y); free(ref);
        if (zt_failed_now()) break;
    }
    zm_gguf_free(a);
    zm_gguf_free(b);
}

static void test_bad_options(void) {
    zm_synth_opts o = {"qwen3moe", "huge", ZM_F32, 1, 0, NULL, NULL};
    ZT_CHECK(zm_synth_write(p_none, &o) == ZM_ERR_NOT_FOUND, "unknown preset");
    ZT_CHECK(strstr(zm_last_error(), "huge") != NULL, "message names the preset");
    o.preset = "tiny"; o.arch = "llama";
    ZT_CHECK(zm_synth_write(p_none, &o) == ZM_ERR_UNSUPPORTED, "unknown arch");
    ZT_CHECK(strstr(zm_last_error(), "llama") != NULL, "message names the arch");
    o.arch = NULL; o.type = ZM_Q4_K;
    ZT_CHECK(zm_synth_write(p_none, &o) == ZM_ERR_DTYPE, "q4_k not offered");
    ZT_CHECK(zm_synth_write(NULL, &o) == ZM_ERR_INVALID, "NULL path");
    ZT_CHECK(access(p_none, F_OK) != 0, "no file written on failure");
    ZT_CHECK(zm_synth_preset_find("qwen3-30b-a3b") && zm_synth_preset_find("qwen3-30b-a3b")->n_vocab == 151936, "30b preset");
    const zm_synth_preset *big = zm_synth_preset_find("qwen3-30b-a3b");
    /* Qwen3-30B-A3B is ~30.5B parameters: Q4_0 (4.5 bits) ~17 GB */
    uint64_t by = zm_synth_data_bytes(big, ZM_Q4_0, 0);
    ZT_CHECK(by > 16.5e9 && by < 17.5e9, "30b q4_0 bytes %llu", (unsigned long long)by);
}

int main(void) {
    char dir[] = "/tmp/zt_synth_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    snprintf(p_f32, sizeof p_f32, "%s/f32.gguf", dir);
    snprintf(p_q8, sizeof p_q8, "%s/q8.gguf", dir);
    snprintf(p_again, sizeof p_again, "%s/again.gguf", dir);
    snprintf(p_seed2, sizeof p_seed2, "%s/seed2.gguf", dir);
    snprintf(p_none, sizeof p_none, "%s/none.gguf", dir);
    int ok = synth(p_f32, ZM_F32, 7) == ZM_OK && synth(p_q8, ZM_Q8_0, 7) == ZM_OK && synth(p_again, ZM_F32, 7) == ZM_OK &&
             synth(p_seed2, ZM_F32, 8) == ZM_OK;
    if (!ok) printf("synth failed: %s\n", zm_last_error());
    ZT_RUN(test_metadata_and_shapes);
    ZT_RUN(test_vocab_file);
    ZT_RUN(test_vocab_real_size);
    ZT_RUN(test_weights);
    ZT_RUN(test_bad_options);
    unlink(p_f32); unlink(p_q8); unlink(p_again); unlink(p_seed2);
    rmdir(dir);
    return zt_finish();
}
