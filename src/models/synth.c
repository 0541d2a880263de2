/* `zmlx synth`: writes a GGUF model with random weights in the exact shapes,
 * tensor names and metadata keys of llama.cpp's qwen3moe (checked against
 * llama.cpp's src/models/qwen3moe.cpp and llama-arch.cpp), so the file loads
 * in llama.cpp unchanged. Weights: x = mean + std * z, z ~ N(0,1) (Irwin-Hall
 * of four 16-bit uniforms), seeded per (seed, tensor name, row) so every
 * --type holds the same underlying floats and rows can be filled in parallel;
 * std = 1/sqrt(fan_in) keeps activations in range over all layers, norms are
 * near 1. Streamed: the writer asks for one tensor at a time.
 * Tests: build/tests/test_synth; tests/crosscheck/llama.sh loads the files
 * in llama.cpp. */
#include "zmlx/synth.h"
#include "core/internal.h"
#include "gguf/quant.h"
#include "models/synth_vocab.h"
#include "zmlx/gguf.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------
static const zm_synth_preset zm__presets[] = {ZM_SYNTH_TINY, ZM_SYNTH_SMALL, ZM_SYNTH_QWEN3_30B_A3B};
#define ZM__NPRESET ((int)(sizeof zm__presets / sizeof zm__presets[0]))

const zm_synth_preset *zm_synth_preset_at(int i) { return i >= 0 && i < ZM__NPRESET ? &zm__presets[i] : NULL; }
const zm_synth_preset *zm_synth_preset_find(const char *name) {
    for (int i = 0; name && i < ZM__NPRESET; i++)
        if (!strcmp(name, zm__presets[i].name)) return &zm__presets[i];
    return NULL;
}

typedef struct {
    char name[64];
    zm_dtype type;
    int ndim;
    int64_t ne[4];
    float mean, std;
} zm__stensor;

typedef struct {
    zm__stensor *t;
    int n;
    uint64_t seed;
    void (*progress)(void *, uint64_t, uint64_t);
    void *pctx;
} zm__sctx;

// ---------------------------------------------------------------------------
// tensor list

static void zm__add(zm__stensor *t, int *n, zm_dtype type, float mean, float std, int ndim, int64_t a, int64_t b,
                    int64_t c, const char *fmt, int layer) {
    zm__stensor *e = &t[(*n)++];
    snprintf(e->name, sizeof e->name, fmt, layer);
    e->type = type;
    e->ndim = ndim;
    e->ne[0] = a; e->ne[1] = b; e->ne[2] = c; e->ne[3] = 1;
    e->mean = mean;
    e->std = std;
}

/* The tensors of a qwen3moe model in ggml order (ne[0] = row length), as
 * llama.cpp creates them. Returns the count (t may be NULL to count). */
static int zm__qwen3moe_tensors(const zm_synth_preset *p, int n_layer, zm_dtype wt, zm__stensor *t) {
    zm__stensor dummy[16];
    int n = 0;
    const int64_t E = p->n_embd, V = p->n_vocab, D = p->head_dim, Q = (int64_t)p->head_dim * p->n_head,
                  KV = (int64_t)p->head_dim * p->n_head_kv, X = p->n_expert, F = p->n_ff_exp;
    const float se = 1.0f / sqrtf((float)E);
#define ADD(...) do { if (t) zm__add(t, &n, __VA_ARGS__); else { int z = 0; zm__add(dummy, &z, __VA_ARGS__); n++; } } while (0)
    ADD(wt, 0.0f, 1.0f, 2, E, V, 1, "token_embd.weight", 0);
    for (int l = 0; l < n_layer; l++) {
        ADD(ZM_F32, 1.0f, 0.1f, 1, E, 1, 1, "blk.%d.attn_norm.weight", l);
        ADD(wt, 0.0f, se, 2, E, Q, 1, "blk.%d.attn_q.weight", l);
        ADD(wt, 0.0f, se, 2, E, KV, 1, "blk.%d.attn_k.weight", l);
        ADD(wt, 0.0f, se, 2, E, KV, 1, "blk.%d.attn_v.weight", l);
        ADD(wt, 0.0f, 1.0f / sqrtf((float)Q), 2, Q, E, 1, "blk.%d.attn_output.weight", l);
        ADD(ZM_F32, 1.0f, 0.1f, 1, D, 1, 1, "blk.%d.attn_q_norm.weight", l);
        ADD(ZM_F32, 1.0f, 0.1f, 1, D, 1, 1, "blk.%d.attn_k_norm.weight", l);
        ADD(ZM_F32, 1.0f, 0.1f, 1, E, 1, 1, "blk.%d.ffn_norm.weight", l);
        ADD(ZM_F32, 0.0f, se, 2, E, X, 1, "blk.%d.ffn_gate_inp.weight", l);
        ADD(wt, 0.0f, se, 3, E, F, X, "blk.%d.ffn_gate_exps.weight", l);
        ADD(wt, 0.0f, se, 3, E, F, X, "blk.%d.ffn_up_exps.weight", l);
        ADD(wt, 0.0f, 1.0f / sqrtf((float)F), 3, F, E, X, "blk.%d.ffn_down_exps.weight", l);
    }
    ADD(ZM_F32, 1.0f, 0.1f, 1, E, 1, 1, "output_norm.weight", 0);
    /* a little wider than 1/sqrt(E) so greedy argmax is decisive */
    ADD(wt, 0.0f, 2.0f * se, 2, E, V, 1, "output.weight", 0);
#undef ADD
    return n;
}

