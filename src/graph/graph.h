/* The op graph of one model step (a prefill of P tokens, or one decode
 * token), the memory planner and the backend (executor) interface.
 *
 * A graph is an array of nodes in topological order: every source id of
 * node i is < i. Each node has one op, up to ZM_GRAPH_MAX_SRC source node
 * ids, a static output shape (numpy order: shape[0] outermost, shape[ndim-1]
 * the contiguous row axis) and dtype, and a few int/float parameters. Every
 * intermediate is contiguous. Leaves:
 *   WEIGHT  points into the GGUF mapping (any dtype, host memory, not owned)
 *   INPUT   a graph input written before each run (token ids, positions):
 *           per-token scalars live here, never baked into the graph, so a
 *           decode graph is built once and replayed for every position
 *   STATE   persistent state shared by every graph of a session (the KV
 *           cache), allocated by the backend's state object, not the planner
 * VIEW nodes alias (part of) another node's buffer: reshapes, the last row
 * of a prefill, and the outputs of multi-output fused ops (which write their
 * outputs one after another into one buffer; a VIEW per output names each).
 *
 * The stock qwen3moe graph (src/models/qwen3moe.c) uses only primitive ops;
 * src/patch/ rewrites sequences of them into the fused ops declared below
 * (zm_graph_rewrite / zm_graph_replace). Backends: src/graph/exec_cpu.c
 * (thread pool) and the CUDA executor (src/graph/exec_cuda.c) plug in through
 * zm_graph_backend. Tested by tests/test_graph.c and tests/test_model.c
 * (build/tests/test_graph, build/tests/test_model). Private header. */
#ifndef ZM_GRAPH_GRAPH_H
#define ZM_GRAPH_GRAPH_H

