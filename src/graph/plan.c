/* Memory planner: every intermediate of a graph gets a byte offset in one
 * arena; a buffer is reused once the last node reading it (directly or
 * through VIEW / KV_WRITE aliases) has run. Best-fit over a free list sorted
 * by offset, with coalescing; the arena size is the peak.
 * Checked by tests/test_graph.c (zm_plan_check: no two simultaneously live
 * buffers overlap; the poison mode of the CPU executor: NaN-filled freed
 * buffers must not change the logits). */
#include "core/internal.h"
#include "graph/graph.h"
#include <string.h>

// ---------------------------------------------------------------------------
typedef struct { int64_t off, size; } blk;

typedef struct {
    blk *b;
    int n, cap;
    int64_t top; /* arena size so far */
} freelist;

static int owns_buffer(const zm_node *n) {
    return n->op != ZM_OP_WEIGHT && n->op != ZM_OP_STATE && n->op != ZM_OP_VIEW && n->op != ZM_OP_KV_WRITE &&
           n->op != ZM_OP_NONE;
}

static int64_t fl_alloc(freelist *f, int64_t size) {
    int best = -1;
    for (int i = 0; i < f->n; i++)
        if (f->b[i].size >= size && (best < 0 || f->b[i].size < f->b[best].size)) best = i;
    if (best >= 0) {
        int64_t off = f->b[best].off;
        f->b[best].off += size;
        f->b[best].size -= size;
        if (f->b[best].size == 0) {
            memmove(&f->b[best], &f->b[best + 1], sizeof(blk) * (size_t)(f->n - best - 1));
            f->n--;
        }
        return off;
    }
    /* grow: extend a free block that ends at the top, else append */
    if (f->n && f->b[f->n - 1].off + f->b[f->n - 1].size == f->top) {
        int64_t off = f->b[f->n - 1].off;
        f->top = off + size;
        f->n--;
        return off;
    }
    int64_t off = f->top;
    f->top += size;
    return off;
}

static zm_status fl_free(freelist *f, int64_t off, int64_t size) {
    int i = 0;
    while (i < f->n && f->b[i].off < off) i++;
    if (f->n == f->cap) {
        int nc = f->cap ? f->cap * 2 : 64;
        blk *nb = realloc(f->b, sizeof(blk) * (size_t)nc);
        if (!nb) return zm__err(ZM_ERR_NOMEM, "planner: out of memory");
        f->b = nb;
        f->cap = nc;
    }
    memmove(&f->b[i + 1], &f->b[i], sizeof(blk) * (size_t)(f->n - i));
    f->b[i] = (blk){off, size};
    f->n++;
    /* coalesce with the next, then with the previous */
    if (i + 1 < f->n && f->b[i].off + f->b[i].size == f->b[i + 1].off) {
        f->b[i].size += f->b[i + 1].size;
        memmove(&f->b[i + 1], &f->b[i + 2], sizeof(blk) * (size_t)(f->n - i - 2));
        f->n--;
    }
    if (i > 0 && f->b[i - 1].off + f->b[i - 1].size == f->b[i].off) {
        f->b[i - 1].size += f->b[i].size;
        memmove(&f->b[i], &f->b[i + 1], sizeof(blk) * (size_t)(f->n - i - 1));
        f->n--;
    }
    return ZM_OK;
}

// ---------------------------------------------------------------------------
void zm_plan_free(zm_plan *p) {
    if (!p) return;
    free(p->offset);
    free(p->last_use);
    free(p);
}

