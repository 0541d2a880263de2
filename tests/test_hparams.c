/* qwen3moe hyper-parameters and tensor table (src/models/hparams.c): a good
 * tiny file reads back exactly; each inconsistency, written into a file by
 * tests/qwen3moe_tiny.h, gives the right status and a message that names
 * the key or tensor. Run: build/tests/test_hparams */
#include "harness.h"
#include "models/hparams.h"
#include "qwen3moe_tiny.h"
#include <string.h>

/* Write spec, open, read hparams (+ weights if hparams pass). Returns the
 * first failing status; the message stays in zm_last_error(). */
static zm_status load(const tiny_spec *s, zm_qwen3moe_hparams *hp, zm_qwen3moe_weights *wt) {
    char path[256];
    tiny_path(path, sizeof path, "hparams");
    zm_status st = tiny_write(path, s);
    if (st != ZM_OK) { ZT_CHECK(0, "writing the test file: %s", zm_last_error()); return st; }
    zm_gguf *g = NULL;
    st = zm_gguf_open(&g, path);
    unlink(path);
    if (st != ZM_OK) { ZT_CHECK(0, "opening the test file: %s", zm_last_error()); return st; }
    zm_qwen3moe_hparams h;
    zm_qwen3moe_weights w = {0};
    st = zm_qwen3moe_hparams_read(g, &h);
    if (st == ZM_OK) st = zm_qwen3moe_weights_load(g, &h, &w);
    if (hp) *hp = h;
    if (wt) *wt = w; /* only for checks on fields; pointers die with g */
    zm_qwen3moe_weights_free(&w);
    zm_gguf_free(g);
    return st;
}

/* The file must fail with status want and a message containing each of the
 * (NULL-terminated) fragments. */
static void expect_fail(const char *what, const tiny_spec *s, zm_status want, const char *frag1, const char *frag2) {
    zm_status st = load(s, NULL, NULL);
    ZT_CHECK(st == want, "%s: status %d (%s), want %d: %s", what, st, zm_status_str(st), want, zm_last_error());
    if (frag1) ZT_CHECK(strstr(zm_last_error(), frag1), "%s: message lacks '%s': %s", what, frag1, zm_last_error());
    if (frag2) ZT_CHECK(strstr(zm_last_error(), frag2), "%s: message lacks '%s': %s", what, frag2, zm_last_error());
}

static void test_good_file(void) {
    tiny_spec s = tiny_default();
    s.with_tokens = 1;
    zm_qwen3moe_hparams hp;
    zm_qwen3moe_weights w;
    ZT_OK(load(&s, &hp, &w));
    ZT_CHECK(hp.n_layer == 2 && hp.n_embd == 64 && hp.n_head == 4 && hp.n_head_kv == 2 && hp.head_dim == 16 &&
                 hp.head_dim_v == 16, "attention sizes %lld %lld %lld %lld %lld", (long long)hp.n_layer,
             (long long)hp.n_embd, (long long)hp.n_head, (long long)hp.n_head_kv, (long long)hp.head_dim);
    ZT_CHECK(hp.n_expert == 4 && hp.n_expert_used == 2 && hp.n_ff_exp == 32 && hp.n_ff == 256, "moe sizes");
    ZT_CHECK(hp.n_vocab == 96 && hp.n_ctx_train == 256, "vocab %lld ctx %lld", (long long)hp.n_vocab, (long long)hp.n_ctx_train);
    ZT_CHECK(hp.rms_eps == 1e-6f && hp.rope_base == 10000.0f && hp.norm_topk_prob == 1, "eps, base, norm_topk");
    ZT_CHECK(w.n_layer == 2 && !w.output_tied, "weights table");
    /* without tokenizer: vocab from token_embd; tied output */
    s.with_tokens = 0, s.tied = 1;
    ZT_OK(load(&s, &hp, &w));
    ZT_CHECK(hp.n_vocab == 96 && w.output_tied, "vocab from token_embd %lld, tied %d", (long long)hp.n_vocab, w.output_tied);
    /* optional keys fall back like llama.cpp */
    s.omit_key = "qwen3moe.rope.freq_base";
    ZT_OK(load(&s, &hp, NULL));
    ZT_CHECK(hp.rope_base == 10000.0f, "default rope base %g", hp.rope_base);
    s.omit_key = "qwen3moe.attention.key_length";
    ZT_OK(load(&s, &hp, NULL));
    ZT_CHECK(hp.head_dim == 16, "default head_dim = n_embd / n_head: %lld", (long long)hp.head_dim);
    /* quantized matrices load */
    s = tiny_default();
    s.wtype = ZM_Q4_0;
    ZT_OK(load(&s, NULL, NULL));
}

