/* The CPU executor op by op: each primitive op in a one-op graph against a
 * float64 reference written here (fresh random inputs, outputs poisoned by
 * the executor's poison mode), and each fused op against the chain of
 * primitive ops it replaces, compared bit for bit (the fused CPU kernels
 * promise token identity). Run: make && build/tests/test_graph_ops */
#include "graph/graph.h"
#include "gguf/quant.h"
#include "harness.h"
#include "zmlx/core.h"
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------
// Tiny graph builder and runner.
static zm_graph *G;

static int nd(zm_op op, zm_dtype dt, int ndim, const int64_t *sh, int n_src, const int *src) {
    zm_node n = zm_node_make(op, dt, ndim, sh);
    n.n_src = n_src;
    for (int i = 0; i < n_src; i++) n.src[i] = src[i];
    snprintf(n.name, sizeof n.name, "%s", zm_op_name(op));
    int id = -1;
    ZT_OK(zm_graph_add(G, &n, &id));
    return id;
}
#define S(...) (int64_t[]){__VA_ARGS__}
#define I(...) (int[]){__VA_ARGS__}

/* A WEIGHT leaf over data (not copied; keep it alive). */
static int leaf(zm_dtype dt, int ndim, const int64_t *sh, const void *data) {
    zm_node n = zm_node_make(ZM_OP_WEIGHT, dt, ndim, sh);
    n.data = data;
    int id = -1;
    ZT_OK(zm_graph_add(G, &n, &id));
    return id;
}

static int input(int slot, int64_t P) {
    zm_node n = zm_node_make(ZM_OP_INPUT, ZM_I32, 1, S(P));
    n.ip[0] = slot;
    int id = -1;
    ZT_OK(zm_graph_add(G, &n, &id));
    return id;
}

static float *randf(int64_t n, double scale) {
    float *x = malloc(sizeof(float) * (size_t)n);
    zt_fill_normal(x, n, scale);
    return x;
}

/* Run G on the CPU backend (poison mode on); out[i] gets output i (malloc'ed). */
static void run(const int32_t *tok, const int32_t *pos, void **out) {
    const zm_graph_backend *be = zm_graph_backend_for(ZM_CPU);
    zm_graph_backend_opts o = {.n_threads = 2, .poison = 1};
    void *ctx = NULL, *st = NULL, *ex = NULL;
    ZT_OK(zm_graph_validate(G));
    ZT_OK(be->ctx_new(&ctx, &o));
    ZT_OK(be->state_new(&st, ctx, G));
    ZT_OK(be->exec_new(&ex, ctx, st, G));
    if (!ex) goto done;
    if (G->input[ZM_INPUT_TOKENS] >= 0) ZT_OK(be->set_input(ex, ZM_INPUT_TOKENS, tok, G->nodes[G->input[0]].nbytes));
    if (G->input[ZM_INPUT_POS] >= 0) ZT_OK(be->set_input(ex, ZM_INPUT_POS, pos, G->nodes[G->input[1]].nbytes));
    ZT_OK(be->run(ex));
    for (int i = 0; i < G->n_out; i++) {
        size_t nb = G->nodes[G->out[i]].nbytes;
        out[i] = malloc(nb);
        ZT_OK(be->get_output(ex, i, out[i], nb));
    }
done:
    be->exec_free(ex);
    be->state_free(st);
    be->ctx_free(ctx);
}

static void begin(void) { ZT_OK(zm_graph_new(&G)); }
static void end(void) { zm_graph_free(G); G = NULL; }

