/* CPU matrix-vector products: ISA selection, the portable scalar kernels
 * (the path every SIMD one is compared with), x quantization for the q8
 * mode, and the row split over the thread pool. SIMD kernels live in
 * cpu_matvec_x86.c. Checked by tests/test_matvec.c (build/tests/test_matvec)
 * against a float64 reference; speed: build/bench/cpu_matvec. */
#include "kernels/cpu_matvec_impl.h"
#include "core/internal.h"
#include <math.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

// ---------------------------------------------------------------------------
// ISA selection

static const char *const isa_names[ZM_ISA_COUNT] = {"auto", "scalar", "avx2", "avx512", "vnni"};

const char *zm_cpu_isa_name(zm_cpu_isa isa) {
    return (unsigned)isa < ZM_ISA_COUNT ? isa_names[isa] : "?";
}
#if defined(__x86_64__) || defined(__i386__)
/* clang 14's __builtin_cpu_supports does not know "f16c": ask CPUID. */
static int zm__cpu_has_f16c(void) {
    /* CPUID traps to the hypervisor in a VM (tens of microseconds) and this
     * is asked on every matvec call: ask once. */
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        unsigned a, b, c, d;
        v = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}
#endif

int zm_cpu_isa_supported(zm_cpu_isa isa) {
    switch (isa) {
    case ZM_ISA_AUTO:
    case ZM_ISA_SCALAR: return 1;
#if defined(__x86_64__) || defined(__i386__)
    case ZM_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               zm__cpu_has_f16c();
    case ZM_ISA_AVX512:
        return zm_cpu_isa_supported(ZM_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
    case ZM_ISA_VNNI: return zm_cpu_isa_supported(ZM_ISA_AVX512) && __builtin_cpu_supports("avx512vnni");
#endif
    default: return 0;
    }
}

static zm_cpu_isa best_at_or_below(zm_cpu_isa cap) {
    for (int i = cap; i > ZM_ISA_SCALAR; i--)
        if (zm_cpu_isa_supported((zm_cpu_isa)i)) return (zm_cpu_isa)i;
    return ZM_ISA_SCALAR;
}

static zm_cpu_isa default_isa;
static int default_act_q8;
static zm__mv_table tables[ZM_ISA_COUNT];
static zm_cpu_isa lowered[ZM_ISA_COUNT]; /* best supported path at or below each; filled once */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static float dot_f32_scalar(const void *row, const float *x, int64_t cols);
static float dot_f16_scalar(const void *row, const float *x, int64_t cols);
static float dot_bf16_scalar(const void *row, const float *x, int64_t cols);
static float dot_q8_0_scalar(const void *row, const float *x, int64_t cols);
static float dot_q4_0_scalar(const void *row, const float *x, int64_t cols);
static float dotq_q8_0_scalar(const void *row, const zm__q8x *xq, int64_t nb);
static float dotq_q4_0_scalar(const void *row, const zm__q8x *xq, int64_t nb);
static void quantize_x_scalar(zm__q8x *out, const float *x, int64_t n);

static void init_tables(void) {
    zm__mv_table *s = &tables[ZM_ISA_SCALAR];
    s->quantize_x = quantize_x_scalar;
    s->f32[ZM_F32] = dot_f32_scalar;
    s->f32[ZM_F16] = dot_f16_scalar;
    s->f32[ZM_BF16] = dot_bf16_scalar;
    s->f32[ZM_Q8_0] = dot_q8_0_scalar;
    s->f32[ZM_Q4_0] = dot_q4_0_scalar;
    s->q8[ZM_Q8_0] = dotq_q8_0_scalar;
    s->q8[ZM_Q4_0] = dotq_q4_0_scalar;
    /* Each path starts from the one below it, so a missing kernel falls back. */
    for (int i = ZM_ISA_AVX2; i < ZM_ISA_COUNT; i++) tables[i] = tables[i - 1];
#if defined(__x86_64__)
    if (zm_cpu_isa_supported(ZM_ISA_AVX2)) zm__matvec_table_avx2(&tables[ZM_ISA_AVX2]);
    tables[ZM_ISA_AVX512] = tables[ZM_ISA_AVX2];
    if (zm_cpu_isa_supported(ZM_ISA_AVX512)) zm__matvec_table_avx512(&tables[ZM_ISA_AVX512]);
    tables[ZM_ISA_VNNI] = tables[ZM_ISA_AVX512];
    if (zm_cpu_isa_supported(ZM_ISA_VNNI)) zm__matvec_table_vnni(&tables[ZM_ISA_VNNI]);
#endif
    /* CPU probes can trap to the hypervisor: ask once here, never per call. */
    for (int i = 0; i < ZM_ISA_COUNT; i++) lowered[i] = best_at_or_below((zm_cpu_isa)i);
    default_isa = lowered[ZM_ISA_COUNT - 1];
    const char *e = getenv("ZMLX_CPU_ISA");
    if (e && *e) {
        for (int i = ZM_ISA_SCALAR; i < ZM_ISA_COUNT; i++)
            if (strcasecmp(e, isa_names[i]) == 0) default_isa = best_at_or_below((zm_cpu_isa)i);
        zm__log("cpu_matvec: ZMLX_CPU_ISA=%s -> %s", e, isa_names[default_isa]);
    }
    const char *a = getenv("ZMLX_CPU_ACT");
    default_act_q8 = a && strcasecmp(a, "q8") == 0;
}

zm_cpu_isa zm_cpu_isa_default(void) {
    pthread_once(&init_once, init_tables);
    return default_isa;
}

int64_t zm_matvec_row_bytes(zm_dtype wt, int64_t cols) {
    if (cols <= 0) return 0;
    switch (wt) {
    case ZM_F32: return cols > INT64_MAX / 4 ? 0 : cols * 4;
    case ZM_F16:
    case ZM_BF16: return cols > INT64_MAX / 2 ? 0 : cols * 2;
    case ZM_Q8_0: return cols % 32 ? 0 : cols / 32 * (int64_t)sizeof(zm_block_q8_0);
    case ZM_Q4_0: return cols % 32 ? 0 : cols / 32 * (int64_t)sizeof(zm_block_q4_0);
    default: return 0;
    }
}

// ---------------------------------------------------------------------------
// scalar kernels: f32 accumulation in a fixed order, 4 partial sums so the
// compiler may keep them in registers (not for speed: they are the baseline)

static float dot_f32_scalar(const void *row, const float *x, int64_t cols) {
    const float *w = row;
    float s = 0;
    for (int64_t c = 0; c < cols; c++) s += w[c] * x[c];
    return s;
}

static float dot_f16_scalar(const void *row, const float *x, int64_t cols) {
    const uint16_t *w = row;
    float s = 0;
    for (int64_t c = 0; c < cols; c++) s += zm_f16_to_f32(w[c]) * x[c];
    return s;
}

static float dot_bf16_scalar(const void *row, const float *x, int64_t cols) {
    const uint16_t *w = row;
    float s = 0;
    for (int64_t c = 0; c < cols; c++) s += zm_bf16_to_f32(w[c]) * x[c];
    return s;
}

static float dot_q8_0_scalar(const void *row, const float *x, int64_t cols) {
    const zm_block_q8_0 *b = row;
    float s = 0;
    for (int64_t i = 0; i < cols / 32; i++, x += 32) {
        float bs = 0;
        for (int j = 0; j < 32; j++) bs += (float)b[i].qs[j] * x[j];
        s += zm_f16_to_f32(b[i].d) * bs;
    }
    return s;
}

static float dot_q4_0_scalar(const void *row, const float *x, int64_t cols) {
    const zm_block_q4_0 *b = row;
    float s = 0;
    for (int64_t i = 0; i < cols / 32; i++, x += 32) {
        float bs = 0;
        for (int j = 0; j < 16; j++) {
            bs += (float)((b[i].qs[j] & 15) - 8) * x[j];
            bs += (float)((b[i].qs[j] >> 4) - 8) * x[j + 16];
        }
        s += zm_f16_to_f32(b[i].d) * bs;
    }
    return s;
}

static float dotq_q8_0_scalar(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q8_0 *b = row;
    float s = 0;
    for (int64_t i = 0; i < nb; i++) {
        int32_t acc = 0;
        for (int j = 0; j < 32; j++) acc += (int32_t)b[i].qs[j] * xq[i].q[j];
        s += zm_f16_to_f32(b[i].d) * xq[i].d * (float)acc;
    }
    return s;
}

static float dotq_q4_0_scalar(const void *row, const zm__q8x *xq, int64_t nb) {
    const zm_block_q4_0 *b = row;
    float s = 0;
    for (int64_t i = 0; i < nb; i++) {
        int32_t acc = 0;
        for (int j = 0; j < 16; j++)
            acc += (int32_t)(b[i].qs[j] & 15) * xq[i].q[j] + (int32_t)(b[i].qs[j] >> 4) * xq[i].q[j + 16];
        acc -= 8 * xq[i].s;
        s += zm_f16_to_f32(b[i].d) * xq[i].d * (float)acc;
    }
    return s;
}

/* x (n a multiple of 32) -> blocks the way ggml's x86 quantize_row_q8_0
 * does it, so q8 mode sees the activations llama.cpp's CPU backend sees:
 * d = f16(amax / 127), q = round-half-even(x * 127 / amax). */
static void quantize_x_scalar(zm__q8x *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            int q = (int)nearbyintf(x[j] * id); /* |q| <= 127 by construction */
            out[i].q[j] = (int8_t)q;
            s += q;
        }
        out[i].d = zm_f16_to_f32(zm_f32_to_f16(amax / 127.0f));
        out[i].s = s;
    }
}

