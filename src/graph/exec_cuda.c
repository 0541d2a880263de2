/* The CUDA backend: runs a planned graph on one stream of one GPU.
 * ctx   = the stream and the weights, uploaded (repacked) once per model and
 *         keyed by their host pointer, so every graph of every session shares
 *         them; state = the KV cache on the device; exec = one graph's device
 *         arena and its launch list.
 * exec_new lowers the nodes to a list of kernel launches, fusing where the
 * result is bit-identical (src/kernels/cuda keeps one arithmetic per op):
 * an RMS_NORM read only by matrix-vector products is folded into their input
 * read; a MATMUL whose only reader is a residual ADD writes the sum; up to
 * three MATMULs sharing one input go in one launch; a KV_WRITE of a
 * QK_NORM_ROPE result is stored by that kernel; an ADD_RMSNORM fed by a
 * 1-row MATMUL or a GATHER_QMM_COMBINE is folded (the producer writes the
 * sum, the readers normalise it); a router MATMUL and its
 * TOPK_GATING_SOFTMAX are one launch; q/k QK_NORM_ROPE, both KV_WRITEs and
 * the ATTENTION after them are one launch. The first run() captures the
 * launches into a CUDA graph, every later run() replays it: the position and
 * the token ids are inputs in device memory, so nothing is rebuilt per token
 * and nothing waits on the host except get_output (the sampled id).
 * ZMLX_CUDA_GRAPH=0 runs the launches directly; ZMLX_CUDA_PROFILE=1 also
 * times each launch with events (zm__cuda_profile_dump prints the table).
 * Checked by tests/test_cuda_graph.c (stock vs fused graphs, CUDA vs CPU). */
#include "graph/exec_cuda.h"
#include "core/cuda.h"
#include "core/internal.h"
#include "kernels/cuda/ops_cuda.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef ZM_HAVE_CUDA
#include <cuda_runtime_api.h>

// ---------------------------------------------------------------------------
// Types
typedef struct {
    const void *host;
    zm_gpu_mat m;       /* matrices (ndim >= 2) */
    float *vec;          /* 1-D weights converted to f32 */
    int64_t n;
} wentry;

typedef struct {
    zm_graph_backend_opts opts;
    cudaStream_t stream;
    wentry **w;     /* each entry allocated apart: execs keep pointers to them */
    int nw, capw;
    int64_t weight_bytes;
} cuda_ctx;

typedef struct {
    int slot;
    zm_dtype dtype;
    int64_t shape[4];
    uint64_t nbytes;
    void *buf;
} cuda_slot;

typedef struct {
    int n;
    cuda_slot *s;
} cuda_state;

enum { L_NODE = 0, L_MULTI, L_ROUTER, L_ATTN }; /* launch kinds */
typedef struct {
    int kind, node;
    int n_multi, multi[3];  /* L_MULTI: MATMUL node ids sharing x */
    int x_node;             /* effective input node (norm folded) */
    int norm_node;          /* RMS_NORM folded into the input read, or -1 */
    int res_node;           /* residual added in the epilogue, or -1 */
    int out_node;           /* node whose buffer receives the result */
    int cache_node;         /* KV_WRITE folded into QK_NORM_ROPE, or -1 */
    int k_node, k_cache, v_write; /* second QK_NORM_ROPE (k) + its KV_WRITE, V's KV_WRITE */
    int gate_node;          /* L_ROUTER: the TOPK_GATING_SOFTMAX of this MATMUL's logits;
                               L_ATTN: the ATTENTION that takes this q/k norm+rope in */
} launch;

typedef struct {
    cuda_ctx *ctx;
    cuda_state *state;
    const zm_graph *g;
    zm_plan *plan;
    char *arena;
    void **ptr;            /* device pointer per node */
    wentry **wt;           /* weight entry per WEIGHT node */
    float **inv_freq;      /* per ROPE / QK_NORM_ROPE node */
    float *ones;           /* RMS_NORM without weight */
    void *attn_ws;
    float *scratch;        /* TOPK values */
    char *reloc;           /* nodes written early by a fused epilogue: own buffer */
    int *gate_counter;     /* L_ROUTER's last-block counter (zero between launches) */
    void *am_ws;           /* ARGMAX of one row over many blocks (zero between launches) */
    void *reloc_buf;
    launch *L;
    int nl;
    int *seg_at;           /* per launch: persistent segment starting here, or -1 */
    zm_gpu_persist **seg_p;
    int *seg_len;          /* launches the segment covers */
    int nseg;
    cudaGraph_t graph;
    cudaGraphExec_t gexec;
    cudaGraph_t graph_loop;      /* run_greedy: the graph + the greedy step */
    cudaGraphExec_t gexec_loop;
    int32_t *ring;               /* run_greedy: count + ZM_GREEDY_RING ids */
    int use_graph, profile;
    int64_t bytes;
    double prof_s[ZM_OP_COUNT];  /* per op kind (a QKV launch counts as matmul) */
    int64_t prof_c[ZM_OP_COUNT];
} cuda_exec;

// ---------------------------------------------------------------------------
// Profile (process-wide, ZMLX_CUDA_PROFILE=1): total ms and calls per op.
static double prof_ms[ZM_OP_COUNT + 2]; /* + matmul_multi, router_gate */
static long prof_n[ZM_OP_COUNT + 2];

static const char *key_name(int k) {
    return k == ZM_OP_COUNT ? "matmul_multi" : k > ZM_OP_COUNT ? "router_gate" : zm_op_name((zm_op)k);
}

void zm__cuda_profile_reset(void) {
    memset(prof_ms, 0, sizeof prof_ms);
    memset(prof_n, 0, sizeof prof_n);
}
void zm__cuda_profile_dump(FILE *f) {
    double tot = 0;
    for (int i = 0; i <= ZM_OP_COUNT + 1; i++) tot += prof_ms[i];
    fprintf(f, "%-24s %8s %10s %10s %6s\n", "launch", "calls", "total ms", "us/call", "share");
    for (int i = 0; i <= ZM_OP_COUNT + 1; i++) {
        if (!prof_n[i]) continue;
        fprintf(f, "%-24s %8ld %10.3f %10.2f %5.1f%%\n", key_name(i), prof_n[i],
                prof_ms[i], 1000.0 * prof_ms[i] / (double)prof_n[i], tot > 0 ? 100.0 * prof_ms[i] / tot : 0);
    }
    fprintf(f, "%-24s %8s %10.3f\n", "total", "", tot);
}

// ---------------------------------------------------------------------------
static zm_status ck(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return ZM_OK;
    return zm__err(ZM_ERR_CUDA, "cuda backend: %s: %s", what, cudaGetErrorString(e));
}

static zm_status ctx_new(void **out, const zm_graph_backend_opts *opts) {
    *out = NULL;
    ZM_TRY(zm_cuda_init());
    ZM_TRY(zm_gpu_kernels_init());
    cuda_ctx *c = calloc(1, sizeof *c);
    if (!c) return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory");
    if (opts) c->opts = *opts;
    zm_status st = ck(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "stream");
    if (st != ZM_OK) { free(c); return st; }
    *out = c;
    return ZM_OK;
}

static void ctx_free(void *p) {
    cuda_ctx *c = p;
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    for (int i = 0; i < c->nw; i++) {
        zm_gpu_mat_free(&c->w[i]->m);
        zm_cuda_free(c->w[i]->vec);
        free(c->w[i]);
    }
    free(c->w);
    cudaStreamDestroy(c->stream);
    free(c);
}

