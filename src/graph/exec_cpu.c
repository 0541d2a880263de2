/* The CPU backend: runs a planned graph node by node on the thread pool.
 * ctx = the pool; state = the KV cache buffers of a session; exec = one
 * graph's arena (from the planner) and the node -> pointer table.
 * The debug poison mode fills every arena buffer with NaN right after its
 * last reader ran, so an unsafe reuse by the planner shows up as NaN.
 * Checked by tests/test_graph.c and tests/test_model.c. */
#include "core/internal.h"
#include "graph/graph.h"
#include "graph/ops_cpu.h"
#include <string.h>

// ---------------------------------------------------------------------------
typedef struct {
    zm_pool *pool;
    int own_pool;
    zm_graph_backend_opts opts;
} cpu_ctx;

typedef struct {
    int slot;
    zm_dtype dtype;
    int64_t shape[3];
    uint64_t nbytes;
    void *buf;
} cpu_slot;

typedef struct {
    int n;
    cpu_slot *s;
} cpu_state;

typedef struct {
    cpu_ctx *ctx;
    cpu_state *state;
    const zm_graph *g;
    zm_plan *plan;
    char *arena;
    void **ptr;
    float *scratch;
    int64_t scratch_floats;
    int *free_head, *free_next; /* poison mode: buffers released after node i */
    int *todo, n_todo;          /* nodes with a kernel, in order (no leaves/views) */
    double prof_s[ZM_OP_COUNT];
    int64_t prof_n[ZM_OP_COUNT];
} cpu_exec;

// ---------------------------------------------------------------------------
static zm_status ctx_new(void **out, const zm_graph_backend_opts *opts) {
    *out = NULL;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory");
    if (opts) c->opts = *opts;
    if (c->opts.n_threads > 0) {
        zm_status st = zm_pool_new(&c->pool, c->opts.n_threads);
        if (st != ZM_OK) { free(c); return st; }
        c->own_pool = 1;
    } else {
        c->pool = zm_pool_default();
    }
    *out = c;
    return ZM_OK;
}

static void ctx_free(void *p) {
    cpu_ctx *c = p;
    if (!c) return;
    if (c->own_pool) zm_pool_free(c->pool);
    free(c);
}

static void state_free(void *p) {
    cpu_state *s = p;
    if (!s) return;
    for (int i = 0; i < s->n; i++) zm__free_aligned(s->s[i].buf);
    free(s->s);
    free(s);
}

static zm_status state_new(void **out, void *ctx, const zm_graph *g) {
    *out = NULL;
    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const zm_node *n = &g->nodes[i];
        if (n->op != ZM_OP_STATE) continue;
        cpu_slot *ns = realloc(s->s, sizeof *ns * (size_t)(s->n + 1));
        if (!ns) { state_free(s); return zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory"); }
        s->s = ns;
        cpu_slot *sl = &s->s[s->n];
        memset(sl, 0, sizeof *sl);
        sl->slot = n->ip[0];
        sl->dtype = n->dtype;
        memcpy(sl->shape, n->shape, sizeof sl->shape);
        sl->nbytes = n->nbytes;
        sl->buf = zm__alloc_aligned((size_t)n->nbytes);
        if (!sl->buf) {
            state_free(s);
            return zm__err(ZM_ERR_NOMEM, "cpu backend: cannot allocate %.1f MB of KV cache", (double)n->nbytes / 1e6);
        }
        memset(sl->buf, 0, (size_t)n->nbytes);
        s->n++;
    }
    *out = s;
    return ZM_OK;
}