// ---------------------------------------------------------------------------
// the job: a flat range of work items split into contiguous chunks per thread

typedef struct {
    zm__dot_f32_fn dot;
    zm__dot_q8_fn dotq;
    const char *w;
    int64_t row_bytes, rows, cols, n;
    const float *x;
    int64_t ldx;
    const zm__q8x *xq; /* q8 mode: n (or 1 if shared) quantized vectors of nb blocks */
    int64_t nb, ldxq;  /* blocks per vector, stride between vectors in blocks */
    float *y;
    int64_t ldy;
    const int32_t *ids; /* experts mode: item = k * rows + r */
    int64_t expert_stride;
    /* grouped mode (zm_matvec_experts_tokens): item = group * rows + r; the
     * pairs order[goff[g] .. goff[g+1]) all use expert gexp[g]; pair p has x
     * at x + (p / kk) * ldx + (p % kk) * ldx_pair */
    const int64_t *order, *goff;
    const int32_t *gexp;
    int64_t ngroups, kk, ldx_pair;
} mv_job;

static inline float job_dot(const mv_job *j, const char *row, int64_t k) {
    if (j->dotq) return j->dotq(row, j->xq + k * j->ldxq, j->nb);
    return j->dot(row, j->x + k * j->ldx, j->cols);
}