/* The device copy of a WEIGHT node's data, uploaded on first use. */
static zm_status weight_get(cuda_ctx *c, const zm_node *n, wentry **out) {
    for (int i = 0; i < c->nw; i++)
        if (c->w[i]->host == n->data) { *out = c->w[i]; return ZM_OK; }
    if (c->nw == c->capw) {
        int cap = c->capw ? 2 * c->capw : 256;
        wentry **nw = realloc(c->w, sizeof *nw * (size_t)cap);
        if (!nw) return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory");
        c->w = nw;
        c->capw = cap;
    }
    wentry *e = calloc(1, sizeof *e);
    if (!e) return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory");
    e->host = n->data;
    if (n->ndim == 1) {
        e->n = n->shape[0];
        float *tmp = malloc(sizeof(float) * (size_t)e->n);
        if (!tmp) return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory");
        zm_convert_to_f32(tmp, n->data, n->dtype, e->n);
        zm_status st = zm_cuda_malloc((void **)&e->vec, sizeof(float) * (size_t)e->n);
        if (st == ZM_OK) st = zm_cuda_memcpy_h2d(e->vec, tmp, sizeof(float) * (size_t)e->n);
        free(tmp);
        if (st != ZM_OK) { zm_cuda_free(e->vec); free(e); return zm__err_ctx(st, "weight '%s'", n->name); }
        c->weight_bytes += 4 * e->n;
    } else {
        int64_t n_mat = n->ndim == 3 ? n->shape[0] : 1, rows = n->shape[n->ndim - 2], cols = n->shape[n->ndim - 1];
        if (n->ndim == 4) n_mat = n->shape[0] * n->shape[1];
        zm_status st = zm_gpu_mat_upload(&e->m, n->dtype, n->data, n_mat, rows, cols);
        if (st != ZM_OK) { free(e); return zm__err_ctx(st, "weight '%s'", n->name); }
        c->weight_bytes += zm_gpu_mat_bytes(&e->m);
    }
    c->w[c->nw++] = e;
    *out = e;
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// State: the KV cache, zeroed.
static void state_free(void *p) {
    cuda_state *s = p;
    if (!s) return;
    for (int i = 0; i < s->n; i++) zm_cuda_free(s->s[i].buf);
    free(s->s);
    free(s);
}

static zm_status state_new(void **out, void *ctx, const zm_graph *g) {
    *out = NULL;
    (void)ctx;
    cuda_state *s = calloc(1, sizeof *s);
    if (!s) return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const zm_node *n = &g->nodes[i];
        if (n->op != ZM_OP_STATE) continue;
        cuda_slot *ns = realloc(s->s, sizeof *ns * (size_t)(s->n + 1));
        if (!ns) { state_free(s); return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); }
        s->s = ns;
        cuda_slot *sl = &s->s[s->n];
        memset(sl, 0, sizeof *sl);
        sl->slot = n->ip[0];
        sl->dtype = n->dtype;
        memcpy(sl->shape, n->shape, sizeof sl->shape);
        sl->nbytes = n->nbytes;
        zm_status st = zm_cuda_malloc(&sl->buf, (size_t)n->nbytes);
        if (st == ZM_OK) st = zm_cuda_memset(sl->buf, 0, (size_t)n->nbytes);
        if (st != ZM_OK) { state_free(s); return zm__err_ctx(st, "cuda backend: KV cache slot %d", n->ip[0]); }
        s->n++;
    }
    *out = s;
    return ZM_OK;
}

