/* CPU kernels of the primitive graph ops. Numerics follow llama.cpp's CPU
 * backend where it matters for token identity: RMSNorm and softmax sum in
 * double, the expert sum adds slot by slot in f32, NeoX RoPE angles in
 * double. Matrix-vector products are src/kernels/cpu_matvec.c's.
 * Checked by tests/test_graph.c (each op vs a float64 reference) and end to
 * end by tests/test_model.c against src/models/reference.c. */
#include "graph/ops_cpu.h"
#include "core/internal.h"
#include "gguf/quant.h"
#include <math.h>
#include <string.h>

#define NODE_ERR(st, n, id, fmt, ...)                                                              \
    zm__err(st, "graph node %d '%s' (%s): " fmt, id, (n)->name, zm_op_name((n)->op), __VA_ARGS__)

// ---------------------------------------------------------------------------
// Helpers shared with the fused ops.
void zm__cpu_rmsnorm_row(float *y, const float *x, int64_t n, float eps, const float *w) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    const float scale = (float)(1.0 / sqrt(sum / (double)n + (double)eps));
    if (w)
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

const float *zm__cpu_f32_weights(const zm_node *wn, const void *data, float *buf, int64_t n) {
    if (wn->dtype == ZM_F32) return data;
    zm_convert_to_f32(buf, data, wn->dtype, n);
    return buf;
}

void zm__cpu_rope_table(float *cs, int n_rot, int32_t pos, float base) {
    for (int i = 0; i < n_rot / 2; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

void zm__cpu_rope_row(float *y, const float *x, int64_t dh, int n_rot, int mode, const float *cs) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        int i0 = mode == ZM_ROPE_NEOX ? i : 2 * i, i1 = mode == ZM_ROPE_NEOX ? i + half : 2 * i + 1;
        float x0 = x[i0], x1 = x[i1];
        y[i0] = x0 * c - x1 * s;
        y[i1] = x0 * s + x1 * c;
    }
    for (int64_t i = n_rot; i < dh; i++) y[i] = x[i];
}

// ---------------------------------------------------------------------------
// Attention over the KV cache, parallel over (token, head).
typedef struct {
    const zm__cpu_env *env;
    const float *q;
    const void *kc, *vc;
    zm_dtype cdt;
    const int32_t *pos;
    float *out;
    int64_t P, H, Hkv, D, Dv, C;
    float scale;
} attn_job;

/* The score and value loops run over head_dim; at long contexts they are
 * most of a decode step, so they get an AVX2+FMA path (chosen at run time,
 * $ZMLX_CPU_ISA=scalar turns it off) beside the portable one. */
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float w, const float *x, int64_t n) {
    const __m256 vw = _mm256_set1_ps(w);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vw, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += w * x[i];
}
#endif

static int use_avx2(void) {
#if defined(__x86_64__)
    static int v = -1;
    if (v < 0) v = zm_cpu_isa_default() >= ZM_ISA_AVX2 && zm_cpu_isa_supported(ZM_ISA_AVX2);
    return v;
#else
    return 0;
#endif
}

static float cache_dot(const void *row, zm_dtype dt, const float *q, int64_t n, int simd) {
    float s = 0;
    if (dt == ZM_F32) {
        const float *k = row;
#if defined(__x86_64__)
        if (simd) return dot_avx2(q, k, n);
#endif
        for (int64_t i = 0; i < n; i++) s += q[i] * k[i];
    } else {
        const uint16_t *k = row;
        for (int64_t i = 0; i < n; i++) s += q[i] * zm_f16_to_f32(k[i]);
    }
    return s;
}