#include "zmlx/core.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------
// Ops. Shapes in numpy order; "x [P, D]" means P rows of D contiguous floats.
// Activations are F32, ids I32; weights any dtype (F32/F16/BF16/Q8_0/Q4_0..).
// Broadcasting (ADD/MUL/DIV): src1's shape, right-aligned, must equal src0's
// or be 1 on each axis; the output has src0's shape.
typedef enum {
    ZM_OP_NONE = 0,      /* a dead slot (never in a valid graph after compaction) */
    /* ---- leaves ---- */
    ZM_OP_WEIGHT,        /* data -> host bytes (GGUF mapping); ip[0] unused */
    ZM_OP_INPUT,         /* ip[0] = input slot (ZM_INPUT_TOKENS, ZM_INPUT_POS) */
    ZM_OP_STATE,         /* ip[0] = state slot (KV cache: 2*layer + 0 (K) / 1 (V)) */
    /* ---- layout ---- */
    ZM_OP_VIEW,          /* src0 = any node; aliases its buffer at view_offset bytes
                            with this node's shape/dtype (no copy, no kernel) */
    /* ---- primitive ops ---- */
    ZM_OP_GET_ROWS,      /* src0 table [V, D] (any dtype), src1 ids I32 [P] -> [P, D] F32 */
    ZM_OP_RMS_NORM,      /* src0 x [.., D], src1 w [D] (optional; any float dtype);
                            fp[0] = eps: x * rsqrt(mean(x^2) + eps) * w over the last axis */
    ZM_OP_MATMUL,        /* src0 W [N, K] (any dtype), src1 x [.., K] -> [.., N]: y = x W^T */
    ZM_OP_MATMUL_ID,     /* src0 W [E, N, K] (any dtype), src1 x [P, X, K] with X = 1
                            (broadcast) or X = k, src2 ids I32 [P, k]
                            -> [P, k, N]: y[p,j] = W[ids[p,j]] x[p, X==1 ? 0 : j] */
    ZM_OP_ROPE,          /* src0 x [P, H, Dh], src1 pos I32 [P]; fp[0] = freq base,
                            ip[0] = mode (ZM_ROPE_NEOX), ip[1] = n_rot (<= Dh, even).
                            NeoX: rotates pairs (i, i + n_rot/2),
                            theta = pos * base^(-2i/n_rot) */
    ZM_OP_KV_WRITE,      /* src0 STATE cache [C, Hkv, Dh], src1 x [P, Hkv, Dh] F32,
                            src2 pos I32 [P]: cache[pos[p]] = x[p] (in place). The
                            node is a VIEW-like alias of src0 (same shape/dtype):
                            ATTENTION reads the cache through it, which orders the
                            write before the read. */
    ZM_OP_ATTENTION,     /* src0 q [P, H, Dh], src1 K cache [C, Hkv, Dh] (a KV_WRITE),
                            src2 V cache [C, Hkv, Dv] (a KV_WRITE), src3 pos I32 [P];
                            fp[0] = scale. Causal GQA: row p, head h attends to cache
                            rows 0..pos[p] of kv head h / (H / Hkv). -> [P, H, Dv] */
    ZM_OP_ADD,           /* src0 + src1 (broadcast) */
    ZM_OP_MUL,           /* src0 * src1 (broadcast) */
    ZM_OP_DIV,           /* src0 / src1 (broadcast) */
    ZM_OP_SILU,          /* x * sigmoid(x) */
    ZM_OP_SOFTMAX,       /* over the last axis */
    ZM_OP_TOPK,          /* src0 [.., E] -> I32 [.., k] indices of the k largest, in
                            descending value order, ties to the lower index; ip[0] = k */
    ZM_OP_GATHER,        /* src0 [.., E] F32, src1 ids I32 [.., k] -> [.., k]:
                            out[r, j] = src0[r, ids[r, j]] (take along the last axis) */
    ZM_OP_SUM,           /* sum over axis ip[0] of src0; the output shape is src0's with
                            that axis removed or kept as 1 (as the node's shape says) */
    ZM_OP_ARGMAX,        /* src0 [.., V] -> I32 [..]: first index of the maximum */
    /* ---- fused ops (added by src/patch; semantics = the primitive chain) ---- */
    ZM_OP_TOPK_GATING_SOFTMAX, /* src0 router logits [P, E]; ip[0] = k, ip[1] = renormalise.
                            = SOFTMAX, TOPK, GATHER (, SUM, DIV). Output F32 [2, P, k]:
                            [0] routing weights F32, [1] expert ids (I32 bits); two
                            VIEW nodes (F32 [P, k] at 0, I32 [P, k] at 4*P*k) name them */
    ZM_OP_MOE_COMBINE,   /* src0 expert outputs [P, k, D], src1 weights [P, k]
                            -> [P, D] = sum_j w[p,j] * x[p,j,:]  (= MUL + SUM axis 1) */
    ZM_OP_SWIGLU,        /* src0 gate, src1 up (same shape) -> silu(gate) * up */
    ZM_OP_GATHER_QMM_SWIGLU, /* src0 gate_exps W [E, F, D], src1 up_exps W [E, F, D],
                            src2 x [P, 1, D], src3 ids I32 [P, k]
                            -> [P, k, F] = silu(W_g[id] x) * (W_u[id] x) */
    ZM_OP_GATHER_QMM_COMBINE, /* src0 down_exps W [E, D, F], src1 h [P, k, F], src2 ids
                            I32 [P, k], src3 weights [P, k], src4 residual [P, D]
                            (optional) -> [P, D] = residual + sum_j w_j W_d[id_j] h_j */
    ZM_OP_ADD_RMSNORM,   /* src0 a [P, D], src1 b [P, D], src2 w [D]; fp[0] = eps.
                            Output F32 [2, P, D]: [0] = a + b, [1] = rms_norm(a + b) * w;
                            VIEW nodes name each half */
    ZM_OP_QK_NORM_ROPE,  /* src0 x [P, H, Dh], src1 w [Dh], src2 pos I32 [P]; fp[0] = eps,
                            fp[1] = freq base, ip[0] = rope mode, ip[1] = n_rot
                            -> [P, H, Dh] = ROPE(RMS_NORM(x, w)) */
    ZM_OP_DEEPSEEK_ROUTER, /* reserved: sigmoid scoring + group-limited top-k */
    ZM_OP_COUNT
} zm_op;

enum { ZM_INPUT_TOKENS = 0, ZM_INPUT_POS = 1, ZM_INPUT_COUNT };
enum { ZM_ROPE_NORMAL = 0, ZM_ROPE_NEOX = 2 }; /* ggml's mode numbers */

/* Node flags. */
enum {
    ZM_NODE_OUTPUT = 1,  /* a graph output: kept alive to the end of the run */
};

#define ZM_GRAPH_MAX_SRC 6
#define ZM_GRAPH_MAX_IP 6
#define ZM_GRAPH_MAX_FP 4
#define ZM_GRAPH_NAME 48