static zm_status state_clear(void *p) {
    cuda_state *s = p;
    for (int i = 0; i < s->n; i++) ZM_TRY(zm_cuda_memset(s->s[i].buf, 0, (size_t)s->s[i].nbytes));
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// Lowering
static int64_t last_dim(const zm_node *n) { return n->shape[n->ndim - 1]; }
static int64_t rows_of(const zm_node *n) { return zm_node_numel(n) / last_dim(n); }

/* Can node u read x through a folded RMS norm? (one token, matvec input) */
static int takes_norm(const zm_graph *g, int u, int via) {
    const zm_node *n = &g->nodes[u];
    if (n->op == ZM_OP_MATMUL) return n->src[1] == via && rows_of(n) == 1;
    if (n->op == ZM_OP_MATMUL_ID) return n->src[1] == via && n->shape[0] == 1 && g->nodes[via].shape[1] == 1;
    if (n->op == ZM_OP_GATHER_QMM_SWIGLU) return n->src[2] == via && n->shape[0] == 1;
    return 0;
}

/* RMS_NORM node r (one row, f32 weight of D) whose every reader (directly or
 * through VIEWs of it) takes a folded norm, and whose input stays live (in
 * the plan) until the last of them has run. */
static int norm_foldable(const zm_graph *g, const zm_plan *plan, int r) {
    const zm_node *n = &g->nodes[r];
    int maxc = r;
    if (n->op != ZM_OP_RMS_NORM || n->n_src < 2 || rows_of(n) != 1 || last_dim(n) % 32) return 0;
    if (g->nodes[n->src[1]].op != ZM_OP_WEIGHT) return 0;
    for (int o = 0; o < g->n_out; o++) if (g->out[o] == r) return 0;
    int seen = 0;
    for (int u = r + 1; u < g->n_nodes; u++) {
        const zm_node *m = &g->nodes[u];
        for (int s = 0; s < m->n_src; s++) {
            if (m->src[s] == r) {
                if (m->op == ZM_OP_VIEW) {
                    for (int o = 0; o < g->n_out; o++) if (g->out[o] == u) return 0;
                    for (int w = u + 1; w < g->n_nodes; w++)
                        for (int t = 0; t < g->nodes[w].n_src; t++)
                            if (g->nodes[w].src[t] == u) {
                                if (!takes_norm(g, w, u)) return 0;
                                seen++;
                                if (w > maxc) maxc = w;
                            }
                } else {
                    if (!takes_norm(g, u, r)) return 0;
                    seen++;
                    if (u > maxc) maxc = u;
                }
            }
        }
    }
    const int x = zm_graph_root(g, n->src[0]);
    const zm_op xo = g->nodes[x].op;
    if (xo != ZM_OP_INPUT && xo != ZM_OP_STATE && xo != ZM_OP_WEIGHT && plan->last_use[x] < maxc) return 0;
    return seen > 0;
}

/* Only leaves and views between a and b (exclusive), or nodes already taken. */
static int nothing_between(const zm_graph *g, const char *done, int a, int b) {
    for (int i = a + 1; i < b; i++) {
        zm_op o = g->nodes[i].op;
        if (o != ZM_OP_WEIGHT && o != ZM_OP_VIEW && o != ZM_OP_INPUT && o != ZM_OP_STATE && !done[i]) return 0;
    }
    return 1;
}

/* The node a VIEW chain starts from, and the chain's byte offset into it. */
static int view_root(const zm_graph *g, int x, int64_t *off) {
    *off = 0;
    while (g->nodes[x].op == ZM_OP_VIEW) {
        *off += g->nodes[x].view_offset;
        x = g->nodes[x].src[0];
    }
    return x;
}
/* For a consumer's x source: the RMS_NORM folded behind it (directly or via a
 * VIEW), or the folded ADD_RMSNORM whose normed half it views; else -1. */
static int folded_norm(const zm_graph *g, const char *fold, int x) {
    if (fold[x] && g->nodes[x].op == ZM_OP_RMS_NORM) return x;
    if (g->nodes[x].op != ZM_OP_VIEW) return -1;
    int64_t off;
    const int r = view_root(g, x, &off);
    if (!fold[r]) return -1;
    if (g->nodes[r].op == ZM_OP_RMS_NORM) return g->nodes[x].src[0] == r && off == 0 ? r : -1;
    if (g->nodes[r].op == ZM_OP_ADD_RMSNORM) return off == (int64_t)g->nodes[r].nbytes / 2 ? r : -1; /* the normed half */
    return -1;
}
/* The vector a consumer of folded norm r reads (and normalises itself): an
 * RMS_NORM's input, or an ADD_RMSNORM's sum half (at offset 0 of its buffer,
 * written by the producer's epilogue). */
static int norm_input(const zm_graph *g, int r) {
    return g->nodes[r].op == ZM_OP_ADD_RMSNORM ? r : g->nodes[r].src[0];
}

/* Do the device buffers of nodes a and b share a byte? (views included) */
static int overlaps(const cuda_exec *e, int a, int b) {
    const char *pa = e->ptr[a], *pb = e->ptr[b];
    const uint64_t na = e->g->nodes[a].nbytes, nb = e->g->nodes[b].nbytes;
    return pa < pb + nb && pb < pa + na;
}

/* ADD_RMSNORM r (one row) folded away on the GPU: the producer P of one of
 * its inputs is a 1-row MATMUL or a residual-free GATHER_QMM_COMBINE read
 * only by r, so P's epilogue adds the other input and writes the sum half
 * of r's buffer (the same __fadd_rn as k_add_rmsnorm), and every reader of
 * the normed half folds the norm into its input read (block_rms_scale and
 * norm_apply, as k_add_rmsnorm). Returns P (and *other), or -1. */
static int addnorm_producer(const cuda_exec *e, const int *uses, const char *done, int r, int *other) {
    const zm_graph *g = e->g;
    const zm_node *n = &g->nodes[r];
    if (n->op != ZM_OP_ADD_RMSNORM || rows_of(&g->nodes[n->src[0]]) != 1 || last_dim(n) % 32) return -1;
    if (g->nodes[n->src[2]].op != ZM_OP_WEIGHT) return -1;
    for (int o = 0; o < g->n_out; o++) if (g->out[o] == r) return -1;
    /* readers through VIEW chains: of the sum half anything, of the normed
     * half only consumers that fold a norm, of r itself or of a part of a
     * half nothing */
    int seen = 0;
    const int64_t half = (int64_t)n->nbytes / 2;
    for (int u = r + 1; u < g->n_nodes; u++) {
        const zm_node *m = &g->nodes[u];
        for (int s = 0; s < m->n_src; s++) {
            int64_t off;
            if (view_root(g, m->src[s], &off) != r || m->op == ZM_OP_VIEW) continue;
            if (m->src[s] == r) return -1;
            const zm_node *v = &g->nodes[m->src[s]];
            if ((uint64_t)half != v->nbytes || (off != 0 && off != half)) return -1;
            for (int o = 0; o < g->n_out; o++) if (g->out[o] == m->src[s] && off) return -1;
            if (off == 0) continue;
            if (!takes_norm(g, u, m->src[s])) return -1;
            seen++;
        }
    }
    for (int o = 0; o < g->n_out; o++) {
        int64_t off;
        if (view_root(g, g->out[o], &off) == r && off) return -1;
    }
    if (!seen) return -1;
    for (int s = 0; s < 2; s++) {
        const int P = n->src[s], o = n->src[1 - s];
        const zm_node *p = &g->nodes[P];
        if (P == o || o > P || uses[P] != 1) continue;
        const int ok = (p->op == ZM_OP_MATMUL && rows_of(p) == 1) ||
                       (p->op == ZM_OP_GATHER_QMM_COMBINE && p->n_src == 4 && g->nodes[p->src[2]].shape[0] == 1);
        if (!ok || !nothing_between(g, done, P, r)) continue;
        *other = o;
        return P;
    }
    return -1;
}

static zm_status lower(cuda_exec *e, const int *uses) {
    const zm_graph *g = e->g;
    const int N = g->n_nodes;
    char *fold = calloc((size_t)N, 1), *done = calloc((size_t)N, 1);
    e->L = calloc((size_t)N + 1, sizeof *e->L);
    if (!fold || !done || !e->L) { free(fold); free(done); return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); }
    int fuse = !getenv("ZMLX_CUDA_NOFUSE");
    int *an_res = malloc(sizeof(int) * (size_t)(N + 1)), *an_out = malloc(sizeof(int) * (size_t)(N + 1));
    if (!an_res || !an_out) { free(fold); free(done); free(an_res); free(an_out); return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); }
    for (int i = 0; i < N; i++) an_res[i] = an_out[i] = -1;
    if (fuse)
        for (int i = 0; i < N; i++) {
            fold[i] = (char)norm_foldable(g, e->plan, i);
            int o = -1, P = addnorm_producer(e, uses, done, i, &o);
            if (P >= 0 && an_out[P] < 0) { fold[i] = 1; an_res[P] = o; an_out[P] = i; e->reloc[i] = 1; }
        }
    for (int i = 0; i < N; i++) {
        const zm_node *n = &g->nodes[i];
        if (done[i] || fold[i]) continue;
        switch (n->op) {
        case ZM_OP_WEIGHT: case ZM_OP_INPUT: case ZM_OP_STATE: case ZM_OP_VIEW: case ZM_OP_NONE: continue;
        default: break;
        }
        launch l = {L_NODE, i, 0, {0}, -1, -1, -1, i, -1, -1, -1, -1, -1};
        if (n->op == ZM_OP_MATMUL || n->op == ZM_OP_MATMUL_ID || n->op == ZM_OP_GATHER_QMM_SWIGLU) {
            int xs = n->op == ZM_OP_GATHER_QMM_SWIGLU ? n->src[2] : n->src[1];
            int r = folded_norm(g, fold, xs);
            if (r >= 0) { l.norm_node = r; l.x_node = norm_input(g, r); }
        }
        if (an_out[i] >= 0) { /* this producer writes a folded ADD_RMSNORM's sum */
            l.res_node = an_res[i];
            l.out_node = an_out[i];
        }
        if (fuse && n->op == ZM_OP_MATMUL && rows_of(n) == 1 && l.res_node < 0 && uses[i] == 1 &&
            last_dim(n) <= 1024 && g->nodes[n->src[0]].ndim == 2) {
            /* router: logits read only by the gating right after them */
            for (int u = i + 1; u < N; u++) {
                const zm_node *t = &g->nodes[u];
                if (t->op == ZM_OP_WEIGHT || t->op == ZM_OP_VIEW) continue;
                if (t->op == ZM_OP_TOPK_GATING_SOFTMAX && t->src[0] == i && t->ip[0] <= 32) {
                    l.kind = L_ROUTER;
                    l.gate_node = u;
                    done[u] = 1;
                }
                break;
            }
        }
        if (fuse && n->op == ZM_OP_MATMUL && rows_of(n) == 1 && l.kind == L_NODE) {
            /* residual: the only reader is an ADD of the same shape */
            int is_out = 0;
            for (int o = 0; o < g->n_out; o++) is_out |= g->out[o] == i;
            if (uses[i] == 1 && !is_out && l.res_node < 0) {
                for (int u = i + 1; u < N; u++) {
                    const zm_node *a = &g->nodes[u];
                    if (a->op != ZM_OP_ADD || (a->src[0] != i && a->src[1] != i)) continue;
                    int other = a->src[0] == i ? a->src[1] : a->src[0];
                    /* the sum is written while x is read: if the planner
                     * gave the ADD x's space (freed after i), move it */
                    if (zm_node_numel(&g->nodes[other]) == zm_node_numel(n) && a->src[0] != a->src[1] && other < i &&
                        nothing_between(g, done, i, u)) {
                        if (overlaps(e, u, l.x_node >= 0 ? l.x_node : n->src[1])) e->reloc[u] = 1;
                        l.res_node = other;
                        l.out_node = u;
                        done[u] = 1;
                    }
                    break;
                }
            }
            /* siblings sharing the same input (and folded norm) */
            if (l.res_node < 0) {
                const zm_node *W0 = &g->nodes[n->src[0]];
                l.multi[0] = i;
                l.n_multi = 1;
                for (int u = i + 1; u < N && l.n_multi < 3; u++) {
                    const zm_node *m = &g->nodes[u];
                    if (done[u] || m->op != ZM_OP_MATMUL || m->src[1] != n->src[1] || rows_of(m) != 1) {
                        if (m->op != ZM_OP_WEIGHT && m->op != ZM_OP_VIEW && !done[u]) break; /* keep them adjacent */
                        continue;
                    }
                    const zm_node *W = &g->nodes[m->src[0]];
                    if (W->dtype != W0->dtype || last_dim(W) != last_dim(W0) || uses[u] == 0) break;
                    l.multi[l.n_multi++] = u;
                    done[u] = 1;
                }
                if (l.n_multi > 1) l.kind = L_MULTI;
            }
        }
        if (fuse && n->op == ZM_OP_QK_NORM_ROPE) {
            for (int u = i + 1; u < N; u++) {
                const zm_node *kw = &g->nodes[u];
                if (kw->op == ZM_OP_KV_WRITE && kw->src[1] == i && kw->src[2] == n->src[2] && !done[u]) {
                    l.cache_node = u;
                    done[u] = 1;
                    break;
                }
            }
            /* one token, q then k right after it: one launch for q, k, k's and
             * v's cache stores (all read data that is ready at i) */
            int j = i + 1;
            while (j < N && (g->nodes[j].op == ZM_OP_VIEW || g->nodes[j].op == ZM_OP_WEIGHT)) j++;
            const zm_node *k = j < N ? &g->nodes[j] : NULL;
            if (l.cache_node < 0 && n->shape[0] == 1 && k && k->op == ZM_OP_QK_NORM_ROPE && !done[j] &&
                k->src[2] == n->src[2] && k->shape[2] == n->shape[2] && k->ip[1] == n->ip[1] && k->ip[0] == n->ip[0] &&
                k->fp[0] == n->fp[0] && k->fp[1] == n->fp[1]) {
                int kc = -1, vw = -1;
                for (int u = j + 1; u < N; u++) {
                    const zm_node *w = &g->nodes[u];
                    if (w->op != ZM_OP_KV_WRITE || w->src[2] != n->src[2] || done[u]) continue;
                    if (w->src[1] == j && kc < 0) kc = u;
                    else if (w->src[1] < i && vw < 0 && zm_node_numel(&g->nodes[w->src[1]]) == zm_node_numel(k) &&
                             g->nodes[u].shape[2] == k->shape[2])
                        vw = u;
                }
                l.k_node = j;
                done[j] = 1;
                if (kc >= 0) { l.k_cache = kc; done[kc] = 1; }
                if (vw >= 0) { l.v_write = vw; done[vw] = 1; }
                /* the attention right after, reading only these: fold all in */
                int a = -1;
                for (int u = j + 1; u < N && a < 0; u++) {
                    const zm_op op = g->nodes[u].op;
                    if (op == ZM_OP_ATTENTION) a = u;
                    else if (op != ZM_OP_WEIGHT && op != ZM_OP_VIEW && op != ZM_OP_STATE && !done[u]) break;
                }
                const zm_node *an = a >= 0 ? &g->nodes[a] : NULL;
                if (an && kc >= 0 && vw >= 0 && an->shape[0] == 1 && an->src[0] == i && an->src[1] == kc && an->src[2] == vw &&
                    an->src[3] == n->src[2] && uses[i] == 1 && uses[j] == 1 && uses[kc] == 1 && uses[vw] == 1 &&
                    n->ip[0] == ZM_ROPE_NEOX && n->shape[2] <= 128 && n->shape[2] % 4 == 0 &&
                    g->nodes[kc].shape[2] == g->nodes[vw].shape[2] && !getenv("ZMLX_CUDA_NO_QKN")) {
                    l.kind = L_ATTN;
                    l.gate_node = a;
                    done[a] = 1;
                }
            }
        }
        e->L[e->nl++] = l;
    }
    free(fold);
    free(done);
    free(an_res);
    free(an_out);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// Launch one record
