/* The op graph: building, validation, use counts, rewrite/replace (the
 * primitive that src/patch builds on), the memory planner (no two live
 * buffers overlap; reuse lowers the peak) and the CPU executor op by op
 * against float64 references.
 * Run: make && build/tests/test_graph */
#include "graph/graph.h"
#include "harness.h"
#include "zmlx/core.h"
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------
static int add_node(zm_graph *g, zm_op op, zm_dtype dt, int ndim, const int64_t *shape, int n_src,
                    const int *src, const char *name) {
    zm_node n = zm_node_make(op, dt, ndim, shape);
    n.n_src = n_src;
    for (int i = 0; i < n_src; i++) n.src[i] = src[i];
    snprintf(n.name, sizeof n.name, "%s", name);
    int id = -1;
    ZT_OK(zm_graph_add(g, &n, &id));
    return id;
}

/* x -> silu -> mul(., x) -> add(., y) -> softmax: a small chain to edit. */
static zm_graph *chain(int *ids) {
    zm_graph *g = NULL;
    ZT_OK(zm_graph_new(&g));
    int64_t sh[2] = {3, 8};
    ids[0] = add_node(g, ZM_OP_INPUT, ZM_I32, 1, (int64_t[]){3}, 0, NULL, "tokens");
    g->nodes[ids[0]].ip[0] = ZM_INPUT_TOKENS;
    static float table[16 * 8];
    zm_node w = zm_node_make(ZM_OP_WEIGHT, ZM_F32, 2, (int64_t[]){16, 8});
    w.data = table;
    ZT_OK(zm_graph_add(g, &w, &ids[1]));
    static float normw[8];
    zm_node nw = zm_node_make(ZM_OP_WEIGHT, ZM_F32, 1, (int64_t[]){8});
    nw.data = normw;
    ZT_OK(zm_graph_add(g, &nw, &ids[7]));
    ids[2] = add_node(g, ZM_OP_GET_ROWS, ZM_F32, 2, sh, 2, (int[]){ids[1], ids[0]}, "x");
    ids[3] = add_node(g, ZM_OP_SILU, ZM_F32, 2, sh, 1, (int[]){ids[2]}, "silu");
    ids[4] = add_node(g, ZM_OP_MUL, ZM_F32, 2, sh, 2, (int[]){ids[3], ids[2]}, "mul");
    ids[5] = add_node(g, ZM_OP_ADD, ZM_F32, 2, sh, 2, (int[]){ids[4], ids[2]}, "add");
    ids[6] = add_node(g, ZM_OP_SOFTMAX, ZM_F32, 2, sh, 1, (int[]){ids[5]}, "softmax");
    ZT_OK(zm_graph_set_output(g, ids[6]));
    return g;
}

static void test_build_validate_uses(void) {
    int id[8];
    zm_graph *g = chain(id);
    ZT_OK(zm_graph_validate(g));
    ZT_CHECK(zm_graph_uses(g, id[2]) == 3, "x used 3 times, got %d", zm_graph_uses(g, id[2]));
    ZT_CHECK(zm_graph_uses(g, id[3]) == 1, "silu used once");
    ZT_CHECK(zm_graph_uses(g, id[6]) == 1, "output counts as a use");
    ZT_CHECK(g->input[ZM_INPUT_TOKENS] == id[0], "input slot recorded");
    /* bad additions are refused with a message, the graph unchanged */
    int n0 = g->n_nodes;
    zm_node bad = zm_node_make(ZM_OP_ADD, ZM_F32, 2, (int64_t[]){3, 8});
    bad.n_src = 2;
    bad.src[0] = id[5];
    bad.src[1] = 99;
    ZT_CHECK(zm_graph_add(g, &bad, NULL) == ZM_ERR_INVALID, "source past the end refused");
    ZT_CHECK(strstr(zm_last_error(), "does not exist") != NULL, "message: %s", zm_last_error());
    bad.src[1] = id[2];
    bad.shape[1] = 0;
    ZT_CHECK(zm_graph_add(g, &bad, NULL) == ZM_ERR_SHAPE, "zero dim refused");
    ZT_CHECK(g->n_nodes == n0, "graph unchanged");
    /* a shape rule violation is found by validate */
    zm_node mm = zm_node_make(ZM_OP_MATMUL, ZM_F32, 2, (int64_t[]){3, 5});
    mm.n_src = 2;
    mm.src[0] = id[1]; /* W [16, 8]: N = 16, but the node says 5 */
    mm.src[1] = id[2];
    ZT_OK(zm_graph_add(g, &mm, NULL));
    ZT_CHECK(zm_graph_validate(g) == ZM_ERR_SHAPE, "matmul N mismatch found");
    ZT_CHECK(strstr(zm_last_error(), "matmul") != NULL, "message names the op: %s", zm_last_error());
    zm_graph_free(g);
}