// ---------------------------------------------------------------------------
static void test_get_rows_matmul(void) {
    const int64_t V = 40, D = 96, N = 33, P = 3;
    float *tab = randf(V * D, 1.0), *w = randf(N * D, 0.2);
    const zm_dtype types[] = {ZM_F32, ZM_F16, ZM_Q8_0, ZM_Q4_0};
    for (int ti = 0; ti < 4; ti++) {
        zm_dtype t = types[ti];
        int64_t rb = D / zm_dtype_block_size(t) * zm_dtype_block_bytes(t);
        char *qt = malloc((size_t)(rb * V)), *qw = malloc((size_t)(rb * N));
        ZT_OK(zm_quantize(qt, t, tab, V * D));
        ZT_OK(zm_quantize(qw, t, w, N * D));
        float *dt = malloc(sizeof(float) * (size_t)(V * D)), *dw = malloc(sizeof(float) * (size_t)(N * D));
        ZT_OK(zm_dequantize(dt, qt, t, V * D));
        ZT_OK(zm_dequantize(dw, qw, t, N * D));
        int32_t tok[3] = {(int32_t)(zt_rand_u64() % V), 0, (int32_t)V - 1};
        begin();
        int ids = input(ZM_INPUT_TOKENS, P), T = leaf(t, 2, S(V, D), qt), W = leaf(t, 2, S(N, D), qw);
        int x = nd(ZM_OP_GET_ROWS, ZM_F32, 2, S(P, D), 2, I(T, ids));
        int y = nd(ZM_OP_MATMUL, ZM_F32, 2, S(P, N), 2, I(W, x));
        int x1 = nd(ZM_OP_VIEW, ZM_F32, 2, S(1, D), 1, I(x));
        G->nodes[x1].view_offset = D * 4; /* row 1 */
        int y1 = nd(ZM_OP_MATMUL, ZM_F32, 2, S(1, N), 2, I(W, x1));
        ZT_OK(zm_graph_set_output(G, x));
        ZT_OK(zm_graph_set_output(G, y));
        ZT_OK(zm_graph_set_output(G, y1));
        void *o[3] = {0};
        run(tok, NULL, o);
        double *rx = malloc(sizeof(double) * (size_t)(P * D)), *ry = malloc(sizeof(double) * (size_t)(P * N));
        for (int64_t p = 0; p < P; p++) {
            for (int64_t d = 0; d < D; d++) rx[p * D + d] = dt[tok[p] * D + d];
            for (int64_t r = 0; r < N; r++) {
                double s = 0;
                for (int64_t d = 0; d < D; d++) s += (double)dw[r * D + d] * rx[p * D + d];
                ry[p * N + r] = s;
            }
        }
        if (o[0]) zt_close(zm_dtype_name(t), o[0], rx, P * D, 0);
        if (o[1]) zt_close("matmul batch", o[1], ry, P * N, 1e-4);
        if (o[2]) zt_close("matmul vec", o[2], ry + N, N, 1e-4);
        for (int i = 0; i < 3; i++) free(o[i]);
        free(rx); free(ry); free(qt); free(qw); free(dt); free(dw);
        /* a token id outside the table is an error, not a crash */
        tok[1] = (int32_t)V;
        const zm_graph_backend *be = zm_graph_backend_for(ZM_CPU);
        void *ctx = NULL, *st = NULL, *ex = NULL;
        ZT_OK(be->ctx_new(&ctx, NULL));
        ZT_OK(be->state_new(&st, ctx, G));
        ZT_OK(be->exec_new(&ex, ctx, st, G));
        ZT_OK(be->set_input(ex, ZM_INPUT_TOKENS, tok, sizeof tok));
        ZT_CHECK(be->run(ex) == ZM_ERR_RANGE, "out-of-vocabulary id refused");
        ZT_CHECK(be->set_input(ex, ZM_INPUT_TOKENS, tok, 4) == ZM_ERR_SHAPE, "wrong input size refused");
        be->exec_free(ex); be->state_free(st); be->ctx_free(ctx);
        end();
    }
    free(tab); free(w);
}