#define P(id) (e->ptr[(id)])
#define F(id) ((float *)e->ptr[(id)])
#define I(id) ((int32_t *)e->ptr[(id)])

static void shape4(const zm_node *n, int64_t out[4]) {
    for (int d = 0; d < 4; d++) out[d] = 1;
    for (int d = 0; d < n->ndim; d++) out[4 - n->ndim + d] = n->shape[d];
}

/* The arguments a launch record passes, shared by launch_one (one-op
 * kernels) and launch_steps (the persistent kernel's steps). */
typedef struct {
    const float *nw;          /* folded norm weights, or NULL */
    float eps;
    const float *x;           /* input of a matvec / expert launch (the folded norm's input) */
    const float *res;         /* residual added in the epilogue, or NULL */
    int n_w;                  /* L_MULTI: the matrices and outputs */
    const zm_gpu_mat *W[3];
    float *y[3];
    zm_gpu_qkn qkn;           /* L_ATTN */
    int32_t *gate_ids;        /* L_ROUTER: the gating's outputs */
    float *gate_w;
} largs;

static void launch_args(const cuda_exec *e, const launch *l, largs *a) {
    const zm_graph *g = e->g;
    const zm_node *n = &g->nodes[l->node];
    memset(a, 0, sizeof *a);
    const zm_node *nn = l->norm_node >= 0 ? &g->nodes[l->norm_node] : NULL;
    a->nw = nn ? e->wt[nn->op == ZM_OP_ADD_RMSNORM ? nn->src[2] : nn->src[1]]->vec : NULL;
    a->eps = nn ? nn->fp[0] : 0.f;
    const int xs = n->op == ZM_OP_GATHER_QMM_SWIGLU ? n->src[2] : n->n_src > 1 ? n->src[1] : -1;
    a->x = l->x_node >= 0 ? F(l->x_node) : xs >= 0 ? F(xs) : NULL;
    a->res = l->res_node >= 0 ? F(l->res_node) : n->op == ZM_OP_GATHER_QMM_COMBINE && n->n_src > 4 ? F(n->src[4]) : NULL;
    if (l->kind == L_MULTI) {
        a->n_w = l->n_multi;
        for (int j = 0; j < l->n_multi; j++) {
            a->W[j] = &e->wt[g->nodes[l->multi[j]].src[0]]->m;
            a->y[j] = F(l->multi[j]);
        }
    }
    if (l->kind == L_ATTN) {
        const zm_node *k = &g->nodes[l->k_node], *vw = &g->nodes[l->v_write];
        const zm_gpu_qkn q = {F(n->src[0]), e->wt[n->src[1]]->vec, F(k->src[0]), e->wt[k->src[1]]->vec, F(vw->src[1]),
                              F(l->k_cache), F(l->v_write), n->fp[0], n->ip[1], e->inv_freq[l->node]};
        a->qkn = q;
    }
    if (l->kind == L_ROUTER) {
        const int k = g->nodes[l->gate_node].ip[0];
        a->gate_ids = (int32_t *)((char *)P(l->gate_node) + 4 * k);
        a->gate_w = F(l->gate_node);
    }
}

/* Whether the combine launch l may read its expert ids and weights before
 * its dependency wait (`early`): every kernel releases its dependents only
 * after its own wait, so when l starts, everything launched before the
 * previous launch is complete; the previous launch must not write them. It
 * holds after the gate/up launch that read the same ids (the weights come
 * from the same gating). */
static int listed(const cuda_exec *e, const launch *l, const char *var);
static int early_ok(const cuda_exec *e, const launch *l) {
    if (l == e->L) return 0;
    const launch *p = l - 1;
    if (listed(e, p, "ZMLX_CUDA_SKIP")) return 0; /* measuring: the launch before that one comes first */
    const zm_node *n = &e->g->nodes[l->node], *pn = &e->g->nodes[p->node];
    return n->op == ZM_OP_GATHER_QMM_COMBINE && p->kind == L_NODE && pn->op == ZM_OP_GATHER_QMM_SWIGLU &&
           e->ptr[pn->src[3]] == e->ptr[n->src[2]] && e->ptr[p->node] != e->ptr[n->src[3]];
}