static inline const float *pair_x(const mv_job *j, int64_t p) {
    return j->x + (p / j->kk) * j->ldx + (p % j->kk) * j->ldx_pair;
}

static inline float pair_dot(const mv_job *j, const char *row, int64_t p) {
    if (j->dotq) return j->dotq(row, j->xq + (j->ldx_pair ? p : p / j->kk) * j->nb, j->nb);
    return j->dot(row, pair_x(j, p), j->cols);
}

/* Each weight row of an expert is applied to every vector routed to that
 * expert while it is in L1, so a prefill reads each expert's weights once. */
static void mv_worker_grouped(void *ctx, int ith, int nth) {
    const mv_job *j = ctx;
    int64_t items = j->ngroups * j->rows;
    int64_t per = (items + nth - 1) / nth, i0 = per * ith, i1 = i0 + per < items ? i0 + per : items;
    for (int64_t i = i0; i < i1; i++) {
        int64_t g = i / j->rows, r = i % j->rows;
        const char *row = j->w + (int64_t)j->gexp[g] * j->expert_stride + r * j->row_bytes;
        for (int64_t q = j->goff[g]; q < j->goff[g + 1]; q++) {
            int64_t p = j->order[q];
            j->y[p * j->ldy + r] = pair_dot(j, row, p);
        }
    }
}

