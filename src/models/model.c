/* zm_model and zm_session: map a GGUF file, validate it, build the stock
 * graph (src/models/qwen3moe.c) for decode (1 token) and prefill (P tokens),
 * run it on a backend with a KV cache that persists across calls.
 * Checked by tests/test_model.c (graph vs the naive reference forward,
 * KV-cache decode vs recomputing the prefix, bad files). */
#include "core/internal.h"
#include "models/model_priv.h"
#include "models/qwen3moe.h"
#include <string.h>

#define ZM_PREFILL_CHUNK 512 /* longer prompts run in chunks of this size */

// ---------------------------------------------------------------------------
typedef struct {
    int64_t n;        /* tokens; 0 = empty slot */
    zm_graph *g;
    void *exec;
    uint64_t used;    /* LRU stamp */
} graph_slot;

struct zm_session {
    zm_model *m;
    zm_graph_rewrite_fn rewrite;
    void *rewrite_ctx;
    void *state;           /* KV cache */
    graph_slot dec;        /* the decode graph (n = 1) */
    graph_slot pre[2];     /* the last two prefill sizes */
    uint64_t clock;
    int64_t pos;
    int32_t *posbuf;       /* ZM_PREFILL_CHUNK positions */
};

// ---------------------------------------------------------------------------
static uint64_t tensor_bytes(const zm_gguf_tensor *t) { return t->nbytes; }

static void count_bytes(zm_model *m) {
    const zm_qwen3moe_hparams *hp = &m->hp;
    const zm_qwen3moe_weights *w = &m->w;
    uint64_t b = tensor_bytes(&w->tok_embd) / (uint64_t)hp->n_vocab; /* one embedding row */
    b += tensor_bytes(&w->output_norm) + tensor_bytes(&w->output);
    for (int64_t l = 0; l < hp->n_layer; l++) {
        const zm_qwen3moe_layer *L = &w->layers[l];
        b += tensor_bytes(&L->attn_norm) + tensor_bytes(&L->wq) + tensor_bytes(&L->wk) + tensor_bytes(&L->wv) +
             tensor_bytes(&L->wo) + tensor_bytes(&L->q_norm) + tensor_bytes(&L->k_norm) + tensor_bytes(&L->ffn_norm) +
             tensor_bytes(&L->gate_inp);
        b += (uint64_t)hp->n_expert_used * (zm_qwen3moe_expert_stride(&L->gate_exps) +
                                            zm_qwen3moe_expert_stride(&L->up_exps) +
                                            zm_qwen3moe_expert_stride(&L->down_exps));
    }
    m->decode_bytes = b;
    uint64_t all = 0;
    for (int64_t i = 0; i < zm_gguf_n_tensors(m->gguf); i++) {
        zm_gguf_tensor t;
        if (zm_gguf_tensor_info(m->gguf, i, &t) == ZM_OK) all += t.nbytes;
    }
    m->weight_bytes = all;
}

zm_status zm_model_load(zm_model **out, const char *path, const zm_model_opts *opts) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_model_load: out is NULL");
    *out = NULL;
    if (!path) return zm__err(ZM_ERR_INVALID, "zm_model_load: path is NULL");
    zm_model *m = calloc(1, sizeof *m);
    if (!m) return zm__err(ZM_ERR_NOMEM, "model: out of memory");
    if (opts) m->opts = *opts;
    zm_status st = zm_gguf_open(&m->gguf, path);
    if (st != ZM_OK) goto fail;
    const char *arch = NULL;
    uint64_t alen = 0;
    if (zm_gguf_get_str(m->gguf, "general.architecture", &arch, &alen) == ZM_OK)
        snprintf(m->arch, sizeof m->arch, "%.*s", (int)(alen < 31 ? alen : 31), arch);
    if ((st = zm_qwen3moe_hparams_read(m->gguf, &m->hp)) != ZM_OK) goto fail;
    if ((st = zm_qwen3moe_weights_load(m->gguf, &m->hp, &m->w)) != ZM_OK) goto fail;
    if (m->opts.n_ctx <= 0) m->opts.n_ctx = m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
    if (m->opts.n_ctx > (1 << 24)) { st = zm__err(ZM_ERR_RANGE, "model: n_ctx %lld too large", (long long)m->opts.n_ctx); goto fail; }
    m->be = zm_graph_backend_for(m->opts.device);
    if (!m->be) {
        st = zm__err(ZM_ERR_NO_DEVICE, "model: device %s: %s", zm_device_name(m->opts.device),
                     m->opts.device == ZM_CUDA && !zm_cuda_available() ? "no CUDA GPU answers"
                                                                        : "no graph executor for it in this build");
        goto fail;
    }
    zm_graph_backend_opts bo = {.n_threads = m->opts.n_threads, .poison = m->opts.poison, .profile = m->opts.profile};
    if ((st = m->be->ctx_new(&m->be_ctx, &bo)) != ZM_OK) goto fail;
    count_bytes(m);
    *out = m;
    return ZM_OK;