static zm_status launch_one(cuda_exec *e, const launch *l) {
    const zm_graph *g = e->g;
    const zm_node *n = &g->nodes[l->node];
    const int id = l->node;
    void *st = e->ctx->stream;
    largs A;
    launch_args(e, l, &A);
    const float *nw = A.nw;
    const float eps = A.eps;
    if (l->kind == L_ROUTER) {
        const zm_node *t = &g->nodes[l->gate_node];
        return zm_gpu_router_gate(&e->wt[n->src[0]]->m, A.x, nw, eps, F(id), e->gate_counter, t->ip[0], t->ip[1], A.gate_ids,
                                  A.gate_w, st);
    }
    if (l->kind == L_ATTN) { /* q/k norm + rope + cache stores + attention */
        const zm_node *a = &g->nodes[l->gate_node], *kc = &g->nodes[a->src[1]];
        return zm_gpu_attention_decode_qkn(&A.qkn, (int)n->shape[1], (int)kc->shape[1], (int)kc->shape[2], kc->shape[0], a->fp[0],
                                           I(n->src[2]), e->attn_ws, F(l->gate_node), st);
    }
    if (l->kind == L_MULTI) return zm_gpu_matvec_multi(A.n_w, A.W, A.x, nw, eps, A.y, st);
    const zm_node *s0 = n->n_src > 0 ? &g->nodes[n->src[0]] : NULL;
    switch (n->op) {
    case ZM_OP_GET_ROWS:
        return zm_gpu_embedding(&e->wt[n->src[0]]->m, I(n->src[1]), zm_node_numel(&g->nodes[n->src[1]]), F(id), st);
    case ZM_OP_RMS_NORM: {
        const float *w = n->n_src > 1 ? e->wt[n->src[1]]->vec : e->ones;
        return zm_gpu_rmsnorm(F(n->src[0]), w, rows_of(n), last_dim(n), n->fp[0], F(id), st);
    }
    case ZM_OP_MATMUL: {
        const zm_gpu_mat *W = &e->wt[n->src[0]]->m;
        if (rows_of(n) == 1) return zm_gpu_matvec(W, 0, A.x, nw, eps, A.res, F(l->out_node), st);
        return zm_gpu_matmul(W, 0, rows_of(n), A.x, NULL, F(id), st);
    }
    case ZM_OP_MATMUL_ID: {
        const zm_node *xn = &g->nodes[n->src[1]];
        return zm_gpu_expert_matvec(&e->wt[n->src[0]]->m, I(n->src[2]), n->shape[0], (int)n->shape[1], A.x,
                                     xn->shape[1] != 1, nw, eps, F(id), st);
    }
    case ZM_OP_ROPE:
        if (n->ip[0] != ZM_ROPE_NEOX) return zm__err(ZM_ERR_UNSUPPORTED, "cuda backend: node '%s': rope mode %d (NeoX only)", n->name, n->ip[0]);
        return zm_gpu_rope(F(n->src[0]), n->shape[0], (int)n->shape[1], (int)n->shape[2], n->ip[1], I(n->src[1]), e->inv_freq[id], F(id), st);
    case ZM_OP_KV_WRITE: {
        const zm_node *xs = &g->nodes[n->src[1]];
        return zm_gpu_kv_store(F(n->src[1]), xs->shape[0], xs->shape[1] * xs->shape[2], I(n->src[2]), F(id), st);
    }
    case ZM_OP_ATTENTION: {
        const zm_node *kc = &g->nodes[n->src[1]];
        if (kc->shape[2] != g->nodes[n->src[2]].shape[2])
            return zm__err(ZM_ERR_UNSUPPORTED, "cuda backend: node '%s': value dim differs from key dim", n->name);
        if (n->shape[0] == 1)
            return zm_gpu_attention_decode(F(n->src[0]), F(n->src[1]), F(n->src[2]), (int)n->shape[1], (int)kc->shape[1],
                                            (int)kc->shape[2], kc->shape[0], n->fp[0], I(n->src[3]), e->attn_ws, F(id), st);
        return zm_gpu_attention_prefill(F(n->src[0]), F(n->src[1]), F(n->src[2]), n->shape[0], (int)n->shape[1],
                                         (int)kc->shape[1], (int)kc->shape[2], n->fp[0], I(n->src[3]), F(id), st);
    }
    case ZM_OP_ADD: case ZM_OP_MUL: case ZM_OP_DIV: {
        int64_t a[4], b[4];
        shape4(s0, a);
        shape4(&g->nodes[n->src[1]], b);
        int op = n->op == ZM_OP_ADD ? 0 : n->op == ZM_OP_MUL ? 1 : 3;
        return zm_gpu_binary_nd(op, F(n->src[0]), a, F(n->src[1]), b, F(id), st);
    }
    case ZM_OP_SILU: return zm_gpu_unary(0, F(n->src[0]), zm_node_numel(n), 1.0f, F(id), st);
    case ZM_OP_SOFTMAX: return zm_gpu_softmax(F(n->src[0]), rows_of(n), last_dim(n), F(id), st);
    case ZM_OP_TOPK: return zm_gpu_topk_rows(F(n->src[0]), rows_of(s0), last_dim(s0), n->ip[0], e->scratch, I(id), st);
    case ZM_OP_GATHER: return zm_gpu_take(F(n->src[0]), rows_of(s0), last_dim(s0), I(n->src[1]), (int)last_dim(n), F(id), st);
    case ZM_OP_SUM: {
        const int ax = n->ip[0];
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < ax; d++) outer *= s0->shape[d];
        for (int d = ax + 1; d < s0->ndim; d++) inner *= s0->shape[d];
        return zm_gpu_sum_axis(F(n->src[0]), outer, s0->shape[ax], inner, F(id), st);
    }
    case ZM_OP_ARGMAX: return zm_gpu_argmax(F(n->src[0]), rows_of(s0), last_dim(s0), I(id), e->am_ws, st);
    case ZM_OP_TOPK_GATING_SOFTMAX: {
        const int64_t R = rows_of(s0), k = n->ip[0];
        return zm_gpu_topk_gating_softmax(F(n->src[0]), R, (int)last_dim(s0), (int)k, n->ip[1],
                                           (int32_t *)((char *)P(id) + 4 * R * k), F(id), st);
    }
    case ZM_OP_MOE_COMBINE:
        return zm_gpu_moe_combine(F(n->src[0]), F(n->src[1]), s0->shape[0], (int)s0->shape[1], s0->shape[2], NULL, F(id), st);
    case ZM_OP_SWIGLU: return zm_gpu_swiglu(F(n->src[0]), F(n->src[1]), zm_node_numel(n), F(id), st);
    case ZM_OP_GATHER_QMM_SWIGLU:
        return zm_gpu_gather_qmm_swiglu(&e->wt[n->src[0]]->m, &e->wt[n->src[1]]->m, I(n->src[3]), n->shape[0],
                                         (int)n->shape[1], A.x, nw, eps, F(id), st);
    case ZM_OP_GATHER_QMM_COMBINE: {
        const zm_node *ids = &g->nodes[n->src[2]];
        return zm_gpu_gather_qmm_combine(&e->wt[n->src[0]]->m, I(n->src[2]), F(n->src[3]), ids->shape[0], (int)ids->shape[1],
                                          F(n->src[1]), A.res, F(l->out_node), early_ok(e, l), st);
    }
    case ZM_OP_ADD_RMSNORM: {
        const int64_t R = rows_of(s0), D = last_dim(s0);
        return zm_gpu_add_rmsnorm(F(n->src[0]), F(n->src[1]), e->wt[n->src[2]]->vec, R, D, n->fp[0], F(id), F(id) + R * D, st);
    }
    case ZM_OP_QK_NORM_ROPE:
        if (l->k_node >= 0 && n->ip[0] == ZM_ROPE_NEOX) {
            const zm_node *k = &g->nodes[l->k_node];
            const zm_node *vw = l->v_write >= 0 ? &g->nodes[l->v_write] : NULL;
            return zm_gpu_qkv_norm_rope(F(n->src[0]), e->wt[n->src[1]]->vec, F(id), (int)n->shape[1], F(k->src[0]),
                                        e->wt[k->src[1]]->vec, F(l->k_node), l->k_cache >= 0 ? F(l->k_cache) : NULL,
                                        (int)k->shape[1], vw ? F(vw->src[1]) : NULL, vw ? F(l->v_write) : NULL,
                                        (int)n->shape[2], n->ip[1], n->fp[0], I(n->src[2]), e->inv_freq[id], st);
        }
        if (n->ip[0] != ZM_ROPE_NEOX) return zm__err(ZM_ERR_UNSUPPORTED, "cuda backend: node '%s': rope mode %d (NeoX only)", n->name, n->ip[0]);
        return zm_gpu_qk_norm_rope(F(n->src[0]), e->wt[n->src[1]]->vec, n->shape[0], (int)n->shape[1], (int)n->shape[2], n->ip[1],
                                    n->fp[0], I(n->src[2]), e->inv_freq[id], F(id), l->cache_node >= 0 ? F(l->cache_node) : NULL, st);
    default:
        return zm__err(ZM_ERR_UNSUPPORTED, "cuda backend: node %d '%s': op %s has no CUDA kernel", id, n->name, zm_op_name(n->op));
    }
}

// ---------------------------------------------------------------------------
// Persistent segments (ZMLX_CUDA_PERSIST=1; never with ZMLX_CUDA_NOFUSE or
// while profiling): a run of launches whose kernels all have a step in the
// persistent kernel (persist.cu) runs as one launch, with the same
// arguments launch_one would pass, hence the same bits. Off by default: on
// the H100 it measured slower than the captured graph of one-op kernels
// with programmatic dependent launch (docs/PROFILE.md).