zm_status zm_plan_new(zm_plan **out, const zm_graph *g, int64_t align, int reuse) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_plan_new: out is NULL");
    *out = NULL;
    if (!g || align < 16 || (align & (align - 1)))
        return zm__err(ZM_ERR_INVALID, "zm_plan_new: bad graph or alignment %lld", (long long)align);
    int n = g->n_nodes;
    zm_plan *p = calloc(1, sizeof *p);
    if (!p) return zm__err(ZM_ERR_NOMEM, "planner: out of memory");
    p->n_nodes = n;
    p->align = align;
    p->offset = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    p->last_use = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int *head = malloc(sizeof(int) * (size_t)(n + 1)), *next = malloc(sizeof(int) * (size_t)(n ? n : 1));
    freelist fl = {0};
    zm_status st = ZM_OK;
    if (!p->offset || !p->last_use || !head || !next) { st = zm__err(ZM_ERR_NOMEM, "planner: out of memory"); goto fail; }
    for (int i = 0; i < n; i++) { p->offset[i] = -1; p->last_use[i] = i; }
    for (int i = 0; i < n; i++) {
        const zm_node *nd = &g->nodes[i];
        for (int s = 0; s < nd->n_src; s++) {
            int r = zm_graph_root(g, nd->src[s]);
            if (r >= 0 && p->last_use[r] < i) p->last_use[r] = i;
        }
        if (nd->op == ZM_OP_INPUT) p->last_use[i] = n; /* written before the run */
    }
    for (int o = 0; o < g->n_out; o++) {
        int r = zm_graph_root(g, g->out[o]);
        if (r >= 0) p->last_use[r] = n;
    }
    /* free lists: node r's buffer is released after node last_use[r] ran */
    for (int i = 0; i <= n; i++) head[i] = -1;
    for (int i = 0; i < n; i++) {
        if (!owns_buffer(&g->nodes[i])) continue;
        next[i] = head[p->last_use[i]];
        head[p->last_use[i]] = i;
    }
    /* inputs first, so they never move whatever the graph order */
    for (int i = 0; i < n; i++) {
        const zm_node *nd = &g->nodes[i];
        if (nd->op != ZM_OP_INPUT) continue;
        int64_t sz = ((int64_t)nd->nbytes + align - 1) & ~(align - 1);
        p->offset[i] = fl_alloc(&fl, sz);
        p->total_bytes += sz;
    }
    for (int i = 0; i < n; i++) {
        const zm_node *nd = &g->nodes[i];
        if (owns_buffer(nd) && nd->op != ZM_OP_INPUT) {
            int64_t sz = ((int64_t)nd->nbytes + align - 1) & ~(align - 1);
            p->offset[i] = fl_alloc(&fl, sz);
            p->total_bytes += sz;
        }
        if (!reuse) continue;
        for (int r = head[i]; r >= 0; r = next[r]) {
            int64_t sz = ((int64_t)g->nodes[r].nbytes + align - 1) & ~(align - 1);
            if ((st = fl_free(&fl, p->offset[r], sz)) != ZM_OK) goto fail;
        }
    }
    p->arena_bytes = fl.top;
    free(fl.b);
    free(head);
    free(next);
    *out = p;
    return ZM_OK;
fail:
    free(fl.b);
    free(head);
    free(next);
    zm_plan_free(p);
    return st;
}

zm_status zm_plan_check(const zm_plan *p, const zm_graph *g) {
    if (!p || !g || p->n_nodes != g->n_nodes) return zm__err(ZM_ERR_INVALID, "zm_plan_check: plan does not fit the graph");
    for (int i = 0; i < g->n_nodes; i++) {
        if (p->offset[i] < 0) continue;
        int64_t ai = p->offset[i], bi = ai + (int64_t)g->nodes[i].nbytes;
        int si = g->nodes[i].op == ZM_OP_INPUT ? -1 : i;
        if (bi > p->arena_bytes) return zm__err(ZM_ERR_RANGE, "planner: node %d past the arena", i);
        for (int j = i + 1; j < g->n_nodes; j++) {
            if (p->offset[j] < 0) continue;
            int sj = g->nodes[j].op == ZM_OP_INPUT ? -1 : j;
            int live = si <= p->last_use[j] && sj <= p->last_use[i];
            if (!live) continue;
            int64_t aj = p->offset[j], bj = aj + (int64_t)g->nodes[j].nbytes;
            if (ai < bj && aj < bi)
                return zm__err(ZM_ERR_INVALID, "planner: nodes %d and %d are live together but overlap", i, j);
        }
    }
    return ZM_OK;
}