fail:
    zm_model_free(m);
    return zm__err_ctx(st, "%s", path);
}

void zm_model_free(zm_model *m) {
    if (!m) return;
    if (m->be && m->be_ctx) m->be->ctx_free(m->be_ctx);
    zm_qwen3moe_weights_free(&m->w);
    zm_gguf_free(m->gguf);
    free(m);
}

const char *zm_model_arch(const zm_model *m) { return m->arch; }
int64_t zm_model_n_vocab(const zm_model *m) { return m->hp.n_vocab; }
int64_t zm_model_n_layer(const zm_model *m) { return m->hp.n_layer; }
int64_t zm_model_n_embd(const zm_model *m) { return m->hp.n_embd; }
int64_t zm_model_n_head(const zm_model *m) { return m->hp.n_head; }
int64_t zm_model_n_head_kv(const zm_model *m) { return m->hp.n_head_kv; }
int64_t zm_model_head_dim(const zm_model *m) { return m->hp.head_dim; }
int64_t zm_model_n_expert(const zm_model *m) { return m->hp.n_expert; }
int64_t zm_model_n_expert_used(const zm_model *m) { return m->hp.n_expert_used; }
int64_t zm_model_n_ctx(const zm_model *m) { return m->opts.n_ctx; }
zm_dtype zm_model_weight_type(const zm_model *m) { return m->w.n_layer ? m->w.layers[0].gate_exps.dtype : ZM_F32; }
uint64_t zm_model_decode_bytes(const zm_model *m) { return m->decode_bytes; }
uint64_t zm_model_weight_bytes(const zm_model *m) { return m->weight_bytes; }
zm_device zm_model_device(const zm_model *m) { return m->opts.device; }

void zm__model_set_rewrite(zm_model *m, zm_graph_rewrite_fn fn, void *ctx) {
    m->rewrite = fn;
    m->rewrite_ctx = ctx;
}

static zm_status build(const zm_model *m, zm_graph_rewrite_fn fn, void *fctx, int64_t n, int all_logits, zm_graph **out) {
    ZM_TRY(zm_qwen3moe_build_graph(out, &m->hp, &m->w, n, m->opts.n_ctx, all_logits));
    if (!fn) return ZM_OK;
    zm_status st = fn(fctx, *out);
    if (st == ZM_OK) st = zm_graph_validate(*out);
    if (st != ZM_OK) {
        zm_graph_free(*out);
        *out = NULL;
        return zm__err_ctx(st, "graph rewrite");
    }
    return ZM_OK;
}

zm_status zm__model_build_graph(const zm_model *m, int64_t n_tokens, int all_logits, int use_hook, zm_graph **out) {
    return build(m, use_hook ? m->rewrite : NULL, m->rewrite_ctx, n_tokens, all_logits, out);
}

// ---------------------------------------------------------------------------
static void slot_clear(zm_session *s, graph_slot *g) {
    if (g->exec) s->m->be->exec_free(g->exec);
    zm_graph_free(g->g);
    memset(g, 0, sizeof *g);
}

