/* The op graph: building, editing (rewrite/replace for src/patch), the
 * structural validator and the text dump (`zmlx run --dump-graph`).
 * Checked by tests/test_graph.c (build/tests/test_graph). */
#include "graph/graph.h"
#include "core/internal.h"
#include <string.h>

// ---------------------------------------------------------------------------
static const char *const op_names[ZM_OP_COUNT] = {
    [ZM_OP_NONE] = "none", [ZM_OP_WEIGHT] = "weight", [ZM_OP_INPUT] = "input",
    [ZM_OP_STATE] = "state", [ZM_OP_VIEW] = "view", [ZM_OP_GET_ROWS] = "get_rows",
    [ZM_OP_RMS_NORM] = "rms_norm", [ZM_OP_MATMUL] = "matmul", [ZM_OP_MATMUL_ID] = "matmul_id",
    [ZM_OP_ROPE] = "rope", [ZM_OP_KV_WRITE] = "kv_write", [ZM_OP_ATTENTION] = "attention",
    [ZM_OP_ADD] = "add", [ZM_OP_MUL] = "mul", [ZM_OP_DIV] = "div", [ZM_OP_SILU] = "silu",
    [ZM_OP_SOFTMAX] = "softmax", [ZM_OP_TOPK] = "topk", [ZM_OP_GATHER] = "gather",
    [ZM_OP_SUM] = "sum", [ZM_OP_ARGMAX] = "argmax",
    [ZM_OP_TOPK_GATING_SOFTMAX] = "topk_gating_softmax", [ZM_OP_MOE_COMBINE] = "moe_combine",
    [ZM_OP_SWIGLU] = "swiglu", [ZM_OP_GATHER_QMM_SWIGLU] = "gather_qmm_swiglu",
    [ZM_OP_GATHER_QMM_COMBINE] = "gather_qmm_combine", [ZM_OP_ADD_RMSNORM] = "add_rmsnorm",
    [ZM_OP_QK_NORM_ROPE] = "qk_norm_rope", [ZM_OP_DEEPSEEK_ROUTER] = "deepseek_router",
};

const char *zm_op_name(zm_op op) {
    if ((int)op < 0 || op >= ZM_OP_COUNT || !op_names[op]) return "?";
    return op_names[op];
}

zm_node zm_node_make(zm_op op, zm_dtype dt, int ndim, const int64_t *shape) {
    zm_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.dtype = dt;
    n.ndim = ndim;
    n.layer = -1;
    for (int i = 0; i < ZM_MAX_DIMS; i++) n.shape[i] = (i < ndim && shape) ? shape[i] : 1;
    for (int i = 0; i < ZM_GRAPH_MAX_SRC; i++) n.src[i] = -1;
    return n;
}

int64_t zm_node_numel(const zm_node *n) {
    int64_t e = 1;
    for (int i = 0; i < n->ndim; i++) e *= n->shape[i];
    return e;
}

static zm_status node_bytes(const zm_node *n, uint64_t *out) {
    if ((int)n->dtype < 0 || n->dtype >= ZM_DTYPE_COUNT)
        return zm__err(ZM_ERR_DTYPE, "graph: node '%s': bad dtype %d", n->name, (int)n->dtype);
    if (n->ndim < 1 || n->ndim > ZM_MAX_DIMS)
        return zm__err(ZM_ERR_SHAPE, "graph: node '%s': %d dims (1..4)", n->name, n->ndim);
    int64_t e = 1;
    for (int i = 0; i < n->ndim; i++) {
        if (n->shape[i] < 1)
            return zm__err(ZM_ERR_SHAPE, "graph: node '%s' (%s): dim %d is %lld", n->name,
                           zm_op_name(n->op), i, (long long)n->shape[i]);
        if (!zm__mul_i64(e, n->shape[i], &e))
            return zm__err(ZM_ERR_RANGE, "graph: node '%s': element count overflows", n->name);
    }
    int64_t bs = zm_dtype_block_size(n->dtype), bb = zm_dtype_block_bytes(n->dtype);
    if (n->shape[n->ndim - 1] % bs)
        return zm__err(ZM_ERR_SHAPE, "graph: node '%s': row %lld not a multiple of the %s block",
                       n->name, (long long)n->shape[n->ndim - 1], zm_dtype_name(n->dtype));
    int64_t b;
    if (!zm__mul_i64(e / bs, bb, &b)) return zm__err(ZM_ERR_RANGE, "graph: node '%s': bytes overflow", n->name);
    *out = (uint64_t)b;
    return ZM_OK;
}