static void test_elementwise_norm_softmax(void) {
    const int64_t P = 3, K = 4, D = 40;
    float *a = randf(P * K * D, 1.5), *b = randf(P * K, 1.0), *nw = randf(D, 1.0);
    for (int64_t i = 0; i < P * K; i++) b[i] = 0.5f + b[i] * b[i]; /* positive divisor */
    begin();
    int A = leaf(ZM_F32, 3, S(P, K, D), a), B = leaf(ZM_F32, 3, S(P, K, 1), b), NW = leaf(ZM_F32, 1, S(D), nw);
    int add = nd(ZM_OP_ADD, ZM_F32, 3, S(P, K, D), 2, I(A, B));
    int mul = nd(ZM_OP_MUL, ZM_F32, 3, S(P, K, D), 2, I(A, B));
    int dv = nd(ZM_OP_DIV, ZM_F32, 3, S(P, K, D), 2, I(A, B));
    int silu = nd(ZM_OP_SILU, ZM_F32, 3, S(P, K, D), 1, I(A));
    int sm = nd(ZM_OP_SOFTMAX, ZM_F32, 3, S(P, K, D), 1, I(A));
    int rn = nd(ZM_OP_RMS_NORM, ZM_F32, 3, S(P, K, D), 2, I(A, NW));
    G->nodes[rn].fp[0] = 1e-5f;
    int sum = nd(ZM_OP_SUM, ZM_F32, 2, S(P, D), 1, I(A));
    G->nodes[sum].ip[0] = 1;
    int am = nd(ZM_OP_ARGMAX, ZM_I32, 2, S(P, K), 1, I(A));
    int outs[] = {add, mul, dv, silu, sm, rn, sum, am};
    for (int i = 0; i < 8; i++) ZT_OK(zm_graph_set_output(G, outs[i]));
    void *o[8] = {0};
    run(NULL, NULL, o);
    const int64_t n = P * K * D;
    double *r = malloc(sizeof(double) * (size_t)n);
    const char *names[] = {"add", "mul", "div", "silu"};
    for (int op = 0; op < 4 && o[op]; op++) {
        for (int64_t i = 0; i < n; i++) {
            double x = a[i], y = b[i / D];
            r[i] = op == 0 ? x + y : op == 1 ? x * y : op == 2 ? x / y : x / (1 + exp(-x));
        }
        zt_close(names[op], o[op], r, n, 1e-6);
    }
    for (int64_t row = 0; row < P * K; row++) {
        const float *x = a + row * D;
        double mx = -1e300, s = 0, ss = 0;
        for (int64_t d = 0; d < D; d++) mx = x[d] > mx ? x[d] : mx;
        for (int64_t d = 0; d < D; d++) { s += exp(x[d] - mx); ss += (double)x[d] * x[d]; }
        for (int64_t d = 0; d < D; d++) r[row * D + d] = exp(x[d] - mx) / s;
    }
    if (o[4]) zt_close("softmax", o[4], r, n, 1e-5);
    for (int64_t row = 0; row < P * K; row++) {
        const float *x = a + row * D;
        double ss = 0;
        for (int64_t d = 0; d < D; d++) ss += (double)x[d] * x[d];
        for (int64_t d = 0; d < D; d++) r[row * D + d] = x[d] / sqrt(ss / D + 1e-5) * nw[d];
    }
    if (o[5]) zt_close("rms_norm", o[5], r, n, 1e-5);
    for (int64_t p = 0; p < P; p++)
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += a[(p * K + k) * D + d];
            r[p * D + d] = s;
        }
    if (o[6]) zt_close("sum axis 1", o[6], r, P * D, 1e-5);
    for (int64_t row = 0; row < P * K && o[7]; row++) {
        int32_t best = 0;
        for (int32_t d = 1; d < D; d++) best = a[row * D + d] > a[row * D + best] ? d : best;
        ZT_CHECK(((int32_t *)o[7])[row] == best, "argmax row %lld: %d vs %d", (long long)row, ((int32_t *)o[7])[row], best);
    }
    for (int i = 0; i < 8; i++) free(o[i]);
    free(r); free(a); free(b); free(nw);
    end();
}