/* The steps (at most 2) of launch l; 0 if it has none (runs on its own). */
static int launch_steps(cuda_exec *e, const launch *l, zm_gpu_step out[2]) {
    const zm_graph *g = e->g;
    const zm_node *n = &g->nodes[l->node];
    const int id = l->node;
    largs A;
    launch_args(e, l, &A);
    zm_status st = ZM_ERR_UNSUPPORTED;
    int ns = 1;
    if (l->kind == L_ROUTER) {
        const zm_node *t = &g->nodes[l->gate_node];
        const zm_gpu_mat *W = &e->wt[n->src[0]]->m;
        float *y = F(id);
        st = zm_gpu_step_matvec(&out[0], 1, &W, A.x, A.nw, A.eps, NULL, &y);
        if (st == ZM_OK) st = zm_gpu_step_gate(&out[1], F(id), (int)W->rows, t->ip[0], t->ip[1], A.gate_ids, A.gate_w);
        ns = 2;
    } else if (l->kind == L_ATTN) {
        const zm_node *a = &g->nodes[l->gate_node], *kc = &g->nodes[a->src[1]];
        st = zm_gpu_step_attention(&out[0], &A.qkn, NULL, NULL, NULL, (int)n->shape[1], (int)kc->shape[1], (int)kc->shape[2],
                                   kc->shape[0], a->fp[0], I(n->src[2]), e->attn_ws, F(l->gate_node));
    } else if (l->kind == L_MULTI) {
        st = zm_gpu_step_matvec(&out[0], A.n_w, A.W, A.x, A.nw, A.eps, NULL, A.y);
    } else {
        const zm_node *s0 = n->n_src > 0 ? &g->nodes[n->src[0]] : NULL;
        switch (n->op) {
        case ZM_OP_MATMUL:
            if (rows_of(n) == 1) {
                const zm_gpu_mat *W = &e->wt[n->src[0]]->m;
                float *y = F(l->out_node);
                st = zm_gpu_step_matvec(&out[0], 1, &W, A.x, A.nw, A.eps, &A.res, &y);
            }
            break;
        case ZM_OP_GATHER_QMM_SWIGLU:
            if (n->shape[0] == 1)
                st = zm_gpu_step_swiglu(&out[0], &e->wt[n->src[0]]->m, &e->wt[n->src[1]]->m, I(n->src[3]), (int)n->shape[1], A.x,
                                        A.nw, A.eps, F(id));
            break;
        case ZM_OP_GATHER_QMM_COMBINE: {
            const zm_node *ids = &g->nodes[n->src[2]];
            if (ids->shape[0] == 1)
                st = zm_gpu_step_combine(&out[0], &e->wt[n->src[0]]->m, I(n->src[2]), F(n->src[3]), (int)ids->shape[1], F(n->src[1]),
                                         A.res, F(l->out_node));
            break;
        }
        case ZM_OP_GET_ROWS:
            st = zm_gpu_step_embedding(&out[0], &e->wt[n->src[0]]->m, I(n->src[1]), zm_node_numel(&g->nodes[n->src[1]]), F(id));
            break;
        case ZM_OP_ARGMAX:
            if (rows_of(s0) == 1) st = zm_gpu_step_argmax(&out[0], F(n->src[0]), last_dim(s0), I(id));
            break;
        case ZM_OP_ATTENTION: {
            const zm_node *kc = &g->nodes[n->src[1]];
            if (n->shape[0] == 1 && kc->shape[2] == g->nodes[n->src[2]].shape[2])
                st = zm_gpu_step_attention(&out[0], NULL, F(n->src[0]), F(n->src[1]), F(n->src[2]), (int)n->shape[1], (int)kc->shape[1],
                                           (int)kc->shape[2], kc->shape[0], n->fp[0], I(n->src[3]), e->attn_ws, F(id));
            break;
        }
        default: break;
        }
    }
    if (st != ZM_OK) {
        zm_clear_error();
        return 0;
    }
    return ns;
}

static zm_status build_segments(cuda_exec *e) {
    const char *env = getenv("ZMLX_CUDA_PERSIST");
    if (!env || strcmp(env, "1") || getenv("ZMLX_CUDA_NOFUSE") || e->profile || e->nl < 2) return ZM_OK;
    zm_gpu_step *steps = malloc(sizeof *steps * (size_t)(2 * e->nl));
    int *ns = malloc(sizeof(int) * (size_t)e->nl);
    e->seg_at = malloc(sizeof(int) * (size_t)e->nl);
    e->seg_p = calloc((size_t)e->nl, sizeof *e->seg_p);
    e->seg_len = calloc((size_t)e->nl, sizeof *e->seg_len);
    zm_status st = ZM_OK;
    if (!steps || !ns || !e->seg_at || !e->seg_p || !e->seg_len) st = zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory");
    for (int i = 0; st == ZM_OK && i < e->nl; i++) {
        zm_gpu_step two[2];
        e->seg_at[i] = -1;
        ns[i] = launch_steps(e, &e->L[i], two);
        memcpy(&steps[2 * i], two, sizeof two);
    }
    for (int i = 0; st == ZM_OK && i < e->nl;) {
        int j = i, n = 0;
        while (j < e->nl && ns[j]) n += ns[j++];
        if (n >= 2) {
            zm_gpu_step *run = malloc(sizeof *run * (size_t)n);
            if (!run) { st = zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); break; }
            int m = 0;
            for (int k = i; k < j; k++)
                for (int t = 0; t < ns[k]; t++) run[m++] = steps[2 * k + t];
            st = zm_gpu_persist_new(&e->seg_p[e->nseg], run, n);
            free(run);
            if (st != ZM_OK) break;
            e->seg_at[i] = e->nseg;
            e->seg_len[e->nseg++] = j - i;
        }
        i = j > i ? j : i + 1;
    }
    free(steps);
    free(ns);
    return st;
}

/* The profile's name of a launch kind (matmul_multi, router_gate, or the
 * op's own name); its index into prof_ms. */
static int launch_key(const cuda_exec *e, const launch *l) {
    const int op = (int)e->g->nodes[l->node].op;
    return l->kind == L_MULTI ? ZM_OP_COUNT : l->kind == L_ROUTER ? ZM_OP_COUNT + 1 : l->kind == L_ATTN ? (int)ZM_OP_ATTENTION : op;
}
/* Measuring aids (the output is wrong while they are set; timing only):
 * ZMLX_CUDA_SKIP=name,name leaves out the launches of those kinds (the
 * profile's names), so the token time drops by what they cost in place;
 * ZMLX_CUDA_TWICE=name,name launches those kinds twice (the second reads
 * the weights from a warm L2: where skipping breaks the data flow, e.g.
 * the router's expert ids); ZMLX_CUDA_NOPS=N adds N empty kernels
 * (dependency wait and release, no work) after every launch, so the token
 * time grows by N times what a kernel boundary costs. */