// ---------------------------------------------------------------------------
zm_status zm_graph_new(zm_graph **out) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_graph_new: out is NULL");
    *out = NULL;
    zm_graph *g = calloc(1, sizeof *g);
    if (!g) return zm__err(ZM_ERR_NOMEM, "graph: out of memory");
    for (int i = 0; i < ZM_INPUT_COUNT; i++) g->input[i] = -1;
    *out = g;
    return ZM_OK;
}

void zm_graph_free(zm_graph *g) {
    if (!g) return;
    free(g->nodes);
    free(g);
}

zm_status zm_graph_clone(zm_graph **out, const zm_graph *g) {
    if (!out || !g) return zm__err(ZM_ERR_INVALID, "zm_graph_clone: NULL argument");
    ZM_TRY(zm_graph_new(out));
    zm_graph *c = *out;
    *c = *g;
    c->nodes = NULL;
    c->cap = g->n_nodes;
    if (g->n_nodes) {
        c->nodes = malloc(sizeof *c->nodes * (size_t)g->n_nodes);
        if (!c->nodes) {
            free(c);
            *out = NULL;
            return zm__err(ZM_ERR_NOMEM, "graph: out of memory");
        }
        memcpy(c->nodes, g->nodes, sizeof *c->nodes * (size_t)g->n_nodes);
    }
    return ZM_OK;
}

zm_status zm_graph_add(zm_graph *g, const zm_node *n, int *id) {
    if (id) *id = -1;
    if (!g || !n) return zm__err(ZM_ERR_INVALID, "zm_graph_add: NULL argument");
    if ((int)n->op <= ZM_OP_NONE || n->op >= ZM_OP_COUNT)
        return zm__err(ZM_ERR_INVALID, "graph: node '%s': bad op %d", n->name, (int)n->op);
    if (n->n_src < 0 || n->n_src > ZM_GRAPH_MAX_SRC)
        return zm__err(ZM_ERR_INVALID, "graph: node '%s': %d sources", n->name, n->n_src);
    for (int s = 0; s < n->n_src; s++)
        if (n->src[s] < 0 || n->src[s] >= g->n_nodes)
            return zm__err(ZM_ERR_INVALID, "graph: node '%s' (%s): source %d = %d does not exist",
                           n->name, zm_op_name(n->op), s, n->src[s]);
    uint64_t nb;
    ZM_TRY(node_bytes(n, &nb));
    if (g->n_nodes == g->cap) {
        int nc = g->cap ? g->cap * 2 : 256;
        zm_node *nn = realloc(g->nodes, sizeof *nn * (size_t)nc);
        if (!nn) return zm__err(ZM_ERR_NOMEM, "graph: out of memory");
        g->nodes = nn;
        g->cap = nc;
    }
    zm_node *d = &g->nodes[g->n_nodes];
    *d = *n;
    d->nbytes = nb;
    for (int s = n->n_src; s < ZM_GRAPH_MAX_SRC; s++) d->src[s] = -1;
    d->name[ZM_GRAPH_NAME - 1] = 0;
    if (n->op == ZM_OP_INPUT) {
        if (n->ip[0] < 0 || n->ip[0] >= ZM_INPUT_COUNT)
            return zm__err(ZM_ERR_INVALID, "graph: input node '%s': bad slot %d", n->name, n->ip[0]);
        if (g->input[n->ip[0]] >= 0)
            return zm__err(ZM_ERR_INVALID, "graph: input slot %d declared twice", n->ip[0]);
        g->input[n->ip[0]] = g->n_nodes;
    }
    if (id) *id = g->n_nodes;
    g->n_nodes++;
    return ZM_OK;
}

zm_status zm_graph_set_output(zm_graph *g, int id) {
    if (!g || id < 0 || id >= g->n_nodes) return zm__err(ZM_ERR_INVALID, "graph: output id %d out of range", id);
    if (g->n_out >= ZM_GRAPH_MAX_OUT) return zm__err(ZM_ERR_RANGE, "graph: more than %d outputs", ZM_GRAPH_MAX_OUT);
    g->out[g->n_out++] = id;
    g->nodes[id].flags |= ZM_NODE_OUTPUT;
    return ZM_OK;
}

