/* The CPU runner: splits a validated call over zm_pool_default(), walks the
 * data in blocks of ZM__BLK elements, converts f16/bf16 inputs (and
 * broadcasts scalars / last-axis vectors) into f32 block buffers, and calls
 * the compiled block functions or the interpreter. f32 full-shape inputs and
 * f32 outputs are used in place, so a pure f32 kernel streams memory once.
 * Row-wise kernels give each thread a contiguous band of rows.
 * Checked by tests/test_kernel.c and tests/test_kernel_rowwise.c. */
#include "jit/jit.h"
#include <math.h>
#include <string.h>

typedef struct {
    const zm__job *job;
    float *buf[ZM_MAX_INPUTS]; /* per input block buffer */
    float *obuf;
    float *scratch;            /* interpreter */
    const float *a[ZM_MAX_INPUTS];
} zm__ws;

static size_t zm__esz(int dt) { return dt == ZM_F32 ? 4 : 2; }

static int zm__ws_init(zm__ws *w, const zm__job *job) {
    memset(w, 0, sizeof *w);
    w->job = job;
    const zm_kernel *k = job->k;
    size_t nf = (size_t)(job->n_in + 1) * ZM__BLK + (k->cpu_jit ? 0 : zm__interp_scratch(k));
    float *mem = zm__alloc_aligned(nf * sizeof(float));
    if (!mem) return 0;
    for (int q = 0; q < job->n_in; q++) w->buf[q] = mem + (size_t)q * ZM__BLK;
    w->obuf = mem + (size_t)job->n_in * ZM__BLK;
    w->scratch = k->cpu_jit ? NULL : w->obuf + ZM__BLK;
    for (int q = 0; q < job->n_in; q++) /* scalars: one block of copies, once */
        if (job->sig.in_mode[q] == ZM__MODE_SCALAR) {
            float v;
            zm_convert_to_f32(&v, job->in[q], (zm_dtype)job->sig.in_dtype[q], 1);
            for (int i = 0; i < ZM__BLK; i++) w->buf[q][i] = v;
            w->a[q] = w->buf[q];
        }
    return 1;
}
static void zm__ws_free(zm__ws *w) { zm__free_aligned(w->buf[0] ? w->buf[0] : w->obuf); }

/* Point a[q] at len f32 values of input q for flat index i (row column j). */
static void zm__load(zm__ws *w, int64_t i, int64_t j, int64_t len) {
    const zm__job *job = w->job;
    for (int q = 0; q < job->n_in; q++) {
        int mode = job->sig.in_mode[q], dt = job->sig.in_dtype[q];
        if (mode == ZM__MODE_SCALAR) continue;
        const char *src = job->in[q] + (size_t)(mode == ZM__MODE_ROW ? j : i) * zm__esz(dt);
        if (dt == ZM_F32) w->a[q] = (const float *)src;
        else {
            zm_convert_to_f32(w->buf[q], src, (zm_dtype)dt, len);
            w->a[q] = w->buf[q];
        }
    }
}

/* Element-wise body (or the post of a row-wise kernel) over [i, i+len). */
static void zm__body(zm__ws *w, int64_t i, int64_t len, const float *r) {
    const zm__job *job = w->job;
    const zm_kernel *k = job->k;
    int f32 = job->sig.out_dtype == ZM_F32;
    float *o = f32 ? (float *)job->out + i : w->obuf;
    if (k->cpu_jit) k->ew(len, o, w->a, job->params, r);
    else zm__interp_ew(k, k->root, len, o, w->a, job->params, r, w->scratch);
    if (!f32) zm_convert_from_f32(job->out + (size_t)i * 2, (zm_dtype)job->sig.out_dtype, o, len);
}

// ---------------------------------------------------------------------------
static void zm__ew_range(zm__ws *w, int64_t start, int64_t end) {
    const zm__job *job = w->job;
    for (int64_t i = start; i < end;) {
        int64_t j = job->has_row ? i % job->cols : 0;
        int64_t len = end - i < ZM__BLK ? end - i : ZM__BLK;
        if (job->has_row && len > job->cols - j) len = job->cols - j;
        zm__load(w, i, j, len);
        zm__body(w, i, len, NULL);
        i += len;
    }
}