static void attn_worker(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    float *sc = j->env->scratch + (int64_t)ith * j->env->scratch_floats;
    const int64_t tasks = j->P * j->H, esz = j->cdt == ZM_F32 ? 4 : 2;
    const int64_t group = j->H / j->Hkv;
    const int simd = use_avx2();
    for (int64_t t = ith; t < tasks; t += nth) {
        const int64_t p = t / j->H, h = t % j->H, kh = h / group;
        const int64_t n = (int64_t)j->pos[p] + 1;
        const float *q = j->q + (p * j->H + h) * j->D;
        float mx = -INFINITY;
        for (int64_t c = 0; c < n; c++) {
            const char *k = (const char *)j->kc + ((c * j->Hkv + kh) * j->D) * esz;
            sc[c] = cache_dot(k, j->cdt, q, j->D, simd) * j->scale;
            if (sc[c] > mx) mx = sc[c];
        }
        double sum = 0;
        for (int64_t c = 0; c < n; c++) {
            sc[c] = expf(sc[c] - mx);
            sum += sc[c];
        }
        const float inv = (float)(1.0 / sum);
        float *o = j->out + (p * j->H + h) * j->Dv;
        for (int64_t d = 0; d < j->Dv; d++) o[d] = 0;
        for (int64_t c = 0; c < n; c++) {
            const float w = sc[c] * inv;
            const char *v = (const char *)j->vc + ((c * j->Hkv + kh) * j->Dv) * esz;
            if (j->cdt == ZM_F32) {
                const float *vf = (const float *)v;
#if defined(__x86_64__)
                if (simd) { axpy_avx2(o, w, vf, j->Dv); continue; }
#endif
                for (int64_t d = 0; d < j->Dv; d++) o[d] += w * vf[d];
            } else {
                const uint16_t *vh = (const uint16_t *)v;
                for (int64_t d = 0; d < j->Dv; d++) o[d] += w * zm_f16_to_f32(vh[d]);
            }
        }
    }
}

static zm_status op_attention(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id];
    const zm_node *q = &g->nodes[n->src[0]], *kc = &g->nodes[n->src[1]], *vc = &g->nodes[n->src[2]];
    attn_job j = {env, ptr[n->src[0]], ptr[n->src[1]], ptr[n->src[2]], kc->dtype, ptr[n->src[3]], ptr[id],
                  q->shape[0], q->shape[1], kc->shape[1], q->shape[2], vc->shape[2], kc->shape[0], n->fp[0]};
    for (int64_t p = 0; p < j.P; p++)
        if (j.pos[p] < 0 || j.pos[p] >= j.C)
            return NODE_ERR(ZM_ERR_RANGE, n, id, "position %d outside the cache [0, %lld)", j.pos[p], (long long)j.C);
    if (env->scratch_floats < j.C) return NODE_ERR(ZM_ERR_INVALID, n, id, "scratch %lld < %lld", (long long)env->scratch_floats, (long long)j.C);
    if (env->pool && j.P * j.H > 1) zm_pool_run(env->pool, attn_worker, &j);
    else attn_worker(&j, 0, 1);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// Elementwise with broadcasting (src1 right-aligned, size 1 or equal per axis).
static zm_status op_binary(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *b = &g->nodes[n->src[1]];
    const float *x = ptr[n->src[0]], *y = ptr[n->src[1]];
    float *o = ptr[id];
    const int64_t ne = zm_node_numel(n), nb = zm_node_numel(b);
    int64_t sh[4] = {1, 1, 1, 1}, bs[4] = {1, 1, 1, 1}, st[4];
    for (int i = 0; i < n->ndim; i++) sh[4 - n->ndim + i] = n->shape[i];
    for (int i = 0; i < b->ndim; i++) bs[4 - b->ndim + i] = b->shape[i];
    int64_t acc = 1;
    for (int i = 3; i >= 0; i--) { st[i] = bs[i] == 1 ? 0 : acc; acc *= bs[i]; }
    const zm_op op = n->op;
#define LOOP(EXPR)                                                                                 \
    if (nb == ne) {                                                                                \
        for (int64_t i = 0; i < ne; i++) { float a = x[i], c = y[i]; o[i] = EXPR; }                \
    } else if (nb == 1) {                                                                          \
        const float c = y[0];                                                                      \
        for (int64_t i = 0; i < ne; i++) { float a = x[i]; o[i] = EXPR; }                         \
    } else {                                                                                       \
        int64_t i = 0;                                                                             \
        for (int64_t i0 = 0; i0 < sh[0]; i0++)                                                     \
            for (int64_t i1 = 0; i1 < sh[1]; i1++)                                                 \
                for (int64_t i2 = 0; i2 < sh[2]; i2++) {                                           \
                    const float *yr = y + i0 * st[0] + i1 * st[1] + i2 * st[2];                    \
                    for (int64_t i3 = 0; i3 < sh[3]; i3++, i++) { float a = x[i], c = yr[i3 * st[3]]; o[i] = EXPR; } \
                }                                                                                  \
    }
    if (op == ZM_OP_ADD) { LOOP(a + c) }
    else if (op == ZM_OP_MUL) { LOOP(a * c) }
    else { LOOP(a / c) }
#undef LOOP
    return ZM_OK;
}