int zm_graph_uses(const zm_graph *g, int id) {
    int u = 0;
    for (int i = id + 1; i < g->n_nodes; i++)
        for (int s = 0; s < g->nodes[i].n_src; s++) u += g->nodes[i].src[s] == id;
    for (int o = 0; o < g->n_out; o++) u += g->out[o] == id;
    return u;
}

int zm_graph_root(const zm_graph *g, int id) {
    while (id >= 0 && (g->nodes[id].op == ZM_OP_VIEW || g->nodes[id].op == ZM_OP_KV_WRITE))
        id = g->nodes[id].src[0];
    return id;
}

// ---------------------------------------------------------------------------
// Editing.
zm_status zm_graph_rewrite(zm_graph *g, const int *del, int n_del, const zm_node *add, int n_add,
                           const int (*redirect)[2], int n_redirect, int *remap, int *new_ids) {
    if (!g || (n_del && !del) || (n_add && !add) || (n_redirect && !redirect) || n_del < 1 || n_add < 0)
        return zm__err(ZM_ERR_INVALID, "zm_graph_rewrite: bad arguments");
    int n = g->n_nodes;
    zm_status st = ZM_OK;
    char *is_del = calloc((size_t)n, 1);
    int *redir = malloc(sizeof(int) * (size_t)n);  /* old id -> new index j, or -1 */
    int *map = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    zm_node *nodes = malloc(sizeof(zm_node) * (size_t)(n + n_add));
    int *add_id = malloc(sizeof(int) * (size_t)(n_add > 0 ? n_add : 1));
    if (!is_del || !redir || !map || !nodes || !add_id) { st = zm__err(ZM_ERR_NOMEM, "graph: out of memory"); goto done; }
    int last = -1;
    for (int i = 0; i < n; i++) redir[i] = -1;
    for (int i = 0; i < n_del; i++) {
        if (del[i] < 0 || del[i] >= n) { st = zm__err(ZM_ERR_INVALID, "graph rewrite: deleted id %d out of range", del[i]); goto done; }
        is_del[del[i]] = 1;
        if (del[i] > last) last = del[i];
    }
    for (int r = 0; r < n_redirect; r++) {
        int o = redirect[r][0], j = redirect[r][1];
        if (o < 0 || o >= n || !is_del[o] || j < 0 || j >= n_add) {
            st = zm__err(ZM_ERR_INVALID, "graph rewrite: redirect {%d, %d} invalid", o, j);
            goto done;
        }
        redir[o] = j;
    }
    /* Build the new node list. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (is_del[i]) {
            map[i] = -1;
            if (i != last) continue;
            for (int j = 0; j < n_add; j++) {
                zm_node nd = add[j];
                for (int s = 0; s < nd.n_src; s++) {
                    int v = nd.src[s];
                    if (v <= -2) {
                        int k = -2 - v;
                        if (k >= j) { st = zm__err(ZM_ERR_INVALID, "graph rewrite: new node %d uses ZM_NEW(%d)", j, k); goto done; }
                        nd.src[s] = add_id[k];
                    } else if (v >= 0 && v < n && !is_del[v] && map[v] >= 0) {
                        nd.src[s] = map[v];
                    } else {
                        st = zm__err(ZM_ERR_INVALID, "graph rewrite: new node %d ('%s') source %d = %d is deleted, missing or later",
                                     j, nd.name, s, v);
                        goto done;
                    }
                }
                uint64_t nb;
                if ((st = node_bytes(&nd, &nb)) != ZM_OK) goto done;
                nd.nbytes = nb;
                add_id[j] = m;
                nodes[m++] = nd;
            }
            continue;
        }
        zm_node nd = g->nodes[i];
        for (int s = 0; s < nd.n_src; s++) {
            int v = nd.src[s];
            if (is_del[v]) {
                if (redir[v] < 0) {
                    st = zm__err(ZM_ERR_INVALID, "graph rewrite: node %d ('%s') still uses deleted node %d ('%s')", i,
                                 nd.name, v, g->nodes[v].name);
                    goto done;
                }
                if (i < last) {
                    st = zm__err(ZM_ERR_INVALID, "graph rewrite: node %d ('%s') uses %d before its replacement at %d", i,
                                 nd.name, v, last);
                    goto done;
                }
                nd.src[s] = add_id[redir[v]];
            } else {
                nd.src[s] = map[v];
            }
        }
        map[i] = m;
        nodes[m++] = nd;
    }
    int32_t out[ZM_GRAPH_MAX_OUT];
    for (int o = 0; o < g->n_out; o++) {
        int v = g->out[o];
        if (is_del[v]) {
            if (redir[v] < 0) { st = zm__err(ZM_ERR_INVALID, "graph rewrite: output %d (node %d) deleted", o, v); goto done; }
            out[o] = add_id[redir[v]];
            nodes[out[o]].flags |= ZM_NODE_OUTPUT;
        } else {
            out[o] = map[v];
        }
    }
    /* Commit. */
    free(g->nodes);
    g->nodes = nodes;
    nodes = NULL;
    g->n_nodes = m;
    g->cap = n + n_add;
    memcpy(g->out, out, sizeof(int32_t) * (size_t)g->n_out);
    for (int s = 0; s < ZM_INPUT_COUNT; s++) g->input[s] = -1;
    for (int i = 0; i < m; i++)
        if (g->nodes[i].op == ZM_OP_INPUT) g->input[g->nodes[i].ip[0]] = i;
    if (remap) memcpy(remap, map, sizeof(int) * (size_t)n);
    if (new_ids) memcpy(new_ids, add_id, sizeof(int) * (size_t)n_add);
done:
    free(is_del);
    free(redir);
    free(map);
    free(nodes);
    free(add_id);
    return st;
}