static int listed(const cuda_exec *e, const launch *l, const char *var) {
    const char *s = getenv(var);
    if (!s || !*s) return 0;
    const char *name = key_name(launch_key(e, l));
    const size_t n = strlen(name);
    for (const char *p = s; (p = strstr(p, name)); p += n)
        if ((p == s || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}
static zm_status enqueue_all(cuda_exec *e) {
    const char *nops_env = getenv("ZMLX_CUDA_NOPS");
    const int nops = nops_env ? atoi(nops_env) : 0;
    for (int i = 0; i < e->nl;) {
        if (e->seg_at && e->seg_at[i] >= 0) {
            const int k = e->seg_at[i];
            zm_status st = zm_gpu_persist_run(e->seg_p[k], e->ctx->stream);
            if (st != ZM_OK) return zm__err_ctx(st, "persistent run of launches %d..%d", i, i + e->seg_len[k] - 1);
            i += e->seg_len[k];
            continue;
        }
        const int times = listed(e, &e->L[i], "ZMLX_CUDA_SKIP") ? 0 : listed(e, &e->L[i], "ZMLX_CUDA_TWICE") ? 2 : 1;
        zm_status st = ZM_OK;
        for (int j = 0; j < times && st == ZM_OK; j++) st = launch_one(e, &e->L[i]);
        if (st != ZM_OK) return zm__err_ctx(st, "node %d '%s'", e->L[i].node, e->g->nodes[e->L[i].node].name);
        for (int j = 0; j < nops && st == ZM_OK; j++) st = zm_gpu_noop(e->ctx->stream);
        if (st != ZM_OK) return st;
        i++;
    }
    return ZM_OK;
}

static zm_status run_profiled(cuda_exec *e) {
    cudaEvent_t a, b;
    ZM_TRY(ck(cudaEventCreate(&a), "event"));
    ZM_TRY(ck(cudaEventCreate(&b), "event"));
    zm_status st = ZM_OK;
    for (int i = 0; i < e->nl && st == ZM_OK; i++) {
        cudaEventRecord(a, e->ctx->stream);
        st = launch_one(e, &e->L[i]);
        cudaEventRecord(b, e->ctx->stream);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        int op = (int)e->g->nodes[e->L[i].node].op, k = launch_key(e, &e->L[i]);
        prof_ms[k] += ms;
        prof_n[k]++;
        e->prof_s[op] += ms * 1e-3;
        e->prof_c[op]++;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return st;
}

// ---------------------------------------------------------------------------
static void exec_free(void *p) {
    cuda_exec *e = p;
    if (!e) return;
    if (e->ctx) cudaStreamSynchronize(e->ctx->stream);
    if (e->gexec) cudaGraphExecDestroy(e->gexec);
    if (e->graph) cudaGraphDestroy(e->graph);
    if (e->gexec_loop) cudaGraphExecDestroy(e->gexec_loop);
    if (e->graph_loop) cudaGraphDestroy(e->graph_loop);
    zm_cuda_free(e->ring);
    if (e->inv_freq) {
        for (int i = 0; i < e->g->n_nodes; i++) zm_cuda_free(e->inv_freq[i]);
        free(e->inv_freq);
    }
    zm_cuda_free(e->arena);
    zm_cuda_free(e->ones);
    zm_cuda_free(e->attn_ws);
    zm_cuda_free(e->scratch);
    zm_cuda_free(e->reloc_buf);
    zm_cuda_free(e->gate_counter);
    zm_cuda_free(e->am_ws);
    for (int i = 0; i < e->nseg; i++) zm_gpu_persist_free(e->seg_p[i]);
    free(e->seg_p);
    free(e->seg_at);
    free(e->seg_len);
    free(e->reloc);
    zm_plan_free(e->plan);
    free(e->ptr);
    free(e->wt);
    free(e->L);
    free(e);
}

/* A node whose result a fused epilogue writes before the node's own place in
 * the order (the sum of a folded ADD / ADD_RMSNORM) may have been planned
 * into the space of an input still being read at that point: such nodes get
 * a buffer of their own, alive as long as the exec; views are re-resolved. */
static zm_status relocate(cuda_exec *e) {
    const zm_graph *g = e->g;
    int64_t tot = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (e->reloc[i]) tot += ((int64_t)g->nodes[i].nbytes + 255) & ~(int64_t)255;
    if (!tot) return ZM_OK;
    ZM_TRY(zm_cuda_malloc(&e->reloc_buf, (size_t)tot));
    if (e->ctx->opts.poison) ZM_TRY(zm_cuda_memset(e->reloc_buf, 0xff, (size_t)tot));
    e->bytes += tot;
    char *p = e->reloc_buf;
    for (int i = 0; i < g->n_nodes; i++) {
        const zm_node *n = &g->nodes[i];
        if (e->reloc[i]) {
            e->ptr[i] = p;
            p += ((int64_t)n->nbytes + 255) & ~(int64_t)255;
        } else if (n->op == ZM_OP_VIEW) {
            e->ptr[i] = (char *)e->ptr[n->src[0]] + n->view_offset;
        } else if (n->op == ZM_OP_KV_WRITE) {
            e->ptr[i] = e->ptr[n->src[0]];
        }
    }
    return ZM_OK;
}

static zm_status exec_new(void **out, void *ctxp, void *statep, const zm_graph *g) {
    *out = NULL;
    cuda_ctx *ctx = ctxp;
    cuda_state *state = statep;
    ZM_TRY(zm_graph_validate(g));
    cuda_exec *e = calloc(1, sizeof *e);
    int *uses = calloc((size_t)g->n_nodes + 1, sizeof *uses);
    if (!e || !uses) { free(e); free(uses); return zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); }
    e->ctx = ctx;
    e->state = state;
    e->g = g;
    const char *env = getenv("ZMLX_CUDA_GRAPH");
    e->use_graph = !(env && !strcmp(env, "0"));
    env = getenv("ZMLX_CUDA_PROFILE");
    e->profile = (env && strcmp(env, "0")) || ctx->opts.profile;
    zm_status st = zm_plan_new(&e->plan, g, 256, !ctx->opts.no_reuse);
    if (st != ZM_OK) goto fail;
    e->ptr = calloc((size_t)g->n_nodes + 1, sizeof *e->ptr);
    e->wt = calloc((size_t)g->n_nodes + 1, sizeof *e->wt);
    e->inv_freq = calloc((size_t)g->n_nodes + 1, sizeof *e->inv_freq);
    if (!e->ptr || !e->wt || !e->inv_freq) { st = zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); goto fail; }
    if ((st = zm_gpu_kernels_init()) != ZM_OK) goto fail; /* re-reads ZMLX_CUDA_DBG */
    if ((st = zm_cuda_malloc((void **)&e->arena, (size_t)(e->plan->arena_bytes ? e->plan->arena_bytes : 256))) != ZM_OK) goto fail;
    if (ctx->opts.poison && (st = zm_cuda_memset(e->arena, 0xff, (size_t)e->plan->arena_bytes)) != ZM_OK) goto fail;
    e->bytes = e->plan->arena_bytes;
    int64_t max_d = 1, max_topk = 1, ws = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const zm_node *n = &g->nodes[i];
        for (int s = 0; s < n->n_src; s++) uses[n->src[s]]++;
        switch (n->op) {
        case ZM_OP_WEIGHT:
            if ((st = weight_get(ctx, n, &e->wt[i])) != ZM_OK) goto fail;
            break;
        case ZM_OP_VIEW: e->ptr[i] = (char *)e->ptr[n->src[0]] + n->view_offset; break;
        case ZM_OP_KV_WRITE: e->ptr[i] = e->ptr[n->src[0]]; break;
        case ZM_OP_STATE: {
            cuda_slot *sl = NULL;
            for (int k = 0; state && k < state->n; k++)
                if (state->s[k].slot == n->ip[0]) sl = &state->s[k];
            if (!sl || sl->dtype != n->dtype || memcmp(sl->shape, n->shape, sizeof sl->shape)) {
                st = zm__err(ZM_ERR_SHAPE, "cuda backend: state slot %d of node '%s' missing from the session state or of another shape", n->ip[0], n->name);
                goto fail;
            }
            e->ptr[i] = sl->buf;
            break;
        }
        default: e->ptr[i] = e->arena + e->plan->offset[i]; break;
        }
        if (n->op == ZM_OP_RMS_NORM && last_dim(n) > max_d) max_d = last_dim(n);
        if (n->op == ZM_OP_TOPK && zm_node_numel(n) > max_topk) max_topk = zm_node_numel(n);
        if (n->op == ZM_OP_ATTENTION) {
            const zm_node *kc = &g->nodes[n->src[1]];
            int64_t b = zm_gpu_attention_ws_bytes((int)n->shape[1], (int)kc->shape[1], (int)kc->shape[2], kc->shape[0]);
            if (b > ws) ws = b;
        }
        if (n->op == ZM_OP_ROPE || n->op == ZM_OP_QK_NORM_ROPE) {
            const int nr = n->ip[1];
            const double base = n->op == ZM_OP_ROPE ? n->fp[0] : n->fp[1];
            if (nr < 2 || nr > n->shape[2] || nr % 2) { st = zm__err(ZM_ERR_SHAPE, "cuda backend: node '%s': n_rot %d", n->name, nr); goto fail; }
            float tab[512];
            if (nr / 2 > 512) { st = zm__err(ZM_ERR_UNSUPPORTED, "cuda backend: n_rot %d", nr); goto fail; }
            for (int k = 0; k < nr / 2; k++) tab[k] = (float)pow(base, -2.0 * k / nr);
            if ((st = zm_cuda_malloc((void **)&e->inv_freq[i], sizeof(float) * (size_t)(nr / 2))) != ZM_OK) goto fail;
            if ((st = zm_cuda_memcpy_h2d(e->inv_freq[i], tab, sizeof(float) * (size_t)(nr / 2))) != ZM_OK) goto fail;
        }
    }
    for (int o = 0; o < g->n_out; o++) uses[g->out[o]]++;
    {
        float *ones = malloc(sizeof(float) * (size_t)max_d);
        if (!ones) { st = zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); goto fail; }
        for (int64_t i = 0; i < max_d; i++) ones[i] = 1.0f;
        st = zm_cuda_malloc((void **)&e->ones, sizeof(float) * (size_t)max_d);
        if (st == ZM_OK) st = zm_cuda_memcpy_h2d(e->ones, ones, sizeof(float) * (size_t)max_d);
        free(ones);
        if (st != ZM_OK) goto fail;
    }
    if ((st = zm_cuda_malloc((void **)&e->scratch, sizeof(float) * (size_t)max_topk)) != ZM_OK) goto fail;
    if (ws) {
        if ((st = zm_cuda_malloc(&e->attn_ws, (size_t)ws)) != ZM_OK) goto fail;
        if ((st = zm_cuda_memset(e->attn_ws, 0, (size_t)ws)) != ZM_OK) goto fail;
        e->bytes += ws;
    }
    if ((st = zm_cuda_malloc((void **)&e->gate_counter, 256)) != ZM_OK) goto fail;
    if ((st = zm_cuda_memset(e->gate_counter, 0, 256)) != ZM_OK) goto fail;
    if ((st = zm_cuda_malloc(&e->am_ws, (size_t)zm_gpu_argmax_ws_bytes())) != ZM_OK) goto fail;
    if ((st = zm_cuda_memset(e->am_ws, 0, (size_t)zm_gpu_argmax_ws_bytes())) != ZM_OK) goto fail;
    if (!(e->reloc = calloc((size_t)g->n_nodes + 1, 1))) { st = zm__err(ZM_ERR_NOMEM, "cuda backend: out of memory"); goto fail; }
    if ((st = lower(e, uses)) != ZM_OK) goto fail;
    if ((st = relocate(e)) != ZM_OK) goto fail;
    if ((st = build_segments(e)) != ZM_OK) goto fail;
    free(uses);
    *out = e;
    return ZM_OK;