static uint64_t zm__tensor_bytes(const zm__stensor *t) {
    int64_t numel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    return (uint64_t)(numel / zm_dtype_block_size(t->type) * zm_dtype_block_bytes(t->type));
}

uint64_t zm_synth_data_bytes(const zm_synth_preset *p, zm_dtype type, int n_layer) {
    if (!p) return 0;
    if (n_layer <= 0) n_layer = p->n_layer;
    int n = zm__qwen3moe_tensors(p, n_layer, type, NULL);
    zm__stensor *t = malloc(sizeof *t * (size_t)n);
    if (!t) return 0;
    zm__qwen3moe_tensors(p, n_layer, type, t);
    uint64_t s = 0;
    for (int i = 0; i < n; i++) s += zm__tensor_bytes(&t[i]);
    free(t);
    return s;
}

// ---------------------------------------------------------------------------
// deterministic weights, filled on the thread pool

static uint64_t zm__mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t zm__name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

typedef struct {
    const zm__stensor *t;
    uint64_t seed;
    uint8_t *out;
    int64_t rows;
    uint64_t row_bytes;
    int failed;
} zm__fill_job;

static void zm__fill_rows(void *vctx, int ith, int nth) {
    zm__fill_job *j = vctx;
    const int64_t n = j->t->ne[0];
    int64_t r0 = j->rows * ith / nth, r1 = j->rows * (ith + 1) / nth;
    if (r0 >= r1) return;
    float *row = malloc(sizeof(float) * (size_t)n);
    if (!row) { j->failed = 1; return; }
    const uint64_t th = zm__name_hash(j->t->name);
    /* Irwin-Hall: sum of four U{0..65535} has mean 131070, sd 65536/sqrt(3) */
    const float inv_sd = (float)(1.7320508075688772 / 65536.0), mean = j->t->mean, sd = j->t->std;
    for (int64_t r = r0; r < r1; r++) {
        uint64_t s = zm__mix(j->seed ^ zm__mix(th + 0x9e3779b97f4a7c15ull * (uint64_t)(r + 1)));
        for (int64_t k = 0; k < n; k++) {
            s += 0x9e3779b97f4a7c15ull;
            uint64_t u = zm__mix(s);
            float z = (float)((int64_t)(u & 0xffff) + (int64_t)((u >> 16) & 0xffff) + (int64_t)((u >> 32) & 0xffff) +
                              (int64_t)(u >> 48) - 131070) * inv_sd;
            row[k] = mean + sd * z;
        }
        zm_quantize(j->out + (uint64_t)r * j->row_bytes, j->t->type, row, n);
    }
    free(row);
}

static zm_status zm__fill(void *ctx, int64_t i, void *buf, uint64_t nbytes) {
    zm__sctx *c = ctx;
    const zm__stensor *t = &c->t[i];
    zm__fill_job j = {t, c->seed, buf, t->ne[1] * t->ne[2] * t->ne[3],
                      (uint64_t)(t->ne[0] / zm_dtype_block_size(t->type) * zm_dtype_block_bytes(t->type)), 0};
    if ((uint64_t)j.rows * j.row_bytes != nbytes) return zm__err(ZM_ERR_INVALID, "synth: size of %s", t->name);
    zm_pool *p = zm_pool_default();
    if (p && j.rows >= 64) zm_pool_run(p, zm__fill_rows, &j);
    else zm__fill_rows(&j, 0, 1);
    return j.failed ? zm__err(ZM_ERR_NOMEM, "synth: row buffer for %s", t->name) : ZM_OK;
}

static void zm__progress(void *ctx, uint64_t done, uint64_t total) {
    zm__sctx *c = ctx;
    if (c->progress) c->progress(c->pctx, done, total);
}

// ---------------------------------------------------------------------------
// metadata