static zm_status state_clear(void *p) {
    cpu_state *s = p;
    for (int i = 0; i < s->n; i++) memset(s->s[i].buf, 0, (size_t)s->s[i].nbytes);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
static void exec_free(void *p) {
    cpu_exec *e = p;
    if (!e) return;
    zm_plan_free(e->plan);
    zm__free_aligned(e->arena);
    zm__free_aligned(e->scratch);
    free(e->ptr);
    free(e->free_head);
    free(e->free_next);
    free(e->todo);
    free(e);
}

static zm_status exec_new(void **out, void *ctxp, void *statep, const zm_graph *g) {
    *out = NULL;
    cpu_ctx *ctx = ctxp;
    cpu_state *state = statep;
    ZM_TRY(zm_graph_validate(g));
    cpu_exec *e = calloc(1, sizeof *e);
    if (!e) return zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory");
    e->ctx = ctx;
    e->state = state;
    e->g = g;
    zm_status st = zm_plan_new(&e->plan, g, 64, !ctx->opts.no_reuse);
    if (st != ZM_OK) goto fail;
    e->arena = zm__alloc_aligned((size_t)(e->plan->arena_bytes ? e->plan->arena_bytes : 64));
    e->ptr = calloc((size_t)g->n_nodes + 1, sizeof *e->ptr);
    if (!e->arena || !e->ptr) { st = zm__err(ZM_ERR_NOMEM, "cpu backend: cannot allocate %.1f MB arena", (double)e->plan->arena_bytes / 1e6); goto fail; }
    int64_t sf = 0;
    e->todo = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    if (!e->todo) { st = zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory"); goto fail; }
    for (int i = 0; i < g->n_nodes; i++) {
        zm_op op = g->nodes[i].op;
        if (op != ZM_OP_WEIGHT && op != ZM_OP_INPUT && op != ZM_OP_STATE && op != ZM_OP_VIEW) e->todo[e->n_todo++] = i;
        const zm_node *n = &g->nodes[i];
        int64_t f = zm__cpu_scratch_floats(g, i);
        if (f > sf) sf = f;
        switch (n->op) {
        case ZM_OP_WEIGHT: e->ptr[i] = (void *)n->data; break;
        case ZM_OP_VIEW: e->ptr[i] = (char *)e->ptr[n->src[0]] + n->view_offset; break;
        case ZM_OP_KV_WRITE: e->ptr[i] = e->ptr[n->src[0]]; break;
        case ZM_OP_STATE: {
            cpu_slot *sl = NULL;
            for (int k = 0; state && k < state->n; k++)
                if (state->s[k].slot == n->ip[0]) sl = &state->s[k];
            if (!sl || sl->dtype != n->dtype || memcmp(sl->shape, n->shape, sizeof sl->shape)) {
                st = zm__err(ZM_ERR_SHAPE, "cpu backend: state slot %d of node '%s' missing from the session state or of another shape",
                             n->ip[0], n->name);
                goto fail;
            }
            e->ptr[i] = sl->buf;
            break;
        }
        default: e->ptr[i] = e->arena + e->plan->offset[i]; break;
        }
    }
    int nth = ctx->pool ? zm_pool_size(ctx->pool) : 1;
    e->scratch_floats = (sf + 15) & ~(int64_t)15;
    if (sf) {
        e->scratch = zm__alloc_aligned(sizeof(float) * (size_t)(e->scratch_floats * nth));
        if (!e->scratch) { st = zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory"); goto fail; }
    }
    if (ctx->opts.poison) {
        e->free_head = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
        e->free_next = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
        if (!e->free_head || !e->free_next) { st = zm__err(ZM_ERR_NOMEM, "cpu backend: out of memory"); goto fail; }
        for (int i = 0; i <= g->n_nodes; i++) e->free_head[i] = -1;
        for (int i = 0; i < g->n_nodes; i++) {
            if (e->plan->offset[i] < 0 || g->nodes[i].op == ZM_OP_INPUT) continue;
            int l = e->plan->last_use[i];
            e->free_next[i] = e->free_head[l];
            e->free_head[l] = i;
        }
        /* start from NaN everywhere, too: a read before a write shows */
        memset(e->arena, 0xff, (size_t)e->plan->arena_bytes);
    }
    *out = e;
    return ZM_OK;
fail:
    exec_free(e);
    return st;
}

static zm_status set_input(void *p, int slot, const void *host, size_t nbytes) {
    cpu_exec *e = p;
    if (slot < 0 || slot >= ZM_INPUT_COUNT || e->g->input[slot] < 0)
        return zm__err(ZM_ERR_INVALID, "cpu backend: graph has no input slot %d", slot);
    const zm_node *n = &e->g->nodes[e->g->input[slot]];
    if (nbytes != n->nbytes)
        return zm__err(ZM_ERR_SHAPE, "cpu backend: input %d is %llu bytes, got %zu", slot, (unsigned long long)n->nbytes, nbytes);
    memcpy(e->ptr[e->g->input[slot]], host, nbytes);
    return ZM_OK;
}

static zm_status run(void *p) {
    cpu_exec *e = p;
    zm__cpu_env env = {e->ctx->pool, NULL, e->scratch, e->scratch_floats};
    const zm_graph *g = e->g;
    const int prof = e->ctx->opts.profile;
    for (int t = 0; t < e->n_todo; t++) {
        const int i = e->todo[t];
        double t0 = prof ? zm__now() : 0;
        ZM_TRY(zm__cpu_node(&env, g, i, e->ptr));
        if (prof) {
            e->prof_s[g->nodes[i].op] += zm__now() - t0;
            e->prof_n[g->nodes[i].op]++;
        }
        if (e->free_head)
            for (int r = e->free_head[i]; r >= 0; r = e->free_next[r])
                memset(e->ptr[r], 0xff, (size_t)g->nodes[r].nbytes); /* 0xffffffff: a NaN */
    }
    return ZM_OK;
}

static zm_status get_output(void *p, int slot, void *host, size_t nbytes) {
    cpu_exec *e = p;
    if (slot < 0 || slot >= e->g->n_out) return zm__err(ZM_ERR_INVALID, "cpu backend: no output slot %d", slot);
    const zm_node *n = &e->g->nodes[e->g->out[slot]];
    if (nbytes != n->nbytes)
        return zm__err(ZM_ERR_SHAPE, "cpu backend: output %d is %llu bytes, got %zu", slot, (unsigned long long)n->nbytes, nbytes);
    memcpy(host, e->ptr[e->g->out[slot]], nbytes);
    return ZM_OK;
}

static int64_t exec_bytes(void *p) {
    cpu_exec *e = p;
    return e->plan->arena_bytes;
}

static zm_status profile(void *p, double *sec, int64_t *calls) {
    cpu_exec *e = p;
    if (!e->ctx->opts.profile) return zm__err(ZM_ERR_INVALID, "cpu backend: profiling was not enabled");
    memcpy(sec, e->prof_s, sizeof e->prof_s);
    memcpy(calls, e->prof_n, sizeof e->prof_n);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
const zm_graph_backend zm_graph_backend_cpu = {
    .name = "cpu", .device = ZM_CPU,
    .ctx_new = ctx_new, .ctx_free = ctx_free,
    .state_new = state_new, .state_free = state_free, .state_clear = state_clear,
    .exec_new = exec_new, .exec_free = exec_free,
    .set_input = set_input, .run = run, .get_output = get_output, .exec_bytes = exec_bytes, .profile = profile,
};

/* The CUDA executor (helper "cuda") plugs in by adding
 * src/graph/exec_cuda.h that declares
 *     extern const zm_graph_backend zm_graph_backend_cuda;
 * and defining it in its CUDA build; nothing here needs to change. */
#if defined(ZM_HAVE_CUDA) && __has_include("graph/exec_cuda.h")
#include "graph/exec_cuda.h"
#define ZM__CUDA_EXEC 1
#endif

const zm_graph_backend *zm_graph_backend_for(zm_device d) {
    if (d == ZM_CPU) return &zm_graph_backend_cpu;
#ifdef ZM__CUDA_EXEC
    if (d == ZM_CUDA) return zm_cuda_available() ? &zm_graph_backend_cuda : NULL;
#endif
    return NULL;
}