typedef struct zm_node {
    zm_op op;
    int n_src;
    int32_t src[ZM_GRAPH_MAX_SRC];   /* node ids, each < this node's id */
    zm_dtype dtype;
    int ndim;
    int64_t shape[ZM_MAX_DIMS];      /* numpy order, unused dims = 1 */
    int32_t ip[ZM_GRAPH_MAX_IP];     /* int params (see the op) */
    float fp[ZM_GRAPH_MAX_FP];       /* float params (see the op) */
    int flags;                       /* ZM_NODE_* */
    const void *data;                /* WEIGHT: host bytes (not owned), else NULL */
    uint64_t nbytes;                 /* bytes of the node's (contiguous) value */
    int64_t view_offset;             /* VIEW: byte offset into src0's buffer */
    int layer;                       /* model layer (-1 none): for dumps and profiles */
    char name[ZM_GRAPH_NAME];        /* for dumps only; patterns never match on it */
} zm_node;

/* A graph: nodes[0..n_nodes) in topological order, plus the ids of its
 * outputs in a fixed order (slot i of zm_graph_backend.get_output). The struct is
 * open so that patterns and executors can walk it; mutate it only through
 * the functions below. */
#define ZM_GRAPH_MAX_OUT 16
typedef struct zm_graph {
    zm_node *nodes;
    int n_nodes, cap;
    int n_out;
    int32_t out[ZM_GRAPH_MAX_OUT];    /* node ids of the outputs */
    int32_t input[ZM_INPUT_COUNT];    /* node id of each input slot, -1 if absent */
    int64_t n_tokens;                 /* P: tokens this graph processes */
} zm_graph;

// ---------------------------------------------------------------------------
// Building and editing. All return zm_status; ids are node indices.
zm_status zm_graph_new(zm_graph **out);
void zm_graph_free(zm_graph *g);              /* NULL-safe; never frees weight data */
zm_status zm_graph_clone(zm_graph **out, const zm_graph *g);

/* Append a node (copied). Checks: op valid, sources exist and precede it, a
 * shape of 1..4 positive dims; nbytes is computed from shape and dtype.
 * *id (may be NULL) receives the new id. */
zm_status zm_graph_add(zm_graph *g, const zm_node *n, int *id);
/* Mark node `id` as a graph output (appended to out[]). */
zm_status zm_graph_set_output(zm_graph *g, int id);

/* Convenience initialiser: a node of op with shape (numpy order) and dtype. */
zm_node zm_node_make(zm_op op, zm_dtype dt, int ndim, const int64_t *shape);

int64_t zm_node_numel(const zm_node *n);
/* Number of uses of node id: source references of live nodes + output slots. */
int zm_graph_uses(const zm_graph *g, int id);
/* The node whose buffer `id` lives in (follows VIEW and KV_WRITE chains). */
int zm_graph_root(const zm_graph *g, int id);

/* Replace nodes del[0..n_del) by new nodes add[0..n_add), placed in order
 * where the last (highest id) deleted node stood. A source in add[i].src
 * names a surviving node by id, or the j-th new node as ZM_NEW(j) (j < i).
 * redirect[r] = {old id in del, j}: every use of the old node outside del
 * (sources and outputs) becomes a use of new node j. A deleted node still
 * used outside del and not redirected, or a use that would come before its
 * replacement, fails with ZM_ERR_INVALID and leaves g unchanged.
 * Ids are renumbered (the graph stays compact and topologically sorted);
 * remap (may be NULL; n_nodes-before entries) receives old id -> new id, or
 * -1 for deleted nodes; new_ids (may be NULL; n_add entries) the new nodes'. */
#define ZM_NEW(j) (-2 - (j))
zm_status zm_graph_rewrite(zm_graph *g, const int *del, int n_del, const zm_node *add, int n_add,
                           const int (*redirect)[2], int n_redirect, int *remap, int *new_ids);
/* The common case: del[] collapses into one node *fused that takes over the
 * uses of del's node `result`. */
zm_status zm_graph_replace(zm_graph *g, const int *del, int n_del, const zm_node *fused,
                           int result, int *remap, int *new_id);

/* Structural check: sources precede users, shapes agree with each op's rule
 * (see the op list), dtypes right. Message names the node. */
zm_status zm_graph_validate(const zm_graph *g);

/* One line per node: "  12 matmul        f32 [1, 2048] <- 3 11  blk.0.attn_q"
 * plus a summary (node counts per op, weight bytes). */
void zm_graph_dump(const zm_graph *g, FILE *f);
const char *zm_op_name(zm_op op); /* "matmul", "topk_gating_softmax", ...; "?" if bad */