static void mv_worker(void *ctx, int ith, int nth) {
    const mv_job *j = ctx;
    int64_t items = j->ids ? j->n * j->rows : j->rows;
    int64_t per = (items + nth - 1) / nth, i0 = per * ith, i1 = i0 + per < items ? i0 + per : items;
    for (int64_t i = i0; i < i1; i++) {
        if (j->ids) {
            int64_t k = i / j->rows, r = i % j->rows;
            const char *row = j->w + (int64_t)j->ids[k] * j->expert_stride + r * j->row_bytes;
            j->y[k * j->ldy + r] = job_dot(j, row, k);
        } else {
            const char *row = j->w + i * j->row_bytes;
            for (int64_t k = 0; k < j->n; k++) j->y[k * j->ldy + i] = job_dot(j, row, k);
        }
    }
}

/* Below this many weight bytes a job runs on the calling thread: waking the
 * pool costs more than the work. */
#define MV_SERIAL_BYTES (32 * 1024)

static zm_status run_job(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, mv_job *j,
                         int64_t nx /* distinct x vectors */) {
    pthread_once(&init_once, init_tables);
    zm_cpu_isa isa = opts && opts->isa != ZM_ISA_AUTO ? opts->isa : default_isa;
    if ((unsigned)isa >= ZM_ISA_COUNT) return zm__err(ZM_ERR_INVALID, "matvec: bad ISA %d", (int)isa);
    isa = lowered[isa];
    int act_q8 = opts && opts->act_q8 >= 0 ? opts->act_q8 : default_act_q8;
    const zm__mv_table *t = &tables[isa];
    zm__q8x *xq = NULL;
    if (act_q8 && t->q8[wt]) {
        j->dotq = t->q8[wt];
        j->nb = j->cols / 32;
        j->ldxq = j->ldx ? j->nb : 0;
        uint64_t bytes;
        if (!zm__mul_u64((uint64_t)(nx * j->nb), sizeof *xq, &bytes) || bytes > SIZE_MAX ||
            !(xq = zm__alloc_aligned((size_t)bytes)))
            return zm__err(ZM_ERR_NOMEM, "matvec: out of memory quantizing x");
        for (int64_t k = 0; k < nx; k++) {
            const float *xv = !j->order ? j->x + k * j->ldx : j->ldx_pair ? pair_x(j, k) : j->x + k * j->ldx;
            t->quantize_x(xq + k * j->nb, xv, j->cols);
        }
        j->xq = xq;
    } else {
        j->dot = t->f32[wt];
    }
    double work = (double)j->n * (double)j->rows * (double)j->row_bytes;
    zm_pool_run(work < MV_SERIAL_BYTES ? NULL : pool, j->order ? mv_worker_grouped : mv_worker, j);
    zm__free_aligned(xq);
    return ZM_OK;
}