// ---------------------------------------------------------------------------
static zm_status op_get_rows(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *t = &g->nodes[n->src[0]];
    const int32_t *ids = ptr[n->src[1]];
    const int64_t V = t->shape[0], D = t->shape[1];
    const int64_t rb = D / zm_dtype_block_size(t->dtype) * zm_dtype_block_bytes(t->dtype);
    for (int64_t p = 0; p < n->shape[0]; p++) {
        if (ids[p] < 0 || ids[p] >= V)
            return NODE_ERR(ZM_ERR_RANGE, n, id, "token id %d outside [0, %lld)", ids[p], (long long)V);
        ZM_TRY(zm_dequantize((float *)ptr[id] + p * D, (const char *)ptr[n->src[0]] + ids[p] * rb, t->dtype, D));
    }
    return ZM_OK;
}

static zm_status op_rms_norm(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id];
    const int64_t D = n->shape[n->ndim - 1], rows = zm_node_numel(n) / D;
    float *buf = NULL;
    const float *w = NULL;
    if (n->n_src == 2) {
        const zm_node *wn = &g->nodes[n->src[1]];
        if (wn->dtype != ZM_F32 && !(buf = malloc(sizeof(float) * (size_t)D)))
            return zm__err(ZM_ERR_NOMEM, "rms_norm: out of memory");
        w = zm__cpu_f32_weights(wn, ptr[n->src[1]], buf, D);
    }
    for (int64_t r = 0; r < rows; r++)
        zm__cpu_rmsnorm_row((float *)ptr[id] + r * D, (const float *)ptr[n->src[0]] + r * D, D, n->fp[0], w);
    free(buf);
    return ZM_OK;
}

static zm_status op_matmul(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *w = &g->nodes[n->src[0]];
    const int64_t N = w->shape[0], K = w->shape[1], R = zm_node_numel(n) / N;
    if (R == 1) return zm_matvec(env->pool, env->mv, w->dtype, ptr[n->src[0]], N, K, ptr[n->src[1]], ptr[id]);
    return zm_matvec_batch(env->pool, env->mv, w->dtype, ptr[n->src[0]], N, K, R, ptr[n->src[1]], K, ptr[id], N);
}

/* Prefill: group the (token, slot) pairs by expert so each expert's weights
 * are read once for all the tokens that picked it (a batched matvec). */
static zm_status matmul_id_grouped(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *w = &g->nodes[n->src[0]], *x = &g->nodes[n->src[1]];
    const int64_t E = w->shape[0], N = w->shape[1], K = w->shape[2];
    const int64_t P = n->shape[0], k = n->shape[1], X = x->shape[1], T = P * k;
    const int64_t stride = (int64_t)(w->nbytes / (uint64_t)E);
    const int32_t *ids = ptr[n->src[2]];
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= E)
            return NODE_ERR(ZM_ERR_RANGE, n, id, "expert id %d outside [0, %lld)", ids[t], (long long)E);
    int64_t *cnt = calloc((size_t)E + 1, sizeof *cnt), *order = malloc(sizeof *order * (size_t)T);
    float *xs = malloc(sizeof(float) * (size_t)(T * K)), *ys = malloc(sizeof(float) * (size_t)(T * N));
    zm_status st = ZM_OK;
    if (!cnt || !order || !xs || !ys) { st = zm__err(ZM_ERR_NOMEM, "matmul_id: out of memory"); goto done; }
    for (int64_t t = 0; t < T; t++) cnt[ids[t] + 1]++;
    for (int64_t e = 0; e < E; e++) cnt[e + 1] += cnt[e]; /* cnt[e] = first slot of expert e */
    for (int64_t t = 0; t < T; t++) order[cnt[ids[t]]++] = t;
    for (int64_t e = E; e > 0; e--) cnt[e] = cnt[e - 1];
    cnt[0] = 0;
    for (int64_t e = 0; e < E && st == ZM_OK; e++) {
        const int64_t a = cnt[e], c = cnt[e + 1] - a;
        if (!c) continue;
        for (int64_t r = 0; r < c; r++) {
            const int64_t t = order[a + r], p = t / k, j = t % k;
            memcpy(xs + r * K, (const float *)ptr[n->src[1]] + (p * X + (X == 1 ? 0 : j)) * K, sizeof(float) * (size_t)K);
        }
        st = zm_matvec_batch(env->pool, env->mv, w->dtype, (const char *)ptr[n->src[0]] + e * stride, N, K, c, xs, K, ys, N);
        for (int64_t r = 0; r < c && st == ZM_OK; r++)
            memcpy((float *)ptr[id] + order[a + r] * N, ys + r * N, sizeof(float) * (size_t)N);
    }