static void test_topk_gather(void) {
    const int64_t P = 4, E = 16, K = 5;
    float *x = randf(P * E, 1.0);
    x[3] = x[7] = 9.0f; /* a tie: lower index first */
    begin();
    int X = leaf(ZM_F32, 2, S(P, E), x);
    zm_node t = zm_node_make(ZM_OP_TOPK, ZM_I32, 2, S(P, K));
    t.n_src = 1; t.src[0] = X; t.ip[0] = (int32_t)K;
    int tk;
    ZT_OK(zm_graph_add(G, &t, &tk));
    int ga = nd(ZM_OP_GATHER, ZM_F32, 2, S(P, K), 2, I(X, tk));
    ZT_OK(zm_graph_set_output(G, tk));
    ZT_OK(zm_graph_set_output(G, ga));
    void *o[2] = {0};
    run(NULL, NULL, o);
    for (int64_t p = 0; p < P && o[0] && o[1]; p++) {
        char used[16] = {0};
        for (int64_t j = 0; j < K; j++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!used[e] && (best < 0 || x[p * E + e] > x[p * E + best])) best = e;
            used[best] = 1;
            int32_t got = ((int32_t *)o[0])[p * K + j];
            ZT_CHECK(got == best, "topk row %lld slot %lld: %d vs %d", (long long)p, (long long)j, got, best);
            ZT_CHECK(((float *)o[1])[p * K + j] == x[p * E + best], "gather");
        }
    }
    free(o[0]); free(o[1]); free(x);
    end();
}

static void test_matmul_id(void) {
    const int64_t E = 6, N = 20, Kd = 64, P = 2, k = 3;
    float *w = randf(E * N * Kd, 0.3), *x1 = randf(P * Kd, 1.0), *xk = randf(P * k * Kd, 1.0);
    int32_t ids[6] = {5, 0, 2, 1, 1, 4};
    char *q = malloc((size_t)(E * N * Kd / 32 * 34));
    ZT_OK(zm_quantize(q, ZM_Q8_0, w, E * N * Kd));
    float *dq = malloc(sizeof(float) * (size_t)(E * N * Kd));
    ZT_OK(zm_dequantize(dq, q, ZM_Q8_0, E * N * Kd));
    begin();
    int W = leaf(ZM_Q8_0, 3, S(E, N, Kd), q), X1 = leaf(ZM_F32, 3, S(P, 1, Kd), x1), XK = leaf(ZM_F32, 3, S(P, k, Kd), xk);
    int ID = leaf(ZM_I32, 2, S(P, k), ids);
    int y1 = nd(ZM_OP_MATMUL_ID, ZM_F32, 3, S(P, k, N), 3, I(W, X1, ID));
    int yk = nd(ZM_OP_MATMUL_ID, ZM_F32, 3, S(P, k, N), 3, I(W, XK, ID));
    ZT_OK(zm_graph_set_output(G, y1));
    ZT_OK(zm_graph_set_output(G, yk));
    void *o[2] = {0};
    run(NULL, NULL, o);
    double r1[2 * 3 * 20], rk[2 * 3 * 20];
    for (int64_t p = 0; p < P; p++)
        for (int64_t j = 0; j < k; j++)
            for (int64_t n = 0; n < N; n++) {
                const float *wr = dq + ((int64_t)ids[p * k + j] * N + n) * Kd;
                double s1 = 0, sk = 0;
                for (int64_t c = 0; c < Kd; c++) { s1 += (double)wr[c] * x1[p * Kd + c]; sk += (double)wr[c] * xk[(p * k + j) * Kd + c]; }
                r1[(p * k + j) * N + n] = s1;
                rk[(p * k + j) * N + n] = sk;
            }
    if (o[0]) zt_close("matmul_id shared x", o[0], r1, P * k * N, 1e-4);
    if (o[1]) zt_close("matmul_id per-slot x", o[1], rk, P * k * N, 1e-4);
    free(o[0]); free(o[1]); free(w); free(x1); free(xk); free(q); free(dq);
    end();
}

