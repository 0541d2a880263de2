/* The stock Qwen3-MoE graph: the model step as a stock array framework runs
 * it, one primitive op per node, in llama.cpp's order (src/models/qwen3moe.cpp
 * of llama.cpp and its build_moe_ffn). This is the definition of truth that
 * src/patch rewrites; read it like llama2.c's forward().
 *
 *   x = token_embd[ids]                                     [P, D]
 *   per layer:
 *     h   = rms_norm(x) * attn_norm
 *     q,k,v = h Wq^T, h Wk^T, h Wv^T                        [P, H*Dh], [P, Hkv*Dh]
 *     q,k = rope_neox(rms_norm_per_head(q|k) * q|k_norm, pos)
 *     kcache[pos], vcache[pos] = k, v
 *     a   = causal GQA attention(q, kcache, vcache)         [P, H, Dh]
 *     x   = x + a Wo^T
 *     h   = rms_norm(x) * ffn_norm
 *     p   = softmax(h Wr^T)                                  [P, E]
 *     sel = topk(p, k); w = p[sel]; w = w / sum(w)           [P, k]
 *     e   = W_down[sel] (silu(W_gate[sel] h) * W_up[sel] h) [P, k, D]
 *     x   = x + sum_j w_j e_j
 *   logits = rms_norm(x_last) * output_norm Wout^T; next = argmax(logits)
 *
 * Checked by tests/test_model.c against src/models/reference.c. */
#include "models/qwen3moe.h"
#include "core/internal.h"
#include <math.h>
#include <string.h>

// ---------------------------------------------------------------------------
typedef struct {
    zm_graph *g;
    zm_status st;
    int layer;
} bld;

static int add(bld *b, zm_node *n, const char *name) {
    if (b->st != ZM_OK) return -1;
    n->layer = b->layer;
    if (b->layer >= 0) snprintf(n->name, sizeof n->name, "blk.%d.%s", b->layer, name);
    else snprintf(n->name, sizeof n->name, "%s", name);
    int id = -1;
    b->st = zm_graph_add(b->g, n, &id);
    return id;
}

static int op(bld *b, zm_op o, zm_dtype dt, int ndim, const int64_t *shape, const char *name, int n_src, ...) {
    zm_node n = zm_node_make(o, dt, ndim, shape);
    va_list ap;
    va_start(ap, n_src);
    n.n_src = n_src;
    for (int i = 0; i < n_src; i++) n.src[i] = va_arg(ap, int);
    va_end(ap);
    return add(b, &n, name);
}

/* A GGUF tensor as a WEIGHT leaf, shape in numpy order (ggml ne reversed). */
static int weight(bld *b, const zm_gguf_tensor *t, const char *name) {
    int64_t sh[4];
    for (int i = 0; i < t->ndim; i++) sh[i] = t->ne[t->ndim - 1 - i];
    zm_node n = zm_node_make(ZM_OP_WEIGHT, t->dtype, t->ndim, sh);
    n.data = t->data;
    if (b->st != ZM_OK) return -1;
    n.layer = b->layer;
    snprintf(n.name, sizeof n.name, "%s", t->name ? t->name : name);
    int id = -1;
    b->st = zm_graph_add(b->g, &n, &id);
    return id;
}

static int view(bld *b, int src, int ndim, const int64_t *shape, int64_t offset, zm_dtype dt, const char *name) {
    zm_node n = zm_node_make(ZM_OP_VIEW, dt, ndim, shape);
    n.n_src = 1;
    n.src[0] = src;
    n.view_offset = offset;
    return add(b, &n, name);
}

static int rms_norm(bld *b, int x, int w, float eps, int ndim, const int64_t *shape, const char *name) {
    zm_node n = zm_node_make(ZM_OP_RMS_NORM, ZM_F32, ndim, shape);
    n.n_src = 2;
    n.src[0] = x;
    n.src[1] = w;
    n.fp[0] = eps;
    return add(b, &n, name);
}

static int rope(bld *b, int x, int pos, const zm_qwen3moe_hparams *hp, const int64_t *shape, const char *name) {
    zm_node n = zm_node_make(ZM_OP_ROPE, ZM_F32, 3, shape);
    n.n_src = 2;
    n.src[0] = x;
    n.src[1] = pos;
    n.fp[0] = hp->rope_base;
    n.ip[0] = ZM_ROPE_NEOX;
    n.ip[1] = (int32_t)hp->head_dim;
    return add(b, &n, name);
}