done:
    free(cnt);
    free(order);
    free(xs);
    free(ys);
    return st;
}

static zm_status op_matmul_id(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *w = &g->nodes[n->src[0]], *x = &g->nodes[n->src[1]];
    const int64_t E = w->shape[0], N = w->shape[1], K = w->shape[2];
    const int64_t P = n->shape[0], k = n->shape[1], X = x->shape[1];
    const int64_t stride = (int64_t)(w->nbytes / (uint64_t)E);
    const int32_t *ids = ptr[n->src[2]];
    if (P > 1) return matmul_id_grouped(env, g, id, ptr);
    zm_status st = zm_matvec_experts(env->pool, env->mv, w->dtype, ptr[n->src[0]], N, K, stride, E, ids, k,
                                     (const float *)ptr[n->src[1]], X == 1 ? 0 : K, (float *)ptr[id], N);
    if (st != ZM_OK) return zm__err_ctx(st, "graph node %d '%s'", id, n->name);
    return ZM_OK;
}

static zm_status op_rope(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id];
    const int64_t P = n->shape[0], H = n->shape[1], D = n->shape[2];
    const int32_t *pos = ptr[n->src[1]];
    float *cs = env->scratch; /* one cos/sin table per token, shared by its heads */
    for (int64_t p = 0; p < P; p++) {
        zm__cpu_rope_table(cs, n->ip[1], pos[p], n->fp[0]);
        for (int64_t h = 0; h < H; h++) {
            const int64_t o = (p * H + h) * D;
            zm__cpu_rope_row((float *)ptr[id] + o, (const float *)ptr[n->src[0]] + o, D, n->ip[1], n->ip[0], cs);
        }
    }
    return ZM_OK;
}

static zm_status op_kv_write(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *x = &g->nodes[n->src[1]];
    const int64_t C = n->shape[0], row = n->shape[1] * n->shape[2];
    const int32_t *pos = ptr[n->src[2]];
    const int64_t esz = n->dtype == ZM_F32 ? 4 : 2;
    for (int64_t p = 0; p < x->shape[0]; p++) {
        if (pos[p] < 0 || pos[p] >= C)
            return NODE_ERR(ZM_ERR_RANGE, n, id, "position %d outside the cache [0, %lld)", pos[p], (long long)C);
        zm_convert_from_f32((char *)ptr[id] + pos[p] * row * esz, n->dtype, (const float *)ptr[n->src[1]] + p * row, row);
    }
    return ZM_OK;
}

static void op_silu(const zm_graph *g, int id, void *const *ptr) {
    const float *x = ptr[g->nodes[id].src[0]];
    float *y = ptr[id];
    for (int64_t i = 0, n = zm_node_numel(&g->nodes[id]); i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

/* One row of softmax / of top-k: shared with the fused topk_gating_softmax
 * (ops_cpu_fused.c), so fused and stock are bit-identical by construction. */
void zm__cpu_softmax_row(float *y, const float *x, int64_t D) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < D; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < D; i++) { y[i] = expf(x[i] - mx); sum += y[i]; }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < D; i++) y[i] *= inv;
}

void zm__cpu_topk_row(int32_t *o, const float *x, int64_t E, int64_t k) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            int taken = 0;
            for (int64_t t = 0; t < j; t++) taken |= o[t] == e;
            if (taken) continue;
            /* NaN never wins; ties keep the lower index */
            if (best < 0 || x[e] > x[best] || (isnan(x[best]) && !isnan(x[e]))) best = e;
        }
        o[j] = (int32_t)best;
    }
}

static void op_softmax(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id];
    const int64_t D = n->shape[n->ndim - 1], rows = zm_node_numel(n) / D;
    for (int64_t r = 0; r < rows; r++)
        zm__cpu_softmax_row((float *)ptr[id] + r * D, (const float *)ptr[n->src[0]] + r * D, D);
}