fail:
    free(uses);
    exec_free(e);
    return st;
}

static zm_status set_input(void *p, int slot, const void *host, size_t nbytes) {
    cuda_exec *e = p;
    if (slot < 0 || slot >= ZM_INPUT_COUNT || e->g->input[slot] < 0)
        return zm__err(ZM_ERR_INVALID, "cuda backend: graph has no input slot %d", slot);
    const zm_node *n = &e->g->nodes[e->g->input[slot]];
    if (nbytes != n->nbytes)
        return zm__err(ZM_ERR_SHAPE, "cuda backend: input %d is %llu bytes, got %zu", slot, (unsigned long long)n->nbytes, nbytes);
    return ck(cudaMemcpyAsync(e->ptr[e->g->input[slot]], host, nbytes, cudaMemcpyHostToDevice, e->ctx->stream), "input copy");
}

/* Capture what enq enqueues into *graph and instantiate it as *gexec. */
static zm_status capture(cuda_exec *e, zm_status (*enq)(cuda_exec *), cudaGraph_t *graph, cudaGraphExec_t *gexec) {
    cudaStream_t s = e->ctx->stream;
    ZM_TRY(ck(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture"));
    zm_status st = enq(e);
    cudaGraph_t gr = NULL;
    cudaError_t ce = cudaStreamEndCapture(s, &gr);
    if (st != ZM_OK) { if (gr) cudaGraphDestroy(gr); return st; }
    ZM_TRY(ck(ce, "end capture"));
    *graph = gr;
    return ck(cudaGraphInstantiate(gexec, gr, 0), "graph instantiate");
}

static zm_status run(void *p) {
    cuda_exec *e = p;
    if (e->profile) return run_profiled(e);
    if (!e->use_graph) return enqueue_all(e);
    if (!e->gexec) ZM_TRY(capture(e, enqueue_all, &e->graph, &e->gexec));
    return ck(cudaGraphLaunch(e->gexec, e->ctx->stream), "graph launch");
}

/* Greedy decode on the device (zm_graph_backend.run_greedy): one capture
 * of the graph followed by the greedy step (zm_gpu_greedy_advance), then n
 * launches back to back; the ids come back every ZM_GREEDY_RING steps. */
#define ZM_GREEDY_RING 1024
static zm_status enqueue_greedy(cuda_exec *e) {
    const zm_graph *g = e->g;
    ZM_TRY(e->profile ? run_profiled(e) : enqueue_all(e));
    return zm_gpu_greedy_advance(I(g->input[ZM_INPUT_TOKENS]), I(g->input[ZM_INPUT_POS]), I(g->out[1]), e->ring,
                                 ZM_GREEDY_RING, e->ctx->stream);
}
static zm_status run_greedy(void *p, int64_t n, int32_t *ids) {
    cuda_exec *e = p;
    const zm_graph *g = e->g;
    cudaStream_t s = e->ctx->stream;
    if (n < 1 || !ids) return zm__err(ZM_ERR_INVALID, "cuda backend: greedy run of %lld steps", (long long)n);
    const int ti = g->input[ZM_INPUT_TOKENS], pi = g->input[ZM_INPUT_POS];
    if (g->n_tokens != 1 || ti < 0 || pi < 0 || g->n_out < 2 || g->nodes[g->out[1]].dtype != ZM_I32 ||
        zm_node_numel(&g->nodes[g->out[1]]) != 1 || g->nodes[ti].nbytes != 4 || g->nodes[pi].nbytes != 4)
        return zm__err(ZM_ERR_UNSUPPORTED, "cuda backend: greedy run needs a one-token graph with its greedy id as output 1");
    if (!e->ring) ZM_TRY(zm_cuda_malloc((void **)&e->ring, sizeof(int32_t) * (1 + ZM_GREEDY_RING)));
    const int graph = e->use_graph && !e->profile;
    if (graph && !e->gexec_loop) ZM_TRY(capture(e, enqueue_greedy, &e->graph_loop, &e->gexec_loop));
    for (int64_t done = 0; done < n;) {
        const int64_t c = n - done < ZM_GREEDY_RING ? n - done : ZM_GREEDY_RING;
        ZM_TRY(ck(cudaMemsetAsync(e->ring, 0, sizeof(int32_t), s), "ring reset"));
        for (int64_t i = 0; i < c; i++)
            ZM_TRY(graph ? ck(cudaGraphLaunch(e->gexec_loop, s), "graph launch") : enqueue_greedy(e));
        ZM_TRY(ck(cudaMemcpyAsync(ids + done, e->ring + 1, sizeof(int32_t) * (size_t)c, cudaMemcpyDeviceToHost, s), "ids copy"));
        ZM_TRY(ck(cudaStreamSynchronize(s), "sync"));
        done += c;
    }
    return ZM_OK;
}

static zm_status get_output(void *p, int slot, void *host, size_t nbytes) {
    cuda_exec *e = p;
    if (slot < 0 || slot >= e->g->n_out) return zm__err(ZM_ERR_INVALID, "cuda backend: no output slot %d", slot);
    const zm_node *n = &e->g->nodes[e->g->out[slot]];
    if (nbytes != n->nbytes)
        return zm__err(ZM_ERR_SHAPE, "cuda backend: output %d is %llu bytes, got %zu", slot, (unsigned long long)n->nbytes, nbytes);
    ZM_TRY(ck(cudaMemcpyAsync(host, e->ptr[e->g->out[slot]], nbytes, cudaMemcpyDeviceToHost, e->ctx->stream), "output copy"));
    return ck(cudaStreamSynchronize(e->ctx->stream), "sync");
}

static int64_t exec_bytes(void *p) { return ((cuda_exec *)p)->bytes; }

static zm_status exec_profile(void *p, double *seconds, int64_t *calls) {
    cuda_exec *e = p;
    if (!e->profile) return zm__err(ZM_ERR_INVALID, "cuda backend: profiling was not enabled for this graph");
    memcpy(seconds, e->prof_s, sizeof e->prof_s);
    memcpy(calls, e->prof_c, sizeof e->prof_c);
    return ZM_OK;
}

int64_t zm__cuda_ctx_weight_bytes(const void *ctx) { return ctx ? ((const cuda_ctx *)ctx)->weight_bytes : 0; }
/* Kernels enqueued per run: a persistent segment counts its barrier reset
 * and its kernel. */
int zm__cuda_exec_launches(const void *exec) {
    const cuda_exec *e = exec;
    if (!e) return 0;
    int n = e->nl;
    for (int i = 0; i < e->nseg; i++) n += 2 - e->seg_len[i];
    return n;
}

const zm_graph_backend zm_graph_backend_cuda = {
    .name = "cuda", .device = ZM_CUDA,
    .ctx_new = ctx_new, .ctx_free = ctx_free,
    .state_new = state_new, .state_free = state_free, .state_clear = state_clear,
    .exec_new = exec_new, .exec_free = exec_free,
    .set_input = set_input, .run = run, .get_output = get_output, .exec_bytes = exec_bytes,
    .profile = exec_profile, .run_greedy = run_greedy,
};

#else /* !ZM_HAVE_CUDA */
void zm__cuda_profile_reset(void) {}
void zm__cuda_profile_dump(FILE *f) { (void)f; }
int64_t zm__cuda_ctx_weight_bytes(const void *ctx) { (void)ctx; return 0; }
int zm__cuda_exec_launches(const void *exec) { (void)exec; return 0; }
#endif