static float zm__red_init(zm_red_op op) { return op == ZM_RED_MAX ? -INFINITY : op == ZM_RED_MIN ? INFINITY : 0.0f; }

static void zm__row(zm__ws *w, int64_t row) {
    const zm__job *job = w->job;
    const zm_kernel *k = job->k;
    const int64_t cols = job->cols, base = row * cols;
    float rv[ZM_MAX_REDUCTIONS] = {0};
    for (int s = 0; s < k->n_reds; s++) {
        zm_red_op op = k->red_op[s];
        float acc[16];
        for (int l = 0; l < 16; l++) acc[l] = zm__red_init(op);
        for (int64_t j = 0; j < cols; j += ZM__BLK) {
            int64_t len = cols - j < ZM__BLK ? cols - j : ZM__BLK;
            zm__load(w, base + j, j, len);
            if (k->cpu_jit) k->red[s](len, acc, w->a, job->params, rv);
            else zm__interp_red(k, s, len, acc, w->a, job->params, rv, w->scratch);
        }
        /* fold the 16 lanes pairwise: the same order for JIT and interpreter */
        for (int h = 8; h >= 1; h /= 2)
            for (int l = 0; l < h; l++) {
                float x = acc[l + h];
                if (op == ZM_RED_MAX) acc[l] = (x > acc[l] || x != x) ? x : acc[l];
                else if (op == ZM_RED_MIN) acc[l] = (x < acc[l] || x != x) ? x : acc[l];
                else acc[l] += x;
            }
        rv[s] = op == ZM_RED_MEAN ? (cols ? acc[0] / (float)cols : NAN) : acc[0];
    }
    if (k->per_row) {
        float v = k->cpu_jit ? k->row(job->params, rv) : zm__interp_row(k, job->params, rv);
        zm_convert_from_f32(job->out + (size_t)row * zm__esz(job->sig.out_dtype), (zm_dtype)job->sig.out_dtype, &v, 1);
        return;
    }
    for (int64_t j = 0; j < cols; j += ZM__BLK) {
        int64_t len = cols - j < ZM__BLK ? cols - j : ZM__BLK;
        zm__load(w, base + j, j, len);
        zm__body(w, base + j, len, rv);
    }
}

// ---------------------------------------------------------------------------
typedef struct { const zm__job *job; _Atomic int failed; } zm__ctx;

static void zm__thread(void *vctx, int ith, int nth) {
    zm__ctx *c = vctx;
    const zm__job *job = c->job;
    /* contiguous bands; element bands start on 64-element boundaries */
    int64_t per = (job->n + nth - 1) / nth;
    if (job->k->kind == ZM__KIND_EW) per = (per + 63) & ~(int64_t)63;
    int64_t start = per * ith, end = start + per;
    if (end > job->n) end = job->n;
    if (start >= end) return;
    zm__ws w;
    if (!zm__ws_init(&w, job)) { c->failed = 1; return; }
    if (job->k->kind == ZM__KIND_EW) zm__ew_range(&w, start, end);
    else
        for (int64_t r = start; r < end; r++) zm__row(&w, r);
    zm__ws_free(&w);
}

zm_status zm__run_cpu(const zm__job *job) {
    zm__ctx c = {job, 0};
    int64_t work = job->k->kind == ZM__KIND_EW ? job->n : job->n * (job->cols ? job->cols : 1);
    zm_pool *pool = work >= 32768 && job->n > 1 ? zm_pool_default() : NULL;
    if (pool && zm_pool_size(pool) > 1) zm_pool_run(pool, zm__thread, &c);
    else zm__thread(&c, 0, 1);
    if (c.failed) return zm__err(ZM_ERR_NOMEM, "kernel %s: out of memory for block buffers", job->k->name);
    return ZM_OK;
}