static void op_topk(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *s = &g->nodes[n->src[0]];
    const int64_t E = s->shape[s->ndim - 1], k = n->ip[0], rows = zm_node_numel(n) / k;
    for (int64_t r = 0; r < rows; r++)
        zm__cpu_topk_row((int32_t *)ptr[id] + r * k, (const float *)ptr[n->src[0]] + r * E, E, k);
}

static zm_status op_gather(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *s = &g->nodes[n->src[0]];
    const int64_t E = s->shape[s->ndim - 1], k = n->shape[n->ndim - 1], rows = zm_node_numel(n) / k;
    const int32_t *ids = ptr[n->src[1]];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++) {
            int32_t e = ids[r * k + j];
            if (e < 0 || e >= E) return NODE_ERR(ZM_ERR_RANGE, n, id, "index %d outside [0, %lld)", e, (long long)E);
            ((float *)ptr[id])[r * k + j] = ((const float *)ptr[n->src[0]])[r * E + e];
        }
    return ZM_OK;
}

/* Slot by slot in f32, in slot order: what llama.cpp's chain of adds does. */
static void op_sum(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *s = &g->nodes[n->src[0]];
    const int ax = n->ip[0];
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= s->shape[i];
    for (int i = ax + 1; i < s->ndim; i++) inner *= s->shape[i];
    const int64_t L = s->shape[ax];
    const float *x = ptr[n->src[0]];
    float *y = ptr[id];
    for (int64_t o = 0; o < outer; o++) {
        float *yo = y + o * inner;
        const float *xo = x + o * L * inner;
        for (int64_t i = 0; i < inner; i++) yo[i] = xo[i];
        for (int64_t l = 1; l < L; l++)
            for (int64_t i = 0; i < inner; i++) yo[i] += xo[l * inner + i];
    }
}

static void op_argmax(const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id], *s = &g->nodes[n->src[0]];
    const int64_t V = s->shape[s->ndim - 1], rows = zm_node_numel(n);
    for (int64_t r = 0; r < rows; r++) {
        const float *x = (const float *)ptr[n->src[0]] + r * V;
        int64_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (x[v] > x[best] || (isnan(x[best]) && !isnan(x[v]))) best = v;
        ((int32_t *)ptr[id])[r] = (int32_t)best;
    }
}

// ---------------------------------------------------------------------------
int64_t zm__cpu_scratch_floats(const zm_graph *g, int id) {
    const zm_node *n = &g->nodes[id];
    if (n->op == ZM_OP_ATTENTION) return g->nodes[n->src[1]].shape[0];
    if (n->op == ZM_OP_ROPE) return n->shape[2];
    return zm__cpu_fused_scratch(g, id);
}

zm_status zm__cpu_node(const zm__cpu_env *env, const zm_graph *g, int id, void *const *ptr) {
    const zm_node *n = &g->nodes[id];
    switch (n->op) {
    case ZM_OP_WEIGHT: case ZM_OP_INPUT: case ZM_OP_STATE: case ZM_OP_VIEW: return ZM_OK;
    case ZM_OP_GET_ROWS: return op_get_rows(g, id, ptr);
    case ZM_OP_RMS_NORM: return op_rms_norm(g, id, ptr);
    case ZM_OP_MATMUL: return op_matmul(env, g, id, ptr);
    case ZM_OP_MATMUL_ID: return op_matmul_id(env, g, id, ptr);
    case ZM_OP_ROPE: return op_rope(env, g, id, ptr);
    case ZM_OP_KV_WRITE: return op_kv_write(g, id, ptr);
    case ZM_OP_ATTENTION: return op_attention(env, g, id, ptr);
    case ZM_OP_ADD: case ZM_OP_MUL: case ZM_OP_DIV: return op_binary(g, id, ptr);
    case ZM_OP_SILU: op_silu(g, id, ptr); return ZM_OK;
    case ZM_OP_SOFTMAX: op_softmax(g, id, ptr); return ZM_OK;
    case ZM_OP_TOPK: op_topk(g, id, ptr); return ZM_OK;
    case ZM_OP_GATHER: return op_gather(g, id, ptr);
    case ZM_OP_SUM: op_sum(g, id, ptr); return ZM_OK;
    case ZM_OP_ARGMAX: op_argmax(g, id, ptr); return ZM_OK;
    default: return zm__cpu_fused(env, g, id, ptr);
    }
}