/* RoPE (NeoX) + KV write + causal GQA attention, two steps sharing the state. */
static void test_rope_attention(void) {
    const int64_t P = 3, H = 4, Hkv = 2, Dh = 16, C = 8;
    float *q = randf(P * H * Dh, 1.0), *k = randf(P * Hkv * Dh, 1.0), *v = randf(P * Hkv * Dh, 1.0);
    int32_t pos[3] = {2, 3, 4}; /* the cache rows 0..1 hold zeros from the state */
    const float base = 10000.0f;
    begin();
    int POS = input(ZM_INPUT_POS, P);
    int Q = leaf(ZM_F32, 3, S(P, H, Dh), q), K = leaf(ZM_F32, 3, S(P, Hkv, Dh), k), V = leaf(ZM_F32, 3, S(P, Hkv, Dh), v);
    int qr = nd(ZM_OP_ROPE, ZM_F32, 3, S(P, H, Dh), 2, I(Q, POS));
    int kr = nd(ZM_OP_ROPE, ZM_F32, 3, S(P, Hkv, Dh), 2, I(K, POS));
    G->nodes[qr].fp[0] = G->nodes[kr].fp[0] = base;
    G->nodes[qr].ip[0] = G->nodes[kr].ip[0] = ZM_ROPE_NEOX;
    G->nodes[qr].ip[1] = G->nodes[kr].ip[1] = (int32_t)Dh;
    zm_node st = zm_node_make(ZM_OP_STATE, ZM_F32, 3, S(C, Hkv, Dh));
    int KC, VC;
    ZT_OK(zm_graph_add(G, &st, &KC));
    st.ip[0] = 1;
    ZT_OK(zm_graph_add(G, &st, &VC));
    int kw = nd(ZM_OP_KV_WRITE, ZM_F32, 3, S(C, Hkv, Dh), 3, I(KC, kr, POS));
    int vw = nd(ZM_OP_KV_WRITE, ZM_F32, 3, S(C, Hkv, Dh), 3, I(VC, V, POS));
    int at = nd(ZM_OP_ATTENTION, ZM_F32, 3, S(P, H, Dh), 4, I(qr, kw, vw, POS));
    G->nodes[at].fp[0] = 0.25f;
    ZT_OK(zm_graph_set_output(G, qr));
    ZT_OK(zm_graph_set_output(G, at));
    void *o[2] = {0};
    run(NULL, pos, o);
    /* reference */
    double *rq = malloc(sizeof(double) * (size_t)(P * H * Dh)), *rk = calloc((size_t)(C * Hkv * Dh), sizeof(double));
    double *rv = calloc((size_t)(C * Hkv * Dh), sizeof(double)), *ra = malloc(sizeof(double) * (size_t)(P * H * Dh));
    for (int64_t p = 0; p < P; p++) {
        for (int64_t h = 0; h < H + Hkv; h++) {
            const float *src = h < H ? q + (p * H + h) * Dh : k + (p * Hkv + h - H) * Dh;
            double *dst = h < H ? rq + (p * H + h) * Dh : rk + ((int64_t)pos[p] * Hkv + h - H) * Dh;
            for (int64_t i = 0; i < Dh / 2; i++) {
                double th = pos[p] * pow(base, -2.0 * i / Dh);
                dst[i] = src[i] * cos(th) - src[i + Dh / 2] * sin(th);
                dst[i + Dh / 2] = src[i] * sin(th) + src[i + Dh / 2] * cos(th);
            }
        }
        for (int64_t i = 0; i < Hkv * Dh; i++) rv[pos[p] * Hkv * Dh + i] = v[p * Hkv * Dh + i];
    }
    for (int64_t p = 0; p < P; p++)
        for (int64_t h = 0; h < H; h++) {
            int64_t kh = h / (H / Hkv), n = pos[p] + 1;
            double s[8], mx = -1e300, z = 0;
            for (int64_t c = 0; c < n; c++) {
                s[c] = 0;
                for (int64_t d = 0; d < Dh; d++) s[c] += rq[(p * H + h) * Dh + d] * rk[(c * Hkv + kh) * Dh + d];
                s[c] *= 0.25;
                mx = s[c] > mx ? s[c] : mx;
            }
            for (int64_t c = 0; c < n; c++) z += exp(s[c] - mx);
            for (int64_t d = 0; d < Dh; d++) {
                double acc = 0;
                for (int64_t c = 0; c < n; c++) acc += exp(s[c] - mx) / z * rv[(c * Hkv + kh) * Dh + d];
                ra[(p * H + h) * Dh + d] = acc;
            }
        }
    if (o[0]) zt_close("rope neox", o[0], rq, P * H * Dh, 1e-5);
    if (o[1]) zt_close("attention", o[1], ra, P * H * Dh, 1e-4);
    free(o[0]); free(o[1]); free(rq); free(rk); free(rv); free(ra); free(q); free(k); free(v);
    end();
}