static void test_bad_keys(void) {
    tiny_spec s = tiny_default();
    s.arch = "llama";
    expect_fail("foreign architecture", &s, ZM_ERR_UNSUPPORTED, "unknown architecture 'llama'", "qwen3moe");
    s = tiny_default(), s.omit_key = "general.architecture";
    expect_fail("no architecture", &s, ZM_ERR_NOT_FOUND, "general.architecture", NULL);
    const char *required[] = {"qwen3moe.block_count", "qwen3moe.embedding_length", "qwen3moe.attention.head_count",
                              "qwen3moe.expert_count", "qwen3moe.expert_used_count",
                              "qwen3moe.expert_feed_forward_length", "qwen3moe.context_length",
                              "qwen3moe.attention.layer_norm_rms_epsilon"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        s = tiny_default(), s.omit_key = required[i];
        expect_fail("missing key", &s, ZM_ERR_NOT_FOUND, required[i], "missing");
    }
    s = tiny_default(), s.string_key = "qwen3moe.block_count";
    expect_fail("string block_count", &s, ZM_ERR_FORMAT, "qwen3moe.block_count", "string");
    s = tiny_default(), s.string_key = "qwen3moe.rope.freq_base";
    expect_fail("string rope base", &s, ZM_ERR_FORMAT, "qwen3moe.rope.freq_base", NULL);
}

static void test_inconsistent_values(void) {
    tiny_spec s = tiny_default();
    s.u32_key = "qwen3moe.embedding_length", s.u32_val = 0;
    expect_fail("zero n_embd", &s, ZM_ERR_FORMAT, "embedding_length", "out of range");
    s = tiny_default(), s.u32_key = "qwen3moe.block_count", s.u32_val = 100000;
    expect_fail("absurd n_layer", &s, ZM_ERR_FORMAT, "block_count", "100000");
    s = tiny_default(), s.n_head_kv = 3;
    expect_fail("n_head % n_head_kv", &s, ZM_ERR_FORMAT, "not a multiple of n_head_kv (3)", NULL);
    s = tiny_default(), s.n_expert_used = 5;
    expect_fail("top-k > experts", &s, ZM_ERR_FORMAT, "expert_used_count (5) > expert_count (4)", NULL);
    s = tiny_default(), s.n_expert_used = 0;
    expect_fail("top-k 0", &s, ZM_ERR_FORMAT, "expert_used_count", "out of range");
    s = tiny_default(), s.eps = 0;
    expect_fail("eps 0", &s, ZM_ERR_FORMAT, "layer_norm_rms_epsilon", NULL);
    s = tiny_default(), s.rope_base = -1;
    expect_fail("negative rope base", &s, ZM_ERR_FORMAT, "rope.freq_base", NULL);
    /* values alone */
    zm_qwen3moe_hparams hp = {.n_layer = 1, .n_embd = 8, .n_head = 2, .n_head_kv = 1, .head_dim = 3, .head_dim_v = 4,
                              .n_expert = 2, .n_expert_used = 1, .n_ff_exp = 4, .n_vocab = 4, .n_ctx_train = 8,
                              .rope_base = 1e4f, .rms_eps = 1e-6f, .norm_topk_prob = 1};
    ZT_CHECK(zm_qwen3moe_hparams_validate(&hp) == ZM_ERR_FORMAT && strstr(zm_last_error(), "odd"), "odd head_dim: %s",
             zm_last_error());
    hp.head_dim = 4;
    ZT_OK(zm_qwen3moe_hparams_validate(&hp));
    hp.n_vocab = 1 << 30;
    ZT_CHECK(zm_qwen3moe_hparams_validate(&hp) == ZM_ERR_FORMAT && strstr(zm_last_error(), "n_vocab"), "huge vocab: %s",
             zm_last_error());
}

static void test_bad_tensors(void) {
    tiny_spec s = tiny_default();
    s.with_tokens = 1, s.n_tokens = 100; /* tokenizer says 100, token_embd has 96 rows */
    expect_fail("vocab vs token_embd", &s, ZM_ERR_SHAPE, "vocabulary mismatch: 100 tokens", "token_embd.weight has 96 rows");
    s = tiny_default(), s.omit_tensor = "blk.1.attn_k_norm.weight";
    expect_fail("missing tensor", &s, ZM_ERR_NOT_FOUND, "blk.1.attn_k_norm.weight", "missing");
    s = tiny_default(), s.omit_tensor = "output_norm.weight";
    expect_fail("missing output_norm", &s, ZM_ERR_NOT_FOUND, "output_norm.weight", NULL);
    const char *names[] = {"blk.0.attn_q.weight", "blk.1.ffn_down_exps.weight", "blk.0.ffn_gate_inp.weight",
                           "output.weight", "blk.1.attn_norm.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        s = tiny_default(), s.bad_tensor = names[i];
        expect_fail("wrong shape", &s, ZM_ERR_SHAPE, names[i], "expected");
    }
    s = tiny_default(), s.ntype_tensor = "blk.0.ffn_norm.weight", s.wtype_tensor = ZM_Q8_0;
    expect_fail("quantized norm", &s, ZM_ERR_DTYPE, "blk.0.ffn_norm.weight", "q8_0");
}

int main(void) {
    ZT_RUN(test_good_file);
    ZT_RUN(test_bad_keys);
    ZT_RUN(test_inconsistent_values);
    ZT_RUN(test_bad_tensors);
    return zt_finish();
}