static zm_status slot_fill(zm_session *s, graph_slot *sl, int64_t n) {
    slot_clear(s, sl);
    ZM_TRY(build(s->m, s->rewrite, s->rewrite_ctx, n, 0, &sl->g));
    zm_status st = s->m->be->exec_new(&sl->exec, s->m->be_ctx, s->state, sl->g);
    if (st != ZM_OK) {
        slot_clear(s, sl);
        return st;
    }
    sl->n = n;
    return ZM_OK;
}

zm_status zm_session_new(zm_session **out, zm_model *m) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_session_new: out is NULL");
    *out = NULL;
    if (!m) return zm__err(ZM_ERR_INVALID, "zm_session_new: model is NULL");
    zm_session *s = calloc(1, sizeof *s);
    if (!s) return zm__err(ZM_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->rewrite = m->rewrite;
    s->rewrite_ctx = m->rewrite_ctx;
    zm_status st = ZM_OK;
    s->posbuf = malloc(sizeof(int32_t) * ZM_PREFILL_CHUNK);
    if (!s->posbuf) { st = zm__err(ZM_ERR_NOMEM, "session: out of memory"); goto fail; }
    /* the decode graph declares every STATE slot: the session's KV cache */
    if ((st = build(m, s->rewrite, s->rewrite_ctx, 1, 0, &s->dec.g)) != ZM_OK) goto fail;
    if ((st = m->be->state_new(&s->state, m->be_ctx, s->dec.g)) != ZM_OK) goto fail;
    if ((st = m->be->exec_new(&s->dec.exec, m->be_ctx, s->state, s->dec.g)) != ZM_OK) goto fail;
    s->dec.n = 1;
    *out = s;
    return ZM_OK;
fail:
    zm_session_free(s);
    return st;
}

void zm_session_free(zm_session *s) {
    if (!s) return;
    slot_clear(s, &s->dec);
    for (int i = 0; i < 2; i++) slot_clear(s, &s->pre[i]);
    if (s->state) s->m->be->state_free(s->state);
    free(s->posbuf);
    free(s);
}

zm_status zm_session_reset(zm_session *s) {
    if (!s) return zm__err(ZM_ERR_INVALID, "zm_session_reset: NULL session");
    s->pos = 0;
    return s->m->be->state_clear(s->state);
}

int64_t zm_session_pos(const zm_session *s) { return s->pos; }
const zm_graph *zm__session_decode_graph(const zm_session *s) { return s->dec.g; }
int64_t zm_session_decode_arena_bytes(const zm_session *s) { return s->m->be->exec_bytes(s->dec.exec); }

int zm_session_decode_profile(const zm_session *s, const char **names, double *seconds, int64_t *calls, int n) {
    double sec[ZM_OP_COUNT];
    int64_t cnt[ZM_OP_COUNT];
    if (!s || !s->m->be->profile || s->m->be->profile(s->dec.exec, sec, cnt) != ZM_OK) return -1;
    int rows = 0;
    for (;;) { /* selection by time, largest first */
        int best = -1;
        for (int o = 0; o < ZM_OP_COUNT; o++)
            if (cnt[o] > 0 && (best < 0 || sec[o] > sec[best])) best = o;
        if (best < 0 || rows >= n) break;
        names[rows] = zm_op_name((zm_op)best);
        seconds[rows] = sec[best];
        calls[rows] = cnt[best];
        cnt[best] = 0;
        rows++;
    }
    return rows;
}

static zm_status get_slot(zm_session *s, int64_t n, graph_slot **out) {
    if (n == 1) { *out = &s->dec; return ZM_OK; }
    graph_slot *sl = NULL;
    for (int i = 0; i < 2; i++)
        if (s->pre[i].n == n) sl = &s->pre[i];
    if (!sl) {
        sl = s->pre[0].used <= s->pre[1].used ? &s->pre[0] : &s->pre[1];
        ZM_TRY(slot_fill(s, sl, n));
    }
    sl->used = ++s->clock;
    *out = sl;
    return ZM_OK;
}