static zm_status zm__meta(zm_gguf_writer *w, const zm_synth_preset *p, int n_layer, zm_dtype type, uint64_t seed) {
    char buf[96];
    ZM_TRY(zm_gguf_set_str(w, "general.architecture", "qwen3moe"));
    snprintf(buf, sizeof buf, "zmlx synth %s %s seed %llu", p->name, zm_dtype_name(type), (unsigned long long)seed);
    ZM_TRY(zm_gguf_set_str(w, "general.name", buf));
    /* llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_BF16 32 */
    uint32_t ft = type == ZM_F16 ? 1 : type == ZM_Q4_0 ? 2 : type == ZM_Q8_0 ? 7 : type == ZM_BF16 ? 32 : 0;
    ZM_TRY(zm_gguf_set_u32(w, "general.file_type", ft));
    if (zm_dtype_is_quant(type)) ZM_TRY(zm_gguf_set_u32(w, "general.quantization_version", 2));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.context_length", (uint32_t)p->n_ctx));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.embedding_length", (uint32_t)p->n_embd));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.block_count", (uint32_t)n_layer));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.feed_forward_length", (uint32_t)p->n_ff));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.attention.head_count", (uint32_t)p->n_head));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.attention.head_count_kv", (uint32_t)p->n_head_kv));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.attention.key_length", (uint32_t)p->head_dim));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.attention.value_length", (uint32_t)p->head_dim));
    ZM_TRY(zm_gguf_set_f32(w, "qwen3moe.attention.layer_norm_rms_epsilon", p->rms_eps));
    ZM_TRY(zm_gguf_set_f32(w, "qwen3moe.rope.freq_base", p->rope_base));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.expert_count", (uint32_t)p->n_expert));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.expert_used_count", (uint32_t)p->n_expert_used));
    ZM_TRY(zm_gguf_set_u32(w, "qwen3moe.expert_feed_forward_length", (uint32_t)p->n_ff_exp));

    zm__synth_vocab v;
    ZM_TRY(zm__synth_vocab_build(&v, p->n_vocab, p->n_special, seed));
    zm_status s = zm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (!s) s = zm_gguf_set_str(w, "tokenizer.ggml.pre", "qwen2");
    if (!s) s = zm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, (uint64_t)v.n_vocab);
    if (!s) s = zm_gguf_set_arr(w, "tokenizer.ggml.token_type", ZM_GGUF_I32, v.types, (uint64_t)v.n_vocab);
    if (!s) s = zm_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges, (uint64_t)v.n_merges);
    zm__synth_vocab_free(&v);
    ZM_TRY(s);
    ZM_TRY(zm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)ZM_SYNTH_TOK_IM_END(p)));
    ZM_TRY(zm_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)ZM_SYNTH_TOK_ENDOFTEXT(p)));
    ZM_TRY(zm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)ZM_SYNTH_TOK_ENDOFTEXT(p)));
    ZM_TRY(zm_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 0));
    ZM_TRY(zm_gguf_set_str(w, "tokenizer.chat_template",
                           "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                           "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
                           "{{ '<|im_start|>assistant\\n' }}{% endif %}"));
    return ZM_OK;
}

// ---------------------------------------------------------------------------

zm_status zm_synth_write(const char *path, const zm_synth_opts *o) {
    if (!path || !o || !o->preset) return zm__err(ZM_ERR_INVALID, "zm_synth_write: path, opts and preset are required");
    const zm_synth_preset *p = zm_synth_preset_find(o->preset);
    if (!p) return zm__err(ZM_ERR_NOT_FOUND, "synth: unknown preset '%s' (tiny, small, qwen3-30b-a3b)", o->preset);
    if (o->arch && strcmp(o->arch, p->arch))
        return zm__err(ZM_ERR_UNSUPPORTED, "synth: unknown architecture '%s' (supported: qwen3moe)", o->arch);
    if (o->type != ZM_F32 && o->type != ZM_F16 && o->type != ZM_BF16 && o->type != ZM_Q8_0 && o->type != ZM_Q4_0)
        return zm__err(ZM_ERR_DTYPE, "synth: --type %s not supported (f32, f16, bf16, q8_0, q4_0)", zm_dtype_name(o->type));
    int n_layer = o->n_layer > 0 ? o->n_layer : p->n_layer;
    if (o->n_layer < 0 || n_layer > 1024) return zm__err(ZM_ERR_RANGE, "synth: n_layer %d out of range", o->n_layer);
    zm__sctx c = {0};
    c.n = zm__qwen3moe_tensors(p, n_layer, o->type, NULL);
    c.t = malloc(sizeof *c.t * (size_t)c.n);
    if (!c.t) return zm__err(ZM_ERR_NOMEM, "synth: tensor list");
    zm__qwen3moe_tensors(p, n_layer, o->type, c.t);
    c.seed = o->seed;
    c.progress = o->progress;
    c.pctx = o->progress_ctx;
    zm_gguf_writer *w = NULL;
    zm_status s = zm_gguf_writer_new(&w);
    if (!s) s = zm__meta(w, p, n_layer, o->type, o->seed);
    for (int i = 0; i < c.n && !s; i++) s = zm_gguf_add_tensor(w, c.t[i].name, c.t[i].type, c.t[i].ndim, c.t[i].ne, NULL);
    if (!s) s = zm_gguf_write(w, path, zm__fill, &c, zm__progress);
    zm_gguf_writer_free(w);
    free(c.t);
    return s;
}