// ---------------------------------------------------------------------------
// Memory planner: liveness-based reuse of intermediate buffers in one arena.
// A buffer is live from its node to the last node that reads it (directly or
// through VIEW / KV_WRITE aliases); outputs live to the end. Leaves (WEIGHT,
// INPUT, STATE) and aliases get no arena space of their own (INPUT gets a
// slot too: it is written before the run, so it lives from node 0).
typedef struct zm_plan {
    int n_nodes;
    int64_t *offset;       /* per node: byte offset in the arena, -1 if none (leaf/alias) */
    int32_t *last_use;     /* per node: id of the last reader (n_nodes for outputs) */
    int64_t arena_bytes;   /* size of the arena = peak of live intermediates */
    int64_t total_bytes;   /* sum of all intermediates (what no reuse would need) */
    int64_t align;
} zm_plan;

/* align: byte alignment of every buffer (power of two, >= 16). reuse = 0
 * gives every buffer its own space (for comparison and debugging). */
zm_status zm_plan_new(zm_plan **out, const zm_graph *g, int64_t align, int reuse);
void zm_plan_free(zm_plan *p);
/* Verify no two buffers that are live at the same time overlap. */
zm_status zm_plan_check(const zm_plan *p, const zm_graph *g);

// ---------------------------------------------------------------------------
// Backends. Three objects per backend, so that weights are uploaded once per
// model, a session's KV cache is shared by its prefill and decode graphs, and
// each graph is planned/captured once:
//   ctx    per model:   weights (e.g. uploaded to the GPU once, keyed by host
//                       pointer), thread pool / stream
//   state  per session: every STATE buffer (KV cache), zeroed at creation
//   exec   per graph:   the planned arena, input and output buffers; run()
//                       executes the whole graph once
typedef struct zm_graph_backend_opts {
    int n_threads;     /* CPU: 0 = zm_pool_default() */
    int poison;        /* debug: fill each arena buffer with NaN after its last
                          use, so unsafe reuse shows up as NaN */
    int no_reuse;      /* planner without reuse */
    int device_index;  /* CUDA */
    int profile;       /* accumulate time per op kind (see .profile) */
} zm_graph_backend_opts;

typedef struct zm_graph_backend {
    const char *name;  /* "cpu", "cuda" */
    zm_device device;
    zm_status (*ctx_new)(void **ctx, const zm_graph_backend_opts *opts);
    void (*ctx_free)(void *ctx);
    /* Allocate (zeroed) every STATE node of g; other graphs of the session
     * must declare the same slots with the same shapes. */
    zm_status (*state_new)(void **state, void *ctx, const zm_graph *g);
    void (*state_free)(void *state);
    zm_status (*state_clear)(void *state);
    /* g must outlive the exec. */
    zm_status (*exec_new)(void **exec, void *ctx, void *state, const zm_graph *g);
    void (*exec_free)(void *exec);
    /* Copy host bytes into input slot (ZM_INPUT_*); nbytes must equal the node's. */
    zm_status (*set_input)(void *exec, int slot, const void *host, size_t nbytes);
    zm_status (*run)(void *exec);
    /* Copy output slot i (graph->out[i]) to host; nbytes must equal the node's. */
    zm_status (*get_output)(void *exec, int slot, void *host, size_t nbytes);
    /* Peak bytes of this exec's planned arena (+ inputs/outputs). */
    int64_t (*exec_bytes)(void *exec);
    /* With opts.profile: seconds and node executions per op kind since the
     * exec was made (arrays of ZM_OP_COUNT). May be NULL (not supported). */
    zm_status (*profile)(void *exec, double *seconds, int64_t *calls);
    /* May be NULL. Greedy decode on the device: the graph takes one token
     * (inputs TOKENS and POS, already set) and has its greedy id (I32, one
     * element) as output slot 1; run it n times, each run's id becoming
     * the next run's token at the next position, with no host round trip
     * between runs; ids[i] = the id of run i. */
    zm_status (*run_greedy)(void *exec, int64_t n, int32_t *ids);
} zm_graph_backend;

extern const zm_graph_backend zm_graph_backend_cpu;
/* The backend for device d, or NULL (ZM_CUDA without the CUDA executor or
 * without a GPU). The CUDA executor registers itself by providing
 * src/graph/exec_cuda.h with `extern const zm_graph_backend
 * zm_graph_backend_cuda;` (see exec_cpu.c). */
const zm_graph_backend *zm_graph_backend_for(zm_device d);

#ifdef __cplusplus
}
#endif
#endif