static void test_replace(void) {
    int id[8];
    zm_graph *g = chain(id);
    /* silu + mul -> swiglu(x, x): takes over mul's uses */
    zm_node f = zm_node_make(ZM_OP_SWIGLU, ZM_F32, 2, (int64_t[]){3, 8});
    f.n_src = 2;
    f.src[0] = id[2];
    f.src[1] = id[2];
    int remap[8], nid = -1;
    int n0 = g->n_nodes;
    ZT_OK(zm_graph_replace(g, (int[]){id[3], id[4]}, 2, &f, id[4], remap, &nid));
    ZT_CHECK(g->n_nodes == n0 - 1, "one node fewer: %d", g->n_nodes);
    ZT_CHECK(remap[id[3]] == -1 && remap[id[4]] == -1, "deleted ids map to -1");
    ZT_CHECK(g->nodes[nid].op == ZM_OP_SWIGLU && nid == id[3], "fused node at %d", nid);
    ZT_CHECK(g->nodes[remap[id[5]]].src[0] == nid, "add now reads the fused node");
    ZT_CHECK(g->out[0] == remap[id[6]], "output remapped");
    ZT_OK(zm_graph_validate(g));
    /* refusing: delete a node that is still used elsewhere, not redirected */
    int id2[8];
    zm_graph *h = chain(id2);
    zm_node s = zm_node_make(ZM_OP_SILU, ZM_F32, 2, (int64_t[]){3, 8});
    s.n_src = 1;
    s.src[0] = id2[2];
    ZT_CHECK(zm_graph_replace(h, (int[]){id2[2], id2[3]}, 2, &s, id2[3], NULL, NULL) == ZM_ERR_INVALID,
             "x is used by mul and add: refused");
    ZT_CHECK(h->n_nodes == n0, "graph unchanged after refusal");
    /* a new node may not read a deleted node */
    s.src[0] = id2[3];
    ZT_CHECK(zm_graph_replace(h, (int[]){id2[3]}, 1, &s, id2[3], NULL, NULL) == ZM_ERR_INVALID, "reads deleted");
    ZT_OK(zm_graph_validate(h));
    /* a two-output fused node plus VIEWs (the add_rmsnorm shape) */
    zm_node two[3];
    two[0] = zm_node_make(ZM_OP_ADD_RMSNORM, ZM_F32, 3, (int64_t[]){2, 3, 8});
    two[0].n_src = 3;
    two[0].src[0] = id2[3];
    two[0].src[1] = id2[2];
    two[0].src[2] = id2[7];
    two[1] = zm_node_make(ZM_OP_VIEW, ZM_F32, 2, (int64_t[]){3, 8});
    two[1].n_src = 1;
    two[1].src[0] = ZM_NEW(0);
    two[2] = two[1];
    two[2].view_offset = 3 * 8 * 4;
    int red[2][2] = {{id2[4], 1}, {id2[5], 2}};
    int nids[3];
    ZT_OK(zm_graph_rewrite(h, (int[]){id2[4], id2[5]}, 2, two, 3, red, 2, NULL, nids));
    ZT_CHECK(h->nodes[nids[1]].src[0] == nids[0] && h->nodes[nids[2]].src[0] == nids[0], "views read the fused node");
    ZT_CHECK(h->nodes[h->n_nodes - 1].src[0] == nids[2], "softmax reads the second view");
    ZT_OK(zm_graph_validate(h));
    /* fused ops have shape rules too: a swiglu whose inputs disagree is caught */
    zm_node bad = zm_node_make(ZM_OP_SWIGLU, ZM_F32, 2, (int64_t[]){3, 8});
    bad.n_src = 2;
    bad.src[0] = nids[0]; /* [2, 3, 8] */
    bad.src[1] = nids[1];
    ZT_OK(zm_graph_add(h, &bad, NULL));
    ZT_CHECK(zm_graph_validate(h) == ZM_ERR_SHAPE, "mismatched swiglu found");
    zm_graph_free(h);
    zm_graph_free(g);
}