/* The graph slot for n <= ZM_PREFILL_CHUNK tokens, with ids and their
 * positions (from s->pos) set as its inputs. */
static zm_status feed(zm_session *s, const int32_t *ids, int64_t n, graph_slot **out) {
    const zm_graph_backend *be = s->m->be;
    ZM_TRY(get_slot(s, n, out));
    for (int64_t i = 0; i < n; i++) s->posbuf[i] = (int32_t)(s->pos + i);
    ZM_TRY(be->set_input((*out)->exec, ZM_INPUT_TOKENS, ids, sizeof(int32_t) * (size_t)n));
    return be->set_input((*out)->exec, ZM_INPUT_POS, s->posbuf, sizeof(int32_t) * (size_t)n);
}

/* ids[0..n) are in the vocabulary and `steps` more positions fit the cache. */
static zm_status check_feed(const zm_session *s, const int32_t *ids, int64_t n, int64_t steps, const char *what) {
    const int64_t V = s->m->hp.n_vocab;
    if (steps > s->m->opts.n_ctx - s->pos)
        return zm__err(ZM_ERR_RANGE, "%s: %lld tokens at position %lld overflow the %lld-position KV cache", what, (long long)steps,
                       (long long)s->pos, (long long)s->m->opts.n_ctx);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return zm__err(ZM_ERR_RANGE, "%s: token %lld is id %d, outside the vocabulary [0, %lld)", what, (long long)i, ids[i],
                           (long long)V);
    return ZM_OK;
}

/* One chunk of n <= ZM_PREFILL_CHUNK tokens; outputs only when wanted. */
static zm_status run_chunk(zm_session *s, const int32_t *ids, int64_t n, float *logits, int32_t *next) {
    const zm_graph_backend *be = s->m->be;
    graph_slot *sl;
    ZM_TRY(feed(s, ids, n, &sl));
    ZM_TRY(be->run(sl->exec));
    s->pos += n;
    if (logits) ZM_TRY(be->get_output(sl->exec, 0, logits, sizeof(float) * (size_t)s->m->hp.n_vocab));
    if (next) ZM_TRY(be->get_output(sl->exec, 1, next, sizeof(int32_t)));
    return ZM_OK;
}

zm_status zm_session_prefill(zm_session *s, const int32_t *ids, int64_t n, float *logits, int32_t *next) {
    if (!s || !ids || n < 1) return zm__err(ZM_ERR_INVALID, "zm_session_prefill: NULL session/ids or n = %lld", (long long)n);
    ZM_TRY(check_feed(s, ids, n, n, "prefill"));
    for (int64_t done = 0; done < n;) {
        int64_t c = n - done < ZM_PREFILL_CHUNK ? n - done : ZM_PREFILL_CHUNK;
        int last = done + c == n;
        zm_status st = run_chunk(s, ids + done, c, last ? logits : NULL, last ? next : NULL);
        if (st != ZM_OK) return st;
        done += c;
    }
    return ZM_OK;
}

zm_status zm_session_decode(zm_session *s, int32_t id, float *logits, int32_t *next) {
    return zm_session_prefill(s, &id, 1, logits, next);
}

zm_status zm_session_decode_greedy(zm_session *s, int32_t id, int64_t n, int32_t *ids) {
    if (!s || !ids || n < 1) return zm__err(ZM_ERR_INVALID, "zm_session_decode_greedy: NULL session/ids or n = %lld", (long long)n);
    ZM_TRY(check_feed(s, &id, 1, n, "decode"));
    const zm_graph_backend *be = s->m->be;
    if (!be->run_greedy) { /* one step at a time through the host */
        for (int64_t i = 0; i < n; i++) {
            ZM_TRY(zm_session_decode(s, id, NULL, &id));
            ids[i] = id;
        }
        return ZM_OK;
    }
    graph_slot *sl;
    ZM_TRY(feed(s, &id, 1, &sl));
    ZM_TRY(be->run_greedy(sl->exec, n, ids));
    s->pos += n;
    return ZM_OK;
}