static zm_status check_common(const char *fn, zm_dtype wt, const void *w, int64_t rows, int64_t cols,
                              const float *x, const float *y, int64_t *row_bytes) {
    if (!w || !x || !y) return zm__err(ZM_ERR_INVALID, "%s: NULL pointer (w, x or y)", fn);
    if ((unsigned)wt >= ZM_DTYPE_COUNT || !(wt == ZM_F32 || wt == ZM_F16 || wt == ZM_BF16 ||
                                            wt == ZM_Q8_0 || wt == ZM_Q4_0))
        return zm__err(ZM_ERR_DTYPE, "%s: weight type %s not supported (f32, f16, bf16, q8_0, q4_0)", fn,
                       zm_dtype_name(wt));
    if (rows <= 0 || cols <= 0)
        return zm__err(ZM_ERR_SHAPE, "%s: rows %lld x cols %lld must be positive", fn, (long long)rows,
                       (long long)cols);
    *row_bytes = zm_matvec_row_bytes(wt, cols);
    if (*row_bytes == 0)
        return zm__err(ZM_ERR_SHAPE, "%s: cols %lld is not a multiple of %s's block (32)", fn,
                       (long long)cols, zm_dtype_name(wt));
    if (rows > INT64_MAX / *row_bytes) return zm__err(ZM_ERR_RANGE, "%s: rows x cols overflows", fn);
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// public entries

zm_status zm_matvec(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w, int64_t rows,
                    int64_t cols, const float *x, float *y) {
    return zm_matvec_batch(pool, opts, wt, w, rows, cols, 1, x, cols, y, rows);
}

zm_status zm_matvec_batch(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                          int64_t rows, int64_t cols, int64_t n, const float *x, int64_t ldx, float *y,
                          int64_t ldy) {
    int64_t rb;
    ZM_TRY(check_common("zm_matvec", wt, w, rows, cols, x, y, &rb));
    if (n <= 0 || ldx < cols || ldy < rows)
        return zm__err(ZM_ERR_SHAPE, "zm_matvec_batch: n %lld, ldx %lld (>= cols %lld), ldy %lld (>= rows %lld)",
                       (long long)n, (long long)ldx, (long long)cols, (long long)ldy, (long long)rows);
    mv_job j = {.w = w, .row_bytes = rb, .rows = rows, .cols = cols, .n = n, .x = x, .ldx = ldx, .y = y, .ldy = ldy};
    return run_job(pool, opts, wt, &j, n);
}

zm_status zm_matvec_experts(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                            int64_t rows, int64_t cols, int64_t expert_stride, int64_t n_expert,
                            const int32_t *ids, int64_t n_ids, const float *x, int64_t ldx, float *y,
                            int64_t ldy) {
    int64_t rb;
    ZM_TRY(check_common("zm_matvec_experts", wt, w, rows, cols, x, y, &rb));
    if (!ids || n_ids <= 0 || n_expert <= 0)
        return zm__err(ZM_ERR_INVALID, "zm_matvec_experts: no expert ids (n_ids %lld, n_expert %lld)",
                       (long long)n_ids, (long long)n_expert);
    if (expert_stride < rows * rb)
        return zm__err(ZM_ERR_SHAPE, "zm_matvec_experts: expert_stride %lld < one expert's %lld bytes",
                       (long long)expert_stride, (long long)(rows * rb));
    if ((ldx != 0 && ldx < cols) || ldy < rows)
        return zm__err(ZM_ERR_SHAPE, "zm_matvec_experts: ldx %lld (0 or >= cols %lld), ldy %lld (>= rows %lld)",
                       (long long)ldx, (long long)cols, (long long)ldy, (long long)rows);
    for (int64_t k = 0; k < n_ids; k++)
        if (ids[k] < 0 || ids[k] >= n_expert)
            return zm__err(ZM_ERR_RANGE, "zm_matvec_experts: ids[%lld] = %d outside [0, %lld)", (long long)k,
                           ids[k], (long long)n_expert);
    mv_job j = {.w = w, .row_bytes = rb, .rows = rows, .cols = cols, .n = n_ids, .x = x, .ldx = ldx,
                .y = y, .ldy = ldy, .ids = ids, .expert_stride = expert_stride};
    return run_job(pool, opts, wt, &j, ldx ? n_ids : 1);
}

zm_status zm_matvec_experts_tokens(zm_pool *pool, const zm_matvec_opts *opts, zm_dtype wt, const void *w,
                                   int64_t rows, int64_t cols, int64_t expert_stride, int64_t n_expert,
                                   const int32_t *ids, int64_t n_tok, int64_t k, const float *x,
                                   int64_t ldx_tok, int64_t ldx_pair, float *y, int64_t ldy) {
    int64_t rb, n;
    ZM_TRY(check_common("zm_matvec_experts_tokens", wt, w, rows, cols, x, y, &rb));
    if (!ids || n_tok <= 0 || k <= 0 || n_expert <= 0 || !zm__mul_i64(n_tok, k, &n) || n > INT32_MAX)
        return zm__err(ZM_ERR_INVALID, "zm_matvec_experts_tokens: bad ids (n_tok %lld, k %lld, n_expert %lld)",
                       (long long)n_tok, (long long)k, (long long)n_expert);
    if (expert_stride < rows * rb)
        return zm__err(ZM_ERR_SHAPE, "zm_matvec_experts_tokens: expert_stride %lld < one expert's %lld bytes",
                       (long long)expert_stride, (long long)(rows * rb));
    if (ldx_tok < 0 || ldx_pair < 0 || (ldx_pair == 0 && n_tok > 1 && ldx_tok < cols) ||
        (ldx_pair != 0 && (ldx_pair < cols || (n_tok > 1 && ldx_tok < k * ldx_pair))) || ldy < rows)
        return zm__err(ZM_ERR_SHAPE, "zm_matvec_experts_tokens: ldx_tok %lld, ldx_pair %lld (0 or >= cols %lld), "
                       "ldy %lld (>= rows %lld) overlap or are negative", (long long)ldx_tok, (long long)ldx_pair,
                       (long long)cols, (long long)ldy, (long long)rows);
    for (int64_t p = 0; p < n; p++)
        if (ids[p] < 0 || ids[p] >= n_expert)
            return zm__err(ZM_ERR_RANGE, "zm_matvec_experts_tokens: ids[%lld] = %d outside [0, %lld)", (long long)p,
                           ids[p], (long long)n_expert);
    /* counting sort of the pairs by expert */
    int64_t *cnt = calloc((size_t)n_expert + 1, sizeof *cnt), *order = malloc((size_t)n * sizeof *order);
    int64_t *goff = malloc(((size_t)(n < n_expert ? n : n_expert) + 1) * sizeof *goff);
    int32_t *gexp = malloc((size_t)(n < n_expert ? n : n_expert) * sizeof *gexp);
    if (!cnt || !order || !goff || !gexp) {
        free(cnt), free(order), free(goff), free(gexp);
        return zm__err(ZM_ERR_NOMEM, "zm_matvec_experts_tokens: out of memory");
    }
    for (int64_t p = 0; p < n; p++) cnt[ids[p] + 1]++;
    int64_t ng = 0;
    for (int64_t e = 0; e < n_expert; e++) {
        if (cnt[e + 1]) { gexp[ng] = (int32_t)e; goff[ng++] = cnt[e]; }
        cnt[e + 1] += cnt[e];
    }
    goff[ng] = n;
    for (int64_t p = 0; p < n; p++) order[cnt[ids[p]]++] = p;
    mv_job j = {.w = w, .row_bytes = rb, .rows = rows, .cols = cols, .n = n, .x = x, .ldx = ldx_tok, .y = y,
                .ldy = ldy, .expert_stride = expert_stride, .order = order, .goff = goff, .gexp = gexp,
                .ngroups = ng, .kk = k, .ldx_pair = ldx_pair};
    zm_status st = run_job(pool, opts, wt, &j, ldx_pair ? n : n_tok);
    free(cnt), free(order), free(goff), free(gexp);
    return st;
}