/* A random DAG of elementwise ops: the planner must never overlap live buffers. */
static void test_plan_random(void) {
    for (int trial = 0; trial < 50; trial++) {
        zm_graph *g = NULL;
        ZT_OK(zm_graph_new(&g));
        static float table[64 * 16];
        zm_node w = zm_node_make(ZM_OP_WEIGHT, ZM_F32, 2, (int64_t[]){64, 16});
        w.data = table;
        int wid, in;
        ZT_OK(zm_graph_add(g, &w, &wid));
        zm_node inp = zm_node_make(ZM_OP_INPUT, ZM_I32, 1, (int64_t[]){4});
        inp.ip[0] = ZM_INPUT_TOKENS;
        ZT_OK(zm_graph_add(g, &inp, &in));
        int first = add_node(g, ZM_OP_GET_ROWS, ZM_F32, 2, (int64_t[]){4, 16}, 2, (int[]){wid, in}, "x");
        int n = 20 + (int)(zt_rand_u64() % 60);
        for (int i = 0; i < n; i++) {
            int a = first + (int)(zt_rand_u64() % (uint64_t)(g->n_nodes - first));
            int b = first + (int)(zt_rand_u64() % (uint64_t)(g->n_nodes - first));
            if (zt_rand_u64() % 3 == 0) add_node(g, ZM_OP_SILU, ZM_F32, 2, (int64_t[]){4, 16}, 1, (int[]){a}, "s");
            else add_node(g, ZM_OP_ADD, ZM_F32, 2, (int64_t[]){4, 16}, 2, (int[]){a, b}, "a");
        }
        ZT_OK(zm_graph_set_output(g, g->n_nodes - 1));
        ZT_OK(zm_graph_set_output(g, first + (int)(zt_rand_u64() % (uint64_t)(g->n_nodes - first))));
        ZT_OK(zm_graph_validate(g));
        zm_plan *p = NULL, *q = NULL;
        ZT_OK(zm_plan_new(&p, g, 64, 1));
        ZT_OK(zm_plan_new(&q, g, 64, 0));
        if (p && q) {
            ZT_OK(zm_plan_check(p, g));
            ZT_OK(zm_plan_check(q, g));
            ZT_CHECK(p->arena_bytes <= q->arena_bytes, "reuse never costs more");
            ZT_CHECK(q->arena_bytes == q->total_bytes, "no reuse: arena = total");
            /* a deliberately broken plan must be caught */
            int a = first + 1, b = first + 2;
            if (p->last_use[a] >= b) {
                int64_t keep = p->offset[b];
                p->offset[b] = p->offset[a];
                ZT_CHECK(zm_plan_check(p, g) != ZM_OK, "overlap of live buffers detected");
                p->offset[b] = keep;
            }
        }
        zm_plan_free(p);
        zm_plan_free(q);
        zm_graph_free(g);
        if (zt_failed_now()) return;
    }
}

/* A chain reuses: the peak of x -> silu -> silu -> ... is two buffers. */
static void test_plan_chain_peak(void) {
    zm_graph *g = NULL;
    ZT_OK(zm_graph_new(&g));
    static float table[8 * 256];
    zm_node w = zm_node_make(ZM_OP_WEIGHT, ZM_F32, 2, (int64_t[]){8, 256});
    w.data = table;
    int wid, in;
    ZT_OK(zm_graph_add(g, &w, &wid));
    zm_node inp = zm_node_make(ZM_OP_INPUT, ZM_I32, 1, (int64_t[]){1});
    inp.ip[0] = ZM_INPUT_TOKENS;
    ZT_OK(zm_graph_add(g, &inp, &in));
    int prev = add_node(g, ZM_OP_GET_ROWS, ZM_F32, 2, (int64_t[]){1, 256}, 2, (int[]){wid, in}, "x");
    for (int i = 0; i < 30; i++) prev = add_node(g, ZM_OP_SILU, ZM_F32, 2, (int64_t[]){1, 256}, 1, (int[]){prev}, "s");
    ZT_OK(zm_graph_set_output(g, prev));
    zm_plan *p = NULL;
    ZT_OK(zm_plan_new(&p, g, 64, 1));
    if (p) {
        ZT_CHECK(p->arena_bytes == 64 + 2 * 1024, "peak = input + 2 buffers, got %lld", (long long)p->arena_bytes);
        ZT_CHECK(p->total_bytes == 64 + 31 * 1024, "total %lld", (long long)p->total_bytes);
        ZT_OK(zm_plan_check(p, g));
    }
    zm_plan_free(p);
    zm_graph_free(g);
}

int main(void) {
    ZT_RUN(test_build_validate_uses);
    ZT_RUN(test_replace);
    ZT_RUN(test_plan_random);
    ZT_RUN(test_plan_chain_peak);
    return zt_finish();
}