// ---------------------------------------------------------------------------
static int attention_block(bld *b, const zm_qwen3moe_hparams *hp, const zm_qwen3moe_layer *L, int x, int pos,
                           int64_t P, int64_t C) {
    const int64_t D = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, Dh = hp->head_dim, Dv = hp->head_dim_v;
    const float eps = hp->rms_eps;
    int w_norm = weight(b, &L->attn_norm, "attn_norm"), wq = weight(b, &L->wq, "attn_q"),
        wk = weight(b, &L->wk, "attn_k"), wv = weight(b, &L->wv, "attn_v"), wo = weight(b, &L->wo, "attn_output"),
        wqn = weight(b, &L->q_norm, "attn_q_norm"), wkn = weight(b, &L->k_norm, "attn_k_norm");
    int h = rms_norm(b, x, w_norm, eps, 2, (int64_t[]){P, D}, "attn_norm_out");
    int q = op(b, ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){P, H * Dh}, "q", 2, wq, h);
    int k = op(b, ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){P, Hkv * Dh}, "k", 2, wk, h);
    int v = op(b, ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){P, Hkv * Dv}, "v", 2, wv, h);
    const int64_t qs[3] = {P, H, Dh}, ks[3] = {P, Hkv, Dh}, vs[3] = {P, Hkv, Dv};
    int q3 = view(b, q, 3, qs, 0, ZM_F32, "q_heads");
    int k3 = view(b, k, 3, ks, 0, ZM_F32, "k_heads");
    int v3 = view(b, v, 3, vs, 0, ZM_F32, "v_heads");
    int qn = rms_norm(b, q3, wqn, eps, 3, qs, "q_norm");
    int kn = rms_norm(b, k3, wkn, eps, 3, ks, "k_norm");
    int qr = rope(b, qn, pos, hp, qs, "q_rope");
    int kr = rope(b, kn, pos, hp, ks, "k_rope");
    /* the KV cache: persistent state slots 2*layer (K) and 2*layer+1 (V) */
    zm_node st = zm_node_make(ZM_OP_STATE, ZM_F32, 3, (int64_t[]){C, Hkv, Dh});
    st.ip[0] = 2 * b->layer;
    int kc = add(b, &st, "k_cache");
    st = zm_node_make(ZM_OP_STATE, ZM_F32, 3, (int64_t[]){C, Hkv, Dv});
    st.ip[0] = 2 * b->layer + 1;
    int vc = add(b, &st, "v_cache");
    int kw = op(b, ZM_OP_KV_WRITE, ZM_F32, 3, (int64_t[]){C, Hkv, Dh}, "k_cache_write", 3, kc, kr, pos);
    int vw = op(b, ZM_OP_KV_WRITE, ZM_F32, 3, (int64_t[]){C, Hkv, Dv}, "v_cache_write", 3, vc, v3, pos);
    zm_node at = zm_node_make(ZM_OP_ATTENTION, ZM_F32, 3, (int64_t[]){P, H, Dv});
    at.n_src = 4;
    at.src[0] = qr;
    at.src[1] = kw;
    at.src[2] = vw;
    at.src[3] = pos;
    at.fp[0] = (float)(1.0 / sqrt((double)Dh));
    int a = add(b, &at, "attn");
    int a2 = view(b, a, 2, (int64_t[]){P, H * Dv}, 0, ZM_F32, "attn_flat");
    int o = op(b, ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){P, D}, "attn_out", 2, wo, a2);
    return op(b, ZM_OP_ADD, ZM_F32, 2, (int64_t[]){P, D}, "attn_residual", 2, o, x);
}