// ---------------------------------------------------------------------------
// Fused ops: bit-identical to the primitive chains they replace.
static int same(const void *a, const void *b, size_t n, const char *what) {
    if (a && b && memcmp(a, b, n) == 0) return 1;
    ZT_CHECK(0, "%s: fused output differs from the primitive chain", what);
    return 0;
}

static int vw(int src, zm_dtype dt, int ndim, const int64_t *sh, int64_t off) {
    int id = nd(ZM_OP_VIEW, dt, ndim, sh, 1, I(src));
    G->nodes[id].view_offset = off;
    return id;
}

static void test_fused_vs_chain(void) {
    const int64_t P = 3, E = 8, K = 3, D = 64, F = 32, H = 4, Dh = 32;
    float *lg = randf(P * E, 2.0), *a = randf(P * D, 1.0), *b = randf(P * D, 1.0), *nw = randf(D, 1.0);
    float *x3 = randf(P * K * D, 1.0), *wt = randf(P * K, 1.0), *gt = randf(P * K * F, 2.0), *up = randf(P * K * F, 1.0);
    float *hq = randf(P * H * Dh, 1.0), *qn = randf(Dh, 1.0), *h3 = randf(P * K * F, 1.0);
    float *wg = randf(E * F * D, 0.2), *wu = randf(E * F * D, 0.2), *wd = randf(E * D * F, 0.2);
    char *qg = malloc((size_t)(E * F * D / 32 * 18)), *qu = malloc((size_t)(E * F * D / 32 * 18)), *qd = malloc((size_t)(E * D * F / 32 * 18));
    ZT_OK(zm_quantize(qg, ZM_Q4_0, wg, E * F * D));
    ZT_OK(zm_quantize(qu, ZM_Q4_0, wu, E * F * D));
    ZT_OK(zm_quantize(qd, ZM_Q4_0, wd, E * D * F));
    int32_t ids[9] = {1, 7, 2, 0, 5, 6, 3, 4, 2}, pos[3] = {0, 5, 17};
    begin();
    int POS = input(ZM_INPUT_POS, P);
    int LG = leaf(ZM_F32, 2, S(P, E), lg), A = leaf(ZM_F32, 2, S(P, D), a), B = leaf(ZM_F32, 2, S(P, D), b);
    int NW = leaf(ZM_F32, 1, S(D), nw), X3 = leaf(ZM_F32, 3, S(P, K, D), x3), WT = leaf(ZM_F32, 2, S(P, K), wt);
    int GT = leaf(ZM_F32, 3, S(P, K, F), gt), UP = leaf(ZM_F32, 3, S(P, K, F), up), HQ = leaf(ZM_F32, 3, S(P, H, Dh), hq);
    int QN = leaf(ZM_F32, 1, S(Dh), qn), H3 = leaf(ZM_F32, 3, S(P, K, F), h3), ID = leaf(ZM_I32, 2, S(P, K), ids);
    int WG = leaf(ZM_Q4_0, 3, S(E, F, D), qg), WU = leaf(ZM_Q4_0, 3, S(E, F, D), qu), WD = leaf(ZM_Q4_0, 3, S(E, D, F), qd);
    /* 0,1: gating: softmax, topk, gather, sum, div */
    int sm = nd(ZM_OP_SOFTMAX, ZM_F32, 2, S(P, E), 1, I(LG));
    int tk = nd(ZM_OP_TOPK, ZM_I32, 2, S(P, K), 1, I(sm));
    G->nodes[tk].ip[0] = (int32_t)K;
    int ga = nd(ZM_OP_GATHER, ZM_F32, 2, S(P, K), 2, I(sm, tk));
    int su = nd(ZM_OP_SUM, ZM_F32, 2, S(P, 1), 1, I(ga));
    G->nodes[su].ip[0] = 1;
    int dv = nd(ZM_OP_DIV, ZM_F32, 2, S(P, K), 2, I(ga, su));
    int fg = nd(ZM_OP_TOPK_GATING_SOFTMAX, ZM_F32, 3, S(2, P, K), 1, I(LG));
    G->nodes[fg].ip[0] = (int32_t)K;
    G->nodes[fg].ip[1] = 1;
    int fgw = vw(fg, ZM_F32, 2, S(P, K), 0), fgi = vw(fg, ZM_I32, 2, S(P, K), P * K * 4);
    /* 2: moe_combine */
    int w3 = vw(WT, ZM_F32, 3, S(P, K, 1), 0);
    int mu = nd(ZM_OP_MUL, ZM_F32, 3, S(P, K, D), 2, I(X3, w3));
    int cs = nd(ZM_OP_SUM, ZM_F32, 2, S(P, D), 1, I(mu));
    G->nodes[cs].ip[0] = 1;
    int fc = nd(ZM_OP_MOE_COMBINE, ZM_F32, 2, S(P, D), 2, I(X3, WT));
    /* 3: swiglu */
    int si = nd(ZM_OP_SILU, ZM_F32, 3, S(P, K, F), 1, I(GT));
    int sw = nd(ZM_OP_MUL, ZM_F32, 3, S(P, K, F), 2, I(si, UP));
    int fs = nd(ZM_OP_SWIGLU, ZM_F32, 3, S(P, K, F), 2, I(GT, UP));
    /* 4: gather_qmm_swiglu */
    int a3 = vw(A, ZM_F32, 3, S(P, 1, D), 0);
    int mg = nd(ZM_OP_MATMUL_ID, ZM_F32, 3, S(P, K, F), 3, I(WG, a3, ID));
    int mup = nd(ZM_OP_MATMUL_ID, ZM_F32, 3, S(P, K, F), 3, I(WU, a3, ID));
    int ms = nd(ZM_OP_SILU, ZM_F32, 3, S(P, K, F), 1, I(mg));
    int mm = nd(ZM_OP_MUL, ZM_F32, 3, S(P, K, F), 2, I(ms, mup));
    int fq = nd(ZM_OP_GATHER_QMM_SWIGLU, ZM_F32, 3, S(P, K, F), 4, I(WG, WU, a3, ID));
    /* 5: gather_qmm_combine with residual */
    int md = nd(ZM_OP_MATMUL_ID, ZM_F32, 3, S(P, K, D), 3, I(WD, H3, ID));
    int mdw = nd(ZM_OP_MUL, ZM_F32, 3, S(P, K, D), 2, I(md, w3));
    int mds = nd(ZM_OP_SUM, ZM_F32, 2, S(P, D), 1, I(mdw));
    G->nodes[mds].ip[0] = 1;
    int mdr = nd(ZM_OP_ADD, ZM_F32, 2, S(P, D), 2, I(mds, B));
    int fqc = nd(ZM_OP_GATHER_QMM_COMBINE, ZM_F32, 2, S(P, D), 5, I(WD, H3, ID, WT, B));
    /* 6: add_rmsnorm */
    int ad = nd(ZM_OP_ADD, ZM_F32, 2, S(P, D), 2, I(A, B));
    int rn = nd(ZM_OP_RMS_NORM, ZM_F32, 2, S(P, D), 2, I(ad, NW));
    G->nodes[rn].fp[0] = 1e-6f;
    int far = nd(ZM_OP_ADD_RMSNORM, ZM_F32, 3, S(2, P, D), 3, I(A, B, NW));
    G->nodes[far].fp[0] = 1e-6f;
    int fas = vw(far, ZM_F32, 2, S(P, D), 0), fan = vw(far, ZM_F32, 2, S(P, D), P * D * 4);
    /* 7: qk_norm_rope */
    int qrn = nd(ZM_OP_RMS_NORM, ZM_F32, 3, S(P, H, Dh), 2, I(HQ, QN));
    G->nodes[qrn].fp[0] = 1e-6f;
    int qrr = nd(ZM_OP_ROPE, ZM_F32, 3, S(P, H, Dh), 2, I(qrn, POS));
    G->nodes[qrr].fp[0] = 1e6f;
    G->nodes[qrr].ip[0] = ZM_ROPE_NEOX;
    G->nodes[qrr].ip[1] = (int32_t)Dh;
    int fqr = nd(ZM_OP_QK_NORM_ROPE, ZM_F32, 3, S(P, H, Dh), 3, I(HQ, QN, POS));
    G->nodes[fqr].fp[0] = 1e-6f;
    G->nodes[fqr].fp[1] = 1e6f;
    G->nodes[fqr].ip[0] = ZM_ROPE_NEOX;
    G->nodes[fqr].ip[1] = (int32_t)Dh;
    int outs[] = {dv, fgw, tk, fgi, cs, fc, sw, fs, mm, fq, mdr, fqc, ad, fas, rn, fan, qrr, fqr};
    const char *what[] = {"gating weights", "gating ids", "moe_combine", "swiglu", "gather_qmm_swiglu",
                          "gather_qmm_combine", "add_rmsnorm sum", "add_rmsnorm norm", "qk_norm_rope"};
    for (int i = 0; i < 8; i++) ZT_OK(zm_graph_set_output(G, outs[i]));
    void *o[8] = {0};
    run(NULL, pos, o);
    for (int i = 0; i < 4; i++) same(o[2 * i], o[2 * i + 1], G->nodes[outs[2 * i]].nbytes, what[i]);
    for (int i = 0; i < 8; i++) free(o[i]);
    G->n_out = 0;
    for (int i = 8; i < 18; i++) ZT_OK(zm_graph_set_output(G, outs[i]));
    void *o2[10] = {0};
    run(NULL, pos, o2);
    for (int i = 0; i < 5; i++) same(o2[2 * i], o2[2 * i + 1], G->nodes[outs[8 + 2 * i]].nbytes, what[4 + i]);
    for (int i = 0; i < 10; i++) free(o2[i]);
    end();
    free(lg); free(a); free(b); free(nw); free(x3); free(wt); free(gt); free(up); free(hq); free(qn); free(h3);
    free(wg); free(wu); free(wd); free(qg); free(qu); free(qd);
}

int main(void) {
    ZT_RUN(test_get_rows_matmul);
    ZT_RUN(test_elementwise_norm_softmax);
    ZT_RUN(test_topk_gather);
    ZT_RUN(test_matmul_id);
    ZT_RUN(test_rope_attention);
    ZT_RUN(test_fused_vs_chain);
    return zt_finish();
}