zm_status zm_graph_replace(zm_graph *g, const int *del, int n_del, const zm_node *fused, int result,
                           int *remap, int *new_id) {
    int red[1][2] = {{result, 0}};
    return zm_graph_rewrite(g, del, n_del, fused, 1, red, 1, remap, new_id);
}

// ---------------------------------------------------------------------------
// Validation: the shape rules of each op.
#define NEED(c, ...)                                                                               \
    do {                                                                                           \
        if (!(c)) return zm__err(ZM_ERR_SHAPE, "graph: node %d '%s' (%s): " __VA_ARGS__);          \
    } while (0)

static int same_shape(const zm_node *a, const zm_node *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static int broadcastable(const zm_node *a, const zm_node *b) {
    if (b->ndim > a->ndim) return 0;
    for (int i = 0; i < b->ndim; i++) {
        int64_t db = b->shape[b->ndim - 1 - i], da = a->shape[a->ndim - 1 - i];
        if (db != da && db != 1) return 0;
    }
    return 1;
}

static zm_status validate_node(const zm_graph *g, int id) {
    const zm_node *n = &g->nodes[id];
    const zm_node *s[ZM_GRAPH_MAX_SRC] = {0};
    for (int k = 0; k < n->n_src; k++) {
        if (n->src[k] < 0 || n->src[k] >= id)
            return zm__err(ZM_ERR_INVALID, "graph: node %d '%s': source %d = %d not before it", id, n->name, k, n->src[k]);
        s[k] = &g->nodes[n->src[k]];
        if (s[k]->op == ZM_OP_NONE) return zm__err(ZM_ERR_INVALID, "graph: node %d '%s' uses a dead node", id, n->name);
    }
    const char *nm = n->name, *on = zm_op_name(n->op);
    int64_t last = n->shape[n->ndim - 1];
#define ARGS id, nm, on
    switch (n->op) {
    case ZM_OP_NONE: return zm__err(ZM_ERR_INVALID, "graph: node %d is dead", id);
    case ZM_OP_WEIGHT: NEED(n->data != NULL, "weight without data", ARGS); break;
    case ZM_OP_INPUT: NEED(n->dtype == ZM_I32, "inputs are I32", ARGS); break;
    case ZM_OP_STATE: NEED(n->ndim == 3 && (n->dtype == ZM_F32 || n->dtype == ZM_F16), "state must be F32/F16 [C, H, D]", ARGS); break;
    case ZM_OP_VIEW:
        NEED(n->n_src == 1, "one source", ARGS);
        NEED(n->view_offset >= 0 && (uint64_t)n->view_offset + n->nbytes <= s[0]->nbytes, "view past its source", ARGS);
        break;
    case ZM_OP_GET_ROWS:
        NEED(n->n_src == 2 && s[0]->ndim == 2 && s[1]->dtype == ZM_I32 && n->dtype == ZM_F32, "table [V, D], ids I32", ARGS);
        NEED(n->ndim == 2 && n->shape[0] == zm_node_numel(s[1]) && last == s[0]->shape[1], "out [P, D]", ARGS);
        break;
    case ZM_OP_RMS_NORM:
        NEED(n->n_src >= 1 && n->n_src <= 2 && same_shape(n, s[0]) && n->dtype == ZM_F32, "out = x's shape", ARGS);
        if (n->n_src == 2) NEED(zm_node_numel(s[1]) == last && zm_dtype_is_float(s[1]->dtype), "weight [D] float", ARGS);
        break;
    case ZM_OP_MATMUL:
        NEED(n->n_src == 2 && s[0]->ndim == 2 && s[1]->dtype == ZM_F32 && n->dtype == ZM_F32, "W [N, K], x F32", ARGS);
        NEED(s[1]->shape[s[1]->ndim - 1] == s[0]->shape[1] && last == s[0]->shape[0], "K or N mismatch", ARGS);
        NEED(zm_node_numel(n) / last == zm_node_numel(s[1]) / s[0]->shape[1], "row count mismatch", ARGS);
        break;
    case ZM_OP_MATMUL_ID:
        NEED(n->n_src == 3 && s[0]->ndim == 3 && s[1]->ndim == 3 && s[2]->ndim == 2 && s[2]->dtype == ZM_I32, "W [E,N,K], x [P,X,K], ids [P,k]", ARGS);
        NEED(n->ndim == 3 && n->shape[0] == s[2]->shape[0] && n->shape[1] == s[2]->shape[1] && last == s[0]->shape[1], "out [P, k, N]", ARGS);
        NEED(s[1]->shape[0] == n->shape[0] && (s[1]->shape[1] == 1 || s[1]->shape[1] == n->shape[1]) && s[1]->shape[2] == s[0]->shape[2], "x [P, 1|k, K]", ARGS);
        break;
    case ZM_OP_ROPE:
        NEED(n->n_src == 2 && n->ndim == 3 && same_shape(n, s[0]) && s[1]->dtype == ZM_I32 && zm_node_numel(s[1]) == n->shape[0], "x [P,H,D], pos [P]", ARGS);
        NEED(n->ip[1] > 0 && n->ip[1] <= last && n->ip[1] % 2 == 0, "n_rot %d", ARGS, n->ip[1]);
        break;
    case ZM_OP_KV_WRITE:
        NEED(n->n_src == 3 && zm_graph_root(g, n->src[0]) >= 0 && g->nodes[zm_graph_root(g, n->src[0])].op == ZM_OP_STATE, "src0 must be a STATE", ARGS);
        NEED(same_shape(n, s[0]) && n->dtype == s[0]->dtype && s[1]->ndim == 3 && s[1]->shape[1] == n->shape[1] && s[1]->shape[2] == n->shape[2], "x [P, Hkv, D] vs cache", ARGS);
        NEED(s[2]->dtype == ZM_I32 && zm_node_numel(s[2]) == s[1]->shape[0], "pos [P]", ARGS);
        break;
    case ZM_OP_ATTENTION:
        NEED(n->n_src == 4 && s[0]->ndim == 3 && s[1]->ndim == 3 && s[2]->ndim == 3, "q [P,H,D], caches [C,Hkv,D]", ARGS);
        NEED(s[1]->shape[1] == s[2]->shape[1] && s[0]->shape[1] % s[1]->shape[1] == 0 && s[0]->shape[2] == s[1]->shape[2] && s[1]->shape[0] == s[2]->shape[0], "GQA head mismatch", ARGS);
        NEED(n->ndim == 3 && n->shape[0] == s[0]->shape[0] && n->shape[1] == s[0]->shape[1] && last == s[2]->shape[2], "out [P, H, Dv]", ARGS);
        NEED(s[3]->dtype == ZM_I32 && zm_node_numel(s[3]) == n->shape[0], "pos [P]", ARGS);
        break;
    case ZM_OP_ADD: case ZM_OP_MUL: case ZM_OP_DIV:
        NEED(n->n_src == 2 && same_shape(n, s[0]) && broadcastable(s[0], s[1]) && s[0]->dtype == ZM_F32 && s[1]->dtype == ZM_F32, "shapes do not broadcast", ARGS);
        break;
    case ZM_OP_SILU: case ZM_OP_SOFTMAX:
        NEED(n->n_src == 1 && same_shape(n, s[0]) && s[0]->dtype == ZM_F32, "out = x's shape", ARGS);
        break;
    case ZM_OP_TOPK:
        NEED(n->n_src == 1 && n->dtype == ZM_I32 && n->ip[0] == last && last <= s[0]->shape[s[0]->ndim - 1] && zm_node_numel(n) / last == zm_node_numel(s[0]) / s[0]->shape[s[0]->ndim - 1], "k mismatch", ARGS);
        break;
    case ZM_OP_GATHER:
        NEED(n->n_src == 2 && s[1]->dtype == ZM_I32 && same_shape(n, s[1]) && zm_node_numel(n) / last == zm_node_numel(s[0]) / s[0]->shape[s[0]->ndim - 1], "ids/out shapes", ARGS);
        break;
    case ZM_OP_SUM: {
        NEED(n->n_src == 1 && n->ip[0] >= 0 && n->ip[0] < s[0]->ndim, "axis %d", ARGS, n->ip[0]);
        NEED(zm_node_numel(n) * s[0]->shape[n->ip[0]] == zm_node_numel(s[0]), "out size", ARGS);
        break;
    }
    case ZM_OP_ARGMAX:
        NEED(n->n_src == 1 && n->dtype == ZM_I32 && zm_node_numel(n) * s[0]->shape[s[0]->ndim - 1] == zm_node_numel(s[0]), "out [..]", ARGS);
        break;
    case ZM_OP_TOPK_GATING_SOFTMAX:
        NEED(n->n_src == 1 && s[0]->ndim == 2 && n->ndim == 3 && n->shape[0] == 2 && n->shape[1] == s[0]->shape[0] &&
             last == n->ip[0] && n->ip[0] <= s[0]->shape[1] && n->dtype == ZM_F32, "logits [P, E] -> [2, P, k]", ARGS);
        break;
    case ZM_OP_MOE_COMBINE:
        NEED(n->n_src == 2 && s[0]->ndim == 3 && s[1]->ndim == 2 && s[1]->shape[0] == s[0]->shape[0] && s[1]->shape[1] == s[0]->shape[1], "x [P, k, D], w [P, k]", ARGS);
        NEED(n->ndim == 2 && n->shape[0] == s[0]->shape[0] && last == s[0]->shape[2], "out [P, D]", ARGS);
        break;
    case ZM_OP_SWIGLU:
        NEED(n->n_src == 2 && same_shape(n, s[0]) && same_shape(n, s[1]), "gate, up and out of one shape", ARGS);
        break;
    case ZM_OP_GATHER_QMM_SWIGLU:
        NEED(n->n_src == 4 && s[0]->ndim == 3 && s[1]->ndim == 3 && s[0]->shape[0] == s[1]->shape[0] && s[0]->shape[1] == s[1]->shape[1] && s[0]->shape[2] == s[1]->shape[2], "W_gate, W_up [E, F, D]", ARGS);
        NEED(zm_node_numel(s[2]) == n->shape[0] * s[0]->shape[2] && s[3]->dtype == ZM_I32 && s[3]->ndim == 2, "x [P, 1, D], ids [P, k]", ARGS);
        NEED(n->ndim == 3 && n->shape[0] == s[3]->shape[0] && n->shape[1] == s[3]->shape[1] && last == s[0]->shape[1], "out [P, k, F]", ARGS);
        break;
    case ZM_OP_GATHER_QMM_COMBINE:
        NEED((n->n_src == 4 || n->n_src == 5) && s[0]->ndim == 3 && s[1]->ndim == 3 && s[2]->dtype == ZM_I32 && s[2]->ndim == 2, "W [E, D, F], h [P, k, F], ids [P, k]", ARGS);
        NEED(s[1]->shape[2] == s[0]->shape[2] && s[1]->shape[1] == s[2]->shape[1] && zm_node_numel(s[3]) == zm_node_numel(s[2]), "h / ids / weights shapes", ARGS);
        NEED(n->ndim == 2 && n->shape[0] == s[2]->shape[0] && last == s[0]->shape[1], "out [P, D]", ARGS);
        if (n->n_src == 5) NEED(same_shape(n, s[4]), "residual [P, D]", ARGS);
        break;
    case ZM_OP_ADD_RMSNORM:
        NEED(n->n_src == 3 && same_shape(s[0], s[1]) && zm_node_numel(s[2]) == s[0]->shape[s[0]->ndim - 1], "a, b [P, D], w [D]", ARGS);
        NEED(n->dtype == ZM_F32 && n->shape[0] == 2 && zm_node_numel(n) == 2 * zm_node_numel(s[0]), "out [2, P, D]", ARGS);
        break;
    case ZM_OP_QK_NORM_ROPE:
        NEED(n->n_src == 3 && n->ndim == 3 && same_shape(n, s[0]) && zm_node_numel(s[1]) == last && s[2]->dtype == ZM_I32 && zm_node_numel(s[2]) == n->shape[0], "x [P, H, D], w [D], pos [P]", ARGS);
        NEED(n->ip[1] > 0 && n->ip[1] <= last && n->ip[1] % 2 == 0, "n_rot %d", ARGS, n->ip[1]);
        break;
    default: break;
    }
#undef ARGS
    return ZM_OK;
}

zm_status zm_graph_validate(const zm_graph *g) {
    if (!g) return zm__err(ZM_ERR_INVALID, "zm_graph_validate: NULL graph");
    for (int i = 0; i < g->n_nodes; i++) ZM_TRY(validate_node(g, i));
    for (int o = 0; o < g->n_out; o++)
        if (g->out[o] < 0 || g->out[o] >= g->n_nodes) return zm__err(ZM_ERR_INVALID, "graph: output %d invalid", o);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
void zm_graph_dump(const zm_graph *g, FILE *f) {
    int count[ZM_OP_COUNT] = {0};
    uint64_t wbytes = 0;
    fprintf(f, "graph: %d nodes, %lld tokens, %d outputs\n", g->n_nodes, (long long)g->n_tokens, g->n_out);
    for (int i = 0; i < g->n_nodes; i++) {
        const zm_node *n = &g->nodes[i];
        count[n->op]++;
        if (n->op == ZM_OP_WEIGHT) wbytes += n->nbytes;
        char sh[96];
        int l = snprintf(sh, sizeof sh, "[");
        for (int d = 0; d < n->ndim; d++) l += snprintf(sh + l, sizeof sh - (size_t)l, d ? ", %lld" : "%lld", (long long)n->shape[d]);
        snprintf(sh + l, sizeof sh - (size_t)l, "]");
        fprintf(f, "%5d %-20s %-5s %-22s", i, zm_op_name(n->op), zm_dtype_name(n->dtype), sh);
        if (n->n_src) {
            fprintf(f, " <-");
            for (int s = 0; s < n->n_src; s++) fprintf(f, " %d", n->src[s]);
        }
        switch (n->op) { /* the parameters that change results */
        case ZM_OP_VIEW: if (n->view_offset) fprintf(f, " @%lld", (long long)n->view_offset); break;
        case ZM_OP_INPUT: case ZM_OP_STATE: fprintf(f, " slot=%d", n->ip[0]); break;
        case ZM_OP_RMS_NORM: case ZM_OP_ADD_RMSNORM: fprintf(f, " eps=%g", n->fp[0]); break;
        case ZM_OP_ROPE: fprintf(f, " base=%g rot=%d%s", n->fp[0], n->ip[1], n->ip[0] == ZM_ROPE_NEOX ? " neox" : ""); break;
        case ZM_OP_QK_NORM_ROPE: fprintf(f, " eps=%g base=%g rot=%d", n->fp[0], n->fp[1], n->ip[1]); break;
        case ZM_OP_ATTENTION: fprintf(f, " scale=%g", n->fp[0]); break;
        case ZM_OP_TOPK: fprintf(f, " k=%d", n->ip[0]); break;
        case ZM_OP_TOPK_GATING_SOFTMAX: fprintf(f, " k=%d norm=%d", n->ip[0], n->ip[1]); break;
        case ZM_OP_SUM: fprintf(f, " axis=%d", n->ip[0]); break;
        default: break;
        }
        if (n->name[0]) fprintf(f, "  %s", n->name);
        if (n->flags & ZM_NODE_OUTPUT) fprintf(f, "  (output)");
        fputc('\n', f);
    }
    fprintf(f, "ops:");
    for (int o = 0; o < ZM_OP_COUNT; o++)
        if (count[o]) fprintf(f, " %s=%d", zm_op_name((zm_op)o), count[o]);
    fprintf(f, "\nweights: %.3f MB\n", (double)wbytes / 1e6);
}