static int moe_block(bld *b, const zm_qwen3moe_hparams *hp, const zm_qwen3moe_layer *L, int x, int64_t P) {
    const int64_t D = hp->n_embd, E = hp->n_expert, K = hp->n_expert_used, F = hp->n_ff_exp;
    int w_norm = weight(b, &L->ffn_norm, "ffn_norm"), wr = weight(b, &L->gate_inp, "ffn_gate_inp"),
        wg = weight(b, &L->gate_exps, "ffn_gate_exps"), wu = weight(b, &L->up_exps, "ffn_up_exps"),
        wd = weight(b, &L->down_exps, "ffn_down_exps");
    int h = rms_norm(b, x, w_norm, hp->rms_eps, 2, (int64_t[]){P, D}, "ffn_norm_out");
    int logits = op(b, ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){P, E}, "router_logits", 2, wr, h);
    int probs = op(b, ZM_OP_SOFTMAX, ZM_F32, 2, (int64_t[]){P, E}, "router_probs", 1, logits);
    zm_node tk = zm_node_make(ZM_OP_TOPK, ZM_I32, 2, (int64_t[]){P, K});
    tk.n_src = 1;
    tk.src[0] = probs;
    tk.ip[0] = (int32_t)K;
    int sel = add(b, &tk, "experts_selected");
    int w = op(b, ZM_OP_GATHER, ZM_F32, 2, (int64_t[]){P, K}, "experts_weights", 2, probs, sel);
    if (hp->norm_topk_prob) {
        zm_node s = zm_node_make(ZM_OP_SUM, ZM_F32, 2, (int64_t[]){P, 1});
        s.n_src = 1;
        s.src[0] = w;
        s.ip[0] = 1;
        int ws = add(b, &s, "experts_weights_sum");
        w = op(b, ZM_OP_DIV, ZM_F32, 2, (int64_t[]){P, K}, "experts_weights_norm", 2, w, ws);
    }
    int h3 = view(b, h, 3, (int64_t[]){P, 1, D}, 0, ZM_F32, "ffn_in_3d");
    int g = op(b, ZM_OP_MATMUL_ID, ZM_F32, 3, (int64_t[]){P, K, F}, "ffn_gate", 3, wg, h3, sel);
    int u = op(b, ZM_OP_MATMUL_ID, ZM_F32, 3, (int64_t[]){P, K, F}, "ffn_up", 3, wu, h3, sel);
    int gs = op(b, ZM_OP_SILU, ZM_F32, 3, (int64_t[]){P, K, F}, "ffn_silu", 1, g);
    int gu = op(b, ZM_OP_MUL, ZM_F32, 3, (int64_t[]){P, K, F}, "ffn_gate_par", 2, gs, u);
    int d = op(b, ZM_OP_MATMUL_ID, ZM_F32, 3, (int64_t[]){P, K, D}, "ffn_down", 3, wd, gu, sel);
    int w3 = view(b, w, 3, (int64_t[]){P, K, 1}, 0, ZM_F32, "experts_weights_3d");
    int dw = op(b, ZM_OP_MUL, ZM_F32, 3, (int64_t[]){P, K, D}, "ffn_down_weighted", 2, d, w3);
    zm_node s = zm_node_make(ZM_OP_SUM, ZM_F32, 2, (int64_t[]){P, D});
    s.n_src = 1;
    s.src[0] = dw;
    s.ip[0] = 1;
    int moe = add(b, &s, "ffn_moe_out");
    return op(b, ZM_OP_ADD, ZM_F32, 2, (int64_t[]){P, D}, "ffn_residual", 2, moe, x);
}

// ---------------------------------------------------------------------------
zm_status zm_qwen3moe_build_graph(zm_graph **out, const zm_qwen3moe_hparams *hp, const zm_qwen3moe_weights *w,
                                  int64_t n_tokens, int64_t n_ctx, int all_logits) {
    if (!out) return zm__err(ZM_ERR_INVALID, "qwen3moe graph: out is NULL");
    *out = NULL;
    if (!hp || !w || n_tokens < 1 || n_ctx < 1 || n_tokens > n_ctx || w->n_layer != hp->n_layer)
        return zm__err(ZM_ERR_INVALID, "qwen3moe graph: bad arguments (%lld tokens, %lld positions)", (long long)n_tokens,
                       (long long)n_ctx);
    bld b = {NULL, ZM_OK, -1};
    ZM_TRY(zm_graph_new(&b.g));
    const int64_t P = n_tokens, D = hp->n_embd, V = hp->n_vocab;
    b.g->n_tokens = P;
    zm_node in = zm_node_make(ZM_OP_INPUT, ZM_I32, 1, (int64_t[]){P});
    in.ip[0] = ZM_INPUT_TOKENS;
    int ids = add(&b, &in, "tokens");
    in.ip[0] = ZM_INPUT_POS;
    int pos = add(&b, &in, "positions");
    int emb = weight(&b, &w->tok_embd, "token_embd");
    int x = op(&b, ZM_OP_GET_ROWS, ZM_F32, 2, (int64_t[]){P, D}, "embd", 2, emb, ids);
    for (int l = 0; l < hp->n_layer && b.st == ZM_OK; l++) {
        b.layer = l;
        x = attention_block(&b, hp, &w->layers[l], x, pos, P, n_ctx);
        x = moe_block(&b, hp, &w->layers[l], x, P);
    }
    b.layer = -1;
    int64_t R = P;
    if (!all_logits && P > 1) {
        R = 1;
        x = view(&b, x, 2, (int64_t[]){1, D}, (P - 1) * D * (int64_t)sizeof(float), ZM_F32, "last_token");
    }
    int wn = weight(&b, &w->output_norm, "output_norm"), wout = weight(&b, &w->output, "output");
    int hn = rms_norm(&b, x, wn, hp->rms_eps, 2, (int64_t[]){R, D}, "result_norm");
    int logits = op(&b, ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){R, V}, "result_output", 2, wout, hn);
    int next = op(&b, ZM_OP_ARGMAX, ZM_I32, 1, (int64_t[]){R}, "greedy", 1, logits);
    if (b.st == ZM_OK) b.st = zm_graph_set_output(b.g, logits);
    if (b.st == ZM_OK) b.st = zm_graph_set_output(b.g, next);
    if (b.st == ZM_OK) b.st = zm_graph_validate(b.g);
    if (b.st != ZM_OK) {
        zm_graph_free(b.g);
        return zm__err_ctx(b.st, "qwen3moe graph");
    }
    *out = b.g;
    return ZM_OK;
}
